/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * embed.c: libblkcache inside a program of your own, start to finish.
 *
 *   1. A device driver of the host's own: two RAM disks ("ram:cache",
 *      64 MiB, and "ram:origin", 256 MiB) behind the public device ops.
 *   2. Formatting: bc_cache_format() opens devices by path, so the driver
 *      goes into a registry whose match() claims the "ram:" paths.
 *   3. An engine on devices the host opened itself (bc_engine_open_devs()),
 *      fed requests through its bc_target, with the loop driven from the
 *      host's own poll(2) (bc_loop_fd(), bc_loop_timeout_ms()).
 *   4. Writes (4 KiB-aligned and not), DISCARD, WRITE_ZEROES, FUA, FLUSH;
 *      everything read back and compared with a model of the device.
 *   5. A clean close and a "restart": the device objects and the loop are
 *      thrown away, the RAM stays (as a disk outlives a process); the
 *      reopened engine recovers its log and must return every byte.  A
 *      drain then leaves the origin complete on its own.
 *
 * Build against an installed libblkcache:
 *   cc -Wall -Wextra -o embed embed.c $(pkg-config --cflags --libs libblkcache)
 * Run: ./embed [--run-once]   (--run-once: bc_loop_run_once() instead of poll)
 * Exit status 0 on success, 1 (with a message) on any failure.
 */
#define _POSIX_C_SOURCE 200809L /* poll(2), clock_gettime() under -std=c11 */

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <blkcache/device.h>
#include <blkcache/engine.h>
#include <blkcache/log.h>
#include <blkcache/loop.h>
#include <blkcache/target.h>
#include <blkcache/version.h>

#define MIB         (1024ull * 1024)
#define CACHE_SIZE  (64 * MIB)
#define ORIGIN_SIZE (256 * MIB)
#define WINDOW      (16 * MIB)  /* the part of the export written and verified */
#define MAX_BATCH   64          /* requests in flight at once */

static __attribute__((format(printf, 1, 2), noreturn)) void die(const char *fmt, ...)
{
	va_list ap;

	fputs("embed: FAILED: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* ---- 1. The RAM device driver ---------------------------------------- */

/* The "hardware": memory that outlives the bc_dev objects opened on it. */
struct ram_disk {
	const char *path;
	uint64_t size;
	uint8_t *mem;
	bool in_use; /* one open at a time, like the file driver's O_EXCL */
};

static struct ram_disk ram_disks[] = {
	{ .path = "ram:cache", .size = CACHE_SIZE },
	{ .path = "ram:origin", .size = ORIGIN_SIZE },
};
static struct ram_disk *const ram_cache = &ram_disks[0], *const ram_origin = &ram_disks[1];

static bool ram_match(const char *path)
{
	return strncmp(path, "ram:", 4) == 0;
}

static int ram_open(struct bc_dev *dev, const char *path, unsigned flags)
{
	/* bc_dev_open_ops() hands us its arg in dev->drv, and so does a
	 * registry (the arg of bc_dev_registry_add: NULL here), so look the
	 * disk up by path when there is none. */
	struct ram_disk *rd = dev->drv;
	size_t i;

	for (i = 0; !rd && i < sizeof(ram_disks) / sizeof(ram_disks[0]); i++)
		if (strcmp(ram_disks[i].path, path) == 0)
			rd = &ram_disks[i];
	if (!rd || !rd->mem)
		return -ENOENT;
	if (rd->in_use)
		return -EBUSY;
	rd->in_use = true;
	(void)flags; /* BC_DEV_RDONLY: a real driver would refuse writes then */
	dev->drv = rd;
	dev->size = rd->size;
	dev->lbs = 512; /* the engine needs 512-byte logical sectors */
	return 0;
}

static void ram_close(struct bc_dev *dev)
{
	struct ram_disk *rd = dev->drv;

	rd->in_use = false; /* the RAM itself stays */
}

/* Copy between the disk at @mem and the IO's buffers: io->iov[0..iovcnt),
 * or the inline io->iov1 when io->iov is NULL.  Returns the byte count.
 * (bc_dev_io_copy() does the same for drivers that bounce through a buffer.) */
static int ram_copy(struct bc_dev_io *io, uint8_t *mem, bool to_ram)
{
	const struct iovec *iov = io->iov ? io->iov : &io->iov1;
	unsigned cnt = io->iov ? io->iovcnt : 1, i;
	uint64_t left = io->len;

	for (i = 0; i < cnt && left; i++) {
		size_t n = iov[i].iov_len < left ? iov[i].iov_len : (size_t)left;

		if (to_ram)
			memcpy(mem, iov[i].iov_base, n);
		else
			memcpy(iov[i].iov_base, mem, n);
		mem += n;
		left -= n;
	}
	return left ? -EINVAL : (int)io->len; /* the iovecs must cover len */
}

/* Carry the IO out now; report it later, from the loop (bc_dev_io_complete
 * defers it): the engine relies on submit() never completing inline. */
static void ram_submit(struct bc_dev *dev, struct bc_dev_io *io)
{
	struct ram_disk *rd = dev->drv;
	int res = 0;

	if (io->op != BC_DIO_FLUSH &&
	    (io->offset > rd->size || io->len > rd->size - io->offset || io->len > INT32_MAX))
		res = -EINVAL;
	else
		switch (io->op) {
		case BC_DIO_READ:
			res = ram_copy(io, rd->mem + io->offset, false);
			break;
		case BC_DIO_WRITE:
			res = ram_copy(io, rd->mem + io->offset, true);
			break;
		case BC_DIO_FLUSH: /* RAM has no volatile write cache */
			break;
		case BC_DIO_DISCARD: /* must read back as zeroes */
		case BC_DIO_ZERO:
			memset(rd->mem + io->offset, 0, io->len);
			break;
		default:
			res = -EOPNOTSUPP;
		}
	bc_dev_io_complete(io, res);
}

static const struct bc_dev_ops ram_ops = {
	.name = "ram",
	.match = ram_match,
	.open = ram_open,
	.close = ram_close,
	.submit = ram_submit,
};

/* ---- The host: one loop, two devices, one engine ---------------------- */

static struct host {
	struct bc_loop *loop;
	int loop_fd;
	struct bc_dev *cache, *origin;
	struct bc_engine *engine;
	const struct bc_target *target;
	unsigned inflight;
	uint64_t completed, requests, updates, bytes_written; /* updates: all but reads */
	int error;                 /* first failed request: -errno */
	uint64_t error_offset;
	uint8_t *model;            /* what the first WINDOW bytes of the export must hold */
	struct bc_request req[MAX_BATCH];
	void *buf[MAX_BATCH];      /* 1 MiB each, BC_ALIGN-aligned */
	unsigned nreq;             /* requests in the current batch */
	bool run_once;             /* drive the loop with bc_loop_run_once() alone */
} H;

static void log_stderr(void *arg, enum bc_log_level level, const char *msg)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };

	fprintf(stderr, "%s: libblkcache %s: %s\n", (const char *)arg,
		(unsigned)level < 4 ? names[level] : "?", msg);
}

/* Completion: runs on the loop, inside bc_loop_run_once(). */
static void req_done(struct bc_request *req, int result)
{
	H.inflight--;
	H.completed++;
	if (result < 0 && !H.error) {
		H.error = result;
		H.error_offset = req->offset;
	}
}

/* Start one request of the current batch, on buffer H.buf[H.nreq]. */
static void submit(uint8_t op, uint32_t flags, uint64_t off, uint64_t len)
{
	struct bc_request *req;

	if (H.nreq == MAX_BATCH || len > MIB)
		die("internal: batch too large");
	req = &H.req[H.nreq];
	*req = (struct bc_request){ .op = op, .flags = flags, .offset = off, .length = len,
				    .buf = H.buf[H.nreq], .done = req_done };
	H.nreq++;
	H.inflight++;
	H.requests++;
	H.updates += op != BC_OP_READ;
	bc_target_submit(H.target, req); /* never completes inline */
}

/* One turn of the event loop: wait for work (at most 1 s), then run every
 * ready callback.  Nothing in the engine or the devices runs except inside
 * bc_loop_run_once().  Returns the callbacks run, or -errno. */
static int loop_step(void)
{
	struct pollfd pfd = { .fd = H.loop_fd, .events = POLLIN };
	int timeout;

	if (H.run_once) /* the simple way: let the loop do the waiting */
		return bc_loop_run_once(H.loop, 1000);
	/* A host event loop: wait on the loop's fd (among the host's own fds)
	 * for as long as bc_loop_timeout_ms() allows, then run what is ready. */
	timeout = bc_loop_timeout_ms(H.loop);
	if (timeout < 0 || timeout > 1000)
		timeout = 1000; /* wake up for the callers' watchdogs */
	if (poll(&pfd, 1, timeout) < 0 && errno != EINTR)
		return -errno;
	return bc_loop_run_once(H.loop, 0);
}

/* Run the loop until every submitted request has completed. */
static void wait_all(const char *what)
{
	uint64_t seen = H.completed, idle_since = bc_now_ns();
	int n;

	while (H.inflight) {
		n = loop_step();
		if (n < 0)
			die("%s: running the loop: %s", what, strerror(-n));
		if (H.completed != seen) {
			seen = H.completed;
			idle_since = bc_now_ns();
		} else if (bc_now_ns() - idle_since > 60ull * 1000000000) {
			die("%s: %u requests still not complete after 60 s", what, H.inflight);
		}
	}
	if (H.error)
		die("%s: a request at offset %llu failed: %s", what,
		    (unsigned long long)H.error_offset, strerror(-H.error));
	H.nreq = 0;
}

/* ---- The workload ------------------------------------------------------ */

static uint64_t mix(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* A WRITE of a pattern unique to (@off, @pass) at every byte; the model
 * follows.  Requests in one batch never overlap: their order is not
 * defined while they are in flight together. */
static void write_pattern(uint64_t off, uint64_t len, uint32_t flags, unsigned pass)
{
	uint8_t *p = H.buf[H.nreq];
	uint64_t i, v;

	for (i = 0; i < len; i += 8) {
		v = mix((off + i) * 31 + pass);
		memcpy(p + i, &v, 8);
	}
	memcpy(H.model + off, p, len);
	H.bytes_written += len;
	submit(BC_OP_WRITE, flags, off, len);
}

static void zero_range(uint8_t op, uint64_t off, uint64_t len)
{
	memset(H.model + off, 0, len);
	submit(op, 0, off, len);
}

/* Read the window back (16 x 1 MiB, all in flight) and compare. */
static void verify(const char *when)
{
	uint64_t i;
	unsigned k;

	for (k = 0; k < WINDOW / MIB; k++)
		submit(BC_OP_READ, 0, k * MIB, MIB);
	wait_all(when);
	for (k = 0; k < WINDOW / MIB; k++) {
		const uint8_t *got = H.buf[k], *want = H.model + k * MIB;

		if (memcmp(got, want, MIB) == 0)
			continue;
		for (i = 0; got[i] == want[i]; i++)
			;
		die("%s: byte %llu reads 0x%02x, want 0x%02x", when,
		    (unsigned long long)(k * MIB + i), got[i], want[i]);
	}
}

static void workload(void)
{
	unsigned i;

	/* 64 x 64 KiB, sequential: [0, 4 MiB), all in flight at once. */
	for (i = 0; i < 64; i++)
		write_pattern(i * 64 * 1024ull, 64 * 1024, 0, 1);
	wait_all("sequential writes");
	/* 24 small writes (512 B to 3.5 KiB) at offsets that are not 4 KiB
	 * aligned, over that data: the engine merges partial blocks. */
	for (i = 0; i < 24; i++)
		write_pattern(i * 160 * 1024ull + (i % 7 + 1) * 512, (i % 7 + 1) * 512, 0, 2);
	wait_all("unaligned writes");
	/* 4 x 1 MiB in [8 MiB, 12 MiB), one of them FUA; a write across two
	 * block boundaries; a DISCARD and a WRITE_ZEROES (unaligned). */
	for (i = 0; i < 4; i++)
		write_pattern(8 * MIB + i * MIB, MIB, i == 2 ? BC_REQ_FUA : 0, 3);
	write_pattern(12 * MIB + 3584, 8192, 0, 3);
	zero_range(BC_OP_DISCARD, 1 * MIB, 128 * 1024);
	zero_range(BC_OP_WRITE_ZEROES, 2 * MIB + 512, 7 * 1024);
	wait_all("large writes, discard, write zeroes");
	/* Make all of it durable. */
	submit(BC_OP_FLUSH, 0, 0, 0);
	wait_all("flush");
}

/* ---- Engine lifecycle --------------------------------------------------- */

static void engine_up(bool first)
{
	struct bc_engine_config cfg = { 0 }; /* defaults; paths unused by _open_devs */
	struct bc_engine_stats st;
	char why[512] = "";
	int ret;

	if ((ret = bc_loop_new(&H.loop, 0)) < 0)
		die("bc_loop_new: %s", strerror(-ret));
	bc_loop_set_log(H.loop, log_stderr, "embed", BC_LOG_INFO);
	if ((H.loop_fd = bc_loop_fd(H.loop)) < 0)
		die("bc_loop_fd: %s", strerror(-H.loop_fd));
	/* The origin's path is its identity: format recorded "ram:origin"
	 * (a device that is neither a file nor a block device is known by
	 * its path), so it must be opened under the same name. */
	if ((ret = bc_dev_open_ops(&H.cache, &ram_ops, ram_cache, H.loop, "ram:cache", 0)) < 0 ||
	    (ret = bc_dev_open_ops(&H.origin, &ram_ops, ram_origin, H.loop, "ram:origin", 0)) < 0)
		die("opening the RAM devices: %s", strerror(-ret));
	ret = bc_engine_open_devs(&H.engine, H.loop, H.cache, H.origin, &cfg, why, sizeof(why));
	if (ret < 0)
		die("bc_engine_open_devs: %s (%s)", why, strerror(-ret));
	H.target = bc_engine_target(H.engine);
	if (H.target->size != ORIGIN_SIZE)
		die("the export is %llu bytes, want %llu", (unsigned long long)H.target->size,
		    (unsigned long long)ORIGIN_SIZE);
	bc_engine_get_stats(H.engine, &st);
	bc_loop_log(H.loop, BC_LOG_INFO, "engine %s: %llu cached blocks (%llu dirty), "
		    "%llu segments recovered", first ? "opened" : "reopened",
		    (unsigned long long)st.cached_blocks, (unsigned long long)st.dirty_blocks,
		    (unsigned long long)st.recovered_segments);
}

static void engine_down(void)
{
	int ret = bc_engine_close(H.engine); /* writes, flushes, marks clean */

	H.engine = NULL;
	H.target = NULL;
	if (ret < 0)
		die("bc_engine_close: %s", strerror(-ret));
	/* The devices are ours (bc_engine_open_devs): close them after it. */
	bc_dev_close(H.origin);
	bc_dev_close(H.cache);
	H.origin = H.cache = NULL;
	bc_loop_free(H.loop); /* also closes the loop fd */
	H.loop = NULL;
}

static void drain_done(void *arg, int result)
{
	*(int *)arg = result;
}

/* Drain: write every dirty block back to the origin and flush it.  A drain
 * does not give up while the origin fails (writeback retries, backing
 * off): the host decides how long to wait, here from the stats. */
static void drain(void)
{
	struct bc_engine_stats st;
	uint64_t t0 = bc_now_ns();
	int ret, result = 1;

	if ((ret = bc_engine_drain(H.engine, drain_done, &result)) < 0)
		die("bc_engine_drain: %s", strerror(-ret));
	while (result == 1) {
		if ((ret = loop_step()) < 0)
			die("drain: running the loop: %s", strerror(-ret));
		bc_engine_get_stats(H.engine, &st);
		if (st.writeback_failing >= 3)
			die("drain: writing back to the origin keeps failing (%s)",
			    strerror((int)st.writeback_last_errno));
		if (bc_now_ns() - t0 > 120ull * 1000000000)
			die("drain: not finished after 120 s (%llu dirty blocks left)",
			    (unsigned long long)st.dirty_blocks);
	}
	if (result < 0)
		die("drain: %s", strerror(-result));
}

int main(int argc, char **argv)
{
	struct bc_dev_registry *reg = NULL;
	struct bc_format_config fcfg = { .cache_path = "ram:cache", .origin_path = "ram:origin" };
	struct bc_engine_stats st;
	char why[512] = "";
	int ret;
	unsigned i;

	if (argc > 2 || (argc == 2 && strcmp(argv[1], "--run-once") != 0)) {
		fprintf(stderr, "usage: %s [--run-once]\n", argv[0]);
		return 2;
	}
	H.run_once = argc == 2;
	fprintf(stderr, "embed: libblkcache %s (headers %s)\n", bc_version(),
		BLKCACHE_VERSION_STRING);
	bc_log_set(log_stderr, "embed", BC_LOG_WARN); /* messages not about a loop */
	for (i = 0; i < 2; i++)
		if (!(ram_disks[i].mem = calloc(1, ram_disks[i].size)))
			die("out of memory for %s", ram_disks[i].path);
	if (!(H.model = calloc(1, WINDOW)))
		die("out of memory");
	for (i = 0; i < MAX_BATCH; i++)
		if (!(H.buf[i] = bc_alloc_aligned(MIB)))
			die("out of memory");

	/* 2. Format: the library opens "ram:cache" and "ram:origin" through
	 * the registry (and its own loop), then closes them again. */
	if ((ret = bc_dev_registry_new(&reg)) < 0 || (ret = bc_dev_registry_add(reg, &ram_ops, NULL)) < 0)
		die("device registry: %s", strerror(-ret));
	fcfg.devices = reg;
	if ((ret = bc_cache_format(&fcfg, why, sizeof(why))) < 0)
		die("bc_cache_format: %s (%s)", why, strerror(-ret));
	fprintf(stderr, "embed: %s\n", why);

	/* 3-4. Serve: write, flush, verify. */
	engine_up(true);
	workload();
	verify("read back before close");
	engine_down();

	/* 5. "Restart" on the same RAM: recovery must give every byte back.
	 * After a drain the origin alone holds the data: check its RAM. */
	engine_up(false);
	verify("read back after reopen");
	drain();
	if (memcmp(ram_origin->mem, H.model, WINDOW) != 0)
		die("after the drain the origin does not hold the data written");
	/* Nothing was written beyond the window: all zero (each byte equals
	 * the one after it, and the first is 0). */
	if (ram_origin->mem[WINDOW] != 0 ||
	    memcmp(ram_origin->mem + WINDOW, ram_origin->mem + WINDOW + 1, ORIGIN_SIZE - WINDOW - 1))
		die("after the drain the origin holds data beyond what was written");
	bc_engine_get_stats(H.engine, &st);
	if (st.dirty_blocks != 0)
		die("after the drain %llu blocks are still dirty", (unsigned long long)st.dirty_blocks);
	engine_down();

	/* A formatted cache is not formatted over by accident. */
	if ((ret = bc_cache_format(&fcfg, why, sizeof(why))) != -EEXIST)
		die("formatting over the cache again: got %d, want -EEXIST", ret);

	bc_dev_registry_free(reg);
	for (i = 0; i < MAX_BATCH; i++)
		free(H.buf[i]);
	for (i = 0; i < 2; i++)
		free(ram_disks[i].mem);
	free(H.model);
	printf("embed: %llu requests (%.1f MiB written), flushed, closed, reopened, %.1f MiB verified "
	       "3 times (before close, after reopen, on the origin after a drain); %llu requests in all\n",
	       (unsigned long long)H.updates, (double)H.bytes_written / MIB, (double)WINDOW / MIB,
	       (unsigned long long)H.requests);
	return 0;
}
