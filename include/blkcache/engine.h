/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The blkcache engine: a log-structured write-back cache of an origin device
 * on a cache device.  It runs on a bc_loop and is exported as a bc_target.
 */
#ifndef BLKCACHE_ENGINE_H
#define BLKCACHE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blkcache/device.h"
#include "blkcache/loop.h"
#include "blkcache/target.h"
#include "blkcache/version.h"

struct bc_engine;

struct bc_format_config {
	const char *cache_path;
	const char *origin_path;
	uint32_t segment_size;  /* bytes; 0 = 1 MiB default */
	bool force;             /* overwrite an existing blkcache format / origin label, format
				 * a cache device that holds a filesystem or other signature */
	bool data_crc;          /* verify every cached block's CRC32C when it is read */
	bool origin_label;      /* label the origin's last 4 KiB (export 4 KiB less) instead of
				 * caching it in place, untouched (the default) */
	const struct bc_dev_registry *devices; /* drivers by path; NULL = built-in only */
	/* Format v3 (several origins per cache): */
	const char *name;       /* the origin's name, its NBD export (NULL: "blkcache") */
	uint64_t size;          /* bytes of the cache for the origin; 0: format: all of it,
				 * origin add: a quarter (or what is free, if less) */
	uint32_t version;       /* on-disk format to write: 0 = current (4: the log writes
				 * segments in rounds to their end, a FLUSH is a round;
				 * 5 with shards); 3 (a FLUSH seals a segment) or 2 (one
				 * origin per cache) for an older blkcache */
	uint32_t size_percent;  /* 1..100: the origin's share in percent (overrides size) */
	/* Format v5: the origin as @shards engines (2..16; 0 or 1: one), each
	 * with an equal part of its share of the ring, origin blocks routed
	 * by stripes of @stripe_blocks 4 KiB blocks (a power of two; 0: 256,
	 * 1 MiB) -- docs/shards.md.  bc_shards_open_cache() opens them. */
	uint32_t shards;
	uint32_t stripe_blocks;
	uint64_t reserved[4];   /* room for later options: leave zero */
};

/* Write a new, empty cache format on the cache device, for the origin if
 * one is given (which is not written to, unless @origin_label).  Without
 * an origin the cache serves none until 'origin add' / attach.
 * On failure returns -errno and, if @why is given, an actionable message. */
int bc_cache_format(const struct bc_format_config *cfg, char *why, size_t whylen);
/* Add an origin (cfg->origin_path, cfg->name, cfg->size...) to a format v3
 * cache that is not being served.  @why says what was done, or why not. */
int bc_origin_add(const struct bc_format_config *cfg, char *why, size_t whylen);

struct bc_engine_config {
	const char *cache_path;
	const char *origin_path;
	unsigned nr_buffers;         /* RAM segment buffers; 0 = default (8) */
	uint64_t flush_deadline_us;  /* FLUSH/FUA batching deadline; 0 = default (2000) */
	bool origin_moved;           /* accept an origin of the right size whose identity (path,
				      * serial) differs from the recorded one, and record it */
	const struct bc_dev_registry *devices; /* drivers by path; NULL = built-in only */
	/* Acknowledge a write only once it is written to the cache device, not
	 * when it is in a RAM segment buffer: a server killed and restarted
	 * while a filesystem stays mounted on its device (ublk user recovery)
	 * then loses nothing it acknowledged.  FLUSH/FUA are unchanged. */
	bool written_acks;
	/* Staged acks: a directory on tmpfs (e.g. BC_STAGING_DIR_DEFAULT) for
	 * the RAM segment buffers, kept in a file there (blkcache-UUID.stage)
	 * mapped shared.  A write is acknowledged once it is in a buffer, as
	 * without written acks, and still survives a kill of the server: the
	 * next open replays what the file holds.  (A host crash loses the file,
	 * like any volatile write cache: FLUSH/FUA are unchanged.)  Overrides
	 * written_acks.  Every open replays a file left in this directory or in
	 * BC_STAGING_DIR_DEFAULT, whatever this option says. */
	const char *staging_dir;
	/* Format v3: which origin of the cache this engine serves, by name;
	 * NULL: the cache's only origin (its origin given by origin_path, if
	 * it has several).  Format v1/v2 caches have one, unnamed. */
	const char *origin_name;
	/* The origin is open already in this process (a shard set's shards
	 * after the first): take no lock on it; the first handle holds it. */
	bool origin_shared;
	/* Format v5, a sharded origin (bc_shards_open_cache): which shard of
	 * it this engine serves; the cache device is open already in this
	 * process (shards after the first take no lock on it either). */
	bool shard_member;
	uint8_t shard;
	/* The cache device is open already in this process (a cache set
	 * holds it): take no lock on it. */
	bool cache_shared;
	uint8_t pad0[4];
	uint64_t reserved[5];        /* room for later options: leave zero */
};
#define BC_STAGING_DIR_DEFAULT "/dev/shm"
/* Can @dir hold a staging file (a writable tmpfs or ramfs)?  0, or -errno
 * with @why. */
int bc_staging_dir_check(const char *dir, char *why, size_t whylen);

/* Open a formatted cache: validate, recover, and be ready to serve.  The
 * devices are opened by path (cfg->cache_path, cfg->origin_path) and closed
 * by bc_engine_close(). */
int bc_engine_open(struct bc_engine **out, struct bc_loop *loop,
		   const struct bc_engine_config *cfg, char *why, size_t whylen);
/* The same on devices the caller opened (on @loop; any driver, see
 * blkcache/device.h); the paths in @cfg are ignored.  The devices stay the
 * caller's: close them after bc_engine_close(). */
int bc_engine_open_devs(struct bc_engine **out, struct bc_loop *loop, struct bc_dev *cache,
			struct bc_dev *origin, const struct bc_engine_config *cfg, char *why,
			size_t whylen);
const struct bc_target *bc_engine_target(struct bc_engine *e);
/* Clean shutdown: write every buffered segment, flush, mark the superblock
 * clean, free.  Runs the loop until done.  Returns 0 or -errno. */
int bc_engine_close(struct bc_engine *e);

/* Cache modes (switchable while serving). */
enum bc_mode {
	BC_CACHE_WRITEBACK = 0,    /* writes absorbed in the log, written back later */
	BC_CACHE_WRITETHROUGH = 1, /* writes go to the origin and into the cache as clean */
	BC_CACHE_WRITEAROUND = 2,  /* writes go to the origin; cached copies invalidated */
	BC_CACHE_PASSTHROUGH = 3,  /* no caching; dirty data still being drained stays readable */
};
const char *bc_mode_name(enum bc_mode m);
int bc_mode_parse(const char *s, enum bc_mode *out); /* 0 or -EINVAL */
enum bc_mode bc_engine_mode(const struct bc_engine *e);
/* Switch mode; dirty blocks stay safe (they are drained by writeback). */
int bc_engine_set_mode(struct bc_engine *e, enum bc_mode m, char *why, size_t whylen);

/* Live tunables, by name.  Values are unsigned integers in the unit given. */
struct bc_tunable_info {
	const char *name;
	const char *unit;   /* "segments", "percent", "ms", "us", "bytes", "bytes/s", "bool", "count" */
	uint64_t min, max;
	uint64_t def;
	const char *help;
};
unsigned bc_tunable_count(void);
const struct bc_tunable_info *bc_tunable_info(unsigned i);
/* 0, -ENOENT (unknown name) */
int bc_engine_get(struct bc_engine *e, const char *name, uint64_t *value);
/* 0, -ENOENT (unknown name), -ERANGE (out of range; @why says the range or
 * the conflicting tunable) */
int bc_engine_set(struct bc_engine *e, const char *name, uint64_t value, char *why, size_t whylen);

/*
 * Drain: write back every dirty block and flush the origin; @done runs on
 * the loop with 0 once the origin alone holds all data acknowledged before
 * the call (and writes that arrive meanwhile, if they stop), or -errno when
 * it cannot complete (-ECANCELED: the engine closes; -EIO: the cache device
 * failed, or the origin's final flush did).  Failing origin writes do not
 * end the drain: writeback retries them with backoff and the drain waits; a
 * host that wants a limit watches writeback_failing / writeback_last_errno.
 * Progress: bc_engine_get_stats() dirty_blocks / writeback_bytes.
 */
typedef void (*bc_engine_done_fn)(void *arg, int result);
int bc_engine_drain(struct bc_engine *e, bc_engine_done_fn done, void *arg);
/* Detach: drain, then switch to passthrough and mark the cache device
 * detached (serve refuses it afterwards; the origin is complete).  The
 * caller shuts the server down after @done. */
int bc_engine_detach(struct bc_engine *e, bc_engine_done_fn done, void *arg);

/* When a write is acknowledged (bc_engine_config: written_acks, staging_dir). */
enum bc_acks {
	BC_ACKS_BUFFERED = 0, /* in a RAM segment buffer: a kill of the server loses it */
	BC_ACKS_WRITTEN = 1,  /* written to the cache device */
	BC_ACKS_STAGED = 2,   /* in a buffer in the staging file: survives a kill */
};

struct bc_engine_stats {
	uint64_t export_size;
	uint64_t reads, writes, flushes, discards, write_zeroes, fua_writes;
	uint64_t read_hit_blocks, read_partial_blocks, read_miss_blocks;
	uint64_t write_blocks;           /* blocks absorbed into the log */
	uint64_t write_inplace_blocks;   /* absorbed by the open segment buffer */
	uint64_t merge_reads;            /* partial writes that read old sectors */
	uint64_t cached_blocks, dirty_blocks;
	uint64_t segments_total, segments_used, segments_written, segments_partial;
	uint64_t head_seq, written_back_seq, durable_seq;
	uint64_t cache_full_waits;          /* a write waited: no free ring position */
	uint64_t writeback_blocks, writeback_ios, writeback_bytes, writeback_batches;
	uint64_t writeback_errors;
	uint64_t writeback_fills;           /* gap fills: origin read + one write of the span */
	uint64_t writeback_reads_saved;     /* passes over a segment an earlier batch read */
	uint64_t writeback_failing;         /* consecutive failed batches; 0 = healthy */
	uint64_t writeback_retry_ms;        /* while failing: delay before the next attempt */
	uint64_t writeback_last_errno;      /* errno of the last failure (0: none yet) */
	uint64_t write_timeouts;            /* writes failed after write_timeout_ms without space */
	uint64_t data_crc_errors;           /* cached blocks that failed their data checksum */
	uint32_t data_crc;                  /* reads verify data checksums (format --data-crc) */
	uint32_t degraded;                  /* cache device failing: nothing new is cached */
	uint64_t cache_errors;              /* failed cache device IOs */
	uint64_t cache_flushes, origin_flushes;
	uint64_t recovered_segments, recovery_ms;
	uint64_t io_errors;
	/* per class, in blocks: {read,write} x {hit,miss} x {full,partial} block */
	uint64_t read_hit_full, read_hit_partial, read_miss_full, read_miss_partial;
	uint64_t write_hit_full, write_hit_partial, write_miss_full, write_miss_partial;
	uint64_t bypass_sequential_bytes;   /* read misses not promoted: sequential stream */
	uint64_t bypass_nhit_blocks;        /* read misses not promoted: missed too few times */
	uint64_t promoted_blocks;           /* read misses inserted as clean blocks */
	uint64_t promote_dropped_blocks;    /* read misses not promoted: no log space (the log
					     * was full, or writes were waiting for space) */
	uint64_t reclaimed_segments;        /* ring positions reused */
	uint64_t reappended_blocks;         /* hot clean blocks given a second chance */
	uint64_t writethrough_blocks, writearound_blocks, passthrough_blocks;
	uint64_t invalidated_blocks;        /* cached copies dropped by writearound/passthrough */
	uint64_t drains;                    /* completed bc_engine_drain() calls */
	uint32_t mode;                      /* enum bc_mode */
	uint32_t writeback_paused;
	uint32_t detached;
	uint64_t open_segment_writes;       /* written acks: writes of the open segment's new
					     * entries that left it open */
	uint32_t acks;                      /* enum bc_acks: when a write is acknowledged */
	uint32_t reserved0;
	uint64_t staged_replayed;           /* entries replayed at open from a staging file
					     * a killed server left */
	/* Queue depth: the devices' queues (the cache device's is shared by
	 * the origins of a cache set), the engine's loop, and writes that
	 * waited for log space before they could be absorbed. */
	struct bc_dev_qstats cache_queue, origin_queue;
	struct bc_loop_stats loop;
	uint64_t write_waited;              /* writes that waited in the queue */
	uint64_t write_wait_ns;             /* their total time in it */
	uint64_t write_wait_max_ns;         /* the longest */
	uint64_t buffer_waits;              /* a write waited: every segment buffer was
					     * being written (the cache device is busy) */
	uint64_t carried_segments;          /* dirty segments reclaimed by carry-forward */
	uint64_t carried_blocks;            /* their live dirty blocks re-appended */
	uint64_t writeback_gate_waits;      /* a shard's writeback waited for the other
					     * shards to finish an older FLUSH epoch */
	/* New counters are added here, at the end, never in between. */
};
/* Fill the first @size bytes of @st (a program built against an older,
 * shorter struct gets the fields it knows).  Returns the bytes filled. */
size_t bc_engine_stats_get(struct bc_engine *e, struct bc_engine_stats *st, size_t size);
/* The caller's own struct size (an inline function, so @st is type-checked:
 * a void pointer would silently make it 1 byte). */
static inline void bc_engine_get_stats(struct bc_engine *e, struct bc_engine_stats *st)
{
	(void)bc_engine_stats_get(e, st, sizeof(*st));
}

#endif
