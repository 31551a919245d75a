/* SPDX-License-Identifier: BSD-3-Clause */
/* The metrics page: Prometheus text exposition format, version 0.0.4. */
#include <string.h>

#include "metrics.h"
#include "units.h"

static void family(struct bc_tbuf *b, const char *name, const char *type, const char *help)
{
	bc_tbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample(struct bc_tbuf *b, const char *name, const char *labels, uint64_t v)
{
	bc_tbuf_printf(b, "%s%s%s%s %llu\n", name, labels ? "{" : "", labels ? labels : "",
		       labels ? "}" : "", (unsigned long long)v);
}

/* One family with one unlabelled sample. */
static void metric(struct bc_tbuf *b, const char *name, const char *type, const char *help,
		   uint64_t v)
{
	family(b, name, type, help);
	sample(b, name, NULL, v);
}

/* A label value: backslash, double quote and newline escaped. */
static void label_value(struct bc_tbuf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			bc_tbuf_printf(b, "\\%c", *s);
		else if (*s == '\n')
			bc_tbuf_puts(b, "\\n");
		else
			bc_tbuf_add(b, s, 1);
	}
}

static void render_classes(struct bc_tbuf *b, const struct bc_engine_stats *s)
{
	static const char *const n = "blkcache_class_blocks_total";

	family(b, n, "counter", "Blocks by request class: op (read, write) x result (hit, miss) "
	       "x extent (full, partial block).");
	sample(b, n, "op=\"read\",result=\"hit\",extent=\"full\"", s->read_hit_full);
	sample(b, n, "op=\"read\",result=\"hit\",extent=\"partial\"", s->read_hit_partial);
	sample(b, n, "op=\"read\",result=\"miss\",extent=\"full\"", s->read_miss_full);
	sample(b, n, "op=\"read\",result=\"miss\",extent=\"partial\"", s->read_miss_partial);
	sample(b, n, "op=\"write\",result=\"hit\",extent=\"full\"", s->write_hit_full);
	sample(b, n, "op=\"write\",result=\"hit\",extent=\"partial\"", s->write_hit_partial);
	sample(b, n, "op=\"write\",result=\"miss\",extent=\"full\"", s->write_miss_full);
	sample(b, n, "op=\"write\",result=\"miss\",extent=\"partial\"", s->write_miss_partial);
}

static void render_requests(struct bc_tbuf *b, const struct bc_engine_stats *s)
{
	static const char *const n = "blkcache_requests_total";

	family(b, n, "counter", "Requests received by the engine, by type.");
	sample(b, n, "op=\"read\"", s->reads);
	sample(b, n, "op=\"write\"", s->writes);
	sample(b, n, "op=\"flush\"", s->flushes);
	sample(b, n, "op=\"discard\"", s->discards);
	sample(b, n, "op=\"write_zeroes\"", s->write_zeroes);
	metric(b, "blkcache_fua_writes_total", "counter", "Writes with FUA.", s->fua_writes);

	family(b, "blkcache_read_blocks_total", "counter",
	       "Blocks read, by where they were found (hit, partial, miss).");
	sample(b, "blkcache_read_blocks_total", "result=\"hit\"", s->read_hit_blocks);
	sample(b, "blkcache_read_blocks_total", "result=\"partial\"", s->read_partial_blocks);
	sample(b, "blkcache_read_blocks_total", "result=\"miss\"", s->read_miss_blocks);
}

static void render_mode(struct bc_tbuf *b, const struct bc_control_src *src,
			const struct bc_engine_stats *s)
{
	unsigned m;

	family(b, "blkcache_info", "gauge", "Cache and origin of this server (always 1).");
	bc_tbuf_puts(b, "blkcache_info{cache=\"");
	label_value(b, src->cache_path);
	bc_tbuf_puts(b, "\",origin=\"");
	label_value(b, src->origin_path);
	bc_tbuf_puts(b, "\"} 1\n");

	family(b, "blkcache_mode", "gauge", "Cache mode: 1 for the current one.");
	for (m = BC_CACHE_WRITEBACK; m <= BC_CACHE_PASSTHROUGH; m++)
		bc_tbuf_printf(b, "blkcache_mode{mode=\"%s\"} %d\n", bc_mode_name((enum bc_mode)m),
			       m == s->mode);
	metric(b, "blkcache_writeback_paused", "gauge", "1 if writeback is paused.",
	       s->writeback_paused != 0);
	metric(b, "blkcache_detached", "gauge",
	       "1 if the cache has been detached (the origin is complete).", s->detached != 0);
	family(b, "blkcache_mode_blocks_total", "counter",
	       "Blocks written in the modes that do not absorb writes.");
	sample(b, "blkcache_mode_blocks_total", "mode=\"writethrough\"", s->writethrough_blocks);
	sample(b, "blkcache_mode_blocks_total", "mode=\"writearound\"", s->writearound_blocks);
	sample(b, "blkcache_mode_blocks_total", "mode=\"passthrough\"", s->passthrough_blocks);
	metric(b, "blkcache_invalidated_blocks_total", "counter",
	       "Cached copies dropped by writearound or passthrough writes.", s->invalidated_blocks);
}

static void render_tunables(struct bc_tbuf *b, const struct bc_control_src *src)
{
	unsigned i, n = bc_tunable_count();
	uint64_t v;

	family(b, "blkcache_tunable", "gauge", "Current value of each live tunable (see "
	       "'blkcache get').");
	for (i = 0; i < n; i++) {
		const struct bc_tunable_info *ti = bc_tunable_info(i);

		if (ti && bc_engine_get(src->engine, ti->name, &v) == 0)
			bc_tbuf_printf(b, "blkcache_tunable{name=\"%s\",unit=\"%s\"} %llu\n",
				       ti->name, ti->unit, (unsigned long long)v);
	}
}

/* The cache's contents and its segment log. */
static void render_log(struct bc_tbuf *b, const struct bc_engine_stats *s)
{
	metric(b, "blkcache_cached_blocks", "gauge", "Blocks held by the cache.", s->cached_blocks);
	metric(b, "blkcache_dirty_blocks", "gauge", "Blocks not yet written back to the origin.",
	       s->dirty_blocks);
	metric(b, "blkcache_dirty_bytes", "gauge", "Bytes in dirty blocks.",
	       s->dirty_blocks * BC_UNIT_BLOCK);
	metric(b, "blkcache_segments", "gauge", "Segments in the cache ring.", s->segments_total);
	metric(b, "blkcache_segments_used", "gauge", "Ring segments in use.", s->segments_used);
	metric(b, "blkcache_segments_written_total", "counter",
	       "Segments written to the cache device.", s->segments_written);
	metric(b, "blkcache_segments_partial_total", "counter",
	       "Segments written before they were full.", s->segments_partial);
	metric(b, "blkcache_open_segment_writes_total", "counter",
	       "Writes of the open segment's new entries (written acks) that left it open.",
	       s->open_segment_writes);
	metric(b, "blkcache_cache_full_waits_total", "counter",
	       "Times a write waited for free cache space.", s->cache_full_waits);
}

void bc_metrics_render(const struct bc_control_src *src, struct bc_tbuf *b)
{
	struct bc_nbd_stats n;
	struct bc_engine_stats s;

	bc_control_stats(src, &s, &n);

	render_mode(b, src, &s);
	metric(b, "blkcache_export_size_bytes", "gauge", "Size of the exported device.",
	       s.export_size);
	render_requests(b, &s);
	family(b, "blkcache_read_hit_ratio", "gauge",
	       "Share of read blocks served entirely from the cache.");
	bc_tbuf_printf(b, "blkcache_read_hit_ratio %.6f\n", bc_hit_ratio(&s));
	render_classes(b, &s);

	metric(b, "blkcache_bypass_sequential_bytes_total", "counter",
	       "Read-miss bytes not promoted because they belong to a sequential stream.",
	       s.bypass_sequential_bytes);
	metric(b, "blkcache_bypass_nhit_blocks_total", "counter",
	       "Read-miss blocks not promoted because they missed too few times.",
	       s.bypass_nhit_blocks);
	metric(b, "blkcache_promoted_blocks_total", "counter",
	       "Read-miss blocks inserted into the cache as clean blocks.", s.promoted_blocks);
	metric(b, "blkcache_promote_dropped_blocks_total", "counter",
	       "Read-miss blocks not promoted because the log had no room for them.",
	       s.promote_dropped_blocks);
	metric(b, "blkcache_reclaimed_segments_total", "counter", "Ring segments reused.",
	       s.reclaimed_segments);
	metric(b, "blkcache_reappended_blocks_total", "counter",
	       "Hot clean blocks re-appended when their segment was reclaimed.",
	       s.reappended_blocks);
	metric(b, "blkcache_absorbed_blocks_total", "counter",
	       "Written blocks absorbed into the log.", s.write_blocks);
	metric(b, "blkcache_inplace_blocks_total", "counter",
	       "Written blocks absorbed in place by the open segment buffer.",
	       s.write_inplace_blocks);
	metric(b, "blkcache_merge_reads_total", "counter",
	       "Partial writes that had to read old sectors.", s.merge_reads);

	render_log(b, &s);

	metric(b, "blkcache_writeback_blocks_total", "counter",
	       "Blocks written back to the origin.", s.writeback_blocks);
	metric(b, "blkcache_writeback_ios_total", "counter", "Writeback writes to the origin.",
	       s.writeback_ios);
	metric(b, "blkcache_writeback_bytes_total", "counter",
	       "Bytes written back to the origin.", s.writeback_bytes);
	metric(b, "blkcache_writeback_batches_total", "counter", "Writeback batches.",
	       s.writeback_batches);
	metric(b, "blkcache_writeback_errors_total", "counter", "Failed writeback writes.",
	       s.writeback_errors);
	metric(b, "blkcache_writeback_fills_total", "counter",
	       "Writeback gap fills (origin read, then one write of the span).", s.writeback_fills);
	metric(b, "blkcache_writeback_failing", "gauge",
	       "Consecutive failed writeback batches (0: healthy).", s.writeback_failing);
	metric(b, "blkcache_degraded", "gauge",
	       "1 when the cache device keeps failing and nothing new is cached.", s.degraded);
	metric(b, "blkcache_cache_errors_total", "counter", "Failed cache device IOs.",
	       s.cache_errors);
	metric(b, "blkcache_data_crc_errors_total", "counter",
	       "Cached blocks that failed their data checksum.", s.data_crc_errors);
	metric(b, "blkcache_write_timeouts_total", "counter",
	       "Writes failed after waiting write_timeout_ms for cache space.", s.write_timeouts);
	metric(b, "blkcache_drains_total", "counter", "Completed flushes (drains) of all dirty data.",
	       s.drains);

	metric(b, "blkcache_cache_flushes_total", "counter", "Flushes of the cache device.",
	       s.cache_flushes);
	metric(b, "blkcache_origin_flushes_total", "counter", "Flushes of the origin.",
	       s.origin_flushes);
	metric(b, "blkcache_io_errors_total", "counter", "Device I/O errors.", s.io_errors);
	metric(b, "blkcache_recovered_segments", "gauge",
	       "Log segments replayed by recovery at start-up.", s.recovered_segments);
	family(b, "blkcache_recovery_seconds", "gauge", "Duration of recovery at start-up.");
	bc_tbuf_printf(b, "blkcache_recovery_seconds %.3f\n", (double)s.recovery_ms / 1000.0);

	metric(b, "blkcache_nbd_connections", "gauge", "Open NBD connections.",
	       n.connections_open);
	metric(b, "blkcache_nbd_connections_total", "counter", "NBD connections accepted.",
	       n.connections_total);
	metric(b, "blkcache_nbd_requests_total", "counter", "NBD requests received.", n.requests);
	metric(b, "blkcache_nbd_protocol_errors_total", "counter",
	       "NBD connections closed for malformed data.", n.protocol_errors);

	render_tunables(b, src);
}
