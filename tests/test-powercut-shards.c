/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The power-cut simulator and model checker (tests/test-powercut.c says
 * how it works) on one origin cached as shards (format v5, docs/shards.md):
 * the shards share the cache device (each its own ring) and the origin;
 * a request may cross stripes and so shards, a FLUSH covers every shard,
 * and every shard recovers its own ring after each cut.  Every cut also
 * checks the origin image alone: it must be a prefix of the FLUSH history
 * (powercut-prefix.c) -- across shards, which is what the writeback epoch
 * gate keeps (lib/cache/shards_gate.c); the run must have waited at the
 * gate, or it would not test it.  The shards run on the one loop
 * (one_thread), so a seed replays exactly.
 *
 * Environment: BLKCACHE_POWERCUT_SEED (default 1,3), BLKCACHE_POWERCUT_CUTS
 * (per seed, default 1200), BLKCACHE_POWERCUT_BREAK (as test-powercut).
 */
#include "powercut.h"

#define KiB 1024ull
#define MiB (1024ull * 1024)

static const struct pc_wl workloads[] = {
	{
		/* One origin as 2 shards (format v5, every shard on the one
		 * loop): requests cross 64 KiB stripes, a FLUSH covers both
		 * shards, and the origin alone is a prefix of the FLUSH history
		 * at every cut (the writeback epoch gate). */
		.name = "shards", .cache_size = 12 * MiB, .origin_size = 16 * MiB + 4 * KiB,
		.seg_size = 256 << 10, .nr_buffers = 4, .write_bytes = 32 * MiB, .qd_max = 16,
		.p_flush = 25, .p_fua = 30, .p_discard = 20, .p_zeroes = 20, .p_read = 100,
		.p_hot = 30, .p_large = 4, .p_partial = 40, .spread = 3,
		.dirty_high = 10, .dirty_low = 0, .batch = 4, .inflight = 16, .ordered = 1,
		.reappend = 25, .promote_hits = 1, .prefix = true, .shards = 2, .stripe_blocks = 16,
	},
	{
		/* Three shards, rare FLUSHes, written acks (rounds keep the open
		 * segment open across FLUSHes: a shard the gate waits for seals
		 * it), small stripes. */
		.name = "shards-3-written-acks", .cache_size = 16 * MiB,
		.origin_size = 16 * MiB + 4 * KiB, .seg_size = 256 << 10, .nr_buffers = 4,
		.write_bytes = 24 * MiB, .qd_max = 16,
		.p_flush = 8, .p_fua = 20, .p_discard = 20, .p_zeroes = 20, .p_read = 100,
		.p_hot = 40, .p_large = 2, .p_partial = 40, .spread = 3,
		.dirty_high = 10, .dirty_low = 0, .batch = 4, .inflight = 16, .ordered = 1,
		.reappend = 25, .promote_hits = 1, .written_acks = true, .prefix = true,
		.shards = 3, .stripe_blocks = 4,
	},
};
#define NWL (sizeof(workloads) / sizeof(workloads[0]))

int main(void)
{
	return pc_main(workloads, NWL, "one origin as shards; ", "1,3", 1200);
}
