/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The pmem log's stores, seen by a recording persistent-memory device
 * ("tpm:", a RAM mapping whose copy/set/flush/drain functions log every
 * call): what the power-cut checker's pmem mode builds on.
 *  - every byte the engine puts in the mapping passes through the map's
 *    store functions (or a device write): replaying the recorded stores on
 *    zeroes gives the mapping exactly, after a workload of full and
 *    partial-sector writes, FUA, FLUSH, discard, write-zeroes, read misses
 *    (promotion), a ring that wraps with writeback and reclaim, a crash and
 *    a recovery;
 *  - at every FLUSH acknowledged with nothing else in flight (writeback
 *    paused), each store made so far into the ring was flushed from the CPU
 *    caches (an in-place write covering it) and fenced (a FLUSH) after it:
 *    the persistent image equals the mapping there.
 */
#include <errno.h>
#include <string.h>

#include "engine/engine.h"
#include "testutil.h"

#define SIZE (24u << 20)
#define B    4096ull

enum ev_kind { EV_STORE, EV_FLUSH, EV_DRAIN };
struct ev {
	uint8_t kind;
	uint64_t off, len;
	uint8_t *data; /* EV_STORE */
};

static struct {
	uint8_t *base;
	struct ev *ev;
	size_t n, cap;
	struct bc_pmem_map map;
	bool open;
} P;

static void rec(uint8_t kind, uint64_t off, uint64_t len, const void *data)
{
	struct ev *e;

	if (P.n == P.cap) {
		P.cap = P.cap ? 2 * P.cap : 4096;
		P.ev = realloc(P.ev, P.cap * sizeof(*P.ev));
		if (!P.ev)
			exit(1);
	}
	e = &P.ev[P.n++];
	*e = (struct ev){ .kind = kind, .off = off, .len = len };
	if (kind == EV_STORE) {
		e->data = malloc(len ? len : 1);
		if (!e->data)
			exit(1);
		memcpy(e->data, data, len);
	}
}

static uint64_t off_of(const void *p)
{
	uint64_t o = (uint64_t)((const uint8_t *)p - P.base);

	if ((const uint8_t *)p < P.base || o > SIZE)
		abort(); /* a store outside the mapping */
	return o;
}

static void *tpm_memcpy(void *dst, const void *src, size_t len, unsigned flags)
{
	(void)flags;
	rec(EV_STORE, off_of(dst), len, src);
	return memcpy(dst, src, len);
}

static void *tpm_memset(void *dst, int c, size_t len, unsigned flags)
{
	uint8_t *tmp = malloc(len ? len : 1);

	(void)flags;
	memset(tmp, c, len);
	rec(EV_STORE, off_of(dst), len, tmp);
	free(tmp);
	return memset(dst, c, len);
}

static void tpm_flush(const void *p, size_t len) { rec(EV_FLUSH, off_of(p), len, NULL); }
static void tpm_drain(void) { rec(EV_DRAIN, 0, 0, NULL); }
static void tpm_persist(const void *p, size_t len) { tpm_flush(p, len); tpm_drain(); }

static bool tpm_match(const char *path) { return !strncmp(path, "tpm:", 4); }

static int tpm_open(struct bc_dev *dev, const char *path, unsigned flags)
{
	(void)path;
	(void)flags;
	if (P.open)
		return -EBUSY;
	P.open = true;
	dev->size = SIZE;
	dev->lbs = 512;
	return 0;
}

static void tpm_close(struct bc_dev *dev) { (void)dev; P.open = false; }

/* Device IO: an in-place write is a flush of its range; any other write
 * (superblock, table, recovery's repairs) or zeroing is stores + a flush,
 * as the libpmem2 driver does it; FLUSH is the fence. */
static void tpm_submit(struct bc_dev *dev, struct bc_dev_io *io)
{
	const struct iovec *iov = io->iov ? io->iov : &io->iov1;
	unsigned cnt = io->iov ? io->iovcnt : 1, i;
	uint8_t *at = P.base + io->offset;

	(void)dev;
	if (io->op != BC_DIO_FLUSH && (io->offset > SIZE || io->len > SIZE - io->offset)) {
		bc_dev_io_complete(io, -EINVAL);
		return;
	}
	for (i = 0; i < cnt && (io->op == BC_DIO_READ || io->op == BC_DIO_WRITE); i++) {
		if (io->op == BC_DIO_READ)
			memcpy(iov[i].iov_base, at, iov[i].iov_len);
		else if (iov[i].iov_base != at)
			tpm_memcpy(at, iov[i].iov_base, iov[i].iov_len, 0);
		if (io->op == BC_DIO_WRITE)
			tpm_flush(at, iov[i].iov_len);
		at += iov[i].iov_len;
	}
	if (io->op == BC_DIO_ZERO || io->op == BC_DIO_DISCARD) {
		tpm_memset(P.base + io->offset, 0, io->len, 0);
		tpm_flush(P.base + io->offset, io->len);
	}
	if (io->op == BC_DIO_FLUSH)
		tpm_drain();
	bc_dev_io_complete(io, 0);
}

static const struct bc_pmem_map *tpm_map(const struct bc_dev *dev)
{
	(void)dev;
	return &P.map;
}

static const struct bc_dev_ops tpm_ops = {
	.name = "tpm",
	.match = tpm_match,
	.open = tpm_open,
	.close = tpm_close,
	.submit = tpm_submit,
	.pmem_map = tpm_map,
};

/* Replaying every recorded store on zeroes gives the mapping. */
static void check_routed(const char *when)
{
	uint8_t *img = calloc(1, SIZE);
	size_t i;

	if (!img)
		exit(1);
	for (i = 0; i < P.n; i++)
		if (P.ev[i].kind == EV_STORE)
			memcpy(img + P.ev[i].off, P.ev[i].data, P.ev[i].len);
	CHECK(!memcmp(img, P.base, SIZE), "%s: the mapping holds bytes no recorded store put there",
	      when);
	free(img);
}

/* Stores from @from on into [lo, SIZE): each one flushed (a flush event
 * covering it, after it) and fenced (a drain after that flush). */
static unsigned unpersisted(size_t from, uint64_t lo)
{
	size_t i, j, k;
	unsigned bad = 0;

	for (i = from; i < P.n; i++) {
		const struct ev *s = &P.ev[i];
		bool ok = false;

		if (s->kind != EV_STORE || s->off + s->len <= lo)
			continue;
		for (j = i + 1; j < P.n && !ok; j++) {
			if (P.ev[j].kind != EV_FLUSH || P.ev[j].off > s->off ||
			    P.ev[j].off + P.ev[j].len < s->off + s->len)
				continue;
			for (k = j + 1; k < P.n && !ok; k++)
				ok = P.ev[k].kind == EV_DRAIN;
		}
		bad += !ok;
	}
	return bad;
}

static int io(struct bc_engine *e, int op, uint32_t flags, uint64_t off, uint64_t len, void *buf)
{
	return t_io(t_loop, bc_engine_target(e), op, flags, off, len, buf);
}

int main(void)
{
	struct bc_format_config f = { 0 };
	struct bc_dev_registry *reg;
	char why[512], *buf = t_alloc(64 * B);
	struct bc_engine *e;
	size_t mark = 0;
	uint64_t ring;
	unsigned i, bad = 0, checks = 0;

	P.base = t_alloc(SIZE);
	memset(P.base, 0, SIZE);
	P.map = (struct bc_pmem_map){ .base = P.base, .size = SIZE, .memcpy_fn = tpm_memcpy,
				      .memset_fn = tpm_memset, .persist_fn = tpm_persist,
				      .flush_fn = tpm_flush, .drain_fn = tpm_drain };
	if (bc_dev_registry_new(&reg) || bc_dev_registry_add(reg, &tpm_ops, NULL))
		return 1;
	t_engine_fresh(8 << 20, 64ull << 20, 256u << 10); /* the loop and an origin file */
	f.cache_path = "tpm:0";
	f.origin_path = t_origin_path;
	f.segment_size = 256u << 10;
	f.devices = reg;
	CHECK(bc_cache_format(&f, why, sizeof(why)) == 0, "format: %s", why);
	t_cfg.cache_path = "tpm:0";
	t_cfg.devices = reg;
	e = t_engine_open();
	CHECK(e->log.direct, "the engine uses the pmem log on the recording device");
	ring = e->sb.ring_offset;
	CHECK(bc_engine_set(e, "writeback_paused", 1, why, sizeof(why)) == 0, "pause: %s", why);
	/* QD1: a mix, then a FLUSH; at its ack everything stored is durable. */
	for (i = 0; i < 60; i++) {
		uint64_t off = (uint64_t)(i * 37 % 2000) * B + (i % 3 == 0 ? 1024 : 0);
		unsigned len = (unsigned)(i % 3 == 0 ? 2560 : (1 + i % 7) * B);

		t_fill(buf, len, off, i + 1);
		CHECK(io(e, BC_OP_WRITE, i % 5 == 0 ? BC_REQ_FUA : 0, off, len, buf) == 0, "write %u", i);
		if (i % 11 == 0)
			CHECK(io(e, BC_OP_WRITE_ZEROES, 0, (3000 + i) * B, 8 * B, NULL) == 0, "zeroes");
		if (i % 13 == 0)
			CHECK(io(e, BC_OP_DISCARD, 0, (2000 + i) * B, 4 * B, NULL) == 0, "discard");
		if (i % 4 == 0) {
			for (unsigned k = 0; k < 3; k++) /* read misses: promotion */
				CHECK(io(e, BC_OP_READ, 0, (5000 + i) * B, B, buf) == 0, "read");
		}
		if (i % 3 == 2) {
			CHECK(io(e, BC_OP_FLUSH, 0, 0, 0, NULL) == 0, "flush %u", i);
			bad += unpersisted(mark, ring);
			checks++;
		}
	}
	CHECK(bad == 0, "%u stores into the ring were neither flushed nor fenced at %u FLUSH acks",
	      bad, checks);
	check_routed("after the QD1 phase");
	/* Wrap the ring with writeback and reclaim running. */
	CHECK(bc_engine_set(e, "writeback_paused", 0, why, sizeof(why)) == 0, "resume: %s", why);
	for (i = 0; i < 400; i++) {
		uint64_t off = (uint64_t)(i * 91 % 12000) * B;

		t_fill(buf, 16 * B, off, 1000 + i);
		CHECK(io(e, BC_OP_WRITE, 0, off, 16 * B, buf) == 0, "wrap write %u", i);
		if (i % 50 == 49)
			CHECK(io(e, BC_OP_FLUSH, 0, 0, 0, NULL) == 0, "wrap flush");
	}
	CHECK(e->log.head_seq > e->nseg, "the ring wrapped (%llu segments for %u positions)",
	      (unsigned long long)e->log.head_seq, e->nseg);
	check_routed("after the ring wrapped");
	/* A crash drops the engine with its memory: no origin IO of writeback
	 * may still be in flight in this process when it does. */
	CHECK(bc_engine_set(e, "writeback_paused", 1, why, sizeof(why)) == 0, "pause: %s", why);
	for (i = 0; i < 10000 && !bc_wb_idle(e); i++)
		bc_loop_run_once(t_loop, 10);
	CHECK(bc_wb_idle(e), "writeback did not come to rest");
	t_engine_crash(e);
	mark = P.n;
	e = t_engine_open();
	for (i = 396; i < 400; i++) {
		uint64_t off = (uint64_t)(i * 91 % 12000) * B;

		CHECK(io(e, BC_OP_READ, 0, off, 16 * B, buf) == 0 && !t_verify(buf, 16 * B, off, 1000 + i),
		      "wrap write %u after a crash", i);
	}
	check_routed("after recovery");
	CHECK(bc_engine_close(e) == 0, "close");
	check_routed("after close");
	bc_dev_registry_free(reg);
	for (size_t k = 0; k < P.n; k++)
		free(P.ev[k].data);
	free(P.ev);
	free(P.base);
	free(buf);
	t_engine_fixture_done();
	t_cleanup();
	return t_finish("pmem log stores: all routed through the map, durable at FLUSH acks");
}
