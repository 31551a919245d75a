/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The power-cut checker for the persistent-memory log.  A QD1 workload
 * (writes of 1-8 blocks, some of partial sectors, FUA writes, FLUSHes)
 * runs on a recording pmem device (pmemrec.h) that logs every store, every
 * cache-line flush and every fence.  At >= 1000 cut points the media is
 * rebuilt as a power cut may leave it: a store is on the media for sure
 * only once a flush covering it and then a fence both came before the
 * cut; every other store made before the cut may have reached the media
 * or not, independently for each 8-byte word (a 64-byte line torn
 * anywhere).  A fresh engine recovers each image and every sector written
 * must read back its version at the last FLUSH (or FUA write) acknowledged
 * before the cut, or a later one -- never an older one, zeroes, garbage or
 * another sector's data.  Self-tests (they must find violations): the
 * device flushes only half of each range it is asked to; the device's
 * FLUSH does not fence.
 */
#include <string.h>

#include "engine/engine.h"
#include "pmemrec.h"
#include "testutil.h"

#define SIZE    (16u << 20)
#define B       4096ull
#define NREQ    500
#define REGION  600       /* blocks */
#define NSECT   (REGION * 8)
#define MAXVER  (NREQ + 1)

enum { R_WRITE, R_FUA, R_FLUSH };
struct req {
	uint8_t kind;
	uint64_t sect, nsect;     /* writes */
	size_t submit, ack;       /* event indices of its marks */
};

static struct req rq[NREQ];
static const struct bc_dev_registry *reg;
static size_t *dur_at;        /* pr_durable_at() of the workload */

static void run_workload(char *buf)
{
	struct bc_engine *e;
	char why[256];
	uint64_t rng = 12345;
	unsigned i;

	e = t_engine_open();
	CHECK(e->log.direct, "the pmem log is in use");
	CHECK(bc_engine_set(e, "writeback_paused", 1, why, sizeof(why)) == 0, "pause: %s", why);
	for (i = 0; i < NREQ; i++) {
		struct req *r = &rq[i];
		unsigned pick;
		int ret;

		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		pick = (unsigned)(rng >> 33) % 100;
		r->kind = pick < 15 ? R_FLUSH : pick < 25 ? R_FUA : R_WRITE;
		if (r->kind != R_FLUSH) {
			r->nsect = (pick % 3 == 0) ? 1 + (rng >> 20) % 7 : 8 * (1 + (rng >> 24) % 8);
			r->sect = (rng >> 40) % (NSECT - r->nsect);
			if (r->nsect % 8 == 0)
				r->sect &= ~7ull;
		}
		pr_mark(i);
		r->submit = pr.n - 1;
		if (r->kind == R_FLUSH) {
			ret = t_io(t_loop, bc_engine_target(e), BC_OP_FLUSH, 0, 0, 0, NULL);
		} else {
			t_fill(buf, r->nsect * 512, r->sect * 512, i + 1);
			ret = t_io(t_loop, bc_engine_target(e), BC_OP_WRITE,
				   r->kind == R_FUA ? BC_REQ_FUA : 0, r->sect * 512, r->nsect * 512, buf);
		}
		CHECK(ret == 0, "request %u", i);
		pr_mark(1000000 + i);
		r->ack = pr.n - 1;
	}
	/* The crash: nothing after this point counts. */
	pr.off = true;
	t_engine_crash(e);
}

/* The media after a cut before event @c. */
static void build_image(uint8_t *img, size_t c, uint64_t *rng)
{
	size_t i, w;

	memset(img, 0, SIZE);
	for (i = 0; i < c; i++) {
		const struct pr_ev *s = &pr.ev[i];

		if (s->kind != PR_STORE)
			continue;
		if (dur_at[i] < c) {
			memcpy(img + s->off, s->data, s->len);
			continue;
		}
		for (w = 0; w < s->len; w += 8) {
			*rng ^= *rng << 13;
			*rng ^= *rng >> 7;
			*rng ^= *rng << 17;
			if (*rng & 1)
				memcpy(img + s->off + w, s->data + w, s->len - w < 8 ? s->len - w : 8);
		}
	}
}

/* Sector @s: the version it must hold at least (0: none), for a cut
 * before event @c, and whether version @v is allowed. */
static bool allowed(uint64_t s, size_t c, uint32_t v)
{
	uint32_t need = 0, i, flush_before = 0;

	/* The newest FLUSH acknowledged before the cut covers every request
	 * submitted before it (QD1). */
	for (i = 0; i < NREQ && rq[i].submit < c; i++)
		if (rq[i].kind == R_FLUSH && rq[i].ack < c)
			flush_before = i;
	for (i = 0; i < NREQ && rq[i].submit < c; i++) {
		bool mine = rq[i].kind != R_FLUSH && s >= rq[i].sect && s < rq[i].sect + rq[i].nsect;

		if (mine && (i < flush_before || (rq[i].kind == R_FUA && rq[i].ack < c)))
			need = i + 1;
	}
	if (v == need)
		return true;
	if (v == 0 || v < need)
		return false;
	/* a later write of this sector, submitted before the cut */
	return rq[v - 1].kind != R_FLUSH && rq[v - 1].submit < c && s >= rq[v - 1].sect &&
	       s < rq[v - 1].sect + rq[v - 1].nsect;
}

static uint32_t decode(const char *sec, uint64_t s, size_t c)
{
	uint32_t i;
	static const char zero[512];

	if (!memcmp(sec, zero, 512))
		return 0;
	for (i = 0; i < NREQ && rq[i].submit < c; i++)
		if (rq[i].kind != R_FLUSH && !t_verify(sec, 512, s * 512, i + 1))
			return i + 1;
	return UINT32_MAX;
}

/* Recover the image of a cut before event @c; count wrong sectors. */
static unsigned check_cut(const uint8_t *img, size_t c, char *buf)
{
	struct bc_engine *e;
	char why[256];
	uint64_t s;
	unsigned bad = 0;

	memcpy(pr.base, img, SIZE);
	if (bc_engine_open(&e, t_loop, &t_cfg, why, sizeof(why)) < 0) {
		fprintf(stderr, "cut %zu: recovery refused the image: %s\n", c, why);
		return 1;
	}
	if (bc_engine_set(e, "writeback_paused", 1, why, sizeof(why)))
		bad++;
	for (s = 0; s < NSECT; s += 64) {
		uint64_t k;

		if (t_io(t_loop, bc_engine_target(e), BC_OP_READ, 0, s * 512, 64 * 512, buf)) {
			bad++;
			continue;
		}
		for (k = 0; k < 64; k++) {
			uint32_t v = decode(buf + k * 512, s + k, c);

			if (v == UINT32_MAX || !allowed(s + k, c, v)) {
				if (bad < 3)
					fprintf(stderr, "cut %zu: sector %llu reads version %d\n", c,
						(unsigned long long)(s + k), (int)v);
				bad++;
			}
		}
	}
	t_engine_crash(e);
	return bad;
}

/* One run: the workload, then @ncuts cuts.  Violations. */
static unsigned run(int broken, unsigned ncuts, const char *origin)
{
	struct bc_format_config f = { 0 };
	uint8_t *img = t_alloc(SIZE);
	char *buf = t_alloc(64 * 512), why[512];
	uint64_t rng = 0x9e3779b97f4a7c15ull + (uint64_t)broken;
	unsigned n, violations = 0, viol_cuts = 0;

	reg = pr_init(SIZE);
	f.cache_path = "tpm:0";
	f.origin_path = origin;
	f.segment_size = 256u << 10;
	f.devices = reg;
	f.force = true;
	CHECK(bc_cache_format(&f, why, sizeof(why)) == 0, "format: %s", why);
	t_cfg.cache_path = "tpm:0";
	t_cfg.devices = reg;
	pr.broken = broken; /* the workload only: format is not what is checked */
	run_workload(buf);
	pr.broken = 0;
	dur_at = pr_durable_at();
	for (n = 0; n < ncuts; n++) {
		/* anywhere in the workload (format and open are not acknowledged) */
		size_t first = rq[0].submit + 1;
		size_t c = first + (size_t)(((rng = rng * 6364136223846793005ull + 1) >> 20) %
					   (pr.n - first + 1));
		unsigned v;

		build_image(img, c, &rng);
		v = check_cut(img, c, buf);
		violations += v;
		viol_cuts += v > 0;
	}
	fprintf(stderr, "%s: %u cut points over %zu events, %u with violations (%u sectors)\n",
		broken == 1 ? "self-test: half flushes" : broken == 2 ? "self-test: no fences" :
		"pmem log", ncuts, pr.n, viol_cuts, violations);
	CHECK(pr.n > 2 * NREQ, "the workload was recorded (%zu events)", pr.n);
	free(dur_at);
	free(img);
	free(buf);
	return violations;
}

int main(void)
{
	t_engine_fresh(8 << 20, (uint64_t)REGION * B + (1 << 20), 256u << 10);
	/* origin of REGION blocks; writeback stays paused, so it stays zeroes */
	CHECK(run(0, 1000, t_origin_path) == 0, "violations on the pmem log");
	CHECK(run(1, 300, t_origin_path) > 0, "self-test: a device that flushes half of each range "
	      "found no violation -- the checker cannot see missing flushes");
	CHECK(run(2, 300, t_origin_path) > 0, "self-test: a device whose FLUSH does not fence found no "
	      "violation -- the checker cannot see missing fences");
	pr_free();
	t_engine_fixture_done();
	t_cleanup();
	return t_finish("pmem power cuts: 1000 cut points with 8-byte torn stores, 0 violations; "
			"both self-tests fail as they must");
}
