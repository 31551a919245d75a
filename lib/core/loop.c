/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The io_uring event loop.  Every SQE carries a struct bc_completion pointer
 * as user_data; the loop calls its fn with the CQE result.  Deferred
 * completions and timers are run from the same loop, never recursively.
 */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include <liburing.h>

#include "blkcache/loop.h"
#include "core/logger.h"
#include "core/loop_internal.h"

struct bc_loop {
	struct io_uring ring;
	struct bc_completion *defer_head, *defer_tail; /* for the next round */
	struct bc_completion *run_head, *run_tail;     /* the round being run */
	struct bc_timer *timers; /* sorted by deadline */
	volatile sig_atomic_t stop;
	unsigned pending_sqes;
	struct bc_loop_stats st;
	uint64_t now_ns;         /* CLOCK_MONOTONIC as of the last timer check */
	int event_fd;            /* bc_loop_fd(): readable when completions are ready */
	struct bc_logger log;    /* bc_loop_set_log(); unset: the process-wide sink */
	/* Cross-thread messages (msg.c): a lock-free stack other threads push
	 * onto; the loop takes it whole each round.  A sender wakes the loop
	 * (an eventfd its ring polls) only if it may be blocked or away. */
	_Atomic(struct bc_msg *) inbox;
	atomic_int awake;        /* running a round and will take the inbox */
	atomic_int wake_sent;    /* a wake-up is on its way since the last round */
	int wake_fd;
	bool wake_armed;         /* its multishot poll is in the ring */
	bool polling;            /* bc_loop_set_polling() */
	struct bc_completion wake_c;
};

static void arm_wake(struct bc_loop *loop);

uint64_t bc_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int bc_loop_new(struct bc_loop **out, unsigned queue_depth)
{
	struct io_uring_params p = { 0 };
	struct bc_loop *loop;
	int ret;

	loop = calloc(1, sizeof(*loop));
	if (!loop)
		return -ENOMEM;
	if (!queue_depth)
		queue_depth = 1024;
	p.flags = IORING_SETUP_CQSIZE;
	p.cq_entries = queue_depth * 4;
	loop->event_fd = -1;
	loop->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (loop->wake_fd < 0) {
		ret = -errno;
		goto err_free;
	}
	ret = io_uring_queue_init_params(queue_depth, &loop->ring, &p);
	if (ret < 0)
		goto err_fd;
	arm_wake(loop);
	io_uring_submit(&loop->ring);
	*out = loop;
	return 0;
err_fd:
	close(loop->wake_fd);
err_free:
	free(loop);
	return ret;
}

void bc_loop_free(struct bc_loop *loop)
{
	if (!loop)
		return;
	io_uring_queue_exit(&loop->ring);
	if (loop->event_fd >= 0)
		close(loop->event_fd);
	close(loop->wake_fd);
	free(loop);
}

int bc_loop_fd(struct bc_loop *loop)
{
	int fd, ret;

	if (loop->event_fd >= 0)
		return loop->event_fd;
	fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	ret = io_uring_register_eventfd(&loop->ring, fd);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	loop->event_fd = fd;
	return fd;
}

int bc_loop_timeout_ms(struct bc_loop *loop)
{
	uint64_t now;

	if (loop->defer_head || loop->run_head || loop->pending_sqes || io_uring_cq_ready(&loop->ring) ||
	    atomic_load(&loop->inbox))
		return 0;
	if (!loop->timers)
		return -1;
	now = bc_now_ns();
	if (loop->timers->deadline_ns <= now)
		return 0;
	return (int)((loop->timers->deadline_ns - now + 999999) / 1000000);
}

void bc_loop_set_log(struct bc_loop *loop, bc_log_fn fn, void *arg, enum bc_log_level max_level)
{
	loop->log = (struct bc_logger){ .fn = fn, .arg = arg, .max = max_level, .set = true };
}

void bc_loop_log(struct bc_loop *loop, enum bc_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	bc_logger_vlog(loop && loop->log.set ? &loop->log : NULL, level, fmt, ap);
	va_end(ap);
}

/* Count a hand-over of the queued SQEs to the kernel (one io_uring_enter
 * when there are any). */
static void note_submit(struct bc_loop *loop)
{
	if (loop->pending_sqes) {
		loop->st.enters++;
		loop->st.sqes += loop->pending_sqes;
		loop->pending_sqes = 0;
	}
}

void bc_loop_get_stats(const struct bc_loop *loop, struct bc_loop_stats *st)
{
	*st = loop->st;
}

struct io_uring_sqe *bc_loop_sqe(struct bc_loop *loop)
{
	struct io_uring_sqe *sqe;

	sqe = io_uring_get_sqe(&loop->ring);
	if (!sqe) {
		io_uring_submit(&loop->ring);
		loop->st.ring_full++;
		note_submit(loop);
		sqe = io_uring_get_sqe(&loop->ring);
	}
	if (sqe)
		loop->pending_sqes++;
	return sqe;
}

int bc_loop_ring_fd(const struct bc_loop *loop)
{
	return loop->ring.ring_fd;
}

int bc_loop_submit(struct bc_loop *loop)
{
	int ret = io_uring_submit(&loop->ring);

	if (ret >= 0)
		note_submit(loop);
	return ret;
}

int bc_loop_poll_add(struct bc_loop *loop, int fd, unsigned events, struct bc_completion *c)
{
	struct io_uring_sqe *sqe = bc_loop_sqe(loop);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_poll_add(sqe, fd, events);
	io_uring_sqe_set_data(sqe, c);
	return 0;
}

int bc_loop_poll_cancel(struct bc_loop *loop, struct bc_completion *c)
{
	struct io_uring_sqe *sqe = bc_loop_sqe(loop);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_poll_remove(sqe, (__u64)(uintptr_t)c);
	io_uring_sqe_set_data(sqe, NULL);
	return 0;
}

void bc_loop_defer(struct bc_loop *loop, struct bc_completion *c, int res)
{
	c->res = res;
	c->next = NULL;
	if (loop->defer_tail)
		loop->defer_tail->next = c;
	else
		loop->defer_head = c;
	loop->defer_tail = c;
}

/* Take @c out of the list @head..@tail; false: not in it. */
static bool list_remove(struct bc_completion **head, struct bc_completion **tail,
			struct bc_completion *c)
{
	struct bc_completion **pp, *prev = NULL;

	for (pp = head; *pp; prev = *pp, pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			if (*tail == c)
				*tail = prev;
			c->next = NULL;
			return true;
		}
	}
	return false;
}

void bc_loop_defer_cancel(struct bc_loop *loop, struct bc_completion *c)
{
	if (!list_remove(&loop->defer_head, &loop->defer_tail, c))
		list_remove(&loop->run_head, &loop->run_tail, c);
}

void bc_loop_timer_arm(struct bc_loop *loop, struct bc_timer *t, uint64_t delay_ns)
{
	struct bc_timer **pp;

	if (t->armed)
		bc_loop_timer_cancel(loop, t);
	t->deadline_ns = bc_now_ns() + delay_ns;
	t->armed = true;
	for (pp = &loop->timers; *pp && (*pp)->deadline_ns <= t->deadline_ns; pp = &(*pp)->next)
		;
	t->next = *pp;
	*pp = t;
}

void bc_loop_timer_cancel(struct bc_loop *loop, struct bc_timer *t)
{
	struct bc_timer **pp;

	if (!t->armed)
		return;
	for (pp = &loop->timers; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
	t->armed = false;
	t->next = NULL;
}

void bc_loop_stop(struct bc_loop *loop)
{
	loop->stop = 1;
}

bool bc_loop_stopping(const struct bc_loop *loop)
{
	return loop->stop;
}

/*
 * Run the completions deferred so far; those deferred while running them
 * go to the next round.  The round lives in the loop, not in this frame: a
 * callback that runs the loop itself (waiting for something, e.g. a
 * frontend to let go of a target) runs the rest of the round there -- a
 * completion it waits for may be in it -- and a cancel finds them.
 */
static int run_deferred(struct bc_loop *loop)
{
	struct bc_completion *c;
	int n = 0;

	if (loop->defer_head) {
		if (loop->run_tail)
			loop->run_tail->next = loop->defer_head;
		else
			loop->run_head = loop->defer_head;
		loop->run_tail = loop->defer_tail;
		loop->defer_head = loop->defer_tail = NULL;
	}
	while ((c = loop->run_head)) {
		loop->run_head = c->next;
		if (!loop->run_head)
			loop->run_tail = NULL;
		c->next = NULL;
		c->fn(c, c->res);
		n++;
	}
	return n;
}

uint64_t bc_loop_now_ns(const struct bc_loop *loop)
{
	return loop->now_ns ? loop->now_ns : bc_now_ns();
}

static int run_timers(struct bc_loop *loop)
{
	uint64_t now = bc_now_ns();
	struct bc_timer *t;
	int n = 0;

	loop->now_ns = now;
	while ((t = loop->timers) && t->deadline_ns <= now) {
		loop->timers = t->next;
		t->next = NULL;
		t->armed = false;
		t->fn(t);
		n++;
	}
	return n;
}

/* The messages other threads pushed, in the order they were pushed. */
static int take_inbox(struct bc_loop *loop)
{
	struct bc_msg *m = atomic_exchange(&loop->inbox, NULL), *fifo = NULL, *next;
	int n = 0;

	for (; m; m = next) {
		next = m->next;
		m->next = fifo;
		fifo = m;
	}
	for (m = fifo; m; m = next) {
		next = m->next; /* fn may post it again */
		m->c.fn(&m->c, m->res);
		n++;
	}
	return n;
}

bool bc_loop_inbox_push(struct bc_loop *to, struct bc_msg *m)
{
	struct bc_msg *head = atomic_load_explicit(&to->inbox, memory_order_relaxed);

	do
		m->next = head;
	while (!atomic_compare_exchange_weak(&to->inbox, &head, m));
	/* (both seq_cst: either the loop sees the message before it blocks,
	 * or we see that it may block) */
	return !atomic_load(&to->awake) && !atomic_exchange(&to->wake_sent, 1);
}

void bc_loop_wake(struct bc_loop *to)
{
	uint64_t one = 1;
	ssize_t r;

	do
		r = write(to->wake_fd, &one, sizeof(one));
	while (r < 0 && errno == EINTR);
	/* EAGAIN: the counter is full, so it is readable: awake anyway. */
}

void bc_loop_set_polling(struct bc_loop *loop, bool polling)
{
	loop->polling = polling;
	atomic_store(&loop->awake, polling);
}

/* The wake eventfd fired: empty it; a multishot poll that ended is armed
 * again before the loop next blocks. */
static void wake_seen(struct bc_loop *loop, const struct io_uring_cqe *cqe)
{
	uint64_t v;

	if (!(cqe->flags & IORING_CQE_F_MORE))
		loop->wake_armed = false;
	if (read(loop->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		loop->wake_armed = false;
}

static void arm_wake(struct bc_loop *loop)
{
	struct io_uring_sqe *sqe;

	if (loop->wake_armed || !(sqe = io_uring_get_sqe(&loop->ring)))
		return;
	io_uring_prep_poll_multishot(sqe, loop->wake_fd, POLLIN);
	io_uring_sqe_set_data(sqe, &loop->wake_c);
	loop->wake_armed = true;
}

static int reap(struct bc_loop *loop)
{
	struct io_uring_cqe *cqe;
	int n = 0;

	while (io_uring_peek_cqe(&loop->ring, &cqe) == 0) {
		struct bc_completion *c = io_uring_cqe_get_data(cqe);
		int res = cqe->res;

		if (c == &loop->wake_c) {
			wake_seen(loop, cqe);
			io_uring_cqe_seen(&loop->ring, cqe);
			continue;
		}
		/* Consume before the callback: it may queue new SQEs. */
		io_uring_cqe_seen(&loop->ring, cqe);
		if (c) {
			c->fn(c, res);
			n++;
		}
	}
	return n;
}

int bc_loop_run_once(struct bc_loop *loop, int max_wait_ms)
{
	struct __kernel_timespec ts, *tsp = NULL;
	struct io_uring_cqe *cqe;
	int64_t wait_ns = -1;
	int n, ret;

	loop->st.iterations++;
	atomic_store(&loop->awake, 1);
	atomic_store(&loop->wake_sent, 0);
	arm_wake(loop); /* (a multishot poll that ended) */
	n = take_inbox(loop) + run_deferred(loop) + run_timers(loop) + reap(loop);
	if (n || loop->defer_head || loop->run_head) {
		wait_ns = 0;
	} else {
		if (loop->timers) {
			uint64_t now = bc_now_ns();

			wait_ns = loop->timers->deadline_ns > now ? (int64_t)(loop->timers->deadline_ns - now) : 0;
		}
		if (max_wait_ms >= 0 && (wait_ns < 0 || wait_ns > (int64_t)max_wait_ms * 1000000))
			wait_ns = (int64_t)max_wait_ms * 1000000;
	}
	if (wait_ns != 0) {
		/* About to block: from now on a sender must wake us, and
		 * what it pushed before it could see that runs first. */
		atomic_store(&loop->awake, 0);
		if (atomic_load(&loop->inbox)) {
			atomic_store(&loop->awake, 1);
			wait_ns = 0;
		}
	}
	if (wait_ns == 0) {
		ret = io_uring_submit(&loop->ring);
	} else {
		if (wait_ns > 0) {
			ts.tv_sec = wait_ns / 1000000000;
			ts.tv_nsec = wait_ns % 1000000000;
			tsp = &ts;
		}
		ret = io_uring_submit_and_wait_timeout(&loop->ring, &cqe, 1, tsp, NULL);
		if (ret == -ETIME || ret == -EINTR)
			ret = 0;
		loop->st.waits++;
		atomic_store(&loop->awake, 1);
		atomic_store(&loop->wake_sent, 0);
	}
	note_submit(loop);
	if (ret < 0 && ret != -EBUSY && ret != -EAGAIN)
		return ret;
	if (loop->event_fd >= 0) {
		uint64_t v;

		if (read(loop->event_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			return -errno;
	}
	n += reap(loop) + take_inbox(loop) + run_timers(loop) + run_deferred(loop);
	if (!loop->polling) {
		/* Not running: senders wake us (and an outside poller of
		 * bc_loop_fd() sees it); one that came just now, ourselves. */
		atomic_store(&loop->awake, 0);
		if (atomic_load(&loop->inbox) && !atomic_exchange(&loop->wake_sent, 1))
			bc_loop_wake(loop);
	}
	return n;
}
