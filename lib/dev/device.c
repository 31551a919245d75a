/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include <sys/stat.h>

#include "core/why.h"
#include "dev/device.h"
#include "dev/mem.h"
#include "dev/pmem.h"

/* A registry holds the drivers a host added (tests: recording and
 * fault-injecting devices); they are tried first, then the built-in ones:
 * nbd:// URIs, rbd: images (when built with librbd), pmem: and mem: files, and the file driver that takes every
 * other path. */
#define MAX_EXTRA 8
struct bc_dev_registry {
	const struct bc_dev_ops *extra[MAX_EXTRA];
	void *arg[MAX_EXTRA];
	unsigned nextra;
};

static const struct bc_dev_ops *const builtin[] = {
	&bc_dev_nbd_ops,
#ifdef BC_HAVE_RBD
	&bc_dev_rbd_ops,
#endif
	&bc_dev_pmem_ops,
	&bc_dev_mem_ops,
	&bc_dev_file_ops,
};

int bc_dev_registry_new(struct bc_dev_registry **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void bc_dev_registry_free(struct bc_dev_registry *reg)
{
	free(reg);
}

int bc_dev_registry_add(struct bc_dev_registry *reg, const struct bc_dev_ops *ops, void *arg)
{
	unsigned i;

	if (!ops->match)
		return -EINVAL;
	for (i = 0; i < reg->nextra; i++)
		if (reg->extra[i] == ops)
			return 0;
	if (reg->nextra == MAX_EXTRA)
		return -ENOSPC;
	reg->arg[reg->nextra] = arg;
	reg->extra[reg->nextra++] = ops;
	return 0;
}

static const struct bc_dev_ops *find_driver(const struct bc_dev_registry *reg, const char *path,
					    void **arg)
{
	size_t i;

	*arg = NULL;
	for (i = 0; reg && i < reg->nextra; i++)
		if (reg->extra[i]->match(path)) {
			*arg = reg->arg[i];
			return reg->extra[i];
		}
	for (i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
		if (!builtin[i]->match || builtin[i]->match(path))
			return builtin[i];
	return NULL;
}

void *bc_alloc_aligned(size_t len)
{
	void *p = NULL;

	if (posix_memalign(&p, BC_ALIGN, len ? len : BC_ALIGN))
		return NULL;
	return p;
}

int bc_dev_open_ops(struct bc_dev **out, const struct bc_dev_ops *ops, void *arg,
		    struct bc_loop *loop, const char *path, unsigned flags)
{
	struct bc_dev *dev;
	int ret;

	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->ops = ops;
	dev->loop = loop;
	dev->fd = -1;
	dev->drv = arg;
	dev->path = strdup(path);
	if (!dev->path) {
		ret = -ENOMEM;
		goto err_free;
	}
	ret = ops->open(dev, path, flags);
	if (ret < 0)
		goto err_path;
	*out = dev;
	return 0;
err_path:
	free(dev->path);
err_free:
	free(dev);
	return ret;
}

int bc_dev_open(struct bc_dev **out, const struct bc_dev_registry *reg, struct bc_loop *loop,
		const char *path, unsigned flags)
{
	void *arg;
	const struct bc_dev_ops *ops = find_driver(reg, path, &arg);

	if (!ops)
		return -ENODEV;
	return bc_dev_open_ops(out, ops, arg, loop, path, flags);
}

int bc_dev_open_as(struct bc_dev **out, const struct bc_dev_registry *reg, struct bc_loop *loop,
		   const char *what, const char *path, unsigned flags, char *why, size_t whylen)
{
	int ret = bc_dev_open(out, reg, loop, path, flags);

	if (ret < 0)
		bc_why(why, whylen, "cannot open %s %s: %s", what, path,
		       ret == -EBUSY ? "it is in use by another process (another blkcache?)" :
		       strerror(-ret));
	return ret;
}

void bc_dev_close(struct bc_dev *dev)
{
	if (!dev)
		return;
	dev->ops->close(dev);
	free(dev->path);
	free(dev);
}

/* A server killed a moment ago may still hold its lock: its io_uring is
 * torn down after the process is gone, and IO it had in flight keeps the
 * file open until then.  So a lock held by someone else is waited for a
 * little (up to LOCK_WAIT_TRIES x 10 ms) before the device is called busy. */
#define LOCK_WAIT_TRIES 300

int bc_dev_lock_stat(int fd, unsigned flags, struct stat *st)
{
	int op = ((flags & BC_DEV_RDONLY) ? LOCK_SH : LOCK_EX) | LOCK_NB, tries = 0;

	if (!(flags & BC_DEV_SHARED)) {
		while (flock(fd, op) < 0) {
			if (errno != EWOULDBLOCK)
				return -errno;
			if (++tries > LOCK_WAIT_TRIES)
				return -EBUSY;
			usleep(10000);
		}
	}
	return fstat(fd, st) < 0 ? -errno : 0;
}

int bc_dev_io_check(const struct bc_dev *dev, const struct bc_dev_io *io, bool rdonly)
{
	if (io->op != BC_DIO_FLUSH && (io->offset > dev->size || io->len > dev->size - io->offset))
		return -EINVAL;
	if (rdonly && io->op != BC_DIO_READ)
		return -EROFS;
	return 0;
}

void bc_dev_mem_submit(struct bc_dev *dev, struct bc_dev_io *io, char *base, bool rdonly,
		       const struct bc_dev_memops *ops, void *ctx)
{
	const struct iovec *iov = io->iov ? io->iov : &io->iov1;
	unsigned cnt = io->iov ? io->iovcnt : 1, i;
	char *at = base + io->offset;
	int ret = bc_dev_io_check(dev, io, rdonly);

	if (ret < 0) {
		bc_dev_io_complete(io, ret);
		return;
	}
	switch (io->op) {
	case BC_DIO_READ:
	case BC_DIO_WRITE:
		for (i = 0; i < cnt; i++) {
			if (io->op == BC_DIO_READ)
				memcpy(iov[i].iov_base, at, iov[i].iov_len);
			else
				ops->store(ctx, at, iov[i].iov_base, iov[i].iov_len);
			at += iov[i].iov_len;
		}
		break;
	case BC_DIO_DISCARD:
	case BC_DIO_ZERO:
		ops->zero(ctx, at, io->len);
		break;
	case BC_DIO_FLUSH:
		if (ops->flush && ops->flush(ctx, dev, io) > 0)
			return;
		break;
	default:
		ret = -EINVAL;
		break;
	}
	bc_dev_io_complete(io, ret);
}

int bc_dev_identity(const struct bc_dev *dev, char *buf, size_t len)
{
	if (!dev->ops->identity)
		return -ENOTSUP;
	return dev->ops->identity(dev, buf, len);
}

const struct bc_pmem_map *bc_dev_pmem_map(const struct bc_dev *dev)
{
	return dev && dev->ops->pmem_map ? dev->ops->pmem_map(dev) : NULL;
}

const char *bc_dev_describe(const struct bc_dev *dev)
{
	return dev && dev->ops->describe ? dev->ops->describe(dev) : NULL;
}

unsigned bc_dev_qstats_bucket(uint32_t inflight)
{
	/* The smallest b with inflight <= 2^b, at most the last bucket. */
	unsigned b = inflight <= 1 ? 0 : 32 - (unsigned)__builtin_clz(inflight - 1);

	return b < BC_DEV_QD_BUCKETS - 1 ? b : BC_DEV_QD_BUCKETS - 1;
}

void bc_dev_qstats_bounds(unsigned b, uint32_t *lo, uint32_t *hi)
{
	*lo = b ? (1u << (b - 1)) + 1 : 1;
	*hi = b < BC_DEV_QD_BUCKETS - 1 ? 1u << b : 0;
}

/* Every driver's completion passes here (bc_dev_submit put it in front of
 * the submitter's callback): the IO leaves the device's queue. */
static void io_done_counted(struct bc_dev_io *io, int res)
{
	io->dev->q.inflight--;
	io->done = io->user_done;
	io->done(io, res);
}

void bc_dev_submit(struct bc_dev *dev, struct bc_dev_io *io)
{
	struct bc_dev_qstats *q = &dev->q;

	q->inflight++;
	if (q->inflight > q->max_inflight)
		q->max_inflight = q->inflight;
	q->submitted++;
	q->inflight_sum += q->inflight;
	q->hist[bc_dev_qstats_bucket(q->inflight)]++;
	io->user_done = io->done;
	io->done = io_done_counted;
	io->dev = dev;
	io->done_bytes = 0;
	switch (io->op) {
	case BC_DIO_READ:
		dev->reads++;
		dev->read_bytes += io->len;
		break;
	case BC_DIO_WRITE:
		dev->writes++;
		dev->write_bytes += io->len;
		break;
	case BC_DIO_FLUSH:
		dev->flushes++;
		break;
	default:
		break;
	}
	dev->ops->submit(dev, io);
}

static void io_complete_cb(struct bc_completion *c, int res)
{
	struct bc_dev_io *io = BC_CONTAINER_OF(c, struct bc_dev_io, comp);

	io->done(io, res);
}

void bc_dev_io_complete(struct bc_dev_io *io, int res)
{
	io->comp.fn = io_complete_cb;
	bc_loop_defer(io->dev->loop, &io->comp, res);
}

void bc_dev_io_init(struct bc_dev_io *io, uint8_t op, void *buf, uint64_t len, uint64_t offset,
		    bc_dev_done_fn done, void *priv)
{
	memset(io, 0, sizeof(*io));
	io->op = op;
	io->offset = offset;
	io->len = len;
	io->iov1.iov_base = buf;
	io->iov1.iov_len = len;
	io->done = done;
	io->priv = priv;
}

void bc_dev_io_copy(const struct bc_dev_io *io, void *buf, bool to_iov)
{
	const struct iovec *iov = io->iov ? io->iov : &io->iov1;
	unsigned cnt = io->iov ? io->iovcnt : 1, i;
	char *p = buf;

	for (i = 0; i < cnt; i++) {
		if (to_iov)
			memcpy(iov[i].iov_base, p, iov[i].iov_len);
		else
			memcpy(p, iov[i].iov_base, iov[i].iov_len);
		p += iov[i].iov_len;
	}
}

struct sync_wait {
	bool done;
	int res;
};

static void sync_done(struct bc_dev_io *io, int res)
{
	struct sync_wait *w = io->priv;

	w->res = res;
	w->done = true;
}

int bc_dev_rw_sync(struct bc_dev *dev, uint8_t op, void *buf, uint64_t len, uint64_t offset)
{
	struct sync_wait w = { 0 };
	struct bc_dev_io io;
	int ret;

	bc_dev_io_init(&io, op, buf, len, offset, sync_done, &w);
	bc_dev_submit(dev, &io);
	while (!w.done) {
		ret = bc_loop_run_once(dev->loop, -1);
		if (ret < 0)
			return ret;
	}
	return w.res < 0 ? w.res : 0;
}
