/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Collecting a writeback batch: the dirty entries of the batch's segments
 * (of the pass's FLUSH epochs), read back from the cache device into the
 * batch buffers and checked against their data CRCs, become the batch's
 * items -- each block's newest version within the batch, sorted by origin
 * address (merge.c makes origin writes of them, writeback.c sends them).
 */
#include <errno.h>
#include <stdlib.h>

#include "writeback/wb_priv.h"

static int item_cmp(const void *a, const void *b)
{
	const struct wb_item *x = a, *y = b;

	if (x->block != y->block)
		return x->block < y->block ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int add_item(struct bc_wb *wb, uint64_t block, uint64_t order, uint32_t slot, uint8_t mask,
		    const char *src)
{
	if (wb->nitems == wb->cap) {
		size_t ncap = wb->cap ? wb->cap * 2 : 1024;
		struct wb_item *n = realloc(wb->items, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		wb->items = n;
		wb->cap = ncap;
	}
	wb->items[wb->nitems++] = (struct wb_item){
		.block = block, .order = order, .slot = slot, .mask = mask, .zero = src == NULL,
		.src = src,
	};
	return 0;
}

/*
 * A dirty block read back for writeback fails its checksum: never write it
 * to the origin.  Its data is lost; if it is still the block's newest
 * version, reads of it fail with EIO until it is overwritten (or its ring
 * position is reused, after which the origin's older data shows).
 */
static void wb_bad_block(struct bc_engine *e, uint64_t block, uint32_t slot)
{
	struct bc_ix_ent ix;

	bc_note_data_crc_error(e);
	bc_elog(e, BC_LOG_ERR, "writeback: dirty block %llu fails its data checksum on the cache device "
	       "(slot %u): not written to the origin; its last write is lost",
	       (unsigned long long)block, slot);
	if (bc_index_find(&e->index, block, &ix) && ix.slot == slot)
		bc_ix_set(e, &ix, ix.slot, (uint8_t)((ix.flags & ~BC_IX_DIRTY) | BC_IX_BAD));
}

/*
 * Collect, for every block the batch touches, its newest version within
 * the batch -- also when a later segment has superseded it -- so that once
 * the batch is on the origin, the origin holds exactly the state at the end
 * of the batch: a point-in-time image.  (A superseded dirty entry's sectors
 * are always a subset of its successor's, so this never changes sectors a
 * read takes from the origin.)
 */
/* The header of a segment read for writeback does not check (it was
 * checked when the log was recovered or written): its data cannot be
 * verified, and is written back as it is. */
static void wb_unverified(struct bc_engine *e, uint64_t seq)
{
	bc_note_data_crc_error(e);
	bc_elog(e, BC_LOG_ERR, "writeback: the header of segment %llu does not check on the cache "
		"device: its data is written back without data checksums",
		(unsigned long long)seq);
}

int bc_wb_collect(struct bc_wb *wb)
{
	struct bc_engine *e = wb->e;
	size_t i, n = 0;
	unsigned k;

	wb->nitems = 0;
	for (k = 0; k < wb->nsegs; k++) {
		uint32_t pos = seg_pos(e, wb->first + k);
		const struct bc_seg *s = bc_seglog_seg(e, wb->first + k);
		const struct bc_seg_hdr *hdr = bc_seglog_image_hdr(e, pos, wb->bufs[k]);
		uint64_t epoch = s->epoch, lo = k ? 0 : wb->pass_lo;
		uint32_t j, crc;

		if (!hdr && !lo)
			wb_unverified(e, s->seq); /* (once: not again for its later passes) */
		for (j = 0; j < s->nr_entries; j++) {
			struct bc_seg_entry ent = bc_seglog_entry(e, pos * e->data_blocks + j);
			uint64_t order = ((uint64_t)k << 32) | j, b;
			const char *src = NULL;

			if (bc_ent_is_round(&ent))
				epoch = s->epoch + bc_seglog_round_delta_at(e, s, j + 1);
			if (!(ent.flags & BC_ENT_DIRTY) || epoch <= lo || epoch > wb->pass_hi)
				continue;
			if (!(ent.flags & BC_ENT_ZERO)) {
				src = (const char *)wb->bufs[k] + (size_t)(e->hdr_blocks + j) * BC_BLOCK_SIZE;
				if (hdr && (!bc_seglog_image_crc(e, hdr, pos, j, &crc) ||
					    bc_crc32c(0, src, BC_BLOCK_SIZE) != crc)) {
					wb_bad_block(e, ent.block, pos * e->data_blocks + j);
					continue;
				}
			}
			for (b = ent.block; b < ent.block + ent.nblocks; b++)
				if (add_item(wb, b, order, pos * e->data_blocks + j, ent.mask, src))
					return -ENOMEM;
		}
	}
	if (wb->nitems)
		qsort(wb->items, wb->nitems, sizeof(*wb->items), item_cmp);
	/* Keep the last entry of each block. */
	for (i = 0; i < wb->nitems; i++) {
		struct bc_ix_ent ix;

		if (i + 1 < wb->nitems && wb->items[i + 1].block == wb->items[i].block)
			continue;
		if (!bc_index_find(&e->index, wb->items[i].block, &ix))
			continue; /* cannot happen: dirty blocks stay indexed */
		wb->items[n++] = wb->items[i];
	}
	wb->nitems = n;
	wb->cursor = 0;
	wb->cursor_sector = 0;
	return 0;
}
