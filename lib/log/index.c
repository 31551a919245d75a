/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>

#include "log/index.h"

#define IX_REC (1u << 31) /* a bucket's value names a range record */

static inline uint64_t ix_hash(uint64_t b)
{
	b ^= b >> 33;
	b *= 0xff51afd7ed558ccdull;
	b ^= b >> 33;
	return b;
}

static inline uint8_t ix_tag(uint64_t block)
{
	return (uint8_t)ix_hash(block);
}

/* The home bucket of @block: the hash scaled to [0, cap) (cap need not be
 * a power of two, so the table is sized to what it must hold). */
static inline uint64_t ix_home(const struct bc_index *ix, uint64_t block)
{
	return (uint64_t)(((unsigned __int128)ix_hash(block) * ix->cap) >> 64);
}

static inline uint64_t ix_next(const struct bc_index *ix, uint64_t i)
{
	return i + 1 == ix->cap ? 0 : i + 1;
}

/* Probe distance from @from forward to @to, wrapping. */
static inline uint64_t ix_dist(const struct bc_index *ix, uint64_t from, uint64_t to)
{
	return to >= from ? to - from : to + ix->cap - from;
}

/* BC_IX_STATE bits <-> the slot map's 3 live bits. */
static inline uint8_t to_live(uint8_t f)
{
	return (uint8_t)((f & BC_IX_DIRTY) | ((f >> 1) & 6));
}

static inline uint8_t from_live(uint8_t l)
{
	return (uint8_t)((l & 1) | ((l & 6) << 1));
}

static inline bool is_rec(uint32_t v)
{
	return v < BC_IX_NEW && (v & IX_REC);
}

/* The block of a set bucket. */
static inline uint64_t bucket_block(const struct bc_index *ix, uint32_t v)
{
	return is_rec(v) ? ix->recs[v & ~IX_REC].block : bc_slot_block((*ix->slots)[v]);
}

static void fill(const struct bc_index *ix, uint64_t i, uint64_t block, struct bc_ix_ent *out)
{
	uint32_t v = ix->tab[i].v;

	out->block = block;
	out->bucket = i;
	if (v == BC_IX_NEW) {
		out->slot = BC_IX_NEW;
		out->mask = out->flags = 0;
		return;
	}
	if (is_rec(v)) {
		const struct bc_ix_rec *r = &ix->recs[v & ~IX_REC];

		out->slot = r->slot;
		out->flags = r->state;
	} else {
		out->slot = v;
		out->flags = from_live(bc_slot_live((*ix->slots)[v]));
	}
	out->mask = bc_slot_mask((*ix->slots)[out->slot]);
	if (bc_slot_eflags((*ix->slots)[out->slot]) & BC_ENT_ZERO)
		out->flags |= BC_IX_ZERO;
}

static struct bc_ix_bucket *alloc_tab(uint64_t cap)
{
	struct bc_ix_bucket *t = malloc(cap * sizeof(*t));
	uint64_t i;

	if (!t)
		return NULL;
	for (i = 0; i < cap; i++)
		t[i].v = BC_IX_FREE;
	return t;
}

/* Grow past this load (in 1/100): linear probing stays short below it. */
#define IX_MAX_LOAD 85

int bc_index_init(struct bc_index *ix, uint64_t expected, bc_slot_t *const *slots)
{
	/* Room for every slot of the cache at a load of at most 80 %: one
	 * entry per cached block, so this is the index's RAM per block. */
	uint64_t cap = expected + expected / 4 + 1;

	if (cap < 1024)
		cap = 1024;
	*ix = (struct bc_index){ .cap = cap, .slots = slots, .rec_free = UINT32_MAX };
	ix->tab = alloc_tab(cap);
	return ix->tab ? 0 : -ENOMEM;
}

void bc_index_destroy(struct bc_index *ix)
{
	free(ix->tab);
	free(ix->recs);
	*ix = (struct bc_index){ .rec_free = UINT32_MAX };
}

uint64_t bc_index_bytes(const struct bc_index *ix)
{
	return ix->cap * sizeof(*ix->tab) + (uint64_t)ix->rec_cap * sizeof(*ix->recs);
}

static inline bool ix_match(const struct bc_index *ix, uint64_t i, uint64_t block, uint8_t tag)
{
	const struct bc_ix_bucket *b = &ix->tab[i];
	uint32_t v = b->v;

	return b->tag == tag && v < BC_IX_NEW && bucket_block(ix, v) == block;
}

bool bc_index_find(const struct bc_index *ix, uint64_t block, struct bc_ix_ent *out)
{
	uint64_t i = ix_home(ix, block);
	uint8_t tag = ix_tag(block);

	for (;; i = ix_next(ix, i)) {
		if (ix->tab[i].v == BC_IX_FREE)
			return false;
		if (ix_match(ix, i, block, tag)) {
			fill(ix, i, block, out);
			return true;
		}
	}
}

static int grow(struct bc_index *ix)
{
	struct bc_index n = *ix;
	uint64_t i;

	n.cap = ix->cap * 2;
	n.tab = alloc_tab(n.cap);
	if (!n.tab)
		return -ENOMEM;
	for (i = 0; i < ix->cap; i++) {
		uint64_t j;

		if (ix->tab[i].v == BC_IX_FREE)
			continue;
		for (j = ix_home(&n, bucket_block(ix, ix->tab[i].v)); n.tab[j].v != BC_IX_FREE;
		     j = ix_next(&n, j))
			;
		n.tab[j] = ix->tab[i];
	}
	free(ix->tab);
	*ix = n;
	return 0;
}

/* Keep a free range record ready, so bc_index_set never fails. */
static int reserve_rec(struct bc_index *ix)
{
	struct bc_ix_rec *r;
	uint32_t cap;

	if (ix->rec_free != UINT32_MAX || ix->nrecs < ix->rec_cap)
		return 0;
	cap = ix->rec_cap ? ix->rec_cap * 2 : 256;
	if (cap >= IX_REC)
		return -ENOMEM;
	r = realloc(ix->recs, (size_t)cap * sizeof(*r));
	if (!r)
		return -ENOMEM;
	ix->recs = r;
	ix->rec_cap = cap;
	return 0;
}

int bc_index_insert(struct bc_index *ix, uint64_t block, struct bc_ix_ent *out)
{
	uint8_t tag = ix_tag(block);
	uint64_t i;

	if (reserve_rec(ix) < 0)
		return -ENOMEM;
	if ((ix->count + 1) * 100 > ix->cap * IX_MAX_LOAD && grow(ix) < 0)
		return -ENOMEM;
	for (i = ix_home(ix, block);; i = ix_next(ix, i)) {
		struct bc_ix_bucket *b = &ix->tab[i];

		if (b->v == BC_IX_FREE) {
			b->v = BC_IX_NEW;
			b->tag = tag;
			ix->count++;
			break;
		}
		if (ix_match(ix, i, block, tag))
			break;
	}
	fill(ix, i, block, out);
	return 0;
}

static uint32_t rec_take(struct bc_index *ix)
{
	uint32_t r = ix->rec_free;

	if (r != UINT32_MAX) {
		ix->rec_free = ix->recs[r].slot;
		return r;
	}
	return ix->nrecs++; /* reserve_rec made room */
}

static void rec_put(struct bc_index *ix, uint32_t r)
{
	ix->recs[r].slot = ix->rec_free;
	ix->rec_free = r;
}

void bc_index_set(struct bc_index *ix, struct bc_ix_ent *ent, uint32_t slot, uint8_t flags)
{
	struct bc_ix_bucket *b = &ix->tab[ent->bucket];
	bc_slot_t *map = *ix->slots;
	uint8_t state = flags & BC_IX_STATE;

	if (bc_slot_nblocks(map[slot]) > 1) {
		uint32_t r = is_rec(b->v) ? b->v & ~IX_REC : rec_take(ix);

		ix->recs[r] = (struct bc_ix_rec){ .block = ent->block, .slot = slot, .state = state };
		b->v = IX_REC | r;
	} else {
		if (is_rec(b->v))
			rec_put(ix, b->v & ~IX_REC);
		b->v = slot;
		map[slot] = bc_slot_with_live(map[slot], to_live(state));
	}
	ent->slot = slot;
	ent->mask = bc_slot_mask(map[slot]);
	ent->flags = state | ((bc_slot_eflags(map[slot]) & BC_ENT_ZERO) ? BC_IX_ZERO : 0);
}

void bc_index_remove(struct bc_index *ix, struct bc_ix_ent *e)
{
	uint64_t hole = e->bucket, i = hole;

	if (is_rec(ix->tab[hole].v))
		rec_put(ix, ix->tab[hole].v & ~IX_REC);
	/* Backward-shift: move later members of the probe run into the hole. */
	for (;;) {
		uint64_t home;

		i = ix_next(ix, i);
		if (ix->tab[i].v == BC_IX_FREE)
			break;
		home = ix_home(ix, bucket_block(ix, ix->tab[i].v));
		/* Can entry i move to the hole?  Only if its home is not in (hole, i]. */
		if (ix_dist(ix, home, i) >= ix_dist(ix, hole, i)) {
			ix->tab[hole] = ix->tab[i];
			hole = i;
		}
	}
	ix->tab[hole].v = BC_IX_FREE;
	ix->count--;
}
