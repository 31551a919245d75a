/* SPDX-License-Identifier: BSD-3-Clause */
/* The persistent-memory driver's mapping, for code that stores into it
 * directly instead of submitting IO (lib/dev/dev_pmem.c). */
#ifndef BC_DEV_PMEM_H
#define BC_DEV_PMEM_H

#include <stdbool.h>
#include <stddef.h>

#include "blkcache/device.h"

struct bc_pmem_map {
	void *base;    /* the device's byte 0 */
	size_t size;
	bool page;     /* page granularity (not DAX): persisting means writing pages back */
	/* libpmem2's functions for this mapping (flags: PMEM2_F_MEM_*) */
	void *(*memcpy_fn)(void *dst, const void *src, size_t len, unsigned flags);
	void *(*memset_fn)(void *dst, int c, size_t len, unsigned flags);
	void (*persist_fn)(const void *p, size_t len);
	void (*flush_fn)(const void *p, size_t len);
	void (*drain_fn)(void);
};

extern const struct bc_dev_ops bc_dev_pmem_ops; /* "pmem:PATH" */

/* The mapping of a device the pmem driver opened, or NULL. */
const struct bc_pmem_map *bc_dev_pmem_map(const struct bc_dev *dev);

#endif
