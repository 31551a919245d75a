/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Driver for persistent memory: "pmem:PATH", a file on a DAX filesystem or
 * a device-DAX character device, mapped with libpmem2.  IO is a memory copy
 * done at submit and completed from the loop; what makes it durable depends
 * on the mapping libpmem2 got:
 *  - byte or cache-line granularity (DAX, MAP_SYNC; byte: eADR): writes are
 *    non-temporal stores (they bypass the CPU caches) without a fence; a
 *    FLUSH is the fence (drain);
 *  - page granularity (not DAX: a plain file, tmpfs): writes are plain
 *    stores and a FLUSH writes the mapping's dirty pages back (an fsync of
 *    the file through the loop).  For tests, not for durability at memory
 *    speed: open says so.
 * The mapping is also what a caller may use directly (bc_dev_pmem_map):
 * a write whose buffer is the mapping at its own offset was stored in place
 * and is only flushed from the CPU caches (no copy).
 */
#include <errno.h>
#include <fcntl.h>
#include <libpmem2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blkcache/log.h"
#include "core/loop_internal.h"
#include "dev/device.h"
#include "dev/pmem.h"

#define PMEM_PREFIX "pmem:"

struct pmem_dev {
	struct pmem2_source *src;
	struct pmem2_map *map;
	struct bc_pmem_map pub;
	bool rdonly;
	char desc[160];
};

static bool pmem_match(const char *path)
{
	return strncmp(path, PMEM_PREFIX, strlen(PMEM_PREFIX)) == 0;
}

static const char *gran_name(enum pmem2_granularity g)
{
	switch (g) {
	case PMEM2_GRANULARITY_BYTE:
		return "byte";
	case PMEM2_GRANULARITY_CACHE_LINE:
		return "cache-line";
	default:
		return "page";
	}
}

/* Map @fd; 0 or -errno (@why says what libpmem2 refused). */
static int pmem_map(struct pmem_dev *p, int fd, bool rdonly, char *why, size_t whylen)
{
	struct pmem2_config *cfg = NULL;
	int ret;

	ret = pmem2_source_from_fd(&p->src, fd);
	if (!ret)
		ret = pmem2_config_new(&cfg);
	if (!ret)
		ret = pmem2_config_set_required_store_granularity(cfg, PMEM2_GRANULARITY_PAGE);
	if (!ret && rdonly)
		ret = pmem2_config_set_protection(cfg, PMEM2_PROT_READ);
	if (!ret)
		ret = pmem2_map_new(&p->map, cfg, p->src);
	if (ret) {
		snprintf(why, whylen, "%s", pmem2_errormsg());
		/* A system error is -errno; libpmem2's own codes are below -100000. */
		if (ret <= -100000 || ret >= 0)
			ret = -EINVAL;
	}
	pmem2_config_delete(&cfg);
	return ret;
}

static int pmem_open(struct bc_dev *dev, const char *path, unsigned flags)
{
	const char *file = path + strlen(PMEM_PREFIX);
	struct pmem_dev *p;
	struct stat st;
	char why[256] = "";
	int fd, ret;

	bool rdonly = flags & BC_DEV_RDONLY;

	fd = open(file, (rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = bc_dev_lock_stat(fd, flags, &st);
	if (ret < 0)
		goto err_close;
	if (S_ISBLK(st.st_mode)) {
		bc_loop_log(dev->loop, BC_LOG_ERR, "%s: a block device cannot be mapped as persistent "
			    "memory: make a DAX filesystem on it (mkfs.ext4; mount -o dax) and use a "
			    "file there, or use the device without 'pmem:'", file);
		ret = -ENOTSUP;
		goto err_close;
	}
	if (S_ISREG(st.st_mode) && st.st_size == 0) {
		bc_loop_log(dev->loop, BC_LOG_ERR, "%s: the file is empty; a pmem cache file needs its size "
			    "first (truncate -s SIZE, or fallocate)", file);
		ret = -EINVAL;
		goto err_close;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		ret = -ENOMEM;
		goto err_close;
	}
	p->rdonly = rdonly;
	ret = pmem_map(p, fd, rdonly, why, sizeof(why));
	if (ret < 0) {
		bc_loop_log(dev->loop, BC_LOG_ERR, "%s: cannot map it as persistent memory: %s", file,
			    why);
		pmem2_source_delete(&p->src);
		free(p);
		goto err_close;
	}
	p->pub.base = pmem2_map_get_address(p->map);
	p->pub.size = pmem2_map_get_size(p->map);
	p->pub.memcpy_fn = pmem2_get_memcpy_fn(p->map);
	p->pub.memset_fn = pmem2_get_memset_fn(p->map);
	p->pub.persist_fn = pmem2_get_persist_fn(p->map);
	p->pub.drain_fn = pmem2_get_drain_fn(p->map);
	p->pub.flush_fn = pmem2_get_flush_fn(p->map);
	p->pub.page = pmem2_map_get_store_granularity(p->map) == PMEM2_GRANULARITY_PAGE;
	if (p->pub.page)
		snprintf(p->desc, sizeof(p->desc), "pmem, page granularity (not DAX: flushed with "
			 "fsync; for testing, not durability at memory speed)");
	else
		snprintf(p->desc, sizeof(p->desc), "pmem, %s granularity (DAX, MAP_SYNC: CPU cache "
			 "flushes)", gran_name(pmem2_map_get_store_granularity(p->map)));
	if (!p->pub.page && !rdonly && S_ISREG(st.st_mode) &&
	    (uint64_t)st.st_blocks * 512 < (uint64_t)st.st_size)
		bc_loop_log(dev->loop, BC_LOG_WARN, "%s is sparse (%llu of %llu bytes allocated): on "
			    "a DAX mapping every first store to an unallocated page waits for the "
			    "filesystem to allocate it and commit its journal; write the file once "
			    "(dd if=/dev/zero of=FILE bs=1M count=N) before use", file,
			    (unsigned long long)st.st_blocks * 512, (unsigned long long)st.st_size);
	if (p->pub.page && !rdonly)
		bc_loop_log(dev->loop, BC_LOG_WARN, "%s is not DAX-mapped persistent memory: every "
			    "FLUSH writes pages back with fsync. A pmem cache on a non-DAX file is for "
			    "testing, not for durability at memory speed", file);
	dev->drv = p;
	dev->fd = fd;
	dev->size = p->pub.size;
	dev->lbs = 512;
	return 0;
err_close:
	close(fd);
	return ret;
}

static void pmem_close(struct bc_dev *dev)
{
	struct pmem_dev *p = dev->drv;

	if (p) {
		pmem2_map_delete(&p->map);
		pmem2_source_delete(&p->src);
		free(p);
		dev->drv = NULL;
	}
	if (dev->fd >= 0)
		close(dev->fd);
	dev->fd = -1;
}

/* Non-temporal stores without a fence on DAX (the FLUSH fences); plain
 * stores on a page-granularity mapping (the FLUSH writes pages back). */
static unsigned store_flags(const struct pmem_dev *p)
{
	return p->pub.page ? PMEM2_F_MEM_NOFLUSH : PMEM2_F_MEM_NONTEMPORAL | PMEM2_F_MEM_NODRAIN;
}

static void pmem_store(void *ctx, void *dst, const void *src, size_t len)
{
	struct pmem_dev *p = ctx;

	if (dst != src)
		p->pub.memcpy_fn(dst, src, len, store_flags(p));
	else if (!p->pub.page)
		p->pub.flush_fn(dst, len); /* stored in place: flush the lines */
}

static void pmem_zero(void *ctx, void *dst, size_t len)
{
	struct pmem_dev *p = ctx;

	p->pub.memset_fn(dst, 0, len, store_flags(p));
}

static void fsync_done(struct bc_completion *c, int res)
{
	struct bc_dev_io *io = BC_CONTAINER_OF(c, struct bc_dev_io, comp);

	io->done(io, res < 0 ? res : 0);
}

/* Page granularity: the file's dirty pages (the mapping's) written back. */
static void pmem_fsync(struct bc_dev *dev, struct bc_dev_io *io)
{
	struct io_uring_sqe *sqe = bc_loop_sqe(dev->loop);

	if (!sqe) {
		bc_dev_io_complete(io, fdatasync(dev->fd) < 0 ? -errno : 0);
		return;
	}
	io->comp.fn = fsync_done;
	io_uring_prep_fsync(sqe, dev->fd, IORING_FSYNC_DATASYNC);
	io_uring_sqe_set_data(sqe, &io->comp);
}

static int pmem_flush(void *ctx, struct bc_dev *dev, struct bc_dev_io *io)
{
	struct pmem_dev *p = ctx;

	if (p->pub.page) {
		pmem_fsync(dev, io);
		return 1;
	}
	p->pub.drain_fn();
	return 0;
}

static const struct bc_dev_memops pmem_memops = {
	.store = pmem_store,
	.zero = pmem_zero,
	.flush = pmem_flush,
};

static void pmem_submit(struct bc_dev *dev, struct bc_dev_io *io)
{
	struct pmem_dev *p = dev->drv;

	bc_dev_mem_submit(dev, io, p->pub.base, p->rdonly, &pmem_memops, p);
}

static const char *pmem_describe(const struct bc_dev *dev)
{
	const struct pmem_dev *p = dev->drv;

	return p ? p->desc : NULL;
}

static const struct bc_pmem_map *pmem_map_of(const struct bc_dev *dev)
{
	const struct pmem_dev *p = dev->drv;

	return p ? &p->pub : NULL;
}

const struct bc_dev_ops bc_dev_pmem_ops = {
	.name = "pmem",
	.match = pmem_match,
	.open = pmem_open,
	.close = pmem_close,
	.submit = pmem_submit,
	.describe = pmem_describe,
	.pmem_map = pmem_map_of,
};
