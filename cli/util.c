/* SPDX-License-Identifier: BSD-3-Clause */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blkcache/log.h"
#include "cli.h"

void cli_err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", bc_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void log_stderr(void *arg, enum bc_log_level level, const char *msg)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };

	(void)arg;
	fprintf(stderr, "%s: %s: %s\n", bc_prog, names[level], msg);
}

void cli_log_to_stderr(int verbose)
{
	bc_log_set(log_stderr, NULL, verbose ? BC_LOG_DEBUG : BC_LOG_INFO);
}

const char *cli_default_control(void)
{
	static char path[256];
	const char *env = getenv("BLKCACHE_CONTROL"), *rt = getenv("XDG_RUNTIME_DIR");

	if (env && *env)
		return env;
	if (rt && *rt)
		snprintf(path, sizeof(path), "%s/blkcache.ctl", rt);
	else
		snprintf(path, sizeof(path), "/tmp/blkcache-%u.ctl", (unsigned)getuid());
	return path;
}

int cli_client_opts(int argc, char **argv, void (*usage)(FILE *f), const char **control)
{
	return cli_client_opts_name(argc, argv, usage, control, NULL);
}
