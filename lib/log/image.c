/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A segment's image read back from the cache device, for the data CRCs of
 * its entries: RAM keeps them only with --data-crc (log/slotmap.h), so
 * writeback and carry-forward, which read the data anyway, take them from
 * the segment's header and round blocks read along with it.
 */
#include "engine/engine.h"
#include "format/logscan.h"

const struct bc_seg_hdr *bc_seglog_image_hdr(struct bc_engine *e, uint32_t pos, void *img)
{
	const struct bc_seg *s = &e->log.segs[pos];
	struct bc_seg_hdr *hdr = img;

	if (bc_seg_hdr_check(hdr, e->hdr_blocks, e->data_blocks, e->sb.format_nonce) != BC_FMT_OK ||
	    hdr->seq != s->seq)
		return NULL;
	/* Written in rounds (persistent memory, or a durable segment that
	 * recovery left as it was): the rest of its entries follow them. */
	if (hdr->nr_entries < s->nr_entries)
		bc_logscan_rounds(hdr, img, e->hdr_blocks, s->nr_entries);
	return hdr;
}

bool bc_seglog_image_crc(const struct bc_engine *e, const struct bc_seg_hdr *hdr, uint32_t pos,
			 uint32_t i, uint32_t *crc)
{
	struct bc_seg_entry want = bc_slot_entry(e->log.slots[(size_t)pos * e->data_blocks + i]);
	const struct bc_seg_entry *got;

	if (!hdr || i >= hdr->nr_entries)
		return false;
	got = &hdr->entries[i];
	if (got->block != want.block || got->nblocks != want.nblocks ||
	    (got->flags & BC_SLOT_EFLAGS_MASK) != want.flags)
		return false;
	*crc = got->data_crc;
	return true;
}
