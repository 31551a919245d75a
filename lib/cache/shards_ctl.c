/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Control of a shard set from its host thread: each shard's engine is
 * touched only on its own thread, so a call is a message to that thread's
 * loop and one back (bc_loop_post); the host runs its own loop meanwhile
 * (shard 0 and whatever else lives there keep being served).  Shards on
 * the host loop, or all of them once bc_shards_stop() returned, are called
 * directly.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/shards_priv.h"
#include "engine/drain.h"

struct call {
	struct bc_msg go, back;
	struct shard *sh;
	void (*fn)(struct bc_engine *e, void *arg);
	void *arg;
	bool done;                  /* host thread only */
};

static void call_back(struct bc_completion *c, int res)
{
	struct call *k = BC_CONTAINER_OF(c, struct call, back.c);

	(void)res;
	k->done = true;
}

static void call_go(struct bc_completion *c, int res)
{
	struct call *k = BC_CONTAINER_OF(c, struct call, go.c);

	(void)res;
	k->fn(k->sh->eng, k->arg);
	k->back.c.fn = call_back;
	bc_loop_post(k->sh->loop, k->sh->s->host, &k->back, 0);
}

int bc_shards_call(struct bc_shards *s, unsigned i, void (*fn)(struct bc_engine *e, void *arg),
		   void *arg)
{
	struct call k = { .sh = &s->sh[i], .fn = fn, .arg = arg };
	int ret;

	if (i >= s->n)
		return -EINVAL;
	if (bc_shard_direct(k.sh)) {
		fn(k.sh->eng, arg);
		return 0;
	}
	k.go.c.fn = call_go;
	ret = bc_loop_post(s->host, k.sh->loop, &k.go, 0);
	if (ret < 0)
		return ret;
	while (!k.done)
		if ((ret = bc_loop_run_once(s->host, 1)) < 0)
			return ret;
	return 0;
}

static void get_stats(struct bc_engine *e, void *arg)
{
	struct bc_engine_stats *st = arg;

	bc_engine_get_stats(e, st);
}

/* The counters that add up over shards (the rest are shard 0's: the
 * export, the mode and other settings, its log's sequence numbers). */
#define SUMMED(X) \
	X(reads) X(writes) X(flushes) X(discards) X(write_zeroes) X(fua_writes) \
	X(read_hit_blocks) X(read_partial_blocks) X(read_miss_blocks) X(write_blocks) \
	X(write_inplace_blocks) X(merge_reads) X(cached_blocks) X(dirty_blocks) \
	X(segments_total) X(segments_used) X(segments_written) X(segments_partial) \
	X(cache_full_waits) X(writeback_blocks) X(writeback_ios) X(writeback_bytes) \
	X(writeback_batches) X(writeback_errors) X(writeback_fills) X(writeback_reads_saved) \
	X(write_timeouts) X(data_crc_errors) X(cache_errors) X(cache_flushes) X(origin_flushes) \
	X(recovered_segments) X(io_errors) X(read_hit_full) X(read_hit_partial) \
	X(read_miss_full) X(read_miss_partial) X(write_hit_full) X(write_hit_partial) \
	X(write_miss_full) X(write_miss_partial) X(bypass_sequential_bytes) \
	X(bypass_nhit_blocks) X(promoted_blocks) X(promote_dropped_blocks) \
	X(reclaimed_segments) X(reappended_blocks) X(writethrough_blocks) \
	X(writearound_blocks) X(passthrough_blocks) X(invalidated_blocks) \
	X(open_segment_writes) X(staged_replayed) X(write_waited) X(write_wait_ns) \
	X(buffer_waits) X(carried_segments) X(carried_blocks) X(writeback_gate_waits)

static void add(struct bc_engine_stats *sum, const struct bc_engine_stats *one)
{
#define ADD(f) sum->f += one->f;
	SUMMED(ADD)
#undef ADD
	/* The slowest shard says how the set is doing. */
	if (one->writeback_failing > sum->writeback_failing) {
		sum->writeback_failing = one->writeback_failing;
		sum->writeback_retry_ms = one->writeback_retry_ms;
		sum->writeback_last_errno = one->writeback_last_errno;
	}
	if (one->recovery_ms > sum->recovery_ms)
		sum->recovery_ms = one->recovery_ms; /* recovered in parallel */
	if (one->write_wait_max_ns > sum->write_wait_max_ns)
		sum->write_wait_max_ns = one->write_wait_max_ns;
	sum->degraded |= one->degraded;
	sum->drains = sum->drains < one->drains ? sum->drains : one->drains;
}

int bc_shards_get_stats(struct bc_shards *s, struct bc_engine_stats *st)
{
	struct bc_engine_stats one;
	unsigned i;
	int ret = bc_shards_call(s, 0, get_stats, st);

	for (i = 1; i < s->n && !ret; i++) {
		ret = bc_shards_call(s, i, get_stats, &one);
		if (!ret)
			add(st, &one);
	}
	return ret;
}

/* A change made on every shard in turn, shard 0 first, until one refuses
 * (a value shard 0 refuses changes nothing anywhere; engines of a set are
 * configured alike, so a later shard refusing is not expected). */
struct change {
	int ret;
	char why[256];
	const char *name;           /* bc_engine_set */
	uint64_t v;
	enum bc_mode mode;          /* bc_engine_set_mode */
};

static int each_shard(struct bc_shards *s, void (*fn)(struct bc_engine *e, void *arg),
		      struct change *c, char *why, size_t whylen)
{
	unsigned i;
	int ret = 0;

	for (i = 0; i < s->n && !ret && !c->ret; i++)
		ret = bc_shards_call(s, i, fn, c);
	if (ret)
		return ret;
	if (c->ret && i > 1) /* i - 1 refused: say which */
		snprintf(why, whylen, "shard %u of %u: %s", i - 1, s->n, c->why);
	else if (c->ret)
		snprintf(why, whylen, "%s", c->why);
	return c->ret;
}

static void set_one(struct bc_engine *e, void *arg)
{
	struct change *c = arg;

	c->ret = bc_engine_set(e, c->name, c->v, c->why, sizeof(c->why));
}

int bc_shards_set(struct bc_shards *s, const char *name, uint64_t v, char *why, size_t whylen)
{
	struct change c = { .name = name, .v = v };

	return each_shard(s, set_one, &c, why, whylen);
}

static void mode_one(struct bc_engine *e, void *arg)
{
	struct change *c = arg;

	c->ret = bc_engine_set_mode(e, c->mode, c->why, sizeof(c->why));
}

int bc_shards_set_mode(struct bc_shards *s, enum bc_mode m, char *why, size_t whylen)
{
	struct change c = { .mode = m };

	return each_shard(s, mode_one, &c, why, whylen);
}

/* A drain: every shard's, each on its thread; the last one done reports.
 * A detach: every shard drained and clean (passthrough), and only then is
 * every shard marked detached (their records say so from the next write
 * of each: at the latest when the set closes).  A crash while the records
 * are written leaves some shards detached and some not, all of them clean:
 * the next open completes the detach (bc_shards_finish_detach). */
struct drain {
	struct bc_shards *s;
	bc_engine_done_fn done;
	void *arg;
	bool detach;
	unsigned left;               /* host thread only */
	int err;
	struct shard_drain {
		struct drain *d;
		struct bc_msg back;
		int res;
	} one[BC_SHARDS_MAX];
};

static void mark_one(struct bc_engine *e, void *arg)
{
	(void)arg;
	bc_drain_mark_detached(e);
}

/* Every shard is complete and clean: mark them, shard 0 last (the set's
 * status is shard 0's: it says detached once all are). */
static int mark_detached(struct bc_shards *s)
{
	unsigned i;
	int ret = 0;

	for (i = s->n; i-- > 0 && !ret;)
		ret = bc_shards_call(s, i, mark_one, NULL);
	return ret;
}

static void drain_back(struct bc_completion *c, int res)
{
	struct shard_drain *o = BC_CONTAINER_OF(c, struct shard_drain, back.c);
	struct drain *d = o->d;

	(void)res;
	if (o->res && !d->err)
		d->err = o->res;
	if (--d->left == 0) {
		if (d->detach && !d->err)
			d->err = mark_detached(d->s);
		d->done(d->arg, d->err);
		free(d);
	}
}

/* Shard thread: its drain finished. */
static void drain_done(void *arg, int res)
{
	struct shard_drain *o = arg;
	struct drain *d = o->d;
	unsigned i = (unsigned)(o - d->one);

	o->res = res;
	o->back.c.fn = drain_back;
	if (d->s->sh[i].loop == d->s->host || bc_shard_direct(&d->s->sh[i]))
		bc_loop_defer(d->s->host, &o->back.c, 0);
	else
		bc_loop_post(d->s->sh[i].loop, d->s->host, &o->back, 0);
}

struct drain_start {
	struct shard_drain *o;
	bool detach;
	int ret;
};

static void drain_start(struct bc_engine *e, void *arg)
{
	struct drain_start *a = arg;

	a->ret = a->detach ? bc_drain_detach(e, false, drain_done, a->o) :
			     bc_engine_drain(e, drain_done, a->o);
}

static int drain_all(struct bc_shards *s, bool detach, bc_engine_done_fn done, void *arg);

int bc_shards_drain(struct bc_shards *s, bc_engine_done_fn done, void *arg)
{
	return drain_all(s, false, done, arg);
}

int bc_shards_detach(struct bc_shards *s, bc_engine_done_fn done, void *arg)
{
	return drain_all(s, true, done, arg);
}

static int drain_all(struct bc_shards *s, bool detach, bc_engine_done_fn done, void *arg)
{
	struct drain *d = calloc(1, sizeof(*d));
	unsigned i;
	int ret;

	if (!d)
		return -ENOMEM;
	*d = (struct drain){ .s = s, .done = done, .arg = arg, .detach = detach, .left = s->n };
	for (i = 0; i < s->n; i++) {
		struct drain_start a = { .o = &d->one[i], .detach = detach };

		d->one[i].d = d;
		ret = bc_shards_call(s, i, drain_start, &a);
		if (!ret)
			ret = a.ret;
		if (ret < 0) {
			/* Those started report as they finish; count this one and
			 * the ones never started as failed. */
			d->err = ret;
			d->left -= s->n - i;
			if (!d->left) {
				free(d);
				return ret;
			}
			return 0;
		}
	}
	return 0;
}
