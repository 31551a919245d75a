/* SPDX-License-Identifier: BSD-3-Clause */
/* The built-in device drivers (the device API itself is public:
 * include/blkcache/device.h). */
#ifndef BC_DEV_DEVICE_H
#define BC_DEV_DEVICE_H

#include "blkcache/device.h"

extern const struct bc_dev_ops bc_dev_file_ops;
extern const struct bc_dev_ops bc_dev_nbd_ops; /* nbd:// and nbd+unix:// URIs */
#ifdef BC_HAVE_RBD
extern const struct bc_dev_ops bc_dev_rbd_ops; /* rbd:POOL/IMAGE (librbd) */
#endif

/* bc_dev_open() for the engine and format: on failure @why says
 * "cannot open WHAT PATH: REASON" (a busy device: in use by another blkcache?). */
int bc_dev_open_as(struct bc_dev **out, const struct bc_dev_registry *reg, struct bc_loop *loop,
		   const char *what, const char *path, unsigned flags, char *why, size_t whylen);

/* For drivers: may @io run on @dev?  0, -EINVAL (past the end) or -EROFS
 * (a write on a device opened read-only: @rdonly). */
int bc_dev_io_check(const struct bc_dev *dev, const struct bc_dev_io *io, bool rdonly);

/* Drivers whose device is memory (pmem:, mem:): how to store into it. */
struct bc_dev_memops {
	/* Store @len bytes of @src at @dst (src == dst: stored in place already). */
	void (*store)(void *ctx, void *dst, const void *src, size_t len);
	void (*zero)(void *ctx, void *dst, size_t len);
	/* FLUSH: 0 done (or NULL: nothing to do), 1 when it completes @io itself. */
	int (*flush)(void *ctx, struct bc_dev *dev, struct bc_dev_io *io);
};
/* Run @io against the memory at @base (the device's byte 0) and complete it
 * from the loop: reads are copies out, writes go through @ops. */
void bc_dev_mem_submit(struct bc_dev *dev, struct bc_dev_io *io, char *base, bool rdonly,
		       const struct bc_dev_memops *ops, void *ctx);

/* One user at a time (a second blkcache on the same device would replay
 * and rewrite the log under the first; readers share): lock @fd and stat
 * it (@flags: BC_DEV_RDONLY shares the lock, BC_DEV_SHARED takes none).
 * 0, -EBUSY (held by another) or -errno. */
struct stat;
int bc_dev_lock_stat(int fd, unsigned flags, struct stat *st);

#endif
