/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Gap-filled writeback (writeback_gap): dirty blocks a few blocks apart are
 * written to the origin as one span whose clean gaps are first read from
 * the origin.  Checks, on the origin file itself: the span holds the dirty
 * data, partial blocks keep the origin's other sectors, gaps keep the
 * origin's data, zero ranges and far blocks are not swallowed; and a direct
 * origin write (writearound) into a gap while the fill is in flight waits
 * for it instead of being overwritten by the fill's stale copy.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "engine/engine.h"
#include "testutil.h"

#define B 4096ull
#define REGION 256 /* blocks pre-filled on the origin with version 7 */

static struct bc_engine *e;

static int io(int op, uint64_t off, uint64_t len, void *buf)
{
	return t_io(t_loop, bc_engine_target(e), op, 0, off, len, buf);
}

static int wr(uint64_t blk, uint64_t off_in, uint64_t len, uint32_t ver)
{
	void *buf = t_alloc(len);
	int ret;

	t_fill(buf, len, blk * B + off_in, ver);
	ret = io(BC_OP_WRITE, blk * B + off_in, len, buf);
	free(buf);
	return ret;
}

/* Does the origin file hold version @ver (0: zeroes) at [off, off+len)? */
static bool origin_has(uint64_t off, uint64_t len, uint32_t ver)
{
	char *buf;
	bool ok;

	if (ver)
		return t_origin_verify(off, len, ver) == 0;
	buf = t_alloc(len);
	ok = t_origin_read(buf, off, len) == 0;
	for (uint64_t i = 0; i < len && ok; i++)
		ok = buf[i] == 0;
	free(buf);
	return ok;
}

static void set(const char *name, uint64_t v)
{
	char why[256];

	CHECK(bc_engine_set(e, name, v, why, sizeof(why)) == 0, "set %s: %s", name, why);
}

static void prefill_origin(void)
{
	void *buf = t_alloc(REGION * B);
	int fd = open(t_origin_path, O_WRONLY);

	t_fill(buf, REGION * B, 0, 7);
	CHECK(fd >= 0 && pwrite(fd, buf, REGION * B, 0) == (ssize_t)(REGION * B), "prefill");
	if (fd >= 0)
		close(fd);
	free(buf);
}

static void test_layout(void)
{
	struct bc_engine_stats st;

	CHECK(wr(0, 0, B, 1) == 0 && wr(2, 0, B, 1) == 0 && wr(4, 0, B, 1) == 0, "writes 0 2 4");
	CHECK(wr(6, 1024, 1024, 2) == 0, "partial write in block 6");
	CHECK(wr(20, 0, B, 1) == 0, "far block 20");
	CHECK(io(BC_OP_WRITE_ZEROES, 30 * B, 2 * B, NULL) == 0, "zeroes 30-31");
	CHECK(wr(33, 0, B, 3) == 0 && wr(35, 0, B, 3) == 0 && wr(37, 0, B, 3) == 0, "writes 33 35 37");
	CHECK(t_drain(e) == 0, "drain");
	bc_engine_get_stats(e, &st);
	CHECK(st.writeback_fills == 2, "two spans gap-filled (0-6, 33-37), got %llu",
	      (unsigned long long)st.writeback_fills);
	CHECK(origin_has(0, B, 1) && origin_has(2 * B, B, 1) && origin_has(4 * B, B, 1), "dirty data");
	CHECK(origin_has(1 * B, B, 7) && origin_has(3 * B, B, 7) && origin_has(5 * B, B, 7), "gaps kept");
	CHECK(origin_has(6 * B, 1024, 7) && origin_has(6 * B + 1024, 1024, 2) &&
	      origin_has(6 * B + 2048, 2048, 7), "partial block: written sectors only");
	CHECK(origin_has(7 * B, 13 * B, 7) && origin_has(20 * B, B, 1) && origin_has(21 * B, 9 * B, 7),
	      "far block written alone, nothing around it changed");
	CHECK(origin_has(30 * B, 2 * B, 0) && origin_has(32 * B, B, 7), "zero range");
	CHECK(origin_has(33 * B, B, 3) && origin_has(34 * B, B, 7) && origin_has(35 * B, B, 3) &&
	      origin_has(36 * B, B, 7) && origin_has(37 * B, B, 3), "second span");
	CHECK(origin_has(38 * B, (REGION - 38) * B, 7), "rest of the region untouched");
}

struct pending {
	struct bc_request r;
	int done, res;
};

static void pending_done(struct bc_request *r, int res)
{
	struct pending *p = (struct pending *)r;

	p->done = 1;
	p->res = res;
}

static void drained(void *arg, int res)
{
	*(int *)arg = res == 0 ? 1 : -1;
}

static void test_parked_direct_write(void)
{
	char why[256];
	struct pending p = { 0 };
	int drain_done = 0, i;
	void *buf = t_alloc(B);

	for (i = 100; i <= 106; i += 2)
		CHECK(wr((uint64_t)i, 0, B, 4) == 0, "write %d", i);
	CHECK(bc_engine_set_mode(e, BC_CACHE_WRITEAROUND, why, sizeof(why)) == 0, "writearound: %s", why);
	CHECK(bc_engine_drain(e, drained, &drain_done) == 0, "start drain");
	for (i = 0; i < 100000 && !bc_wb_fill_overlaps(e, 103 * B, B) && !drain_done; i++)
		bc_loop_run_once(t_loop, 10);
	CHECK(bc_wb_fill_overlaps(e, 103 * B, B), "fill of 100-106 in flight");
	/* A writearound write into the gap goes straight to the origin -- or
	 * would, if the fill were not rewriting that block right now. */
	t_fill(buf, B, 103 * B, 5);
	p.r.op = BC_OP_WRITE;
	p.r.offset = 103 * B;
	p.r.length = B;
	p.r.buf = buf;
	p.r.done = pending_done;
	bc_target_submit(bc_engine_target(e), &p.r);
	CHECK(e->wr.fill_parked.head == &p.r, "the direct write waits for the fill");
	for (i = 0; i < 100000 && !(p.done && drain_done); i++)
		bc_loop_run_once(t_loop, 10);
	CHECK(p.done && p.res == 0 && drain_done == 1, "write %d/%d, drain %d", p.done, p.res, drain_done);
	CHECK(origin_has(103 * B, B, 5), "the direct write survives the fill");
	CHECK(origin_has(100 * B, B, 4) && origin_has(102 * B, B, 4) && origin_has(104 * B, B, 4) &&
	      origin_has(106 * B, B, 4), "dirty data written back");
	CHECK(origin_has(101 * B, B, 7) && origin_has(105 * B, B, 7), "other gaps kept");
	free(buf);
}

int main(void)
{
	t_engine_fresh(32ull << 20, 64ull << 20, 0);
	prefill_origin();
	e = t_engine_open();
	set("writeback_paused", 1);
	set("writeback_idle_ms", 0);
	set("writeback_gap", 8);
	test_layout();
	test_parked_direct_write();
	CHECK(bc_engine_close(e) == 0, "close");
	t_engine_fixture_done();
	return t_finish("gap-filled writeback");
}
