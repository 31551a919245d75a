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

int bc_index_init(struct bc_index *ix, uint64_t expected, struct bc_seg_entry *const *rmap)
{
	uint64_t cap = 1024;

	while (cap < expected + expected / 2)
		cap <<= 1;
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
	uint64_t m = ix->cap - 1, i = ix_hash(block) & m;

	for (;;) {
		struct bc_ix_ent *e = &ix->tab[i];

		if (e->slot == BC_IX_FREE)
			return NULL;
		if (ix_match(ix, e, block))
			return e;
		i = (i + 1) & m;
	}
}

static int grow(struct bc_index *ix)
{
	uint64_t ncap = ix->cap * 2, i, m = ncap - 1;
	struct bc_ix_ent *nt = alloc_tab(ncap);

	if (!nt)
		return -ENOMEM;
	for (i = 0; i < ix->cap; i++) {
		struct bc_ix_ent *e = &ix->tab[i];
		uint64_t j;

		if (e->slot == BC_IX_FREE)
			continue;
		for (j = ix_hash(bc_index_block(ix, e)) & m; nt[j].slot != BC_IX_FREE; j = (j + 1) & m)
			;
		nt[j] = *e;
	}
	free(ix->tab);
	ix->tab = nt;
	ix->cap = ncap;
	return 0;
}

struct bc_ix_ent *bc_index_insert(struct bc_index *ix, uint64_t block)
{
	uint64_t m, i;

	if ((ix->count + 1) * 4 > ix->cap * 3 && grow(ix) < 0)
		return NULL;
	m = ix->cap - 1;
	for (i = ix_hash(block) & m;; i = (i + 1) & m) {
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
	uint64_t m = ix->cap - 1, hole = (uint64_t)(e - ix->tab), i = hole;

	/* Backward-shift: move later members of the probe run into the hole. */
	for (;;) {
		uint64_t home;

		i = (i + 1) & m;
		if (ix->tab[i].slot == BC_IX_FREE)
			break;
		home = ix_hash(bc_index_block(ix, &ix->tab[i])) & m;
		/* Can entry i move to the hole?  Only if its home is not in (hole, i]. */
		if (((i - home) & m) >= ((i - hole) & m)) {
			ix->tab[hole] = ix->tab[i];
			hole = i;
		}
	}
	ix->tab[hole].slot = BC_IX_FREE;
	ix->count--;
}
