/* SPDX-License-Identifier: BSD-3-Clause */
/* Signatures a device already holds (libblkid): see probe.c. */
#ifndef BC_PROBE_H
#define BC_PROBE_H

#include <stddef.h>

#include "blkcache/device.h"

/* 1 if @dev, a file or block device, holds a filesystem, partition
 * table or other signature (described in @buf, e.g. "ext4 filesystem
 * (label data)"), 0 if none (or it cannot be probed), -errno. */
int bc_probe_signature(const struct bc_dev *dev, char *buf, size_t len);

#endif
