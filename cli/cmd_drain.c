/* SPDX-License-Identifier: BSD-3-Clause */
/* blkcache flush / blkcache detach: drain a running server, with progress. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* The server reports every 200 ms; this much silence means it is stuck. */
#define DRAIN_SILENCE_MS 60000

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void flush_usage(FILE *f)
{
	fprintf(f,
		"usage: blkcache flush [NAME] [--control PATH]\n"
		"\n"
		"Write every dirty block of a running 'blkcache serve' back to the origin and\n"
		"flush the origin; wait until done.  Shows a progress bar on a terminal.\n"
		"Exits 0 once the origin alone holds all data written before the command.\n"
		"With several origins, flushes every one of them, or only origin NAME.\n"
		"\n"
		"  --control PATH  the server's control socket (default %s)\n",
		cli_default_control());
}

static void detach_usage(FILE *f)
{
	fprintf(f,
		"usage: blkcache detach [NAME] [--control PATH]\n"
		"\n"
		"Flush like 'blkcache flush', then release the cache: the server marks the\n"
		"cache device detached (it will refuse to serve it again) and shuts down.\n"
		"Afterwards the origin is complete and can be used without blkcache.\n"
		"With several origins, NAME is required: only that origin is drained and\n"
		"leaves the cache (its NBD export and ublk device go away); the others keep\n"
		"serving, and its share of the cache is free for another origin.\n"
		"\n"
		"  --control PATH  the server's control socket (default %s)\n",
		cli_default_control());
}

/* What the final {"done":true} line says. */
static void print_done(const struct bc_json *j, bool detach)
{
	const char *origin = bc_json_str(j, "origin"), *name = bc_json_str(j, "name");
	double secs = (double)bc_json_u64(j, "elapsed_ms") / 1000.0;
	const struct bc_json *o;
	unsigned n;
	char wb[32];

	bc_human_bytes(bc_json_u64(j, "written_back_bytes"), wb, sizeof(wb));
	if (detach && bc_json_get(j, "shutdown") && !bc_json_bool(j, "shutdown")) {
		printf("detached: origin %s (%s) is complete (%s written back in %.1f s); it left "
		       "the cache, the other origins keep serving\n", name ? name : "?",
		       origin ? origin : "(unknown)", wb, secs);
		return;
	}
	if (detach) {
		printf("detached: origin %s is complete (%s written back in %.1f s)\n",
		       origin ? origin : "(unknown)", wb, secs);
		return;
	}
	if (origin) {
		printf("flushed: origin %s holds all data (%s written back in %.1f s)\n", origin, wb,
		       secs);
		return;
	}
	o = cli_origins(j, &n);
	if (!n) {
		printf("flushed: the cache serves no origin; nothing to write back\n");
		return;
	}
	printf("flushed: %u origins hold all their data (%s written back in %.1f s)\n", n, wb,
	       secs);
	for (; o; o = o->next) {
		const char *on = bc_json_str(o, "name"), *op = bc_json_str(o, "origin");

		bc_human_bytes(bc_json_u64(o, "written_back_bytes"), wb, sizeof(wb));
		printf("  %-16s %s (%s written back%s)\n", on ? on : "?", op ? op : "?", wb,
		       bc_json_bool(o, "gone") ? "; detached meanwhile" : "");
	}
}

static int drain(const char *what, const char *control, bool detach, const char *name)
{
	char cmd[512];
	struct bc_tbuf in = { 0 }, line = { 0 };
	struct cli_progress prog;
	struct sigaction sa;
	int fd, ret, status = 1;

	if (!cli_origin_cmd(what, name, what, cmd, sizeof(cmd)))
		return 2;
	fd = cli_control_connect(control, cmd);
	if (fd < 0) {
		cli_control_report(what, control, fd);
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_interrupt; /* no SA_RESTART: the wait returns EINTR */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	cli_progress_init(&prog, stdout, what);
	for (;;) {
		const struct bc_json *pj;
		struct bc_json *j = NULL;
		const char *msg;

		ret = cli_control_read_line(fd, &in, &line, DRAIN_SILENCE_MS);
		if (ret == -EINTR && !interrupted)
			continue;
		if (ret == -EINTR) {
			cli_progress_end(&prog);
			cli_err("%s: interrupted; the %s goes on in the server%s", what, what,
				!detach ? "" : name ? " (the origin leaves the cache when it completes; "
				"the server shuts down if it was the only one)" :
				", which shuts down when it completes");
			status = 130;
			break;
		}
		if (ret == 0) {
			cli_progress_end(&prog);
			cli_err("%s: the blkcache at control socket %s closed the connection before "
				"the %s completed (did the server stop?); data not yet written back "
				"stays safe in the cache", what, control, what);
			break;
		}
		if (ret == -ETIMEDOUT) {
			cli_progress_end(&prog);
			cli_err("%s: no word from the blkcache at control socket %s for %d s; giving "
				"up waiting (the %s may still complete)", what, control,
				DRAIN_SILENCE_MS / 1000, what);
			break;
		}
		if (ret < 0) {
			cli_progress_end(&prog);
			cli_err("%s: lost the connection to the blkcache at control socket %s: %s",
				what, control, strerror(-ret));
			break;
		}
		if (bc_json_parse(line.p, &j) < 0 || j->type != BC_JSON_OBJECT) {
			cli_progress_end(&prog);
			cli_err("%s: unexpected answer from the server: %.200s", what, line.p);
			bc_json_free(j);
			break;
		}
		if ((pj = bc_json_get(j, "progress"))) {
			cli_progress_update(&prog, bc_json_u64(pj, "dirty_bytes"),
					    bc_json_u64(pj, "writeback_bytes"));
			bc_json_free(j);
			continue;
		}
		if (bc_json_bool(j, "done") && prog.drawn)
			cli_progress_update(&prog, 0, prog.rate_bytes); /* show 100% */
		cli_progress_end(&prog);
		if ((msg = bc_json_str(j, "error"))) {
			cli_err("%s: %s", what, msg);
		} else if (bc_json_bool(j, "done")) {
			print_done(j, detach);
			status = 0;
		} else {
			cli_err("%s: unexpected answer from the server: %.200s", what, line.p);
		}
		bc_json_free(j);
		break;
	}
	close(fd);
	bc_tbuf_free(&in);
	bc_tbuf_free(&line);
	return status;
}

/* flush / detach [NAME] [--control PATH] */
static int drain_cmd(int argc, char **argv, const char *what, void (*usage)(FILE *f),
		     bool detach)
{
	const char *control;
	int ret = cli_client_opts(argc, argv, usage, &control);

	if (ret >= 0)
		return ret;
	if (argc - optind > 1) {
		cli_err("%s: unexpected argument '%s'", what, argv[optind + 1]);
		usage(stderr);
		return 2;
	}
	return drain(what, control, detach, optind < argc ? argv[optind] : NULL);
}

int cmd_flush(int argc, char **argv)
{
	return drain_cmd(argc, argv, "flush", flush_usage, false);
}

int cmd_detach(int argc, char **argv)
{
	return drain_cmd(argc, argv, "detach", detach_usage, true);
}
