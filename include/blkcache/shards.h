/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shards (docs/shards.md, step 2): one origin served by N engines, each on
 * its own loop thread with its own cache device, origin blocks routed by
 * stripe: byte offset o belongs to shard (o / stripe) % N.  The shard set
 * is a target like an engine's: submit from the host loop's thread;
 * requests are split at stripe boundaries, handed to the shards' threads
 * and completed on the host loop (bc_loop_post: no lock on the way).  A
 * FLUSH goes to every shard and completes when all of them are durable.
 *
 * The shards' caches: one device per shard (bc_shards_open), or one
 * device formatted with shards (bc_shards_open_cache).  The shards count
 * FLUSH epochs alike, and writeback of epoch E on any shard waits until
 * every shard wrote back everything older (the origin alone stays a
 * point-in-time image).  Served by 'blkcache serve' (the NBD server's
 * connections spread over the shards' threads: shard_hosts) and used in
 * process (the fio engine).
 */
#ifndef BLKCACHE_SHARDS_H
#define BLKCACHE_SHARDS_H

#include <stdint.h>

#include "blkcache/engine.h"
#include "blkcache/loop.h"
#include "blkcache/target.h"

#define BC_SHARDS_MAX 16

struct bc_shards;

struct bc_shards_config {
	unsigned n;                             /* 1 .. BC_SHARDS_MAX */
	uint64_t stripe;                        /* bytes: a power of two >= 4096 (0: 1 MiB) */
	const struct bc_engine_config *engines; /* n: shard i's cache; the same origin for all */
	unsigned queue_depth;                   /* of each shard's loop (0: the loop's default) */
	bool one_thread;                        /* every shard on @host's loop, no threads
						 * (deterministic tests, one core) */
	/* More hosts: loops the caller's threads run (host k: hosts[k - 1],
	 * 1 <= k < nhosts <= n).  Host k runs shard k (no thread of its own)
	 * and has its own target (bc_shards_host_target): requests submitted
	 * on its thread go to shard k without a message, to the others in
	 * batches, and complete on it.  Those threads must run their loops
	 * until bc_shards_stop() (the set's control is @host's). */
	unsigned nhosts;                        /* 0 or 1: @host only */
	struct bc_loop *const *hosts;
	/* Or: every shard k > 0 runs on a thread of its own as usual, and
	 * that thread is host k too (bc_shards_host_loop gives its loop): a
	 * frontend spreads its work over the shards' threads (the NBD
	 * server's connections).  Not with nhosts > 1 or one_thread. */
	bool shard_hosts;
	/* Called on the opening thread for each engine once it is open and
	 * before its thread starts (tunables); non-zero fails the open. */
	int (*setup)(struct bc_engine *e, unsigned i, void *arg);
	void *setup_arg;
};

/* Open the n engines, each on its own thread (shard 0's on the calling
 * one: it runs on @host itself), in parallel; once all are open, serve.
 * Requests to bc_shards_target() are submitted on @host's thread and
 * completed from @host. */
int bc_shards_open(struct bc_shards **out, struct bc_loop *host, const struct bc_shards_config *cfg,
		   char *why, size_t whylen);
/* A sharded origin of a cache device (format v5: 'blkcache format
 * --shards N'), or any other origin as one shard: its records give the
 * shards and the stripe.  @engine: cache_path, origin_name (NULL: the
 * cache's only origin), origin_path (NULL: the recorded one) and the other
 * engine options, the same for every shard.  The shards open (recover
 * their rings) in parallel, each on its own thread. */
struct bc_shards_cache_config {
	const struct bc_engine_config *engine;
	unsigned queue_depth;
	bool one_thread;                        /* as in struct bc_shards_config */
	unsigned nhosts;                        /* as in struct bc_shards_config (at most */
	struct bc_loop *const *hosts;           /* the shards the cache has) */
	bool shard_hosts;                       /* as in struct bc_shards_config */
	int (*setup)(struct bc_engine *e, unsigned i, void *arg);
	void *setup_arg;
};
int bc_shards_open_cache(struct bc_shards **out, struct bc_loop *host,
			 const struct bc_shards_cache_config *cfg, char *why, size_t whylen);
const struct bc_target *bc_shards_target(struct bc_shards *s);
/* Host @k's target (0: bc_shards_target()); NULL if there is no host @k. */
const struct bc_target *bc_shards_host_target(struct bc_shards *s, unsigned k);
/* The hosts (1 + cfg->nhosts - 1, or n with shard_hosts), and host @k's
 * loop (NULL: no host @k): submit to its target only on that loop's
 * thread. */
unsigned bc_shards_host_count(const struct bc_shards *s);
struct bc_loop *bc_shards_host_loop(struct bc_shards *s, unsigned k);
unsigned bc_shards_count(const struct bc_shards *s);
/* Control, from @host's thread (each shard's engine is called on its own
 * thread; @host's loop runs meanwhile).  bc_shards_call: run @fn(engine,
 * @arg) for shard @i and wait.  bc_shards_get_stats: the shards' counters
 * added up (the export, mode, settings and log sequence numbers are
 * shard 0's; writeback_failing the worst shard's).  bc_shards_set,
 * bc_shards_set_mode: a tunable, the cache mode, on every shard in turn
 * (one shard 0 refuses changes nothing; @why names a later shard that
 * refuses).
 * bc_shards_drain: every shard drained; @done(@arg, first error) on @host
 * once all are (not called if it returns -errno). */
int bc_shards_call(struct bc_shards *s, unsigned i, void (*fn)(struct bc_engine *e, void *arg),
		   void *arg);
int bc_shards_get_stats(struct bc_shards *s, struct bc_engine_stats *st);
int bc_shards_set(struct bc_shards *s, const char *name, uint64_t v, char *why, size_t whylen);
int bc_shards_set_mode(struct bc_shards *s, enum bc_mode m, char *why, size_t whylen);
int bc_shards_drain(struct bc_shards *s, bc_engine_done_fn done, void *arg);
/* Detach (as bc_engine_detach): every shard drained, clean and in
 * passthrough, then every shard marked detached; @done as for a drain.
 * A crash while the shards' records are written is completed by the next
 * open (every shard was clean by then). */
int bc_shards_detach(struct bc_shards *s, bc_engine_done_fn done, void *arg);
/* Stop the shard threads (nothing may be in flight): from then on the
 * engines belong to the calling thread (bc_shards_engine: stats, tunables). */
void bc_shards_stop(struct bc_shards *s);
struct bc_engine *bc_shards_engine(struct bc_shards *s, unsigned i);
/* Stop, close every engine cleanly, free.  0 or the first -errno. */
int bc_shards_close(struct bc_shards *s);

#endif
