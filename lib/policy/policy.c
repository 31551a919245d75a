/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

#define NHIT_SIZE (1u << BC_NHIT_BITS)

int bc_policy_init(struct bc_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->nhit = calloc(NHIT_SIZE, 1);
	return p->nhit ? 0 : -ENOMEM;
}

void bc_policy_destroy(struct bc_policy *p)
{
	free(p->nhit);
	p->nhit = NULL;
}

bool bc_policy_sequential(struct bc_policy *p, uint64_t off, uint64_t len, uint64_t cutoff)
{
	struct bc_stream *s, *lru = &p->streams[0];
	unsigned i;

	p->tick++;
	for (i = 0; i < BC_POLICY_STREAMS; i++) {
		s = &p->streams[i];
		if (s->run && s->next == off) {
			s->next = off + len;
			s->run += len;
			s->used = p->tick;
			return cutoff && s->run > cutoff;
		}
		if (s->used < lru->used)
			lru = s;
	}
	lru->next = off + len;
	lru->run = len;
	lru->used = p->tick;
	return cutoff && len > cutoff;
}

bool bc_policy_miss(struct bc_policy *p, uint64_t block, uint64_t hits)
{
	uint64_t h = block * 0x9e3779b97f4a7c15ull;
	uint8_t *c = &p->nhit[h >> (64 - BC_NHIT_BITS)];
	unsigned i;

	if (!hits)
		return false;
	if (*c < UINT8_MAX)
		(*c)++;
	/* Age: halve every counter after 4 misses per counter on average. */
	if (++p->nhit_ops >= 4ull * NHIT_SIZE) {
		p->nhit_ops = 0;
		for (i = 0; i < NHIT_SIZE; i++)
			p->nhit[i] >>= 1;
	}
	return *c >= hits;
}
