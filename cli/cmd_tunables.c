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
		"usage: blkcache get [TUNABLE] [--name NAME] [--control PATH]\n"
		"\n"
		"Show the cache mode and the live tunables of a running 'blkcache serve', or\n"
		"one tunable with its unit, range and meaning.  With several origins, each\n"
		"origin's values.\n"
		"\n"
		"  --name NAME     only origin NAME's\n"
		"  --control PATH  the server's control socket (default %s)\n"
		"\n"
		"Tunables:\n", cli_default_control());
	tunable_list(f);
}

static void set_usage(FILE *f)
{
	fprintf(f,
		"usage: blkcache set TUNABLE VALUE [--name NAME] [--control PATH]\n"
		"\n"
		"Change a tunable of a running 'blkcache serve'; it takes effect at once and\n"
		"lasts until the server stops.  VALUE is a decimal number; sizes (bytes,\n"
		"bytes/s) take a K, M, G or T suffix; switches take true/false or on/off.\n"
		"With several origins, every origin's tunable changes, or only origin NAME's.\n"
		"\n"
		"  --name NAME     only origin NAME's\n"
		"  --control PATH  the server's control socket (default %s)\n"
		"\n"
		"Tunables:\n", cli_default_control());
	tunable_list(f);
}

static void mode_usage(FILE *f)
{
	fprintf(f,
		"usage: blkcache mode MODE [--name NAME] [--control PATH]\n"
		"\n"
		"Switch the cache mode of a running 'blkcache serve' (of every origin it\n"
		"serves, or only of origin NAME).  Dirty data already in the cache stays safe\n"
		"and is written back in any mode.\n"
		"\n"
		"  writeback     writes go to the cache and are written back later (default)\n"
		"  writethrough  writes go to the origin and into the cache as clean data\n"
		"  writearound   writes go to the origin only; cached copies are dropped\n"
		"  passthrough   no caching; reads and writes go to the origin\n"
		"\n"
		"  --name NAME     only origin NAME\n"
		"  --control PATH  the server's control socket (default %s)\n",
		cli_default_control());
}

static void print_tunable(const char *name, const char *unit, uint64_t v)
{
	char buf[128];

	printf("%-20s %s\n", name, bc_tuntext_format(unit, v, buf, sizeof(buf)));
}

/* "get TUNABLE": its value(s), meaning, range and default. */
static void get_one(const struct bc_json *j, const char *arg, bool per_origin)
{
	const char *unit = bc_json_str(j, "unit"), *help = bc_json_str(j, "help");
	const char *tname = bc_json_str(j, "name") ? bc_json_str(j, "name") : arg;
	const struct bc_json *o;
	char lo[64], hi[64];
	unsigned n;

	if (!unit)
		unit = "";
	o = cli_origins(j, &n);
	if (!per_origin || n <= 1) {
		print_tunable(tname, unit, bc_json_u64(j, "value"));
	} else {
		printf("%-20s per origin:\n", tname);
		for (; o; o = o->next)
			printf("  %-18s %s\n", bc_json_str(o, "name") ? bc_json_str(o, "name") : "?",
			       bc_tuntext_format(unit, bc_json_u64(o, "value"), lo, sizeof(lo)));
	}
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
}

/* "get": the mode and every tunable of one origin (@j: the top level or an
 * element of "origins"). */
static void get_all(const struct bc_json *j)
{
	const struct bc_json *t, *m;

	printf("%-20s %s\n", "mode", bc_json_str(j, "mode") ? bc_json_str(j, "mode") : "?");
	t = bc_json_get(j, "tunables");
	for (m = t ? t->child : NULL; m; m = m->next) {
		const struct bc_tunable_info *ti = bc_tuntext_find(m->key);

		print_tunable(m->key, ti ? ti->unit : "", m->is_u64 ? m->u64 : 0);
	}
}

int cmd_get(int argc, char **argv)
{
	const struct bc_json *o;
	struct bc_json *j = NULL;
	const char *control, *name;
	char cmd[1024], line[512];
	unsigned n;
	int ret = cli_client_opts_name(argc, argv, get_usage, &control, &name);

	if (ret >= 0)
		return ret;
	if (argc - optind > 1) {
		cli_err("get: unexpected argument '%s'", argv[optind + 1]);
		get_usage(stderr);
		return 2;
	}
	if (optind < argc && (strlen(argv[optind]) > 200 || strpbrk(argv[optind], " \t\n"))) {
		cli_err("get: '%.40s' is not a tunable name; 'blkcache get --help' lists them",
			argv[optind]);
		return 2;
	}
	snprintf(line, sizeof(line), "get%s%s", optind < argc ? " " : "",
		 optind < argc ? argv[optind] : "");
	if (!cli_origin_cmd("get", name, line, cmd, sizeof(cmd)))
		return 2;
	ret = cli_control_request("get", control, cmd, &j);
	if (ret)
		return ret;
	o = cli_origins(j, &n);
	if (optind < argc) {
		get_one(j, argv[optind], !name);
	} else if (name || n <= 1) {
		get_all(j);
	} else {
		for (; o; o = o->next) {
			printf("origin %s\n", bc_json_str(o, "name") ? bc_json_str(o, "name") : "?");
			get_all(o);
			if (o->next)
				printf("\n");
		}
	}
	bc_json_free(j);
	return 0;
}

int cmd_set(int argc, char **argv)
{
	const struct bc_json *o;
	struct bc_json *j = NULL;
	const char *control, *unit, *name, *tname;
	char cmd[1024], line[512];
	unsigned n;
	int ret = cli_client_opts_name(argc, argv, set_usage, &control, &name);

	if (ret >= 0)
		return ret;
	if (argc - optind != 2) {
		cli_err(argc - optind < 2 ? "set: TUNABLE and VALUE are required"
					  : "set: too many arguments");
		set_usage(stderr);
		return 2;
	}
	if (strlen(argv[optind]) + strlen(argv[optind + 1]) > 200 ||
	    strpbrk(argv[optind], " \t\n") || strpbrk(argv[optind + 1], " \t\n")) {
		cli_err("set: TUNABLE and VALUE must be single words");
		return 2;
	}
	snprintf(line, sizeof(line), "set %s %s", argv[optind], argv[optind + 1]);
	if (!cli_origin_cmd("set", name, line, cmd, sizeof(cmd)))
		return 2;
	ret = cli_control_request("set", control, cmd, &j);
	if (ret)
		return ret;
	unit = bc_json_str(j, "unit");
	tname = bc_json_str(j, "name") ? bc_json_str(j, "name") : argv[optind];
	o = cli_origins(j, &n);
	if (n <= 1) {
		print_tunable(tname, unit ? unit : "", bc_json_u64(j, "value"));
	} else {
		for (; o; o = o->next) {
			char buf[128];

			printf("origin %-12s %-20s %s\n",
			       bc_json_str(o, "name") ? bc_json_str(o, "name") : "?", tname,
			       bc_tuntext_format(unit ? unit : "", bc_json_u64(o, "value"), buf,
						 sizeof(buf)));
		}
	}
	bc_json_free(j);
	return 0;
}

/* The note about dirty blocks left when the mode is not writeback. */
static void dirty_note(uint64_t dirty, const char *flush)
{
	char h[32];

	printf("%llu dirty blocks (%s) stay in the cache until written back; '%s' writes them "
	       "back now\n", (unsigned long long)dirty,
	       bc_human_bytes(dirty * BC_UNIT_BLOCK, h, sizeof(h)), flush);
}

int cmd_mode(int argc, char **argv)
{
	const struct bc_json *o;
	struct bc_json *j = NULL;
	const char *control, *prev, *now, *name;
	char cmd[512], line[128];
	uint64_t dirty = 0;
	unsigned n;
	int ret = cli_client_opts_name(argc, argv, mode_usage, &control, &name);

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
	snprintf(line, sizeof(line), "mode %s", argv[optind]);
	if (!cli_origin_cmd("mode", name, line, cmd, sizeof(cmd)))
		return 2;
	ret = cli_control_request("mode", control, cmd, &j);
	if (ret)
		return ret;
	o = cli_origins(j, &n);
	if (n > 1) {
		for (; o; o = o->next) {
			now = bc_json_str(o, "mode");
			prev = bc_json_str(o, "previous");
			printf("origin %-12s mode: %s", bc_json_str(o, "name") ? bc_json_str(o, "name")
									  : "?", now ? now : "?");
			if (prev && now && strcmp(prev, now))
				printf(" (was %s)", prev);
			printf("\n");
			if (now && strcmp(now, "writeback"))
				dirty += bc_json_u64(o, "dirty_blocks");
		}
		if (dirty)
			dirty_note(dirty, "blkcache flush");
		bc_json_free(j);
		return 0;
	}
	now = bc_json_str(j, "mode");
	prev = bc_json_str(j, "previous");
	dirty = bc_json_u64(j, "dirty_blocks");
	if (prev && now && strcmp(prev, now))
		printf("mode: %s (was %s)\n", now, prev);
	else
		printf("mode: %s\n", now ? now : argv[optind]);
	if (dirty && now && strcmp(now, "writeback")) {
		char f[128];

		snprintf(f, sizeof(f), "blkcache flush%s%.64s", name ? " " : "", name ? name : "");
		dirty_note(dirty, f);
	}
	bc_json_free(j);
	return 0;
}
