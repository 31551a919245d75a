/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Power-cut simulator and model checker.
 *
 * Each workload runs the engine in process on recording in-memory devices
 * (tests/recdev.c) that log every device write, discard, zero and flush in
 * one global order with the times of submission and completion, and
 * complete IO out of order after random delays.  The client requests
 * (overwrites, partial-sector writes, FUA writes, FLUSH, DISCARD,
 * WRITE_ZEROES, reads, several in flight) are logged in the same order.
 * Writeback runs all along (low watermark) and the ring wraps many times.
 *
 * Then the record is cut at every device flush completion and at random
 * points in between.  For a cut, everything durable (a write completed
 * before a flush that was submitted after it and completed before the
 * cut) is on the images; every other write submitted before the cut may or
 * may not be, independently, and one may be torn.  A new engine recovers
 * each image and the whole export is read back and checked sector by
 * sector against the model (tests/powercut-model.c): a sector holds the
 * value of the newest request acknowledged before the last acknowledged
 * FLUSH was submitted (or of an acknowledged FUA request), or of a later
 * request submitted before the cut; never an older value, never garbage,
 * never another sector's data; recovery must succeed.  Every fifth image
 * then lives on: more writes (partial ones merge with recovered blocks) and
 * a FLUSH, another crash, and a second recovery must read exactly what the
 * first one did plus the new writes (stale segments beyond the recovered
 * end of the log must never come back).  Reads during the workload are
 * checked too, and any error the engine logs counts as a violation.
 *
 * Deterministic for a seed: the devices complete IO in an order drawn from
 * it, writeback is driven by watermarks (no idle timer) and the FLUSH
 * batching deadline is long; when nothing is in flight and the engine
 * waits for that deadline, the workload sends a FLUSH instead.
 *
 * Environment: BLKCACHE_POWERCUT_SEED (seeds, comma-separated, default 1,3),
 * BLKCACHE_POWERCUT_CUTS (cut points per seed, default 1200), BLKCACHE_POWERCUT_BREAK (self-test of
 * the checker: 1 loses some durable cache writes, 2 makes every
 * acknowledged write mandatory; both must report violations).
 */
#include <errno.h>
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

static const struct pc_wl workloads[] = {
	{
		.name = "mixed", .cache_size = 10 * MiB, .origin_size = 16 * MiB + 4 * KiB,
		.seg_size = 256 << 10, .nr_buffers = 0, .write_bytes = 36 * MiB, .qd_max = 16,
		.p_flush = 25, .p_fua = 30, .p_discard = 30, .p_zeroes = 30, .p_read = 150,
		.p_hot = 30, .p_large = 4, .p_partial = 40, .spread = 2,
		.dirty_high = 10, .dirty_low = 0, .batch = 4, .inflight = 16, .ordered = 1,
		.reappend = 25, .promote_hits = 1, .gap = 8,
	},
	{
		.name = "small-sync", .cache_size = 8 * MiB, .origin_size = 16 * MiB + 4 * KiB,
		.seg_size = 256 << 10, .nr_buffers = 4, .write_bytes = 20 * MiB, .qd_max = 8,
		.p_flush = 60, .p_fua = 80, .p_discard = 20, .p_zeroes = 40, .p_read = 40,
		.p_hot = 50, .p_large = 1, .p_partial = 70, .spread = 3,
		.dirty_high = 1, .dirty_low = 0, .batch = 1, .inflight = 4, .ordered = 1,
		.reappend = 50, .promote_hits = 1,
	},
	{
		.name = "large-unordered", .cache_size = 12 * MiB, .origin_size = 16 * MiB + 4 * KiB,
		.seg_size = 256 << 10, .nr_buffers = 8, .write_bytes = 48 * MiB, .qd_max = 32,
		.p_flush = 15, .p_fua = 15, .p_discard = 40, .p_zeroes = 30, .p_read = 100,
		.p_hot = 20, .p_large = 15, .p_partial = 30, .spread = 4,
		.dirty_high = 20, .dirty_low = 5, .batch = 16, .inflight = 64, .ordered = 0,
		.reappend = 0, .promote_hits = 2, .gap = 64,
	},
	{
		/* Few FLUSHes: writes are acknowledged by writes of the open
		 * segment that leave it open (log/openwrite.c). */
		.name = "written-acks", .cache_size = 10 * MiB, .origin_size = 16 * MiB + 4 * KiB,
		.seg_size = 256 << 10, .nr_buffers = 4, .write_bytes = 24 * MiB, .qd_max = 16,
		.p_flush = 5, .p_fua = 10, .p_discard = 30, .p_zeroes = 30, .p_read = 100,
		.p_hot = 40, .p_large = 2, .p_partial = 40, .spread = 3,
		.dirty_high = 10, .dirty_low = 0, .batch = 4, .inflight = 16, .ordered = 1,
		.reappend = 25, .promote_hits = 1, .gap = 8, .written_acks = true,
	},
};
#define NWL (sizeof(workloads) / sizeof(workloads[0]))

struct wl_state {
	struct pc_run *run;
	struct bc_engine *e;
	uint64_t rng;
	uint64_t written, hot_off;
	unsigned inflight, qd, since_qd;
	uint64_t acked;          /* data requests acknowledged */
	int errors;
};

struct wl_req {
	struct bc_request r;
	struct wl_state *w;
	size_t id;
	void *buf;
};

static uint64_t rnd(struct wl_state *w, uint64_t n)
{
	return n ? pc_rand(&w->rng) % n : 0;
}

static void req_done(struct bc_request *r, int res)
{
	struct wl_req *q = r->priv;
	struct wl_state *w = q->w;
	struct pc_op *o = &w->run->ops[q->id];
	uint64_t i, dummy;

	o->ack = rec_clock_tick();
	o->result = res;
	if (o->op != BC_OP_FLUSH)
		w->acked++;
	if (res) {
		fprintf(stderr, "FAIL: request #%zu %s %llu+%llu failed: %s\n", q->id, pc_op_name(o->op),
			(unsigned long long)o->off, (unsigned long long)o->len, strerror(-res));
		w->errors++;
	} else if (o->op == BC_OP_READ) {
		o->seen = malloc(o->len / PC_SECTOR * sizeof(uint32_t));
		if (!o->seen)
			exit(1);
		for (i = 0; i < o->len / PC_SECTOR; i++)
			o->seen[i] = pc_decode_sector((char *)q->buf + i * PC_SECTOR,
						      o->off / PC_SECTOR + i, &dummy);
	}
	free(q->buf);
	free(q);
	w->inflight--;
}

/* Where a range of *@len bytes goes (in the hot region or anywhere);
 * shortened to fit. */
static uint64_t place(struct wl_state *w, uint64_t *len, uint64_t align, bool hot)
{
	uint64_t size = w->run->export_size, lo = 0, span = size;

	if (hot) {
		lo = w->hot_off;
		span = 256 * KiB;
	}
	if (*len > span)
		*len = span;
	return lo + rnd(w, (span - *len) / align + 1) * align;
}

static void submit_op(struct wl_state *w, uint8_t op, bool fua, uint64_t off, uint64_t len)
{
	struct pc_run *run = w->run;
	struct wl_req *q = calloc(1, sizeof(*q));
	struct pc_op *o;
	uint64_t i;

	if (!q)
		exit(1);
	if (run->nops == run->capops) {
		run->capops = run->capops ? run->capops * 2 : 4096;
		run->ops = realloc(run->ops, run->capops * sizeof(*run->ops));
		if (!run->ops)
			exit(1);
		if (run->nops == 0)
			memset(&run->ops[run->nops++], 0, sizeof(*run->ops));
	}
	q->id = run->nops++;
	q->w = w;
	o = &run->ops[q->id];
	memset(o, 0, sizeof(*o));
	o->op = op;
	o->fua = fua;
	o->off = off;
	o->len = len;
	o->ack = REC_NEVER;
	if (op == BC_OP_WRITE || op == BC_OP_READ)
		q->buf = t_alloc(len ? len : 512);
	if (op == BC_OP_WRITE)
		for (i = 0; i < len / PC_SECTOR; i++) {
			uint64_t s = off / PC_SECTOR + i;

			pc_fill_sector((char *)q->buf + i * PC_SECTOR, s, (uint32_t)q->id, ++run->gen[s]);
		}
	if (op == BC_OP_WRITE || op == BC_OP_WRITE_ZEROES)
		w->written += len;
	q->r.op = op;
	q->r.flags = fua ? BC_REQ_FUA : 0;
	q->r.offset = off;
	q->r.length = len;
	q->r.buf = q->buf;
	q->r.done = req_done;
	q->r.priv = q;
	w->inflight++;
	o->submit = rec_clock_tick();
	bc_target_submit(bc_engine_target(w->e), &q->r);
}

static void issue(struct wl_state *w)
{
	const struct pc_wl *wl = w->run->wl;
	uint64_t x = rnd(w, 1000), len, off;
	bool hot = rnd(w, 100) < wl->p_hot, fua = false;
	uint8_t op;

	if (++w->since_qd >= 64) {
		w->since_qd = 0;
		w->qd = 1 + (unsigned)rnd(w, wl->qd_max);
	}
	if (x < wl->p_flush) {
		submit_op(w, BC_OP_FLUSH, false, 0, 0);
		return;
	}
	x -= wl->p_flush;
	if (x < wl->p_discard) {
		op = BC_OP_DISCARD;
		if (rnd(w, 5) == 0) {
			len = (1 + rnd(w, 64)) * PC_SECTOR;
			off = place(w, &len, PC_SECTOR, hot);
		} else {
			len = (1 + rnd(w, rnd(w, 8) ? 64 : 512)) * 4 * KiB;
			off = place(w, &len, 4 * KiB, hot);
		}
	} else if (x - wl->p_discard < wl->p_zeroes) {
		op = BC_OP_WRITE_ZEROES;
		fua = rnd(w, 5) == 0;
		if (rnd(w, 2)) {
			len = (1 + rnd(w, 64)) * PC_SECTOR;
			off = place(w, &len, PC_SECTOR, hot);
		} else {
			len = (1 + rnd(w, 128)) * 4 * KiB;
			off = place(w, &len, 4 * KiB, hot);
		}
	} else if (x - wl->p_discard - wl->p_zeroes < wl->p_read) {
		op = BC_OP_READ;
		len = (1 + rnd(w, 32)) * (rnd(w, 2) ? PC_SECTOR : 4 * KiB);
		off = place(w, &len, rnd(w, 2) ? PC_SECTOR : 4 * KiB, hot || rnd(w, 2));
	} else {
		op = BC_OP_WRITE;
		fua = x - wl->p_discard - wl->p_zeroes - wl->p_read < wl->p_fua;
		if (rnd(w, 100) < wl->p_large) {
			len = (64 + rnd(w, 449)) * KiB;
			off = place(w, &len, 4 * KiB, false);
		} else if (rnd(w, 100) < wl->p_partial) {
			/* Partial blocks: any sector offset, any sector count. */
			len = (1 + rnd(w, rnd(w, 4) ? 16 : 96)) * PC_SECTOR;
			off = place(w, &len, PC_SECTOR, hot);
		} else {
			len = (1 + rnd(w, 16)) * 4 * KiB;
			off = place(w, &len, 4 * KiB, hot);
		}
	}
	submit_op(w, op, fua, off, len);
}

static void set_tunable(struct bc_engine *e, const char *name, uint64_t v)
{
	char why[256];

	if (bc_engine_set(e, name, v, why, sizeof(why))) {
		fprintf(stderr, "FAIL: set %s=%llu: %s\n", name, (unsigned long long)v, why);
		exit(1);
	}
}

/* Fresh recording devices, formatted, recorded from here on, and the
 * engine opened on them. */
static int open_on_recording_devs(struct wl_state *w, const struct pc_wl *wl,
				  struct rec_img *live[2])
{
	struct bc_format_config f = { .cache_path = "rec:cache", .origin_path = "rec:origin",
				      .devices = rec_devices(),
				      .segment_size = wl->seg_size, .force = true };
	struct bc_engine_config cfg = { .cache_path = "rec:cache", .origin_path = "rec:origin",
					.devices = rec_devices(),
					.nr_buffers = wl->nr_buffers,
					.flush_deadline_us = 10000000,
					.written_acks = wl->written_acks };
	struct pc_run *run = w->run;
	char why[512];

	rec_log_reset();
	rec_seed(run->seed);
	rec_set_spread(wl->spread);
	live[0] = rec_img_new(wl->cache_size);
	live[1] = rec_img_new(wl->origin_size);
	rec_attach(0, "cache", live[0], false);
	rec_attach(1, "origin", live[1], false);
	if (bc_cache_format(&f, why, sizeof(why))) {
		fprintf(stderr, "FAIL: format: %s\n", why);
		return -1;
	}
	/* Recording starts on the formatted (flushed) devices. */
	run->base[0] = rec_img_copy(live[0]);
	run->base[1] = rec_img_copy(live[1]);
	rec_attach(0, "cache", live[0], true);
	rec_attach(1, "origin", live[1], true);
	if (bc_engine_open(&w->e, pc_loop, &cfg, why, sizeof(why))) {
		fprintf(stderr, "FAIL: open: %s\n", why);
		return -1;
	}
	return 0;
}

static void set_workload_tunables(struct bc_engine *e, const struct pc_wl *wl)
{
	set_tunable(e, "writeback_idle_ms", 0);
	set_tunable(e, "dirty_low", wl->dirty_low);
	set_tunable(e, "dirty_high", wl->dirty_high);
	set_tunable(e, "writeback_batch", wl->batch);
	set_tunable(e, "writeback_inflight", wl->inflight);
	set_tunable(e, "writeback_ordered", wl->ordered);
	set_tunable(e, "writeback_gap", wl->gap);
	set_tunable(e, "reappend_percent", wl->reappend);
	set_tunable(e, "promote_hits", wl->promote_hits);
	set_tunable(e, "sequential_cutoff", 0);
}

/* The engine made no progress: say where it stands and what is in flight. */
static void report_stall(const struct wl_state *w)
{
	const struct pc_run *run = w->run;
	struct bc_engine *e = w->e;

	fprintf(stderr, "FAIL: the engine makes no progress with %u requests in flight "
		"(head %llu tail %llu written %llu durable %llu wb %llu, free bufs %u, "
		"waitq %d, merge %d, flushq %d, wb stage idle %d)\n", w->inflight,
		(unsigned long long)e->log.head_seq, (unsigned long long)e->log.tail_seq,
		(unsigned long long)e->log.written_seq, (unsigned long long)e->log.durable_seq,
		(unsigned long long)e->log.wb_seq, e->log.free_nbufs, !!e->wr.waitq.head,
		e->wr.merge_busy, !!e->log.flushq.head, bc_wb_idle(e));
	for (size_t i = 1; i < run->nops; i++)
		if (run->ops[i].ack == REC_NEVER)
			fprintf(stderr, "  in flight: #%zu %s %llu+%llu fua %d\n", i,
				pc_op_name(run->ops[i].op), (unsigned long long)run->ops[i].off,
				(unsigned long long)run->ops[i].len, run->ops[i].fua);
}

/* Issue the workload's requests until all are written and acknowledged. */
static int drive_workload(struct wl_state *w, const struct pc_wl *wl)
{
	unsigned quiet = 0;
	uint64_t last_acked = 0;
	int n;

	while (w->written < wl->write_bytes || w->inflight) {
		while (w->written < wl->write_bytes && w->inflight < w->qd)
			issue(w);
		n = bc_loop_run_once(pc_loop, 0);
		if (n < 0)
			return -1;
		if (n || rec_pending())
			continue;
		/* Requests wait for the FLUSH deadline: send a FLUSH (seals). */
		if (w->acked != last_acked) {
			last_acked = w->acked;
			quiet = 0;
		}
		if (++quiet > 1000) {
			report_stall(w);
			return -1;
		}
		w->run->nudges++;
		submit_op(w, BC_OP_FLUSH, false, 0, 0);
	}
	return 0;
}

static void print_run_summary(const struct pc_run *run, const struct pc_wl *wl, uint64_t seed,
			      const struct bc_engine_stats *st)
{
	printf("%s: seed %llu: %zu requests (%llu nudge FLUSHes), %zu device IOs, digest %016llx; "
	       "segments written %llu (ring %llu, %.1f laps; %llu open-segment writes), writeback %llu batches %llu blocks "
	       "(%llu gap fills), "
	       "merge reads %llu, promoted %llu, reappended %llu, cache flushes %llu, origin "
	       "flushes %llu\n", wl->name, (unsigned long long)seed, run->nops - 1,
	       (unsigned long long)run->nudges, rec_log.n, (unsigned long long)rec_log.digest,
	       (unsigned long long)st->segments_written, (unsigned long long)st->segments_total,
	       (double)st->segments_written / (double)st->segments_total,
	       (unsigned long long)st->open_segment_writes, (unsigned long long)st->writeback_batches, (unsigned long long)st->writeback_blocks,
	       (unsigned long long)st->writeback_fills, (unsigned long long)st->merge_reads,
	       (unsigned long long)st->promoted_blocks,
	       (unsigned long long)st->reappended_blocks, (unsigned long long)st->cache_flushes,
	       (unsigned long long)st->origin_flushes);
	/* Overlapping writes in flight make the outcome device-dependent (the
	 * images apply them in submission order): worth knowing, not wrong. */
	if (rec_log.overlaps)
		printf("%s: note: %llu device writes overlapped a write in flight\n", wl->name,
		       (unsigned long long)rec_log.overlaps);
	if (rec_log.modified) {
		fprintf(stderr, "VIOLATION: %s: %llu write buffers changed while in flight\n",
			wl->name, (unsigned long long)rec_log.modified);
		pc_tot.violations += rec_log.modified;
	}
}

/* Run the workload on recording devices; fills @run. */
static int run_workload(struct pc_run *run, const struct pc_wl *wl, uint64_t seed)
{
	struct wl_state w = { .run = run, .rng = seed, .qd = 1 };
	struct rec_img *live[2];
	struct bc_engine_stats st;
	unsigned rounds;
	int n;

	memset(run, 0, sizeof(*run));
	run->wl = wl;
	run->seed = seed;
	if (open_on_recording_devs(&w, wl, live))
		return -1;
	run->export_size = bc_engine_target(w.e)->size;
	run->nsect = run->export_size / PC_SECTOR;
	run->gen = calloc(run->nsect, sizeof(*run->gen));
	w.hot_off = rnd(&w, (run->export_size - 256 * KiB) / (4 * KiB)) * 4 * KiB;
	set_workload_tunables(w.e, wl);
	if (drive_workload(&w, wl))
		return -1;
	/* Let writeback and flushes settle, then drop the engine. */
	for (rounds = 0; rounds < 100000; rounds++) {
		n = bc_loop_run_once(pc_loop, 0);
		if (n <= 0 && !rec_pending())
			break;
	}
	bc_engine_get_stats(w.e, &st);
	bc_engine_free(w.e);
	run->end = rec_clock_now();
	print_run_summary(run, wl, seed, &st);
	rec_detach(0);
	rec_detach(1);
	rec_img_free(live[0]);
	rec_img_free(live[1]);
	return w.errors ? -1 : 0;
}

static void free_run(struct pc_run *run)
{
	size_t i;

	for (i = 1; i < run->nops; i++)
		free(run->ops[i].seen);
	free(run->ops);
	free(run->gen);
	rec_img_free(run->base[0]);
	rec_img_free(run->base[1]);
	pc_model_free(run);
}

/* No device ever fails here: an error the engine logs is a violation. */
static void log_sink(void *arg, enum bc_log_level level, const char *msg)
{
	(void)arg;
	(void)level;
	pc_tot.violations++;
	if (pc_tot.printed++ < 25)
		fprintf(stderr, "VIOLATION: the engine logged an error: %s\n", msg);
}

/* Every workload with @seed; -1 if one could not run. */
static int run_seed(uint64_t seed, unsigned cuts)
{
	unsigned i;

	for (i = 0; i < NWL; i++) {
		struct pc_run run;
		uint64_t wseed = seed * 1000003 + i;

		if (run_workload(&run, &workloads[i], wseed) < 0) {
			free_run(&run);
			return -1;
		}
		pc_model_build(&run);
		pc_check_reads(&run);
		if (workloads[i].written_acks) {
			pc_check_cuts(&run, (cuts + 2 * NWL - 1) / (2 * NWL), wseed ^ 0xc0ffee, false);
			pc_check_cuts(&run, (cuts + 2 * NWL - 1) / (2 * NWL), wseed ^ 0xdead, true);
		} else {
			pc_check_cuts(&run, (cuts + NWL - 1) / NWL, wseed ^ 0xc0ffee, false);
		}
		free_run(&run);
		rec_log_reset();
	}
	return 0;
}

int main(void)
{
	/* Seed 3 found writeback marking blocks clean before the superblock
	 * recording them as written back was durable. */
	const char *s = getenv("BLKCACHE_POWERCUT_SEED"), *c = getenv("BLKCACHE_POWERCUT_CUTS");
	const char *seeds = s ? s : "1,3";
	unsigned cuts = c ? (unsigned)strtoul(c, NULL, 0) : 1200;
	struct timespec t0, t1;
	int failed = 0;
	char *end;

	setvbuf(stdout, NULL, _IOLBF, 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	printf("seeds %s (BLKCACHE_POWERCUT_SEED), %u cut points per seed (BLKCACHE_POWERCUT_CUTS)\n",
	       seeds, cuts);
	bc_log_set(log_sink, NULL, BC_LOG_ERR);
	rec_register();
	if (bc_loop_new(&pc_loop, 256) < 0) {
		fprintf(stderr, "cannot create the loop\n");
		return 1;
	}
	for (; *seeds && !failed; seeds = *end ? end + 1 : end) {
		uint64_t seed = strtoull(seeds, &end, 0);

		if (end == seeds || (*end && *end != ',')) {
			fprintf(stderr, "BLKCACHE_POWERCUT_SEED: expected numbers separated by commas\n");
			return 2;
		}
		failed = run_seed(seed, cuts) < 0;
	}
	bc_loop_free(pc_loop);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%.1f s; %llu images recovered twice; %llu live read sectors checked; %llu recovery "
	       "failures\n", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
	       (unsigned long long)pc_tot.second, (unsigned long long)pc_tot.reads_checked,
	       (unsigned long long)pc_tot.open_failures);
	printf("checked: %llu cut points, %llu images, %llu sectors, %llu violations\n",
	       (unsigned long long)pc_tot.cuts, (unsigned long long)pc_tot.images,
	       (unsigned long long)pc_tot.sectors, (unsigned long long)pc_tot.violations);
	return failed || pc_tot.violations ? 1 : 0;
}
