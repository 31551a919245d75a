/* SPDX-License-Identifier: BSD-3-Clause */
/* The power-cut checker: shared by test-powercut.c and test-powercut-origins.c
 * (workload tables, main), powercut-run.c (the workload on recording
 * devices), powercut-model.c (sector contents, the per-origin model),
 * powercut-prefix.c (an origin image alone) and powercut-cut.c (cut images,
 * recovery, checks). */
#ifndef BC_TEST_POWERCUT_H
#define BC_TEST_POWERCUT_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "blkcache/loop.h"
#include "recdev.h"

#define PC_SECTOR 512u
/* Origins of one cache: device 0 is the cache, device 1 + i origin i. */
#define PC_MAXORIGINS (REC_MAXDEV - 1)

/* Decoded sector values: a request id (>= 1), or one of these. */
#define PC_V_ZERO    0u
#define PC_V_GARBAGE UINT32_MAX
#define PC_V_WRONG   (UINT32_MAX - 1) /* another sector's data */

#define PC_ADVISORY (1u << 31) /* history entry: discard of a partial block */

/* One client request. */
struct pc_op {
	uint8_t op;       /* BC_OP_* */
	uint8_t fua;
	uint8_t origin;   /* the origin (export) it was sent to */
	uint64_t off, len;
	uint64_t submit;  /* positions in the global order */
	uint64_t ack;     /* REC_NEVER if never acknowledged */
	int result;
	uint32_t *seen;   /* READ: the decoded value of each sector read */
};

struct pc_wl {
	const char *name;
	uint64_t cache_size, origin_size; /* origin_size: of each origin */
	uint32_t seg_size;
	unsigned nr_buffers;
	uint64_t write_bytes;  /* client data written (to all origins together) */
	unsigned qd_max;
	/* per mille of requests: the rest are writes */
	unsigned p_flush, p_fua, p_discard, p_zeroes, p_read;
	unsigned p_hot;        /* percent of requests in a small hot region */
	unsigned p_large;      /* percent of writes of 64-512 KiB */
	unsigned p_partial;    /* percent of writes not 4 KiB aligned */
	unsigned spread;       /* device completion spread (rec_set_spread) */
	uint64_t dirty_high, dirty_low, batch, inflight, ordered, reappend, promote_hits;
	uint64_t gap;          /* writeback_gap (gap-filled writeback) */
	uint64_t carry;        /* carry_percent; 0: the engine's default.  Non-zero: the
				* run must carry dirty segments forward (log/carry.c) */
	bool written_acks;     /* engine config; its cuts model a kill too */
	/* Several origins (format v3): 0 = one origin, formatted with the cache
	 * and opened by bc_engine_open (the images checked under other names:
	 * the origin moved).  N >= 2: a cache formatted alone, N origins added
	 * (names "a", "b", ..., share_percent of the ring each), opened with
	 * bc_cache_open; requests spread over the N exports. */
	unsigned origins;
	unsigned share_percent;
	/* Check each origin image alone too: a prefix of its FLUSH history
	 * (powercut-prefix.c; needs writeback_ordered). */
	bool prefix;
	/* One origin as this many shards (format v5, bc_shards_open_cache,
	 * every shard on the one loop: deterministic), stripes of
	 * stripe_blocks; 0: not sharded. */
	unsigned shards, stripe_blocks;
	/* Format version (0: the current one, where a FLUSH is a round of
	 * the open segment; 3: a FLUSH seals it). */
	uint32_t format_version;
};

/* One origin's part of a run: its export and its model. */
struct pc_origin {
	char name[8];          /* "a", "b"... ("" for a single origin) */
	uint64_t export_size;
	uint64_t nsect;
	uint64_t hot_off;      /* workload: its hot region */
	uint32_t *gen;         /* per sector: writes so far */
	/* per-sector history (request ids in submission order, | PC_ADVISORY) */
	uint64_t *hstart;      /* nsect + 1 */
	uint32_t *hist;
};

/* A workload's record. */
struct pc_run {
	const struct pc_wl *wl;
	uint64_t seed;
	struct pc_op *ops;     /* ops[0] unused: request ids start at 1 */
	size_t nops, capops;
	unsigned norigins;     /* 1 for wl->origins 0 */
	struct pc_origin o[PC_MAXORIGINS];
	struct rec_img *base[REC_MAXDEV]; /* devices when recording started */
	uint64_t end;          /* clock at the end */
	uint64_t nudges;       /* FLUSHes issued to unstick a quiet engine */
};

struct pc_totals {
	uint64_t cuts, images, second, sectors, violations, open_failures, reads_checked;
	uint64_t kill_cuts;    /* of cuts: killed-process cuts (written acks) */
	/* origin images checked alone; of them behind the cut; their violations */
	uint64_t prefix_images, prefix_mid, prefix_violations;
	unsigned printed;
};
extern struct pc_totals pc_tot;
extern struct bc_loop *pc_loop;

/* Sector contents. */
void pc_fill_sector(void *buf, uint64_t sector, uint32_t reqid, uint32_t gen);
uint32_t pc_decode_sector(const void *buf, uint64_t sector, uint64_t *claimed);
/* Describe a decoded value on stderr ("zeroes", "request #N", ...). */
void pc_print_value(uint32_t val, uint64_t claimed);

/* Model: every origin's history (request ids are global, each origin's
 * history holds its own requests); the functions below take the origin @oi. */
void pc_model_build(struct pc_run *run);
void pc_model_free(struct pc_run *run);
/* Bounds of the allowed history entries of sector @s: requests acked
 * before @t (or FUA and acked before @f) are mandatory; the newest one is
 * *lo (-1: none, the initial zeroes are allowed); entries from *lo up to
 * (excluding) *hi were submitted before @e. */
void pc_bounds(const struct pc_run *run, unsigned oi, uint64_t s, uint64_t t, uint64_t f,
	       uint64_t e, int64_t *lo, int64_t *hi);
bool pc_allowed(const struct pc_run *run, unsigned oi, uint64_t s, int64_t lo, int64_t hi,
		uint32_t val);
void pc_report(const struct pc_run *run, unsigned oi, const char *what, uint64_t s, int64_t lo,
	       int64_t hi, uint32_t val, uint64_t claimed);
/* The history of sector @s around the bounds (and @val), on stderr. */
void pc_print_history(const struct pc_run *run, unsigned oi, uint64_t s, int64_t lo, int64_t hi,
		      uint32_t val);
/* Count a violation; true if it is to be printed (the first few are). */
bool pc_violation(void);
/* Check the reads done during the workload. */
void pc_check_reads(struct pc_run *run);

/* Cut the record at @ncuts points (every device flush completion and
 * random points, at least @ncuts / 3 random) and check the recovered
 * images.  @kill: model a killed process (completed device writes all
 * persist, every acknowledged write must be there: written acks) instead
 * of a power cut.  BLKCACHE_POWERCUT_BREAK (or pc_break) selects a
 * self-test. */
void pc_check_cuts(struct pc_run *run, unsigned ncuts, uint64_t seed, bool kill);
/* Self-tests of the checker (0: none; else overrides BLKCACHE_POWERCUT_BREAK):
 * 1 loses some durable cache writes, 2 makes every acknowledged write
 * mandatory, 3 lets a FLUSH of any origin cover every origin's writes,
 * 4 runs writeback unordered (batches across FLUSHes; with prefix). */
extern int pc_break;
int pc_break_mode(void);

/* The origin image @img alone (origin @oi at cut @cut): is it a state the
 * origin could be in after a power cut at some point of its own FLUSH
 * history?  @flushes: that origin's acknowledged client FLUSHes (ids),
 * sorted by acknowledgement.  Returns false (and counts a violation) if
 * not. */
bool pc_check_prefix(const struct pc_run *run, unsigned oi, const struct rec_img *img,
		     uint64_t cut, const size_t *flushes, size_t nflushes, const char *what);

/* powercut-run.c: run workload @wl with @seed on recording devices (fills
 * @run; -1 on a failure), free it, and run every workload for a seed. */
int pc_run_workload(struct pc_run *run, const struct pc_wl *wl, uint64_t seed);
void pc_free_run(struct pc_run *run);
int pc_run_seed(const struct pc_wl *wls, unsigned nwl, uint64_t seed, unsigned cuts);
/* Set up the loop, the driver and the error log sink (every error the
 * engine logs is a violation); run every workload for each seed of the
 * comma-separated list (0, 1: a run failed, 2: a malformed list);
 * pc_main_done prints the totals. */
void pc_main_init(void);
int pc_main_seeds(const struct pc_wl *wls, unsigned nwl, const char *seeds, unsigned cuts);
void pc_main_done(double seconds);
/* A test's main: every workload for the seeds and cut points the
 * environment gives (else @seeds, @cuts), @title first; the exit status. */
int pc_main(const struct pc_wl *wls, unsigned nwl, const char *title, const char *seeds,
	    unsigned cuts);

uint64_t pc_rand(uint64_t *state);
const char *pc_op_name(uint8_t op);

#endif
