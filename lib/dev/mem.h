/* SPDX-License-Identifier: BSD-3-Clause */
/* The RAM driver, "mem:PATH" (lib/dev/dev_mem.c): a mapped file, IO by
 * memory copy, for benchmarks and tests. */
#ifndef BC_DEV_MEM_H
#define BC_DEV_MEM_H

#include "blkcache/device.h"

extern const struct bc_dev_ops bc_dev_mem_ops; /* "mem:PATH" */

#endif
