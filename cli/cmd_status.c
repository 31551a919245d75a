/* SPDX-License-Identifier: BSD-3-Clause */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void status_usage(FILE *f)
{
	fprintf(f,
		"usage: blkcache status [--control PATH] [--json]\n"
		"\n"
		"Show the counters of a running 'blkcache serve'.\n"
		"\n"
		"  --control PATH  its control socket (default %s)\n"
		"  --json          print one JSON object\n", cli_default_control());
}

/* Fetch "key": number from the flat JSON reply. */
static double jnum(const char *json, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(json, pat);
	return p ? strtod(p + strlen(pat), NULL) : 0;
}

static void human(const char *j)
{
	double bs = 4096.0;

	printf("blkcache status\n");
	printf("  exported size     %.0f MiB\n", jnum(j, "export_size") / 1048576.0);
	printf("  requests          %.0f reads, %.0f writes, %.0f flushes, %.0f discards, "
	       "%.0f write-zeroes\n", jnum(j, "reads"), jnum(j, "writes"), jnum(j, "flushes"),
	       jnum(j, "discards"), jnum(j, "write_zeroes"));
	printf("  read blocks       %.0f hits, %.0f partial, %.0f misses (hit ratio %.1f%%)\n",
	       jnum(j, "read_hit_blocks"), jnum(j, "read_partial_blocks"), jnum(j, "read_miss_blocks"),
	       100.0 * jnum(j, "hit_ratio"));
	printf("  writes absorbed   %.0f blocks (%.0f in place in the open buffer)\n",
	       jnum(j, "writes_absorbed_blocks"), jnum(j, "write_inplace_blocks"));
	printf("  cached / dirty    %.0f / %.0f blocks (%.1f / %.1f MiB)\n", jnum(j, "cached_blocks"),
	       jnum(j, "dirty_blocks"), jnum(j, "cached_blocks") * bs / 1048576.0,
	       jnum(j, "dirty_blocks") * bs / 1048576.0);
	printf("  segments          %.0f used of %.0f (%.0f written, %.0f partial)\n",
	       jnum(j, "segments_used"), jnum(j, "segments_total"), jnum(j, "segments_written"),
	       jnum(j, "segments_partial"));
	printf("  writeback         %.0f blocks in %.0f writes, %.0f batches, %.0f errors\n",
	       jnum(j, "writeback_blocks"), jnum(j, "writeback_ios"), jnum(j, "writeback_batches"),
	       jnum(j, "writeback_errors"));
	printf("  cache-full waits  %.0f\n", jnum(j, "cache_full_waits"));
	printf("  NBD               %.0f connections open, %.0f requests\n",
	       jnum(j, "nbd_connections_open"), jnum(j, "nbd_requests"));
}

int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "control", required_argument, NULL, 'C' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *control = cli_default_control();
	char *reply = NULL;
	int c, json = 0, ret;

	while ((c = getopt_long(argc, argv, "C:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'C': control = optarg; break;
		case 'j': json = 1; break;
		case 'h': status_usage(stdout); return 0;
		default: status_usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		status_usage(stderr);
		return 2;
	}
	ret = cli_control_call(control, "status", &reply);
	if (ret < 0) {
		cli_err("status: cannot reach a running blkcache at control socket %s: %s "
			"(is 'blkcache serve' running? pass --control PATH)", control, strerror(-ret));
		return 1;
	}
	if (!strncmp(reply, "{\"error\"", 8)) {
		cli_err("status: server answered %s", reply);
		free(reply);
		return 1;
	}
	if (json)
		fputs(reply, stdout);
	else
		human(reply);
	free(reply);
	return 0;
}
