/* SPDX-License-Identifier: BSD-3-Clause */
/* The index against a reference model under random insert/update/remove. */
#include <string.h>

#include "index.h"
#include "testutil.h"

#define KEYS 200000

int main(void)
{
	static uint32_t model[KEYS]; /* slot+1, 0 = absent */
	struct bc_index ix;
	uint64_t present = 0, i;
	unsigned long ops;

	srand(2);
	CHECK(bc_index_init(&ix, 16) == 0, "init");
	for (ops = 0; ops < 2000000; ops++) {
		uint64_t k = (uint64_t)rand() % KEYS;
		/* spread keys over a huge range to exercise hashing */
		uint64_t key = k * 7919 + ((k & 1) ? (1ull << 40) : 0);
		int op = rand() % 3;
		struct bc_ix_ent *e;

		if (op < 2) {
			e = bc_index_insert(&ix, key);
			if (!e) {
				CHECK(0, "insert failed");
				break;
			}
			if (!model[k]) {
				present++;
				if (e->slot != UINT32_MAX)
					CHECK(0, "new entry not blank");
			}
			e->slot = (uint32_t)ops;
			e->mask = (uint8_t)ops;
			model[k] = (uint32_t)ops + 1;
		} else {
			e = bc_index_find(&ix, key);
			if ((e != NULL) != (model[k] != 0)) {
				CHECK(0, "find(%llu) presence mismatch", (unsigned long long)key);
				continue;
			}
			if (e) {
				if (e->slot != model[k] - 1)
					CHECK(0, "slot mismatch");
				bc_index_remove(&ix, e);
				model[k] = 0;
				present--;
			}
		}
	}
	CHECK(ix.count == present, "count %llu vs %llu", (unsigned long long)ix.count,
	      (unsigned long long)present);
	for (i = 0; i < KEYS; i++) {
		struct bc_ix_ent *e = bc_index_find(&ix, i * 7919 + ((i & 1) ? (1ull << 40) : 0));

		if ((e != NULL) != (model[i] != 0) || (e && e->slot != model[i] - 1)) {
			CHECK(0, "final state mismatch at %llu", (unsigned long long)i);
			break;
		}
	}
	t_checks += KEYS;
	CHECK(ix.cap >= ix.count * 4 / 3, "load factor bounded");
	bc_index_destroy(&ix);
	return t_finish("2000000 random index operations vs a model");
}
