/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A cache device and the origins it serves (blkcache/cache.h): one open
 * cache device, one engine per origin, on one loop.  The engines share
 * nothing else: each origin has its own ring of the cache's segments
 * (format/otable.h), so one origin's writes, FLUSHes, writeback, failures
 * and detach never wait for another's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blkcache/cache.h"
#include "blkcache/shards.h"
#include "cache/shards_internal.h"
#include "core/why.h"
#include "dev/device.h"
#include "engine/engine.h"
#include "format/origin_id.h"
#include "format/origin_rec.h"
#include "format/otable.h"
#include "format/superblock.h"

struct bc_cache_origin {
	struct bc_engine *e;         /* a sharded origin: shard 0's (on the cache set's loop) */
	struct bc_dev *origin;       /* not sharded: opened by the set */
	struct bc_shards *shards;    /* sharded (format v5): its shard set, or NULL */
};

struct bc_cache {
	struct bc_loop *loop;
	struct bc_engine_config cfg;  /* for every origin's engine */
	struct bc_dev *cache;
	bool has_table;               /* format v3 */
	unsigned n;
	struct bc_cache_origin o[BC_ORIGIN_SLOTS];
};

const struct bc_dev *bc_cache_device(const struct bc_cache *c)
{
	return c->cache;
}

unsigned bc_cache_count(const struct bc_cache *c)
{
	return c->n;
}

struct bc_engine *bc_cache_engine(const struct bc_cache *c, unsigned i)
{
	return i < c->n ? c->o[i].e : NULL;
}

struct bc_engine *bc_cache_find(const struct bc_cache *c, const char *name)
{
	unsigned i;

	for (i = 0; i < c->n; i++)
		if (!strcmp(bc_engine_name(c->o[i].e), name))
			return c->o[i].e;
	return NULL;
}

/* A sharded origin (format v5): its shard set on the set's loop (shard 0
 * runs there, the others on threads of their own, which host too: a
 * frontend may submit there), the cache device shared with the set's
 * handle. */
static int open_sharded(struct bc_cache *c, const struct bc_engine_config *cfg, const char *path,
			char *why, size_t whylen)
{
	struct bc_engine_config ec = *cfg;
	struct bc_shards_cache_config cc = { .engine = &ec, .shard_hosts = true };
	struct bc_cache_origin *o = &c->o[c->n];
	char w[768];
	int ret;

	ec.origin_path = path;
	ec.cache_shared = true;
	ret = bc_shards_open_cache(&o->shards, c->loop, &cc, w, sizeof(w));
	if (ret < 0) {
		bc_why(why, whylen, "origin '%s': %s", cfg->origin_name, w);
		return ret;
	}
	o->e = bc_shards_engine(o->shards, 0);
	c->n++;
	return 0;
}

/* Open @path as @name's origin and its engine; appended to the set.  @t:
 * the origin table as read (v3; NULL: the engine reads it). */
static int open_origin(struct bc_cache *c, const struct bc_otable *t, const char *name,
		       const char *path, char *why, size_t whylen)
{
	struct bc_engine_config cfg = c->cfg;
	struct bc_cache_origin *o = &c->o[c->n];
	char w[768];
	int ret, slot;

	if (c->n >= BC_ORIGIN_SLOTS)
		return -ENOSPC;
	cfg.origin_name = name;
	if (t && (slot = bc_otable_find(t, name)) >= 0 && t->rec[slot]->shard_count)
		return open_sharded(c, &cfg, path, why, whylen);
	ret = bc_dev_open_as(&o->origin, cfg.devices, c->loop, "origin", path, 0, w, sizeof(w));
	if (ret < 0) {
		bc_why(why, whylen, "origin '%s': %s", name ? name : BC_DEFAULT_ORIGIN_NAME, w);
		return ret;
	}
	ret = bc_engine_open_table(&o->e, c->loop, c->cache, o->origin, &cfg, t, w, sizeof(w));
	if (ret < 0) {
		if (c->has_table)
			bc_why(why, whylen, "origin '%s': %s", name, w);
		else
			bc_why(why, whylen, "%s", w);
		bc_dev_close(o->origin);
		o->origin = NULL;
		return ret;
	}
	c->n++;
	return 0;
}

/* The device of record @rec: cfg->origin_path if it is that origin (or
 * the cache's only one, or the one named), else the recorded path. */
static const char *origin_path_of(const struct bc_cache *c, const struct bc_otable *t,
				  const struct bc_sb_disk *rec, const struct bc_origin_id *given)
{
	struct bc_origin_id id;
	char diff[256];

	if (!c->cfg.origin_path)
		return rec->origin_path;
	bc_origin_id_load(rec, &id);
	if (c->cfg.origin_name || bc_otable_attached(t) == 1 ||
	    bc_origin_id_match(&id, given, diff, sizeof(diff)) != BC_ORIGIN_DIFFERENT)
		return c->cfg.origin_path;
	return rec->origin_path;
}

/* The identity of the device cfg->origin_path (as the engine compares it). */
static int given_origin(struct bc_cache *c, struct bc_origin_id *id, char *why, size_t whylen)
{
	struct bc_dev *d;
	int ret;

	memset(id, 0, sizeof(*id));
	if (!c->cfg.origin_path)
		return 0;
	ret = bc_dev_open_as(&d, c->cfg.devices, c->loop, "origin", c->cfg.origin_path, 0, why,
			     whylen);
	if (ret < 0)
		return ret;
	bc_origin_id_get(d, id);
	bc_dev_close(d);
	return 0;
}

/* The origin device given is none of the attached origins: a detached
 * one's engine says so; else say which origins there are. */
static int given_not_served(struct bc_cache *c, const struct bc_otable *t,
			    const struct bc_origin_id *given, char *why, size_t whylen)
{
	char names[512];
	int slot = bc_otable_find_origin(t, given, BC_OREC_DETACHED);

	if (slot >= 0)
		return open_origin(c, t, t->rec[slot]->name, c->cfg.origin_path, why, whylen);
	if (c->cfg.origin_name)
		return 0; /* the named origin was served from the device given */
	bc_otable_names(t, names, sizeof(names));
	bc_why(why, whylen, "origin %s is none of the origins of cache device %s (%s); wrong "
	       "origin? If you moved it, name it: --name NAME --origin-moved", c->cfg.origin_path,
	       c->cache->path, names[0] ? names : "it has none");
	return -ENOENT;
}

/* Format v3: every attached origin (or the one named). */
static int open_table(struct bc_cache *c, const struct bc_sb_disk *sb, char *why, size_t whylen)
{
	struct bc_origin_id given;
	bool used_given = false;
	struct bc_otable t;
	const char *path;
	uint32_t i;
	int ret = bc_otable_read(c->cache, sb, &t);

	if (ret < 0) {
		bc_why(why, whylen, "cannot read the origin table of cache device %s: %s",
		       c->cache->path, strerror(-ret));
		return ret;
	}
	ret = bc_shards_finish_detach(c->cache, &t, why, whylen);
	if (ret >= 0)
		ret = bc_otable_check_overlap(&t, why, whylen);
	if (!ret)
		ret = given_origin(c, &given, why, whylen);
	if (!ret && c->cfg.origin_name && bc_otable_find(&t, c->cfg.origin_name) < 0) {
		char names[512];

		bc_otable_names(&t, names, sizeof(names));
		bc_why(why, whylen, "cache device %s has no origin named '%s' (its origins: %s)",
		       c->cache->path, c->cfg.origin_name, names[0] ? names : "none");
		ret = -ENOENT;
	}
	for (i = 0; !ret && i < t.sb.origin_slots; i++) {
		if (!bc_orec_holds_ring(t.rec[i]))
			continue;
		if (c->cfg.origin_name && strcmp(c->cfg.origin_name, t.rec[i]->name))
			continue;
		if (t.rec[i]->shard_index)
			continue; /* shard 0's record stands for the origin */
		path = origin_path_of(c, &t, t.rec[i], &given);
		used_given |= path == c->cfg.origin_path;
		ret = open_origin(c, &t, t.rec[i]->name, path, why, whylen);
	}
	if (!ret && c->cfg.origin_path && !used_given)
		ret = given_not_served(c, &t, &given, why, whylen);
	bc_otable_free(&t);
	return ret;
}

/* What the superblock says: a table (v3), or one origin. */
static int read_sb(struct bc_cache *c, struct bc_sb_disk *sb)
{
	struct bc_sb_disk *two = bc_alloc_aligned(2 * BC_BLOCK_SIZE);
	const struct bc_sb_disk *cur;
	int ret = -ENOMEM;

	if (!two)
		return ret;
	ret = bc_sb_read(c->cache, two);
	cur = ret ? NULL : bc_sb_pick(&two[0], &two[1], NULL, NULL);
	if (cur)
		*sb = *cur;
	free(two);
	return cur ? 0 : -EINVAL;
}

int bc_cache_open(struct bc_cache **out, struct bc_loop *loop, const struct bc_engine_config *cfg,
		  char *why, size_t whylen)
{
	struct bc_cache *c = calloc(1, sizeof(*c));
	struct bc_sb_disk *sb = bc_alloc_aligned(BC_BLOCK_SIZE);
	int ret = -ENOMEM;

	if (!c || !sb)
		goto err;
	c->loop = loop;
	c->cfg = *cfg;
	ret = bc_dev_open_as(&c->cache, cfg->devices, loop, "cache device", cfg->cache_path, 0, why,
			     whylen);
	if (ret < 0)
		goto err;
	/* No valid superblock: the engine says why (version, damage...). */
	c->has_table = read_sb(c, sb) == 0 && bc_sb_has_table(sb);
	if (c->has_table) {
		ret = open_table(c, sb, why, whylen);
	} else if (!cfg->origin_path) {
		bc_why(why, whylen, "cache device %s serves one origin (format version %u): give it "
		       "(--origin)", cfg->cache_path, sb->version);
		ret = -EINVAL;
	} else {
		ret = open_origin(c, NULL, NULL, cfg->origin_path, why, whylen);
	}
	if (ret < 0)
		goto err;
	free(sb);
	*out = c;
	return 0;
err:
	free(sb);
	if (c)
		bc_cache_close(c);
	return ret;
}

int bc_cache_remove(struct bc_cache *c, struct bc_engine *e)
{
	unsigned i;
	int ret;

	for (i = 0; i < c->n && c->o[i].e != e; i++)
		;
	if (i == c->n)
		return -ENOENT;
	ret = c->o[i].shards ? bc_shards_close(c->o[i].shards) : bc_engine_close(e);
	bc_dev_close(c->o[i].origin);
	memmove(&c->o[i], &c->o[i + 1], (c->n - i - 1) * sizeof(c->o[0]));
	c->n--;
	return ret;
}

int bc_cache_close(struct bc_cache *c)
{
	int ret = 0, r;

	while (c->n) {
		r = bc_cache_remove(c, c->o[c->n - 1].e);
		if (r < 0 && !ret)
			ret = r;
	}
	bc_dev_close(c->cache);
	free(c);
	return ret;
}

/* ---- live attach ---- */

/* A new record for oc's origin, written to the table; its name in @name. */
static int attach_new(struct bc_cache *c, struct bc_otable *t, const struct bc_format_config *oc,
		      char *why, size_t whylen)
{
	struct bc_orec_req q = { .name = oc->name, .size = oc->size,
				 .size_percent = oc->size_percent, .data_crc = oc->data_crc,
				 .origin_label = oc->origin_label, .force = oc->force };
	struct bc_sb_disk *rec = bc_alloc_aligned(BC_BLOCK_SIZE);
	struct bc_origin_label *label = bc_alloc_aligned(BC_BLOCK_SIZE);
	struct bc_dev *origin = NULL;
	char notice[512];
	int ret = -ENOMEM;

	if (!rec || !label)
		goto out;
	ret = bc_dev_open_as(&origin, oc->devices ? oc->devices : c->cfg.devices, c->loop, "origin",
			     oc->origin_path, 0, why, whylen);
	if (!ret)
		ret = bc_orec_check_origin(origin, &t->sb, &q, notice, sizeof(notice), why, whylen);
	if (!ret)
		ret = bc_orec_build(t, origin, &q, rec, label, why, whylen);
	if (!ret && q.origin_label) {
		ret = bc_dev_rw_sync(origin, BC_DIO_WRITE, label, BC_BLOCK_SIZE,
				     bc_label_offset(origin->size));
		if (!ret)
			ret = bc_dev_rw_sync(origin, BC_DIO_FLUSH, NULL, 0, 0);
		if (ret < 0)
			bc_why(why, whylen, "writing the label of origin %s failed: %s",
			       oc->origin_path, strerror(-ret));
	}
	if (!ret) {
		ret = bc_orec_write_sync(c->cache, &t->sb, rec, true);
		if (ret < 0)
			bc_why(why, whylen, "writing the record of origin '%s' failed: %s", rec->name,
			       strerror(-ret));
	}
out:
	bc_dev_close(origin);
	free(rec);
	free(label);
	return ret;
}

int bc_cache_attach(struct bc_cache *c, const struct bc_format_config *oc, struct bc_engine **out,
		    char *why, size_t whylen)
{
	struct bc_sb_disk *sb = bc_alloc_aligned(BC_BLOCK_SIZE);
	struct bc_otable t = { 0 };
	int slot, ret = -ENOMEM;

	if (!sb)
		return ret;
	if (!c->has_table || !oc->name || !oc->origin_path) {
		bc_why(why, whylen, !c->has_table ? "cache device %s has format version 2 or 1, "
		       "which serves one origin; only a version 3 cache takes more" :
		       "attach needs a name and an origin device", c->cache->path);
		ret = -EINVAL;
		goto out;
	}
	if (bc_cache_find(c, oc->name)) {
		bc_why(why, whylen, "origin '%s' is already served", oc->name);
		ret = -EEXIST;
		goto out;
	}
	/* The table as it is on the device: 'origin add' may have run. */
	ret = read_sb(c, sb);
	if (!ret)
		ret = bc_otable_read(c->cache, sb, &t);
	if (ret < 0) {
		bc_why(why, whylen, "cannot read the origin table of cache device %s: %s",
		       c->cache->path, strerror(-ret));
		goto out;
	}
	slot = bc_otable_find(&t, oc->name);
	if (slot < 0 || !bc_orec_holds_ring(t.rec[slot]))
		ret = attach_new(c, &t, oc, why, whylen);
	if (!ret)
		ret = open_origin(c, NULL, oc->name, oc->origin_path, why, whylen); /* re-read: changed */
	if (!ret && out)
		*out = c->o[c->n - 1].e;
out:
	bc_otable_free(&t);
	free(sb);
	return ret;
}

struct bc_shards *bc_cache_shards(const struct bc_cache *c, const struct bc_engine *e)
{
	unsigned i;

	for (i = 0; i < c->n; i++)
		if (c->o[i].e == e)
			return c->o[i].shards;
	return NULL;
}

const struct bc_target *bc_cache_target(const struct bc_cache *c, struct bc_engine *e)
{
	struct bc_shards *s = bc_cache_shards(c, e);

	return s ? bc_shards_target(s) : bc_engine_target(e);
}
