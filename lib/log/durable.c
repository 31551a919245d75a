/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Durability: FLUSH/FUA wait until the log is durable up to the newest
 * entry holding what they cover.  Cache device flushes are shared by every
 * waiter, and a periodic flush bounds what recovery must verify.
 *
 * With flush_rounds (format v4 without staged acks, on persistent memory
 * and on disks) a FLUSH does not seal the open segment: its new entries go out as a round
 * (log/openwrite.c) -- at once for a FLUSH, at the end of the loop
 * iteration for FUA writes (so every write that arrived together shares
 * it) -- then a flush (a store fence on persistent memory) makes them
 * durable; the open segment counts how many of its entries are durable.
 * Without (format v3, staged acks): group commit: the open segment is sealed at the
 * end of the loop iteration (or at the deadline).
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "engine/engine.h"

#define PERIODIC_FLUSH_SEGMENTS 16 /* bounds the segments recovery must verify */

static void maybe_flush(struct bc_engine *e);

void bc_seglog_flush_kick(struct bc_engine *e)
{
	maybe_flush(e);
}

/* Is everything FLUSH/FUA @r waits for durable (the log durable up to
 * segment @seq and @ent entries of the one after)?  (Entries of the
 * segment after durable_seq count only with flush_rounds.) */
static bool covered(const struct bc_engine *e, struct bc_request *r, uint64_t seq, uint32_t ent)
{
	if (rq_of(r)->flush_seq <= seq)
		return true;
	return e->log.flush_rounds && rq_of(r)->flush_seq == seq + 1 && rq_of(r)->flush_ent <= ent;
}

static bool durable_covers(const struct bc_engine *e, struct bc_request *r)
{
	uint64_t next = e->log.durable_seq + 1;
	const struct bc_seg *s = &e->log.segs[seg_pos(e, next)];

	return covered(e, r, e->log.durable_seq, s->seq == next ? s->durable_ent : 0);
}

/* Complete the FLUSH/FUA waiters that are covered now. */
static void complete_durable(struct bc_engine *e)
{
	while (e->log.flushq.head && durable_covers(e, e->log.flushq.head))
		bc_req_complete(e, bc_reqq_pop(&e->log.flushq), 0);
	if (!e->log.flushq.head && e->log.flush_timer.armed)
		bc_loop_timer_cancel(e->loop, &e->log.flush_timer);
}

/* Seal the open segment if a FLUSH/FUA waits for it (not with
 * flush_rounds: a round makes its entries durable). */
static void seal_for_waiters(struct bc_engine *e)
{
	if (!e->log.flush_rounds && e->log.open && e->log.open->nr_entries && e->log.flushq.head &&
	    e->log.flushq.tail && rq_of(e->log.flushq.tail)->flush_seq >= e->log.open->seq)
		bc_seglog_seal(e);
	maybe_flush(e);
}

static void flush_timer_fn(struct bc_timer *t)
{
	struct bc_engine *e = BC_CONTAINER_OF(t, struct bc_engine, log.flush_timer);

	seal_for_waiters(e);
}

/* Group commit: runs after the current loop iteration, so every request that
 * arrived together joins the segment; no artificial wait when idle. */
static void seal_deferred(struct bc_completion *c, int res)
{
	struct bc_engine *e = BC_CONTAINER_OF(c, struct bc_engine, log.seal_comp);

	(void)res;
	e->log.seal_pending = false;
	if (!e->log.cache_flush_busy && !e->log.nr_writing)
		seal_for_waiters(e);
}

/* Complete the waiters covered by segment @seq and @ent entries of the next
 * with @err. */
static void fail_flushes(struct bc_engine *e, uint64_t seq, uint32_t ent, int err)
{
	while (e->log.flushq.head && covered(e, e->log.flushq.head, seq, ent))
		bc_req_complete(e, bc_reqq_pop(&e->log.flushq), err);
	/* Nothing left to bound: the deadline must not fire later for
	 * waiters that arrive after it was armed. */
	if (!e->log.flushq.head && e->log.flush_timer.armed)
		bc_loop_timer_cancel(e->loop, &e->log.flush_timer);
}

static void cache_flush_done(struct bc_dev_io *io, int res)
{
	struct bc_engine *e = io->priv;

	e->log.cache_flush_busy = false;
	if (res < 0) {
		bc_cache_error(e, false);
		bc_elog(e, BC_LOG_ERR, "cache device: flush failed: %s", strerror(-res));
		if (e->log.direct)
			fail_flushes(e, UINT64_MAX, 0, -EIO);
		else
			fail_flushes(e, e->log.cache_flush_target, e->log.cache_flush_ent, -EIO);
	} else {
		uint64_t next = e->log.cache_flush_target + 1;
		struct bc_seg *s = &e->log.segs[seg_pos(e, next)];

		if (e->log.cache_flush_target > e->log.durable_seq)
			e->log.durable_seq = e->log.cache_flush_target;
		if (e->log.flush_rounds && s->seq == next && e->log.cache_flush_ent > s->durable_ent)
			s->durable_ent = e->log.cache_flush_ent;
		complete_durable(e);
		bc_seglog_carry_commit(e);
	}
	/* Group commit: what gathered while the device was busy goes now. */
	seal_for_waiters(e);
}

static void submit_flush(struct bc_engine *e, uint64_t seq, uint32_t ent)
{
	e->log.cache_flush_busy = true;
	e->log.cache_flush_target = seq;
	e->log.cache_flush_ent = ent;
	bc_note_cache_flush(e);
	bc_dev_io_init(&e->log.cache_flush_io, BC_DIO_FLUSH, NULL, 0, 0, cache_flush_done, e);
	bc_dev_submit(e->cache, &e->log.cache_flush_io);
}

/* Flush once what the first waiter needs is written (segments before it,
 * and with flush_rounds the rounds of its own), or what carry-forward
 * wants, or periodically; the flush covers everything written by then. */
static void maybe_flush(struct bc_engine *e)
{
	struct bc_request *h;
	uint64_t seq = e->log.written_seq;
	const struct bc_seg *n = &e->log.segs[seg_pos(e, seq + 1)];
	uint32_t ent = e->log.flush_rounds && seq + 1 < e->log.head_seq && n->seq == seq + 1 ?
			       n->persisted : 0;
	bool need;

	if (e->log.failed) {
		fail_flushes(e, UINT64_MAX, 0, -EIO);
		return;
	}
	complete_durable(e);
	h = e->log.flushq.head;
	if (e->log.cache_flush_busy || (seq == e->log.durable_seq && ent <= n->durable_ent))
		return;
	need = (h && bc_seglog_entries_written(e, rq_of(h)->flush_seq, rq_of(h)->flush_ent)) ||
	       (e->log.want_seq > e->log.durable_seq && e->log.want_seq <= seq) ||
	       seq - e->log.durable_seq >= PERIODIC_FLUSH_SEGMENTS || e->closing;
	if (need)
		submit_flush(e, seq, ent);
}

void bc_seglog_wait_durable(struct bc_engine *e, struct bc_request *r, uint64_t seq)
{
	const struct bc_seg *s = &e->log.segs[seg_pos(e, seq)];

	rq_of(r)->flush_seq = seq;
	rq_of(r)->flush_ent = s->seq == seq ? s->nr_entries : 0;
	if (e->log.failed || durable_covers(e, r)) {
		bc_req_complete(e, r, e->log.failed ? -EIO : 0);
		return;
	}
	bc_reqq_push(&e->log.flushq, r);
	if (e->log.flush_rounds) {
		/* The open segment's entries it covers go out as a round at the
		 * end of the loop iteration (with every write that arrived
		 * together), then a flush. */
		if (!e->log.written_seal_pending) {
			e->log.written_seal_pending = true;
			bc_loop_defer(e->loop, &e->log.written_seal, 0);
		}
	} else if (e->log.open && seq >= e->log.open->seq) {
		if (!e->log.flush_timer.armed)
			bc_loop_timer_arm(e->loop, &e->log.flush_timer, e->log.deadline_ns);
		if (!e->log.seal_pending && !e->log.cache_flush_busy && !e->log.nr_writing) {
			e->log.seal_pending = true;
			bc_loop_defer(e->loop, &e->log.seal_comp, 0);
		}
		return;
	}
	maybe_flush(e);
}

/* Written acks: the open segment's entries that writes wait for are written
 * (without sealing it, log/openwrite.c) at the end of the loop iteration, so
 * that every write that arrived together shares the device write. */
void bc_seglog_written_kick(struct bc_engine *e)
{
	const struct bc_seg *s = e->log.open;

	if (!s)
		return;
	if ((e->log.writtenq.head && rq_of(e->log.writtenq.tail)->flush_seq >= s->seq) ||
	    (e->log.flush_rounds && e->log.flushq.head && rq_of(e->log.flushq.tail)->flush_seq >= s->seq))
		bc_seglog_write_open(e);
}

static void written_seal_fn(struct bc_completion *c, int res)
{
	struct bc_engine *e = BC_CONTAINER_OF(c, struct bc_engine, log.written_seal);

	(void)res;
	e->log.written_seal_pending = false;
	bc_seglog_written_kick(e);
}

static bool written_covers(const struct bc_engine *e, struct bc_request *r)
{
	return bc_seglog_entries_written(e, rq_of(r)->flush_seq, rq_of(r)->flush_ent);
}

void bc_seglog_wait_written(struct bc_engine *e, struct bc_request *r, uint64_t seq)
{
	const struct bc_seg *s = &e->log.segs[seg_pos(e, seq)];

	rq_of(r)->flush_seq = seq;
	rq_of(r)->flush_ent = s->seq == seq ? s->nr_entries : 0;
	if (e->log.failed || written_covers(e, r)) {
		bc_req_complete(e, r, e->log.failed ? -EIO : 0);
		return;
	}
	bc_reqq_push(&e->log.writtenq, r);
	if (!e->log.written_seal_pending) {
		e->log.written_seal_pending = true;
		bc_loop_defer(e->loop, &e->log.written_seal, 0);
	}
}

void bc_seglog_written_progress(struct bc_engine *e)
{
	struct bc_reqq *q = &e->log.writtenq;

	while (q->head && (e->log.failed || written_covers(e, q->head)))
		bc_req_complete(e, bc_reqq_pop(q), e->log.failed ? -EIO : 0);
}

void bc_seglog_durable_init(struct bc_engine *e)
{
	e->log.flush_timer.fn = flush_timer_fn;
	e->log.seal_comp.fn = seal_deferred;
	e->log.written_seal.fn = written_seal_fn;
}

void bc_seglog_durable_destroy(struct bc_engine *e)
{
	bc_loop_timer_cancel(e->loop, &e->log.flush_timer);
	if (e->log.seal_pending)
		bc_loop_defer_cancel(e->loop, &e->log.seal_comp);
	if (e->log.written_seal_pending)
		bc_loop_defer_cancel(e->loop, &e->log.written_seal);
}

void bc_seglog_durable_want(struct bc_engine *e, uint64_t seq)
{
	if (seq > e->log.want_seq)
		e->log.want_seq = seq;
	maybe_flush(e);
}

void bc_seglog_set_deadline(struct bc_engine *e, uint64_t ns)
{
	e->log.deadline_ns = ns;
}

bool bc_seglog_durable_idle(const struct bc_engine *e)
{
	return !e->log.cache_flush_busy && e->log.durable_seq == e->log.written_seq &&
	       !e->log.flushq.head && !e->log.writtenq.head;
}
