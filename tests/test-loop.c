/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The event loop's deferred completions: order, rounds, cancel, and a loop
 * run from inside a callback (the server waits so for a frontend to let go
 * of an origin it detaches): the rest of the current round must run there,
 * or a completion the callback waits for never comes.
 */
#include <string.h>

#include "testutil.h"

#define N 6

struct rec {
	struct bc_completion c[N];
	struct bc_loop *loop;
	int order[32];
	int n;
	int nested_ran; /* completions that ran inside the nested loop */
	int nested_rounds;
	bool in_nested;
};

static struct rec R;

static int idx_of(struct bc_completion *c)
{
	return (int)(c - R.c);
}

static void note(struct bc_completion *c, int res)
{
	CHECK(res == idx_of(c) * 10, "completion %d got res %d", idx_of(c), res);
	if (R.n < (int)(sizeof(R.order) / sizeof(R.order[0])))
		R.order[R.n++] = idx_of(c);
	if (R.in_nested)
		R.nested_ran++;
}

/* Defers another one: it belongs to the next round. */
static void note_and_defer(struct bc_completion *c, int res)
{
	note(c, res);
	bc_loop_defer(R.loop, &R.c[5], 50);
}

/* Waits, running the loop, until completion 3 (later in this round) ran. */
static void wait_for_3(struct bc_completion *c, int res)
{
	int i;

	note(c, res);
	R.in_nested = true;
	for (i = 0; i < 100; i++) {
		bool seen = false;
		int k;

		for (k = 0; k < R.n; k++)
			seen |= R.order[k] == 3;
		if (seen)
			break;
		bc_loop_run_once(R.loop, 10);
		R.nested_rounds++;
	}
	R.in_nested = false;
}

static void reset(void)
{
	int i;

	memset(R.order, 0, sizeof(R.order));
	R.n = R.nested_ran = R.nested_rounds = 0;
	for (i = 0; i < N; i++)
		R.c[i].fn = note;
}

static void test_order_and_rounds(void)
{
	int i;

	reset();
	R.c[1].fn = note_and_defer;
	for (i = 0; i < 4; i++)
		bc_loop_defer(R.loop, &R.c[i], i * 10);
	CHECK(bc_loop_timeout_ms(R.loop) == 0, "deferred work: the loop must not sleep");
	bc_loop_run_once(R.loop, 0);
	/* One run_once: two rounds at most (before and after the wait). */
	CHECK(R.n >= 4, "ran %d of 4", R.n);
	for (i = 0; i < 4 && i < R.n; i++)
		CHECK(R.order[i] == i, "position %d ran %d", i, R.order[i]);
	for (i = 0; i < 3 && R.n < 5; i++)
		bc_loop_run_once(R.loop, 0);
	CHECK(R.n == 5 && R.order[4] == 5, "the one deferred meanwhile ran after the others (n=%d)", R.n);
}

static void test_cancel(void)
{
	int i;

	reset();
	for (i = 0; i < 4; i++)
		bc_loop_defer(R.loop, &R.c[i], i * 10);
	bc_loop_defer_cancel(R.loop, &R.c[2]);
	bc_loop_defer_cancel(R.loop, &R.c[3]); /* the tail */
	bc_loop_defer(R.loop, &R.c[4], 40);    /* after a cancelled tail */
	for (i = 0; i < 3; i++)
		bc_loop_run_once(R.loop, 0);
	CHECK(R.n == 3, "3 of 5 ran after two cancels, not %d", R.n);
	CHECK(R.order[0] == 0 && R.order[1] == 1 && R.order[2] == 4, "order %d %d %d", R.order[0],
	      R.order[1], R.order[2]);
}

/* A callback cancels one later in its own round: it must not run. */
static void cancel_2(struct bc_completion *c, int res)
{
	note(c, res);
	bc_loop_defer_cancel(R.loop, &R.c[2]);
}

static void test_cancel_in_round(void)
{
	int i;

	reset();
	R.c[1].fn = cancel_2;
	for (i = 0; i < 4; i++)
		bc_loop_defer(R.loop, &R.c[i], i * 10);
	for (i = 0; i < 3; i++)
		bc_loop_run_once(R.loop, 0);
	CHECK(R.n == 3, "3 ran, not %d", R.n);
	CHECK(R.order[0] == 0 && R.order[1] == 1 && R.order[2] == 3, "order %d %d %d", R.order[0],
	      R.order[1], R.order[2]);
}

static void test_nested(void)
{
	int i;

	reset();
	R.c[1].fn = wait_for_3;
	for (i = 0; i < 4; i++)
		bc_loop_defer(R.loop, &R.c[i], i * 10);
	bc_loop_run_once(R.loop, 0);
	CHECK(R.n == 4, "all 4 ran, not %d", R.n);
	CHECK(R.nested_ran == 2, "2 and 3 ran inside the nested loop, not %d", R.nested_ran);
	CHECK(R.nested_rounds <= 1, "the nested loop found them in its first round (%d rounds)",
	      R.nested_rounds);
	for (i = 0; i < 4 && i < R.n; i++)
		CHECK(R.order[i] == i, "position %d ran %d", i, R.order[i]);
	/* Nothing runs twice. */
	for (i = 0; i < 3; i++)
		bc_loop_run_once(R.loop, 0);
	CHECK(R.n == 4, "nothing ran twice (n=%d)", R.n);
}

int main(void)
{
	R.loop = NULL;
	if (bc_loop_new(&R.loop, 16) < 0) {
		fprintf(stderr, "cannot create a loop (io_uring)\n");
		return 77;
	}
	test_order_and_rounds();
	test_cancel();
	test_cancel_in_round();
	test_nested();
	bc_loop_free(R.loop);
	return t_finish("deferred completions: order, rounds, cancel, nested loop");
}
