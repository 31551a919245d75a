/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The metrics page: Prometheus text exposition format, version 0.0.4.
 * Each family's HELP and TYPE come once, then its series: one per origin
 * for the engine's metrics, labelled origin="NAME" (first) when the server
 * serves several origins; a server of one origin writes them unlabelled,
 * as it always did.  Cache-wide and NBD metrics are never labelled.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "units.h"

/* What one page is rendered from: every origin's counters, taken once. */
struct mctx {
	struct bc_tbuf *b;
	const struct bc_control_src *src;
	unsigned n;
	bool labelled;                       /* several origins: origin="NAME" */
	struct bc_engine_stats *st;          /* [n] */
	struct bc_nbd_stats nbd;
};

static void family(struct bc_tbuf *b, const char *name, const char *type, const char *help)
{
	bc_tbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
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

/* "NAME{origin="O",LABELS} " of origin @i's series (no braces if no label). */
static void series(struct mctx *m, unsigned i, const char *name, const char *labels)
{
	bool lo = m->labelled;

	bc_tbuf_puts(m->b, name);
	if (!lo && !labels) {
		bc_tbuf_puts(m->b, " ");
		return;
	}
	bc_tbuf_puts(m->b, "{");
	if (lo) {
		bc_tbuf_puts(m->b, "origin=\"");
		label_value(m->b, bc_engine_name(bc_control_at(m->src, i)->engine));
		bc_tbuf_puts(m->b, labels ? "\"," : "\"");
	}
	if (labels)
		bc_tbuf_puts(m->b, labels);
	bc_tbuf_puts(m->b, "} ");
}

/* ---- the engine's metrics: a table ---- */

enum { K_U64, K_BOOL32, K_U32, K_BLOCK_BYTES, K_CUSTOM };

struct msample {
	const char *labels;      /* NULL: none besides origin */
	size_t off;              /* into struct bc_engine_stats */
	int kind;
};

struct mfamily {
	const char *name, *type, *help;
	void (*custom)(struct mctx *m, unsigned i, const char *name); /* instead of samples */
	struct msample s[8];
};

#define O(f) offsetof(struct bc_engine_stats, f)
#define V(f) { { NULL, O(f), K_U64 } }
#define B32(f) { { NULL, O(f), K_BOOL32 } }
#define C(l, f) { l, O(f), K_U64 }
#define C32(l, f) { l, O(f), K_U32 }

static uint64_t value(const struct bc_engine_stats *s, const struct msample *ms)
{
	const char *p = (const char *)s + ms->off;
	uint64_t v64;
	uint32_t v32;

	switch (ms->kind) {
	case K_BOOL32:
		memcpy(&v32, p, sizeof(v32));
		return v32 != 0;
	case K_U32:
		memcpy(&v32, p, sizeof(v32));
		return v32;
	case K_BLOCK_BYTES:
		memcpy(&v64, p, sizeof(v64));
		return v64 * BC_UNIT_BLOCK;
	default:
		memcpy(&v64, p, sizeof(v64));
		return v64;
	}
}

static void custom_mode(struct mctx *m, unsigned i, const char *name)
{
	char l[48];
	unsigned md;

	for (md = BC_CACHE_WRITEBACK; md <= BC_CACHE_PASSTHROUGH; md++) {
		snprintf(l, sizeof(l), "mode=\"%s\"", bc_mode_name((enum bc_mode)md));
		series(m, i, name, l);
		bc_tbuf_printf(m->b, "%d\n", md == m->st[i].mode);
	}
}

static void custom_hit_ratio(struct mctx *m, unsigned i, const char *name)
{
	series(m, i, name, NULL);
	bc_tbuf_printf(m->b, "%.6f\n", bc_hit_ratio(&m->st[i]));
}

static void custom_recovery(struct mctx *m, unsigned i, const char *name)
{
	series(m, i, name, NULL);
	bc_tbuf_printf(m->b, "%.3f\n", (double)m->st[i].recovery_ms / 1000.0);
}

static void custom_tunables(struct mctx *m, unsigned i, const char *name)
{
	struct bc_engine *e = bc_control_at(m->src, i)->engine;
	unsigned t, n = bc_tunable_count();
	char l[160];
	uint64_t v;

	for (t = 0; t < n; t++) {
		const struct bc_tunable_info *ti = bc_tunable_info(t);

		if (!ti || bc_engine_get(e, ti->name, &v) != 0)
			continue;
		snprintf(l, sizeof(l), "name=\"%s\",unit=\"%s\"", ti->name, ti->unit);
		series(m, i, name, l);
		bc_tbuf_printf(m->b, "%llu\n", (unsigned long long)v);
	}
}

static const struct mfamily request_families[] = {
	{ "blkcache_mode", "gauge", "Cache mode: 1 for the current one.", custom_mode, { { 0 } } },
	{ "blkcache_writeback_paused", "gauge", "1 if writeback is paused.", NULL,
	  B32(writeback_paused) },
	{ "blkcache_detached", "gauge", "1 if the cache has been detached (the origin is complete).",
	  NULL, B32(detached) },
	{ "blkcache_mode_blocks_total", "counter",
	  "Blocks written in the modes that do not absorb writes.", NULL,
	  { C("mode=\"writethrough\"", writethrough_blocks),
	    C("mode=\"writearound\"", writearound_blocks),
	    C("mode=\"passthrough\"", passthrough_blocks) } },
	{ "blkcache_invalidated_blocks_total", "counter",
	  "Cached copies dropped by writearound or passthrough writes.", NULL,
	  V(invalidated_blocks) },
	{ "blkcache_export_size_bytes", "gauge", "Size of the exported device.", NULL,
	  V(export_size) },
	{ "blkcache_requests_total", "counter", "Requests received by the engine, by type.", NULL,
	  { C("op=\"read\"", reads), C("op=\"write\"", writes), C("op=\"flush\"", flushes),
	    C("op=\"discard\"", discards), C("op=\"write_zeroes\"", write_zeroes) } },
	{ "blkcache_fua_writes_total", "counter", "Writes with FUA.", NULL, V(fua_writes) },
	{ "blkcache_read_blocks_total", "counter",
	  "Blocks read, by where they were found (hit, partial, miss).", NULL,
	  { C("result=\"hit\"", read_hit_blocks), C("result=\"partial\"", read_partial_blocks),
	    C("result=\"miss\"", read_miss_blocks) } },
	{ "blkcache_read_hit_ratio", "gauge",
	  "Share of read blocks served entirely from the cache.", custom_hit_ratio, { { 0 } } },
	{ "blkcache_class_blocks_total", "counter", "Blocks by request class: op (read, write) x "
	  "result (hit, miss) x extent (full, partial block).", NULL,
	  { C("op=\"read\",result=\"hit\",extent=\"full\"", read_hit_full),
	    C("op=\"read\",result=\"hit\",extent=\"partial\"", read_hit_partial),
	    C("op=\"read\",result=\"miss\",extent=\"full\"", read_miss_full),
	    C("op=\"read\",result=\"miss\",extent=\"partial\"", read_miss_partial),
	    C("op=\"write\",result=\"hit\",extent=\"full\"", write_hit_full),
	    C("op=\"write\",result=\"hit\",extent=\"partial\"", write_hit_partial),
	    C("op=\"write\",result=\"miss\",extent=\"full\"", write_miss_full),
	    C("op=\"write\",result=\"miss\",extent=\"partial\"", write_miss_partial) } },
};

static const struct mfamily cache_families[] = {
	{ "blkcache_bypass_sequential_bytes_total", "counter",
	  "Read-miss bytes not promoted because they belong to a sequential stream.", NULL,
	  V(bypass_sequential_bytes) },
	{ "blkcache_bypass_nhit_blocks_total", "counter",
	  "Read-miss blocks not promoted because they missed too few times.", NULL,
	  V(bypass_nhit_blocks) },
	{ "blkcache_promoted_blocks_total", "counter",
	  "Read-miss blocks inserted into the cache as clean blocks.", NULL, V(promoted_blocks) },
	{ "blkcache_promote_dropped_blocks_total", "counter",
	  "Read-miss blocks not promoted because the log had no room for them.", NULL,
	  V(promote_dropped_blocks) },
	{ "blkcache_reclaimed_segments_total", "counter", "Ring segments reused.", NULL,
	  V(reclaimed_segments) },
	{ "blkcache_reappended_blocks_total", "counter",
	  "Hot clean blocks re-appended when their segment was reclaimed.", NULL,
	  V(reappended_blocks) },
	{ "blkcache_carried_segments_total", "counter",
	  "Dirty segments reclaimed by carrying their live blocks forward instead of writing them back.",
	  NULL, V(carried_segments) },
	{ "blkcache_carried_blocks_total", "counter",
	  "Live dirty blocks re-appended by carry-forward.", NULL, V(carried_blocks) },
	{ "blkcache_absorbed_blocks_total", "counter", "Written blocks absorbed into the log.", NULL,
	  V(write_blocks) },
	{ "blkcache_inplace_blocks_total", "counter",
	  "Written blocks absorbed in place by the open segment buffer.", NULL,
	  V(write_inplace_blocks) },
	{ "blkcache_merge_reads_total", "counter", "Partial writes that had to read old sectors.",
	  NULL, V(merge_reads) },
	/* the cache's contents and its segment log */
	{ "blkcache_cached_blocks", "gauge", "Blocks held by the cache.", NULL, V(cached_blocks) },
	{ "blkcache_dirty_blocks", "gauge", "Blocks not yet written back to the origin.", NULL,
	  V(dirty_blocks) },
	{ "blkcache_dirty_bytes", "gauge", "Bytes in dirty blocks.", NULL,
	  { { NULL, O(dirty_blocks), K_BLOCK_BYTES } } },
	{ "blkcache_segments", "gauge", "Segments in the cache ring.", NULL, V(segments_total) },
	{ "blkcache_segments_used", "gauge", "Ring segments in use.", NULL, V(segments_used) },
	{ "blkcache_segments_written_total", "counter", "Segments written to the cache device.",
	  NULL, V(segments_written) },
	{ "blkcache_segments_partial_total", "counter", "Segments written before they were full.",
	  NULL, V(segments_partial) },
	{ "blkcache_open_segment_writes_total", "counter",
	  "Writes of the open segment's new entries (written acks) that left it open.", NULL,
	  V(open_segment_writes) },
	{ "blkcache_cache_full_waits_total", "counter", "Times a write waited for free cache space.",
	  NULL, V(cache_full_waits) },
	{ "blkcache_buffer_waits_total", "counter",
	  "Times a write waited for a segment buffer (all being written: the cache device is busy).",
	  NULL, V(buffer_waits) },
};

static const struct mfamily writeback_families[] = {
	{ "blkcache_writeback_blocks_total", "counter", "Blocks written back to the origin.", NULL,
	  V(writeback_blocks) },
	{ "blkcache_writeback_ios_total", "counter", "Writeback writes to the origin.", NULL,
	  V(writeback_ios) },
	{ "blkcache_writeback_bytes_total", "counter", "Bytes written back to the origin.", NULL,
	  V(writeback_bytes) },
	{ "blkcache_writeback_batches_total", "counter", "Writeback batches.", NULL,
	  V(writeback_batches) },
	{ "blkcache_writeback_errors_total", "counter", "Failed writeback writes.", NULL,
	  V(writeback_errors) },
	{ "blkcache_writeback_fills_total", "counter",
	  "Writeback gap fills (origin read, then one write of the span).", NULL,
	  V(writeback_fills) },
	{ "blkcache_writeback_reads_saved_total", "counter",
	  "Writeback passes over a segment an earlier batch had read (not read again).", NULL,
	  V(writeback_reads_saved) },
	{ "blkcache_writeback_failing", "gauge",
	  "Consecutive failed writeback batches (0: healthy).", NULL, V(writeback_failing) },
	{ "blkcache_degraded", "gauge",
	  "1 when the cache device keeps failing and nothing new is cached.", NULL,
	  B32(degraded) },
	{ "blkcache_cache_errors_total", "counter", "Failed cache device IOs.", NULL,
	  V(cache_errors) },
	{ "blkcache_data_crc_errors_total", "counter",
	  "Cached blocks that failed their data checksum.", NULL, V(data_crc_errors) },
	{ "blkcache_write_timeouts_total", "counter",
	  "Writes failed after waiting write_timeout_ms for cache space.", NULL,
	  V(write_timeouts) },
	{ "blkcache_drains_total", "counter", "Completed flushes (drains) of all dirty data.", NULL,
	  V(drains) },
	/* devices */
	{ "blkcache_cache_flushes_total", "counter", "Flushes of the cache device.", NULL,
	  V(cache_flushes) },
	{ "blkcache_origin_flushes_total", "counter", "Flushes of the origin.", NULL,
	  V(origin_flushes) },
	{ "blkcache_io_errors_total", "counter", "Device I/O errors.", NULL, V(io_errors) },
	{ "blkcache_recovered_segments", "gauge", "Log segments replayed by recovery at start-up.",
	  NULL, V(recovered_segments) },
	{ "blkcache_recovery_seconds", "gauge", "Duration of recovery at start-up.",
	  custom_recovery, { { 0 } } },
};

/* A device queue's depth as a histogram: how many IOs were in flight when
 * each IO was submitted (itself included); le="N" counts the IOs that saw
 * at most N. */
static void custom_qd_one(struct mctx *m, unsigned i, const char *name, const char *dev,
			  const struct bc_dev_qstats *q)
{
	uint64_t cum = 0;
	char sname[96], l[64];
	unsigned b;

	snprintf(sname, sizeof(sname), "%s_bucket", name);
	for (b = 0; b < BC_DEV_QD_BUCKETS; b++) {
		uint32_t lo, hi;

		bc_dev_qstats_bounds(b, &lo, &hi);
		cum += q->hist[b];
		if (hi)
			snprintf(l, sizeof(l), "device=\"%s\",le=\"%u\"", dev, hi);
		else
			snprintf(l, sizeof(l), "device=\"%s\",le=\"+Inf\"", dev);
		series(m, i, sname, l);
		bc_tbuf_printf(m->b, "%llu\n", (unsigned long long)cum);
	}
	snprintf(l, sizeof(l), "device=\"%s\"", dev);
	snprintf(sname, sizeof(sname), "%s_sum", name);
	series(m, i, sname, l);
	bc_tbuf_printf(m->b, "%llu\n", (unsigned long long)q->inflight_sum);
	snprintf(sname, sizeof(sname), "%s_count", name);
	series(m, i, sname, l);
	bc_tbuf_printf(m->b, "%llu\n", (unsigned long long)q->submitted);
}

static void custom_qd(struct mctx *m, unsigned i, const char *name)
{
	custom_qd_one(m, i, name, "cache", &m->st[i].cache_queue);
	custom_qd_one(m, i, name, "origin", &m->st[i].origin_queue);
}

static const struct mfamily queue_families[] = {
	{ "blkcache_device_queue_depth", "histogram",
	  "IOs in flight on the device as each IO was submitted (itself included).",
	  custom_qd, { { 0 } } },
	{ "blkcache_device_inflight", "gauge", "Device IOs in flight now.", NULL,
	  { C32("device=\"cache\"", cache_queue.inflight),
	    C32("device=\"origin\"", origin_queue.inflight) } },
	{ "blkcache_device_inflight_max", "gauge", "Most device IOs ever in flight at once.", NULL,
	  { C32("device=\"cache\"", cache_queue.max_inflight),
	    C32("device=\"origin\"", origin_queue.max_inflight) } },
	{ "blkcache_loop_iterations_total", "counter", "Iterations of the engine's event loop.",
	  NULL, V(loop.iterations) },
	{ "blkcache_loop_enters_total", "counter",
	  "io_uring submissions that handed IOs to the kernel.", NULL, V(loop.enters) },
	{ "blkcache_loop_sqes_total", "counter", "IOs (SQEs) handed to the kernel.", NULL,
	  V(loop.sqes) },
	{ "blkcache_write_waited_total", "counter", "Writes that waited for log space.", NULL,
	  V(write_waited) },
	{ "blkcache_write_wait_nanoseconds_total", "counter",
	  "Time writes spent waiting for log space.", NULL, V(write_wait_ns) },
};

static const struct mfamily tunable_family = {
	"blkcache_tunable", "gauge", "Current value of each live tunable (see 'blkcache get').",
	custom_tunables, { { 0 } }
};

/* Families of the engine's metrics: HELP and TYPE, then every origin's series. */
static void render_families(struct mctx *m, const struct mfamily *f, size_t nf)
{
	unsigned i, k;
	size_t j;

	for (j = 0; j < nf; j++, f++) {
		family(m->b, f->name, f->type, f->help);
		for (i = 0; i < m->n; i++) {
			if (f->custom) {
				f->custom(m, i, f->name);
				continue;
			}
			for (k = 0; k < sizeof(f->s) / sizeof(f->s[0]) && (k == 0 || f->s[k].labels);
			     k++) {
				series(m, i, f->name, f->s[k].labels);
				bc_tbuf_printf(m->b, "%llu\n",
					       (unsigned long long)value(&m->st[i], &f->s[k]));
			}
		}
	}
}

#define NF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- cache-wide metrics ---- */

static void metric(struct bc_tbuf *b, const char *name, const char *type, const char *help,
		   uint64_t v)
{
	family(b, name, type, help);
	bc_tbuf_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

static void render_info(struct mctx *m)
{
	const char *cache = m->src->cache_path ? m->src->cache_path : "";
	unsigned i;

	family(m->b, "blkcache_info", "gauge", "Cache and origin of this server (always 1).");
	for (i = 0; i < m->n; i++) {
		struct bc_engine *e = bc_control_at(m->src, i)->engine;

		if (m->labelled) {
			bc_tbuf_puts(m->b, "blkcache_info{origin=\"");
			label_value(m->b, bc_engine_name(e));
			bc_tbuf_puts(m->b, "\",cache=\"");
			label_value(m->b, cache);
			bc_tbuf_puts(m->b, "\",origin_path=\"");
		} else {
			bc_tbuf_puts(m->b, "blkcache_info{cache=\"");
			label_value(m->b, cache);
			bc_tbuf_puts(m->b, "\",origin=\"");
		}
		label_value(m->b, bc_engine_origin_path(e));
		bc_tbuf_puts(m->b, "\"} 1\n");
	}
	metric(m->b, "blkcache_origins", "gauge", "Origins served by this server's cache.", m->n);
}

static void render_nbd(struct mctx *m)
{
	const struct bc_nbd_stats *n = &m->nbd;

	metric(m->b, "blkcache_nbd_connections", "gauge", "Open NBD connections.",
	       n->connections_open);
	metric(m->b, "blkcache_nbd_connections_total", "counter", "NBD connections accepted.",
	       n->connections_total);
	metric(m->b, "blkcache_nbd_requests_total", "counter", "NBD requests received.",
	       n->requests);
	metric(m->b, "blkcache_nbd_protocol_errors_total", "counter",
	       "NBD connections closed for malformed data.", n->protocol_errors);
	metric(m->b, "blkcache_nbd_connections_moved_total", "counter",
	       "NBD connections run on a shard's thread (a sharded origin's export).",
	       n->connections_moved);
}

void bc_metrics_render(const struct bc_control_src *src, struct bc_tbuf *b)
{
	struct mctx m = { .b = b, .src = src, .n = bc_control_count(src) };
	unsigned i;

	m.labelled = m.n > 1;
	m.st = calloc(m.n ? m.n : 1, sizeof(*m.st));
	if (!m.st) {
		b->failed = true;
		return;
	}
	for (i = 0; i < m.n; i++)
		bc_co_stats(bc_control_at(src, i), &m.st[i]);
	if (src->nbd)
		bc_nbd_server_stats(src->nbd, &m.nbd);

	render_info(&m);
	render_families(&m, request_families, NF(request_families));
	render_families(&m, cache_families, NF(cache_families));
	render_families(&m, writeback_families, NF(writeback_families));
	render_families(&m, queue_families, NF(queue_families));
	render_nbd(&m);
	render_families(&m, &tunable_family, 1);
	free(m.st);
}
