/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Cache modes: a descriptor per mode, and the one place that decides the
 * behaviour in force.  Overrides folded here: degraded mode (the cache
 * device keeps failing: cache nothing new, write around, drain) and writes
 * over dirty blocks (writethrough, so dirty data stays safe).
 */
#include <errno.h>
#include <string.h>

#include "core/why.h"
#include "engine/engine.h"

static const struct bc_mode_desc modes[] = {
	[BC_CACHE_WRITEBACK] = {
		.name = "writeback", .write_path = BC_PATH_LOG, .promote = true, .reappend = true,
	},
	[BC_CACHE_WRITETHROUGH] = {
		.name = "writethrough", .write_path = BC_PATH_THROUGH, .promote = true,
		.reappend = true,
	},
	[BC_CACHE_WRITEAROUND] = {
		.name = "writearound", .write_path = BC_PATH_AROUND, .promote = true,
		.reappend = true,
	},
	[BC_CACHE_PASSTHROUGH] = {
		.name = "passthrough", .write_path = BC_PATH_AROUND, .promote = false,
		.reappend = true,
	},
};
#define NR_MODES (sizeof(modes) / sizeof(modes[0]))

/* Not a mode a user picks: what the engine does while the cache device fails. */
static const struct bc_mode_desc degraded = {
	.name = "degraded", .write_path = BC_PATH_AROUND, .promote = false, .reappend = false,
	.writeback_urgent = true,
};

const char *bc_mode_name(enum bc_mode m)
{
	return (unsigned)m < NR_MODES ? modes[m].name : "unknown";
}

int bc_mode_parse(const char *s, enum bc_mode *out)
{
	unsigned i;

	for (i = 0; i < NR_MODES; i++)
		if (!strcmp(s, modes[i].name)) {
			*out = (enum bc_mode)i;
			return 0;
		}
	return -EINVAL;
}

enum bc_mode bc_engine_mode(const struct bc_engine *e)
{
	return e->mode;
}

void bc_mode_load(struct bc_engine *e)
{
	e->mode = (enum bc_mode)e->sb.mode;
}

const struct bc_mode_desc *bc_mode_current(const struct bc_engine *e)
{
	return e->degraded ? &degraded : &modes[e->mode];
}

/* Does [offset, offset+length) touch a dirty block? */
static bool range_dirty(struct bc_engine *e, const struct bc_request *r)
{
	uint64_t b, last = (r->offset + r->length - 1) >> BC_BLOCK_SHIFT;

	for (b = r->offset >> BC_BLOCK_SHIFT; b <= last; b++) {
		struct bc_ix_ent ix;

		if (bc_index_find(&e->index, b, &ix) && (ix.flags & BC_IX_DIRTY))
			return true;
	}
	return false;
}

uint8_t bc_mode_write_path(struct bc_engine *e, const struct bc_request *r)
{
	uint8_t path = bc_mode_current(e)->write_path;

	if (r->op != BC_OP_WRITE || path == BC_PATH_LOG)
		return BC_PATH_LOG; /* discard / write-zeroes: always logged */
	if (path == BC_PATH_AROUND && range_dirty(e, r))
		return BC_PATH_THROUGH;
	return path;
}

void bc_mode_force(struct bc_engine *e, enum bc_mode m)
{
	e->mode = m;
	bc_sb_set_mode(e, (uint32_t)m);
}

int bc_engine_set_mode(struct bc_engine *e, enum bc_mode m, char *why, size_t whylen)
{
	if ((unsigned)m >= NR_MODES) {
		bc_why(why, whylen, "unknown mode %u", (unsigned)m);
		return -EINVAL;
	}
	if (e->sb.flags & BC_SB_DETACHED) {
		bc_why(why, whylen, "the cache is detached");
		return -EINVAL;
	}
	if (m == e->mode)
		return 0;
	bc_elog(e, BC_LOG_INFO,
		    "mode: %s -> %s (%llu dirty blocks stay in the cache and are drained)",
		    bc_mode_name(e->mode), bc_mode_name(m), (unsigned long long)e->nr_dirty);
	/* Persisted lazily with the next superblock write; a restart starts in
	 * the mode last persisted, never losing dirty data either way. */
	bc_mode_force(e, m);
	bc_wb_kick(e);
	return 0;
}
