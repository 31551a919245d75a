/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The persistent-memory device driver ("pmem:FILE", libpmem2) on a plain
 * file (page granularity) and, with libpmem2's PMEM2_FORCE_GRANULARITY test
 * switch, as if DAX-mapped (cache-line: non-temporal stores, drain on
 * FLUSH): scattered writes read back, zeroing, FLUSH, out-of-range and
 * read-only refusals, data kept across close and reopen (and seen by the
 * file driver), one user at a time, the mapping handed to direct users, and
 * how it says it persists.
 */
#include <errno.h>
#include <string.h>

#include "dev/device.h"
#include "dev/pmem.h"
#include "testutil.h"

#define SIZE (8u << 20)

struct sync_io {
	struct bc_dev_io io;
	int res;
	bool done;
};

static void sync_done(struct bc_dev_io *io, int res)
{
	struct sync_io *s = (struct sync_io *)io;

	s->res = res;
	s->done = true;
}

/* Submit and run the loop until it completes: its result. */
static int run_io(struct bc_loop *loop, struct bc_dev *d, uint8_t op, struct iovec *iov,
		  unsigned n, uint64_t off, uint64_t len)
{
	struct sync_io s;
	int i;

	bc_dev_io_init(&s.io, op, n == 1 ? iov[0].iov_base : NULL, len, off, sync_done, NULL);
	if (n > 1) {
		s.io.iov = iov;
		s.io.iovcnt = n;
	}
	s.done = false;
	bc_dev_submit(d, &s.io);
	CHECK(!s.done, "completed inside submit (must come from the loop)");
	for (i = 0; i < 1000 && !s.done; i++)
		bc_loop_run_once(loop, 100);
	CHECK(s.done, "IO did not complete");
	return s.done ? s.res : -ETIMEDOUT;
}

static void fill(char *p, size_t len, unsigned seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (char)(seed * 31 + i * 7 + (i >> 9));
}

static void test_one(struct bc_loop *loop, const char *file, const char *gran)
{
	char path[600], *a = t_alloc(64 << 10), *b = t_alloc(64 << 10), *r = t_alloc(128 << 10);
	struct iovec iov[2] = { { a, 64 << 10 }, { b, 64 << 10 } }, riov = { r, 128 << 10 };
	const struct bc_pmem_map *m;
	struct bc_dev *d = NULL, *d2 = NULL;
	const char *desc;
	int ret;

	snprintf(path, sizeof(path), "pmem:%s", file);
	ret = bc_dev_open(&d, NULL, loop, path, 0);
	CHECK(ret == 0, "open %s: %d", path, ret);
	if (ret)
		return;
	CHECK(d->size == SIZE, "size %llu", (unsigned long long)d->size);
	desc = bc_dev_describe(d);
	CHECK(desc && strstr(desc, gran), "describe: '%s', want '%s'", desc ? desc : "(null)", gran);
	m = bc_dev_pmem_map(d);
	CHECK(m && m->base && m->size == SIZE, "the mapping is handed out");
	CHECK(m && m->page == !strcmp(gran, "page"), "page flag %d for %s", m ? m->page : -1, gran);

	/* a scattered write (two iovecs) reads back whole, and is in the mapping */
	fill(a, 64 << 10, 1);
	fill(b, 64 << 10, 2);
	CHECK(run_io(loop, d, BC_DIO_WRITE, iov, 2, 1 << 20, 128 << 10) == 0, "write");
	CHECK(run_io(loop, d, BC_DIO_FLUSH, NULL, 0, 0, 0) == 0, "flush");
	memset(r, 0, 128 << 10);
	CHECK(run_io(loop, d, BC_DIO_READ, &riov, 1, 1 << 20, 128 << 10) == 0, "read");
	CHECK(!memcmp(r, a, 64 << 10) && !memcmp(r + (64 << 10), b, 64 << 10), "read back");
	CHECK(m && !memcmp((char *)m->base + (1 << 20), a, 64 << 10), "the mapping holds the write");

	/* zeroing, then a read shows zeroes there and the rest untouched */
	CHECK(run_io(loop, d, BC_DIO_ZERO, NULL, 0, (1 << 20) + 4096, 8192) == 0, "zero");
	CHECK(run_io(loop, d, BC_DIO_READ, &riov, 1, 1 << 20, 128 << 10) == 0, "read");
	CHECK(!memcmp(r, a, 4096), "before the zeroed range");
	CHECK(r[4096] == 0 && r[4096 + 8191] == 0 && !memcmp(r + 12288, a + 12288, 4096),
	      "zeroed range reads zero, the rest stays");

	/* out of range and past the end: refused, nothing written */
	CHECK(run_io(loop, d, BC_DIO_WRITE, &riov, 1, SIZE - 4096, 128 << 10) == -EINVAL,
	      "a write across the end is refused");
	CHECK(run_io(loop, d, BC_DIO_READ, &riov, 1, SIZE + 4096, 4096) == -EINVAL,
	      "a read past the end is refused");
	CHECK(m && ((char *)m->base)[SIZE - 4096] == 0, "the refused write wrote nothing");

	/* one user at a time */
	ret = bc_dev_open(&d2, NULL, loop, path, 0);
	CHECK(ret == -EBUSY, "a second open: %d (want -EBUSY)", ret);
	if (!ret)
		bc_dev_close(d2);
	bc_dev_close(d);

	/* reopened: the data is there; read-only refuses writes */
	ret = bc_dev_open(&d, NULL, loop, path, BC_DEV_RDONLY);
	CHECK(ret == 0, "read-only open: %d", ret);
	if (!ret) {
		CHECK(run_io(loop, d, BC_DIO_READ, &riov, 1, 1 << 20, 128 << 10) == 0, "read");
		CHECK(!memcmp(r + (64 << 10), b, 64 << 10), "data kept across close/reopen");
		CHECK(run_io(loop, d, BC_DIO_WRITE, &riov, 1, 0, 4096) == -EROFS, "read-only write");
		bc_dev_close(d);
	}
	/* the file driver sees the same bytes */
	ret = bc_dev_open(&d, NULL, loop, file, 0);
	CHECK(ret == 0, "file driver open: %d", ret);
	if (!ret) {
		CHECK(run_io(loop, d, BC_DIO_READ, &riov, 1, 1 << 20, 128 << 10) == 0, "read");
		CHECK(!memcmp(r, a, 4096) && !memcmp(r + (64 << 10), b, 64 << 10),
		      "the file holds what the pmem driver wrote");
		bc_dev_close(d);
	}
	free(a);
	free(b);
	free(r);
}

int main(void)
{
	struct bc_loop *loop = NULL;
	struct bc_dev *d = NULL;
	char *f1, *f2, *empty, path[600];
	int ret;

	if (bc_loop_new(&loop, 64) < 0)
		return 77;
	f1 = t_file("pmem1.img", SIZE);
	f2 = t_file("pmem2.img", SIZE);
	empty = t_file("empty.img", 0);
	test_one(loop, f1, "page");
	setenv("PMEM2_FORCE_GRANULARITY", "CACHE_LINE", 1);
	test_one(loop, f2, "cache-line");
	unsetenv("PMEM2_FORCE_GRANULARITY");

	snprintf(path, sizeof(path), "pmem:%s", empty);
	ret = bc_dev_open(&d, NULL, loop, path, 0);
	CHECK(ret == -EINVAL, "an empty file: %d (want -EINVAL)", ret);
	snprintf(path, sizeof(path), "pmem:%s.missing", f1);
	ret = bc_dev_open(&d, NULL, loop, path, 0);
	CHECK(ret == -ENOENT, "a missing file: %d (want -ENOENT)", ret);
	bc_loop_free(loop);
	free(f1);
	free(f2);
	free(empty);
	t_cleanup();
	return t_finish("pmem driver: page and cache-line paths, zero, flush, bounds, read-only, "
			"reopen, exclusive, bad files");
}
