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
struct host;
struct shard;

/* A list of parts on its way between a host and a shard (the first part's
 * message carries it). */
struct batch {
	struct part *head, **tail;
	struct bc_completion flush; /* sends it at the end of the loop round */
	bool scheduled;
	struct host *h;
	struct shard *sh;
};

/* A host: a loop, run by one of the caller's threads, on which requests
 * are submitted to the set (its own target) and completed.  Host 0 is the
 * set's control host; host k > 0 also runs shard k. */
struct host {
	struct bc_shards *s;
	unsigned idx;
	struct bc_loop *loop;
	struct part *free;          /* its thread only */
	struct batch out[BC_SHARDS_MAX]; /* parts for shard j */
	struct bc_target target;
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
	int host;                   /* runs on host @host's loop; -1: on its own thread */
	bool open_only;             /* its thread opens the engine, then leaves */
	atomic_bool stop;
	atomic_bool exited;         /* its thread is out of its loop for good */
	struct bc_msg wake;
	struct batch back[BC_SHARDS_MAX]; /* its thread: parts done, for host k */
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
	struct host *h;            /* where it was sent from, and returns to */
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
	struct bc_loop *host;      /* host 0's loop: control, stop, close */
	unsigned n, shift, nhosts;
	bool stopped;              /* bc_shards_stop() ran: engines are the caller's */
	struct shard sh[BC_SHARDS_MAX];
	struct host hosts[BC_SHARDS_MAX];
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

/* Is shard @sh's engine to be called directly from host 0's thread (it
 * runs there, or its thread is stopped)?  Else through its loop. */
static inline bool bc_shard_direct(const struct shard *sh)
{
	return sh->host == 0 || (sh->host < 0 && !sh->running) || (sh->host > 0 && sh->s->stopped);
}

#endif
