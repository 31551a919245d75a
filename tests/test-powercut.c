/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Power-cut simulator and model checker.
 *
 * Each workload (tests/powercut-run.c) runs the engine in process on
 * recording in-memory devices (tests/recdev.c) that log every device
 * write, discard, zero and flush in one global order with the times of
 * submission and completion, and complete IO out of order after random
 * delays.  The client requests
 * (overwrites, partial-sector writes, FUA writes, FLUSH, DISCARD,
 * WRITE_ZEROES, reads, several in flight) are logged in the same order.
 * Writeback runs all along (low watermark) and the ring wraps many times.
 *
 * Then the record is cut at every device flush completion and at random
 * points in between.  For a cut, everything durable (a write completed
 * before a flush that was submitted after it and completed before the
 * cut) is on the images; every other write submitted before the cut may or
 * may not be, independently, and one may be torn.  A new engine recovers
 * each image and the whole export is read back and checked sector by
 * sector against the model (tests/powercut-model.c, powercut-cut.c): a
 * sector holds the value of the newest request acknowledged before the
 * last acknowledged FLUSH was submitted (or of an acknowledged FUA
 * request), or of a later request submitted before the cut; never an older
 * value, never garbage, never another sector's data; recovery must succeed.  Every fifth image
 * then lives on: more writes (partial ones merge with recovered blocks) and
 * a FLUSH, another crash, and a second recovery must read exactly what the
 * first one did plus the new writes (stale segments beyond the recovered
 * end of the log must never come back).  Reads during the workload are
 * checked too, and any error the engine logs counts as a violation.
 *
 * Deterministic for a seed: the devices complete IO in an order drawn from
 * it, writeback is driven by watermarks (no idle timer) and the FLUSH
 * batching deadline is long; when nothing is in flight and the engine
 * waits for that deadline, the workload sends a FLUSH instead.
 *
 * Environment: BLKCACHE_POWERCUT_SEED (seeds, comma-separated, default 1,3),
 * BLKCACHE_POWERCUT_CUTS (cut points per seed, default 1200), BLKCACHE_POWERCUT_BREAK (self-test of
 * the checker: 1 loses some durable cache writes, 2 makes every
 * acknowledged write mandatory; both must report violations).
 */
#include "powercut.h"

#define KiB 1024ull
#define MiB (1024ull * 1024)

static const struct pc_wl workloads[] = {
	{
		.name = "mixed", .cache_size = 10 * MiB, .origin_size = 16 * MiB + 4 * KiB,
		.seg_size = 256 << 10, .nr_buffers = 0, .write_bytes = 36 * MiB, .qd_max = 16,
		.p_flush = 25, .p_fua = 30, .p_discard = 30, .p_zeroes = 30, .p_read = 150,
		.p_hot = 30, .p_large = 4, .p_partial = 40, .spread = 2,
		.dirty_high = 10, .dirty_low = 0, .batch = 4, .inflight = 16, .ordered = 1,
		.reappend = 25, .promote_hits = 1, .gap = 8,
	},
	{
		.name = "small-sync", .cache_size = 8 * MiB, .origin_size = 16 * MiB + 4 * KiB,
		.seg_size = 256 << 10, .nr_buffers = 4, .write_bytes = 20 * MiB, .qd_max = 8,
		.p_flush = 60, .p_fua = 80, .p_discard = 20, .p_zeroes = 40, .p_read = 40,
		.p_hot = 50, .p_large = 1, .p_partial = 70, .spread = 3,
		.dirty_high = 1, .dirty_low = 0, .batch = 1, .inflight = 4, .ordered = 1,
		.reappend = 50, .promote_hits = 1,
	},
	{
		.name = "large-unordered", .cache_size = 12 * MiB, .origin_size = 16 * MiB + 4 * KiB,
		.seg_size = 256 << 10, .nr_buffers = 8, .write_bytes = 48 * MiB, .qd_max = 32,
		.p_flush = 15, .p_fua = 15, .p_discard = 40, .p_zeroes = 30, .p_read = 100,
		.p_hot = 20, .p_large = 15, .p_partial = 30, .spread = 4,
		.dirty_high = 20, .dirty_low = 5, .batch = 16, .inflight = 64, .ordered = 0,
		.reappend = 0, .promote_hits = 2, .gap = 64,
	},
	{
		/* Few FLUSHes: writes are acknowledged by writes of the open
		 * segment that leave it open (log/openwrite.c). */
		.name = "written-acks", .cache_size = 10 * MiB, .origin_size = 16 * MiB + 4 * KiB,
		.seg_size = 256 << 10, .nr_buffers = 4, .write_bytes = 24 * MiB, .qd_max = 16,
		.p_flush = 5, .p_fua = 10, .p_discard = 30, .p_zeroes = 30, .p_read = 100,
		.p_hot = 40, .p_large = 2, .p_partial = 40, .spread = 3,
		.dirty_high = 10, .dirty_low = 0, .batch = 4, .inflight = 16, .ordered = 1,
		.reappend = 25, .promote_hits = 1, .gap = 8, .written_acks = true,
	},
	{
		/* Rare FLUSHes, FUA writes, overwrites of a hot region, high
		 * watermarks: reclaim carries dirty segments forward (re-appends
		 * their live blocks) instead of writing them back, and drops
		 * superseded versions -- also of FUA writes. */
		.name = "carry", .cache_size = 8 * MiB, .origin_size = 16 * MiB + 4 * KiB,
		.seg_size = 256 << 10, .nr_buffers = 4, .write_bytes = 32 * MiB, .qd_max = 16,
		.p_flush = 1, .p_fua = 60, .p_discard = 2, .p_zeroes = 2, .p_read = 100,
		.p_hot = 95, .p_large = 0, .p_partial = 30, .spread = 3,
		.dirty_high = 90, .dirty_low = 70, .batch = 4, .inflight = 16, .ordered = 1,
		.reappend = 25, .promote_hits = 1, .carry = 90,
	},
	{
		/* Format v3: a FLUSH seals the open segment, and the seal
		 * rewrites the header of a segment written in rounds. */
		.name = "v3-seals", .cache_size = 10 * MiB, .origin_size = 16 * MiB + 4 * KiB,
		.seg_size = 256 << 10, .nr_buffers = 4, .write_bytes = 24 * MiB, .qd_max = 16,
		.p_flush = 25, .p_fua = 30, .p_discard = 30, .p_zeroes = 30, .p_read = 100,
		.p_hot = 40, .p_large = 2, .p_partial = 40, .spread = 3,
		.dirty_high = 10, .dirty_low = 0, .batch = 4, .inflight = 16, .ordered = 1,
		.reappend = 25, .promote_hits = 1, .gap = 8, .written_acks = true,
		.format_version = 3,
	},
};
#define NWL (sizeof(workloads) / sizeof(workloads[0]))

int main(void)
{
	/* Seed 3 found writeback marking blocks clean before the superblock
	 * recording them as written back was durable. */
	return pc_main(workloads, NWL, "", "1,3", 1200);
}
