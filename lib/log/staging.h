/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Staged acks: the RAM segment buffers live in a file on tmpfs, mapped
 * shared, so a server that is killed (kill -9, a crash of the process) and
 * started again finds every write it acknowledged -- the property a
 * filesystem that stays mounted over ublk user recovery needs -- while a
 * write is still acknowledged as soon as it is in a buffer.  The file is on
 * tmpfs on purpose: it dies with the machine, like any volatile write cache;
 * a host crash keeps what FLUSH/FUA made durable, as always.
 *
 * File layout (little-endian, fixed width; docs/format.md "Staging file"):
 *   [struct bc_stage_hdr + one struct bc_stage_desc per buffer, padded to
 *    4 KiB blocks][buffer 0][buffer 1]...   each buffer laid out as a segment
 * A buffer's segment header area holds its entries as they are taken (the
 * prefix is rebuilt when it is replayed); the descriptor says which segment
 * the buffer holds and how many of its entries are complete (published: data
 * copied).  Publishing is one aligned 4-byte store after the data, so a kill
 * at any instruction leaves a prefix of complete entries.
 *
 * A file is valid for the cache whose superblock generation lies in
 * [sb_seq_lo, sb_seq_hi]: the server that made it notes every superblock it
 * writes; any other opener writes a newer one, so a file left behind by an
 * older server can never replay over newer data.
 */
#ifndef BC_LOG_STAGING_H
#define BC_LOG_STAGING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BC_STAGE_MAGIC   0x3145474154534342ull /* "BCSTAGE1" */
#define BC_STAGE_VERSION 1u
#define BC_STAGE_HOLDS   1u /* descriptor state: the buffer holds segment @seq */

struct bc_stage_desc {
	uint64_t seq;          /* the segment in this buffer */
	uint64_t epoch;        /* its FLUSH epoch */
	uint64_t flushed_seq;  /* durable point when it was opened (a lower bound) */
	uint32_t nr_entries;   /* entries complete in the buffer */
	uint32_t state;        /* 0 free, BC_STAGE_HOLDS */
};
_Static_assert(sizeof(struct bc_stage_desc) == 32, "staging descriptor is 32 bytes");

struct bc_stage_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t crc;            /* CRC32C of bytes 0..79 with this field zeroed */
	uint8_t cache_uuid[16];
	uint64_t format_nonce;
	uint32_t segment_size;
	uint32_t nr_buffers;
	uint32_t header_blocks;
	uint32_t data_blocks;
	uint64_t buf_offset;     /* buffer i at buf_offset + i * segment_size */
	uint64_t reserved[2];
	/* live fields, each updated with one aligned store */
	uint64_t sb_seq_lo;      /* first superblock generation its server wrote; 0: none yet */
	uint64_t sb_seq_hi;      /* the newest it was about to write */
	uint64_t reserved2[4];
	struct bc_stage_desc bufs[];
};
_Static_assert(sizeof(struct bc_stage_hdr) == 128, "staging header prefix is 128 bytes");
_Static_assert(offsetof(struct bc_stage_hdr, sb_seq_lo) == 80, "CRC covers bytes 0..79");

#define BC_STAGE_FILE_FMT "blkcache-%s.stage" /* %s: the cache UUID */
#define BC_STAGE_FILE_FMT_ORIGIN "blkcache-%s.%u.stage" /* v3: the cache UUID, the origin's id */

struct bc_engine;
struct bc_seg;

/* Before recovery: replay a staging file a killed server left behind for
 * this cache (in cfg.staging_dir and in BC_STAGING_DIR_DEFAULT), flush, and
 * remove it.  0 (also when there was none, or a stale one), or -errno with
 * @why. */
int bc_staging_restore(struct bc_engine *e, char *why, size_t whylen);
/* Create and map this server's staging file (cfg.staging_dir). */
int bc_staging_open(struct bc_engine *e, unsigned nbufs, char *why, size_t whylen);
/* Buffer @i of the mapping (segment_size bytes, 4 KiB aligned). */
void *bc_staging_buf_mem(const struct bc_engine *e, unsigned i);
/* Everything staged is on the cache device (clean shutdown). */
void bc_staging_mark_clean(struct bc_engine *e);
/* Unmap; remove the file if marked clean (else it is left for a replay). */
void bc_staging_close(struct bc_engine *e);
/* Buffer @idx now holds the open segment @s (no entries yet) / is free. */
void bc_staging_hold(struct bc_engine *e, unsigned idx, const struct bc_seg *s);
void bc_staging_release(struct bc_engine *e, unsigned idx);
/* Every entry of the open segment taken so far is complete: publish them. */
void bc_staging_publish(struct bc_engine *e);
/* A superblock of generation @seq is about to be written. */
void bc_staging_note_sb(struct bc_engine *e, uint64_t seq);

#endif
