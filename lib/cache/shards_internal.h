/* SPDX-License-Identifier: BSD-3-Clause */
/* Shard sets: what tests need beyond blkcache/shards.h. */
#ifndef BC_CACHE_SHARDS_INTERNAL_H
#define BC_CACHE_SHARDS_INTERNAL_H

#include "blkcache/shards.h"

/* Drop the set as a killed process would: the shard threads stop, IO in
 * flight lands, and no engine shuts down cleanly (no segment written, no
 * superblock).  Frees the set. */
void bc_shards_crash(struct bc_shards *s);
/* Shard @i's loop (after bc_shards_stop: the caller may run it). */
struct bc_loop *bc_shards_loop(struct bc_shards *s, unsigned i);

#endif
