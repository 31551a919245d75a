/* SPDX-License-Identifier: BSD-3-Clause */
/* Live tunables: names, ranges, validation. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "engine/engine.h"
#include "format/superblock.h"

/* Engine tunables live in struct bc_tunables; the promotion policy's are
 * its own (get_param/set_param), listed here in their place. */
#define T(field, unit_, min_, max_, def_, help_)                                               \
	{ .info = &(const struct bc_tunable_info){ .name = #field, .unit = unit_, .min = min_,   \
						   .max = max_, .def = def_, .help = help_ },   \
	  .off = offsetof(struct bc_tunables, field), .param = -1 }
#define P(i) { .info = &bc_promote_nhit_params[i], .param = i }

static const struct tunable {
	const struct bc_tunable_info *info;
	size_t off;
	int param;          /* >= 0: the promotion policy's parameter */
} tunables[] = {
	T(writeback_batch, "segments", 1, BC_WB_MAX_BATCH, 4,
	  "oldest dirty segments written back per batch (sorted and merged together)"),
	T(writeback_inflight, "count", 1, 64, 16, "origin writes in flight per batch"),
	T(dirty_high, "percent", 1, 100, 75,
	  "start writeback when this share of the ring holds data not yet written back"),
	T(dirty_low, "percent", 0, 99, 50, "stop writeback below this share"),
	T(writeback_idle_ms, "ms", 0, 3600000, 500,
	  "after this long without requests, write back everything (0: never)"),
	T(writeback_rate, "bytes/s", 0, UINT64_MAX / 2, 0,
	  "writeback bandwidth limit while the foreground is busy (0: unlimited)"),
	T(writeback_paused, "bool", 0, 1, 0,
	  "pause writeback (it still runs when writes wait for space)"),
	T(flush_deadline_us, "us", 1, 10000000, 2000,
	  "longest a FLUSH/FUA waits for more writes to batch into its segment"),
	P(0),
	P(1),
	T(reappend_percent, "percent", 0, 50, 25,
	  "share of a reclaimed segment that hot clean blocks may take when re-appended"),
	T(write_timeout_ms, "ms", 0, 3600000, 60000,
	  "longest a write waits for cache space (e.g. the cache is full of dirty data and the "
	  "origin is down) before it fails with EIO (0: wait forever)"),
	T(writeback_ordered, "bool", 0, 1, 1,
	  "keep client FLUSH order on the origin: a batch never spans a FLUSH, so the origin "
	  "alone is crash-consistent at every moment (0: merge across FLUSHes; the origin is "
	  "consistent only between batches)"),
	T(writeback_gap, "blocks", 0, 256, 0,
	  "write dirty blocks separated by at most this many clean blocks as one origin write, "
	  "reading the gap from the origin first (for origins where an IO costs more than its "
	  "bytes, e.g. disks; 0: off)"),
	T(carry_percent, "percent", 0, 90, 50,
	  "reclaim carries a dirty segment's live blocks forward (re-appends them; nothing is "
	  "written to the origin) when they take at most this share of it and no FLUSH came since "
	  "it was written; while the dirty share of the cache is below it, the watermarks count "
	  "dirty blocks instead of segments not written back (0: off, writeback frees segments)"),
};

#define NTUN (sizeof(tunables) / sizeof(tunables[0]))

unsigned bc_tunable_count(void)
{
	return NTUN;
}

const struct bc_tunable_info *bc_tunable_info(unsigned i)
{
	return i < NTUN ? tunables[i].info : NULL;
}

static const struct tunable *find(const char *name)
{
	unsigned i;

	for (i = 0; i < NTUN; i++)
		if (!strcmp(tunables[i].info->name, name))
			return &tunables[i];
	return NULL;
}

static uint64_t *slot_of(struct bc_engine *e, const struct tunable *t)
{
	return (uint64_t *)((char *)&e->tun + t->off);
}

void bc_tunables_defaults(struct bc_tunables *tun)
{
	unsigned i;

	for (i = 0; i < NTUN; i++)
		if (tunables[i].param < 0)
			*(uint64_t *)((char *)tun + tunables[i].off) = tunables[i].info->def;
}

int bc_engine_get(struct bc_engine *e, const char *name, uint64_t *value)
{
	const struct tunable *t = find(name);

	if (!t)
		return -ENOENT;
	if (t->param >= 0)
		*value = e->promote.ops->get_param(e->promote.ctx, (unsigned)t->param);
	else
		*value = *slot_of(e, t);
	return 0;
}

int bc_engine_set(struct bc_engine *e, const char *name, uint64_t value, char *why, size_t whylen)
{
	const struct tunable *t = find(name);

	if (!t) {
		bc_why(why, whylen, "unknown tunable '%s'", name);
		return -ENOENT;
	}
	if (value < t->info->min || value > t->info->max) {
		bc_why(why, whylen, "%s must be from %llu to %llu (%s)", name,
		       (unsigned long long)t->info->min, (unsigned long long)t->info->max, t->info->unit);
		return -ERANGE;
	}
	if (!strcmp(name, "dirty_low") && value >= e->tun.dirty_high) {
		bc_why(why, whylen, "dirty_low must be below dirty_high (%llu)",
		       (unsigned long long)e->tun.dirty_high);
		return -ERANGE;
	}
	if (!strcmp(name, "dirty_high") && value <= e->tun.dirty_low) {
		bc_why(why, whylen, "dirty_high must be above dirty_low (%llu)",
		       (unsigned long long)e->tun.dirty_low);
		return -ERANGE;
	}
	if (t->param >= 0) {
		e->promote.ops->set_param(e->promote.ctx, (unsigned)t->param, value);
		return 0;
	}
	*slot_of(e, t) = value;
	if (!strcmp(name, "flush_deadline_us"))
		bc_seglog_set_deadline(e, value * 1000);
	/* Watermarks, pause, rate, batch: let writeback re-evaluate now. */
	bc_wb_tunables_changed(e);
	return 0;
}
