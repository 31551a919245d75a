/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The index against a reference model under random insert/update/remove.
 * Buckets hold only a slot: the slot map holds the block and its state, as
 * in the engine; the blocks of a ZERO range (one slot for many blocks)
 * get range records.
 */
#include <string.h>

#include "log/index.h"
#include "testutil.h"

#define KEYS 200000
#define ZSLOT (2 * KEYS)             /* the zero range test's slots follow */
#define SLOTS (2 * KEYS + 1 + 65536)

static bc_slot_t *slots;

/* Point slot @s at @key alone (a data entry, all sectors). */
static uint32_t slot_set(uint32_t s, uint64_t key)
{
	slots[s] = bc_slot_make(&(struct bc_seg_entry){ .block = key, .nblocks = 1,
							.mask = BC_FULL_MASK });
	return s;
}

static uint64_t key_of(uint64_t k)
{
	/* spread keys over a huge range to exercise hashing */
	return k * 7919 + ((k & 1) ? (1ull << 39) : 0);
}

/* The state a key's entry should have: derived from the op counter. */
static uint8_t state_of(unsigned long ops)
{
	return (uint8_t)(ops & BC_IX_STATE);
}

static void test_random(void)
{
	static uint32_t model[KEYS]; /* slot+1, 0 = absent */
	static uint8_t mstate[KEYS];
	struct bc_index ix;
	uint64_t present = 0, i;
	unsigned long ops;

	srand(2);
	CHECK(bc_index_init(&ix, 16, &slots) == 0, "init");
	for (ops = 0; ops < 2000000; ops++) {
		uint64_t k = (uint64_t)rand() % KEYS, key = key_of(k);
		int op = rand() % 3;
		struct bc_ix_ent e;

		if (op < 2) {
			uint32_t s;

			if (bc_index_insert(&ix, key, &e) < 0) {
				CHECK(0, "insert failed");
				break;
			}
			if (!model[k]) {
				present++;
				if (e.slot != BC_IX_NEW || e.mask || e.flags || e.block != key)
					CHECK(0, "new entry not blank");
			} else if (e.slot != model[k] - 1 || e.flags != mstate[k] ||
				   e.mask != BC_FULL_MASK) {
				CHECK(0, "insert of a present key returned another entry");
			}
			/* Moves to a new slot (an overwrite), like the engine:
			 * key k owns slots k and KEYS + k and alternates, so a
			 * slot is never reused while an entry points to it. */
			s = slot_set(model[k] == k + 1 ? (uint32_t)(KEYS + k) : (uint32_t)k, key);
			bc_index_set(&ix, &e, s, state_of(ops));
			if (e.slot != s || e.flags != state_of(ops))
				CHECK(0, "set did not update the view");
			model[k] = s + 1;
			mstate[k] = state_of(ops);
		} else {
			bool found = bc_index_find(&ix, key, &e);

			if (found != (model[k] != 0)) {
				CHECK(0, "find(%llu) presence mismatch", (unsigned long long)key);
				continue;
			}
			if (found) {
				if (e.slot != model[k] - 1 || e.block != key || e.flags != mstate[k])
					CHECK(0, "slot/block/state mismatch");
				bc_index_remove(&ix, &e);
				model[k] = 0;
				present--;
			}
		}
	}
	CHECK(ix.count == present, "count %llu vs %llu", (unsigned long long)ix.count,
	      (unsigned long long)present);
	for (i = 0; i < KEYS; i++) {
		struct bc_ix_ent e;
		bool found = bc_index_find(&ix, key_of(i), &e);

		if (found != (model[i] != 0) || (found && (e.slot != model[i] - 1 ||
							   e.flags != mstate[i]))) {
			CHECK(0, "final state mismatch at %llu", (unsigned long long)i);
			break;
		}
	}
	t_checks += KEYS;
	CHECK(ix.cap >= ix.count * 100 / 85, "load factor bounded");
	CHECK(ix.nrecs == 0, "no range records for single blocks (%u)", ix.nrecs);
	bc_index_destroy(&ix);
}

/* ZERO ranges: one slot, many blocks, each with a state of its own. */
static void test_zero_ranges(void)
{
	struct bc_index ix;
	const uint64_t base = (5ull << 32) + 65536 - 1000;
	const uint32_t n = 65535;
	uint64_t b;
	unsigned bad = 0;
	struct bc_ix_ent e;

	CHECK(bc_index_init(&ix, 16, &slots) == 0, "init");
	slots[ZSLOT] = bc_slot_make(&(struct bc_seg_entry){ .block = base, .nblocks = (uint16_t)n,
							    .mask = BC_FULL_MASK,
							    .flags = BC_ENT_ZERO | BC_ENT_DIRTY });
	for (b = base; b < base + n; b++) {
		bad += bc_index_insert(&ix, b, &e) < 0 || e.slot != BC_IX_NEW;
		bc_index_set(&ix, &e, ZSLOT, BC_IX_DIRTY);
		bad += e.flags != (BC_IX_DIRTY | BC_IX_ZERO) || e.mask != BC_FULL_MASK;
	}
	CHECK(bad == 0 && ix.count == n && ix.nrecs == n, "inserted %u blocks of one range (%u bad)",
	      n, bad);
	/* Clean every seventh block alone: its neighbours stay dirty. */
	for (b = base; b < base + n; b += 7) {
		bad += !bc_index_find(&ix, b, &e);
		bc_index_set(&ix, &e, e.slot, (uint8_t)(e.flags & ~BC_IX_DIRTY));
	}
	/* Overwrite every third block (new slots: its record is freed), drop
	 * every fifth. */
	for (b = base; b < base + n; b += 3) {
		bad += bc_index_insert(&ix, b, &e) < 0 || e.slot != ZSLOT;
		bc_index_set(&ix, &e, slot_set(ZSLOT + 1 + (uint32_t)(b - base), b), 0);
	}
	for (b = base + 1; b < base + n; b += 5) {
		bad += !bc_index_find(&ix, b, &e);
		bc_index_remove(&ix, &e);
	}
	for (b = base - 10; b < base + n + 10; b++) {
		bool found = bc_index_find(&ix, b, &e);
		bool in = b >= base && b < base + n, gone = in && (b - base - 1) % 5 == 0 && b > base;
		bool moved = in && (b - base) % 3 == 0;
		uint8_t want = moved ? 0 : (b - base) % 7 == 0 ? BC_IX_ZERO : BC_IX_ZERO | BC_IX_DIRTY;

		if (!in || gone)
			bad += found;
		else if (!found || e.block != b || (moved ? e.slot == ZSLOT : e.slot != ZSLOT) ||
			 e.flags != want)
			bad++;
	}
	t_checks += n;
	CHECK(bad == 0, "zero range lookups and states: %u wrong", bad);
	/* Records freed by overwrites and removals are reused, not grown. */
	{
		uint32_t before = ix.rec_cap;

		for (b = base; b < base + n; b += 3) {
			bad += bc_index_insert(&ix, b, &e) < 0;
			bc_index_set(&ix, &e, ZSLOT, 0);
		}
		CHECK(bad == 0 && ix.rec_cap == before, "freed range records reused (%u -> %u)",
		      before, ix.rec_cap);
	}
	bc_index_destroy(&ix);
}

/* What a cached block costs: 5 bytes a bucket at a load of at most 80 %. */
static void test_size(void)
{
	struct bc_index ix;

	CHECK(bc_index_init(&ix, 1000000, &slots) == 0, "init");
	CHECK(bc_index_bytes(&ix) <= 1000000ull * 5 * 5 / 4 + 5 * 1024, "index of 1 M slots: %llu bytes",
	      (unsigned long long)bc_index_bytes(&ix));
	bc_index_destroy(&ix);
}

int main(void)
{
	slots = calloc(SLOTS, sizeof(*slots));
	if (!slots)
		return 1;
	test_random();
	test_zero_ranges();
	test_size();
	free(slots);
	return t_finish("2000000 random index operations vs a model (slots, states), zero ranges "
			"with per-block states, 5 bytes per bucket");
}
