/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Writeback policies: when writeback runs, how much per batch, how many
 * origin writes in flight, how fast.  A policy is a const ops table with its
 * state behind a context pointer; the mechanism (writeback.c) asks it.  The
 * mechanism itself forces writeback, whatever the policy, when a drain asks
 * for it, when writes wait for log space, or when the mode is urgent
 * (degraded).
 */
#ifndef BC_WRITEBACK_POLICY_H
#define BC_WRITEBACK_POLICY_H

#include <stdbool.h>
#include <stdint.h>

struct bc_engine;

/* What the policy is told when asked whether to run. */
struct bc_wb_view {
	uint64_t pending;      /* segments written to the cache device, not written back */
	uint32_t nseg;         /* ring size */
	bool closing;
};

struct bc_wb_policy_ops {
	const char *name;
	/* @e: the policy reads the engine's tunables and arms timers on its loop;
	 * it kicks writeback (bc_wb_kick) or resumes it (bc_wb_resume). */
	int (*init)(void **ctx, struct bc_engine *e);
	void (*destroy)(void *ctx);
	/* Foreground activity (every request). */
	void (*note_request)(void *ctx);
	/* Run a batch now?  *full_speed: flat out (no yielding, no rate limit). */
	bool (*needed)(void *ctx, const struct bc_wb_view *v, bool *full_speed);
	/* Segments per batch; @drain: a drain is running. */
	unsigned (*batch_limit)(void *ctx, bool drain);
	unsigned (*inflight_limit)(void *ctx, bool full_speed);
	/* May the next origin write go now?  If not, the policy resumes
	 * writeback (bc_wb_resume) once it may. */
	bool (*rate_ok)(void *ctx, bool full_speed);
	void (*charge)(void *ctx, uint64_t len, bool full_speed);
};

/* Watermarks (dirty_high/dirty_low), an idle detector (writeback_idle_ms),
 * a rate limit (writeback_rate) and pause (writeback_paused). */
extern const struct bc_wb_policy_ops bc_wb_policy_watermark;

#endif
