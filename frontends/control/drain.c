/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * "flush" and "detach" on the control socket.  A request covers one origin
 * or every origin: one part per origin.  An engine runs one drain at a
 * time, so the parts of one origin run in the order they were asked for;
 * parts of different origins run together.  Each waiting client gets a
 * progress line every PROGRESS_NS (dirty data of all its origins) and a
 * final {"done":true} or {"error"}.
 *
 * A part refers to its origin by name until it starts (the host may add
 * and remove origins between loop iterations); from its start until its
 * completion it holds the engine, which the host keeps until we call its
 * detached hook.  Completions are handled from the loop (kick), never
 * inside the engine's callback.
 *
 * A request lives in its own allocation that the engine's done callbacks
 * refer to: a client that goes away only unhooks its connection, and after
 * the control socket shuts down the request stays until the engines either
 * complete its parts or are closed (bc_control_close() frees it then).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blkcache/log.h"
#include "internal.h"

#define PROGRESS_NS (200ull * 1000 * 1000)

struct ctl_part {
	struct ctl_drain *op;
	char *name, *path;        /* the origin's name and device */
	struct bc_engine *e;      /* while its engine drains for it */
	bool started, done;
	bool gone;                /* the origin left (was detached) before its turn */
	int result;
	uint64_t wb0, wb;         /* writeback_bytes when asked for; last seen */
	uint64_t dirty;           /* dirty blocks last seen */
};

struct ctl_drain {
	struct bc_control *ctl;
	struct ctl_conn *conn;    /* NULL once the client went away */
	bool detach;
	bool shutdown_after;      /* a detach of the only origin: the server stops after it */
	uint64_t t0_ns;           /* when asked for */
	struct ctl_drain *next;
	unsigned n;
	struct ctl_part parts[];
};

static const char *what(const struct ctl_drain *op)
{
	return op->detach ? "detach" : "flush";
}

static void op_free(struct ctl_drain *op)
{
	unsigned i;

	for (i = 0; i < op->n; i++) {
		free(op->parts[i].name);
		free(op->parts[i].path);
	}
	free(op);
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

static bool op_running(const struct ctl_drain *op)
{
	unsigned i;

	for (i = 0; i < op->n; i++)
		if (op->parts[i].started && !op->parts[i].done)
			return true;
	return false;
}

static bool op_started(const struct ctl_drain *op)
{
	unsigned i;

	for (i = 0; i < op->n; i++)
		if (op->parts[i].started)
			return true;
	return false;
}

static bool op_complete(const struct ctl_drain *op)
{
	unsigned i;

	for (i = 0; i < op->n; i++)
		if (!op->parts[i].done)
			return false;
	return true;
}

enum ctl_drain_state ctl_drain_state(const struct bc_control *ctl, const char *name)
{
	enum ctl_drain_state s = CTL_IDLE;
	const struct ctl_drain *op;
	unsigned i;

	for (op = ctl->drains; op; op = op->next)
		for (i = 0; i < op->n; i++) {
			if (strcmp(op->parts[i].name, name))
				continue;
			if (op->detach)
				return CTL_DETACHING;
			s = CTL_FLUSHING;
		}
	return s;
}

/* Note what the engine reports for @p (it is there during this call):
 * its origin's, or the engine's alone if the origin is gone from the list. */
static void part_sample(struct bc_control *ctl, struct ctl_part *p, struct bc_engine *e)
{
	const struct bc_control_origin *o = bc_control_find(&ctl->src, p->name);
	struct bc_engine_stats st;

	if (o && o->engine == e)
		bc_co_stats(o, &st);
	else
		bc_engine_get_stats(e, &st);
	p->wb = st.writeback_bytes;
	p->dirty = st.dirty_blocks;
}

/* The engine of @p now: the one it holds, or its origin's by name. */
static struct bc_engine *part_engine(struct bc_control *ctl, const struct ctl_part *p)
{
	const struct bc_control_origin *o;

	if (p->done)
		return NULL;
	if (p->started)
		return p->e;
	o = bc_control_find(&ctl->src, p->name);
	return o ? o->engine : NULL;
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
	case -ENOENT:
		return "the origin is no longer served";
	default:
		snprintf(buf, len, "%s", strerror(-err));
		return buf;
	}
}


/* The final line of a request whose parts all succeeded. */
static void done_line(struct bc_control *ctl, struct ctl_drain *op, bool shutdown,
		      struct bc_tbuf *line)
{
	uint64_t total = 0;
	struct bc_jw w;
	unsigned i;

	for (i = 0; i < op->n; i++)
		total += op->parts[i].wb - op->parts[i].wb0;
	bc_jw_init(&w, line);
	bc_jw_begin(&w, NULL);
	bc_jw_bool(&w, "done", true);
	if (op->detach)
		bc_jw_bool(&w, "detached", true);
	if (op->n == 1) {
		bc_jw_str(&w, "origin", op->parts[0].path);
		bc_jw_str(&w, "name", op->parts[0].name);
	}
	bc_jw_u64(&w, "written_back_bytes", total);
	bc_jw_u64(&w, "elapsed_ms", (bc_now_ns() - op->t0_ns) / 1000000);
	if (op->detach)
		bc_jw_bool(&w, "shutdown", shutdown);
	ctl_jw_array(&w, "origins");
	for (i = 0; i < op->n; i++) {
		const struct ctl_part *p = &op->parts[i];

		bc_jw_begin(&w, NULL);
		bc_jw_str(&w, "name", p->name);
		bc_jw_str(&w, "origin", p->path);
		bc_jw_u64(&w, "written_back_bytes", p->wb - p->wb0);
		if (p->gone)
			bc_jw_bool(&w, "gone", true);
		bc_jw_end(&w);
	}
	ctl_jw_array_end(&w);
	bc_jw_end(&w);
	bc_loop_log(ctl->loop, BC_LOG_INFO, "control: %s of %s complete", what(op),
		    op->n == 1 ? op->parts[0].name : "every origin");
}

/* The final line of a request of which a part failed. */
static void error_line(struct bc_control *ctl, struct ctl_drain *op, struct bc_tbuf *line)
{
	struct bc_tbuf msg = { 0 };
	char ebuf[128];
	unsigned i;

	for (i = 0; i < op->n; i++) {
		const struct ctl_part *p = &op->parts[i];
		const char *why;

		if (!p->result)
			continue;
		why = drain_error(p->result, ebuf, sizeof(ebuf));
		if (op->n == 1)
			bc_tbuf_printf(&msg, "%s failed: %s", what(op), why);
		else
			bc_tbuf_printf(&msg, "%s%s of origin %s failed: %s", msg.len ? "; " : "",
				       what(op), p->name, why);
	}
	bc_json_error(line, "%s", msg.p ? msg.p : "out of memory");
	bc_loop_log(ctl->loop, BC_LOG_ERR, "control: %s", msg.p ? msg.p : "out of memory");
	bc_tbuf_free(&msg);
}

/* Every part of @op is done: the host learns of a detach, the client gets
 * its last line. */
static void finish(struct bc_control *ctl, struct ctl_drain *op)
{
	struct ctl_conn *cn = op->conn;
	struct bc_tbuf line = { 0 };
	bool ok = true, stop = false;
	unsigned i;

	unlink_op(ctl, op);
	op->conn = NULL;
	if (cn) {
		cn->drain = NULL;
		ctl_conn_hold(cn); /* the host's hook may run the loop */
	}
	for (i = 0; i < op->n; i++)
		if (op->parts[i].result)
			ok = false;
	if (ok && op->detach && op->shutdown_after) {
		/* The cache is detached: shut down once the client has its reply. */
		bc_loop_log(ctl->loop, BC_LOG_INFO, "control: origin %s is complete; shutting down",
			    op->parts[0].path);
		stop = true;
	} else if (ok && op->detach && op->parts[0].e) {
		struct bc_engine *e = op->parts[0].e;

		op->parts[0].e = NULL;
		bc_loop_log(ctl->loop, BC_LOG_INFO, "control: origin %s (%s) is complete and "
			    "leaves the cache", op->parts[0].name, op->parts[0].path);
		if (ctl->src.detached)
			ctl->src.detached(ctl->src.host, e);
	}
	if (ok)
		done_line(ctl, op, stop, &line);
	else
		error_line(ctl, op, &line);
	if (op->detach && op->shutdown_after)
		ctl->detaching = false;
	if (cn && cn->fd >= 0) {
		conn_last_line(cn, &line, stop);
	} else if (stop) {
		bc_loop_stop(ctl->loop);
	}
	if (cn)
		ctl_conn_release(cn);
	bc_tbuf_free(&line);
	op_free(op);
}

static void on_done(void *arg, int result)
{
	struct ctl_part *p = arg;
	struct ctl_drain *op = p->op;
	struct bc_control *ctl = op->ctl;

	part_sample(ctl, p, p->e);
	p->done = true;
	p->result = result;
	if (ctl->shut) {
		/* Completed while the server shuts down: nobody to tell. */
		if (!op_running(op)) {
			unlink_op(ctl, op);
			op_free(op);
		}
		return;
	}
	if (!ctl->kick_pending && !ctl->advancing) {
		/* Go on from the loop, not from inside the engine. */
		ctl->kick_pending = true;
		bc_loop_defer(ctl->loop, &ctl->kick, 0);
	}
}

/* Is an earlier part for the same origin still ahead of @p? */
static bool part_blocked(const struct bc_control *ctl, const struct ctl_drain *pop,
			 const struct ctl_part *p)
{
	const struct ctl_drain *op;
	bool earlier = true;
	unsigned i;

	for (op = ctl->drains; op; op = op->next) {
		if (op == pop)
			earlier = false;
		for (i = 0; i < op->n; i++) {
			const struct ctl_part *q = &op->parts[i];

			if (q == p || q->done || strcmp(q->name, p->name))
				continue;
			if (q->started || earlier)
				return true;
		}
	}
	return false;
}

/* Start @p on its origin's engine.  False if it completed at once. */
static bool part_start(struct bc_control *ctl, struct ctl_drain *op, struct ctl_part *p)
{
	const struct bc_control_origin *o = bc_control_find(&ctl->src, p->name);
	struct bc_engine_stats st;
	int ret;

	if (!o) {
		/* Detached meanwhile: everything it held is on its origin. */
		p->done = p->gone = true;
		p->result = op->detach ? -ENOENT : 0;
		return false;
	}
	bc_co_stats(o, &st);
	if (st.detached && bc_control_count(&ctl->src) > 1) {
		/* Detached, about to leave: its origin holds everything. */
		p->done = p->gone = true;
		p->result = op->detach ? -ENOENT : 0;
		return false;
	}
	p->started = true;
	p->e = o->engine;
	bc_loop_log(ctl->loop, BC_LOG_INFO, "control: %s of origin %s: writing back %llu dirty "
		    "blocks", what(op), p->name, (unsigned long long)st.dirty_blocks);
	ret = bc_co_drain(o, op->detach, on_done, p);
	/* On success @p belongs to the engine's callback until it runs. */
	if (ret < 0) {
		part_sample(ctl, p, p->e);
		p->done = true;
		p->result = ret;
		return false;
	}
	return true;
}

/* Start every part whose origin is free.  True if one completed at once. */
static bool schedule(struct bc_control *ctl)
{
	struct ctl_drain *op;
	bool changed = false;
	unsigned i;

	if (ctl->shut)
		return false;
	for (op = ctl->drains; op; op = op->next)
		for (i = 0; i < op->n; i++) {
			struct ctl_part *p = &op->parts[i];

			if (!p->started && !p->done && !part_blocked(ctl, op, p) &&
			    !part_start(ctl, op, p))
				changed = true;
		}
	return changed;
}

/* Finish the requests whose parts are all done, start what can start. */
static void advance(struct bc_control *ctl)
{
	struct ctl_drain *op;

	if (ctl->advancing)
		return;
	/* Completions that come meanwhile (a host hook may run the loop) are
	 * found by the scan from the head after every finish. */
	ctl->advancing = true;
	do {
		for (op = ctl->drains; op && !ctl->shut;) {
			if (op_complete(op)) {
				finish(ctl, op);
				op = ctl->drains;
			} else {
				op = op->next;
			}
		}
	} while (!ctl->shut && schedule(ctl));
	ctl->advancing = false;
	if (!ctl->drains)
		bc_loop_timer_cancel(ctl->loop, &ctl->progress_timer);
}

static void on_kick(struct bc_completion *c, int res)
{
	struct bc_control *ctl = BC_CONTAINER_OF(c, struct bc_control, kick);

	(void)res;
	ctl->kick_pending = false;
	advance(ctl);
}

static void progress_line(struct bc_control *ctl, struct ctl_drain *op)
{
	struct ctl_conn *cn = op->conn;
	struct bc_tbuf line = { 0 };
	uint64_t dirty = 0, wb = 0;
	struct bc_jw w;
	unsigned i;

	for (i = 0; i < op->n; i++) {
		struct ctl_part *p = &op->parts[i];
		struct bc_engine *e = part_engine(ctl, p);

		if (e)
			part_sample(ctl, p, e);
		if (!p->done)
			dirty += p->dirty;
		wb += p->wb;
	}
	if (ctl_conn_pending(cn))
		return; /* the client is behind: skip this one */
	bc_jw_init(&w, &line);
	bc_jw_begin(&w, NULL);
	bc_jw_begin(&w, "progress");
	bc_jw_u64(&w, "dirty_blocks", dirty);
	bc_jw_u64(&w, "dirty_bytes", dirty * BC_UNIT_BLOCK);
	bc_jw_u64(&w, "writeback_bytes", wb);
	if (!op_started(op))
		bc_jw_bool(&w, "queued", true);
	if (op->n > 1) {
		ctl_jw_array(&w, "origins");
		for (i = 0; i < op->n; i++) {
			bc_jw_begin(&w, NULL);
			bc_jw_str(&w, "name", op->parts[i].name);
			bc_jw_u64(&w, "dirty_blocks", op->parts[i].done ? 0 : op->parts[i].dirty);
			bc_jw_bool(&w, "done", op->parts[i].done);
			bc_jw_end(&w);
		}
		ctl_jw_array_end(&w);
	}
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

	/* A send may fail and drop a queued request: fetch next first. */
	for (op = ctl->drains; op; op = next) {
		next = op->next;
		if (op->conn)
			progress_line(ctl, op);
	}
	if (ctl->drains)
		bc_loop_timer_arm(ctl->loop, &ctl->progress_timer, PROGRESS_NS);
}

void ctl_drain_init(struct bc_control *ctl)
{
	ctl->progress_timer.fn = on_progress;
	ctl->kick.fn = on_kick;
}

static void refuse(struct ctl_conn *cn, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void refuse(struct ctl_conn *cn, const char *fmt, ...)
{
	struct bc_tbuf line = { 0 };
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	bc_json_error(&line, "%s", msg);
	conn_last_line(cn, &line, false);
	bc_tbuf_free(&line);
}

/* The parts of a new request: @name's origin, or every origin served.
 * NULL (after telling the client why) if it is refused. */
static struct ctl_drain *new_op(struct bc_control *ctl, struct ctl_conn *cn, bool detach,
				const char *name)
{
	unsigned i, k = 0, n = bc_control_count(&ctl->src);
	struct ctl_drain *op;

	op = calloc(1, sizeof(*op) + (name ? 1 : (n ? n : 1)) * sizeof(op->parts[0]));
	if (!op) {
		refuse(cn, "out of memory");
		return NULL;
	}
	op->ctl = ctl;
	op->detach = detach;
	op->t0_ns = bc_now_ns();
	for (i = 0; i < n; i++) {
		const struct bc_control_origin *o = bc_control_at(&ctl->src, i);
		struct ctl_part *p = &op->parts[k];
		struct bc_engine_stats st;

		if (name && strcmp(bc_engine_name(o->engine), name))
			continue;
		bc_co_stats(o, &st);
		if (st.detached && !name && n > 1)
			continue; /* leaving the cache: nothing to flush */
		p->op = op;
		p->name = strdup(bc_engine_name(o->engine));
		p->path = strdup(bc_engine_origin_path(o->engine));
		p->wb0 = p->wb = st.writeback_bytes;
		p->dirty = st.dirty_blocks;
		op->n = ++k;
		if (!p->name || !p->path) {
			op_free(op);
			refuse(cn, "out of memory");
			return NULL;
		}
	}
	return op;
}

/* Why a request cannot be taken now, or NULL.  @target: the origin it
 * drains (NULL: every origin). */
static const char *check_request(struct bc_control *ctl, bool detach, const char *target,
				 char *buf, size_t len)
{
	const struct bc_control_origin *o = target ? bc_control_find(&ctl->src, target) : NULL;
	struct bc_engine_stats st;

	if (ctl->detaching)
		return detach ? "a detach is already in progress"
			      : "a detach is in progress; the server shuts down when it completes";
	if (!o)
		return NULL;
	bc_co_stats(o, &st);
	if (st.detached && bc_control_count(&ctl->src) == 1)
		return "the cache is detached; the server is shutting down";
	if (ctl_drain_state(ctl, target) == CTL_DETACHING) {
		snprintf(buf, len, detach ? "a detach of origin %s is already in progress" :
			 "origin %s is being detached: its dirty data is being written back and it "
			 "leaves the cache", target);
		return buf;
	}
	if (st.detached) {
		snprintf(buf, len, "origin %s is detached and leaves the cache", target);
		return buf;
	}
	return NULL;
}

/* The origin a detach is for: @name, or the only one.  NULL (after telling
 * the client why) if none can be chosen. */
static const char *detach_target(struct bc_control *ctl, struct ctl_conn *cn, const char *name)
{
	unsigned n = bc_control_count(&ctl->src);
	struct bc_tbuf names = { 0 };

	if (name)
		return name;
	if (n == 1)
		return bc_engine_name(bc_control_at(&ctl->src, 0)->engine);
	if (n == 0) {
		refuse(cn, "the cache serves no origin: nothing to detach");
		return NULL;
	}
	bc_control_names(&ctl->src, &names);
	refuse(cn, "name the origin to detach: %u origins are served (%s); say 'origin NAME "
	       "detach' ('blkcache detach NAME')", n, names.p ? names.p : "");
	bc_tbuf_free(&names);
	return NULL;
}

void ctl_drain_request(struct bc_control *ctl, struct ctl_conn *cn, bool detach,
		       const char *name)
{
	const char *target = name, *why;
	struct ctl_drain *op, **pp;
	char buf[512];

	if (detach && !(target = detach_target(ctl, cn, name)))
		return;
	if ((why = check_request(ctl, detach, target, buf, sizeof(buf)))) {
		refuse(cn, "%s", why);
		return;
	}
	if (detach && bc_control_count(&ctl->src) > 1 && !ctl->src.detached) {
		refuse(cn, "this server cannot detach one origin of several while it serves; "
		       "stop it, or detach when the origin is the only one");
		return;
	}
	if (!(op = new_op(ctl, cn, detach, target)))
		return;
	op->conn = cn;
	op->shutdown_after = detach && bc_control_count(&ctl->src) == 1;
	cn->drain = op;
	for (pp = &ctl->drains; *pp; pp = &(*pp)->next)
		;
	*pp = op;
	if (op->shutdown_after)
		ctl->detaching = true;
	/* First progress line at once: the client learns the amount to drain. */
	bc_loop_timer_arm(ctl->loop, &ctl->progress_timer, 0);
	advance(ctl);
}

void ctl_drain_forget_conn(struct ctl_conn *cn)
{
	struct ctl_drain *op = cn->drain;
	struct bc_control *ctl = cn->ctl;

	cn->drain = NULL;
	if (!op)
		return;
	op->conn = NULL;
	if (op_started(op)) {
		bc_loop_log(ctl->loop, BC_LOG_INFO, "control: the %s client went away; the %s continues",
		       what(op), what(op));
		return;
	}
	/* Not started yet: nobody wants it any more. */
	unlink_op(ctl, op);
	if (op->detach && op->shutdown_after)
		ctl->detaching = false;
	op_free(op);
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
		if (!op_running(op)) {
			unlink_op(ctl, op);
			op_free(op);
		}
	}
	ctl->detaching = false;
}

void ctl_drain_free(struct bc_control *ctl)
{
	struct ctl_drain *op;

	while ((op = ctl->drains)) {
		ctl->drains = op->next;
		op_free(op);
	}
}
