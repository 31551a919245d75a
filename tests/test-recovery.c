/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Recovery ordering and crash behaviour of the engine, in process, on
 * files.  A "crash" drops the engine without its clean shutdown: whatever
 * was not written to the cache device is lost, as after kill -9.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "engine/engine.h"
#include "format/format.h"
#include "testutil.h"

#define B 4096ull

static int wr(struct bc_engine *e, uint64_t off, uint64_t len, uint32_t ver)
{
	void *buf = t_alloc(len);
	int ret;

	t_fill(buf, len, off, ver);
	ret = t_io(t_loop, bc_engine_target(e), BC_OP_WRITE, 0, off, len, buf);
	free(buf);
	return ret;
}

static int flush(struct bc_engine *e)
{
	return t_io(t_loop, bc_engine_target(e), BC_OP_FLUSH, 0, 0, 0, NULL);
}

/* 0 if [off,len) holds version @ver, 1 if all zero, -1 otherwise. */
static int rd(struct bc_engine *e, uint64_t off, uint64_t len, uint32_t ver)
{
	char *buf = t_alloc(len);
	uint64_t i;
	int ret = t_io(t_loop, bc_engine_target(e), BC_OP_READ, 0, off, len, buf);

	if (ret == 0) {
		ret = -1;
		if (!t_verify(buf, len, off, ver))
			ret = 0;
		else {
			for (i = 0; i < len && !buf[i]; i++)
				;
			if (i == len)
				ret = 1;
		}
	} else {
		ret = -2;
	}
	free(buf);
	return ret;
}

/* An engine without idle writeback: for checks that need data to stay in
 * the cache only (never written back 500 ms after the last request, which
 * on a slow or loaded machine may come in the middle of a test). */
static struct bc_engine *open_noidle(void)
{
	struct bc_engine *e = t_engine_open();
	char why[128];

	CHECK(bc_engine_set(e, "writeback_idle_ms", 0, why, sizeof(why)) == 0, "idle off: %s", why);
	return e;
}

static void test_newer_wins(void)
{
	struct bc_engine *e;
	int r;

	t_engine_fresh(64 << 20, 256 << 20, 0);
	e = t_engine_open();
	CHECK(wr(e, 10 * B, B, 1) == 0 && flush(e) == 0, "write v1");
	CHECK(wr(e, 10 * B, B, 2) == 0 && flush(e) == 0, "write v2");
	CHECK(wr(e, 11 * B, 3 * B, 5) == 0 && flush(e) == 0, "write 11..13");
	CHECK(wr(e, 12 * B, B, 6) == 0 && flush(e) == 0, "overwrite 12");
	CHECK(wr(e, 10 * B, B, 3) == 0, "write v3 (not flushed)");
	t_engine_crash(e);
	e = t_engine_open();
	r = rd(e, 10 * B, B, 2);
	CHECK(r == 0 || rd(e, 10 * B, B, 3) == 0, "block 10 holds v2 or v3 after crash (r=%d)", r);
	CHECK(rd(e, 10 * B, B, 1) != 0, "never the older v1");
	CHECK(rd(e, 11 * B, B, 5) == 0 && rd(e, 13 * B, B, 5) == 0 && rd(e, 12 * B, B, 6) == 0,
	      "newer entry wins within and across segments");
	CHECK(bc_engine_close(e) == 0, "clean close");
}

static void test_discard_wins(void)
{
	struct bc_engine *e;
	struct bc_engine_stats st;
	char *z = t_alloc(B);

	t_engine_fresh(64 << 20, 256 << 20, 0);
	e = open_noidle();
	CHECK(wr(e, 100 * B, 100 * B, 1) == 0 && flush(e) == 0, "write 100..199");
	CHECK(t_io(t_loop, bc_engine_target(e), BC_OP_DISCARD, 0, 100 * B, 50 * B, NULL) == 0, "discard");
	CHECK(t_io(t_loop, bc_engine_target(e), BC_OP_WRITE_ZEROES, 0, 170 * B + 1024, 2 * B, NULL) == 0,
	      "write zeroes, unaligned");
	CHECK(flush(e) == 0, "flush");
	CHECK(rd(e, 100 * B, 50 * B, 0) == 1, "discarded range reads zero before crash");
	t_engine_crash(e);
	e = open_noidle();
	CHECK(rd(e, 100 * B, 50 * B, 0) == 1, "discarded range reads zero after crash");
	CHECK(rd(e, 150 * B, 20 * B, 1) == 0, "rest intact");
	CHECK(rd(e, 170 * B + 1024, 2 * B, 0) == 1, "zeroed range");
	CHECK(rd(e, 170 * B, 1024, 1) == 0 && rd(e, 172 * B + 1024, B - 1024, 1) == 0,
	      "sectors around the zeroed range intact");
	bc_engine_get_stats(e, &st);
	CHECK(st.dirty_blocks >= 100, "replayed dirty blocks: %llu", (unsigned long long)st.dirty_blocks);
	CHECK(bc_engine_close(e) == 0, "clean close");
	free(z);
}

static void test_partial_merge(void)
{
	struct bc_engine *e;
	struct bc_engine_stats st;
	char *buf = t_alloc(B), *want = t_alloc(B);
	uint64_t i;

	t_engine_fresh(64 << 20, 256 << 20, 256 << 10);
	e = t_engine_open();
	CHECK(wr(e, 5 * B, B, 1) == 0 && flush(e) == 0, "full block v1");
	/* Push enough data to seal and write the segment holding block 5. */
	for (i = 0; i < 16; i++)
		CHECK(wr(e, (1000 + i * 64) * B, 64 * B, 9) == 0, "filler");
	CHECK(flush(e) == 0, "flush");
	/* Sectors 2-3 of block 5: needs the old sectors from the cache device. */
	t_fill(want, B, 5 * B, 1);
	t_fill(buf, 1024, 5 * B + 1024, 2);
	memcpy(want + 1024, buf, 1024);
	CHECK(t_io(t_loop, bc_engine_target(e), BC_OP_WRITE, 0, 5 * B + 1024, 1024, buf) == 0, "partial");
	CHECK(flush(e) == 0, "flush");
	bc_engine_get_stats(e, &st);
	CHECK(st.merge_reads >= 1, "merge read happened (%llu)", (unsigned long long)st.merge_reads);
	memset(buf, 0, B);
	CHECK(t_io(t_loop, bc_engine_target(e), BC_OP_READ, 0, 5 * B, B, buf) == 0 && !memcmp(buf, want, B),
	      "merged block before crash");
	t_engine_crash(e);
	e = t_engine_open();
	memset(buf, 0, B);
	CHECK(t_io(t_loop, bc_engine_target(e), BC_OP_READ, 0, 5 * B, B, buf) == 0 && !memcmp(buf, want, B),
	      "merged block after crash");
	/* A partial write to a never-cached block keeps the origin's sectors. */
	t_fill(buf, 512, 7 * B + 512, 4);
	CHECK(t_io(t_loop, bc_engine_target(e), BC_OP_WRITE, 0, 7 * B + 512, 512, buf) == 0 && flush(e) == 0,
	      "partial on uncached");
	CHECK(rd(e, 7 * B + 512, 512, 4) == 0 && rd(e, 7 * B, 512, 0) == 1, "partial hit + origin sectors");
	CHECK(bc_engine_close(e) == 0, "clean close");
	free(buf);
	free(want);
}

static void test_wrap_and_writeback(void)
{
	struct bc_engine *e;
	struct bc_engine_stats st;
	uint64_t chunk = 64 * B, n = (96ull << 20) / chunk, i, bad = 0;
	uint64_t *order = calloc(n, sizeof(*order));

	t_engine_fresh(24 << 20, 128 << 20, 0); /* 23 segments: 96 MiB wraps the ring 4 times */
	e = t_engine_open();
	for (i = 0; i < n; i++)
		order[i] = i;
	for (i = n - 1; i > 0; i--) {
		uint64_t j = (uint64_t)rand() % (i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (i = 0; i < n; i++)
		if (wr(e, order[i] * chunk, chunk, 7) != 0)
			bad++;
	CHECK(bad == 0, "%llu writes failed", (unsigned long long)bad);
	CHECK(flush(e) == 0, "flush");
	bc_engine_get_stats(e, &st);
	CHECK(st.writeback_blocks > 0 && st.writeback_batches > 0, "writeback ran (%llu blocks)",
	      (unsigned long long)st.writeback_blocks);
	CHECK(st.writeback_ios < st.writeback_blocks, "writeback merged blocks: %llu ios for %llu blocks",
	      (unsigned long long)st.writeback_ios, (unsigned long long)st.writeback_blocks);
	for (i = 0, bad = 0; i < n; i++)
		if (rd(e, i * chunk, chunk, 7) != 0)
			bad++;
	CHECK(bad == 0, "%llu chunks wrong before crash", (unsigned long long)bad);
	t_engine_crash(e);
	e = t_engine_open();
	for (i = 0, bad = 0; i < n; i++)
		if (rd(e, i * chunk, chunk, 7) != 0)
			bad++;
	CHECK(bad == 0, "%llu chunks wrong after crash", (unsigned long long)bad);
	CHECK(bc_engine_close(e) == 0, "clean close");
	free(order);
}

static void corrupt(const char *path, uint64_t off, size_t len)
{
	int fd = open(path, O_WRONLY);
	char junk[4096];

	memset(junk, 0xa5, sizeof(junk));
	CHECK(fd >= 0 && pwrite(fd, junk, len, (off_t)off) == (ssize_t)len, "corrupt %s", path);
	close(fd);
}

static uint64_t seg_off(uint64_t seq, uint32_t nseg)
{
	return (1 << 20) + (seq % nseg) * (1ull << 20);
}

/* Rewrite a segment header's flushed_seq (and its CRC). */
static void set_flushed_seq(uint64_t off, uint64_t flushed, uint32_t hb)
{
	struct bc_seg_hdr *h = t_alloc(hb * B);
	int fd = open(t_cache_path, O_RDWR);

	CHECK(fd >= 0 && pread(fd, h, hb * B, (off_t)off) == (ssize_t)(hb * B), "read header");
	CHECK(h->flushed_seq >= flushed, "header had flushed_seq %llu", (unsigned long long)h->flushed_seq);
	h->flushed_seq = flushed;
	bc_seg_hdr_seal(h, hb);
	CHECK(pwrite(fd, h, hb * B, (off_t)off) == (ssize_t)(hb * B), "write header");
	close(fd);
	free(h);
}

/* Format v3: a FLUSH seals its segment. */
static void test_torn_and_stale(void)
{
	struct bc_engine *e;
	struct bc_engine_stats st;
	uint64_t seqA, seqB, off;
	uint32_t nseg = (uint32_t)(((32ull << 20) - (1 << 20)) >> 20), hb = 2;

	t_format_version = 3;
	t_engine_fresh(32 << 20, 128 << 20, 0);
	t_format_version = 0;
	e = open_noidle();
	CHECK(wr(e, 0, 8 * B, 1) == 0 && flush(e) == 0, "A");
	bc_engine_get_stats(e, &st);
	seqA = st.head_seq - 1;
	CHECK(wr(e, 50 * B, 8 * B, 2) == 0 && flush(e) == 0, "B");
	CHECK(wr(e, 80 * B, 8 * B, 3) == 0 && flush(e) == 0, "C");
	bc_engine_get_stats(e, &st);
	seqB = st.head_seq - 2;
	CHECK(seqB == seqA + 1, "one segment per flushed write (%llu %llu)", (unsigned long long)seqA,
	      (unsigned long long)seqB);
	t_engine_crash(e);
	/* Make it look as if B and C were in flight together (C's header
	 * records only A as durable), then tear B's data: C, newer and
	 * valid, sits beyond the torn segment. */
	set_flushed_seq(seg_off(seqB + 1, nseg), seqA, hb);
	off = seg_off(seqB, nseg) + (hb + 3) * B;
	corrupt(t_cache_path, off, 4096);
	e = open_noidle();
	CHECK(rd(e, 0, 8 * B, 1) == 0, "A intact");
	/* The log ends at the torn entry: B's first three blocks stay. */
	CHECK(rd(e, 50 * B, 3 * B, 2) == 0, "B's entries before the torn one replayed");
	CHECK(rd(e, 53 * B, 5 * B, 0) == 1, "B's torn entry and those after it not replayed");
	CHECK(rd(e, 80 * B, 8 * B, 0) == 1, "C beyond the torn segment not replayed");
	/* New data takes C's position; C's old header must never come back. */
	CHECK(wr(e, 200 * B, 8 * B, 4) == 0 && flush(e) == 0, "D");
	t_engine_crash(e);
	e = open_noidle();
	CHECK(rd(e, 200 * B, 8 * B, 4) == 0, "D intact");
	CHECK(rd(e, 80 * B, 8 * B, 0) == 1, "stale C stays dead");
	/* D's header vouches for B as flushed, so this recovery did not verify
	 * B's data: its header must have been cut to the intact entries. */
	CHECK(rd(e, 50 * B, 3 * B, 2) == 0, "B's intact entries still there");
	CHECK(rd(e, 53 * B, 5 * B, 0) == 1, "B's torn entries stay dropped");
	/* A garbled header of the newest segment: not replayed, start-up fine. */
	bc_engine_get_stats(e, &st);
	off = (1 << 20) + ((st.head_seq - 1) % nseg) * (1ull << 20) + 100;
	t_engine_crash(e);
	corrupt(t_cache_path, off, 16);
	e = open_noidle();
	CHECK(rd(e, 200 * B, 8 * B, 0) == 1, "D with garbled header not replayed");
	CHECK(rd(e, 0, 8 * B, 1) == 0, "A still intact");
	CHECK(bc_engine_close(e) == 0, "clean close");
}

/* Format v4: a FLUSH is a round of the open segment (header and A, then
 * round blocks for B and C, each with its entries after it).  B's data torn:
 * the log ends before B's round (its block zeroed on the device, so it
 * stays dead once the segment counts as flushed). */
static void test_torn_round(void)
{
	struct bc_engine *e;
	struct bc_engine_stats st;
	uint64_t seq;
	uint32_t nseg = (uint32_t)(((32ull << 20) - (1 << 20)) >> 20), hb = 2;

	t_engine_fresh(32 << 20, 128 << 20, 0);
	e = open_noidle();
	CHECK(wr(e, 0, 8 * B, 1) == 0 && flush(e) == 0, "A");
	CHECK(wr(e, 50 * B, 8 * B, 2) == 0 && flush(e) == 0, "B");
	CHECK(wr(e, 80 * B, 8 * B, 3) == 0 && flush(e) == 0, "C");
	bc_engine_get_stats(e, &st);
	seq = st.head_seq - 1;
	CHECK(st.segments_written == 0 && st.open_segment_writes == 3,
	      "three FLUSHes: three writes of one open segment, none sealed (%llu %llu)",
	      (unsigned long long)st.segments_written, (unsigned long long)st.open_segment_writes);
	t_engine_crash(e);
	/* Slots: A 0-7, B's round block 8 and its entries 9-16, C's 17-25. */
	corrupt(t_cache_path, seg_off(seq, nseg) + (hb + 12) * B, 4096);
	e = open_noidle();
	CHECK(rd(e, 0, 8 * B, 1) == 0, "A intact");
	CHECK(rd(e, 50 * B, 8 * B, 0) == 1, "B's round, torn, not replayed");
	CHECK(rd(e, 80 * B, 8 * B, 0) == 1, "C after the torn round not replayed");
	CHECK(wr(e, 200 * B, 8 * B, 4) == 0 && flush(e) == 0, "D");
	t_engine_crash(e);
	e = open_noidle();
	CHECK(rd(e, 0, 8 * B, 1) == 0 && rd(e, 200 * B, 8 * B, 4) == 0, "A and D intact");
	CHECK(rd(e, 50 * B, 8 * B, 0) == 1 && rd(e, 80 * B, 8 * B, 0) == 1, "B and C stay dead");
	t_engine_crash(e);
}

static void test_clean_restart(void)
{
	struct bc_engine *e;
	struct bc_sb_disk *two = t_alloc(2 * B);
	int fd;

	t_engine_fresh(32 << 20, 128 << 20, 0);
	e = t_engine_open();
	CHECK(wr(e, 3 * B, 5 * B + 512, 8) == 0, "write, no flush");
	CHECK(bc_engine_close(e) == 0, "clean close writes everything");
	fd = open(t_cache_path, O_RDONLY);
	CHECK(fd >= 0 && pread(fd, two, 2 * B, 0) == (ssize_t)(2 * B), "read sb");
	close(fd);
	{
		const struct bc_sb_disk *sb = bc_sb_pick(&two[0], &two[1], NULL, NULL);

		CHECK(sb && (sb->flags & BC_SB_CLEAN), "superblock marked clean");
	}
	e = t_engine_open();
	CHECK(rd(e, 3 * B, 5 * B + 512, 8) == 0, "data intact after clean restart");
	CHECK(bc_engine_close(e) == 0, "clean close");
	free(two);
}

static uint64_t batches(struct bc_engine *e)
{
	struct bc_engine_stats st;

	bc_engine_get_stats(e, &st);
	return st.writeback_batches;
}

/* 0 if the origin file holds version @ver at [off, off+len). */
static int origin_has(uint64_t off, uint64_t len, uint32_t ver)
{
	char *buf = t_alloc(len);
	int fd = open(t_origin_path, O_RDONLY), ret = -1;

	if (fd >= 0 && pread(fd, buf, len, (off_t)off) == (ssize_t)len)
		ret = t_verify(buf, len, off, ver);
	if (fd >= 0)
		close(fd);
	free(buf);
	return ret;
}

/*
 * Writeback never merges writes that a client FLUSH separates (one batch per
 * FLUSH epoch, so an interrupted batch leaves the origin as a power cut in
 * that epoch would), also after a crash: the epochs come back from the
 * segment headers.  With writeback_ordered=0 batches span FLUSHes.
 */
static void test_flush_epochs(void)
{
	struct bc_engine *e;
	char why[128];
	uint64_t n[2];
	unsigned k;

	for (k = 0; k < 2; k++) {
		t_engine_fresh(32 << 20, 128 << 20, 0);
		e = t_engine_open();
		CHECK(bc_engine_set(e, "writeback_paused", 1, why, sizeof(why)) == 0, "pause: %s", why);
		CHECK(wr(e, 0, 4 * B, 1) == 0 && flush(e) == 0, "epoch 1");
		CHECK(wr(e, 2 * B, 4 * B, 2) == 0 && flush(e) == 0, "epoch 2");
		CHECK(wr(e, 0, B, 3) == 0 && flush(e) == 0, "epoch 3");
		/* one epoch over three segments: a single batch (writeback_batch 4) */
		CHECK(wr(e, 1 << 20, 2 << 20, 4) == 0 && flush(e) == 0, "epoch 4");
		CHECK(batches(e) == 0, "paused: nothing written back yet");
		t_engine_crash(e);
		e = t_engine_open();
		CHECK(bc_engine_set(e, "writeback_ordered", !k, why, sizeof(why)) == 0, "ordered: %s",
		      why);
		CHECK(t_drain(e) == 0, "drain");
		n[k] = batches(e);
		CHECK(rd(e, 0, B, 3) == 0 && rd(e, B, B, 1) == 0 && rd(e, 2 * B, 4 * B, 2) == 0 &&
		      rd(e, 1 << 20, 2 << 20, 4) == 0, "data intact (ordered=%u)", !k);
		CHECK(origin_has(0, B, 3) == 0 && origin_has(B, B, 1) == 0 &&
		      origin_has(2 * B, 4 * B, 2) == 0 && origin_has(1 << 20, 2 << 20, 4) == 0,
		      "origin complete after drain (ordered=%u)", !k);
		CHECK(bc_engine_close(e) == 0, "clean close");
	}
	CHECK(n[0] == 4, "ordered writeback: one batch per FLUSH epoch, want 4, got %llu",
	      (unsigned long long)n[0]);
	CHECK(n[1] < n[0], "unordered writeback merges across FLUSHes: %llu batches vs %llu",
	      (unsigned long long)n[1], (unsigned long long)n[0]);
}

int main(void)
{
	srand(3);
	test_newer_wins();
	test_discard_wins();
	test_partial_merge();
	test_wrap_and_writeback();
	test_torn_and_stale();
	test_torn_round();
	test_clean_restart();
	test_flush_epochs();
	t_engine_fixture_done();
	return t_finish("recovery ordering, discard, partial merge, wrap+writeback, torn/stale segments, torn rounds, FLUSH epochs in writeback");
}
