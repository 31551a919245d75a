/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The event loop: one per engine instance, built on io_uring.  Device IO,
 * socket readiness and timers all complete here; nothing blocks except the
 * single wait in bc_loop_run_once().
 */
#ifndef BLKCACHE_LOOP_H
#define BLKCACHE_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blkcache/log.h"

/* The struct that embeds @ptr as its @member (completions, timers, IOs). */
#define BC_CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

struct bc_loop;

/* Completion callback for anything submitted to the loop.  @res is the
 * io_uring result: >= 0 on success, -errno on failure. */
struct bc_completion {
	void (*fn)(struct bc_completion *c, int res);
	struct bc_completion *next; /* loop-private (deferred list) */
	int res;                    /* loop-private */
};

/* A one-shot timer.  Embed it; it must stay valid while armed. */
struct bc_timer {
	void (*fn)(struct bc_timer *t);
	uint64_t deadline_ns; /* CLOCK_MONOTONIC */
	bool armed;
	struct bc_timer *next; /* loop-private */
};

int bc_loop_new(struct bc_loop **out, unsigned queue_depth);
void bc_loop_free(struct bc_loop *loop);

/* One-shot readiness wait on @fd (POLLIN/POLLOUT mask); @c->fn gets the
 * revents mask or -errno.  Cancel with bc_loop_poll_cancel(). */
int bc_loop_poll_add(struct bc_loop *loop, int fd, unsigned events, struct bc_completion *c);
int bc_loop_poll_cancel(struct bc_loop *loop, struct bc_completion *c);

/* Run @c->fn(c, res) from the loop soon (never from inside this call). */
void bc_loop_defer(struct bc_loop *loop, struct bc_completion *c, int res);
/* Withdraw a deferred completion that has not run yet (no-op otherwise). */
void bc_loop_defer_cancel(struct bc_loop *loop, struct bc_completion *c);

void bc_loop_timer_arm(struct bc_loop *loop, struct bc_timer *t, uint64_t delay_ns);
void bc_loop_timer_cancel(struct bc_loop *loop, struct bc_timer *t);

/* Submit queued work, wait for at least one event (or the next timer, or
 * @max_wait_ms, -1 = no limit), then run every ready callback.
 * Returns the number of callbacks run or -errno. */
int bc_loop_run_once(struct bc_loop *loop, int max_wait_ms);

/* Ask bc_loop_run_once() callers to stop; bc_loop_stopping() reports it.
 * Safe to call from a signal handler. */
void bc_loop_stop(struct bc_loop *loop);
bool bc_loop_stopping(const struct bc_loop *loop);

/* Driving the loop from a host's own event loop: bc_loop_fd() is a file
 * descriptor that becomes readable when completions are ready;
 * bc_loop_timeout_ms() says how long the host may wait (-1: until the fd is
 * readable, 0: work is ready now).  When either fires — and after calling
 * into the engine or a frontend — call bc_loop_run_once(loop, 0).
 * Returns the fd (owned by the loop) or -errno. */
int bc_loop_fd(struct bc_loop *loop);
int bc_loop_timeout_ms(struct bc_loop *loop);

/* For frontends that speak io_uring themselves (ublk's uring_cmd): a free
 * SQE of the loop's ring, submitted with the loop's next wait (or by
 * bc_loop_submit).  Its user_data must be a struct bc_completion * (or 0).
 * NULL if the ring is full even after submitting what was queued. */
struct io_uring_sqe;
struct io_uring_sqe *bc_loop_sqe(struct bc_loop *loop);
/* Hand every queued SQE to the kernel now.  Returns the count or -errno. */
int bc_loop_submit(struct bc_loop *loop);

/*
 * Cross-thread messages: bc_loop_post(from, to, m, res), called on @from's
 * thread, runs m->c.fn(&m->c, res) on @to's thread, from its loop -- with
 * no lock: the message goes on @to's inbox, a lock-free list @to's loop
 * takes every round, in the order messages were posted.  @to is woken (an
 * eventfd its ring polls) only when it may be blocked or not running; a
 * loop whose thread calls bc_loop_run_once() all the time
 * (bc_loop_set_polling) is never woken.  @m must stay valid, and must not
 * be posted again, until its fn runs; then it is the receiver's (to keep,
 * post on, or post back).  Both loops must live until the message has run.
 * 0, or -EINVAL for a missing loop, message or fn.
 */
struct bc_msg {
	struct bc_completion c;     /* set c.fn; runs on the receiving loop */
	/* loop-private */
	struct bc_msg *next;
	struct bc_loop *from, *to;
	int res;
};
int bc_loop_post(struct bc_loop *from, struct bc_loop *to, struct bc_msg *m, int res);
/* @loop's thread calls bc_loop_run_once() over and over without blocking
 * (a poller): messages to it need no wake-up.  Off again before it blocks
 * or stops running the loop. */
void bc_loop_set_polling(struct bc_loop *loop, bool polling);

/* How the loop hands work to the kernel: per run_once iteration, per
 * io_uring_enter that carried SQEs; sqes / enters is the batching. */
struct bc_loop_stats {
	uint64_t iterations; /* bc_loop_run_once calls */
	uint64_t waits;      /* of them, ones that blocked (or could) for an event */
	uint64_t enters;     /* submissions that handed SQEs to the kernel */
	uint64_t sqes;       /* SQEs handed over */
	uint64_t ring_full;  /* submissions forced by a full submission ring */
};
void bc_loop_get_stats(const struct bc_loop *loop, struct bc_loop_stats *st);

/* This loop's log sink (the library's messages about work on this loop go
 * there); without one, the process-wide sink of bc_log_set() is used. */
void bc_loop_set_log(struct bc_loop *loop, bc_log_fn fn, void *arg, enum bc_log_level max_level);
void bc_loop_log(struct bc_loop *loop, enum bc_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

uint64_t bc_now_ns(void);
/* The time as of @loop's last pass over its timers (each bc_loop_run_once
 * takes it twice: before and after its wait): no clock read per request,
 * for what needs milliseconds, not nanoseconds. */
uint64_t bc_loop_now_ns(const struct bc_loop *loop);

#endif
