/* SPDX-License-Identifier: BSD-3-Clause */
/* Engine internals shared by the request path, log, writeback and recovery. */
#ifndef BC_ENGINE_INTERNAL_H
#define BC_ENGINE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "blkcache/engine.h"
#include "blkcache/log.h"
#include "dev/device.h"
#include "format/format.h"
#include "log/index.h"
#include "policy/policy.h"

enum bc_seg_state {
	BC_SEG_FREE = 0,
	BC_SEG_OPEN,     /* filling in a RAM buffer */
	BC_SEG_WRITING,  /* sealed, write to the cache device in flight */
	BC_SEG_ONDISK,   /* written; data read from the cache device */
	BC_SEG_RETIRED,  /* reclaimed, index entries dropped; device reads of it
			  * still in flight keep the position from reuse */
};

#define BC_WB_MAX_BATCH 16

struct bc_tunables {
	uint64_t writeback_batch;
	uint64_t writeback_inflight;
	uint64_t dirty_high;
	uint64_t dirty_low;
	uint64_t writeback_idle_ms;
	uint64_t writeback_rate;
	uint64_t writeback_paused;
	uint64_t flush_deadline_us;
	uint64_t sequential_cutoff;
	uint64_t promote_hits;
	uint64_t reappend_percent;
	uint64_t writeback_ordered;
	uint64_t write_timeout_ms;
	uint64_t writeback_gap;
};

struct bc_buf {
	void *mem;        /* segment_size bytes, laid out as on disk */
	struct bc_buf *next;
};

struct bc_seg {
	uint64_t seq;
	uint64_t epoch;       /* engine epoch when it was opened (see bc_engine.epoch) */
	uint32_t nr_entries;
	uint32_t readers;     /* in-flight device reads of this segment's data */
	uint8_t state;        /* enum bc_seg_state */
	uint8_t retries;      /* failed write attempts */
	struct bc_buf *buf;   /* while OPEN or WRITING */
	struct bc_dev_io io;  /* the segment write */
};

/* Per-request engine state, kept in bc_request.target_private. */
struct bc_rq {
	struct bc_completion comp; /* deferred completion */
	struct bc_request *next;   /* wait/flush queues */
	uint64_t pos;              /* next byte to apply (writes) */
	uint64_t flush_seq;        /* must be durable before completion */
	int pending;               /* outstanding sub-IOs (reads) */
	int error;
	uint8_t stage;
	bool merged;               /* merge buffer holds the old block for merge_block */
	uint8_t path;              /* enum bc_write_path */
	struct bc_engine *engine;
	uint64_t merge_block;
	uint64_t wait_since;       /* when it joined the wait queue (write timeout) */
	struct bc_dev_io oio;      /* origin write / flush of non-writeback modes */
};

enum bc_write_path {
	BC_PATH_LOG = 0,     /* writeback: the log only */
	BC_PATH_THROUGH,     /* log (clean unless dirty) + origin */
	BC_PATH_AROUND,      /* invalidate cached copies + origin */
};
_Static_assert(sizeof(struct bc_rq) <= sizeof(((struct bc_request *)0)->target_private),
	       "engine request state fits the target-private area");

static inline struct bc_rq *rq_of(struct bc_request *r)
{
	return (struct bc_rq *)(void *)&r->target_private;
}

struct bc_reqq {
	struct bc_request *head, *tail;
};

struct bc_engine {
	struct bc_loop *loop;
	struct bc_dev *cache, *origin;
	bool owns_devs;             /* opened by path: closed with the engine */
	struct bc_target target;
	struct bc_engine_config cfg;

	/* geometry and persistent state */
	struct bc_sb_disk sb;       /* last written superblock contents */
	struct bc_sb_disk *sb_buf;  /* aligned write buffer */
	uint32_t nseg, hdr_blocks, data_blocks, seg_size;
	uint64_t export_blocks;

	struct bc_seg *segs;        /* per ring position */
	struct bc_seg_entry *rmap;  /* nseg * data_blocks: slot -> entry (reverse map) */
	struct bc_index index;

	/* the log */
	struct bc_seg *open;        /* segment being filled, or NULL */
	uint64_t head_seq;          /* next sequence to open */
	uint64_t tail_seq;          /* oldest sequence still occupying its position */
	uint64_t written_seq;       /* all <= this written to the cache device */
	uint64_t durable_seq;       /* all <= this written and flushed */
	uint64_t wb_seq;            /* written back, persisted in the superblock */
	uint64_t epoch;             /* bumped by every client FLUSH: writes of different
				     * epochs are written back in order, never merged */
	struct bc_buf *free_bufs;
	unsigned nbufs, free_nbufs;
	struct bc_buf *bufs_all;

	/* FLUSH / FUA */
	struct bc_reqq flushq;      /* waiting for durable_seq >= rq->flush_seq */
	struct bc_timer flush_timer;    /* upper bound on a FLUSH/FUA ack */
	struct bc_completion seal_comp; /* group-commit seal at end of iteration */
	bool seal_pending;
	unsigned nr_writing;            /* segments with a write in flight */
	bool cache_flush_busy;
	uint64_t cache_flush_target;
	struct bc_dev_io cache_flush_io;
	uint64_t deadline_ns;

	/* write ordering */
	struct bc_reqq waitq;       /* writes waiting for space or a merge read */
	struct bc_reqq fill_parked; /* origin writes overlapping a writeback gap fill */
	unsigned origin_writes_inflight; /* direct origin writes (non-writeback modes) */
	struct bc_timer write_timer; /* fails writes waiting longer than write_timeout_ms */
	bool merge_busy;
	bool resuming;              /* bc_write_resume() is running */
	void *merge_buf;            /* 4 KiB */
	struct bc_dev_io merge_io;
	struct bc_request *merge_req;
	uint32_t merge_slot;

	/* writeback, reclaim */
	struct bc_wb *wb;
	bool reclaim_busy;
	void *reclaim_buf;          /* segment being reclaimed, for re-append */
	uint32_t *reclaim_hot;      /* its hot entries */
	struct bc_dev_io reclaim_io;

	struct bc_tunables tun;
	enum bc_mode mode;
	struct bc_policy policy;
	uint64_t direct_gen;        /* bumped by writes that bypass the log */
	bool origin_unflushed;      /* writes reached the origin since its last flush */
	bool origin_flush_busy;
	struct bc_dev_io origin_flush_io;
	struct bc_reqq origin_flushq; /* FLUSH/FUA waiting for an origin flush */
	unsigned origin_flush_covered; /* waiters the flush in flight covers */
	uint64_t last_request_ns;   /* idle detection */

	/* drain / detach */
	bc_engine_done_fn drain_done;
	void *drain_arg;
	uint64_t drain_target;      /* drained when wb_seq reaches it */
	struct bc_completion drain_comp;
	struct bc_completion start_comp; /* first writeback kick, from the loop */
	struct bc_dev_io drain_flush_io;
	bool draining_all, detach_after, drain_flushing;

	/* shutdown / failure */
	bool closing;
	bool failed;            /* cache device write failed for good: FLUSH fails */
	bool degraded;          /* the cache device keeps failing: cache nothing new */

	uint64_t nr_dirty;
	struct bc_engine_stats st;
};

static inline uint32_t seg_pos(const struct bc_engine *e, uint64_t seq)
{
	return (uint32_t)(seq % e->nseg);
}
static inline uint32_t slot_pos(const struct bc_engine *e, uint32_t slot)
{
	return slot / e->data_blocks;
}
static inline uint64_t seg_offset(const struct bc_engine *e, uint32_t pos)
{
	return e->sb.ring_offset + (uint64_t)pos * e->seg_size;
}
static inline uint64_t slot_offset(const struct bc_engine *e, uint32_t slot)
{
	return seg_offset(e, slot / e->data_blocks) + (uint64_t)(e->hdr_blocks + slot % e->data_blocks) * BC_BLOCK_SIZE;
}
/* RAM address of a slot's data if its segment is still buffered, else NULL. */
static inline void *slot_ram(const struct bc_engine *e, uint32_t slot)
{
	const struct bc_seg *s = &e->segs[slot / e->data_blocks];

	if (!s->buf)
		return NULL;
	return (char *)s->buf->mem + (size_t)(e->hdr_blocks + slot % e->data_blocks) * BC_BLOCK_SIZE;
}

/* Copy the sectors in @mask of one block from @src to @dst. */
static inline void bc_copy_sectors(void *dst, const void *src, uint8_t mask)
{
	unsigned s;

	for (s = 0; s < BC_SECTORS_PER_BLOCK; s++)
		if (mask & (1u << s))
			memcpy((char *)dst + s * BC_SECTOR_SIZE, (const char *)src + s * BC_SECTOR_SIZE,
			       BC_SECTOR_SIZE);
}

/* queues */
void bc_reqq_push(struct bc_reqq *q, struct bc_request *r);
struct bc_request *bc_reqq_pop(struct bc_reqq *q);
void bc_req_complete(struct bc_engine *e, struct bc_request *r, int res); /* deferred */

/* index bookkeeping that keeps nr_dirty right */
void bc_ix_set(struct bc_engine *e, struct bc_ix_ent *ent, uint32_t slot, uint8_t mask, uint8_t flags);
void bc_ix_drop(struct bc_engine *e, struct bc_ix_ent *ent);

/* segment.c: log */
int bc_seglog_init(struct bc_engine *e);
void bc_seglog_destroy(struct bc_engine *e);
/* Make sure an open segment with a free entry exists; false: caller waits. */
bool bc_seglog_reserve(struct bc_engine *e);
void bc_seglog_seal(struct bc_engine *e);
uint64_t bc_seglog_last_seq(const struct bc_engine *e);   /* newest seq holding acked data */
void bc_seglog_wait_durable(struct bc_engine *e, struct bc_request *r, uint64_t seq);
void bc_seglog_kick(struct bc_engine *e);                 /* retry waiting writes */
void bc_seglog_flush_kick(struct bc_engine *e);           /* start a due cache flush */
void bc_seglog_reclaim(struct bc_engine *e);              /* free positions <= wb_seq, lazily */
/* Append a clean copy of @block (promotion, re-append); false if no room. */
bool bc_seglog_append_clean(struct bc_engine *e, uint64_t block, const void *data, uint8_t mask);
void bc_seglog_unpin(struct bc_engine *e, uint32_t pos);
uint64_t bc_seglog_free_positions(const struct bc_engine *e);
bool bc_seglog_idle(const struct bc_engine *e);

/* write.c / read.c */
void bc_write_submit(struct bc_engine *e, struct bc_request *r);
void bc_write_resume(struct bc_engine *e);
void bc_write_init(struct bc_engine *e);
void bc_read_submit(struct bc_engine *e, struct bc_request *r);
/* FLUSH semantics for @r: origin flushed if writes went to it, log durable. */
void bc_flush_submit(struct bc_engine *e, struct bc_request *r);
/* Flush the origin if writes reached it since its last flush. */
void bc_origin_flush_kick(struct bc_engine *e);

/* writeback.c */
int bc_wb_init(struct bc_engine *e);
void bc_wb_destroy(struct bc_engine *e);
void bc_wb_kick(struct bc_engine *e);
void bc_wb_retry_now(struct bc_engine *e); /* skip a failure backoff (drain asked) */
void bc_wb_note_request(struct bc_engine *e); /* foreground activity: idle detector */
bool bc_wb_idle(const struct bc_engine *e);
/* Is a writeback gap fill in flight over any of [off, off+len)?  Direct
 * origin writes that overlap one wait for it (write.c). */
bool bc_wb_fill_overlaps(const struct bc_engine *e, uint64_t off, uint64_t len);
void bc_write_unpark(struct bc_engine *e); /* retry origin writes parked behind a fill */

/* superblock.c */
int bc_sb_write_sync(struct bc_engine *e);
void bc_sb_write_async(struct bc_engine *e, void (*done)(struct bc_engine *e, int res));

void bc_engine_free(struct bc_engine *e);
/* A cache device IO failed: count it; repeated failures (or @fatal) switch
 * the engine to degraded mode. */
void bc_cache_error(struct bc_engine *e, bool fatal);
#define BC_DEGRADE_ERRORS 3

/* tunables.c / control.c */
void bc_tunables_defaults(struct bc_tunables *tun);
void bc_tunables_changed(struct bc_engine *e, const char *name);
void bc_drain_progress(struct bc_engine *e);
void bc_drain_fail(struct bc_engine *e, int err);

/* recovery.c */
int bc_recover(struct bc_engine *e, char *why, size_t whylen);

#endif
