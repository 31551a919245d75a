/* SPDX-License-Identifier: BSD-3-Clause */
/* Shard sets: what the cache set and tests need beyond blkcache/shards.h. */
#ifndef BC_CACHE_SHARDS_INTERNAL_H
#define BC_CACHE_SHARDS_INTERNAL_H

#include "blkcache/shards.h"
#include "format/otable.h"

/* Drop the set as a killed process would: the shard threads stop, IO in
 * flight lands, and no engine shuts down cleanly (no segment written, no
 * superblock).  Frees the set. */
void bc_shards_crash(struct bc_shards *s);
/* Shard @i's loop (after bc_shards_stop: the caller may run it). */
struct bc_loop *bc_shards_loop(struct bc_shards *s, unsigned i);

/* Complete every detach of a sharded origin that a crash interrupted while
 * its shards' records were written (some say detached, the others not --
 * every shard was complete and clean before the first was marked): the
 * others are written detached too, and @t is read again.  The number of
 * records written, or -errno (@why says why). */
int bc_shards_finish_detach(struct bc_dev *cache, struct bc_otable *t, char *why, size_t whylen);

#endif
