/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A recording persistent-memory device for tests ("tpm:NAME"): a RAM
 * mapping whose store, flush and fence functions (struct bc_pmem_map) log
 * every call, in order, with the data stored.  Device IO on it behaves as
 * the libpmem2 driver's: an in-place write is a flush of its range, any
 * other write or zeroing is stores plus a flush, FLUSH is the fence.
 * One device at a time.
 */
#ifndef BC_TEST_PMEMREC_H
#define BC_TEST_PMEMREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blkcache/device.h"

enum pr_kind { PR_STORE, PR_FLUSH, PR_DRAIN, PR_MARK };
struct pr_ev {
	uint8_t kind;
	uint64_t off, len;  /* PR_MARK: off is the caller's tag */
	uint8_t *data;      /* PR_STORE */
};

struct pr_log {
	uint8_t *base;      /* the mapping (size bytes, zeroes at first) */
	uint64_t size;
	struct pr_ev *ev;
	size_t n, cap;
	/* Self-tests of checkers: 1 = an in-place write flushes only the first
	 * half of its range; 2 = FLUSH completes without a fence. */
	int broken;
	bool off;           /* not recording (the stores still happen) */
};
extern struct pr_log pr;

/* A mapping of @size bytes (zeroes), a fresh log, and the driver's
 * registry ("tpm:..." paths). */
const struct bc_dev_registry *pr_init(uint64_t size);
void pr_free(void);
void pr_mark(uint64_t tag);
/* Replay the stores of events [0, @n) on zeroes into @img (size bytes). */
void pr_replay(uint8_t *img, size_t n);
/* For every event recorded so far: a store is on the media for sure from
 * the event index of the first fence after a flush covering it, which is
 * what the array says (SIZE_MAX: never; other events: SIZE_MAX).  Freed by
 * the caller. */
size_t *pr_durable_at(void);

#endif
