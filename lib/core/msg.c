/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Cross-thread messages between loops (bc_loop_post): an io_uring MSG_RING
 * from the sender's ring posts a CQE whose user_data is the message's
 * completion on the receiver's ring.  The sender's SQE asks for no CQE on
 * success; a refused send (the receiver's completion queue is full) comes
 * back to the sender, which tries again from its loop.
 */
#include <errno.h>
#include <stdint.h>

#include "core/loop_internal.h"

static void msg_refused(struct bc_completion *c, int res);
static void msg_retry(struct bc_completion *c, int res);

static int msg_send(struct bc_msg *m)
{
	struct io_uring_sqe *sqe = bc_loop_sqe(m->from);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_msg_ring(sqe, bc_loop_ring_fd(m->to), (unsigned int)m->res,
			       (uint64_t)(uintptr_t)&m->c, 0);
	io_uring_sqe_set_data(sqe, &m->sent);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	return 0;
}

static void msg_refused(struct bc_completion *c, int res)
{
	struct bc_msg *m = BC_CONTAINER_OF(c, struct bc_msg, sent);

	if (res >= 0)
		return; /* delivered (a kernel that reports success anyway) */
	bc_loop_defer(m->from, &m->retry, 0);
}

/* Send @m now, or in the sender's next round if its ring is full. */
static void msg_go(struct bc_msg *m)
{
	if (msg_send(m) < 0)
		bc_loop_defer(m->from, &m->retry, 0);
}

static void msg_retry(struct bc_completion *c, int res)
{
	(void)res;
	msg_go(BC_CONTAINER_OF(c, struct bc_msg, retry));
}

int bc_loop_post(struct bc_loop *from, struct bc_loop *to, struct bc_msg *m, int res)
{
	if (!from || !to || !m || !m->c.fn)
		return -EINVAL;
	m->from = from;
	m->to = to;
	m->res = res;
	m->sent.fn = msg_refused;
	m->retry.fn = msg_retry;
	msg_go(m);
	return 0;
}
