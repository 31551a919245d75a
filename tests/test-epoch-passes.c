/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Writeback of segments that span client FLUSHes.  On persistent memory,
 * and on disks of format v4, a FLUSH ends a round of the open segment
 * instead of sealing it, so one segment holds the writes of several FLUSH
 * epochs.
 * Writeback must still keep the origin alone a state the client's FLUSH
 * history allows at every moment: complete up to some epoch k, plus any
 * subset of epoch k+1.  It takes such a segment one epoch per pass, each
 * flushed on the origin and recorded in the superblock before the next.
 *
 * The history is built so that writing the segment's blocks in address
 * order (one unordered batch) passes through a forbidden state at once:
 * later epochs write lower addresses.  Writeback runs one origin write at
 * a time (writeback_inflight 1) to a recording origin (recdev.h: an IO
 * completes in a later loop round, its data reaches the image then), and
 * the origin image is checked after every loop round, so every state it
 * passes through.  Every case runs with the cache on persistent memory
 * (pmem:) and on a file (the disk log, format v4).  Cases:
 *  - ordered (the default): every state is allowed, 3 passes, the
 *    segment read from the cache once (the later passes use that image);
 *  - a crash after the second pass: recovery reads the epochs from the
 *    round blocks and the superblock, replays the first two epochs as
 *    clean, and writeback writes only the third;
 *  - negative control, writeback_ordered 0 (one batch across FLUSHes):
 *    the checker must see a forbidden state;
 *  - 40 random histories, up to 4 origin writes in flight, each with a
 *    kill at a random moment of its drain (random_run below).
 * With the passes disabled (the whole segment as one batch) the fixed
 * ordered case and most random seeds fail.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "blkcache/log.h"
#include "engine/engine.h"
#include "recdev.h"
#include "testutil.h"

#define B 4096ull
#define MAXE 8
#define MAXW 12

static bool on_pmem;        /* this run's cache: pmem:FILE, or FILE (the disk log) */
static char pmem_path[600];
static struct rec_img *oimg; /* the origin ("rec:origin") */

/* The history: epoch k (1-based) writes blocks hist[k - 1][..] with
 * version k; blocks[]: every block it touches. */
static unsigned nepoch, hist_n[MAXE], nblk;
static uint64_t hist[MAXE][MAXW], blocks[MAXE * MAXW];

static void add_write(unsigned k, uint64_t blk)
{
	unsigned i;

	hist[k - 1][hist_n[k - 1]++] = blk;
	for (i = 0; i < nblk && blocks[i] != blk; i++)
		;
	if (i == nblk)
		blocks[nblk++] = blk;
}

/* Later epochs write lower addresses: one unordered batch in address
 * order passes through a forbidden state at once. */
static void fixed_history(void)
{
	memset(hist_n, 0, sizeof(hist_n));
	nblk = 0;
	nepoch = 3;
	add_write(1, 100), add_write(1, 101), add_write(1, 102);
	add_write(2, 50), add_write(2, 100);
	add_write(3, 10), add_write(3, 101);
}

static void fresh(void)
{
	struct bc_format_config f = { 0 };
	char why[512];

	t_engine_fresh(32ull << 20, 1ull << 20, 256u << 10);
	if (oimg) {
		rec_detach(0);
		rec_img_free(oimg);
	}
	oimg = rec_img_new((16ull << 20) + B);
	rec_register();
	rec_attach_mode(0, "origin", oimg, REC_RECORD);
	snprintf(pmem_path, sizeof(pmem_path), "pmem:%s", t_cache_path);
	f.cache_path = on_pmem ? pmem_path : t_cache_path;
	f.origin_path = "rec:origin";
	f.devices = rec_devices();
	f.segment_size = 256u << 10;
	f.version = 4;
	f.force = true;
	CHECK(bc_cache_format(&f, why, sizeof(why)) == 0, "format on %s: %s", f.cache_path, why);
	t_cfg.cache_path = f.cache_path;
	t_cfg.origin_path = "rec:origin";
	t_cfg.devices = rec_devices();
}

static void set(struct bc_engine *e, const char *name, uint64_t v)
{
	char why[256];

	CHECK(bc_engine_set(e, name, v, why, sizeof(why)) == 0, "%s: %s", name, why);
}

/* Version of @blk written in epoch @k (1-based), or 0. */
static unsigned written_in(unsigned k, uint64_t blk)
{
	unsigned i;

	for (i = 0; k >= 1 && k <= nepoch && i < hist_n[k - 1]; i++)
		if (hist[k - 1][i] == blk)
			return k;
	return 0;
}

/* Version of @blk once epochs 1..k are all applied (0: never written). */
static unsigned through(unsigned k, uint64_t blk)
{
	unsigned v = 0, j;

	for (j = 1; j <= k; j++)
		if (written_in(j, blk))
			v = j;
	return v;
}

/* The version the origin holds in @blk: 0 (zeroes), 1..nepoch, or -1. */
static int origin_ver(uint64_t blk)
{
	static char buf[B];
	char zero[B] = { 0 };
	unsigned v;

	rec_img_read(oimg, blk * B, buf, B);
	if (!memcmp(buf, zero, B))
		return 0;
	for (v = 1; v <= nepoch; v++)
		if (!t_verify(buf, B, blk * B, v))
			return (int)v;
	return -1;
}

/* Is the origin a state the history allows: all of epochs 1..k and a
 * subset of epoch k+1, for some k? */
static bool origin_allowed(char *state, size_t len)
{
	int v[MAXE * MAXW];
	unsigned k, i, n = 0;

	for (i = 0; i < nblk; i++) {
		v[i] = origin_ver(blocks[i]);
		n += (unsigned)snprintf(state + n, len - n, "%s%llu=%d", i ? " " : "",
					(unsigned long long)blocks[i], v[i]);
	}
	for (k = 0; k <= nepoch; k++) {
		for (i = 0; i < nblk; i++)
			if (v[i] != (int)through(k, blocks[i]) &&
			    (!written_in(k + 1, blocks[i]) || v[i] != (int)(k + 1)))
				break;
		if (i == nblk)
			return true;
	}
	return false;
}

static void write_history(struct bc_engine *e, char *buf)
{
	unsigned k, i;

	for (k = 1; k <= nepoch; k++) {
		for (i = 0; i < hist_n[k - 1]; i++) {
			uint64_t blk = hist[k - 1][i];

			t_fill(buf, B, blk * B, k);
			CHECK(t_io(t_loop, bc_engine_target(e), BC_OP_WRITE, 0, blk * B, B, buf) == 0,
			      "epoch %u: write block %llu", k, (unsigned long long)blk);
		}
		CHECK(t_io(t_loop, bc_engine_target(e), BC_OP_FLUSH, 0, 0, 0, NULL) == 0, "FLUSH %u", k);
	}
}

static int drain_done;

static void drained(void *arg, int res)
{
	*(int *)arg = res == 0 ? 1 : -1;
}

/* Called after loop round @round of a checked drain. */
typedef void round_hook_fn(void *arg, unsigned round);

/*
 * Drain, checking the origin after every loop round (and calling @hook, if
 * any); stop early once @stop_batches batches (passes) are flushed on the
 * origin (0: run to the end; the next pass may have started).
 * Returns the forbidden states seen.
 */
static unsigned drain_hooked(struct bc_engine *e, uint64_t stop_batches, const char *what,
			     round_hook_fn *hook, void *arg)
{
	struct bc_engine_stats st;
	char state[256];
	unsigned bad = 0, iter;

	drain_done = 0;
	CHECK(bc_engine_drain(e, drained, &drain_done) == 0, "%s: drain starts", what);
	for (iter = 0; iter < 100000 && !drain_done; iter++) {
		bc_loop_run_once(t_loop, 10);
		if (!origin_allowed(state, sizeof(state)) && bad++ == 0)
			printf("%s: a state the FLUSH history forbids: %s\n", what, state);
		if (hook)
			hook(arg, iter);

		bc_engine_get_stats(e, &st);
		if (stop_batches && st.writeback_batches >= stop_batches && st.dirty_blocks <= 2)
			return bad; /* recorded in the superblock: its blocks are clean */
	}
	CHECK(drain_done == 1, "%s: the drain finished (%d after %u iterations)", what, drain_done, iter);
	return bad;
}

static unsigned drain_checked(struct bc_engine *e, uint64_t stop_batches, const char *what)
{
	return drain_hooked(e, stop_batches, what, NULL, NULL);
}

static void check_final(struct bc_engine *e, char *buf, const char *what)
{
	unsigned i;

	for (i = 0; i < nblk; i++) {
		CHECK(origin_ver(blocks[i]) == (int)through(nepoch, blocks[i]),
		      "%s: origin block %llu holds version %d, want %u", what,
		      (unsigned long long)blocks[i], origin_ver(blocks[i]), through(nepoch, blocks[i]));
		CHECK(t_io(t_loop, bc_engine_target(e), BC_OP_READ, 0, blocks[i] * B, B, buf) == 0 &&
		      t_verify(buf, B, blocks[i] * B, through(nepoch, blocks[i])) == 0,
		      "%s: block %llu reads its last version", what, (unsigned long long)blocks[i]);
	}
}

/* A fresh engine holding the history (@fixed: fixed_history()'s, else the
 * one set up), writeback paused. */
static struct bc_engine *start_with(char *buf, int ordered, unsigned inflight, bool fixed)
{
	struct bc_engine *e;
	struct bc_engine_stats st;

	if (fixed)
		fixed_history();
	fresh();
	e = t_engine_open();
	CHECK(e->log.direct == on_pmem, "the %s log is in use", on_pmem ? "pmem" : "disk");
	set(e, "writeback_paused", 1);
	set(e, "writeback_inflight", inflight);
	set(e, "writeback_ordered", (uint64_t)ordered);
	write_history(e, buf);
	if (!fixed)
		return e;
	bc_engine_get_stats(e, &st);
	CHECK(st.segments_written == 0 && e->log.open && e->log.open->last_epoch == e->log.open->epoch + 2,
	      "one open segment holds the 3 epochs (%llu sealed; epochs %llu..%llu)",
	      (unsigned long long)st.segments_written,
	      (unsigned long long)(e->log.open ? e->log.open->epoch : 0),
	      (unsigned long long)(e->log.open ? e->log.open->last_epoch : 0));
	return e;
}

static struct bc_engine *start(char *buf, int ordered)
{
	return start_with(buf, ordered, 1, true);
}

static void ordered(char *buf)
{
	struct bc_engine *e = start(buf, 1);
	struct bc_engine_stats st;
	unsigned bad = drain_checked(e, 0, "ordered");

	CHECK(bad == 0, "ordered: %u forbidden states on the origin", bad);
	bc_engine_get_stats(e, &st);
	CHECK(st.writeback_batches == nepoch, "ordered: one pass per epoch (%llu batches)",
	      (unsigned long long)st.writeback_batches);
	CHECK(st.writeback_reads_saved == nepoch - 1,
	      "ordered: the segment read once for its %u passes (%llu reads saved)", nepoch,
	      (unsigned long long)st.writeback_reads_saved);
	CHECK(st.writeback_blocks == 7, "ordered: every version written back, superseded ones too "
	      "(%llu blocks)", (unsigned long long)st.writeback_blocks);
	check_final(e, buf, "ordered");
	CHECK(bc_engine_close(e) == 0, "close");
}

/* Crash once the second pass is recorded: the cache file and the origin
 * image as they are then (the third pass may have an origin write in
 * flight: not on the image yet, lost as in a crash). */
static void crash_between_passes(char *buf)
{
	struct bc_engine *e = start(buf, 1);
	struct bc_engine_stats st;
	unsigned bad = drain_checked(e, 2, "crash");
	char state[256], saved[700];
	struct rec_img *at_crash;
	unsigned i;

	CHECK(bad == 0, "crash: %u forbidden states before the crash", bad);
	bc_engine_get_stats(e, &st);
	CHECK(st.writeback_batches == 2 && st.dirty_blocks == 2,
	      "crash: two passes recorded, epoch 3's 2 blocks dirty (%llu batches, %llu dirty)",
	      (unsigned long long)st.writeback_batches, (unsigned long long)st.dirty_blocks);
	snprintf(saved, sizeof(saved), "%s.crash", t_cache_path);
	CHECK(t_copy_file(t_cache_path, saved) == 0, "crash: copy the cache file");
	at_crash = rec_img_copy(oimg);
	CHECK(origin_allowed(state, sizeof(state)), "crash: the origin at the crash: %s", state);
	for (i = 0; i < 100000 && !drain_done; i++)
		bc_loop_run_once(t_loop, 10);
	CHECK(drain_done == 1 && bc_engine_close(e) == 0, "crash: the engine itself finishes");

	/* The machine as the crash left it. */
	CHECK(rename(saved, t_cache_path) == 0, "crash: the cache file at the crash");
	rec_detach(0);
	rec_img_free(oimg);
	oimg = at_crash;
	rec_attach_mode(0, "origin", oimg, REC_RECORD);
	for (i = 0; i < nblk; i++)
		CHECK(written_in(3, blocks[i]) || origin_ver(blocks[i]) == (int)through(2, blocks[i]),
		      "crash: origin block %llu holds epoch 2's state (%d)", (unsigned long long)blocks[i],
		      origin_ver(blocks[i]));
	e = t_engine_open();
	set(e, "writeback_inflight", 1);
	bc_engine_get_stats(e, &st);
	CHECK(st.dirty_blocks == 2, "crash: recovery replays epochs 1-2 as written back (%llu dirty)",
	      (unsigned long long)st.dirty_blocks);
	bad = drain_checked(e, 0, "crash: after recovery");
	CHECK(bad == 0, "crash: %u forbidden states after recovery", bad);
	bc_engine_get_stats(e, &st);
	CHECK(st.writeback_blocks == 2, "crash: only epoch 3 written back after recovery (%llu blocks)",
	      (unsigned long long)st.writeback_blocks);
	check_final(e, buf, "crash");
	CHECK(bc_engine_close(e) == 0, "close");
	e = t_engine_open();
	check_final(e, buf, "crash, reopened");
	CHECK(bc_engine_close(e) == 0, "close");
}

static void negative_control(char *buf)
{
	struct bc_engine *e = start(buf, 0);
	unsigned bad = drain_checked(e, 0, "unordered (negative control)");

	CHECK(bad > 0, "negative control: one unordered batch across FLUSHes must pass through a "
	      "forbidden state (the checker would miss the bug otherwise)");
	check_final(e, buf, "unordered");
	CHECK(bc_engine_close(e) == 0, "close");
}

static void logfn(void *arg, enum bc_log_level level, const char *msg)
{
	(void)arg;
	(void)level;
	fprintf(stderr, "%s\n", msg);
}

/*
 * Random histories (2-7 epochs of 1-12 writes over 40 blocks: one or two
 * segments, blocks overwritten within and across epochs), 1-4 origin
 * writes in flight completing in random order; every origin state during
 * the drain must be allowed.  At a random loop round the cache file and
 * the origin image are kept as a killed process would leave them; after
 * the original drain finished, the engine starts again from that image:
 * the origin then must be allowed, every state of the new drain too, and
 * it must end with the whole history.
 */
/* A random run's crash: the cache file and the origin image at one round,
 * as a process killed then leaves them (the mapping's stores are in the
 * page cache). */
struct crash_at {
	unsigned round;
	const char *what;
	char saved[700];
	struct rec_img *img;
};

static void crash_hook(void *arg, unsigned round)
{
	struct crash_at *c = arg;

	if (round != c->round)
		return;
	CHECK(t_copy_file(t_cache_path, c->saved) == 0, "%s: copy the cache file", c->what);
	c->img = rec_img_copy(oimg);
}

static void random_run(char *buf, unsigned seed, unsigned *crashes)
{
	uint64_t rng = seed * 0x9e3779b97f4a7c15ull + 1;
	unsigned k, i, bad;
	struct crash_at crash = {0};
	char state[512], what[64];
	struct bc_engine *e;

	memset(hist_n, 0, sizeof(hist_n));
	nblk = 0;
	nepoch = 2 + (unsigned)t_rnd(&rng, 6);
	for (k = 1; k <= nepoch; k++)
		for (i = 1 + (unsigned)t_rnd(&rng, MAXW); i > 0; i--)
			add_write(k, t_rnd(&rng, 40));
	e = start_with(buf, 1, 1 + (unsigned)t_rnd(&rng, 4), false);
	crash.round = 1 + (unsigned)t_rnd(&rng, 30);
	crash.what = what;
	snprintf(crash.saved, sizeof(crash.saved), "%s.crash", t_cache_path);
	snprintf(what, sizeof(what), "seed %u (%u epochs)", seed, nepoch);
	bad = drain_hooked(e, 0, what, crash_hook, &crash);
	CHECK(bad == 0, "%s: %u forbidden states", what, bad);
	check_final(e, buf, what);
	CHECK(bc_engine_close(e) == 0, "%s: close", what);
	if (!crash.img)
		return; /* drained before that round */
	(*crashes)++;
	CHECK(rename(crash.saved, t_cache_path) == 0, "%s: the cache file at the crash", what);
	rec_detach(0);
	rec_img_free(oimg);
	oimg = crash.img;
	rec_attach_mode(0, "origin", oimg, REC_RECORD);
	CHECK(origin_allowed(state, sizeof(state)), "%s: the origin at the crash: %s", what, state);
	e = t_engine_open();
	bad = drain_checked(e, 0, what);
	CHECK(bad == 0, "%s: %u forbidden states after recovery", what, bad);
	check_final(e, buf, what);
	CHECK(bc_engine_close(e) == 0, "%s: close after recovery", what);
}

int main(void)
{
	char *buf = t_alloc(B);
	unsigned seed, crashes = 0;

	bc_log_set(logfn, NULL, BC_LOG_ERR);
	rec_seed(7);
	rec_set_spread(3); /* IOs complete in random rounds: states within a pass show */

	for (int pm = 1; pm >= 0; pm--) {
		on_pmem = pm;
		crashes = 0;
		ordered(buf);
		crash_between_passes(buf);
		negative_control(buf);
		for (seed = 1; seed <= 40; seed++)
			random_run(buf, seed, &crashes);
		CHECK(crashes >= 10, "%s: only %u of 40 random runs crashed before their drain finished",
		      pm ? "pmem" : "disk", crashes);
		printf("%s: 40 random histories drained, %u of them crashed at a random round and "
		       "recovered\n", pm ? "pmem" : "disk", crashes);
	}
	free(buf);
	rec_detach(0);
	rec_img_free(oimg);
	rec_log_reset();
	t_engine_fixture_done();
	t_cleanup();
	return t_finish("epoch passes");
}
