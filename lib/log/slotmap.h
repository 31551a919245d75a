/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The slot map: for every data slot of the cache device, the log entry it
 * holds, in 8 bytes of RAM (the on-disk entry is 16: its data CRC stays on
 * the cache device, in the segment header, and in RAM only with
 * --data-crc).  It also holds the state of the block the index maps to the
 * slot (dirty, referenced, bad), so an index bucket is only a slot number.
 *
 *   bits  0..39  origin block (4 KiB units: origins up to 4 PiB); a round
 *                block's slot: its entries' FLUSH epoch minus the segment's
 *   bits 40..55  data entries: the sector mask (bits 40..47);
 *                ZERO and INVALID entries: the number of blocks
 *   bits 56..58  the entry's flags (BC_ENT_DIRTY, BC_ENT_ZERO, BC_ENT_INVALID)
 *   bits 59..61  the live state of the block mapped here by the index
 *                (BC_IX_DIRTY, BC_IX_REF, BC_IX_BAD; see log/index.h)
 */
#ifndef BC_LOG_SLOTMAP_H
#define BC_LOG_SLOTMAP_H

#include <stdbool.h>
#include <stdint.h>

#include "format/format.h"

typedef uint64_t bc_slot_t;

#define BC_SLOT_BLOCK_BITS 40
#define BC_SLOT_MAX_BLOCKS BC_MAX_ORIGIN_BLOCKS /* 1 << BC_SLOT_BLOCK_BITS */
_Static_assert(BC_MAX_ORIGIN_BLOCKS == 1ull << BC_SLOT_BLOCK_BITS, "slot map block field");
#define BC_SLOT_EFLAGS_SHIFT 56
#define BC_SLOT_LIVE_SHIFT 59
#define BC_SLOT_EFLAGS_MASK (BC_ENT_DIRTY | BC_ENT_ZERO | BC_ENT_INVALID)
#define BC_SLOT_LIVE_MASK 0x7u

static inline uint64_t bc_slot_block(bc_slot_t v)
{
	return v & (BC_SLOT_MAX_BLOCKS - 1);
}

static inline uint8_t bc_slot_eflags(bc_slot_t v)
{
	return (uint8_t)((v >> BC_SLOT_EFLAGS_SHIFT) & BC_SLOT_EFLAGS_MASK);
}

static inline bool bc_slot_no_data(bc_slot_t v)
{
	return bc_slot_eflags(v) & (BC_ENT_ZERO | BC_ENT_INVALID);
}

/* Blocks the entry covers (1 for a data entry, 0 for a round block's slot). */
static inline uint32_t bc_slot_nblocks(bc_slot_t v)
{
	return bc_slot_no_data(v) ? (uint32_t)((v >> 40) & 0xffff) : 1;
}

static inline uint8_t bc_slot_mask(bc_slot_t v)
{
	return bc_slot_no_data(v) ? BC_FULL_MASK : (uint8_t)(v >> 40);
}

static inline uint8_t bc_slot_live(bc_slot_t v)
{
	return (uint8_t)((v >> BC_SLOT_LIVE_SHIFT) & BC_SLOT_LIVE_MASK);
}

static inline bc_slot_t bc_slot_with_live(bc_slot_t v, uint8_t live)
{
	return (v & ~((bc_slot_t)BC_SLOT_LIVE_MASK << BC_SLOT_LIVE_SHIFT)) |
	       ((bc_slot_t)(live & BC_SLOT_LIVE_MASK) << BC_SLOT_LIVE_SHIFT);
}

/* The RAM form of @ent (no live state).  The caller has checked that the
 * block fits (bc_slot_fits). */
static inline bc_slot_t bc_slot_make(const struct bc_seg_entry *ent)
{
	bool no_data = ent->flags & (BC_ENT_ZERO | BC_ENT_INVALID);
	uint64_t aux = no_data ? ent->nblocks : ent->mask;

	return (ent->block & (BC_SLOT_MAX_BLOCKS - 1)) | aux << 40 |
	       (uint64_t)(ent->flags & BC_SLOT_EFLAGS_MASK) << BC_SLOT_EFLAGS_SHIFT;
}

static inline bool bc_slot_fits(const struct bc_seg_entry *ent)
{
	return ent->block + ent->nblocks <= BC_SLOT_MAX_BLOCKS && !(ent->flags & ~BC_SLOT_EFLAGS_MASK);
}

/* A round block's slot (its entries' epoch @delta after the segment's). */
static inline bool bc_slot_is_round(bc_slot_t v)
{
	return bc_slot_eflags(v) == BC_ENT_INVALID && bc_slot_nblocks(v) == 0;
}
static inline bc_slot_t bc_slot_round(uint64_t delta)
{
	struct bc_seg_entry r = bc_round_entry();
	return bc_slot_make(&r) | (delta & (BC_SLOT_MAX_BLOCKS - 1));
}
static inline uint64_t bc_slot_round_delta(bc_slot_t v)
{
	return bc_slot_is_round(v) ? bc_slot_block(v) : 0;
}
/* The on-disk form (data CRC 0: it is not kept here; a round block's slot
 * with its epoch after the segment's in @block, docs/format.md). */
static inline struct bc_seg_entry bc_slot_entry(bc_slot_t v)
{
	return (struct bc_seg_entry){ .block = bc_slot_block(v),
				      .nblocks = (uint16_t)bc_slot_nblocks(v),
				      .mask = bc_slot_mask(v), .flags = bc_slot_eflags(v) };
}
#endif
