/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>

#include "log/index.h"

static inline uint64_t ix_hash(uint64_t b)
{
	b ^= b >> 33;
	b *= 0xff51afd7ed558ccdull;
	b ^= b >> 33;
	return b;
}

uint64_t bc_index_block(const struct bc_index *ix, const struct bc_ix_ent *e)
{
	const struct bc_seg_entry *r = &(*ix->rmap)[e->slot];

	/* One block per slot, or a ZERO range: the tag picks the block. */
	return r->block + (uint16_t)(e->tag - (uint16_t)r->block);
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

static inline bool ix_match(const struct bc_index *ix, const struct bc_ix_ent *e, uint64_t block)
{
	return e->tag == (uint16_t)block && e->slot < BC_IX_NEW && bc_index_block(ix, e) == block;
}

static struct bc_ix_ent *alloc_tab(uint64_t cap)
{
	struct bc_ix_ent *t = malloc(cap * sizeof(*t));
	uint64_t i;

	if (!t)
		return NULL;
	for (i = 0; i < cap; i++)
		t[i].slot = BC_IX_FREE;
	return t;
}

/* Grow past this load (in 1/100): linear probing stays short below it. */
#define IX_MAX_LOAD 85

int bc_index_init(struct bc_index *ix, uint64_t expected, struct bc_seg_entry *const *rmap)
{
	/* Room for every slot of the cache at a load of at most 80 %: one
	 * entry per cached block, so this is the index's RAM per block. */
	uint64_t cap = expected + expected / 4 + 1;

	if (cap < 1024)
		cap = 1024;
	ix->tab = alloc_tab(cap);
	if (!ix->tab)
		return -ENOMEM;
	ix->cap = cap;
	ix->count = 0;
	ix->rmap = rmap;
	return 0;
}

void bc_index_destroy(struct bc_index *ix)
{
	free(ix->tab);
	ix->tab = NULL;
	ix->cap = ix->count = 0;
}

struct bc_ix_ent *bc_index_find(const struct bc_index *ix, uint64_t block)
{
	uint64_t i = ix_home(ix, block);

	for (;;) {
		struct bc_ix_ent *e = &ix->tab[i];

		if (e->slot == BC_IX_FREE)
			return NULL;
		if (ix_match(ix, e, block))
			return e;
		i = ix_next(ix, i);
	}
}

static int grow(struct bc_index *ix)
{
	struct bc_index n = { .cap = ix->cap * 2, .count = ix->count, .rmap = ix->rmap };
	uint64_t i;

	n.tab = alloc_tab(n.cap);
	if (!n.tab)
		return -ENOMEM;
	for (i = 0; i < ix->cap; i++) {
		struct bc_ix_ent *e = &ix->tab[i];
		uint64_t j;

		if (e->slot == BC_IX_FREE)
			continue;
		for (j = ix_home(&n, bc_index_block(ix, e)); n.tab[j].slot != BC_IX_FREE; j = ix_next(&n, j))
			;
		n.tab[j] = *e;
	}
	free(ix->tab);
	*ix = n;
	return 0;
}

struct bc_ix_ent *bc_index_insert(struct bc_index *ix, uint64_t block)
{
	uint64_t i;

	if ((ix->count + 1) * 100 > ix->cap * IX_MAX_LOAD && grow(ix) < 0)
		return NULL;
	for (i = ix_home(ix, block);; i = ix_next(ix, i)) {
		struct bc_ix_ent *e = &ix->tab[i];

		if (e->slot == BC_IX_FREE) {
			*e = (struct bc_ix_ent){ .slot = BC_IX_NEW, .tag = (uint16_t)block };
			ix->count++;
			return e;
		}
		if (ix_match(ix, e, block))
			return e;
	}
}

void bc_index_remove(struct bc_index *ix, struct bc_ix_ent *e)
{
	uint64_t hole = (uint64_t)(e - ix->tab), i = hole;

	/* Backward-shift: move later members of the probe run into the hole. */
	for (;;) {
		uint64_t home;

		i = ix_next(ix, i);
		if (ix->tab[i].slot == BC_IX_FREE)
			break;
		home = ix_home(ix, bc_index_block(ix, &ix->tab[i]));
		/* Can entry i move to the hole?  Only if its home is not in (hole, i]. */
		if (ix_dist(ix, home, i) >= ix_dist(ix, hole, i)) {
			ix->tab[hole] = ix->tab[i];
			hole = i;
		}
	}
	ix->tab[hole].slot = BC_IX_FREE;
	ix->count--;
}
