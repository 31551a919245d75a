/* SPDX-License-Identifier: BSD-3-Clause */
/* blkcache serve: its options and running state (cmd_serve.c), and the
 * frontends of each origin it serves, started and stopped live
 * (serve_origins.c). */
#ifndef BC_CLI_SERVE_H
#define BC_CLI_SERVE_H

#include <stdbool.h>

#include "blkcache/cache.h"
#include "cli.h"

#define MAX_SETS 32

struct serve_set {
	char name[64];
	uint64_t value;
};

/* What the command line asked for. */
struct serve_opts {
	struct bc_engine_config ecfg;
	struct bc_nbd_config ncfg;
	bool export_name_given;
	bool ublk, buffered_acks, written_acks, staged_acks;
	struct bc_ublk_config ucfg;
	const char *control, *metrics_addr;
	int verbose;
	struct serve_set sets[MAX_SETS];
	unsigned nsets;
};

/* What is running; everything NULL until opened. */
struct serve_state {
	const struct serve_opts *o;
	struct bc_loop *loop;
	struct bc_cache *cache;
	struct bc_nbd_server *srv;  /* NULL: no NBD listener */
	struct bc_control *ctl;
	struct bc_metrics *metrics;
	unsigned started;           /* origins started so far (ublk numbering) */
	struct bc_control_origins origins; /* served: what control and metrics report */
	struct bc_control_src src;  /* referred to by the control and metrics servers */
};

/* Start serving engine @e: the --set tunables, its NBD export, its ublk
 * device.  0, or -errno after printing why. */
int serve_origin_start(struct serve_state *st, struct bc_engine *e);
/* Stop serving engine @e (frontends done with it); it stays open. */
void serve_origin_stop(struct serve_state *st, struct bc_engine *e);
/* The control socket's hooks (struct bc_control_src). */
int serve_attach(void *host, const char *name, const char *origin_path, const char *size,
		 char *why, size_t whylen);
void serve_detached(void *host, struct bc_engine *e);

#endif
