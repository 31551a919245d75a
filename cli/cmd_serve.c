/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blkcache/ublk.h"
#include "serve.h"
#include "sockutil.h"

static struct bc_loop *sig_loop;

static void on_signal(int sig)
{
	(void)sig;
	if (sig_loop)
		bc_loop_stop(sig_loop);
}

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
		"usage: blkcache serve --cache DEV [--origin DEV] [--name NAME] [--socket PATH]\n"
		"                      [--tcp ADDR:PORT] [--ublk[=ID]] [--control PATH]\n"
		"                      [--metrics ADDR:PORT]\n"
		"\n"
		"Open a formatted cache, recover it, and export every origin it caches over NBD\n"
		"(one export per origin, named after it) until SIGTERM/SIGINT, then shut down\n"
		"cleanly (everything written, superblock clean).\n"
		"\n"
		"  --cache DEV             cache device formatted with 'blkcache format'\n"
		"  --origin DEV            the device of its origin (needed for a cache of format\n"
		"                          version 1 or 2; else the path each origin recorded)\n"
		"  --name NAME             serve only this origin of the cache\n"
		"  --socket PATH           NBD unix socket (mode 0600)\n"
		"  --tcp ADDR:PORT         NBD over TCP (ADDR defaults to 127.0.0.1)\n"
		"  --ublk[=ID]             also a kernel block device /dev/ublkbID (ublk_drv) per\n"
		"                          origin (ID, ID+1, ...); a device ID left by a server\n"
		"                          that died is taken over, its IO in flight reissued\n"
		"  --staged-acks[=DIR]     acknowledge writes from RAM segment buffers kept in a\n"
		"                          file on tmpfs (DIR, default /dev/shm): as fast as\n"
		"                          buffered acks, and a server killed and started\n"
		"                          again replays them (the default with --ublk when\n"
		"                          /dev/shm is a writable tmpfs)\n"
		"  --written-acks          acknowledge writes only once they are on the cache\n"
		"                          device (the default with --ublk without /dev/shm)\n"
		"  --buffered-acks         acknowledge writes from plain RAM (the default over\n"
		"                          NBD alone; with --ublk, a server killed under a\n"
		"                          mounted filesystem then loses writes it acknowledged)\n"
		"  --control PATH          control socket for status, flush, detach, get, set and\n"
		"                          mode (default %s)\n"
		"  --metrics ADDR:PORT     Prometheus metrics over HTTP at /metrics (ADDR\n"
		"                          defaults to 127.0.0.1)\n"
		"  --export-name NAME      export name when the cache serves one origin (default:\n"
		"                          its name, \"blkcache\" unless named; \"\" always selects\n"
		"                          the first origin)\n"
		"  --buffers N             RAM segment buffers (default 8)\n"
		"  --flush-deadline-us US  FLUSH/FUA batching deadline (default 2000)\n"
		"  --origin-moved          accept an origin of the recorded size whose identity\n"
		"                          (path, serial) differs from the one the cache recorded\n"
		"                          -- you moved or renamed it -- and record the new one\n"
		"  --set NAME=VALUE        set a tunable before serving (repeatable; see\n"
		"                          'blkcache get' for names)\n"
		"  --verbose               debug logging\n"
		"If neither --socket, --tcp nor --ublk is given, --tcp 127.0.0.1:10809 is used.\n",
		cli_default_control());
}

/* Returned by the option parsers when serving should go on. */
#define SERVE_GO (-1)

/* One option from getopt_long(): SERVE_GO, or the exit status. */
static int serve_apply_opt(struct serve_opts *o, int c, char *arg)
{
	uint64_t v;

	switch (c) {
	case 'c': o->ecfg.cache_path = arg; break;
	case 'o': o->ecfg.origin_path = arg; break;
	case 's': o->ncfg.unix_path = arg; break;
	case 't': o->ncfg.tcp_addr = arg; break;
	case 'C': o->control = arg; break;
	case 'm': {
		char host[256], port[8];

		if (bc_tcp_parse_hostport(arg, host, sizeof(host), port, sizeof(port)) < 0) {
			cli_err("serve: --metrics '%s' is not [ADDR:]PORT (e.g. 9100, "
				"127.0.0.1:9100, [::1]:9100)", arg);
			return 2;
		}
		o->metrics_addr = arg;
		break;
	}
	case 'n':
		o->ncfg.export_name = arg;
		o->export_name_given = true;
		break;
	case 'N': o->ecfg.origin_name = arg; break;
	case 'b':
		if (bc_parse_size(arg, &v) || v < 2 || v > 1024) {
			cli_err("serve: --buffers must be a number from 2 to 1024");
			return 2;
		}
		o->ecfg.nr_buffers = (unsigned)v;
		break;
	case 'd':
		if (bc_parse_size(arg, &v) || v < 1 || v > 10000000) {
			cli_err("serve: --flush-deadline-us must be from 1 to 10000000");
			return 2;
		}
		o->ecfg.flush_deadline_us = v;
		break;
	case 'S':
		if (o->nsets == MAX_SETS) {
			cli_err("serve: at most %u --set options", MAX_SETS);
			return 2;
		}
		if (parse_set(arg, &o->sets[o->nsets]))
			return 2;
		o->nsets++;
		break;
	case 'M': o->ecfg.origin_moved = true; break;
	case 'A': o->buffered_acks = true; break;
	case 'W': o->written_acks = true; break;
	case 'G':
		o->staged_acks = true;
		o->ecfg.staging_dir = arg ? arg : BC_STAGING_DIR_DEFAULT;
		break;
	case 'U':
		o->ublk = true;
		if (arg && (bc_parse_size(arg, &v) || v > 1000000)) {
			cli_err("serve: --ublk=ID wants a device number (e.g. --ublk=0 for "
				"/dev/ublkb0)");
			return 2;
		}
		o->ucfg.dev_id = arg ? (int)v : -1;
		break;
	case 'v': o->verbose = 1; break;
	case 'h': serve_usage(stdout); return 0;
	default: serve_usage(stderr); return 2;
	}
	return SERVE_GO;
}

/* The whole command line into *o: SERVE_GO, or the exit status. */
static int serve_parse_args(int argc, char **argv, struct serve_opts *o)
{
	static const struct option opts[] = {
		{ "cache", required_argument, NULL, 'c' },
		{ "origin", required_argument, NULL, 'o' },
		{ "socket", required_argument, NULL, 's' },
		{ "tcp", required_argument, NULL, 't' },
		{ "control", required_argument, NULL, 'C' },
		{ "metrics", required_argument, NULL, 'm' },
		{ "export-name", required_argument, NULL, 'n' },
		{ "name", required_argument, NULL, 'N' },
		{ "buffers", required_argument, NULL, 'b' },
		{ "flush-deadline-us", required_argument, NULL, 'd' },
		{ "set", required_argument, NULL, 'S' },
		{ "origin-moved", no_argument, NULL, 'M' },
		{ "ublk", optional_argument, NULL, 'U' },
		{ "buffered-acks", no_argument, NULL, 'A' },
		{ "written-acks", no_argument, NULL, 'W' },
		{ "staged-acks", optional_argument, NULL, 'G' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c, ret;

	memset(o, 0, sizeof(*o));
	o->ncfg.export_name = "blkcache";
	o->control = cli_default_control();
	while ((c = getopt_long(argc, argv, "c:o:s:t:C:m:n:b:d:S:Mvh", opts, NULL)) != -1) {
		ret = serve_apply_opt(o, c, optarg);
		if (ret != SERVE_GO)
			return ret;
	}
	if (!o->ecfg.cache_path || optind != argc) {
		cli_err("serve: --cache is required");
		serve_usage(stderr);
		return 2;
	}
	if (!o->ncfg.unix_path && !o->ncfg.tcp_addr && !o->ublk)
		o->ncfg.tcp_addr = "127.0.0.1:10809";
	/* A restarted server takes its device over, under a mounted filesystem:
	 * nothing it acknowledged may be only in RAM when it dies. */
	o->ucfg.recovery = o->ublk;
	if (o->buffered_acks + o->written_acks + o->staged_acks > 1) {
		cli_err("serve: --buffered-acks, --written-acks and --staged-acks contradict each "
			"other: pick one");
		return 2;
	}
	o->ecfg.written_acks = o->written_acks;
	if (o->ublk && !o->buffered_acks && !o->written_acks && !o->staged_acks) {
		char why[256];

		/* Without a writable tmpfs there, written acks.  Persistent
		 * memory: written acks (a round per batch of writes, at memory
		 * speed; staging in RAM would only add a copy). */
		if (strncmp(o->ecfg.cache_path, "pmem:", 5) &&
		    bc_staging_dir_check(BC_STAGING_DIR_DEFAULT, why, sizeof(why)) == 0)
			o->ecfg.staging_dir = BC_STAGING_DIR_DEFAULT;
		else
			o->ecfg.written_acks = true;
	}
	return SERVE_GO;
}

/* Open (and recover) the cache and every origin's engine. */
static int serve_open_cache(struct serve_state *st, const struct serve_opts *o)
{
	char why[1024];
	int ret;

	ret = bc_cache_open(&st->cache, st->loop, &o->ecfg, why, sizeof(why));
	if (ret < 0)
		cli_err("serve: %s", why);
	return ret;
}

/* The NBD server, each origin's export and ublk device, the control
 * socket and, if asked for, the metrics. */
static int serve_start_frontends(struct serve_state *st, const struct serve_opts *o)
{
	const struct bc_nbd_config *ncfg = &o->ncfg;
	char why[512];
	unsigned i;
	int ret;

	if (ncfg->unix_path || ncfg->tcp_addr) {
		ret = bc_nbd_server_new(&st->srv, st->loop, NULL, ncfg);
		if (ret < 0) {
			cli_err("serve: cannot listen on %s%s%s: %s",
				ncfg->unix_path ? ncfg->unix_path : "",
				ncfg->unix_path && ncfg->tcp_addr ? " / " : "",
				ncfg->tcp_addr ? ncfg->tcp_addr : "", strerror(-ret));
			return ret;
		}
	}
	for (i = 0; i < bc_cache_count(st->cache); i++) {
		ret = serve_origin_start(st, bc_cache_engine(st->cache, i));
		if (ret < 0)
			return ret;
	}
	st->src = (struct bc_control_src){ .origins = &st->origins, .nbd = st->srv,
					   .cache_path = o->ecfg.cache_path,
					   .cache_persistence = bc_dev_describe(bc_cache_device(st->cache)),
					   .attach = serve_attach, .detached = serve_detached,
					   .host = st };
	ret = bc_control_open(&st->ctl, st->loop, o->control, &st->src, why, sizeof(why));
	if (ret < 0) {
		cli_err("serve: %s", why);
		return ret;
	}
	if (o->metrics_addr) {
		ret = bc_metrics_open(&st->metrics, st->loop, o->metrics_addr, &st->src, why,
				      sizeof(why));
		if (ret < 0) {
			cli_err("serve: %s", why);
			return ret;
		}
	}
	return 0;
}

/* SIGTERM and SIGINT stop the loop. */
static void serve_catch_signals(struct bc_loop *loop)
{
	struct sigaction sa;

	sig_loop = loop;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: the io_uring wait returns */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

/* "ORIGIN" for one origin, "N origins ('a', 'b')" for several. */
static void describe_origins(const struct serve_state *st, char *buf, size_t len)
{
	size_t used = 0;
	unsigned i, n = bc_cache_count(st->cache);
	int k;

	if (n == 1) {
		snprintf(buf, len, "%s", bc_engine_origin_path(bc_cache_engine(st->cache, 0)));
		return;
	}
	k = snprintf(buf, len, "%u origins (", n);
	used = k > 0 ? (size_t)k : 0;
	for (i = 0; i < n && used < len; i++) {
		k = snprintf(buf + used, len - used, "%s'%s'", i ? ", " : "",
			     bc_engine_name(bc_cache_engine(st->cache, i)));
		used += k > 0 ? (size_t)k : 0;
	}
	if (used < len)
		snprintf(buf + used, len - used, ")");
}

static void say_serving(const struct serve_state *st, const struct serve_opts *o)
{
	const struct bc_nbd_config *ncfg = &o->ncfg;
	char what[1024], ublk[256] = "";
	size_t used = 0;
	unsigned i;
	int k;

	describe_origins(st, what, sizeof(what));
	for (i = 0; i < st->origins.n && used < sizeof(ublk); i++) {
		if (!st->origins.o[i].ublk)
			continue;
		k = snprintf(ublk + used, sizeof(ublk) - used, "%s/dev/ublkb%d",
			     used || st->srv ? " and " : "", bc_ublk_dev_id(st->origins.o[i].ublk));
		used += k > 0 ? (size_t)k : 0;
	}
	const char *pers = bc_dev_describe(bc_cache_device(st->cache));

	fprintf(stderr, "%s: serving %s (cache %s%s%s) on %s%s%s%s; control %s; write acks %s%s\n",
		bc_prog, what, o->ecfg.cache_path, pers ? ": " : "", pers ? pers : "",
		ncfg->unix_path ? ncfg->unix_path : "", ncfg->unix_path && ncfg->tcp_addr ? " and " : "",
		ncfg->tcp_addr ? ncfg->tcp_addr : "", ublk, o->control,
		o->ecfg.staging_dir ? "staged in " : o->ecfg.written_acks ? "written" : "buffered",
		o->ecfg.staging_dir ? o->ecfg.staging_dir : "");
	if (!bc_cache_count(st->cache))
		fprintf(stderr, "%s: the cache serves no origin yet: attach one with 'blkcache "
			"attach NAME DEV'\n", bc_prog);
}

/* Serve until stopped, then drain the frontends: the exit status. */
static int serve_run(struct serve_state *st, const struct serve_opts *o)
{
	int ret, loop_failed = 0;

	serve_catch_signals(st->loop);
	say_serving(st, o);
	while (!bc_loop_stopping(st->loop)) {
		ret = bc_loop_run_once(st->loop, 1000);
		if (ret < 0 && ret != -EINTR) {
			cli_err("serve: event loop failed: %s", strerror(-ret));
			loop_failed = 1;
			break;
		}
	}
	fprintf(stderr, "%s: shutting down\n", bc_prog);
	return loop_failed;
}

/* Close whatever is open, the engines cleanly: the final exit status. */
static int serve_shutdown(struct serve_state *st, const struct serve_opts *o, int status)
{
	struct bc_engine_stats es;
	struct bc_engine *e;
	int ret;

	/* Nothing may ask an engine for anything once it is closing. */
	bc_control_shutdown(st->ctl);
	bc_metrics_close(st->metrics);
	while (st->origins.n)
		serve_origin_stop(st, st->origins.o[st->origins.n - 1].engine);
	if (st->srv) {
		bc_nbd_server_shutdown(st->srv);
		while (!bc_nbd_server_idle(st->srv))
			bc_loop_run_once(st->loop, 100);
		bc_nbd_server_free(st->srv);
	}
	while (st->cache && (e = bc_cache_engine(st->cache, 0))) {
		bc_engine_get_stats(e, &es);
		if (es.detached && status == 0)
			fprintf(stderr, "%s: origin '%s' is detached; origin %s is complete and can be "
				"used without blkcache\n", bc_prog, bc_engine_name(e),
				bc_engine_origin_path(e));
		ret = bc_cache_remove(st->cache, e);
		if (ret < 0) {
			cli_err("serve: clean shutdown failed: %s; the cache will be recovered at the "
				"next start", strerror(-ret));
			status = 1;
		}
	}
	if (st->cache) {
		bc_cache_close(st->cache);
		if (status == 0)
			fprintf(stderr, "%s: clean shutdown complete\n", bc_prog);
	}
	(void)o;
	/* After the engines: a drain never completed is freed only now. */
	bc_control_close(st->ctl);
	bc_loop_free(st->loop);
	return status;
}

int cmd_serve(int argc, char **argv)
{
	struct serve_opts o;
	struct serve_state st = { 0 };
	int ret, status = 1;

	ret = serve_parse_args(argc, argv, &o);
	if (ret != SERVE_GO)
		return ret;
	st.o = &o;
	cli_log_to_stderr(o.verbose);
	signal(SIGPIPE, SIG_IGN);
	ret = bc_loop_new(&st.loop, 1024);
	if (ret < 0) {
		cli_err("serve: cannot set up io_uring: %s", strerror(-ret));
		return 1;
	}
	if (serve_open_cache(&st, &o) == 0 && serve_start_frontends(&st, &o) == 0)
		status = serve_run(&st, &o);
	return serve_shutdown(&st, &o, status);
}
