/* SPDX-License-Identifier: BSD-3-Clause */
/* FLUSH (engine/flush.c): the log durable, and the origin flushed if writes
 * reached it.  Its state (struct bc_oflush) is touched only by flush.c. */
#ifndef BC_ENGINE_FLUSH_H
#define BC_ENGINE_FLUSH_H

#include <stdbool.h>

#include "engine/request.h"

struct bc_oflush {
	bool unflushed;             /* writes reached the origin since its last flush */
	bool busy;
	struct bc_dev_io io;
	struct bc_reqq waitq;       /* FLUSH/FUA waiting for an origin flush */
	unsigned covered;           /* waiters the flush in flight covers */
};

/* FLUSH semantics for @r: origin flushed if writes went to it, log durable. */
void bc_flush_submit(struct bc_engine *e, struct bc_request *r);
/* A write reached the origin directly: the next FLUSH must flush it. */
void bc_flush_note_origin_write(struct bc_engine *e);
/* Flush the origin if writes reached it since its last flush. */
void bc_origin_flush_kick(struct bc_engine *e);
bool bc_flush_idle(const struct bc_engine *e);

#endif
