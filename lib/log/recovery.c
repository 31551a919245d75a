/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Recovery at start-up: read every segment header (many reads in flight),
 * walk the log from the first segment not yet written back while each
 * position holds a valid header with exactly the expected sequence, verify
 * the data CRCs of segments that were not yet known durable (a torn one
 * keeps its entries before the first whose data does not match, and the log
 * ends there; its header is rewritten to say so), replay the
 * chain in order into the index, and invalidate any valid header beyond the
 * end so it can never be mistaken for part of the log later.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "format/logscan.h"
#include "format/superblock.h"

struct hdr_read {
	unsigned pending;
	int error;
};

static void hdr_read_done(struct bc_dev_io *io, int res)
{
	struct hdr_read *h = io->priv;

	if (res < 0 && !h->error)
		h->error = res;
	h->pending--;
}

static int read_headers(struct bc_engine *e, char *hdrs)
{
	size_t hsz = (size_t)e->hdr_blocks * BC_BLOCK_SIZE;
	struct hdr_read h = { 0 };
	struct bc_dev_io *ios;
	uint32_t pos;
	int ret = 0;

	ios = calloc(e->nseg, sizeof(*ios));
	if (!ios)
		return -ENOMEM;
	for (pos = 0; pos < e->nseg; pos++) {
		bc_dev_io_init(&ios[pos], BC_DIO_READ, hdrs + (size_t)pos * hsz, hsz,
			       seg_offset(e, pos), hdr_read_done, &h);
		h.pending++;
		bc_dev_submit(e->cache, &ios[pos]);
		/* Keep a bounded number in flight. */
		while (h.pending >= 256 && ret >= 0)
			ret = bc_loop_run_once(e->loop, -1);
	}
	while (h.pending && ret >= 0)
		ret = bc_loop_run_once(e->loop, -1);
	free(ios);
	if (ret < 0)
		return ret;
	return h.error;
}

/* Read the segment at @pos (whole: it may hold rounds after its header's
 * entries, log/openwrite.c) and extend our copy of its header @hdr with
 * them.  Rounds found, or -errno. */
static int read_rounds(struct bc_engine *e, uint32_t pos, struct bc_seg_hdr *hdr, void *buf)
{
	int ret = bc_dev_rw_sync(e->cache, BC_DIO_READ, buf, e->seg_size, seg_offset(e, pos));

	return ret < 0 ? ret : (int)bc_logscan_rounds(hdr, buf, e->hdr_blocks, e->data_blocks);
}

/* Rewrite the header of the segment at @pos (our copy at @hdr) for its first
 * @n entries: the log ends inside it (it is torn), or it took rounds.  A
 * later recovery, which may count it as flushed, then replays exactly
 * these. */
static int rewrite_segment(struct bc_engine *e, uint32_t pos, struct bc_seg_hdr *hdr, uint32_t n)
{
	memset(&hdr->entries[n], 0, (size_t)(hdr->nr_entries - n) * sizeof(hdr->entries[0]));
	hdr->nr_entries = n;
	bc_seg_hdr_seal(hdr, e->hdr_blocks);
	return bc_dev_rw_sync(e->cache, BC_DIO_WRITE, hdr, (uint64_t)e->hdr_blocks * BC_BLOCK_SIZE,
			      seg_offset(e, pos));
}

/* A v4 segment written in rounds to its end (BC_SEG_ROUNDS_FINAL) is torn
 * at entry @n: its header is never rewritten.  Torn in the header's own
 * @own entries (its first write, never acknowledged): the log ends before
 * it.  Torn in a round: that round and any after it are void -- the round
 * block is zeroed on the device, so a later recovery stops there too -- and
 * the log ends in it.  Returns the new end, or -errno. */
static int64_t cut_final(struct bc_engine *e, uint64_t seq, struct bc_seg_hdr *hdr, uint32_t own,
			 uint32_t n, void *buf)
{
	uint32_t k = n;
	int ret;

	if (n < own)
		return (int64_t)seq - 1;
	while (k > own && !bc_ent_is_round(&hdr->entries[k]))
		k--;
	memset(buf, 0, BC_BLOCK_SIZE);
	ret = bc_dev_rw_sync(e->cache, BC_DIO_WRITE, buf, BC_BLOCK_SIZE,
			     seg_offset(e, seg_pos(e, seq)) +
			     (uint64_t)(e->hdr_blocks + k) * BC_BLOCK_SIZE);
	if (ret < 0)
		return ret;
	hdr->nr_entries = k;
	return (int64_t)seq;
}

/* A segment spans FLUSH epochs (a FLUSH starts a new round), a round block
 * says its entries'.  The header's own round entries hold it in their
 * block field, as epochs after the header's; the rounds found after them
 * (@own on) get it from their round blocks here (a v3 header rewritten
 * for them then records it; a v4 header is never rewritten).  A round
 * block from before epochs were recorded (0) or out of order counts as its
 * predecessor's. */
static void note_round_epochs(struct bc_engine *e, struct bc_seg_hdr *hdr, uint32_t own,
			      const void *segbuf)
{
	uint64_t delta = 0;
	uint32_t k;

	for (k = 0; k < own; k++)
		if (bc_ent_is_round(&hdr->entries[k]) && hdr->entries[k].block > delta &&
		    hdr->entries[k].block < BC_SLOT_MAX_BLOCKS)
			delta = hdr->entries[k].block;
	for (k = own; k < hdr->nr_entries; k++) {
		const struct bc_round_hdr *r;

		if (!bc_ent_is_round(&hdr->entries[k]))
			continue;
		r = (const void *)((const char *)segbuf + (size_t)(e->hdr_blocks + k) * BC_BLOCK_SIZE);
		if (r->epoch > hdr->epoch + delta && r->epoch - hdr->epoch < BC_SLOT_MAX_BLOCKS)
			delta = r->epoch - hdr->epoch;
		hdr->entries[k].block = delta;
	}
}

struct tail {
	uint64_t flushed;   /* known durable up to here: no data check */
	unsigned verified;
	bool fixed;         /* something was written: a device flush is due */
};

/* Check one segment of the log: extend it by its rounds, and if not known
 * durable verify its data.  Returns the end of the log (@end, or earlier if
 * it is torn) or -errno (@why says so). */
static int64_t check_segment(struct bc_engine *e, uint64_t seq, struct bc_seg_hdr *hdr,
			     uint64_t end, void *segbuf, struct tail *t, char *why, size_t whylen)
{
	uint32_t pos = seg_pos(e, seq), own = hdr->nr_entries;
	bool final = hdr->flags & BC_SEG_ROUNDS_FINAL;
	int rounds;
	int64_t n;

	/* Durable, and no room after its header's entries for a round. */
	if (seq <= t->flushed && own + 1 >= e->data_blocks)
		return (int64_t)end;
	rounds = read_rounds(e, pos, hdr, segbuf);
	if (rounds < 0) {
		bc_why(why, whylen, "reading segment %llu from the cache device failed: %s",
		       (unsigned long long)seq, strerror(-rounds));
		return rounds;
	}
	note_round_epochs(e, hdr, own, segbuf);
	if (seq <= t->flushed)
		return (int64_t)end; /* durable: its rounds count, its data is not checked */
	t->verified++;
	/* The entries before the first whose data CRC does not match (a write
	 * torn by a crash). */
	n = bc_logscan_intact(hdr, segbuf, e->hdr_blocks);
	if ((uint32_t)n < hdr->nr_entries) {
		bc_elog(e, BC_LOG_WARN, "recovery: segment %llu is torn at entry %u of %u "
			    "(data checksum mismatch); the log ends %s", (unsigned long long)seq,
			    (unsigned)n, hdr->nr_entries,
			    (final ? n >= own : n > 0) ? "there" : "before it");
		t->fixed = true;
		if (final)
			n = cut_final(e, seq, hdr, own, (uint32_t)n, segbuf);
		else if (n)
			n = rewrite_segment(e, pos, hdr, (uint32_t)n) < 0 ? -EIO : (int64_t)seq;
		else
			n = (int64_t)seq - 1;
		if (n < 0)
			bc_why(why, whylen, "cutting segment %llu where it is torn failed",
			       (unsigned long long)seq);
		return n;
	}
	/* Extended by rounds: say so on disk (a v4 segment's header stays). */
	if (rounds && !final) {
		int ret = rewrite_segment(e, pos, hdr, (uint32_t)n);

		t->fixed = true;
		if (ret < 0) {
			bc_why(why, whylen, "rewriting the header of segment %llu failed: %s",
			       (unsigned long long)seq, strerror(-ret));
			return ret;
		}
	}
	return (int64_t)end;
}

/* Segments not known durable may be torn: check their data; segments
 * written in rounds to their end (v4) get their rounds, durable or not.
 * Returns the new end of the log (>= 0) or -errno. */
static int64_t verify_tail(struct bc_engine *e, char *hdrs, uint64_t wb, uint64_t end,
			   struct tail *t, char *why, size_t whylen)
{
	size_t hsz = (size_t)e->hdr_blocks * BC_BLOCK_SIZE;
	void *segbuf = bc_alloc_aligned(e->seg_size);
	uint64_t seq, last = end;
	int64_t n = (int64_t)end;

	if (!segbuf) {
		bc_why(why, whylen, "out of memory verifying the log's newest segments");
		return -ENOMEM;
	}
	for (seq = wb + 1; seq <= last; seq++) {
		struct bc_seg_hdr *hdr = (struct bc_seg_hdr *)(hdrs + (size_t)seg_pos(e, seq) * hsz);

		if (seq <= t->flushed && !(hdr->flags & BC_SEG_ROUNDS_FINAL))
			continue;
		n = check_segment(e, seq, hdr, last, segbuf, t, why, whylen);
		if (n < 0 || (uint64_t)n < last || (uint64_t)n == seq)
			break;
	}
	free(segbuf);
	return n;
}

/* Replay segment @hdr into the index; its entries of epochs up to
 * @clean_upto are on the origin already (segment written_back_seq + 1 on
 * persistent memory: bc_sb_disk.written_back_epoch). */
static int replay_segment(struct bc_engine *e, uint32_t pos, const struct bc_seg_hdr *hdr,
			  uint64_t clean_upto)
{
	struct bc_seg *s = &e->log.segs[pos];
	uint64_t epoch = hdr->epoch;
	uint32_t i;

	s->seq = hdr->seq;
	s->epoch = s->last_epoch = hdr->epoch;
	if (hdr->epoch >= e->log.epoch)
		e->log.epoch = hdr->epoch + 1;
	s->nr_entries = hdr->nr_entries;
	s->state = BC_SEG_ONDISK;
	for (i = 0; i < hdr->nr_entries; i++) {
		const struct bc_seg_entry *ent = &hdr->entries[i];
		uint32_t slot = pos * e->data_blocks + i;
		uint8_t dirty;
		uint64_t b;

		if (bc_ent_is_round(ent)) {
			e->log.slots[slot] = bc_slot_round(ent->block);
			epoch = s->last_epoch = hdr->epoch + ent->block;
			if (epoch >= e->log.epoch)
				e->log.epoch = epoch + 1;
			continue;
		}
		dirty = epoch > clean_upto ? (uint8_t)(ent->flags & BC_ENT_DIRTY) : 0;
		if (!(ent->flags & (BC_ENT_ZERO | BC_ENT_INVALID)) && ent->nblocks != 1)
			return -EBADMSG;
		if (ent->block + ent->nblocks > e->export_blocks || !bc_slot_fits(ent))
			return -EBADMSG;
		e->log.slots[slot] = bc_slot_make(ent);
		if (e->log.crcs)
			e->log.crcs[slot] = ent->data_crc;
		if (ent->flags & BC_ENT_INVALID) {
			/* A write went around the cache: older copies are void. */
			for (b = ent->block; b < ent->block + ent->nblocks; b++) {
				struct bc_ix_ent ix;

				if (bc_index_find(&e->index, b, &ix))
					bc_ix_drop(e, &ix);
			}
			continue;
		}
		for (b = ent->block; b < ent->block + ent->nblocks; b++) {
			struct bc_ix_ent ix;

			if (bc_index_insert(&e->index, b, &ix) < 0)
				return -ENOMEM;
			bc_ix_set(e, &ix, slot, dirty);
		}
	}
	return 0;
}

struct scan_ctx {
	struct bc_engine *e;
	const char *hdrs;
	size_t hsz;
};

/* The chain walk's view of one header; a damaged one is where the log ends. */
static void scan_get(void *arg, uint32_t pos, uint64_t seq, struct bc_logscan_hdr *out)
{
	struct scan_ctx *sc = arg;
	struct bc_engine *e = sc->e;
	const struct bc_seg_hdr *h = (const void *)(sc->hdrs + (size_t)pos * sc->hsz);
	enum bc_fmt_status hst = bc_seg_hdr_check(h, e->hdr_blocks, e->data_blocks,
						  e->sb.format_nonce);

	if (hst == BC_FMT_BAD_CRC || hst == BC_FMT_BAD_GEOMETRY)
		bc_elog(e, BC_LOG_WARN, "recovery: segment header at ring position %u "
			    "(where segment %llu would be) is damaged (%s); the log ends before it",
			    pos, (unsigned long long)seq, bc_fmt_strerror(hst));
	out->valid = hst == BC_FMT_OK;
	out->seq = h->seq;
	out->flushed_seq = h->flushed_seq;
}

int bc_recover(struct bc_engine *e, char *why, size_t whylen)
{
	struct scan_ctx scan;
	struct bc_logscan chain;
	struct tail tv = { 0 };
	size_t hsz = (size_t)e->hdr_blocks * BC_BLOCK_SIZE;
	uint64_t wb = e->sb.written_back_seq, seq, end, flushed = 0, t0 = bc_now_ns();
	unsigned stale = 0, verified = 0;
	bool fixed = false;
	int64_t tail;
	char *hdrs;
	void *segbuf = NULL;
	uint32_t pos;
	int ret;

	hdrs = bc_alloc_aligned(hsz * e->nseg);
	if (!hdrs) {
		bc_why(why, whylen, "out of memory reading %u segment headers", e->nseg);
		return -ENOMEM;
	}
	ret = read_headers(e, hdrs);
	if (ret < 0) {
		bc_why(why, whylen, "reading segment headers from the cache device failed: %s",
		       strerror(-ret));
		goto out;
	}
#define HDR(p) ((const struct bc_seg_hdr *)(hdrs + (size_t)(p) * hsz))
	scan = (struct scan_ctx){ .e = e, .hdrs = hdrs, .hsz = hsz };
	bc_logscan_chain(&e->sb, scan_get, &scan, &chain);
	end = chain.end;
	flushed = chain.flushed;
	tv.flushed = flushed;
	tail = verify_tail(e, hdrs, wb, end, &tv, why, whylen);
	verified = tv.verified;
	fixed = tv.fixed;
	if (tail < 0) {
		ret = (int)tail;
		goto out;
	}
	end = (uint64_t)tail;
	segbuf = bc_alloc_aligned(BC_BLOCK_SIZE);
	if (!segbuf) {
		ret = -ENOMEM;
		goto out;
	}
	/* Any other valid header newer than the end must never be replayed. */
	memset(segbuf, 0, BC_BLOCK_SIZE);
	for (pos = 0; pos < e->nseg; pos++) {
		const struct bc_seg_hdr *h = HDR(pos);

		if (bc_seg_hdr_check(h, e->hdr_blocks, e->data_blocks, e->sb.format_nonce) != BC_FMT_OK ||
		    h->seq <= end)
			continue;
		ret = bc_dev_rw_sync(e->cache, BC_DIO_WRITE, segbuf, BC_BLOCK_SIZE, seg_offset(e, pos));
		if (ret < 0) {
			bc_why(why, whylen, "invalidating a stale segment header failed: %s",
			       strerror(-ret));
			goto out;
		}
		stale++;
	}
	if (stale || fixed) {
		ret = bc_dev_rw_sync(e->cache, BC_DIO_FLUSH, NULL, 0, 0);
		if (ret < 0)
			goto out;
	}
	if (stale)
		bc_elog(e, BC_LOG_INFO, "recovery: invalidated %u segment(s) beyond the end of the log",
		       stale);
	for (seq = wb + 1; seq <= end; seq++) {
		pos = seg_pos(e, seq);
		ret = replay_segment(e, pos, HDR(pos), bc_sb_wb_epoch(e, seq));
		if (ret < 0) {
			bc_why(why, whylen, "segment %llu has an entry outside the origin: the cache "
			       "device is corrupted", (unsigned long long)seq);
			goto out;
		}
	}
#undef HDR
	/* Epoch 0 is never a new segment's: bc_sb_disk.written_back_epoch 0
	 * says no epoch of a segment is written back. */
	if (!e->log.epoch)
		e->log.epoch = 1;
	e->log.wb_seq = e->log.carry_last = wb;
	e->log.tail_seq = wb + 1;
	e->log.head_seq = end + 1;
	e->log.written_seq = e->log.durable_seq = end;
	e->st.recovered_segments = end - wb;
	e->st.recovery_ms = (bc_now_ns() - t0) / 1000000;
	bc_elog(e, BC_LOG_INFO, "recovery: replayed %llu segment(s) (%u data-verified), %llu dirty blocks, "
	       "%llu ms", (unsigned long long)(end - wb), verified, (unsigned long long)e->nr_dirty,
	       (unsigned long long)e->st.recovery_ms);
	ret = 0;
out:
	free(segbuf);
	free(hdrs);
	return ret;
}
