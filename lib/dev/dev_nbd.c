/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Driver for NBD exports ("nbd://HOST[:PORT]/NAME", "nbd+unix:///NAME?socket=PATH"):
 * libnbd's asynchronous API on the engine's event loop.  The connection is
 * made at open (start-up); afterwards nothing blocks: commands are queued
 * with nbd_aio_*, the socket is polled through the loop, and libnbd's
 * completion callbacks (which run under libnbd's lock, so they must not
 * call back into libnbd or the engine) only count and defer the IO's
 * completion to the loop.
 *
 * A request larger than the server's maximum becomes several NBD commands;
 * the IO completes when the last one does.  A vectored request goes through
 * one bounce buffer (gathered before a write, scattered after a read), so
 * that writeback's merged runs stay single large NBD writes.  Writes of
 * zeroes use NBD_CMD_WRITE_ZEROES when the server has it (DISCARD asks it
 * to punch holes), else plain writes of a zero buffer.  FLUSH is a no-op
 * when the server does not advertise it (then it has no volatile cache to
 * flush, proto.md), which the open logs.
 */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

#include "blkcache/log.h"
#include "dev/device.h"

#define NBD_MAX_REQ   (32u << 20) /* libnbd refuses payloads over 64 MiB */
#define NBD_ZERO_MAX  (1u << 30)
#define ZBUF_SIZE     (1u << 20)

struct nbd_drv {
	struct nbd_handle *h;
	struct bc_loop *loop;
	int fd;
	struct bc_completion pin, pout;  /* POLLIN / POLLOUT waits */
	bool pin_armed, pout_armed;
	bool dead;                       /* connection lost: every IO fails */
	bool closing;                    /* no more polls */
	bool can_flush, can_zero;
	uint64_t max_req;
	void *zbuf;                      /* ZBUF_SIZE zero bytes (no WRITE_ZEROES) */
};

static bool nbd_match(const char *path)
{
	return !strncmp(path, "nbd://", 6) || !strncmp(path, "nbd+unix://", 11) ||
	       !strncmp(path, "nbds://", 7) || !strncmp(path, "nbds+unix://", 12);
}

static void nbd_rearm(struct nbd_drv *d);

static void nbd_mark_dead(struct nbd_drv *d, const char *what)
{
	if (!d->dead)
		bc_loop_log(d->loop, BC_LOG_ERR, "nbd device: %s: %s; its IO fails from now on", what,
		       nbd_get_error() ? nbd_get_error() : "connection lost");
	d->dead = true;
}

/* The socket is ready (or failed) for @dir: let libnbd move on. */
static void nbd_ready(struct nbd_drv *d, unsigned dir, int res)
{
	bool rd = dir == LIBNBD_AIO_DIRECTION_READ;

	if (res == -ECANCELED || !d->h)
		return;
	if (res < 0 || (res & ((rd ? POLLIN : POLLOUT) | POLLHUP | POLLERR))) {
		if ((rd ? nbd_aio_notify_read(d->h) : nbd_aio_notify_write(d->h)) < 0)
			nbd_mark_dead(d, rd ? "reading from the server failed"
					    : "writing to the server failed");
	}
	nbd_rearm(d);
}

static void pin_fn(struct bc_completion *c, int res)
{
	struct nbd_drv *d = BC_CONTAINER_OF(c, struct nbd_drv, pin);

	d->pin_armed = false;
	nbd_ready(d, LIBNBD_AIO_DIRECTION_READ, res);
}

static void pout_fn(struct bc_completion *c, int res)
{
	struct nbd_drv *d = BC_CONTAINER_OF(c, struct nbd_drv, pout);

	d->pout_armed = false;
	nbd_ready(d, LIBNBD_AIO_DIRECTION_WRITE, res);
}

/* Poll for what libnbd wants next (one-shot polls, re-armed after each). */
static void nbd_rearm(struct nbd_drv *d)
{
	unsigned dir;

	if (!d->h || d->dead || d->closing)
		return;
	dir = nbd_aio_get_direction(d->h);
	if ((dir & LIBNBD_AIO_DIRECTION_READ) && !d->pin_armed) {
		d->pin.fn = pin_fn;
		if (bc_loop_poll_add(d->loop, d->fd, POLLIN, &d->pin) == 0)
			d->pin_armed = true;
	}
	if ((dir & LIBNBD_AIO_DIRECTION_WRITE) && !d->pout_armed) {
		d->pout.fn = pout_fn;
		if (bc_loop_poll_add(d->loop, d->fd, POLLOUT, &d->pout) == 0)
			d->pout_armed = true;
	}
}

/*
 * Per-IO progress in the driver-private fields of bc_dev_io:
 * done_bytes counts NBD commands not yet completed, drv_flags holds the
 * first error (as a positive errno).
 */
static void io_finish(struct bc_completion *c, int res)
{
	struct bc_dev_io *io = BC_CONTAINER_OF(c, struct bc_dev_io, comp);
	char *bounce = io->drv_state;

	(void)res;
	if (bounce) {
		if (io->op == BC_DIO_READ && !io->drv_flags)
			bc_dev_io_copy(io, bounce, true);
		free(bounce);
		io->drv_state = NULL;
	}
	io->done(io, io->drv_flags ? -io->drv_flags : 0);
}

static void io_put(struct bc_dev_io *io)
{
	struct nbd_drv *d = io->dev->drv;

	if (--io->done_bytes == 0) {
		io->comp.fn = io_finish;
		bc_loop_defer(d->loop, &io->comp, 0);
	}
}

static int cmd_done(void *user_data, int *error)
{
	struct bc_dev_io *io = user_data;

	if (*error && !io->drv_flags)
		io->drv_flags = *error;
	io_put(io);
	return 1; /* retire automatically */
}

/* Queue one NBD command for @io; on failure record the error. */
static void queue_cmd(struct nbd_drv *d, struct bc_dev_io *io, uint8_t op, void *buf, uint64_t len,
		      uint64_t off, uint32_t flags)
{
	nbd_completion_callback cb = { .callback = cmd_done, .user_data = io, .free = NULL };
	int64_t r = -1;

	io->done_bytes++;
	if (d->dead) {
		errno = ENOTCONN;
	} else {
		switch (op) {
		case BC_DIO_READ: r = nbd_aio_pread(d->h, buf, len, off, cb, 0); break;
		case BC_DIO_WRITE: r = nbd_aio_pwrite(d->h, buf, len, off, cb, flags); break;
		case BC_DIO_FLUSH: r = nbd_aio_flush(d->h, cb, 0); break;
		case BC_DIO_ZERO: r = nbd_aio_zero(d->h, len, off, cb, flags); break;
		}
	}
	if (r < 0) {
		/* Not queued: the callback will not run. */
		int err = nbd_get_errno() ? nbd_get_errno() : (errno ? errno : EIO);

		if (!d->dead)
			bc_loop_log(d->loop, BC_LOG_ERR, "nbd device: queueing a command failed: %s",
			       nbd_get_error() ? nbd_get_error() : strerror(err));
		if (!io->drv_flags)
			io->drv_flags = err;
		io_put(io);
	}
}

static void nbd_submit(struct bc_dev *dev, struct bc_dev_io *io)
{
	struct nbd_drv *d = dev->drv;
	struct iovec *iov = io->iov ? io->iov : &io->iov1;
	unsigned cnt = io->iov ? io->iovcnt : 1, i;
	uint64_t off = io->offset, n;
	struct iovec bounce_iov;

	io->drv_state = NULL;
	io->drv_flags = 0;
	io->done_bytes = 1; /* held until every command is queued */
	if (bc_dev_io_check(dev, io, false) < 0) {
		io->drv_flags = EINVAL;
		io_put(io);
		return;
	}
	switch (io->op) {
	case BC_DIO_READ:
	case BC_DIO_WRITE:
		if (cnt > 1) {
			char *bounce = malloc(io->len ? io->len : 1);

			if (!bounce) {
				io->drv_flags = ENOMEM;
				break;
			}
			io->drv_state = bounce;
			if (io->op == BC_DIO_WRITE)
				bc_dev_io_copy(io, bounce, false);
			bounce_iov.iov_base = bounce;
			bounce_iov.iov_len = io->len;
			iov = &bounce_iov;
			cnt = 1;
		}
		for (i = 0; i < cnt; i++) {
			uint64_t done = 0;

			while (done < iov[i].iov_len) {
				n = iov[i].iov_len - done;
				if (n > d->max_req)
					n = d->max_req;
				queue_cmd(d, io, io->op, (char *)iov[i].iov_base + done, n, off, 0);
				done += n;
				off += n;
			}
		}
		break;
	case BC_DIO_FLUSH:
		if (d->can_flush)
			queue_cmd(d, io, BC_DIO_FLUSH, NULL, 0, 0, 0);
		break;
	case BC_DIO_DISCARD:
	case BC_DIO_ZERO:
		while (off < io->offset + io->len) {
			n = io->offset + io->len - off;
			if (d->can_zero) {
				if (n > NBD_ZERO_MAX)
					n = NBD_ZERO_MAX;
				/* Without NO_HOLE the server may punch: what DISCARD wants. */
				queue_cmd(d, io, BC_DIO_ZERO, NULL, n, off,
					  io->op == BC_DIO_ZERO ? LIBNBD_CMD_FLAG_NO_HOLE : 0);
			} else {
				if (n > ZBUF_SIZE)
					n = ZBUF_SIZE;
				queue_cmd(d, io, BC_DIO_WRITE, d->zbuf, n, off, 0);
			}
			off += n;
		}
		break;
	default:
		io->drv_flags = EOPNOTSUPP;
	}
	io_put(io);
	nbd_rearm(d);
}

static int nbd_open(struct bc_dev *dev, const char *path, unsigned flags)
{
	struct nbd_drv *d = calloc(1, sizeof(*d));
	int64_t size, minbs, maxbs;
	int ret;

	if (!d)
		return -ENOMEM;
	d->loop = dev->loop;
	d->h = nbd_create();
	if (!d->h) {
		ret = -ENOMEM;
		goto err_free;
	}
	if (nbd_connect_uri(d->h, path) < 0) {
		ret = nbd_get_errno() ? -nbd_get_errno() : -ECONNREFUSED;
		bc_loop_log(dev->loop, BC_LOG_ERR, "%s: cannot connect: %s", path, nbd_get_error());
		goto err_close;
	}
	size = nbd_get_size(d->h);
	if (size < 0) {
		ret = -EIO;
		goto err_close;
	}
	if (!(flags & BC_DEV_RDONLY) && nbd_is_read_only(d->h) == 1) {
		bc_loop_log(dev->loop, BC_LOG_ERR, "%s: the NBD export is read-only", path);
		ret = -EROFS;
		goto err_close;
	}
	minbs = nbd_get_block_size(d->h, LIBNBD_SIZE_MINIMUM);
	maxbs = nbd_get_block_size(d->h, LIBNBD_SIZE_MAXIMUM);
	if (minbs > 512) {
		bc_loop_log(dev->loop, BC_LOG_ERR, "%s: minimum block size %lld; blkcache needs 512-byte access", path,
		       (long long)minbs);
		ret = -EINVAL;
		goto err_close;
	}
	d->max_req = maxbs >= 4096 && (uint64_t)maxbs < NBD_MAX_REQ ? (uint64_t)maxbs & ~4095ull
								    : NBD_MAX_REQ;
	d->can_flush = nbd_can_flush(d->h) == 1;
	d->can_zero = nbd_can_zero(d->h) == 1;
	if (!d->can_flush)
		bc_loop_log(dev->loop, BC_LOG_WARN, "%s: the server does not support FLUSH; durability relies on it "
		       "writing through", path);
	if (!d->can_zero) {
		d->zbuf = calloc(1, ZBUF_SIZE);
		if (!d->zbuf) {
			ret = -ENOMEM;
			goto err_close;
		}
	}
	d->fd = nbd_aio_get_fd(d->h);
	if (d->fd < 0) {
		ret = -EIO;
		goto err_close;
	}
	dev->drv = d;
	dev->size = (uint64_t)size;
	dev->lbs = 512;
	dev->is_bdev = false;
	dev->direct = true;
	dev->fd = -1;
	nbd_rearm(d);
	return 0;
err_close:
	nbd_close(d->h);
err_free:
	free(d->zbuf);
	free(d);
	return ret;
}

static void nbd_close_dev(struct bc_dev *dev)
{
	struct nbd_drv *d = dev->drv;
	int i;

	if (!d)
		return;
	/* Withdraw the socket polls before the handle goes away. */
	d->closing = true;
	if (d->pin_armed)
		bc_loop_poll_cancel(d->loop, &d->pin);
	if (d->pout_armed)
		bc_loop_poll_cancel(d->loop, &d->pout);
	for (i = 0; i < 1000 && (d->pin_armed || d->pout_armed); i++)
		bc_loop_run_once(d->loop, 10);
	if (!d->dead && nbd_aio_in_flight(d->h) == 0)
		nbd_shutdown(d->h, 0);
	nbd_close(d->h);
	d->h = NULL;
	free(d->zbuf);
	free(d);
	dev->drv = NULL;
}

const struct bc_dev_ops bc_dev_nbd_ops = {
	.name = "nbd",
	.match = nbd_match,
	.open = nbd_open,
	.close = nbd_close_dev,
	.submit = nbd_submit,
};
