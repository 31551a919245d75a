/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Carry-forward: reclaim of a dirty tail segment without the origin.
 *
 * Ring positions are recycled in ring order.  When the oldest segment still
 * holds data not written back, writeback would have to write its live dirty
 * blocks to the origin before the position can be reused -- although most of
 * a random-overwrite working set is superseded within the log and the
 * watermarks do not ask for writeback.  Instead, its live dirty blocks are
 * re-appended at the head of the log (as hot clean blocks already are), and
 * once those copies are durable the superblock's written_back_seq moves past
 * the segment, which frees its position.  The origin is not touched.
 *
 * The origin's point-in-time property: writeback writes a batch inside one
 * client FLUSH epoch, in log order.  A carried block keeps its epoch only
 * if it lands in a segment of the same epoch, and a superseded version may
 * be dropped only if its successor is of the same epoch.  Both hold when no
 * FLUSH came since the segment was written (its epoch is the current one):
 * then every segment from it to the head is of that epoch.  Segments of an
 * older epoch are written back, as before.
 *
 * Crash safety: the segment stays on the ring, untouched, until (1) every
 * block carried out of it is durable in a later segment (the cache device
 * flushed after that segment was written) and (2) a superblock with
 * written_back_seq covering it is durable.  A crash before (2) replays the
 * segment and, later in the log, its carried copies (the same data; later
 * entries win); after (2) recovery starts past it.
 *
 * Writeback and carry-forward take turns: a carry starts only while no
 * batch runs, and a batch that starts while carried segments wait for (1)
 * takes them back (they are still intact and dirty on the ring; the batch
 * writes their data, which equals or precedes their copies in the same
 * epoch).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"

static void carry_read_done(struct bc_dev_io *io, int res);
static void carry_sb_done(struct bc_engine *e, int res);

/* Carried segments waiting for their commit, at most this many. */
static uint64_t carry_window(const struct bc_engine *e)
{
	return e->nseg / 32 ? e->nseg / 32 : 1;
}

/* Can the log's dirty data be compacted now? */
static bool carry_allowed(const struct bc_engine *e)
{
	const struct bc_mode_desc *m = bc_mode_current(e);
	uint64_t target;

	return e->tun.carry_percent && !e->closing && !e->log.direct && !e->log.failed && !e->log.carry_off &&
	       m->reappend && !m->writeback_urgent && !bc_drain_wanted(e, &target) && bc_wb_idle(e);
}

/* Can the log take @n more entries now, without waiting (for a segment
 * write to free a buffer, or for reclaim)? */
static bool room_for(const struct bc_engine *e, uint64_t n)
{
	const struct bc_seg *o = e->log.open;
	uint64_t room = o ? e->data_blocks - o->nr_entries : 0;

	if (room >= n + 1)
		return true; /* + 1: a round block's slot */
	if (!e->log.free_nbufs)
		return false;
	/* Round blocks: at most one per BC_ROUND_MAX_ENTRIES entries. */
	room += bc_seglog_free_positions(e) * (e->data_blocks - e->data_blocks / BC_ROUND_MAX_ENTRIES - 1);
	return room >= n + 1;
}

/* The next segment to carry, or 0. */
static uint64_t carry_next(const struct bc_engine *e)
{
	uint64_t seq = (e->log.carry_last > e->log.wb_seq ? e->log.carry_last : e->log.wb_seq) + 1;
	const struct bc_seg *s = &e->log.segs[seg_pos(e, seq)];

	if (seq > e->log.written_seq || seq - e->log.tail_seq >= carry_window(e) || s->seq != seq ||
	    s->state != BC_SEG_ONDISK || s->epoch != e->log.epoch)
		return 0;
	return seq;
}

/* Is block @b's newest version the entry in @slot?  Then @ix is it. */
static bool live(struct bc_engine *e, uint64_t b, uint32_t slot, struct bc_ix_ent *ix)
{
	return bc_index_find(&e->index, b, ix) && ix->slot == slot;
}

/* What a carry moves: the entry in @slot, if it is a data block whose
 * newest version it is and that is not written back. */
static bool movable(struct bc_engine *e, uint32_t slot, struct bc_ix_ent *ix)
{
	bc_slot_t v = e->log.slots[slot];

	return !bc_slot_no_data(v) && live(e, bc_slot_block(v), slot, ix) &&
	       (ix->flags & BC_IX_DIRTY);
}

/* The live dirty blocks of the segment at @pos, or -1 if one of them
 * cannot be carried (a zeroed range, a block that failed its checksum). */
static int live_dirty(struct bc_engine *e, uint32_t pos)
{
	const struct bc_seg *s = &e->log.segs[pos];
	uint32_t i, base = pos * e->data_blocks;
	int n = 0;

	for (i = 0; i < s->nr_entries; i++) {
		struct bc_seg_entry ent = bc_seglog_entry(e, base + i);
		struct bc_ix_ent ix;
		uint64_t b;

		if (!(ent.flags & BC_ENT_DIRTY) || (ent.flags & BC_ENT_INVALID))
			continue;
		if (ent.flags & BC_ENT_ZERO) {
			for (b = ent.block; b < ent.block + ent.nblocks; b++)
				if (live(e, b, base + i, &ix))
					return -1;
			continue;
		}
		if (!live(e, ent.block, base + i, &ix))
			continue;
		if (ix.flags & BC_IX_BAD)
			return -1;
		n += !!(ix.flags & BC_IX_DIRTY); /* movable(), without a second lookup */
	}
	return n;
}

/*
 * Segment @seq is carried: its live dirty blocks are in later segments, and
 * every version that superseded one of its blocks is in a segment up to the
 * newest one now.  It may go once that one is durable: a superseded block
 * may have been written with FUA, and its successor must not be lost with
 * it.
 */
static void mark_carried(struct bc_engine *e, uint64_t seq)
{
	uint64_t to = bc_seglog_last_seq(e);

	e->log.segs[seg_pos(e, seq)].carry_to = to;
	e->log.carry_last = seq;
	e->st.carried_segments++;
	bc_seglog_durable_want(e, to);
}

/* Record the carried segments whose copies are durable: written_back_seq
 * moves past them in the superblock, which frees their positions. */
void bc_seglog_carry_commit(struct bc_engine *e)
{
	uint64_t seq, c = e->log.wb_seq;

	if (e->log.carry_sb_busy || e->log.carry_last <= e->log.wb_seq || !bc_wb_idle(e))
		return;
	for (seq = e->log.wb_seq + 1; seq <= e->log.carry_last; seq++) {
		if (e->log.segs[seg_pos(e, seq)].carry_to > e->log.durable_seq)
			break;
		c = seq;
	}
	if (c == e->log.wb_seq)
		return;
	e->log.carry_sb_busy = true;
	e->log.carry_commit_seq = c;
	bc_sb_set_written_back(e, c);
	bc_sb_write_async(e, carry_sb_done);
}

static void carry_sb_done(struct bc_engine *e, int res)
{
	e->log.carry_sb_busy = false;
	if (res < 0) {
		bc_cache_error(e, false);
		bc_sb_set_written_back(e, e->log.wb_seq);
		bc_elog(e, BC_LOG_ERR, "carry-forward: writing the superblock failed: %s; dirty segments "
			"are written back to the origin instead from now on", strerror(-res));
		e->log.carry_off = true;
		e->log.carry_last = e->log.wb_seq;
	} else {
		e->log.wb_seq = e->log.carry_commit_seq;
		bc_wb_gate_progress(e);
	}
	bc_seglog_reclaim(e);
	bc_write_resume(e);
	bc_wb_kick(e);
}

/* Read the live dirty blocks of the segment at @pos (at least one: the
 * caller counted them) into reclaim_buf, at their places in the segment:
 * one read per run of adjacent ones; and the header and round blocks,
 * which hold their data CRCs (log/image.c). */
static void carry_read(struct bc_engine *e, uint32_t pos)
{
	const struct bc_seg *s = &e->log.segs[pos];
	uint32_t i, first = 0, len = 0, base = pos * e->data_blocks;
	unsigned n = 0, k;
	struct bc_ix_ent ix;

	e->log.carry_err = 0;
	bc_dev_io_init(&e->log.carry_ios[n++], BC_DIO_READ, e->log.reclaim_buf,
		       (uint64_t)e->hdr_blocks * BC_BLOCK_SIZE, seg_offset(e, pos), carry_read_done, e);
	for (i = 0; i <= s->nr_entries; i++) {
		bool want = i < s->nr_entries && (movable(e, base + i, &ix) ||
						  bc_slot_is_round(e->log.slots[base + i]));

		if (want && len && first + len == i) {
			len++;
			continue;
		}
		if (len) /* the run first .. first + len - 1 */
			bc_dev_io_init(&e->log.carry_ios[n++], BC_DIO_READ,
				       (char *)e->log.reclaim_buf + (size_t)(e->hdr_blocks + first) * BC_BLOCK_SIZE,
				       (uint64_t)len * BC_BLOCK_SIZE, slot_offset(e, base + first), carry_read_done, e);
		first = i;
		len = want;
	}
	e->log.carry_pending = n;
	for (k = 0; k < n; k++)
		bc_dev_submit(e->cache, &e->log.carry_ios[k]);
}

int bc_seglog_carry_init(struct bc_engine *e)
{
	e->log.carry_ios = calloc(e->data_blocks + 1, sizeof(*e->log.carry_ios));
	return e->log.carry_ios ? 0 : -ENOMEM;
}

void bc_seglog_carry_destroy(struct bc_engine *e)
{
	free(e->log.carry_ios);
	e->log.carry_ios = NULL;
}

/*
 * Reclaim found the tail segment dirty: commit what was carried, and carry
 * the next segments forward while allowed -- at most carry_percent of a
 * segment each, or writeback must do it.  Starts at most one read.
 */
void bc_seglog_carry(struct bc_engine *e)
{
	uint64_t seq;

	bc_seglog_carry_commit(e);
	while (!e->log.reclaim_busy && carry_allowed(e) && (seq = carry_next(e))) {
		uint32_t pos = seg_pos(e, seq);
		struct bc_seg *s = &e->log.segs[pos];
		int n = live_dirty(e, pos);

		if (n < 0 || (uint64_t)n * 100 > e->data_blocks * e->tun.carry_percent)
			break; /* for writeback */
		if (!n) {
			mark_carried(e, seq); /* all superseded or clean: nothing to read */
			bc_seglog_carry_commit(e);
			continue;
		}
		if (!room_for(e, (uint64_t)n) || e->log.carry_stalled == e->log.written_seq + 1)
			break; /* after a segment write, or writeback */
		e->log.reclaim_busy = true;
		e->log.carry_seq = seq;
		s->readers++;
		carry_read(e, pos);
		break;
	}
}

/* Re-append segment @pos's live dirty blocks from its data in @buf (its hot
 * clean ones get their second chance when reclaim retires it).  False: not
 * all of them. */
static bool carry_blocks(struct bc_engine *e, uint32_t pos, char *buf, uint32_t *moved)
{
	const struct bc_seg *s = &e->log.segs[pos];
	const struct bc_seg_hdr *hdr = bc_seglog_image_hdr(e, pos, buf);
	uint32_t i, base = pos * e->data_blocks, crc;

	for (i = 0; i < s->nr_entries; i++) {
		const char *src = buf + (size_t)(e->hdr_blocks + i) * BC_BLOCK_SIZE;
		struct bc_ix_ent ix;

		if (!movable(e, base + i, &ix))
			continue;
		if (!bc_seglog_image_crc(e, hdr, pos, i, &crc) ||
		    bc_crc32c(0, src, BC_BLOCK_SIZE) != crc) {
			/* Left for writeback, which reports it and never writes it. */
			bc_elog(e, BC_LOG_WARN, "carry-forward: dirty block %llu fails its data checksum on "
				"the cache device (slot %u%s): segment %llu left for writeback",
				(unsigned long long)ix.block, base + i,
				hdr ? "" : ", its segment header does not check", (unsigned long long)s->seq);
			return false;
		}
		if (!bc_seglog_append(e, ix.block, src, ix.mask, true))
			return false; /* no room */
		++*moved;
	}
	return live_dirty(e, pos) == 0;
}

static void carry_read_done(struct bc_dev_io *io, int res)
{
	struct bc_engine *e = io->priv;
	uint64_t seq = e->log.carry_seq;
	uint32_t pos = seg_pos(e, seq), moved = 0;
	struct bc_seg *s = &e->log.segs[pos];

	if (res < 0 && !e->log.carry_err)
		e->log.carry_err = res;
	if (--e->log.carry_pending)
		return;
	res = e->log.carry_err;
	s->readers--;
	if (res < 0) {
		bc_cache_error(e, false);
		bc_elog(e, BC_LOG_ERR, "carry-forward: reading segment %llu failed: %s; left for writeback",
			(unsigned long long)seq, strerror(-res));
	} else if (carry_allowed(e) && seq == carry_next(e)) { /* (still of the current epoch) */
		/* Still busy: appends that need a position must not start another carry. */
		if (carry_blocks(e, pos, e->log.reclaim_buf, &moved))
			mark_carried(e, seq);
		else /* no room after all: not again before a segment is written */
			e->log.carry_stalled = e->log.written_seq + 1;
		e->st.carried_blocks += moved;
	}
	e->log.reclaim_busy = false;
	e->log.carry_seq = 0;
	bc_seglog_carry_commit(e);
	bc_seglog_reclaim(e);
	bc_write_resume(e);
	bc_wb_kick(e);
}

/* A writeback batch wants to start: false while a carry is in flight (its
 * end kicks writeback again); carried segments not committed yet go back
 * to writeback. */
bool bc_seglog_carry_yield(struct bc_engine *e)
{
	if (e->log.carry_sb_busy || e->log.carry_seq)
		return false;
	e->log.carry_last = e->log.wb_seq;
	return true;
}

bool bc_seglog_carry_busy(const struct bc_engine *e)
{
	return e->log.carry_sb_busy || e->log.carry_seq || e->log.carry_last > e->log.wb_seq;
}

bool bc_seglog_carry_idle(const struct bc_engine *e)
{
	return !e->log.carry_sb_busy;
}

/*
 * What only writeback can free, in segments, for the writeback policy's
 * watermarks: the segments not written back -- or, while carry-forward
 * can compact them (no FLUSH since the oldest of them, and the dirty share
 * below carry_percent), just the segments' worth of dirty blocks.
 */
uint64_t bc_seglog_backlog(const struct bc_engine *e)
{
	uint64_t pending = e->log.written_seq > e->log.wb_seq ? e->log.written_seq - e->log.wb_seq : 0;
	uint64_t cap = (uint64_t)e->nseg * e->data_blocks;
	const struct bc_seg *s = &e->log.segs[seg_pos(e, e->log.wb_seq + 1)];

	if (!pending || !e->tun.carry_percent || e->log.direct || e->log.carry_off ||
	    s->seq != e->log.wb_seq + 1 || s->epoch != e->log.epoch || e->nr_dirty * 100 >= cap * e->tun.carry_percent)
		return pending;
	return (e->nr_dirty + e->data_blocks - 1) / e->data_blocks;
}
