/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Promotion policies: which read misses are inserted into the log as clean
 * blocks.  A policy is a const ops table; its state is private behind a
 * context pointer, and it owns its tunables (exposed by name through the
 * engine's tunables).  The engine asks twice: once per read request
 * (note_read: is this read a candidate at all?) and once per missed block
 * (should_promote).
 */
#ifndef BC_POLICY_PROMOTE_H
#define BC_POLICY_PROMOTE_H

#include <stdbool.h>
#include <stdint.h>

#include "blkcache/engine.h"

enum bc_promote_verdict {
	BC_PROMOTE_NONE = 0,      /* nothing of this read is promoted (policy off) */
	BC_PROMOTE_SEQUENTIAL,    /* bypassed: part of a long sequential stream */
	BC_PROMOTE_CANDIDATE,     /* its missed blocks go to should_promote() */
};

struct bc_promote_ops {
	const char *name;
	const struct bc_tunable_info *params; /* the policy's tunables */
	unsigned nr_params;
	int (*init)(void **ctx);
	void (*destroy)(void *ctx);
	/* A read of [off, off+len) is being served. */
	enum bc_promote_verdict (*note_read)(void *ctx, uint64_t off, uint64_t len);
	/* @block missed and is not cached: insert it now? */
	bool (*should_promote)(void *ctx, uint64_t block);
	/* Forget the access history. */
	void (*purge)(void *ctx);
	uint64_t (*get_param)(void *ctx, unsigned i);
	void (*set_param)(void *ctx, unsigned i, uint64_t value); /* value within the range */
};

/* n-hit filter + sequential cutoff: the default. */
extern const struct bc_promote_ops bc_promote_nhit;
extern const struct bc_tunable_info bc_promote_nhit_params[]; /* its .params */

/* A policy instance, as the engine holds it. */
struct bc_promote {
	const struct bc_promote_ops *ops;
	void *ctx;
};

#endif
