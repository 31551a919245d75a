/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Writeback verifies dirty data against the data CRCs in the segment
 * headers it reads with the data (RAM keeps them only with --data-crc):
 * on a cache without --data-crc, a dirty block damaged on the cache device
 * is never written to the origin (counted, reads of it fail with EIO),
 * its neighbours are; a segment whose header is damaged after it was
 * written is written back unverified (counted and logged), all of it.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "engine/engine.h"
#include "testutil.h"

#define B 4096ull

static struct bc_engine *e;

static int io(int op, uint64_t off, uint64_t len, void *buf)
{
	return t_io(t_loop, bc_engine_target(e), op, 0, off, len, buf);
}

static int wr(uint64_t blk, unsigned n, uint32_t ver)
{
	void *buf = t_alloc(n * B);
	int ret;

	t_fill(buf, n * B, blk * B, ver);
	ret = io(BC_OP_WRITE, blk * B, n * B, buf);
	free(buf);
	return ret;
}

static void set(const char *name, uint64_t v)
{
	char why[256];

	CHECK(bc_engine_set(e, name, v, why, sizeof(why)) == 0, "set %s: %s", name, why);
}

/* Overwrite @len bytes of the cache file at @off with garbage. */
static void damage(uint64_t off, size_t len)
{
	char *junk = t_alloc(len);
	int fd = open(t_cache_path, O_WRONLY);

	memset(junk, 0xa5, len);
	CHECK(fd >= 0 && pwrite(fd, junk, len, (off_t)off) == (ssize_t)len && fsync(fd) == 0,
	      "damage the cache file at %llu", (unsigned long long)off);
	if (fd >= 0)
		close(fd);
	free(junk);
}

static uint32_t slot_of(uint64_t blk)
{
	struct bc_ix_ent ix;

	CHECK(bc_index_find(&e->index, blk, &ix), "block %llu cached", (unsigned long long)blk);
	return ix.slot;
}

static uint64_t crc_errors(void)
{
	struct bc_engine_stats st;

	bc_engine_get_stats(e, &st);
	return st.data_crc_errors;
}

/* Format @version (0: the current one, whose segments span FLUSHes as
 * rounds: the damaged header's segment is written back in two passes, and
 * counted once). */
static void run(uint32_t version)
{
	uint32_t bad_slot, hdr_slot;
	void *buf = t_alloc(B);
	int ret;

	t_format_version = version;
	t_engine_fresh(32ull << 20, 64ull << 20, 256 << 10);
	e = t_engine_open();
	CHECK(!e->log.crcs, "no CRCs in RAM without --data-crc");
	set("writeback_paused", 1);
	set("writeback_idle_ms", 0);
	/* Two segments' worth at least, each written and flushed. */
	CHECK(wr(0, 64, 1) == 0 && io(BC_OP_FLUSH, 0, 0, NULL) == 0, "blocks 0-63 v1");
	CHECK(wr(1000, 64, 1) == 0 && io(BC_OP_FLUSH, 0, 0, NULL) == 0, "blocks 1000-1063 v1");
	bad_slot = slot_of(10);
	hdr_slot = slot_of(1000);
	CHECK(slot_pos(e, bad_slot) != slot_pos(e, hdr_slot), "in two segments");
	damage(slot_offset(e, bad_slot), B);               /* block 10's data */
	damage(seg_offset(e, slot_pos(e, hdr_slot)) + 100, 64); /* the other segment's header */
	set("writeback_paused", 0);
	CHECK(t_drain(e) == 0, "drain");
	CHECK(crc_errors() == 2, "a bad block and a bad header counted (%llu)",
	      (unsigned long long)crc_errors());
	CHECK(t_origin_verify(0, 10 * B, 1) == 0 && t_origin_verify(11 * B, 53 * B, 1) == 0,
	      "the damaged block's neighbours written back");
	ret = t_origin_verify(10 * B, B, 1);
	CHECK(ret != 0, "the damaged block is not written to the origin");
	CHECK(io(BC_OP_READ, 10 * B, B, buf) == -EIO, "reading the damaged dirty block: EIO");
	CHECK(t_origin_verify(1000 * B, 64 * B, 1) == 0,
	      "the segment with a damaged header written back whole, unverified");
	/* An overwrite replaces the lost block. */
	CHECK(wr(10, 1, 2) == 0 && io(BC_OP_READ, 10 * B, B, buf) == 0 &&
	      t_verify(buf, B, 10 * B, 2) == 0, "an overwrite makes block 10 readable again");
	CHECK(t_drain(e) == 0 && t_origin_verify(10 * B, B, 2) == 0, "and is written back");
	free(buf);
	CHECK(bc_engine_close(e) == 0, "close");
}

int main(void)
{
	run(3);
	run(0);
	t_engine_fixture_done();
	return t_finish("writeback checks dirty data against the segment headers' CRCs: damaged "
			"block kept from the origin (EIO), damaged header written back unverified");
}
