/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "blkcache/engine.h"
#include "format/format.h"

/* The superblock stores enum bc_mode as is. */
_Static_assert(BC_CACHE_WRITEBACK == 0 && BC_CACHE_WRITETHROUGH == 1 && BC_CACHE_WRITEAROUND == 2 &&
	       BC_CACHE_PASSTHROUGH == 3, "on-disk mode values");

const char *bc_fmt_strerror(enum bc_fmt_status st)
{
	switch (st) {
	case BC_FMT_OK: return "valid";
	case BC_FMT_BAD_MAGIC: return "bad magic number (not blkcache metadata)";
	case BC_FMT_BAD_CRC: return "checksum mismatch (corrupted)";
	case BC_FMT_BAD_VERSION: return "unsupported format version";
	case BC_FMT_BAD_GEOMETRY: return "inconsistent geometry";
	case BC_FMT_FOREIGN: return "belongs to another format of this device";
	case BC_FMT_STALE: return "stale (sequence does not match its slot)";
	}
	return "unknown";
}

uint32_t bc_seg_header_blocks(uint32_t seg_size)
{
	uint32_t nblk = seg_size / BC_BLOCK_SIZE, h;

	for (h = 1; h < nblk; h++) {
		uint64_t need = sizeof(struct bc_seg_hdr) +
				(uint64_t)(nblk - h) * sizeof(struct bc_seg_entry);
		if (need <= (uint64_t)h * BC_BLOCK_SIZE)
			return h;
	}
	return nblk;
}

int bc_sb_geometry(struct bc_sb_disk *sb, uint64_t cache_size, uint32_t seg_size)
{
	uint64_t nseg;

	if (seg_size < BC_SEG_SIZE_MIN || seg_size > BC_SEG_SIZE_MAX ||
	    (seg_size & (seg_size - 1)))
		return -EINVAL;
	if (cache_size < BC_RING_OFFSET)
		return -ENOSPC;
	nseg = (cache_size - BC_RING_OFFSET) / seg_size;
	if (nseg < BC_MIN_SEGMENTS)
		return -ENOSPC;
	sb->header_blocks = bc_seg_header_blocks(seg_size);
	sb->data_blocks = seg_size / BC_BLOCK_SIZE - sb->header_blocks;
	/* The index numbers data slots in 31 bits: a larger device is used
	 * up to that (8 TiB with 4 KiB blocks). */
	if (nseg * sb->data_blocks >= BC_MAX_SLOTS)
		nseg = (BC_MAX_SLOTS - 1) / sb->data_blocks;
	sb->block_size = BC_BLOCK_SIZE;
	sb->segment_size = seg_size;
	sb->ring_offset = BC_RING_OFFSET;
	sb->nr_segments = (uint32_t)nseg;
	sb->cache_size = BC_RING_OFFSET + nseg * seg_size;
	return 0;
}

void bc_sb_seal(struct bc_sb_disk *sb)
{
	sb->magic = BC_SB_MAGIC;
	sb->crc = bc_crc32c_block(sb, sizeof(*sb), offsetof(struct bc_sb_disk, crc));
}

enum bc_fmt_status bc_sb_check(const struct bc_sb_disk *sb)
{
	struct bc_sb_disk geo;

	if (sb->magic != BC_SB_MAGIC)
		return BC_FMT_BAD_MAGIC;
	/* Version before CRC: a newer format must be reported as such. */
	if (sb->version < BC_FORMAT_VERSION_MIN || sb->version > BC_FORMAT_VERSION)
		return BC_FMT_BAD_VERSION;
	if (sb->crc != bc_crc32c_block(sb, sizeof(*sb), offsetof(struct bc_sb_disk, crc)))
		return BC_FMT_BAD_CRC;
	memset(&geo, 0, sizeof(geo));
	if (sb->block_size != BC_BLOCK_SIZE ||
	    bc_sb_geometry(&geo, sb->cache_size, sb->segment_size) ||
	    geo.nr_segments != sb->nr_segments || geo.header_blocks != sb->header_blocks ||
	    geo.data_blocks != sb->data_blocks || geo.ring_offset != sb->ring_offset ||
	    sb->export_size > sb->origin_size || (sb->export_size % BC_BLOCK_SIZE) ||
	    sb->mode > BC_CACHE_PASSTHROUGH)
		return BC_FMT_BAD_GEOMETRY;
	if (bc_sb_has_table(sb) &&
	    (!sb->origin_slots || sb->origin_slots > BC_ORIGIN_SLOTS ||
	     sb->table_offset < BC_TABLE_OFFSET || sb->table_offset % BC_BLOCK_SIZE ||
	     sb->table_offset + 2ull * sb->origin_slots * BC_BLOCK_SIZE > sb->ring_offset))
		return BC_FMT_BAD_GEOMETRY;
	return BC_FMT_OK;
}

void bc_orec_seal(struct bc_sb_disk *rec)
{
	rec->magic = BC_OREC_MAGIC;
	rec->crc = bc_crc32c_block(rec, sizeof(*rec), offsetof(struct bc_sb_disk, crc));
}

bool bc_name_valid(const char *name)
{
	size_t i, n = strnlen(name, BC_NAME_MAX + 1);

	if (!n || n > BC_NAME_MAX || name[0] == '.' || name[0] == '-')
		return false;
	for (i = 0; i < n; i++) {
		char ch = name[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

bool bc_orec_shards_valid(const struct bc_sb_disk *rec)
{
	uint32_t stripe = rec->stripe_blocks;

	if (rec->version != BC_FORMAT_VERSION_SHARDS || rec->shard_count == 0)
		return rec->shard_count == 0 && rec->shard_index == 0;
	return rec->shard_count >= 2 && rec->shard_count <= BC_MAX_SHARDS &&
	       rec->shard_index < rec->shard_count && stripe && !(stripe & (stripe - 1));
}

enum bc_fmt_status bc_orec_check(const struct bc_sb_disk *rec, const struct bc_sb_disk *sb,
				 uint32_t id)
{
	uint64_t seg = sb->segment_size;

	if (rec->magic != BC_OREC_MAGIC)
		return BC_FMT_BAD_MAGIC;
	if (rec->version != 3 && rec->version != BC_FORMAT_VERSION_SHARDS)
		return BC_FMT_BAD_VERSION;
	if (rec->crc != bc_crc32c_block(rec, sizeof(*rec), offsetof(struct bc_sb_disk, crc)))
		return BC_FMT_BAD_CRC;
	if (memcmp(rec->cache_uuid, sb->cache_uuid, sizeof(rec->cache_uuid)))
		return BC_FMT_FOREIGN;
	if (rec->origin_id != id || rec->block_size != BC_BLOCK_SIZE ||
	    rec->segment_size != sb->segment_size || rec->cache_size != sb->cache_size ||
	    rec->header_blocks != sb->header_blocks || rec->data_blocks != sb->data_blocks ||
	    rec->ring_offset < sb->ring_offset || (rec->ring_offset - sb->ring_offset) % seg ||
	    rec->nr_segments < BC_MIN_SEGMENTS ||
	    rec->ring_offset + rec->nr_segments * seg > sb->cache_size ||
	    rec->export_size > rec->origin_size || (rec->export_size % BC_BLOCK_SIZE) ||
	    rec->mode > BC_CACHE_PASSTHROUGH || !memchr(rec->name, 0, sizeof(rec->name)) ||
	    !bc_name_valid(rec->name) || !bc_orec_shards_valid(rec))
		return BC_FMT_BAD_GEOMETRY;
	return BC_FMT_OK;
}

const struct bc_sb_disk *bc_orec_pick(const struct bc_sb_disk *two, const struct bc_sb_disk *sb,
				      uint32_t id, enum bc_fmt_status *st0, enum bc_fmt_status *st1)
{
	enum bc_fmt_status sa = bc_orec_check(&two[0], sb, id), sbb = bc_orec_check(&two[1], sb, id);

	if (st0)
		*st0 = sa;
	if (st1)
		*st1 = sbb;
	if (sa == BC_FMT_OK && sbb == BC_FMT_OK)
		return two[0].seq >= two[1].seq ? &two[0] : &two[1];
	if (sa == BC_FMT_OK)
		return &two[0];
	if (sbb == BC_FMT_OK)
		return &two[1];
	return NULL;
}

const struct bc_sb_disk *bc_sb_pick(const struct bc_sb_disk *a, const struct bc_sb_disk *b,
				    enum bc_fmt_status *st0, enum bc_fmt_status *st1)
{
	enum bc_fmt_status sa = bc_sb_check(a), sbb = bc_sb_check(b);

	if (st0)
		*st0 = sa;
	if (st1)
		*st1 = sbb;
	if (sa == BC_FMT_OK && sbb == BC_FMT_OK)
		return a->seq >= b->seq ? a : b;
	if (sa == BC_FMT_OK)
		return a;
	if (sbb == BC_FMT_OK)
		return b;
	return NULL;
}

void bc_label_seal(struct bc_origin_label *l)
{
	l->magic = BC_LABEL_MAGIC;
	l->version = BC_LABEL_VERSION;
	l->crc = bc_crc32c_block(l, sizeof(*l), offsetof(struct bc_origin_label, crc));
}

enum bc_fmt_status bc_label_check(const struct bc_origin_label *l)
{
	if (l->magic != BC_LABEL_MAGIC)
		return BC_FMT_BAD_MAGIC;
	if (l->version != BC_LABEL_VERSION)
		return BC_FMT_BAD_VERSION;
	if (l->crc != bc_crc32c_block(l, sizeof(*l), offsetof(struct bc_origin_label, crc)))
		return BC_FMT_BAD_CRC;
	return BC_FMT_OK;
}

void bc_seg_hdr_prepare(struct bc_seg_hdr *hdr, uint32_t header_blocks, uint32_t n, uint64_t seq,
			uint64_t nonce, uint64_t flushed_seq, uint64_t epoch, uint32_t origin_id)
{
	size_t used = offsetof(struct bc_seg_hdr, entries) + (size_t)n * sizeof(hdr->entries[0]);

	memset(hdr, 0, offsetof(struct bc_seg_hdr, entries));
	memset((char *)hdr + used, 0, (size_t)header_blocks * BC_BLOCK_SIZE - used);
	hdr->nr_entries = n;
	hdr->seq = seq;
	hdr->format_nonce = nonce;
	hdr->flushed_seq = flushed_seq;
	hdr->epoch = epoch;
	hdr->origin_id = origin_id;
}

void bc_seg_hdr_seal(struct bc_seg_hdr *hdr, uint32_t header_blocks)
{
	hdr->magic = BC_SEG_MAGIC;
	hdr->header_blocks = header_blocks;
	hdr->crc = bc_crc32c_block(hdr, (size_t)header_blocks * BC_BLOCK_SIZE,
				   offsetof(struct bc_seg_hdr, crc));
}

enum bc_fmt_status bc_seg_hdr_check(const struct bc_seg_hdr *hdr, uint32_t header_blocks,
				    uint32_t data_blocks, uint64_t nonce)
{
	if (hdr->magic != BC_SEG_MAGIC)
		return BC_FMT_BAD_MAGIC;
	if (hdr->header_blocks != header_blocks)
		return BC_FMT_BAD_GEOMETRY;
	if (hdr->crc != bc_crc32c_block(hdr, (size_t)header_blocks * BC_BLOCK_SIZE,
					offsetof(struct bc_seg_hdr, crc)))
		return BC_FMT_BAD_CRC;
	if (hdr->format_nonce != nonce)
		return BC_FMT_FOREIGN;
	if (hdr->nr_entries > data_blocks)
		return BC_FMT_BAD_GEOMETRY;
	return BC_FMT_OK;
}

void bc_round_seal(struct bc_round_hdr *r)
{
	r->magic = BC_ROUND_MAGIC;
	r->crc = bc_crc32c_block(r, BC_BLOCK_SIZE, offsetof(struct bc_round_hdr, crc));
}

bool bc_round_check(const struct bc_round_hdr *r, uint64_t seq, uint64_t nonce, uint32_t slot,
		    uint32_t data_blocks, uint32_t open_id)
{
	return r->magic == BC_ROUND_MAGIC && r->seq == seq && r->format_nonce == nonce &&
	       r->open_id == open_id &&
	       r->slot == slot && r->nr_entries >= 1 && r->nr_entries <= BC_ROUND_MAX_ENTRIES &&
	       r->nr_entries < data_blocks - slot &&
	       r->crc == bc_crc32c_block(r, BC_BLOCK_SIZE, offsetof(struct bc_round_hdr, crc));
}

void bc_random_bytes(void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = getrandom((char *)buf + got, len - got, 0);

		if (n > 0)
			got += (size_t)n;
	}
}

void bc_uuid_generate(uint8_t uuid[16])
{
	bc_random_bytes(uuid, 16);
	uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40); /* version 4 */
	uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80); /* RFC 4122 variant */
}

void bc_uuid_format(const uint8_t u[16], char out[37])
{
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
		 u[12], u[13], u[14], u[15]);
}
