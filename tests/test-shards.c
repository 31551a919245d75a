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
 *  - shards over different origins are refused with a reason;
 *  - all of the above again with the shards on one cache device formatted
 *    with shards (format v5, bc_shards_open_cache: each shard its own ring
 *    of the device, opened and recovered in parallel; the workload with
 *    every shard on the host loop, one_thread), plus: flushed data
 *    survives a crash of the set (every shard recovers its log), a sharded
 *    origin is refused as one engine and by the server's cache set, and
 *    format refuses shards that do not fit.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blkcache/cache.h"
#include "blkcache/shards.h"
#include "cache/shards_internal.h"
#include "testutil.h"
#include "writeback/writeback.h"

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
static bool one_dev;         /* the shards on one cache device, formatted with shards */
static bool one_thread;      /* ... all on the host loop (bc_shards_cache_config.one_thread) */
static char *one_cache;

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

/* A new cache device formatted with NSH shards over a new, zeroed origin. */
static void fresh_one(void)
{
	struct bc_format_config f = { .segment_size = 256 << 10, .shards = NSH,
				      .stripe_blocks = STRIPE / 4096 };
	char why[512];

	free_paths();
	free(one_cache);
	paths[NSH] = t_file("origin.img", ORIGIN);
	one_cache = t_file("sharded.img", NSH * 16 * MiB);
	f.cache_path = one_cache;
	f.origin_path = paths[NSH];
	CHECK(bc_cache_format(&f, why, sizeof(why)) == 0 && strstr(why, "as 3 shards"),
	      "format --shards %d: %s", NSH, why);
	one_dev = true;
}

static bool wb_paused; /* open the set with writeback paused */

/* The origin file itself (all of it) into @buf: 0 or -1. */
static int t_origin_file_read(uint8_t *buf)
{
	FILE *f = fopen(paths[NSH], "rb");
	size_t n = f ? fread(buf, 1, ORIGIN, f) : 0;

	if (f)
		fclose(f);
	return n == ORIGIN ? 0 : -1;
}

static int setup(struct bc_engine *e, unsigned i, void *arg)
{
	char why[256];

	(void)i;
	(void)arg;
	return bc_engine_set(e, "writeback_paused", wb_paused, why, sizeof(why));
}

static struct bc_shards *open_set(uint64_t stripe)
{
	struct bc_shards_config c = { .n = NSH, .stripe = stripe, .engines = cfgs, .queue_depth = 256 };
	struct bc_engine_config ec = { .cache_path = one_cache, .flush_deadline_us = 100 };
	struct bc_shards_cache_config cc = { .engine = &ec, .queue_depth = 256, .setup = setup,
					     .one_thread = one_thread };
	struct bc_shards *s = NULL;
	char why[512] = "";
	int ret = one_dev ? bc_shards_open_cache(&s, host, &cc, why, sizeof(why)) :
			    bc_shards_open(&s, host, &c, why, sizeof(why));

	if (ret) {
		fprintf(stderr, "FAIL: bc_shards_open: %s\n", why);
		exit(1);
	}
	return s;
}

/* Blocks shard @i holds, seen by its engine after a reopen. */
static uint64_t cached_in(unsigned i)
{
	struct bc_shards *s = open_set(STRIPE);
	struct bc_engine_stats st;

	CHECK(bc_shards_count(s) == NSH, "%u shards, want %d", bc_shards_count(s), NSH);
	bc_shards_stop(s);
	bc_engine_get_stats(bc_shards_engine(s, i), &st);
	CHECK(bc_shards_close(s) == 0, "close");
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

/* Open the set again and read the whole export: it must be the shadow. */
static void verify_export(uint8_t *buf, const char *when)
{
	struct bc_shards *s = open_set(STRIPE);

	CHECK(t_io(host, bc_shards_target(s), BC_OP_READ, 0, 0, ORIGIN, buf) == 0, "read everything %s",
	      when);
	CHECK(memcmp(buf, shadow, ORIGIN) == 0, "the export differs from what was written %s", when);
	CHECK(bc_shards_close(s) == 0, "clean close");
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
	verify_export(all, "after a reopen");
	for (i = 0; i < NSH; i++)
		CHECK(cached_in(i) > 0, "shard %u caches nothing after the workload", i);
	for (i = 0; i < QD; i++)
		free(ops[i].buf);
	free(all);
	printf("%u requests through %d shards (stripe %d KiB, %s%s), verified; whole export verified "
	       "after reopen\n", done_ops, NSH, STRIPE / 1024, one_dev ? "one cache device" :
	       "a cache device each", one_thread ? ", one thread" : "");
	done_ops = 0;
}

/* One device: what was flushed survives a crash of the whole set (held
 * in the shards' logs alone: writeback paused). */
static void crash(void)
{
	struct bc_shards *s;
	struct bc_engine_stats st;
	uint64_t dirty = 0;
	unsigned i;

	wb_paused = true;
	s = open_set(STRIPE);
	const struct bc_target *t = bc_shards_target(s);
	uint8_t *buf = t_alloc(ORIGIN);
	uint64_t k, off, len;

	for (k = 0; k < 300; k++) {
		off = rnd(ORIGIN / 4096 - 64) * 4096;
		len = (1 + rnd(64)) * 4096;
		memset(shadow + off, (int)(k + 1), len);
		CHECK(t_io(host, t, BC_OP_WRITE, 0, off, len, shadow + off) == 0, "write %llu",
		      (unsigned long long)k);
	}
	CHECK(t_io(host, t, BC_OP_FLUSH, 0, 0, 0, NULL) == 0, "flush");
	bc_shards_crash(s);
	s = open_set(STRIPE);
	t = bc_shards_target(s);
	bc_shards_stop(s);
	for (i = 0; i < NSH; i++) {
		bc_engine_get_stats(bc_shards_engine(s, i), &st);
		CHECK(st.dirty_blocks > 0, "shard %u recovered no dirty blocks", i);
		dirty += st.dirty_blocks;
	}
	CHECK(bc_shards_close(s) == 0, "close");
	verify_export(buf, "after a crash of the set");
	wb_paused = false;
	free(buf);
	printf("a crash of %d shards on one device: %llu dirty blocks recovered, all flushed data "
	       "intact\n", NSH, (unsigned long long)dirty);
}

static void get_paused(struct bc_engine *e, void *arg)
{
	uint64_t v = 0;

	bc_engine_get(e, "writeback_paused", &v);
	*(unsigned *)arg += (unsigned)v;
}

static void count_mode(struct bc_engine *e, void *arg)
{
	unsigned *n = arg;

	if (bc_engine_mode(e) == (enum bc_mode)n[0])
		n[1]++;
}

/* Shard thread: is its writeback idle? (A batch forced by writes that
 * waited for ring space may still be finishing after they completed.) */
static void count_wb_idle(struct bc_engine *e, void *arg)
{
	*(unsigned *)arg += bc_wb_idle(e);
}

static void set_drained(void *arg, int res)
{
	*(int *)arg = res ? -1 : 1;
}

/* One device, threads: control of a running set from the host thread --
 * tunables on every shard, counters added up, a drain of every shard. */
static void control(void)
{
	struct bc_shards *s = open_set(STRIPE);
	const struct bc_target *t = bc_shards_target(s);
	struct bc_engine_stats sum, one;
	uint64_t writes = 0, dirty = 0, k, off;
	unsigned paused = 0, i;
	uint8_t *buf = t_alloc(ORIGIN);
	char why[256] = "";
	int done = 0;

	CHECK(bc_shards_set(s, "writeback_paused", 1, why, sizeof(why)) == 0, "pause: %s", why);
	/* Nor carry-forward, which drops superseded dirty versions on the
	 * shards' threads between the sum below and the stop. */
	CHECK(bc_shards_set(s, "carry_percent", 0, why, sizeof(why)) == 0, "no carry: %s", why);
	for (i = 0; i < NSH; i++)
		CHECK(bc_shards_call(s, i, get_paused, &paused) == 0, "call shard %u", i);
	CHECK(paused == NSH, "%u of %d shards paused", paused, NSH);
	CHECK(bc_shards_set(s, "dirty_high", 1000, why, sizeof(why)) < 0 && why[0],
	      "a bad value refused: %s", why);
	for (k = 0; k < 2; k++) {
		unsigned m[2] = { k ? BC_CACHE_WRITEBACK : BC_CACHE_WRITETHROUGH, 0 };

		CHECK(bc_shards_set_mode(s, (enum bc_mode)m[0], why, sizeof(why)) == 0, "mode: %s", why);
		for (i = 0; i < NSH; i++)
			CHECK(bc_shards_call(s, i, count_mode, m) == 0, "call shard %u", i);
		CHECK(m[1] == NSH, "%u of %d shards in mode %s", m[1], NSH, bc_mode_name((enum bc_mode)m[0]));
	}
	for (k = 0; k < 200; k++) {
		off = rnd(ORIGIN / 4096 - 16) * 4096;
		memset(shadow + off, (int)(k + 7), 16 * 4096);
		CHECK(t_io(host, t, BC_OP_WRITE, 0, off, 16 * 4096, shadow + off) == 0, "write");
	}
	/* Paused, nothing starts writeback now; wait until what the writes
	 * forced is done (bounded), so that the counters stand still. */
	for (k = 0; k < 100000; k++) {
		unsigned idle = 0;

		for (i = 0; i < NSH; i++)
			CHECK(bc_shards_call(s, i, count_wb_idle, &idle) == 0, "call shard %u", i);
		if (idle == NSH)
			break;
		bc_loop_run_once(host, 1);
	}
	CHECK(k < 100000, "writeback of every shard went idle");
	CHECK(bc_shards_get_stats(s, &sum) == 0, "stats");
	bc_shards_stop(s);
	for (i = 0; i < NSH; i++) {
		bc_engine_get_stats(bc_shards_engine(s, i), &one);
		writes += one.writes;
		dirty += one.dirty_blocks;
	}
	CHECK(sum.writes == writes && sum.dirty_blocks == dirty && dirty > 0,
	      "counters added up: writes %llu/%llu dirty %llu/%llu", (unsigned long long)sum.writes,
	      (unsigned long long)writes, (unsigned long long)sum.dirty_blocks,
	      (unsigned long long)dirty);
	CHECK(bc_shards_close(s) == 0, "close");
	s = open_set(STRIPE);
	CHECK(bc_shards_drain(s, set_drained, &done) == 0, "drain");
	for (k = 0; k < 1000000 && !done; k++)
		bc_loop_run_once(host, 10);
	CHECK(done == 1, "the drain of every shard finished (%d)", done);
	CHECK(bc_shards_get_stats(s, &sum) == 0 && sum.dirty_blocks == 0,
	      "%llu dirty blocks after the drain", (unsigned long long)sum.dirty_blocks);
	CHECK(t_origin_file_read(buf) == 0 && memcmp(buf, shadow, ORIGIN) == 0,
	      "the origin alone holds everything after the drain");
	CHECK(bc_shards_close(s) == 0, "close");
	free(buf);
}

/* One device: a sharded origin is a set, nothing else opens it. */
static void one_dev_refusals(void)
{
	struct bc_engine_config ec = { .cache_path = one_cache, .origin_path = paths[NSH] };
	struct bc_format_config f = { .segment_size = 256 << 10, .shards = 8 };
	struct bc_engine *e = NULL;
	struct bc_cache *c = NULL;
	char why[512] = "", *small;

	CHECK(bc_engine_open(&e, host, &ec, why, sizeof(why)) == -EISDIR && strstr(why, "sharded"),
	      "a sharded origin as one engine: %s", why);
	CHECK(bc_cache_open(&c, host, &ec, why, sizeof(why)) == 0 && bc_cache_count(c) == 1 &&
	      bc_cache_shards(c, bc_cache_engine(c, 0)) &&
	      bc_cache_target(c, bc_cache_engine(c, 0))->size == ORIGIN,
	      "a sharded origin in a cache set (serve) is its shard set: %s", why);
	CHECK(c && bc_cache_close(c) == 0, "close the cache set");
	small = t_file("small.img", 16 * MiB);
	f.cache_path = small;
	f.origin_path = paths[NSH];
	CHECK(bc_cache_format(&f, why, sizeof(why)) == -ENOSPC && strstr(why, "too few"),
	      "8 shards on a 16 MiB cache: %s", why);
	f.shards = 2;
	f.stripe_blocks = 3;
	CHECK(bc_cache_format(&f, why, sizeof(why)) == -EINVAL && strstr(why, "power of two"),
	      "a stripe of 3 blocks: %s", why);
	f.stripe_blocks = 0;
	f.origin_path = NULL;
	CHECK(bc_cache_format(&f, why, sizeof(why)) == -EINVAL && strstr(why, "needs an origin"),
	      "shards without an origin: %s", why);
	free(small);
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
	fresh_one();
	routing();
	fresh_one();
	memset(shadow, 0, ORIGIN); /* the new origin's */
	one_thread = true;
	workload();
	one_thread = false;
	memset(shadow, 0, ORIGIN);
	fresh_one();
	crash();
	control();
	one_dev_refusals();
	free_paths();
	free(one_cache);
	free(shadow);
	free(inflight);
	bc_loop_free(host);
	t_cleanup();
	return t_finish("shards");
}
