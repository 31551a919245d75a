/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Model-checked concurrency test of the engine in process.
 *
 * Random concurrent reads, writes, write-zeroes, discards, FUA writes and
 * FLUSHes of mixed sizes and alignments (512 B .. 256 KiB, any sector
 * offset, crossing blocks and segments) run against an engine with a tiny
 * cache, so that reclaim, re-append, promotion, merges, writeback and gap
 * fills all run all the time.  Both devices are in-memory images
 * (tests/recdev.c, REC_DELAY) that complete every IO after its own random,
 * heavy-tailed delay: IOs overtake each other by thousands of rounds, a
 * read of the cache device sees whatever was written there when it
 * *completes*, a write takes its data from the engine's buffer when it
 * completes.  Cache modes and tunables change while requests are in
 * flight; the engine is shut down cleanly and reopened (recovery) every
 * phase; every other restart drains writeback first and checks the origin
 * image alone.  Two runs: the second formats with --data-crc.
 *
 * Every sector written carries its request id and its own sector number,
 * so every read is checked, sector by sector, against a model of which
 * values are legal given the requests in flight: the value of a write W is
 * legal for a read R unless some write W2 to that sector was submitted
 * after W completed and itself completed before R was submitted (then W
 * is overwritten for good); zeroes are legal if nothing was written there
 * before R, or a legal write-zeroes/discard covers it (a discard of part
 * of a block is advisory: zeroes or the old data).  Garbage, another
 * sector's data, a value never written there, or a value overwritten for
 * good is a violation.  So is any error the engine logs (no device fails
 * here), a request that fails, and an engine that stops making progress.
 *
 * Deterministic for a seed (the devices' delays, the workload): on a
 * violation the seed is printed.  Timers play no part in the verdict:
 * writeback is driven by watermarks, the FLUSH batching deadline is long
 * and when nothing is in flight the workload sends a FLUSH instead.
 *
 * Environment: BLKCACHE_CONCURRENCY_SEED (default 1),
 * BLKCACHE_CONCURRENCY_OPS (client requests in all, default 1000000).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blkcache/log.h"
#include "blkcache/target.h"
#include "engine/engine.h"
#include "powercut.h"
#include "testutil.h"

#define KiB 1024ull
#define MiB (1024ull * 1024)
#define SECT PC_SECTOR
#define SPB (BC_BLOCK_SIZE / SECT)
#define NEVER UINT64_MAX
#define MAX_PRINT 20

struct cc_run_cfg {
	const char *name;
	uint64_t cache_size, origin_size;
	uint32_t seg_size;
	unsigned nr_buffers;
	bool data_crc;
	unsigned share;         /* percent of the requests */
	unsigned flush;         /* per mille of the requests that are FLUSHes */
	bool carry;             /* must carry dirty segments forward (few FLUSHes) */
};

static const struct cc_run_cfg runs[] = {
	{ .name = "plain", .cache_size = 5 * MiB, .origin_size = 16 * MiB + 4 * KiB,
	  .seg_size = 256 << 10, .nr_buffers = 4, .data_crc = false, .share = 55, .flush = 15 },
	{ .name = "data-crc", .cache_size = 6 * MiB, .origin_size = 12 * MiB + 4 * KiB,
	  .seg_size = 256 << 10, .nr_buffers = 3, .data_crc = true, .share = 25, .flush = 15 },
	/* Long stretches without a FLUSH: reclaim carries dirty segments
	 * forward instead of writing them back (log/carry.c). */
	{ .name = "carry", .cache_size = 6 * MiB, .origin_size = 16 * MiB + 4 * KiB,
	  .seg_size = 256 << 10, .nr_buffers = 4, .data_crc = false, .share = 20, .flush = 1,
	  .carry = true },
};
#define NRUNS (sizeof(runs) / sizeof(runs[0]))

/* Each run: 7 phases with a restart between them; modes switch 7 times
 * and tunables change 3 times per phase. */
#define PHASES 7

struct cc_op {
	uint64_t submit, ack;   /* clock positions (ack NEVER while in flight) */
	uint64_t first;         /* first sector */
	uint32_t nsect;
	uint8_t op;
	uint8_t fua;
	uint8_t nudge;          /* a FLUSH sent because the engine was quiet */
};

struct cc {
	const struct cc_run_cfg *cfg;
	uint64_t seed, rng;
	struct bc_engine *e;
	struct rec_img *img[2]; /* cache, origin */
	struct cc_op *ops;      /* ops[0] unused: ids start at 1 */
	size_t nops, cap, target;
	uint64_t clock;
	uint64_t nsect, export_size;
	uint64_t *floor;        /* per sector: 1 + newest submit of a completed write (0: none) */
	uint64_t *zack;         /* per sector: 1 + latest completion of a zeroing request */
	uint16_t *zinfl;        /* per sector: zeroing requests in flight */
	uint32_t *floor_id;     /* per sector: the request that set floor[] */
	unsigned inflight, qd, since_qd;
	uint64_t acked, last_acked, nudges, restarts, drains, mode_switches;
	unsigned idle;          /* rounds without progress */
	unsigned tunes;         /* retune() calls */
	uint64_t next_mode, next_tune, next_phase;
	struct bc_engine_stats tot; /* counters of the closed engines */
	uint64_t stream_off;    /* sequential read stream */
	unsigned stream_left;
	uint64_t hot_off;
};

struct cc_req {
	struct bc_request r;
	struct cc *c;
	uint32_t id;
	void *buf;
	uint64_t *snap;         /* READ: floor[] of its sectors at submission */
};

static struct bc_loop *loop;
static uint64_t trace_sector = UINT64_MAX; /* BLKCACHE_CONCURRENCY_TRACE */

/* Debugging aid: requests touching the traced sector, with the index
 * entry of its block. */
static void trace(struct cc *c, uint64_t id, const char *what)
{
	const struct cc_op *o = &c->ops[id];
	struct bc_ix_ent found, *ix;

	if (trace_sector < o->first || trace_sector >= o->first + o->nsect)
		return;
	ix = c->e && bc_index_find(&c->e->index, trace_sector / SPB, &found) ? &found : NULL;
	fprintf(stderr, "trace @%llu %s #%llu %s%s %llu+%u mode %s: ", (unsigned long long)c->clock,
		what, (unsigned long long)id, pc_op_name(o->op), o->fua ? "+FUA" : "",
		(unsigned long long)o->first, o->nsect, c->e ? bc_mode_name(c->e->mode) : "-");
	if (ix)
		fprintf(stderr, "slot %u (pos %u, seq %llu) mask %02x flags %x\n", ix->slot,
			ix->slot / c->e->data_blocks, (unsigned long long)c->e->log.segs[ix->slot / c->e->data_blocks].seq,
			ix->mask, ix->flags);
	else
		fprintf(stderr, "not cached\n");
}
static uint64_t top_seed; /* BLKCACHE_CONCURRENCY_SEED */
static uint64_t digest; /* of the completion order: the same for the same seed */
static uint64_t violations, printed, sectors_checked, reads_checked, requests_total;

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz);

	if (!p) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	return p;
}

static uint64_t rnd(struct cc *c, uint64_t n)
{
	return n ? pc_rand(&c->rng) % n : 0;
}

/* No device fails here: an error the engine logs is a violation. */
static void log_sink(void *arg, enum bc_log_level level, const char *msg)
{
	(void)arg;
	(void)level;
	violations++;
	if (printed++ < MAX_PRINT)
		fprintf(stderr, "VIOLATION: the engine logged an error: %s\n", msg);
}

static bool zeroing(uint8_t op)
{
	return op == BC_OP_DISCARD || op == BC_OP_WRITE_ZEROES;
}

/* Does request @o, completed, overwrite sector @s for good?  Every write
 * and write-zeroes does; a discard only where it covers whole blocks. */
static bool mandatory(const struct cc_op *o, uint64_t s)
{
	uint64_t b0 = s / SPB * SPB;

	if (o->op != BC_OP_DISCARD)
		return true;
	return b0 >= o->first && b0 + SPB <= o->first + o->nsect;
}

static void print_op(const struct cc *c, uint64_t id, const char *tag)
{
	const struct cc_op *o = &c->ops[id];

	fprintf(stderr, "      %s #%llu %s%s sectors %llu+%u submit@%llu ack@", tag,
		(unsigned long long)id, pc_op_name(o->op), o->fua ? "+FUA" : "",
		(unsigned long long)o->first, o->nsect, (unsigned long long)o->submit);
	if (o->ack == NEVER)
		fprintf(stderr, "(in flight)\n");
	else
		fprintf(stderr, "%llu\n", (unsigned long long)o->ack);
}

static void report(const struct cc *c, const char *what, uint64_t rid, uint64_t s, uint32_t val,
		   uint64_t claimed, uint64_t floor)
{
	violations++;
	if (printed++ >= MAX_PRINT) {
		if (printed == MAX_PRINT + 1)
			fprintf(stderr, "(further violations not printed)\n");
		return;
	}
	fprintf(stderr, "VIOLATION %s: BLKCACHE_CONCURRENCY_SEED=%llu run %s sector %llu "
		"(byte %llu): read ", what, (unsigned long long)top_seed, c->cfg->name,
		(unsigned long long)s, (unsigned long long)s * SECT);
	pc_print_value(val, claimed);
	fprintf(stderr, "; overwritten for good: everything completed before clock %llu\n",
		floor ? (unsigned long long)floor - 1 : 0ull);
	if (rid)
		print_op(c, rid, "read");
	if (val != PC_V_ZERO && val < c->nops)
		print_op(c, val, "value");
	if (c->floor_id[s])
		print_op(c, c->floor_id[s], "newest completed");
}

/* Is @val legal at sector @s for a read whose sector saw @floor at its
 * submission?  Checked when the read completes. */
static bool legal(const struct cc *c, uint64_t s, uint32_t val, uint64_t floor)
{
	const struct cc_op *o;

	if (val == PC_V_ZERO)
		return !floor || c->zinfl[s] || c->zack[s] > floor;
	if (val == PC_V_GARBAGE || val == PC_V_WRONG || val >= c->nops)
		return false;
	o = &c->ops[val];
	if (o->op != BC_OP_WRITE || s < o->first || s >= o->first + o->nsect)
		return false;
	return o->ack == NEVER || o->ack >= floor;
}

static void check_sectors(struct cc *c, uint64_t rid, const char *what, const void *buf,
			  uint64_t first, uint64_t n, const uint64_t *snap)
{
	uint64_t i, claimed;

	for (i = 0; i < n; i++) {
		uint64_t s = first + i, floor = snap ? snap[i] : c->floor[s];
		uint32_t val = pc_decode_sector((const char *)buf + i * SECT, s, &claimed);

		if (!legal(c, s, val, floor))
			report(c, what, rid, s, val, claimed, floor);
	}
	sectors_checked += n;
}

static void req_done(struct bc_request *r, int res)
{
	struct cc_req *q = r->priv;
	struct cc *c = q->c;
	struct cc_op *o = &c->ops[q->id];
	uint64_t s;

	o->ack = c->clock++;
	digest = (digest ^ ((uint64_t)q->id << 20 ^ o->ack)) * 0x100000001b3ull;
	if (!o->nudge)
		c->acked++; /* progress: a nudge FLUSH alone is not */
	trace(c, q->id, "ack");
	c->inflight--;
	if (res) {
		violations++;
		if (printed++ < MAX_PRINT)
			fprintf(stderr, "VIOLATION: seed %llu: request #%u %s sectors %llu+%u failed: %s\n",
				(unsigned long long)top_seed, q->id, pc_op_name(o->op),
				(unsigned long long)o->first, o->nsect, strerror(-res));
	} else if (o->op == BC_OP_READ) {
		check_sectors(c, q->id, "read", q->buf, o->first, o->nsect, q->snap);
		reads_checked++;
	}
	if (o->op != BC_OP_READ && o->op != BC_OP_FLUSH) {
		for (s = o->first; s < o->first + o->nsect; s++) {
			if (res == 0 && mandatory(o, s) && c->floor[s] < o->submit + 1) {
				c->floor[s] = o->submit + 1;
				c->floor_id[s] = q->id;
			}
			if (zeroing(o->op)) {
				c->zinfl[s]--;
				if (c->zack[s] < o->ack + 1)
					c->zack[s] = o->ack + 1;
			}
		}
	}
	free(q->snap);
	free(q->buf);
	free(q);
}

static void submit_op(struct cc *c, uint8_t op, bool fua, uint64_t first, uint64_t nsect)
{
	struct cc_req *q = xcalloc(1, sizeof(*q));
	struct cc_op *o;
	uint64_t i;

	if (c->nops >= c->cap) {
		c->cap = c->cap ? c->cap * 2 : 65536;
		c->ops = realloc(c->ops, c->cap * sizeof(*c->ops));
		if (!c->ops)
			exit(1);
	}
	q->id = (uint32_t)c->nops++;
	q->c = c;
	o = &c->ops[q->id];
	*o = (struct cc_op){ .op = op, .fua = fua, .first = first, .nsect = (uint32_t)nsect,
			     .ack = NEVER };
	if (op == BC_OP_WRITE || op == BC_OP_READ)
		q->buf = t_alloc(nsect * SECT);
	if (op == BC_OP_WRITE)
		for (i = 0; i < nsect; i++)
			pc_fill_sector((char *)q->buf + i * SECT, first + i, q->id, 0);
	if (op == BC_OP_READ) {
		q->snap = xcalloc(nsect, sizeof(*q->snap));
		memcpy(q->snap, c->floor + first, nsect * sizeof(*q->snap));
	}
	if (zeroing(op))
		for (i = 0; i < nsect; i++)
			c->zinfl[first + i]++;
	q->r.op = op;
	q->r.flags = fua ? BC_REQ_FUA : 0;
	q->r.offset = first * SECT;
	q->r.length = nsect * SECT;
	q->r.buf = q->buf;
	q->r.done = req_done;
	q->r.priv = q;
	c->inflight++;
	requests_total++;
	o->submit = c->clock++;
	trace(c, q->id, "submit");
	bc_target_submit(bc_engine_target(c->e), &q->r);
	trace(c, q->id, "applied");
}

/* A length in sectors: mostly small, some up to 256 KiB. */
static uint64_t pick_len(struct cc *c, bool *aligned)
{
	uint64_t x = rnd(c, 100);

	*aligned = rnd(c, 2);
	if (x < 45)
		return *aligned ? SPB : 1 + rnd(c, 16);
	if (x < 80)
		return *aligned ? SPB * (1 + rnd(c, 8)) : 1 + rnd(c, 64);
	if (x < 96)
		return *aligned ? SPB * (8 + rnd(c, 25)) : 64 + rnd(c, 193);
	return *aligned ? SPB * (32 + rnd(c, 33)) : 256 + rnd(c, 257);
}

/* Where *@n sectors go: a small hot region or anywhere; shortened to fit. */
static uint64_t place(struct cc *c, uint64_t *n, bool aligned)
{
	uint64_t lo = 0, span = c->nsect, align = aligned ? SPB : 1;

	if (rnd(c, 100) < 40) {
		lo = c->hot_off;
		span = 2 * MiB / SECT;
	}
	if (*n > span)
		*n = span;
	return lo + rnd(c, (span - *n) / align + 1) * align;
}

static void issue(struct cc *c)
{
	uint64_t x = rnd(c, 1000), n, first;
	bool aligned;
	uint8_t op;

	if (++c->since_qd >= 64) {
		c->since_qd = 0;
		c->qd = 1 + (unsigned)rnd(c, rnd(c, 4) ? 32 : 4);
	}
	if (x < c->cfg->flush) {
		submit_op(c, BC_OP_FLUSH, false, 0, 0);
		return;
	}
	if (x < 400 && c->stream_left) {
		/* Continue a sequential read stream (sequential cutoff). */
		n = 64 + rnd(c, 192);
		if (c->stream_off + n > c->nsect)
			c->stream_off = 0;
		first = c->stream_off;
		c->stream_off += n;
		c->stream_left--;
		submit_op(c, BC_OP_READ, false, first, n);
		return;
	}
	if (x < 60)
		op = BC_OP_DISCARD;
	else if (x < 110)
		op = BC_OP_WRITE_ZEROES;
	else if (x < 450)
		op = BC_OP_READ;
	else
		op = BC_OP_WRITE;
	n = pick_len(c, &aligned);
	first = place(c, &n, aligned);
	if (op == BC_OP_READ && rnd(c, 200) == 0) {
		c->stream_off = first;
		c->stream_left = 16 + (unsigned)rnd(c, 48);
	}
	submit_op(c, op, (op == BC_OP_WRITE || op == BC_OP_WRITE_ZEROES) && rnd(c, 100) < 4, first, n);
}

static void set_tunable(struct cc *c, const char *name, uint64_t v)
{
	char why[256];

	if (bc_engine_set(c->e, name, v, why, sizeof(why))) {
		fprintf(stderr, "FAIL: set %s=%llu: %s\n", name, (unsigned long long)v, why);
		exit(1);
	}
}

/* New tunables, chosen from the seed (also while requests are in flight). */
static void retune(struct cc *c)
{
	static const uint64_t wm[][2] = { { 5, 0 }, { 20, 5 }, { 50, 25 }, { 90, 80 } };
	static const uint64_t gap[] = { 0, 0, 4, 16 }, batch[] = { 1, 2, 4, 16 };
	static const uint64_t infl[] = { 1, 4, 16, 64 }, reap[] = { 0, 25, 50, 50 };
	unsigned w = (unsigned)rnd(c, 4);

	set_tunable(c, "dirty_low", 0);
	set_tunable(c, "dirty_high", wm[w][0]);
	set_tunable(c, "dirty_low", wm[w][1]);
	/* What every run must cover cycles; the rest is random. */
	c->tunes++;
	set_tunable(c, "writeback_gap", gap[c->tunes % 4]);
	set_tunable(c, "writeback_batch", batch[rnd(c, 4)]);
	set_tunable(c, "writeback_inflight", infl[rnd(c, 4)]);
	set_tunable(c, "writeback_ordered", rnd(c, 3) != 0);
	set_tunable(c, "writeback_paused", rnd(c, 6) == 0);
	set_tunable(c, "carry_percent", c->tunes % 4 == 3 ? 0 : 50 + 20 * rnd(c, 3));
	set_tunable(c, "reappend_percent", reap[(c->tunes / 2) % 4]);
	set_tunable(c, "promote_hits", c->tunes % 5 == 4 ? 0 : 1 + rnd(c, 2));
	set_tunable(c, "sequential_cutoff", c->tunes % 2 ? 256 * KiB : 0);
}

static void switch_mode(struct cc *c)
{
	uint64_t x = rnd(c, 100);
	enum bc_mode m = x < 55 ? BC_CACHE_WRITEBACK : x < 72 ? BC_CACHE_WRITETHROUGH :
			 x < 86 ? BC_CACHE_WRITEAROUND : BC_CACHE_PASSTHROUGH;
	char why[256];

	if (bc_engine_set_mode(c->e, m, why, sizeof(why))) {
		fprintf(stderr, "FAIL: mode %s: %s\n", bc_mode_name(m), why);
		exit(1);
	}
	c->mode_switches++;
}

static void stuck(struct cc *c)
{
	struct bc_engine *e = c->e;
	size_t i;

	fprintf(stderr, "FAIL: seed %llu: the engine makes no progress with %u requests in flight "
		"(head %llu tail %llu written %llu durable %llu wb %llu, free bufs %u, waitq %d, "
		"merge %d, flushq %d, writeback idle %d)\n", (unsigned long long)top_seed, c->inflight,
		(unsigned long long)e->log.head_seq, (unsigned long long)e->log.tail_seq,
		(unsigned long long)e->log.written_seq, (unsigned long long)e->log.durable_seq,
		(unsigned long long)e->log.wb_seq, e->log.free_nbufs, !!e->wr.waitq.head, e->wr.merge_busy,
		!!e->log.flushq.head, bc_wb_idle(e));
	for (i = 1, printed = 0; i < c->nops && printed < 10; i++)
		if (c->ops[i].ack == NEVER) {
			print_op(c, i, "in flight");
			printed++;
		}
	exit(1);
}

/*
 * One loop round.  A round in which nothing happens and no device IO is
 * pending means the engine waits for a timer (the FLUSH deadline): send a
 * FLUSH.  Many such rounds in a row without progress: the engine is stuck.
 */
static void round_once(struct cc *c)
{
	int n = bc_loop_run_once(loop, 0);

	if (n < 0) {
		fprintf(stderr, "FAIL: loop: %s\n", strerror(-n));
		exit(1);
	}
	if (c->acked + c->drains != c->last_acked) {
		c->last_acked = c->acked + c->drains;
		c->idle = 0;
	}
	if (n || rec_pending())
		return;
	if (++c->idle > 1000)
		stuck(c);
	if (c->inflight) {
		c->nudges++;
		submit_op(c, BC_OP_FLUSH, false, 0, 0);
		c->ops[c->nops - 1].nudge = 1;
	}
}

/* Run the loop until at most @n requests are in flight. */
static void settle(struct cc *c, unsigned n)
{
	while (c->inflight > n)
		round_once(c);
}

static void open_engine(struct cc *c)
{
	struct bc_engine_config cfg = { .cache_path = "rec:cc-cache", .origin_path = "rec:cc-origin",
					.devices = rec_devices(),
					.nr_buffers = c->cfg->nr_buffers,
					.flush_deadline_us = 10000000 };
	char why[512];

	if (bc_engine_open(&c->e, loop, &cfg, why, sizeof(why))) {
		fprintf(stderr, "FAIL: seed %llu: open: %s\n", (unsigned long long)top_seed, why);
		exit(1);
	}
	set_tunable(c, "writeback_idle_ms", 0);
	set_tunable(c, "write_timeout_ms", 0);
	retune(c);
}

static void drain_done(void *arg, int res)
{
	struct cc *c = arg;

	if (res) {
		violations++;
		fprintf(stderr, "VIOLATION: seed %llu: drain failed: %s\n", (unsigned long long)top_seed,
			strerror(-res));
	}
	c->drains++;
}

/* Write every dirty block back, then check the origin image alone. */
static void drain_and_check_origin(struct cc *c)
{
	uint64_t want = c->drains + 1, s;
	char *buf = t_alloc(BC_BLOCK_SIZE);

	if (bc_engine_drain(c->e, drain_done, c)) {
		fprintf(stderr, "FAIL: drain refused\n");
		exit(1);
	}
	while (c->drains < want)
		round_once(c);
	for (s = 0; s < c->nsect; s += SPB) {
		uint64_t n = c->nsect - s < SPB ? c->nsect - s : SPB;

		rec_img_read(c->img[1], s * SECT, buf, n * SECT);
		check_sectors(c, 0, "origin after drain", buf, s, n, NULL);
	}
	free(buf);
}

/* Read the whole export through the engine, 256 KiB at a time. */
static void read_all(struct cc *c)
{
	uint64_t s, step = 256 * KiB / SECT;

	for (s = 0; s < c->nsect; s += step) {
		c->qd = 8;
		submit_op(c, BC_OP_READ, false, s, c->nsect - s < step ? c->nsect - s : step);
		settle(c, 7);
	}
	settle(c, 0);
}

/* Counters summed over the engines of a run (each restart starts at 0). */
#define ST(f) offsetof(struct bc_engine_stats, f)
static const size_t summed[] = {
	ST(reclaimed_segments), ST(reappended_blocks), ST(carried_segments), ST(carried_blocks), ST(promoted_blocks), ST(merge_reads),
	ST(writeback_blocks), ST(writeback_batches), ST(writeback_fills), ST(cache_full_waits),
	ST(invalidated_blocks), ST(segments_written), ST(writethrough_blocks), ST(read_hit_blocks),
	ST(bypass_sequential_bytes), ST(write_waited), ST(write_wait_ns),
};

/* Add the counters of the engine about to close to the run's totals. */
static void add_stats(struct cc *c)
{
	struct bc_engine_stats st;
	size_t i;

	bc_engine_get_stats(c->e, &st);
	for (i = 0; i < sizeof(summed) / sizeof(summed[0]); i++)
		*(uint64_t *)((char *)&c->tot + summed[i]) += *(uint64_t *)((char *)&st + summed[i]);
	c->tot.segments_total = st.segments_total;
}

static void close_engine(struct cc *c)
{
	int ret;

	add_stats(c);
	ret = bc_engine_close(c->e);
	c->e = NULL;
	if (ret) {
		fprintf(stderr, "FAIL: seed %llu: close: %s\n", (unsigned long long)top_seed,
			strerror(-ret));
		exit(1);
	}
}

/* Between phases: nothing in flight; drain and check the origin every
 * other time; a clean shutdown, and recovery. */
static void restart(struct cc *c)
{
	settle(c, 0);
	if (c->restarts % 2)
		drain_and_check_origin(c);
	close_engine(c);
	c->restarts++;
	open_engine(c);
}

/* The workload: issue requests up to the queue depth; switch modes,
 * change tunables and restart on schedule. */
static void workload(struct cc *c)
{
	uint64_t phase = c->target / PHASES + 1, mode = phase / 7 + 1, tune = phase / 3 + 1;

	c->next_mode = mode;
	c->next_tune = tune;
	c->next_phase = phase;
	while (c->nops <= c->target) {
		while (c->inflight < c->qd && c->nops <= c->target) {
			if (c->nops >= c->next_mode) {
				switch_mode(c);
				c->next_mode += mode;
			}
			if (c->nops >= c->next_tune) {
				retune(c);
				c->next_tune += tune;
			}
			if (c->nops >= c->next_phase) {
				restart(c);
				c->next_phase += phase;
			}
			issue(c);
		}
		round_once(c);
	}
	settle(c, 0);
}

static void format(struct cc *c)
{
	struct bc_format_config f = { .cache_path = "rec:cc-cache", .origin_path = "rec:cc-origin",
				      .devices = rec_devices(),
				      .segment_size = c->cfg->seg_size, .force = true,
				      .data_crc = c->cfg->data_crc };
	char why[512];

	c->img[0] = rec_img_new(c->cfg->cache_size);
	c->img[1] = rec_img_new(c->cfg->origin_size);
	rec_attach_mode(0, "cc-cache", c->img[0], REC_DELAY);
	rec_attach_mode(1, "cc-origin", c->img[1], REC_DELAY);
	if (bc_cache_format(&f, why, sizeof(why))) {
		fprintf(stderr, "FAIL: format: %s\n", why);
		exit(1);
	}
}

static void run_one(const struct cc_run_cfg *cfg, uint64_t seed, uint64_t nreq)
{
	struct cc c = { .cfg = cfg, .seed = seed, .rng = seed, .qd = 8, .nops = 1 };
	struct bc_engine_stats st;

	rec_seed(seed ^ 0xdecafbadull);
	format(&c);
	c.target = nreq;
	c.clock = 1;
	open_engine(&c);
	c.export_size = bc_engine_target(c.e)->size;
	c.nsect = c.export_size / SECT;
	c.floor = xcalloc(c.nsect, sizeof(*c.floor));
	c.zack = xcalloc(c.nsect, sizeof(*c.zack));
	c.zinfl = xcalloc(c.nsect, sizeof(*c.zinfl));
	c.floor_id = xcalloc(c.nsect, sizeof(*c.floor_id));
	c.hot_off = rnd(&c, (c.nsect - 2 * MiB / SECT) / SPB) * SPB;
	workload(&c);
	read_all(&c);
	drain_and_check_origin(&c);
	close_engine(&c);
	st = c.tot;
	printf("%s: seed %llu: %zu requests (%llu nudge FLUSHes), %llu restarts, %llu mode switches, "
	       "%llu drains; segments written %llu (ring %llu, %.0f laps), reclaimed %llu, "
	       "reappended %llu, promoted %llu, merge reads %llu, writeback %llu blocks in %llu "
	       "batches (%llu gap fills), cache-full waits %llu, invalidated %llu, carried %llu "
	       "segments (%llu blocks)\n", cfg->name,
	       (unsigned long long)seed, c.nops - 1, (unsigned long long)c.nudges,
	       (unsigned long long)c.restarts, (unsigned long long)c.mode_switches,
	       (unsigned long long)c.drains, (unsigned long long)st.segments_written,
	       (unsigned long long)st.segments_total,
	       (double)st.segments_written / (double)st.segments_total,
	       (unsigned long long)st.reclaimed_segments, (unsigned long long)st.reappended_blocks,
	       (unsigned long long)st.promoted_blocks, (unsigned long long)st.merge_reads,
	       (unsigned long long)st.writeback_blocks, (unsigned long long)st.writeback_batches,
	       (unsigned long long)st.writeback_fills, (unsigned long long)st.cache_full_waits,
	       (unsigned long long)st.invalidated_blocks, (unsigned long long)st.carried_segments,
	       (unsigned long long)st.carried_blocks);
	/* The run must have exercised what it is about. */
	CHECK(st.reclaimed_segments > 0, "%s: no segment reclaimed", cfg->name);
	CHECK(st.reappended_blocks > 0, "%s: no block re-appended", cfg->name);
	CHECK(st.promoted_blocks > 0, "%s: no block promoted", cfg->name);
	CHECK(st.merge_reads > 0, "%s: no merge read", cfg->name);
	CHECK(st.writeback_fills > 0, "%s: no gap fill", cfg->name);
	CHECK(st.cache_full_waits > 0, "%s: no write waited for space", cfg->name);
	CHECK(!cfg->carry || st.carried_blocks > 0, "%s: no dirty block carried forward", cfg->name);
	CHECK(st.write_waited > 0 && st.write_wait_ns > 0, "%s: waiting writes not accounted: "
	      "%llu waited, %llu ns", cfg->name, (unsigned long long)st.write_waited,
	      (unsigned long long)st.write_wait_ns);
	CHECK(st.invalidated_blocks > 0, "%s: nothing invalidated (writearound)", cfg->name);
	CHECK(st.writethrough_blocks > 0, "%s: nothing written through", cfg->name);
	CHECK(st.bypass_sequential_bytes > 0, "%s: no sequential bypass", cfg->name);
	CHECK(c.restarts > 0 && c.drains > 1, "%s: %llu restarts, %llu drains", cfg->name,
	      (unsigned long long)c.restarts, (unsigned long long)c.drains);
	rec_detach(0);
	rec_detach(1);
	rec_img_free(c.img[0]);
	rec_img_free(c.img[1]);
	free(c.ops);
	free(c.floor);
	free(c.zack);
	free(c.zinfl);
	free(c.floor_id);
}

int main(void)
{
	const char *s = getenv("BLKCACHE_CONCURRENCY_SEED"), *o = getenv("BLKCACHE_CONCURRENCY_OPS");
	uint64_t seed = top_seed = s ? strtoull(s, NULL, 0) : 1, total = o ? strtoull(o, NULL, 0) : 1000000;
	struct timespec t0, t1;
	unsigned i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (getenv("BLKCACHE_CONCURRENCY_TRACE"))
		trace_sector = strtoull(getenv("BLKCACHE_CONCURRENCY_TRACE"), NULL, 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	printf("seed %llu (BLKCACHE_CONCURRENCY_SEED), %llu requests (BLKCACHE_CONCURRENCY_OPS)\n",
	       (unsigned long long)seed, (unsigned long long)total);
	bc_log_set(log_sink, NULL, BC_LOG_ERR);
	rec_register();
	if (bc_loop_new(&loop, 256) < 0) {
		fprintf(stderr, "cannot create the loop\n");
		return 1;
	}
	for (i = 0; i < NRUNS; i++)
		run_one(&runs[i], seed * 1000003 + i, total * runs[i].share / 100);
	bc_loop_free(loop);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%.1f s; %llu reads checked; digest %016llx\n",
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
	       (unsigned long long)reads_checked, (unsigned long long)digest);
	CHECK(requests_total >= total, "only %llu requests", (unsigned long long)requests_total);
	CHECK(violations == 0, "%llu violations (seed %llu)", (unsigned long long)violations,
	      (unsigned long long)seed);
	printf("checked: %llu requests, %llu sectors, %llu violations\n",
	       (unsigned long long)requests_total, (unsigned long long)sectors_checked,
	       (unsigned long long)violations);
	return t_finish("concurrency");
}
