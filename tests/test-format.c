/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the on-disk format: CRC32C, superblock, segment header, label. */
#include <errno.h>
#include <string.h>

#include "format/format.h"
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
	sb->version = BC_FORMAT_VERSION;
	sb->origin_size = 1ull << 30;
	sb->export_size = (1ull << 30) - 4096;
	sb->seq = 7;
	sb->written_back_seq = 3;
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
	test_geometry();
	test_seg_hdr();
	test_label();
	return t_finish("format/CRC/superblock/segment header/label");
}
