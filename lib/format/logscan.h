/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The one rule for where the log ends, shared by recovery (log/recovery.c)
 * and the offline checker (check/check.c): the chain wb+1, wb+2, ... where
 * each segment sits at its own ring position (seq % nr_segments) under a
 * valid header of this format that holds exactly that seq; it ends before
 * the first that does not.  The flushed point is the highest flushed_seq
 * along the chain, or the superblock's last_seq if the superblock was
 * written at a clean shutdown and says more.
 */
#ifndef BC_FORMAT_LOGSCAN_H
#define BC_FORMAT_LOGSCAN_H

#include <stdbool.h>
#include <stdint.h>

#include "format/format.h"

/* What a walker knows of the header at one ring position. */
struct bc_logscan_hdr {
	bool valid;         /* a header of this format with a good checksum */
	uint64_t seq, flushed_seq;
};

/* Fill @h for ring position @pos; @seq is the segment the chain expects
 * there (for messages). */
typedef void (*bc_logscan_get_fn)(void *arg, uint32_t pos, uint64_t seq,
				  struct bc_logscan_hdr *h);

struct bc_logscan {
	uint64_t end;       /* last segment of the log (== written_back_seq: empty) */
	uint64_t flushed;   /* known durable up to here */
};

void bc_logscan_chain(const struct bc_sb_disk *sb, bc_logscan_get_fn get, void *arg,
		      struct bc_logscan *out);

/*
 * A segment not known flushed may hold rounds written after its header
 * (struct bc_round_hdr): append to @hdr (room for data_blocks entries) the
 * entries of the valid round blocks that follow its entries in @seg (the
 * whole segment as read), each round block's slot as a round entry.  The
 * header's CRC is not updated.  Returns the number of rounds appended.
 */
unsigned bc_logscan_rounds(struct bc_seg_hdr *hdr, const void *seg, uint32_t hdr_blocks,
			   uint32_t data_blocks);

/* The entries of @hdr whose data in @seg is intact: the count before the
 * first data entry whose CRC does not match (the log ends there). */
uint32_t bc_logscan_intact(const struct bc_seg_hdr *hdr, const void *seg, uint32_t hdr_blocks);

#endif
