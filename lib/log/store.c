/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Stores into segment buffers.  On persistent memory (log.direct) a buffer
 * is the mapping itself: data goes in with the mapping's copy function --
 * non-temporal stores that bypass the CPU caches, no fence (a round's flush
 * fences them) -- and every store into the mapping passes here, so that a
 * recording device (the power-cut checker's) sees each one.  Elsewhere a
 * buffer is RAM and these are memcpy/memset.
 */
#include <libpmem2.h>
#include <string.h>

#include "dev/pmem.h"
#include "engine/engine.h"

static unsigned store_flags(const struct bc_pmem_map *pm)
{
	return pm->page ? PMEM2_F_MEM_NOFLUSH : PMEM2_F_MEM_NONTEMPORAL | PMEM2_F_MEM_NODRAIN;
}

void bc_seglog_store(const struct bc_engine *e, void *dst, const void *src, size_t len)
{
	const struct bc_pmem_map *pm = e->log.pm;

	if (pm)
		pm->memcpy_fn(dst, src, len, store_flags(pm));
	else
		memcpy(dst, src, len);
}

void bc_seglog_zero(const struct bc_engine *e, void *dst, size_t len)
{
	const struct bc_pmem_map *pm = e->log.pm;

	if (pm)
		pm->memset_fn(dst, 0, len, store_flags(pm));
	else
		memset(dst, 0, len);
}

void bc_seglog_store_sectors(const struct bc_engine *e, void *dst, const void *src, uint8_t mask)
{
	unsigned s = 0, n;

	/* One store per run of sectors. */
	while (s < BC_SECTORS_PER_BLOCK) {
		if (!(mask & (1u << s))) {
			s++;
			continue;
		}
		for (n = 1; s + n < BC_SECTORS_PER_BLOCK && (mask & (1u << (s + n))); n++)
			;
		bc_seglog_store(e, (char *)dst + s * BC_SECTOR_SIZE,
				(const char *)src + s * BC_SECTOR_SIZE, (size_t)n * BC_SECTOR_SIZE);
		s += n;
	}
}
