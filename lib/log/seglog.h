/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The segment log: a ring of segments on the cache device, filled in RAM
 * buffers, sealed and written in order; durability for FLUSH/FUA (group
 * commit behind a deadline, cache device flushes); reclaim of ring
 * positions once written back, with a second chance for hot clean blocks.
 * Its state (struct bc_seglog) is touched only by log/segment.c,
 * log/durable.c, log/reclaim.c and log/recovery.c.
 */
#ifndef BC_LOG_SEGLOG_H
#define BC_LOG_SEGLOG_H

#include <stdbool.h>
#include <stdint.h>

#include "blkcache/device.h"
#include "blkcache/loop.h"
#include "engine/request.h"
#include "format/format.h"
#include "log/slotmap.h"

struct bc_engine;

enum bc_seg_state {
	BC_SEG_FREE = 0,
	BC_SEG_OPEN,     /* filling in a RAM buffer */
	BC_SEG_WRITING,  /* sealed, write to the cache device in flight */
	BC_SEG_ONDISK,   /* written; data read from the cache device */
	BC_SEG_RETIRED,  /* reclaimed, index entries dropped; device reads of it
			  * still in flight keep the position from reuse */
};

struct bc_buf {
	void *mem;        /* segment_size bytes, laid out as on disk */
	unsigned idx;     /* in bufs_all (and in the staging file) */
	uint32_t *crc;    /* the data CRCs of its entries, once computed (not direct) */
	struct bc_buf *next;
};

struct bc_seg {
	uint64_t seq;
	uint64_t epoch;       /* engine epoch when it was opened (see bc_seglog.epoch) */
	uint64_t last_epoch;  /* epoch of its newest round (persistent memory: a segment
			       * spans FLUSHes, its round slots say where; else = epoch) */
	uint32_t nr_entries;
	uint32_t readers;     /* in-flight device reads of this segment's data */
	uint32_t frozen;      /* entries handed to a write: never changed in place again */
	uint32_t persisted;   /* entries on the cache device by writes of the open segment */
	uint32_t round_slot;  /* slot of its newest round block (written acks) */
	uint32_t open_id;     /* this opening of it: in its header and round blocks */
	uint32_t durable_ent; /* flush_rounds: entries made durable by rounds and a flush */
	uint8_t state;        /* enum bc_seg_state */
	uint8_t retries;      /* failed write attempts */
	bool seal_waiting;    /* sealed while a write of it as the open segment ran */
	uint64_t carry_to;    /* carried: may go once segments <= this are durable */
	struct bc_buf *buf;   /* while OPEN or WRITING */
	struct bc_dev_io io;  /* the segment write */
	struct bc_completion none_done; /* format v4: the seal had nothing to write */
};

struct bc_seglog {
	struct bc_seg *segs;        /* per ring position */
	bc_slot_t *slots;           /* nseg * data_blocks: the slot map (log/slotmap.h) */
	uint32_t *crcs;             /* --data-crc: every slot's data CRC, for reads; or NULL */
	struct bc_seg *open;        /* segment being filled, or NULL */
	uint64_t head_seq;          /* next sequence to open */
	uint64_t tail_seq;          /* oldest sequence still occupying its position */
	uint64_t written_seq;       /* all <= this written to the cache device */
	uint64_t durable_seq;       /* all <= this written and flushed */
	uint64_t wb_seq;            /* written back, persisted in the superblock */
	uint64_t epoch;             /* bumped by every client FLUSH: writes of different
				     * epochs are written back in order, never merged */
	uint32_t next_open_id;      /* for the next segment opened (random start, never 0) */
	struct bc_buf *free_bufs;
	unsigned nbufs, free_nbufs;
	struct bc_buf *bufs_all;    /* nbufs of them, or (direct) one per ring position */
	const struct bc_pmem_map *pm; /* direct: the mapping (stores: log/store.c) */
	void *scratch;              /* direct: a header or round block is built here first */
	bool direct;                /* persistent memory, format v4: each segment's buffer is
				     * its place in the mapping; written in rounds to its end
				     * (BC_SEG_ROUNDS_FINAL); a FLUSH is a round and a flush */
	bool flush_rounds;          /* format v4 without staged acks: segments written in rounds
				     * to their end (BC_SEG_ROUNDS_FINAL), their header never
				     * rewritten; a FLUSH writes the open segment's new
				     * entries as a round and flushes, without sealing it:
				     * one segment spans FLUSH epochs */
	struct bc_staging *stage;   /* staged acks: the buffers' file (log/staging.c), or NULL */

	/* durability (durable.c) */
	struct bc_reqq flushq;      /* waiting for durable_seq >= rq->flush_seq */
	struct bc_reqq writtenq;    /* waiting for written_seq >= rq->flush_seq (written_acks) */
	struct bc_completion written_seal; /* seal for writtenq at the end of the iteration */
	bool written_seal_pending;
	struct bc_timer flush_timer;    /* upper bound on a FLUSH/FUA ack */
	struct bc_completion seal_comp; /* group-commit seal at end of iteration */
	bool seal_pending;
	unsigned nr_writing;            /* segments with a write in flight */
	bool cache_flush_busy;
	uint64_t cache_flush_target;
	uint32_t cache_flush_ent;   /* flush_rounds: entries of segment target + 1 it covers */
	struct bc_dev_io cache_flush_io;
	uint64_t deadline_ns;

	/* rounds: writes of the open segment without sealing it (openwrite.c) */
	struct bc_seg *ow_seg;      /* segment of the rounds in flight, or NULL */
	struct bc_round *ow_rounds; /* BC_OW_ROUNDS of them */
	unsigned ow_head, ow_count; /* in flight, oldest first (a ring) */
	bool ow_broken;             /* a round failed: later ones count for nothing */
	bool failed;            /* cache device write failed for good: FLUSH fails */

	/* reclaim (reclaim.c) */
	bool reclaim_busy;
	void *reclaim_buf;          /* segment being reclaimed, for re-append */
	uint32_t *reclaim_hot;      /* its hot entries */
	struct bc_dev_io reclaim_io;

	/* carry-forward (carry.c) */
	uint64_t carry_last;        /* segments wb_seq+1 .. this are carried (not committed) */
	uint64_t carry_seq;         /* being read for a carry (carry_ios), or 0 */
	uint64_t carry_commit_seq;  /* written_back_seq of the superblock write in flight */
	uint64_t want_seq;          /* durable.c: flush once segments <= this are written */
	uint64_t carry_stalled;     /* written_seq + 1 when a carry found no room */
	struct bc_dev_io *carry_ios; /* reads of a carry (data_blocks of them) */
	unsigned carry_pending;     /* of them in flight */
	int carry_err;
	bool carry_sb_busy;
	bool carry_off;             /* recording a carry failed: writeback only */
};

/* segment.c */
int bc_seglog_init(struct bc_engine *e, unsigned nbufs);
void bc_seglog_destroy(struct bc_engine *e);
/* Make sure an open segment with a free entry exists; false: caller waits. */
bool bc_seglog_reserve(struct bc_engine *e);
/* Take the next entry of the open segment (after a successful reserve):
 * records @ent in the slot map and returns its slot. */
uint32_t bc_seglog_take_slot(struct bc_engine *e, const struct bc_seg_entry *ent);
/* Give back the entry bc_seglog_take_slot() just returned (it was not used). */
void bc_seglog_untake_slot(struct bc_engine *e, uint32_t slot);
/* May the slot holding the newest copy of a block be overwritten in place?
 * (In the open segment and not yet handed to a device write.)  Then update
 * its entry's mask and dirty flag. */
bool bc_seglog_slot_mutable(const struct bc_engine *e, uint32_t slot);
void bc_seglog_update_entry(struct bc_engine *e, uint32_t slot, uint8_t mask, bool dirty);
void bc_seglog_set_nblocks(struct bc_engine *e, uint32_t slot, uint16_t nblocks);
void bc_seglog_seal(struct bc_engine *e);
/* Fill @s's header in its buffer for its first @n entries, computing the data
 * CRCs of the entries not yet frozen; they are frozen from now on. */
void bc_seglog_build_hdr(struct bc_engine *e, struct bc_seg *s, uint32_t n);
/* Compute the data CRC of entry @i of the buffered segment @s (0 for an
 * entry without data), keep it while the segment is buffered (and with
 * --data-crc for good) and return it. */
uint32_t bc_seglog_compute_crc(struct bc_engine *e, struct bc_seg *s, uint32_t i);
/* Write @s, sealed by bc_seglog_seal(), to the cache device. */
void bc_seglog_seal_write(struct bc_engine *e, struct bc_seg *s);
uint64_t bc_seglog_last_seq(const struct bc_engine *e);   /* newest seq holding acked data */
/* Append a copy of @block (promotion, re-append: clean; carry-forward:
 * dirty); false if no room. */
bool bc_seglog_append(struct bc_engine *e, uint64_t block, const void *data, uint8_t mask, bool dirty);
uint64_t bc_seglog_free_positions(const struct bc_engine *e);
bool bc_seglog_idle(const struct bc_engine *e);
bool bc_seglog_failed(const struct bc_engine *e);
/* Does a FLUSH leave the open segment open (format v4, log.flush_rounds)? */
bool bc_seglog_flush_rounds(const struct bc_engine *e);
uint64_t bc_seglog_wb_seq(const struct bc_engine *e);     /* written back up to here */
uint64_t bc_seglog_written_seq(const struct bc_engine *e); /* on the cache device up to here */
/* Free positions are down to the reserve while segments wait for writeback. */
bool bc_seglog_short_of_space(const struct bc_engine *e);
/* Read-only views for writeback and the read path. */
const struct bc_seg *bc_seglog_seg(const struct bc_engine *e, uint64_t seq);
/* A slot's entry (data CRC 0: see bc_seglog_ram_crc, bc_seglog_image_hdr). */
struct bc_seg_entry bc_seglog_entry(const struct bc_engine *e, uint32_t slot);
/* --data-crc: the data CRC of a written slot. */
uint32_t bc_seglog_ram_crc(const struct bc_engine *e, uint32_t slot);
/* The header of the segment at @pos in @img, a copy of the segment read
 * from the cache device (its header and round blocks at least), checked
 * and extended by its round blocks (in place); NULL if it is not valid.
 * Its entries hold the data CRCs. */
const struct bc_seg_hdr *bc_seglog_image_hdr(struct bc_engine *e, uint32_t pos, void *img);
/* The data CRC of entry @i of @pos from a header bc_seglog_image_hdr
 * returned (NULL: none); false if it does not describe the slot. */
bool bc_seglog_image_crc(const struct bc_engine *e, const struct bc_seg_hdr *hdr, uint32_t pos,
			 uint32_t i, uint32_t *crc);
/* The slot map, for the index (it resolves slots to blocks through it). */
bc_slot_t *const *bc_seglog_slots(const struct bc_engine *e);
/* The log's part of the engine's counters (positions, segments used). */
void bc_seglog_stats(const struct bc_engine *e, struct bc_engine_stats *st);
/* A client FLUSH: later writes belong to a new epoch. */
void bc_seglog_new_epoch(struct bc_engine *e);
uint64_t bc_seglog_epoch(const struct bc_engine *e);
/* Shards agree on epoch numbers: raise this one's to @epoch (at open). */
void bc_seglog_raise_epoch(struct bc_engine *e, uint64_t epoch);
/* The oldest epoch with segments not written back (the current one if
 * every segment is): everything older is on the origin. */
uint64_t bc_seglog_pending_epoch(const struct bc_engine *e);
/* The first epoch after @after that @s holds entries of (@s->epoch if it
 * starts later; @s spans epochs only on persistent memory). */
uint64_t bc_seglog_next_epoch(const struct bc_engine *e, const struct bc_seg *s, uint64_t after);
/* The epoch (after @s->epoch) of entry @i's round: of the last round slot
 * before @i. */
uint64_t bc_seglog_round_delta_at(const struct bc_engine *e, const struct bc_seg *s, uint32_t i);
/* Pin segment @pos against reuse while a device read of its data runs. */
void bc_seglog_pin(struct bc_engine *e, uint32_t pos);
void bc_seglog_unpin(struct bc_engine *e, uint32_t pos);
/* Writeback made everything <= @seq durable on the origin. */
void bc_seglog_written_back(struct bc_engine *e, uint64_t seq);

/* store.c: stores into segment buffers (the mapping on persistent memory) */
void bc_seglog_store(const struct bc_engine *e, void *dst, const void *src, size_t len);
void bc_seglog_zero(const struct bc_engine *e, void *dst, size_t len);
/* The sectors in @mask of one block, from @src to @dst (one store per run). */
void bc_seglog_store_sectors(const struct bc_engine *e, void *dst, const void *src, uint8_t mask);

/* durable.c */
void bc_seglog_durable_init(struct bc_engine *e);
void bc_seglog_durable_destroy(struct bc_engine *e);
void bc_seglog_wait_durable(struct bc_engine *e, struct bc_request *r, uint64_t seq);
/* Complete @r once everything <= @seq is written to the cache device. */
void bc_seglog_wait_written(struct bc_engine *e, struct bc_request *r, uint64_t seq);
/* Segment writes advanced written_seq (or failed for good): complete the
 * requests waiting for it. */
void bc_seglog_written_progress(struct bc_engine *e);
/* Start writing the open segment if writes wait for entries in it. */
void bc_seglog_written_kick(struct bc_engine *e);
void bc_seglog_flush_kick(struct bc_engine *e);           /* start a due cache flush */
void bc_seglog_set_deadline(struct bc_engine *e, uint64_t ns);
bool bc_seglog_durable_idle(const struct bc_engine *e);
/* Make segments <= @seq durable without a request waiting for it (a flush
 * once they are written; nothing is sealed for it). */
void bc_seglog_durable_want(struct bc_engine *e, uint64_t seq);

/* openwrite.c: written acks without sealing a mostly empty segment */
#define BC_OW_ROUNDS 16
struct bc_round {
	struct bc_dev_io io;
	uint32_t target;    /* entries persistent once it and all before it are done */
	bool done;
	uint8_t retries;    /* failed attempts (format v4 on a disk: retried in place) */
	int error;
};
int bc_seglog_openwrite_init(struct bc_engine *e);
void bc_seglog_openwrite_destroy(struct bc_engine *e);
/* Write the open segment's entries not yet on the cache device (header and
 * new data blocks); it stays open and takes more entries. */
void bc_seglog_write_open(struct bc_engine *e);
/* Fill the round blocks of @s's entries @first..@n-1 (the first is a round
 * slot) and their data CRCs; they are frozen from now on. */
void bc_seglog_fill_rounds(struct bc_engine *e, struct bc_seg *s, uint32_t first, uint32_t n);
/* Are the first @nent entries of segment @seq on the cache device, and every
 * segment before it? */
bool bc_seglog_entries_written(const struct bc_engine *e, uint64_t seq, uint32_t nent);
bool bc_seglog_openwrite_idle(const struct bc_engine *e);

/* reclaim.c */
int bc_seglog_reclaim_init(struct bc_engine *e);
void bc_seglog_reclaim_destroy(struct bc_engine *e);
void bc_seglog_reclaim(struct bc_engine *e);              /* free positions <= wb_seq, lazily */
bool bc_seglog_reclaim_idle(const struct bc_engine *e);

/* carry.c: reclaim of dirty segments by re-appending their live blocks */
void bc_seglog_carry(struct bc_engine *e);        /* the tail is dirty: carry, commit */
void bc_seglog_carry_commit(struct bc_engine *e); /* durable_seq moved: commit carried ones */
/* A writeback batch starts: false while a carry runs (it kicks writeback
 * when done); carried segments not yet committed go back to writeback. */
bool bc_seglog_carry_yield(struct bc_engine *e);
bool bc_seglog_carry_idle(const struct bc_engine *e);
int bc_seglog_carry_init(struct bc_engine *e);
void bc_seglog_carry_destroy(struct bc_engine *e);
/* Carried segments wait for their commit, or a carry's read or superblock
 * write is in flight: positions are about to be freed. */
bool bc_seglog_carry_busy(const struct bc_engine *e);
/* What only writeback can free, in segments (the watermarks' measure). */
uint64_t bc_seglog_backlog(const struct bc_engine *e);

/* recovery.c */
int bc_recover(struct bc_engine *e, char *why, size_t whylen);

#endif
