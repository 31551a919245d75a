/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * On-disk format v2 of the cache device (and the optional origin label).
 *
 *   cache device:  [sb copy 0 @0][sb copy 1 @4096] ... [ring @ring_offset]
 *   ring:          nr_segments segments of segment_size bytes;
 *                  the segment with sequence number S lives at slot S % nr_segments
 *   segment:       header_blocks 4 KiB header blocks, then data blocks;
 *                  entry i of the header describes data block i
 *   origin:        not written by format: the cache device records the origin's
 *                  identity (size, path, serial ...) and the export is the whole
 *                  origin; or, with --origin-label (and always in format v1), the
 *                  origin's last 4 KiB block holds a label with the origin UUID
 *                  and the exported size is the origin size minus that block
 *
 * All fields are little-endian, fixed width and naturally aligned.  Every
 * metadata block carries a CRC32C computed with its crc field zeroed.
 */
#ifndef BC_FORMAT_H
#define BC_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <endian.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "blkcache stores little-endian structures directly; port format.c before building on a big-endian host"
#endif

#define BC_BLOCK_SIZE        4096u
#define BC_BLOCK_SHIFT       12
#define BC_SECTOR_SIZE       512u
#define BC_SECTOR_SHIFT      9
#define BC_SECTORS_PER_BLOCK 8u
#define BC_FULL_MASK         0xffu

#define BC_FORMAT_VERSION    5u  /* newest read: v4 + sharded origins (docs/shards.md) */
#define BC_FORMAT_VERSION_TABLE 3u /* an origin table, several origins */
#define BC_FORMAT_VERSION_ROUNDS 4u /* v3, and segments may carry BC_SEG_ROUNDS_FINAL (a FLUSH
				     * is a round of the open segment) */
#define BC_FORMAT_VERSION_DISK BC_FORMAT_VERSION_ROUNDS /* written by format */
#define BC_FORMAT_VERSION_SHARDS 5u /* written by format --shards: v4, and an origin may be
				     * several records, one per shard */
#define BC_FORMAT_VERSION_MIN 1u /* oldest still served: v1 = origin label, no identity */
#define BC_LABEL_VERSION     1u  /* of the origin label (unchanged since format v1) */
#define BC_SB_MAGIC          0x45484341434b4c42ull /* "BLKCACHE" */
#define BC_SEG_MAGIC         0x5244484745534342ull /* "BCSEGHDR" */
#define BC_LABEL_MAGIC       0x4e494749524f4342ull /* "BCORIGIN" */
#define BC_ROUND_MAGIC       0x444e554f52534342ull /* "BCSROUND" */
#define BC_OREC_MAGIC        0x43524749524f4342ull /* "BCORIGRC" */

#define BC_SB_COPIES         2u
#define BC_RING_OFFSET       (1ull << 20)
#define BC_SEG_SIZE_MIN      (256u << 10)
#define BC_SEG_SIZE_MAX      (16u << 20)
#define BC_SEG_SIZE_DEFAULT  (1u << 20)
#define BC_MIN_SEGMENTS      16u
#define BC_MAX_DATA_BLOCKS   (BC_SEG_SIZE_MAX / BC_BLOCK_SIZE)
/* What the in-RAM index can address: origin blocks in 40 bits (4 PiB),
 * data slots of one cache in 31 bits (log/slotmap.h, log/index.h). */
#define BC_MAX_ORIGIN_BLOCKS (1ull << 40)
#define BC_MAX_SLOTS         (1ull << 31)
/* v3: the origin table, between the superblocks and the ring: record i,
 * copy c at BC_TABLE_OFFSET + (2 * i + c) * 4096 */
#define BC_TABLE_OFFSET      (2u * BC_BLOCK_SIZE)
#define BC_ORIGIN_SLOTS      127u
#define BC_NAME_MAX          63u  /* bytes of an origin's name */
#define BC_MAX_SHARDS        16u  /* shards of one origin (v5) */
#define BC_STRIPE_BLOCKS_DEFAULT 256u /* 1 MiB stripes */

/* Superblock flags */
#define BC_SB_CLEAN          (1u << 0) /* written at clean shutdown */
#define BC_SB_DATA_CRC       (1u << 1) /* verify data CRCs on every read (later) */
#define BC_SB_DETACHED       (1u << 2)
#define BC_SB_ORIGIN_LABEL   (1u << 3) /* the origin carries a label (v1: always) */

struct bc_sb_disk {
	uint64_t magic;
	uint32_t version;
	uint32_t crc;
	uint64_t seq;              /* superblock generation: the valid copy with the higher one wins */
	uint8_t cache_uuid[16];
	uint8_t origin_uuid[16];
	uint64_t origin_size;      /* bytes, whole origin device */
	uint64_t export_size;      /* bytes exported (origin minus label) */
	uint64_t cache_size;       /* bytes of the cache device in use */
	uint64_t ring_offset;
	uint32_t block_size;
	uint32_t segment_size;
	uint32_t nr_segments;
	uint32_t header_blocks;    /* per segment */
	uint32_t data_blocks;      /* per segment */
	uint32_t mode;             /* enum bc_mode (blkcache/engine.h): its values are on disk */
	uint64_t written_back_seq; /* every segment <= this holds no needed dirty data */
	uint64_t last_seq;         /* newest segment written (exact at clean shutdown) */
	uint64_t format_nonce;     /* random; stamped into every segment header */
	uint32_t flags;            /* BC_SB_* */
	uint32_t reserved0;
	uint64_t format_time;      /* seconds since the epoch */
	/* v2: the origin's identity, recorded on the cache side (zero in v1) */
	uint32_t origin_kind;      /* enum bc_origin_kind */
	uint32_t origin_id_flags;  /* reserved, 0 */
	uint64_t origin_inode;     /* file: st_ino; block device: st_rdev */
	char origin_path[256];     /* canonical path, or the URI of a network origin */
	char origin_serial[128];   /* block device: WWN, else serial (sysfs); rbd: its ids */
	char origin_partuuid[40];  /* block device: partition UUID, if a partition */
	char origin_byid[256];     /* block device: a /dev/disk/by-id name */
	/* v3: the superblock describes the origin table (its own origin fields
	 * are zero); a record of the table has this same layout, with magic
	 * BC_OREC_MAGIC, and describes one origin and its ring */
	uint32_t origin_slots;     /* superblock: records in the table */
	uint32_t origin_id;        /* record: its index in the table */
	uint64_t table_offset;     /* superblock: byte offset of record 0, copy 0 */
	char name[BC_NAME_MAX + 1]; /* record: the origin's name (its NBD export); NUL-terminated */
	/* v5: a sharded origin is one record per shard, all of the same name
	 * and origin; shard i caches the origin blocks b with
	 * (b / stripe_blocks) % shard_count == i (zero in v3 records) */
	uint32_t shard_index;      /* record: 0 .. shard_count - 1 */
	uint32_t shard_count;      /* record: 2 .. BC_MAX_SHARDS; 0: not sharded */
	uint32_t stripe_blocks;    /* record: a power of two */
	uint32_t shard_reserved;
	/* Persistent memory (format v4 log): a segment holds writes of several
	 * client FLUSH epochs (a FLUSH is a round, not a seal), and writeback
	 * takes it one epoch at a time.  The entries of segment
	 * written_back_epoch_seq up to epoch written_back_epoch are on the
	 * origin already; valid only while that segment is written_back_seq + 1
	 * (a writer that does not know these fields may keep stale values). */
	uint64_t written_back_epoch;
	uint64_t written_back_epoch_seq;
	uint8_t reserved[3136];
};
_Static_assert(sizeof(struct bc_sb_disk) == 4096, "superblock is one 4 KiB block");
_Static_assert(offsetof(struct bc_sb_disk, origin_kind) == 152, "v2 fields follow v1's");
_Static_assert(offsetof(struct bc_sb_disk, origin_inode) % 8 == 0, "naturally aligned");
_Static_assert(offsetof(struct bc_sb_disk, origin_slots) == 848, "v3 fields follow v2's");
_Static_assert(offsetof(struct bc_sb_disk, table_offset) % 8 == 0, "naturally aligned");
_Static_assert(offsetof(struct bc_sb_disk, shard_index) == 928, "v5 fields follow v3's");
_Static_assert(offsetof(struct bc_sb_disk, written_back_epoch) == 944, "naturally aligned");
_Static_assert(BC_TABLE_OFFSET + 2ull * BC_ORIGIN_SLOTS * BC_BLOCK_SIZE <= BC_RING_OFFSET,
	       "the origin table fits between the superblocks and the ring");

enum bc_origin_kind {
	BC_ORIGIN_UNKNOWN = 0,  /* v1 cache: identified by the label only */
	BC_ORIGIN_FILE = 1,
	BC_ORIGIN_BDEV = 2,
	BC_ORIGIN_NETWORK = 3,  /* nbd:// (the URI) */
	BC_ORIGIN_OTHER = 4,    /* any other driver (the path as given) */
};

/* Entry flags */
#define BC_ENT_DIRTY  (1u << 0) /* data must be written back */
#define BC_ENT_ZERO   (1u << 1) /* nblocks blocks from @block read as zeroes; no data block */
#define BC_ENT_INVALID (1u << 2) /* nblocks blocks from @block are no longer cached (a write
				  * went around the cache); no data block */

struct bc_seg_entry {
	uint64_t block;     /* origin block number (4 KiB units) */
	uint32_t data_crc;  /* CRC32C of the 4 KiB data block (0 for ZERO entries) */
	uint16_t nblocks;   /* ZERO entries: length of the range; else 1 */
	uint8_t mask;       /* sectors of the block held by this entry */
	uint8_t flags;      /* BC_ENT_* */
};
_Static_assert(sizeof(struct bc_seg_entry) == 16, "segment entry is 16 bytes");

struct bc_seg_hdr {
	uint64_t magic;
	uint32_t crc;          /* over header_blocks * 4 KiB with this field zeroed */
	uint32_t nr_entries;
	uint64_t seq;
	uint64_t format_nonce;
	uint64_t flushed_seq;  /* every segment <= this was durable when this one was sealed */
	uint32_t header_blocks;
	uint32_t flags;        /* BC_SEG_* (v4) */
	uint64_t epoch;        /* client FLUSH generation of its writes: segments of one
				* epoch were not ordered by a FLUSH among themselves */
	uint32_t origin_id;    /* v3: the origin record whose ring holds it (v1/v2: 0) */
	uint32_t open_id;      /* this opening of the segment (nonzero; 0 from writers before
				* it existed): its round blocks carry it */
	struct bc_seg_entry entries[];
};
_Static_assert(sizeof(struct bc_seg_hdr) == 64, "segment header prefix is 64 bytes");
/* v4: the header is written once, for the segment's first entries; the rest
 * follow in round blocks (to the end of the segment), which every recovery
 * follows, flushed or not -- the header is never rewritten in place, so a
 * FLUSH can be made durable by a round without sealing the segment
 * (persistent memory: log/openwrite.c). */
#define BC_SEG_ROUNDS_FINAL 0x1u
_Static_assert(offsetof(struct bc_seg_hdr, entries) == 64, "entries follow the prefix");

/*
 * A round block: written acks write the open segment in rounds, each one
 * device write of a round block and the data blocks after it; the block
 * takes a data slot of its own and describes the entries of the slots that
 * follow it (until the next round block).  In the segment header its slot
 * is an entry that changes nothing: flags BC_ENT_INVALID, nblocks 0 (format
 * v2 readers replay it as a no-op).  Recovery extends a segment not known
 * flushed with the valid round blocks after its header's entries
 * (format/logscan.c).
 */
struct bc_round_hdr {
	uint64_t magic;        /* BC_ROUND_MAGIC */
	uint32_t crc;          /* over the 4 KiB block with this field zeroed */
	uint32_t nr_entries;   /* entries in the slots slot+1 .. slot+nr_entries */
	uint64_t seq;          /* its segment */
	uint64_t format_nonce;
	uint32_t slot;         /* its own slot in the segment */
	uint32_t open_id;      /* the open_id of its segment's header */
	uint64_t epoch;        /* the client FLUSH epoch of its entries (a FLUSH starts a new
				* round); 0 from writers before it existed: the header's */
	uint64_t reserved[2];
	struct bc_seg_entry entries[];
};
_Static_assert(sizeof(struct bc_round_hdr) == 64, "round block prefix is 64 bytes");
#define BC_ROUND_MAX_ENTRIES ((BC_BLOCK_SIZE - sizeof(struct bc_round_hdr)) / sizeof(struct bc_seg_entry))

/* The segment header entry of a round block's slot. */
static inline struct bc_seg_entry bc_round_entry(void)
{
	return (struct bc_seg_entry){ .block = 0, .nblocks = 0, .mask = BC_FULL_MASK,
				      .flags = BC_ENT_INVALID };
}

static inline bool bc_ent_is_round(const struct bc_seg_entry *ent)
{
	return ent->flags == BC_ENT_INVALID && ent->nblocks == 0;
}

struct bc_origin_label {
	uint64_t magic;
	uint32_t version;
	uint32_t crc;
	uint8_t origin_uuid[16];
	uint8_t cache_uuid[16];
	uint64_t origin_size;
	uint64_t export_size;
	uint8_t reserved[4032];
};
_Static_assert(sizeof(struct bc_origin_label) == 4096, "origin label is one 4 KiB block");

/* Result of validating a metadata block; bc_fmt_strerror() names it. */
enum bc_fmt_status {
	BC_FMT_OK = 0,
	BC_FMT_BAD_MAGIC,
	BC_FMT_BAD_CRC,
	BC_FMT_BAD_VERSION,
	BC_FMT_BAD_GEOMETRY,
	BC_FMT_FOREIGN,   /* segment of another format (nonce mismatch) */
	BC_FMT_STALE,     /* segment sequence does not belong in this slot */
};
const char *bc_fmt_strerror(enum bc_fmt_status st);

uint32_t bc_crc32c(uint32_t crc, const void *buf, size_t len);
/* CRC32C of a whole block whose 32-bit crc field at @crc_off counts as zero. */
uint32_t bc_crc32c_block(const void *buf, size_t len, size_t crc_off);

/* Geometry: header blocks needed for a segment of @seg_size bytes. */
uint32_t bc_seg_header_blocks(uint32_t seg_size);
static inline uint32_t bc_seg_data_blocks(uint32_t seg_size)
{
	return seg_size / BC_BLOCK_SIZE - bc_seg_header_blocks(seg_size);
}
/* Fill geometry fields of @sb for a cache of @cache_size bytes; -EINVAL if
 * the segment size is invalid, -ENOSPC if the device is too small. */
int bc_sb_geometry(struct bc_sb_disk *sb, uint64_t cache_size, uint32_t seg_size);

/* Superblock: seal (compute CRC) in place; check a block read from disk. */
void bc_sb_seal(struct bc_sb_disk *sb);
enum bc_fmt_status bc_sb_check(const struct bc_sb_disk *sb);
/* Pick the newer valid copy of two; NULL if neither is valid.  @st0/@st1
 * receive each copy's status. */
const struct bc_sb_disk *bc_sb_pick(const struct bc_sb_disk *a, const struct bc_sb_disk *b,
				    enum bc_fmt_status *st0, enum bc_fmt_status *st1);

/* v3 origin records: seal in place; check one read from record slot @id of
 * the table that superblock @sb describes (magic, version, CRC, then: the
 * same cache -- else BC_FMT_FOREIGN -- and a ring inside the cache's). */
void bc_orec_seal(struct bc_sb_disk *rec);
enum bc_fmt_status bc_orec_check(const struct bc_sb_disk *rec, const struct bc_sb_disk *sb,
				 uint32_t id);
const struct bc_sb_disk *bc_orec_pick(const struct bc_sb_disk *two, const struct bc_sb_disk *sb,
				      uint32_t id, enum bc_fmt_status *st0, enum bc_fmt_status *st1);
/* Byte offset of copy @copy of record @id. */
static inline uint64_t bc_orec_offset(const struct bc_sb_disk *sb, uint32_t id, unsigned copy)
{
	return sb->table_offset + (2ull * id + copy) * BC_BLOCK_SIZE;
}
/* A valid origin name: 1..63 bytes of [A-Za-z0-9._-], not starting with '.' or '-'. */
bool bc_name_valid(const char *name);
/* Are a record's shard fields consistent (v5), or zero (not sharded)? */
bool bc_orec_shards_valid(const struct bc_sb_disk *rec);
static inline unsigned bc_orec_shards(const struct bc_sb_disk *rec)
{
	return rec->shard_count ? rec->shard_count : 1;
}
/* Is @sb a v3 superblock with an origin table (else v1/v2: itself the origin's)? */
static inline bool bc_sb_has_table(const struct bc_sb_disk *sb)
{
	return sb->version >= 3;
}

/* Does the origin of this cache carry a label (format v1, or --origin-label)? */
static inline bool bc_sb_labeled(const struct bc_sb_disk *sb)
{
	return sb->version == 1 || (sb->flags & BC_SB_ORIGIN_LABEL);
}

void bc_label_seal(struct bc_origin_label *l);
enum bc_fmt_status bc_label_check(const struct bc_origin_label *l);

/* Segment header: seal @hdr (header_blocks blocks) in place; check one read
 * from disk against the format nonce.  Data CRCs are checked separately. */
/* Zero @hdr's prefix and its header blocks after the first @n entries (the
 * entries are left as they are) and fill the prefix fields; the caller sets
 * the entries' data CRCs, then seals. */
void bc_seg_hdr_prepare(struct bc_seg_hdr *hdr, uint32_t header_blocks, uint32_t n, uint64_t seq,
			uint64_t nonce, uint64_t flushed_seq, uint64_t epoch, uint32_t origin_id);
void bc_seg_hdr_seal(struct bc_seg_hdr *hdr, uint32_t header_blocks);
enum bc_fmt_status bc_seg_hdr_check(const struct bc_seg_hdr *hdr, uint32_t header_blocks,
				    uint32_t data_blocks, uint64_t nonce);

void bc_round_seal(struct bc_round_hdr *r);
/* Is the block at slot @slot a valid round block of segment @seq, opened
 * as @open_id (a round block of an earlier opening of the same sequence
 * number, which recovery reuses after a crash, is not)? */
bool bc_round_check(const struct bc_round_hdr *r, uint64_t seq, uint64_t nonce, uint32_t slot,
		    uint32_t data_blocks, uint32_t open_id);

void bc_random_bytes(void *buf, size_t len);
void bc_uuid_generate(uint8_t uuid[16]);
void bc_uuid_format(const uint8_t uuid[16], char out[37]);

#endif
