/* SPDX-License-Identifier: BSD-3-Clause */
/* Engine lifecycle (open, validate, recover, close) and request dispatch. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "blkcache/cache.h"
#include "engine/engine.h"
#include "format/origin_id.h"
#include "format/origin_rec.h"
#include "format/otable.h"
#include "format/superblock.h"
#include "log/staging.h"

#define DEFAULT_BUFFERS 8
#define MAX_REQUEST (32u << 20)

void bc_ix_set(struct bc_engine *e, struct bc_ix_ent *ent, uint32_t slot, uint8_t flags)
{
	bool was = ent->slot < BC_IX_NEW && (ent->flags & BC_IX_DIRTY);
	bool now = flags & BC_IX_DIRTY;

	e->nr_dirty += (uint64_t)now - (uint64_t)was;
	bc_index_set(&e->index, ent, slot, flags);
}

void bc_ix_drop(struct bc_engine *e, struct bc_ix_ent *ent)
{
	if (ent->flags & BC_IX_DIRTY)
		e->nr_dirty--;
	bc_index_remove(&e->index, ent);
}

static void start_comp_fn(struct bc_completion *c, int res)
{
	(void)res;
	bc_wb_kick(BC_CONTAINER_OF(c, struct bc_engine, start_comp));
}

static void engine_submit(void *ctx, struct bc_request *r)
{
	struct bc_engine *e = ctx;
	uint64_t size = e->sb.export_size;

	bc_wb_note_request(e);

	switch (r->op) {
	case BC_OP_READ: e->st.reads++; break;
	case BC_OP_WRITE: e->st.writes++; break;
	case BC_OP_FLUSH: e->st.flushes++; break;
	case BC_OP_DISCARD: e->st.discards++; break;
	case BC_OP_WRITE_ZEROES: e->st.write_zeroes++; break;
	default:
		bc_req_complete(e, r, -EINVAL);
		return;
	}
	if (r->op == BC_OP_FLUSH) {
		bc_flush_submit(e, r);
		return;
	}
	if ((r->offset | r->length) & (BC_SECTOR_SIZE - 1) || r->length > MAX_REQUEST) {
		bc_req_complete(e, r, -EINVAL);
		return;
	}
	if (r->offset > size || r->length > size - r->offset) {
		bc_req_complete(e, r, r->op == BC_OP_READ || r->op == BC_OP_DISCARD ? -EINVAL : -ENOSPC);
		return;
	}
	if (r->length == 0) {
		bc_req_complete(e, r, 0);
		return;
	}
	if (r->op == BC_OP_READ) {
		bc_read_submit(e, r);
		return;
	}
	if (bc_seglog_failed(e)) {
		bc_req_complete(e, r, -EIO);
		return;
	}
	if (r->flags & BC_REQ_FUA)
		e->st.fua_writes++;
	bc_write_submit(e, r);
}

static const struct bc_target_ops engine_target_ops = {
	.name = "blkcache",
	.submit = engine_submit,
};

const struct bc_target *bc_engine_target(struct bc_engine *e)
{
	return &e->target;
}

void bc_elog(struct bc_engine *e, enum bc_log_level level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (bc_sb_has_table(&e->sb) && e->sb.name[0])
		bc_loop_log(e->loop, level, "origin '%s': %s", e->sb.name, msg);
	else
		bc_loop_log(e->loop, level, "%s", msg);
}

const char *bc_engine_name(const struct bc_engine *e)
{
	return bc_sb_has_table(&e->sb) ? e->sb.name : BC_DEFAULT_ORIGIN_NAME;
}

const char *bc_engine_origin_path(const struct bc_engine *e)
{
	return e->origin->path;
}

/* Format v3, no origin named: the only origin, or the one that is the
 * origin device given. */
static int pick_unnamed(struct bc_engine *e, const struct bc_otable *t, char *why, size_t whylen)
{
	struct bc_origin_id found;
	char names[1024];
	int slot;

	bc_otable_names(t, names, sizeof(names));
	bc_origin_id_get(e->origin, &found);
	if (bc_otable_attached(t) == 0) {
		/* A detached origin's record says so (check_devices). */
		slot = bc_otable_find_origin(t, &found, BC_OREC_DETACHED);
		if (slot >= 0)
			return slot;
		bc_why(why, whylen, "cache device %s serves no origin yet: add one with 'blkcache "
		       "origin add --cache %s --origin DEV --name NAME'", e->cache->path, e->cache->path);
		return -ENOENT;
	}
	/* The only one (check_devices tells a wrong device), or the one given. */
	slot = bc_otable_find_origin(t, bc_otable_attached(t) == 1 ? NULL : &found, BC_OREC_ATTACHED);
	if (slot >= 0)
		return slot;
	bc_why(why, whylen, "cache device %s serves %u origins (%s), none of them %s; name the "
	       "one to serve", e->cache->path, bc_otable_attached(t), names, e->origin->path);
	return -ENOENT;
}

/* A sharded origin (v5): this engine's shard of it, if it is opened as
 * one. */
static int pick_shard(struct bc_engine *e, const struct bc_otable *t, int slot, char *why,
		      size_t whylen)
{
	const struct bc_sb_disk *rec = t->rec[slot];

	if (!e->cfg.shard_member) {
		bc_why(why, whylen, "origin '%s' of cache device %s is sharded (%u shards): it is "
		       "opened as a shard set (bc_shards_open_cache), not as one engine", rec->name,
		       e->cache->path, bc_orec_shards(rec));
		return -EISDIR;
	}
	if (e->cfg.shard >= bc_orec_shards(rec) ||
	    (slot = bc_otable_find_shard(t, rec->name, e->cfg.shard)) < 0) {
		bc_why(why, whylen, "origin '%s' of cache device %s has no shard %u (its record is "
		       "missing or damaged; 'blkcache check' tells)", rec->name, e->cache->path,
		       e->cfg.shard);
		return -ENOENT;
	}
	return slot;
}

static int pick_record(struct bc_engine *e, const struct bc_otable *t, char *why, size_t whylen)
{
	const char *name = e->cfg.origin_name;
	char names[1024];
	int slot;

	if (!name) {
		slot = pick_unnamed(e, t, why, whylen);
	} else if ((slot = bc_otable_find(t, name)) < 0) {
		bc_otable_names(t, names, sizeof(names));
		bc_why(why, whylen, "cache device %s has no origin named '%s' (its origins: %s)",
		       e->cache->path, name, names[0] ? names : "none");
		return -ENOENT;
	}
	if (slot >= 0 && t->rec[slot]->shard_count)
		return pick_shard(e, t, slot, why, whylen);
	if (slot >= 0 && e->cfg.shard_member && e->cfg.shard) {
		bc_why(why, whylen, "origin '%s' of cache device %s is not sharded", t->rec[slot]->name,
		       e->cache->path);
		return -ENOENT;
	}
	return slot;
}

/* Format v3: this engine's origin record, from the table (the one the
 * cache set read, or read here). */
static int load_record(struct bc_engine *e, const struct bc_sb_disk *sb, char *why, size_t whylen)
{
	const struct bc_otable *t = e->open_table;
	struct bc_otable own;
	int slot, ret = 0;

	if (!t) {
		ret = bc_otable_read(e->cache, sb, &own);
		if (ret < 0) {
			bc_why(why, whylen, "cannot read the origin table of cache device %s: %s",
			       e->cache->path, strerror(-ret));
			return ret;
		}
		t = &own;
		ret = bc_otable_check_overlap(t, why, whylen);
	}
	if (ret < 0)
		goto out;
	slot = ret = pick_record(e, t, why, whylen);
	if (ret < 0)
		goto out;
	if (t->st[slot][0] != BC_FMT_OK || t->st[slot][1] != BC_FMT_OK)
		bc_elog(e, BC_LOG_WARN, "cache device %s: origin '%s': record copy %d is invalid "
			    "(%s); using the other", e->cache->path, t->rec[slot]->name,
			    t->st[slot][0] != BC_FMT_OK ? 0 : 1,
			    bc_fmt_strerror(t->st[slot][0] != BC_FMT_OK ? t->st[slot][0] : t->st[slot][1]));
	e->sb = *t->rec[slot];
	e->cfg.origin_name = e->sb.name; /* the caller's string need not outlive the open */
	e->sb_copy_off[0] = bc_orec_offset(sb, (uint32_t)slot, 0);
	e->sb_copy_off[1] = bc_orec_offset(sb, (uint32_t)slot, 1);
	ret = 0;
out:
	if (t == &own)
		bc_otable_free(&own);
	return ret;
}

/* Format v3 writes its superblock only at format: a damaged copy is
 * rewritten from the valid one (as the next generation, which belongs in
 * the other copy), so that one more damage does not lose the cache. */
static void repair_superblock(struct bc_engine *e, const struct bc_sb_disk *sb, unsigned bad)
{
	struct bc_sb_disk *b = bc_alloc_aligned(BC_BLOCK_SIZE);
	int ret = -ENOMEM;

	if (b) {
		*b = *sb;
		b->seq += b->seq % BC_SB_COPIES == bad ? 2 : 1; /* generation g in copy g % 2 */
		bc_sb_seal(b);
		ret = bc_dev_rw_sync(e->cache, BC_DIO_WRITE, b, BC_BLOCK_SIZE,
				     (uint64_t)bad * BC_BLOCK_SIZE);
		if (!ret)
			ret = bc_dev_rw_sync(e->cache, BC_DIO_FLUSH, NULL, 0, 0);
		free(b);
	}
	if (ret < 0)
		bc_elog(e, BC_LOG_WARN, "cache device %s: rewriting the invalid superblock "
			    "copy failed: %s", e->cache->path, strerror(-ret));
	else
		bc_elog(e, BC_LOG_INFO, "cache device %s: the invalid superblock copy was "
			    "rewritten from the valid one", e->cache->path);
}

static int load_superblock(struct bc_engine *e, char *why, size_t whylen)
{
	const char *path = e->cache->path;
	enum bc_fmt_status s0, s1;
	const struct bc_sb_disk *sb;
	struct bc_sb_disk *two;
	int ret;

	two = bc_alloc_aligned(2 * BC_BLOCK_SIZE);
	if (!two)
		return -ENOMEM;
	ret = bc_sb_read(e->cache, two);
	if (ret < 0) {
		bc_why(why, whylen, "cannot read the superblocks of cache device %s: %s", path,
		       strerror(-ret));
		goto out;
	}
	sb = bc_sb_pick(&two[0], &two[1], &s0, &s1);
	if (!sb) {
		ret = -EINVAL;
		if (s0 == BC_FMT_BAD_MAGIC && s1 == BC_FMT_BAD_MAGIC)
			bc_why(why, whylen, "cache device %s is not a blkcache cache (no superblock); "
			       "run 'blkcache format' first", path);
		else if (s0 == BC_FMT_BAD_VERSION || s1 == BC_FMT_BAD_VERSION)
			bc_why(why, whylen, "cache device %s has on-disk format version %u; this "
			       "blkcache supports versions %u to %u (a newer blkcache wrote it?)", path,
			       s0 == BC_FMT_BAD_VERSION ? two[0].version : two[1].version,
			       BC_FORMAT_VERSION_MIN, BC_FORMAT_VERSION);
		else
			bc_why(why, whylen, "cache device %s: both superblock copies are invalid "
			       "(copy 0: %s; copy 1: %s)", path, bc_fmt_strerror(s0), bc_fmt_strerror(s1));
		goto out;
	}
	if (s0 != BC_FMT_OK || s1 != BC_FMT_OK)
		bc_elog(e, BC_LOG_WARN, "cache device %s: superblock copy %d is invalid (%s); using the other",
		       path, s0 != BC_FMT_OK ? 0 : 1, bc_fmt_strerror(s0 != BC_FMT_OK ? s0 : s1));
	if (sb->cache_size > e->cache->size) {
		ret = -EINVAL;
		bc_why(why, whylen, "cache device %s is %llu bytes but was formatted with %llu bytes; "
		       "it shrank or is the wrong device", path, (unsigned long long)e->cache->size,
		       (unsigned long long)sb->cache_size);
		goto out;
	}
	e->cache_version = sb->version;
	if (bc_sb_has_table(sb)) {
		if (s0 != BC_FMT_OK || s1 != BC_FMT_OK)
			repair_superblock(e, sb, s0 != BC_FMT_OK ? 0 : 1);
		ret = load_record(e, sb, why, whylen);
		goto out;
	}
	e->sb = *sb;
	e->sb_copy_off[0] = 0;
	e->sb_copy_off[1] = BC_BLOCK_SIZE;
	ret = 0;
out:
	free(two);
	return ret;
}

/* A labelled origin (format v1, or --origin-label): its label must name
 * this cache. */
static int check_label(struct bc_engine *e, const char *want, char *why, size_t whylen)
{
	struct bc_origin_label *l = bc_alloc_aligned(BC_BLOCK_SIZE);
	char got[37];
	int ret;

	if (!l)
		return -ENOMEM;
	ret = bc_label_read(e->origin, l);
	if (ret < 0) {
		bc_why(why, whylen, "cannot read the label of origin %s: %s", e->origin->path,
		       strerror(-ret));
	} else if (bc_label_check(l) != BC_FMT_OK) {
		ret = -EINVAL;
		bc_why(why, whylen, "origin %s carries no valid blkcache label (%s), but cache %s "
		       "belongs to origin UUID %s; wrong origin? (use 'blkcache format --force' to "
		       "start over)", e->origin->path, bc_fmt_strerror(bc_label_check(l)),
		       e->cache->path, want);
	} else if (memcmp(l->origin_uuid, e->sb.origin_uuid, 16) ||
		   memcmp(l->cache_uuid, e->sb.cache_uuid, 16)) {
		ret = -EINVAL;
		bc_uuid_format(l->origin_uuid, got);
		bc_why(why, whylen, "cache device %s belongs to origin UUID %s, but origin %s is "
		       "UUID %s; use the right origin, or 'blkcache format --force' to reformat",
		       e->cache->path, want, e->origin->path, got);
	}
	free(l);
	return ret;
}

/* An origin cached in place: its identity must be the recorded one (the
 * open superblock write records a new name or an accepted move). */
static int check_identity(struct bc_engine *e, const char *want, char *why, size_t whylen)
{
	struct bc_origin_id rec, found;
	char diff[512], a[640], b[640];

	bc_origin_id_load(&e->sb, &rec);
	bc_origin_id_get(e->origin, &found);
	switch (bc_origin_id_match(&rec, &found, diff, sizeof(diff))) {
	case BC_ORIGIN_SAME:
		return 0;
	case BC_ORIGIN_RENAMED:
		bc_elog(e, BC_LOG_INFO, "origin: %s; recording the new name", diff);
		break;
	case BC_ORIGIN_DIFFERENT:
		bc_origin_id_describe(&rec, a, sizeof(a));
		bc_origin_id_describe(&found, b, sizeof(b));
		if (!e->cfg.origin_moved) {
			bc_why(why, whylen, "origin %s is not the origin of cache %s (origin UUID %s): "
			       "%s (recorded: %s; found: %s); wrong origin? If you moved or renamed "
			       "the origin and this is it, serve with --origin-moved", e->origin->path,
			       e->cache->path, want, diff, a, b);
			return -EINVAL;
		}
		bc_elog(e, BC_LOG_WARN, "origin: accepting %s in place of %s (--origin-moved): %s", b, a,
		       diff);
		break;
	}
	bc_origin_id_store(&e->sb, &found);
	return 0;
}

static int check_origin(struct bc_engine *e, char *why, size_t whylen)
{
	char want[37];

	bc_uuid_format(e->sb.origin_uuid, want);
	if (e->origin->size != e->sb.origin_size) {
		bc_why(why, whylen, "origin %s is %llu bytes, but cache %s belongs to an origin of "
		       "%llu bytes (origin UUID %s%s%s); wrong origin? (use 'blkcache format --force' "
		       "to start over)", e->origin->path, (unsigned long long)e->origin->size,
		       e->cache->path, (unsigned long long)e->sb.origin_size, want,
		       e->sb.origin_path[0] ? ", " : "", e->sb.origin_path[0] ? e->sb.origin_path : "");
		return -EINVAL;
	}
	if (bc_sb_labeled(&e->sb))
		return check_label(e, want, why, whylen);
	return check_identity(e, want, why, whylen);
}

/*
 * Degraded mode: once the cache device has failed BC_DEGRADE_ERRORS IOs (or
 * a segment write failed for good), nothing new goes into the cache: writes
 * go to the origin as in writearound mode, read misses are not promoted,
 * reclaim re-appends nothing, and writeback runs flat out to get the dirty
 * data off the failing device.  Reads of clean blocks the device cannot
 * return come from the origin.  It lasts until the server restarts.
 */
void bc_note_cache_flush(struct bc_engine *e)
{
	e->st.cache_flushes++;
}

void bc_note_origin_flush(struct bc_engine *e)
{
	e->st.origin_flushes++;
}

void bc_note_data_crc_error(struct bc_engine *e)
{
	e->st.data_crc_errors++;
}

void bc_origin_error(struct bc_engine *e)
{
	e->st.io_errors++;
}

void bc_cache_error(struct bc_engine *e, bool fatal)
{
	e->st.io_errors++;
	e->st.cache_errors++;
	if (e->degraded || (!fatal && e->st.cache_errors < BC_DEGRADE_ERRORS))
		return;
	e->degraded = true;
	bc_elog(e, BC_LOG_ERR, "cache device %s is failing (%llu errors): DEGRADED mode: caching "
	       "nothing new, writing through to the origin, draining %llu dirty blocks; replace the "
	       "cache device once 'blkcache detach' has completed", e->cache->path,
	       (unsigned long long)e->st.cache_errors, (unsigned long long)e->nr_dirty);
	bc_wb_kick(e);
}

void bc_engine_free(struct bc_engine *e)
{
	if (!e)
		return;
	bc_loop_defer_cancel(e->loop, &e->start_comp);
	bc_drain_destroy(e);
	bc_write_destroy(e);
	bc_wb_destroy(e);
	bc_seglog_destroy(e);
	bc_index_destroy(&e->index);
	if (e->promote.ops)
		e->promote.ops->destroy(e->promote.ctx);
	free(e->sb_buf);
	if (e->owns_devs) {
		bc_dev_close(e->origin);
		bc_dev_close(e->cache);
	}
	free(e);
}

static int check_devices(struct bc_engine *e, char *why, size_t whylen)
{
	int ret;

	if (e->cache->lbs > BC_SECTOR_SIZE || e->origin->lbs > BC_SECTOR_SIZE) {
		bc_why(why, whylen, "%s has a logical block size of %u; blkcache needs 512-byte "
		       "sectors on both devices", e->cache->lbs > BC_SECTOR_SIZE ? e->cache->path :
		       e->origin->path, e->cache->lbs > BC_SECTOR_SIZE ? e->cache->lbs : e->origin->lbs);
		return -EINVAL;
	}
	ret = load_superblock(e, why, whylen);
	if (ret < 0)
		return ret;
	if ((e->sb.flags & BC_SB_DETACHED) && bc_sb_has_table(&e->sb)) {
		bc_why(why, whylen, "origin '%s' was detached from cache device %s (the origin %s is "
		       "complete on its own); add it again with 'blkcache origin add' to cache it",
		       e->sb.name, e->cache->path, e->origin->path);
		return -EINVAL;
	}
	if (e->sb.flags & BC_SB_DETACHED) {
		bc_why(why, whylen, "cache device %s was detached from its origin (the origin %s is "
		       "complete on its own); run 'blkcache format --force' to use it as a cache again",
		       e->cache->path, e->origin->path);
		return -EINVAL;
	}
	return check_origin(e, why, whylen);
}

/* Everything after the devices are open: geometry, subsystems, recovery. */
static int engine_start(struct bc_engine *e, char *why, size_t whylen)
{
	const struct bc_engine_config *cfg = &e->cfg;
	int ret = check_devices(e, why, whylen);
	unsigned nbufs;

	if (ret < 0)
		return ret;
	e->nseg = e->sb.nr_segments;
	e->hdr_blocks = e->sb.header_blocks;
	e->data_blocks = e->sb.data_blocks;
	e->seg_size = e->sb.segment_size;
	e->export_blocks = e->sb.export_size >> BC_BLOCK_SHIFT;
	if (e->export_blocks > BC_SLOT_MAX_BLOCKS ||
	    (uint64_t)e->nseg * e->data_blocks >= BC_IX_MAX_SLOTS) {
		bc_why(why, whylen, "this cache is larger than this blkcache can index (an origin of "
		       "at most 4 PiB, a cache of at most 2^31 blocks)");
		return -EFBIG;
	}
	nbufs = cfg->nr_buffers ? cfg->nr_buffers : DEFAULT_BUFFERS;
	if (nbufs > e->nseg / 2)
		nbufs = e->nseg / 2;
	bc_tunables_defaults(&e->tun);
	if (cfg->flush_deadline_us)
		e->tun.flush_deadline_us = cfg->flush_deadline_us;
	bc_mode_load(e);
	bc_drain_init(e);
	e->start_comp.fn = start_comp_fn;
	e->promote.ops = &bc_promote_nhit;
	/* What a killed server acknowledged from its staging file goes to the
	 * ring first; then this server's own file replaces it. */
	ret = bc_staging_restore(e, why, whylen);
	if (ret < 0)
		return ret;
	if (cfg->staging_dir) {
		ret = bc_staging_open(e, nbufs, why, whylen);
		if (ret < 0)
			return ret;
	}
	e->sb_buf = bc_alloc_aligned(BC_BLOCK_SIZE);
	if (!e->sb_buf || bc_seglog_init(e, nbufs) < 0 ||
	    bc_index_init(&e->index, (uint64_t)e->nseg * e->data_blocks, bc_seglog_slots(e)) < 0 ||
	    bc_write_init(e) < 0 || bc_wb_init(e) < 0 || e->promote.ops->init(&e->promote.ctx) < 0) {
		if (!e->promote.ctx)
			e->promote.ops = NULL;
		bc_why(why, whylen, "out of memory for a cache of %u segments", e->nseg);
		return -ENOMEM;
	}
	bc_seglog_set_deadline(e, e->tun.flush_deadline_us * 1000);
	ret = bc_recover(e, why, whylen);
	if (ret < 0)
		return ret;
	bc_sb_set_flags(e, 0, BC_SB_CLEAN);
	ret = bc_sb_write_sync(e);
	if (ret < 0) {
		bc_why(why, whylen, "writing the superblock failed: %s", strerror(-ret));
		return ret;
	}
	e->target = (struct bc_target){
		.ops = &engine_target_ops,
		.ctx = e,
		.size = e->sb.export_size,
		.min_block = BC_SECTOR_SIZE,
		.pref_block = BC_BLOCK_SIZE,
		.max_block = MAX_REQUEST,
		.flags = BC_TARGET_CAN_FLUSH | BC_TARGET_CAN_FUA | BC_TARGET_CAN_DISCARD |
			 BC_TARGET_CAN_ZEROES | BC_TARGET_MULTI_CONN,
	};
	/* Writeback starts from the loop, so that tunables set right after
	 * open (serve --set writeback_paused=1) apply to it. */
	bc_loop_defer(e->loop, &e->start_comp, 0);
	return 0;
}

static int engine_new(struct bc_engine **out, struct bc_loop *loop,
		      const struct bc_engine_config *cfg)
{
	struct bc_engine *e = calloc(1, sizeof(*e));

	if (!e)
		return -ENOMEM;
	e->loop = loop;
	e->cfg = *cfg;
	if (cfg->staging_dir)
		e->cfg.written_acks = false; /* staged acks replace them */
	*out = e;
	return 0;
}

int bc_engine_open_table(struct bc_engine **out, struct bc_loop *loop, struct bc_dev *cache,
			 struct bc_dev *origin, const struct bc_engine_config *cfg,
			 const struct bc_otable *t, char *why, size_t whylen)
{
	struct bc_engine *e;
	int ret = engine_new(&e, loop, cfg);

	if (ret < 0)
		return ret;
	e->cache = cache;
	e->origin = origin;
	e->open_table = t;
	ret = engine_start(e, why, whylen);
	e->open_table = NULL;
	if (ret < 0) {
		bc_engine_free(e);
		return ret;
	}
	*out = e;
	return 0;
}

int bc_engine_open_devs(struct bc_engine **out, struct bc_loop *loop, struct bc_dev *cache,
			struct bc_dev *origin, const struct bc_engine_config *cfg, char *why,
			size_t whylen)
{
	return bc_engine_open_table(out, loop, cache, origin, cfg, NULL, why, whylen);
}

int bc_engine_open(struct bc_engine **out, struct bc_loop *loop,
		   const struct bc_engine_config *cfg, char *why, size_t whylen)
{
	struct bc_engine *e;
	int ret = engine_new(&e, loop, cfg);

	if (ret < 0)
		return ret;
	e->owns_devs = true;
	ret = bc_dev_open_as(&e->cache, cfg->devices, loop, "cache device", cfg->cache_path,
			     (cfg->shard_member && cfg->shard) || cfg->cache_shared ? BC_DEV_SHARED : 0,
			     why, whylen);
	if (ret < 0)
		goto err;
	ret = bc_dev_open_as(&e->origin, cfg->devices, loop, "origin", cfg->origin_path,
			     cfg->origin_shared ? BC_DEV_SHARED : 0, why, whylen);
	if (ret < 0)
		goto err;
	ret = engine_start(e, why, whylen);
	if (ret < 0)
		goto err;
	*out = e;
	return 0;
err:
	bc_engine_free(e);
	return ret;
}

int bc_engine_close(struct bc_engine *e)
{
	int ret = 0;

	e->closing = true;
	/* Shutdown does not wait for a drain: the dirty data stays in the
	 * cache, safe, and a later flush finishes the job. */
	bc_drain_fail(e, -ECANCELED);
	for (;;) {
		if (!bc_write_waiting(e))
			bc_seglog_seal(e);
		bc_seglog_flush_kick(e); /* closing: everything written must be flushed */
		bc_origin_flush_kick(e);
		/* Every subsystem says whether it still has work in flight. */
		if (bc_write_idle(e) && bc_seglog_idle(e) && bc_wb_idle(e) && bc_flush_idle(e) &&
		    bc_drain_idle(e))
			break;
		if (bc_seglog_failed(e)) {
			ret = -EIO;
			break;
		}
		ret = bc_loop_run_once(e->loop, 100);
		if (ret < 0)
			break;
		ret = 0;
	}
	if (!ret) {
		bc_sb_set_flags(e, BC_SB_CLEAN, 0);
		ret = bc_sb_write_sync(e);
	}
	/* Everything staged is on the cache device: the file goes. */
	if (!ret)
		bc_staging_mark_clean(e);
	bc_engine_free(e);
	return ret;
}

size_t bc_engine_stats_get(struct bc_engine *e, struct bc_engine_stats *out, size_t size)
{
	struct bc_engine_stats full, *st = &full;

	*st = e->st;
	st->export_size = e->sb.export_size;
	st->cached_blocks = e->index.count;
	st->dirty_blocks = e->nr_dirty;
	st->segments_total = e->nseg;
	bc_seglog_stats(e, st);
	st->mode = (uint32_t)bc_engine_mode(e);
	st->data_crc = !!(e->sb.flags & BC_SB_DATA_CRC);
	st->degraded = e->degraded;
	st->writeback_paused = (uint32_t)e->tun.writeback_paused;
	st->detached = !!(e->sb.flags & BC_SB_DETACHED);
	st->acks = e->cfg.staging_dir ? BC_ACKS_STAGED : e->cfg.written_acks ? BC_ACKS_WRITTEN :
		   BC_ACKS_BUFFERED;
	st->cache_queue = e->cache->q;
	if (e->origin)
		st->origin_queue = e->origin->q;
	bc_loop_get_stats(e->loop, &st->loop);
	if (size > sizeof(full))
		size = sizeof(full);
	memcpy(out, &full, size);
	return size;
}
