/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Writes of the open segment without sealing it.  With written acks a write
 * is acknowledged once it is on the cache device; sealing the open segment
 * for every batch of writes would spend a whole ring position (and later a
 * writeback pass and a reclaim) on a few blocks.  Instead the entries that
 * arrived since the last write are written in place -- the new data blocks
 * and the header, now describing every entry so far -- and the segment stays
 * open for more.
 *
 * Crash safety rests on three rules:
 *  - an entry handed to such a write is frozen: the write path never
 *    overwrites it in place again (a newer copy of its block takes a new
 *    entry), so the data on the device always matches the CRCs in any header
 *    written for it;
 *  - one such write at a time, and the seal's write of the segment only after
 *    it: headers of one position land in the order they were built;
 *  - the new data and the header go out together, so a crash may leave a
 *    header that names entries whose data never landed: recovery keeps the
 *    segment's entries up to the first whose data CRC does not match
 *    (log/recovery.c), and entries acknowledged by an earlier write all
 *    precede it.
 * Acknowledgements also keep the log's order: entries of segment S count as
 * written only once every segment before S is (written_seq == S - 1), as a
 * recovery walks the chain from the oldest segment and stops at a gap.
 */
#include <errno.h>
#include <string.h>

#include "engine/engine.h"

/* Frozen data blocks a write of the open segment rewrites rather than
 * splitting into a header write and a data write. */
#define OW_REWRITE_MAX 32

static void ow_done(struct bc_dev_io *io, int res);

static void ow_submit(struct bc_engine *e, unsigned i, uint64_t off_blocks, uint64_t nblocks)
{
	struct bc_seg *s = e->log.ow_seg;
	uint32_t pos = (uint32_t)(s - e->log.segs);

	bc_dev_io_init(&e->log.ow_io[i], BC_DIO_WRITE, (char *)s->buf->mem + off_blocks * BC_BLOCK_SIZE,
		       nblocks * BC_BLOCK_SIZE, seg_offset(e, pos) + off_blocks * BC_BLOCK_SIZE, ow_done, e);
	e->log.ow_pending++;
	bc_dev_submit(e->cache, &e->log.ow_io[i]);
}

void bc_seglog_write_open(struct bc_engine *e)
{
	struct bc_seg *s = e->log.open;
	uint32_t first, n;

	if (!s || e->log.ow_seg || e->log.failed || s->nr_entries == s->frozen)
		return;
	first = s->frozen;
	n = s->nr_entries;
	bc_seglog_build_hdr(e, s, n); /* freezes entries first..n-1 */
	e->log.ow_seg = s;
	e->log.ow_target = n;
	e->log.ow_error = 0;
	e->st.open_segment_writes++;
	if (first <= OW_REWRITE_MAX) {
		/* One write from the header through the new data: the few
		 * frozen blocks in between are rewritten unchanged (their
		 * content cannot change), cheaper than a second IO. */
		ow_submit(e, 0, 0, e->hdr_blocks + n);
	} else {
		ow_submit(e, 0, 0, e->hdr_blocks);
		ow_submit(e, 1, e->hdr_blocks + first, n - first);
	}
}

static void ow_done(struct bc_dev_io *io, int res)
{
	struct bc_engine *e = io->priv;
	struct bc_seg *s = e->log.ow_seg;

	if (res < 0 && !e->log.ow_error)
		e->log.ow_error = res;
	if (--e->log.ow_pending)
		return;
	e->log.ow_seg = NULL;
	if (e->log.ow_error) {
		bc_cache_error(e, false);
		bc_loop_log(e->loop, BC_LOG_ERR, "cache device: writing the open segment %llu failed: %s; "
			    "sealing it (its write is retried)", (unsigned long long)s->seq,
			    strerror(-e->log.ow_error));
		/* Its waiters now wait for the seal's write, which retries. */
		if (s == e->log.open)
			bc_seglog_seal(e);
	} else {
		s->persisted = e->log.ow_target;
	}
	if (s->seal_waiting)
		bc_seglog_seal_write(e, s);
	bc_seglog_written_progress(e);
	/* Writes that arrived meanwhile go in the next write. */
	bc_seglog_written_kick(e);
}

bool bc_seglog_entries_written(const struct bc_engine *e, uint64_t seq, uint32_t nent)
{
	const struct bc_seg *s;

	if (seq <= e->log.written_seq)
		return true;
	if (seq != e->log.written_seq + 1)
		return false;
	s = &e->log.segs[seg_pos(e, seq)];
	return s->seq == seq && s->persisted >= nent;
}

bool bc_seglog_openwrite_idle(const struct bc_engine *e)
{
	return !e->log.ow_seg;
}
