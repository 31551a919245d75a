/* SPDX-License-Identifier: BSD-3-Clause */
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
