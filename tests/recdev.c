/* SPDX-License-Identifier: BSD-3-Clause */
/* The recording in-memory device driver: see recdev.h. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev/device.h"
#include "recdev.h"

struct rec_log rec_log;
static uint64_t clock_pos;
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static unsigned spread = 2;
static unsigned npending_all;

struct rec_slot {
	char name[32];
	struct rec_img *img;
	bool record;
	bool delay;
};
static struct rec_slot slots[REC_MAXDEV];

struct rec_pend {
	struct bc_dev_io *io;
	size_t ev;    /* log index, or SIZE_MAX */
	uint64_t due; /* REC_DELAY: the round it completes in */
};

struct rec_dev {
	unsigned id;
	struct bc_loop *loop;
	struct rec_pend *pend;
	size_t npend, cap;
	struct bc_completion tick;
	bool tick_armed;
	uint64_t round; /* ticks so far (REC_DELAY) */
};

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fprintf(stderr, "recdev: out of memory\n");
		exit(1);
	}
	return p;
}

static uint64_t rnd(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void rec_seed(uint64_t seed)
{
	rng = seed ^ 0x5deece66dull;
}

void rec_set_spread(unsigned s)
{
	spread = s ? s : 1;
}

uint64_t rec_clock_tick(void)
{
	return clock_pos++;
}

uint64_t rec_clock_now(void)
{
	return clock_pos;
}

unsigned rec_pending(void)
{
	return npending_all;
}

void rec_log_reset(void)
{
	size_t i;

	for (i = 0; i < rec_log.n; i++)
		free(rec_log.ev[i].data);
	free(rec_log.ev);
	memset(&rec_log, 0, sizeof(rec_log));
	clock_pos = 0;
}

/* --- images --- */

struct rec_img *rec_img_new(uint64_t size)
{
	struct rec_img *img = xmalloc(sizeof(*img));

	img->size = size;
	img->npages = (size + REC_PAGE - 1) / REC_PAGE;
	img->page = calloc(img->npages, sizeof(*img->page));
	img->own = calloc(img->npages, 1);
	if (!img->page || !img->own) {
		fprintf(stderr, "recdev: out of memory\n");
		exit(1);
	}
	return img;
}

struct rec_img *rec_img_clone(const struct rec_img *src)
{
	struct rec_img *img = rec_img_new(src->size);

	memcpy(img->page, src->page, src->npages * sizeof(*img->page));
	return img;
}

struct rec_img *rec_img_copy(const struct rec_img *src)
{
	struct rec_img *img = rec_img_new(src->size);
	uint64_t i;

	for (i = 0; i < src->npages; i++) {
		if (!src->page[i])
			continue;
		img->page[i] = xmalloc(REC_PAGE);
		memcpy(img->page[i], src->page[i], REC_PAGE);
		img->own[i] = 1;
	}
	return img;
}

void rec_img_free(struct rec_img *img)
{
	uint64_t i;

	if (!img)
		return;
	for (i = 0; i < img->npages; i++)
		if (img->own[i])
			free(img->page[i]);
	free(img->page);
	free(img->own);
	free(img);
}

void rec_img_read(const struct rec_img *img, uint64_t off, void *buf, uint64_t len)
{
	char *dst = buf;

	while (len) {
		uint64_t p = off / REC_PAGE, in = off % REC_PAGE, n = REC_PAGE - in;

		if (n > len)
			n = len;
		if (img->page[p])
			memcpy(dst, img->page[p] + in, n);
		else
			memset(dst, 0, n);
		dst += n;
		off += n;
		len -= n;
	}
}

/* Make page @p private to @img (copy-on-write); NULL pages become zeroes. */
static uint8_t *own_page(struct rec_img *img, uint64_t p)
{
	uint8_t *n;

	if (img->own[p])
		return img->page[p];
	n = xmalloc(REC_PAGE);
	if (img->page[p])
		memcpy(n, img->page[p], REC_PAGE);
	else
		memset(n, 0, REC_PAGE);
	img->page[p] = n;
	img->own[p] = 1;
	return n;
}

void rec_img_write(struct rec_img *img, uint64_t off, const void *buf, uint64_t len)
{
	const char *src = buf;

	while (len) {
		uint64_t p = off / REC_PAGE, in = off % REC_PAGE, n = REC_PAGE - in;

		if (n > len)
			n = len;
		memcpy(own_page(img, p) + in, src, n);
		src += n;
		off += n;
		len -= n;
	}
}

void rec_img_zero(struct rec_img *img, uint64_t off, uint64_t len)
{
	while (len) {
		uint64_t p = off / REC_PAGE, in = off % REC_PAGE, n = REC_PAGE - in;

		if (n > len)
			n = len;
		if (n == REC_PAGE) {
			if (img->own[p])
				free(img->page[p]);
			img->page[p] = NULL;
			img->own[p] = 0;
		} else if (img->page[p]) {
			memset(own_page(img, p) + in, 0, n);
		}
		off += n;
		len -= n;
	}
}

/* --- the driver --- */

static bool rec_match(const char *path)
{
	return !strncmp(path, "rec:", 4);
}

static int rec_open(struct bc_dev *dev, const char *path, unsigned flags)
{
	struct rec_dev *rd;
	unsigned i;

	(void)flags;
	for (i = 0; i < REC_MAXDEV; i++)
		if (slots[i].img && !strcmp(slots[i].name, path + 4))
			break;
	if (i == REC_MAXDEV)
		return -ENOENT;
	rd = calloc(1, sizeof(*rd));
	if (!rd)
		return -ENOMEM;
	rd->id = i;
	rd->loop = dev->loop;
	dev->drv = rd;
	dev->size = slots[i].img->size;
	dev->lbs = 512;
	return 0;
}

static void rec_close(struct bc_dev *dev)
{
	struct rec_dev *rd = dev->drv;

	/* An engine dropped without shutdown: forget its IO in flight (the
	 * bc_dev_io structures may already be freed). */
	if (rd->tick_armed)
		bc_loop_defer_cancel(rd->loop, &rd->tick);
	npending_all -= (unsigned)rd->npend;
	free(rd->pend);
	free(rd);
}

static uint64_t iov_total(const struct bc_dev_io *io, const struct iovec **iov, unsigned *cnt)
{
	*iov = io->iov ? io->iov : &io->iov1;
	*cnt = io->iov ? io->iovcnt : 1;
	return io->len;
}

static void gather(const struct bc_dev_io *io, uint8_t *dst)
{
	const struct iovec *iov;
	unsigned cnt, i;
	uint64_t left = iov_total(io, &iov, &cnt);

	for (i = 0; i < cnt && left; i++) {
		uint64_t n = iov[i].iov_len < left ? iov[i].iov_len : left;

		memcpy(dst, iov[i].iov_base, n);
		dst += n;
		left -= n;
	}
}

static bool differs(const struct bc_dev_io *io, const uint8_t *src)
{
	const struct iovec *iov;
	unsigned cnt, i;
	uint64_t left = iov_total(io, &iov, &cnt);

	for (i = 0; i < cnt && left; i++) {
		uint64_t n = iov[i].iov_len < left ? iov[i].iov_len : left;

		if (memcmp(iov[i].iov_base, src, n))
			return true;
		src += n;
		left -= n;
	}
	return false;
}

static void scatter_from_img(const struct rec_img *img, struct bc_dev_io *io)
{
	const struct iovec *iov;
	unsigned cnt, i;
	uint64_t left = iov_total(io, &iov, &cnt), off = io->offset;

	for (i = 0; i < cnt && left; i++) {
		uint64_t n = iov[i].iov_len < left ? iov[i].iov_len : left;

		rec_img_read(img, off, iov[i].iov_base, n);
		off += n;
		left -= n;
	}
}

static void digest_add(uint64_t v)
{
	rec_log.digest = (rec_log.digest ^ v) * 0x100000001b3ull;
}

/* Carry out @io on the image at completion time and report it. */
static void finish(struct rec_dev *rd, struct rec_pend *p)
{
	struct rec_slot *sl = &slots[rd->id];
	struct bc_dev_io *io = p->io;
	struct rec_ev *ev = p->ev != SIZE_MAX ? &rec_log.ev[p->ev] : NULL;
	int res = 0;

	switch (io->op) {
	case BC_DIO_READ:
		scatter_from_img(sl->img, io);
		res = (int)(io->len > INT32_MAX ? INT32_MAX : io->len);
		break;
	case BC_DIO_WRITE:
		if (ev) {
			if (differs(io, ev->data)) {
				rec_log.modified++;
				fprintf(stderr, "recdev: %s: write buffer at %llu+%llu changed while in flight\n",
					sl->name, (unsigned long long)io->offset, (unsigned long long)io->len);
			}
			rec_img_write(sl->img, io->offset, ev->data, io->len);
		} else {
			uint8_t *tmp = xmalloc(io->len);

			gather(io, tmp);
			rec_img_write(sl->img, io->offset, tmp, io->len);
			free(tmp);
		}
		res = (int)(io->len > INT32_MAX ? INT32_MAX : io->len);
		break;
	case BC_DIO_DISCARD:
	case BC_DIO_ZERO:
		rec_img_zero(sl->img, io->offset, io->len);
		break;
	default:
		break;
	}
	if (ev) {
		ev->complete = rec_clock_tick();
		digest_add(p->ev * 31 + 7);
	}
	io->done(io, res);
}

static void tick_fn(struct bc_completion *c, int res)
{
	struct rec_dev *rd = BC_CONTAINER_OF(c, struct rec_dev, tick);
	struct rec_pend *now;
	size_t i, n = 0, keep = 0;

	(void)res;
	rd->tick_armed = false;
	if (!rd->npend)
		return;
	now = xmalloc(rd->npend * sizeof(*now));
	if (slots[rd->id].delay) {
		rd->round++;
		for (i = 0; i < rd->npend; i++) {
			if (rd->pend[i].due <= rd->round)
				now[n++] = rd->pend[i];
			else
				rd->pend[keep++] = rd->pend[i];
		}
		for (i = n; i > 1; i--) { /* those due together: in a random order */
			size_t j = rnd() % i;
			struct rec_pend t = now[i - 1];

			now[i - 1] = now[j];
			now[j] = t;
		}
	} else if (!slots[rd->id].record) {
		n = rd->npend;
		memcpy(now, rd->pend, n * sizeof(*now));
	} else {
		for (i = 0; i < rd->npend; i++) {
			if (rnd() % spread == 0)
				now[n++] = rd->pend[i];
			else
				rd->pend[keep++] = rd->pend[i];
		}
		if (!n) { /* at least one: a random one */
			i = rnd() % keep;
			now[n++] = rd->pend[i];
			memmove(&rd->pend[i], &rd->pend[i + 1], (keep - i - 1) * sizeof(*now));
			keep--;
		}
	}
	rd->npend = slots[rd->id].record || slots[rd->id].delay ? keep : 0;
	npending_all -= (unsigned)n;
	if (rd->npend && !rd->tick_armed) {
		rd->tick_armed = true;
		bc_loop_defer(rd->loop, &rd->tick, 0);
	}
	/* The callbacks may submit more IO (appended to rd->pend); none of
	 * them closes the device (engines are freed outside IO callbacks). */
	for (i = 0; i < n; i++)
		finish(rd, &now[i]);
	free(now);
}

static void fail_io(struct rec_dev *rd, struct bc_dev_io *io, int err);

static void fail_fn(struct bc_completion *c, int res)
{
	struct bc_dev_io *io = BC_CONTAINER_OF(c, struct bc_dev_io, comp);

	io->done(io, res);
}

static void fail_io(struct rec_dev *rd, struct bc_dev_io *io, int err)
{
	io->comp.fn = fail_fn;
	bc_loop_defer(rd->loop, &io->comp, err);
}

/* REC_DELAY: rounds an IO waits beyond the next one, heavy-tailed. */
static uint64_t delay_rounds(void)
{
	uint64_t x = rnd() % 1000;

	if (x < 700)
		return rnd() % 3;
	if (x < 950)
		return 3 + rnd() % 29;
	if (x < 995)
		return 32 + rnd() % 224;
	return 256 + rnd() % 1793;
}

static bool overlaps_pending(const struct rec_dev *rd, const struct bc_dev_io *io)
{
	size_t i;

	for (i = 0; i < rd->npend; i++) {
		const struct bc_dev_io *o = rd->pend[i].io;

		if (o->op == BC_DIO_READ || o->op == BC_DIO_FLUSH)
			continue;
		if (o->offset < io->offset + io->len && io->offset < o->offset + o->len)
			return true;
	}
	return false;
}

static void rec_submit(struct bc_dev *dev, struct bc_dev_io *io)
{
	struct rec_dev *rd = dev->drv;
	struct rec_slot *sl = &slots[rd->id];
	struct rec_pend p = { .io = io, .ev = SIZE_MAX };

	if (io->op > BC_DIO_ZERO) {
		fail_io(rd, io, -EINVAL);
		return;
	}
	if (io->op != BC_DIO_FLUSH &&
	    (io->offset > dev->size || io->len > dev->size - io->offset || !io->len)) {
		fail_io(rd, io, io->len ? -EINVAL : 0);
		return;
	}
	if (sl->record && io->op != BC_DIO_READ) {
		struct rec_ev *ev;

		if (io->op != BC_DIO_FLUSH && overlaps_pending(rd, io)) {
			rec_log.overlaps++;
			if (rec_log.overlaps <= 5)
				fprintf(stderr, "recdev: %s: %s at %llu+%llu overlaps a write in flight\n",
					sl->name, io->op == BC_DIO_WRITE ? "write" : "zero/discard",
					(unsigned long long)io->offset, (unsigned long long)io->len);
		}
		if (rec_log.n == rec_log.cap) {
			rec_log.cap = rec_log.cap ? rec_log.cap * 2 : 4096;
			rec_log.ev = realloc(rec_log.ev, rec_log.cap * sizeof(*rec_log.ev));
			if (!rec_log.ev) {
				fprintf(stderr, "recdev: out of memory\n");
				exit(1);
			}
		}
		p.ev = rec_log.n++;
		ev = &rec_log.ev[p.ev];
		memset(ev, 0, sizeof(*ev));
		ev->dev = (uint8_t)rd->id;
		ev->op = io->op;
		ev->off = io->op == BC_DIO_FLUSH ? 0 : io->offset;
		ev->len = io->op == BC_DIO_FLUSH ? 0 : io->len;
		ev->complete = REC_NEVER;
		if (io->op == BC_DIO_WRITE) {
			ev->data = xmalloc(io->len);
			gather(io, ev->data);
		}
		ev->submit = rec_clock_tick();
		digest_add(((uint64_t)rd->id << 60) ^ ((uint64_t)io->op << 56) ^ (ev->off << 8) ^ ev->len);
	}
	if (rd->npend == rd->cap) {
		rd->cap = rd->cap ? rd->cap * 2 : 64;
		rd->pend = realloc(rd->pend, rd->cap * sizeof(*rd->pend));
		if (!rd->pend) {
			fprintf(stderr, "recdev: out of memory\n");
			exit(1);
		}
	}
	if (sl->delay)
		p.due = rd->round + 1 + delay_rounds();
	rd->pend[rd->npend++] = p;
	npending_all++;
	if (!rd->tick_armed) {
		rd->tick_armed = true;
		rd->tick.fn = tick_fn;
		bc_loop_defer(rd->loop, &rd->tick, 0);
	}
}

static const struct bc_dev_ops rec_ops = {
	.name = "rec",
	.match = rec_match,
	.open = rec_open,
	.close = rec_close,
	.submit = rec_submit,
};

static struct bc_dev_registry *rec_reg;

void rec_register(void)
{
	if (rec_reg)
		return;
	if (bc_dev_registry_new(&rec_reg) < 0 || bc_dev_registry_add(rec_reg, &rec_ops, NULL) < 0) {
		fprintf(stderr, "recdev: cannot register the driver\n");
		exit(1);
	}
}

const struct bc_dev_registry *rec_devices(void)
{
	rec_register();
	return rec_reg;
}

void rec_attach_mode(unsigned id, const char *name, struct rec_img *img, enum rec_mode mode)
{
	snprintf(slots[id].name, sizeof(slots[id].name), "%s", name);
	slots[id].img = img;
	slots[id].record = mode == REC_RECORD;
	slots[id].delay = mode == REC_DELAY;
}

void rec_attach(unsigned id, const char *name, struct rec_img *img, bool record)
{
	rec_attach_mode(id, name, img, record ? REC_RECORD : REC_PLAIN);
}

void rec_detach(unsigned id)
{
	slots[id].img = NULL;
	slots[id].name[0] = 0;
}
