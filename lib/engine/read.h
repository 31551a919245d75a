/* SPDX-License-Identifier: BSD-3-Clause */
/* The read path (engine/read.c): hits from RAM or the cache device, misses
 * from the origin, promotion of misses.  Its state (struct bc_rpath) is
 * touched only by engine/read.c. */
#ifndef BC_ENGINE_READ_H
#define BC_ENGINE_READ_H

#include <stdint.h>

#include "engine/request.h"

struct bc_rpath {
	uint64_t direct_gen;        /* bumped whenever a read miss in flight may have
				     * become stale (a write bypassed the log, or
				     * reclaim dropped cached blocks): no promotion */
};

void bc_read_submit(struct bc_engine *e, struct bc_request *r);
/* Origin reads in flight must not be promoted: their data may be stale. */
void bc_read_invalidate_inflight(struct bc_engine *e);

#endif
