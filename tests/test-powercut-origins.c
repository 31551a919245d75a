/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Power-cut simulator and model checker with three origins on one cache
 * (format v3, issue 14).
 *
 * One recording cache device and three recording origin devices, all in
 * the one global event order (tests/recdev.c).  The cache is formatted
 * alone (bc_cache_format), three origins "a", "b", "c" are added
 * (bc_origin_add, 30 % of the ring each) and all are opened as serve opens
 * them (bc_cache_open: one engine per origin on the shared cache device and
 * loop).  The workload (tests/powercut-run.c) interleaves requests across
 * the three exports: overwrites, partial-sector writes, FUA, FLUSH (of one
 * origin), DISCARD, WRITE_ZEROES, reads, several in flight; writeback runs
 * in bursts between watermarks (so that each origin lags behind its own
 * FLUSH history) and every origin's ring wraps.
 *
 * The record is cut at every device flush completion and at random points
 * (tests/powercut-cut.c); for each cut, images of the four devices are
 * built (what is durable, plus any subset of what is not, one write torn),
 * the cache is recovered with all three origins (bc_cache_open) and each
 * export is read back and checked against its own origin's model
 * (tests/powercut-model.c): every sector holds the value of the newest
 * request to that origin acknowledged before that origin's last
 * acknowledged FLUSH was submitted (or of an acknowledged FUA request), or
 * of a later request to it submitted before the cut; never older, never
 * garbage, never another sector's or another origin's data (request ids
 * are global, so another origin's data is a value never written there).
 * A FLUSH covers its own origin only: another origin's FLUSH makes nothing
 * mandatory here.  Each origin image alone is also checked before
 * recovery (tests/powercut-prefix.c): a state its export could be in after
 * a power cut at some point of its own FLUSH history (writeback's
 * point-in-time property).  Every fifth image lives on: more writes and a
 * FLUSH on every origin, a crash, and a second recovery must read exactly
 * the same.  The written-acks workload is also cut as a killed process.
 *
 * Then the checker checks itself: each BLKCACHE_POWERCUT_BREAK mode, on a
 * smaller run, must report violations (1: some durable cache writes lost;
 * 2: every acknowledged write mandatory; 3: a FLUSH of any origin covers
 * every origin's writes; 4: writeback unordered, batches across FLUSHes,
 * which the origin-alone check must catch).
 *
 * Deterministic for a seed (no verdict depends on the machine's speed):
 * devices complete IO in an order drawn from the seed, writeback is driven
 * by watermarks, the FLUSH deadline is long and a quiet engine gets a FLUSH.
 *
 * Environment: BLKCACHE_POWERCUT_SEED (seeds, comma-separated, default 1),
 * BLKCACHE_POWERCUT_CUTS (cut points per seed, default 1600: over 1000
 * power cuts, and kills),
 * BLKCACHE_POWERCUT_BREAK (run the main check broken: it must fail),
 * BLKCACHE_POWERCUT_SELFTEST (0: skip the self-tests).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "powercut.h"

#define KiB 1024ull
#define MiB (1024ull * 1024)

static const struct pc_wl workloads[] = {
	{
		.name = "three-mixed", .cache_size = 16 * MiB, .origin_size = 8 * MiB + 4 * KiB,
		.seg_size = 256 << 10, .nr_buffers = 4, .write_bytes = 36 * MiB, .qd_max = 16,
		.p_flush = 25, .p_fua = 30, .p_discard = 30, .p_zeroes = 30, .p_read = 150,
		.p_hot = 30, .p_large = 4, .p_partial = 40, .spread = 2,
		.dirty_high = 40, .dirty_low = 20, .batch = 4, .inflight = 16, .ordered = 1,
		.reappend = 25, .promote_hits = 1, .gap = 8,
		.origins = 3, .share_percent = 30, .prefix = true,
	},
	{
		/* Few FLUSHes, writes acknowledged once written (open-segment
		 * rounds); its cuts also model a killed process. */
		.name = "three-written-acks", .cache_size = 16 * MiB,
		.origin_size = 8 * MiB + 4 * KiB, .seg_size = 256 << 10, .nr_buffers = 4,
		.write_bytes = 24 * MiB, .qd_max = 16,
		.p_flush = 10, .p_fua = 10, .p_discard = 30, .p_zeroes = 30, .p_read = 100,
		.p_hot = 40, .p_large = 2, .p_partial = 40, .spread = 3,
		.dirty_high = 40, .dirty_low = 20, .batch = 4, .inflight = 16, .ordered = 1,
		.reappend = 25, .promote_hits = 1, .gap = 8, .written_acks = true,
		.origins = 3, .share_percent = 30, .prefix = true,
	},
};
#define NWL (sizeof(workloads) / sizeof(workloads[0]))

/* The self-tests' run: smaller, FLUSH-heavy. */
static const struct pc_wl selftest_wl = {
	.name = "three-selftest", .cache_size = 16 * MiB, .origin_size = 8 * MiB + 4 * KiB,
	.seg_size = 256 << 10, .nr_buffers = 4, .write_bytes = 12 * MiB, .qd_max = 16,
	.p_flush = 40, .p_fua = 30, .p_discard = 30, .p_zeroes = 30, .p_read = 100,
	.p_hot = 50, .p_large = 4, .p_partial = 40, .spread = 2,
	.dirty_high = 40, .dirty_low = 20, .batch = 4, .inflight = 16, .ordered = 1,
	.reappend = 25, .promote_hits = 1, .gap = 8,
	.origins = 3, .share_percent = 30, .prefix = true,
};

#define SELFTEST_CUTS 150

/* Each break mode must make the checker report violations. */
static int selftests(void)
{
	static const char *const what[] = {
		NULL, "durable cache writes lost", "every acknowledged write mandatory",
		"a FLUSH of any origin covers every origin", "writeback across FLUSHes (origin alone)",
	};
	struct pc_totals saved = pc_tot;
	int mode, failed = 0;

	for (mode = 1; mode <= 4; mode++) {
		uint64_t v, pv;

		memset(&pc_tot, 0, sizeof(pc_tot));
		pc_tot.printed = 1000; /* expected: not printed */
		pc_break = mode;
		if (pc_run_seed(&selftest_wl, 1, 7, SELFTEST_CUTS) < 0) {
			fprintf(stderr, "FAIL: self-test %d: the run failed\n", mode);
			failed = 1;
			continue;
		}
		v = pc_tot.violations;
		pv = pc_tot.prefix_violations;
		printf("self-test %d (%s): %llu cut points, %llu images: %llu violations (%llu of an "
		       "origin alone)\n", mode, what[mode], (unsigned long long)pc_tot.cuts,
		       (unsigned long long)pc_tot.images, (unsigned long long)v,
		       (unsigned long long)pv);
		if (mode == 4 ? pv == 0 : v == 0) {
			fprintf(stderr, "FAIL: self-test %d (%s): the checker found no violation\n",
				mode, what[mode]);
			failed = 1;
		}
	}
	pc_break = 0;
	pc_tot = saved;
	return failed;
}

int main(void)
{
	const char *s = getenv("BLKCACHE_POWERCUT_SEED"), *c = getenv("BLKCACHE_POWERCUT_CUTS");
	const char *st = getenv("BLKCACHE_POWERCUT_SELFTEST");
	const char *seeds = s ? s : "1";
	unsigned cuts = c ? (unsigned)strtoul(c, NULL, 0) : 1600;
	struct timespec t0, t1;
	int ret, selftest_failed = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	pc_main_init();
	printf("three origins on one cache; seeds %s (BLKCACHE_POWERCUT_SEED), %u cut points per "
	       "seed (BLKCACHE_POWERCUT_CUTS)\n", seeds, cuts);
	ret = pc_main_seeds(workloads, NWL, seeds, cuts);
	if (ret == 2)
		return 2;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	pc_main_done((double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	if (!ret && !pc_break_mode() && !(st && !strcmp(st, "0")))
		selftest_failed = selftests();
	bc_loop_free(pc_loop);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%.1f s in all\n",
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return ret || selftest_failed || pc_tot.violations ? 1 : 0;
}
