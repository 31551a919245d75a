/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The status document of a running server: one JSON object.  Its top level
 * holds the cache's and the first origin's fields (what a server of one
 * origin always reported), "origins" one object per origin.
 */
#include <stdio.h>
#include <string.h>

#include "blkcache/shards.h"
#include "internal.h"

#define U(key, v) bc_jw_u64(w, key, v)

unsigned bc_control_count(const struct bc_control_src *src)
{
	return src->origins ? src->origins->n : 0;
}

const struct bc_control_origin *bc_control_at(const struct bc_control_src *src, unsigned i)
{
	return i < bc_control_count(src) ? &src->origins->o[i] : NULL;
}

const struct bc_control_origin *bc_control_find(const struct bc_control_src *src,
						const char *name)
{
	unsigned i, n = bc_control_count(src);

	for (i = 0; i < n; i++)
		if (!strcmp(bc_engine_name(src->origins->o[i].engine), name))
			return &src->origins->o[i];
	return NULL;
}

void bc_control_names(const struct bc_control_src *src, struct bc_tbuf *b)
{
	unsigned i, n = bc_control_count(src);

	if (!n)
		bc_tbuf_puts(b, "none");
	for (i = 0; i < n; i++)
		bc_tbuf_printf(b, "%s%s", i ? ", " : "", bc_engine_name(src->origins->o[i].engine));
}

/* JSON arrays and null, with the separators of struct bc_jw. */
static void jw_sep(struct bc_jw *w, const char *key)
{
	if (w->depth > 0 && w->count[w->depth - 1]++)
		bc_tbuf_add(w->b, ",", 1);
	if (key) {
		bc_tbuf_json_str(w->b, key);
		bc_tbuf_add(w->b, ":", 1);
	}
}

void ctl_jw_array(struct bc_jw *w, const char *key)
{
	jw_sep(w, key);
	bc_tbuf_add(w->b, "[", 1);
	if (w->depth < BC_JW_MAX_DEPTH)
		w->count[w->depth] = 0;
	w->depth++;
}

void ctl_jw_array_end(struct bc_jw *w)
{
	if (w->depth > 0)
		w->depth--;
	bc_tbuf_add(w->b, "]", 1);
}

void ctl_jw_null(struct bc_jw *w, const char *key)
{
	jw_sep(w, key);
	bc_tbuf_puts(w->b, "null");
}

void bc_control_stats(const struct bc_control_src *src, struct bc_engine_stats *s,
		       struct bc_nbd_stats *n)
{
	const struct bc_control_origin *o = bc_control_at(src, 0);

	memset(s, 0, sizeof(*s));
	if (o)
		bc_co_stats(o, s);
	memset(n, 0, sizeof(*n));
	if (src->nbd)
		bc_nbd_server_stats(src->nbd, n);
}

double bc_hit_ratio(const struct bc_engine_stats *s)
{
	uint64_t lookups = s->read_hit_blocks + s->read_partial_blocks + s->read_miss_blocks;

	return lookups ? (double)s->read_hit_blocks / (double)lookups : 0.0;
}

/* Requests and reads: counts, hit ratio and per-class blocks. */
static void status_json_requests(struct bc_jw *w, const struct bc_engine_stats *s)
{
	/* requests */
	U("reads", s->reads);
	U("writes", s->writes);
	U("flushes", s->flushes);
	U("fua_writes", s->fua_writes);
	U("discards", s->discards);
	U("write_zeroes", s->write_zeroes);

	/* reads by block: hit, partially cached, missed */
	U("read_hit_blocks", s->read_hit_blocks);
	U("read_partial_blocks", s->read_partial_blocks);
	U("read_miss_blocks", s->read_miss_blocks);
	U("hits", s->read_hit_blocks + s->read_partial_blocks);
	U("misses", s->read_miss_blocks);
	bc_jw_double(w, "hit_ratio", bc_hit_ratio(s));

	/* per class: {read,write} x {hit,miss} x {full,partial} block */
	U("read_hit_full", s->read_hit_full);
	U("read_hit_partial", s->read_hit_partial);
	U("read_miss_full", s->read_miss_full);
	U("read_miss_partial", s->read_miss_partial);
	U("write_hit_full", s->write_hit_full);
	U("write_hit_partial", s->write_hit_partial);
	U("write_miss_full", s->write_miss_full);
	U("write_miss_partial", s->write_miss_partial);
}

/* Promotion, writes and what the cache and its ring hold. */
static void status_json_cache(struct bc_jw *w, const struct bc_engine_stats *s)
{
	/* read promotion and ring reuse */
	U("bypass_sequential_bytes", s->bypass_sequential_bytes);
	U("bypass_nhit_blocks", s->bypass_nhit_blocks);
	U("promoted_blocks", s->promoted_blocks);
	U("promote_dropped_blocks", s->promote_dropped_blocks);
	U("reclaimed_segments", s->reclaimed_segments);
	U("reappended_blocks", s->reappended_blocks);
	U("carried_segments", s->carried_segments);
	U("carried_blocks", s->carried_blocks);

	/* writes */
	U("writes_absorbed_blocks", s->write_blocks);
	U("write_inplace_blocks", s->write_inplace_blocks);
	U("merge_reads", s->merge_reads);
	U("writethrough_blocks", s->writethrough_blocks);
	U("writearound_blocks", s->writearound_blocks);
	U("passthrough_blocks", s->passthrough_blocks);
	U("invalidated_blocks", s->invalidated_blocks);

	/* cache contents and the ring */
	U("cached_blocks", s->cached_blocks);
	U("dirty_blocks", s->dirty_blocks);
	U("dirty_bytes", s->dirty_blocks * BC_UNIT_BLOCK);
	U("segments_total", s->segments_total);
	U("segments_used", s->segments_used);
	U("segments_written", s->segments_written);
	U("segments_partial", s->segments_partial);
	U("open_segment_writes", s->open_segment_writes);
	U("head_seq", s->head_seq);
	U("durable_seq", s->durable_seq);
	U("written_back_seq", s->written_back_seq);
	U("cache_full_waits", s->cache_full_waits);
	U("buffer_waits", s->buffer_waits);
}

/* Writeback, drains, errors and the devices. */
static void status_json_writeback(struct bc_jw *w, const struct bc_engine_stats *s)
{
	/* writeback and drains */
	U("writeback_blocks", s->writeback_blocks);
	U("writeback_ios", s->writeback_ios);
	U("writeback_bytes", s->writeback_bytes);
	U("writeback_batches", s->writeback_batches);
	U("writeback_errors", s->writeback_errors);
	U("writeback_fills", s->writeback_fills);
	U("writeback_reads_saved", s->writeback_reads_saved);
	U("writeback_failing", s->writeback_failing);
	U("writeback_retry_ms", s->writeback_retry_ms);
	bc_jw_str(w, "writeback_last_error",
		   s->writeback_last_errno ? strerror((int)s->writeback_last_errno) : "");
	U("write_timeouts", s->write_timeouts);
	bc_jw_bool(w, "data_crc", s->data_crc != 0);
	bc_jw_bool(w, "degraded", s->degraded != 0);
	U("cache_errors", s->cache_errors);
	U("data_crc_errors", s->data_crc_errors);
	U("drains", s->drains);

	/* devices */
	U("cache_flushes", s->cache_flushes);
	U("origin_flushes", s->origin_flushes);
	U("io_errors", s->io_errors);
	U("recovered_segments", s->recovered_segments);
	U("recovery_ms", s->recovery_ms);
}

/* One device's queue: how many IOs it had in flight. */
static void status_json_queue(struct bc_jw *w, const char *key, const struct bc_dev_qstats *q)
{
	unsigned i;

	bc_jw_begin(w, key);
	U("inflight", q->inflight);
	U("max_inflight", q->max_inflight);
	U("submitted", q->submitted);
	bc_jw_double(w, "avg_inflight", q->submitted ? (double)q->inflight_sum / (double)q->submitted : 0);
	bc_jw_begin(w, "histogram");
	for (i = 0; i < BC_DEV_QD_BUCKETS; i++) {
		uint32_t lo, hi;
		char k[32];

		bc_dev_qstats_bounds(i, &lo, &hi);
		if (!hi)
			snprintf(k, sizeof(k), "%u+", lo);
		else if (lo == hi)
			snprintf(k, sizeof(k), "%u", lo);
		else
			snprintf(k, sizeof(k), "%u-%u", lo, hi);
		U(k, q->hist[i]);
	}
	bc_jw_end(w);
	bc_jw_end(w);
}

/* Queue depth: the devices', the loop's submission batching, writes that
 * waited for log space. */
static void status_json_queues(struct bc_jw *w, const struct bc_engine_stats *s)
{
	status_json_queue(w, "cache_queue", &s->cache_queue);
	status_json_queue(w, "origin_queue", &s->origin_queue);
	bc_jw_begin(w, "loop");
	U("iterations", s->loop.iterations);
	U("waits", s->loop.waits);
	U("enters", s->loop.enters);
	U("sqes", s->loop.sqes);
	U("ring_full", s->loop.ring_full);
	bc_jw_double(w, "sqes_per_enter", s->loop.enters ? (double)s->loop.sqes / (double)s->loop.enters : 0);
	bc_jw_end(w);
	U("write_waited", s->write_waited);
	U("write_wait_ns", s->write_wait_ns);
	U("write_wait_max_ns", s->write_wait_max_ns);
}

/* Its hardware queues (a sharded origin's: one per shard thread) and the
 * requests each served. */
static void status_json_ublk_queues(struct bc_jw *w, const struct bc_ublk_stats *us,
				    const char *nkey, const char *rkey)
{
	unsigned k;

	U(nkey, us->queues);
	ctl_jw_array(w, rkey);
	for (k = 0; k < us->queues && k < BC_TARGET_MAX_PLACES; k++)
		U(NULL, us->queue_requests[k]);
	ctl_jw_array_end(w);
}

/* ublk frontend: the device and its requests (flat, as the top level has
 * them, or as one "ublk" object) */
static void status_json_ublk(struct bc_jw *w, const struct bc_ublk *u, bool object)
{
	struct bc_ublk_stats us;
	char dev[32];

	bc_ublk_stats(u, &us);
	snprintf(dev, sizeof(dev), "/dev/ublkb%d", us.dev_id);
	if (object) {
		bc_jw_begin(w, "ublk");
		bc_jw_str(w, "device", dev);
		U("dev_id", (uint64_t)us.dev_id);
		bc_jw_bool(w, "recovered", us.recovered);
		U("requests", us.requests);
		U("inflight", us.inflight);
		U("errors", us.errors);
		status_json_ublk_queues(w, &us, "queues", "queue_requests");
		bc_jw_end(w);
		return;
	}
	bc_jw_str(w, "ublk_device", dev);
	bc_jw_bool(w, "ublk_recovered", us.recovered);
	U("ublk_requests", us.requests);
	U("ublk_inflight", us.inflight);
	U("ublk_errors", us.errors);
	status_json_ublk_queues(w, &us, "ublk_queues", "ublk_queue_requests");
}

/* Everything about one origin: its name and device, its engine's mode and
 * counters. */
static void status_json_origin(struct bc_jw *w, const struct bc_control_origin *o)
{
	struct bc_engine_stats s;

	bc_co_stats(o, &s);
	bc_jw_str(w, "name", bc_engine_name(o->engine));
	bc_jw_str(w, "origin", bc_engine_origin_path(o->engine));
	bc_jw_str(w, "mode", bc_mode_name((enum bc_mode)s.mode));
	bc_jw_bool(w, "writeback_paused", s.writeback_paused != 0);
	bc_jw_bool(w, "detached", s.detached != 0);
	bc_jw_str(w, "acks", s.acks == BC_ACKS_STAGED ? "staged" : s.acks == BC_ACKS_WRITTEN ?
		  "written" : "buffered");
	U("staged_replayed", s.staged_replayed);
	U("export_size", s.export_size);
	U("shards", o->shards ? bc_shards_count(o->shards) : 1);
	U("writeback_gate_waits", s.writeback_gate_waits);

	status_json_requests(w, &s);
	status_json_cache(w, &s);
	status_json_writeback(w, &s);
	status_json_queues(w, &s);
}

void bc_control_status_json_sel(const struct bc_control_src *src,
				const struct bc_control_origin *only, struct bc_tbuf *b)
{
	const struct bc_control_origin *first = only ? only : bc_control_at(src, 0);
	unsigned i, n = bc_control_count(src);
	struct bc_nbd_stats ns;
	struct bc_jw jw, *w = &jw;

	memset(&ns, 0, sizeof(ns));
	if (src->nbd)
		bc_nbd_server_stats(src->nbd, &ns);
	bc_jw_init(w, b);
	bc_jw_begin(w, NULL);
	bc_jw_str(w, "cache", src->cache_path ? src->cache_path : "");
	if (src->cache_persistence)
		bc_jw_str(w, "cache_persistence", src->cache_persistence);
	if (first)
		status_json_origin(w, first);

	/* NBD frontend (every export) */
	U("nbd_connections_open", ns.connections_open);
	U("nbd_connections_total", ns.connections_total);
	U("nbd_requests", ns.requests);
	U("nbd_protocol_errors", ns.protocol_errors);
	U("nbd_connections_moved", ns.connections_moved);
	if (first && first->ublk)
		status_json_ublk(w, first->ublk, false);

	ctl_jw_array(w, "origins");
	for (i = 0; i < n; i++) {
		const struct bc_control_origin *o = bc_control_at(src, i);

		if (only && o != only)
			continue;
		bc_jw_begin(w, NULL);
		status_json_origin(w, o);
		if (o->ublk) {
			status_json_ublk(w, o->ublk, false);
			status_json_ublk(w, o->ublk, true);
		}
		bc_jw_end(w);
	}
	ctl_jw_array_end(w);
	bc_jw_end(w);
}

void bc_control_status_json(const struct bc_control_src *src, struct bc_tbuf *b)
{
	bc_control_status_json_sel(src, NULL, b);
}
