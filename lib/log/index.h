/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The in-RAM index: origin block -> cache slot, sector mask, flags.
 * Open addressing with linear probing and backward-shift deletion.
 *
 * An entry is 8 bytes and does not hold its block number: the slot's log
 * entry (the engine's slot map, rmap[slot]) does.  A lookup compares the
 * entry's tag (the block's low 16 bits) first and reads the slot map only
 * on a tag match.  A ZERO log entry covers up to 65535 blocks with one
 * slot; the tag tells those blocks apart (it is unique within the range).
 * So: rmap[slot] must describe the block for as long as an entry points to
 * the slot (the engine drops entries before it reuses a slot), and a new
 * entry from bc_index_insert() must get its slot (bc_ix_set) before the
 * next index call.  Pointers returned stay valid until the next insert.
 */
#ifndef BC_INDEX_H
#define BC_INDEX_H

#include <stdint.h>

#include "format/format.h"

#define BC_IX_FREE UINT32_MAX        /* slot of an empty bucket */
#define BC_IX_NEW  (UINT32_MAX - 1)  /* slot of an entry just inserted */

/* Index entry flags (same bits as the on-disk entry flags). */
#define BC_IX_DIRTY (1u << 0)
#define BC_IX_ZERO  (1u << 1)
#define BC_IX_REF   (1u << 2) /* read since it was cached (CLOCK reference bit) */
#define BC_IX_BAD   (1u << 3) /* its data failed its checksum: reads fail with EIO */

struct bc_ix_ent {
	uint32_t slot;   /* cache slot: segment position * data_blocks + entry */
	uint16_t tag;    /* low 16 bits of the origin block */
	uint8_t mask;    /* sectors held by the slot */
	uint8_t flags;   /* BC_IX_* */
};
_Static_assert(sizeof(struct bc_ix_ent) == 8, "index entry is 8 bytes");

struct bc_index {
	struct bc_ix_ent *tab;
	uint64_t cap;    /* buckets */
	uint64_t count;
	struct bc_seg_entry *const *rmap; /* the slot map: (*rmap)[slot].block */
};

int bc_index_init(struct bc_index *ix, uint64_t expected, struct bc_seg_entry *const *rmap);
void bc_index_destroy(struct bc_index *ix);
struct bc_ix_ent *bc_index_find(const struct bc_index *ix, uint64_t block);
/* Find or add @block; a new entry has slot BC_IX_NEW, mask 0, flags 0.
 * NULL only when memory is exhausted. */
struct bc_ix_ent *bc_index_insert(struct bc_index *ix, uint64_t block);
void bc_index_remove(struct bc_index *ix, struct bc_ix_ent *e);
/* The origin block of a set entry. */
uint64_t bc_index_block(const struct bc_index *ix, const struct bc_ix_ent *e);

#endif
