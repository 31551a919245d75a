/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Driver for RAM: "mem:PATH", a file (typically on /dev/shm) mapped shared;
 * every IO is a memory copy done at submit and completed from the loop, and
 * a FLUSH does nothing.  It measures the engine alone -- no device, no
 * system call per IO -- and lets a test or benchmark run a cache faster than
 * any disk.  It is not a way to keep data: on tmpfs it is gone at reboot,
 * and on a disk file the page cache writes it back when it likes (open says
 * so).  The file keeps the data between processes: format, then serve.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <emmintrin.h>
#endif

#include "blkcache/log.h"
#include "dev/device.h"
#include "dev/mem.h"

#define MEM_PREFIX "mem:"

struct mem_dev {
	char *base;
	size_t size;
	bool rdonly;
	char desc[96];
};

static bool mem_match(const char *path)
{
	return strncmp(path, MEM_PREFIX, strlen(MEM_PREFIX)) == 0;
}

/* Refuse what cannot be mapped as a plain RAM device; 0 or -errno. */
static int mem_check(struct bc_dev *dev, const char *file, int fd, struct stat *st, unsigned flags)
{
	struct statfs fs;
	int ret = bc_dev_lock_stat(fd, flags, st);

	if (ret < 0)
		return ret;
	if (!S_ISREG(st->st_mode)) {
		bc_loop_log(dev->loop, BC_LOG_ERR, "%s: 'mem:' takes a regular file (e.g. on "
			    "/dev/shm: truncate -s SIZE FILE); use a block device without 'mem:'", file);
		return -ENOTSUP;
	}
	if (st->st_size == 0) {
		bc_loop_log(dev->loop, BC_LOG_ERR, "%s: the file is empty; give it its size first "
			    "(truncate -s SIZE)", file);
		return -EINVAL;
	}
	if (!(flags & BC_DEV_RDONLY) && fstatfs(fd, &fs) == 0 && fs.f_type != TMPFS_MAGIC)
		bc_loop_log(dev->loop, BC_LOG_WARN, "%s is not on tmpfs: a 'mem:' device leaves "
			    "writing it back to the page cache and never flushes; it is for "
			    "benchmarks, not for keeping data", file);
	return 0;
}

static int mem_open(struct bc_dev *dev, const char *path, unsigned flags)
{
	const char *file = path + strlen(MEM_PREFIX);
	bool rdonly = flags & BC_DEV_RDONLY;
	struct mem_dev *m;
	struct stat st;
	int fd, ret;

	fd = open(file, (rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = mem_check(dev, file, fd, &st, flags);
	if (ret < 0)
		goto err_close;
	m = calloc(1, sizeof(*m));
	if (!m) {
		ret = -ENOMEM;
		goto err_close;
	}
	m->size = (size_t)st.st_size;
	m->rdonly = rdonly;
	/* Populated: a RAM device should not take a page fault per first
	 * touch of each page in the IO path. */
	m->base = mmap(NULL, m->size, rdonly ? PROT_READ : PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, fd, 0);
	if (m->base == MAP_FAILED) {
		ret = -errno;
		free(m);
		goto err_close;
	}
	snprintf(m->desc, sizeof(m->desc), "RAM (mem:): memory copies, FLUSH does nothing -- "
		 "for benchmarks, not for keeping data");
	dev->drv = m;
	dev->fd = fd;
	dev->size = m->size;
	dev->lbs = 512;
	return 0;
err_close:
	close(fd);
	return ret;
}

static void mem_close(struct bc_dev *dev)
{
	struct mem_dev *m = dev->drv;

	if (m) {
		munmap(m->base, m->size);
		free(m);
		dev->drv = NULL;
	}
	if (dev->fd >= 0)
		close(dev->fd);
	dev->fd = -1;
}

/* Writes at least this large (a sealed segment) stream past the CPU
 * caches, as a device's DMA would: the copy does not evict the engine's
 * own working set (its index, its requests), which a RAM "device" that
 * copies through the caches would. */
#define MEM_NT_MIN (64u << 10)

static void mem_store(void *ctx, void *dst, const void *src, size_t len)
{
	(void)ctx;
	if (dst == src)
		return;
#if defined(__x86_64__)
	if (len >= MEM_NT_MIN && !(((uintptr_t)dst | (uintptr_t)src | len) & 63)) {
		__m128i *d = dst;
		const __m128i *s = src;
		size_t i;

		for (i = 0; i < len / 16; i += 4) {
			__m128i a = _mm_load_si128(s + i), b = _mm_load_si128(s + i + 1);
			__m128i c = _mm_load_si128(s + i + 2), e = _mm_load_si128(s + i + 3);

			_mm_stream_si128(d + i, a);
			_mm_stream_si128(d + i + 1, b);
			_mm_stream_si128(d + i + 2, c);
			_mm_stream_si128(d + i + 3, e);
		}
		_mm_sfence();
		return;
	}
#endif
	memcpy(dst, src, len);
}

static void mem_zero(void *ctx, void *dst, size_t len)
{
	(void)ctx;
	memset(dst, 0, len);
}

static const struct bc_dev_memops mem_memops = {
	.store = mem_store,
	.zero = mem_zero,
	.flush = NULL, /* RAM: nothing more durable to reach */
};

static void mem_submit(struct bc_dev *dev, struct bc_dev_io *io)
{
	struct mem_dev *m = dev->drv;

	bc_dev_mem_submit(dev, io, m->base, m->rdonly, &mem_memops, m);
}

static const char *mem_describe(const struct bc_dev *dev)
{
	const struct mem_dev *m = dev->drv;

	return m ? m->desc : NULL;
}

const struct bc_dev_ops bc_dev_mem_ops = {
	.name = "mem",
	.match = mem_match,
	.open = mem_open,
	.close = mem_close,
	.submit = mem_submit,
	.describe = mem_describe,
};
