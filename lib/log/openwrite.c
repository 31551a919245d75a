/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Rounds: writes of the open segment without sealing it.  With written acks
 * a write is acknowledged once it is on the cache device; sealing the open
 * segment for every batch of writes would spend a whole ring position (and
 * later a writeback pass and a reclaim) on a few blocks.  Instead each batch
 * of entries is one device write and the segment stays open for more:
 *  - the first batch of a segment: its header (for those entries) and their
 *    data, contiguous;
 *  - every later batch: a round block (struct bc_round_hdr, in a slot the
 *    segment log took for it before the batch's first entry; a no-op entry
 *    in the segment header) describing the entries after it, and their data,
 *    contiguous.  Up to BC_OW_ROUNDS of them in flight.
 * The seal later writes just the header (all data is on the device).
 *
 * Crash safety:
 *  - an entry handed to a round is frozen: the write path never overwrites
 *    it in place again (a newer copy of its block takes a new entry), so
 *    what is on the device always matches the CRCs describing it;
 *  - recovery follows a segment not known flushed from its header's entries
 *    through the valid round blocks after them, and stops at the first one
 *    missing (format/logscan.c); so rounds count in order: entries are
 *    written once their round and every earlier one completed;
 *  - a torn round (block or data) ends the log at its first bad entry
 *    (log/recovery.c): every acknowledged entry precedes it;
 *  - the seal's write waits for the segment's rounds, and rounds of the next
 *    segment wait for that, so no two writes of one position race;
 *  - entries of segment S count as written only once every segment before S
 *    is (written_seq == S - 1): recovery walks the chain from the oldest
 *    segment and stops at a gap.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"

int bc_seglog_openwrite_init(struct bc_engine *e)
{
	e->log.ow_rounds = calloc(BC_OW_ROUNDS, sizeof(*e->log.ow_rounds));
	return e->log.ow_rounds ? 0 : -ENOMEM;
}

void bc_seglog_openwrite_destroy(struct bc_engine *e)
{
	free(e->log.ow_rounds);
	e->log.ow_rounds = NULL;
}

#define ROUND_RETRIES 3

static void round_done(struct bc_dev_io *io, int res);

/* Seal round block @r and, on persistent memory (built aside), store it
 * in its slot @at. */
static void round_put(struct bc_engine *e, struct bc_round_hdr *r, void *at)
{
	bc_round_seal(r);
	if ((void *)r != at)
		bc_seglog_store(e, at, r, BC_BLOCK_SIZE);
}

/* Fill the round blocks in slots @first..@n-1 of @s: each describes the
 * entries up to the next one; compute the data CRCs of those entries. */
void bc_seglog_fill_rounds(struct bc_engine *e, struct bc_seg *s, uint32_t first, uint32_t n)
{
	uint32_t base = (uint32_t)(s - e->log.segs) * e->data_blocks, i;
	struct bc_round_hdr *r = NULL;
	void *at = NULL;

	for (i = first; i < n; i++) {
		struct bc_seg_entry ent = bc_slot_entry(e->log.slots[base + i]);
		char *blk = (char *)s->buf->mem + (size_t)(e->hdr_blocks + i) * BC_BLOCK_SIZE;

		if (bc_ent_is_round(&ent) && i) {
			if (r)
				round_put(e, r, at);
			at = blk;
			r = (struct bc_round_hdr *)(e->log.direct ? e->log.scratch : (void *)blk);
			memset(r, 0, BC_BLOCK_SIZE);
			r->seq = s->seq;
			r->format_nonce = e->sb.format_nonce;
			r->slot = i;
			r->open_id = s->open_id;
			r->epoch = s->epoch + bc_slot_round_delta(e->log.slots[base + i]);
			continue;
		}
		ent.data_crc = bc_seglog_compute_crc(e, s, i);
		if (r)
			r->entries[r->nr_entries++] = ent;
	}
	if (r)
		round_put(e, r, at);
}

void bc_seglog_write_open(struct bc_engine *e)
{
	struct bc_seg *s = e->log.open;
	struct bc_round *r;
	uint32_t first, n, pos;
	uint64_t off;

	if (!s || e->log.failed || e->log.ow_broken || s->nr_entries == s->frozen ||
	    e->log.ow_count == BC_OW_ROUNDS)
		return;
	/* Rounds of a segment sealed since are still in flight: its seal's
	 * write goes first. */
	if (e->log.ow_seg && e->log.ow_seg != s)
		return;
	first = s->frozen;
	n = s->nr_entries;
	pos = (uint32_t)(s - e->log.segs);
	if (first == 0) {
		/* The first round: the segment header and the data after it. */
		bc_seglog_build_hdr(e, s, n);
		off = 0;
	} else {
		/* A round block (first is its slot) and the data after it. */
		bc_seglog_fill_rounds(e, s, first, n);
		s->frozen = n;
		off = e->hdr_blocks + first;
	}
	r = &e->log.ow_rounds[(e->log.ow_head + e->log.ow_count++) % BC_OW_ROUNDS];
	*r = (struct bc_round){ .target = n };
	e->log.ow_seg = s;
	e->st.open_segment_writes++;
	bc_dev_io_init(&r->io, BC_DIO_WRITE, (char *)s->buf->mem + off * BC_BLOCK_SIZE,
		       (e->hdr_blocks + n - off) * BC_BLOCK_SIZE, seg_offset(e, pos) + off * BC_BLOCK_SIZE,
		       round_done, e);
	bc_dev_submit(e->cache, &r->io);
}

static void round_done(struct bc_dev_io *io, int res)
{
	struct bc_engine *e = io->priv;
	struct bc_round *r = BC_CONTAINER_OF(io, struct bc_round, io);
	struct bc_seg *s = e->log.ow_seg;

	if (res < 0 && e->log.flush_rounds && !e->log.direct && r->retries < ROUND_RETRIES) {
		/* Format v4: its header is never rewritten, a seal cannot cover
		 * a round that failed: the same write again. */
		r->retries++;
		bc_cache_error(e, false);
		bc_elog(e, BC_LOG_ERR, "cache device: a round of segment %llu failed: %s; retrying",
			(unsigned long long)s->seq, strerror(-res));
		bc_dev_submit(e->cache, &r->io);
		return;
	}
	r->done = true;
	r->error = res < 0 ? res : 0;
	/* Rounds count in order: recovery follows them from the header on and
	 * stops at the first one missing. */
	while (e->log.ow_count && e->log.ow_rounds[e->log.ow_head].done) {
		r = &e->log.ow_rounds[e->log.ow_head];
		e->log.ow_head = (e->log.ow_head + 1) % BC_OW_ROUNDS;
		e->log.ow_count--;
		if (r->error && e->log.flush_rounds) {
			/* The header is never rewritten: the seal could not
			 * cover the round that failed.  FLUSH fails from now on. */
			e->log.failed = true;
			bc_cache_error(e, true);
			bc_elog(e, BC_LOG_ERR, "cache device: a round of segment %llu failed: %s",
				(unsigned long long)s->seq, strerror(-r->error));
		} else if (r->error && !e->log.ow_broken) {
			e->log.ow_broken = true;
			bc_cache_error(e, false);
			bc_elog(e, BC_LOG_ERR, "cache device: writing the open segment %llu failed: "
				    "%s; sealing it (its write is retried)", (unsigned long long)s->seq,
				    strerror(-r->error));
		}
		if (!e->log.ow_broken && r->target > s->persisted)
			s->persisted = r->target;
	}
	if (!e->log.ow_count) {
		e->log.ow_seg = NULL;
		if (e->log.ow_broken) {
			/* Its waiters now wait for the seal's write, which retries. */
			e->log.ow_broken = false;
			if (s == e->log.open)
				bc_seglog_seal(e);
		}
		if (s->seal_waiting)
			bc_seglog_seal_write(e, s);
	}
	bc_seglog_written_progress(e);
	bc_seglog_flush_kick(e); /* persistent memory: FLUSH waits for rounds, then a flush */
	if (!e->log.ow_broken)
		bc_seglog_written_kick(e);
}

bool bc_seglog_entries_written(const struct bc_engine *e, uint64_t seq, uint32_t nent)
{
	const struct bc_seg *s;

	if (seq <= e->log.written_seq)
		return true;
	if (seq != e->log.written_seq + 1)
		return false;
	s = &e->log.segs[seg_pos(e, seq)];
	return s->seq == seq && s->persisted >= nent;
}

bool bc_seglog_openwrite_idle(const struct bc_engine *e)
{
	return !e->log.ow_seg;
}
