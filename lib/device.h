/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Devices: one ops table, several drivers (file/block device via io_uring,
 * nbd:// via libnbd; pmem later).  IO is asynchronous and completes on the loop.
 */
#ifndef BC_DEVICE_H
#define BC_DEVICE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "blkcache/loop.h"

enum bc_dev_op {
	BC_DIO_READ = 0,
	BC_DIO_WRITE = 1,
	BC_DIO_FLUSH = 2,
	BC_DIO_DISCARD = 3, /* deallocate; reads back zeroes */
	BC_DIO_ZERO = 4,    /* write zeroes (may allocate) */
};

struct bc_dev_io;
typedef void (*bc_dev_done_fn)(struct bc_dev_io *io, int res);

/* One device IO.  READ/WRITE use iov/iovcnt (or the inline iov1 when iov is
 * NULL); @done gets the full byte count (or 0) on success, -errno on
 * failure.  Short transfers are completed by the driver. */
struct bc_dev_io {
	struct bc_completion comp; /* driver-private */
	uint8_t op;
	uint64_t offset;
	uint64_t len;
	struct iovec *iov;
	unsigned iovcnt;
	struct iovec iov1;
	bc_dev_done_fn done;
	void *priv;
	/* driver-private progress */
	uint64_t done_bytes;
	struct bc_dev *dev;
	void *drv_state;
	int priv2_zero;
};

#define BC_DEV_RDONLY (1u << 0)
#define BC_ALIGN      4096u

struct bc_dev;

struct bc_dev_ops {
	const char *name;
	bool (*match)(const char *path);
	int (*open)(struct bc_dev *dev, const char *path, unsigned flags);
	void (*close)(struct bc_dev *dev);
	void (*submit)(struct bc_dev *dev, struct bc_dev_io *io);
};

struct bc_dev {
	const struct bc_dev_ops *ops;
	struct bc_loop *loop;
	char *path;
	uint64_t size;      /* bytes */
	uint32_t lbs;       /* logical block size */
	bool is_bdev;
	bool direct;        /* O_DIRECT in use */
	int fd;
	void *drv;          /* driver-private */
	uint64_t reads, writes, flushes, read_bytes, write_bytes; /* counters */
};

extern const struct bc_dev_ops bc_dev_file_ops;
extern const struct bc_dev_ops bc_dev_nbd_ops; /* nbd:// and nbd+unix:// URIs */

/* Add a driver whose match() claims some paths (e.g. "rec:NAME"); tried
 * before the built-in ones.  0 or -EINVAL (no match function, table full). */
int bc_dev_register(const struct bc_dev_ops *ops);

int bc_dev_open(struct bc_dev **out, struct bc_loop *loop, const char *path, unsigned flags);
void bc_dev_close(struct bc_dev *dev);
void bc_dev_submit(struct bc_dev *dev, struct bc_dev_io *io);

/* Convenience: a single-buffer IO. */
void bc_dev_io_init(struct bc_dev_io *io, uint8_t op, void *buf, uint64_t len, uint64_t offset,
		    bc_dev_done_fn done, void *priv);

/* Gather @io's iovecs into the flat @buf (to_iov false) or scatter @buf
 * into them (to_iov true): for drivers that bounce a request. */
void bc_dev_io_copy(const struct bc_dev_io *io, void *buf, bool to_iov);

/* Synchronous IO for start-up, format and tools: submits and runs the loop
 * until the IO completes.  Never used on the request path. */
int bc_dev_rw_sync(struct bc_dev *dev, uint8_t op, void *buf, uint64_t len, uint64_t offset);

/* Aligned allocation helper (4 KiB). */
void *bc_alloc_aligned(size_t len);

#endif
