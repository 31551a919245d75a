/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Formatting a new cache (blkcache format): version 3, a superblock and an
 * origin table with the first origin's record, if one is given (its ring
 * is the whole cache unless a size is given); or version 2, whose
 * superblock is its one origin's.  What an origin must pass and what its
 * record holds: format/origin_rec.c.  A cache device that holds a
 * filesystem, partition table or other signature (libblkid) is refused
 * unless forced.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine.h"
#include "core/why.h"
#include "dev/pmem.h"
#include "format/origin_rec.h"
#include "format/otable.h"
#include "format/probe.h"
#include "format/superblock.h"

struct fmt {
	const struct bc_format_config *cfg;
	struct bc_loop *loop;
	struct bc_dev *cache, *origin;
	struct bc_sb_disk *two;       /* both superblock copies (8 KiB) */
	struct bc_origin_label *label; /* the origin's label, if asked */
	const struct bc_sb_disk *old; /* a blkcache format already on the cache device */
	struct bc_orec_req req;
	char notice[512];             /* said on success */
	char *why;
	size_t whylen;
};

static int fmt_open(struct fmt *f)
{
	const struct bc_format_config *cfg = f->cfg;
	int ret = bc_loop_new(&f->loop, 64);

	if (ret < 0) {
		bc_why(f->why, f->whylen, "cannot set up io_uring: %s", strerror(-ret));
		return ret;
	}
	ret = bc_dev_open_as(&f->cache, cfg->devices, f->loop, "cache device", cfg->cache_path, 0,
			     f->why, f->whylen);
	if (ret < 0)
		return ret;
	if (cfg->origin_path) {
		ret = bc_dev_open_as(&f->origin, cfg->devices, f->loop, "origin", cfg->origin_path, 0,
				     f->why, f->whylen);
		if (ret < 0)
			return ret;
	}
	f->two = bc_alloc_aligned(2 * BC_BLOCK_SIZE);
	f->label = bc_alloc_aligned(BC_BLOCK_SIZE);
	if (!f->two || !f->label) {
		bc_why(f->why, f->whylen, "out of memory");
		return -ENOMEM;
	}
	f->req = (struct bc_orec_req){ .name = cfg->name, .size = cfg->size,
				       .size_percent = cfg->size_percent, .whole = true,
				       .data_crc = cfg->data_crc, .origin_label = cfg->origin_label,
				       .force = cfg->force };
	return 0;
}

static void fmt_close(struct fmt *f)
{
	free(f->two);
	free(f->label);
	bc_dev_close(f->origin);
	bc_dev_close(f->cache);
	bc_loop_free(f->loop);
}

/* The cache device must not hold a blkcache format or anyone's data. */
static int fmt_check_cache(struct fmt *f)
{
	const struct bc_format_config *cfg = f->cfg;
	char u[37], sig[256];
	int ret = bc_sb_read(f->cache, f->two);

	if (ret < 0 && ret != -ENOSPC) {
		bc_why(f->why, f->whylen, "cannot read cache device %s: %s", cfg->cache_path,
		       strerror(-ret));
		return ret;
	}
	f->old = ret == 0 ? bc_sb_pick(&f->two[0], &f->two[1], NULL, NULL) : NULL;
	if (f->old && !cfg->force) {
		bc_uuid_format(bc_sb_has_table(f->old) ? f->old->cache_uuid : f->old->origin_uuid, u);
		bc_why(f->why, f->whylen, "cache device %s already holds a blkcache cache (%s UUID "
		       "%s)%s; use --force to reformat (its data is lost)", cfg->cache_path,
		       bc_sb_has_table(f->old) ? "cache" : "for origin", u,
		       (f->old->flags & BC_SB_CLEAN) ? "" : " (it may hold dirty data)");
		return -EEXIST;
	}
	if (f->old || cfg->force)
		return 0;
	ret = bc_probe_signature(f->cache, sig, sizeof(sig));
	if (ret > 0) {
		bc_why(f->why, f->whylen, "cache device %s holds %s: formatting it as a cache destroys "
		       "it; use --force if that is what you want (or clear it with wipefs -a)",
		       cfg->cache_path, sig);
		return -EEXIST;
	}
	return 0;
}

/* Invalidate the superblocks first so a crash mid-format leaves an
 * unformatted device, not a half-old one; then the origin's label, if any. */
static int fmt_invalidate(struct fmt *f)
{
	struct bc_sb_disk *zero = &f->two[1];
	int ret;

	memset(zero, 0, sizeof(*zero));
	ret = bc_dev_rw_sync(f->cache, BC_DIO_WRITE, zero, BC_BLOCK_SIZE, 0);
	if (!ret)
		ret = bc_dev_rw_sync(f->cache, BC_DIO_WRITE, zero, BC_BLOCK_SIZE, BC_BLOCK_SIZE);
	if (!ret && f->origin && f->cfg->origin_label) {
		ret = bc_dev_rw_sync(f->origin, BC_DIO_WRITE, f->label, BC_BLOCK_SIZE,
				     bc_label_offset(f->origin->size));
		if (!ret)
			ret = bc_dev_rw_sync(f->origin, BC_DIO_FLUSH, NULL, 0, 0);
	}
	return ret;
}

/* Both superblock copies of @sb (generation 2 in copy 0, 1 in copy 1), then
 * a flush. */
static int fmt_write_sb(struct fmt *f, struct bc_sb_disk *sb)
{
	struct bc_sb_disk *two = f->two;
	int ret;

	two[1] = *sb;
	two[1].seq = 1;
	bc_sb_seal(&two[1]);
	sb->seq = 2;
	bc_sb_seal(sb);
	two[0] = *sb;
	ret = bc_dev_rw_sync(f->cache, BC_DIO_WRITE, two, 2 * BC_BLOCK_SIZE, 0);
	if (!ret)
		ret = bc_dev_rw_sync(f->cache, BC_DIO_FLUSH, NULL, 0, 0);
	return ret;
}

/* v3: an empty origin table (a previous format's records must not
 * survive), the first origin's record if any, then the superblocks. */
static int fmt_write_v3(struct fmt *f, struct bc_sb_disk *sb, struct bc_sb_disk *rec, unsigned nrec)
{
	uint64_t len = 2ull * sb->origin_slots * BC_BLOCK_SIZE;
	void *zero = bc_alloc_aligned(len);
	int ret;

	if (!zero)
		return -ENOMEM;
	memset(zero, 0, len);
	ret = fmt_invalidate(f);
	if (!ret)
		ret = bc_dev_rw_sync(f->cache, BC_DIO_WRITE, zero, len, sb->table_offset);
	free(zero);
	for (unsigned i = 0; !ret && rec && i < nrec; i++)
		ret = bc_orec_write_sync(f->cache, sb, &rec[i], true);
	if (!ret)
		ret = fmt_write_sb(f, sb);
	return ret;
}

static int fmt_geometry(struct fmt *f, struct bc_sb_disk *sb, uint32_t seg_size)
{
	int ret;

	memset(sb, 0, sizeof(*sb));
	ret = bc_sb_geometry(sb, f->cache->size, seg_size);
	if (ret == -EINVAL)
		bc_why(f->why, f->whylen, "segment size %u is invalid: use a power of two from 256K "
		       "to 16M", seg_size);
	else if (ret < 0)
		bc_why(f->why, f->whylen, "cache device %s (%llu bytes) is too small for %u segments "
		       "of %u bytes", f->cfg->cache_path, (unsigned long long)f->cache->size,
		       BC_MIN_SEGMENTS, seg_size);
	return ret;
}

/* Format v2: the superblock is the origin's. */
static int fmt_v2(struct fmt *f, struct bc_sb_disk *sb)
{
	char u1[37], u2[37];
	int ret;

	if (!f->origin) {
		bc_why(f->why, f->whylen, "format version 2 needs an origin (--origin)");
		return -EINVAL;
	}
	sb->version = 2;
	bc_uuid_generate(sb->cache_uuid);
	bc_orec_fill_origin(sb, f->origin, &f->req, f->label);
	ret = fmt_invalidate(f);
	if (!ret)
		ret = fmt_write_sb(f, sb);
	if (ret < 0) {
		bc_why(f->why, f->whylen, "writing the new format failed: %s", strerror(-ret));
		return ret;
	}
	bc_uuid_format(sb->cache_uuid, u1);
	bc_uuid_format(sb->origin_uuid, u2);
	bc_why(f->why, f->whylen, "formatted %s (format version 2): %u segments of %u KiB, cache "
	       "UUID %s, origin UUID %s, exported size %llu bytes%s", f->cfg->cache_path,
	       sb->nr_segments, sb->segment_size >> 10, u1, u2, (unsigned long long)sb->export_size,
	       f->notice);
	return 0;
}

/* What a new origin record says about its origin, for the messages. */
static void describe_rec(const struct bc_sb_disk *rec, const struct bc_dev *origin,
			 char *buf, size_t len)
{
	char u[37];

	bc_uuid_format(rec->origin_uuid, u);
	snprintf(buf, len, "origin '%s' (%s, origin UUID %s): %u segments of the cache, exported size "
		 "%llu bytes (%s)", rec->name, origin->path, u, rec->nr_segments,
		 (unsigned long long)rec->export_size,
		 (rec->flags & BC_SB_ORIGIN_LABEL) ? "the origin minus its label block" :
		 rec->export_size == origin->size ? "the whole origin; nothing written to it" :
		 "the origin's whole 4 KiB blocks; nothing written to it");
}

/* What format --shards adds to the message. */
static void describe_shards(const struct bc_sb_disk *rec, char *buf, size_t len)
{
	size_t n = strlen(buf);

	if (rec->shard_count)
		snprintf(buf + n, len - n, ", as %u shards of %u segments each, stripes of %u KiB",
			 rec->shard_count, rec->nr_segments, rec->stripe_blocks * (BC_BLOCK_SIZE >> 10));
}

static int fmt_v3(struct fmt *f, struct bc_sb_disk *sb)
{
	struct bc_otable t = { 0 };
	struct bc_sb_disk *rec = NULL;
	unsigned nrec = f->cfg->shards > 1 ? f->cfg->shards : 1;
	char u[37], what[768] = "no origin yet ('blkcache origin add' adds one)";
	int ret;

	if (nrec > 1 && !f->origin) {
		bc_why(f->why, f->whylen, "--shards needs an origin (--origin)");
		return -EINVAL;
	}
	if (nrec > 1 && f->cfg->version && f->cfg->version < BC_FORMAT_VERSION_SHARDS) {
		bc_why(f->why, f->whylen, "shards need format version %u", BC_FORMAT_VERSION_SHARDS);
		return -EINVAL;
	}
	/* v4: the log writes segments in rounds to the end
	 * (BC_SEG_ROUNDS_FINAL), which a v3 reader would misread; shards v5,
	 * which an older reader would take for separate origins. */
	sb->version = f->cfg->version ? f->cfg->version :
		      nrec > 1 ? BC_FORMAT_VERSION_SHARDS : BC_FORMAT_VERSION_DISK;
	sb->origin_slots = BC_ORIGIN_SLOTS;
	sb->table_offset = BC_TABLE_OFFSET;
	bc_uuid_generate(sb->cache_uuid);
	bc_random_bytes(&sb->format_nonce, sizeof(sb->format_nonce));
	sb->flags = BC_SB_CLEAN;
	sb->format_time = (uint64_t)time(NULL);
	if (f->origin) {
		rec = bc_alloc_aligned((size_t)nrec * BC_BLOCK_SIZE);
		if (!rec)
			return -ENOMEM;
		t.sb = *sb; /* an empty table */
		ret = bc_orec_build(&t, f->origin, &f->req, rec, f->label, f->why, f->whylen);
		if (!ret)
			describe_rec(rec, f->origin, what, sizeof(what));
		if (!ret && nrec > 1)
			ret = bc_orec_split_shards(rec, nrec, f->cfg->stripe_blocks ?
						   f->cfg->stripe_blocks : BC_STRIPE_BLOCKS_DEFAULT,
						   f->why, f->whylen);
		if (ret < 0)
			goto out;
		describe_shards(rec, what, sizeof(what));
	}
	ret = fmt_write_v3(f, sb, rec, nrec);
	if (ret < 0) {
		bc_why(f->why, f->whylen, "writing the new format failed: %s", strerror(-ret));
		goto out;
	}
	bc_uuid_format(sb->cache_uuid, u);
	bc_why(f->why, f->whylen, "formatted %s: %u segments of %u KiB, cache UUID %s; %s%s",
	       f->cfg->cache_path, sb->nr_segments, sb->segment_size >> 10, u, what, f->notice);
out:
	free(rec);
	return ret;
}

int bc_cache_format(const struct bc_format_config *cfg, char *why, size_t whylen)
{
	uint32_t seg_size = cfg->segment_size ? cfg->segment_size : BC_SEG_SIZE_DEFAULT;
	struct fmt f = { .cfg = cfg, .why = why, .whylen = whylen };
	struct bc_sb_disk *sb;
	int ret;

	if (seg_size < BC_SEG_SIZE_MIN || seg_size > BC_SEG_SIZE_MAX || (seg_size & (seg_size - 1))) {
		bc_why(why, whylen, "segment size %u is invalid: use a power of two from 256K to 16M",
		       seg_size);
		return -EINVAL;
	}
	if (cfg->version && (cfg->version < 2 || cfg->version > BC_FORMAT_VERSION)) {
		bc_why(why, whylen, "format version %u cannot be written: this blkcache writes "
		       "version %u (%u with shards), or 3 (a FLUSH seals a segment) or 2 (one "
		       "origin per cache) for an older blkcache", cfg->version, BC_FORMAT_VERSION_DISK,
		       BC_FORMAT_VERSION_SHARDS);
		return -EINVAL;
	}
	if (cfg->shards > BC_MAX_SHARDS || (cfg->shards > 1 && cfg->version == 2)) {
		bc_why(why, whylen, "%u shards: an origin has at most %u, in format version %u",
		       cfg->shards, BC_MAX_SHARDS, BC_FORMAT_VERSION_SHARDS);
		return -EINVAL;
	}
	ret = fmt_open(&f);
	if (!ret)
		ret = fmt_check_cache(&f);
	if (!ret && f.origin)
		ret = bc_orec_check_origin(f.origin, f.old, &f.req, f.notice, sizeof(f.notice), why,
					   whylen);
	sb = f.two ? &f.two[0] : NULL;
	if (!ret)
		ret = fmt_geometry(&f, sb, seg_size);
	if (!ret)
		ret = cfg->version == 2 ? fmt_v2(&f, sb) : fmt_v3(&f, sb);
	fmt_close(&f);
	return ret;
}
