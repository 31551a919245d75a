/* SPDX-License-Identifier: BSD-3-Clause */
/* A bc_target over a calloc'd RAM buffer (see ram-target.h). */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ram-target.h"

/* Per-request state, kept in the request's target_private area. */
struct ram_op {
	struct bc_completion comp;
	struct bc_timer timer;
	struct bc_request *req;
	struct ram_target *rt;
};

_Static_assert(sizeof(struct ram_op) <= sizeof(((struct bc_request *)0)->target_private),
	       "ram_op must fit in target_private");

static struct ram_op *op_of(struct bc_request *req)
{
	return (struct ram_op *)(void *)&req->target_private;
}

static uint32_t next_rand(struct ram_target *rt)
{
	/* xorshift32 */
	uint32_t x = rt->rng;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	rt->rng = x;
	return x;
}

static int validate(const struct ram_target *rt, const struct bc_request *req)
{
	const struct bc_target *t = &rt->target;

	if (req->op > BC_OP_WRITE_ZEROES)
		return -EINVAL;
	if (req->op == BC_OP_FLUSH)
		return 0;
	if (req->length == 0 || req->offset % t->min_block || req->length % t->min_block)
		return -EINVAL;
	if (req->offset > t->size || req->length > t->size - req->offset)
		return -EINVAL;
	if (req->length > t->max_block)
		return -EINVAL;
	if ((req->op == BC_OP_READ || req->op == BC_OP_WRITE) &&
	    (!req->buf || ((uintptr_t)req->buf % 512) != 0))
		return -EINVAL;
	if ((req->flags & BC_REQ_FUA) && req->op != BC_OP_WRITE && req->op != BC_OP_WRITE_ZEROES)
		return -EINVAL;
	return 0;
}

static int execute(struct ram_target *rt, struct bc_request *req)
{
	int r = validate(rt, req);

	if (r < 0) {
		rt->bad++;
		return r;
	}
	if (rt->fail_length && req->op != BC_OP_FLUSH &&
	    req->offset < rt->fail_offset + rt->fail_length &&
	    rt->fail_offset < req->offset + req->length)
		return rt->fail_result;
	switch (req->op) {
	case BC_OP_READ:
		memcpy(req->buf, rt->data + req->offset, req->length);
		break;
	case BC_OP_WRITE:
		memcpy(rt->data + req->offset, req->buf, req->length);
		break;
	case BC_OP_DISCARD:
	case BC_OP_WRITE_ZEROES:
		memset(rt->data + req->offset, 0, req->length);
		break;
	default:
		break;
	}
	return 0;
}

static void complete(struct ram_op *op)
{
	struct ram_target *rt = op->rt;
	struct bc_request *req = op->req;
	int r = execute(rt, req);

	rt->inflight--;
	req->done(req, r);
}

static void comp_cb(struct bc_completion *c, int res)
{
	(void)res;
	complete(BC_CONTAINER_OF(c, struct ram_op, comp));
}

static void timer_cb(struct bc_timer *t)
{
	complete(BC_CONTAINER_OF(t, struct ram_op, timer));
}

static void ram_submit(void *ctx, struct bc_request *req)
{
	struct ram_target *rt = ctx;
	struct ram_op *op = op_of(req);

	memset(op, 0, sizeof(*op));
	op->req = req;
	op->rt = rt;
	if (req->op <= BC_OP_WRITE_ZEROES)
		rt->ops[req->op]++;
	if (req->flags & BC_REQ_FUA)
		rt->fua++;
	if (req->length > rt->max_length)
		rt->max_length = req->length;
	if (++rt->inflight > rt->max_inflight)
		rt->max_inflight = rt->inflight;

	if (rt->delay_max_us) {
		op->timer.fn = timer_cb;
		bc_loop_timer_arm(rt->loop, &op->timer,
				  (uint64_t)(next_rand(rt) % rt->delay_max_us) * 1000u);
	} else {
		op->comp.fn = comp_cb;
		bc_loop_defer(rt->loop, &op->comp, 0);
	}
}

static const struct bc_target_ops ram_ops = {
	.name = "ram",
	.submit = ram_submit,
};

int ram_target_new(struct ram_target **out, struct bc_loop *loop, uint64_t size,
		   uint32_t max_block, uint32_t flags)
{
	struct ram_target *rt = calloc(1, sizeof(*rt));

	if (!rt)
		return -ENOMEM;
	rt->data = calloc(1, size ? size : 1);
	if (!rt->data) {
		free(rt);
		return -ENOMEM;
	}
	rt->loop = loop;
	rt->rng = 0x12345678u;
	rt->target.ops = &ram_ops;
	rt->target.ctx = rt;
	rt->target.size = size;
	rt->target.min_block = 512;
	rt->target.pref_block = 4096;
	rt->target.max_block = max_block;
	rt->target.flags = flags;
	*out = rt;
	return 0;
}

void ram_target_free(struct ram_target *rt)
{
	if (!rt)
		return;
	free(rt->data);
	free(rt);
}
