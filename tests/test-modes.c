/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Cache modes, promotion filters, drain and tunables of the engine, in
 * process on files.  The origin file is read directly to check what reached
 * it; a "crash" drops the engine without its clean shutdown.
 */
#include <errno.h>
#include <string.h>

#include "engine/engine.h"
#include "testutil.h"

#define B 4096ull

static int io(struct bc_engine *e, int op, uint64_t off, uint64_t len, void *buf)
{
	return t_io(t_loop, bc_engine_target(e), op, 0, off, len, buf);
}

static int wr(struct bc_engine *e, uint64_t off, uint64_t len, uint32_t ver)
{
	void *buf = t_alloc(len);
	int ret;

	t_fill(buf, len, off, ver);
	ret = io(e, BC_OP_WRITE, off, len, buf);
	free(buf);
	return ret;
}

static int rd(struct bc_engine *e, uint64_t off, uint64_t len, uint32_t ver)
{
	void *buf = t_alloc(len);
	int ret = io(e, BC_OP_READ, off, len, buf);

	if (!ret)
		ret = t_verify(buf, len, off, ver) ? -1 : 0;
	free(buf);
	return ret;
}

static struct bc_engine_stats stats(struct bc_engine *e)
{
	struct bc_engine_stats st;

	bc_engine_get_stats(e, &st);
	return st;
}

static void set(struct bc_engine *e, const char *name, uint64_t v)
{
	char why[256];

	CHECK(bc_engine_set(e, name, v, why, sizeof(why)) == 0, "set %s=%llu: %s", name,
	      (unsigned long long)v, why);
}

static void mode(struct bc_engine *e, enum bc_mode m)
{
	char why[256];

	CHECK(bc_engine_set_mode(e, m, why, sizeof(why)) == 0, "mode %s: %s", bc_mode_name(m), why);
}

static void test_tunables(void)
{
	struct bc_engine *e;
	char why[256];
	uint64_t v;
	unsigned i;

	t_engine_fresh(32 << 20, 128 << 20, 0);
	e = t_engine_open();
	for (i = 0; i < bc_tunable_count(); i++) {
		const struct bc_tunable_info *t = bc_tunable_info(i);

		uint64_t want = strcmp(t->name, "flush_deadline_us") ? t->def : t_cfg.flush_deadline_us;

		CHECK(bc_engine_get(e, t->name, &v) == 0 && v == want, "%s defaults to %llu", t->name,
		      (unsigned long long)want);
		if (t->max < UINT64_MAX)
			CHECK(bc_engine_set(e, t->name, t->max + 1, why, sizeof(why)) == -ERANGE &&
			      strstr(why, t->name), "%s rejects max+1 (%s)", t->name, why);
	}
	CHECK(bc_engine_set(e, "no_such", 1, why, sizeof(why)) == -ENOENT, "unknown tunable");
	CHECK(bc_engine_set(e, "dirty_low", 80, why, sizeof(why)) == -ERANGE, "low above high: %s", why);
	CHECK(bc_engine_set(e, "dirty_high", 20, why, sizeof(why)) == -ERANGE, "high below low: %s", why);
	set(e, "dirty_high", 80);
	CHECK(bc_engine_get(e, "dirty_high", &v) == 0 && v == 80, "set took effect");
	CHECK(bc_engine_set_mode(e, (enum bc_mode)9, why, sizeof(why)) == -EINVAL, "bad mode");
	{
		enum bc_mode m;

		CHECK(bc_mode_parse("writearound", &m) == 0 && m == BC_CACHE_WRITEAROUND, "parse mode");
		CHECK(bc_mode_parse("fast", &m) == -EINVAL, "parse bad mode");
	}
	CHECK(bc_engine_close(e) == 0, "close");
}

static void test_writethrough(void)
{
	struct bc_engine *e;

	t_engine_fresh(32 << 20, 128 << 20, 0);
	e = t_engine_open();
	mode(e, BC_CACHE_WRITETHROUGH);
	CHECK(wr(e, 10 * B, 8 * B, 1) == 0, "write");
	CHECK(t_origin_verify(10 * B, 8 * B, 1) == 0, "writethrough: origin has the acknowledged write");
	CHECK(stats(e).dirty_blocks == 0, "writethrough leaves nothing dirty");
	CHECK(rd(e, 10 * B, 8 * B, 1) == 0 && stats(e).read_hit_full == 8, "and it is cached (hits)");
	/* Unaligned write: origin gets exactly the sectors written. */
	CHECK(wr(e, 30 * B + 512, 1024, 2) == 0 && t_origin_verify(30 * B + 512, 1024, 2) == 0, "partial");
	CHECK(io(e, BC_OP_FLUSH, 0, 0, NULL) == 0 && stats(e).origin_flushes >= 1, "FLUSH flushes origin");
	t_engine_crash(e);
	e = t_engine_open();
	CHECK(rd(e, 10 * B, 8 * B, 1) == 0, "after crash");
	CHECK(bc_engine_close(e) == 0, "close");
}

static void test_writearound(void)
{
	struct bc_engine *e;
	struct bc_engine_stats st;

	t_engine_fresh(32 << 20, 128 << 20, 0);
	e = t_engine_open();
	set(e, "promote_hits", 1);
	/* Cache block 50 as clean through promotion (origin holds zeroes). */
	CHECK(rd(e, 50 * B, B, 0) != 0 && stats(e).promoted_blocks == 1, "promoted");
	CHECK(io(e, BC_OP_FLUSH, 0, 0, NULL) == 0, "flush");
	mode(e, BC_CACHE_WRITEAROUND);
	st = stats(e);
	CHECK(wr(e, 50 * B, B, 3) == 0 && t_origin_verify(50 * B, B, 3) == 0, "writearound reaches origin");
	CHECK(stats(e).invalidated_blocks == st.invalidated_blocks + 1, "cached copy invalidated");
	CHECK(wr(e, 60 * B, 4 * B, 4) == 0 && stats(e).cached_blocks == st.cached_blocks - 1,
	      "writearound caches nothing new");
	CHECK(rd(e, 50 * B, B, 3) == 0, "reads the new data");
	CHECK(io(e, BC_OP_FLUSH, 0, 0, NULL) == 0, "flush");
	t_engine_crash(e);
	e = t_engine_open();
	CHECK(rd(e, 50 * B, B, 3) == 0, "stale clean copy not resurrected by replay");
	CHECK(bc_engine_close(e) == 0, "close");
}

static void test_passthrough_and_drain(void)
{
	struct bc_engine *e;
	struct bc_engine_stats st;

	t_engine_fresh(32 << 20, 128 << 20, 0);
	e = t_engine_open();
	/* The dirty data must stay off the origin until the drain, however long
	 * this machine takes between requests: no idle writeback. */
	set(e, "writeback_idle_ms", 0);
	CHECK(wr(e, 0, 64 * B, 5) == 0 && stats(e).dirty_blocks == 64, "dirty in writeback mode");
	mode(e, BC_CACHE_PASSTHROUGH);
	CHECK(rd(e, 0, 64 * B, 5) == 0, "dirty data stays readable in passthrough");
	CHECK(t_origin_verify(0, B, 5) != 0, "not yet on the origin");
	st = stats(e);
	CHECK(wr(e, 100 * B, 4 * B, 6) == 0 && t_origin_verify(100 * B, 4 * B, 6) == 0, "passthrough write");
	CHECK(rd(e, 100 * B, 4 * B, 6) == 0 && stats(e).promoted_blocks == st.promoted_blocks,
	      "passthrough never promotes");
	/* A partial write over a dirty block keeps the rest of the block. */
	CHECK(wr(e, 3 * B + 1024, 512, 7) == 0, "partial over dirty");
	CHECK(rd(e, 3 * B, 1024, 5) == 0 && rd(e, 3 * B + 1024, 512, 7) == 0 &&
	      rd(e, 3 * B + 1536, B - 1536, 5) == 0, "merged block");
	CHECK(t_drain(e) == 0, "drain");
	st = stats(e);
	CHECK(st.dirty_blocks == 0 && st.drains == 1, "drained: %llu dirty",
	      (unsigned long long)st.dirty_blocks);
	CHECK(t_origin_verify(0, 3 * B, 5) == 0 && t_origin_verify(3 * B + 1024, 512, 7) == 0 &&
	      t_origin_verify(4 * B, 60 * B, 5) == 0, "origin alone holds everything");
	CHECK(bc_engine_close(e) == 0, "close");
}

static void test_promotion_filters(void)
{
	struct bc_engine *e;
	struct bc_engine_stats st;
	uint64_t i;

	t_engine_fresh(64 << 20, 256 << 20, 0);
	e = t_engine_open();
	set(e, "promote_hits", 2);
	CHECK(rd(e, 500 * B, B, 0) != 0 && stats(e).promoted_blocks == 0, "first miss not promoted");
	CHECK(rd(e, 500 * B, B, 0) != 0 && stats(e).promoted_blocks == 1, "second miss promoted");
	CHECK(rd(e, 500 * B, B, 0) != 0 && stats(e).read_hit_full == 1, "then a hit");
	set(e, "sequential_cutoff", 1 << 20);
	set(e, "promote_hits", 1);
	st = stats(e);
	for (i = 0; i < 64; i++) /* 8 MiB sequential in 128 KiB reads */
		CHECK(rd(e, (16 << 20) + i * (128 << 10), 128 << 10, 0) != 0 || 1, "seq read");
	CHECK(stats(e).bypass_sequential_bytes >= (7 << 20), "sequential stream bypassed (%llu)",
	      (unsigned long long)stats(e).bypass_sequential_bytes);
	CHECK(stats(e).promoted_blocks - st.promoted_blocks <= 256 + 32,
	      "at most the cutoff promoted (%llu)",
	      (unsigned long long)(stats(e).promoted_blocks - st.promoted_blocks));
	set(e, "promote_hits", 0);
	st = stats(e);
	CHECK(rd(e, 900 * B, B, 0) != 0 && rd(e, 900 * B, B, 0) != 0 &&
	      stats(e).promoted_blocks == st.promoted_blocks, "promote_hits 0: never");
	CHECK(bc_engine_close(e) == 0, "close");
}

int main(void)
{
	test_tunables();
	test_writethrough();
	test_writearound();
	test_passthrough_and_drain();
	test_promotion_filters();
	t_engine_fixture_done();
	return t_finish("tunables, writethrough, writearound, passthrough, drain, promotion filters");
}
