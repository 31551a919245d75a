/* SPDX-License-Identifier: BSD-3-Clause */
/* blkcache origins / blkcache attach: the origins a running server serves,
 * and another one attached live. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void origins_usage(FILE *f)
{
	fprintf(f,
		"usage: blkcache origins [--control PATH] [--json]\n"
		"\n"
		"List the origins a running 'blkcache serve' serves from its cache: name,\n"
		"origin device, exported size, mode, dirty data, and state (serving,\n"
		"flushing, detaching, writeback-failing, degraded) with its ublk device.\n"
		"\n"
		"  --control PATH  the server's control socket (default %s)\n"
		"  --json          print the server's JSON object\n", cli_default_control());
}

static void attach_usage(FILE *f)
{
	fprintf(f,
		"usage: blkcache attach NAME DEV [--size SIZE|N%%] [--control PATH]\n"
		"\n"
		"Start caching another origin DEV in a running 'blkcache serve', without\n"
		"pausing the origins it serves: DEV gets a share of the cache and is served\n"
		"as NBD export NAME (and a ublk device if the server makes them).  An origin\n"
		"added offline ('blkcache origin add') and not yet served is opened instead.\n"
		"\n"
		"  --size SIZE|N%%  its share of the cache: bytes (K/M/G/T suffix) or a\n"
		"                  percentage of the cache (default: a quarter of the cache,\n"
		"                  or what is free if less)\n"
		"  --control PATH  the server's control socket (default %s)\n",
		cli_default_control());
}

static const char *s_or(const struct bc_json *j, const char *key, const char *def)
{
	const char *s = bc_json_str(j, key);

	return s ? s : def;
}

static int width(const struct bc_json *o, const char *key, int w)
{
	for (; o; o = o->next) {
		int n = (int)strlen(s_or(o, key, "?"));

		if (n > w)
			w = n;
	}
	return w;
}

static void origins_table(const struct bc_json *j)
{
	const struct bc_json *o;
	unsigned n;
	int wn, wo;

	o = cli_origins(j, &n);
	if (!n) {
		printf("the cache %s serves no origin; attach one with 'blkcache attach NAME DEV'\n",
		       s_or(j, "cache", "?"));
		return;
	}
	wn = width(o, "name", 4);
	wo = width(o, "origin", 6);
	printf("%-*s  %-*s  %10s  %-12s  %10s  %s\n", wn, "NAME", wo, "ORIGIN", "SIZE", "MODE",
	       "DIRTY", "STATE");
	for (; o; o = o->next) {
		const char *ublk = bc_json_str(o, "ublk_dev");
		char size[32], dirty[32];

		bc_human_bytes(bc_json_u64(o, "export_size"), size, sizeof(size));
		bc_human_bytes(bc_json_u64(o, "dirty_blocks") * BC_UNIT_BLOCK, dirty, sizeof(dirty));
		printf("%-*s  %-*s  %10s  %-12s  %10s  %s%s%s\n", wn, s_or(o, "name", "?"), wo,
		       s_or(o, "origin", "?"), size, s_or(o, "mode", "?"), dirty,
		       s_or(o, "state", "?"), ublk ? ", " : "", ublk ? ublk : "");
	}
}

int cmd_origins(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "control", required_argument, NULL, 'C' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *control = cli_default_control(), *msg;
	struct bc_json *j = NULL;
	char *reply = NULL;
	int c, json = 0, ret;

	while ((c = getopt_long(argc, argv, "C:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'C': control = optarg; break;
		case 'j': json = 1; break;
		case 'h': origins_usage(stdout); return 0;
		default: origins_usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		cli_err("origins: unexpected argument '%s'", argv[optind]);
		origins_usage(stderr);
		return 2;
	}
	ret = cli_control_call(control, "origins", &reply);
	if (ret < 0) {
		cli_control_report("origins", control, ret);
		return 1;
	}
	if (bc_json_parse(reply, &j) < 0 || j->type != BC_JSON_OBJECT) {
		reply[strcspn(reply, "\n")] = 0;
		cli_err("origins: unexpected answer from the server at %s: %.200s", control, reply);
		ret = 1;
	} else if ((msg = bc_json_str(j, "error"))) {
		cli_err("origins: %s%s", msg, strstr(msg, "unknown command") ?
			" (the server predates 'origins': it serves one origin; see 'blkcache "
			"status')" : "");
		ret = 1;
	} else if (json) {
		fputs(reply, stdout);
	} else {
		origins_table(j);
	}
	bc_json_free(j);
	free(reply);
	return ret;
}

/* "SIZE" or "N%": checked here so that a typo is told before the server
 * is asked.  False after saying why. */
static bool size_ok(const char *s)
{
	size_t n = strlen(s);
	uint64_t v;
	char *end;

	if (n && s[n - 1] == '%') {
		unsigned long p = strtoul(s, &end, 10);

		if (end == s + n - 1 && end != s && p >= 1 && p <= 100)
			return true;
		cli_err("attach: --size %s: a share of the cache is 1%% to 100%%", s);
		return false;
	}
	if (bc_parse_size(s, &v) == 0 && v > 0)
		return true;
	cli_err("attach: --size '%s' is not a size (e.g. 8G) or a share of the cache (e.g. 25%%)",
		s);
	return false;
}

static void print_attached(const struct bc_json *j, const char *name, const char *dev)
{
	const char *ublk = bc_json_str(j, "ublk_dev");
	char size[32];

	printf("attached: origin %s (%s)", s_or(j, "name", name), s_or(j, "origin", dev));
	if (bc_json_get(j, "export_size"))
		printf(", exported size %s", bc_human_bytes(bc_json_u64(j, "export_size"), size,
							     sizeof(size)));
	printf("; NBD export '%s'%s%s\n", s_or(j, "name", name), ublk ? ", " : "",
	       ublk ? ublk : "");
}

int cmd_attach(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "control", required_argument, NULL, 'C' },
		{ "size", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *control = cli_default_control(), *size = NULL, *name, *dev;
	struct bc_json *j = NULL;
	char cmd[BC_CONTROL_LINE_MAX], cwd[2048], absdev[BC_CONTROL_LINE_MAX];
	int c, n, ret;

	while ((c = getopt_long(argc, argv, "C:s:h", opts, NULL)) != -1) {
		switch (c) {
		case 'C': control = optarg; break;
		case 's': size = optarg; break;
		case 'h': attach_usage(stdout); return 0;
		default: attach_usage(stderr); return 2;
		}
	}
	if (argc - optind != 2) {
		if (argc - optind < 2)
			cli_err("attach: NAME and DEV are required (blkcache attach NAME DEV)");
		else
			cli_err("attach: unexpected argument '%s'", argv[optind + 2]);
		attach_usage(stderr);
		return 2;
	}
	name = argv[optind];
	dev = argv[optind + 1];
	/* The server has its own working directory: a relative path is ours. */
	if (dev[0] != '/' && !strstr(dev, "://")) {
		if (!getcwd(cwd, sizeof(cwd))) {
			cli_err("attach: cannot resolve the relative path %s: the current directory "
				"is unknown (%s); give an absolute path", dev, strerror(errno));
			return 2;
		}
		n = snprintf(absdev, sizeof(absdev), "%s/%s", cwd, dev);
		if (n < 0 || (size_t)n >= sizeof(absdev)) {
			cli_control_report("attach", control, -E2BIG);
			return 2;
		}
		dev = absdev;
	}
	if (!cli_word_ok("attach", "NAME", name) || !cli_word_ok("attach", "DEV", dev) ||
	    (size && (!cli_word_ok("attach", "SIZE", size) || !size_ok(size))))
		return 2;
	n = snprintf(cmd, sizeof(cmd), "attach %s %s%s%s", name, dev, size ? " " : "",
		     size ? size : "");
	if (n < 0 || (size_t)n >= sizeof(cmd) - 1) {
		cli_control_report("attach", control, -E2BIG);
		return 2;
	}
	ret = cli_control_request("attach", control, cmd, &j);
	if (ret)
		return ret;
	print_attached(j, name, dev);
	bc_json_free(j);
	return 0;
}
