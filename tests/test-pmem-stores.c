/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The pmem log's stores, seen by a recording persistent-memory device
 * ("tpm:", a RAM mapping whose copy/set/flush/drain functions log every
 * call): what the power-cut checker's pmem mode builds on.
 *  - every byte the engine puts in the mapping passes through the map's
 *    store functions (or a device write): replaying the recorded stores on
 *    zeroes gives the mapping exactly, after a workload of full and
 *    partial-sector writes, FUA, FLUSH, discard, write-zeroes, read misses
 *    (promotion), a ring that wraps with writeback and reclaim, a crash and
 *    a recovery;
 *  - at every FLUSH acknowledged with nothing else in flight (writeback
 *    paused), each store made so far into the ring was flushed from the CPU
 *    caches (an in-place write covering it) and fenced (a FLUSH) after it:
 *    the persistent image equals the mapping there.
 */
#include <errno.h>
#include <string.h>

#include "engine/engine.h"
#include "pmemrec.h"
#include "testutil.h"

#define SIZE (24u << 20)
#define B    4096ull

/* Replaying every recorded store on zeroes gives the mapping. */
static void check_routed(const char *when)
{
	uint8_t *img = malloc(SIZE);

	if (!img)
		exit(1);
	pr_replay(img, pr.n);
	CHECK(!memcmp(img, pr.base, SIZE), "%s: the mapping holds bytes no recorded store put there",
	      when);
	free(img);
}

/* Stores from @from on into [lo, SIZE) not flushed and then fenced yet. */
static unsigned unpersisted(size_t from, uint64_t lo)
{
	size_t *at = pr_durable_at(), i;
	unsigned bad = 0;

	for (i = from; i < pr.n; i++)
		bad += pr.ev[i].kind == PR_STORE && pr.ev[i].off + pr.ev[i].len > lo &&
		       at[i] == SIZE_MAX;
	free(at);
	return bad;
}

static int io(struct bc_engine *e, int op, uint32_t flags, uint64_t off, uint64_t len, void *buf)
{
	return t_io(t_loop, bc_engine_target(e), op, flags, off, len, buf);
}

int main(void)
{
	struct bc_format_config f = { 0 };
	const struct bc_dev_registry *reg;
	char why[512], *buf = t_alloc(64 * B);
	struct bc_engine *e;
	size_t mark = 0;
	uint64_t ring;
	unsigned i, bad = 0, checks = 0;

	reg = pr_init(SIZE);
	t_engine_fresh(8 << 20, 64ull << 20, 256u << 10); /* the loop and an origin file */
	f.cache_path = "tpm:0";
	f.origin_path = t_origin_path;
	f.segment_size = 256u << 10;
	f.devices = reg;
	CHECK(bc_cache_format(&f, why, sizeof(why)) == 0, "format: %s", why);
	t_cfg.cache_path = "tpm:0";
	t_cfg.devices = reg;
	e = t_engine_open();
	CHECK(e->log.direct, "the engine uses the pmem log on the recording device");
	ring = e->sb.ring_offset;
	CHECK(bc_engine_set(e, "writeback_paused", 1, why, sizeof(why)) == 0, "pause: %s", why);
	/* QD1: a mix, then a FLUSH; at its ack everything stored is durable. */
	for (i = 0; i < 60; i++) {
		uint64_t off = (uint64_t)(i * 37 % 2000) * B + (i % 3 == 0 ? 1024 : 0);
		unsigned len = (unsigned)(i % 3 == 0 ? 2560 : (1 + i % 7) * B);

		t_fill(buf, len, off, i + 1);
		CHECK(io(e, BC_OP_WRITE, i % 5 == 0 ? BC_REQ_FUA : 0, off, len, buf) == 0, "write %u", i);
		if (i % 11 == 0)
			CHECK(io(e, BC_OP_WRITE_ZEROES, 0, (3000 + i) * B, 8 * B, NULL) == 0, "zeroes");
		if (i % 13 == 0)
			CHECK(io(e, BC_OP_DISCARD, 0, (2000 + i) * B, 4 * B, NULL) == 0, "discard");
		if (i % 4 == 0) {
			for (unsigned k = 0; k < 3; k++) /* read misses: promotion */
				CHECK(io(e, BC_OP_READ, 0, (5000 + i) * B, B, buf) == 0, "read");
		}
		if (i % 3 == 2) {
			CHECK(io(e, BC_OP_FLUSH, 0, 0, 0, NULL) == 0, "flush %u", i);
			bad += unpersisted(mark, ring);
			checks++;
		}
	}
	CHECK(bad == 0, "%u stores into the ring were neither flushed nor fenced at %u FLUSH acks",
	      bad, checks);
	check_routed("after the QD1 phase");
	/* Wrap the ring with writeback and reclaim running. */
	CHECK(bc_engine_set(e, "writeback_paused", 0, why, sizeof(why)) == 0, "resume: %s", why);
	for (i = 0; i < 400; i++) {
		uint64_t off = (uint64_t)(i * 91 % 12000) * B;

		t_fill(buf, 16 * B, off, 1000 + i);
		CHECK(io(e, BC_OP_WRITE, 0, off, 16 * B, buf) == 0, "wrap write %u", i);
		if (i % 50 == 49)
			CHECK(io(e, BC_OP_FLUSH, 0, 0, 0, NULL) == 0, "wrap flush");
	}
	CHECK(e->log.head_seq > e->nseg, "the ring wrapped (%llu segments for %u positions)",
	      (unsigned long long)e->log.head_seq, e->nseg);
	check_routed("after the ring wrapped");
	/* A crash drops the engine with its memory: no origin IO of writeback
	 * may still be in flight in this process when it does. */
	CHECK(bc_engine_set(e, "writeback_paused", 1, why, sizeof(why)) == 0, "pause: %s", why);
	for (i = 0; i < 10000 && !bc_wb_idle(e); i++)
		bc_loop_run_once(t_loop, 10);
	CHECK(bc_wb_idle(e), "writeback did not come to rest");
	t_engine_crash(e);
	mark = pr.n;
	e = t_engine_open();
	for (i = 396; i < 400; i++) {
		uint64_t off = (uint64_t)(i * 91 % 12000) * B;

		CHECK(io(e, BC_OP_READ, 0, off, 16 * B, buf) == 0 && !t_verify(buf, 16 * B, off, 1000 + i),
		      "wrap write %u after a crash", i);
	}
	check_routed("after recovery");
	CHECK(bc_engine_close(e) == 0, "close");
	check_routed("after close");
	pr_free();
	free(buf);
	t_engine_fixture_done();
	t_cleanup();
	return t_finish("pmem log stores: all routed through the map, durable at FLUSH acks");
}
