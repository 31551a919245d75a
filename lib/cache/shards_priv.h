/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A shard set's state (lib/cache/shards.c), shared with its writeback
 * epoch gate (lib/cache/shards_gate.c).
 */
#ifndef BC_CACHE_SHARDS_PRIV_H
#define BC_CACHE_SHARDS_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "blkcache/shards.h"
#include "writeback/gate.h"

struct part;

/* A list of parts on its way (the first part's message carries it). */
struct batch {
	struct part *head, **tail;
	struct bc_completion flush; /* sends it at the end of the loop round */
	bool scheduled;
};

struct shard {
	struct bc_shards *s;
	struct bc_loop *loop;
	struct bc_engine *eng;
	const struct bc_target *t;
	pthread_t thread;
	bool running;               /* its thread exists (to be joined) */
	int open_ret;               /* its engine's open (on its own thread) */
	char open_why[512];
	bool inline_host;           /* shard 0: on the host loop, no thread */
	atomic_bool stop;
	atomic_bool exited;         /* its thread is out of its loop for good */
	struct bc_msg wake;
	struct batch out;           /* host thread: parts for this shard */
	struct batch back;          /* shard thread: parts done, for the host */
	/* The writeback epoch gate (writeback/gate.h) */
	struct bc_wb_gate gate;
	struct bc_msg gate_wake;    /* kicks this shard's writeback */
	atomic_bool gate_wake_busy; /* gate_wake is on its way */
	atomic_bool waiting;        /* its writeback waits at the gate */
};

struct part {
	struct bc_request req;     /* to the shard's engine */
	struct bc_msg msg;         /* the batch's carrier, if first */
	struct bc_request *parent;
	struct shard *sh;
	struct part *next;         /* in its batch, or the free list */
	int res;                   /* the engine's result, on its way back */
};

/* In the parent's target_private while it is in flight. */
struct parent_state {
	unsigned left;             /* parts in flight */
	int err;                   /* the first error */
	struct bc_request *r;
	struct bc_completion c;    /* completes a request that sent no part */
};
_Static_assert(sizeof(struct parent_state) <= sizeof(((struct bc_request *)0)->target_private),
	       "parent state fits target_private");

struct bc_shards {
	struct bc_loop *host;
	unsigned n, shift;
	struct shard sh[BC_SHARDS_MAX];
	struct bc_target target;
	struct part *free;
	/* Opening: the shards open (recover) their engines in parallel, each
	 * on its own thread, then wait for the verdict. */
	const struct bc_shards_config *cfg;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned opened;
	int go;                    /* 1: serve, -1: the open failed, return */
	/* The gate: each shard's oldest epoch not written back (one writer
	 * each), and the epoch below which a waiting shard wants everything
	 * on the origin (only grows). */
	_Atomic uint64_t pending[BC_SHARDS_MAX];
	_Atomic uint64_t want;
};

/* shards_gate.c: align the shards' epochs and attach the gate (after they
 * opened, before they serve); detach it (after their threads stopped). */
void bc_shards_gate_start(struct bc_shards *s);
void bc_shards_gate_stop(struct bc_shards *s);

#endif
