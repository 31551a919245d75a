/* SPDX-License-Identifier: BSD-3-Clause */
/* CRC32C (Castagnoli) through ISA-L's crc32_iscsi (SSE4.2 / PCLMUL). */
#include <isa-l/crc.h>

#include "format/format.h"

uint32_t bc_crc32c(uint32_t crc, const void *buf, size_t len)
{
	/* crc32_iscsi works on the non-inverted register value. */
	return ~crc32_iscsi((unsigned char *)buf, (int)len, ~crc);
}

uint32_t bc_crc32c_block(const void *buf, size_t len, size_t crc_off)
{
	static const uint32_t zero;
	const unsigned char *p = buf;
	uint32_t crc;

	crc = bc_crc32c(0, p, crc_off);
	crc = bc_crc32c(crc, &zero, sizeof(zero));
	return bc_crc32c(crc, p + crc_off + 4, len - crc_off - 4);
}
