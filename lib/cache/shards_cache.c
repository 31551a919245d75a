/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A sharded origin of a cache device (format v5, docs/shards.md): its
 * records say how many shards and which stripe; each shard is an engine on
 * its own record's ring, all on the one cache device and the one origin.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blkcache/log.h"
#include "blkcache/shards.h"
#include "cache/shards_internal.h"
#include "core/why.h"
#include "dev/device.h"
#include "format/otable.h"
#include "format/superblock.h"

/* The record of the origin to open: the one named, or the only one. */
static int find_origin(const struct bc_otable *t, const char *name, const char *path, char *why,
		       size_t whylen)
{
	char names[512];
	int slot;

	bc_otable_names(t, names, sizeof(names));
	slot = name ? bc_otable_find(t, name) : bc_otable_find_origin(t, NULL, BC_OREC_ATTACHED);
	if (slot >= 0 && !name && bc_otable_attached(t) > 1) {
		bc_why(why, whylen, "cache device %s serves %u origins (%s): name the one to open",
		       path, bc_otable_attached(t), names);
		return -EINVAL;
	}
	if (slot >= 0 && !bc_orec_holds_ring(t->rec[slot]) && name) {
		bc_why(why, whylen, "origin '%s' was detached from cache device %s (the origin %s is "
		       "complete on its own); add it again with 'blkcache origin add' to cache it",
		       name, path, t->rec[slot]->origin_path);
		return -EINVAL;
	}
	if (slot < 0 || !bc_orec_holds_ring(t->rec[slot])) {
		bc_why(why, whylen, "cache device %s has no %s%s%s (its origins: %s)", path,
		       name ? "origin named '" : "origin", name ? name : "", name ? "'" : "",
		       names[0] ? names : "none");
		return -ENOENT;
	}
	return slot;
}

/* Is @q another shard of @r's origin? */
static bool same_origin(const struct bc_sb_disk *r, const struct bc_sb_disk *q)
{
	return q != r && q->shard_count == r->shard_count &&
	       !memcmp(q->origin_uuid, r->origin_uuid, sizeof(r->origin_uuid)) &&
	       !strncmp(q->name, r->name, sizeof(r->name));
}

int bc_shards_finish_detach(struct bc_dev *cache, struct bc_otable *t, char *why, size_t whylen)
{
	struct bc_sb_disk *copy = bc_alloc_aligned(BC_BLOCK_SIZE), sb;
	unsigned written = 0;
	uint32_t i, j;
	int ret = 0;

	if (!copy)
		return -ENOMEM;
	for (i = 0; i < t->sb.origin_slots && !ret; i++) {
		const struct bc_sb_disk *r = t->rec[i];

		if (!r || !r->shard_count || bc_orec_holds_ring(r))
			continue;
		for (j = 0; j < t->sb.origin_slots && !ret; j++) {
			if (!bc_orec_holds_ring(t->rec[j]) || !same_origin(r, t->rec[j]))
				continue;
			*copy = *t->rec[j];
			copy->flags |= BC_SB_DETACHED;
			ret = bc_orec_write_sync(cache, &t->sb, copy, false);
			if (ret < 0) {
				bc_why(why, whylen, "origin '%s': completing its detach: writing the "
				       "record of shard %u failed: %s", r->name, copy->shard_index,
				       strerror(-ret));
				break;
			}
			written++;
			bc_log(BC_LOG_WARN, "origin '%s': shard %u of %u marked detached: a detach "
			       "was interrupted while its shards' records were written (every shard "
			       "was complete and clean by then); the origin is detached", r->name,
			       copy->shard_index, copy->shard_count);
		}
	}
	free(copy);
	if (ret < 0 || !written)
		return ret;
	sb = t->sb;
	bc_otable_free(t);
	ret = bc_otable_read(cache, &sb, t);
	if (ret < 0) {
		bc_why(why, whylen, "cannot read the origin table of cache device %s again: %s",
		       cache->path, strerror(-ret));
		return ret;
	}
	return (int)written;
}

/* Read what the cache device says about the origin: its record. */
static int read_record(const struct bc_shards_cache_config *cc, struct bc_loop *host,
		       struct bc_sb_disk *rec, char *why, size_t whylen)
{
	const struct bc_engine_config *ec = cc->engine;
	struct bc_sb_disk *two = bc_alloc_aligned(2 * BC_BLOCK_SIZE);
	const struct bc_sb_disk *sb = NULL;
	struct bc_otable t = { 0 };
	struct bc_dev *cache = NULL;
	bool table = false;
	int ret = -ENOMEM, slot;

	if (!two)
		return ret;
	ret = bc_dev_open_as(&cache, ec->devices, host, "cache device", ec->cache_path,
			     ec->cache_shared ? BC_DEV_SHARED : 0, why, whylen);
	if (ret < 0)
		goto out;
	ret = bc_sb_read(cache, two);
	sb = ret ? NULL : bc_sb_pick(&two[0], &two[1], NULL, NULL);
	if (!sb || !bc_sb_has_table(sb)) {
		/* No table (an older format or none): one engine says what it is. */
		memset(rec, 0, sizeof(*rec));
		ret = 0;
		goto out;
	}
	ret = bc_otable_read(cache, sb, &t);
	table = ret == 0;
	if (ret < 0) {
		bc_why(why, whylen, "cannot read the origin table of cache device %s: %s",
		       ec->cache_path, strerror(-ret));
		goto out;
	}
	ret = bc_shards_finish_detach(cache, &t, why, whylen);
	if (ret >= 0)
		slot = ret = find_origin(&t, ec->origin_name, ec->cache_path, why, whylen);
	if (ret >= 0) {
		*rec = *t.rec[slot];
		ret = 0;
	}
out:
	if (table)
		bc_otable_free(&t);
	bc_dev_close(cache);
	free(two);
	return ret;
}

int bc_shards_open_cache(struct bc_shards **out, struct bc_loop *host,
			 const struct bc_shards_cache_config *cc, char *why, size_t whylen)
{
	struct bc_engine_config engines[BC_MAX_SHARDS];
	struct bc_sb_disk *rec = bc_alloc_aligned(BC_BLOCK_SIZE);
	struct bc_shards_config sc = { .queue_depth = cc->queue_depth, .setup = cc->setup,
				       .setup_arg = cc->setup_arg, .engines = engines,
				       .one_thread = cc->one_thread, .nhosts = cc->nhosts,
				       .hosts = cc->hosts, .shard_hosts = cc->shard_hosts };
	unsigned i;
	int ret;

	if (!rec)
		return -ENOMEM;
	ret = read_record(cc, host, rec, why, whylen);
	if (ret < 0)
		goto out;
	sc.n = bc_orec_shards(rec);
	sc.stripe = (uint64_t)(rec->stripe_blocks ? rec->stripe_blocks : 1) * BC_BLOCK_SIZE;
	for (i = 0; i < sc.n; i++) {
		engines[i] = *cc->engine;
		engines[i].shard_member = true;
		engines[i].shard = (uint8_t)i;
		if (rec->name[0])
			engines[i].origin_name = rec->name;
		if (!engines[i].origin_path)
			engines[i].origin_path = rec->origin_path;
	}
	ret = bc_shards_open(out, host, &sc, why, whylen);
out:
	free(rec);
	return ret;
}
