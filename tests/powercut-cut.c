/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The power-cut images: the record cut at a point, what is durable on each
 * device there and what may or may not have reached it; and the check of
 * each image by a fresh engine (recovery) reading every export, per origin
 * against that origin's model (a FLUSH covers only its own origin's
 * writes), with a second life and a second recovery on some images.  With
 * several origins the cache is opened as serve does (bc_cache_open).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blkcache/cache.h"
#include "blkcache/shards.h"
#include "blkcache/target.h"
#include "cache/shards_internal.h"
#include "engine/engine.h"
#include "powercut.h"
#include "testutil.h"

int pc_break;

int pc_break_mode(void)
{
	const char *b = getenv("BLKCACHE_POWERCUT_BREAK");

	return pc_break ? pc_break : b ? atoi(b) : 0;
}

enum img_kind { IMG_ALL, IMG_NONE, IMG_RAND, IMG_TORN, IMG_SCATTER, IMG_KINDS };
static const char *const kind_name[IMG_KINDS] = { "all", "none", "random", "torn", "scatter" };

struct cutctx {
	struct pc_run *run;
	uint64_t rng;
	unsigned ndev;            /* the cache and the origins */
	struct rec_img *dur[REC_MAXDEV]; /* everything durable at the current cut */
	size_t *cand;             /* submitted, not durable (log indices, in order) */
	size_t ncand;
	size_t next_ev;
	size_t *flushes, nflushes, fpos;  /* device flushes by completion */
	/* per origin: its client FLUSHes by ack, those acked before the cut */
	size_t *cflushes[PC_MAXORIGINS], ncflushes[PC_MAXORIGINS], cfpos[PC_MAXORIGINS];
	uint64_t S[REC_MAXDEV], T[PC_MAXORIGINS];
	int64_t *lo[PC_MAXORIGINS], *hi[PC_MAXORIGINS]; /* per sector, for the current cut */
	uint64_t cut;
	const char *kind;
	uint32_t *seen[PC_MAXORIGINS]; /* per sector: read after the first recovery */
	bool second;              /* checking a second recovery against seen */
	bool second_reported;     /* a second recovery's violation printed with its history */
	int broken;               /* BLKCACHE_POWERCUT_BREAK self-test */
	bool kill;                /* cuts model a killed process, not a power cut */
};

struct chk_read {
	struct bc_request r;
	struct cutctx *cx;
	unsigned oi;
	void *buf;
	bool busy;
};

static const char *oname(const struct cutctx *cx, unsigned oi)
{
	return cx->run->o[oi].name[0] ? cx->run->o[oi].name : "-";
}

static void report_second(struct cutctx *cx, unsigned oi, uint64_t s, uint32_t want, uint32_t got)
{
	if (!pc_violation())
		return;
	fprintf(stderr, "VIOLATION: workload %s seed %llu cut %llu image %s%s%s, second recovery "
		"(after more writes and a FLUSH): sector %llu holds %s%u, the first recovery read "
		"(or the later write) %s%u", cx->run->wl->name, (unsigned long long)cx->run->seed,
		(unsigned long long)cx->cut, cx->kind, cx->run->o[oi].name[0] ? ", origin " : "",
		cx->run->o[oi].name, (unsigned long long)s, got == PC_V_ZERO ? "zeroes " : "value ",
		got, want == PC_V_ZERO ? "zeroes " : "value ", want);
	if (!cx->second_reported) {
		cx->second_reported = true;
		pc_print_history(cx->run, oi, s, cx->lo[oi][s], cx->hi[oi][s], got);
	} else {
		fprintf(stderr, "\n");
	}
}

static void chk_read_done(struct bc_request *r, int res)
{
	struct chk_read *q = r->priv;
	struct cutctx *cx = q->cx;
	unsigned oi = q->oi;
	uint64_t i, s0 = r->offset / PC_SECTOR;

	q->busy = false;
	if (res) {
		if (pc_violation())
			fprintf(stderr, "VIOLATION: workload %s cut %llu image %s origin %s: read "
				"%llu+%llu failed: %s\n", cx->run->wl->name, (unsigned long long)cx->cut,
				cx->kind, oname(cx, oi), (unsigned long long)r->offset,
				(unsigned long long)r->length, strerror(-res));
		return;
	}
	for (i = 0; i < r->length / PC_SECTOR; i++) {
		uint64_t s = s0 + i, claimed;
		uint32_t val = pc_decode_sector((char *)q->buf + i * PC_SECTOR, s, &claimed);

		if (cx->second) {
			if (val != cx->seen[oi][s])
				report_second(cx, oi, s, cx->seen[oi][s], val);
			continue;
		}
		cx->seen[oi][s] = val;
		if (!pc_allowed(cx->run, oi, s, cx->lo[oi][s], cx->hi[oi][s], val)) {
			char what[96];

			snprintf(what, sizeof(what), "cut %llu image %s", (unsigned long long)cx->cut,
				 cx->kind);
			pc_report(cx->run, oi, what, s, cx->lo[oi][s], cx->hi[oi][s], val, claimed);
		}
	}
	pc_tot.sectors += r->length / PC_SECTOR;
}

#define CHK_QD    4
#define CHK_CHUNK (1u << 20)
/* One origin: the cut images are attached under other names than the
 * devices the workload ran on: the same origin, moved (its recorded
 * identity is the device name). */
static const struct bc_engine_config chk_cfg = {
	.cache_path = "rec:pc-cache", .origin_path = "rec:pc-origin", .origin_moved = true,
};

static void open_failed(struct cutctx *cx, int ret, const char *why)
{
	pc_tot.open_failures++;
	if (pc_violation())
		fprintf(stderr, "VIOLATION: workload %s seed %llu cut %llu image %s: %srecovery "
			"failed: %s (%s)\n", cx->run->wl->name, (unsigned long long)cx->run->seed,
			(unsigned long long)cx->cut, cx->kind, cx->second ? "second " : "",
			strerror(-ret), why);
}

static bool size_ok(struct cutctx *cx, const struct bc_target *t, unsigned oi)
{
	if (t->size == cx->run->o[oi].export_size)
		return true;
	if (pc_violation())
		fprintf(stderr, "VIOLATION: origin %s: export size %llu after recovery\n",
			oname(cx, oi), (unsigned long long)t->size);
	return false;
}

/* Read origin @oi's whole export, a few requests in flight, checking as
 * they come. */
static void chk_read_all(struct cutctx *cx, const struct bc_target *t, unsigned oi)
{
	static struct chk_read q[CHK_QD];
	uint64_t pos = 0, size = cx->run->o[oi].export_size;
	unsigned i, busy;

	for (;;) {
		busy = 0;
		for (i = 0; i < CHK_QD; i++) {
			if (!q[i].buf)
				q[i].buf = bc_alloc_aligned(CHK_CHUNK);
			if (!q[i].busy && pos < size) {
				memset(&q[i].r, 0, sizeof(q[i].r));
				q[i].cx = cx;
				q[i].oi = oi;
				q[i].busy = true;
				q[i].r.op = BC_OP_READ;
				q[i].r.offset = pos;
				q[i].r.length = size - pos < CHK_CHUNK ? size - pos : CHK_CHUNK;
				q[i].r.buf = q[i].buf;
				q[i].r.done = chk_read_done;
				q[i].r.priv = &q[i];
				pos += q[i].r.length;
				bc_target_submit(t, &q[i].r);
			}
			busy += q[i].busy;
		}
		if (!busy && pos >= size)
			break;
		if (bc_loop_run_once(pc_loop, 1000) < 0)
			break;
	}
}

/* Pause writeback and let it finish its batch (an engine dropped with IO
 * in flight would leak what that IO holds; a snapshot would miss it). */
static void chk_quiesce(struct bc_engine **e, unsigned n)
{
	unsigned i, k, busy = 1;

	for (k = 0; k < n; k++)
		bc_engine_set(e[k], "writeback_paused", 1, NULL, 0);
	for (i = 0; i < 100000 && busy; i++) {
		busy = rec_pending();
		for (k = 0; k < n; k++)
			busy += !bc_wb_idle(e[k]);
		if (busy)
			bc_loop_run_once(pc_loop, 1000);
	}
}

/* Drop the engine (or shards): no clean shutdown, as after another crash. */
static void chk_drop(struct bc_engine *e, struct bc_shards *s)
{
	struct bc_engine *se[BC_SHARDS_MAX];
	unsigned i, n = s ? bc_shards_count(s) : 0;

	for (i = 0; i < n; i++)
		se[i] = bc_shards_engine(s, i);
	if (s) {
		chk_quiesce(se, n);
		bc_shards_crash(s);
		return;
	}
	chk_quiesce(&e, 1);
	bc_engine_free(e);
}

/* Second life: more writes (partial ones merge with recovered blocks) and
 * a FLUSH; cx->seen becomes what a second recovery must read exactly. */
static int chk_more_writes(struct cutctx *cx, const struct bc_target *t, unsigned oi)
{
	static uint32_t next_id = 0x70000000;
	uint64_t size = cx->run->o[oi].export_size, off, len, s, j;
	char *buf = bc_alloc_aligned(256 << 10);
	unsigned k;
	int ret = 0;

	for (k = 0; k < 8 && !ret; k++) {
		uint32_t id = next_id++;
		int op = k == 7 ? BC_OP_WRITE_ZEROES : BC_OP_WRITE;

		if (k < 2) {
			len = 256 << 10;
			off = pc_rand(&cx->rng) % ((size - len) / 4096 + 1) * 4096;
		} else if (k < 7) {
			len = (1 + pc_rand(&cx->rng) % 12) * PC_SECTOR;
			off = pc_rand(&cx->rng) % ((size - len) / PC_SECTOR + 1) * PC_SECTOR;
		} else {
			len = (1 + pc_rand(&cx->rng) % 3) * 4096;
			off = pc_rand(&cx->rng) % ((size - len) / 4096 + 1) * 4096;
		}
		for (j = 0; j < len / PC_SECTOR; j++) {
			s = off / PC_SECTOR + j;
			if (op == BC_OP_WRITE)
				pc_fill_sector(buf + j * PC_SECTOR, s, id, 0);
			cx->seen[oi][s] = op == BC_OP_WRITE ? id : PC_V_ZERO;
		}
		ret = t_io(pc_loop, t, op, 0, off, len, buf);
	}
	if (!ret)
		ret = t_io(pc_loop, t, BC_OP_FLUSH, 0, 0, 0, NULL);
	if (ret && pc_violation())
		fprintf(stderr, "VIOLATION: workload %s cut %llu image %s origin %s: a write after "
			"recovery failed: %s\n", cx->run->wl->name, (unsigned long long)cx->cut,
			cx->kind, oname(cx, oi), strerror(-ret));
	free(buf);
	return ret;
}

/* One origin: recover a fresh engine on the images and read the whole
 * export; on some images, live on, crash again, recover again and compare. */
/* Recover the images: an engine, or a sharded origin's shards (on the one
 * loop); NULL if that failed (a violation). */
static const struct bc_target *chk_open_one(struct cutctx *cx, struct bc_engine **e,
					    struct bc_shards **s)
{
	struct bc_engine_config cfg = chk_cfg;
	struct bc_shards_cache_config cc = { .engine = &cfg, .one_thread = true };
	const struct bc_target *t;
	char why[512] = "";
	int ret;

	*e = NULL;
	*s = NULL;
	cfg.devices = rec_devices();
	ret = cx->run->wl->shards ? bc_shards_open_cache(s, pc_loop, &cc, why, sizeof(why)) :
				    bc_engine_open(e, pc_loop, &cfg, why, sizeof(why));
	if (ret) {
		open_failed(cx, ret, why);
		return NULL;
	}
	t = *s ? bc_shards_target(*s) : bc_engine_target(*e);
	if (size_ok(cx, t, 0))
		return t;
	if (*s)
		bc_shards_crash(*s);
	else
		bc_engine_free(*e);
	return NULL;
}

static void check_image_one(struct cutctx *cx, struct rec_img **img)
{
	uint64_t v0 = pc_tot.violations;
	const struct bc_target *t;
	struct bc_engine *e;
	struct bc_shards *s;

	rec_attach(0, "pc-cache", img[0], false);
	rec_attach(1, "pc-origin", img[1], false);
	pc_tot.images++;
	cx->second = cx->second_reported = false;
	t = chk_open_one(cx, &e, &s);
	if (t) {
		chk_read_all(cx, t, 0);
		if (pc_tot.images % 5 == 0 && pc_tot.violations == v0 && !chk_more_writes(cx, t, 0)) {
			chk_drop(e, s);
			cx->second = true;
			pc_tot.second++;
			t = chk_open_one(cx, &e, &s);
			if (t)
				chk_read_all(cx, t, 0);
		}
		if (t)
			chk_drop(e, s);
	}
	rec_detach(0);
	rec_detach(1);
}

/* Several origins: the cache and every origin, as serve opens them; NULL
 * (a violation) if recovery fails or does not serve them all. */
static struct bc_cache *chk_open_cache(struct cutctx *cx, struct bc_engine **e)
{
	struct bc_engine_config cfg = { .cache_path = "rec:cache", .devices = rec_devices() };
	struct bc_cache *c = NULL;
	char why[512] = "";
	unsigned oi;
	int ret = bc_cache_open(&c, pc_loop, &cfg, why, sizeof(why));

	if (ret) {
		open_failed(cx, ret, why);
		return NULL;
	}
	if (bc_cache_count(c) != cx->run->norigins) {
		snprintf(why, sizeof(why), "%u origins served, not %u", bc_cache_count(c),
			 cx->run->norigins);
		open_failed(cx, -EINVAL, why);
		bc_cache_close(c);
		return NULL;
	}
	for (oi = 0; oi < cx->run->norigins; oi++) {
		e[oi] = bc_cache_find(c, cx->run->o[oi].name);
		if (!e[oi]) {
			snprintf(why, sizeof(why), "origin %s is not served", cx->run->o[oi].name);
			open_failed(cx, -ENOENT, why);
		}
		if (!e[oi] || !size_ok(cx, bc_engine_target(e[oi]), oi)) {
			bc_cache_close(c);
			return NULL;
		}
	}
	return c;
}

static void chk_close_cache(struct cutctx *cx, struct bc_cache *c)
{
	int ret = bc_cache_close(c);

	if (ret && pc_violation())
		fprintf(stderr, "VIOLATION: workload %s cut %llu image %s: closing the recovered cache "
			"failed: %s\n", cx->run->wl->name, (unsigned long long)cx->cut, cx->kind,
			strerror(-ret));
}

/* A crash of the recovered cache now: quiesce it, let its clean shutdown
 * write to copies of the images (the images stay as they are now). */
static void chk_crash_cache(struct cutctx *cx, struct bc_cache *c, struct bc_engine **e,
			    struct rec_img **img)
{
	struct rec_img *scratch[REC_MAXDEV];
	unsigned d;

	chk_quiesce(e, cx->run->norigins);
	for (d = 0; d < cx->ndev; d++) {
		scratch[d] = rec_img_clone(img[d]);
		rec_attach(d, d ? cx->run->o[d - 1].name : "cache", scratch[d], false);
	}
	chk_close_cache(cx, c);
	for (d = 0; d < cx->ndev; d++) {
		rec_attach(d, d ? cx->run->o[d - 1].name : "cache", img[d], false);
		rec_img_free(scratch[d]);
	}
}

static void check_image_multi(struct cutctx *cx, struct rec_img **img)
{
	const struct pc_run *run = cx->run;
	uint64_t v0 = pc_tot.violations;
	struct bc_engine *e[PC_MAXORIGINS];
	struct bc_cache *c;
	unsigned oi, d;
	int ret = 0;

	for (d = 0; d < cx->ndev; d++)
		rec_attach(d, d ? run->o[d - 1].name : "cache", img[d], false);
	pc_tot.images++;
	cx->second = cx->second_reported = false;
	c = chk_open_cache(cx, e);
	if (c) {
		for (oi = 0; oi < run->norigins; oi++)
			chk_read_all(cx, bc_engine_target(e[oi]), oi);
		if (pc_tot.images % 5 == 0 && pc_tot.violations == v0) {
			for (oi = 0; oi < run->norigins && !ret; oi++)
				ret = chk_more_writes(cx, bc_engine_target(e[oi]), oi);
			if (!ret) {
				chk_crash_cache(cx, c, e, img);
				cx->second = true;
				pc_tot.second++;
				c = chk_open_cache(cx, e);
				for (oi = 0; c && oi < run->norigins; oi++)
					chk_read_all(cx, bc_engine_target(e[oi]), oi);
			}
		}
		if (c)
			chk_close_cache(cx, c);
	}
	for (d = 0; d < cx->ndev; d++)
		rec_detach(d);
}

static void check_image(struct cutctx *cx, struct rec_img **img)
{
	const struct pc_run *run = cx->run;
	char what[96];
	unsigned oi;

	if (run->wl->prefix) {
		snprintf(what, sizeof(what), "cut %llu image %s", (unsigned long long)cx->cut, cx->kind);
		for (oi = 0; oi < run->norigins; oi++)
			pc_check_prefix(run, oi, img[1 + oi], cx->cut, cx->cflushes[oi], cx->cfpos[oi],
					what);
	}
	if (run->wl->origins)
		check_image_multi(cx, img);
	else
		check_image_one(cx, img);
}

static void apply_ev(struct rec_img *img, const struct rec_ev *ev)
{
	if (ev->op == BC_DIO_WRITE)
		rec_img_write(img, ev->off, ev->data, ev->len);
	else if (ev->op == BC_DIO_DISCARD || ev->op == BC_DIO_ZERO)
		rec_img_zero(img, ev->off, ev->len);
}

/* The candidate a torn or scattered image tears: a random write of more
 * than one sector (SIZE_MAX: none). */
static size_t pick_victim(struct cutctx *cx, enum img_kind kind)
{
	size_t i, nw = 0;
	uint64_t k;

	for (i = 0; i < cx->ncand; i++)
		if (rec_log.ev[cx->cand[i]].op == BC_DIO_WRITE && rec_log.ev[cx->cand[i]].len > PC_SECTOR)
			nw++;
	if ((kind != IMG_TORN && kind != IMG_SCATTER) || !nw)
		return SIZE_MAX;
	k = pc_rand(&cx->rng) % nw;
	for (i = 0; i < cx->ncand; i++)
		if (rec_log.ev[cx->cand[i]].op == BC_DIO_WRITE &&
		    rec_log.ev[cx->cand[i]].len > PC_SECTOR && !k--)
			return i;
	return SIZE_MAX;
}

/* Build and check one image of @kind at the current cut. */
static void cut_image(struct cutctx *cx, enum img_kind kind)
{
	struct rec_img *img[REC_MAXDEV];
	size_t i, victim;
	bool *present = calloc(cx->ncand + 1, sizeof(bool));
	unsigned d;

	if (!present)
		exit(1);
	for (i = 0; i < cx->ncand; i++)
		present[i] = kind == IMG_ALL ? true : kind == IMG_NONE ? false : pc_rand(&cx->rng) & 1;
	victim = pick_victim(cx, kind);
	for (d = 0; d < cx->ndev; d++)
		img[d] = rec_img_clone(cx->dur[d]);
	for (i = 0; i < cx->ncand; i++) {
		const struct rec_ev *ev = &rec_log.ev[cx->cand[i]];
		uint64_t n = ev->len / PC_SECTOR, k, j;

		if (i == victim && kind == IMG_TORN) {
			/* Only a prefix of its sectors reached the medium. */
			k = 1 + pc_rand(&cx->rng) % (n - 1);
			rec_img_write(img[ev->dev], ev->off, ev->data, k * PC_SECTOR);
		} else if (i == victim) {
			/* A random subset of its sectors reached the medium. */
			for (j = 0; j < n; j++)
				if (pc_rand(&cx->rng) & 1)
					rec_img_write(img[ev->dev], ev->off + j * PC_SECTOR,
						      ev->data + j * PC_SECTOR, PC_SECTOR);
		} else if (present[i]) {
			apply_ev(img[ev->dev], ev);
		}
	}
	cx->kind = kind_name[kind];
	check_image(cx, img);
	for (d = 0; d < cx->ndev; d++)
		rec_img_free(img[d]);
	free(present);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_flush(const void *a, const void *b)
{
	const struct rec_ev *x = &rec_log.ev[*(const size_t *)a], *y = &rec_log.ev[*(const size_t *)b];

	return x->complete < y->complete ? -1 : x->complete > y->complete;
}

static struct pc_run *sort_run;
static int cmp_cflush(const void *a, const void *b)
{
	const struct pc_op *x = &sort_run->ops[*(const size_t *)a], *y = &sort_run->ops[*(const size_t *)b];

	return x->ack < y->ack ? -1 : x->ack > y->ack;
}

/* The model at cut @c: writes acknowledged before the last acknowledged
 * client FLUSH of their origin was submitted, and acknowledged FUA writes,
 * must be there; after a kill (written acks), every acknowledged write. */
static void advance_model(struct cutctx *cx, uint64_t c)
{
	struct pc_run *run = cx->run;
	uint64_t s, t, tall = 0;
	unsigned oi;

	for (oi = 0; oi < run->norigins; oi++) {
		const size_t *cf = cx->cflushes[oi];

		for (; cx->cfpos[oi] < cx->ncflushes[oi] && run->ops[cf[cx->cfpos[oi]]].ack < c;
		     cx->cfpos[oi]++)
			if (run->ops[cf[cx->cfpos[oi]]].submit > cx->T[oi])
				cx->T[oi] = run->ops[cf[cx->cfpos[oi]]].submit;
		if (cx->T[oi] > tall)
			tall = cx->T[oi];
	}
	for (oi = 0; oi < run->norigins; oi++) {
		/* (self-test 3: any origin's FLUSH covers all origins' writes) */
		t = cx->broken == 2 || cx->kill ? c : cx->broken == 3 ? tall : cx->T[oi];
		for (s = 0; s < run->o[oi].nsect; s++)
			pc_bounds(run, oi, s, t, c, c, &cx->lo[oi][s], &cx->hi[oi][s]);
	}
}

/* Move the cut forward to @c: durable state, candidates, model bounds. */
static void advance(struct cutctx *cx, uint64_t c)
{
	size_t i, keep = 0;

	cx->cut = c;
	for (; cx->next_ev < rec_log.n && rec_log.ev[cx->next_ev].submit < c; cx->next_ev++)
		if (rec_log.ev[cx->next_ev].op != BC_DIO_FLUSH)
			cx->cand[cx->ncand++] = cx->next_ev;
	/* A write is durable once a flush submitted after its completion has
	 * completed. */
	for (; cx->fpos < cx->nflushes && rec_log.ev[cx->flushes[cx->fpos]].complete < c; cx->fpos++) {
		const struct rec_ev *f = &rec_log.ev[cx->flushes[cx->fpos]];

		if (f->submit > cx->S[f->dev])
			cx->S[f->dev] = f->submit;
	}
	for (i = 0; i < cx->ncand; i++) {
		const struct rec_ev *ev = &rec_log.ev[cx->cand[i]];

		/* A killed process: every completed write is on the devices. */
		if (cx->kill ? ev->complete >= c : ev->complete >= cx->S[ev->dev])
			cx->cand[keep++] = cx->cand[i];
		else if (!(cx->broken == 1 && ev->dev == 0 && ev->op == BC_DIO_WRITE &&
			   pc_rand(&cx->rng) % 8 == 0))
			apply_ev(cx->dur[ev->dev], ev); /* (self-test 1: lose some) */
	}
	cx->ncand = keep;
	advance_model(cx, c);
}

static void cx_init(struct cutctx *cx, struct pc_run *run)
{
	unsigned oi, d;
	size_t i;

	cx->broken = pc_break_mode();
	cx->ndev = 1 + run->norigins;
	cx->cand = malloc((rec_log.n + 1) * sizeof(size_t));
	cx->flushes = malloc((rec_log.n + 1) * sizeof(size_t));
	if (!cx->cand || !cx->flushes)
		exit(1);
	for (oi = 0; oi < run->norigins; oi++) {
		uint64_t n = run->o[oi].nsect;

		cx->cflushes[oi] = malloc((run->nops + 1) * sizeof(size_t));
		cx->lo[oi] = malloc(n * sizeof(int64_t));
		cx->hi[oi] = malloc(n * sizeof(int64_t));
		cx->seen[oi] = malloc(n * sizeof(uint32_t));
		if (!cx->cflushes[oi] || !cx->lo[oi] || !cx->hi[oi] || !cx->seen[oi])
			exit(1);
	}
	for (d = 0; d < cx->ndev; d++)
		cx->dur[d] = rec_img_copy(run->base[d]);
	for (i = 1; i < run->nops; i++)
		if (run->ops[i].op == BC_OP_FLUSH && run->ops[i].ack != REC_NEVER) {
			oi = run->ops[i].origin;
			cx->cflushes[oi][cx->ncflushes[oi]++] = i;
		}
	sort_run = run;
	for (oi = 0; oi < run->norigins; oi++)
		qsort(cx->cflushes[oi], cx->ncflushes[oi], sizeof(size_t), cmp_cflush);
}

static void cx_free(struct cutctx *cx)
{
	unsigned oi, d;

	for (d = 0; d < cx->ndev; d++)
		rec_img_free(cx->dur[d]);
	for (oi = 0; oi < cx->run->norigins; oi++) {
		free(cx->cflushes[oi]);
		free(cx->lo[oi]);
		free(cx->hi[oi]);
		free(cx->seen[oi]);
	}
	free(cx->cand);
	free(cx->flushes);
}

/* The cut points, sorted, distinct: right after every device flush
 * completion, and random points in between (up to @ncuts, at least a
 * third of it).  *@nflushcuts: how many of the first kind. */
static uint64_t *cut_points(struct cutctx *cx, unsigned ncuts, size_t *n, uint64_t *nflushcuts)
{
	const struct pc_run *run = cx->run;
	size_t ncut = 0, cap = rec_log.n + ncuts + 1, i, k;
	uint64_t *cuts = malloc(cap * sizeof(*cuts));

	if (!cuts)
		exit(1);
	for (i = 0; i < rec_log.n; i++) {
		if (rec_log.ev[i].op != BC_DIO_FLUSH || rec_log.ev[i].complete == REC_NEVER)
			continue;
		cx->flushes[cx->nflushes++] = i;
		if (rec_log.ev[i].complete + 1 <= run->end)
			cuts[ncut++] = rec_log.ev[i].complete + 1;
	}
	*nflushcuts = ncut;
	qsort(cx->flushes, cx->nflushes, sizeof(size_t), cmp_flush);
	for (k = 0; (ncut < ncuts || k < ncuts / 3) && ncut < cap; k++)
		cuts[ncut++] = 1 + pc_rand(&cx->rng) % run->end;
	qsort(cuts, ncut, sizeof(*cuts), cmp_u64);
	for (i = k = 0; i < ncut; i++)
		if (!k || cuts[k - 1] != cuts[i])
			cuts[k++] = cuts[i];
	*n = k;
	return cuts;
}

/* The images of cut number @i: all, none, then random subsets (one with a
 * torn write).  A killed process leaves each write in flight whole or
 * absent. */
static void cut_images(struct cutctx *cx, size_t i)
{
	if (!cx->ncand) {
		cut_image(cx, IMG_NONE);
		return;
	}
	if (cx->kill) {
		cut_image(cx, i % 2 ? IMG_NONE : IMG_ALL);
		cut_image(cx, IMG_RAND);
		return;
	}
	switch (i % 3) {
	case 0:
		cut_image(cx, IMG_ALL);
		cut_image(cx, IMG_TORN);
		break;
	case 1:
		cut_image(cx, IMG_NONE);
		cut_image(cx, IMG_RAND);
		break;
	default:
		cut_image(cx, IMG_RAND);
		cut_image(cx, pc_rand(&cx->rng) % 4 ? IMG_TORN : IMG_SCATTER);
		break;
	}
}

void pc_check_cuts(struct pc_run *run, unsigned ncuts, uint64_t seed, bool kill)
{
	struct cutctx cx = { .run = run, .rng = seed, .kill = kill };
	uint64_t *cuts, nflushcuts = 0, pending[2] = { 0, 0 };
	unsigned long nimg0 = (unsigned long)pc_tot.images;
	uint64_t pfx0 = pc_tot.prefix_images, mid0 = pc_tot.prefix_mid;
	size_t ncut, i, k;
	bool has[2];

	cx_init(&cx, run);
	cuts = cut_points(&cx, ncuts, &ncut, &nflushcuts);
	for (i = 0; i < ncut; i++) {
		advance(&cx, cuts[i]);
		pc_tot.cuts++;
		pc_tot.kill_cuts += kill;
		has[0] = has[1] = false;
		for (k = 0; k < cx.ncand; k++)
			has[rec_log.ev[cx.cand[k]].dev != 0] = true;
		pending[0] += has[0];
		pending[1] += has[1];
		cut_images(&cx, i);
	}
	printf("%s: %zu %s points (%llu at flush completions; %llu with cache writes and %llu "
	       "with origin writes not yet durable), %lu images\n", run->wl->name, ncut,
	       kill ? "kill" : "power-cut",
	       (unsigned long long)nflushcuts, (unsigned long long)pending[0],
	       (unsigned long long)pending[1], (unsigned long)pc_tot.images - nimg0);
	if (run->wl->prefix)
		printf("%s: %llu origin images checked alone, %llu of them behind the cut\n",
		       run->wl->name, (unsigned long long)(pc_tot.prefix_images - pfx0),
		       (unsigned long long)(pc_tot.prefix_mid - mid0));
	cx_free(&cx);
	free(cuts);
}
