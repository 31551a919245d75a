/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Devices: one ops table, several drivers (files and block devices through
 * io_uring, nbd:// through libnbd; a host adds its own).  IO is asynchronous
 * and completes on the loop.
 *
 * A driver fills a `const struct bc_dev_ops` with designated initializers.
 * open() sets dev->size and dev->lbs (and may keep private state in
 * dev->drv); submit() starts @io and, later, from the loop — never from
 * inside submit() itself — calls bc_dev_io_complete(io, res) (or io->done).
 * A host hands its devices to the engine with bc_engine_open_devs(), or adds
 * drivers to a registry that bc_engine_open()/bc_cache_format() consult by
 * path.
 *
 * Identity: format records which origin a cache belongs to, and open checks
 * it.  For a file or block device that is its inode, serial and partition
 * ids; for any other driver it is the path the device was opened under, so
 * open it under the same path every time (or set origin_moved in the engine
 * config when it really is the same device under a new name).  Signatures
 * (a filesystem on a device about to be formatted) are probed only on files
 * and block devices.
 */
#ifndef BLKCACHE_DEVICE_H
#define BLKCACHE_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
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

struct bc_dev;
struct bc_dev_io;
typedef void (*bc_dev_done_fn)(struct bc_dev_io *io, int res);

/* One device IO.  READ/WRITE use iov/iovcnt (or the inline iov1 when iov is
 * NULL); @done gets the full byte count (or 0) on success, -errno on
 * failure.  Short transfers are completed by the driver. */
struct bc_dev_io {
	struct bc_completion comp; /* driver-private (bc_dev_io_complete uses it) */
	uint8_t op;                /* enum bc_dev_op */
	uint64_t offset;
	uint64_t len;
	struct iovec *iov;
	unsigned iovcnt;
	struct iovec iov1;
	bc_dev_done_fn done;
	void *priv;                /* the submitter's */
	bc_dev_done_fn user_done;  /* bc_dev_submit's: @done while the IO is in flight */
	/* driver-private progress */
	uint64_t done_bytes;
	struct bc_dev *dev;
	void *drv_state;
	int drv_flags;
};

#define BC_DEV_RDONLY (1u << 0)
#define BC_DEV_SHARED (1u << 1) /* this process has it open already (the origin of a shard
				 * set): no lock of its own (the first handle holds it) */
#define BC_ALIGN      4096u     /* buffers the engine submits are aligned to this */

/*
 * Persistent memory a driver exposes (its pmem_map op): the engine's log
 * then stores into it directly -- every store through memcpy_fn/memset_fn
 * (flags: libpmem2's PMEM2_F_MEM_*; the log passes NONTEMPORAL|NODRAIN, or
 * NOFLUSH when @page) -- and submits a WRITE whose buffer is the mapping at
 * the write's own offset to have the range flushed from the CPU caches,
 * and a FLUSH to fence (drain).  The libpmem2 driver ("pmem:") fills it
 * from its mapping; a test driver may record every store.
 */
struct bc_pmem_map {
	void *base;    /* the device's byte 0 */
	size_t size;
	bool page;     /* page granularity (not DAX): persisting writes pages back */
	void *(*memcpy_fn)(void *dst, const void *src, size_t len, unsigned flags);
	void *(*memset_fn)(void *dst, int c, size_t len, unsigned flags);
	void (*persist_fn)(const void *p, size_t len);
	void (*flush_fn)(const void *p, size_t len);
	void (*drain_fn)(void);
};

struct bc_dev_ops {
	const char *name;
	/* Does this driver claim @path (e.g. "ram:NAME")?  Used by registries. */
	bool (*match)(const char *path);
	/* Open: set dev->size (bytes) and dev->lbs; 0 or -errno. */
	int (*open)(struct bc_dev *dev, const char *path, unsigned flags);
	void (*close)(struct bc_dev *dev);
	void (*submit)(struct bc_dev *dev, struct bc_dev_io *io);
	/* Optional: how the device persists data, for status ("pmem, cache-line
	 * granularity (DAX, MAP_SYNC...)"); NULL: nothing to say. */
	const char *(*describe)(const struct bc_dev *dev);
	/* Optional: the device is persistent memory mapped here (see above). */
	const struct bc_pmem_map *(*pmem_map)(const struct bc_dev *dev);
	/* Optional: a stable name of what the path opens (a network volume's
	 * cluster and volume ids), recorded by format with the origin and
	 * compared at open, so that the path may change and another volume
	 * under the old path is refused.  0 or -errno. */
	int (*identity)(const struct bc_dev *dev, char *buf, size_t len);
	void (*reserved[1])(void);  /* room for later operations: leave NULL */
};

/*
 * How deep a device's queue is kept: every IO counts from bc_dev_submit()
 * until its completion callback runs.  @inflight_sum / @submitted is the
 * average number in flight as seen by each new IO (itself included), and
 * @hist its distribution in power-of-two buckets: 1, 2, 3-4, 5-8, ...,
 * >= 257 (bc_dev_qstats_bucket()).
 */
#define BC_DEV_QD_BUCKETS 10
struct bc_dev_qstats {
	uint32_t inflight;     /* now */
	uint32_t max_inflight;
	uint64_t submitted;
	uint64_t inflight_sum;
	uint64_t hist[BC_DEV_QD_BUCKETS];
};
/* The bucket of @hist that counts @inflight (>= 1) IOs. */
unsigned bc_dev_qstats_bucket(uint32_t inflight);
/* The bounds of bucket @b: *lo and *hi (hi 0: no upper bound). */
void bc_dev_qstats_bounds(unsigned b, uint32_t *lo, uint32_t *hi);

struct bc_dev {
	const struct bc_dev_ops *ops;
	struct bc_loop *loop;
	char *path;
	uint64_t size;      /* bytes */
	uint32_t lbs;       /* logical block size */
	bool is_bdev;
	bool direct;        /* O_DIRECT in use */
	int fd;             /* -1 if the device has none */
	void *drv;          /* driver-private (bc_dev_open_ops: the host's @arg) */
	uint64_t reads, writes, flushes, read_bytes, write_bytes; /* counters */
	struct bc_dev_qstats q;
};

/* Drivers chosen by path.  NULL wherever a registry is taken means the
 * built-in drivers only (nbd:// URIs, then files and block devices). */
struct bc_dev_registry;
int bc_dev_registry_new(struct bc_dev_registry **out);
void bc_dev_registry_free(struct bc_dev_registry *reg);
/* Add a driver whose match() claims some paths; tried before the built-in
 * ones.  A device it opens starts with dev->drv = @arg (the host's context
 * for the driver).  0, -EINVAL (no match function), -ENOSPC (registry full). */
int bc_dev_registry_add(struct bc_dev_registry *reg, const struct bc_dev_ops *ops, void *arg);

/* Open @path with the first driver of @reg that claims it. */
int bc_dev_open(struct bc_dev **out, const struct bc_dev_registry *reg, struct bc_loop *loop,
		const char *path, unsigned flags);
/* Open with a given driver; dev->drv starts as @arg. */
int bc_dev_open_ops(struct bc_dev **out, const struct bc_dev_ops *ops, void *arg,
		    struct bc_loop *loop, const char *path, unsigned flags);
void bc_dev_close(struct bc_dev *dev);
/* The driver's description of how @dev persists data, or NULL. */
const char *bc_dev_describe(const struct bc_dev *dev);
/* @dev's identity (its driver's identity op): 0, -ENOTSUP (none) or -errno. */
int bc_dev_identity(const struct bc_dev *dev, char *buf, size_t len);
/* @dev's persistent-memory mapping (its driver's pmem_map), or NULL. */
const struct bc_pmem_map *bc_dev_pmem_map(const struct bc_dev *dev);
void bc_dev_submit(struct bc_dev *dev, struct bc_dev_io *io);

/* For drivers: complete @io with @res from the loop (deferred). */
void bc_dev_io_complete(struct bc_dev_io *io, int res);

/* Convenience: a single-buffer IO. */
void bc_dev_io_init(struct bc_dev_io *io, uint8_t op, void *buf, uint64_t len, uint64_t offset,
		    bc_dev_done_fn done, void *priv);

/* Gather @io's iovecs into the flat @buf (to_iov false) or scatter @buf
 * into them (to_iov true): for drivers that bounce a request. */
void bc_dev_io_copy(const struct bc_dev_io *io, void *buf, bool to_iov);

/* Synchronous IO for start-up, format and tools: submits and runs the loop
 * until the IO completes.  Never used on the request path. */
int bc_dev_rw_sync(struct bc_dev *dev, uint8_t op, void *buf, uint64_t len, uint64_t offset);

/* Aligned allocation (BC_ALIGN); free with free(). */
void *bc_alloc_aligned(size_t len);

#endif
