/* SPDX-License-Identifier: BSD-3-Clause */
/* Drain and detach (engine/drain.c).  Its state (struct bc_drain) is
 * touched only by drain.c. */
#ifndef BC_ENGINE_DRAIN_H
#define BC_ENGINE_DRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "blkcache/engine.h"

struct bc_drain {
	bc_engine_done_fn done;
	void *arg;
	uint64_t target;            /* drained when wb_seq reaches it */
	struct bc_completion comp;
	struct bc_dev_io flush_io;
	bool all;                   /* write back everything, whatever the policy */
	bool detach_after, flushing;
	bool detach_mark;           /* mark the superblock detached at the end */
};

void bc_drain_init(struct bc_engine *e);
void bc_drain_destroy(struct bc_engine *e);
/* Writeback made progress: complete the drain if it is done. */
void bc_drain_progress(struct bc_engine *e);
void bc_drain_fail(struct bc_engine *e, int err);
/* A drain wants everything up to @target written back (false: none runs). */
bool bc_drain_wanted(const struct bc_engine *e, uint64_t *target);
bool bc_drain_idle(const struct bc_engine *e);
/* Detach, marking the superblock at the end (@mark: bc_engine_detach) or
 * leaving that to the caller (a shard set marks its shards once every one
 * of them is complete: bc_drain_mark_detached). */
int bc_drain_detach(struct bc_engine *e, bool mark, bc_engine_done_fn done, void *arg);
void bc_drain_mark_detached(struct bc_engine *e);

#endif
