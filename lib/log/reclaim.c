/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Reclaim: ring positions are recycled in ring order, lazily, once their
 * data is written back and no read of it is in flight; recently read clean
 * blocks get a second chance (re-appended at the head of the log).
 */
#include <errno.h>
#include <stdlib.h>

#include "engine/engine.h"

static void drop_slot(struct bc_engine *e, uint64_t block, uint32_t slot)
{
	struct bc_ix_ent ix;

	if (!bc_index_find(&e->index, block, &ix) || ix.slot != slot)
		return;
	if (ix.flags & BC_IX_DIRTY)
		bc_elog(e, BC_LOG_ERR, "log: recycling dirty block %llu (slot %u): this is a bug",
		       (unsigned long long)block, slot);
	bc_ix_drop(e, &ix);
}

/* Free positions reclaim keeps ready for new segments. */
static uint64_t reclaim_reserve(const struct bc_engine *e)
{
	uint64_t r = e->nseg / 16;

	return r < e->log.nbufs + 1u ? e->log.nbufs + 1u : r;
}

/* Drop the index entries that still point into segment @pos: from now on
 * no new read can pin it. */
static void drop_entries(struct bc_engine *e, uint32_t pos)
{
	struct bc_seg *s = &e->log.segs[pos];
	uint32_t i;

	for (i = 0; i < s->nr_entries; i++) {
		uint32_t slot = pos * e->data_blocks + i;
		bc_slot_t v = e->log.slots[slot];
		uint64_t b;

		for (b = bc_slot_block(v); b < bc_slot_block(v) + bc_slot_nblocks(v); b++)
			drop_slot(e, b, slot);
	}
	bc_read_invalidate_inflight(e); /* origin reads in flight must not promote over this */
}

/*
 * Retire the tail segment (at position @pos): drop its index entries and,
 * once no device read of its data is in flight, free its position for a
 * new segment.  Reads already in flight keep their pin, and the position
 * stays taken (state RETIRED) until the last of them completes: reusing it
 * earlier would let a new segment's write land under those reads, which
 * would then return another block's data.  True: the position is free.
 */
static bool retire_tail(struct bc_engine *e, uint32_t pos)
{
	struct bc_seg *s = &e->log.segs[pos];

	if (s->state != BC_SEG_RETIRED)
		drop_entries(e, pos);
	if (s->readers) {
		s->state = BC_SEG_RETIRED;
		return false;
	}
	s->state = BC_SEG_FREE;
	s->nr_entries = 0;
	e->st.reclaimed_segments++;
	e->log.tail_seq++;
	return true;
}

/* Hot clean blocks of segment @pos worth a second chance, at most @limit:
 * their entry numbers go to @out. */
static unsigned hot_blocks(struct bc_engine *e, uint32_t pos, uint32_t *out, unsigned limit)
{
	struct bc_seg *s = &e->log.segs[pos];
	unsigned n = 0;
	uint32_t i;

	for (i = 0; i < s->nr_entries && n < limit; i++) {
		bc_slot_t v = e->log.slots[(size_t)pos * e->data_blocks + i];
		struct bc_ix_ent ix;

		if (bc_slot_no_data(v))
			continue;
		if (bc_index_find(&e->index, bc_slot_block(v), &ix) && ix.slot == pos * e->data_blocks + i &&
		    !(ix.flags & BC_IX_DIRTY) && (ix.flags & BC_IX_REF))
			out[n++] = i;
	}
	return n;
}

static void reclaim_read_done(struct bc_dev_io *io, int res);

/*
 * Reclaim ring positions in ring order, lazily: only to keep a reserve of
 * free positions, so written-back (clean) data stays readable as long as
 * possible.  A segment can go once it is written back and unread.  Its
 * recently read clean blocks (reference bit: CLOCK / second chance) are
 * re-appended to the head of the log -- at most reappend_percent of a
 * segment, and never while that would take the last free position from a
 * waiting write.  A dirty tail segment is carried forward (log/carry.c)
 * when it may be, or waits for writeback.
 */
void bc_seglog_reclaim(struct bc_engine *e)
{
	bool progress = false;

	while (!e->log.reclaim_busy && e->log.tail_seq < e->log.head_seq &&
	       bc_seglog_free_positions(e) < reclaim_reserve(e)) {
		uint32_t pos = seg_pos(e, e->log.tail_seq);
		struct bc_seg *s = &e->log.segs[pos];
		unsigned limit = (unsigned)(e->data_blocks * e->tun.reappend_percent / 100);

		if (e->log.tail_seq > e->log.wb_seq) {
			bc_seglog_carry(e); /* dirty: carry it forward, or wait for writeback */
			break;
		}
		if (s->seq == e->log.tail_seq && s->state != BC_SEG_ONDISK)
			break; /* not written yet, or retired and still read */
		if (s->seq == e->log.tail_seq && !s->readers && limit && !e->closing && bc_mode_current(e)->reappend &&
		    hot_blocks(e, pos, e->log.reclaim_hot, limit)) {
			/* Read it first; the position is freed when the data is in RAM. */
			e->log.reclaim_busy = true;
			s->readers++;
			bc_dev_io_init(&e->log.reclaim_io, BC_DIO_READ, e->log.reclaim_buf,
				       (uint64_t)(e->hdr_blocks + s->nr_entries) * BC_BLOCK_SIZE,
				       seg_offset(e, pos), reclaim_read_done, e);
			bc_dev_submit(e->cache, &e->log.reclaim_io);
			break;
		}
		if (s->seq != e->log.tail_seq)
			e->log.tail_seq++; /* never used since recovery */
		else if (!retire_tail(e, pos))
			break; /* freed by the last bc_seglog_unpin() */
		progress = true;
	}
	if (progress)
		bc_write_resume(e);
}

static void reclaim_read_done(struct bc_dev_io *io, int res)
{
	struct bc_engine *e = io->priv;
	uint32_t pos = seg_pos(e, e->log.tail_seq);
	struct bc_seg *s = &e->log.segs[pos];
	unsigned limit = (unsigned)(e->data_blocks * e->tun.reappend_percent / 100), n, k;
	uint64_t blocks[BC_MAX_DATA_BLOCKS];
	uint8_t masks[BC_MAX_DATA_BLOCKS];

	s->readers--;
	n = res < 0 ? 0 : hot_blocks(e, pos, e->log.reclaim_hot, limit);
	for (k = 0; k < n; k++) {
		bc_slot_t v = e->log.slots[(size_t)pos * e->data_blocks + e->log.reclaim_hot[k]];

		blocks[k] = bc_slot_block(v);
		masks[k] = bc_slot_mask(v);
	}
	/* Client reads that pinned the segment while this read was in flight
	 * may still be reading it: then the position is freed by the last
	 * unpin, and the blocks go wherever the log has room. */
	retire_tail(e, pos);
	/* A freed position may now take the re-appended blocks. */
	for (k = 0; k < n; k++) {
		struct bc_ix_ent ix;

		if (bc_index_find(&e->index, blocks[k], &ix))
			continue;
		if (!bc_seglog_append(e, blocks[k], (char *)e->log.reclaim_buf +
				      (size_t)(e->hdr_blocks + e->log.reclaim_hot[k]) * BC_BLOCK_SIZE, masks[k], false))
			break;
		e->st.reappended_blocks++;
	}
	e->log.reclaim_busy = false;
	bc_seglog_reclaim(e);
	bc_write_resume(e);
}
void bc_seglog_unpin(struct bc_engine *e, uint32_t pos)
{
	struct bc_seg *s = &e->log.segs[pos];

	if (--s->readers)
		return;
	if (s->state == BC_SEG_RETIRED) {
		retire_tail(e, pos);
		bc_seglog_reclaim(e);
		bc_write_resume(e);
	} else if (s->seq <= e->log.wb_seq) {
		bc_seglog_reclaim(e);
	}
}

int bc_seglog_reclaim_init(struct bc_engine *e)
{
	e->log.reclaim_buf = bc_alloc_aligned(e->seg_size);
	e->log.reclaim_hot = calloc(e->data_blocks, sizeof(*e->log.reclaim_hot));
	if (!e->log.reclaim_buf || !e->log.reclaim_hot)
		return -ENOMEM;
	return bc_seglog_carry_init(e);
}

void bc_seglog_reclaim_destroy(struct bc_engine *e)
{
	free(e->log.reclaim_buf);
	free(e->log.reclaim_hot);
	e->log.reclaim_buf = NULL;
	e->log.reclaim_hot = NULL;
	bc_seglog_carry_destroy(e);
}

bool bc_seglog_reclaim_idle(const struct bc_engine *e)
{
	return !e->log.reclaim_busy && bc_seglog_carry_idle(e);
}
