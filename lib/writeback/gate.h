/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The cross-shard writeback epoch gate (docs/shards.md): the shards of one
 * origin write back FLUSH epoch E only once every shard has written back
 * everything older, so the origin alone holds all of E - 1 and part of E
 * at worst -- what a power cut during E could leave.  The shard set
 * implements the ops (lib/cache/shards.c); an engine without a gate (not a
 * shard) writes back as it always did.
 */
#ifndef BC_WRITEBACK_GATE_H
#define BC_WRITEBACK_GATE_H

#include <stdbool.h>
#include <stdint.h>

struct bc_engine;

struct bc_wb_gate_ops {
	/* May this shard write back segments of @epoch now? */
	bool (*may)(void *ctx, uint64_t epoch);
	/* It may not: the shards behind are asked to catch up to @epoch, and
	 * this one is kicked (bc_wb_kick) when they progress. */
	void (*blocked)(void *ctx, uint64_t epoch);
	/* This shard's oldest epoch not written back is now @pending. */
	void (*progress)(void *ctx, uint64_t pending);
	/* Everything below this epoch is wanted on the origin by a shard
	 * waiting at the gate. */
	uint64_t (*wanted)(void *ctx);
};

struct bc_wb_gate {
	const struct bc_wb_gate_ops *ops;
	void *ctx;
};

/* Attach @gate (owned by the caller, outliving the engine's use of it), or
 * NULL; publishes the engine's progress at once. */
void bc_wb_gate_set(struct bc_engine *e, const struct bc_wb_gate *gate);
/* writeback.c: may a batch of @epoch start?  False: it waits (counted). */
bool bc_wb_gate_may(struct bc_engine *e, uint64_t epoch);
/* writeback.c: do other shards wait for this one's older epochs? */
bool bc_wb_gate_wanted(const struct bc_engine *e);
/* log/: written_back_seq moved or a new epoch began. */
void bc_wb_gate_progress(struct bc_engine *e);

#endif
