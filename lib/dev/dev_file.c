/* SPDX-License-Identifier: BSD-3-Clause */
/* Driver for regular files and block devices: io_uring + O_DIRECT. */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blkcache/log.h"
#include "dev/device.h"
#include "core/loop_internal.h"

#define ZERO_CHUNK (1u << 20)

static void *zero_buf; /* shared, read-only, ZERO_CHUNK bytes */

static void file_issue(struct bc_dev *dev, struct bc_dev_io *io);

/* Build the iovec for the not-yet-transferred part of @io into @tmp. */
static unsigned remaining_iov(struct bc_dev_io *io, struct iovec *tmp, unsigned max)
{
	struct iovec *iov = io->iov ? io->iov : &io->iov1;
	unsigned cnt = io->iov ? io->iovcnt : 1, i, n = 0;
	uint64_t skip = io->done_bytes;

	for (i = 0; i < cnt && n < max; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		tmp[n].iov_base = (char *)iov[i].iov_base + skip;
		tmp[n].iov_len = iov[i].iov_len - skip;
		skip = 0;
		n++;
	}
	return n;
}

struct file_io_state {
	struct iovec iov[64];
};

static void file_complete(struct bc_completion *c, int res)
{
	struct bc_dev_io *io = BC_CONTAINER_OF(c, struct bc_dev_io, comp);
	struct bc_dev *dev = io->dev;

	if (res == -EAGAIN || res == -EINTR) {
		file_issue(dev, io);
		return;
	}
	if (res < 0) {
		if (io->op == BC_DIO_ZERO && (res == -EOPNOTSUPP || res == -EINVAL) && zero_buf) {
			/* No fallocate support: write zeroes instead. */
			io->op = BC_DIO_WRITE;
			io->iov = NULL;
			io->iov1.iov_base = zero_buf;
			io->iov1.iov_len = io->len < ZERO_CHUNK ? io->len : ZERO_CHUNK;
			io->drv_flags = 1;
			file_issue(dev, io);
			return;
		}
		free(io->drv_state);
		io->drv_state = NULL;
		io->done(io, res);
		return;
	}
	if (io->op == BC_DIO_READ || io->op == BC_DIO_WRITE) {
		if (res == 0 && io->op == BC_DIO_READ) {
			/* Reading past the end of a file: zero the rest. */
			struct iovec tmp[64];
			unsigned n = remaining_iov(io, tmp, 64), i;

			for (i = 0; i < n; i++)
				memset(tmp[i].iov_base, 0, tmp[i].iov_len);
			io->done_bytes = io->len;
		} else if (res == 0) {
			free(io->drv_state);
			io->drv_state = NULL;
			io->done(io, -EIO);
			return;
		} else {
			io->done_bytes += (uint64_t)res;
		}
		if (io->drv_flags && io->done_bytes == io->iov1.iov_len && io->done_bytes < io->len) {
			/* Zero-fill fallback: next chunk. */
			io->offset += io->done_bytes;
			io->len -= io->done_bytes;
			io->done_bytes = 0;
			io->iov1.iov_len = io->len < ZERO_CHUNK ? io->len : ZERO_CHUNK;
		}
		if (io->done_bytes < (io->drv_flags ? io->iov1.iov_len : io->len)) {
			file_issue(dev, io);
			return;
		}
		res = (int)(io->len > INT32_MAX ? INT32_MAX : io->len);
	}
	free(io->drv_state);
	io->drv_state = NULL;
	io->done(io, res < 0 ? res : 0);
}

static void file_issue(struct bc_dev *dev, struct bc_dev_io *io)
{
	struct io_uring_sqe *sqe = bc_loop_sqe(dev->loop);
	struct file_io_state *st;
	struct iovec *iov;
	unsigned n;
	int mode;

	io->comp.fn = file_complete;
	if (!sqe) {
		bc_loop_defer(dev->loop, &io->comp, -EAGAIN);
		return;
	}
	switch (io->op) {
	case BC_DIO_READ:
	case BC_DIO_WRITE:
		if (io->done_bytes == 0) {
			/* Common case: the caller's iovec as is, no allocation. */
			iov = io->iov ? io->iov : &io->iov1;
			n = io->iov ? io->iovcnt : 1;
		} else {
			/* Short transfer: continue with the rest. */
			if (!io->drv_state)
				io->drv_state = malloc(sizeof(*st));
			if (!io->drv_state) {
				io_uring_prep_nop(sqe);
				io_uring_sqe_set_data(sqe, NULL);
				bc_loop_defer(dev->loop, &io->comp, -ENOMEM);
				return;
			}
			st = io->drv_state;
			iov = st->iov;
			n = remaining_iov(io, st->iov, 64);
		}
		if (io->op == BC_DIO_READ)
			io_uring_prep_readv(sqe, dev->fd, iov, n, io->offset + io->done_bytes);
		else
			io_uring_prep_writev(sqe, dev->fd, iov, n, io->offset + io->done_bytes);
		break;
	case BC_DIO_FLUSH:
		io_uring_prep_fsync(sqe, dev->fd, IORING_FSYNC_DATASYNC);
		break;
	case BC_DIO_DISCARD:
	case BC_DIO_ZERO:
		if (io->op == BC_DIO_ZERO && dev->is_bdev)
			mode = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
		else
			mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
		io_uring_prep_fallocate(sqe, dev->fd, mode, io->offset, io->len);
		break;
	default:
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data(sqe, NULL);
		bc_loop_defer(dev->loop, &io->comp, -EINVAL);
		return;
	}
	io_uring_sqe_set_data(sqe, &io->comp);
}

/*
 * O_DIRECT needs memory aligned to the device's block size.  A caller
 * buffer that is not (an application's read or write buffer handed down
 * unchanged) goes through an aligned bounce buffer instead of failing.
 */
struct file_bounce {
	struct bc_dev_io child;
	struct bc_dev_io *parent;
	void *buf;
};

static bool iov_aligned(const struct bc_dev_io *io, uint32_t align)
{
	const struct iovec *iov = io->iov ? io->iov : &io->iov1;
	unsigned cnt = io->iov ? io->iovcnt : 1, i;

	for (i = 0; i < cnt; i++)
		if (((uintptr_t)iov[i].iov_base | iov[i].iov_len) & (align - 1))
			return false;
	return true;
}

static void bounce_done(struct bc_dev_io *child, int res)
{
	struct file_bounce *b = child->priv;
	struct bc_dev_io *io = b->parent;

	if (res >= 0 && io->op == BC_DIO_READ)
		bc_dev_io_copy(io, b->buf, true);
	free(b->buf);
	free(b);
	io->done(io, res);
}

static void file_issue_bounced(struct bc_dev *dev, struct bc_dev_io *io)
{
	struct file_bounce *b = calloc(1, sizeof(*b));

	if (b)
		b->buf = bc_alloc_aligned(io->len);
	if (!b || !b->buf) {
		free(b);
		io->comp.fn = file_complete;
		bc_loop_defer(dev->loop, &io->comp, -ENOMEM);
		return;
	}
	b->parent = io;
	if (io->op == BC_DIO_WRITE)
		bc_dev_io_copy(io, b->buf, false);
	bc_dev_io_init(&b->child, io->op, b->buf, io->len, io->offset, bounce_done, b);
	b->child.dev = dev;
	b->child.drv_state = NULL;
	b->child.drv_flags = 0;
	file_issue(dev, &b->child);
}

static void file_submit(struct bc_dev *dev, struct bc_dev_io *io)
{
	io->drv_state = NULL;
	io->drv_flags = 0;
	if (bc_dev_io_check(dev, io, false) < 0) {
		io->comp.fn = file_complete;
		bc_loop_defer(dev->loop, &io->comp, -EINVAL);
		return;
	}
	if ((io->op == BC_DIO_DISCARD || io->op == BC_DIO_ZERO || io->op == BC_DIO_READ ||
	     io->op == BC_DIO_WRITE) && io->len == 0) {
		io->comp.fn = file_complete;
		bc_loop_defer(dev->loop, &io->comp, 0);
		return;
	}
	if ((io->op == BC_DIO_READ || io->op == BC_DIO_WRITE) && dev->direct &&
	    !iov_aligned(io, dev->lbs)) {
		file_issue_bounced(dev, io);
		return;
	}
	file_issue(dev, io);
}

static int file_open(struct bc_dev *dev, const char *path, unsigned flags)
{
	int oflags = ((flags & BC_DEV_RDONLY) ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	struct stat st;
	int fd, ret;

	if (!zero_buf) {
		zero_buf = bc_alloc_aligned(ZERO_CHUNK);
		if (!zero_buf)
			return -ENOMEM;
		memset(zero_buf, 0, ZERO_CHUNK);
	}
	fd = open(path, oflags | O_DIRECT);
	if (fd >= 0) {
		dev->direct = true;
	} else if (errno == EINVAL) {
		/* Filesystems without O_DIRECT (tmpfs): buffered IO, flush still works. */
		fd = open(path, oflags);
		if (fd >= 0)
			bc_loop_log(dev->loop, BC_LOG_WARN, "%s: O_DIRECT not supported, using buffered IO", path);
	}
	if (fd < 0)
		return -errno;
	ret = bc_dev_lock_stat(fd, flags, &st);
	if (ret < 0)
		goto err_close;
	if (S_ISBLK(st.st_mode)) {
		uint64_t size;
		int lbs;

		if (ioctl(fd, BLKGETSIZE64, &size) < 0 || ioctl(fd, BLKSSZGET, &lbs) < 0) {
			ret = -errno;
			goto err_close;
		}
		dev->size = size;
		dev->lbs = (uint32_t)lbs;
		dev->is_bdev = true;
	} else if (S_ISREG(st.st_mode)) {
		dev->size = (uint64_t)st.st_size;
		dev->lbs = 512;
#ifdef STATX_DIOALIGN
		{
			struct statx stx;

			if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
			    (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align)
				dev->lbs = stx.stx_dio_offset_align;
		}
#endif
	} else {
		ret = -ENOTBLK;
		goto err_close;
	}
	dev->fd = fd;
	return 0;
err_close:
	close(fd);
	return ret;
}

static void file_close(struct bc_dev *dev)
{
	if (dev->fd >= 0)
		close(dev->fd);
	dev->fd = -1;
}

const struct bc_dev_ops bc_dev_file_ops = {
	.name = "file",
	.match = NULL, /* the fallback driver: anything that is a path */
	.open = file_open,
	.close = file_close,
	.submit = file_submit,
};
