/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The power-cut model: self-describing sector contents, the per-sector
 * history of client requests and the values a sector may hold after a cut,
 * the cut images built from the device log, and the check of each image by
 * a fresh engine (recovery) reading the whole export.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blkcache/target.h"
#include "dev/device.h"
#include "engine/engine.h"
#include "powercut.h"
#include "testutil.h"

#define PC_MAGIC 0x5455435245574f50ull /* "POWERCUT" */
#define PC_STEP  0x9e3779b97f4a7c15ull
#define MAX_PRINT 25

struct pc_totals pc_tot;
struct bc_loop *pc_loop;

uint64_t pc_rand(uint64_t *state)
{
	uint64_t z = (*state += PC_STEP);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t sector_hash(uint64_t s, uint32_t id)
{
	uint64_t st = s * 0x100000001b3ull ^ ((uint64_t)id << 40) ^ id;

	return pc_rand(&st);
}

void pc_fill_sector(void *buf, uint64_t s, uint32_t id, uint32_t gen)
{
	uint64_t *w = buf, h = sector_hash(s, id);
	unsigned i;

	w[0] = PC_MAGIC;
	w[1] = s;
	w[2] = id | (uint64_t)gen << 32;
	for (i = 3; i < PC_SECTOR / 8; i++)
		w[i] = h + i * PC_STEP;
}

uint32_t pc_decode_sector(const void *buf, uint64_t s, uint64_t *claimed)
{
	const uint64_t *w = buf;
	uint32_t id;
	uint64_t h;
	unsigned i;

	*claimed = s;
	if (w[0] != PC_MAGIC) {
		for (i = 0; i < PC_SECTOR / 8; i++)
			if (w[i])
				return PC_V_GARBAGE;
		return PC_V_ZERO;
	}
	if (w[1] != s) {
		*claimed = w[1];
		return PC_V_WRONG;
	}
	id = (uint32_t)w[2];
	h = sector_hash(s, id);
	for (i = 3; i < PC_SECTOR / 8; i++)
		if (w[i] != h + i * PC_STEP)
			return PC_V_GARBAGE;
	return id && id < PC_V_WRONG ? id : PC_V_GARBAGE;
}

const char *pc_op_name(uint8_t op)
{
	static const char *const n[] = { "READ", "WRITE", "FLUSH", "DISCARD", "WRITE_ZEROES" };

	return op < 5 ? n[op] : "?";
}

static bool data_op(uint8_t op)
{
	return op == BC_OP_WRITE || op == BC_OP_DISCARD || op == BC_OP_WRITE_ZEROES;
}

void pc_model_build(struct pc_run *run)
{
	uint64_t *cnt = calloc(run->nsect + 1, sizeof(*cnt)), s, total = 0;
	size_t id;

	run->hstart = calloc(run->nsect + 1, sizeof(*run->hstart));
	if (!cnt || !run->hstart)
		exit(1);
	for (id = 1; id < run->nops; id++) {
		const struct pc_op *o = &run->ops[id];

		if (data_op(o->op))
			for (s = o->off / PC_SECTOR; s < (o->off + o->len) / PC_SECTOR; s++)
				cnt[s]++;
	}
	for (s = 0; s < run->nsect; s++) {
		run->hstart[s] = total;
		total += cnt[s];
		cnt[s] = run->hstart[s];
	}
	run->hstart[run->nsect] = total;
	run->hist = malloc((total ? total : 1) * sizeof(*run->hist));
	if (!run->hist)
		exit(1);
	for (id = 1; id < run->nops; id++) {
		const struct pc_op *o = &run->ops[id];

		if (!data_op(o->op))
			continue;
		for (s = o->off / PC_SECTOR; s < (o->off + o->len) / PC_SECTOR; s++) {
			uint64_t b0 = s / 8 * 4096;
			bool partial = o->op == BC_OP_DISCARD && (b0 < o->off || b0 + 4096 > o->off + o->len);

			run->hist[cnt[s]++] = (uint32_t)id | (partial ? PC_ADVISORY : 0);
		}
	}
	free(cnt);
}

void pc_model_free(struct pc_run *run)
{
	free(run->hstart);
	free(run->hist);
	run->hstart = NULL;
	run->hist = NULL;
}

void pc_bounds(const struct pc_run *run, uint64_t s, uint64_t t, uint64_t f, uint64_t e,
	       int64_t *lo, int64_t *hi)
{
	const uint32_t *h = run->hist + run->hstart[s];
	int64_t a = 0, b = (int64_t)(run->hstart[s + 1] - run->hstart[s]), i;

	/* Submissions are in history order: the first entry submitted at or after @e. */
	while (a < b) {
		int64_t m = (a + b) / 2;

		if (run->ops[h[m] & ~PC_ADVISORY].submit < e)
			a = m + 1;
		else
			b = m;
	}
	*hi = a;
	*lo = -1;
	for (i = a - 1; i >= 0; i--) {
		const struct pc_op *o;

		if (h[i] & PC_ADVISORY)
			continue;
		o = &run->ops[h[i]];
		if (o->ack < t || (o->fua && o->ack < f)) {
			*lo = i;
			break;
		}
	}
}

bool pc_allowed(const struct pc_run *run, uint64_t s, int64_t lo, int64_t hi, uint32_t val)
{
	const uint32_t *h = run->hist + run->hstart[s];
	int64_t i;

	if (val == PC_V_GARBAGE || val == PC_V_WRONG)
		return false;
	if (lo < 0 && val == PC_V_ZERO)
		return true;
	for (i = lo < 0 ? 0 : lo; i < hi; i++) {
		const struct pc_op *o = &run->ops[h[i] & ~PC_ADVISORY];

		if (val == PC_V_ZERO ? o->op != BC_OP_WRITE : (h[i] & ~PC_ADVISORY) == val)
			return true;
	}
	return false;
}

static void print_op(const struct pc_run *run, uint32_t id, const char *tag)
{
	const struct pc_op *o = &run->ops[id];

	fprintf(stderr, "      %s #%u %s%s %llu+%llu submit@%llu ack@", tag, id, pc_op_name(o->op),
		o->fua ? "+FUA" : "", (unsigned long long)o->off, (unsigned long long)o->len,
		(unsigned long long)o->submit);
	if (o->ack == REC_NEVER)
		fprintf(stderr, "never\n");
	else
		fprintf(stderr, "%llu\n", (unsigned long long)o->ack);
}

void pc_print_value(uint32_t val, uint64_t claimed)
{
	if (val == PC_V_ZERO)
		fprintf(stderr, "zeroes");
	else if (val == PC_V_GARBAGE)
		fprintf(stderr, "garbage");
	else if (val == PC_V_WRONG)
		fprintf(stderr, "the data of sector %llu", (unsigned long long)claimed);
	else
		fprintf(stderr, "request #%u", val);
}

void pc_report(const struct pc_run *run, const char *what, uint64_t s, int64_t lo, int64_t hi,
	       uint32_t val, uint64_t claimed)
{
	const uint32_t *h = run->hist + run->hstart[s];
	int64_t n = (int64_t)(run->hstart[s + 1] - run->hstart[s]), i;

	pc_tot.violations++;
	if (pc_tot.printed++ >= MAX_PRINT) {
		if (pc_tot.printed == MAX_PRINT + 1)
			fprintf(stderr, "(further violations not printed)\n");
		return;
	}
	fprintf(stderr, "VIOLATION %s: workload %s seed %llu sector %llu (byte %llu): read ", what,
		run->wl->name, (unsigned long long)run->seed, (unsigned long long)s,
		(unsigned long long)s * PC_SECTOR);
	pc_print_value(val, claimed);
	fprintf(stderr, "; allowed: %shistory entries %lld..%lld of %lld:\n",
		lo < 0 ? "initial zeroes, " : "", (long long)(lo < 0 ? 0 : lo), (long long)hi - 1,
		(long long)n);
	for (i = 0; i < n; i++) {
		uint32_t id = h[i] & ~PC_ADVISORY;
		bool in = i >= (lo < 0 ? 0 : lo) && i < hi;

		if (in || id == val || i == lo - 1 || i == hi)
			print_op(run, id, in ? "allowed" : id == val ? "READ->" : "other  ");
	}
}

void pc_check_reads(struct pc_run *run)
{
	size_t id;
	uint64_t i;

	for (id = 1; id < run->nops; id++) {
		const struct pc_op *o = &run->ops[id];
		int64_t lo, hi;

		if (o->op != BC_OP_READ || !o->seen)
			continue;
		for (i = 0; i < o->len / PC_SECTOR; i++) {
			uint64_t s = o->off / PC_SECTOR + i;

			pc_bounds(run, s, o->submit, o->submit, o->ack, &lo, &hi);
			if (!pc_allowed(run, s, lo, hi, o->seen[i])) {
				char what[64];

				snprintf(what, sizeof(what), "live read #%zu", id);
				pc_report(run, what, s, lo, hi, o->seen[i], s);
			}
			pc_tot.reads_checked++;
		}
	}
}

/* --- cut images --- */

enum img_kind { IMG_ALL, IMG_NONE, IMG_RAND, IMG_TORN, IMG_SCATTER, IMG_KINDS };
static const char *const kind_name[IMG_KINDS] = { "all", "none", "random", "torn", "scatter" };

struct cutctx {
	struct pc_run *run;
	uint64_t rng;
	struct rec_img *dur[2];   /* everything durable at the current cut */
	size_t *cand;             /* submitted, not durable (log indices, in order) */
	size_t ncand;
	size_t next_ev;
	size_t *flushes, nflushes, fpos;  /* device flushes by completion */
	size_t *cflushes, ncflushes, cfpos; /* client FLUSHes by ack */
	uint64_t S[2], T;
	int64_t *lo, *hi;         /* per sector, for the current cut */
	uint64_t cut;
	const char *kind;
	uint32_t *seen;           /* per sector: read after the first recovery */
	bool second;              /* checking a second recovery against seen */
	int broken;               /* BLKCACHE_POWERCUT_BREAK self-test */
	bool kill;                /* cuts model a killed process, not a power cut */
};

struct chk_read {
	struct bc_request r;
	struct cutctx *cx;
	void *buf;
	bool busy;
};

static void report_second(struct cutctx *cx, uint64_t s, uint32_t want, uint32_t got)
{
	pc_tot.violations++;
	if (pc_tot.printed++ < MAX_PRINT)
		fprintf(stderr, "VIOLATION: workload %s seed %llu cut %llu image %s, second recovery "
			"(after more writes and a FLUSH): sector %llu holds %s%u, the first recovery "
			"read (or the later write) %s%u\n", cx->run->wl->name,
			(unsigned long long)cx->run->seed, (unsigned long long)cx->cut, cx->kind,
			(unsigned long long)s, got == PC_V_ZERO ? "zeroes " : "value ", got,
			want == PC_V_ZERO ? "zeroes " : "value ", want);
}

static void chk_read_done(struct bc_request *r, int res)
{
	struct chk_read *q = r->priv;
	struct cutctx *cx = q->cx;
	uint64_t i, s0 = r->offset / PC_SECTOR;

	q->busy = false;
	if (res) {
		fprintf(stderr, "VIOLATION: workload %s cut %llu image %s: read %llu+%llu failed: %s\n",
			cx->run->wl->name, (unsigned long long)cx->cut, cx->kind,
			(unsigned long long)r->offset, (unsigned long long)r->length, strerror(-res));
		pc_tot.violations++;
		return;
	}
	for (i = 0; i < r->length / PC_SECTOR; i++) {
		uint64_t s = s0 + i, claimed;
		uint32_t val = pc_decode_sector((char *)q->buf + i * PC_SECTOR, s, &claimed);

		if (cx->second) {
			if (val != cx->seen[s])
				report_second(cx, s, cx->seen[s], val);
			continue;
		}
		cx->seen[s] = val;
		if (!pc_allowed(cx->run, s, cx->lo[s], cx->hi[s], val)) {
			char what[96];

			snprintf(what, sizeof(what), "cut %llu image %s", (unsigned long long)cx->cut,
				 cx->kind);
			pc_report(cx->run, what, s, cx->lo[s], cx->hi[s], val, claimed);
		}
	}
	pc_tot.sectors += r->length / PC_SECTOR;
}

#define CHK_QD    4
#define CHK_CHUNK (1u << 20)
/* The cut images are attached under other names than the devices the
 * workload ran on: the same origin, moved (its recorded identity is the
 * device name). */
static const struct bc_engine_config chk_cfg = {
	.cache_path = "rec:pc-cache", .origin_path = "rec:pc-origin", .origin_moved = true,
};

static struct bc_engine *chk_open(struct cutctx *cx)
{
	struct bc_engine *e = NULL;
	char why[512] = "";
	struct bc_engine_config cfg = chk_cfg;
	int ret;

	cfg.devices = rec_devices();
	ret = bc_engine_open(&e, pc_loop, &cfg, why, sizeof(why));

	if (ret) {
		pc_tot.violations++;
		pc_tot.open_failures++;
		if (pc_tot.printed++ < MAX_PRINT)
			fprintf(stderr, "VIOLATION: workload %s seed %llu cut %llu image %s: %srecovery "
				"failed: %s (%s)\n", cx->run->wl->name, (unsigned long long)cx->run->seed,
				(unsigned long long)cx->cut, cx->kind, cx->second ? "second " : "",
				strerror(-ret), why);
		return NULL;
	}
	if (bc_engine_target(e)->size != cx->run->export_size) {
		pc_tot.violations++;
		fprintf(stderr, "VIOLATION: export size %llu after recovery\n",
			(unsigned long long)bc_engine_target(e)->size);
		bc_engine_free(e);
		return NULL;
	}
	return e;
}

/* Read the whole export, a few requests in flight, checking as they come. */
static void chk_read_all(struct cutctx *cx, struct bc_engine *e)
{
	static struct chk_read q[CHK_QD];
	uint64_t pos = 0, size = cx->run->export_size;
	unsigned i, busy;

	for (;;) {
		busy = 0;
		for (i = 0; i < CHK_QD; i++) {
			if (!q[i].buf)
				q[i].buf = bc_alloc_aligned(CHK_CHUNK);
			if (!q[i].busy && pos < size) {
				memset(&q[i].r, 0, sizeof(q[i].r));
				q[i].cx = cx;
				q[i].busy = true;
				q[i].r.op = BC_OP_READ;
				q[i].r.offset = pos;
				q[i].r.length = size - pos < CHK_CHUNK ? size - pos : CHK_CHUNK;
				q[i].r.buf = q[i].buf;
				q[i].r.done = chk_read_done;
				q[i].r.priv = &q[i];
				pos += q[i].r.length;
				bc_target_submit(bc_engine_target(e), &q[i].r);
			}
			busy += q[i].busy;
		}
		if (!busy && pos >= size)
			break;
		if (bc_loop_run_once(pc_loop, 1000) < 0)
			break;
	}
}

/* Let writeback finish its batch (an engine dropped with IO in flight would
 * leak what that IO holds), then drop the engine: no clean shutdown, as
 * after another crash. */
static void chk_drop(struct bc_engine *e)
{
	unsigned i;

	bc_engine_set(e, "writeback_paused", 1, NULL, 0);
	for (i = 0; i < 100000 && (rec_pending() || !bc_wb_idle(e)); i++)
		bc_loop_run_once(pc_loop, 1000);
	bc_engine_free(e);
}

/* Second life: more writes (partial ones merge with recovered blocks) and
 * a FLUSH; cx->seen becomes what a second recovery must read exactly. */
static int chk_more_writes(struct cutctx *cx, struct bc_engine *e)
{
	static uint32_t next_id = 0x70000000;
	uint64_t size = cx->run->export_size, off, len, s, j;
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
			cx->seen[s] = op == BC_OP_WRITE ? id : PC_V_ZERO;
		}
		ret = t_io(pc_loop, bc_engine_target(e), op, 0, off, len, buf);
	}
	if (!ret)
		ret = t_io(pc_loop, bc_engine_target(e), BC_OP_FLUSH, 0, 0, 0, NULL);
	if (ret) {
		pc_tot.violations++;
		fprintf(stderr, "VIOLATION: workload %s cut %llu image %s: a write after recovery "
			"failed: %s\n", cx->run->wl->name, (unsigned long long)cx->cut, cx->kind,
			strerror(-ret));
	}
	free(buf);
	return ret;
}

/* Recover a fresh engine on the images and read the whole export; on some
 * images, live on, crash again, recover again and compare. */
static void check_image(struct cutctx *cx, struct rec_img *cache, struct rec_img *origin)
{
	uint64_t v0 = pc_tot.violations;
	struct bc_engine *e;

	rec_attach(0, "pc-cache", cache, false);
	rec_attach(1, "pc-origin", origin, false);
	pc_tot.images++;
	cx->second = false;
	e = chk_open(cx);
	if (e) {
		chk_read_all(cx, e);
		if (pc_tot.images % 5 == 0 && pc_tot.violations == v0 && !chk_more_writes(cx, e)) {
			chk_drop(e);
			cx->second = true;
			pc_tot.second++;
			e = chk_open(cx);
			if (e)
				chk_read_all(cx, e);
		}
		if (e)
			chk_drop(e);
	}
	rec_detach(0);
	rec_detach(1);
}

static void apply_ev(struct rec_img *img, const struct rec_ev *ev)
{
	if (ev->op == BC_DIO_WRITE)
		rec_img_write(img, ev->off, ev->data, ev->len);
	else if (ev->op == BC_DIO_DISCARD || ev->op == BC_DIO_ZERO)
		rec_img_zero(img, ev->off, ev->len);
}

/* Build and check one image of @kind at the current cut. */
static void cut_image(struct cutctx *cx, enum img_kind kind)
{
	struct rec_img *img[2];
	size_t i, victim = SIZE_MAX, nw = 0;
	bool *present = calloc(cx->ncand + 1, sizeof(bool));

	if (!present)
		exit(1);
	for (i = 0; i < cx->ncand; i++) {
		present[i] = kind == IMG_ALL ? true : kind == IMG_NONE ? false : pc_rand(&cx->rng) & 1;
		if (rec_log.ev[cx->cand[i]].op == BC_DIO_WRITE && rec_log.ev[cx->cand[i]].len > PC_SECTOR)
			nw++;
	}
	if ((kind == IMG_TORN || kind == IMG_SCATTER) && nw) {
		uint64_t k = pc_rand(&cx->rng) % nw;

		for (i = 0; i < cx->ncand; i++)
			if (rec_log.ev[cx->cand[i]].op == BC_DIO_WRITE &&
			    rec_log.ev[cx->cand[i]].len > PC_SECTOR && !k--)
				victim = i;
	}
	img[0] = rec_img_clone(cx->dur[0]);
	img[1] = rec_img_clone(cx->dur[1]);
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
	check_image(cx, img[0], img[1]);
	rec_img_free(img[0]);
	rec_img_free(img[1]);
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

/* Move the cut forward to @c: durable state, candidates, model bounds. */
static void advance(struct cutctx *cx, uint64_t c)
{
	struct pc_run *run = cx->run;
	size_t i, keep = 0;
	uint64_t s;

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
	/* The model: writes acknowledged before the last acknowledged client
	 * FLUSH was submitted, and acknowledged FUA writes, must be there;
	 * after a kill (written acks), every acknowledged write. */
	for (; cx->cfpos < cx->ncflushes && run->ops[cx->cflushes[cx->cfpos]].ack < c; cx->cfpos++)
		if (run->ops[cx->cflushes[cx->cfpos]].submit > cx->T)
			cx->T = run->ops[cx->cflushes[cx->cfpos]].submit;
	for (s = 0; s < run->nsect; s++)
		pc_bounds(run, s, cx->broken == 2 || cx->kill ? c : cx->T, c, c, &cx->lo[s], &cx->hi[s]);
}

void pc_check_cuts(struct pc_run *run, unsigned ncuts, uint64_t seed, bool kill)
{
	struct cutctx cx = { .run = run, .rng = seed, .kill = kill };
	uint64_t *cuts, nflushcuts = 0, pending[2] = { 0, 0 };
	bool has[2];
	size_t ncut = 0, cap, i, k;
	const char *b = getenv("BLKCACHE_POWERCUT_BREAK");
	unsigned long nimg0 = (unsigned long)pc_tot.images;

	cx.broken = b ? atoi(b) : 0;
	cx.cand = malloc((rec_log.n + 1) * sizeof(size_t));
	cx.flushes = malloc((rec_log.n + 1) * sizeof(size_t));
	cx.cflushes = malloc((run->nops + 1) * sizeof(size_t));
	cx.lo = malloc(run->nsect * sizeof(int64_t));
	cx.seen = malloc(run->nsect * sizeof(uint32_t));
	cx.hi = malloc(run->nsect * sizeof(int64_t));
	cap = rec_log.n + ncuts + 1;
	cuts = malloc(cap * sizeof(*cuts));
	if (!cx.cand || !cx.flushes || !cx.cflushes || !cx.lo || !cx.hi || !cx.seen || !cuts)
		exit(1);
	cx.dur[0] = rec_img_copy(run->base[0]);
	cx.dur[1] = rec_img_copy(run->base[1]);
	for (i = 0; i < rec_log.n; i++) {
		if (rec_log.ev[i].op != BC_DIO_FLUSH || rec_log.ev[i].complete == REC_NEVER)
			continue;
		cx.flushes[cx.nflushes++] = i;
		/* Cut right after every flush completion. */
		if (rec_log.ev[i].complete + 1 <= run->end)
			cuts[ncut++] = rec_log.ev[i].complete + 1;
	}
	nflushcuts = ncut;
	qsort(cx.flushes, cx.nflushes, sizeof(size_t), cmp_flush);
	for (i = 1; i < run->nops; i++)
		if (run->ops[i].op == BC_OP_FLUSH && run->ops[i].ack != REC_NEVER)
			cx.cflushes[cx.ncflushes++] = i;
	sort_run = run;
	qsort(cx.cflushes, cx.ncflushes, sizeof(size_t), cmp_cflush);
	/* And random points in between: up to @ncuts, at least a third of it. */
	for (k = 0; (ncut < ncuts || k < ncuts / 3) && ncut < cap; k++)
		cuts[ncut++] = 1 + pc_rand(&cx.rng) % run->end;
	qsort(cuts, ncut, sizeof(*cuts), cmp_u64);
	for (i = k = 0; i < ncut; i++)
		if (!k || cuts[k - 1] != cuts[i])
			cuts[k++] = cuts[i];
	ncut = k;
	for (i = 0; i < ncut; i++) {
		advance(&cx, cuts[i]);
		pc_tot.cuts++;
		has[0] = has[1] = false;
		for (k = 0; k < cx.ncand; k++)
			has[rec_log.ev[cx.cand[k]].dev] = true;
		pending[0] += has[0];
		pending[1] += has[1];
		if (!cx.ncand) {
			cut_image(&cx, IMG_NONE);
			continue;
		}
		/* Images: all, none, then random subsets (one with a torn write).
		 * A killed process leaves each write in flight whole or absent. */
		if (kill) {
			cut_image(&cx, i % 2 ? IMG_NONE : IMG_ALL);
			cut_image(&cx, IMG_RAND);
			continue;
		}
		switch (i % 3) {
		case 0:
			cut_image(&cx, IMG_ALL);
			cut_image(&cx, IMG_TORN);
			break;
		case 1:
			cut_image(&cx, IMG_NONE);
			cut_image(&cx, IMG_RAND);
			break;
		default:
			cut_image(&cx, IMG_RAND);
			cut_image(&cx, pc_rand(&cx.rng) % 4 ? IMG_TORN : IMG_SCATTER);
			break;
		}
	}
	printf("%s: %zu %s points (%llu at flush completions; %llu with cache writes and %llu "
	       "with origin writes not yet durable), %lu images\n", run->wl->name, ncut,
	       kill ? "kill" : "power-cut",
	       (unsigned long long)nflushcuts, (unsigned long long)pending[0],
	       (unsigned long long)pending[1], (unsigned long)pc_tot.images - nimg0);
	rec_img_free(cx.dur[0]);
	rec_img_free(cx.dur[1]);
	free(cx.cand);
	free(cx.flushes);
	free(cx.cflushes);
	free(cx.lo);
	free(cx.hi);
	free(cx.seen);
	free(cuts);
}
