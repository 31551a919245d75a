/* SPDX-License-Identifier: BSD-3-Clause */
/* Library-internal access to the loop's io_uring. */
#ifndef BC_LOOP_INTERNAL_H
#define BC_LOOP_INTERNAL_H

#include <liburing.h>

#include "blkcache/loop.h"

/* A free SQE (submitting queued ones if the ring is full), or NULL.  The
 * caller must set user_data to a struct bc_completion * (or NULL). */
struct io_uring_sqe *bc_loop_sqe(struct bc_loop *loop);

#endif
