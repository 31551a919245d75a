/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The index against a reference model under random insert/update/remove.
 * Entries hold no block number: the slot map (rmap) does, as in the
 * engine; ZERO ranges (one slot for many blocks) are told apart by tag.
 */
#include <string.h>

#include "log/index.h"
#include "testutil.h"

#define KEYS 200000
#define ZSLOT (2 * KEYS)             /* the zero range test's slots follow */
#define SLOTS (2 * KEYS + 1 + 65536)

static struct bc_seg_entry *rmap;

/* Point slot @s at @key alone. */
static uint32_t slot_set(uint32_t s, uint64_t key)
{
	rmap[s] = (struct bc_seg_entry){ .block = key, .nblocks = 1 };
	return s;
}

static uint64_t key_of(uint64_t k)
{
	/* spread keys over a huge range to exercise hashing */
	return k * 7919 + ((k & 1) ? (1ull << 40) : 0);
}

static void test_random(void)
{
	static uint32_t model[KEYS]; /* slot+1, 0 = absent */
	struct bc_index ix;
	uint64_t present = 0, i;
	unsigned long ops;

	srand(2);
	CHECK(bc_index_init(&ix, 16, &rmap) == 0, "init");
	for (ops = 0; ops < 2000000; ops++) {
		uint64_t k = (uint64_t)rand() % KEYS, key = key_of(k);
		int op = rand() % 3;
		struct bc_ix_ent *e;

		if (op < 2) {
			uint32_t s;

			e = bc_index_insert(&ix, key);
			if (!e) {
				CHECK(0, "insert failed");
				break;
			}
			if (!model[k]) {
				present++;
				if (e->slot != BC_IX_NEW || e->mask || e->flags)
					CHECK(0, "new entry not blank");
			} else if (e->slot != model[k] - 1) {
				CHECK(0, "insert of a present key returned another entry");
			}
			/* Moves to a new slot (an overwrite), like the engine:
			 * key k owns slots k and KEYS + k and alternates, so a
			 * slot is never reused while an entry points to it. */
			s = slot_set(model[k] == k + 1 ? (uint32_t)(KEYS + k) : (uint32_t)k, key);
			e->slot = s;
			e->mask = (uint8_t)ops;
			model[k] = s + 1;
		} else {
			e = bc_index_find(&ix, key);
			if ((e != NULL) != (model[k] != 0)) {
				CHECK(0, "find(%llu) presence mismatch", (unsigned long long)key);
				continue;
			}
			if (e) {
				if (e->slot != model[k] - 1 || bc_index_block(&ix, e) != key)
					CHECK(0, "slot/block mismatch");
				bc_index_remove(&ix, e);
				model[k] = 0;
				present--;
			}
		}
	}
	CHECK(ix.count == present, "count %llu vs %llu", (unsigned long long)ix.count,
	      (unsigned long long)present);
	for (i = 0; i < KEYS; i++) {
		struct bc_ix_ent *e = bc_index_find(&ix, key_of(i));

		if ((e != NULL) != (model[i] != 0) || (e && e->slot != model[i] - 1)) {
			CHECK(0, "final state mismatch at %llu", (unsigned long long)i);
			break;
		}
	}
	t_checks += KEYS;
	CHECK(ix.cap >= ix.count * 4 / 3, "load factor bounded");
	bc_index_destroy(&ix);
}

/* ZERO ranges: one slot, many blocks, across a 65536-block tag wrap. */
static void test_zero_ranges(void)
{
	struct bc_index ix;
	const uint64_t base = (5ull << 32) + 65536 - 1000; /* tags wrap inside the range */
	const uint32_t n = 65535;
	uint64_t b;
	unsigned bad = 0;

	CHECK(bc_index_init(&ix, 16, &rmap) == 0, "init");
	rmap[ZSLOT] = (struct bc_seg_entry){ .block = base, .nblocks = (uint16_t)n, .flags = BC_ENT_ZERO };
	for (b = base; b < base + n; b++) {
		struct bc_ix_ent *e = bc_index_insert(&ix, b);

		bad += !e || e->slot != BC_IX_NEW;
		if (e)
			e->slot = ZSLOT;
	}
	CHECK(bad == 0 && ix.count == n, "inserted %u blocks of one range (%u bad)", n, bad);
	/* Overwrite every third block (new slots), drop every fifth. */
	for (b = base; b < base + n; b += 3) {
		struct bc_ix_ent *e = bc_index_insert(&ix, b);

		bad += !e || e->slot != ZSLOT;
		if (e)
			e->slot = slot_set(ZSLOT + 1 + (uint32_t)(b - base), b);
	}
	for (b = base + 1; b < base + n; b += 5) {
		struct bc_ix_ent *e = bc_index_find(&ix, b);

		bad += !e;
		if (e)
			bc_index_remove(&ix, e);
	}
	for (b = base - 10; b < base + n + 10; b++) {
		struct bc_ix_ent *e = bc_index_find(&ix, b);
		bool in = b >= base && b < base + n, gone = in && (b - base - 1) % 5 == 0 && b > base;
		bool moved = in && (b - base) % 3 == 0;

		if (!in || gone)
			bad += e != NULL;
		else if (!e || bc_index_block(&ix, e) != b || (moved ? e->slot == ZSLOT : e->slot != ZSLOT))
			bad++;
	}
	t_checks += n;
	CHECK(bad == 0, "zero range lookups: %u wrong", bad);
	bc_index_destroy(&ix);
}

int main(void)
{
	rmap = calloc(SLOTS, sizeof(*rmap));
	if (!rmap)
		return 1;
	test_random();
	test_zero_ranges();
	free(rmap);
	return t_finish("2000000 random index operations vs a model, zero ranges");
}
