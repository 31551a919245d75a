/* SPDX-License-Identifier: BSD-3-Clause */
#include <stdio.h>
#include <string.h>

#include "cli.h"

const char *bc_prog = "blkcache";

static void usage(FILE *f)
{
	fprintf(f,
		"usage: blkcache COMMAND [OPTIONS]\n"
		"\n"
		"  blkcache format --cache DEV [--origin DEV [--name NAME] [--size SIZE|N%%]]\n"
		"                  [--segment-size SIZE] [--force]\n"
		"  blkcache origin add --cache DEV --origin DEV --name NAME [--size SIZE|N%%]\n"
		"  blkcache serve  --cache DEV [--origin DEV] [--name NAME] [--socket PATH]\n"
		"                  [--tcp ADDR:PORT] [--ublk[=ID]] [--control PATH]\n"
		"                  [--export-name NAME] [--buffers N] [--flush-deadline-us US]\n"
		"                  [--metrics ADDR:PORT] [--verbose]\n"
		"  blkcache status [--name NAME] [--control PATH] [--json]\n"
		"  blkcache origins [--control PATH] [--json]\n"
		"  blkcache attach NAME DEV [--size SIZE|N%%] [--control PATH]\n"
		"  blkcache flush  [NAME] [--control PATH]\n"
		"  blkcache detach [NAME] [--control PATH]\n"
		"  blkcache get    [TUNABLE] [--name NAME] [--control PATH]\n"
		"  blkcache set    TUNABLE VALUE [--name NAME] [--control PATH]\n"
		"  blkcache mode   MODE [--name NAME] [--control PATH]\n"
		"  blkcache check  --cache DEV [--origin DEV] [--json] [--quiet]\n"
		"\n"
		"Run 'blkcache COMMAND --help' for the options of a command.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("blkcache 0.1.0\n");
		return 0;
	}
	if (!strcmp(argv[1], "format"))
		return cmd_format(argc - 1, argv + 1);
	if (!strcmp(argv[1], "origin"))
		return cmd_origin(argc - 1, argv + 1);
	if (!strcmp(argv[1], "serve"))
		return cmd_serve(argc - 1, argv + 1);
	if (!strcmp(argv[1], "status"))
		return cmd_status(argc - 1, argv + 1);
	if (!strcmp(argv[1], "flush"))
		return cmd_flush(argc - 1, argv + 1);
	if (!strcmp(argv[1], "detach"))
		return cmd_detach(argc - 1, argv + 1);
	if (!strcmp(argv[1], "get"))
		return cmd_get(argc - 1, argv + 1);
	if (!strcmp(argv[1], "set"))
		return cmd_set(argc - 1, argv + 1);
	if (!strcmp(argv[1], "mode"))
		return cmd_mode(argc - 1, argv + 1);
	if (!strcmp(argv[1], "origins"))
		return cmd_origins(argc - 1, argv + 1);
	if (!strcmp(argv[1], "attach"))
		return cmd_attach(argc - 1, argv + 1);
	if (!strcmp(argv[1], "check"))
		return cmd_check(argc - 1, argv + 1);
	cli_err("unknown command '%s'", argv[1]);
	usage(stderr);
	return 2;
}
