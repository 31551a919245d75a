/* SPDX-License-Identifier: BSD-3-Clause */
/* The engine's control plane: mode switches, drain, detach, tunable hooks. */
#include <errno.h>
#include <string.h>

#include "engine/engine.h"
#include "format/superblock.h"

void bc_tunables_changed(struct bc_engine *e, const char *name)
{
	if (!strcmp(name, "flush_deadline_us"))
		e->deadline_ns = e->tun.flush_deadline_us * 1000;
	/* Watermarks, pause, rate, batch: let writeback re-evaluate now. */
	bc_wb_kick(e);
}

int bc_engine_set_mode(struct bc_engine *e, enum bc_mode m, char *why, size_t whylen)
{
	if ((unsigned)m > BC_CACHE_PASSTHROUGH) {
		bc_why(why, whylen, "unknown mode %u", (unsigned)m);
		return -EINVAL;
	}
	if (e->sb.flags & BC_SB_DETACHED) {
		bc_why(why, whylen, "the cache is detached");
		return -EINVAL;
	}
	if (m == e->mode)
		return 0;
	bc_loop_log(e->loop, BC_LOG_INFO, "mode: %s -> %s (%llu dirty blocks stay in the cache and are drained)",
	       bc_mode_name(e->mode), bc_mode_name(m), (unsigned long long)e->nr_dirty);
	e->mode = m;
	/* Persisted lazily with the next superblock write; a restart starts in
	 * the mode last persisted, never losing dirty data either way. */
	e->sb.mode = (uint32_t)m;
	bc_wb_kick(e);
	return 0;
}

static void drain_flushed(struct bc_dev_io *io, int res)
{
	struct bc_engine *e = io->priv;
	bc_engine_done_fn done = e->drain_done;
	void *arg = e->drain_arg;

	e->drain_flushing = false;
	if (!done)
		return; /* cancelled by shutdown meanwhile */
	if (res < 0) {
		bc_drain_fail(e, -EIO);
		return;
	}
	if (e->detach_after && e->nr_dirty) {
		/* Dirtied meanwhile (a write-zeroes, or a write over a dirty block). */
		bc_drain_progress(e);
		return;
	}
	e->drain_done = NULL;
	e->draining_all = false;
	e->st.drains++;
	if (e->detach_after) {
		e->detach_after = false;
		e->sb.flags |= BC_SB_DETACHED;
		bc_loop_log(e->loop, BC_LOG_INFO, "detach: origin complete; cache marked detached");
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
	if (!e->drain_done || e->drain_flushing || e->wb_seq < e->drain_target)
		return;
	if (e->detach_after && e->nr_dirty) {
		bc_seglog_seal(e);
		e->drain_target = bc_seglog_last_seq(e);
		bc_wb_kick(e);
		return;
	}
	e->drain_flushing = true;
	bc_dev_io_init(&e->drain_flush_io, BC_DIO_FLUSH, NULL, 0, 0, drain_flushed, e);
	bc_dev_submit(e->origin, &e->drain_flush_io);
}

void bc_drain_fail(struct bc_engine *e, int err)
{
	bc_engine_done_fn done = e->drain_done;

	if (!done)
		return;
	e->drain_done = NULL;
	e->draining_all = false;
	e->detach_after = false;
	done(e->drain_arg, err);
}

int bc_engine_drain(struct bc_engine *e, bc_engine_done_fn done, void *arg)
{
	if (e->drain_done)
		return -EBUSY;
	if (e->failed)
		return -EIO;
	e->drain_done = done;
	e->drain_arg = arg;
	e->draining_all = true;
	/* Everything acknowledged so far must reach the origin. */
	bc_seglog_seal(e);
	e->drain_target = bc_seglog_last_seq(e);
	bc_wb_retry_now(e);
	/* Already clean: report from the loop, not from inside this call. */
	bc_loop_defer(e->loop, &e->drain_comp, 0);
	return 0;
}

int bc_engine_detach(struct bc_engine *e, bc_engine_done_fn done, void *arg)
{
	int ret;

	if (e->drain_done)
		return -EBUSY;
	/* From now on writes reach the origin before they are acknowledged. */
	e->mode = BC_CACHE_PASSTHROUGH;
	e->sb.mode = BC_CACHE_PASSTHROUGH;
	ret = bc_engine_drain(e, done, arg);
	if (ret == 0)
		e->detach_after = true;
	return ret;
}
