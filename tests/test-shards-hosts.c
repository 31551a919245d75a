/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A shard set with several hosts (struct bc_shards_config.nhosts): threads
 * of the caller that each run a loop, submit requests to the whole set
 * through their own target (bc_shards_host_target) and run one shard.
 *
 * 3 shards on one cache device (format --shards 3, 16 KiB stripes), 2
 * hosts: host 0 (the main thread) runs shard 0, host 1 (a thread of the
 * test) runs shard 1, shard 2 has its own thread -- every kind of hop.
 * Each host writes, reads back and FLUSHes its own half of the export
 * with requests of 1..24 blocks that cross stripes (so shards), checked
 * against its shadow copy on every read; meanwhile host 0 changes a
 * tunable on every shard (a control call that host 1's thread must
 * serve).  After a clean close the whole export is checked again through
 * a set opened with one host.  Bad host counts are refused with a reason.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blkcache/cache.h"
#include "blkcache/shards.h"
#include "testutil.h"

#define MiB (1024ull * 1024)
#define B 4096ull
#define NSH 3
#define STRIPE_BLOCKS 4
#define ORIGIN (16 * MiB)
#define HALF (ORIGIN / 2)
#define OPS 3000

static char *cache, *origin;
static uint8_t *shadow; /* the whole export */
static atomic_int done1, stop1;

struct host_run {
	unsigned k;
	struct bc_loop *loop;
	const struct bc_target *t;
	uint64_t rng;
	unsigned bad;
};

/* Host @h: its half of the export, written and read back at random. */
static void workload(struct host_run *h)
{
	uint64_t base = h->k * HALF, nblk = HALF / B;
	uint8_t *buf = t_alloc(24 * B);
	unsigned i;

	for (i = 0; i < OPS; i++) {
		uint64_t n = 1 + t_rnd(&h->rng, 24), blk = t_rnd(&h->rng, nblk - n);
		uint64_t off = base + blk * B, len = n * B;
		unsigned pick = (unsigned)t_rnd(&h->rng, 100);

		if (pick < 50) {
			memset(buf, (int)(1 + t_rnd(&h->rng, 250)), len);
			buf[0] = (uint8_t)i; /* not all bytes alike */
			memcpy(shadow + off, buf, len);
			if (t_io(h->loop, h->t, BC_OP_WRITE, 0, off, len, buf))
				h->bad++;
		} else if (pick < 95) {
			if (t_io(h->loop, h->t, BC_OP_READ, 0, off, len, buf) || memcmp(buf, shadow + off, len))
				h->bad++;
		} else if (t_io(h->loop, h->t, BC_OP_FLUSH, 0, 0, 0, NULL)) {
			h->bad++;
		}
	}
	free(buf);
}

static void *host1_main(void *arg)
{
	struct host_run *h = arg;

	workload(h);
	atomic_store(&done1, 1);
	/* Shard 1 is this thread's to run until the set stops using it. */
	while (!atomic_load(&stop1))
		bc_loop_run_once(h->loop, 1);
	return NULL;
}

static struct bc_shards *open_set(struct bc_loop *host, unsigned nhosts, struct bc_loop **hosts,
				  char *why, size_t whylen, int *ret)
{
	struct bc_engine_config ec = { .cache_path = cache, .flush_deadline_us = 100 };
	struct bc_shards_cache_config cc = { .engine = &ec, .queue_depth = 64, .nhosts = nhosts,
					     .hosts = hosts };
	struct bc_shards *s = NULL;

	*ret = bc_shards_open_cache(&s, host, &cc, why, whylen);
	return s;
}

static void refused(struct bc_loop *host, struct bc_loop *l1)
{
	struct bc_loop *more[NSH] = { l1, l1, l1 };
	char why[512] = "";
	int ret;

	CHECK(!open_set(host, NSH + 1, more, why, sizeof(why), &ret) && ret == -EINVAL &&
	      strstr(why, "hosts"), "4 hosts for 3 shards refused: %s", why);
}

int main(void)
{
	struct bc_format_config f = { .segment_size = 256 << 10, .shards = NSH,
				      .stripe_blocks = STRIPE_BLOCKS };
	struct host_run h0 = { .k = 0, .rng = 11 }, h1 = { .k = 1, .rng = 23 };
	struct bc_loop *host, *l1;
	struct bc_engine_stats st;
	struct bc_shards *s;
	uint8_t *all;
	pthread_t th;
	char why[512] = "";
	int ret;

	origin = t_file("origin.img", ORIGIN);
	cache = t_file("sharded.img", NSH * 16 * MiB);
	f.cache_path = cache;
	f.origin_path = origin;
	CHECK(bc_cache_format(&f, why, sizeof(why)) == 0 && strstr(why, "as 3 shards"), "format: %s", why);
	shadow = t_alloc(ORIGIN);
	memset(shadow, 0, ORIGIN);
	CHECK(bc_loop_new(&host, 256) == 0 && bc_loop_new(&l1, 256) == 0, "loops");
	refused(host, l1);

	s = open_set(host, 2, &l1, why, sizeof(why), &ret);
	CHECK(ret == 0 && s, "open with 2 hosts: %s", why);
	if (!s)
		return t_finish("shards with hosts");
	CHECK(bc_shards_host_target(s, 2) == NULL && bc_shards_host_target(s, 0) == bc_shards_target(s),
	      "host targets: 0 is the set's, there is no host 2");
	h0.loop = host;
	h0.t = bc_shards_host_target(s, 0);
	h1.loop = l1;
	h1.t = bc_shards_host_target(s, 1);
	CHECK(pthread_create(&th, NULL, host1_main, &h1) == 0, "host 1's thread");
	/* A control call while host 1's thread runs shard 1. */
	CHECK(bc_shards_set(s, "writeback_idle_ms", 1, why, sizeof(why)) == 0, "set on every shard: %s",
	      why);
	workload(&h0);
	while (!atomic_load(&done1))
		bc_loop_run_once(host, 1); /* shard 0 serves host 1 meanwhile */
	CHECK(bc_shards_get_stats(s, &st) == 0 && st.writes > 0, "stats of a running set (%llu writes)",
	      (unsigned long long)st.writes);
	atomic_store(&stop1, 1);
	pthread_join(th, NULL);
	CHECK(h0.bad == 0 && h1.bad == 0, "host 0: %u, host 1: %u failed or mismatched requests",
	      h0.bad, h1.bad);
	bc_shards_stop(s);
	CHECK(bc_shards_close(s) == 0, "clean close");

	/* Everything again, through one host. */
	s = open_set(host, 1, NULL, why, sizeof(why), &ret);
	CHECK(ret == 0 && s, "reopen with one host: %s", why);
	all = t_alloc(ORIGIN);
	if (s) {
		CHECK(t_io(host, bc_shards_target(s), BC_OP_READ, 0, 0, ORIGIN, all) == 0 &&
		      memcmp(all, shadow, ORIGIN) == 0, "the whole export after a reopen");
		CHECK(bc_shards_close(s) == 0, "close");
	}
	printf("2 hosts x %d requests over %d shards (stripe %d KiB), verified; whole export verified "
	       "after reopen\n", OPS, NSH, STRIPE_BLOCKS * 4);
	free(all);
	free(shadow);
	bc_loop_free(l1);
	bc_loop_free(host);
	free(cache);
	free(origin);
	t_cleanup();
	return t_finish("shards with hosts");
}
