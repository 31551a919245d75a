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

#include "blkcache/loop.h"
#include "blkcache/target.h"

struct bc_engine;

struct bc_format_config {
	const char *cache_path;
	const char *origin_path;
	uint32_t segment_size;  /* bytes; 0 = 1 MiB default */
	bool force;             /* overwrite an existing blkcache format / origin label */
};

/* Write a new, empty cache format on the cache device and label the origin.
 * On failure returns -errno and, if @why is given, an actionable message. */
int bc_cache_format(const struct bc_format_config *cfg, char *why, size_t whylen);

struct bc_engine_config {
	const char *cache_path;
	const char *origin_path;
	unsigned nr_buffers;         /* RAM segment buffers; 0 = default (8) */
	uint64_t flush_deadline_us;  /* FLUSH/FUA batching deadline; 0 = default (2000) */
};

/* Open a formatted cache: validate, recover, and be ready to serve. */
int bc_engine_open(struct bc_engine **out, struct bc_loop *loop,
		   const struct bc_engine_config *cfg, char *why, size_t whylen);
const struct bc_target *bc_engine_target(struct bc_engine *e);
/* Clean shutdown: write every buffered segment, flush, mark the superblock
 * clean, free.  Runs the loop until done.  Returns 0 or -errno. */
int bc_engine_close(struct bc_engine *e);

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
	uint64_t cache_full_waits;
	uint64_t writeback_blocks, writeback_ios, writeback_bytes, writeback_batches;
	uint64_t writeback_errors;
	uint64_t cache_flushes, origin_flushes;
	uint64_t recovered_segments, recovery_ms;
	uint64_t io_errors;
};
void bc_engine_get_stats(struct bc_engine *e, struct bc_engine_stats *st);

#endif
