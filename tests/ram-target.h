/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A bc_target over a RAM buffer, for frontend tests.  Completions are
 * always delivered from the loop (deferred, or after a random delay to
 * reorder them), never from inside submit.  It also checks the target
 * contract (alignment, bounds, buffers) and counts what it saw.
 */
#ifndef BC_TEST_RAM_TARGET_H
#define BC_TEST_RAM_TARGET_H

#include <stdint.h>

#include "blkcache/loop.h"
#include "blkcache/target.h"

struct ram_target {
	struct bc_target target;   /* hand &target to the frontend */
	struct bc_loop *loop;
	uint8_t *data;

	/* knobs (set before or between uses, from the loop thread) */
	uint32_t delay_max_us;     /* 0: complete on the next loop round */
	uint64_t fail_offset;      /* requests touching [fail_offset, +fail_length) */
	uint64_t fail_length;      /*   complete with fail_result */
	int fail_result;

	/* what was seen */
	uint64_t ops[5];           /* per enum bc_op */
	uint64_t fua;              /* requests carrying BC_REQ_FUA */
	uint64_t bad;              /* requests violating the target contract */
	uint64_t max_length;       /* largest request length */
	unsigned inflight;
	unsigned max_inflight;     /* high-water mark of inflight */
	uint32_t rng;
};

int ram_target_new(struct ram_target **out, struct bc_loop *loop, uint64_t size,
		   uint32_t max_block, uint32_t flags);
void ram_target_free(struct ram_target *rt);

#endif
