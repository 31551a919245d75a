/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Queue-depth accounting: a device counts every IO from bc_dev_submit()
 * until its completion callback (whatever the driver), with the maximum,
 * the average in flight as each IO was submitted and its histogram; the
 * loop counts its io_uring submissions and the SQEs they carried; the
 * engine reports both devices' queues and its loop in its stats.
 */
#include <errno.h>
#include <string.h>

#include "testutil.h"

/* ---- a device that completes only when told ---- */

#define HELD_MAX 16

struct held {
	struct bc_dev_io *io[HELD_MAX];
	unsigned n;
};

static bool held_match(const char *path)
{
	return !strncmp(path, "held:", 5);
}

static int held_open(struct bc_dev *dev, const char *path, unsigned flags)
{
	(void)path;
	(void)flags;
	dev->size = 1 << 20;
	dev->lbs = 512;
	return 0;
}

static void held_close(struct bc_dev *dev)
{
	(void)dev;
}

static void held_submit(struct bc_dev *dev, struct bc_dev_io *io)
{
	struct held *h = dev->drv;

	if (h->n == HELD_MAX) {
		bc_dev_io_complete(io, -EBUSY);
		return;
	}
	h->io[h->n++] = io;
}

static const struct bc_dev_ops held_ops = {
	.name = "held",
	.match = held_match,
	.open = held_open,
	.close = held_close,
	.submit = held_submit,
};

/* The driver completes its oldest held IO directly (no deferral). */
static void held_complete_one(struct held *h, int res)
{
	struct bc_dev_io *io = h->io[0];

	memmove(h->io, h->io + 1, --h->n * sizeof(h->io[0]));
	io->done(io, res);
}

struct cb {
	int calls, last_res;
	bool resubmit;
	struct bc_dev *dev;
};

static void cb_done(struct bc_dev_io *io, int res)
{
	struct cb *c = io->priv;

	c->calls++;
	c->last_res = res;
	CHECK(io->done == cb_done, "the submitter's callback is restored before it runs");
	if (c->resubmit) {
		c->resubmit = false;
		bc_dev_submit(c->dev, io); /* from inside its own completion */
	}
}

static void test_device_queue(struct bc_loop *loop)
{
	struct held h = { 0 };
	struct bc_dev *dev;
	struct bc_dev_io io[5];
	struct cb c[5];
	char buf[512];
	uint32_t lo, hi;
	unsigned i;

	CHECK(bc_dev_open_ops(&dev, &held_ops, &h, loop, "held:x", 0) == 0, "open");
	for (i = 0; i < 5; i++) {
		c[i] = (struct cb){ .dev = dev };
		bc_dev_io_init(&io[i], BC_DIO_READ, buf, sizeof(buf), 0, cb_done, &c[i]);
		bc_dev_submit(dev, &io[i]);
	}
	/* The five IOs saw 1, 2, 3, 4, 5 in flight. */
	CHECK(dev->q.inflight == 5 && dev->q.max_inflight == 5, "inflight %u max %u",
	      dev->q.inflight, dev->q.max_inflight);
	CHECK(dev->q.submitted == 5 && dev->q.inflight_sum == 15, "submitted %llu sum %llu",
	      (unsigned long long)dev->q.submitted, (unsigned long long)dev->q.inflight_sum);
	CHECK(dev->q.hist[0] == 1 && dev->q.hist[1] == 1 && dev->q.hist[2] == 2 &&
	      dev->q.hist[3] == 1 && dev->q.hist[4] == 0, "histogram %llu %llu %llu %llu %llu",
	      (unsigned long long)dev->q.hist[0], (unsigned long long)dev->q.hist[1],
	      (unsigned long long)dev->q.hist[2], (unsigned long long)dev->q.hist[3],
	      (unsigned long long)dev->q.hist[4]);

	/* A direct completion and a resubmission from inside the callback. */
	c[0].resubmit = true;
	held_complete_one(&h, 512);
	CHECK(c[0].calls == 1 && c[0].last_res == 512, "first completion: %d calls res %d",
	      c[0].calls, c[0].last_res);
	CHECK(dev->q.inflight == 5 && dev->q.submitted == 6 && dev->q.max_inflight == 5,
	      "after a completion and a resubmit: inflight %u submitted %llu max %u",
	      dev->q.inflight, (unsigned long long)dev->q.submitted, dev->q.max_inflight);
	while (h.n)
		held_complete_one(&h, -EIO);
	CHECK(dev->q.inflight == 0, "all completed: inflight %u", dev->q.inflight);
	for (i = 0; i < 5; i++)
		CHECK(c[i].calls == (i ? 1 : 2) && c[i].last_res == -EIO, "io %u: %d calls res %d",
		      i, c[i].calls, c[i].last_res);

	/* A deferred completion (bc_dev_io_complete) counts the same way. */
	h.n = HELD_MAX;
	c[1] = (struct cb){ .dev = dev };
	bc_dev_submit(dev, &io[1]);
	CHECK(dev->q.inflight == 1, "rejected IO in flight until its deferred completion");
	bc_loop_run_once(loop, 0);
	CHECK(dev->q.inflight == 0 && c[1].calls == 1 && c[1].last_res == -EBUSY,
	      "deferred completion: inflight %u calls %d res %d", dev->q.inflight, c[1].calls,
	      c[1].last_res);
	h.n = 0;

	/* Buckets: 1, 2, 3-4, 5-8, ..., 257+. */
#define BUCKET_IS(n, b, l, h)                                                                 \
	(bc_dev_qstats_bucket(n) == (b) && (bc_dev_qstats_bounds(b, &lo, &hi), lo == (l) && hi == (h)))
	CHECK(BUCKET_IS(1, 0, 1, 1), "bucket of 1");
	CHECK(BUCKET_IS(2, 1, 2, 2), "bucket of 2");
	CHECK(BUCKET_IS(3, 2, 3, 4), "bucket of 3");
	CHECK(BUCKET_IS(4, 2, 3, 4), "bucket of 4");
	CHECK(BUCKET_IS(5, 3, 5, 8), "bucket of 5");
	CHECK(BUCKET_IS(32, 5, 17, 32), "bucket of 32");
	CHECK(BUCKET_IS(256, BC_DEV_QD_BUCKETS - 2, 129, 256), "bucket of 256");
	CHECK(BUCKET_IS(257, BC_DEV_QD_BUCKETS - 1, 257, 0), "bucket of 257");
	CHECK(bc_dev_qstats_bucket(100000) == BC_DEV_QD_BUCKETS - 1, "bucket of 1e5");
#undef BUCKET_IS
	bc_dev_close(dev);
}

/* ---- the loop: SQEs per io_uring_enter ---- */

static void test_loop_batching(struct bc_loop *loop)
{
	char *path = t_file("dev.img", 1 << 20);
	struct bc_loop_stats s0, s1;
	struct bc_dev_io io[16];
	struct cb c[16];
	struct bc_dev *dev;
	void *buf = t_alloc(16 * 4096);
	unsigned i, done, rounds;

	CHECK(bc_dev_open(&dev, NULL, loop, path, 0) == 0, "open %s", path);
	bc_loop_run_once(loop, 0);
	bc_loop_get_stats(loop, &s0);
	for (i = 0; i < 16; i++) {
		c[i] = (struct cb){ .dev = dev };
		bc_dev_io_init(&io[i], BC_DIO_READ, (char *)buf + i * 4096, 4096, i * 4096ull, cb_done,
			       &c[i]);
		bc_dev_submit(dev, &io[i]);
	}
	CHECK(dev->q.inflight == 16 && dev->q.max_inflight == 16, "16 reads in flight (%u)",
	      dev->q.inflight);
	for (rounds = 0, done = 0; done < 16 && rounds < 1000; rounds++) {
		bc_loop_run_once(loop, 1000);
		for (i = 0, done = 0; i < 16; i++)
			done += c[i].calls;
	}
	bc_loop_get_stats(loop, &s1);
	CHECK(done == 16, "all 16 reads completed (%u)", done);
	CHECK(s1.sqes - s0.sqes == 16, "16 SQEs handed over (%llu)",
	      (unsigned long long)(s1.sqes - s0.sqes));
	CHECK(s1.enters - s0.enters == 1, "in one io_uring_enter (%llu)",
	      (unsigned long long)(s1.enters - s0.enters));
	CHECK(s1.iterations - s0.iterations == rounds, "iterations %llu, loop ran %u times",
	      (unsigned long long)(s1.iterations - s0.iterations), rounds);
	CHECK(dev->q.inflight == 0, "none left in flight");
	bc_dev_close(dev);
	free(buf);
	free(path);
}

/* ---- the engine's stats ---- */

static void test_engine_stats(void)
{
	struct bc_engine_stats st;
	struct bc_engine *e;
	char *buf = t_alloc(64 * 1024);

	t_engine_fresh(8 << 20, 16 << 20, 256 << 10);
	e = t_engine_open();
	t_fill(buf, 64 * 1024, 0, 1);
	CHECK(t_io(t_loop, bc_engine_target(e), BC_OP_READ, 0, 1 << 20, 64 * 1024, buf) == 0,
	      "read miss");
	CHECK(t_io(t_loop, bc_engine_target(e), BC_OP_WRITE, BC_REQ_FUA, 0, 64 * 1024, buf) == 0,
	      "FUA write");
	bc_engine_get_stats(e, &st);
	CHECK(st.origin_queue.submitted > 0 && st.origin_queue.inflight_sum >= st.origin_queue.submitted,
	      "origin queue: %llu IOs", (unsigned long long)st.origin_queue.submitted);
	CHECK(st.cache_queue.submitted > 0 && st.cache_queue.max_inflight >= 1,
	      "cache queue: %llu IOs", (unsigned long long)st.cache_queue.submitted);
	CHECK(st.cache_queue.inflight == 0 && st.origin_queue.inflight == 0, "idle: none in flight");
	CHECK(st.loop.enters > 0 && st.loop.sqes >= st.loop.enters && st.loop.iterations > 0,
	      "loop: %llu enters %llu sqes", (unsigned long long)st.loop.enters,
	      (unsigned long long)st.loop.sqes);
	CHECK(st.write_waited == 0 && st.write_wait_ns == 0, "no write waited");
	bc_engine_close(e);
	free(buf);
}

int main(void)
{
	struct bc_loop *loop;

	if (bc_loop_new(&loop, 64) < 0) {
		fprintf(stderr, "cannot create the loop\n");
		return 1;
	}
	test_device_queue(loop);
	test_loop_batching(loop);
	bc_loop_free(loop);
	test_engine_stats();
	t_cleanup();
	return t_finish("queue stats");
}
