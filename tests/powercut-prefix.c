/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * An origin image alone (without the cache): writeback's point-in-time
 * property.  Batches never span a client FLUSH of the origin and the next
 * starts only once the previous one is recorded as written back, so the
 * origin device by itself must always be a state the origin's export could
 * be in after a power cut at some earlier point P of its own FLUSH history
 * (tests/test-origin-prefix.sh checks the same on a real server, with
 * FLUSH epochs that do not overlap).
 *
 * A point P allows, per sector, the values the cut model allows at a cut
 * at P without FUA (FUA is not a FLUSH: writeback need not order it): the
 * newest request acknowledged before the origin's last FLUSH acknowledged
 * before P was submitted, or any later one submitted before P.  Only the
 * origin's own FLUSHes count.  The points worth trying are the
 * acknowledgements of its FLUSHes and the cut itself: between two of them
 * the mandatory set stays the same and later points allow more.  For each
 * sector the value read allows an interval of these points per history
 * entry that holds it (a write: one entry; zeroes: the initial state and
 * every discard or write-zeroes); the image passes if some point is
 * allowed by every sector.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blkcache/target.h"
#include "powercut.h"

struct pfx {
	const struct pc_run *run;
	unsigned oi;
	size_t m;              /* candidate points: FLUSH acks, then the cut */
	uint64_t *cp;          /* the points, ascending */
	uint64_t *tc;          /* per point: the last acknowledged FLUSH's submission */
	uint64_t *ok, *cur;    /* bitmaps: points every sector so far allows; this sector's */
	size_t words;
};

static void bits_set(uint64_t *b, size_t lo, size_t hi) /* [lo, hi] */
{
	size_t k;

	for (k = lo; k <= hi; k++)
		b[k / 64] |= 1ull << (k % 64);
}

/* First point after @submit (m: none). */
static size_t first_after(const struct pfx *p, uint64_t submit)
{
	size_t a = 0, b = p->m;

	while (a < b) {
		size_t mid = (a + b) / 2;

		if (p->cp[mid] > submit)
			b = mid;
		else
			a = mid + 1;
	}
	return a;
}

/* Number of points whose mandatory FLUSH was submitted at or before
 * @limit (they form a prefix: tc ascends). */
static size_t points_upto(const struct pfx *p, uint64_t limit)
{
	size_t a = 0, b = p->m;

	while (a < b) {
		size_t mid = (a + b) / 2;

		if (p->tc[mid] <= limit)
			a = mid + 1;
		else
			b = mid;
	}
	return a;
}

/* The points at which sector @s may hold @val, into p->cur; false if none. */
static bool sector_points(struct pfx *p, uint64_t s, uint32_t val)
{
	const struct pc_origin *po = &p->run->o[p->oi];
	const uint32_t *h = po->hist + po->hstart[s];
	int64_t n = (int64_t)(po->hstart[s + 1] - po->hstart[s]), i;
	uint64_t amin = REC_NEVER; /* earliest ack of a non-advisory entry after i */
	bool any = false;
	size_t lo, hi;

	memset(p->cur, 0, p->words * sizeof(uint64_t));
	if (val == PC_V_GARBAGE || val == PC_V_WRONG)
		return false;
	for (i = n - 1; i >= -1; i--) {
		const struct pc_op *o = i >= 0 ? &p->run->ops[h[i] & ~PC_ADVISORY] : NULL;
		bool match = !o ? val == PC_V_ZERO :
			     val == PC_V_ZERO ? o->op != BC_OP_WRITE : (h[i] & ~PC_ADVISORY) == val;

		if (match) {
			lo = o ? first_after(p, o->submit) : 0;
			hi = points_upto(p, amin);
			if (lo < hi) {
				bits_set(p->cur, lo, hi - 1);
				any = true;
			}
		}
		if (o && !(h[i] & PC_ADVISORY) && o->ack < amin)
			amin = o->ack;
	}
	return any;
}

static void print_points(const struct pfx *p, const uint64_t *b)
{
	size_t k, n = 0;

	for (k = 0; k < p->m; k++)
		if (b[k / 64] >> (k % 64) & 1) {
			if (n++ < 8)
				fprintf(stderr, " %s%llu", k + 1 == p->m ? "cut@" : "flush-ack@",
					(unsigned long long)p->cp[k]);
		}
	fprintf(stderr, "%s%s\n", n > 8 ? " ..." : "", n ? "" : " none");
}

static void report(const struct pfx *p, const char *what, uint64_t s, uint32_t val,
		   uint64_t claimed, uint64_t witness, bool alone)
{
	const struct pc_run *run = p->run;

	pc_tot.prefix_violations++;
	if (!pc_violation())
		return;
	fprintf(stderr, "VIOLATION origin alone, %s: workload %s seed %llu origin %s: sector %llu "
		"holds ", what, run->wl->name, (unsigned long long)run->seed,
		run->o[p->oi].name[0] ? run->o[p->oi].name : "-", (unsigned long long)s);
	pc_print_value(val, claimed);
	if (alone) {
		fprintf(stderr, ", which no point of the FLUSH history allows\n");
		return;
	}
	fprintf(stderr, ", allowed at points:");
	print_points(p, p->cur);
	fprintf(stderr, "      but sectors up to %llu (the last to narrow it: %llu) allow only:",
		(unsigned long long)s - 1, (unsigned long long)witness);
	print_points(p, p->ok);
}

static void pfx_points(struct pfx *p, uint64_t cut, const size_t *flushes, size_t nflushes)
{
	uint64_t t = 0;
	size_t k;

	p->m = nflushes + 1;
	p->words = (p->m + 63) / 64;
	p->cp = malloc(p->m * sizeof(uint64_t));
	p->tc = malloc(p->m * sizeof(uint64_t));
	p->ok = malloc(p->words * sizeof(uint64_t));
	p->cur = malloc(p->words * sizeof(uint64_t));
	if (!p->cp || !p->tc || !p->ok || !p->cur)
		exit(1);
	for (k = 0; k < p->m; k++) {
		p->cp[k] = k < nflushes ? p->run->ops[flushes[k]].ack : cut;
		p->tc[k] = t;
		if (k < nflushes && p->run->ops[flushes[k]].submit > t)
			t = p->run->ops[flushes[k]].submit;
	}
	p->tc[p->m - 1] = t;
	memset(p->ok, 0, p->words * sizeof(uint64_t));
	bits_set(p->ok, 0, p->m - 1);
}

bool pc_check_prefix(const struct pc_run *run, unsigned oi, const struct rec_img *img,
		     uint64_t cut, const size_t *flushes, size_t nflushes, const char *what)
{
	struct pfx p = { .run = run, .oi = oi };
	const struct pc_origin *po = &run->o[oi];
	uint64_t s, claimed, witness = 0, chunk = 256 * PC_SECTOR;
	char *buf = malloc(chunk);
	bool good = true, narrowed, empty;
	size_t w;

	if (!buf)
		exit(1);
	pfx_points(&p, cut, flushes, nflushes);
	pc_tot.prefix_images++;
	for (s = 0; s < po->nsect && good; s++) {
		uint32_t val;

		if (s % 256 == 0)
			rec_img_read(img, s * PC_SECTOR, buf,
				     po->export_size - s * PC_SECTOR < chunk ? po->export_size - s * PC_SECTOR : chunk);
		val = pc_decode_sector(buf + s % 256 * PC_SECTOR, s, &claimed);
		if (!sector_points(&p, s, val)) {
			report(&p, what, s, val, claimed, witness, true);
			good = false;
			break;
		}
		narrowed = false;
		empty = true;
		for (w = 0; w < p.words; w++) {
			uint64_t x = p.ok[w] & p.cur[w];

			narrowed |= x != p.ok[w];
			empty &= x == 0;
		}
		if (empty) {
			report(&p, what, s, val, claimed, witness, false);
			good = false;
			break;
		}
		for (w = 0; w < p.words; w++)
			p.ok[w] &= p.cur[w];
		if (narrowed)
			witness = s;
	}
	/* Not consistent with the cut itself: the origin lags behind. */
	if (good && !(p.ok[(p.m - 1) / 64] >> ((p.m - 1) % 64) & 1))
		pc_tot.prefix_mid++;
	free(p.cp);
	free(p.tc);
	free(p.ok);
	free(p.cur);
	free(buf);
	return good;
}
