/* SPDX-License-Identifier: BSD-3-Clause */
#include "blkcache/version.h"

const char *bc_version(void)
{
	return BLKCACHE_VERSION_STRING;
}
