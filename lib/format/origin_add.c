/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * 'blkcache origin add': a new origin in the table of a format v3 cache
 * that is not being served (a running server attaches one live instead).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blkcache/engine.h"
#include "core/why.h"
#include "format/origin_rec.h"
#include "format/otable.h"
#include "format/superblock.h"

struct add {
	const struct bc_format_config *cfg;
	struct bc_loop *loop;
	struct bc_dev *cache, *origin;
	struct bc_sb_disk *two, *rec;
	struct bc_origin_label *label;
	struct bc_otable t;
	char *why;
	size_t whylen;
};

static int add_open(struct add *a)
{
	const struct bc_format_config *cfg = a->cfg;
	int ret = bc_loop_new(&a->loop, 64);

	if (ret < 0) {
		bc_why(a->why, a->whylen, "cannot set up io_uring: %s", strerror(-ret));
		return ret;
	}
	ret = bc_dev_open_as(&a->cache, cfg->devices, a->loop, "cache device", cfg->cache_path, 0,
			     a->why, a->whylen);
	if (ret == -EBUSY)
		bc_why(a->why, a->whylen, "cache device %s is in use (being served?): add the origin "
		       "to a running server with 'blkcache attach %s %s'", cfg->cache_path,
		       cfg->name, cfg->origin_path);
	if (!ret)
		ret = bc_dev_open_as(&a->origin, cfg->devices, a->loop, "origin", cfg->origin_path,
				     0, a->why, a->whylen);
	if (ret < 0)
		return ret;
	a->two = bc_alloc_aligned(2 * BC_BLOCK_SIZE);
	a->rec = bc_alloc_aligned(BC_BLOCK_SIZE);
	a->label = bc_alloc_aligned(BC_BLOCK_SIZE);
	if (!a->two || !a->rec || !a->label) {
		bc_why(a->why, a->whylen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* The cache's superblock (version 3) and its origin table. */
static int add_load(struct add *a)
{
	const char *path = a->cfg->cache_path;
	const struct bc_sb_disk *sb;
	int ret = bc_sb_read(a->cache, a->two);

	if (ret < 0) {
		bc_why(a->why, a->whylen, "cannot read cache device %s: %s", path, strerror(-ret));
		return ret;
	}
	sb = bc_sb_pick(&a->two[0], &a->two[1], NULL, NULL);
	if (!sb) {
		bc_why(a->why, a->whylen, "cache device %s is not a blkcache cache (no valid "
		       "superblock); format it first ('blkcache format --cache %s')", path, path);
		return -EINVAL;
	}
	if (!bc_sb_has_table(sb)) {
		bc_why(a->why, a->whylen, "cache device %s has format version %u, which serves one "
		       "origin; origins are added to version %u caches: drain it ('blkcache "
		       "detach'), then format it again", path, sb->version, BC_FORMAT_VERSION_TABLE);
		return -EINVAL;
	}
	ret = bc_otable_read(a->cache, sb, &a->t);
	if (ret < 0) {
		bc_why(a->why, a->whylen, "cannot read the origin table of cache device %s: %s", path,
		       strerror(-ret));
		return ret;
	}
	return bc_otable_check_overlap(&a->t, a->why, a->whylen);
}

int bc_origin_add(const struct bc_format_config *cfg, char *why, size_t whylen)
{
	struct add a = { .cfg = cfg, .why = why, .whylen = whylen };
	struct bc_orec_req q = { .name = cfg->name, .size = cfg->size,
				 .size_percent = cfg->size_percent, .data_crc = cfg->data_crc,
				 .origin_label = cfg->origin_label, .force = cfg->force };
	char notice[512] = "", u[37];
	int ret;

	if (!cfg->cache_path || !cfg->origin_path || !cfg->name) {
		bc_why(why, whylen, "origin add needs a cache, an origin and a name");
		return -EINVAL;
	}
	ret = add_open(&a);
	if (!ret)
		ret = add_load(&a);
	if (!ret)
		ret = bc_orec_check_origin(a.origin, &a.t.sb, &q, notice, sizeof(notice), why,
					   whylen);
	if (!ret)
		ret = bc_orec_build(&a.t, a.origin, &q, a.rec, a.label, why, whylen);
	if (ret < 0)
		goto out;
	if (q.origin_label) {
		ret = bc_dev_rw_sync(a.origin, BC_DIO_WRITE, a.label, BC_BLOCK_SIZE,
				     bc_label_offset(a.origin->size));
		if (!ret)
			ret = bc_dev_rw_sync(a.origin, BC_DIO_FLUSH, NULL, 0, 0);
	}
	if (!ret)
		ret = bc_orec_write_sync(a.cache, &a.t.sb, a.rec, true);
	if (ret < 0) {
		bc_why(why, whylen, "writing the origin's record failed: %s", strerror(-ret));
		goto out;
	}
	bc_uuid_format(a.rec->origin_uuid, u);
	bc_why(why, whylen, "added origin '%s' (%s, origin UUID %s) to cache %s: %u segments of %u KiB, "
	       "exported size %llu bytes%s", a.rec->name, a.origin->path, u, cfg->cache_path,
	       a.rec->nr_segments, a.rec->segment_size >> 10, (unsigned long long)a.rec->export_size,
	       notice);
out:
	bc_otable_free(&a.t);
	free(a.two);
	free(a.rec);
	free(a.label);
	bc_dev_close(a.origin);
	bc_dev_close(a.cache);
	bc_loop_free(a.loop);
	return ret;
}
