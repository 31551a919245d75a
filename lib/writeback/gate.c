/* SPDX-License-Identifier: BSD-3-Clause */
/* The engine's side of the cross-shard writeback epoch gate (gate.h). */
#include "engine/engine.h"
#include "writeback/gate.h"

void bc_wb_gate_set(struct bc_engine *e, const struct bc_wb_gate *gate)
{
	e->gate = gate;
	bc_wb_gate_progress(e);
}

bool bc_wb_gate_may(struct bc_engine *e, uint64_t epoch)
{
	if (!e->gate || e->gate->ops->may(e->gate->ctx, epoch))
		return true;
	e->st.writeback_gate_waits++;
	e->gate->ops->blocked(e->gate->ctx, epoch);
	return false;
}

bool bc_wb_gate_wanted(const struct bc_engine *e)
{
	return e->gate && e->gate->ops->wanted(e->gate->ctx) > bc_seglog_pending_epoch(e);
}

void bc_wb_gate_progress(struct bc_engine *e)
{
	if (e->gate)
		e->gate->ops->progress(e->gate->ctx, bc_seglog_pending_epoch(e));
}
