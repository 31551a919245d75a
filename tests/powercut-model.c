/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The power-cut model: self-describing sector contents, the per-sector
 * history of client requests (per origin: request ids are global, so one
 * origin's data read from another is a value never written there) and the
 * values a sector may hold after a cut.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blkcache/target.h"
#include "powercut.h"

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

/* Origin @oi's history: its data requests, per sector in submission order. */
static void model_build_origin(struct pc_run *run, unsigned oi)
{
	struct pc_origin *po = &run->o[oi];
	uint64_t *cnt = calloc(po->nsect + 1, sizeof(*cnt)), s, total = 0;
	size_t id;

	po->hstart = calloc(po->nsect + 1, sizeof(*po->hstart));
	if (!cnt || !po->hstart)
		exit(1);
	for (id = 1; id < run->nops; id++) {
		const struct pc_op *o = &run->ops[id];

		if (data_op(o->op) && o->origin == oi)
			for (s = o->off / PC_SECTOR; s < (o->off + o->len) / PC_SECTOR; s++)
				cnt[s]++;
	}
	for (s = 0; s < po->nsect; s++) {
		po->hstart[s] = total;
		total += cnt[s];
		cnt[s] = po->hstart[s];
	}
	po->hstart[po->nsect] = total;
	po->hist = malloc((total ? total : 1) * sizeof(*po->hist));
	if (!po->hist)
		exit(1);
	for (id = 1; id < run->nops; id++) {
		const struct pc_op *o = &run->ops[id];

		if (!data_op(o->op) || o->origin != oi)
			continue;
		for (s = o->off / PC_SECTOR; s < (o->off + o->len) / PC_SECTOR; s++) {
			uint64_t b0 = s / 8 * 4096;
			bool partial = o->op == BC_OP_DISCARD && (b0 < o->off || b0 + 4096 > o->off + o->len);

			po->hist[cnt[s]++] = (uint32_t)id | (partial ? PC_ADVISORY : 0);
		}
	}
	free(cnt);
}

void pc_model_build(struct pc_run *run)
{
	unsigned oi;

	for (oi = 0; oi < run->norigins; oi++)
		model_build_origin(run, oi);
}

void pc_model_free(struct pc_run *run)
{
	unsigned oi;

	for (oi = 0; oi < PC_MAXORIGINS; oi++) {
		free(run->o[oi].hstart);
		free(run->o[oi].hist);
		run->o[oi].hstart = NULL;
		run->o[oi].hist = NULL;
	}
}

void pc_bounds(const struct pc_run *run, unsigned oi, uint64_t s, uint64_t t, uint64_t f,
	       uint64_t e, int64_t *lo, int64_t *hi)
{
	const struct pc_origin *po = &run->o[oi];
	const uint32_t *h = po->hist + po->hstart[s];
	int64_t a = 0, b = (int64_t)(po->hstart[s + 1] - po->hstart[s]), i;

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

bool pc_allowed(const struct pc_run *run, unsigned oi, uint64_t s, int64_t lo, int64_t hi,
		uint32_t val)
{
	const uint32_t *h = run->o[oi].hist + run->o[oi].hstart[s];
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

bool pc_violation(void)
{
	pc_tot.violations++;
	if (pc_tot.printed++ >= MAX_PRINT) {
		if (pc_tot.printed == MAX_PRINT + 1)
			fprintf(stderr, "(further violations not printed)\n");
		return false;
	}
	return true;
}

void pc_print_history(const struct pc_run *run, unsigned oi, uint64_t s, int64_t lo, int64_t hi,
		      uint32_t val)
{
	const struct pc_origin *po = &run->o[oi];
	const uint32_t *h = po->hist + po->hstart[s];
	int64_t n = (int64_t)(po->hstart[s + 1] - po->hstart[s]), i;

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

void pc_report(const struct pc_run *run, unsigned oi, const char *what, uint64_t s, int64_t lo,
	       int64_t hi, uint32_t val, uint64_t claimed)
{
	const struct pc_origin *po = &run->o[oi];

	if (!pc_violation())
		return;
	fprintf(stderr, "VIOLATION %s: workload %s seed %llu %s%s%ssector %llu (byte %llu): read ",
		what, run->wl->name, (unsigned long long)run->seed, po->name[0] ? "origin " : "",
		po->name, po->name[0] ? " " : "", (unsigned long long)s,
		(unsigned long long)s * PC_SECTOR);
	pc_print_value(val, claimed);
	if (val != PC_V_ZERO && val < run->nops && run->ops[val].origin != oi)
		fprintf(stderr, " (written to origin %s)", run->o[run->ops[val].origin].name);
	pc_print_history(run, oi, s, lo, hi, val);
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

			pc_bounds(run, o->origin, s, o->submit, o->submit, o->ack, &lo, &hi);
			if (!pc_allowed(run, o->origin, s, lo, hi, o->seen[i])) {
				char what[64];

				snprintf(what, sizeof(what), "live read #%zu", id);
				pc_report(run, o->origin, what, s, lo, hi, o->seen[i], s);
			}
			pc_tot.reads_checked++;
		}
	}
}

