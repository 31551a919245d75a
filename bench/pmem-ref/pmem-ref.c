/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The reference for the persistent-memory benchmark (bench/run P9): what a
 * durable 4 KiB write costs on a mapping of FILE with nothing else -- a
 * non-temporal copy to a random 4 KiB-aligned offset and a fence (drain),
 * libpmem2's functions for the mapping, as the blkcache pmem driver uses
 * them.  Prints "ops N iops X p50_ns Y p99_ns Z".
 *
 *   pmem-ref FILE [OPS]      (PMEM2_FORCE_GRANULARITY applies as for blkcache)
 */
#include <fcntl.h>
#include <libpmem2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	struct pmem2_config *cfg = NULL;
	struct pmem2_source *src = NULL;
	struct pmem2_map *map = NULL;
	unsigned long ops = argc > 2 ? strtoul(argv[2], NULL, 10) : 200000, i;
	uint64_t *lat, t0, t_all, seed = 88172645463325252ull, nblk;
	pmem2_memcpy_fn cp;
	pmem2_drain_fn drain;
	char *base, buf[4096];
	int fd;

	if (argc < 2 || !ops) {
		fprintf(stderr, "usage: pmem-ref FILE [OPS]\n");
		return 2;
	}
	fd = open(argv[1], O_RDWR);
	if (fd < 0 || pmem2_source_from_fd(&src, fd) || pmem2_config_new(&cfg) ||
	    pmem2_config_set_required_store_granularity(cfg, PMEM2_GRANULARITY_PAGE) ||
	    pmem2_map_new(&map, cfg, src)) {
		fprintf(stderr, "pmem-ref: cannot map %s: %s\n", argv[1],
			fd < 0 ? "cannot open" : pmem2_errormsg());
		return 1;
	}
	base = pmem2_map_get_address(map);
	nblk = pmem2_map_get_size(map) / 4096;
	cp = pmem2_get_memcpy_fn(map);
	drain = pmem2_get_drain_fn(map);
	lat = malloc(ops * sizeof(*lat));
	if (!lat || !nblk)
		return 1;
	memset(buf, 0x5a, sizeof(buf));
	t_all = now_ns();
	for (i = 0; i < ops; i++) {
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		t0 = now_ns();
		cp(base + (seed % nblk) * 4096, buf, sizeof(buf),
		   PMEM2_F_MEM_NONTEMPORAL | PMEM2_F_MEM_NODRAIN);
		drain();
		lat[i] = now_ns() - t0;
	}
	t_all = now_ns() - t_all;
	qsort(lat, ops, sizeof(*lat), cmp_u64);
	printf("ops %lu iops %.0f p50_ns %llu p99_ns %llu granularity %s\n", ops,
	       (double)ops * 1e9 / (double)t_all, (unsigned long long)lat[ops / 2],
	       (unsigned long long)lat[ops * 99 / 100],
	       pmem2_map_get_store_granularity(map) == PMEM2_GRANULARITY_PAGE ? "page" : "cache-line/byte");
	pmem2_map_delete(&map);
	pmem2_config_delete(&cfg);
	pmem2_source_delete(&src);
	close(fd);
	free(lat);
	return 0;
}
