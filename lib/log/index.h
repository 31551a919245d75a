/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The in-RAM index: origin block -> cache slot, and the block's state.
 * Open addressing with linear probing and backward-shift deletion.
 *
 * A bucket is 5 bytes: a slot number and an 8-bit tag (bits of the
 * block's hash that filter a probe before the slot map is read).  The
 * block number and the block's state live in the slot map (log/slotmap.h):
 * a slot holding one block is its bucket's whole record.  The blocks of a
 * ZERO entry that covers several blocks share its slot; each of them gets
 * a record of its own (block, slot, state: 16 bytes) and its bucket points
 * to that record instead.
 *
 * Lookups fill a view (struct bc_ix_ent), valid until the next insert or
 * remove.  A new entry from bc_index_insert() (slot BC_IX_NEW) must get its
 * slot (bc_index_set) before the next index call, and the slot map must
 * describe the slot for as long as an entry points to it (the engine drops
 * entries before it reuses a slot).
 */
#ifndef BC_INDEX_H
#define BC_INDEX_H

#include <stdbool.h>
#include <stdint.h>

#include "log/slotmap.h"

#define BC_IX_FREE UINT32_MAX        /* value of an empty bucket */
#define BC_IX_NEW  (UINT32_MAX - 1)  /* slot of an entry just inserted */
#define BC_IX_MAX_SLOTS BC_MAX_SLOTS /* slots a cache may have */

/* Block state (same bits as the on-disk entry flags where they mean the
 * same).  DIRTY, REF and BAD are kept in the slot map's live bits (or a
 * range record); ZERO comes from the slot's entry. */
#define BC_IX_DIRTY (1u << 0)
#define BC_IX_ZERO  (1u << 1)
#define BC_IX_REF   (1u << 2) /* read since it was cached (CLOCK reference bit) */
#define BC_IX_BAD   (1u << 3) /* its data failed its checksum: reads fail with EIO */
#define BC_IX_STATE (BC_IX_DIRTY | BC_IX_REF | BC_IX_BAD)

struct bc_ix_bucket {
	uint32_t v;   /* BC_IX_FREE, BC_IX_NEW, a slot, or BC_IX_REC | record */
	uint8_t tag;
} __attribute__((packed));
_Static_assert(sizeof(struct bc_ix_bucket) == 5, "an index bucket is 5 bytes");

/* A block of a ZERO range. */
struct bc_ix_rec {
	uint64_t block;
	uint32_t slot;  /* or, while free, the next free record */
	uint8_t state;  /* BC_IX_STATE bits */
};

struct bc_index {
	struct bc_ix_bucket *tab;
	uint64_t cap;    /* buckets */
	uint64_t count;
	bc_slot_t *const *slots; /* the slot map */
	struct bc_ix_rec *recs;
	uint32_t nrecs, rec_cap, rec_free;
};

/* A found entry. */
struct bc_ix_ent {
	uint64_t block;
	uint32_t slot;   /* BC_IX_NEW: just inserted */
	uint8_t mask;    /* sectors held by the slot */
	uint8_t flags;   /* BC_IX_* */
	uint64_t bucket; /* private */
};

int bc_index_init(struct bc_index *ix, uint64_t expected, bc_slot_t *const *slots);
void bc_index_destroy(struct bc_index *ix);
bool bc_index_find(const struct bc_index *ix, uint64_t block, struct bc_ix_ent *out);
/* Find or add @block (a new entry has slot BC_IX_NEW, mask 0, flags 0).
 * -ENOMEM when memory is exhausted. */
int bc_index_insert(struct bc_index *ix, uint64_t block, struct bc_ix_ent *out);
/* Point @ent to @slot (described in the slot map) with state @flags. */
void bc_index_set(struct bc_index *ix, struct bc_ix_ent *ent, uint32_t slot, uint8_t flags);
void bc_index_remove(struct bc_index *ix, struct bc_ix_ent *ent);
/* Bytes of RAM the index holds (buckets and range records). */
uint64_t bc_index_bytes(const struct bc_index *ix);

#endif
