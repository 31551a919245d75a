/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shard sets (blkcache/shards.h): one origin behind 3 engines on 3 threads.
 *
 *  - routing: writes to stripes of shard 0 and 1 only land in those
 *    shards' caches (counted by opening each cache alone afterwards);
 *  - a random workload through the shard set -- reads, writes, FUA writes,
 *    write-zeroes and FLUSHes of 512 B .. 256 KiB at any sector offset, so
 *    that requests cross up to five stripes, 32 in flight (never two
 *    overlapping) -- checked byte for byte against a shadow copy on every
 *    read, then again over the whole export after a clean close and a
 *    reopen (each shard recovers its own log);
 *  - a request beyond the end fails with EINVAL, a zero-length one
 *    completes, both from the loop, never inside submit;
 *  - shards over different origins are refused with a reason.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blkcache/cache.h"
#include "blkcache/shards.h"
#include "testutil.h"

#define MiB (1024ull * 1024)
#define NSH 3
#define STRIPE (64 * 1024)
#define ORIGIN (24 * MiB)
#define QD 32
#define OPS 20000

static struct bc_loop *host;
static struct bc_engine_config cfgs[NSH];
static uint8_t *shadow;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(uint64_t n)
{
	return t_rnd(&rng, n);
}

static char *paths[NSH + 1]; /* the caches' and the origin's (t_file's) */

static void free_paths(void)
{
	unsigned i;

	for (i = 0; i <= NSH; i++) {
		free(paths[i]);
		paths[i] = NULL;
	}
}

/* New caches over a new, zeroed origin. */
static void fresh(void)
{
	char name[32], why[512], *origin;
	unsigned i;

	free_paths();
	origin = paths[NSH] = t_file("origin.img", ORIGIN);
	for (i = 0; i < NSH; i++) {
		struct bc_format_config f = { .segment_size = 256 << 10 };

		snprintf(name, sizeof(name), "cache%u.img", i);
		cfgs[i].cache_path = paths[i] = t_file(name, 16 * MiB);
		cfgs[i].origin_path = origin; /* the same file for all */
		cfgs[i].flush_deadline_us = 100;
		f.cache_path = cfgs[i].cache_path;
		f.origin_path = cfgs[i].origin_path;
		CHECK(bc_cache_format(&f, why, sizeof(why)) == 0, "format shard %u: %s", i, why);
	}
}

static struct bc_shards *open_set(uint64_t stripe)
{
	struct bc_shards_config c = { .n = NSH, .stripe = stripe, .engines = cfgs, .queue_depth = 256 };
	struct bc_shards *s = NULL;
	char why[512] = "";
	int ret = bc_shards_open(&s, host, &c, why, sizeof(why));

	if (ret) {
		fprintf(stderr, "FAIL: bc_shards_open: %s\n", why);
		exit(1);
	}
	return s;
}

/* Blocks shard @i's cache holds, seen by opening it alone. */
static uint64_t cached_in(unsigned i)
{
	struct bc_engine_stats st;
	struct bc_engine *e = NULL;
	char why[512];

	if (bc_engine_open(&e, host, &cfgs[i], why, sizeof(why))) {
		fprintf(stderr, "FAIL: open shard %u alone: %s\n", i, why);
		exit(1);
	}
	bc_engine_get_stats(e, &st);
	CHECK(bc_engine_close(e) == 0, "close shard %u", i);
	return st.cached_blocks;
}

static void routing(void)
{
	struct bc_shards *s = open_set(STRIPE);
	const struct bc_target *t = bc_shards_target(s);
	uint8_t *buf = t_alloc(4096);
	uint64_t k;

	memset(buf, 0x5a, 4096);
	CHECK(t->size == ORIGIN, "the set exports %llu bytes, want %llu", (unsigned long long)t->size,
	      (unsigned long long)ORIGIN);
	/* 5 blocks in stripes of shard 0 (stripes 0, 3, 6...), 3 in shard 1's. */
	for (k = 0; k < 5; k++)
		CHECK(t_io(host, t, BC_OP_WRITE, 0, k * NSH * STRIPE + 8192, 4096, buf) == 0, "write");
	for (k = 0; k < 3; k++)
		CHECK(t_io(host, t, BC_OP_WRITE, 0, (k * NSH + 1) * STRIPE, 4096, buf) == 0, "write");
	CHECK(t_io(host, t, BC_OP_READ, 0, ORIGIN - 4096, 8192, buf) == -EINVAL, "read past the end");
	CHECK(t_io(host, t, BC_OP_READ, 0, 4096, 0, buf) == 0, "zero-length read");
	CHECK(t_io(host, t, BC_OP_FLUSH, 0, 0, 0, NULL) == 0, "flush");
	CHECK(bc_shards_close(s) == 0, "close");
	CHECK(cached_in(0) == 5 && cached_in(1) == 3 && cached_in(2) == 0,
	      "blocks per shard %llu/%llu/%llu, want 5/3/0", (unsigned long long)cached_in(0),
	      (unsigned long long)cached_in(1), (unsigned long long)cached_in(2));
	free(buf);
}

struct op {
	struct bc_request r;
	uint8_t *buf;
	bool busy;
};
static struct op ops[QD];
static uint16_t *inflight;       /* per 512-byte sector: requests in flight over it */
static unsigned nin, done_ops, bad_reads;

static void mark(const struct bc_request *r, int d)
{
	uint64_t s;

	for (s = r->offset / 512; s < (r->offset + r->length) / 512; s++)
		inflight[s] += (uint16_t)d;
}

static void op_done(struct bc_request *r, int res)
{
	struct op *o = r->priv;

	CHECK(res == 0, "request op %u at %llu+%llu failed: %d", r->op, (unsigned long long)r->offset,
	      (unsigned long long)r->length, res);
	if (r->op == BC_OP_READ && memcmp(o->buf, shadow + r->offset, r->length)) {
		if (bad_reads++ < 5)
			fprintf(stderr, "FAIL: read %llu+%llu differs from what was written\n",
				(unsigned long long)r->offset, (unsigned long long)r->length);
	}
	if (r->op != BC_OP_FLUSH)
		mark(r, -1);
	o->busy = false;
	nin--;
	done_ops++;
}

static bool overlaps(uint64_t off, uint64_t len)
{
	uint64_t s;

	for (s = off / 512; s < (off + len) / 512; s++)
		if (inflight[s])
			return true;
	return false;
}

static void issue(const struct bc_target *t, struct op *o)
{
	uint64_t x = rnd(100), len = 512 * (1 + rnd(rnd(4) ? 16 : 512)), off, i;

	if (len > ORIGIN)
		len = ORIGIN;
	do
		off = 512 * rnd((ORIGIN - len) / 512 + 1);
	while (overlaps(off, len));
	o->r = (struct bc_request){ .offset = off, .length = len, .buf = o->buf, .done = op_done, .priv = o };
	if (x < 3) {
		o->r.op = BC_OP_FLUSH;
		o->r.offset = o->r.length = 0;
		o->r.buf = NULL;
	} else if (x < 8) {
		o->r.op = BC_OP_WRITE_ZEROES;
		o->r.buf = NULL;
		memset(shadow + off, 0, len);
	} else if (x < 50) {
		o->r.op = BC_OP_READ;
	} else {
		o->r.op = BC_OP_WRITE;
		o->r.flags = rnd(10) == 0 ? BC_REQ_FUA : 0;
		for (i = 0; i < len; i += 8) {
			uint64_t v = rnd(UINT64_MAX);

			memcpy(o->buf + i, &v, 8);
		}
		memcpy(shadow + off, o->buf, len);
	}
	if (o->r.op != BC_OP_FLUSH)
		mark(&o->r, 1);
	o->busy = true;
	nin++;
	bc_target_submit(t, &o->r);
}

static void workload(void)
{
	struct bc_shards *s = open_set(STRIPE);
	const struct bc_target *t = bc_shards_target(s);
	unsigned issued = 0, i;
	uint8_t *all = t_alloc(ORIGIN);

	for (i = 0; i < QD; i++)
		ops[i].buf = t_alloc(256 * 1024);
	while (done_ops < OPS) {
		for (i = 0; i < QD && issued < OPS; i++)
			if (!ops[i].busy) {
				issue(t, &ops[i]);
				issued++;
			}
		bc_loop_submit(host);
		if (bc_loop_run_once(host, 1000) < 0)
			break;
	}
	CHECK(nin == 0, "%u requests still in flight", nin);
	CHECK(bad_reads == 0, "%u reads returned wrong data", bad_reads);
	CHECK(bc_shards_close(s) == 0, "clean close");
	/* Every shard recovers its own log; the whole export reads back. */
	s = open_set(STRIPE);
	t = bc_shards_target(s);
	CHECK(t_io(host, t, BC_OP_READ, 0, 0, ORIGIN, all) == 0, "read everything");
	CHECK(memcmp(all, shadow, ORIGIN) == 0, "the export differs from what was written after a reopen");
	CHECK(bc_shards_close(s) == 0, "clean close");
	for (i = 0; i < NSH; i++)
		CHECK(cached_in(i) > 0, "shard %u caches nothing after the workload", i);
	for (i = 0; i < QD; i++)
		free(ops[i].buf);
	free(all);
	printf("%u requests through %d shards (stripe %d KiB), verified; whole export verified after reopen\n",
	       done_ops, NSH, STRIPE / 1024);
}

static void refusals(void)
{
	struct bc_engine_config two[2] = { cfgs[0], cfgs[1] };
	struct bc_shards_config c = { .n = 2, .engines = two };
	struct bc_format_config f = { .segment_size = 256 << 10 };
	struct bc_shards *s = NULL;
	char why[512] = "";

	two[1].cache_path = t_file("other-cache.img", 16 * MiB);
	two[1].origin_path = t_file("other-origin.img", ORIGIN / 2);
	f.cache_path = two[1].cache_path;
	f.origin_path = two[1].origin_path;
	CHECK(bc_cache_format(&f, why, sizeof(why)) == 0, "format: %s", why);
	CHECK(bc_shards_open(&s, host, &c, why, sizeof(why)) == -EINVAL && strstr(why, "same origin"),
	      "shards over different origins: %s", why);
	c.stripe = 3000;
	CHECK(bc_shards_open(&s, host, &c, why, sizeof(why)) == -EINVAL && strstr(why, "power of two"),
	      "a bad stripe: %s", why);
	c.n = 0;
	CHECK(bc_shards_open(&s, host, &c, why, sizeof(why)) == -EINVAL, "no shards accepted");
	free((char *)two[1].cache_path);
	free((char *)two[1].origin_path);
}

int main(void)
{
	if (bc_loop_new(&host, 256)) {
		fprintf(stderr, "FAIL: loop\n");
		return 1;
	}
	shadow = calloc(1, ORIGIN);
	inflight = calloc(ORIGIN / 512, sizeof(*inflight));
	if (!shadow || !inflight)
		return 1;
	fresh();
	routing();
	fresh();
	workload();
	refusals();
	free_paths();
	free(shadow);
	free(inflight);
	bc_loop_free(host);
	t_cleanup();
	return t_finish("shards");
}
