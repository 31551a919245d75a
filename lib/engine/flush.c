/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * FLUSH: every write acknowledged before it must be durable.  Writes in the
 * log need the log durable up to the newest segment holding them; writes
 * that went to the origin (writethrough, writearound, passthrough) also
 * need an origin flush.  Origin flushes are shared by every FLUSH waiting
 * when one is issued.
 */
#include <errno.h>
#include <string.h>

#include "engine/engine.h"

static void origin_flush_issue(struct bc_engine *e);

static void origin_flush_done(struct bc_dev_io *io, int res)
{
	struct bc_engine *e = io->priv;
	unsigned n = e->oflush.covered;

	e->oflush.busy = false;
	if (res < 0) {
		bc_origin_error(e);
		e->oflush.unflushed = true;
		bc_elog(e, BC_LOG_ERR, "origin: flush failed: %s", strerror(-res));
	}
	while (n-- && e->oflush.waitq.head) {
		struct bc_request *r = bc_reqq_pop(&e->oflush.waitq);

		if (res < 0)
			bc_req_complete(e, r, -EIO);
		else
			bc_seglog_wait_durable(e, r, rq_of(r)->flush_seq);
	}
	if (e->oflush.waitq.head)
		origin_flush_issue(e);
}

static void origin_flush_issue(struct bc_engine *e)
{
	struct bc_request *r;

	e->oflush.busy = true;
	e->oflush.unflushed = false;
	e->oflush.covered = 0;
	for (r = e->oflush.waitq.head; r; r = rq_of(r)->next)
		e->oflush.covered++;
	bc_note_origin_flush(e);
	bc_dev_io_init(&e->oflush.io, BC_DIO_FLUSH, NULL, 0, 0, origin_flush_done, e);
	bc_dev_submit(e->origin, &e->oflush.io);
}

void bc_origin_flush_kick(struct bc_engine *e)
{
	if (e->oflush.unflushed && !e->oflush.busy)
		origin_flush_issue(e);
}

void bc_flush_submit(struct bc_engine *e, struct bc_request *r)
{
	/* Writes acknowledged from now on are ordered after everything this
	 * FLUSH covers: writeback must not merge across this point. */
	bc_seglog_new_epoch(e);
	rq_of(r)->flush_seq = bc_seglog_last_seq(e);
	if (!e->oflush.unflushed && !e->oflush.busy) {
		bc_seglog_wait_durable(e, r, rq_of(r)->flush_seq);
		return;
	}
	bc_reqq_push(&e->oflush.waitq, r);
	if (!e->oflush.busy)
		origin_flush_issue(e);
}

void bc_flush_note_origin_write(struct bc_engine *e)
{
	e->oflush.unflushed = true;
}

bool bc_flush_idle(const struct bc_engine *e)
{
	return !e->oflush.busy && !e->oflush.unflushed;
}
