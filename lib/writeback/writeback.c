/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Writeback, in log order: take the oldest N written segments (never across
 * a client FLUSH unless writeback_ordered is 0), read them,
 * collect each block's newest version within the batch, sort by origin
 * address, merge adjacent sectors into large writes, write them with
 * bounded concurrency, flush the origin, persist "written back through S"
 * in the superblock, and once that is durable mark the blocks clean; only
 * then may reclaim reuse those ring positions.
 *
 * The origin alone is crash-consistent at every moment.  Writes that no
 * client FLUSH separates are unordered -- a disk may persist any subset of
 * them -- so the writes of a batch that stays inside one FLUSH epoch may
 * reach the origin in any order: an interrupted batch leaves the origin as
 * a disk that lost power during that epoch would be.  The next batch starts
 * only once this one is flushed on the origin and recorded in the
 * superblock, so a restarted server re-applies just the interrupted batch
 * (idempotent within its epoch) and never takes a block back to an older
 * epoch's value.  Superseded versions are written back too when a later
 * epoch supersedes them, for the same reason.
 *
 * When it runs: above the dirty_high watermark until below dirty_low; all
 * the way down when the foreground has been idle for writeback_idle_ms, when
 * a drain was asked for, or when writes wait for ring space (the last even
 * when paused).  While the foreground is busy and nothing forces it,
 * writeback yields: a quarter of the concurrency and the rate limit.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "writeback/wb_priv.h"

#define WB_RETRY_MIN_NS (250ull * 1000 * 1000)     /* first retry after a failure */
#define WB_RETRY_MAX_NS (30ull * 1000 * 1000 * 1000) /* backoff doubles up to this */

static void wb_start(struct bc_wb *wb);
static void wb_issue(struct bc_wb *wb);

static void wb_retry(struct bc_wb *wb);

static void retry_fn(struct bc_timer *t)
{
	wb_retry(BC_CONTAINER_OF(t, struct bc_wb, retry));
}

void bc_wb_note_request(struct bc_engine *e)
{
	struct bc_wb *wb = e->wb;

	if (wb)
		wb->policy->note_request(wb->policy_ctx);
}

void bc_wb_resume(struct bc_engine *e)
{
	struct bc_wb *wb = e->wb;

	if (wb && wb->stage == WB_WRITING)
		wb_issue(wb);
}

void bc_wb_tunables_changed(struct bc_engine *e)
{
	bc_wb_kick(e);
}

int bc_wb_init(struct bc_engine *e)
{
	struct bc_wb *wb = calloc(1, sizeof(*wb));
	unsigned i;

	if (!wb)
		return -ENOMEM;
	e->wb = wb;
	wb->e = e;
	wb->retry.fn = retry_fn;
	for (i = 0; i < WB_QD; i++)
		wb->writes[i].wb = wb;
	wb->policy = &bc_wb_policy_watermark;
	return wb->policy->init(&wb->policy_ctx, e);
}

void bc_wb_destroy(struct bc_engine *e)
{
	struct bc_wb *wb = e->wb;
	unsigned i;

	if (!wb)
		return;
	bc_loop_timer_cancel(e->loop, &wb->retry);
	bc_loop_defer_cancel(e->loop, &wb->held); /* a pass of the held image, not yet run */
	if (wb->policy_ctx)
		wb->policy->destroy(wb->policy_ctx);
	for (i = 0; i < WB_MAX_SEGS; i++)
		free(wb->bufs[i]);
	for (i = 0; i < WB_QD; i++)
		free(wb->writes[i].fill_buf);
	free(wb->items);
	free(wb);
	e->wb = NULL;
}

bool bc_wb_idle(const struct bc_engine *e)
{
	const struct bc_wb *wb = e->wb;

	if (!wb || wb->stage == WB_IDLE)
		return true;
	/* Shutting down while the origin fails: give up the batch (it stays
	 * dirty in the log) instead of waiting for the origin to heal. */
	return e->closing && wb->retry.armed && !wb->inflight &&
	       (wb->stage == WB_WRITING || wb->stage == WB_FLUSHING);
}

/* Writes are waiting and only writeback can make room for them (not a
 * carry-forward under way: it frees positions without the origin). */
static bool space_pressure(const struct bc_engine *e)
{
	return bc_write_space_wait(e) && bc_seglog_short_of_space(e) && !bc_seglog_carry_busy(e);
}

/* Forced runs (a drain, writes waiting for space, an urgent mode) need no
 * policy; everything else is the policy's call. */
static bool wb_needed(struct bc_engine *e)
{
	struct bc_wb *wb = e->wb;
	uint64_t wb_seq = bc_seglog_wb_seq(e), written = bc_seglog_written_seq(e), target;
	struct bc_wb_view v = { .pending = bc_seglog_backlog(e), .nseg = e->nseg, .closing = e->closing };

	wb->full_speed = false;
	if (written <= wb_seq) {
		/* Everything sealed is written back; dirty data left is in the
		 * open segment.  Rounds keep it open across FLUSHes (format
		 * v4): if writeback would run now -- another shard waits for
		 * this one, a drain, an urgent mode (degraded), the policy
		 * (idle) -- seal it: writeback follows its write.  (Otherwise
		 * a FLUSH seals: what is open was never flushed, and stays in
		 * the log, or the staging file, until one comes.) */
		if (e->nr_dirty && (bc_wb_gate_wanted(e) ||
				    (bc_seglog_flush_rounds(e) &&
				     (bc_drain_wanted(e, &target) || bc_mode_current(e)->writeback_urgent ||
				      wb->policy->needed(wb->policy_ctx, &v, &wb->full_speed)))))
			bc_seglog_seal(e);
		wb->full_speed = false;
		return false; /* nothing written yet that could be written back */
	}
	if ((bc_drain_wanted(e, &target) && wb_seq < target) || space_pressure(e) ||
	    bc_mode_current(e)->writeback_urgent || bc_wb_gate_wanted(e)) {
		wb->full_speed = true;
		return true;
	}
	return wb->policy->needed(wb->policy_ctx, &v, &wb->full_speed);
}

void bc_wb_kick(struct bc_engine *e)
{
	struct bc_wb *wb = e->wb;

	if (!wb || wb->stage != WB_IDLE || wb->retry.armed)
		return;
	if (wb_needed(e))
		wb_start(wb);
}

void bc_wb_retry_now(struct bc_engine *e)
{
	struct bc_wb *wb = e->wb;

	if (wb && wb->retry.armed) {
		bc_loop_timer_cancel(e->loop, &wb->retry);
		wb_retry(wb);
		return;
	}
	bc_wb_kick(e);
}

/*
 * Something failed: nothing is lost (the blocks stay dirty in the log), so
 * retry with exponential backoff while status reports the failure.  Reset
 * when a batch completes.
 */
static void wb_backoff(struct bc_wb *wb, const char *what, int res)
{
	struct bc_engine *e = wb->e;

	e->st.writeback_failing++;
	e->st.writeback_last_errno = (uint64_t)-res;
	wb->retry_ns = wb->retry_ns ? wb->retry_ns * 2 : WB_RETRY_MIN_NS;
	if (wb->retry_ns > WB_RETRY_MAX_NS)
		wb->retry_ns = WB_RETRY_MAX_NS;
	e->st.writeback_retry_ms = wb->retry_ns / 1000000;
	bc_elog(e, BC_LOG_ERR, "writeback: %s failed: %s (%llu in a row); %llu dirty blocks kept, "
	       "retrying in %llu ms", what, strerror(-res), (unsigned long long)e->st.writeback_failing,
	       (unsigned long long)e->nr_dirty, (unsigned long long)(wb->retry_ns / 1000000));
	bc_loop_timer_arm(e->loop, &wb->retry, wb->retry_ns);
}

/* The batch cannot go on (reading it, or recording it, failed): start over. */
static void wb_fail(struct bc_wb *wb, const char *what, int res)
{
	wb->e->st.writeback_errors++;
	wb->stage = WB_IDLE;
	wb_backoff(wb, what, res);
}

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

static int wb_collect(struct bc_wb *wb)
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

static void wb_flush_done(struct bc_dev_io *io, int res);
static void wb_sb_done(struct bc_engine *e, int res);

/* All written: make it durable on the origin before recording it. */
static void wb_flush_issue(struct bc_wb *wb)
{
	wb->stage = WB_FLUSHING;
	bc_note_origin_flush(wb->e);
	bc_dev_io_init(&wb->flush_io, BC_DIO_FLUSH, NULL, 0, 0, wb_flush_done, wb);
	bc_dev_submit(wb->e->origin, &wb->flush_io);
}

/* A write (or its gap-fill read) failed: keep it -- its data stays in the
 * batch buffers -- for a retry. */
static void wb_write_failed(struct bc_wb *wb, struct wb_write *w, int res)
{
	w->failed = true;
	wb->nfailed++;
	wb->e->st.writeback_errors++;
	wb->e->st.writeback_last_errno = (uint64_t)-res;
}

static void wb_write_done(struct bc_dev_io *io, int res)
{
	struct wb_write *w = (struct wb_write *)io;
	struct bc_wb *wb = w->wb;

	wb->inflight--;
	if (res < 0) {
		wb_write_failed(wb, w, res);
	} else {
		w->busy = false;
		if (w->fill) {
			free(w->fill_buf);
			w->fill_buf = NULL;
			w->fill = false;
			bc_write_unpark(wb->e);
		}
	}
	wb_issue(wb);
}

/* Send @w's data (its iovecs, or zeroes) to the origin. */
static void wb_origin_write(struct bc_wb *wb, struct wb_write *w)
{
	struct bc_engine *e = wb->e;

	bc_dev_io_init(&w->io, w->zero ? BC_DIO_ZERO : BC_DIO_WRITE, NULL, w->len, w->start,
		       wb_write_done, wb);
	if (!w->zero) {
		w->io.iov = w->iov;
		w->io.iovcnt = w->niov;
	}
	e->st.writeback_ios++;
	e->st.writeback_bytes += w->len;
	bc_dev_submit(e->origin, &w->io);
}

/* The origin's data of a gap-fill span is in: lay the batch's dirty
 * sectors over it and write the span as one. */
static void wb_fill_read_done(struct bc_dev_io *io, int res)
{
	struct wb_write *w = (struct wb_write *)io;
	struct bc_wb *wb = w->wb;
	uint64_t first = w->start >> BC_BLOCK_SHIFT;
	size_t k;

	if (res < 0) {
		wb_write_done(io, res);
		return;
	}
	for (k = w->fill_first; k <= w->fill_last; k++) {
		const struct wb_item *it = &wb->items[k];
		char *dst = (char *)w->fill_buf + ((it->block - first) << BC_BLOCK_SHIFT);

		if (it->mask == BC_FULL_MASK)
			memcpy(dst, it->src, BC_BLOCK_SIZE);
		else
			bc_copy_sectors(dst, it->src, it->mask);
	}
	w->iov[0].iov_base = w->fill_buf;
	w->iov[0].iov_len = w->len;
	wb_origin_write(wb, w);
}

static void wb_submit_write(struct bc_wb *wb, struct wb_write *w)
{
	struct bc_engine *e = wb->e;

	w->busy = true;
	w->failed = false;
	if (!w->fill) {
		wb->inflight++;
		wb_origin_write(wb, w);
		return;
	}
	/* Gap fill: read the span first; wb_fill_read_done writes it. */
	if (!w->fill_buf)
		w->fill_buf = bc_alloc_aligned(w->len);
	if (!w->fill_buf) {
		wb_write_failed(wb, w, -ENOMEM); /* retried with the others after a backoff */
		return;
	}
	wb->inflight++;
	e->st.writeback_fills++;
	bc_dev_io_init(&w->io, BC_DIO_READ, w->fill_buf, w->len, w->start, wb_fill_read_done, wb);
	bc_dev_submit(e->origin, &w->io);
}

static void wb_issue(struct bc_wb *wb)
{
	struct bc_engine *e = wb->e;
	unsigned i;

	unsigned limit = wb->policy->inflight_limit(wb->policy_ctx, wb->full_speed);

	for (i = 0; i < WB_QD && wb->inflight < limit; i++) {
		struct wb_write *w = &wb->writes[i];

		if (w->busy)
			continue;
		if (!wb->policy->rate_ok(wb->policy_ctx, wb->full_speed))
			break;
		if (!bc_wb_build(wb, w))
			break;
		wb->policy->charge(wb->policy_ctx, w->len, wb->full_speed);
		wb_submit_write(wb, w);
	}
	if (wb->inflight || wb->retry.armed)
		return; /* a completion, the rate timer or the retry continues */
	if (wb->nfailed) {
		wb_backoff(wb, "writing to the origin", -(int)e->st.writeback_last_errno);
		return;
	}
	if (wb->cursor < wb->nitems)
		return; /* the rate timer continues */
	wb_flush_issue(wb);
}

/* Retry what failed: the failed writes of the batch, its origin flush, or
 * the whole batch. */
static void wb_retry(struct bc_wb *wb)
{
	unsigned i;

	switch (wb->stage) {
	case WB_WRITING:
		for (i = 0; i < WB_QD && wb->nfailed; i++)
			if (wb->writes[i].failed) {
				wb->nfailed--;
				wb_submit_write(wb, &wb->writes[i]);
			}
		wb_issue(wb);
		break;
	case WB_FLUSHING:
		wb_flush_issue(wb);
		break;
	default:
		bc_wb_kick(wb->e);
	}
}

static void wb_flush_done(struct bc_dev_io *io, int res)
{
	struct bc_wb *wb = io->priv;
	struct bc_engine *e = wb->e;

	if (res < 0) {
		e->st.writeback_errors++;
		wb_backoff(wb, "flushing the origin", res);
		return;
	}
	e->st.writeback_blocks += wb->nitems;
	e->st.writeback_batches++;
	wb->stage = WB_SB;
	if (wb->pass_partial)
		bc_sb_set_written_back_epoch(e, wb->first, wb->pass_hi);
	else
		bc_sb_set_written_back(e, wb->last);
	bc_sb_write_async(e, wb_sb_done);
}

/*
 * The blocks become clean only once the superblock recording the batch is
 * durable.  A partial write over a clean block logs just its own sectors and
 * leaves the others to the origin; were the block clean earlier, a crash
 * that lost the superblock would replay the batch's older, fuller entries
 * as dirty under that partial one, and writing those back would put older
 * data under sectors read from the origin.
 */
static void wb_sb_done(struct bc_engine *e, int res)
{
	struct bc_wb *wb = e->wb;
	size_t i;

	if (res < 0) {
		bc_cache_error(e, false);
		bc_sb_set_written_back(e, bc_seglog_wb_seq(e));
		if (wb->pass_lo)
			bc_sb_set_written_back_epoch(e, wb->first, wb->pass_lo);
		wb_fail(wb, "writing the superblock", res);
		return;
	}
	for (i = 0; i < wb->nitems; i++) {
		struct wb_item *it = &wb->items[i];
		struct bc_ix_ent ix;

		if (bc_index_find(&e->index, it->block, &ix) && ix.slot == it->slot &&
		    (ix.flags & BC_IX_DIRTY))
			bc_ix_set(e, &ix, ix.slot, (uint8_t)(ix.flags & ~BC_IX_DIRTY));
	}
	wb->stage = WB_IDLE;
	if (wb->pass_partial)
		bc_wb_gate_progress(e); /* the segment's next epoch is now its oldest */
	else
		bc_seglog_written_back(e, wb->last);
	if (wb->retry_ns) {
		bc_elog(e, BC_LOG_INFO, "writeback: recovered after %llu failed attempt(s)",
		       (unsigned long long)e->st.writeback_failing);
		wb->retry_ns = 0;
		e->st.writeback_failing = 0;
		e->st.writeback_retry_ms = 0;
	}
	bc_drain_progress(e);
	bc_seglog_reclaim(e);
	bc_wb_kick(e);
}

/* The batch's segments are in its buffers: collect and write. */
static void wb_batch_read(struct bc_wb *wb)
{
	wb->held_seq = wb->first; /* bufs[0]: segments are not rewritten until written back */
	if (wb_collect(wb) < 0) {
		wb_fail(wb, "collecting dirty blocks", -ENOMEM);
		return;
	}
	wb->stage = WB_WRITING;
	wb_issue(wb);
}

static void wb_read_done(struct bc_dev_io *io, int res)
{
	struct bc_wb *wb = io->priv;

	if (res < 0) {
		bc_cache_error(wb->e, false);
		if (!wb->error)
			wb->error = res;
	}
	if (--wb->reads_pending)
		return;
	if (wb->error) {
		int err = wb->error;

		wb->error = 0;
		wb_fail(wb, "reading the cache device", err);
		return;
	}
	wb_batch_read(wb);
}

/* The next pass over the segment an earlier batch read (held_seq). */
static void wb_held_run(struct bc_completion *c, int res)
{
	(void)res;
	wb_batch_read(BC_CONTAINER_OF(c, struct bc_wb, held));
}

static bool wb_ordered(const struct bc_engine *e)
{
	return e->tun.writeback_ordered || e->gate;
}

/*
 * The epochs of segment wb->first this batch takes.  On persistent memory
 * and on disks of format v4 a segment spans client FLUSHes (a FLUSH is a
 * round there, not a seal; every round is of one epoch, log/segment.c:
 * bc_seglog_new_epoch): ordered, such a segment is written back one epoch
 * per pass, each pass flushed on the origin and recorded in the superblock
 * (bc_sb_disk.written_back_epoch) before the next, so a crash re-applies
 * at most the pass it interrupted -- as with a segment of one epoch.  The
 * segment is read once: its later passes use the image the first one read
 * (held_seq).  False: the gate holds the pass back.
 */
static bool wb_pass(struct bc_wb *wb)
{
	struct bc_engine *e = wb->e;
	const struct bc_seg *s = bc_seglog_seg(e, wb->first);

	wb->pass_lo = bc_sb_wb_epoch(e, wb->first);
	wb->pass_hi = bc_seglog_next_epoch(e, s, wb->pass_lo);
	if (!bc_wb_gate_may(e, wb->pass_hi))
		return false;
	wb->epoch = wb->pass_hi;
	wb->pass_partial = wb_ordered(e) && wb->pass_hi < s->last_epoch;
	if (!wb->pass_partial)
		wb->pass_hi = UINT64_MAX; /* the rest of the segment */
	return true;
}

static void wb_start(struct bc_wb *wb)
{
	struct bc_engine *e = wb->e;
	uint64_t target;
	unsigned k, limit;

	if (!bc_seglog_carry_yield(e))
		return; /* a carry-forward runs: it kicks writeback when done */
	wb->first = bc_seglog_wb_seq(e) + 1;
	if (wb->first > bc_seglog_written_seq(e))
		return;
	if (!wb_pass(wb))
		return; /* older epochs of other shards first: kicked when they progress */
	wb->nsegs = 0;
	limit = wb->policy->batch_limit(wb->policy_ctx, bc_drain_wanted(e, &target));
	while (wb->nsegs < limit && wb->first + wb->nsegs <= bc_seglog_written_seq(e)) {
		const struct bc_seg *s = bc_seglog_seg(e, wb->first + wb->nsegs);

		/* Ordered writeback: a batch is applied as one unordered set of
		 * writes, so it must not span a client FLUSH. */
		if (wb->nsegs && (wb_ordered(e) || wb->pass_partial) &&
		    (s->epoch != wb->epoch || s->last_epoch != s->epoch))
			break;
		if (!wb->bufs[wb->nsegs]) {
			wb->bufs[wb->nsegs] = bc_alloc_aligned(e->seg_size);
			if (!wb->bufs[wb->nsegs])
				break;
		}
		wb->nsegs++;
	}
	if (!wb->nsegs)
		return;
	wb->last = wb->first + wb->nsegs - 1;
	wb->error = 0;
	wb->stage = WB_READING;
	if (wb->nsegs == 1 && wb->held_seq == wb->first) {
		/* A later pass of the segment the last batch read: its image
		 * is still in bufs[0] (from the loop, not inside the kick). */
		e->st.writeback_reads_saved++;
		wb->held.fn = wb_held_run;
		bc_loop_defer(e->loop, &wb->held, 0);
		return;
	}
	wb->held_seq = 0;
	wb->reads_pending = wb->nsegs;
	for (k = 0; k < wb->nsegs; k++) {
		uint32_t pos = seg_pos(e, wb->first + k);
		const struct bc_seg *s = bc_seglog_seg(e, wb->first + k);

		bc_dev_io_init(&wb->reads[k], BC_DIO_READ, wb->bufs[k],
			       (uint64_t)(e->hdr_blocks + s->nr_entries) * BC_BLOCK_SIZE, seg_offset(e, pos),
			       wb_read_done, wb);
		bc_dev_submit(e->cache, &wb->reads[k]);
	}
}
