/* SPDX-License-Identifier: BSD-3-Clause */
/* Library-internal access to the loop's io_uring. */
#ifndef BC_LOOP_INTERNAL_H
#define BC_LOOP_INTERNAL_H

#include <liburing.h>

#include "blkcache/loop.h"

/* bc_loop_sqe() and bc_loop_submit() are public (blkcache/loop.h). */

/* The loop's io_uring file descriptor. */
int bc_loop_ring_fd(const struct bc_loop *loop);

/* msg.c: put @m in @to's inbox (any thread); true if @to must then be
 * woken (bc_loop_wake: it may be blocked, or not running at all). */
bool bc_loop_inbox_push(struct bc_loop *to, struct bc_msg *m);
void bc_loop_wake(struct bc_loop *to);

#endif
