/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"

/* Drivers registered at run time (tests: recording and fault-injecting
 * devices) are tried first; the file driver matches everything else. */
#define MAX_EXTRA 8
static const struct bc_dev_ops *extra[MAX_EXTRA];
static unsigned nextra;

static const struct bc_dev_ops *const drivers[] = {
	&bc_dev_nbd_ops,
	&bc_dev_file_ops,
};

int bc_dev_register(const struct bc_dev_ops *ops)
{
	unsigned i;

	for (i = 0; i < nextra; i++)
		if (extra[i] == ops)
			return 0;
	if (nextra == MAX_EXTRA || !ops->match)
		return -EINVAL;
	extra[nextra++] = ops;
	return 0;
}

void *bc_alloc_aligned(size_t len)
{
	void *p = NULL;

	if (posix_memalign(&p, BC_ALIGN, len ? len : BC_ALIGN))
		return NULL;
	return p;
}

int bc_dev_open(struct bc_dev **out, struct bc_loop *loop, const char *path, unsigned flags)
{
	const struct bc_dev_ops *ops = NULL;
	struct bc_dev *dev;
	size_t i;
	int ret;

	for (i = 0; i < nextra && !ops; i++)
		if (extra[i]->match(path))
			ops = extra[i];
	for (i = 0; i < sizeof(drivers) / sizeof(drivers[0]) && !ops; i++) {
		if (!drivers[i]->match || drivers[i]->match(path)) {
			ops = drivers[i];
			break;
		}
	}
	if (!ops)
		return -ENODEV;
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->ops = ops;
	dev->loop = loop;
	dev->fd = -1;
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

void bc_dev_close(struct bc_dev *dev)
{
	if (!dev)
		return;
	dev->ops->close(dev);
	free(dev->path);
	free(dev);
}

void bc_dev_submit(struct bc_dev *dev, struct bc_dev_io *io)
{
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
