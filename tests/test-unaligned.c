/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Caller buffers that O_DIRECT cannot take (not aligned to the device's
 * block size, in memory): read hits, misses, partial blocks, writes and
 * writeback must all work through the file driver's bounce buffer, and
 * none of it may count as a cache device error.
 */
#include <string.h>

#include "engine/engine.h"
#include "testutil.h"

#define B 4096ull

static int io(struct bc_engine *e, int op, uint64_t off, uint64_t len, void *buf)
{
	return t_io(t_loop, bc_engine_target(e), op, 0, off, len, buf);
}

int main(void)
{
	struct bc_engine_stats st;
	struct bc_engine *e;
	char *raw = t_alloc(64 * B + 4096), *buf;
	unsigned shift;

	t_engine_fresh(64ull << 20, 256ull << 20, 0);
	e = t_engine_open();
	for (shift = 1; shift < 4096; shift = shift * 7 + 3) {
		uint64_t off = (uint64_t)shift * 16 * B; /* a fresh range per shift */

		buf = raw + shift;
		/* Misses read from the origin into the unaligned buffer. */
		CHECK(io(e, BC_OP_READ, off, 8 * B, buf) == 0, "miss read, shift %u", shift);
		/* Full-block writes, then read hits. */
		t_fill(buf, 8 * B, off, shift);
		CHECK(io(e, BC_OP_WRITE, off, 8 * B, buf) == 0, "write, shift %u", shift);
		memset(buf, 0xa5, 8 * B);
		CHECK(io(e, BC_OP_READ, off, 8 * B, buf) == 0, "hit read, shift %u", shift);
		CHECK(t_verify(buf, 8 * B, off, shift) == 0, "hit data, shift %u", shift);
		/* A partial-block write (merge read of the old sectors). */
		t_fill(buf, 1024, off + 8 * B + 512, shift + 1);
		CHECK(io(e, BC_OP_WRITE, off + 8 * B + 512, 1024, buf) == 0, "partial, shift %u", shift);
		CHECK(io(e, BC_OP_READ, off + 8 * B + 512, 1024, buf) == 0, "partial read");
		CHECK(t_verify(buf, 1024, off + 8 * B + 512, shift + 1) == 0, "partial data, shift %u",
		      shift);
	}
	/* Writeback, then everything again from the origin after a restart. */
	CHECK(t_drain(e) == 0, "drain");
	bc_engine_get_stats(e, &st);
	CHECK(st.cache_errors == 0 && !st.degraded, "cache errors %llu, degraded %u",
	      (unsigned long long)st.cache_errors, st.degraded);
	CHECK(st.read_hit_blocks > 0 && st.read_miss_blocks > 0, "hits %llu misses %llu",
	      (unsigned long long)st.read_hit_blocks, (unsigned long long)st.read_miss_blocks);
	CHECK(bc_engine_close(e) == 0, "close");
	/* The origin file itself holds the data; a restarted engine reads it
	 * back (recovered clean blocks) into unaligned buffers. */
	for (shift = 1; shift < 4096; shift = shift * 7 + 3) {
		uint64_t off = (uint64_t)shift * 16 * B;

		CHECK(t_origin_verify(off, 8 * B, shift) == 0, "origin holds shift %u", shift);
	}
	e = t_engine_open();
	for (shift = 1; shift < 4096; shift = shift * 7 + 3) {
		uint64_t off = (uint64_t)shift * 16 * B;

		buf = raw + 4096 - shift;
		memset(buf, 0, 8 * B);
		CHECK(io(e, BC_OP_READ, off, 8 * B, buf) == 0, "read after restart, shift %u", shift);
		CHECK(t_verify(buf, 8 * B, off, shift) == 0, "data after restart, shift %u", shift);
	}
	bc_engine_get_stats(e, &st);
	CHECK(st.cache_errors == 0, "cache errors after restart %llu", (unsigned long long)st.cache_errors);
	CHECK(bc_engine_close(e) == 0, "close");
	free(raw);
	t_engine_fixture_done();
	return t_finish("unaligned caller buffers");
}
