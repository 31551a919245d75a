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
	bool exclusive;   /* this handle took the lock explicitly */
	bool held;        /* counted among this process's handles of @ident */
	char prev[512];
	char ident[128];
};
/* @ident: the image's identity (fsid, pool, image id).  A second handle of
 * the same image in this process (a shard set's origin) is refused
 * (-EBUSY, @why) when the first holds the exclusive lock. */
int bc_rbd_lock_take(rbd_image_t image, struct bc_loop *loop, const char *path,
		     const char *ident, struct bc_rbd_lock *lk, char *why, size_t whylen);
/* Closing a handle that bc_rbd_lock_take counted. */
void bc_rbd_lock_put(struct bc_rbd_lock *lk);
/* Closing without having written anything (an origin refused as the wrong
 * one, a read-only look): put blkcache.owner back as it was. */
void bc_rbd_lock_undo(rbd_image_t image, const struct bc_rbd_lock *lk);

#endif
