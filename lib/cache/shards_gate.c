/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A shard set's writeback epoch gate (writeback/gate.h, docs/shards.md):
 * each shard publishes the oldest FLUSH epoch it has not written back
 * (one writer per slot, atomics, no lock); a shard writes back epoch E
 * only when every other shard's is >= E.  One that may not raises the
 * wanted epoch, which forces the shards behind to write back, and is
 * kicked (a message to its loop) when one of them progresses.  The shard
 * with the oldest epoch never waits, so they all progress.
 */
#include "cache/shards_priv.h"
#include "engine/engine.h"

static void gate_wake_fn(struct bc_completion *c, int res)
{
	struct shard *sh = BC_CONTAINER_OF(c, struct shard, gate_wake.c);

	(void)res;
	atomic_store(&sh->gate_wake_busy, false);
	if (sh->eng)
		bc_wb_kick(sh->eng);
}

/* From @from's loop: kick @to's writeback (one message on its way at most;
 * its handler clears the flag before it looks at the gate again). */
static void gate_wake(struct shard *from, struct shard *to)
{
	if (atomic_exchange(&to->gate_wake_busy, true))
		return;
	to->gate_wake.c.fn = gate_wake_fn;
	if (from->loop == to->loop) /* the same thread (a one-thread set) */
		bc_loop_defer(to->loop, &to->gate_wake.c, 0);
	else
		bc_loop_post(from->loop, to->loop, &to->gate_wake, 0);
}

static bool gate_open(const struct shard *sh, uint64_t epoch)
{
	const struct bc_shards *s = sh->s;
	unsigned j;

	for (j = 0; j < s->n; j++)
		if (&s->sh[j] != sh && atomic_load(&s->pending[j]) < epoch)
			return false;
	return true;
}

static bool gate_may(void *ctx, uint64_t epoch)
{
	struct shard *sh = ctx;

	if (!gate_open(sh, epoch))
		return false;
	atomic_store(&sh->waiting, false);
	return true;
}

static void gate_blocked(void *ctx, uint64_t epoch)
{
	struct shard *sh = ctx;
	struct bc_shards *s = sh->s;
	uint64_t w = atomic_load(&s->want);
	unsigned j;

	atomic_store(&sh->waiting, true);
	while (w < epoch && !atomic_compare_exchange_weak(&s->want, &w, epoch))
		;
	for (j = 0; j < s->n; j++)
		if (&s->sh[j] != sh && atomic_load(&s->pending[j]) < epoch)
			gate_wake(sh, &s->sh[j]);
	/* A shard may have caught up since the check: then try again. */
	if (gate_open(sh, epoch))
		gate_wake(sh, sh);
}

static void gate_progress(void *ctx, uint64_t pending)
{
	struct shard *sh = ctx;
	struct bc_shards *s = sh->s;
	unsigned j;

	atomic_store(&s->pending[sh - s->sh], pending);
	for (j = 0; j < s->n; j++)
		if (&s->sh[j] != sh && atomic_load(&s->sh[j].waiting))
			gate_wake(sh, &s->sh[j]);
}

static uint64_t gate_wanted(void *ctx)
{
	const struct shard *sh = ctx;

	return atomic_load(&sh->s->want);
}

static const struct bc_wb_gate_ops gate_ops = {
	.may = gate_may,
	.blocked = gate_blocked,
	.progress = gate_progress,
	.wanted = gate_wanted,
};

/* Every shard counts the same FLUSHes from the same epoch on (each
 * recovered its own log: start them all after the newest), then the gate
 * keeps their writeback in epoch order. */
void bc_shards_gate_start(struct bc_shards *s)
{
	uint64_t max = 0;
	unsigned i;

	for (i = 0; i < s->n; i++)
		if (bc_seglog_epoch(s->sh[i].eng) > max)
			max = bc_seglog_epoch(s->sh[i].eng);
	for (i = 0; i < s->n; i++) {
		bc_seglog_raise_epoch(s->sh[i].eng, max);
		atomic_store(&s->pending[i], bc_seglog_pending_epoch(s->sh[i].eng));
	}
	if (s->n < 2)
		return;
	for (i = 0; i < s->n; i++) {
		s->sh[i].gate = (struct bc_wb_gate){ .ops = &gate_ops, .ctx = &s->sh[i] };
		bc_wb_gate_set(s->sh[i].eng, &s->sh[i].gate);
	}
}

/* After the threads stopped: no engine reaches the gate any more, and a
 * kick on its way to the host loop lands before the set goes. */
void bc_shards_gate_stop(struct bc_shards *s)
{
	unsigned i, k;

	for (i = 0; i < s->n; i++)
		if (s->sh[i].eng)
			bc_wb_gate_set(s->sh[i].eng, NULL);
	for (i = 0; i < s->n; i++)
		for (k = 0; s->sh[i].host >= 0 && k < 100000 && atomic_load(&s->sh[i].gate_wake_busy);
		     k++)
			bc_loop_run_once(s->sh[i].loop, 1);
}

