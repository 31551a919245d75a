/* SPDX-License-Identifier: BSD-3-Clause */
/* The control socket of a running server, its status document, and tunables as text. */
#ifndef BC_CONTROL_H
#define BC_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blkcache/cache.h"
#include "blkcache/engine.h"
#include "blkcache/loop.h"
#include "blkcache/nbd.h"
#include "blkcache/ublk.h"
#include "buf.h"

/* One origin a server serves (its name and device: bc_engine_name(),
 * bc_engine_origin_path() of blkcache/cache.h). */
struct bc_control_origin {
	struct bc_engine *engine;    /* a sharded origin: shard 0's */
	struct bc_ublk *ublk;        /* NULL: not served through ublk */
	struct bc_shards *shards;    /* a sharded origin's set (bc_cache_shards), or NULL */
};
/* origin_ops.c: an origin's engine, or every shard of a sharded one.
 * bc_co_drain with @detach: -EOPNOTSUPP for a sharded origin. */
void bc_co_stats(const struct bc_control_origin *o, struct bc_engine_stats *st);
int bc_co_set(const struct bc_control_origin *o, const char *name, uint64_t v, char *why,
	      size_t len);
int bc_co_set_mode(const struct bc_control_origin *o, enum bc_mode m, char *why, size_t len);
int bc_co_drain(const struct bc_control_origin *o, bool detach, bc_engine_done_fn done, void *arg);
#define BC_CONTROL_MAX_ORIGINS 127
struct bc_control_origins {
	unsigned n;
	struct bc_control_origin o[BC_CONTROL_MAX_ORIGINS];
};

/* What the control socket and the metrics endpoint report on. */
struct bc_control_src {
	/* The origins served, owned by the host; it changes them only between
	 * loop iterations (attach, detach). */
	const struct bc_control_origins *origins;
	struct bc_nbd_server *nbd;   /* NULL: not serving NBD */
	const char *cache_path;
	const char *cache_persistence; /* bc_dev_describe() of the cache device, or NULL */
	/* Live attach of another origin, done by the host: 0, or -errno with
	 * @why.  NULL: attach is refused. */
	int (*attach)(void *host, const char *name, const char *origin_path, const char *size,
		      char *why, size_t whylen);
	/* The detach of one origin of several completed (bc_engine_detach):
	 * the host stops serving it and removes it from origins (after this
	 * call returns, the engine may be gone).  With one origin, the server
	 * shuts down after a detach, as without this hook. */
	void (*detached)(void *host, struct bc_engine *e);
	void *host;
};

/* The longest command line the control socket takes (with its '\n'). */
#define BC_CONTROL_LINE_MAX 4608

/* status.c: the origins of @src (none if src->origins is NULL) */
unsigned bc_control_count(const struct bc_control_src *src);
const struct bc_control_origin *bc_control_at(const struct bc_control_src *src, unsigned i);
/* The origin named @name, or NULL. */
const struct bc_control_origin *bc_control_find(const struct bc_control_src *src,
						const char *name);
/* Append "a, b, c": the names of the origins served ("none" if none). */
void bc_control_names(const struct bc_control_src *src, struct bc_tbuf *b);
/* The status document with @only's fields at the top level and only it in
 * "origins" (NULL: the first origin's at the top level, every origin in
 * "origins"). */
void bc_control_status_json_sel(const struct bc_control_src *src,
				const struct bc_control_origin *only, struct bc_tbuf *b);

/* status.c: the status document (one JSON object and '\n'), and the
 * numbers it shares with the metrics endpoint (bc_control_stats: the first
 * origin's engine, zeroes if none, and the NBD server's) */
void bc_control_status_json(const struct bc_control_src *src, struct bc_tbuf *b);
void bc_control_stats(const struct bc_control_src *src, struct bc_engine_stats *s,
		       struct bc_nbd_stats *n);
double bc_hit_ratio(const struct bc_engine_stats *s); /* whole-block read hits / read blocks */

/* tunable.c: tunable values as text */
const struct bc_tunable_info *bc_tuntext_find(const char *name);
/* Parse @s for tunable @ti: decimal; K/M/G/T suffixes for byte-valued
 * tunables; true/false/on/off/yes/no for bools.  On error @why says why. */
int bc_tuntext_parse(const struct bc_tunable_info *ti, const char *s, uint64_t *out,
		      char *why, size_t whylen);
/* "4194304 bytes (4 MiB)", "true", "50 percent" */
const char *bc_tuntext_format(const char *unit, uint64_t v, char *buf, size_t len);
/* Compact: "4M", "true", "50" (no unit) */
const char *bc_tuntext_short(const char *unit, uint64_t v, char *buf, size_t len);
/* Append "a, b, c" (every tunable name). */
void bc_tuntext_names(struct bc_tbuf *b);

/* control.c: the control socket of a running server */
struct bc_control;
int bc_control_open(struct bc_control **out, struct bc_loop *loop, const char *path,
		     const struct bc_control_src *src, char *why, size_t whylen);
/* Stop serving: close the socket and every connection (a client waiting
 * for a flush is told that the server shuts down).  Call before the engine
 * is closed; a drain still running may complete while it closes. */
void bc_control_shutdown(struct bc_control *c);
/* Free; call after bc_engine_close() (no engine callback can come later). */
void bc_control_close(struct bc_control *c);

#endif
