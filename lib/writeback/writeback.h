/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Writeback (writeback/writeback.c): the mechanism that reads the oldest
 * dirty segments, sorts and merges their blocks, writes them to the origin,
 * flushes it and persists the new written-back position.  When, how much
 * and how fast is the writeback policy's call (writeback/policy.h).  Its
 * state (struct bc_wb) is private to writeback/.
 */
#ifndef BC_WRITEBACK_H
#define BC_WRITEBACK_H

#include <stdbool.h>
#include <stdint.h>

struct bc_engine;

#define BC_WB_MAX_BATCH 16

int bc_wb_init(struct bc_engine *e);
void bc_wb_destroy(struct bc_engine *e);
void bc_wb_kick(struct bc_engine *e);
void bc_wb_retry_now(struct bc_engine *e); /* skip a failure backoff (drain asked) */
void bc_wb_note_request(struct bc_engine *e); /* foreground activity: idle detector */
bool bc_wb_idle(const struct bc_engine *e);
/* Is a writeback gap fill in flight over any of [off, off+len)?  Direct
 * origin writes that overlap one wait for it (write.c). */
bool bc_wb_fill_overlaps(const struct bc_engine *e, uint64_t off, uint64_t len);
/* The policy allows more origin writes now (rate limit). */
void bc_wb_resume(struct bc_engine *e);
/* Tunables changed: re-evaluate now. */
void bc_wb_tunables_changed(struct bc_engine *e);

#endif
