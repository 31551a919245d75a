/* SPDX-License-Identifier: BSD-3-Clause */
/* Drain (write back everything, flush the origin) and detach. */
#include <errno.h>
#include <string.h>

#include "engine/engine.h"
#include "format/superblock.h"

static void drain_flushed(struct bc_dev_io *io, int res)
{
	struct bc_engine *e = io->priv;
	bc_engine_done_fn done = e->drain.done;
	void *arg = e->drain.arg;

	e->drain.flushing = false;
	if (!done)
		return; /* cancelled by shutdown meanwhile */
	if (res < 0) {
		bc_drain_fail(e, -EIO);
		return;
	}
	if (e->drain.detach_after && (e->nr_dirty || !bc_write_idle(e))) {
		/* Dirtied meanwhile (a write-zeroes, or a write over a dirty
		 * block), or a write still waits to go to the log. */
		bc_drain_progress(e);
		return;
	}
	e->drain.done = NULL;
	e->drain.all = false;
	e->st.drains++;
	if (e->drain.detach_after) {
		e->drain.detach_after = false;
		if (e->drain.detach_mark)
			bc_drain_mark_detached(e);
		else
			bc_elog(e, BC_LOG_INFO, "detach: its part of the origin complete, nothing dirty");
	}
	done(arg, 0);
}

/*
 * Called whenever writeback has made progress.  A drain is complete when
 * everything logged before it started is written back and the origin has
 * been flushed after that (which also covers writes that went straight to
 * the origin).  A detach additionally needs nothing dirty at all: new
 * writes reach the origin directly (passthrough), and whatever still went
 * to the log meanwhile is drained in another round.
 */
void bc_drain_progress(struct bc_engine *e)
{
	if (!e->drain.done || e->drain.flushing || bc_seglog_wb_seq(e) < e->drain.target)
		return;
	if (e->drain.detach_after && !bc_write_idle(e)) {
		/* A write that waited for log space when the detach began (a
		 * partly applied one goes on into the log; the others now go to
		 * the origin): the detach completes after it, the write path
		 * calls back here once its queue is empty. */
		bc_write_resume(e);
		return;
	}
	if (e->drain.detach_after && e->nr_dirty) {
		bc_seglog_seal(e);
		e->drain.target = bc_seglog_last_seq(e);
		bc_wb_kick(e);
		return;
	}
	e->drain.flushing = true;
	bc_dev_io_init(&e->drain.flush_io, BC_DIO_FLUSH, NULL, 0, 0, drain_flushed, e);
	bc_dev_submit(e->origin, &e->drain.flush_io);
}

void bc_drain_fail(struct bc_engine *e, int err)
{
	bc_engine_done_fn done = e->drain.done;

	if (!done)
		return;
	e->drain.done = NULL;
	e->drain.all = false;
	e->drain.detach_after = false;
	done(e->drain.arg, err);
}

int bc_engine_drain(struct bc_engine *e, bc_engine_done_fn done, void *arg)
{
	if (e->drain.done)
		return -EBUSY;
	if (bc_seglog_failed(e))
		return -EIO;
	e->drain.done = done;
	e->drain.arg = arg;
	e->drain.all = true;
	/* Everything acknowledged so far must reach the origin. */
	bc_seglog_seal(e);
	e->drain.target = bc_seglog_last_seq(e);
	bc_wb_retry_now(e);
	/* Already clean: report from the loop, not from inside this call. */
	bc_loop_defer(e->loop, &e->drain.comp, 0);
	return 0;
}

void bc_drain_mark_detached(struct bc_engine *e)
{
	bc_sb_set_flags(e, BC_SB_DETACHED, 0);
	bc_elog(e, BC_LOG_INFO, "detach: origin complete; cache marked detached");
}

int bc_engine_detach(struct bc_engine *e, bc_engine_done_fn done, void *arg)
{
	return bc_drain_detach(e, true, done, arg);
}

int bc_drain_detach(struct bc_engine *e, bool mark, bc_engine_done_fn done, void *arg)
{
	int ret;

	if (e->drain.done)
		return -EBUSY;
	/* From now on writes reach the origin before they are acknowledged
	 * (waiting ones too, unless partly in the log already). */
	bc_mode_force(e, BC_CACHE_PASSTHROUGH);
	bc_write_resume(e);
	ret = bc_engine_drain(e, done, arg);
	if (ret == 0) {
		e->drain.detach_after = true;
		e->drain.detach_mark = mark;
	}
	return ret;
}

static void drain_comp_fn(struct bc_completion *c, int res)
{
	struct bc_engine *e = BC_CONTAINER_OF(c, struct bc_engine, drain.comp);

	(void)res;
	bc_drain_progress(e);
}

void bc_drain_init(struct bc_engine *e)
{
	e->drain.comp.fn = drain_comp_fn;
}

void bc_drain_destroy(struct bc_engine *e)
{
	bc_loop_defer_cancel(e->loop, &e->drain.comp);
}

bool bc_drain_wanted(const struct bc_engine *e, uint64_t *target)
{
	if (!e->drain.all)
		return false;
	*target = e->drain.target;
	return true;
}

bool bc_drain_idle(const struct bc_engine *e)
{
	return !e->drain.flushing;
}
