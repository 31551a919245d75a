/* SPDX-License-Identifier: BSD-3-Clause */
/* The write path (engine/write.c): WRITE, WRITE_ZEROES, DISCARD applied to
 * the log in arrival order, or sent to the origin in the other modes.  Its
 * state (struct bc_wpath) is touched only by engine/write.c. */
#ifndef BC_ENGINE_WRITE_H
#define BC_ENGINE_WRITE_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/request.h"

struct bc_wpath {
	struct bc_reqq waitq;       /* writes waiting for space or a merge read */
	struct bc_reqq fill_parked; /* origin writes overlapping a writeback gap fill */
	unsigned origin_writes_inflight; /* direct origin writes (non-writeback modes) */
	struct bc_timer write_timer; /* fails writes waiting longer than write_timeout_ms */
	bool merge_busy;
	bool resuming;              /* bc_write_resume() is running */
	void *merge_buf;            /* 4 KiB */
	struct bc_dev_io merge_io;
	struct bc_request *merge_req;
	uint32_t merge_slot;
};

int bc_write_init(struct bc_engine *e);
void bc_write_destroy(struct bc_engine *e);
void bc_write_submit(struct bc_engine *e, struct bc_request *r);
/* Retry waiting writes (space or a merge buffer became free). */
void bc_write_resume(struct bc_engine *e);
void bc_write_unpark(struct bc_engine *e); /* retry origin writes parked behind a fill */
/* Writes wait for log space: writeback must run whatever its policy says,
 * and promotion must not take the space. */
bool bc_write_waiting(const struct bc_engine *e);
/* Direct origin writes in flight (promotion must not race them). */
bool bc_write_origin_busy(const struct bc_engine *e);
/* Writes wait for log space (not for a merge read). */
bool bc_write_space_wait(const struct bc_engine *e);
bool bc_write_idle(const struct bc_engine *e);

#endif
