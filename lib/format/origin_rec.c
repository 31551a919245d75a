/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A new origin for a cache (format/origin_rec.h).
 *
 * By default nothing is written to the origin: the cache device records
 * the origin's identity (origin_id.c) and the export is the whole origin,
 * so a volume that already holds a filesystem is cached in place, its
 * bytes and size unchanged.  With origin_label the origin's last 4 KiB
 * carry a label instead (format v1's only way), which is refused when that
 * block holds anything, or the origin holds a filesystem, unless forced.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blkcache/engine.h"
#include "core/why.h"
#include "format/origin_id.h"
#include "format/origin_rec.h"
#include "format/probe.h"
#include "format/superblock.h"

#define MIN_ORIGIN_SIZE (16 * BC_BLOCK_SIZE)

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
static int check_label_room(struct bc_dev *origin, const struct bc_origin_label *tail,
			    const char *sig, char *why, size_t whylen)
{
	uint64_t off = bc_label_offset(origin->size);

	if (!all_zero(tail, BC_BLOCK_SIZE)) {
		bc_why(why, whylen, "--origin-label: the last 4 KiB of origin %s (bytes %llu to "
		       "%llu) are not all zeroes%s%s: the label would overwrite them and the exported "
		       "device would be 4 KiB smaller than the origin; cache it without --origin-label "
		       "to cache it in place, or use --force to overwrite them", origin->path,
		       (unsigned long long)off, (unsigned long long)off + BC_BLOCK_SIZE - 1,
		       sig[0] ? " and the origin holds " : "", sig);
		return -EEXIST;
	}
	if (sig[0]) {
		bc_why(why, whylen, "--origin-label: origin %s holds %s: the exported device would "
		       "be 4 KiB smaller than the device it was made for; cache it without "
		       "--origin-label to cache it in place, or use --force", origin->path, sig);
		return -EEXIST;
	}
	return 0;
}

/* Does label @l name the cache whose superblock is @old (its origin, or
 * the cache itself)? */
static bool ours(const struct bc_sb_disk *old, const struct bc_origin_label *l)
{
	return old && (!memcmp(old->origin_uuid, l->origin_uuid, 16) ||
		       !memcmp(old->cache_uuid, l->cache_uuid, 16));
}

int bc_orec_check_origin(struct bc_dev *origin, const struct bc_sb_disk *old,
			 const struct bc_orec_req *q, char *notice, size_t nlen, char *why,
			 size_t whylen)
{
	struct bc_origin_label *tail = bc_alloc_aligned(BC_BLOCK_SIZE);
	char u[37], sig[256] = "";
	bool labeled;
	int ret;

	if (origin->size > BC_MAX_ORIGIN_BLOCKS * BC_BLOCK_SIZE) {
		bc_why(why, whylen, "origin %s is larger than 4 PiB, the most blkcache can cache",
		       origin->path);
		free(tail);
		return -EFBIG;
	}
	if (!tail)
		return -ENOMEM;
	if (origin->size < MIN_ORIGIN_SIZE) {
		bc_why(why, whylen, "origin %s is too small (%llu bytes)", origin->path,
		       (unsigned long long)origin->size);
		ret = -ENOSPC;
		goto out;
	}
	ret = bc_label_read(origin, tail);
	if (ret < 0) {
		bc_why(why, whylen, "cannot read origin %s: %s", origin->path, strerror(-ret));
		goto out;
	}
	labeled = bc_label_check(tail) == BC_FMT_OK;
	if (labeled && !q->force && !ours(old, tail)) {
		bc_uuid_format(tail->cache_uuid, u);
		bc_why(why, whylen, "origin %s is already attached to another blkcache cache "
		       "(cache UUID %s); use --force to take it over", origin->path, u);
		ret = -EEXIST;
		goto out;
	}
	if (bc_probe_signature(origin, sig, sizeof(sig)) > 0 && !q->origin_label)
		snprintf(notice, nlen, "; origin %s holds %s: it is cached in place and not changed",
			 origin->path, sig);
	if (q->origin_label && !q->force && !labeled)
		ret = check_label_room(origin, tail, sig, why, whylen);
out:
	free(tail);
	return ret;
}

void bc_orec_fill_origin(struct bc_sb_disk *sb, struct bc_dev *origin, const struct bc_orec_req *q,
			 struct bc_origin_label *label)
{
	struct bc_origin_id id;

	bc_uuid_generate(sb->origin_uuid);
	sb->origin_size = origin->size;
	/* The engine works in 4 KiB blocks: an origin that is not a multiple
	 * of 4 KiB exports its whole blocks. */
	sb->export_size = q->origin_label ? bc_label_offset(origin->size) :
			  origin->size & ~(uint64_t)(BC_BLOCK_SIZE - 1);
	sb->mode = BC_CACHE_WRITEBACK;
	bc_random_bytes(&sb->format_nonce, sizeof(sb->format_nonce));
	sb->flags = BC_SB_CLEAN | (q->data_crc ? BC_SB_DATA_CRC : 0) |
		    (q->origin_label ? BC_SB_ORIGIN_LABEL : 0);
	sb->format_time = (uint64_t)time(NULL);
	bc_origin_id_get(origin, &id);
	bc_origin_id_store(sb, &id);
	if (q->origin_label) {
		memset(label, 0, sizeof(*label));
		memcpy(label->origin_uuid, sb->origin_uuid, 16);
		memcpy(label->cache_uuid, sb->cache_uuid, 16);
		label->origin_size = origin->size;
		label->export_size = sb->export_size;
		bc_label_seal(label);
	}
}

/* Not a second name for an origin this cache already holds. */
static int check_unique(const struct bc_otable *t, struct bc_dev *origin, const char *name,
			char *why, size_t whylen)
{
	struct bc_origin_id found;
	int slot = bc_otable_find(t, name);

	if (slot >= 0 && bc_orec_holds_ring(t->rec[slot])) {
		bc_why(why, whylen, "the cache already has an origin named '%s' (%s); choose another "
		       "name", name, t->rec[slot]->origin_path);
		return -EEXIST;
	}
	bc_origin_id_get(origin, &found);
	slot = bc_otable_find_origin(t, &found, BC_OREC_ATTACHED);
	if (slot >= 0) {
		bc_why(why, whylen, "origin %s is already cached by this cache, as '%s'", origin->path,
		       t->rec[slot]->name);
		return -EEXIST;
	}
	return 0;
}

/* How many positions the new ring gets, from the largest free run. */
static int free_run_choose(const struct bc_otable *t, const struct bc_orec_req *q, uint32_t *first,
			   uint32_t *len, char *why, size_t whylen)
{
	uint64_t total = t->sb.nr_segments, want;
	uint32_t free_first, free_len, used;

	bc_otable_free_run(t, &free_first, &free_len, &used);
	if (q->size_percent)
		want = total * q->size_percent / 100;
	else if (q->size)
		want = q->size / t->sb.segment_size;
	else
		want = q->whole ? free_len : (total / 4 < free_len ? total / 4 : free_len);
	if (want < BC_MIN_SEGMENTS)
		want = BC_MIN_SEGMENTS;
	if (want > free_len) {
		bc_why(why, whylen, "the cache has %u free segments of %u KiB in one run (%u of %llu "
		       "are held by %u origins), %llu needed; give a smaller --size, or detach an "
		       "origin to free its share", free_len, t->sb.segment_size >> 10, used,
		       (unsigned long long)total, bc_otable_attached(t), (unsigned long long)want);
		return -ENOSPC;
	}
	*first = free_first;
	*len = (uint32_t)want;
	return 0;
}

const struct bc_share_ops bc_share_free_run = {
	.name = "free-run",
	.choose = free_run_choose,
};

int bc_orec_build(const struct bc_otable *t, struct bc_dev *origin, const struct bc_orec_req *q,
		  struct bc_sb_disk *rec, struct bc_origin_label *label, char *why, size_t whylen)
{
	const char *name = q->name ? q->name : BC_DEFAULT_ORIGIN_NAME;
	uint32_t first, len;
	int slot, ret;

	if (!bc_name_valid(name)) {
		bc_why(why, whylen, "origin name '%s' is invalid: use 1 to %u letters, digits, '.', "
		       "'_' or '-', not starting with '.' or '-'", name, BC_NAME_MAX);
		return -EINVAL;
	}
	ret = check_unique(t, origin, name, why, whylen);
	if (ret < 0)
		return ret;
	slot = bc_otable_find(t, name); /* a detached origin of that name: its slot */
	if (slot < 0)
		slot = bc_otable_new_slot(t);
	if (slot < 0) {
		bc_why(why, whylen, "the cache serves %u origins already, its most", BC_ORIGIN_SLOTS);
		return -ENOSPC;
	}
	ret = (q->share ? q->share : &bc_share_free_run)->choose(t, q, &first, &len, why, whylen);
	if (ret < 0)
		return ret;
	memset(rec, 0, sizeof(*rec));
	rec->version = 3;
	rec->seq = t->rec[slot] ? t->rec[slot]->seq : 0;
	memcpy(rec->cache_uuid, t->sb.cache_uuid, 16);
	rec->cache_size = t->sb.cache_size;
	rec->block_size = BC_BLOCK_SIZE;
	rec->segment_size = t->sb.segment_size;
	rec->header_blocks = t->sb.header_blocks;
	rec->data_blocks = t->sb.data_blocks;
	rec->ring_offset = t->sb.ring_offset + (uint64_t)first * t->sb.segment_size;
	rec->nr_segments = len;
	rec->origin_id = (uint32_t)slot;
	snprintf(rec->name, sizeof(rec->name), "%s", name);
	bc_orec_fill_origin(rec, origin, q, label);
	return 0;
}

int bc_orec_split_shards(struct bc_sb_disk *recs, unsigned n, uint32_t stripe_blocks, char *why,
			 size_t whylen)
{
	const struct bc_sb_disk rec0 = recs[0];
	uint32_t len = rec0.nr_segments / n;
	unsigned i;

	if (n < 2 || n > BC_MAX_SHARDS) {
		bc_why(why, whylen, "%u shards: an origin has 2 to %u (or 1: not sharded)", n,
		       BC_MAX_SHARDS);
		return -EINVAL;
	}
	if (!stripe_blocks || (stripe_blocks & (stripe_blocks - 1))) {
		bc_why(why, whylen, "stripe of %u blocks: a power of two of 4 KiB blocks is needed",
		       stripe_blocks);
		return -EINVAL;
	}
	if (len < BC_MIN_SEGMENTS) {
		bc_why(why, whylen, "origin '%s' has %u segments of the cache: too few for %u shards "
		       "(each needs %u); use fewer shards or a larger share", rec0.name,
		       rec0.nr_segments, n, BC_MIN_SEGMENTS);
		return -ENOSPC;
	}
	for (i = 0; i < n; i++) {
		struct bc_sb_disk *r = &recs[i];

		*r = rec0;
		r->version = BC_FORMAT_VERSION_SHARDS;
		r->origin_id = rec0.origin_id + i;
		r->ring_offset = rec0.ring_offset + (uint64_t)i * len * rec0.segment_size;
		r->nr_segments = len;
		r->shard_index = i;
		r->shard_count = n;
		r->stripe_blocks = stripe_blocks;
		if (i)
			bc_random_bytes(&r->format_nonce, sizeof(r->format_nonce));
	}
	return 0;
}
