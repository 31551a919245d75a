/* SPDX-License-Identifier: BSD-3-Clause */
/* Request queues and deferred completion. */
#include "blkcache/loop.h"
#include "engine/engine.h"

static void complete_cb(struct bc_completion *c, int res)
{
	struct bc_rq *rq = (struct bc_rq *)c;
	struct bc_request *r = BC_CONTAINER_OF(rq, struct bc_request, target_private);

	r->done(r, res);
}

void bc_req_complete(struct bc_engine *e, struct bc_request *r, int res)
{
	rq_of(r)->comp.fn = complete_cb;
	bc_loop_defer(e->loop, &rq_of(r)->comp, res);
}

void bc_reqq_push(struct bc_reqq *q, struct bc_request *r)
{
	rq_of(r)->next = NULL;
	if (q->tail)
		rq_of(q->tail)->next = r;
	else
		q->head = r;
	q->tail = r;
}

struct bc_request *bc_reqq_pop(struct bc_reqq *q)
{
	struct bc_request *r = q->head;

	if (r) {
		q->head = rq_of(r)->next;
		if (!q->head)
			q->tail = NULL;
		rq_of(r)->next = NULL;
	}
	return r;
}

struct bc_reqq bc_reqq_take(struct bc_reqq *q)
{
	struct bc_reqq all = *q;

	q->head = q->tail = NULL;
	return all;
}
