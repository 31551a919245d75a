/* SPDX-License-Identifier: BSD-3-Clause */
/* Sizes as text, shared by the CLI and the daemon's frontends. */
#ifndef BC_UTIL_UNITS_H
#define BC_UTIL_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* Cache block size: the unit of the dirty/cached block counters. */
#define BC_UNIT_BLOCK 4096u

/* "4096", "4K", "1MiB", "2G": 0, -EINVAL, -ERANGE */
int bc_parse_size(const char *s, uint64_t *out);
/* "1.5 MiB" style rendering of a byte count into @buf. */
const char *bc_human_bytes(uint64_t v, char *buf, size_t len);

#endif
