/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Cross-thread messages between loops (bc_loop_post): the message goes on
 * the receiving loop's inbox, a lock-free stack (loop.c), which the loop
 * takes whole every round.  A receiver that is running a round, or polls
 * (bc_loop_set_polling), finds it without any system call; one that may
 * be blocked or away is woken through an eventfd its ring polls -- at most
 * once per round of it.
 */
#include <errno.h>
#include <stdint.h>

#include "core/loop_internal.h"

int bc_loop_post(struct bc_loop *from, struct bc_loop *to, struct bc_msg *m, int res)
{
	if (!from || !to || !m || !m->c.fn)
		return -EINVAL;
	m->from = from;
	m->to = to;
	m->res = res;
	if (bc_loop_inbox_push(to, m))
		bc_loop_wake(to);
	return 0;
}
