/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Superblock persistence (two alternating copies) and formatting a new
 * cache: superblocks on the cache device, a label at the end of the origin.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "superblock.h"

void bc_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (!why || !whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

uint64_t bc_label_offset(uint64_t origin_size)
{
	return (origin_size & ~(uint64_t)(BC_BLOCK_SIZE - 1)) - BC_BLOCK_SIZE;
}

/* Fill e->sb_buf with the next superblock generation and return its offset. */
static uint64_t sb_prepare(struct bc_engine *e)
{
	e->sb.seq++;
	e->sb.last_seq = e->written_seq;
	*e->sb_buf = e->sb;
	bc_sb_seal(e->sb_buf);
	return (e->sb.seq % BC_SB_COPIES) * BC_BLOCK_SIZE;
}

int bc_sb_write_sync(struct bc_engine *e)
{
	uint64_t off = sb_prepare(e);
	int ret;

	/* Whatever the superblock claims must be durable before it. */
	ret = bc_dev_rw_sync(e->cache, BC_DIO_FLUSH, NULL, 0, 0);
	if (!ret)
		ret = bc_dev_rw_sync(e->cache, BC_DIO_WRITE, e->sb_buf, BC_BLOCK_SIZE, off);
	if (!ret)
		ret = bc_dev_rw_sync(e->cache, BC_DIO_FLUSH, NULL, 0, 0);
	return ret;
}

struct sb_async {
	struct bc_dev_io io;
	struct bc_engine *e;
	void (*done)(struct bc_engine *e, int res);
	int stage;
};

static void sb_async_step(struct bc_dev_io *io, int res)
{
	struct sb_async *a = (struct sb_async *)io;
	struct bc_engine *e = a->e;
	void (*done)(struct bc_engine *, int) = a->done;

	if (res < 0 || a->stage == 1) {
		free(a);
		done(e, res < 0 ? res : 0);
		return;
	}
	a->stage = 1;
	e->st.cache_flushes++;
	bc_dev_io_init(&a->io, BC_DIO_FLUSH, NULL, 0, 0, sb_async_step, a);
	bc_dev_submit(e->cache, &a->io);
}

void bc_sb_write_async(struct bc_engine *e, void (*done)(struct bc_engine *e, int res))
{
	struct sb_async *a = calloc(1, sizeof(*a));
	uint64_t off;

	if (!a) {
		done(e, -ENOMEM);
		return;
	}
	a->e = e;
	a->done = done;
	off = sb_prepare(e);
	bc_dev_io_init(&a->io, BC_DIO_WRITE, e->sb_buf, BC_BLOCK_SIZE, off, sb_async_step, a);
	bc_dev_submit(e->cache, &a->io);
}

/* Read both superblock copies of @dev into @two (8 KiB, aligned). */
int bc_sb_read(struct bc_dev *dev, struct bc_sb_disk *two)
{
	if (dev->size < 2 * BC_BLOCK_SIZE)
		return -ENOSPC;
	return bc_dev_rw_sync(dev, BC_DIO_READ, two, 2 * BC_BLOCK_SIZE, 0);
}

int bc_label_read(struct bc_dev *origin, struct bc_origin_label *l)
{
	if (origin->size < 2 * BC_BLOCK_SIZE)
		return -ENOSPC;
	return bc_dev_rw_sync(origin, BC_DIO_READ, l, BC_BLOCK_SIZE, bc_label_offset(origin->size));
}

int bc_cache_format(const struct bc_format_config *cfg, char *why, size_t whylen)
{
	uint32_t seg_size = cfg->segment_size ? cfg->segment_size : BC_SEG_SIZE_DEFAULT;
	struct bc_dev *cache = NULL, *origin = NULL;
	struct bc_sb_disk *two = NULL, *sb;
	struct bc_origin_label *label = NULL;
	const struct bc_sb_disk *old;
	struct bc_loop *loop = NULL;
	char u1[37], u2[37];
	int ret;

	if (seg_size < BC_SEG_SIZE_MIN || seg_size > BC_SEG_SIZE_MAX || (seg_size & (seg_size - 1))) {
		bc_why(why, whylen, "segment size %u is invalid: use a power of two from 256K to 16M",
		       seg_size);
		return -EINVAL;
	}
	ret = bc_loop_new(&loop, 64);
	if (ret < 0) {
		bc_why(why, whylen, "cannot set up io_uring: %s", strerror(-ret));
		return ret;
	}
	ret = bc_dev_open(&cache, loop, cfg->cache_path, 0);
	if (ret < 0) {
		bc_why(why, whylen, "cannot open cache device %s: %s", cfg->cache_path,
		       ret == -EBUSY ? "it is in use by another process (another blkcache?)" : strerror(-ret));
		goto out;
	}
	ret = bc_dev_open(&origin, loop, cfg->origin_path, 0);
	if (ret < 0) {
		bc_why(why, whylen, "cannot open origin %s: %s", cfg->origin_path,
		       ret == -EBUSY ? "it is in use by another process (another blkcache?)" : strerror(-ret));
		goto out;
	}
	two = bc_alloc_aligned(2 * BC_BLOCK_SIZE);
	label = bc_alloc_aligned(BC_BLOCK_SIZE);
	if (!two || !label) {
		ret = -ENOMEM;
		bc_why(why, whylen, "out of memory");
		goto out;
	}
	if (origin->size < 16 * BC_BLOCK_SIZE) {
		ret = -ENOSPC;
		bc_why(why, whylen, "origin %s is too small (%llu bytes)", cfg->origin_path,
		       (unsigned long long)origin->size);
		goto out;
	}
	ret = bc_sb_read(cache, two);
	if (ret < 0 && ret != -ENOSPC) {
		bc_why(why, whylen, "cannot read cache device %s: %s", cfg->cache_path, strerror(-ret));
		goto out;
	}
	old = ret == 0 ? bc_sb_pick(&two[0], &two[1], NULL, NULL) : NULL;
	if (old && !cfg->force) {
		bc_uuid_format(old->origin_uuid, u1);
		ret = -EEXIST;
		bc_why(why, whylen,
		       "cache device %s already holds a blkcache cache for origin UUID %s%s; "
		       "use --force to reformat (its data is lost)",
		       cfg->cache_path, u1, (old->flags & BC_SB_CLEAN) ? "" : " (it may hold dirty data)");
		goto out;
	}
	ret = bc_label_read(origin, label);
	if (ret < 0) {
		bc_why(why, whylen, "cannot read origin %s: %s", cfg->origin_path, strerror(-ret));
		goto out;
	}
	if (bc_label_check(label) == BC_FMT_OK && !cfg->force &&
	    (!old || memcmp(old->origin_uuid, label->origin_uuid, 16))) {
		bc_uuid_format(label->cache_uuid, u1);
		ret = -EEXIST;
		bc_why(why, whylen,
		       "origin %s is already attached to another blkcache cache (cache UUID %s); "
		       "use --force to take it over", cfg->origin_path, u1);
		goto out;
	}
	sb = &two[0];
	memset(sb, 0, sizeof(*sb));
	ret = bc_sb_geometry(sb, cache->size, seg_size);
	if (ret == -EINVAL) {
		bc_why(why, whylen, "segment size %u is invalid: use a power of two from 256K to 16M",
		       seg_size);
		goto out;
	}
	if (ret < 0) {
		bc_why(why, whylen, "cache device %s (%llu bytes) is too small for %u segments of %u bytes",
		       cfg->cache_path, (unsigned long long)cache->size, BC_MIN_SEGMENTS, seg_size);
		goto out;
	}
	sb->version = BC_FORMAT_VERSION;
	bc_uuid_generate(sb->cache_uuid);
	bc_uuid_generate(sb->origin_uuid);
	sb->origin_size = origin->size;
	sb->export_size = bc_label_offset(origin->size);
	sb->mode = BC_MODE_WRITEBACK;
	sb->written_back_seq = 0;
	sb->last_seq = 0;
	bc_random_bytes(&sb->format_nonce, sizeof(sb->format_nonce));
	sb->flags = BC_SB_CLEAN | (cfg->data_crc ? BC_SB_DATA_CRC : 0);
	sb->format_time = (uint64_t)time(NULL);

	memset(label, 0, sizeof(*label));
	memcpy(label->origin_uuid, sb->origin_uuid, 16);
	memcpy(label->cache_uuid, sb->cache_uuid, 16);
	label->origin_size = origin->size;
	label->export_size = sb->export_size;
	bc_label_seal(label);

	/* Invalidate the superblocks first so a crash mid-format leaves an
	 * unformatted device, not a half-old one. */
	memset(&two[1], 0, sizeof(two[1]));
	ret = bc_dev_rw_sync(cache, BC_DIO_WRITE, &two[1], BC_BLOCK_SIZE, 0);
	if (!ret)
		ret = bc_dev_rw_sync(cache, BC_DIO_WRITE, &two[1], BC_BLOCK_SIZE, BC_BLOCK_SIZE);
	if (!ret)
		ret = bc_dev_rw_sync(origin, BC_DIO_WRITE, label, BC_BLOCK_SIZE,
				     bc_label_offset(origin->size));
	if (!ret)
		ret = bc_dev_rw_sync(origin, BC_DIO_FLUSH, NULL, 0, 0);
	if (!ret) {
		/* Generation g lives in copy g % 2: copy 0 holds 2, copy 1 holds 1. */
		two[1] = *sb;
		two[1].seq = 1;
		bc_sb_seal(&two[1]);
		sb->seq = 2;
		bc_sb_seal(sb);
		ret = bc_dev_rw_sync(cache, BC_DIO_WRITE, two, 2 * BC_BLOCK_SIZE, 0);
	}
	if (!ret)
		ret = bc_dev_rw_sync(cache, BC_DIO_FLUSH, NULL, 0, 0);
	if (ret < 0) {
		bc_why(why, whylen, "writing the new format failed: %s", strerror(-ret));
		goto out;
	}
	bc_uuid_format(sb->cache_uuid, u1);
	bc_uuid_format(sb->origin_uuid, u2);
	bc_why(why, whylen, "formatted %s: %u segments of %u KiB, cache UUID %s, origin UUID %s, "
	       "exported size %llu bytes", cfg->cache_path, sb->nr_segments, seg_size >> 10, u1, u2,
	       (unsigned long long)sb->export_size);
	ret = 0;
out:
	free(two);
	free(label);
	bc_dev_close(origin);
	bc_dev_close(cache);
	bc_loop_free(loop);
	return ret;
}
