/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The cross-shard writeback epoch gate (docs/shards.md): two shards of one
 * origin on one cache device.  Shard 0 holds epoch E1 and E2 data, shard 1
 * only E1 data.  Driving shard 0 alone (shard 1's loop not run), its drain
 * writes back E1 and then waits at the gate: the origin holds E1 of shard
 * 0 and nothing of E2 -- never a later epoch's write without an earlier
 * one's.  With both loops running, shard 1 is asked to catch up (even with
 * its writeback paused), writes back E1, and shard 0 then finishes E2.
 * After a crash and a reopen, every shard counts epochs from the same
 * number.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blkcache/cache.h"
#include "cache/shards_internal.h"
#include "engine/engine.h"
#include "testutil.h"

#define MiB (1024ull * 1024)
#define B 4096ull
#define STRIPE (64 * 1024) /* 16 blocks: block b is shard (b / 16) % 2's */
#define ORIGIN (16 * MiB)
#define X0 0   /* shard 0 */
#define Y0 32  /* shard 0 */
#define X1 16  /* shard 1 */

static struct bc_loop *host;
static char *cache, *origin;

static int setup(struct bc_engine *e, unsigned i, void *arg)
{
	char why[256];

	(void)i;
	(void)arg;
	return bc_engine_set(e, "writeback_paused", 1, why, sizeof(why));
}

static struct bc_shards *open_set(void)
{
	struct bc_engine_config ec = { .cache_path = cache, .flush_deadline_us = 100 };
	struct bc_shards_cache_config cc = { .engine = &ec, .queue_depth = 64, .setup = setup };
	struct bc_shards *s = NULL;
	char why[512] = "";

	if (bc_shards_open_cache(&s, host, &cc, why, sizeof(why))) {
		fprintf(stderr, "FAIL: bc_shards_open_cache: %s\n", why);
		exit(1);
	}
	return s;
}

static void wr(const struct bc_target *t, uint64_t blk, int v)
{
	uint8_t *buf = t_alloc(B);

	memset(buf, v, B);
	CHECK(t_io(host, t, BC_OP_WRITE, 0, blk * B, B, buf) == 0, "write block %llu", (unsigned long long)blk);
	free(buf);
}

/* The byte the origin file itself holds in block @blk (all bytes alike). */
static int on_origin(uint64_t blk)
{
	uint8_t b = 0xee;
	int fd = open(origin, O_RDONLY);

	if (fd < 0 || pread(fd, &b, 1, (off_t)(blk * B)) != 1)
		b = 0xee;
	if (fd >= 0)
		close(fd);
	return b;
}

static void drained(void *arg, int res)
{
	*(int *)arg = res == 0 ? 1 : -1;
}

static uint64_t gate_waits(struct bc_engine *e)
{
	struct bc_engine_stats st;

	bc_engine_get_stats(e, &st);
	return st.writeback_gate_waits;
}

static void gate(void)
{
	struct bc_shards *s = open_set();
	const struct bc_target *t = bc_shards_target(s);
	struct bc_engine *e0, *e1;
	struct bc_loop *l1;
	int done = 0, k;

	wr(t, X0, 1);
	wr(t, X1, 1);
	CHECK(t_io(host, t, BC_OP_FLUSH, 0, 0, 0, NULL) == 0, "flush E1");
	wr(t, X0, 2);
	wr(t, Y0, 2);
	CHECK(t_io(host, t, BC_OP_FLUSH, 0, 0, 0, NULL) == 0, "flush E2");
	bc_shards_stop(s); /* the engines are this thread's now: run their loops by hand */
	e0 = bc_shards_engine(s, 0);
	e1 = bc_shards_engine(s, 1);
	l1 = bc_shards_loop(s, 1);
	CHECK(bc_seglog_epoch(e0) == bc_seglog_epoch(e1), "the shards count the same epochs");
	CHECK(bc_engine_drain(e0, drained, &done) == 0, "drain shard 0");
	for (k = 0; k < 100000 && !gate_waits(e0) && !done; k++)
		bc_loop_run_once(host, 1);
	CHECK(gate_waits(e0) > 0 && !done, "shard 0 waits at the gate (waits %llu, drain %d)",
	      (unsigned long long)gate_waits(e0), done);
	CHECK(on_origin(X0) == 1, "shard 0 wrote back its E1 data first (origin holds %d)", on_origin(X0));
	CHECK(on_origin(Y0) == 0 && on_origin(X1) == 0,
	      "nothing of E2 on the origin while shard 1's E1 is not (Y0 %d, X1 %d)", on_origin(Y0),
	      on_origin(X1));
	for (k = 0; k < 100000 && !done; k++) {
		bc_loop_run_once(host, 0);
		bc_loop_run_once(l1, 1);
	}
	CHECK(done == 1, "shard 0's drain finished once shard 1 caught up (%d)", done);
	CHECK(on_origin(X1) == 1 && on_origin(X0) == 2 && on_origin(Y0) == 2,
	      "the origin holds E1 of both and E2 of shard 0 (X1 %d, X0 %d, Y0 %d)", on_origin(X1),
	      on_origin(X0), on_origin(Y0));
	CHECK(bc_shards_close(s) == 0, "close");
}

/* Shard 1 saw fewer FLUSHes' segments than shard 0 before the crash: after
 * the reopen both count from the newest. */
static void epochs_after_crash(void)
{
	struct bc_shards *s = open_set();
	const struct bc_target *t = bc_shards_target(s);
	int i;

	for (i = 0; i < 5; i++) {
		wr(t, X0, 10 + i); /* shard 0 only: shard 1 records no segment of these epochs */
		CHECK(t_io(host, t, BC_OP_FLUSH, 0, 0, 0, NULL) == 0, "flush");
	}
	bc_shards_crash(s);
	s = open_set();
	bc_shards_stop(s);
	CHECK(bc_seglog_epoch(bc_shards_engine(s, 0)) == bc_seglog_epoch(bc_shards_engine(s, 1)),
	      "epochs after the crash: %llu and %llu",
	      (unsigned long long)bc_seglog_epoch(bc_shards_engine(s, 0)),
	      (unsigned long long)bc_seglog_epoch(bc_shards_engine(s, 1)));
	CHECK(bc_shards_close(s) == 0, "close");
}

int main(void)
{
	struct bc_format_config f = { .segment_size = 256 << 10, .shards = 2,
				      .stripe_blocks = STRIPE / B };
	char why[512];

	if (bc_loop_new(&host, 256))
		return 1;
	origin = t_file("origin.img", ORIGIN);
	cache = t_file("cache.img", 32 * MiB);
	f.cache_path = cache;
	f.origin_path = origin;
	CHECK(bc_cache_format(&f, why, sizeof(why)) == 0, "format --shards 2: %s", why);
	gate();
	epochs_after_crash();
	free(cache);
	free(origin);
	bc_loop_free(host);
	t_cleanup();
	return t_finish("writeback epoch gate across 2 shards: E2 waits for every shard's E1, the "
			"shard behind is asked to catch up, epochs agree after a crash");
}
