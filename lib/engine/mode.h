/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Cache modes (engine/mode.c): one descriptor per mode, and one resolve
 * step that folds every override into the behaviour in force -- degraded
 * mode (the cache device keeps failing), and writes over dirty blocks
 * (always writethrough, so dirty data stays safe).  The mode is written
 * only by mode.c.
 */
#ifndef BC_ENGINE_MODE_H
#define BC_ENGINE_MODE_H

#include <stdbool.h>
#include <stdint.h>

#include "blkcache/engine.h"
#include "blkcache/target.h"

struct bc_engine;

struct bc_mode_desc {
	const char *name;
	uint8_t write_path;     /* enum bc_write_path of a WRITE not over dirty blocks */
	bool promote;           /* read misses may be inserted as clean blocks */
	bool reappend;          /* reclaim gives hot clean blocks a second chance */
	bool writeback_urgent;  /* write back everything now, whatever the policy */
};

/* At open: the mode persisted in the superblock. */
void bc_mode_load(struct bc_engine *e);
/* The behaviour in force: the configured mode, or degraded. */
const struct bc_mode_desc *bc_mode_current(const struct bc_engine *e);
/* The path of request @r (enum bc_write_path): discard and write-zeroes are
 * always logged; a WRITE takes its mode's path, writethrough over dirty. */
uint8_t bc_mode_write_path(struct bc_engine *e, const struct bc_request *r);
/* Detach: from now on writes reach the origin before they are acknowledged. */
void bc_mode_force(struct bc_engine *e, enum bc_mode m);

#endif
