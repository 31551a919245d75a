/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Formatting a new cache (blkcache format).
 *
 * By default nothing is written to the origin: the cache device records
 * the origin's identity (origin_id.c) and the export is the whole origin,
 * so a volume that already holds a filesystem is cached in place, its
 * bytes and size unchanged.  With origin_label the origin's last 4 KiB
 * carry a label instead (format v1's only way), which is refused when that
 * block holds anything, or the origin holds a filesystem, unless forced.
 * A cache device that holds a filesystem, partition table or other
 * signature (libblkid) is refused unless forced.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine.h"
#include "format/origin_id.h"
#include "format/probe.h"
#include "format/superblock.h"

struct fmt {
	const struct bc_format_config *cfg;
	struct bc_loop *loop;
	struct bc_dev *cache, *origin;
	struct bc_sb_disk *two;       /* both superblock copies (8 KiB) */
	struct bc_origin_label *tail; /* the origin's last 4 KiB */
	const struct bc_sb_disk *old; /* a blkcache format already on the cache device */
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
	ret = bc_dev_open_as(&f->origin, cfg->devices, f->loop, "origin", cfg->origin_path, 0,
			     f->why, f->whylen);
	if (ret < 0)
		return ret;
	f->two = bc_alloc_aligned(2 * BC_BLOCK_SIZE);
	f->tail = bc_alloc_aligned(BC_BLOCK_SIZE);
	if (!f->two || !f->tail) {
		bc_why(f->why, f->whylen, "out of memory");
		return -ENOMEM;
	}
	if (f->origin->size < 16 * BC_BLOCK_SIZE) {
		bc_why(f->why, f->whylen, "origin %s is too small (%llu bytes)", cfg->origin_path,
		       (unsigned long long)f->origin->size);
		return -ENOSPC;
	}
	return 0;
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
		bc_uuid_format(f->old->origin_uuid, u);
		bc_why(f->why, f->whylen, "cache device %s already holds a blkcache cache for origin "
		       "UUID %s%s; use --force to reformat (its data is lost)", cfg->cache_path, u,
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

static bool all_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* --origin-label: the label's block must be free and the device must not
 * be in use by a filesystem that the 4 KiB smaller export would cut. */
static int fmt_check_label_room(struct fmt *f, const char *sig, bool labeled)
{
	const struct bc_format_config *cfg = f->cfg;
	uint64_t off = bc_label_offset(f->origin->size);

	if (cfg->force || labeled)
		return 0;
	if (!all_zero(f->tail, BC_BLOCK_SIZE)) {
		bc_why(f->why, f->whylen, "--origin-label: the last 4 KiB of origin %s (bytes %llu to "
		       "%llu) are not all zeroes%s%s: the label would overwrite them and the exported "
		       "device would be 4 KiB smaller than the origin; format without --origin-label "
		       "to cache it in place, or use --force to overwrite them", cfg->origin_path,
		       (unsigned long long)off, (unsigned long long)off + BC_BLOCK_SIZE - 1,
		       sig[0] ? " and the origin holds " : "", sig);
		return -EEXIST;
	}
	if (sig[0]) {
		bc_why(f->why, f->whylen, "--origin-label: origin %s holds %s: the exported device would "
		       "be 4 KiB smaller than the device it was made for; format without --origin-label "
		       "to cache it in place, or use --force", cfg->origin_path, sig);
		return -EEXIST;
	}
	return 0;
}

/* The origin must not belong to another cache (a label names it); say
 * what it holds. */
static int fmt_check_origin(struct fmt *f)
{
	const struct bc_format_config *cfg = f->cfg;
	char u[37], sig[256] = "";
	bool labeled;
	int ret = bc_label_read(f->origin, f->tail);

	if (ret < 0) {
		bc_why(f->why, f->whylen, "cannot read origin %s: %s", cfg->origin_path, strerror(-ret));
		return ret;
	}
	labeled = bc_label_check(f->tail) == BC_FMT_OK;
	if (labeled && !cfg->force &&
	    (!f->old || memcmp(f->old->origin_uuid, f->tail->origin_uuid, 16))) {
		bc_uuid_format(f->tail->cache_uuid, u);
		bc_why(f->why, f->whylen, "origin %s is already attached to another blkcache cache "
		       "(cache UUID %s); use --force to take it over", cfg->origin_path, u);
		return -EEXIST;
	}
	if (bc_probe_signature(f->origin, sig, sizeof(sig)) > 0 && !cfg->origin_label)
		snprintf(f->notice, sizeof(f->notice), "; origin %s holds %s: it is cached in place "
			 "and not changed", cfg->origin_path, sig);
	if (!cfg->origin_label)
		return 0;
	return fmt_check_label_room(f, sig, labeled);
}

static void fmt_build(struct fmt *f, struct bc_sb_disk *sb)
{
	const struct bc_format_config *cfg = f->cfg;
	struct bc_origin_id id;

	sb->version = BC_FORMAT_VERSION;
	bc_uuid_generate(sb->cache_uuid);
	bc_uuid_generate(sb->origin_uuid);
	sb->origin_size = f->origin->size;
	/* The engine works in 4 KiB blocks: an origin that is not a multiple
	 * of 4 KiB exports its whole blocks. */
	sb->export_size = cfg->origin_label ? bc_label_offset(f->origin->size) :
			  f->origin->size & ~(uint64_t)(BC_BLOCK_SIZE - 1);
	sb->mode = BC_CACHE_WRITEBACK;
	bc_random_bytes(&sb->format_nonce, sizeof(sb->format_nonce));
	sb->flags = BC_SB_CLEAN | (cfg->data_crc ? BC_SB_DATA_CRC : 0) |
		    (cfg->origin_label ? BC_SB_ORIGIN_LABEL : 0);
	sb->format_time = (uint64_t)time(NULL);
	bc_origin_id_get(f->origin, &id);
	bc_origin_id_store(sb, &id);
	if (cfg->origin_label) {
		memset(f->tail, 0, sizeof(*f->tail));
		memcpy(f->tail->origin_uuid, sb->origin_uuid, 16);
		memcpy(f->tail->cache_uuid, sb->cache_uuid, 16);
		f->tail->origin_size = f->origin->size;
		f->tail->export_size = sb->export_size;
		bc_label_seal(f->tail);
	}
}

static int fmt_write(struct fmt *f, struct bc_sb_disk *sb)
{
	struct bc_sb_disk *two = f->two;
	int ret;

	/* Invalidate the superblocks first so a crash mid-format leaves an
	 * unformatted device, not a half-old one. */
	memset(&two[1], 0, sizeof(two[1]));
	ret = bc_dev_rw_sync(f->cache, BC_DIO_WRITE, &two[1], BC_BLOCK_SIZE, 0);
	if (!ret)
		ret = bc_dev_rw_sync(f->cache, BC_DIO_WRITE, &two[1], BC_BLOCK_SIZE, BC_BLOCK_SIZE);
	if (!ret && f->cfg->origin_label) {
		ret = bc_dev_rw_sync(f->origin, BC_DIO_WRITE, f->tail, BC_BLOCK_SIZE,
				     bc_label_offset(f->origin->size));
		if (!ret)
			ret = bc_dev_rw_sync(f->origin, BC_DIO_FLUSH, NULL, 0, 0);
	}
	if (!ret) {
		/* Generation g lives in copy g % 2: copy 0 holds 2, copy 1 holds 1. */
		two[1] = *sb;
		two[1].seq = 1;
		bc_sb_seal(&two[1]);
		sb->seq = 2;
		bc_sb_seal(sb);
		ret = bc_dev_rw_sync(f->cache, BC_DIO_WRITE, two, 2 * BC_BLOCK_SIZE, 0);
	}
	if (!ret)
		ret = bc_dev_rw_sync(f->cache, BC_DIO_FLUSH, NULL, 0, 0);
	if (ret < 0)
		bc_why(f->why, f->whylen, "writing the new format failed: %s", strerror(-ret));
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

int bc_cache_format(const struct bc_format_config *cfg, char *why, size_t whylen)
{
	uint32_t seg_size = cfg->segment_size ? cfg->segment_size : BC_SEG_SIZE_DEFAULT;
	struct fmt f = { .cfg = cfg, .why = why, .whylen = whylen };
	struct bc_sb_disk *sb;
	char u1[37], u2[37];
	int ret;

	if (seg_size < BC_SEG_SIZE_MIN || seg_size > BC_SEG_SIZE_MAX || (seg_size & (seg_size - 1))) {
		bc_why(why, whylen, "segment size %u is invalid: use a power of two from 256K to 16M",
		       seg_size);
		return -EINVAL;
	}
	ret = fmt_open(&f);
	if (!ret)
		ret = fmt_check_cache(&f);
	if (!ret)
		ret = fmt_check_origin(&f);
	sb = f.two ? &f.two[0] : NULL;
	if (!ret)
		ret = fmt_geometry(&f, sb, seg_size);
	if (ret < 0)
		goto out;
	fmt_build(&f, sb);
	ret = fmt_write(&f, sb);
	if (ret < 0)
		goto out;
	bc_uuid_format(sb->cache_uuid, u1);
	bc_uuid_format(sb->origin_uuid, u2);
	bc_why(why, whylen, "formatted %s: %u segments of %u KiB, cache UUID %s, origin UUID %s, "
	       "exported size %llu bytes (%s)%s", cfg->cache_path, sb->nr_segments, seg_size >> 10,
	       u1, u2, (unsigned long long)sb->export_size,
	       cfg->origin_label ? "the origin minus its label block" :
	       sb->export_size == f.origin->size ? "the whole origin; nothing written to it" :
	       "the origin's whole 4 KiB blocks; nothing written to it", f.notice);
out:
	free(f.two);
	free(f.tail);
	bc_dev_close(f.origin);
	bc_dev_close(f.cache);
	bc_loop_free(f.loop);
	return ret;
}
