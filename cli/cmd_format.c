/* SPDX-License-Identifier: BSD-3-Clause */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void format_usage(FILE *f)
{
	fprintf(f,
		"usage: blkcache format --cache DEV --origin DEV [--segment-size SIZE] [--data-crc]\n"
		"                       [--origin-label] [--force]\n"
		"\n"
		"Write an empty cache format on DEV (--cache) for the origin device.  Nothing is\n"
		"written to the origin: the cache device records its identity (size, path, serial)\n"
		"and the exported device is the whole origin, so a volume that already holds a\n"
		"filesystem is cached in place, unchanged.\n"
		"\n"
		"  --cache DEV          fast cache device (file or block device)\n"
		"  --origin DEV         slow origin device (file or block device)\n"
		"  --segment-size SIZE  log segment size, power of two from 256K to 16M (default 1M)\n"
		"  --data-crc           check every cached block's CRC32C when it is read from the\n"
		"                       cache device: a corrupted block is never returned (clean:\n"
		"                       read from the origin instead; dirty: EIO)\n"
		"  --origin-label       also label the origin's last 4 KiB block with the pair's\n"
		"                       identity (the origin then carries the pairing; the exported\n"
		"                       device is 4 KiB smaller); refused if that block is not all\n"
		"                       zeroes or the origin holds a filesystem\n"
		"  --force              overwrite an existing blkcache format or origin label, format\n"
		"                       a cache device that holds a filesystem or partition table,\n"
		"                       label an origin whose last 4 KiB are in use\n");
}

int cmd_format(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cache", required_argument, NULL, 'c' },
		{ "origin", required_argument, NULL, 'o' },
		{ "segment-size", required_argument, NULL, 's' },
		{ "force", no_argument, NULL, 'f' },
		{ "data-crc", no_argument, NULL, 'D' },
		{ "origin-label", no_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct bc_format_config cfg = { 0 };
	char why[512];
	uint64_t v;
	int c, ret;

	while ((c = getopt_long(argc, argv, "c:o:s:fDLh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': cfg.cache_path = optarg; break;
		case 'o': cfg.origin_path = optarg; break;
		case 's':
			if (bc_parse_size(optarg, &v) || v > UINT32_MAX) {
				cli_err("format: --segment-size '%s' is not a size (e.g. 1M, 256K)", optarg);
				return 2;
			}
			cfg.segment_size = (uint32_t)v;
			break;
		case 'f': cfg.force = true; break;
		case 'D': cfg.data_crc = true; break;
		case 'L': cfg.origin_label = true; break;
		case 'h': format_usage(stdout); return 0;
		default: format_usage(stderr); return 2;
		}
	}
	if (!cfg.cache_path || !cfg.origin_path || optind != argc) {
		cli_err("format: --cache and --origin are required");
		format_usage(stderr);
		return 2;
	}
	cli_log_to_stderr(0);
	ret = bc_cache_format(&cfg, why, sizeof(why));
	if (ret < 0) {
		cli_err("format: %s", why);
		return 1;
	}
	printf("%s\n", why);
	return 0;
}
