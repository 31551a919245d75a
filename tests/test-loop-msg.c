/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Cross-thread messages between loops (bc_loop_post: the receiver's inbox,
 * an eventfd wake-up when it may be blocked).
 *
 * The main thread's loop keeps many messages in flight to two worker
 * threads' loops; each worker checks a message and posts it back (or on to
 * the other worker first, for every third one).  Checked: every message
 * comes back exactly once per trip with its payload intact, on the right
 * thread, with the res it was posted with; the totals add up.  One worker's
 * loop has a tiny completion queue, so more messages are in flight to it
 * than its queue holds (the inbox does not depend on it).  Worker 0 polls
 * its loop (bc_loop_set_polling: never woken), worker 1 blocks in its
 * wait and is woken by the messages.  Also: posting refuses bad arguments,
 * a message to the sender's own loop runs there, and a message to a loop
 * nobody is running makes its bc_loop_fd() readable (an outside poller
 * learns of it).  No verdict depends on speed: the
 * run ends when every trip is done (a watchdog fails it after 120 s).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#define NMSG   2048      /* in flight */
#define TRIPS  200000    /* round trips in all */

struct worker {
	struct bc_loop *loop;
	pthread_t thread, tid;
	atomic_int stop;
	uint64_t seen, wrong_thread, bad;
};

struct tmsg {
	struct bc_msg m;
	uint32_t id, trips, hops;
	uint32_t magic;
	bool via_other;          /* this trip goes worker -> other worker -> main */
};

static struct bc_loop *main_loop;
static pthread_t main_tid;
static struct worker w[2];
static uint64_t returned, trips_left = TRIPS, res_bad, main_bad, hops_total;

static void at_main(struct bc_completion *c, int res);

static void at_worker(struct bc_completion *c, int res)
{
	struct tmsg *t = BC_CONTAINER_OF(c, struct tmsg, m.c);
	struct worker *me = NULL;
	unsigned i;

	for (i = 0; i < 2; i++)
		if (pthread_equal(pthread_self(), w[i].tid))
			me = &w[i];
	if (!me) {
		main_bad++;
		return;
	}
	me->seen++;
	if (t->magic != 0xB10CCAC4 || res != (int)(t->id ^ t->trips))
		me->bad++;
	t->hops++;
	if (t->via_other && t->hops == 1) {
		t->m.c.fn = at_worker;
		bc_loop_post(me->loop, w[me == &w[0]].loop, &t->m, res);
		return;
	}
	t->m.c.fn = at_main;
	if (bc_loop_post(me->loop, main_loop, &t->m, -(int)t->id - 1) < 0)
		me->bad++;
}

static void send_trip(struct tmsg *t)
{
	t->via_other = t->trips % 3 == 2;
	t->hops = 0;
	t->m.c.fn = at_worker;
	if (bc_loop_post(main_loop, w[t->id % 2].loop, &t->m, (int)(t->id ^ t->trips)) < 0)
		main_bad++;
}

static void at_main(struct bc_completion *c, int res)
{
	struct tmsg *t = BC_CONTAINER_OF(c, struct tmsg, m.c);

	if (!pthread_equal(pthread_self(), main_tid))
		main_bad++;
	if (res != -(int)t->id - 1 || t->hops != (t->via_other ? 2u : 1u))
		res_bad++;
	returned++;
	hops_total += t->hops;
	t->trips++;
	if (trips_left) {
		trips_left--;
		send_trip(t);
	}
}

static void wake(struct bc_completion *c, int res)
{
	(void)c;
	(void)res;
}

static void *worker_main(void *arg)
{
	struct worker *me = arg;
	bool polls = me == &w[0];

	bc_loop_set_polling(me->loop, polls);
	while (!atomic_load(&me->stop))
		if (bc_loop_run_once(me->loop, polls ? 0 : -1) < 0)
			break;
	bc_loop_set_polling(me->loop, false);
	return NULL;
}

static void watchdog(int sig)
{
	(void)sig;
	static const char msg[] = "FAIL: messages still in flight after 120 s (lost?)\n";
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(1);
}

/* A message to the sender's own loop runs there, from its loop. */
static int self_runs;
static void at_self(struct bc_completion *c, int res)
{
	(void)c;
	self_runs += res == 7;
}

/* A loop nobody runs, watched through bc_loop_fd(): a message to it makes
 * the fd readable (within a bound: a wake-up lost would time out). */
static void check_outside_poller(void)
{
	struct bc_msg m = { .c.fn = at_self };
	struct bc_loop *idle;
	struct pollfd pfd = { .events = POLLIN };
	int i, ready = 0;

	CHECK(bc_loop_new(&idle, 8) == 0, "a loop");
	pfd.fd = bc_loop_fd(idle);
	CHECK(pfd.fd >= 0, "bc_loop_fd: %d", pfd.fd);
	for (i = 0; i < 3; i++) /* its own first round (the wake-up's poll goes in) */
		bc_loop_run_once(idle, 0);
	CHECK(bc_loop_timeout_ms(idle) != 0, "an idle loop has nothing to do");
	CHECK(bc_loop_post(main_loop, idle, &m, 7) == 0, "post to a loop nobody runs");
	CHECK(bc_loop_timeout_ms(idle) == 0, "a message waits: no timeout");
	ready = poll(&pfd, 1, 20000);
	CHECK(ready == 1 && (pfd.revents & POLLIN), "the loop's fd became readable (%d)", ready);
	for (i = 0; i < 100 && self_runs < 2; i++)
		bc_loop_run_once(idle, 0);
	CHECK(self_runs == 2, "the message ran on the loop once it ran (%d)", self_runs);
	bc_loop_free(idle);
}

static void check_basics(void)
{
	struct bc_msg m = { .c.fn = at_self }, nofn = { 0 };

	CHECK(bc_loop_post(NULL, main_loop, &m, 0) == -EINVAL, "NULL sender accepted");
	CHECK(bc_loop_post(main_loop, NULL, &m, 0) == -EINVAL, "NULL receiver accepted");
	CHECK(bc_loop_post(main_loop, main_loop, NULL, 0) == -EINVAL, "NULL message accepted");
	CHECK(bc_loop_post(main_loop, main_loop, &nofn, 0) == -EINVAL, "message without fn accepted");
	CHECK(bc_loop_post(main_loop, main_loop, &m, 7) == 0, "post to self failed");
	CHECK(self_runs == 0, "a message ran inside bc_loop_post");
	while (!self_runs)
		bc_loop_run_once(main_loop, -1);
	CHECK(self_runs == 1, "a message to the own loop ran %d times", self_runs);
	check_outside_poller();
}

int main(void)
{
	static struct tmsg msgs[NMSG];
	struct bc_msg stop[2] = { { .c.fn = NULL } };
	uint64_t seen;
	unsigned i;

	signal(SIGALRM, watchdog);
	alarm(120);
	main_tid = pthread_self();
	if (bc_loop_new(&main_loop, 256) || bc_loop_new(&w[0].loop, 256) || bc_loop_new(&w[1].loop, 4)) {
		fprintf(stderr, "FAIL: bc_loop_new\n");
		return 1;
	}
	check_basics();
	for (i = 0; i < 2; i++) {
		if (pthread_create(&w[i].thread, NULL, worker_main, &w[i])) {
			fprintf(stderr, "FAIL: pthread_create\n");
			return 1;
		}
		w[i].tid = w[i].thread;
	}
	/* The workers sit in their loops' waits: the messages wake them. */
	for (i = 0; i < NMSG; i++) {
		msgs[i] = (struct tmsg){ .id = i, .magic = 0xB10CCAC4 };
		trips_left--;
		send_trip(&msgs[i]);
	}
	while (returned < TRIPS)
		if (bc_loop_run_once(main_loop, -1) < 0)
			break;
	for (i = 0; i < 2; i++) {
		atomic_store(&w[i].stop, 1);
		stop[i].c.fn = wake; /* out of its wait, to see the stop flag */
		CHECK(bc_loop_post(main_loop, w[i].loop, &stop[i], 0) == 0, "posting the stop failed");
	}
	bc_loop_submit(main_loop);
	for (i = 0; i < 2; i++)
		pthread_join(w[i].thread, NULL);
	seen = w[0].seen + w[1].seen;
	CHECK(returned == TRIPS, "%llu of %d trips came back", (unsigned long long)returned, TRIPS);
	CHECK(trips_left == 0, "%llu trips never sent", (unsigned long long)trips_left);
	CHECK(res_bad == 0, "%llu messages came back with the wrong res or hop count",
	      (unsigned long long)res_bad);
	CHECK(main_bad == 0 && w[0].bad == 0 && w[1].bad == 0,
	      "failures: main %llu, workers %llu/%llu (bad payload, wrong thread or post error)",
	      (unsigned long long)main_bad, (unsigned long long)w[0].bad, (unsigned long long)w[1].bad);
	/* Every trip visits one worker, every third one both: each visit once. */
	CHECK(seen == hops_total && hops_total > returned, "workers saw %llu messages, the trips made %llu hops",
	      (unsigned long long)seen, (unsigned long long)hops_total);
	CHECK(w[1].seen > 0 && w[0].seen > 0, "a worker saw nothing (%llu/%llu)",
	      (unsigned long long)w[0].seen, (unsigned long long)w[1].seen);
	for (i = 0; i < NMSG; i++)
		CHECK(msgs[i].trips > 0, "message %u never came back", i);
	printf("%d round trips of %d messages in flight between 3 loops (worker 1's completion queue: "
	       "16 entries); workers saw %llu + %llu\n", TRIPS, NMSG, (unsigned long long)w[0].seen,
	       (unsigned long long)w[1].seen);
	bc_loop_free(w[0].loop);
	bc_loop_free(w[1].loop);
	bc_loop_free(main_loop);
	return t_finish("loop messages");
}
