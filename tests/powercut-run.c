/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The power-cut checker's workload: the engine (or, with several origins,
 * the cache and an engine per origin, opened as serve opens them) in
 * process on recording in-memory devices (tests/recdev.c) that log every
 * device write, discard, zero and flush in one global order with the times
 * of submission and completion, and complete IO out of order after random
 * delays.  The client requests (overwrites, partial-sector writes, FUA
 * writes, FLUSH, DISCARD, WRITE_ZEROES, reads, several in flight, spread
 * over the origins) are logged in the same order.  Writeback runs all
 * along (low watermark) and the rings wrap many times.  Then the record is
 * cut (powercut-cut.c) and checked against the model (powercut-model.c).
 *
 * Deterministic for a seed: the devices complete IO in an order drawn from
 * it, writeback is driven by watermarks (no idle timer) and the FLUSH
 * batching deadline is long; when nothing is in flight and an engine waits
 * for that deadline, the workload sends a FLUSH instead.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blkcache/cache.h"
#include "blkcache/log.h"
#include "blkcache/shards.h"
#include "blkcache/target.h"
#include "cache/shards_internal.h"
#include "engine/engine.h"
#include "powercut.h"
#include "testutil.h"

#define KiB 1024ull

struct wl_state {
	struct pc_run *run;
	struct bc_engine *e[PC_MAXORIGINS]; /* sharded: the shards' engines, one origin */
	struct bc_cache *cache;  /* several origins */
	struct bc_shards *shards; /* one origin, sharded */
	unsigned nengines;
	uint64_t rng;
	uint64_t written;
	unsigned inflight, qd, since_qd;
	unsigned oinflight[PC_MAXORIGINS];
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
	w->oinflight[o->origin]--;
}

/* Where a range of *@len bytes goes in origin @oi (in its hot region or
 * anywhere); shortened to fit. */
static uint64_t place(struct wl_state *w, unsigned oi, uint64_t *len, uint64_t align, bool hot)
{
	uint64_t size = w->run->o[oi].export_size, lo = 0, span = size;

	if (hot) {
		lo = w->run->o[oi].hot_off;
		span = 256 * KiB;
	}
	if (*len > span)
		*len = span;
	return lo + rnd(w, (span - *len) / align + 1) * align;
}

static struct pc_op *new_op(struct pc_run *run, size_t *id)
{
	if (run->nops == run->capops) {
		run->capops = run->capops ? run->capops * 2 : 4096;
		run->ops = realloc(run->ops, run->capops * sizeof(*run->ops));
		if (!run->ops)
			exit(1);
		if (run->nops == 0)
			memset(&run->ops[run->nops++], 0, sizeof(*run->ops));
	}
	*id = run->nops++;
	memset(&run->ops[*id], 0, sizeof(run->ops[*id]));
	return &run->ops[*id];
}

static void submit_op(struct wl_state *w, unsigned oi, uint8_t op, bool fua, uint64_t off,
		      uint64_t len)
{
	struct pc_run *run = w->run;
	struct wl_req *q = calloc(1, sizeof(*q));
	struct pc_op *o;
	uint64_t i;

	if (!q)
		exit(1);
	o = new_op(run, &q->id);
	q->w = w;
	o->op = op;
	o->fua = fua;
	o->origin = (uint8_t)oi;
	o->off = off;
	o->len = len;
	o->ack = REC_NEVER;
	if (op == BC_OP_WRITE || op == BC_OP_READ)
		q->buf = t_alloc(len ? len : 512);
	if (op == BC_OP_WRITE)
		for (i = 0; i < len / PC_SECTOR; i++) {
			uint64_t s = off / PC_SECTOR + i;

			pc_fill_sector((char *)q->buf + i * PC_SECTOR, s, (uint32_t)q->id,
				       ++run->o[oi].gen[s]);
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
	w->oinflight[oi]++;
	o->submit = rec_clock_tick();
	bc_target_submit(w->shards ? bc_shards_target(w->shards) : bc_engine_target(w->e[oi]), &q->r);
}

/* A data request (not a FLUSH) for @x < 1000 - p_flush: its op, range and FUA. */
static uint8_t pick_data(struct wl_state *w, unsigned oi, uint64_t x, bool hot, bool *fua,
			 uint64_t *off, uint64_t *len)
{
	const struct pc_wl *wl = w->run->wl;

	if (x < wl->p_discard) {
		if (rnd(w, 5) == 0) {
			*len = (1 + rnd(w, 64)) * PC_SECTOR;
			*off = place(w, oi, len, PC_SECTOR, hot);
		} else {
			*len = (1 + rnd(w, rnd(w, 8) ? 64 : 512)) * 4 * KiB;
			*off = place(w, oi, len, 4 * KiB, hot);
		}
		return BC_OP_DISCARD;
	}
	if (x - wl->p_discard < wl->p_zeroes) {
		*fua = rnd(w, 5) == 0;
		if (rnd(w, 2)) {
			*len = (1 + rnd(w, 64)) * PC_SECTOR;
			*off = place(w, oi, len, PC_SECTOR, hot);
		} else {
			*len = (1 + rnd(w, 128)) * 4 * KiB;
			*off = place(w, oi, len, 4 * KiB, hot);
		}
		return BC_OP_WRITE_ZEROES;
	}
	if (x - wl->p_discard - wl->p_zeroes < wl->p_read) {
		*len = (1 + rnd(w, 32)) * (rnd(w, 2) ? PC_SECTOR : 4 * KiB);
		*off = place(w, oi, len, rnd(w, 2) ? PC_SECTOR : 4 * KiB, hot || rnd(w, 2));
		return BC_OP_READ;
	}
	*fua = x - wl->p_discard - wl->p_zeroes - wl->p_read < wl->p_fua;
	if (rnd(w, 100) < wl->p_large) {
		*len = (64 + rnd(w, 449)) * KiB;
		*off = place(w, oi, len, 4 * KiB, false);
	} else if (rnd(w, 100) < wl->p_partial) {
		/* Partial blocks: any sector offset, any sector count. */
		*len = (1 + rnd(w, rnd(w, 4) ? 16 : 96)) * PC_SECTOR;
		*off = place(w, oi, len, PC_SECTOR, hot);
	} else {
		*len = (1 + rnd(w, 16)) * 4 * KiB;
		*off = place(w, oi, len, 4 * KiB, hot);
	}
	return BC_OP_WRITE;
}

static void issue(struct wl_state *w)
{
	const struct pc_wl *wl = w->run->wl;
	unsigned oi = w->run->norigins > 1 ? (unsigned)rnd(w, w->run->norigins) : 0;
	uint64_t x = rnd(w, 1000), len = 0, off = 0;
	bool hot = rnd(w, 100) < wl->p_hot, fua = false;
	uint8_t op;

	if (++w->since_qd >= 64) {
		w->since_qd = 0;
		w->qd = 1 + (unsigned)rnd(w, wl->qd_max);
	}
	if (x < wl->p_flush) {
		submit_op(w, oi, BC_OP_FLUSH, false, 0, 0);
		return;
	}
	op = pick_data(w, oi, x - wl->p_flush, hot, &fua, &off, &len);
	submit_op(w, oi, op, fua, off, len);
}

static void set_tunable(struct bc_engine *e, const char *name, uint64_t v)
{
	char why[256];

	if (bc_engine_set(e, name, v, why, sizeof(why))) {
		fprintf(stderr, "FAIL: set %s=%llu: %s\n", name, (unsigned long long)v, why);
		exit(1);
	}
}

static void attach_all(const struct pc_run *run, struct rec_img **live, bool record)
{
	unsigned d;

	for (d = 0; d <= run->norigins; d++)
		rec_attach(d, d == 0 ? "cache" : run->o[d - 1].name[0] ? run->o[d - 1].name : "origin",
			   live[d], record);
}

/* Format the cache alone, then add the origins "a", "b"... */
static int format_multi(struct pc_run *run, const struct pc_wl *wl)
{
	struct bc_format_config f = { .cache_path = "rec:cache", .devices = rec_devices(),
				      .segment_size = wl->seg_size, .force = true };
	char why[512], path[16];
	unsigned oi;

	if (bc_cache_format(&f, why, sizeof(why))) {
		fprintf(stderr, "FAIL: format: %s\n", why);
		return -1;
	}
	for (oi = 0; oi < run->norigins; oi++) {
		struct bc_format_config a = { .cache_path = "rec:cache", .origin_path = path,
					      .devices = rec_devices(), .name = run->o[oi].name,
					      .size_percent = wl->share_percent };

		snprintf(path, sizeof(path), "rec:%s", run->o[oi].name);
		if (bc_origin_add(&a, why, sizeof(why))) {
			fprintf(stderr, "FAIL: origin add %s: %s\n", run->o[oi].name, why);
			return -1;
		}
	}
	return 0;
}

static int open_engines(struct wl_state *w, const struct pc_wl *wl)
{
	struct bc_engine_config cfg = { .cache_path = "rec:cache", .origin_path = "rec:origin",
					.devices = rec_devices(),
					.nr_buffers = wl->nr_buffers,
					.flush_deadline_us = 10000000,
					.written_acks = wl->written_acks };
	struct pc_run *run = w->run;
	char why[512];
	unsigned oi;

	w->nengines = run->norigins;
	if (wl->shards) {
		struct bc_shards_cache_config cc = { .engine = &cfg, .one_thread = true };

		if (bc_shards_open_cache(&w->shards, pc_loop, &cc, why, sizeof(why))) {
			fprintf(stderr, "FAIL: open the shards: %s\n", why);
			return -1;
		}
		w->nengines = bc_shards_count(w->shards);
		for (oi = 0; oi < w->nengines; oi++)
			w->e[oi] = bc_shards_engine(w->shards, oi);
		return 0;
	}
	if (!wl->origins) {
		if (bc_engine_open(&w->e[0], pc_loop, &cfg, why, sizeof(why))) {
			fprintf(stderr, "FAIL: open: %s\n", why);
			return -1;
		}
		return 0;
	}
	cfg.origin_path = NULL;
	if (bc_cache_open(&w->cache, pc_loop, &cfg, why, sizeof(why))) {
		fprintf(stderr, "FAIL: open: %s\n", why);
		return -1;
	}
	for (oi = 0; oi < run->norigins; oi++)
		if (!(w->e[oi] = bc_cache_find(w->cache, run->o[oi].name))) {
			fprintf(stderr, "FAIL: origin %s is not served\n", run->o[oi].name);
			return -1;
		}
	return 0;
}

/* Fresh recording devices, formatted, recorded from here on, and the
 * engines opened on them. */
static int open_on_recording_devs(struct wl_state *w, const struct pc_wl *wl,
				  struct rec_img **live)
{
	struct bc_format_config f = { .cache_path = "rec:cache", .origin_path = "rec:origin",
				      .devices = rec_devices(),
				      .segment_size = wl->seg_size, .force = true,
				      .shards = wl->shards, .stripe_blocks = wl->stripe_blocks,
				      .version = wl->format_version };
	struct pc_run *run = w->run;
	char why[512];
	unsigned d;

	rec_log_reset();
	rec_seed(run->seed);
	rec_set_spread(wl->spread);
	live[0] = rec_img_new(wl->cache_size);
	for (d = 1; d <= run->norigins; d++)
		live[d] = rec_img_new(wl->origin_size);
	attach_all(run, live, false);
	if (wl->origins) {
		if (format_multi(run, wl))
			return -1;
	} else if (bc_cache_format(&f, why, sizeof(why))) {
		fprintf(stderr, "FAIL: format: %s\n", why);
		return -1;
	}
	/* Recording starts on the formatted (flushed) devices. */
	for (d = 0; d <= run->norigins; d++)
		run->base[d] = rec_img_copy(live[d]);
	attach_all(run, live, true);
	return open_engines(w, wl);
}

static void set_workload_tunables(struct bc_engine *e, const struct pc_wl *wl)
{
	bool unordered = pc_break_mode() == 4; /* self-test: batches across FLUSHes */

	set_tunable(e, "writeback_idle_ms", 0);
	set_tunable(e, "dirty_low", wl->dirty_low);
	set_tunable(e, "dirty_high", wl->dirty_high);
	set_tunable(e, "writeback_batch", unordered && wl->batch < 16 ? 16 : wl->batch);
	set_tunable(e, "writeback_inflight", wl->inflight);
	set_tunable(e, "writeback_ordered", unordered ? 0 : wl->ordered);
	set_tunable(e, "writeback_gap", wl->gap);
	set_tunable(e, "reappend_percent", wl->reappend);
	if (wl->carry)
		set_tunable(e, "carry_percent", wl->carry);
	set_tunable(e, "promote_hits", wl->promote_hits);
	set_tunable(e, "sequential_cutoff", 0);
}

/* The engine made no progress: say where it stands and what is in flight. */
static void report_stall(const struct wl_state *w)
{
	const struct pc_run *run = w->run;
	unsigned oi;

	for (oi = 0; oi < w->nengines; oi++) {
		const struct bc_engine *e = w->e[oi];

		fprintf(stderr, "FAIL: the engine %s makes no progress with %u requests in flight "
			"(head %llu tail %llu written %llu durable %llu wb %llu, free bufs %u, "
			"waitq %d, merge %d, flushq %d, wb stage idle %d)\n", run->o[oi].name,
			w->oinflight[oi], (unsigned long long)e->log.head_seq,
			(unsigned long long)e->log.tail_seq, (unsigned long long)e->log.written_seq,
			(unsigned long long)e->log.durable_seq, (unsigned long long)e->log.wb_seq,
			e->log.free_nbufs, !!e->wr.waitq.head, e->wr.merge_busy,
			!!e->log.flushq.head, bc_wb_idle(e));
		if (w->shards)
			fprintf(stderr, "  (shard %u: %llu writeback gate waits, pending epoch %llu)\n",
				oi, (unsigned long long)e->st.writeback_gate_waits,
				(unsigned long long)bc_seglog_pending_epoch(e));
	}
	for (size_t i = 1; i < run->nops; i++)
		if (run->ops[i].ack == REC_NEVER)
			fprintf(stderr, "  in flight: #%zu %s%s %s %llu+%llu fua %d\n", i,
				run->o[run->ops[i].origin].name, run->o[0].name[0] ? ":" : "",
				pc_op_name(run->ops[i].op), (unsigned long long)run->ops[i].off,
				(unsigned long long)run->ops[i].len, run->ops[i].fua);
}

/* Issue the workload's requests until all are written and acknowledged. */
static int drive_workload(struct wl_state *w, const struct pc_wl *wl)
{
	unsigned quiet = 0, oi;
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
		/* Requests wait for the FLUSH deadline: send a FLUSH (seals)
		 * to every origin that has requests in flight. */
		if (w->acked != last_acked) {
			last_acked = w->acked;
			quiet = 0;
		}
		if (++quiet > 1000) {
			report_stall(w);
			return -1;
		}
		for (oi = 0; oi < w->run->norigins; oi++)
			if (w->oinflight[oi]) {
				w->run->nudges++;
				submit_op(w, oi, BC_OP_FLUSH, false, 0, 0);
			}
	}
	return 0;
}

static void print_stats(const char *label, const struct bc_engine_stats *st)
{
	printf("%s: segments written %llu (ring %llu, %.1f laps; %llu open-segment writes), "
	       "writeback %llu batches %llu blocks (%llu gap fills), merge reads %llu, promoted "
	       "%llu, reappended %llu, cache flushes %llu, origin flushes %llu\n", label,
	       (unsigned long long)st->segments_written, (unsigned long long)st->segments_total,
	       (double)st->segments_written / (double)st->segments_total,
	       (unsigned long long)st->open_segment_writes,
	       (unsigned long long)st->writeback_batches, (unsigned long long)st->writeback_blocks,
	       (unsigned long long)st->writeback_fills, (unsigned long long)st->merge_reads,
	       (unsigned long long)st->promoted_blocks, (unsigned long long)st->reappended_blocks,
	       (unsigned long long)st->cache_flushes, (unsigned long long)st->origin_flushes);
}

static void print_run_summary(const struct pc_run *run, const struct pc_wl *wl, uint64_t seed,
			      const struct bc_engine_stats *st)
{
	char label[64];
	unsigned oi;

	if (!wl->origins) {
		printf("%s: seed %llu: %zu requests (%llu nudge FLUSHes), %zu device IOs, digest "
		       "%016llx; segments written %llu (ring %llu, %.1f laps; %llu open-segment "
		       "writes), writeback %llu batches %llu blocks (%llu gap fills), merge reads "
		       "%llu, promoted %llu, reappended %llu, cache flushes %llu, origin flushes "
		       "%llu\n", wl->name, (unsigned long long)seed, run->nops - 1,
		       (unsigned long long)run->nudges, rec_log.n, (unsigned long long)rec_log.digest,
		       (unsigned long long)st->segments_written, (unsigned long long)st->segments_total,
		       (double)st->segments_written / (double)st->segments_total,
		       (unsigned long long)st->open_segment_writes,
		       (unsigned long long)st->writeback_batches,
		       (unsigned long long)st->writeback_blocks,
		       (unsigned long long)st->writeback_fills, (unsigned long long)st->merge_reads,
		       (unsigned long long)st->promoted_blocks,
		       (unsigned long long)st->reappended_blocks,
		       (unsigned long long)st->cache_flushes, (unsigned long long)st->origin_flushes);
	} else {
		printf("%s: seed %llu: %zu requests (%llu nudge FLUSHes) to %u origins, %zu device "
		       "IOs, digest %016llx\n", wl->name, (unsigned long long)seed, run->nops - 1,
		       (unsigned long long)run->nudges, run->norigins, rec_log.n,
		       (unsigned long long)rec_log.digest);
		for (oi = 0; oi < run->norigins; oi++) {
			snprintf(label, sizeof(label), "%s: origin %s", wl->name, run->o[oi].name);
			print_stats(label, &st[oi]);
		}
	}
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

static void init_run(struct pc_run *run, const struct pc_wl *wl, uint64_t seed)
{
	unsigned oi;

	memset(run, 0, sizeof(*run));
	run->wl = wl;
	run->seed = seed;
	run->norigins = wl->origins ? wl->origins : 1;
	for (oi = 0; wl->origins && oi < run->norigins; oi++)
		snprintf(run->o[oi].name, sizeof(run->o[oi].name), "%c", 'a' + oi);
}

/* Let writeback and flushes settle, then drop the engines (one origin: no
 * clean shutdown; several: the cache is closed, after the record's end). */
static void finish_workload(struct wl_state *w, struct bc_engine_stats *st)
{
	struct pc_run *run = w->run;
	unsigned rounds, oi;
	int n;

	for (rounds = 0; rounds < 100000; rounds++) {
		n = bc_loop_run_once(pc_loop, 0);
		if (n <= 0 && !rec_pending())
			break;
	}
	for (oi = 0; oi < w->nengines; oi++)
		bc_engine_get_stats(w->e[oi], &st[oi]);
	run->end = rec_clock_now();
	if (w->cache)
		bc_cache_close(w->cache);
	else if (w->shards)
		bc_shards_crash(w->shards);
	else if (w->e[0])
		bc_engine_free(w->e[0]);
}

int pc_run_workload(struct pc_run *run, const struct pc_wl *wl, uint64_t seed)
{
	struct wl_state w = { .run = run, .rng = seed, .qd = 1 };
	struct rec_img *live[REC_MAXDEV] = { NULL };
	struct bc_engine_stats st[PC_MAXORIGINS];
	unsigned oi, d;

	init_run(run, wl, seed);
	/* (A failure ends the test: what is open stays so.) */
	if (open_on_recording_devs(&w, wl, live))
		return -1;
	for (oi = 0; oi < run->norigins; oi++) {
		struct pc_origin *po = &run->o[oi];

		po->export_size = w.shards ? bc_shards_target(w.shards)->size :
					     bc_engine_target(w.e[oi])->size;
		po->nsect = po->export_size / PC_SECTOR;
		po->gen = calloc(po->nsect, sizeof(*po->gen));
		if (!po->gen)
			exit(1);
		po->hot_off = rnd(&w, (po->export_size - 256 * KiB) / (4 * KiB)) * 4 * KiB;
	}
	for (oi = 0; oi < w.nengines; oi++)
		set_workload_tunables(w.e[oi], wl);
	if (drive_workload(&w, wl))
		return -1;
	finish_workload(&w, st);
	print_run_summary(run, wl, seed, st);
	printf("%s: carried %llu dirty segments forward (%llu blocks)\n", wl->name,
	       (unsigned long long)st[0].carried_segments, (unsigned long long)st[0].carried_blocks);
	if (wl->shards) {
		uint64_t waits = 0;

		for (oi = 0; oi < wl->shards; oi++)
			waits += st[oi].writeback_gate_waits;
		printf("%s: %u shards waited %llu times at the writeback epoch gate\n", wl->name,
		       wl->shards, (unsigned long long)waits);
		if (!waits) {
			fprintf(stderr, "FAIL: %s: no shard waited at the writeback epoch gate: the "
				"workload does not test what it is for\n", wl->name);
			return -1;
		}
	}
	if (wl->carry && !st[0].carried_blocks) {
		fprintf(stderr, "FAIL: %s: no dirty block was carried forward: the workload does not "
			"test what it is for\n", wl->name);
		return -1;
	}
	for (d = 0; d < REC_MAXDEV; d++) {
		rec_detach(d);
		rec_img_free(live[d]);
	}
	return w.errors ? -1 : 0;
}

void pc_free_run(struct pc_run *run)
{
	size_t i;
	unsigned d;

	for (i = 1; i < run->nops; i++)
		free(run->ops[i].seen);
	free(run->ops);
	for (d = 0; d < PC_MAXORIGINS; d++)
		free(run->o[d].gen);
	for (d = 0; d < REC_MAXDEV; d++)
		rec_img_free(run->base[d]);
	pc_model_free(run);
}

/* Every workload with @seed; -1 if one could not run. */
int pc_run_seed(const struct pc_wl *wls, unsigned nwl, uint64_t seed, unsigned cuts)
{
	unsigned i;

	for (i = 0; i < nwl; i++) {
		struct pc_run run;
		uint64_t wseed = seed * 1000003 + i;

		if (pc_run_workload(&run, &wls[i], wseed) < 0) {
			pc_free_run(&run);
			return -1;
		}
		pc_model_build(&run);
		pc_check_reads(&run);
		if (wls[i].written_acks) {
			pc_check_cuts(&run, (cuts + 2 * nwl - 1) / (2 * nwl), wseed ^ 0xc0ffee, false);
			pc_check_cuts(&run, (cuts + 2 * nwl - 1) / (2 * nwl), wseed ^ 0xdead, true);
		} else {
			pc_check_cuts(&run, (cuts + nwl - 1) / nwl, wseed ^ 0xc0ffee, false);
		}
		pc_free_run(&run);
		rec_log_reset();
	}
	return 0;
}

/* No device ever fails here: an error the engine logs is a violation. */
static void log_sink(void *arg, enum bc_log_level level, const char *msg)
{
	(void)arg;
	(void)level;
	if (pc_violation())
		fprintf(stderr, "VIOLATION: the engine logged an error: %s\n", msg);
}

void pc_main_init(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	bc_log_set(log_sink, NULL, BC_LOG_ERR);
	rec_register();
	if (bc_loop_new(&pc_loop, 256) < 0) {
		fprintf(stderr, "cannot create the loop\n");
		exit(1);
	}
}

/* Every seed of the comma-separated list @seeds: 0, 1 (a run failed) or
 * 2 (a malformed list). */
int pc_main_seeds(const struct pc_wl *wls, unsigned nwl, const char *seeds, unsigned cuts)
{
	char *end;

	for (; *seeds; seeds = *end ? end + 1 : end) {
		uint64_t seed = strtoull(seeds, &end, 0);

		if (end == seeds || (*end && *end != ',')) {
			fprintf(stderr, "BLKCACHE_POWERCUT_SEED: expected numbers separated by commas\n");
			return 2;
		}
		if (pc_run_seed(wls, nwl, seed, cuts) < 0)
			return 1;
	}
	return 0;
}

void pc_main_done(double seconds)
{
	printf("%.1f s; %llu images recovered twice; %llu live read sectors checked; %llu recovery "
	       "failures\n", seconds, (unsigned long long)pc_tot.second,
	       (unsigned long long)pc_tot.reads_checked, (unsigned long long)pc_tot.open_failures);
	if (pc_tot.prefix_images)
		printf("origin images checked alone: %llu (%llu behind the cut: a prefix of the FLUSH "
		       "history, not the cut's state)\n", (unsigned long long)pc_tot.prefix_images,
		       (unsigned long long)pc_tot.prefix_mid);
	if (pc_tot.kill_cuts)
		printf("cut points: %llu power cuts, %llu kills\n",
		       (unsigned long long)(pc_tot.cuts - pc_tot.kill_cuts),
		       (unsigned long long)pc_tot.kill_cuts);
	printf("checked: %llu cut points, %llu images, %llu sectors, %llu violations\n",
	       (unsigned long long)pc_tot.cuts, (unsigned long long)pc_tot.images,
	       (unsigned long long)pc_tot.sectors, (unsigned long long)pc_tot.violations);
}

int pc_main(const struct pc_wl *wls, unsigned nwl, const char *title, const char *seeds,
	    unsigned cuts)
{
	const char *s = getenv("BLKCACHE_POWERCUT_SEED"), *c = getenv("BLKCACHE_POWERCUT_CUTS");
	struct timespec t0, t1;
	int ret;

	if (s)
		seeds = s;
	if (c)
		cuts = (unsigned)strtoul(c, NULL, 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pc_main_init();
	printf("%sseeds %s (BLKCACHE_POWERCUT_SEED), %u cut points per seed (BLKCACHE_POWERCUT_CUTS)\n",
	       title, seeds, cuts);
	ret = pc_main_seeds(wls, nwl, seeds, cuts);
	if (ret == 2)
		return 2;
	bc_loop_free(pc_loop);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	pc_main_done((double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return ret || pc_tot.violations ? 1 : 0;
}
