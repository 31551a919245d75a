/* SPDX-License-Identifier: BSD-3-Clause */
/* The persistent-memory driver, "pmem:PATH" (lib/dev/dev_pmem.c); its
 * mapping (struct bc_pmem_map, blkcache/device.h) is what bc_dev_pmem_map
 * returns for its devices. */
#ifndef BC_DEV_PMEM_H
#define BC_DEV_PMEM_H

#include "blkcache/device.h"

extern const struct bc_dev_ops bc_dev_pmem_ops; /* "pmem:PATH" */

#endif
