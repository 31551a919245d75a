/* SPDX-License-Identifier: BSD-3-Clause */
/* blkcache get / set / mode: live settings of a running server. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void tunable_list(FILE *f)
{
	unsigned i, n = bc_tunable_count();
	char buf[64];

	for (i = 0; i < n; i++) {
		const struct bc_tunable_info *ti = bc_tunable_info(i);

		if (ti)
			fprintf(f, "  %-20s %s\n  %-20s (%s, default %s)\n", ti->name, ti->help, "",
				ti->unit, bc_tuntext_short(ti->unit, ti->def, buf, sizeof(buf)));
	}
}

static void get_usage(FILE *f)
{
	fprintf(f,
		"usage: blkcache get [NAME] [--control PATH]\n"
		"\n"
		"Show the cache mode and the live tunables of a running 'blkcache serve', or\n"
		"one tunable with its unit, range and meaning.\n"
		"\n"
		"  --control PATH  the server's control socket (default %s)\n"
		"\n"
		"Tunables:\n", cli_default_control());
	tunable_list(f);
}

static void set_usage(FILE *f)
{
	fprintf(f,
		"usage: blkcache set NAME VALUE [--control PATH]\n"
		"\n"
		"Change a tunable of a running 'blkcache serve'; it takes effect at once and\n"
		"lasts until the server stops.  VALUE is a decimal number; sizes (bytes,\n"
		"bytes/s) take a K, M, G or T suffix; switches take true/false or on/off.\n"
		"\n"
		"  --control PATH  the server's control socket (default %s)\n"
		"\n"
		"Tunables:\n", cli_default_control());
	tunable_list(f);
}

static void mode_usage(FILE *f)
{
	fprintf(f,
		"usage: blkcache mode MODE [--control PATH]\n"
		"\n"
		"Switch the cache mode of a running 'blkcache serve'.  Dirty data already in\n"
		"the cache stays safe and is written back in any mode.\n"
		"\n"
		"  writeback     writes go to the cache and are written back later (default)\n"
		"  writethrough  writes go to the origin and into the cache as clean data\n"
		"  writearound   writes go to the origin only; cached copies are dropped\n"
		"  passthrough   no caching; reads and writes go to the origin\n"
		"\n"
		"  --control PATH  the server's control socket (default %s)\n",
		cli_default_control());
}

static void print_tunable(const char *name, const char *unit, uint64_t v)
{
	char buf[128];

	printf("%-20s %s\n", name, bc_tuntext_format(unit, v, buf, sizeof(buf)));
}

int cmd_get(int argc, char **argv)
{
	const struct bc_json *t, *m;
	struct bc_json *j = NULL;
	const char *control;
	char cmd[512];
	int ret = cli_client_opts(argc, argv, get_usage, &control);

	if (ret >= 0)
		return ret;
	if (argc - optind > 1) {
		cli_err("get: unexpected argument '%s'", argv[optind + 1]);
		get_usage(stderr);
		return 2;
	}
	if (optind < argc && strlen(argv[optind]) > 200) {
		cli_err("get: '%.40s...' is not a tunable name", argv[optind]);
		return 2;
	}
	snprintf(cmd, sizeof(cmd), "get%s%s", optind < argc ? " " : "",
		 optind < argc ? argv[optind] : "");
	ret = cli_control_request("get", control, cmd, &j);
	if (ret)
		return ret;
	if (optind < argc) {
		const char *unit = bc_json_str(j, "unit");
		const char *help = bc_json_str(j, "help");
		char lo[64], hi[64];

		if (!unit)
			unit = "";
		print_tunable(bc_json_str(j, "name") ? bc_json_str(j, "name") : argv[optind], unit,
			      bc_json_u64(j, "value"));
		printf("  %s\n", help ? help : "");
		if (strcmp(unit, "bool"))
			printf("  range %s to %s %s", bc_tuntext_short(unit, bc_json_u64(j, "min"), lo,
								       sizeof(lo)),
			       bc_tuntext_short(unit, bc_json_u64(j, "max"), hi, sizeof(hi)), unit);
		else
			printf("  a switch (true/false)");
		if (bc_json_get(j, "default"))
			printf(", default %s", bc_tuntext_short(unit, bc_json_u64(j, "default"), lo,
								sizeof(lo)));
		printf("\n");
		bc_json_free(j);
		return 0;
	}
	printf("%-20s %s\n", "mode", bc_json_str(j, "mode") ? bc_json_str(j, "mode") : "?");
	t = bc_json_get(j, "tunables");
	for (m = t ? t->child : NULL; m; m = m->next) {
		const struct bc_tunable_info *ti = bc_tuntext_find(m->key);

		print_tunable(m->key, ti ? ti->unit : "", m->is_u64 ? m->u64 : 0);
	}
	bc_json_free(j);
	return 0;
}

int cmd_set(int argc, char **argv)
{
	struct bc_json *j = NULL;
	const char *control, *unit;
	char cmd[512];
	int ret = cli_client_opts(argc, argv, set_usage, &control);

	if (ret >= 0)
		return ret;
	if (argc - optind != 2) {
		cli_err(argc - optind < 2 ? "set: NAME and VALUE are required"
					  : "set: too many arguments");
		set_usage(stderr);
		return 2;
	}
	if (strlen(argv[optind]) + strlen(argv[optind + 1]) > 200 ||
	    strpbrk(argv[optind], " \t\n") || strpbrk(argv[optind + 1], " \t\n")) {
		cli_err("set: NAME and VALUE must be single words");
		return 2;
	}
	snprintf(cmd, sizeof(cmd), "set %s %s", argv[optind], argv[optind + 1]);
	ret = cli_control_request("set", control, cmd, &j);
	if (ret)
		return ret;
	unit = bc_json_str(j, "unit");
	print_tunable(bc_json_str(j, "name") ? bc_json_str(j, "name") : argv[optind],
		      unit ? unit : "", bc_json_u64(j, "value"));
	bc_json_free(j);
	return 0;
}

int cmd_mode(int argc, char **argv)
{
	struct bc_json *j = NULL;
	const char *control, *prev, *now;
	char cmd[128];
	uint64_t dirty;
	int ret = cli_client_opts(argc, argv, mode_usage, &control);

	if (ret >= 0)
		return ret;
	if (argc - optind != 1) {
		cli_err(argc == optind ? "mode: MODE is required" : "mode: too many arguments");
		mode_usage(stderr);
		return 2;
	}
	if (strlen(argv[optind]) > 64 || strpbrk(argv[optind], " \t\n")) {
		cli_err("mode: unknown mode '%.64s'; known: writeback, writethrough, writearound, "
			"passthrough", argv[optind]);
		return 1;
	}
	snprintf(cmd, sizeof(cmd), "mode %s", argv[optind]);
	ret = cli_control_request("mode", control, cmd, &j);
	if (ret)
		return ret;
	now = bc_json_str(j, "mode");
	prev = bc_json_str(j, "previous");
	dirty = bc_json_u64(j, "dirty_blocks");
	if (prev && now && strcmp(prev, now))
		printf("mode: %s (was %s)\n", now, prev);
	else
		printf("mode: %s\n", now ? now : argv[optind]);
	if (dirty && now && strcmp(now, "writeback")) {
		char h[32];

		printf("%llu dirty blocks (%s) stay in the cache until written back; 'blkcache "
		       "flush' writes them back now\n",
		       (unsigned long long)dirty, bc_human_bytes(dirty * BC_UNIT_BLOCK, h, sizeof(h)));
	}
	bc_json_free(j);
	return 0;
}
