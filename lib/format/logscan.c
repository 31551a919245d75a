/* SPDX-License-Identifier: BSD-3-Clause */
#include <string.h>

#include "format/logscan.h"

void bc_logscan_chain(const struct bc_sb_disk *sb, bc_logscan_get_fn get, void *arg,
		      struct bc_logscan *out)
{
	uint64_t wb = sb->written_back_seq, seq, flushed = 0;

	for (seq = wb + 1; seq <= wb + sb->nr_segments; seq++) {
		struct bc_logscan_hdr h = { 0 };

		get(arg, (uint32_t)(seq % sb->nr_segments), seq, &h);
		if (!h.valid || h.seq != seq)
			break;
		if (h.flushed_seq > flushed)
			flushed = h.flushed_seq;
	}
	out->end = seq - 1;
	/* A superblock written at clean shutdown (after a flush) vouches for
	 * everything up to its last_seq. */
	if ((sb->flags & BC_SB_CLEAN) && sb->last_seq > flushed)
		flushed = sb->last_seq;
	out->flushed = flushed;
}

unsigned bc_logscan_rounds(struct bc_seg_hdr *hdr, const void *seg, uint32_t hdr_blocks,
			   uint32_t data_blocks)
{
	uint32_t k = hdr->nr_entries;
	unsigned rounds = 0;

	while (k + 1 < data_blocks) {
		const struct bc_round_hdr *r = (const void *)((const char *)seg +
							     (size_t)(hdr_blocks + k) * BC_BLOCK_SIZE);

		if (!bc_round_check(r, hdr->seq, hdr->format_nonce, k, data_blocks, hdr->open_id))
			break;
		hdr->entries[k] = bc_round_entry();
		memcpy(&hdr->entries[k + 1], r->entries, (size_t)r->nr_entries * sizeof(r->entries[0]));
		k += 1 + r->nr_entries;
		hdr->nr_entries = k;
		rounds++;
	}
	return rounds;
}

uint32_t bc_logscan_intact(const struct bc_seg_hdr *hdr, const void *seg, uint32_t hdr_blocks)
{
	uint32_t i;

	for (i = 0; i < hdr->nr_entries; i++) {
		const struct bc_seg_entry *ent = &hdr->entries[i];

		if (ent->flags & (BC_ENT_ZERO | BC_ENT_INVALID))
			continue;
		if (bc_crc32c(0, (const char *)seg + (size_t)(hdr_blocks + i) * BC_BLOCK_SIZE,
			      BC_BLOCK_SIZE) != ent->data_crc)
			return i;
	}
	return i;
}
