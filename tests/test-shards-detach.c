/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Detaching a sharded origin (bc_shards_detach, docs/shards.md): every
 * shard drained and clean, then every shard marked detached.
 *  - detach: dirty data on both shards (writeback paused) reaches the
 *    origin; the set reports detached only once every shard is marked; a
 *    write after it goes straight to the origin; after the close both
 *    records say detached, the cache set serves no origin, and opening the
 *    origin by name says it was detached;
 *  - a crash while the records are written (the shards' records disagree:
 *    one detached, one not -- every shard was clean by then): the next open
 *    of the cache completes the detach (both records detached, the origin
 *    complete), and so does opening the set by name;
 *  - an origin added again under the same name is served, not taken for a
 *    shard of the detached one.
 */
#include <errno.h>
#include <string.h>

#include "blkcache/cache.h"
#include "blkcache/log.h"
#include "blkcache/shards.h"
#include "cache/shards_internal.h"
#include "dev/device.h"
#include "format/otable.h"
#include "format/superblock.h"
#include "testutil.h"

#define MiB     (1024ull * 1024)
#define ORIGIN  (64 * MiB)
#define STRIPE  (256 * 1024)
#define NSH     2

static char *cache_path, *origin_path;

static void fresh(void)
{
	struct bc_format_config f = { .segment_size = 256 << 10, .shards = NSH,
				      .stripe_blocks = STRIPE / 4096, .name = "x" };
	char why[512];

	free(cache_path);
	free(origin_path);
	origin_path = t_file("origin.img", ORIGIN);
	cache_path = t_file("cache.img", 64 * MiB);
	f.cache_path = cache_path;
	f.origin_path = origin_path;
	t_origin_path = origin_path; /* t_origin_verify */
	CHECK(bc_cache_format(&f, why, sizeof(why)) == 0, "format --shards 2: %s", why);
}

static int paused(struct bc_engine *e, unsigned i, void *arg)
{
	char why[128];

	(void)i;
	(void)arg;
	return bc_engine_set(e, "writeback_paused", 1, why, sizeof(why));
}

static int open_set(struct bc_shards **s, char *why, size_t len)
{
	struct bc_engine_config ec = { .cache_path = cache_path, .origin_name = "x" };
	struct bc_shards_cache_config cc = { .engine = &ec, .setup = paused };

	return bc_shards_open_cache(s, t_loop, &cc, why, len);
}

static void done_cb(void *arg, int res)
{
	*(int *)arg = res == 0 ? 1 : res;
}

static int run_until(int *flag)
{
	unsigned i;

	for (i = 0; i < 200000 && !*flag; i++)
		bc_loop_run_once(t_loop, 10);
	return *flag;
}

/* Dirty data on both shards: versions @ver of 1 MiB from 0 (4 stripes). */
static void write_both(struct bc_shards *s, unsigned ver)
{
	char *buf = t_alloc(MiB);

	t_fill(buf, MiB, 0, ver);
	CHECK(t_io(t_loop, bc_shards_target(s), BC_OP_WRITE, 0, 0, MiB, buf) == 0, "write 1 MiB");
	free(buf);
}

/* The records of origin "x" in the cache's table: how many, how many of
 * them detached. */
static void records(unsigned *n, unsigned *detached)
{
	struct bc_sb_disk *two = t_alloc(2 * 4096);
	const struct bc_sb_disk *sb;
	struct bc_otable t;
	struct bc_dev *d = NULL;
	char why[256];
	uint32_t i;

	*n = *detached = 0;
	CHECK(bc_dev_open_as(&d, NULL, t_loop, "cache", cache_path, 0, why, sizeof(why)) == 0,
	      "open the cache device: %s", why);
	sb = d && bc_sb_read(d, two) == 0 ? bc_sb_pick(&two[0], &two[1], NULL, NULL) : NULL;
	if (sb && bc_otable_read(d, sb, &t) == 0) {
		for (i = 0; i < t.sb.origin_slots; i++) {
			if (!t.rec[i] || strcmp(t.rec[i]->name, "x"))
				continue;
			(*n)++;
			*detached += !bc_orec_holds_ring(t.rec[i]);
		}
		bc_otable_free(&t);
	}
	bc_dev_close(d);
	free(two);
}

/* Mark shard @k's record detached as a crash between the records' writes
 * leaves it. */
static void mark_record(unsigned k)
{
	struct bc_sb_disk *two = t_alloc(2 * 4096), *copy = t_alloc(4096);
	const struct bc_sb_disk *sb;
	struct bc_otable t;
	struct bc_dev *d = NULL;
	char why[256];
	int slot = -1;

	CHECK(bc_dev_open_as(&d, NULL, t_loop, "cache", cache_path, 0, why, sizeof(why)) == 0,
	      "open the cache device: %s", why);
	sb = d && bc_sb_read(d, two) == 0 ? bc_sb_pick(&two[0], &two[1], NULL, NULL) : NULL;
	if (sb && bc_otable_read(d, sb, &t) == 0) {
		slot = bc_otable_find_shard(&t, "x", k);
		if (slot >= 0) {
			*copy = *t.rec[slot];
			copy->flags |= BC_SB_DETACHED;
			CHECK(bc_orec_write_sync(d, &t.sb, copy, false) == 0, "write shard %u's record", k);
		}
		bc_otable_free(&t);
	}
	CHECK(slot >= 0, "shard %u's record found", k);
	bc_dev_close(d);
	free(copy);
	free(two);
}

static unsigned cache_serves(void)
{
	struct bc_engine_config ec = { .cache_path = cache_path };
	struct bc_cache *c = NULL;
	char why[512] = "";
	unsigned n = 0;
	int ret = bc_cache_open(&c, t_loop, &ec, why, sizeof(why));

	CHECK(ret == 0, "the cache set opens: %s", why);
	if (!ret) {
		n = bc_cache_count(c);
		bc_cache_close(c);
	}
	return n;
}

/* A fresh sharded origin, open, with version @ver dirty on both shards. */
static struct bc_shards *dirty_set(unsigned ver)
{
	struct bc_shards *s = NULL;
	char why[512] = "";

	fresh();
	CHECK(open_set(&s, why, sizeof(why)) == 0, "open: %s", why);
	if (s)
		write_both(s, ver);
	return s;
}

static void detach(void)
{
	struct bc_engine_stats st;
	struct bc_shards *s = dirty_set(1);
	char why[512] = "", *buf;
	unsigned n, det;
	int flag = 0;

	if (!s)
		return;
	buf = t_alloc(4096);
	CHECK(bc_shards_get_stats(s, &st) == 0 && st.dirty_blocks == 256 && !st.detached,
	      "256 dirty blocks over both shards before the detach (%llu)",
	      (unsigned long long)st.dirty_blocks);
	CHECK(t_origin_verify(0, MiB, 1) < 0, "the origin does not hold them yet");
	CHECK(bc_shards_detach(s, done_cb, &flag) == 0, "detach starts");
	CHECK(run_until(&flag) == 1, "detach completes (%d)", flag);
	CHECK(bc_shards_get_stats(s, &st) == 0 && st.dirty_blocks == 0 && st.detached,
	      "after it: nothing dirty, detached (%llu dirty)", (unsigned long long)st.dirty_blocks);
	CHECK(t_origin_verify(0, MiB, 1) == 0, "the origin holds everything");
	t_fill(buf, 4096, 8 * MiB, 2);
	CHECK(t_io(t_loop, bc_shards_target(s), BC_OP_WRITE, 0, 8 * MiB, 4096, buf) == 0 &&
	      t_origin_verify(8 * MiB, 4096, 2) == 0, "a write after the detach is on the origin");
	CHECK(bc_shards_close(s) == 0, "close");
	records(&n, &det);
	CHECK(n == NSH && det == NSH, "both records say detached (%u of %u)", det, n);
	CHECK(cache_serves() == 0, "the cache set serves no origin");
	s = NULL;
	CHECK(open_set(&s, why, sizeof(why)) == -EINVAL && strstr(why, "was detached"),
	      "opening the origin says it was detached: %s", why);
	free(buf);
}

/* The crash between the records' writes, completed by the cache set's
 * open (@by_set) or by opening the shard set by name. */
static void interrupted(bool by_set)
{
	struct bc_shards *s = dirty_set(3);
	char why[512] = "";
	unsigned n, det;
	int flag = 0;

	if (!s)
		return;
	CHECK(bc_shards_detach(s, done_cb, &flag) == 0 && run_until(&flag) == 1, "detach");
	/* Killed before any record was written; then one of them is. */
	bc_shards_crash(s);
	records(&n, &det);
	CHECK(n == NSH && det == 0, "after the kill no record says detached (%u)", det);
	mark_record(1);
	if (by_set) {
		CHECK(cache_serves() == 0, "the cache set's open completes the detach: no origin served");
	} else {
		s = NULL;
		CHECK(open_set(&s, why, sizeof(why)) == -EINVAL && strstr(why, "was detached"),
		      "the shard set's open completes the detach and says so: %s", why);
	}
	records(&n, &det);
	CHECK(n == NSH && det == NSH, "completed: both records detached (%u of %u)", det, n);
	CHECK(t_origin_verify(0, MiB, 3) == 0, "the origin is complete");
}

/* An origin added again under the same name after a detach (one record,
 * in a slot a detached shard left; the other detached shard's record
 * stays): it is served, and not taken for the detached origin's shard. */
static void readded(void)
{
	struct bc_format_config f = { .name = "x" };
	char why[512] = "";
	unsigned n, det;

	detach();
	f.cache_path = cache_path;
	f.origin_path = origin_path;
	CHECK(bc_origin_add(&f, why, sizeof(why)) == 0, "origin add x again: %s", why);
	records(&n, &det);
	CHECK(n == NSH && det == NSH - 1, "the new x and a detached shard of the old: %u records, "
	      "%u detached", n, det);
	CHECK(cache_serves() == 1, "the new x is served");
	records(&n, &det);
	CHECK(n == NSH && det == NSH - 1, "the open left the new x attached (%u detached)", det);
}

static void logfn(void *arg, enum bc_log_level level, const char *msg)
{
	(void)arg;
	(void)level;
	fprintf(stderr, "%s\n", msg);
}

int main(void)
{
	bc_log_set(logfn, NULL, BC_LOG_WARN);
	CHECK(bc_loop_new(&t_loop, 256) == 0, "loop");
	detach();
	interrupted(true);
	interrupted(false);
	readded();
	free(cache_path);
	free(origin_path);
	t_origin_path = NULL;
	bc_loop_free(t_loop);
	t_loop = NULL;
	return t_finish("detaching a sharded origin");
}
