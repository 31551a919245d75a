/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The default writeback policy.  It runs above the dirty_high watermark
 * until below dirty_low, and all the way down once the foreground has been
 * idle for writeback_idle_ms.  While the foreground is busy writeback
 * yields: a quarter of the concurrency, and writeback_rate bytes/s -- also a
 * batch that started while it was idle.
 */
#include <errno.h>
#include <stdlib.h>

#include "engine/engine.h"
#include "writeback/policy.h"

struct wm {
	struct bc_engine *e;     /* tunables (read only), loop, kick */
	bool draining;           /* between the high and low watermarks */
	uint64_t last_request_ns;
	struct bc_timer idle;    /* fires when the foreground may have gone quiet */
	struct bc_timer rate;    /* fires when the rate limit allows more */
	int64_t tokens;          /* rate limit bucket, bytes */
	uint64_t tokens_ns;
};

static bool fg_idle(const struct wm *p)
{
	const struct bc_tunables *t = &p->e->tun;

	return t->writeback_idle_ms &&
	       bc_now_ns() - p->last_request_ns >= t->writeback_idle_ms * 1000000ull;
}

static void idle_fn(struct bc_timer *t)
{
	struct wm *p = BC_CONTAINER_OF(t, struct wm, idle);
	uint64_t idle_ns = p->e->tun.writeback_idle_ms * 1000000ull, since;

	if (!idle_ns)
		return;
	since = bc_now_ns() - p->last_request_ns;
	if (since < idle_ns) {
		bc_loop_timer_arm(p->e->loop, &p->idle, idle_ns - since);
		return;
	}
	bc_wb_kick(p->e);
}

static void rate_fn(struct bc_timer *t)
{
	bc_wb_resume(BC_CONTAINER_OF(t, struct wm, rate)->e);
}

static int wm_init(void **ctx, struct bc_engine *e)
{
	struct wm *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->e = e;
	p->idle.fn = idle_fn;
	p->rate.fn = rate_fn;
	p->last_request_ns = p->tokens_ns = bc_now_ns();
	*ctx = p;
	return 0;
}

static void wm_destroy(void *ctx)
{
	struct wm *p = ctx;

	if (!p)
		return;
	bc_loop_timer_cancel(p->e->loop, &p->idle);
	bc_loop_timer_cancel(p->e->loop, &p->rate);
	free(p);
}

static void wm_note_request(void *ctx)
{
	struct wm *p = ctx;
	uint64_t idle_ms = p->e->tun.writeback_idle_ms;

	p->last_request_ns = bc_loop_now_ns(p->e->loop);
	if (idle_ms && !p->idle.armed)
		bc_loop_timer_arm(p->e->loop, &p->idle, idle_ms * 1000000ull);
}

static bool wm_needed(void *ctx, const struct bc_wb_view *v, bool *full_speed)
{
	struct wm *p = ctx;
	const struct bc_tunables *t = &p->e->tun;
	uint64_t pct100;

	(void)full_speed; /* never flat out: it yields to the foreground */
	if (t->writeback_paused || v->closing)
		return false;
	/* Idle: flat out only while the foreground stays away (inflight_limit
	 * and rate_ok look again), so a batch started in a pause yields to the
	 * requests that end it. */
	if (fg_idle(p))
		return true;
	/* Share of the ring not written back, compared without rounding:
	 * dirty_low 0 means "until nothing is left". */
	pct100 = v->pending * 100;
	if (pct100 >= t->dirty_high * v->nseg)
		p->draining = true;
	else if (pct100 <= t->dirty_low * v->nseg)
		p->draining = false;
	return p->draining;
}

static unsigned wm_batch_limit(void *ctx, bool drain)
{
	struct wm *p = ctx;
	unsigned limit = (unsigned)p->e->tun.writeback_batch;

	/* A drain: the largest batch, so that more blocks are sorted and
	 * merged together (fewer, larger origin writes).  Not for a foreground
	 * at rest: a batch runs to its end, and one started in a pause would
	 * compete with the requests that end it for that much longer. */
	if (drain && limit < BC_WB_MAX_BATCH)
		limit = BC_WB_MAX_BATCH;
	return limit;
}

static unsigned wm_inflight_limit(void *ctx, bool full_speed)
{
	struct wm *p = ctx;
	unsigned limit = (unsigned)p->e->tun.writeback_inflight;

	if (!full_speed && !fg_idle(p))
		limit = limit / 4 ? limit / 4 : 1; /* yield to the foreground */
	return limit;
}

/* The bucket refills at writeback_rate bytes/s and holds at most one second. */
static bool wm_rate_ok(void *ctx, bool full_speed)
{
	struct wm *p = ctx;
	uint64_t rate = p->e->tun.writeback_rate, now = bc_now_ns();

	if (!rate || full_speed || fg_idle(p))
		return true;
	p->tokens += (int64_t)((double)(now - p->tokens_ns) * (double)rate / 1e9);
	p->tokens_ns = now;
	if (p->tokens > (int64_t)rate)
		p->tokens = (int64_t)rate;
	if (p->tokens >= 0)
		return true;
	if (!p->rate.armed)
		bc_loop_timer_arm(p->e->loop, &p->rate,
				  (uint64_t)((double)-p->tokens * 1e9 / (double)rate) + 1000);
	return false;
}

/* Charge a write of @len bytes to the bucket (it may go negative). */
static void wm_charge(void *ctx, uint64_t len, bool full_speed)
{
	struct wm *p = ctx;

	if (p->e->tun.writeback_rate && !full_speed)
		p->tokens -= (int64_t)len;
}

const struct bc_wb_policy_ops bc_wb_policy_watermark = {
	.name = "watermark",
	.init = wm_init,
	.destroy = wm_destroy,
	.note_request = wm_note_request,
	.needed = wm_needed,
	.batch_limit = wm_batch_limit,
	.inflight_limit = wm_inflight_limit,
	.rate_ok = wm_rate_ok,
	.charge = wm_charge,
};
