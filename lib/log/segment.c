/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The log: RAM segment buffers, sealing, segment writes, durability
 * tracking for FLUSH/FUA (batched behind a deadline), and recycling of ring
 * positions once their data has been written back.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "core/loop_internal.h"

#define PERIODIC_FLUSH_SEGMENTS 16 /* bounds the segments recovery must verify */
#define SEG_WRITE_RETRIES 3

static void maybe_flush(struct bc_engine *e);

void bc_seglog_flush_kick(struct bc_engine *e)
{
	maybe_flush(e);
}

void bc_reqq_push(struct bc_reqq *q, struct bc_request *r)
{
	rq_of(r)->next = NULL;
	if (q->tail)
		rq_of(q->tail)->next = r;
	else
		q->head = r;
	q->tail = r;
}

struct bc_request *bc_reqq_pop(struct bc_reqq *q)
{
	struct bc_request *r = q->head;

	if (r) {
		q->head = rq_of(r)->next;
		if (!q->head)
			q->tail = NULL;
		rq_of(r)->next = NULL;
	}
	return r;
}

/* Seal the open segment if a FLUSH/FUA waits for it. */
static void seal_for_waiters(struct bc_engine *e)
{
	if (e->open && e->open->nr_entries && e->flushq.head &&
	    e->flushq.tail && rq_of(e->flushq.tail)->flush_seq >= e->open->seq)
		bc_seglog_seal(e);
	maybe_flush(e);
}

static void flush_timer_fn(struct bc_timer *t)
{
	struct bc_engine *e = BC_CONTAINER_OF(t, struct bc_engine, flush_timer);

	seal_for_waiters(e);
}

/* Group commit: runs after the current loop iteration, so every request that
 * arrived together joins the segment; no artificial wait when idle. */
static void seal_deferred(struct bc_completion *c, int res)
{
	struct bc_engine *e = BC_CONTAINER_OF(c, struct bc_engine, seal_comp);

	(void)res;
	e->seal_pending = false;
	if (!e->cache_flush_busy && !e->nr_writing)
		seal_for_waiters(e);
}

int bc_seglog_init(struct bc_engine *e)
{
	unsigned i;

	e->segs = calloc(e->nseg, sizeof(*e->segs));
	e->rmap = calloc((size_t)e->nseg * e->data_blocks, sizeof(*e->rmap));
	e->bufs_all = calloc(e->nbufs, sizeof(*e->bufs_all));
	e->merge_buf = bc_alloc_aligned(BC_BLOCK_SIZE);
	e->reclaim_buf = bc_alloc_aligned(e->seg_size);
	e->reclaim_hot = calloc(e->data_blocks, sizeof(*e->reclaim_hot));
	if (!e->segs || !e->rmap || !e->bufs_all || !e->merge_buf || !e->reclaim_buf ||
	    !e->reclaim_hot)
		return -ENOMEM;
	for (i = 0; i < e->nbufs; i++) {
		struct bc_buf *b = &e->bufs_all[i];

		b->mem = bc_alloc_aligned(e->seg_size);
		if (!b->mem)
			return -ENOMEM;
		b->next = e->free_bufs;
		e->free_bufs = b;
		e->free_nbufs++;
	}
	e->flush_timer.fn = flush_timer_fn;
	e->seal_comp.fn = seal_deferred;
	return 0;
}

void bc_seglog_destroy(struct bc_engine *e)
{
	unsigned i;

	if (e->bufs_all)
		for (i = 0; i < e->nbufs; i++)
			free(e->bufs_all[i].mem);
	free(e->bufs_all);
	free(e->segs);
	free(e->rmap);
	free(e->merge_buf);
	free(e->reclaim_buf);
	free(e->reclaim_hot);
	e->reclaim_buf = NULL;
	e->reclaim_hot = NULL;
	e->bufs_all = NULL;
	e->segs = NULL;
	e->rmap = NULL;
	e->merge_buf = NULL;
}

uint64_t bc_seglog_free_positions(const struct bc_engine *e)
{
	return e->nseg - (e->head_seq - e->tail_seq);
}

uint64_t bc_seglog_last_seq(const struct bc_engine *e)
{
	if (e->open)
		return e->open->nr_entries ? e->open->seq : e->open->seq - 1;
	return e->head_seq - 1;
}

bool bc_seglog_reserve(struct bc_engine *e)
{
	struct bc_seg *s;
	struct bc_buf *b;

	if (e->open && e->open->nr_entries < e->data_blocks)
		return true;
	if (e->open)
		bc_seglog_seal(e);
	if (bc_seglog_free_positions(e) == 0)
		bc_seglog_reclaim(e);
	if (!e->free_bufs || bc_seglog_free_positions(e) == 0) {
		bc_wb_kick(e);
		return false;
	}
	s = &e->segs[seg_pos(e, e->head_seq)];
	if (s->state != BC_SEG_FREE) {
		bc_loop_log(e->loop, BC_LOG_ERR, "log: ring position %u is busy (seq %llu)", seg_pos(e, e->head_seq),
		       (unsigned long long)s->seq);
		return false;
	}
	b = e->free_bufs;
	e->free_bufs = b->next;
	e->free_nbufs--;
	s->buf = b;
	s->seq = e->head_seq++;
	s->epoch = e->epoch;
	s->nr_entries = 0;
	s->state = BC_SEG_OPEN;
	e->open = s;
	bc_wb_kick(e);
	return true;
}

static void seg_write_done(struct bc_dev_io *io, int res);

static void seg_submit(struct bc_engine *e, struct bc_seg *s)
{
	uint32_t pos = (uint32_t)(s - e->segs);

	bc_dev_io_init(&s->io, BC_DIO_WRITE, s->buf->mem,
		       (uint64_t)(e->hdr_blocks + s->nr_entries) * BC_BLOCK_SIZE, seg_offset(e, pos),
		       seg_write_done, e);
	bc_dev_submit(e->cache, &s->io);
}

void bc_seglog_seal(struct bc_engine *e)
{
	struct bc_seg *s = e->open;
	struct bc_seg_hdr *hdr;
	uint32_t pos, i;

	if (!s || !s->nr_entries)
		return;
	pos = (uint32_t)(s - e->segs);
	hdr = s->buf->mem;
	memset(hdr, 0, (size_t)e->hdr_blocks * BC_BLOCK_SIZE);
	hdr->nr_entries = s->nr_entries;
	hdr->seq = s->seq;
	hdr->format_nonce = e->sb.format_nonce;
	hdr->flushed_seq = e->durable_seq;
	hdr->epoch = s->epoch;
	for (i = 0; i < s->nr_entries; i++) {
		struct bc_seg_entry *ent = &e->rmap[(size_t)pos * e->data_blocks + i];

		if (!(ent->flags & (BC_ENT_ZERO | BC_ENT_INVALID)))
			ent->data_crc = bc_crc32c(0, (char *)s->buf->mem +
						  (size_t)(e->hdr_blocks + i) * BC_BLOCK_SIZE, BC_BLOCK_SIZE);
		hdr->entries[i] = *ent;
	}
	bc_seg_hdr_seal(hdr, e->hdr_blocks);
	s->state = BC_SEG_WRITING;
	s->retries = 0;
	e->nr_writing++;
	e->open = NULL;
	e->st.segments_written++;
	if (s->nr_entries < e->data_blocks)
		e->st.segments_partial++;
	seg_submit(e, s);
}

static void seg_write_done(struct bc_dev_io *io, int res)
{
	struct bc_engine *e = io->priv;
	struct bc_seg *s = BC_CONTAINER_OF(io, struct bc_seg, io);

	if (res < 0) {
		bc_cache_error(e, false);
		bc_loop_log(e->loop, BC_LOG_ERR, "cache device: writing segment %llu failed: %s",
		       (unsigned long long)s->seq, strerror(-res));
		if (++s->retries <= SEG_WRITE_RETRIES) {
			seg_submit(e, s);
			return;
		}
		/* Keep the buffer: reads are still served from RAM; FLUSH fails. */
		e->failed = true;
		bc_cache_error(e, true);
		maybe_flush(e);
		return;
	}
	s->state = BC_SEG_ONDISK;
	e->nr_writing--;
	s->buf->next = e->free_bufs;
	e->free_bufs = s->buf;
	e->free_nbufs++;
	s->buf = NULL;
	while (e->written_seq + 1 < e->head_seq) {
		struct bc_seg *n = &e->segs[seg_pos(e, e->written_seq + 1)];

		if (n->seq != e->written_seq + 1 || n->state != BC_SEG_ONDISK)
			break;
		e->written_seq++;
	}
	maybe_flush(e);
	bc_wb_kick(e);
	bc_seglog_kick(e);
}

static void fail_flushes(struct bc_engine *e, uint64_t upto, int err)
{
	while (e->flushq.head && rq_of(e->flushq.head)->flush_seq <= upto)
		bc_req_complete(e, bc_reqq_pop(&e->flushq), err);
	/* Nothing left to bound: the deadline must not fire later for
	 * waiters that arrive after it was armed. */
	if (!e->flushq.head && e->flush_timer.armed)
		bc_loop_timer_cancel(e->loop, &e->flush_timer);
}

static void cache_flush_done(struct bc_dev_io *io, int res)
{
	struct bc_engine *e = io->priv;

	e->cache_flush_busy = false;
	if (res < 0) {
		bc_cache_error(e, false);
		bc_loop_log(e->loop, BC_LOG_ERR, "cache device: flush failed: %s", strerror(-res));
		fail_flushes(e, e->cache_flush_target, -EIO);
	} else {
		if (e->cache_flush_target > e->durable_seq)
			e->durable_seq = e->cache_flush_target;
		fail_flushes(e, e->durable_seq, 0);
	}
	/* Group commit: what gathered while the device was busy goes now. */
	seal_for_waiters(e);
}

static void maybe_flush(struct bc_engine *e)
{
	bool need;

	if (e->failed) {
		fail_flushes(e, UINT64_MAX, -EIO);
		return;
	}
	if (e->cache_flush_busy || e->written_seq <= e->durable_seq) {
		/* Waiters already covered (e.g. FLUSH of nothing new). */
		fail_flushes(e, e->durable_seq, 0);
		return;
	}
	need = (e->flushq.head && rq_of(e->flushq.head)->flush_seq <= e->written_seq) ||
	       e->written_seq - e->durable_seq >= PERIODIC_FLUSH_SEGMENTS || e->closing;
	if (!need)
		return;
	e->cache_flush_busy = true;
	e->cache_flush_target = e->written_seq;
	e->st.cache_flushes++;
	bc_dev_io_init(&e->cache_flush_io, BC_DIO_FLUSH, NULL, 0, 0, cache_flush_done, e);
	bc_dev_submit(e->cache, &e->cache_flush_io);
}

void bc_seglog_wait_durable(struct bc_engine *e, struct bc_request *r, uint64_t seq)
{
	if (seq <= e->durable_seq && !e->failed) {
		bc_req_complete(e, r, 0);
		return;
	}
	rq_of(r)->flush_seq = seq;
	bc_reqq_push(&e->flushq, r);
	if (e->open && seq >= e->open->seq) {
		if (!e->flush_timer.armed)
			bc_loop_timer_arm(e->loop, &e->flush_timer, e->deadline_ns);
		if (!e->seal_pending && !e->cache_flush_busy && !e->nr_writing) {
			e->seal_pending = true;
			bc_loop_defer(e->loop, &e->seal_comp, 0);
		}
		return;
	}
	maybe_flush(e);
}

void bc_seglog_kick(struct bc_engine *e)
{
	bc_write_resume(e);
}

static void drop_slot(struct bc_engine *e, uint64_t block, uint32_t slot)
{
	struct bc_ix_ent *ix = bc_index_find(&e->index, block);

	if (!ix || ix->slot != slot)
		return;
	if (ix->flags & BC_IX_DIRTY)
		bc_loop_log(e->loop, BC_LOG_ERR, "log: recycling dirty block %llu (slot %u): this is a bug",
		       (unsigned long long)block, slot);
	bc_ix_drop(e, ix);
}

/* Free positions reclaim keeps ready for new segments. */
static uint64_t reclaim_reserve(const struct bc_engine *e)
{
	uint64_t r = e->nseg / 16;

	return r < e->nbufs + 1u ? e->nbufs + 1u : r;
}

/* Drop the index entries that still point into segment @pos: from now on
 * no new read can pin it. */
static void drop_entries(struct bc_engine *e, uint32_t pos)
{
	struct bc_seg *s = &e->segs[pos];
	uint32_t i;

	for (i = 0; i < s->nr_entries; i++) {
		struct bc_seg_entry *ent = &e->rmap[(size_t)pos * e->data_blocks + i];
		uint32_t slot = pos * e->data_blocks + i;
		uint64_t b;

		for (b = ent->block; b < ent->block + ent->nblocks; b++)
			drop_slot(e, b, slot);
	}
	e->direct_gen++; /* origin reads in flight must not promote over this */
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
	struct bc_seg *s = &e->segs[pos];

	if (s->state != BC_SEG_RETIRED)
		drop_entries(e, pos);
	if (s->readers) {
		s->state = BC_SEG_RETIRED;
		return false;
	}
	s->state = BC_SEG_FREE;
	s->nr_entries = 0;
	e->st.reclaimed_segments++;
	e->tail_seq++;
	return true;
}

/* Hot clean blocks of segment @pos worth a second chance, at most @limit:
 * their entry numbers go to @out. */
static unsigned hot_blocks(struct bc_engine *e, uint32_t pos, uint32_t *out, unsigned limit)
{
	struct bc_seg *s = &e->segs[pos];
	unsigned n = 0;
	uint32_t i;

	for (i = 0; i < s->nr_entries && n < limit; i++) {
		struct bc_seg_entry *ent = &e->rmap[(size_t)pos * e->data_blocks + i];
		struct bc_ix_ent *ix;

		if (ent->flags & (BC_ENT_ZERO | BC_ENT_INVALID))
			continue;
		ix = bc_index_find(&e->index, ent->block);
		if (ix && ix->slot == pos * e->data_blocks + i && !(ix->flags & BC_IX_DIRTY) &&
		    (ix->flags & BC_IX_REF))
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
 * waiting write.
 */
void bc_seglog_reclaim(struct bc_engine *e)
{
	bool progress = false;

	while (!e->reclaim_busy && e->tail_seq < e->head_seq && e->tail_seq <= e->wb_seq &&
	       bc_seglog_free_positions(e) < reclaim_reserve(e)) {
		uint32_t pos = seg_pos(e, e->tail_seq);
		struct bc_seg *s = &e->segs[pos];
		unsigned limit = (unsigned)(e->data_blocks * e->tun.reappend_percent / 100);

		if (s->seq == e->tail_seq && s->state != BC_SEG_ONDISK)
			break; /* not written yet, or retired and still read */
		if (s->seq == e->tail_seq && !s->readers && limit && !e->closing && !e->degraded &&
		    hot_blocks(e, pos, e->reclaim_hot, limit)) {
			/* Read it first; the position is freed when the data is in RAM. */
			e->reclaim_busy = true;
			s->readers++;
			bc_dev_io_init(&e->reclaim_io, BC_DIO_READ, e->reclaim_buf,
				       (uint64_t)(e->hdr_blocks + s->nr_entries) * BC_BLOCK_SIZE,
				       seg_offset(e, pos), reclaim_read_done, e);
			bc_dev_submit(e->cache, &e->reclaim_io);
			break;
		}
		if (s->seq != e->tail_seq)
			e->tail_seq++; /* never used since recovery */
		else if (!retire_tail(e, pos))
			break; /* freed by the last bc_seglog_unpin() */
		progress = true;
	}
	if (progress)
		bc_seglog_kick(e);
}

static void reclaim_read_done(struct bc_dev_io *io, int res)
{
	struct bc_engine *e = io->priv;
	uint32_t pos = seg_pos(e, e->tail_seq);
	struct bc_seg *s = &e->segs[pos];
	unsigned limit = (unsigned)(e->data_blocks * e->tun.reappend_percent / 100), n, k;
	uint64_t blocks[BC_MAX_DATA_BLOCKS];
	uint8_t masks[BC_MAX_DATA_BLOCKS];

	s->readers--;
	n = res < 0 ? 0 : hot_blocks(e, pos, e->reclaim_hot, limit);
	for (k = 0; k < n; k++) {
		struct bc_ix_ent *ix = bc_index_find(&e->index, e->rmap[(size_t)pos * e->data_blocks +
									 e->reclaim_hot[k]].block);

		blocks[k] = bc_index_block(&e->index, ix);
		masks[k] = ix->mask;
	}
	/* Client reads that pinned the segment while this read was in flight
	 * may still be reading it: then the position is freed by the last
	 * unpin, and the blocks go wherever the log has room. */
	retire_tail(e, pos);
	/* A freed position may now take the re-appended blocks. */
	for (k = 0; k < n; k++) {
		if (bc_index_find(&e->index, blocks[k]))
			continue;
		if (!bc_seglog_append_clean(e, blocks[k], (char *)e->reclaim_buf +
					 (size_t)(e->hdr_blocks + e->reclaim_hot[k]) * BC_BLOCK_SIZE, masks[k]))
			break;
		e->st.reappended_blocks++;
	}
	e->reclaim_busy = false;
	bc_seglog_reclaim(e);
	bc_seglog_kick(e);
}

bool bc_seglog_append_clean(struct bc_engine *e, uint64_t block, const void *data, uint8_t mask)
{
	struct bc_ix_ent *ix;
	uint32_t slot, i;
	char *dst;

	if (e->failed || !bc_seglog_reserve(e))
		return false;
	ix = bc_index_insert(&e->index, block);
	if (!ix)
		return false;
	i = e->open->nr_entries++;
	slot = (uint32_t)(e->open - e->segs) * e->data_blocks + i;
	dst = slot_ram(e, slot);
	if (mask == BC_FULL_MASK) {
		memcpy(dst, data, BC_BLOCK_SIZE);
	} else {
		memset(dst, 0, BC_BLOCK_SIZE);
		bc_copy_sectors(dst, data, mask);
	}
	e->rmap[slot] = (struct bc_seg_entry){ .block = block, .nblocks = 1, .mask = mask, .flags = 0 };
	bc_ix_set(e, ix, slot, mask, 0);
	return true;
}

void bc_seglog_unpin(struct bc_engine *e, uint32_t pos)
{
	struct bc_seg *s = &e->segs[pos];

	if (--s->readers)
		return;
	if (s->state == BC_SEG_RETIRED) {
		retire_tail(e, pos);
		bc_seglog_reclaim(e);
		bc_seglog_kick(e);
	} else if (s->seq <= e->wb_seq) {
		bc_seglog_reclaim(e);
	}
}

bool bc_seglog_idle(const struct bc_engine *e)
{
	return (!e->open || !e->open->nr_entries) && e->written_seq == bc_seglog_last_seq(e) &&
	       !e->cache_flush_busy && e->durable_seq == e->written_seq;
}
