/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef BC_SUPERBLOCK_H
#define BC_SUPERBLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "core/why.h"
#include "dev/device.h"
#include "format/format.h"

uint64_t bc_label_offset(uint64_t origin_size);
int bc_sb_read(struct bc_dev *dev, struct bc_sb_disk *two);
int bc_label_read(struct bc_dev *origin, struct bc_origin_label *l);

#endif
