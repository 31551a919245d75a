/* SPDX-License-Identifier: BSD-3-Clause */
/* The recording persistent-memory device (pmemrec.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pmemrec.h"
#include "testutil.h"

struct pr_log pr;
static struct bc_pmem_map pr_map;
static struct bc_dev_registry *pr_reg;
static bool pr_is_open;

static void rec(uint8_t kind, uint64_t off, uint64_t len, const void *data)
{
	struct pr_ev *e;

	if (pr.off)
		return;
	if (pr.n == pr.cap) {
		pr.cap = pr.cap ? 2 * pr.cap : 4096;
		pr.ev = realloc(pr.ev, pr.cap * sizeof(*pr.ev));
		if (!pr.ev)
			exit(1);
	}
	e = &pr.ev[pr.n++];
	*e = (struct pr_ev){ .kind = kind, .off = off, .len = len };
	if (kind == PR_STORE) {
		e->data = malloc(len ? len : 1);
		if (!e->data)
			exit(1);
		memcpy(e->data, data, len);
	}
}

static uint64_t off_of(const void *p)
{
	uint64_t o = (uint64_t)((const uint8_t *)p - pr.base);

	if ((const uint8_t *)p < pr.base || o > pr.size)
		abort(); /* a store outside the mapping */
	return o;
}

static void *pr_memcpy(void *dst, const void *src, size_t len, unsigned flags)
{
	(void)flags;
	rec(PR_STORE, off_of(dst), len, src);
	return memcpy(dst, src, len);
}

static void *pr_memset(void *dst, int c, size_t len, unsigned flags)
{
	uint8_t *tmp = malloc(len ? len : 1);

	(void)flags;
	if (!tmp)
		exit(1);
	memset(tmp, c, len);
	rec(PR_STORE, off_of(dst), len, tmp);
	free(tmp);
	return memset(dst, c, len);
}

static void pr_flush(const void *p, size_t len)
{
	rec(PR_FLUSH, off_of(p), pr.broken == 1 && len > 8 ? len / 2 : len, NULL);
}

static void pr_drain(void)
{
	if (pr.broken != 2)
		rec(PR_DRAIN, 0, 0, NULL);
}

static void pr_persist(const void *p, size_t len)
{
	pr_flush(p, len);
	pr_drain();
}

void pr_mark(uint64_t tag)
{
	rec(PR_MARK, tag, 0, NULL);
}

static bool pr_match(const char *path)
{
	return !strncmp(path, "tpm:", 4);
}

static int pr_open(struct bc_dev *dev, const char *path, unsigned flags)
{
	(void)path;
	(void)flags;
	if (pr_is_open)
		return -EBUSY;
	pr_is_open = true;
	dev->size = pr.size;
	dev->lbs = 512;
	return 0;
}

static void pr_close(struct bc_dev *dev)
{
	(void)dev;
	pr_is_open = false;
}

static void pr_submit(struct bc_dev *dev, struct bc_dev_io *io)
{
	const struct iovec *iov = io->iov ? io->iov : &io->iov1;
	unsigned cnt = io->iov ? io->iovcnt : 1, i;
	uint8_t *at = pr.base + io->offset;

	(void)dev;
	if (io->op != BC_DIO_FLUSH && (io->offset > pr.size || io->len > pr.size - io->offset)) {
		bc_dev_io_complete(io, -EINVAL);
		return;
	}
	for (i = 0; i < cnt && (io->op == BC_DIO_READ || io->op == BC_DIO_WRITE); i++) {
		if (io->op == BC_DIO_READ)
			memcpy(iov[i].iov_base, at, iov[i].iov_len);
		else if (iov[i].iov_base != at)
			pr_memcpy(at, iov[i].iov_base, iov[i].iov_len, 0);
		if (io->op == BC_DIO_WRITE)
			pr_flush(at, iov[i].iov_len);
		at += iov[i].iov_len;
	}
	if (io->op == BC_DIO_ZERO || io->op == BC_DIO_DISCARD) {
		pr_memset(pr.base + io->offset, 0, io->len, 0);
		pr_flush(pr.base + io->offset, io->len);
	}
	if (io->op == BC_DIO_FLUSH)
		pr_drain();
	bc_dev_io_complete(io, 0);
}

static const struct bc_pmem_map *pr_map_of(const struct bc_dev *dev)
{
	(void)dev;
	return &pr_map;
}

static const struct bc_dev_ops pr_ops = {
	.name = "tpm",
	.match = pr_match,
	.open = pr_open,
	.close = pr_close,
	.submit = pr_submit,
	.pmem_map = pr_map_of,
};

const struct bc_dev_registry *pr_init(uint64_t size)
{
	pr_free();
	pr.off = false;
	pr.broken = 0;
	pr.size = size;
	pr.base = t_alloc(size);
	memset(pr.base, 0, size);
	pr_map = (struct bc_pmem_map){ .base = pr.base, .size = size, .memcpy_fn = pr_memcpy,
				       .memset_fn = pr_memset, .persist_fn = pr_persist,
				       .flush_fn = pr_flush, .drain_fn = pr_drain };
	if (!pr_reg && (bc_dev_registry_new(&pr_reg) || bc_dev_registry_add(pr_reg, &pr_ops, NULL)))
		exit(1);
	return pr_reg;
}

void pr_free(void)
{
	size_t i;

	for (i = 0; i < pr.n; i++)
		free(pr.ev[i].data);
	free(pr.ev);
	free(pr.base);
	pr.ev = NULL;
	pr.base = NULL;
	pr.n = pr.cap = 0;
}

size_t *pr_durable_at(void)
{
	size_t *at = malloc((pr.n ? pr.n : 1) * sizeof(*at)), i, j, k;

	if (!at)
		exit(1);
	for (i = 0; i < pr.n; i++) {
		const struct pr_ev *s = &pr.ev[i];

		at[i] = SIZE_MAX;
		if (s->kind != PR_STORE)
			continue;
		for (j = i + 1; j < pr.n; j++)
			if (pr.ev[j].kind == PR_FLUSH && pr.ev[j].off <= s->off &&
			    pr.ev[j].off + pr.ev[j].len >= s->off + s->len)
				break;
		for (k = j + 1; k < pr.n; k++)
			if (pr.ev[k].kind == PR_DRAIN) {
				at[i] = k;
				break;
			}
	}
	return at;
}

void pr_replay(uint8_t *img, size_t n)
{
	size_t i;

	memset(img, 0, pr.size);
	for (i = 0; i < n && i < pr.n; i++)
		if (pr.ev[i].kind == PR_STORE)
			memcpy(img + pr.ev[i].off, pr.ev[i].data, pr.ev[i].len);
}
