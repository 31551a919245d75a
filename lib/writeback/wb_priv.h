/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Writeback's private state (struct bc_wb), shared by its mechanism
 * (writeback.c: batches, passes, the origin flush, the superblock) and the
 * building of merged origin writes from a batch's sorted blocks (merge.c).
 */
#ifndef BC_WB_PRIV_H
#define BC_WB_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "engine/engine.h"
#include "writeback/policy.h"

#define WB_MAX_SEGS  BC_WB_MAX_BATCH
#define WB_QD        64
#define WB_IOV       256
#define WB_MAX_IO    (4u << 20)

struct wb_item {
	uint64_t block;
	uint64_t order;   /* position in the log: later entries win */
	uint32_t slot;
	uint8_t mask;
	uint8_t zero;
	const char *src;  /* data block in a read buffer; NULL for zero */
};

struct wb_write {
	struct bc_dev_io io;
	struct iovec iov[WB_IOV];
	struct bc_wb *wb;
	bool busy;        /* in flight, or failed and waiting for its retry */
	bool failed;
	bool zero;
	bool fill;        /* gap fill: read [start, +len) from the origin, overlay, write */
	unsigned niov;
	uint64_t start, len;
	size_t fill_first, fill_last; /* items overlaid on the origin's data */
	void *fill_buf;
};

enum wb_stage { WB_IDLE, WB_READING, WB_WRITING, WB_FLUSHING, WB_SB };

struct bc_wb {
	struct bc_engine *e;
	enum wb_stage stage;
	uint64_t first, last; /* batch: sequences first..last */
	/* Segment first's entries of FLUSH epochs (pass_lo, pass_hi] (the rest
	 * of the batch: all).  Persistent memory: a segment spans epochs and is
	 * written back one at a time, in passes; pass_partial: epochs of it
	 * remain after this pass. */
	uint64_t pass_lo, pass_hi;
	uint64_t epoch;       /* of this batch (ordered: of all of it) */
	bool pass_partial;
	unsigned nsegs, reads_pending;
	void *bufs[WB_MAX_SEGS];
	/* The segment whose image bufs[0] holds, read whole by an earlier
	 * batch (0: none): the passes of one segment read it once. */
	uint64_t held_seq;
	struct bc_completion held; /* a batch of it goes on from the loop */
	struct bc_dev_io reads[WB_MAX_SEGS];
	struct wb_item *items;
	size_t nitems, cap, cursor;
	unsigned cursor_sector;
	unsigned inflight;
	unsigned nfailed;         /* writes of this batch waiting for a retry */
	int error;                /* reading the batch failed */
	struct wb_write writes[WB_QD];
	struct bc_dev_io flush_io;
	struct bc_timer retry;
	bool full_speed;          /* this batch: forced (drain, pressure, idle) */
	uint64_t retry_ns;        /* current backoff (0: last batch succeeded) */
	const struct bc_wb_policy_ops *policy; /* when, how much, how fast */
	void *policy_ctx;
};

/* merge.c: the next origin write of the batch, from its cursor on, into
 * @w (a merged run of sectors, or a gap fill); false if none is left. */
bool bc_wb_build(struct bc_wb *wb, struct wb_write *w);

#endif
