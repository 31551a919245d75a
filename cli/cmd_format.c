/* SPDX-License-Identifier: BSD-3-Clause */
/* blkcache format, blkcache origin add */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void format_usage(FILE *f)
{
	fprintf(f,
		"usage: blkcache format --cache DEV [--origin DEV [--name NAME] [--size SIZE|N%%]]\n"
		"                       [--segment-size SIZE] [--data-crc] [--origin-label] [--force]\n"
		"                       [--shards N|auto [--stripe SIZE]] [--format-version 2|3|4|5]\n"
		"\n"
		"Write an empty cache format on DEV (--cache), for the origin device if one is\n"
		"given; more origins are added with 'blkcache origin add' (offline) or\n"
		"'blkcache attach' (while serving).  Nothing is written to an origin: the cache\n"
		"device records its identity (size, path, serial) and the exported device is the\n"
		"whole origin, so a volume that already holds a filesystem is cached in place,\n"
		"unchanged.\n"
		"\n"
		"  --cache DEV          fast cache device (file or block device)\n"
		"  --origin DEV         slow origin device (file, block device, nbd:// URI)\n"
		"  --name NAME          the origin's name, its NBD export (default \"blkcache\")\n"
		"  --size SIZE|N%%       the origin's share of the cache (default: all of it;\n"
		"                       leave room for the origins you will add)\n"
		"  --segment-size SIZE  log segment size, power of two from 256K to 16M (default 1M)\n"
		"  --data-crc           check every cached block's CRC32C when it is read from the\n"
		"                       cache device: a corrupted block is never returned (clean:\n"
		"                       read from the origin instead; dirty: EIO)\n"
		"  --origin-label       also label the origin's last 4 KiB block with the pair's\n"
		"                       identity (the origin then carries the pairing; the exported\n"
		"                       device is 4 KiB smaller); refused if that block is not all\n"
		"                       zeroes or the origin holds a filesystem\n"
		"  --shards N|auto      cache the origin as N shards (2 to 16), each with an equal\n"
		"                       part of its share, its own log, index and writeback; origin\n"
		"                       blocks go to shards by stripe (format version 5); serve\n"
		"                       runs each shard after the first on a thread of its own;\n"
		"                       auto: one per two CPUs online (1 shard below 4 CPUs)\n"
		"  --stripe SIZE        the stripe of --shards, a power of two from 4K (default 1M)\n"
		"  --force              overwrite an existing blkcache format or origin label, format\n"
		"                       a cache device that holds a filesystem or partition table,\n"
		"                       label an origin whose last 4 KiB are in use\n"
		"  --format-version N   4: the default on persistent memory (pmem:), whose log\n"
		"                       then writes segments in rounds; 3: the default elsewhere\n"
		"                       (a pmem cache of version 3 is served like a disk);\n"
		"                       2: one origin per cache, for an older blkcache; 5: with\n"
		"                       --shards (its default there)\n");
}

static void origin_add_usage(FILE *f)
{
	fprintf(f,
		"usage: blkcache origin add --cache DEV --origin DEV --name NAME [--size SIZE|N%%]\n"
		"                           [--data-crc] [--origin-label] [--force]\n"
		"\n"
		"Add an origin to a cache that is not being served (a running server takes one\n"
		"with 'blkcache attach').  The origin gets its own share of the cache: --size\n"
		"(default: a quarter of the cache, or what is free if less), taken from free\n"
		"space.  'serve --cache DEV' serves it, as the NBD export NAME.\n");
}

/* "25%" or a size; 0 on success. */
static int parse_share(const char *cmd, const char *arg, struct bc_format_config *cfg)
{
	size_t n = strlen(arg);
	char *end;
	unsigned long pct;

	if (n && arg[n - 1] == '%') {
		pct = strtoul(arg, &end, 10);
		if (end != arg + n - 1 || pct < 1 || pct > 100) {
			cli_err("%s: --size '%s': a percentage is 1%% to 100%%", cmd, arg);
			return -1;
		}
		cfg->size_percent = (uint32_t)pct;
		return 0;
	}
	if (bc_parse_size(arg, &cfg->size) || !cfg->size) {
		cli_err("%s: --size '%s' is not a size (e.g. 8G, 512M) or a share (e.g. 25%%)", cmd, arg);
		return -1;
	}
	return 0;
}

static const struct option format_opts[] = {
	{ "cache", required_argument, NULL, 'c' },
	{ "origin", required_argument, NULL, 'o' },
	{ "name", required_argument, NULL, 'n' },
	{ "size", required_argument, NULL, 'S' },
	{ "segment-size", required_argument, NULL, 's' },
	{ "force", no_argument, NULL, 'f' },
	{ "data-crc", no_argument, NULL, 'D' },
	{ "origin-label", no_argument, NULL, 'L' },
	{ "format-version", required_argument, NULL, 'V' },
	{ "shards", required_argument, NULL, 'N' },
	{ "stripe", required_argument, NULL, 'T' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

/* Options common to format and origin add; 1: not one of them, -1: bad. */
static int common_opt(const char *cmd, int c, struct bc_format_config *cfg)
{
	switch (c) {
	case 'c': cfg->cache_path = optarg; return 0;
	case 'o': cfg->origin_path = optarg; return 0;
	case 'n': cfg->name = optarg; return 0;
	case 'S': return parse_share(cmd, optarg, cfg);
	case 'f': cfg->force = true; return 0;
	case 'D': cfg->data_crc = true; return 0;
	case 'L': cfg->origin_label = true; return 0;
	}
	return 1;
}

/* --shards auto: one shard per two CPUs online (a shard's thread, and
 * room for the clients and the kernel); 1 .. 16. */
static uint32_t auto_shards(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN) / 2;

	return n < 1 ? 1 : n > 16 ? 16 : (uint32_t)n;
}

int cmd_format(int argc, char **argv)
{
	struct bc_format_config cfg = { 0 };
	char why[1024], *end;
	bool shards_auto = false;
	uint64_t v;
	int c, ret;

	while ((c = getopt_long(argc, argv, "c:o:n:S:s:fDLV:N:T:h", format_opts, NULL)) != -1) {
		ret = common_opt("format", c, &cfg);
		if (ret < 0)
			return 2;
		if (!ret)
			continue;
		switch (c) {
		case 's':
			if (bc_parse_size(optarg, &v) || v > UINT32_MAX) {
				cli_err("format: --segment-size '%s' is not a size (e.g. 1M, 256K)", optarg);
				return 2;
			}
			cfg.segment_size = (uint32_t)v;
			break;
		case 'V':
			cfg.version = (uint32_t)strtoul(optarg, NULL, 10);
			if (cfg.version < 2 || cfg.version > 5) {
				cli_err("format: --format-version '%s': this blkcache writes 2, 3 (the "
					"default), 4 (the default on pmem:) or 5 (with --shards)", optarg);
				return 2;
			}
			break;
		case 'N':
			if (!strcmp(optarg, "auto")) {
				cfg.shards = auto_shards();
				shards_auto = true;
				break;
			}
			cfg.shards = (uint32_t)strtoul(optarg, &end, 10);
			if (*end || cfg.shards < 1 || cfg.shards > 16) {
				cli_err("format: --shards '%s': a number from 1 to 16, or auto", optarg);
				return 2;
			}
			break;
		case 'T':
			if (bc_parse_size(optarg, &v) || v < 4096 || (v & (v - 1)) ||
			    v / 4096 > UINT32_MAX) {
				cli_err("format: --stripe '%s' is not a power of two of at least 4K "
					"(e.g. 1M, 256K)", optarg);
				return 2;
			}
			cfg.stripe_blocks = (uint32_t)(v / 4096);
			break;
		case 'h': format_usage(stdout); return 0;
		default: format_usage(stderr); return 2;
		}
	}
	if (!cfg.cache_path || optind != argc) {
		cli_err("format: --cache is required");
		format_usage(stderr);
		return 2;
	}
	if (!cfg.origin_path && (cfg.name || cfg.size || cfg.size_percent || cfg.origin_label ||
				 cfg.shards > 1)) {
		cli_err("format: --name, --size, --origin-label and --shards describe an origin: give "
			"--origin");
		return 2;
	}
	if (shards_auto && cfg.shards < 2) {
		fprintf(stderr, "%s: format: --shards auto: %ld CPUs online: one shard (a shard per "
			"two CPUs: its thread, and room for the clients and the kernel)\n", bc_prog,
			sysconf(_SC_NPROCESSORS_ONLN));
		cfg.stripe_blocks = 0;
	}
	if (cfg.stripe_blocks && cfg.shards < 2) {
		cli_err("format: --stripe is the stripe of --shards: give --shards 2 or more");
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

static int origin_add(int argc, char **argv)
{
	struct bc_format_config cfg = { 0 };
	char why[1024];
	int c, ret;

	while ((c = getopt_long(argc, argv, "c:o:n:S:fDLh", format_opts, NULL)) != -1) {
		ret = common_opt("origin add", c, &cfg);
		if (ret < 0)
			return 2;
		if (!ret)
			continue;
		if (c == 'h') {
			origin_add_usage(stdout);
			return 0;
		}
		origin_add_usage(stderr);
		return 2;
	}
	if (!cfg.cache_path || !cfg.origin_path || !cfg.name || optind != argc) {
		cli_err("origin add: --cache, --origin and --name are required");
		origin_add_usage(stderr);
		return 2;
	}
	cli_log_to_stderr(0);
	ret = bc_origin_add(&cfg, why, sizeof(why));
	if (ret < 0) {
		cli_err("origin add: %s", why);
		return 1;
	}
	printf("%s\n", why);
	return 0;
}

int cmd_origin(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "add"))
		return origin_add(argc - 1, argv + 1);
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		origin_add_usage(stdout);
		return 0;
	}
	cli_err("origin: unknown subcommand%s%s; known: add", argc >= 2 ? " " : "",
		argc >= 2 ? argv[1] : "");
	origin_add_usage(stderr);
	return 2;
}
