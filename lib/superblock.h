/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef BC_SUPERBLOCK_H
#define BC_SUPERBLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "device.h"
#include "format.h"

void bc_why(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
uint64_t bc_label_offset(uint64_t origin_size);
int bc_sb_read(struct bc_dev *dev, struct bc_sb_disk *two);
int bc_label_read(struct bc_dev *origin, struct bc_origin_label *l);

#endif
