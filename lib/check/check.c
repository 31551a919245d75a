/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Offline check of a cache device: both superblock copies, the header of
 * every ring position, the log chain as recovery walks it (one rule for both:
 * format/logscan.c), every entry and data block of the log, and the origin
 * label.
 * Nothing is written.  Which findings are normal after a crash and which are
 * damage is explained in include/blkcache/check.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check/check_internal.h"
#include "format/logscan.h"
#include "format/superblock.h"

void bc_ck_say(struct ck *c, struct bc_check_finding f, enum bc_check_severity sev,
	       enum bc_check_recovery rec, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
	va_end(ap);
	f.severity = sev;
	f.recovery = rec;
	f.msg = c->msg;
	f.origin = c->origin_tag;
	if (sev == BC_CHECK_ERROR)
		c->res->errors++;
	else
		c->res->notices++;
	if (c->ops && c->ops->finding)
		c->ops->finding(c->arg, &f);
}

const char *bc_check_recovery_name(enum bc_check_recovery r)
{
	switch (r) {
	case BC_CHECK_REC_COPES: return "copes";
	case BC_CHECK_REC_DATA_LOSS: return "data loss";
	case BC_CHECK_REC_REFUSES: return "refuses to start";
	}
	return "unknown";
}

const char *bc_check_locate(const struct bc_check_finding *f, char *buf, size_t len)
{
	int n = 0;

	switch (f->area) {
	case BC_CHECK_DEVICE: n = snprintf(buf, len, "cache device"); break;
	case BC_CHECK_SUPERBLOCK: n = snprintf(buf, len, "superblock copy %d", f->sb_copy); break;
	case BC_CHECK_LABEL: n = snprintf(buf, len, "origin label"); break;
	case BC_CHECK_LOG: n = snprintf(buf, len, "log"); break;
	case BC_CHECK_SEGMENT:
	case BC_CHECK_ENTRY:
	case BC_CHECK_DATA:
		if (f->seq)
			n = snprintf(buf, len, "segment seq %llu at ring position %lld", U(f->seq),
				     (long long)f->pos);
		else
			n = snprintf(buf, len, "ring position %lld", (long long)f->pos);
		break;
	}
	if (n < 0 || (size_t)n >= len)
		return buf;
	if (f->area == BC_CHECK_LOG && f->seq)
		snprintf(buf + n, len - (size_t)n, " (end: segment seq %llu, ring position %lld)",
			 U(f->seq), (long long)f->pos);
	else if (f->entry >= 0)
		snprintf(buf + n, len - (size_t)n, ", entry %lld (origin block %llu)%s",
			 (long long)f->entry, U(f->block), f->area == BC_CHECK_DATA ? ", data block" : "");
	return buf;
}

#define seg_off(c, pos) ((c)->sb.ring_offset + (uint64_t)(pos) * (c)->sb.segment_size)

/* ---- superblocks ---- */

static const char *sb_problem(const struct bc_sb_disk *sb, enum bc_fmt_status st, char *buf,
			      size_t len)
{
	if (st == BC_FMT_BAD_VERSION)
		snprintf(buf, len, "has on-disk format version %u; this blkcache supports versions "
			 "%u to %u", sb->version, BC_FORMAT_VERSION_MIN, BC_FORMAT_VERSION);
	else if (st == BC_FMT_BAD_MAGIC)
		snprintf(buf, len, "holds no superblock (bad magic number)");
	else
		snprintf(buf, len, "is invalid: %s", bc_fmt_strerror(st));
	return buf;
}

/* Do two valid copies describe the same format of the same cache? */
static bool same_cache(const struct bc_sb_disk *a, const struct bc_sb_disk *b)
{
	return !memcmp(a->cache_uuid, b->cache_uuid, 16) && !memcmp(a->origin_uuid, b->origin_uuid, 16) &&
	       a->format_nonce == b->format_nonce && a->origin_size == b->origin_size &&
	       a->export_size == b->export_size && a->cache_size == b->cache_size &&
	       a->segment_size == b->segment_size && a->format_time == b->format_time;
}

static void check_sb_pair(struct ck *c, const struct bc_sb_disk *two, const enum bc_fmt_status *st,
			  int cur)
{
	int i;

	for (i = 0; i < 2; i++)
		if (st[i] == BC_FMT_OK && two[i].seq % BC_SB_COPIES != (uint64_t)i)
			say(c, at_sb(i), BC_CHECK_ERROR, BC_CHECK_REC_COPES,
			    "holds generation %llu, which belongs in copy %llu (generation g is "
			    "always written to copy g mod 2)", U(two[i].seq), U(two[i].seq % 2));
	if (st[0] != BC_FMT_OK || st[1] != BC_FMT_OK)
		return;
	if (!same_cache(&two[0], &two[1]))
		say(c, at_sb(!cur), BC_CHECK_ERROR, BC_CHECK_REC_COPES,
		    "describes another cache than copy %d (UUIDs, format nonce, sizes or geometry "
		    "differ); recovery uses copy %d (generation %llu)", cur, cur, U(two[cur].seq));
	else if (two[cur].seq - two[!cur].seq != 1)
		say(c, at_sb(!cur), BC_CHECK_ERROR, BC_CHECK_REC_COPES,
		    "holds generation %llu, but copy %d holds %llu: the two copies should hold "
		    "consecutive generations (a superblock write was lost); recovery uses copy %d",
		    U(two[!cur].seq), cur, U(two[cur].seq), cur);
}

void bc_ck_fill(struct bc_check_result *r, const struct bc_sb_disk *cur)
{
	r->sb_generation = cur->seq;
	bc_uuid_format(cur->cache_uuid, r->cache_uuid);
	bc_uuid_format(cur->origin_uuid, r->origin_uuid);
	r->cache_size = cur->cache_size;
	r->export_size = cur->export_size;
	r->origin_size = cur->origin_size;
	r->segment_size = cur->segment_size;
	r->nr_segments = cur->nr_segments;
	r->header_blocks = cur->header_blocks;
	r->data_blocks = cur->data_blocks;
	r->mode = cur->mode;
	r->flags = cur->flags;
	r->clean_shutdown = cur->flags & BC_SB_CLEAN;
	r->detached = cur->flags & BC_SB_DETACHED;
	r->written_back_seq = cur->written_back_seq;
	r->last_seq = cur->last_seq;
}

/* 1: a valid superblock is in c->sb; 0: none (reported); -errno. */
static int check_superblocks(struct ck *c)
{
	struct bc_check_result *r = c->res;
	const struct bc_sb_disk *cur;
	enum bc_fmt_status st[2];
	struct bc_sb_disk *two;
	char what[160];
	int i, ret;

	if (c->cache->size < 2 * BC_BLOCK_SIZE) {
		say(c, at(BC_CHECK_DEVICE), BC_CHECK_ERROR, BC_CHECK_REC_REFUSES,
		    "the device is %llu bytes: too small for the superblocks; not a blkcache cache",
		    U(c->cache->size));
		return 0;
	}
	two = bc_alloc_aligned(2 * BC_BLOCK_SIZE);
	if (!two)
		return -ENOMEM;
	ret = bc_sb_read(c->cache, two);
	if (ret < 0) {
		say(c, at(BC_CHECK_DEVICE), BC_CHECK_ERROR, BC_CHECK_REC_REFUSES,
		    "cannot read the superblocks: %s", strerror(-ret));
		ret = 0;
		goto out;
	}
	cur = bc_sb_pick(&two[0], &two[1], &st[0], &st[1]);
	ret = 0;
	if (st[0] == BC_FMT_BAD_MAGIC && st[1] == BC_FMT_BAD_MAGIC) {
		say(c, at(BC_CHECK_DEVICE), BC_CHECK_ERROR, BC_CHECK_REC_REFUSES,
		    "not a blkcache cache: neither superblock copy has the magic number (run "
		    "'blkcache format' first)");
		goto out;
	}
	for (i = 0; i < 2; i++) {
		if (st[i] == BC_FMT_OK)
			continue;
		sb_problem(&two[i], st[i], what, sizeof(what));
		if (st[!i] == BC_FMT_OK)
			say(c, at_sb(i), BC_CHECK_ERROR, BC_CHECK_REC_COPES,
			    "%s; recovery falls back to copy %d (generation %llu)", what, !i,
			    U(two[!i].seq));
		else
			say(c, at_sb(i), BC_CHECK_ERROR, BC_CHECK_REC_REFUSES,
			    "%s; the other copy is not usable either, so serve refuses the device", what);
	}
	if (!cur)
		goto out;
	r->sb_copy = cur == &two[0] ? 0 : 1;
	check_sb_pair(c, two, st, r->sb_copy);
	c->sb = *cur;
	r->superblock_ok = true;
	r->format_version = cur->version;
	bc_ck_fill(r, cur);
	ret = 1;
out:
	free(two);
	return ret;
}

/* Flags, sizes and sequence numbers of the current copy.  0: the ring
 * cannot be checked (reported). */
static int check_sb_fields(struct ck *c)
{
	const struct bc_sb_disk *sb = &c->sb;
	int cur = c->res->sb_copy;
	uint32_t unknown = sb->flags & ~(BC_SB_CLEAN | BC_SB_DATA_CRC | BC_SB_DETACHED |
					 BC_SB_ORIGIN_LABEL);
	uint64_t want_export = bc_sb_labeled(sb) ? bc_label_offset(sb->origin_size) :
			       sb->origin_size & ~(uint64_t)(BC_BLOCK_SIZE - 1);

	if (unknown)
		say(c, at_sb(cur), BC_CHECK_ERROR, BC_CHECK_REC_COPES,
		    "unknown flag bits 0x%x are set (this blkcache ignores them)", unknown);
	if (sb->export_size != want_export)
		say(c, at_sb(cur), BC_CHECK_ERROR,
		    sb->export_size > want_export ? BC_CHECK_REC_DATA_LOSS : BC_CHECK_REC_COPES,
		    "export_size %llu does not fit origin_size %llu (expected %llu: the origin "
		    "rounded down to 4 KiB%s)", U(sb->export_size), U(sb->origin_size), U(want_export),
		    bc_sb_labeled(sb) ? ", minus the label block" : "");
	if (sb->written_back_seq > sb->last_seq)
		say(c, at_sb(cur), BC_CHECK_ERROR, BC_CHECK_REC_COPES,
		    "written_back_seq %llu is above last_seq %llu: a segment cannot be written back "
		    "before it is written", U(sb->written_back_seq), U(sb->last_seq));
	if (sb->cache_size > c->cache->size) {
		say(c, at(BC_CHECK_DEVICE), BC_CHECK_ERROR, BC_CHECK_REC_REFUSES,
		    "the device is %llu bytes, but it was formatted with %llu: it shrank or is the "
		    "wrong device; the ring is not checked", U(c->cache->size), U(sb->cache_size));
		return 0;
	}
	if (sb->written_back_seq > UINT64_MAX / 2 || sb->last_seq > UINT64_MAX / 2) {
		say(c, at_sb(cur), BC_CHECK_ERROR, BC_CHECK_REC_REFUSES,
		    "sequence numbers out of range (written_back_seq %llu, last_seq %llu); the ring "
		    "is not checked", U(sb->written_back_seq), U(sb->last_seq));
		return 0;
	}
	return 1;
}

/* ---- the ring ---- */

static void classify(struct ck *c, struct pos_info *p, const struct bc_seg_hdr *h)
{
	static const char zero[sizeof(struct bc_seg_hdr)];
	enum bc_fmt_status st = bc_seg_hdr_check(h, c->hdr_blocks, c->data_blocks, c->sb.format_nonce);

	p->st = (uint8_t)st;
	p->seq = h->seq;
	p->flushed = h->flushed_seq;
	p->nr_entries = h->nr_entries;
	p->hdr_blocks = h->header_blocks;
	if (st == BC_FMT_OK)
		p->kind = PK_VALID;
	else if (st == BC_FMT_BAD_MAGIC)
		p->kind = memcmp(h, zero, sizeof(zero)) ? PK_OTHER : PK_EMPTY;
	else if (h->format_nonce != c->sb.format_nonce)
		p->kind = PK_FOREIGN;
	else
		p->kind = PK_DAMAGED;
}

static void scan_ring(struct ck *c)
{
	size_t hsz = (size_t)c->hdr_blocks * BC_BLOCK_SIZE;
	uint32_t pos;
	int ret;

	for (pos = 0; pos < c->nseg; pos++) {
		ret = bc_dev_rw_sync(c->cache, BC_DIO_READ, c->seg, hsz, seg_off(c, pos));
		if (ret < 0) {
			c->pos[pos].kind = PK_UNREAD;
			say(c, at_seg(BC_CHECK_SEGMENT, 0, pos), BC_CHECK_ERROR, BC_CHECK_REC_REFUSES,
			    "cannot read the segment header: %s (recovery reads every header and "
			    "fails too)", strerror(-ret));
			continue;
		}
		classify(c, &c->pos[pos], c->seg);
		if (c->pos[pos].kind == PK_VALID)
			c->res->headers_valid++;
	}
}

static bool right_slot(const struct ck *c, uint32_t pos)
{
	const struct pos_info *p = &c->pos[pos];

	return p->kind == PK_VALID && p->seq && p->seq % c->nseg == pos;
}

/* The chain as recovery walks it (format/logscan.c), recovery's flushed point, and the
 * highest segment anything vouches for as written. */
static void chain_get(void *arg, uint32_t pos, uint64_t seq, struct bc_logscan_hdr *h)
{
	const struct pos_info *p = &((struct ck *)arg)->pos[pos];

	(void)seq;
	h->valid = p->kind == PK_VALID;
	h->seq = p->seq;
	h->flushed_seq = p->flushed;
}

static void walk_chain(struct ck *c)
{
	struct bc_check_result *r = c->res;
	struct bc_logscan chain;
	uint32_t pos;

	bc_logscan_chain(&c->sb, chain_get, c, &chain);
	r->chain_end = chain.end;
	r->flushed_seq = chain.flushed;
	c->vouch = c->sb.last_seq;
	snprintf(c->vouch_by, sizeof(c->vouch_by), "the %ssuperblock's last_seq",
		 (c->sb.flags & BC_SB_CLEAN) ? "clean " : "");
	for (pos = 0; pos < c->nseg; pos++) {
		const struct pos_info *p = &c->pos[pos];

		if (right_slot(c, pos) && p->flushed < p->seq && p->flushed > c->vouch) {
			c->vouch = p->flushed;
			snprintf(c->vouch_by, sizeof(c->vouch_by), "the flushed_seq of segment %llu",
				 U(p->seq));
		}
	}
}

static void check_entry(struct ck *c, uint64_t seq, uint32_t pos, uint32_t i,
			const struct bc_seg_entry *ent, bool replayed)
{
	struct bc_check_finding f = at_ent(BC_CHECK_ENTRY, seq, pos, i, ent->block);
	uint64_t nblk = c->sb.export_size >> BC_BLOCK_SHIFT;
	uint8_t unknown = (uint8_t)(ent->flags & ~(BC_ENT_DIRTY | BC_ENT_ZERO | BC_ENT_INVALID));
	bool ranged = ent->flags & (BC_ENT_ZERO | BC_ENT_INVALID);
	const char *dropped = replayed ? "" : " (in a segment recovery drops)";
	enum bc_check_recovery refuse = replayed ? BC_CHECK_REC_REFUSES : BC_CHECK_REC_COPES;

	/* A round block's slot (block: its epoch after the segment's). */
	if (bc_ent_is_round(ent) && ent->mask == BC_FULL_MASK && ent->block < BC_MAX_ORIGIN_BLOCKS &&
	    !ent->data_crc)
		return;

	if (unknown)
		say(c, f, BC_CHECK_ERROR, BC_CHECK_REC_COPES,
		    "unknown flag bits 0x%02x (recovery ignores them)%s", unknown, dropped);
	if ((ent->flags & BC_ENT_ZERO) && (ent->flags & BC_ENT_INVALID))
		say(c, f, BC_CHECK_ERROR, BC_CHECK_REC_COPES,
		    "flags 0x%02x combine ZERO and INVALID%s", ent->flags, dropped);
	if (!ranged && ent->nblocks != 1)
		say(c, f, BC_CHECK_ERROR, refuse,
		    "a data entry with nblocks %u (must be 1)%s", ent->nblocks,
		    replayed ? ": serve refuses to start (corrupted cache device)" : dropped);
	if (ranged && ent->nblocks == 0)
		say(c, f, BC_CHECK_ERROR, BC_CHECK_REC_COPES, "a %s entry of 0 blocks%s",
		    (ent->flags & BC_ENT_ZERO) ? "ZERO" : "INVALID", dropped);
	if (ent->block >= nblk || ent->nblocks > nblk - ent->block)
		say(c, f, BC_CHECK_ERROR, refuse,
		    "blocks %llu..%llu lie beyond the exported size (%llu blocks)%s", U(ent->block),
		    U(ent->block + ent->nblocks - 1), U(nblk),
		    replayed ? ": serve refuses to start (corrupted cache device)" : dropped);
	if (!ranged && !ent->mask)
		say(c, f, BC_CHECK_ERROR, replayed ? BC_CHECK_REC_DATA_LOSS : BC_CHECK_REC_COPES,
		    "a data entry with an empty sector mask: it would hide the older cached "
		    "sectors of the block%s", dropped);
	if (ranged && (ent->mask != BC_FULL_MASK || ent->data_crc))
		say(c, f, BC_CHECK_ERROR, BC_CHECK_REC_COPES,
		    "a %s entry with mask 0x%02x and data_crc 0x%08x (written as 0xff and 0)%s",
		    (ent->flags & BC_ENT_ZERO) ? "ZERO" : "INVALID", ent->mask, ent->data_crc,
		    dropped);
}

static void data_mismatch(struct ck *c, uint64_t seq, uint32_t pos, uint32_t i,
			  const struct bc_seg_entry *ent, uint32_t crc)
{
	struct bc_check_finding f = at_ent(BC_CHECK_DATA, seq, pos, i, ent->block);
	uint64_t flushed = c->res->flushed_seq;

	c->res->data_mismatches++;
	if (seq <= flushed) {
		say(c, f, BC_CHECK_ERROR, BC_CHECK_REC_DATA_LOSS,
		    "data checksum mismatch (entry 0x%08x, block 0x%08x) in a segment known to be "
		    "flushed (up to %llu): recovery does not verify it and would use the corrupted "
		    "block", ent->data_crc, crc, U(flushed));
		return;
	}
	if (!c->torn) {
		c->torn = seq;
		c->torn_ent = i;
	}
	if (seq <= c->vouch)
		say(c, f, BC_CHECK_ERROR, BC_CHECK_REC_DATA_LOSS,
		    "data checksum mismatch (entry 0x%08x, block 0x%08x): recovery takes segment "
		    "%llu for torn at entry %u and ends the log there, but %s says segments up to "
		    "%llu had been written", ent->data_crc, crc, U(c->torn), c->torn_ent, c->vouch_by,
		    U(c->vouch));
	else if (seq == c->torn && i == c->torn_ent)
		say(c, f, BC_CHECK_NOTICE, BC_CHECK_REC_COPES,
		    "data checksum mismatch (entry 0x%08x, block 0x%08x) in a segment never "
		    "flushed: torn by a crash (normal); recovery keeps the segment's first %u "
		    "entries and ends the log there", ent->data_crc, crc, i);
	else
		say(c, f, BC_CHECK_NOTICE, BC_CHECK_REC_COPES,
		    "data checksum mismatch (entry 0x%08x, block 0x%08x) after the torn entry %u of "
		    "segment %llu: recovery drops it anyway", ent->data_crc, crc, c->torn_ent,
		    U(c->torn));
}

/* Does recovery replay entry @i of segment @seq (the log ends at the first
 * entry whose data is torn)? */
static bool replayed_entry(const struct ck *c, uint64_t seq, uint32_t i)
{
	return !c->torn || seq < c->torn || (seq == c->torn && i < c->torn_ent);
}

/* Read segment @seq of the chain; check its entries and data CRCs. */
static void check_segment(struct ck *c, uint64_t seq)
{
	uint32_t pos = (uint32_t)(seq % c->nseg), i;
	const struct pos_info *p = &c->pos[pos];
	const struct bc_seg_hdr *h = c->seg;
	bool replayed;
	int ret;

	ret = bc_dev_rw_sync(c->cache, BC_DIO_READ, c->seg, c->sb.segment_size, seg_off(c, pos));
	if (ret < 0) {
		say(c, at_seg(BC_CHECK_SEGMENT, seq, pos), BC_CHECK_ERROR, BC_CHECK_REC_REFUSES,
		    "cannot read the segment: %s", strerror(-ret));
		return;
	}
	if (bc_seg_hdr_check(h, c->hdr_blocks, c->data_blocks, c->sb.format_nonce) != BC_FMT_OK || h->seq != seq ||
	    h->nr_entries != p->nr_entries) {
		say(c, at_seg(BC_CHECK_SEGMENT, seq, pos), BC_CHECK_ERROR, BC_CHECK_REC_COPES,
		    "the header changed while the device was being checked (is it in use?)");
		return;
	}
	/* Not known flushed, or written in rounds to its end (v4): recovery
	 * follows the rounds written after the header's entries
	 * (format/logscan.c), and so do we. */
	if (seq > c->res->flushed_seq || (h->flags & BC_SEG_ROUNDS_FINAL)) {
		unsigned rounds = bc_logscan_rounds(c->seg, c->seg, c->hdr_blocks, c->data_blocks);

		if (rounds && !(h->flags & BC_SEG_ROUNDS_FINAL))
			say(c, at_seg(BC_CHECK_SEGMENT, seq, pos), BC_CHECK_NOTICE, BC_CHECK_REC_COPES,
			    "%u round(s) written after the header's %u entries (written acks, the "
			    "segment was still open): recovery takes them, %u entries in all",
			    rounds, p->nr_entries, h->nr_entries);
	}
	if (h->epoch < c->prev_epoch)
		say(c, at_seg(BC_CHECK_SEGMENT, seq, pos), BC_CHECK_ERROR, BC_CHECK_REC_COPES,
		    "epoch %llu is below the previous segment's %llu: writeback could reorder "
		    "writes across a client FLUSH", U(h->epoch), U(c->prev_epoch));
	c->prev_epoch = h->epoch;
	for (i = 0; i < h->nr_entries; i++) {
		const struct bc_seg_entry *ent = &h->entries[i];
		uint32_t crc;

		if (ent->flags & (BC_ENT_ZERO | BC_ENT_INVALID))
			continue;
		crc = bc_crc32c(0, (const char *)c->seg + (size_t)(c->hdr_blocks + i) * BC_BLOCK_SIZE,
				BC_BLOCK_SIZE);
		c->res->data_blocks_verified++;
		if (crc != ent->data_crc)
			data_mismatch(c, seq, pos, i, ent, crc);
	}
	for (i = 0; i < h->nr_entries; i++) {
		replayed = replayed_entry(c, seq, i);
		check_entry(c, seq, pos, i, &h->entries[i], replayed);
		if (replayed) {
			c->res->entries++;
			if (h->entries[i].flags & BC_ENT_DIRTY)
				c->res->dirty_entries++;
		}
	}
}

static void describe_pos(const struct ck *c, uint32_t pos, char *buf, size_t len)
{
	const struct pos_info *p = &c->pos[pos];

	switch (p->kind) {
	case PK_UNREAD: snprintf(buf, len, "could not be read"); break;
	case PK_EMPTY: snprintf(buf, len, "holds zeroes (unwritten, or invalidated by recovery)"); break;
	case PK_OTHER: snprintf(buf, len, "holds no segment header"); break;
	case PK_FOREIGN: snprintf(buf, len, "holds a header of an earlier format of the device"); break;
	case PK_DAMAGED:
		snprintf(buf, len, "holds a damaged header: %s", bc_fmt_strerror(p->st));
		break;
	case PK_VALID:
		snprintf(buf, len, "holds segment %llu%s", U(p->seq),
			 p->seq <= c->wb ? ", written back earlier" : "");
		break;
	}
}

/* Where and why the log ends; an error if it ends before a vouched segment. */
static void report_end(struct ck *c)
{
	struct bc_check_result *r = c->res;
	uint64_t end = r->log_end, next = end + 1;
	uint32_t pos = (uint32_t)(next % c->nseg);
	char where[120];

	if (c->torn) {
		snprintf(r->end_reason, sizeof(r->end_reason),
			 "segment %llu (ring position %u) is torn at entry %u (data checksum mismatch)",
			 U(c->torn), (unsigned)(c->torn % c->nseg), c->torn_ent);
	} else if (r->chain_end == c->wb + c->nseg) {
		snprintf(r->end_reason, sizeof(r->end_reason), "the log fills the whole ring");
	} else {
		describe_pos(c, pos, where, sizeof(where));
		snprintf(r->end_reason, sizeof(r->end_reason), "ring position %u %s", pos, where);
	}
	if ((c->sb.flags & BC_SB_CLEAN) && r->chain_end > c->sb.last_seq)
		say(c, at_seg(BC_CHECK_LOG, r->chain_end, (uint32_t)(r->chain_end % c->nseg)),
		    BC_CHECK_ERROR, BC_CHECK_REC_COPES,
		    "the superblock is marked clean with last_seq %llu, but the log goes on to "
		    "segment %llu: nothing is written after a clean shutdown; recovery replays them",
		    U(c->sb.last_seq), U(r->chain_end));
	if (c->vouch > end)
		say(c, at_seg(BC_CHECK_LOG, next, pos), BC_CHECK_ERROR, BC_CHECK_REC_DATA_LOSS,
		    "the log ends at segment %llu because %s, but %s says segments up to %llu had "
		    "been written: recovery would drop segments %llu..%llu and the writes they hold",
		    U(end), r->end_reason, c->vouch_by, U(c->vouch), U(next), U(c->vouch));
	else if (c->torn)
		say(c, at_seg(BC_CHECK_LOG, next, pos), BC_CHECK_NOTICE, BC_CHECK_REC_COPES,
		    "recovery would end the log at segment %llu%s and drop what follows up to "
		    "segment %llu, never flushed (normal after a crash: no FLUSH covering it was "
		    "acknowledged)", U(end), c->torn_ent ? " (keeping its entries before the torn one)" : "",
		    U(r->chain_end));
}

/* Could a segment write in flight at a crash (or left torn by an earlier
 * one) have landed at @pos?  Only the free positions just after the chain. */
static bool in_flight_window(const struct ck *c, uint32_t pos)
{
	uint64_t end = c->res->chain_end;
	uint64_t dist = (pos + c->nseg - (end + 1) % c->nseg) % c->nseg;

	return dist < c->inflight_max && end + 1 + dist <= c->wb + c->nseg;
}

/* Positions outside the chain. */
static void report_position(struct ck *c, uint32_t pos)
{
	const struct pos_info *p = &c->pos[pos];
	struct bc_check_result *r = c->res;
	struct bc_check_finding f = at_seg(BC_CHECK_SEGMENT, p->kind == PK_VALID ? p->seq : 0, pos);
	uint64_t end = r->log_end, last = 0;
	bool at_end = !c->torn && pos == (end + 1) % c->nseg;

	/* The segment last written here, as far as the log says. */
	if (r->chain_end >= pos)
		last = r->chain_end - (r->chain_end - pos) % c->nseg;
	switch (p->kind) {
	case PK_VALID:
		if (!right_slot(c, pos)) {
			say(c, f, BC_CHECK_ERROR, BC_CHECK_REC_COPES,
			    "a valid header of segment %llu, which belongs at ring position %llu: "
			    "recovery ignores it here", U(p->seq), U(p->seq % c->nseg));
		} else if (p->flushed >= p->seq) {
			say(c, f, BC_CHECK_ERROR, BC_CHECK_REC_COPES,
			    "flushed_seq %llu is not below the segment's own sequence", U(p->flushed));
		} else if (p->seq > r->chain_end) {
			r->headers_beyond++;
			if (p->seq - end > c->inflight_max)
				say(c, f, BC_CHECK_ERROR, BC_CHECK_REC_DATA_LOSS,
				    "a valid header %llu segments beyond the end of the log (segment %llu): "
				    "too far to have been in flight at a crash (at most %llu), so the log "
				    "was cut short by damage; recovery would invalidate it",
				    U(p->seq - end), U(end), U(c->inflight_max));
			else if (p->seq <= c->vouch)
				say(c, f, BC_CHECK_ERROR, BC_CHECK_REC_DATA_LOSS,
				    "a valid header beyond the end of the log (segment %llu), vouched for "
				    "by %s: recovery would invalidate it and lose its writes", U(end),
				    c->vouch_by);
			else
				say(c, f, BC_CHECK_NOTICE, BC_CHECK_REC_COPES,
				    "a valid header beyond the end of the log (segment %llu): written "
				    "out of order just before a crash, after a segment that did not "
				    "reach the disk (normal); recovery invalidates it", U(end));
		} else if (p->seq < last) {
			say(c, f, BC_CHECK_ERROR, BC_CHECK_REC_COPES,
			    "holds segment %llu, but segment %llu was written here later: a lost "
			    "write or an old copy that came back (harmless: it is written back)",
			    U(p->seq), U(last));
		}
		break;
	case PK_DAMAGED:
		if (at_end && c->vouch > end)
			break; /* reported as the end of the log */
		if (p->st == BC_FMT_BAD_CRC) {
			bool w = in_flight_window(c, pos);

			say(c, f, w ? BC_CHECK_NOTICE : BC_CHECK_ERROR, BC_CHECK_REC_COPES,
			    "a header of this format with a checksum mismatch (it claims segment "
			    "%llu)%s: %s; recovery ignores it", U(p->seq),
			    at_end ? ", where the log ends" : "",
			    w ? "a segment write torn by a crash (normal), or damage" :
			    "damaged (no write in flight at a crash lands this far after the log)");
		} else {
			say(c, f, BC_CHECK_ERROR, BC_CHECK_REC_COPES,
			    "a header of this format with impossible values (header_blocks %u, "
			    "nr_entries %u; the format has %u and at most %u): damaged; recovery "
			    "ignores it", p->hdr_blocks, p->nr_entries, c->hdr_blocks, c->data_blocks);
		}
		break;
	case PK_OTHER:
	case PK_FOREIGN:
		if (last && !(at_end && c->vouch > end))
			say(c, f, BC_CHECK_ERROR, BC_CHECK_REC_COPES,
			    "%s, but segment %llu (written back) was written here: damaged "
			    "(harmless: recovery ignores it)",
			    p->kind == PK_OTHER ? "holds no segment header (bad magic number)" :
			    "holds a header with another format nonce", U(last));
		break;
	default:
		break;
	}
}

static int check_ring(struct ck *c)
{
	struct bc_check_result *r = c->res;
	uint64_t seq;
	uint32_t pos;

	c->nseg = c->sb.nr_segments;
	c->hdr_blocks = c->sb.header_blocks;
	c->data_blocks = c->sb.data_blocks;
	c->wb = c->sb.written_back_seq;
	c->inflight_max = c->nseg / 2 < 1024 ? c->nseg / 2 : 1024;
	c->pos = calloc(c->nseg, sizeof(*c->pos));
	c->seg = bc_alloc_aligned(c->sb.segment_size);
	if (!c->pos || !c->seg)
		return -ENOMEM;
	scan_ring(c);
	walk_chain(c);
	for (seq = c->wb + 1; seq <= r->chain_end; seq++)
		check_segment(c, seq);
	r->log_end = !c->torn ? r->chain_end : c->torn_ent ? c->torn : c->torn - 1;
	r->log_segments = r->log_end - c->wb;
	report_end(c);
	for (pos = 0; pos < c->nseg; pos++) {
		const struct pos_info *p = &c->pos[pos];

		if (right_slot(c, pos) && p->seq > c->wb && p->seq <= r->chain_end) {
			if (p->flushed >= p->seq)
				say(c, at_seg(BC_CHECK_SEGMENT, p->seq, pos), BC_CHECK_ERROR,
				    BC_CHECK_REC_DATA_LOSS,
				    "flushed_seq %llu is not below the segment's own sequence: recovery "
				    "would skip verifying segments that may be torn", U(p->flushed));
			continue; /* in the chain: checked above */
		}
		report_position(c, pos);
	}
	r->ring_checked = true;
	return 0;
}

static int open_dev(struct ck *c, struct bc_dev **dev, const char *what, const char *path)
{
	/* (A server killed a moment ago may hold its lock until the kernel has
	 * torn down its io_uring: bc_dev_open waits a little for that.) */
	int ret = bc_dev_open(dev, NULL, c->loop, path, BC_DEV_RDONLY);

	if (ret == -EBUSY)
		bc_why(c->res->why, sizeof(c->res->why), "%s %s is in use by a running blkcache "
		       "serve; stop it or check a copy", what, path);
	else if (ret < 0)
		bc_why(c->res->why, sizeof(c->res->why), "cannot open %s %s: %s", what, path,
		       strerror(-ret));
	return ret;
}

/* One origin's superblock fields, ring and origin device (c->sb: its
 * superblock, or its record in format v3). */
int bc_ck_one(struct ck *c)
{
	struct bc_check_result *r = c->res;
	int ret = 0;

	r->ring_checked = false;
	r->chain_end = r->log_end = r->flushed_seq = r->log_segments = 0;
	r->entries = r->dirty_entries = r->data_blocks_verified = r->data_mismatches = 0;
	r->headers_valid = r->headers_beyond = 0;
	r->end_reason[0] = 0;
	c->vouch = c->torn = c->prev_epoch = 0;
	c->torn_ent = 0;
	c->vouch_by[0] = 0;
	if (check_sb_fields(c))
		ret = check_ring(c);
	free(c->seg);
	free(c->pos);
	c->seg = NULL;
	c->pos = NULL;
	if (!ret && c->origin) {
		r->origin_checked = true;
		ret = bc_ck_origin(c);
	}
	r->origins_checked++;
	return ret;
}

int bc_cache_check_origin(const char *cache_path, const char *origin_path, const char *origin_name,
			  const struct bc_check_ops *ops, void *arg, struct bc_check_result *res)
{
	struct ck c = { .ops = ops, .arg = arg, .res = res };
	int ret;

	memset(res, 0, sizeof(*res));
	res->sb_copy = -1;
	ret = bc_loop_new(&c.loop, 64);
	if (ret < 0) {
		bc_why(res->why, sizeof(res->why), "cannot set up io_uring: %s", strerror(-ret));
		return ret;
	}
	ret = open_dev(&c, &c.cache, "cache device", cache_path);
	if (ret < 0)
		goto out;
	if (origin_path) {
		ret = open_dev(&c, &c.origin, "origin", origin_path);
		if (ret < 0)
			goto out;
	}
	ret = check_superblocks(&c);
	if (ret <= 0)
		goto out;
	if (bc_sb_has_table(&c.sb))
		ret = bc_ck_table(&c, origin_name);
	else
		ret = bc_ck_one(&c);
out:
	if (ret == -ENOMEM)
		bc_why(res->why, sizeof(res->why), "out of memory");
	bc_dev_close(c.origin);
	bc_dev_close(c.cache);
	bc_loop_free(c.loop);
	return ret < 0 ? ret : 0;
}

int bc_cache_check(const char *cache_path, const char *origin_path, const struct bc_check_ops *ops,
		   void *arg, struct bc_check_result *res)
{
	struct bc_check_result full;
	int ret = bc_cache_check_origin(cache_path, origin_path, NULL, ops, arg, &full);

	/* A caller of this entry point knows the result up to 'why'. */
	memcpy(res, &full, offsetof(struct bc_check_result, format_version));
	return ret;
}
