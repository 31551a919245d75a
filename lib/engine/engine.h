/* SPDX-License-Identifier: BSD-3-Clause */
/* Engine internals shared by the request path, log, writeback and recovery. */
#ifndef BC_ENGINE_INTERNAL_H
#define BC_ENGINE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "blkcache/engine.h"
#include "blkcache/log.h"
#include "dev/device.h"
#include "format/format.h"
#include "engine/drain.h"
#include "engine/flush.h"
#include "engine/mode.h"
#include "engine/read.h"
#include "engine/request.h"
#include "engine/write.h"
#include "writeback/gate.h"
#include "log/index.h"
#include "log/seglog.h"
#include "policy/promote.h"
#include "writeback/writeback.h"


struct bc_tunables {
	uint64_t writeback_batch;
	uint64_t writeback_inflight;
	uint64_t dirty_high;
	uint64_t dirty_low;
	uint64_t writeback_idle_ms;
	uint64_t writeback_rate;
	uint64_t writeback_paused;
	uint64_t flush_deadline_us;
	uint64_t reappend_percent;
	uint64_t writeback_ordered;
	uint64_t write_timeout_ms;
	uint64_t writeback_gap;
	uint64_t carry_percent;
};

/*
 * The engine.  Each subsystem owns its part: only its own files write it,
 * the others ask through its functions (engine/write.h, read.h, flush.h,
 * drain.h, mode.h; log/seglog.h; writeback/writeback.h; policy/promote.h).
 * The fields at the top (devices, geometry, superblock image, index,
 * tunables, counters, failure state) belong to the engine core
 * (engine/engine.c; the superblock image also to format/superblock.c).
 */
struct bc_wb_gate;

struct bc_engine {
	struct bc_loop *loop;
	struct bc_dev *cache, *origin;
	bool owns_devs;             /* opened by path: closed with the engine */
	struct bc_target target;
	struct bc_engine_config cfg;

	/* geometry and persistent state */
	struct bc_sb_disk sb;       /* last written superblock contents: format v1/v2 the
				     * cache's superblock, v3 its origin's record */
	uint64_t sb_copy_off[2];    /* where its two copies live on the cache device */
	uint32_t cache_version;     /* the cache superblock's format version */
	const struct bc_otable *open_table; /* v3, while opening: the table as the cache set
					     * read it (NULL: read it) */
	struct bc_sb_disk *sb_buf;  /* aligned write buffer */
	uint32_t nseg, hdr_blocks, data_blocks, seg_size;
	uint64_t export_blocks;
	struct bc_index index;
	uint64_t nr_dirty;          /* dirty blocks in the index (bc_ix_set/drop) */
	struct bc_tunables tun;
	enum bc_mode mode;          /* engine/mode.c */
	struct bc_completion start_comp; /* first writeback kick, from the loop */

	/* the subsystems */
	struct bc_seglog log;       /* log/ */
	struct bc_wpath wr;         /* engine/write.c */
	struct bc_rpath rd;         /* engine/read.c */
	struct bc_oflush oflush;    /* engine/flush.c */
	struct bc_drain drain;      /* engine/drain.c */
	struct bc_wb *wb;           /* writeback/ (private) */
	const struct bc_wb_gate *gate; /* a shard's: writeback waits for the others (gate.c) */
	struct bc_promote promote;  /* policy/ (private context) */

	/* shutdown / failure */
	bool closing;
	bool degraded;          /* the cache device keeps failing: cache nothing new */

	struct bc_engine_stats st;
};

static inline uint32_t seg_pos(const struct bc_engine *e, uint64_t seq)
{
	return (uint32_t)(seq % e->nseg);
}
static inline uint32_t slot_pos(const struct bc_engine *e, uint32_t slot)
{
	return slot / e->data_blocks;
}
static inline uint64_t seg_offset(const struct bc_engine *e, uint32_t pos)
{
	return e->sb.ring_offset + (uint64_t)pos * e->seg_size;
}
static inline uint64_t slot_offset(const struct bc_engine *e, uint32_t slot)
{
	return seg_offset(e, slot / e->data_blocks) + (uint64_t)(e->hdr_blocks + slot % e->data_blocks) * BC_BLOCK_SIZE;
}
/* RAM address of a slot's data if its segment is still buffered, else NULL. */
static inline void *slot_ram(const struct bc_engine *e, uint32_t slot)
{
	const struct bc_seg *s = &e->log.segs[slot / e->data_blocks];

	if (!s->buf)
		return NULL;
	return (char *)s->buf->mem + (size_t)(e->hdr_blocks + slot % e->data_blocks) * BC_BLOCK_SIZE;
}

/* Copy the sectors in @mask of one block from @src to @dst. */
static inline void bc_copy_sectors(void *dst, const void *src, uint8_t mask)
{
	unsigned s;

	for (s = 0; s < BC_SECTORS_PER_BLOCK; s++)
		if (mask & (1u << s))
			memcpy((char *)dst + s * BC_SECTOR_SIZE, (const char *)src + s * BC_SECTOR_SIZE,
			       BC_SECTOR_SIZE);
}

/* index bookkeeping that keeps nr_dirty right (engine.c) */
void bc_ix_set(struct bc_engine *e, struct bc_ix_ent *ent, uint32_t slot, uint8_t flags);
void bc_ix_drop(struct bc_engine *e, struct bc_ix_ent *ent);

/* superblock.c: persisting the superblock image e->sb */
int bc_sb_write_sync(struct bc_engine *e);
void bc_sb_write_async(struct bc_engine *e, void (*done)(struct bc_engine *e, int res));
void bc_sb_set_flags(struct bc_engine *e, uint32_t set, uint32_t clear); /* in the image */
void bc_sb_set_mode(struct bc_engine *e, uint32_t mode);
void bc_sb_set_written_back(struct bc_engine *e, uint64_t seq);
/* Persistent memory: segment @seq (written_back_seq + 1) is on the origin
 * up to its entries of @epoch (bc_sb_disk.written_back_epoch). */
void bc_sb_set_written_back_epoch(struct bc_engine *e, uint64_t seq, uint64_t epoch);
/* Segment @seq's entries up to this epoch are on the origin (0: none). */
uint64_t bc_sb_wb_epoch(const struct bc_engine *e, uint64_t seq);

void bc_engine_free(struct bc_engine *e);
struct bc_otable;
/* bc_engine_open_devs with the origin table of a v3 cache already read
 * (@t, or NULL): the cache set opens its origins so. */
int bc_engine_open_table(struct bc_engine **out, struct bc_loop *loop, struct bc_dev *cache,
			 struct bc_dev *origin, const struct bc_engine_config *cfg,
			 const struct bc_otable *t, char *why, size_t whylen);
/* Log on the engine's loop, naming its origin when the cache has several. */
void bc_elog(struct bc_engine *e, enum bc_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A cache device IO failed: count it; repeated failures (or @fatal) switch
 * the engine to degraded mode. */
void bc_cache_error(struct bc_engine *e, bool fatal);
/* Counters several subsystems add to. */
void bc_note_cache_flush(struct bc_engine *e);
void bc_note_origin_flush(struct bc_engine *e);
void bc_note_data_crc_error(struct bc_engine *e);
/* An origin IO failed. */
void bc_origin_error(struct bc_engine *e);
#define BC_DEGRADE_ERRORS 3

/* tunables.c */
void bc_tunables_defaults(struct bc_tunables *tun);

#endif
