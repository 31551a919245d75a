/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The default promotion policy: a sequential-stream detector (bcache's
 * sequential_cutoff, tracking several concurrent streams) and an n-hit
 * filter (Open CAS): a bounded table of small saturating miss counters
 * indexed by a hash of the block, halved periodically so old misses fade.
 * Bounded memory, never a map of every origin block; a collision can only
 * promote a block early.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy/promote.h"

#define STREAMS   16
#define NHIT_BITS 16
#define NHIT_SIZE (1u << NHIT_BITS)

enum { P_SEQUENTIAL_CUTOFF, P_PROMOTE_HITS, NR_PARAMS };

const struct bc_tunable_info bc_promote_nhit_params[NR_PARAMS] = {
	[P_SEQUENTIAL_CUTOFF] = {
		.name = "sequential_cutoff", .unit = "bytes", .min = 0, .max = 1ull << 40,
		.def = 4ull << 20,
		.help = "read misses of a sequential stream longer than this are not promoted "
			"(0: no cutoff)",
	},
	[P_PROMOTE_HITS] = {
		.name = "promote_hits", .unit = "count", .min = 0, .max = 255, .def = 2,
		.help = "promote a read miss once its block has missed this many times (0: never "
			"promote)",
	},
};

struct stream {
	uint64_t next;   /* byte offset the stream continues at */
	uint64_t run;    /* bytes read sequentially so far */
	uint64_t used;   /* LRU tick */
};

struct nhit {
	struct stream streams[STREAMS];
	uint64_t tick;
	uint8_t *count;
	uint64_t ops;
	uint64_t param[NR_PARAMS];
};

static int nhit_init(void **ctx)
{
	struct nhit *p = calloc(1, sizeof(*p));
	unsigned i;

	if (!p)
		return -ENOMEM;
	p->count = calloc(NHIT_SIZE, 1);
	if (!p->count) {
		free(p);
		return -ENOMEM;
	}
	for (i = 0; i < NR_PARAMS; i++)
		p->param[i] = bc_promote_nhit_params[i].def;
	*ctx = p;
	return 0;
}

static void nhit_destroy(void *ctx)
{
	struct nhit *p = ctx;

	if (!p)
		return;
	free(p->count);
	free(p);
}

/* Account a read of [off, off+len); true if it belongs to a sequential
 * stream that has grown past the cutoff. */
static bool sequential(struct nhit *p, uint64_t off, uint64_t len)
{
	uint64_t cutoff = p->param[P_SEQUENTIAL_CUTOFF];
	struct stream *s, *lru = &p->streams[0];
	unsigned i;

	p->tick++;
	for (i = 0; i < STREAMS; i++) {
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

static enum bc_promote_verdict nhit_note_read(void *ctx, uint64_t off, uint64_t len)
{
	struct nhit *p = ctx;

	if (!p->param[P_PROMOTE_HITS])
		return BC_PROMOTE_NONE;
	return sequential(p, off, len) ? BC_PROMOTE_SEQUENTIAL : BC_PROMOTE_CANDIDATE;
}

/* Count a miss of @block; true once it has missed promote_hits times. */
static bool nhit_should_promote(void *ctx, uint64_t block)
{
	struct nhit *p = ctx;
	uint64_t h = block * 0x9e3779b97f4a7c15ull, hits = p->param[P_PROMOTE_HITS];
	uint8_t *c = &p->count[h >> (64 - NHIT_BITS)];
	unsigned i;

	if (!hits)
		return false;
	if (*c < UINT8_MAX)
		(*c)++;
	/* Age: halve every counter after 4 misses per counter on average. */
	if (++p->ops >= 4ull * NHIT_SIZE) {
		p->ops = 0;
		for (i = 0; i < NHIT_SIZE; i++)
			p->count[i] >>= 1;
	}
	return *c >= hits;
}

static void nhit_purge(void *ctx)
{
	struct nhit *p = ctx;

	memset(p->streams, 0, sizeof(p->streams));
	memset(p->count, 0, NHIT_SIZE);
	p->ops = 0;
}

static uint64_t nhit_get_param(void *ctx, unsigned i)
{
	return ((struct nhit *)ctx)->param[i];
}

static void nhit_set_param(void *ctx, unsigned i, uint64_t value)
{
	((struct nhit *)ctx)->param[i] = value;
}

const struct bc_promote_ops bc_promote_nhit = {
	.name = "nhit",
	.params = bc_promote_nhit_params,
	.nr_params = NR_PARAMS,
	.init = nhit_init,
	.destroy = nhit_destroy,
	.note_read = nhit_note_read,
	.should_promote = nhit_should_promote,
	.purge = nhit_purge,
	.get_param = nhit_get_param,
	.set_param = nhit_set_param,
};
