/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The write path: WRITE, WRITE_ZEROES and DISCARD are applied to the log in
 * arrival order.  In writethrough mode a write also goes to the origin and
 * its log entries are clean (unless the block was dirty); in writearound and
 * passthrough modes it goes only to the origin and cached copies are
 * invalidated (logged, so a restart cannot bring them back) -- except that a
 * write touching a dirty block goes writethrough, so dirty data stays safe
 * (engine/mode.c decides the path).  A request that cannot proceed (no free buffer or ring
 * position, or a partial-block merge read in flight) waits at the head of
 * the wait queue and is resumed by whatever frees the resource.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "log/staging.h"

static const uint8_t zero_block[BC_BLOCK_SIZE] __attribute__((aligned(4096)));

static uint8_t sector_mask(uint64_t pos, uint64_t end, unsigned *nsect)
{
	unsigned soff = (unsigned)((pos & (BC_BLOCK_SIZE - 1)) >> BC_SECTOR_SHIFT);
	uint64_t left = (end - pos) >> BC_SECTOR_SHIFT;
	unsigned n = BC_SECTORS_PER_BLOCK - soff;

	if (left < n)
		n = (unsigned)left;
	*nsect = n;
	return (uint8_t)(((1u << n) - 1) << soff);
}

/* Copy the contiguous run of sectors in @mask from @src (its first sector). */
static void copy_run(struct bc_engine *e, void *dst_block, const void *src, uint8_t mask)
{
	unsigned soff = (unsigned)__builtin_ctz(mask), n = (unsigned)__builtin_popcount(mask);

	bc_seglog_store(e, (char *)dst_block + soff * BC_SECTOR_SIZE, src, n * BC_SECTOR_SIZE);
}

/* bc_seglog_reserve() refused: count why -- no free ring position (the
 * cache is full), or only no free segment buffer (every one is being
 * written: the cache device is busy). */
static void note_reserve_wait(struct bc_engine *e)
{
	if (bc_seglog_free_positions(e) == 0)
		e->st.cache_full_waits++;
	else
		e->st.buffer_waits++;
}

/* @r leaves the wait queue: how long it waited (status: write_wait_*). */
static void note_waited(struct bc_engine *e, struct bc_request *r, uint64_t now)
{
	uint64_t w = now - rq_of(r)->wait_since;

	e->st.write_waited++;
	e->st.write_wait_ns += w;
	if (w > e->st.write_wait_max_ns)
		e->st.write_wait_max_ns = w;
}

static void merge_read_done(struct bc_dev_io *io, int res);

/* Per-class counters, once per block actually applied. */
static void count_write(struct bc_engine *e, bool hit, uint8_t mask)
{
	bool full = mask == BC_FULL_MASK;

	if (hit)
		(*(full ? &e->st.write_hit_full : &e->st.write_hit_partial))++;
	else
		(*(full ? &e->st.write_miss_full : &e->st.write_miss_partial))++;
}

/* Start reading the old version of @ent's block for a partial overwrite. */
static void start_merge(struct bc_engine *e, struct bc_request *r, struct bc_ix_ent *ent)
{
	uint32_t pos = slot_pos(e, ent->slot);

	e->wr.merge_busy = true;
	e->wr.merge_req = r;
	e->wr.merge_slot = ent->slot;
	e->st.merge_reads++;
	rq_of(r)->merge_block = ent->block;
	rq_of(r)->merged = false;
	bc_seglog_pin(e, pos);
	bc_dev_io_init(&e->wr.merge_io, BC_DIO_READ, e->wr.merge_buf, BC_BLOCK_SIZE,
		       slot_offset(e, ent->slot), merge_read_done, e);
	bc_dev_submit(e->cache, &e->wr.merge_io);
}

static void merge_read_done(struct bc_dev_io *io, int res)
{
	struct bc_engine *e = io->priv;
	struct bc_request *r = e->wr.merge_req;

	e->wr.merge_busy = false;
	e->wr.merge_req = NULL;
	if (res < 0) {
		bc_cache_error(e, false);
		bc_elog(e, BC_LOG_ERR, "cache device: reading block %llu for a partial write failed: %s",
		       (unsigned long long)rq_of(r)->merge_block, strerror(-res));
		/* r is at the head of the wait queue. */
		bc_reqq_pop(&e->wr.waitq);
		note_waited(e, r, bc_now_ns());
		bc_req_complete(e, r, -EIO);
	} else {
		rq_of(r)->merged = true;
	}
	bc_seglog_unpin(e, slot_pos(e, e->wr.merge_slot));
	bc_write_resume(e);
}

/*
 * Apply the part of one block at rq->pos.  Returns 1 when applied, 0 when
 * the request must wait.
 */
static int apply_block(struct bc_engine *e, struct bc_request *r, const void *src,
		       uint8_t mask, bool clean)
{
	struct bc_rq *rq = rq_of(r);
	uint64_t block = rq->pos >> BC_BLOCK_SHIFT;
	struct bc_ix_ent found, *ent = bc_index_find(&e->index, block, &found) ? &found : NULL;
	const void *old = NULL;
	uint8_t newmask = mask;
	uint32_t slot;
	char *dst;

	uint8_t flags = (clean && !(ent && (ent->flags & BC_IX_DIRTY))) ? 0 : BC_IX_DIRTY;
	bool hit = ent != NULL;

	if (ent && bc_seglog_slot_mutable(e, ent->slot) && !(ent->flags & BC_IX_ZERO)) {
		/* Newest version is in the open buffer, not yet written: overwrite in place. */
		dst = slot_ram(e, ent->slot);
		copy_run(e, dst, src, mask);
		bc_seglog_update_entry(e, ent->slot, mask, flags);
		bc_ix_set(e, ent, ent->slot, flags);
		e->st.write_inplace_blocks++;
		count_write(e, true, mask);
		return 1;
	}
	if (ent && (ent->flags & BC_IX_DIRTY) && (ent->mask & ~mask)) {
		flags = BC_IX_DIRTY;
		/* Dirty sectors outside this write must move to the new slot. */
		if (ent->flags & BC_IX_ZERO)
			old = zero_block;
		else if ((old = slot_ram(e, ent->slot)) == NULL) {
			if (rq->merged && rq->merge_block == block && e->wr.merge_slot == ent->slot) {
				old = e->wr.merge_buf;
			} else {
				start_merge(e, r, ent);
				return 0;
			}
		}
		newmask = mask | ent->mask;
	}
	if (!bc_seglog_reserve(e)) {
		note_reserve_wait(e);
		return 0;
	}
	/* reserve may have sealed a segment; slot_ram(old) stays valid until
	 * that write completes, which cannot happen before we return. */
	slot = bc_seglog_take_slot(e, &(struct bc_seg_entry){
		.block = block, .nblocks = 1, .mask = newmask, .flags = flags ? BC_ENT_DIRTY : 0,
	});
	dst = slot_ram(e, slot);
	if (newmask != BC_FULL_MASK)
		bc_seglog_zero(e, dst, BC_BLOCK_SIZE); /* no stale bytes of other blocks on disk */
	if (old)
		bc_seglog_store_sectors(e, dst, old, (uint8_t)(newmask & ~mask));
	copy_run(e, dst, src, mask);
	if (bc_index_insert(&e->index, block, &found) < 0) {
		/* Out of memory for the index: undo the entry. */
		bc_seglog_untake_slot(e, slot);
		return -ENOMEM;
	}
	bc_ix_set(e, &found, slot, flags);
	rq->merged = false;
	e->st.write_blocks++;
	count_write(e, hit, mask);
	return 1;
}

/* Log a ZERO entry for up to 65535 whole blocks from rq->pos.  Returns the
 * number of blocks covered, 0 to wait, -errno on failure. */
static int64_t apply_zero_range(struct bc_engine *e, struct bc_request *r, uint64_t nblocks)
{
	uint64_t block = rq_of(r)->pos >> BC_BLOCK_SHIFT, b;
	uint32_t slot;

	if (nblocks > UINT16_MAX)
		nblocks = UINT16_MAX;
	if (!bc_seglog_reserve(e)) {
		note_reserve_wait(e);
		return 0;
	}
	slot = bc_seglog_take_slot(e, &(struct bc_seg_entry){
		.block = block, .nblocks = (uint16_t)nblocks, .mask = BC_FULL_MASK,
		.flags = BC_ENT_ZERO | BC_ENT_DIRTY,
	});
	for (b = block; b < block + nblocks; b++) {
		struct bc_ix_ent ent;

		if (bc_index_insert(&e->index, b, &ent) < 0) {
			/* The log entry must describe exactly what the index holds. */
			bc_seglog_set_nblocks(e, slot, (uint16_t)(b - block));
			if (b == block)
				bc_seglog_untake_slot(e, slot);
			return -ENOMEM;
		}
		bc_ix_set(e, &ent, slot, BC_IX_DIRTY);
	}
	return (int64_t)nblocks;
}

/*
 * Writearound/passthrough: drop the cached copies of the request's blocks
 * and log that, so a restart cannot resurrect them.  1: done, 0: wait for
 * log space, -errno.
 */
static int invalidate(struct bc_engine *e, struct bc_request *r, uint64_t end)
{
	uint64_t first = r->offset >> BC_BLOCK_SHIFT, last = (end - 1) >> BC_BLOCK_SHIFT, b;
	bool cached = false;
	struct bc_ix_ent ix;

	for (b = first; b <= last && !cached; b++)
		cached = bc_index_find(&e->index, b, &ix);
	if (cached) {
		if (!bc_seglog_reserve(e)) {
			note_reserve_wait(e);
			return 0;
		}
		bc_seglog_take_slot(e, &(struct bc_seg_entry){
			.block = first, .nblocks = (uint16_t)(last - first + 1), .mask = BC_FULL_MASK,
			.flags = BC_ENT_INVALID,
		});
		for (b = first; b <= last; b++) {
			if (bc_index_find(&e->index, b, &ix)) {
				bc_ix_drop(e, &ix);
				e->st.invalidated_blocks++;
			}
		}
	}
	bc_read_invalidate_inflight(e); /* origin reads in flight must not promote old data */
	rq_of(r)->pos = end;
	return 1;
}

static void origin_write_done(struct bc_dev_io *io, int res);

/* Non-writeback modes: the data goes to the origin; complete when it is there. */
static void origin_write(struct bc_engine *e, struct bc_request *r)
{
	struct bc_rq *rq = rq_of(r);
	uint64_t blocks = (r->length + BC_BLOCK_SIZE - 1) >> BC_BLOCK_SHIFT;

	if (bc_wb_fill_overlaps(e, r->offset, r->length)) {
		/* Writeback is rewriting this range with the origin's own data. */
		bc_reqq_push(&e->wr.fill_parked, r);
		return;
	}
	if (rq->path == BC_PATH_THROUGH)
		e->st.writethrough_blocks += blocks;
	else if (bc_engine_mode(e) == BC_CACHE_PASSTHROUGH)
		e->st.passthrough_blocks += blocks;
	else
		e->st.writearound_blocks += blocks;
	bc_read_invalidate_inflight(e);
	e->wr.origin_writes_inflight++;
	bc_dev_io_init(&rq->oio, BC_DIO_WRITE, r->buf, r->length, r->offset, origin_write_done, r);
	bc_dev_submit(e->origin, &rq->oio);
}

static void origin_write_done(struct bc_dev_io *io, int res)
{
	struct bc_request *r = io->priv;
	struct bc_engine *e = rq_of(r)->engine;

	bc_flush_note_origin_write(e);
	bc_read_invalidate_inflight(e);
	e->wr.origin_writes_inflight--;
	if (res < 0) {
		bc_origin_error(e);
		bc_elog(e, BC_LOG_ERR, "origin: write of %llu bytes at %llu failed: %s",
		       (unsigned long long)r->length, (unsigned long long)r->offset, strerror(-res));
		r->done(r, -EIO);
		return;
	}
	if (r->flags & BC_REQ_FUA)
		bc_flush_submit(e, r);
	else
		r->done(r, 0);
}

void bc_write_unpark(struct bc_engine *e)
{
	struct bc_reqq q = bc_reqq_take(&e->wr.fill_parked);
	struct bc_request *r;

	while ((r = bc_reqq_pop(&q)))
		origin_write(e, r); /* parks again if another fill still overlaps */
}

/* Apply as much of @r as possible.  1: done (completion issued), 0: wait. */
static int apply(struct bc_engine *e, struct bc_request *r)
{
	struct bc_rq *rq = rq_of(r);
	uint64_t end = r->offset + r->length;
	unsigned nsect;
	int ret = 0;

	/* The path is chosen when the request starts to apply, not when it
	 * arrives: a write queued behind others must see the blocks they made
	 * dirty (writearound would otherwise drop them). */
	if (rq->pos == r->offset)
		rq->path = bc_mode_write_path(e, r);
	while (rq->pos < end) {
		uint8_t mask = sector_mask(rq->pos, end, &nsect);

		if (r->op == BC_OP_WRITE && rq->path == BC_PATH_AROUND) {
			ret = invalidate(e, r, end);
			if (ret > 0)
				break;
		} else if (r->op == BC_OP_WRITE) {
			ret = apply_block(e, r, (const char *)r->buf + (rq->pos - r->offset), mask,
					  rq->path == BC_PATH_THROUGH);
		} else if (mask != BC_FULL_MASK) {
			if (r->op == BC_OP_DISCARD)
				ret = 1; /* partial-block discard is advisory: skip */
			else
				ret = apply_block(e, r, zero_block, mask, false);
		} else {
			int64_t n = apply_zero_range(e, r, (end - rq->pos) >> BC_BLOCK_SHIFT);

			if (n > 0) {
				rq->pos += (uint64_t)n << BC_BLOCK_SHIFT;
				continue;
			}
			ret = (int)n;
		}
		if (ret < 0) {
			bc_req_complete(e, r, ret);
			return 1;
		}
		if (ret == 0)
			return 0;
		rq->pos += (uint64_t)nsect << BC_SECTOR_SHIFT;
	}
	/* Staged acks: its entries are complete (and those of any before it). */
	bc_staging_publish(e);
	if (rq->path != BC_PATH_LOG) {
		origin_write(e, r);
		return 1;
	}
	if (r->flags & BC_REQ_FUA)
		bc_seglog_wait_durable(e, r, bc_seglog_last_seq(e));
	else if (e->cfg.written_acks)
		bc_seglog_wait_written(e, r, bc_seglog_last_seq(e));
	else
		bc_req_complete(e, r, 0);
	return 1;
}

static void write_timer_arm(struct bc_engine *e)
{
	uint64_t limit = e->tun.write_timeout_ms * 1000000ull, now, waited;
	struct bc_request *r = e->wr.waitq.head;

	if (!r || !limit || e->wr.write_timer.armed)
		return;
	now = bc_now_ns();
	waited = now - rq_of(r)->wait_since;
	bc_loop_timer_arm(e->loop, &e->wr.write_timer, waited >= limit ? 1000000 : limit - waited);
}

/*
 * Writes that waited write_timeout_ms (for space: the cache is full of
 * dirty data the origin does not take) fail with EIO, oldest first.  Their
 * blocks applied so far stay (a failed write leaves its range undefined);
 * nothing acknowledged is touched.  A write whose merge read is in flight
 * is left to that read.
 */
static void write_timer_fn(struct bc_timer *t)
{
	struct bc_engine *e = BC_CONTAINER_OF(t, struct bc_engine, wr.write_timer);
	uint64_t limit = e->tun.write_timeout_ms * 1000000ull, now = bc_now_ns();
	struct bc_request *r;
	unsigned n = 0;

	if (!limit)
		return;
	while ((r = e->wr.waitq.head) && now - rq_of(r)->wait_since >= limit &&
	       !(e->wr.merge_busy && e->wr.merge_req == r)) {
		bc_reqq_pop(&e->wr.waitq);
		note_waited(e, r, now);
		e->st.write_timeouts++;
		n++;
		bc_req_complete(e, r, -EIO);
	}
	if (n && bc_write_idle(e))
		bc_drain_progress(e);
	if (n)
		bc_elog(e, BC_LOG_ERR, "write: %u write(s) waited %llu ms for cache space and failed with "
		       "EIO; %llu dirty blocks wait for the origin (writeback %s)", n,
		       (unsigned long long)e->tun.write_timeout_ms, (unsigned long long)e->nr_dirty,
		       e->st.writeback_failing ? "failing" : "running");
	write_timer_arm(e);
}

int bc_write_init(struct bc_engine *e)
{
	e->wr.write_timer.fn = write_timer_fn;
	e->wr.merge_buf = bc_alloc_aligned(BC_BLOCK_SIZE);
	return e->wr.merge_buf ? 0 : -ENOMEM;
}

void bc_write_destroy(struct bc_engine *e)
{
	bc_loop_timer_cancel(e->loop, &e->wr.write_timer);
	free(e->wr.merge_buf);
	e->wr.merge_buf = NULL;
}

bool bc_write_waiting(const struct bc_engine *e)
{
	return e->wr.waitq.head != NULL;
}

bool bc_write_origin_busy(const struct bc_engine *e)
{
	return e->wr.origin_writes_inflight != 0;
}

bool bc_write_space_wait(const struct bc_engine *e)
{
	return e->wr.waitq.head && !e->wr.merge_busy;
}

bool bc_write_idle(const struct bc_engine *e)
{
	return !e->wr.waitq.head && !e->wr.merge_busy;
}

static void waitq_push(struct bc_engine *e, struct bc_request *r)
{
	rq_of(r)->wait_since = bc_now_ns();
	bc_reqq_push(&e->wr.waitq, r);
	write_timer_arm(e);
	/* A waiting write is what makes writeback run even when paused or
	 * below its watermark (space pressure): it must learn of this one,
	 * which may wait for nothing else. */
	bc_wb_kick(e);
}

void bc_write_submit(struct bc_engine *e, struct bc_request *r)
{
	struct bc_rq *rq = rq_of(r);

	rq->pos = r->offset;
	rq->merged = false;
	rq->engine = e;
	if (e->wr.waitq.head || e->wr.merge_busy) {
		waitq_push(e, r);
		return;
	}
	if (!apply(e, r))
		waitq_push(e, r);
}

void bc_write_resume(struct bc_engine *e)
{
	struct bc_request *r;
	uint64_t now = 0;

	if (e->wr.resuming)
		return; /* the outer call continues with the queue */
	e->wr.resuming = true;
	while ((r = e->wr.waitq.head) && !e->wr.merge_busy) {
		/* Nothing joins the wait queue while apply() runs, but a FUA
		 * write it finishes moves to flushq through the same link:
		 * take the successor first. */
		struct bc_request *next = rq_of(r)->next;

		if (!apply(e, r))
			break;
		if (!now)
			now = bc_now_ns();
		note_waited(e, r, now);
		e->wr.waitq.head = next;
		if (!next)
			e->wr.waitq.tail = NULL;
	}
	e->wr.resuming = false;
	/* A detach waits for the queue to be empty. */
	if (bc_write_idle(e))
		bc_drain_progress(e);
}
