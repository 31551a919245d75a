/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The in-RAM index: origin block -> cache slot, sector mask, flags.
 * Open addressing with linear probing and backward-shift deletion; 16 bytes
 * per entry.  Pointers returned stay valid until the next insert.
 */
#ifndef BC_INDEX_H
#define BC_INDEX_H

#include <stdint.h>

#define BC_IX_EMPTY UINT64_MAX

/* Index entry flags (same bits as the on-disk entry flags). */
#define BC_IX_DIRTY (1u << 0)
#define BC_IX_ZERO  (1u << 1)
#define BC_IX_REF   (1u << 2) /* read since it was cached (CLOCK reference bit) */
#define BC_IX_BAD   (1u << 3) /* its data failed its checksum: reads fail with EIO */

struct bc_ix_ent {
	uint64_t block;  /* origin block, BC_IX_EMPTY if free */
	uint32_t slot;   /* cache slot: segment position * data_blocks + entry */
	uint8_t mask;    /* sectors held by the slot */
	uint8_t flags;   /* BC_IX_* */
	uint16_t pad;
};
_Static_assert(sizeof(struct bc_ix_ent) == 16, "index entry is 16 bytes");

struct bc_index {
	struct bc_ix_ent *tab;
	uint64_t cap;    /* power of two */
	uint64_t count;
};

int bc_index_init(struct bc_index *ix, uint64_t expected);
void bc_index_destroy(struct bc_index *ix);
struct bc_ix_ent *bc_index_find(const struct bc_index *ix, uint64_t block);
/* Find or add @block; a new entry has slot UINT32_MAX, mask 0, flags 0.
 * NULL only when memory is exhausted. */
struct bc_ix_ent *bc_index_insert(struct bc_index *ix, uint64_t block);
void bc_index_remove(struct bc_index *ix, struct bc_ix_ent *e);

#endif
