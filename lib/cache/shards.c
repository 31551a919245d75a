/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A shard set (blkcache/shards.h): N engines on N loop threads behind one
 * target.  A request is split at stripe boundaries into parts; each part
 * is a request of its own to one shard's engine.  Parts travel in batches:
 * the parts for a shard gathered during one round of the host loop go in
 * one cross-loop message (bc_loop_post; the first part carries the list),
 * and the parts a shard completed during one round of its loop come back
 * in one -- one push onto the receiving loop's inbox per batch each way
 * (and a wake-up only if that loop may be blocked).
 * Parts are allocated and freed on their host's thread only, so the free
 * lists need no lock; a shard thread touches a part only between the
 * messages.  Shard 0 runs on the host loop itself (no thread, no
 * messages): the host thread is busy anyway, so N shards take N threads,
 * not N + 1.  More hosts (cfg->nhosts): host k is a loop a thread of the
 * caller runs, with its own target; it runs shard k too, so requests
 * submitted there for shard k need no message, and each host-shard pair
 * has its own batches both ways.  Or (shard_hosts) the shards' own
 * threads are the hosts: host k runs on shard k's loop.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blkcache/shards.h"
#include "cache/shards_internal.h"
#include "cache/shards_priv.h"
#include "engine/engine.h"

static struct part *part_get(struct host *h)
{
	struct part *p = h->free;

	if (p) {
		h->free = p->next;
		return p;
	}
	return calloc(1, sizeof(*p));
}

static void part_put(struct host *h, struct part *p)
{
	p->next = h->free;
	h->free = p;
}

static void batch_init(struct batch *b, struct host *h, struct shard *sh,
		       void (*flush)(struct bc_completion *c, int res))
{
	b->head = NULL;
	b->tail = &b->head;
	b->flush.fn = flush;
	b->h = h;
	b->sh = sh;
}

/* Add @p to @b, to go at the end of this round of @loop. */
static void batch_add(struct batch *b, struct bc_loop *loop, struct part *p)
{
	p->next = NULL;
	*b->tail = p;
	b->tail = &p->next;
	if (!b->scheduled) {
		b->scheduled = true;
		bc_loop_defer(loop, &b->flush, 0);
	}
}

/* Send @b's parts from @from to @to, where @fn takes them. */
static void batch_send(struct batch *b, struct bc_loop *from, struct bc_loop *to,
		       void (*fn)(struct bc_completion *c, int res))
{
	struct part *first = b->head;

	b->scheduled = false;
	b->head = NULL;
	b->tail = &b->head;
	if (!first)
		return;
	first->msg.c.fn = fn;
	bc_loop_post(from, to, &first->msg, 0);
}

/* Shard thread: the engine finished a part; it goes back with the batch. */
static void part_done(struct bc_request *req, int res)
{
	struct part *p = req->priv;

	p->res = res;
	batch_add(&p->sh->back[p->h->idx], p->sh->loop, p);
}

/* Shard thread: hand a batch's parts to the shard's engine. */
static void parts_run(struct bc_completion *c, int res)
{
	struct part *p = BC_CONTAINER_OF(c, struct part, msg.c), *next;

	(void)res;
	for (; p; p = next) {
		next = p->next; /* the engine may complete it at once (and relink it) */
		bc_target_submit(p->sh->t, &p->req);
	}
}

/* Host thread: part @p is done; its parent once all of its parts are. */
static void part_finish(struct part *p, int res)
{
	struct bc_request *r = p->parent;
	struct parent_state *ps = (struct parent_state *)&r->target_private;

	if (res < 0 && !ps->err)
		ps->err = res;
	part_put(p->h, p);
	if (!--ps->left)
		r->done(r, ps->err);
}

/* Host thread: a batch of parts is done. */
static void parts_back(struct bc_completion *c, int res)
{
	struct part *p = BC_CONTAINER_OF(c, struct part, msg.c), *next;

	(void)res;
	for (; p; p = next) {
		next = p->next;
		part_finish(p, p->res);
	}
}

/* Host thread: a part of the shard on the host loop is done. */
static void part_done_inline(struct bc_request *req, int res)
{
	part_finish(req->priv, res);
}

static void out_flush(struct bc_completion *c, int res)
{
	struct batch *b = BC_CONTAINER_OF(c, struct batch, flush);

	(void)res;
	batch_send(b, b->h->loop, b->sh->loop, parts_run);
}

static void back_flush(struct bc_completion *c, int res)
{
	struct batch *b = BC_CONTAINER_OF(c, struct batch, flush);

	(void)res;
	batch_send(b, b->sh->loop, b->h->loop, parts_back);
}

/* Host @h's thread: a part of @r for shard @i: [off, off + len) of the
 * export. */
static int send_part(struct host *h, struct bc_request *r, unsigned i, uint64_t off, uint64_t len)
{
	struct shard *sh = &h->s->sh[i];
	struct part *p = part_get(h);
	bool here = sh->loop == h->loop;

	if (!p)
		return -ENOMEM;
	p->parent = r;
	p->sh = sh;
	p->h = h;
	p->req = (struct bc_request){
		.op = r->op, .flags = r->flags, .offset = off, .length = len,
		.buf = r->buf ? (char *)r->buf + (off - r->offset) : NULL,
		.done = here ? part_done_inline : part_done, .priv = p,
	};
	((struct parent_state *)&r->target_private)->left++;
	if (here)
		bc_target_submit(sh->t, &p->req);
	else
		batch_add(&h->out[i], h->loop, p);
	return 0;
}

/* A request that sent no part completes from the host loop (never inside
 * submit). */
static void no_part_done(struct bc_completion *c, int res)
{
	struct parent_state *ps = BC_CONTAINER_OF(c, struct parent_state, c);

	(void)res;
	ps->r->done(ps->r, ps->err);
}

static void shards_submit(void *ctx, struct bc_request *r)
{
	struct host *h = ctx;
	struct bc_shards *s = h->s;
	struct parent_state *ps = (struct parent_state *)&r->target_private;
	uint64_t off = r->offset, end = r->offset + r->length;
	unsigned i;
	int err = 0;

	ps->left = 0;
	ps->r = r;
	if (r->op == BC_OP_FLUSH) {
		for (i = 0; i < s->n && !err; i++)
			err = send_part(h, r, i, 0, 0);
	} else if (end < off || end > h->target.size) {
		err = -EINVAL;
	} else {
		while (off < end && !err) {
			uint64_t next = ((off >> s->shift) + 1) << s->shift;

			if (next > end)
				next = end;
			err = send_part(h, r, (unsigned)((off >> s->shift) % s->n), off, next - off);
			off = next;
		}
	}
	/* Parts complete from the host loop only, so none has yet: the
	 * parent completes when the last one sent comes back. */
	ps->err = err;
	if (!ps->left) {
		ps->c.fn = no_part_done;
		bc_loop_defer(h->loop, &ps->c, 0);
	}
}

static const struct bc_target_ops shards_ops = {
	.name = "shards",
	.submit = shards_submit,
};

/* Before a shard's loop sleeps, it polls this long for more work: a
 * wake-up costs more than a batch of parts (a context switch, an IPI). */
#define SPIN_NS 30000

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* Poll @sh's loop for up to SPIN_NS: what the last round returned (> 0:
 * something ran; 0: nothing did; < 0: the loop failed). */
static int spin(struct shard *sh)
{
	uint64_t t0 = bc_now_ns();
	int n = 0;

	while (!atomic_load(&sh->stop) && bc_now_ns() - t0 < SPIN_NS &&
	       (n = bc_loop_run_once(sh->loop, 0)) == 0)
		cpu_relax();
	return n;
}

static void *shard_main(void *arg)
{
	struct shard *sh = arg;
	bool sleep = false; /* the last poll found nothing: wait in the next round */
	int n;

	bc_loop_set_polling(sh->loop, true);
	while (!atomic_load(&sh->stop)) {
		n = bc_loop_run_once(sh->loop, sleep ? -1 : 0);
		if (n == 0)
			n = spin(sh);
		if (n < 0)
			break;
		sleep = n == 0;
	}
	bc_loop_set_polling(sh->loop, false);
	return NULL;
}

static void wake_fn(struct bc_completion *c, int res)
{
	(void)c;
	(void)res;
}

void bc_shards_stop(struct bc_shards *s)
{
	unsigned i;

	s->stopped = true;

	for (i = 0; i < s->n; i++) {
		if (!s->sh[i].running)
			continue;
		atomic_store(&s->sh[i].stop, true);
		s->sh[i].wake.c.fn = wake_fn;
		bc_loop_post(s->host, s->sh[i].loop, &s->sh[i].wake, 0);
	}
	/* A wake the host's ring could not take at once is sent again from
	 * its loop: run it until every shard thread is out. */
	for (;;) {
		bool all = true;

		for (i = 0; i < s->n; i++)
			all &= !s->sh[i].running || atomic_load(&s->sh[i].exited);
		if (all)
			break;
		bc_loop_run_once(s->host, 1);
	}
	for (i = 0; i < s->n; i++) {
		if (!s->sh[i].running)
			continue;
		pthread_join(s->sh[i].thread, NULL);
		s->sh[i].running = false;
	}
}

int bc_shards_close(struct bc_shards *s)
{
	struct part *p;
	unsigned i;
	int ret = 0, r;

	if (!s)
		return 0;
	bc_shards_stop(s);
	bc_shards_gate_stop(s);
	for (i = 0; i < s->n; i++) {
		if (s->sh[i].eng) {
			r = bc_engine_close(s->sh[i].eng);
			if (r && !ret)
				ret = r;
		}
	}
	for (i = 0; i < s->n; i++)
		if (s->sh[i].host < 0)
			bc_loop_free(s->sh[i].loop);
	for (i = 0; i < s->nhosts; i++) {
		while ((p = s->hosts[i].free)) {
			s->hosts[i].free = p->next;
			free(p);
		}
	}
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
	return ret;
}

void bc_shards_crash(struct bc_shards *s)
{
	unsigned i, k;

	bc_shards_stop(s);
	bc_shards_gate_stop(s);
	for (i = 0; i < s->n; i++) {
		struct bc_engine *e = s->sh[i].eng;

		/* The device IO in flight lands (a dying process's may): its
		 * completions must not find the engine gone. */
		for (k = 0; e && k < 100000 && (e->cache->q.inflight || e->origin->q.inflight); k++)
			bc_loop_run_once(s->sh[i].loop, 1);
		bc_engine_free(s->sh[i].eng);
		s->sh[i].eng = NULL;
	}
	bc_shards_close(s);
}

/* The shards must export the same size with the same abilities. */
static int build_target(struct bc_shards *s, char *why, size_t whylen)
{
	unsigned i;

	struct bc_target t = *s->sh[0].t;

	t.ops = &shards_ops;
	for (i = 1; i < s->n; i++) {
		if (s->sh[i].t->size != t.size) {
			snprintf(why, whylen, "shard %u exports %llu bytes, shard 0 %llu: the shards must "
				 "cache the same origin", i, (unsigned long long)s->sh[i].t->size,
				 (unsigned long long)t.size);
			return -EINVAL;
		}
		t.flags &= s->sh[i].t->flags;
	}
	for (i = 0; i < s->nhosts; i++) {
		s->hosts[i].target = t;
		s->hosts[i].target.ctx = &s->hosts[i];
	}
	return 0;
}

/* Open shard @i's engine on the calling thread (its own, or the host's
 * for shard 0). */
static int open_engine(struct bc_shards *s, unsigned i)
{
	const struct bc_shards_config *cfg = s->cfg;
	struct shard *sh = &s->sh[i];
	struct bc_engine_config ecfg = cfg->engines[i];
	char sub[400] = "";
	int ret;

	ecfg.origin_shared = i > 0; /* shard 0's handle holds the origin's lock */
	ret = bc_engine_open(&sh->eng, sh->loop, &ecfg, sub, sizeof(sub));
	if (ret) {
		snprintf(sh->open_why, sizeof(sh->open_why), "shard %u (cache %s): %s", i,
			 cfg->engines[i].cache_path, sub[0] ? sub : strerror(-ret));
		return ret;
	}
	sh->t = bc_engine_target(sh->eng);
	if (cfg->setup && (ret = cfg->setup(sh->eng, i, cfg->setup_arg)) != 0) {
		snprintf(sh->open_why, sizeof(sh->open_why), "shard %u: setting it up failed", i);
		return ret < 0 ? ret : -EINVAL;
	}
	return 0;
}

/* A shard's thread: open (recover) its engine, report, and once every
 * shard is open, serve. */
static void *shard_thread(void *arg)
{
	struct shard *sh = arg;
	struct bc_shards *s = sh->s;
	int go;

	sh->open_ret = open_engine(s, (unsigned)(sh - s->sh));
	pthread_mutex_lock(&s->mu);
	s->opened++;
	pthread_cond_broadcast(&s->cv);
	while (!s->go && !sh->open_only)
		pthread_cond_wait(&s->cv, &s->mu);
	go = sh->open_only ? 0 : s->go;
	pthread_mutex_unlock(&s->mu);
	if (go > 0)
		shard_main(sh);
	atomic_store(&sh->exited, true);
	return NULL;
}

static int start_shard(struct bc_shards *s, unsigned i)
{
	struct shard *sh = &s->sh[i];
	int ret;

	unsigned k;

	sh->s = s;
	for (k = 0; k < BC_SHARDS_MAX; k++) {
		batch_init(&s->hosts[k].out[i], &s->hosts[k], sh, out_flush);
		batch_init(&sh->back[k], &s->hosts[k], sh, back_flush);
	}
	sh->host = i == 0 || s->cfg->one_thread ? 0 : i < s->nhosts && !s->cfg->shard_hosts ? (int)i : -1;
	if (sh->host == 0) {
		sh->loop = s->host;
		return 0;
	}
	if (sh->host > 0) {
		/* Its host's thread runs it; a thread of ours opens it. */
		sh->loop = s->hosts[i].loop;
		sh->open_only = true;
	} else {
		ret = bc_loop_new(&sh->loop, s->cfg->queue_depth);
		if (ret) {
			snprintf(sh->open_why, sizeof(sh->open_why), "shard %u: event loop: %s", i,
				 strerror(-ret));
			return ret;
		}
		if (s->cfg->shard_hosts)
			s->hosts[i].loop = sh->loop; /* its thread hosts too */
	}
	ret = -pthread_create(&sh->thread, NULL, shard_thread, sh);
	if (ret) {
		snprintf(sh->open_why, sizeof(sh->open_why), "shard %u: cannot start its thread: %s",
			 i, strerror(-ret));
		return ret;
	}
	sh->running = true;
	return 0;
}

/* Start the shards' threads (each opens its engine), open shard 0 here
 * meanwhile, wait for them all; the first failure is the result. */
static int open_all(struct bc_shards *s, char *why, size_t whylen)
{
	unsigned i, started = 0;
	int ret = 0;

	for (i = 0; i < s->cfg->n && !ret; i++) {
		s->n = i + 1; /* what bc_shards_close() must close */
		ret = start_shard(s, i);
		if (ret)
			s->sh[i].open_ret = ret;
		else if (s->sh[i].host != 0)
			started++;
	}
	for (i = 0; i < s->n && !ret; i++)
		if (s->sh[i].host == 0)
			ret = s->sh[i].open_ret = open_engine(s, i);
	pthread_mutex_lock(&s->mu);
	while (s->opened < started)
		pthread_cond_wait(&s->cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
	for (i = 0; i < s->n; i++) {
		if (s->sh[i].open_only && s->sh[i].running) {
			pthread_join(s->sh[i].thread, NULL);
			s->sh[i].running = false;
		}
	}
	for (i = 0; i < s->n; i++) {
		if (s->sh[i].open_ret) {
			snprintf(why, whylen, "%s", s->sh[i].open_why);
			return s->sh[i].open_ret;
		}
	}
	return build_target(s, why, whylen);
}

static void release(struct bc_shards *s, int go)
{
	pthread_mutex_lock(&s->mu);
	s->go = go;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

int bc_shards_open(struct bc_shards **out, struct bc_loop *host, const struct bc_shards_config *cfg,
		   char *why, size_t whylen)
{
	uint64_t stripe = cfg->stripe ? cfg->stripe : 1u << 20;
	struct bc_shards *s;
	int ret;

	unsigned k, nhosts = cfg->nhosts ? cfg->nhosts : 1;

	if (!cfg->n || cfg->n > BC_SHARDS_MAX || !cfg->engines || !host) {
		snprintf(why, whylen, "shards: want 1 to %d engine configurations and a host loop",
			 BC_SHARDS_MAX);
		return -EINVAL;
	}
	if (nhosts > cfg->n || (nhosts > 1 && (!cfg->hosts || cfg->one_thread)) ||
	    (cfg->shard_hosts && (nhosts > 1 || cfg->one_thread))) {
		snprintf(why, whylen, "shards: %u hosts for %u shards: at most one per shard, each "
			 "with its loop, not with one_thread or shard_hosts", nhosts, cfg->n);
		return -EINVAL;
	}
	if (cfg->shard_hosts)
		nhosts = cfg->n; /* host k's loop: shard k's, made in start_shard() */
	if (stripe < 4096 || (stripe & (stripe - 1))) {
		snprintf(why, whylen, "shards: stripe %llu is not a power of two of at least 4096 bytes",
			 (unsigned long long)stripe);
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->host = host;
	s->nhosts = nhosts;
	for (k = 0; k < nhosts; k++)
		s->hosts[k] = (struct host){ .s = s, .idx = k,
					     .loop = !k ? host : cfg->shard_hosts ? NULL : cfg->hosts[k - 1] };
	s->shift = (unsigned)__builtin_ctzll(stripe);
	s->cfg = cfg;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	ret = open_all(s, why, whylen);
	if (!ret)
		bc_shards_gate_start(s);
	release(s, ret ? -1 : 1);
	s->cfg = NULL;
	if (ret) {
		bc_shards_close(s);
		return ret;
	}
	*out = s;
	return 0;
}

const struct bc_target *bc_shards_target(struct bc_shards *s)
{
	return &s->hosts[0].target;
}

const struct bc_target *bc_shards_host_target(struct bc_shards *s, unsigned k)
{
	return k < s->nhosts ? &s->hosts[k].target : NULL;
}

unsigned bc_shards_host_count(const struct bc_shards *s)
{
	return s->nhosts;
}

struct bc_loop *bc_shards_host_loop(struct bc_shards *s, unsigned k)
{
	return k < s->nhosts ? s->hosts[k].loop : NULL;
}

unsigned bc_shards_count(const struct bc_shards *s)
{
	return s->n;
}

struct bc_loop *bc_shards_loop(struct bc_shards *s, unsigned i)
{
	return i < s->n ? s->sh[i].loop : NULL;
}

struct bc_engine *bc_shards_engine(struct bc_shards *s, unsigned i)
{
	return i < s->n ? s->sh[i].eng : NULL;
}
