/* SPDX-License-Identifier: BSD-3-Clause */
/* The power-cut checker: shared by test-powercut.c (workloads, main) and
 * powercut-model.c (sector model, cut images, checks). */
#ifndef BC_TEST_POWERCUT_H
#define BC_TEST_POWERCUT_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "blkcache/loop.h"
#include "recdev.h"

#define PC_SECTOR 512u

/* Decoded sector values: a request id (>= 1), or one of these. */
#define PC_V_ZERO    0u
#define PC_V_GARBAGE UINT32_MAX
#define PC_V_WRONG   (UINT32_MAX - 1) /* another sector's data */

#define PC_ADVISORY (1u << 31) /* history entry: discard of a partial block */

/* One client request. */
struct pc_op {
	uint8_t op;       /* BC_OP_* */
	uint8_t fua;
	uint64_t off, len;
	uint64_t submit;  /* positions in the global order */
	uint64_t ack;     /* REC_NEVER if never acknowledged */
	int result;
	uint32_t *seen;   /* READ: the decoded value of each sector read */
};

struct pc_wl {
	const char *name;
	uint64_t cache_size, origin_size;
	uint32_t seg_size;
	unsigned nr_buffers;
	uint64_t write_bytes;  /* client data written */
	unsigned qd_max;
	/* per mille of requests: the rest are writes */
	unsigned p_flush, p_fua, p_discard, p_zeroes, p_read;
	unsigned p_hot;        /* percent of requests in a small hot region */
	unsigned p_large;      /* percent of writes of 64-512 KiB */
	unsigned p_partial;    /* percent of writes not 4 KiB aligned */
	unsigned spread;       /* device completion spread (rec_set_spread) */
	uint64_t dirty_high, dirty_low, batch, inflight, ordered, reappend, promote_hits;
	uint64_t gap;          /* writeback_gap (gap-filled writeback) */
	bool written_acks;     /* engine config; its cuts model a kill too */
};

/* A workload's record. */
struct pc_run {
	const struct pc_wl *wl;
	uint64_t seed;
	struct pc_op *ops;     /* ops[0] unused: request ids start at 1 */
	size_t nops, capops;
	struct rec_img *base[2]; /* cache and origin when recording started */
	uint64_t end;          /* clock at the end */
	uint64_t export_size;
	uint64_t nsect;
	uint32_t *gen;         /* per sector: writes so far */
	/* per-sector history (request ids in submission order, | PC_ADVISORY) */
	uint64_t *hstart;      /* nsect + 1 */
	uint32_t *hist;
	uint64_t nudges;       /* FLUSHes issued to unstick a quiet engine */
};

struct pc_totals {
	uint64_t cuts, images, second, sectors, violations, open_failures, reads_checked;
	unsigned printed;
};
extern struct pc_totals pc_tot;
extern struct bc_loop *pc_loop;

/* Sector contents. */
void pc_fill_sector(void *buf, uint64_t sector, uint32_t reqid, uint32_t gen);
uint32_t pc_decode_sector(const void *buf, uint64_t sector, uint64_t *claimed);
/* Describe a decoded value on stderr ("zeroes", "request #N", ...). */
void pc_print_value(uint32_t val, uint64_t claimed);

/* Model. */
void pc_model_build(struct pc_run *run);
void pc_model_free(struct pc_run *run);
/* Bounds of the allowed history entries of sector @s: requests acked
 * before @t (or FUA and acked before @f) are mandatory; the newest one is
 * *lo (-1: none, the initial zeroes are allowed); entries from *lo up to
 * (excluding) *hi were submitted before @e. */
void pc_bounds(const struct pc_run *run, uint64_t s, uint64_t t, uint64_t f, uint64_t e,
	       int64_t *lo, int64_t *hi);
bool pc_allowed(const struct pc_run *run, uint64_t s, int64_t lo, int64_t hi, uint32_t val);
void pc_report(const struct pc_run *run, const char *what, uint64_t s, int64_t lo, int64_t hi,
	       uint32_t val, uint64_t claimed);
/* Check the reads done during the workload. */
void pc_check_reads(struct pc_run *run);
/* Cut the record at every device flush completion and at random points
 * (@ncuts in all, at least @ncuts / 3 random) and check the images. */
/* Cut the record at @ncuts points and check the recovered images.  @kill:
 * model a killed process (completed device writes all persist, every
 * acknowledged write must be there: written acks) instead of a power cut. */
void pc_check_cuts(struct pc_run *run, unsigned ncuts, uint64_t seed, bool kill);

uint64_t pc_rand(uint64_t *state);
const char *pc_op_name(uint8_t op);

#endif
