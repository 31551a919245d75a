/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The segment log: RAM segment buffers, taking entries in the open segment,
 * sealing and writing segments in order.  Durability (FLUSH/FUA) is in
 * durable.c, recycling of ring positions in reclaim.c.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/loop_internal.h"
#include "dev/pmem.h"
#include "engine/engine.h"
#include "log/staging.h"

#define SEG_WRITE_RETRIES 3

/* Persistent memory (format v4, not staged): a segment is filled where it
 * lives, in the mapping; no RAM buffers. */
static int init_direct(struct bc_engine *e)
{
	const struct bc_pmem_map *pm = bc_dev_pmem_map(e->cache);
	uint32_t pos;

	e->log.pm = pm;
	e->log.scratch = bc_alloc_aligned((size_t)e->hdr_blocks * BC_BLOCK_SIZE);
	if (!e->log.scratch)
		return -ENOMEM;
	for (pos = 0; pos < e->nseg; pos++) {
		e->log.bufs_all[pos].idx = pos;
		e->log.bufs_all[pos].mem = (char *)pm->base + seg_offset(e, pos);
	}
	bc_elog(e, BC_LOG_INFO, "log: persistent memory: segments are filled in place and "
		    "written in rounds; a FLUSH is a round and a %s", pm->page ?
		    "write-back of the pages (not DAX)" : "store fence");
	return 0;
}

int bc_seglog_init(struct bc_engine *e, unsigned nbufs)
{
	unsigned i;

	e->log.nbufs = nbufs;
	e->log.direct = bc_dev_pmem_map(e->cache) && e->cache_version >= BC_FORMAT_VERSION_ROUNDS &&
			!e->log.stage;
	/* Format v4: segments written in rounds to their end, a FLUSH is a
	 * round.  Older formats rewrite a segment's header at its seal, which
	 * a power cut may tear, losing the rounds it held: there, and with
	 * staged acks (which mirror the entries into the header area that
	 * rounds write), a FLUSH seals. */
	e->log.flush_rounds = !e->log.stage && e->cache_version >= BC_FORMAT_VERSION_ROUNDS;
	bc_random_bytes(&e->log.next_open_id, sizeof(e->log.next_open_id));
	e->log.segs = calloc(e->nseg, sizeof(*e->log.segs));
	e->log.slots = calloc((size_t)e->nseg * e->data_blocks, sizeof(*e->log.slots));
	if (e->sb.flags & BC_SB_DATA_CRC)
		e->log.crcs = calloc((size_t)e->nseg * e->data_blocks, sizeof(*e->log.crcs));
	e->log.bufs_all = calloc(e->log.direct ? e->nseg : e->log.nbufs, sizeof(*e->log.bufs_all));
	if (!e->log.segs || !e->log.slots || !e->log.bufs_all || bc_seglog_reclaim_init(e) < 0 ||
	    ((e->sb.flags & BC_SB_DATA_CRC) && !e->log.crcs) || bc_seglog_openwrite_init(e) < 0)
		return -ENOMEM;
	if (e->log.direct) {
		bc_seglog_durable_init(e);
		return init_direct(e);
	}
	for (i = 0; i < e->log.nbufs; i++) {
		struct bc_buf *b = &e->log.bufs_all[i];

		b->idx = i;
		b->mem = e->log.stage ? bc_staging_buf_mem(e, i) : bc_alloc_aligned(e->seg_size);
		b->crc = calloc(e->data_blocks, sizeof(*b->crc));
		if (!b->mem || !b->crc)
			return -ENOMEM;
		b->next = e->log.free_bufs;
		e->log.free_bufs = b;
		e->log.free_nbufs++;
	}
	bc_seglog_durable_init(e);
	return 0;
}

void bc_seglog_destroy(struct bc_engine *e)
{
	unsigned i;

	if (e->log.bufs_all && !e->log.direct)
		for (i = 0; i < e->log.nbufs; i++) {
			if (!e->log.stage)
				free(e->log.bufs_all[i].mem);
			free(e->log.bufs_all[i].crc);
		}
	bc_staging_close(e);
	free(e->log.bufs_all);
	free(e->log.scratch);
	e->log.scratch = NULL;
	free(e->log.segs);
	free(e->log.slots);
	free(e->log.crcs);
	bc_seglog_reclaim_destroy(e);
	bc_seglog_openwrite_destroy(e);
	bc_seglog_durable_destroy(e);
	e->log.bufs_all = NULL;
	e->log.segs = NULL;
	e->log.slots = NULL;
	e->log.crcs = NULL;
}

uint64_t bc_seglog_free_positions(const struct bc_engine *e)
{
	return e->nseg - (e->log.head_seq - e->log.tail_seq);
}

uint64_t bc_seglog_last_seq(const struct bc_engine *e)
{
	if (e->log.open)
		return e->log.open->nr_entries ? e->log.open->seq : e->log.open->seq - 1;
	return e->log.head_seq - 1;
}

/* Written acks: the next entry of the open segment starts a new round, and
 * takes a round block's slot before it (log/openwrite.c)? */
static bool needs_round_slot(const struct bc_engine *e, const struct bc_seg *s)
{
	return (e->cfg.written_acks || e->log.flush_rounds) && s->nr_entries &&
	       (s->nr_entries == s->frozen ||
		(s->frozen && s->nr_entries - s->round_slot > BC_ROUND_MAX_ENTRIES));
}

bool bc_seglog_reserve(struct bc_engine *e)
{
	struct bc_seg *s;
	struct bc_buf *b;

	if (e->log.open && e->log.open->nr_entries + 1u + needs_round_slot(e, e->log.open) <=
			   e->data_blocks)
		return true;
	if (e->log.open)
		bc_seglog_seal(e);
	if (bc_seglog_free_positions(e) == 0)
		bc_seglog_reclaim(e);
	if ((!e->log.free_bufs && !e->log.direct) || bc_seglog_free_positions(e) == 0) {
		bc_wb_kick(e);
		return false;
	}
	s = &e->log.segs[seg_pos(e, e->log.head_seq)];
	if (s->state != BC_SEG_FREE) {
		bc_elog(e, BC_LOG_ERR, "log: ring position %u is busy (seq %llu)", seg_pos(e, e->log.head_seq),
		       (unsigned long long)s->seq);
		return false;
	}
	if (e->log.direct) {
		b = &e->log.bufs_all[seg_pos(e, e->log.head_seq)];
	} else {
		b = e->log.free_bufs;
		e->log.free_bufs = b->next;
		e->log.free_nbufs--;
	}
	s->buf = b;
	s->seq = e->log.head_seq++;
	s->epoch = s->last_epoch = e->log.epoch;
	/* Recovery reuses the sequence numbers after a crash's log end: an
	 * opening's round blocks must not be taken for an earlier one's. */
	if (!++e->log.next_open_id)
		e->log.next_open_id = 1;
	s->open_id = e->log.next_open_id;
	s->nr_entries = 0;
	s->frozen = s->persisted = s->round_slot = s->durable_ent = 0;
	s->seal_waiting = false;
	s->state = BC_SEG_OPEN;
	e->log.open = s;
	bc_staging_hold(e, b->idx, s);
	bc_wb_kick(e);
	return true;
}

static void seg_write_done(struct bc_dev_io *io, int res);

static void seg_none_done(struct bc_completion *c, int res)
{
	struct bc_seg *s = BC_CONTAINER_OF(c, struct bc_seg, none_done);

	seg_write_done(&s->io, res);
}

/* Format v4 (flush_rounds): the seal writes what rounds did not (the header
 * is written once, by the segment's first write, and never again): the
 * header and all data, or a last round, or nothing.  Persistent memory:
 * the write is in place (the buffer is the mapping), the driver flushes
 * the CPU caches. */
static void seg_submit_final(struct bc_engine *e, struct bc_seg *s)
{
	uint32_t pos = (uint32_t)(s - e->log.segs), first = s->frozen, n = s->nr_entries, off = 0;
	uint64_t blocks = 0;

	if (first == 0) {
		bc_seglog_build_hdr(e, s, n);
		blocks = e->hdr_blocks + n;
	} else if (first < n) {
		bc_seglog_fill_rounds(e, s, first, n);
		s->frozen = n;
		off = e->hdr_blocks + first;
		blocks = n - first;
	}
	bc_dev_io_init(&s->io, BC_DIO_WRITE, (char *)s->buf->mem + (size_t)off * BC_BLOCK_SIZE,
		       blocks * BC_BLOCK_SIZE, seg_offset(e, pos) + (uint64_t)off * BC_BLOCK_SIZE,
		       seg_write_done, e);
	if (!blocks && !e->log.direct) {
		/* Rounds wrote it all: nothing to write, done after this
		 * loop iteration (not inside the seal's caller). */
		s->none_done.fn = seg_none_done;
		bc_loop_defer(e->loop, &s->none_done, 0);
		return;
	}
	bc_dev_submit(e->cache, &s->io);
}

static void seg_submit(struct bc_engine *e, struct bc_seg *s)
{
	uint32_t pos = (uint32_t)(s - e->log.segs);
	bool hdr_only = s->persisted == s->nr_entries; /* rounds wrote all its data */

	bc_dev_io_init(&s->io, BC_DIO_WRITE, s->buf->mem,
		       (uint64_t)(e->hdr_blocks + (hdr_only ? 0 : s->nr_entries)) * BC_BLOCK_SIZE,
		       seg_offset(e, pos), seg_write_done, e);
	bc_dev_submit(e->cache, &s->io);
}

uint32_t bc_seglog_compute_crc(struct bc_engine *e, struct bc_seg *s, uint32_t i)
{
	uint32_t slot = (uint32_t)(s - e->log.segs) * e->data_blocks + i, crc = 0;

	if (!bc_slot_no_data(e->log.slots[slot]))
		crc = bc_crc32c(0, (char *)s->buf->mem + (size_t)(e->hdr_blocks + i) * BC_BLOCK_SIZE,
				BC_BLOCK_SIZE);
	if (s->buf->crc)
		s->buf->crc[i] = crc;
	if (e->log.crcs)
		e->log.crcs[slot] = crc;
	return crc;
}

void bc_seglog_build_hdr(struct bc_engine *e, struct bc_seg *s, uint32_t n)
{
	uint32_t pos = (uint32_t)(s - e->log.segs), i;
	/* Persistent memory: built aside, stored whole (log/store.c). */
	struct bc_seg_hdr *hdr = e->log.direct ? e->log.scratch : s->buf->mem;

	/* The entries are rewritten below with the values they have (staged
	 * acks keep them there all along). */
	bc_seg_hdr_prepare(hdr, e->hdr_blocks, n, s->seq, e->sb.format_nonce, e->log.durable_seq,
			   s->epoch, e->sb.origin_id);
	hdr->open_id = s->open_id;
	if (e->log.flush_rounds)
		hdr->flags |= BC_SEG_ROUNDS_FINAL;
	for (i = 0; i < n; i++) {
		uint32_t slot = pos * e->data_blocks + i;

		hdr->entries[i] = bc_slot_entry(e->log.slots[slot]);
		if (i >= s->frozen)
			hdr->entries[i].data_crc = bc_seglog_compute_crc(e, s, i);
		else if (!bc_slot_no_data(e->log.slots[slot]))
			hdr->entries[i].data_crc = s->buf->crc ? s->buf->crc[i] : bc_seglog_ram_crc(e, slot);
	}
	if (n > s->frozen)
		s->frozen = n;
	bc_seg_hdr_seal(hdr, e->hdr_blocks);
	if (e->log.direct)
		bc_seglog_store(e, s->buf->mem, hdr, (size_t)e->hdr_blocks * BC_BLOCK_SIZE);
}

void bc_seglog_seal_write(struct bc_engine *e, struct bc_seg *s)
{
	s->seal_waiting = false;
	if (e->log.flush_rounds) {
		seg_submit_final(e, s);
		return;
	}
	bc_seglog_build_hdr(e, s, s->nr_entries);
	seg_submit(e, s);
}

void bc_seglog_seal(struct bc_engine *e)
{
	struct bc_seg *s = e->log.open;

	if (!s || !s->nr_entries)
		return;
	bc_staging_publish(e);
	s->state = BC_SEG_WRITING;
	s->retries = 0;
	e->log.nr_writing++;
	e->log.open = NULL;
	e->st.segments_written++;
	if (s->nr_entries < e->data_blocks)
		e->st.segments_partial++;
	/* A write of it as the open segment is in flight: the seal's write
	 * (which rewrites its header) must not race with it. */
	if (e->log.ow_seg == s)
		s->seal_waiting = true;
	else
		bc_seglog_seal_write(e, s);
}

static void seg_write_done(struct bc_dev_io *io, int res)
{
	struct bc_engine *e = io->priv;
	struct bc_seg *s = BC_CONTAINER_OF(io, struct bc_seg, io);

	if (res < 0) {
		bc_cache_error(e, false);
		bc_elog(e, BC_LOG_ERR, "cache device: writing segment %llu failed: %s",
		       (unsigned long long)s->seq, strerror(-res));
		if (++s->retries <= SEG_WRITE_RETRIES) {
			if (e->log.flush_rounds)
				bc_dev_submit(e->cache, &s->io); /* the same write again */
			else
				seg_submit(e, s);
			return;
		}
		/* Keep the buffer: reads are still served from RAM; FLUSH fails. */
		e->log.failed = true;
		bc_cache_error(e, true);
		bc_seglog_flush_kick(e);
		bc_seglog_written_progress(e);
		return;
	}
	s->state = BC_SEG_ONDISK;
	e->log.nr_writing--;
	bc_staging_release(e, s->buf->idx);
	if (!e->log.direct) {
		s->buf->next = e->log.free_bufs;
		e->log.free_bufs = s->buf;
		e->log.free_nbufs++;
	}
	s->buf = NULL;
	while (e->log.written_seq + 1 < e->log.head_seq) {
		struct bc_seg *n = &e->log.segs[seg_pos(e, e->log.written_seq + 1)];

		if (n->seq != e->log.written_seq + 1 || n->state != BC_SEG_ONDISK)
			break;
		e->log.written_seq++;
	}
	bc_seglog_written_progress(e);
	bc_seglog_flush_kick(e);
	bc_wb_kick(e);
	bc_write_resume(e);
}

bool bc_seglog_append(struct bc_engine *e, uint64_t block, const void *data, uint8_t mask, bool dirty)
{
	struct bc_ix_ent ix;
	uint32_t slot;
	char *dst;

	if (e->log.failed || !bc_seglog_reserve(e))
		return false;
	if (bc_index_insert(&e->index, block, &ix) < 0)
		return false;
	slot = bc_seglog_take_slot(e, &(struct bc_seg_entry){ .block = block, .nblocks = 1, .mask = mask,
							      .flags = dirty ? BC_ENT_DIRTY : 0 });
	dst = slot_ram(e, slot);
	if (mask == BC_FULL_MASK) {
		bc_seglog_store(e, dst, data, BC_BLOCK_SIZE);
	} else {
		bc_seglog_zero(e, dst, BC_BLOCK_SIZE);
		bc_seglog_store_sectors(e, dst, data, mask);
	}
	bc_ix_set(e, &ix, slot, dirty ? BC_IX_DIRTY : 0);
	bc_staging_publish(e);
	return true;
}

/* Staged acks: the buffer's header area holds every entry as it is (the
 * staging file's descriptor says how many are complete).  Never without
 * staging: rounds may be writing that header. */
static void stage_mirror(struct bc_engine *e, uint32_t slot)
{
	const struct bc_seg *s = &e->log.segs[slot_pos(e, slot)];

	if (e->log.stage)
		((struct bc_seg_hdr *)s->buf->mem)->entries[slot % e->data_blocks] =
			bc_slot_entry(e->log.slots[slot]);
}

uint32_t bc_seglog_take_slot(struct bc_engine *e, const struct bc_seg_entry *ent)
{
	struct bc_seg *s = e->log.open;
	uint32_t base = (uint32_t)(s - e->log.segs) * e->data_blocks, slot;

	if (needs_round_slot(e, s)) {
		/* A round holds the writes of one FLUSH epoch (a FLUSH freezes
		 * the open segment: bc_seglog_new_epoch). */
		uint64_t delta = e->log.epoch - s->epoch;

		s->round_slot = s->nr_entries;
		s->last_epoch = s->epoch + delta;
		e->log.slots[base + s->nr_entries++] = bc_slot_round(delta);
	}
	slot = base + s->nr_entries++;
	e->log.slots[slot] = bc_slot_make(ent);
	stage_mirror(e, slot);
	return slot;
}

void bc_seglog_untake_slot(struct bc_engine *e, uint32_t slot)
{
	struct bc_seg *s = e->log.open;

	const bc_slot_t *ents = &e->log.slots[(size_t)(s - e->log.segs) * e->data_blocks];

	(void)slot;
	s->nr_entries--;
	/* A round block's slot left with no entry after it goes too. */
	if (s->nr_entries > s->frozen && s->round_slot == s->nr_entries - 1 &&
	    bc_slot_is_round(ents[s->round_slot])) {
		s->nr_entries--;
		do
			s->round_slot--;
		while (s->round_slot > s->frozen && !bc_slot_is_round(ents[s->round_slot]));
		s->last_epoch = s->epoch + bc_seglog_round_delta_at(e, s, s->nr_entries);
	}
}

uint64_t bc_seglog_round_delta_at(const struct bc_engine *e, const struct bc_seg *s, uint32_t i)
{
	const bc_slot_t *ents = &e->log.slots[(size_t)(s - e->log.segs) * e->data_blocks];

	while (i-- > 0)
		if (bc_slot_is_round(ents[i]))
			return bc_slot_round_delta(ents[i]);
	return 0;
}

bool bc_seglog_slot_mutable(const struct bc_engine *e, uint32_t slot)
{
	return e->log.open && slot_pos(e, slot) == (uint32_t)(e->log.open - e->log.segs) &&
	       slot % e->data_blocks >= e->log.open->frozen;
}

void bc_seglog_update_entry(struct bc_engine *e, uint32_t slot, uint8_t mask, bool dirty)
{
	struct bc_seg_entry ent = bc_slot_entry(e->log.slots[slot]);
	uint8_t live = bc_slot_live(e->log.slots[slot]);

	ent.mask |= mask;
	ent.flags = dirty ? BC_ENT_DIRTY : 0;
	e->log.slots[slot] = bc_slot_with_live(bc_slot_make(&ent), live);
	stage_mirror(e, slot);
}

void bc_seglog_set_nblocks(struct bc_engine *e, uint32_t slot, uint16_t nblocks)
{
	struct bc_seg_entry ent = bc_slot_entry(e->log.slots[slot]);

	ent.nblocks = nblocks;
	e->log.slots[slot] = bc_slot_make(&ent);
	stage_mirror(e, slot);
}

void bc_seglog_pin(struct bc_engine *e, uint32_t pos)
{
	e->log.segs[pos].readers++;
}

void bc_seglog_new_epoch(struct bc_engine *e)
{
	struct bc_seg *s = e->log.open;

	/* A FLUSH does not seal the open segment (a whole ring position for
	 * a few blocks), it ends the round instead -- its entries go out now
	 * and the next write starts a round of the new epoch; writeback takes
	 * the segment one epoch at a time.  A round that cannot start now:
	 * seal. */
	if (e->log.flush_rounds && s && s->nr_entries > s->frozen) {
		bc_seglog_write_open(e);
		if (s == e->log.open && s->nr_entries > s->frozen)
			bc_seglog_seal(e);
	}
	e->log.epoch++;
	bc_wb_gate_progress(e);
}

uint64_t bc_seglog_epoch(const struct bc_engine *e)
{
	return e->log.epoch;
}

void bc_seglog_raise_epoch(struct bc_engine *e, uint64_t epoch)
{
	if (epoch > e->log.epoch)
		e->log.epoch = epoch;
}

uint64_t bc_seglog_pending_epoch(const struct bc_engine *e)
{
	const struct bc_seg *s = &e->log.segs[seg_pos(e, e->log.wb_seq + 1)];

	if (e->log.wb_seq + 1 >= e->log.head_seq || (s == e->log.open && !s->nr_entries))
		return e->log.epoch; /* nothing left of older epochs */
	return bc_seglog_next_epoch(e, s, bc_sb_wb_epoch(e, s->seq));
}

uint64_t bc_seglog_next_epoch(const struct bc_engine *e, const struct bc_seg *s, uint64_t after)
{
	const bc_slot_t *ents = &e->log.slots[(size_t)(s - e->log.segs) * e->data_blocks];
	uint32_t i;

	if (s->epoch > after || s->last_epoch == s->epoch)
		return s->epoch;
	for (i = 1; i < s->nr_entries; i++)
		if (bc_slot_is_round(ents[i]) && s->epoch + bc_slot_round_delta(ents[i]) > after)
			return s->epoch + bc_slot_round_delta(ents[i]);
	return s->last_epoch; /* cannot happen: after < last_epoch */
}

bool bc_seglog_flush_rounds(const struct bc_engine *e)
{
	return e->log.flush_rounds;
}

bool bc_seglog_failed(const struct bc_engine *e)
{
	return e->log.failed;
}

uint64_t bc_seglog_wb_seq(const struct bc_engine *e)
{
	return e->log.wb_seq;
}

uint64_t bc_seglog_written_seq(const struct bc_engine *e)
{
	return e->log.written_seq;
}

void bc_seglog_written_back(struct bc_engine *e, uint64_t seq)
{
	e->log.wb_seq = seq;
	if (e->log.carry_last < seq)
		e->log.carry_last = seq;
	bc_wb_gate_progress(e);
}

bool bc_seglog_short_of_space(const struct bc_engine *e)
{
	return bc_seglog_free_positions(e) <= e->log.nbufs && e->log.tail_seq > e->log.wb_seq;
}

const struct bc_seg *bc_seglog_seg(const struct bc_engine *e, uint64_t seq)
{
	return &e->log.segs[seg_pos(e, seq)];
}

struct bc_seg_entry bc_seglog_entry(const struct bc_engine *e, uint32_t slot)
{
	return bc_slot_entry(e->log.slots[slot]);
}

uint32_t bc_seglog_ram_crc(const struct bc_engine *e, uint32_t slot)
{
	return e->log.crcs ? e->log.crcs[slot] : 0;
}

bc_slot_t *const *bc_seglog_slots(const struct bc_engine *e)
{
	return &e->log.slots;
}

void bc_seglog_stats(const struct bc_engine *e, struct bc_engine_stats *st)
{
	st->segments_total = e->nseg;
	st->segments_used = e->log.head_seq - e->log.tail_seq;
	st->head_seq = e->log.head_seq;
	st->written_back_seq = e->log.wb_seq;
	st->durable_seq = e->log.durable_seq;
}

bool bc_seglog_idle(const struct bc_engine *e)
{
	return (!e->log.open || !e->log.open->nr_entries) &&
	       e->log.written_seq == bc_seglog_last_seq(e) && bc_seglog_durable_idle(e) &&
	       bc_seglog_openwrite_idle(e) && bc_seglog_reclaim_idle(e);
}
