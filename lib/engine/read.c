/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The read path: each sector comes from the open/sealed RAM buffer, the
 * cache device, a zero range, or the origin.  Adjacent sectors from the
 * same device at adjacent offsets are merged into one device read straight
 * into the caller's buffer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"

enum src_kind { SRC_NONE, SRC_RAM, SRC_ZERO, SRC_CACHE, SRC_ORIGIN };

struct frag {
	struct bc_dev_io io;
	struct bc_engine *e;
	struct bc_request *r;
	int64_t pin;          /* pinned segment position, -1 for the origin */
	bool promote;         /* origin read: candidates for promotion */
	uint64_t gen;         /* e->rd.direct_gen when the read was issued */
};

struct read_ctx {
	struct bc_engine *e;
	struct bc_request *r;
	bool promote;
	enum src_kind kind;   /* of the pending device fragment */
	uint64_t dev_off, buf_off, len;
	int64_t pin;
};

/*
 * Promote the whole blocks of a completed origin read that are still not
 * cached, unless a write bypassed the log or reclaim dropped blocks while
 * the read was in flight, or a direct origin write is still in flight (the
 * read may have completed before that write landed): the data read could
 * then be stale, and the cache would keep serving it.
 */
static void promote(struct frag *f)
{
	struct bc_engine *e = f->e;
	uint64_t off = f->io.offset, end = off + f->io.len, b;
	bool room = !bc_write_waiting(e); /* waiting writes come first */

	if (e->rd.direct_gen != f->gen || bc_write_origin_busy(e) || !bc_mode_current(e)->promote)
		return;
	for (b = (off + BC_BLOCK_SIZE - 1) >> BC_BLOCK_SHIFT; (b + 1) << BC_BLOCK_SHIFT <= end; b++) {
		const char *data = (const char *)f->io.iov1.iov_base + ((b << BC_BLOCK_SHIFT) - off);
		struct bc_ix_ent ix;

		if (bc_index_find(&e->index, b, &ix))
			continue;
		if (!e->promote.ops->should_promote(e->promote.ctx, b)) {
			e->st.bypass_nhit_blocks++;
			continue;
		}
		/* No room in the log (every buffer is being written, or no free
		 * ring position): the block is not promoted; a later miss may
		 * promote it.  Counted, so that a log that cannot keep up with
		 * the read misses shows. */
		if (room && !bc_seglog_append(e, b, data, BC_FULL_MASK, false))
			room = false;
		if (!room) {
			e->st.promote_dropped_blocks++;
			continue;
		}
		e->st.promoted_blocks++;
	}
}

static bool cache_fallback(struct bc_engine *e, struct bc_request *r, uint32_t slot,
			   uint64_t block, uint64_t buf_off, uint64_t in_block, uint64_t len);

/* A cache device read failed: each clean block of it comes from the origin
 * instead; false if some part cannot (dirty data the device lost). */
static bool cache_frag_fallback(struct frag *f)
{
	struct bc_engine *e = f->e;
	uint32_t pos = (uint32_t)f->pin;
	uint64_t off = f->io.offset, end = f->io.offset + f->io.len;
	uint64_t buf_off = (uint64_t)((char *)f->io.iov1.iov_base - (char *)f->r->buf);
	bool ok = true;

	while (off < end) {
		uint64_t rel = off - seg_offset(e, pos), in_block = rel % BC_BLOCK_SIZE;
		uint64_t n = BC_BLOCK_SIZE - in_block;
		uint32_t slot = pos * e->data_blocks + (uint32_t)(rel / BC_BLOCK_SIZE - e->hdr_blocks);

		if (n > end - off)
			n = end - off;
		if (!cache_fallback(e, f->r, slot, bc_seglog_entry(e, slot).block, buf_off, in_block, n))
			ok = false;
		off += n;
		buf_off += n;
	}
	return ok;
}

/* One device IO of @r finished: the last one completes the request. */
static void sub_io_done(struct bc_request *r)
{
	struct bc_rq *rq = rq_of(r);

	if (--rq->pending == 0)
		r->done(r, rq->error);
}

static void frag_done(struct bc_dev_io *io, int res)
{
	struct frag *f = (struct frag *)io;
	struct bc_engine *e = f->e;
	struct bc_request *r = f->r;
	struct bc_rq *rq = rq_of(r);

	if (res < 0) {
		if (f->pin >= 0)
			bc_cache_error(e, false);
		else
			bc_origin_error(e);
		bc_elog(e, BC_LOG_ERR, "%s device: read of %llu bytes at %llu failed: %s",
		       f->pin >= 0 ? "cache" : "origin", (unsigned long long)io->len,
		       (unsigned long long)io->offset, strerror(-res));
		if ((f->pin < 0 || !cache_frag_fallback(f)) && !rq->error)
			rq->error = -EIO;
	}
	if (f->pin >= 0)
		bc_seglog_unpin(e, (uint32_t)f->pin);
	else if (res >= 0 && f->promote)
		promote(f);
	free(f);
	sub_io_done(r);
}

/*
 * Read [dev_off, +len) into the caller's buffer at buf_off: from the cache
 * device if @pin (the segment position, already pinned) is >= 0, else from
 * the origin (promoting the result if @promote).
 */
static void frag_submit(struct bc_engine *e, struct bc_request *r, int64_t pin, bool promote,
			uint64_t dev_off, uint64_t buf_off, uint64_t len)
{
	struct bc_rq *rq = rq_of(r);
	struct frag *f = malloc(sizeof(*f));

	if (!f) {
		if (pin >= 0)
			bc_seglog_unpin(e, (uint32_t)pin);
		rq->error = -ENOMEM;
		return;
	}
	f->e = e;
	f->r = r;
	f->pin = pin;
	f->promote = pin < 0 && promote;
	f->gen = e->rd.direct_gen;
	bc_dev_io_init(&f->io, BC_DIO_READ, (char *)r->buf + buf_off, len, dev_off, frag_done, f);
	rq->pending++;
	bc_dev_submit(pin >= 0 ? e->cache : e->origin, &f->io);
}

/* Serve [in_block, +len) of @block, which the cache device could not, from
 * the origin if the cached copy at @slot is clean (then also drop it). */
static bool cache_fallback(struct bc_engine *e, struct bc_request *r, uint32_t slot,
			   uint64_t block, uint64_t buf_off, uint64_t in_block, uint64_t len)
{
	struct bc_ix_ent ix;

	if (!bc_index_find(&e->index, block, &ix) || ix.slot != slot ||
	    (ix.flags & (BC_IX_DIRTY | BC_IX_BAD)))
		return false;
	bc_ix_drop(e, &ix);
	frag_submit(e, r, -1, false, (block << BC_BLOCK_SHIFT) + in_block, buf_off, len);
	return true;
}

/*
 * --data-crc: a cached block is read whole into a bounce buffer and checked
 * against the CRC32C its segment header recorded before any of it reaches
 * the caller.  A block that fails is never returned: a clean one is read
 * from the origin instead (and dropped from the cache), a dirty one fails
 * the request with EIO.
 */
struct crc_frag {
	struct bc_dev_io io;
	struct bc_engine *e;
	struct bc_request *r;
	uint64_t block, buf_off;
	uint32_t slot;
	uint8_t s, t;         /* sectors [s, t) of the block are wanted */
	void *buf;            /* 4 KiB, aligned */
};

static void crc_done(struct bc_dev_io *io, int res)
{
	struct crc_frag *f = (struct crc_frag *)io;
	struct bc_engine *e = f->e;
	struct bc_request *r = f->r;
	struct bc_rq *rq = rq_of(r);
	uint64_t n = (uint64_t)(f->t - f->s) * BC_SECTOR_SIZE;

	if (res < 0) {
		bc_cache_error(e, false);
		bc_elog(e, BC_LOG_ERR, "cache device: reading block %llu failed: %s",
		       (unsigned long long)f->block, strerror(-res));
		if (!cache_fallback(e, r, f->slot, f->block, f->buf_off,
				    (uint64_t)f->s * BC_SECTOR_SIZE, n) && !rq->error)
			rq->error = -EIO;
	} else if (bc_crc32c(0, f->buf, BC_BLOCK_SIZE) == bc_seglog_ram_crc(e, f->slot)) {
		memcpy((char *)r->buf + f->buf_off, (char *)f->buf + f->s * BC_SECTOR_SIZE, n);
	} else {
		struct bc_ix_ent ix;
		bool mine = bc_index_find(&e->index, f->block, &ix) && ix.slot == f->slot;
		bool clean = mine && !(ix.flags & BC_IX_DIRTY);

		bc_note_data_crc_error(e);
		bc_elog(e, BC_LOG_ERR, "cache device: block %llu fails its data checksum (slot %u); %s",
		       (unsigned long long)f->block, f->slot,
		       clean ? "it is clean: reading it from the origin" : "it is dirty: EIO");
		if (clean) {
			bc_ix_drop(e, &ix);
			frag_submit(e, r, -1, false,
				    (f->block << BC_BLOCK_SHIFT) + f->s * BC_SECTOR_SIZE, f->buf_off, n);
		} else {
			if (mine)
				bc_ix_set(e, &ix, ix.slot, (uint8_t)(ix.flags | BC_IX_BAD));
			if (!rq->error)
				rq->error = -EIO;
		}
	}
	bc_seglog_unpin(e, slot_pos(e, f->slot));
	free(f->buf);
	free(f);
	sub_io_done(r);
}

static void crc_read(struct bc_engine *e, struct bc_request *r, uint64_t block, uint32_t slot,
		     unsigned s, unsigned t, uint64_t buf_off)
{
	struct bc_rq *rq = rq_of(r);
	struct crc_frag *f = malloc(sizeof(*f));

	if (f)
		f->buf = bc_alloc_aligned(BC_BLOCK_SIZE);
	if (!f || !f->buf) {
		free(f);
		rq->error = -ENOMEM;
		return;
	}
	f->e = e;
	f->r = r;
	f->block = block;
	f->slot = slot;
	f->s = (uint8_t)s;
	f->t = (uint8_t)t;
	f->buf_off = buf_off;
	bc_seglog_pin(e, slot_pos(e, slot));
	bc_dev_io_init(&f->io, BC_DIO_READ, f->buf, BC_BLOCK_SIZE, slot_offset(e, slot), crc_done, f);
	rq->pending++;
	bc_dev_submit(e->cache, &f->io);
}

static void ctx_submit(struct read_ctx *c)
{
	if (c->kind != SRC_CACHE && c->kind != SRC_ORIGIN)
		return;
	frag_submit(c->e, c->r, c->kind == SRC_CACHE ? c->pin : -1, c->promote, c->dev_off,
		    c->buf_off, c->len);
	c->kind = SRC_NONE;
}

/* Route @len bytes at @buf_off from a source. */
static void ctx_add(struct read_ctx *c, enum src_kind kind, const void *ram, uint64_t dev_off,
		    int64_t pin, uint64_t buf_off, uint64_t len)
{
	char *dst = (char *)c->r->buf + buf_off;

	if (kind == SRC_RAM) {
		memcpy(dst, ram, len);
		return;
	}
	if (kind == SRC_ZERO) {
		memset(dst, 0, len);
		return;
	}
	if (c->kind == kind && c->dev_off + c->len == dev_off && c->buf_off + c->len == buf_off &&
	    (kind == SRC_ORIGIN || c->pin == pin)) {
		c->len += len;
		return;
	}
	ctx_submit(c);
	if (kind == SRC_CACHE)
		bc_seglog_pin(c->e, (uint32_t)pin);
	c->kind = kind;
	c->dev_off = dev_off;
	c->buf_off = buf_off;
	c->len = len;
	c->pin = pin;
}

void bc_read_submit(struct bc_engine *e, struct bc_request *r)
{
	struct read_ctx c = { .e = e, .r = r, .kind = SRC_NONE, .pin = -1 };
	struct bc_rq *rq = rq_of(r);
	uint64_t pos = r->offset, end = r->offset + r->length;

	rq->pending = 1; /* held until every fragment is submitted */
	rq->error = 0;
	if (bc_mode_current(e)->promote) {
		enum bc_promote_verdict v = e->promote.ops->note_read(e->promote.ctx, r->offset,
								      r->length);

		c.promote = v == BC_PROMOTE_CANDIDATE;
		if (v == BC_PROMOTE_SEQUENTIAL)
			e->st.bypass_sequential_bytes += r->length;
	}
	while (pos < end) {
		uint64_t block = pos >> BC_BLOCK_SHIFT;
		unsigned s0 = (unsigned)((pos & (BC_BLOCK_SIZE - 1)) >> BC_SECTOR_SHIFT), s, s1;
		uint64_t left = (end - pos) >> BC_SECTOR_SHIFT;
		struct bc_ix_ent found, *ent = bc_index_find(&e->index, block, &found) ? &found : NULL;
		uint8_t have = ent ? ent->mask : 0, want;
		const char *ram = NULL;

		s1 = s0 + (unsigned)(left < BC_SECTORS_PER_BLOCK - s0 ? left : BC_SECTORS_PER_BLOCK - s0);
		want = (uint8_t)(((1u << (s1 - s0)) - 1) << s0);
		if ((have & want) == want)
			e->st.read_hit_blocks++;
		else if (have & want)
			e->st.read_partial_blocks++;
		else
			e->st.read_miss_blocks++;
		if (ent) {
			if (!(ent->flags & BC_IX_REF))
				bc_ix_set(e, ent, ent->slot, (uint8_t)(ent->flags | BC_IX_REF));
			if (want == BC_FULL_MASK)
				e->st.read_hit_full++;
			else
				e->st.read_hit_partial++;
		} else if (want == BC_FULL_MASK) {
			e->st.read_miss_full++;
		} else {
			e->st.read_miss_partial++;
		}
		if (ent && !(ent->flags & BC_IX_ZERO))
			ram = slot_ram(e, ent->slot);
		/* Walk runs of sectors with the same source. */
		for (s = s0; s < s1;) {
			bool cached = (have >> s) & 1;
			unsigned t = s + 1;
			uint64_t boff = pos - r->offset + (uint64_t)(s - s0) * BC_SECTOR_SIZE, n;

			while (t < s1 && (((have >> t) & 1) == cached))
				t++;
			n = (uint64_t)(t - s) * BC_SECTOR_SIZE;
			if (!cached)
				ctx_add(&c, SRC_ORIGIN, NULL,
					(block << BC_BLOCK_SHIFT) + (uint64_t)s * BC_SECTOR_SIZE, -1, boff, n);
			else if (ent->flags & BC_IX_ZERO)
				ctx_add(&c, SRC_ZERO, NULL, 0, -1, boff, n);
			else if (ent->flags & BC_IX_BAD)
				rq->error = -EIO; /* failed its checksum before */
			else if (ram)
				ctx_add(&c, SRC_RAM, ram + (size_t)s * BC_SECTOR_SIZE, 0, -1, boff, n);
			else if (e->sb.flags & BC_SB_DATA_CRC)
				crc_read(e, r, block, ent->slot, s, t, boff);
			else
				ctx_add(&c, SRC_CACHE, NULL,
					slot_offset(e, ent->slot) + (uint64_t)s * BC_SECTOR_SIZE,
					slot_pos(e, ent->slot), boff, n);
			s = t;
		}
		pos += (uint64_t)(s1 - s0) * BC_SECTOR_SIZE;
	}
	ctx_submit(&c);
	if (--rq->pending == 0)
		bc_req_complete(e, r, rq->error);
}

void bc_read_invalidate_inflight(struct bc_engine *e)
{
	e->rd.direct_gen++;
}
