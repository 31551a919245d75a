/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A cache device and every origin it serves (format v3: up to 127, each
 * with its own share of the cache, its own log, writeback, FLUSH epochs,
 * mode and tunables -- one bc_engine per origin -- on one event loop and
 * one open cache device).  A format v1/v2 cache serves its one origin.
 */
#ifndef BLKCACHE_CACHE_H
#define BLKCACHE_CACHE_H

#include <stddef.h>

#include "blkcache/engine.h"

struct bc_cache;

/*
 * Open the cache device cfg->cache_path and every origin attached to it:
 * each origin's device is the path recorded in its record, except that
 * cfg->origin_path, if given, is the device of the origin it identifies
 * (a v1/v2 cache needs it).  cfg->origin_name, if given, limits the set to
 * that origin.  The other fields of @cfg apply to every origin's engine.
 * On failure returns -errno and @why says why (naming the origin).
 */
int bc_cache_open(struct bc_cache **out, struct bc_loop *loop, const struct bc_engine_config *cfg,
		  char *why, size_t whylen);
/* Origins served, in table order; engine @i (NULL past the end). */
unsigned bc_cache_count(const struct bc_cache *c);
struct bc_engine *bc_cache_engine(const struct bc_cache *c, unsigned i);
struct bc_engine *bc_cache_find(const struct bc_cache *c, const char *name);
/* The cache device (bc_dev_describe() says how it persists data). */
const struct bc_dev *bc_cache_device(const struct bc_cache *c);
/* The origin's name ("blkcache" for a format v1/v2 cache) and device path. */
const char *bc_engine_name(const struct bc_engine *e);
const char *bc_engine_origin_path(const struct bc_engine *e);

/*
 * Attach an origin while the others serve: oc->origin_path, oc->name and
 * its share (oc->size / size_percent, default a quarter of the cache or
 * what is free), oc->data_crc, origin_label, force.  If the cache's table
 * already holds an attached origin of that name that is not served (added
 * offline with bc_origin_add), that one is opened instead.  The other
 * origins keep serving: their engines are not paused.  *@out: the new
 * origin's engine, also bc_cache_engine(c, bc_cache_count(c) - 1).
 */
int bc_cache_attach(struct bc_cache *c, const struct bc_format_config *oc, struct bc_engine **out,
		    char *why, size_t whylen);
/*
 * Stop serving one origin and close its engine (its frontends must be
 * done with it): after bc_engine_detach() completed, its share of the cache
 * is free for another origin.  0 or -errno (-ENOENT: not one of @c's).
 */
int bc_cache_remove(struct bc_cache *c, struct bc_engine *e);
/* Close every origin's engine (clean shutdown), then the cache device. */
int bc_cache_close(struct bc_cache *c);
/* A sharded origin (format v5) is served by a shard set: its engine here
 * (bc_cache_engine, bc_cache_find) is shard 0's, which runs on the set's
 * loop; bc_cache_shards gives the set (NULL: not sharded), and
 * bc_cache_target what to serve (the set's target, or the engine's). */
struct bc_shards;
struct bc_shards *bc_cache_shards(const struct bc_cache *c, const struct bc_engine *e);
const struct bc_target *bc_cache_target(const struct bc_cache *c, struct bc_engine *e);

#endif
