/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What a frontend (NBD server, later ublk) sees: a target that accepts
 * block requests asynchronously and completes them through a callback on
 * the same event loop.  The blkcache engine is one implementation; tests
 * may provide others (a RAM target, for instance).
 */
#ifndef BLKCACHE_TARGET_H
#define BLKCACHE_TARGET_H

#include <stddef.h>
#include <stdint.h>

enum bc_op {
	BC_OP_READ = 0,
	BC_OP_WRITE = 1,
	BC_OP_FLUSH = 2,
	BC_OP_DISCARD = 3,      /* advisory: contents afterwards read as zeroes */
	BC_OP_WRITE_ZEROES = 4,
};

#define BC_REQ_FUA (1u << 0) /* WRITE / WRITE_ZEROES: durable before completion */

struct bc_request;
typedef void (*bc_request_done_fn)(struct bc_request *req, int result);

/*
 * One request.  The submitter fills the public fields and keeps the request
 * (and @buf) alive until @done runs.  @offset and @length are in bytes and
 * must be multiples of 512; @buf must be 512-byte aligned (4096 preferred).
 * @done gets 0 or -errno (-EIO, -EINVAL, -ENOSPC, ...).
 */
struct bc_request {
	uint8_t op;          /* enum bc_op */
	uint32_t flags;      /* BC_REQ_* */
	uint64_t offset;
	uint64_t length;
	void *buf;           /* READ: filled; WRITE: source; others: unused */
	bc_request_done_fn done;
	void *priv;          /* submitter's */
	/* Owned by the target while the request is in flight. */
	union {
		uint64_t u64[40];
		void *ptr[40];
	} target_private;
};

#define BC_TARGET_CAN_FLUSH      (1u << 0)
#define BC_TARGET_CAN_FUA        (1u << 1)
#define BC_TARGET_CAN_DISCARD    (1u << 2)
#define BC_TARGET_CAN_ZEROES     (1u << 3)
#define BC_TARGET_MULTI_CONN     (1u << 4) /* FLUSH covers writes of every connection */

struct bc_target_ops {
	const char *name;
	/* Start @req; completion is always reported through req->done, never
	 * from inside submit (so callers may hold state across the call). */
	void (*submit)(void *ctx, struct bc_request *req);
};

struct bc_target {
	const struct bc_target_ops *ops;
	void *ctx;
	uint64_t size;          /* bytes, multiple of 512 */
	uint32_t min_block;     /* 512 */
	uint32_t pref_block;    /* 4096 */
	uint32_t max_block;     /* largest request accepted, e.g. 32 MiB */
	uint32_t flags;         /* BC_TARGET_* */
};

static inline void bc_target_submit(const struct bc_target *t, struct bc_request *req)
{
	t->ops->submit(t->ctx, req);
}

struct bc_loop;
/*
 * A target as one loop's thread sees it: a frontend that spreads its work
 * over threads (NBD connections, ublk queues) submits to @target only on
 * @loop's thread, where its requests complete.  A shard set's hosts are
 * such places (bc_shards_host_loop, bc_shards_host_target); every place of
 * one device has the same size and abilities.
 */
struct bc_target_place {
	struct bc_loop *loop;
	const struct bc_target *target;
};
#define BC_TARGET_MAX_PLACES 16

#endif
