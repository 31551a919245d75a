/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Driver for Ceph RBD images through librbd ("rbd:POOL/IMAGE", options
 * after '?': conf=PATH (a ceph.conf; default: librados' search path and
 * $CEPH_CONF), id=CLIENT (default admin), timeout=SECONDS (default 30; 0:
 * wait forever)).  The cluster is joined and the image opened at open
 * (start-up, blocking, bounded by the timeout); afterwards nothing blocks
 * on the loop: every IO is one rbd_aio_* call whose completion has no
 * callback, librbd signals an eventfd (rbd_set_image_notification), the loop
 * polls it and drains rbd_poll_io_events(), completing each IO there.  No
 * thread of ours per request; librbd's own threads do the network IO.
 *
 * The timeout bounds every OSD and monitor operation (rados_osd_op_timeout,
 * rados_mon_op_timeout, client_mount_timeout): with an OSD down, origin IO
 * fails with -ETIMEDOUT after it instead of waiting for the cluster, and
 * the engine's writeback backs off and retries, keeping the dirty data.
 *
 * DISCARD and ZERO are both rbd write-zeroes (which may deallocate whole
 * objects): librbd's discard skips partial objects by default
 * (rbd_skip_partial_discard), and DISCARD must read back zeroes.
 *
 * Identity: the cluster's fsid, the pool's id and the image's id, which
 * survive a renamed image or a moved ceph.conf.
 *
 * Opened for writing, the image's exclusive lock is taken at open and its
 * holder recorded in the image (rbd_lock.c), so that a restart after a
 * crash takes it over at once, and a second writer is refused.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <rados/librados.h>

#include "blkcache/log.h"
#include "dev/device.h"
#include "dev/rbd.h"

#define RBD_POLL_BATCH 64
#define RBD_DEFAULT_TIMEOUT 30

struct rbd_drv {
	struct bc_loop *loop;
	rados_t cluster;
	rados_ioctx_t ioctx;
	rbd_image_t image;
	int efd;
	struct bc_completion pin;
	bool pin_armed, closing;
	uint64_t inflight, writes;
	struct bc_rbd_lock lock;
	char ident[128];
};

struct rbd_spec {
	char pool[128], image[128], conf[256], id[64];
	unsigned timeout;
};

static bool rbd_match(const char *path)
{
	return !strncmp(path, "rbd:", 4);
}

static int copy_part(char *dst, size_t len, const char *s, size_t n)
{
	if (n >= len)
		return -ENAMETOOLONG;
	memcpy(dst, s, n);
	dst[n] = 0;
	return 0;
}

static int parse_opt(struct rbd_spec *sp, const char *kv, size_t n, char *why, size_t whylen)
{
	const char *eq = memchr(kv, '=', n);
	size_t kl = eq ? (size_t)(eq - kv) : n;
	const char *v = eq ? eq + 1 : kv + n;
	size_t vl = kv + n - v;
	char num[16], *end;
	unsigned long t;

	if (eq && kl == 4 && !strncmp(kv, "conf", 4))
		return copy_part(sp->conf, sizeof(sp->conf), v, vl);
	if (eq && kl == 2 && !strncmp(kv, "id", 2))
		return copy_part(sp->id, sizeof(sp->id), v, vl);
	if (eq && kl == 7 && !strncmp(kv, "timeout", 7)) {
		if (copy_part(num, sizeof(num), v, vl) < 0 || !vl)
			goto bad;
		t = strtoul(num, &end, 10);
		if (*end || t > 86400)
			goto bad;
		sp->timeout = (unsigned)t;
		return 0;
	}
bad:
	snprintf(why, whylen, "unknown or bad option '%.*s' (conf=PATH, id=CLIENT, timeout=SECONDS "
		 "up to 86400)", (int)n, kv);
	return -EINVAL;
}

/* "rbd:POOL/IMAGE[?opt=v&...]" into @sp; -EINVAL with @why. */
static int parse_spec(const char *path, struct rbd_spec *sp, char *why, size_t whylen)
{
	const char *p = path + 4, *slash, *q, *o, *amp;

	memset(sp, 0, sizeof(*sp));
	sp->timeout = RBD_DEFAULT_TIMEOUT;
	q = strchr(p, '?');
	if (!q)
		q = p + strlen(p);
	slash = memchr(p, '/', q - p);
	if (!slash || slash == p || slash + 1 == q || memchr(slash + 1, '/', q - slash - 1)) {
		snprintf(why, whylen, "want rbd:POOL/IMAGE[?conf=PATH&id=CLIENT&timeout=SECONDS]");
		return -EINVAL;
	}
	if (copy_part(sp->pool, sizeof(sp->pool), p, slash - p) < 0 ||
	    copy_part(sp->image, sizeof(sp->image), slash + 1, q - slash - 1) < 0) {
		snprintf(why, whylen, "pool or image name too long");
		return -EINVAL;
	}
	for (o = *q ? q + 1 : q; *o; o = *amp ? amp + 1 : amp) {
		amp = strchr(o, '&');
		if (!amp)
			amp = o + strlen(o);
		if (amp > o && parse_opt(sp, o, amp - o, why, whylen) < 0)
			return -EINVAL;
	}
	return 0;
}

static void io_done_fn(struct bc_completion *c, int res)
{
	struct bc_dev_io *io = BC_CONTAINER_OF(c, struct bc_dev_io, comp);

	io->done(io, res < 0 ? res : 0);
}

/* Complete @io from the loop, later. */
static void io_finish(struct rbd_drv *d, struct bc_dev_io *io, int res)
{
	io->comp.fn = io_done_fn;
	bc_loop_defer(d->loop, &io->comp, res);
}

static void rbd_rearm(struct rbd_drv *d);

/* Drain what librbd completed (on the loop). */
static void rbd_reap(struct rbd_drv *d)
{
	rbd_completion_t comps[RBD_POLL_BATCH];
	int n, i;

	do {
		n = rbd_poll_io_events(d->image, comps, RBD_POLL_BATCH);
		for (i = 0; i < n; i++) {
			struct bc_dev_io *io = rbd_aio_get_arg(comps[i]);
			ssize_t r = rbd_aio_get_return_value(comps[i]);

			rbd_aio_release(comps[i]);
			d->inflight--;
			io->done(io, r < 0 ? (int)r : 0);
		}
	} while (n == RBD_POLL_BATCH);
}

static void pin_fn(struct bc_completion *c, int res)
{
	struct rbd_drv *d = BC_CONTAINER_OF(c, struct rbd_drv, pin);
	uint64_t v;

	d->pin_armed = false;
	if (res == -ECANCELED || d->closing)
		return;
	if (read(d->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		bc_loop_log(d->loop, BC_LOG_ERR, "rbd device: reading its eventfd: %s", strerror(errno));
	rbd_reap(d);
	rbd_rearm(d);
}

static void rbd_rearm(struct rbd_drv *d)
{
	if (d->pin_armed || d->closing)
		return;
	d->pin.fn = pin_fn;
	if (bc_loop_poll_add(d->loop, d->efd, POLLIN, &d->pin) == 0)
		d->pin_armed = true;
	else
		bc_loop_log(d->loop, BC_LOG_ERR, "rbd device: cannot poll its eventfd");
}

static int start_io(struct rbd_drv *d, struct bc_dev_io *io, rbd_completion_t c)
{
	struct iovec *iov = io->iov ? io->iov : &io->iov1;
	int cnt = io->iov ? (int)io->iovcnt : 1;

	switch (io->op) {
	case BC_DIO_READ: return rbd_aio_readv(d->image, iov, cnt, io->offset, c);
	case BC_DIO_WRITE: return rbd_aio_writev(d->image, iov, cnt, io->offset, c);
	case BC_DIO_FLUSH: return rbd_aio_flush(d->image, c);
	case BC_DIO_DISCARD:
	case BC_DIO_ZERO: return rbd_aio_write_zeroes(d->image, io->offset, io->len, c, 0, 0);
	default: return -EOPNOTSUPP;
	}
}

static void rbd_submit(struct bc_dev *dev, struct bc_dev_io *io)
{
	struct rbd_drv *d = dev->drv;
	rbd_completion_t c;
	int r;

	r = bc_dev_io_check(dev, io, false);
	if (r < 0) {
		io_finish(d, io, r);
		return;
	}
	if (io->op != BC_DIO_FLUSH && !io->len) {
		io_finish(d, io, 0);
		return;
	}
	r = rbd_aio_create_completion(io, NULL, &c);
	if (r < 0) {
		io_finish(d, io, r);
		return;
	}
	if (io->op != BC_DIO_READ)
		d->writes++;
	r = start_io(d, io, c);
	if (r < 0) {
		rbd_aio_release(c);
		io_finish(d, io, r);
		return;
	}
	d->inflight++;
}

static int join_cluster(struct rbd_drv *d, const struct rbd_spec *sp, const char *path, char *why,
			size_t whylen)
{
	char t[16], fsid[64];
	int r;

	r = rados_create(&d->cluster, sp->id[0] ? sp->id : NULL);
	if (r < 0) {
		snprintf(why, whylen, "cannot create a cluster handle: %s", strerror(-r));
		return r;
	}
	r = rados_conf_read_file(d->cluster, sp->conf[0] ? sp->conf : NULL);
	if (r < 0) {
		snprintf(why, whylen, "cannot read %s: %s", sp->conf[0] ? sp->conf : "a ceph.conf "
			 "(the default places and $CEPH_CONF)", strerror(-r));
		return r;
	}
	rados_conf_parse_env(d->cluster, NULL);
	/* The library never prints: errors come back as return values. */
	rados_conf_set(d->cluster, "log_to_stderr", "false");
	rados_conf_set(d->cluster, "err_to_stderr", "false");
	snprintf(t, sizeof(t), "%u", sp->timeout);
	rados_conf_set(d->cluster, "rados_osd_op_timeout", t);
	rados_conf_set(d->cluster, "rados_mon_op_timeout", t);
	rados_conf_set(d->cluster, "client_mount_timeout", sp->timeout ? t : "300");
	r = rados_connect(d->cluster);
	if (r < 0) {
		snprintf(why, whylen, "cannot reach the cluster (%s): %s", path, strerror(-r));
		return r;
	}
	r = rados_ioctx_create(d->cluster, sp->pool, &d->ioctx);
	if (r < 0) {
		snprintf(why, whylen, "no pool '%s': %s", sp->pool, strerror(-r));
		return r;
	}
	r = rados_cluster_fsid(d->cluster, fsid, sizeof(fsid));
	if (r < 0) {
		snprintf(why, whylen, "cannot read the cluster's fsid: %s", strerror(-r));
		return r;
	}
	snprintf(d->ident, sizeof(d->ident), "ceph %s pool %lld", fsid,
		 (long long)rados_ioctx_get_id(d->ioctx));
	return 0;
}

static int open_image(struct rbd_drv *d, const struct rbd_spec *sp, const char *path,
		      unsigned flags, uint64_t *size, char *why, size_t whylen)
{
	char id[64];
	size_t n = strlen(d->ident);
	int r;

	r = (flags & BC_DEV_RDONLY) ? rbd_open_read_only(d->ioctx, sp->image, &d->image, NULL)
				    : rbd_open(d->ioctx, sp->image, &d->image, NULL);
	if (r < 0) {
		snprintf(why, whylen, "cannot open image '%s' in pool '%s': %s", sp->image, sp->pool,
			 strerror(-r));
		d->image = NULL;
		return r;
	}
	r = rbd_get_size(d->image, size);
	if (r < 0) {
		snprintf(why, whylen, "cannot read the image's size: %s", strerror(-r));
		return r;
	}
	r = rbd_get_id(d->image, id, sizeof(id));
	if (r < 0) {
		snprintf(why, whylen, "cannot read the image's id: %s", strerror(-r));
		return r;
	}
	snprintf(d->ident + n, sizeof(d->ident) - n, " image %s", id);
	if (!(flags & BC_DEV_RDONLY)) {
		r = bc_rbd_lock_take(d->image, d->loop, path, d->ident, &d->lock, why, whylen);
		if (r < 0)
			return r;
	}
	d->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (d->efd < 0) {
		r = -errno;
		snprintf(why, whylen, "eventfd: %s", strerror(errno));
		return r;
	}
	r = rbd_set_image_notification(d->image, d->efd, EVENT_TYPE_EVENTFD);
	if (r < 0) {
		snprintf(why, whylen, "cannot have librbd signal completions: %s", strerror(-r));
		return r;
	}
	return 0;
}

static void drv_free(struct rbd_drv *d)
{
	if (d->image && !d->writes)
		bc_rbd_lock_undo(d->image, &d->lock);
	bc_rbd_lock_put(&d->lock);
	if (d->image)
		rbd_close(d->image);
	if (d->efd >= 0)
		close(d->efd);
	if (d->ioctx)
		rados_ioctx_destroy(d->ioctx);
	if (d->cluster)
		rados_shutdown(d->cluster);
	free(d);
}

static int rbd_open_dev(struct bc_dev *dev, const char *path, unsigned flags)
{
	struct rbd_drv *d;
	struct rbd_spec sp;
	char why[512];
	uint64_t size = 0;
	int r;

	r = parse_spec(path, &sp, why, sizeof(why));
	if (r < 0) {
		bc_loop_log(dev->loop, BC_LOG_ERR, "%s: %s", path, why);
		return r;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->loop = dev->loop;
	d->efd = -1;
	r = join_cluster(d, &sp, path, why, sizeof(why));
	if (r == 0)
		r = open_image(d, &sp, path, flags, &size, why, sizeof(why));
	if (r < 0) {
		bc_loop_log(dev->loop, BC_LOG_ERR, "%s: %s", path, why);
		drv_free(d);
		return r;
	}
	dev->drv = d;
	dev->size = size;
	dev->lbs = 512;
	dev->is_bdev = false;
	dev->direct = true;
	dev->fd = -1;
	rbd_rearm(d);
	return 0;
}

static void rbd_close_dev(struct bc_dev *dev)
{
	struct rbd_drv *d = dev->drv;
	int i;

	if (!d)
		return;
	/* Whatever is still in flight completes first (bounded). */
	for (i = 0; i < 3000 && d->inflight; i++)
		bc_loop_run_once(d->loop, 10);
	if (d->inflight)
		bc_loop_log(d->loop, BC_LOG_WARN, "rbd device: closing with %llu IOs still in flight",
			    (unsigned long long)d->inflight);
	d->closing = true;
	if (d->pin_armed)
		bc_loop_poll_cancel(d->loop, &d->pin);
	for (i = 0; i < 1000 && d->pin_armed; i++)
		bc_loop_run_once(d->loop, 10);
	drv_free(d);
	dev->drv = NULL;
}

static int rbd_identity(const struct bc_dev *dev, char *buf, size_t len)
{
	const struct rbd_drv *d = dev->drv;

	if (!d || (size_t)snprintf(buf, len, "%s", d->ident) >= len)
		return -ENAMETOOLONG;
	return 0;
}

const struct bc_dev_ops bc_dev_rbd_ops = {
	.name = "rbd",
	.match = rbd_match,
	.open = rbd_open_dev,
	.close = rbd_close_dev,
	.submit = rbd_submit,
	.identity = rbd_identity,
};
