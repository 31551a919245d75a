/* SPDX-License-Identifier: BSD-3-Clause */
/* The engine's per-request state and request queues. */
#ifndef BC_ENGINE_REQUEST_H
#define BC_ENGINE_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "blkcache/device.h"
#include "blkcache/target.h"

struct bc_engine;

enum bc_write_path {
	BC_PATH_LOG = 0,     /* writeback: the log only */
	BC_PATH_THROUGH,     /* log (clean unless dirty) + origin */
	BC_PATH_AROUND,      /* invalidate cached copies + origin */
};

/* Per-request engine state, kept in bc_request.target_private. */
struct bc_rq {
	struct bc_completion comp; /* deferred completion */
	struct bc_request *next;   /* wait/flush queues */
	uint64_t pos;              /* next byte to apply (writes) */
	uint64_t flush_seq;        /* must be durable before completion */
	int pending;               /* outstanding sub-IOs (reads) */
	int error;
	uint8_t stage;
	bool merged;               /* merge buffer holds the old block for merge_block */
	uint8_t path;              /* enum bc_write_path */
	uint32_t flush_ent;        /* written acks: entries of segment flush_seq needed */
	struct bc_engine *engine;
	uint64_t merge_block;
	uint64_t wait_since;       /* when it joined the wait queue (write timeout) */
	struct bc_dev_io oio;      /* origin write / flush of non-writeback modes */
};
_Static_assert(sizeof(struct bc_rq) <= sizeof(((struct bc_request *)0)->target_private),
	       "engine request state fits the target-private area");

static inline struct bc_rq *rq_of(struct bc_request *r)
{
	return (struct bc_rq *)(void *)&r->target_private;
}

/* A FIFO of requests linked through bc_rq.next. */
struct bc_reqq {
	struct bc_request *head, *tail;
};
void bc_reqq_push(struct bc_reqq *q, struct bc_request *r);
struct bc_request *bc_reqq_pop(struct bc_reqq *q);
/* Take every request off @q, leaving it empty; returns the old queue. */
struct bc_reqq bc_reqq_take(struct bc_reqq *q);

/* Complete @r with @res from the loop (deferred). */
void bc_req_complete(struct bc_engine *e, struct bc_request *r, int res);

#endif
