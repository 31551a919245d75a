/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Written acks (engine config written_acks, on for ublk with user recovery):
 * a write is acknowledged only once it is on the cache device, so a server
 * that dies right after the ack and is started again still has it -- the
 * property a filesystem that stays mounted across the restart needs.
 * Without the option, an acknowledged write may live only in a RAM segment
 * buffer (the volatile write cache of the design) and a kill loses it.
 */
#include <string.h>

#include "engine/engine.h"
#include "testutil.h"

#define B     4096ull
#define BATCH 32

struct pending {
	struct bc_request r;
	int done, res;
};

static void pending_done(struct bc_request *r, int res)
{
	struct pending *p = r->priv;

	p->done = 1;
	p->res = res;
}

/* Submit @n writes of version @ver at blocks @first.. together, wait for all. */
static int write_batch(struct bc_engine *e, char *buf, uint64_t first, unsigned n, uint32_t ver)
{
	static struct pending p[BATCH];
	unsigned i, left = n;
	int ret = 0;

	for (i = 0; i < n; i++) {
		uint64_t off = (first + i) * B;

		t_fill(buf + i * B, B, off, ver);
		memset(&p[i], 0, sizeof(p[i]));
		p[i].r = (struct bc_request){ .op = BC_OP_WRITE, .offset = off, .length = B,
					      .buf = buf + i * B, .done = pending_done,
					      .priv = &p[i] };
		bc_target_submit(bc_engine_target(e), &p[i].r);
	}
	while (left) {
		if (bc_loop_run_once(t_loop, 1000) < 0)
			return -1;
		for (left = 0, i = 0; i < n; i++)
			left += !p[i].done;
	}
	for (i = 0; i < n; i++)
		if (p[i].res)
			ret = p[i].res;
	return ret;
}

/* After a crash and recovery: do blocks @first.. hold version @ver? */
static int verify(struct bc_engine *e, char *buf, uint64_t first, unsigned n, uint32_t ver)
{
	if (t_io(t_loop, bc_engine_target(e), BC_OP_READ, 0, first * B, n * B, buf))
		return -1;
	return t_verify(buf, n * B, first * B, ver);
}

/*
 * Batches acknowledged one after another share one open segment: each is
 * a round (a round block and the data after it) that leaves it open, so 30
 * batches of 3 blocks take one ring position, not 30, and recovery finds
 * them after a crash by following the round blocks.  Overwrites of blocks already
 * written that way take new entries (never change what is on the device
 * under its CRC); partial-sector overwrites merge with them.  A crash after
 * the last ack keeps all of it.
 */
static void open_segment_rounds(char *buf)
{
	struct bc_engine_stats st0, st;
	struct bc_engine *e = t_engine_open();
	unsigned i;

	bc_engine_get_stats(e, &st0);
	for (i = 0; i < 30; i++)
		CHECK(write_batch(e, buf, 2000 + 3 * (uint64_t)i, 3, 300 + i) == 0, "batch %u", i);
	/* Overwrite the first batch (now frozen on the device) twice. */
	CHECK(write_batch(e, buf, 2000, 3, 400) == 0, "overwrite");
	CHECK(write_batch(e, buf, 2000, 3, 401) == 0, "overwrite again");
	t_fill(buf, 512, 2003 * B + 1024, 402);
	CHECK(t_io(t_loop, bc_engine_target(e), BC_OP_WRITE, 0, 2003 * B + 1024, 512, buf) == 0,
	      "partial-sector overwrite of a frozen block");
	bc_engine_get_stats(e, &st);
	CHECK(st.segments_written == st0.segments_written, "batches sealed %llu segment(s): "
	      "they should share the open one", (unsigned long long)(st.segments_written -
								  st0.segments_written));
	CHECK(st.open_segment_writes - st0.open_segment_writes >= 33,
	      "%llu writes of the open segment for 33 acknowledged batches",
	      (unsigned long long)(st.open_segment_writes - st0.open_segment_writes));
	CHECK(st.write_inplace_blocks == st0.write_inplace_blocks,
	      "%llu blocks overwritten in place after they were written to the device",
	      (unsigned long long)(st.write_inplace_blocks - st0.write_inplace_blocks));
	t_engine_crash(e);
	e = t_engine_open();
	CHECK(verify(e, buf, 2000, 3, 401) == 0, "overwritten batch after a crash");
	CHECK(verify(e, buf, 2004, 2, 301) == 0, "batch 1 after a crash");
	for (i = 2; i < 30; i++)
		CHECK(verify(e, buf, 2000 + 3 * (uint64_t)i, 3, 300 + i) == 0, "batch %u after a crash", i);
	CHECK(t_io(t_loop, bc_engine_target(e), BC_OP_READ, 0, 2003 * B, B, buf) == 0, "read");
	CHECK(t_verify(buf, 1024, 2003 * B, 301) == 0 && t_verify(buf + 1024, 512, 2003 * B + 1024, 402) == 0 &&
	      t_verify(buf + 1536, B - 1536, 2003 * B + 1536, 301) == 0,
	      "partial-sector overwrite merged with the frozen block after a crash");
	CHECK(bc_engine_close(e) == 0, "close");
}

int main(void)
{
	char *buf = t_alloc(BATCH * B);
	struct bc_engine_stats st;
	struct bc_engine *e;
	unsigned round;

	t_engine_fresh(64ull << 20, 256ull << 20, 0);

	/* Without written acks: acknowledged from the RAM buffer, lost by a kill. */
	e = t_engine_open();
	CHECK(write_batch(e, buf, 0, 8, 1) == 0, "buffered writes");
	bc_engine_get_stats(e, &st);
	CHECK(st.segments_written == 0, "the acknowledged writes are in RAM only (%llu segments "
	      "written)", (unsigned long long)st.segments_written);
	t_engine_crash(e);
	e = t_engine_open();
	CHECK(verify(e, buf, 0, 8, 1) != 0, "buffered writes survived a crash: the test cannot "
	      "tell written acks from buffered ones");
	t_engine_crash(e);

	/* With written acks: whatever was acknowledged survives the kill. */
	t_cfg.written_acks = true;
	for (round = 0; round < 20; round++) {
		uint64_t first = 64 + (uint64_t)round * BATCH;
		unsigned n = 1 + round % BATCH;

		e = t_engine_open();
		CHECK(write_batch(e, buf, first, n, 100 + round) == 0, "round %u: writes", round);
		t_engine_crash(e); /* right after the acks */
		e = t_engine_open();
		CHECK(verify(e, buf, first, n, 100 + round) == 0,
		      "round %u: %u acknowledged writes lost by a crash", round, n);
		t_engine_crash(e);
	}
	/* And the earlier rounds are all still there, after a clean close too. */
	e = t_engine_open();
	for (round = 0; round < 20; round++)
		CHECK(verify(e, buf, 64 + (uint64_t)round * BATCH, 1 + round % BATCH, 100 + round) == 0,
		      "round %u after all crashes", round);
	CHECK(bc_engine_close(e) == 0, "close");

	open_segment_rounds(buf);
	t_engine_fixture_done();
	return t_finish("written acks survive a kill after every ack");
}
