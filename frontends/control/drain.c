/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * "flush" and "detach" on the control socket.  The engine runs one drain at
 * a time; requests queue here, oldest first.  Each waiting client gets a
 * progress line every PROGRESS_NS and a final {"done":true} or {"error"}.
 *
 * A request lives in its own allocation that the engine's done callback
 * refers to: a client that goes away only unhooks its connection, and after
 * the control socket shuts down the request stays until the engine either
 * completes it or is closed (bc_control_close() frees it then).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blkcache/log.h"
#include "internal.h"

#define PROGRESS_NS (200ull * 1000 * 1000)

struct ctl_drain {
	struct bc_control *ctl;
	struct ctl_conn *conn;   /* NULL once the client went away */
	bool detach;
	bool started;            /* the engine is draining for it */
	uint64_t t0_ns, wb0;     /* when asked for */
	struct ctl_drain *next;
};

static const char *what(const struct ctl_drain *op)
{
	return op->detach ? "detach" : "flush";
}

static void unlink_op(struct bc_control *ctl, struct ctl_drain *op)
{
	struct ctl_drain **pp;

	for (pp = &ctl->drains; *pp; pp = &(*pp)->next)
		if (*pp == op) {
			*pp = op->next;
			break;
		}
	op->next = NULL;
}

/* Give the client its last line and close it (after sending). */
static void conn_last_line(struct ctl_conn *cn, struct bc_tbuf *line, bool stop_loop)
{
	ctl_conn_hold(cn);
	if (stop_loop)
		cn->stop_loop = true;
	if (line->failed)
		ctl_conn_send(cn, "{\"error\":\"out of memory\"}\n", 25);
	else
		ctl_conn_send(cn, line->p, line->len);
	if (cn->fd >= 0)
		ctl_conn_finish(cn);
	ctl_conn_release(cn);
}

static const char *drain_error(int err, char *buf, size_t len)
{
	switch (err) {
	case -EIO:
		return "the cache has failed (device I/O errors); dirty data cannot be written "
		       "back: see the server log";
	case -EBUSY:
		return "the engine is already draining for another request";
	default:
		snprintf(buf, len, "%s", strerror(-err));
		return buf;
	}
}

static void finish(struct bc_control *ctl, struct ctl_drain *op, int result)
{
	struct ctl_conn *cn = op->conn;
	struct bc_engine_stats st;
	struct bc_tbuf line = { 0 };
	struct bc_jw w;
	char ebuf[128];
	bool stop = false;

	unlink_op(ctl, op);
	op->conn = NULL;
	if (cn)
		cn->drain = NULL;
	bc_engine_get_stats(ctl->src.engine, &st);
	if (result == 0) {
		bc_jw_init(&w, &line);
		bc_jw_begin(&w, NULL);
		bc_jw_bool(&w, "done", true);
		if (op->detach)
			bc_jw_bool(&w, "detached", true);
		bc_jw_str(&w, "origin", ctl->src.origin_path);
		bc_jw_u64(&w, "written_back_bytes", st.writeback_bytes - op->wb0);
		bc_jw_u64(&w, "elapsed_ms", (bc_now_ns() - op->t0_ns) / 1000000);
		bc_jw_end(&w);
		bc_loop_log(ctl->loop, BC_LOG_INFO, "control: %s complete", what(op));
		if (op->detach) {
			/* The cache is detached: shut down once the client has its reply. */
			bc_loop_log(ctl->loop, BC_LOG_INFO, "control: origin %s is complete; shutting down",
			       ctl->src.origin_path);
			stop = true;
		}
	} else {
		const char *why = drain_error(result, ebuf, sizeof(ebuf));

		bc_json_error(&line, "%s failed: %s", what(op), why);
		bc_loop_log(ctl->loop, BC_LOG_ERR, "control: %s failed: %s", what(op), why);
	}
	if (op->detach)
		ctl->detaching = false;
	if (cn)
		conn_last_line(cn, &line, stop);
	else if (stop)
		bc_loop_stop(ctl->loop);
	bc_tbuf_free(&line);
	free(op);
	if (ctl->drains && !ctl->kick_pending) {
		/* Start the next one from the loop, not from inside the engine. */
		ctl->kick_pending = true;
		bc_loop_defer(ctl->loop, &ctl->kick, 0);
	}
	if (!ctl->drains)
		bc_loop_timer_cancel(ctl->loop, &ctl->progress_timer);
}

static void on_done(void *arg, int result)
{
	struct ctl_drain *op = arg;
	struct bc_control *ctl = op->ctl;

	if (ctl->shut) {
		/* Completed while the server shuts down: nobody to tell. */
		unlink_op(ctl, op);
		free(op);
		return;
	}
	finish(ctl, op, result);
}

static void start_head(struct bc_control *ctl)
{
	struct ctl_drain *op = ctl->drains;
	struct bc_engine_stats st;
	int ret;

	if (!op || op->started || ctl->shut)
		return;
	bc_engine_get_stats(ctl->src.engine, &st);
	op->started = true;
	bc_loop_log(ctl->loop, BC_LOG_INFO, "control: %s: writing back %llu dirty blocks", what(op),
	       (unsigned long long)st.dirty_blocks);
	if (op->detach)
		ret = bc_engine_detach(ctl->src.engine, on_done, op);
	else
		ret = bc_engine_drain(ctl->src.engine, on_done, op);
	/* On success @op belongs to the engine's callback now. */
	if (ret < 0)
		finish(ctl, op, ret);
}

static void on_kick(struct bc_completion *c, int res)
{
	struct bc_control *ctl = BC_CONTAINER_OF(c, struct bc_control, kick);

	(void)res;
	ctl->kick_pending = false;
	start_head(ctl);
}

static void progress_line(struct ctl_drain *op, const struct bc_engine_stats *st)
{
	struct ctl_conn *cn = op->conn;
	struct bc_tbuf line = { 0 };
	struct bc_jw w;

	if (ctl_conn_pending(cn))
		return; /* the client is behind: skip this one */
	bc_jw_init(&w, &line);
	bc_jw_begin(&w, NULL);
	bc_jw_begin(&w, "progress");
	bc_jw_u64(&w, "dirty_blocks", st->dirty_blocks);
	bc_jw_u64(&w, "dirty_bytes", st->dirty_blocks * BC_UNIT_BLOCK);
	bc_jw_u64(&w, "writeback_bytes", st->writeback_bytes);
	if (!op->started)
		bc_jw_bool(&w, "queued", true);
	bc_jw_end(&w);
	bc_jw_end(&w);
	if (!line.failed) {
		ctl_conn_hold(cn);
		ctl_conn_send(cn, line.p, line.len);
		ctl_conn_release(cn);
	}
	bc_tbuf_free(&line);
}

static void on_progress(struct bc_timer *t)
{
	struct bc_control *ctl = BC_CONTAINER_OF(t, struct bc_control, progress_timer);
	struct ctl_drain *op, *next;
	struct bc_engine_stats st;

	bc_engine_get_stats(ctl->src.engine, &st);
	/* A send may fail and drop a queued request: fetch next first. */
	for (op = ctl->drains; op; op = next) {
		next = op->next;
		if (op->conn)
			progress_line(op, &st);
	}
	if (ctl->drains)
		bc_loop_timer_arm(ctl->loop, &ctl->progress_timer, PROGRESS_NS);
}

void ctl_drain_init(struct bc_control *ctl)
{
	ctl->progress_timer.fn = on_progress;
	ctl->kick.fn = on_kick;
}

static void refuse(struct ctl_conn *cn, const char *msg)
{
	struct bc_tbuf line = { 0 };

	bc_json_error(&line, "%s", msg);
	conn_last_line(cn, &line, false);
	bc_tbuf_free(&line);
}

void ctl_drain_request(struct bc_control *ctl, struct ctl_conn *cn, bool detach)
{
	struct bc_engine_stats st;
	struct ctl_drain *op, **pp;

	bc_engine_get_stats(ctl->src.engine, &st);
	if (st.detached) {
		refuse(cn, "the cache is detached; the server is shutting down");
		return;
	}
	if (ctl->detaching) {
		refuse(cn, detach ? "a detach is already in progress"
				  : "a detach is in progress; the server shuts down when it completes");
		return;
	}
	op = calloc(1, sizeof(*op));
	if (!op) {
		refuse(cn, "out of memory");
		return;
	}
	op->ctl = ctl;
	op->conn = cn;
	op->detach = detach;
	op->t0_ns = bc_now_ns();
	op->wb0 = st.writeback_bytes;
	cn->drain = op;
	for (pp = &ctl->drains; *pp; pp = &(*pp)->next)
		;
	*pp = op;
	if (detach)
		ctl->detaching = true;
	/* First progress line at once: the client learns the amount to drain. */
	bc_loop_timer_arm(ctl->loop, &ctl->progress_timer, 0);
	if (ctl->drains == op)
		start_head(ctl);
}

void ctl_drain_forget_conn(struct ctl_conn *cn)
{
	struct ctl_drain *op = cn->drain;
	struct bc_control *ctl = cn->ctl;

	cn->drain = NULL;
	if (!op)
		return;
	op->conn = NULL;
	if (op->started) {
		bc_loop_log(ctl->loop, BC_LOG_INFO, "control: the %s client went away; the %s continues",
		       what(op), what(op));
		return;
	}
	/* Not started yet: nobody wants it any more. */
	unlink_op(ctl, op);
	if (op->detach)
		ctl->detaching = false;
	free(op);
	if (!ctl->drains)
		bc_loop_timer_cancel(ctl->loop, &ctl->progress_timer);
}

void ctl_drain_shutdown(struct bc_control *ctl)
{
	struct ctl_drain *op, *next;

	bc_loop_timer_cancel(ctl->loop, &ctl->progress_timer);
	if (ctl->kick_pending) {
		bc_loop_defer_cancel(ctl->loop, &ctl->kick);
		ctl->kick_pending = false;
	}
	for (op = ctl->drains; op; op = next) {
		struct ctl_conn *cn = op->conn;
		struct bc_tbuf line = { 0 };

		next = op->next;
		op->conn = NULL;
		if (cn) {
			cn->drain = NULL;
			if (op->detach)
				bc_json_error(&line, "the server is shutting down; the detach did not "
					       "complete and the cache stays attached (dirty data is "
					       "safe in it)");
			else
				bc_json_error(&line, "the server is shutting down; the flush did not "
					       "complete (dirty data is safe in the cache)");
			conn_last_line(cn, &line, false);
			bc_tbuf_free(&line);
		}
		if (!op->started) {
			unlink_op(ctl, op);
			free(op);
		}
	}
	ctl->detaching = false;
}

void ctl_drain_free(struct bc_control *ctl)
{
	struct ctl_drain *op;

	while ((op = ctl->drains)) {
		ctl->drains = op->next;
		free(op);
	}
}
