/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Promotion policy: which read misses are inserted into the log as clean
 * blocks.  A sequential-stream detector (bcache's sequential_cutoff, tracking
 * several concurrent streams) and an n-hit filter (Open CAS): a bounded
 * table of small saturating miss counters indexed by a hash of the block,
 * halved periodically so old misses fade.  Bounded memory, never a map of
 * every origin block; a collision can only promote a block early.
 */
#ifndef BC_POLICY_H
#define BC_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#define BC_POLICY_STREAMS 16
#define BC_NHIT_BITS      16

struct bc_stream {
	uint64_t next;   /* byte offset the stream continues at */
	uint64_t run;    /* bytes read sequentially so far */
	uint64_t used;   /* LRU tick */
};

struct bc_policy {
	struct bc_stream streams[BC_POLICY_STREAMS];
	uint64_t tick;
	uint8_t *nhit;
	uint64_t nhit_ops;
};

int bc_policy_init(struct bc_policy *p);
void bc_policy_destroy(struct bc_policy *p);
/* Account a read of [off, off+len); true if it belongs to a sequential
 * stream that has grown past @cutoff bytes (0: no cutoff). */
bool bc_policy_sequential(struct bc_policy *p, uint64_t off, uint64_t len, uint64_t cutoff);
/* Count a miss of @block; true once it has missed @hits times (0: never). */
bool bc_policy_miss(struct bc_policy *p, uint64_t block, uint64_t hits);

#endif
