/* SPDX-License-Identifier: BSD-3-Clause */
/* Library-internal access to the loop's io_uring. */
#ifndef BC_LOOP_INTERNAL_H
#define BC_LOOP_INTERNAL_H

#include <liburing.h>

#include "blkcache/loop.h"

/* bc_loop_sqe() and bc_loop_submit() are public (blkcache/loop.h). */

/* The loop's io_uring file descriptor (a MSG_RING target). */
int bc_loop_ring_fd(const struct bc_loop *loop);

#endif
