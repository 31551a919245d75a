/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the on-disk format: CRC32C, superblock, origin records and
 * the table's allocation, segment header, label. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "format/format.h"
#include "format/otable.h"
#include "testutil.h"

static void test_crc(void)
{
	const char *v = "123456789";
	char block[4096];

	/* The standard CRC-32C check value. */
	CHECK(bc_crc32c(0, v, 9) == 0xE3069283u, "crc32c(123456789)=%08x", bc_crc32c(0, v, 9));
	/* Incremental equals one-shot. */
	CHECK(bc_crc32c(bc_crc32c(0, v, 4), v + 4, 5) == 0xE3069283u, "incremental crc");
	memset(block, 0x5a, sizeof(block));
	memset(block + 100, 0, 4);
	CHECK(bc_crc32c_block(block, sizeof(block), 100) == bc_crc32c(0, block, sizeof(block)),
	      "block crc treats the crc field as zero");
}

static void make_sb(struct bc_sb_disk *sb)
{
	memset(sb, 0, sizeof(*sb));
	CHECK(bc_sb_geometry(sb, 256ull << 20, 1u << 20) == 0, "geometry");
	sb->version = BC_FORMAT_VERSION_DISK;
	sb->origin_size = 1ull << 30;
	sb->export_size = (1ull << 30) - 4096;
	sb->seq = 7;
	sb->written_back_seq = 3;
	sb->origin_slots = BC_ORIGIN_SLOTS;
	sb->table_offset = BC_TABLE_OFFSET;
	bc_uuid_generate(sb->cache_uuid);
	bc_sb_seal(sb);
}

static void test_sb(void)
{
	static struct bc_sb_disk a, b;
	unsigned i;

	make_sb(&a);
	CHECK(a.nr_segments == 255, "255 segments in 256 MiB, got %u", a.nr_segments);
	CHECK(a.header_blocks == 2 && a.data_blocks == 254, "1 MiB: 2 header + 254 data blocks");
	CHECK(bc_sb_check(&a) == BC_FMT_OK, "valid sb: %s", bc_fmt_strerror(bc_sb_check(&a)));

	/* Round trip through bytes. */
	memcpy(&b, &a, sizeof(b));
	CHECK(bc_sb_check(&b) == BC_FMT_OK && b.written_back_seq == 3 && b.seq == 7, "decode");

	/* Any single bit flip is detected. */
	for (i = 0; i < 200; i++) {
		size_t off = (size_t)rand() % sizeof(b);
		enum bc_fmt_status st;

		memcpy(&b, &a, sizeof(b));
		((uint8_t *)&b)[off] ^= (uint8_t)(1u << (rand() % 8));
		st = bc_sb_check(&b);
		CHECK(st != BC_FMT_OK, "bit flip at %zu undetected", off);
	}
	/* Version mismatch gets its own status even with a good CRC. */
	memcpy(&b, &a, sizeof(b));
	b.version = 99;
	bc_sb_seal(&b);
	CHECK(bc_sb_check(&b) == BC_FMT_BAD_VERSION, "version 99: %s", bc_fmt_strerror(bc_sb_check(&b)));
	/* Every version from BC_FORMAT_VERSION_MIN is read; the next one, and
	 * 0, are not. */
	for (i = 0; i <= BC_FORMAT_VERSION + 1; i++) {
		bool ok = i >= BC_FORMAT_VERSION_MIN && i <= BC_FORMAT_VERSION;

		memcpy(&b, &a, sizeof(b));
		b.version = i;
		bc_sb_seal(&b);
		CHECK((bc_sb_check(&b) == BC_FMT_OK) == ok, "version %u: %s", i,
		      bc_fmt_strerror(bc_sb_check(&b)));
	}
	/* A version 1 superblock means a labelled origin; version 2 only with
	 * the flag. */
	memcpy(&b, &a, sizeof(b));
	b.version = 1;
	CHECK(bc_sb_labeled(&b), "v1 is labelled");
	b.version = 2;
	CHECK(!bc_sb_labeled(&b), "v2 without the flag is not labelled");
	b.flags |= BC_SB_ORIGIN_LABEL;
	CHECK(bc_sb_labeled(&b), "v2 with BC_SB_ORIGIN_LABEL is labelled");
	memcpy(&b, &a, sizeof(b));
	b.magic = 0;
	CHECK(bc_sb_check(&b) == BC_FMT_BAD_MAGIC, "magic");
	/* Geometry lies are caught. */
	memcpy(&b, &a, sizeof(b));
	b.nr_segments++;
	bc_sb_seal(&b);
	CHECK(bc_sb_check(&b) == BC_FMT_BAD_GEOMETRY, "geometry mismatch");

	/* Picking: the newer valid copy wins; a corrupt copy falls back. */
	memcpy(&b, &a, sizeof(b));
	b.seq = 8;
	bc_sb_seal(&b);
	CHECK(bc_sb_pick(&a, &b, NULL, NULL) == &b, "newer copy wins");
	CHECK(bc_sb_pick(&b, &a, NULL, NULL) == &b, "newer copy wins (other order)");
	b.crc ^= 1;
	CHECK(bc_sb_pick(&a, &b, NULL, NULL) == &a, "corrupt newer copy falls back");
	a.crc ^= 1;
	CHECK(bc_sb_pick(&a, &b, NULL, NULL) == NULL, "both corrupt");
}

/* A v3 record for slot @id of @sb's table: positions first..first+len-1. */
static void make_rec(struct bc_sb_disk *rec, const struct bc_sb_disk *sb, uint32_t id,
		     uint32_t first, uint32_t len, const char *name)
{
	*rec = *sb;
	rec->version = BC_FORMAT_VERSION_TABLE; /* records stay at v3 */
	rec->origin_slots = 0;
	rec->table_offset = 0;
	rec->origin_id = id;
	rec->ring_offset = sb->ring_offset + (uint64_t)first * sb->segment_size;
	rec->nr_segments = len;
	rec->flags = BC_SB_CLEAN;
	snprintf(rec->name, sizeof(rec->name), "%s", name);
	bc_orec_seal(rec);
}

static void test_records(void)
{
	static struct bc_sb_disk sb, rec, b, two[2];
	enum bc_fmt_status st0, st1;
	unsigned i;

	make_sb(&sb);
	CHECK(bc_sb_check(&sb) == BC_FMT_OK, "v3 superblock: %s", bc_fmt_strerror(bc_sb_check(&sb)));
	b = sb;
	b.origin_slots = 0;
	bc_sb_seal(&b);
	CHECK(bc_sb_check(&b) == BC_FMT_BAD_GEOMETRY, "v3 superblock without a table");
	b = sb;
	b.table_offset = sb.ring_offset - BC_BLOCK_SIZE;
	bc_sb_seal(&b);
	CHECK(bc_sb_check(&b) == BC_FMT_BAD_GEOMETRY, "a table overlapping the ring");
	b.version = 2;
	bc_sb_seal(&b);
	CHECK(bc_sb_check(&b) == BC_FMT_OK, "v2 ignores the table fields");
	b = sb;
	b.version = BC_FORMAT_VERSION_ROUNDS;
	bc_sb_seal(&b);
	CHECK(bc_sb_check(&b) == BC_FMT_OK && bc_sb_has_table(&b), "v4 (rounds to the end) is v3 with a table");
	b.version = BC_FORMAT_VERSION + 1;
	bc_sb_seal(&b);
	CHECK(bc_sb_check(&b) == BC_FMT_BAD_VERSION, "a version above %u is refused as such",
	      BC_FORMAT_VERSION);

	make_rec(&rec, &sb, 5, 16, 32, "db-1");
	CHECK(bc_orec_check(&rec, &sb, 5) == BC_FMT_OK, "valid record: %s",
	      bc_fmt_strerror(bc_orec_check(&rec, &sb, 5)));
	CHECK(bc_sb_check(&rec) == BC_FMT_BAD_MAGIC, "a record is not a superblock");
	CHECK(bc_orec_check(&rec, &sb, 4) == BC_FMT_BAD_GEOMETRY, "a record in another slot");
	for (i = 0; i < 200; i++) {
		size_t off = (size_t)rand() % sizeof(b);

		b = rec;
		((uint8_t *)&b)[off] ^= (uint8_t)(1u << (rand() % 8));
		CHECK(bc_orec_check(&b, &sb, 5) != BC_FMT_OK, "record bit flip at %zu undetected", off);
	}
	b = rec;
	b.version = 4;
	bc_orec_seal(&b);
	CHECK(bc_orec_check(&b, &sb, 5) == BC_FMT_BAD_VERSION, "record version 4");
	b = rec;
	b.cache_uuid[0] ^= 1;
	bc_orec_seal(&b);
	CHECK(bc_orec_check(&b, &sb, 5) == BC_FMT_FOREIGN, "a record of another cache");
	make_rec(&b, &sb, 5, sb.nr_segments - 8, 16, "x");
	CHECK(bc_orec_check(&b, &sb, 5) == BC_FMT_BAD_GEOMETRY, "a ring past the cache's end");
	make_rec(&b, &sb, 5, 0, BC_MIN_SEGMENTS - 1, "x");
	CHECK(bc_orec_check(&b, &sb, 5) == BC_FMT_BAD_GEOMETRY, "a ring under 16 segments");
	b = rec;
	b.ring_offset += 4096;
	bc_orec_seal(&b);
	CHECK(bc_orec_check(&b, &sb, 5) == BC_FMT_BAD_GEOMETRY, "a ring between positions");
	make_rec(&b, &sb, 5, 0, 16, "-x");
	CHECK(bc_orec_check(&b, &sb, 5) == BC_FMT_BAD_GEOMETRY, "a name starting with '-'");
	make_rec(&b, &sb, 5, 0, 16, "a b");
	CHECK(bc_orec_check(&b, &sb, 5) == BC_FMT_BAD_GEOMETRY, "a name with a space");
	CHECK(bc_name_valid("blkcache") && bc_name_valid("sdb1.cache_2-x") && !bc_name_valid("") &&
	      !bc_name_valid(".x") && !bc_name_valid("a/b") &&
	      !bc_name_valid("0123456789012345678901234567890123456789012345678901234567890123"),
	      "name rules");
	/* The newer valid copy of a record wins; a damaged one falls back. */
	two[0] = rec;
	two[1] = rec;
	two[1].seq = rec.seq + 1;
	bc_orec_seal(&two[1]);
	CHECK(bc_orec_pick(two, &sb, 5, &st0, &st1) == &two[1], "newer record copy wins");
	two[1].crc ^= 1;
	CHECK(bc_orec_pick(two, &sb, 5, &st0, &st1) == &two[0] && st1 == BC_FMT_BAD_CRC,
	      "damaged newer record copy falls back");
}

static void test_alloc(void)
{
	static struct bc_sb_disk sb, r[4];
	struct bc_otable t;
	uint32_t first, len, used;
	char why[256];

	make_sb(&sb);
	memset(&t, 0, sizeof(t));
	t.sb = sb;
	bc_otable_free_run(&t, &first, &len, &used);
	CHECK(first == 0 && len == sb.nr_segments && used == 0, "empty table: all free");
	CHECK(bc_otable_new_slot(&t) == 0, "first slot");
	make_rec(&r[0], &sb, 0, 0, 60, "a");
	make_rec(&r[1], &sb, 1, 100, 50, "b");
	t.rec[0] = &r[0];
	t.rec[1] = &r[1];
	bc_otable_free_run(&t, &first, &len, &used);
	CHECK(first == 150 && len == sb.nr_segments - 150 && used == 110,
	      "largest free run after b: %u+%u, used %u", first, len, used);
	CHECK(bc_otable_find(&t, "b") == 1 && bc_otable_find(&t, "c") == -ENOENT, "find by name");
	CHECK(bc_otable_attached(&t) == 2 && bc_otable_new_slot(&t) == 2, "two attached, slot 2 next");
	CHECK(bc_otable_check_overlap(&t, why, sizeof(why)) == 0, "no overlap");
	make_rec(&r[2], &sb, 2, 140, 20, "c");
	t.rec[2] = &r[2];
	CHECK(bc_otable_check_overlap(&t, why, sizeof(why)) == -EUCLEAN && strstr(why, "'b'") &&
	      strstr(why, "'c'"), "overlap of b and c found: %s", why);
	/* A detached origin holds no positions; its slot is reused last. */
	r[2].flags |= BC_SB_DETACHED;
	CHECK(bc_otable_check_overlap(&t, why, sizeof(why)) == 0, "a detached ring overlaps nothing");
	CHECK(bc_otable_new_slot(&t) == 3, "a free slot before a detached one");
	bc_otable_free_run(&t, &first, &len, &used);
	CHECK(first == 150 && used == 110, "a detached ring is free");
}

static void test_geometry(void)
{
	static struct bc_sb_disk sb;
	uint32_t sz;

	for (sz = BC_SEG_SIZE_MIN; sz <= BC_SEG_SIZE_MAX; sz <<= 1) {
		uint32_t h = bc_seg_header_blocks(sz), d = sz / 4096 - h;

		CHECK(64 + (uint64_t)d * 16 <= (uint64_t)h * 4096, "entries fit the header (%u)", sz);
		CHECK(h == 1 || 64 + (uint64_t)(d + 1) * 16 > (uint64_t)(h - 1) * 4096,
		      "header is minimal (%u)", sz);
		memset(&sb, 0, sizeof(sb));
		CHECK(bc_sb_geometry(&sb, 1ull << 30, sz) == 0, "geometry for %u", sz);
	}
	memset(&sb, 0, sizeof(sb));
	CHECK(bc_sb_geometry(&sb, 1ull << 30, 3u << 20) == -EINVAL, "non power of two");
	CHECK(bc_sb_geometry(&sb, 1ull << 30, 128u << 10) == -EINVAL, "too small segment");
	CHECK(bc_sb_geometry(&sb, 4u << 20, 1u << 20) == -ENOSPC, "too small device");
}

static void test_seg_hdr(void)
{
	uint32_t hb = bc_seg_header_blocks(1u << 20), db = bc_seg_data_blocks(1u << 20), i;
	struct bc_seg_hdr *h = t_alloc((size_t)hb * 4096), *c = t_alloc((size_t)hb * 4096);

	h->seq = 42;
	h->format_nonce = 0x1234;
	h->nr_entries = db;
	for (i = 0; i < db; i++)
		h->entries[i] = (struct bc_seg_entry){ .block = i * 3, .nblocks = 1, .mask = 0xff,
						       .flags = BC_ENT_DIRTY, .data_crc = i };
	bc_seg_hdr_seal(h, hb);
	CHECK(bc_seg_hdr_check(h, hb, db, 0x1234) == BC_FMT_OK, "valid header");
	CHECK(bc_seg_hdr_check(h, hb, db, 0x9999) == BC_FMT_FOREIGN, "nonce of another format");
	for (i = 0; i < 100; i++) {
		size_t off = (size_t)rand() % ((size_t)hb * 4096);

		memcpy(c, h, (size_t)hb * 4096);
		((uint8_t *)c)[off] ^= 0x10;
		CHECK(bc_seg_hdr_check(c, hb, db, 0x1234) != BC_FMT_OK, "flip at %zu undetected", off);
	}
	memcpy(c, h, (size_t)hb * 4096);
	c->nr_entries = db + 1;
	bc_seg_hdr_seal(c, hb);
	CHECK(bc_seg_hdr_check(c, hb, db, 0x1234) == BC_FMT_BAD_GEOMETRY, "too many entries");
	free(h);
	free(c);
}

static void test_label(void)
{
	struct bc_origin_label *l = t_alloc(sizeof(*l));

	bc_uuid_generate(l->origin_uuid);
	l->origin_size = 1 << 30;
	bc_label_seal(l);
	CHECK(bc_label_check(l) == BC_FMT_OK, "label valid");
	CHECK((l->origin_uuid[6] >> 4) == 4, "uuid v4");
	l->origin_uuid[3] ^= 1;
	CHECK(bc_label_check(l) == BC_FMT_BAD_CRC, "label corruption");
	free(l);
}

int main(void)
{
	srand(1);
	test_crc();
	test_sb();
	test_records();
	test_alloc();
	test_geometry();
	test_seg_hdr();
	test_label();
	return t_finish("format/CRC/superblock/origin records/segment header/label");
}
