/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sockutil.h"
#include "cli.h"

static struct bc_loop *sig_loop;

static void on_signal(int sig)
{
	(void)sig;
	if (sig_loop)
		bc_loop_stop(sig_loop);
}

#define MAX_SETS 32

struct serve_set {
	char name[64];
	uint64_t value;
};

/* "NAME=VALUE" of --set, checked against the tunable table. */
static int parse_set(const char *arg, struct serve_set *out)
{
	const char *eq = strchr(arg, '=');
	const struct bc_tunable_info *ti;
	size_t n = eq ? (size_t)(eq - arg) : 0;
	char why[256];

	if (!eq || !n || n >= sizeof(out->name)) {
		cli_err("serve: --set wants NAME=VALUE, e.g. --set writeback_rate=8M (got '%s')",
			arg);
		return -1;
	}
	memcpy(out->name, arg, n);
	out->name[n] = 0;
	ti = bc_tuntext_find(out->name);
	if (!ti) {
		struct bc_tbuf names = { 0 };

		bc_tuntext_names(&names);
		cli_err("serve: --set: unknown tunable '%s'; known: %s", out->name,
			names.p ? names.p : "");
		bc_tbuf_free(&names);
		return -1;
	}
	if (bc_tuntext_parse(ti, eq + 1, &out->value, why, sizeof(why))) {
		cli_err("serve: --set %s: %s", out->name, why);
		return -1;
	}
	return 0;
}

static void serve_usage(FILE *f)
{
	fprintf(f,
		"usage: blkcache serve --cache DEV --origin DEV [--socket PATH] [--tcp ADDR:PORT]\n"
		"                      [--control PATH] [--metrics ADDR:PORT]\n"
		"\n"
		"Open a formatted cache, recover it, and export cache+origin over NBD until\n"
		"SIGTERM/SIGINT, then shut down cleanly (everything written, superblock clean).\n"
		"\n"
		"  --cache DEV             cache device formatted with 'blkcache format'\n"
		"  --origin DEV            its origin device\n"
		"  --socket PATH           NBD unix socket (mode 0600)\n"
		"  --tcp ADDR:PORT         NBD over TCP (ADDR defaults to 127.0.0.1)\n"
		"  --control PATH          control socket for status, flush, detach, get, set and\n"
		"                          mode (default %s)\n"
		"  --metrics ADDR:PORT     Prometheus metrics over HTTP at /metrics (ADDR\n"
		"                          defaults to 127.0.0.1)\n"
		"  --export-name NAME      export name (default \"blkcache\"; \"\" is always accepted)\n"
		"  --buffers N             RAM segment buffers (default 8)\n"
		"  --flush-deadline-us US  FLUSH/FUA batching deadline (default 2000)\n"
		"  --origin-moved          accept an origin of the recorded size whose identity\n"
		"                          (path, serial) differs from the one the cache recorded\n"
		"                          -- you moved or renamed it -- and record the new one\n"
		"  --set NAME=VALUE        set a tunable before serving (repeatable; see\n"
		"                          'blkcache get' for names)\n"
		"  --verbose               debug logging\n"
		"If neither --socket nor --tcp is given, --tcp 127.0.0.1:10809 is used.\n",
		cli_default_control());
}

int cmd_serve(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cache", required_argument, NULL, 'c' },
		{ "origin", required_argument, NULL, 'o' },
		{ "socket", required_argument, NULL, 's' },
		{ "tcp", required_argument, NULL, 't' },
		{ "control", required_argument, NULL, 'C' },
		{ "metrics", required_argument, NULL, 'm' },
		{ "export-name", required_argument, NULL, 'n' },
		{ "buffers", required_argument, NULL, 'b' },
		{ "flush-deadline-us", required_argument, NULL, 'd' },
		{ "set", required_argument, NULL, 'S' },
		{ "origin-moved", no_argument, NULL, 'M' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct bc_engine_config ecfg = { 0 };
	struct bc_nbd_config ncfg = { .export_name = "blkcache" };
	const char *control = cli_default_control(), *metrics_addr = NULL;
	struct bc_metrics *metrics = NULL;
	struct bc_engine_stats st;
	bool detached = false;
	struct bc_nbd_server *srv = NULL;
	struct bc_control *ctl = NULL;
	struct bc_engine *engine = NULL;
	struct bc_control_src src;
	struct bc_loop *loop = NULL;
	struct sigaction sa;
	char why[512];
	int c, ret, verbose = 0, status = 1, loop_failed = 0;
	uint64_t v;
	struct serve_set sets[MAX_SETS];
	unsigned nsets = 0, i;

	while ((c = getopt_long(argc, argv, "c:o:s:t:C:m:n:b:d:S:Mvh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': ecfg.cache_path = optarg; break;
		case 'o': ecfg.origin_path = optarg; break;
		case 's': ncfg.unix_path = optarg; break;
		case 't': ncfg.tcp_addr = optarg; break;
		case 'C': control = optarg; break;
		case 'm': {
			char host[256], port[8];

			if (bc_tcp_parse_hostport(optarg, host, sizeof(host), port,
					       sizeof(port)) < 0) {
				cli_err("serve: --metrics '%s' is not [ADDR:]PORT (e.g. 9100, "
					"127.0.0.1:9100, [::1]:9100)", optarg);
				return 2;
			}
			metrics_addr = optarg;
			break;
		}
		case 'n': ncfg.export_name = optarg; break;
		case 'b':
			if (bc_parse_size(optarg, &v) || v < 2 || v > 1024) {
				cli_err("serve: --buffers must be a number from 2 to 1024");
				return 2;
			}
			ecfg.nr_buffers = (unsigned)v;
			break;
		case 'd':
			if (bc_parse_size(optarg, &v) || v < 1 || v > 10000000) {
				cli_err("serve: --flush-deadline-us must be from 1 to 10000000");
				return 2;
			}
			ecfg.flush_deadline_us = v;
			break;
		case 'S':
			if (nsets == MAX_SETS) {
				cli_err("serve: at most %u --set options", MAX_SETS);
				return 2;
			}
			if (parse_set(optarg, &sets[nsets]))
				return 2;
			nsets++;
			break;
		case 'M': ecfg.origin_moved = true; break;
		case 'v': verbose = 1; break;
		case 'h': serve_usage(stdout); return 0;
		default: serve_usage(stderr); return 2;
		}
	}
	if (!ecfg.cache_path || !ecfg.origin_path || optind != argc) {
		cli_err("serve: --cache and --origin are required");
		serve_usage(stderr);
		return 2;
	}
	if (!ncfg.unix_path && !ncfg.tcp_addr)
		ncfg.tcp_addr = "127.0.0.1:10809";
	cli_log_to_stderr(verbose);
	signal(SIGPIPE, SIG_IGN);
	ret = bc_loop_new(&loop, 1024);
	if (ret < 0) {
		cli_err("serve: cannot set up io_uring: %s", strerror(-ret));
		return 1;
	}
	ret = bc_engine_open(&engine, loop, &ecfg, why, sizeof(why));
	if (ret < 0) {
		cli_err("serve: %s", why);
		goto out;
	}
	for (i = 0; i < nsets; i++) {
		ret = bc_engine_set(engine, sets[i].name, sets[i].value, why, sizeof(why));
		if (ret < 0) {
			cli_err("serve: --set %s: %s", sets[i].name, why);
			goto out;
		}
	}
	ret = bc_nbd_server_new(&srv, loop, bc_engine_target(engine), &ncfg);
	if (ret < 0) {
		cli_err("serve: cannot listen on %s%s%s: %s", ncfg.unix_path ? ncfg.unix_path : "",
			ncfg.unix_path && ncfg.tcp_addr ? " / " : "", ncfg.tcp_addr ? ncfg.tcp_addr : "",
			strerror(-ret));
		goto out;
	}
	src = (struct bc_control_src){ .engine = engine, .nbd = srv,
					.cache_path = ecfg.cache_path, .origin_path = ecfg.origin_path };
	ret = bc_control_open(&ctl, loop, control, &src, why, sizeof(why));
	if (ret < 0) {
		cli_err("serve: %s", why);
		goto out;
	}
	if (metrics_addr) {
		ret = bc_metrics_open(&metrics, loop, metrics_addr, &src, why, sizeof(why));
		if (ret < 0) {
			cli_err("serve: %s", why);
			goto out;
		}
	}
	sig_loop = loop;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: the io_uring wait returns */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	fprintf(stderr, "%s: serving %s (cache %s) on %s%s%s; control %s\n", bc_prog,
		ecfg.origin_path, ecfg.cache_path, ncfg.unix_path ? ncfg.unix_path : "",
		ncfg.unix_path && ncfg.tcp_addr ? " and " : "", ncfg.tcp_addr ? ncfg.tcp_addr : "",
		control);
	while (!bc_loop_stopping(loop)) {
		ret = bc_loop_run_once(loop, 1000);
		if (ret < 0 && ret != -EINTR) {
			cli_err("serve: event loop failed: %s", strerror(-ret));
			loop_failed = 1;
			break;
		}
	}
	fprintf(stderr, "%s: shutting down\n", bc_prog);
	bc_nbd_server_shutdown(srv);
	while (!bc_nbd_server_idle(srv))
		bc_loop_run_once(loop, 100);
	status = loop_failed;
out:
	/* Nothing may ask the engine for anything once it is closing. */
	bc_control_shutdown(ctl);
	bc_metrics_close(metrics);
	if (srv)
		bc_nbd_server_free(srv);
	if (engine) {
		bc_engine_get_stats(engine, &st);
		detached = st.detached;
		ret = bc_engine_close(engine);
		if (ret < 0) {
			cli_err("serve: clean shutdown failed: %s; the cache will be recovered at the "
				"next start", strerror(-ret));
			status = 1;
		} else if (status == 0) {
			if (detached)
				fprintf(stderr, "%s: cache %s is detached; origin %s is complete and "
					"can be used without blkcache\n", bc_prog, ecfg.cache_path,
					ecfg.origin_path);
			fprintf(stderr, "%s: clean shutdown complete\n", bc_prog);
		}
	}
	/* After the engine: a drain it never completed is freed only now. */
	bc_control_close(ctl);
	bc_loop_free(loop);
	return status;
}
