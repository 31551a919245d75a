/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the control socket does to one origin: to its engine, or -- a
 * sharded origin (format v5) -- to every shard of its set, each on its own
 * thread (blkcache/shards.h: bc_shards_get_stats, bc_shards_set...).
 */
#include <errno.h>
#include <stdio.h>

#include "blkcache/shards.h"
#include "control.h"

void bc_co_stats(const struct bc_control_origin *o, struct bc_engine_stats *st)
{
	if (!o->shards || bc_shards_get_stats(o->shards, st) < 0)
		bc_engine_get_stats(o->engine, st);
}

int bc_co_set(const struct bc_control_origin *o, const char *name, uint64_t v, char *why,
	      size_t len)
{
	return o->shards ? bc_shards_set(o->shards, name, v, why, len) :
			   bc_engine_set(o->engine, name, v, why, len);
}

int bc_co_set_mode(const struct bc_control_origin *o, enum bc_mode m, char *why, size_t len)
{
	return o->shards ? bc_shards_set_mode(o->shards, m, why, len) :
			   bc_engine_set_mode(o->engine, m, why, len);
}

int bc_co_drain(const struct bc_control_origin *o, bool detach, bc_engine_done_fn done, void *arg)
{
	if (o->shards)
		return detach ? bc_shards_detach(o->shards, done, arg) :
				bc_shards_drain(o->shards, done, arg);
	return detach ? bc_engine_detach(o->engine, done, arg) : bc_engine_drain(o->engine, done, arg);
}
