/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The persistent-memory log (a format v4 cache on "pmem:FILE"): segments are
 * filled in place in the mapping and a FLUSH is a round plus a flush, not a
 * seal; the segment header is written once (BC_SEG_ROUNDS_FINAL) and every
 * recovery follows the rounds.
 *  - 200 write+FLUSH pairs seal no segment per FLUSH (rounds instead), and a
 *    crash after any FLUSH ack keeps everything flushed (20 crashes);
 *  - a torn round (one of its data blocks damaged after the crash) ends the
 *    log before it: its writes read their previous version, every earlier
 *    flushed write stays, and the round block is voided on the device (a
 *    second recovery agrees);
 *  - the same cache opened through the file driver (disk log) replays the
 *    pmem rounds, writes its own segments, and pmem opens that again;
 *  - a version 3 cache on pmem is served with the disk log (FLUSH seals).
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "engine/engine.h"
#include "testutil.h"

#define B 4096ull

static char pmem_path[600];

static void fresh(unsigned version)
{
	struct bc_format_config f = { 0 };
	char why[512];

	t_engine_fresh(32ull << 20, 128ull << 20, 256u << 10); /* the loop, the files */
	snprintf(pmem_path, sizeof(pmem_path), "pmem:%s", t_cache_path);
	f.cache_path = pmem_path;
	f.origin_path = t_origin_path;
	f.segment_size = 256u << 10;
	f.version = version;
	f.force = true;
	CHECK(bc_cache_format(&f, why, sizeof(why)) == 0, "format on pmem: %s", why);
	t_cfg.cache_path = pmem_path;
}

static int wr(struct bc_engine *e, char *buf, uint64_t blk, unsigned n, uint32_t ver)
{
	t_fill(buf, n * B, blk * B, ver);
	return t_io(t_loop, bc_engine_target(e), BC_OP_WRITE, 0, blk * B, n * B, buf);
}

static int flush(struct bc_engine *e)
{
	return t_io(t_loop, bc_engine_target(e), BC_OP_FLUSH, 0, 0, 0, NULL);
}

static int holds(struct bc_engine *e, char *buf, uint64_t blk, unsigned n, uint32_t ver)
{
	if (t_io(t_loop, bc_engine_target(e), BC_OP_READ, 0, blk * B, n * B, buf))
		return -1;
	return t_verify(buf, n * B, blk * B, ver);
}

/* Block i of the workload: version ver[i] (0: never written). */
static uint32_t ver[4096];

static void flush_rounds_and_crashes(char *buf)
{
	struct bc_engine_stats st0, st;
	struct bc_engine *e = t_engine_open();
	unsigned i, k, bad;

	bc_engine_get_stats(e, &st0);
	for (i = 1; i <= 200; i++) {
		uint64_t blk = (i * 37) % 1500;
		unsigned n = 1 + i % 3;

		CHECK(wr(e, buf, blk, n, i) == 0, "write %u", i);
		CHECK(flush(e) == 0, "flush %u", i);
		for (k = 0; k < n; k++)
			ver[blk + k] = i;
		if (i % 10 == 0) {
			/* 10 FLUSHes since the last open: a disk log seals 10 segments. */
			bc_engine_get_stats(e, &st);
			CHECK(st.segments_written - st0.segments_written <= 2,
			      "%llu segments sealed for 10 FLUSHes: a FLUSH should be a round",
			      (unsigned long long)(st.segments_written - st0.segments_written));
			CHECK(st.open_segment_writes - st0.open_segment_writes >= 10,
			      "%llu rounds for 10 FLUSHes",
			      (unsigned long long)(st.open_segment_writes - st0.open_segment_writes));
		}
		if (i % 10 == 0) {
			t_engine_crash(e);
			e = t_engine_open();
			bc_engine_get_stats(e, &st0);
			for (bad = 0, k = 0; k < 1500; k++)
				bad += ver[k] && holds(e, buf, k, 1, ver[k]) != 0;
			CHECK(bad == 0, "%u flushed blocks lost or wrong after crash %u", bad, i / 10);
		}
	}
	CHECK(bc_engine_close(e) == 0, "close");
}

/* Damage the first data block of the newest round of block @blk's segment
 * (the slot holding @blk now), as a power cut during that round may. */
static void damage_slot(uint32_t slot, uint32_t data_blocks, uint32_t hdr_blocks, uint64_t ring_off,
			uint32_t seg_size)
{
	uint64_t off = ring_off + (uint64_t)(slot / data_blocks) * seg_size +
		       (uint64_t)(hdr_blocks + slot % data_blocks) * B;
	int fd = open(t_cache_path, O_RDWR);
	char junk[64];

	memset(junk, 0xee, sizeof(junk));
	CHECK(fd >= 0 && pwrite(fd, junk, sizeof(junk), (off_t)off + 100) == (ssize_t)sizeof(junk),
	      "damaging the cache file");
	if (fd >= 0)
		close(fd);
}

static void torn_round(char *buf)
{
	struct bc_engine *e = t_engine_open();
	uint32_t slot, dblk, hblk, segsz;
	uint64_t ring;
	struct bc_ix_ent ix;
	bool cached;

	CHECK(wr(e, buf, 3000, 4, 7001) == 0 && flush(e) == 0, "A");
	CHECK(wr(e, buf, 3010, 2, 7002) == 0 && flush(e) == 0, "B");
	CHECK(wr(e, buf, 3000, 1, 7003) == 0 && wr(e, buf, 3020, 3, 7003) == 0 && flush(e) == 0,
	      "C: the round to be torn");
	cached = bc_index_find(&e->index, 3020, &ix);
	CHECK(cached, "block 3020 is cached");
	slot = cached ? ix.slot : 0;
	dblk = e->data_blocks;
	hblk = e->hdr_blocks;
	segsz = e->seg_size;
	ring = e->sb.ring_offset;
	t_engine_crash(e);
	damage_slot(slot + 1, dblk, hblk, ring, segsz); /* block 3021's data */
	e = t_engine_open();
	CHECK(holds(e, buf, 3000, 1, 7001) == 0, "C's overwrite of 3000 is gone with its round");
	CHECK(holds(e, buf, 3001, 3, 7001) == 0, "A stays");
	CHECK(holds(e, buf, 3010, 2, 7002) == 0, "B stays");
	memset(buf, 0x55, 3 * B);
	CHECK(t_io(t_loop, bc_engine_target(e), BC_OP_READ, 0, 3020 * B, 3 * B, buf) == 0 &&
	      buf[0] == 0 && buf[3 * B - 1] == 0, "C's new blocks read as before C (zeroes)");
	t_engine_crash(e);
	e = t_engine_open();
	CHECK(holds(e, buf, 3000, 1, 7001) == 0 && holds(e, buf, 3010, 2, 7002) == 0,
	      "a second recovery agrees (the torn round was voided)");
	CHECK(wr(e, buf, 3020, 3, 7004) == 0 && flush(e) == 0, "the log goes on after the cut");
	t_engine_crash(e);
	e = t_engine_open();
	CHECK(holds(e, buf, 3020, 3, 7004) == 0 && holds(e, buf, 3001, 3, 7001) == 0,
	      "written after the cut, kept by the next crash");
	/* The torn segment is now known flushed (no data check): only the
	 * voided round block keeps the torn round out. */
	CHECK(holds(e, buf, 3000, 1, 7001) == 0, "the torn round stays out once its segment "
	      "counts as flushed");
	CHECK(bc_engine_close(e) == 0, "close");
}

/* The same cache through the file driver (the disk log) and back. */
static void file_driver_interop(char *buf)
{
	struct bc_engine *e = t_engine_open();

	CHECK(wr(e, buf, 3500, 5, 8001) == 0 && flush(e) == 0, "pmem writes");
	t_engine_crash(e);
	t_cfg.cache_path = t_cache_path;
	e = t_engine_open();
	CHECK(holds(e, buf, 3500, 5, 8001) == 0, "the file driver replays the pmem rounds");
	CHECK(wr(e, buf, 3505, 5, 8002) == 0 && flush(e) == 0, "disk-log writes");
	t_engine_crash(e);
	t_cfg.cache_path = pmem_path;
	e = t_engine_open();
	CHECK(holds(e, buf, 3500, 5, 8001) == 0 && holds(e, buf, 3505, 5, 8002) == 0,
	      "pmem replays both");
	CHECK(bc_engine_close(e) == 0, "close");
}

static void v3_on_pmem(char *buf)
{
	struct bc_engine_stats st0, st;
	struct bc_engine *e;
	unsigned i;

	fresh(3);
	e = t_engine_open();
	bc_engine_get_stats(e, &st0);
	for (i = 0; i < 10; i++)
		CHECK(wr(e, buf, i * 7, 1, 900 + i) == 0 && flush(e) == 0, "v3 write %u", i);
	bc_engine_get_stats(e, &st);
	CHECK(st.segments_written - st0.segments_written >= 10,
	      "a v3 cache on pmem uses the disk log (a FLUSH seals): %llu sealed",
	      (unsigned long long)(st.segments_written - st0.segments_written));
	t_engine_crash(e);
	e = t_engine_open();
	for (i = 0; i < 10; i++)
		CHECK(holds(e, buf, i * 7, 1, 900 + i) == 0, "v3 block %u after a crash", i);
	CHECK(bc_engine_close(e) == 0, "close");
}

int main(void)
{
	char *buf = t_alloc(16 * B);

	fresh(0);
	flush_rounds_and_crashes(buf);
	torn_round(buf);
	file_driver_interop(buf);
	v3_on_pmem(buf);
	free(buf);
	t_engine_fixture_done();
	t_cleanup();
	return t_finish("pmem log: FLUSH as a round (20 crashes), torn round cut, file-driver "
			"interop, v3 on pmem");
}
