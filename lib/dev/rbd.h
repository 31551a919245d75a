/* SPDX-License-Identifier: BSD-3-Clause */
/* The rbd: driver's parts (dev_rbd.c, rbd_lock.c). */
#ifndef BC_DEV_RBD_H
#define BC_DEV_RBD_H

#include <stdbool.h>
#include <stddef.h>

#include <rbd/librbd.h>

#include "blkcache/loop.h"

/*
 * Take the image's exclusive lock for this process (images with the
 * exclusive-lock feature; others: nothing to do), first breaking a lock that
 * a dead blkcache on this host left behind -- recorded in the image's
 * metadata (blkcache.owner: host, pid, process start time, lock owner) --
 * so that a restart after kill -9 need not wait for the dead client's watch
 * to time out.  A lock held by a live client, or by one of another host,
 * is never broken: acquiring then waits for librbd (bounded by the
 * cluster's timeouts).  0, or -errno with @why.
 */
struct bc_rbd_lock {
	bool recorded;    /* this open wrote blkcache.owner */
	bool had_prev;    /* ... over this earlier value */
	char prev[512];
};
int bc_rbd_lock_take(rbd_image_t image, struct bc_loop *loop, const char *path,
		     struct bc_rbd_lock *lk, char *why, size_t whylen);
/* Closing without having written anything (an origin refused as the wrong
 * one, a read-only look): put blkcache.owner back as it was. */
void bc_rbd_lock_undo(rbd_image_t image, const struct bc_rbd_lock *lk);

#endif
