/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>

#include "index.h"

static inline uint64_t ix_hash(uint64_t b)
{
	b ^= b >> 33;
	b *= 0xff51afd7ed558ccdull;
	b ^= b >> 33;
	return b;
}

static struct bc_ix_ent *alloc_tab(uint64_t cap)
{
	struct bc_ix_ent *t = malloc(cap * sizeof(*t));
	uint64_t i;

	if (!t)
		return NULL;
	for (i = 0; i < cap; i++)
		t[i].block = BC_IX_EMPTY;
	return t;
}

int bc_index_init(struct bc_index *ix, uint64_t expected)
{
	uint64_t cap = 1024;

	while (cap < expected + expected / 2)
		cap <<= 1;
	ix->tab = alloc_tab(cap);
	if (!ix->tab)
		return -ENOMEM;
	ix->cap = cap;
	ix->count = 0;
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

		if (e->block == block)
			return e;
		if (e->block == BC_IX_EMPTY)
			return NULL;
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

		if (e->block == BC_IX_EMPTY)
			continue;
		for (j = ix_hash(e->block) & m; nt[j].block != BC_IX_EMPTY; j = (j + 1) & m)
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

		if (e->block == block)
			return e;
		if (e->block == BC_IX_EMPTY) {
			e->block = block;
			e->slot = UINT32_MAX;
			e->mask = 0;
			e->flags = 0;
			e->pad = 0;
			ix->count++;
			return e;
		}
	}
}

void bc_index_remove(struct bc_index *ix, struct bc_ix_ent *e)
{
	uint64_t m = ix->cap - 1, hole = (uint64_t)(e - ix->tab), i = hole;

	/* Backward-shift: move later members of the probe run into the hole. */
	for (;;) {
		uint64_t home;

		i = (i + 1) & m;
		if (ix->tab[i].block == BC_IX_EMPTY)
			break;
		home = ix_hash(ix->tab[i].block) & m;
		/* Can entry i move to the hole?  Only if its home is not in (hole, i]. */
		if (((i - home) & m) >= ((i - hole) & m)) {
			ix->tab[hole] = ix->tab[i];
			hole = i;
		}
	}
	ix->tab[hole].block = BC_IX_EMPTY;
	ix->count--;
}
