/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * blkcache serve: the frontends of each origin -- its NBD export (named
 * after it), its ublk device, its place in what the control socket and the
 * metrics report -- started when the cache opens or an origin is attached,
 * stopped when one is detached while the others keep serving.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blkcache/shards.h"
#include "blkcache/ublk.h"
#include "serve.h"

static struct bc_control_origin *find(struct serve_state *st, const struct bc_engine *e)
{
	unsigned i;

	for (i = 0; i < st->origins.n; i++)
		if (st->origins.o[i].engine == e)
			return &st->origins.o[i];
	return NULL;
}

/* The NBD export name: the origin's, or --export-name for a cache that
 * serves one origin (a format v1/v2 cache's is "blkcache"). */
static const char *export_name(const struct serve_state *st, struct bc_engine *e)
{
	if (st->o->export_name_given && bc_cache_count(st->cache) == 1)
		return st->o->ncfg.export_name;
	return bc_engine_name(e);
}

static int apply_sets(const struct serve_opts *o, const struct bc_control_origin *co)
{
	char why[512];
	unsigned i;
	int ret;

	for (i = 0; i < o->nsets; i++) {
		ret = bc_co_set(co, o->sets[i].name, o->sets[i].value, why, sizeof(why));
		if (ret < 0) {
			cli_err("serve: --set %s: %s", o->sets[i].name, why);
			return ret;
		}
	}
	return 0;
}

/* A sharded origin's places: its shards' threads, each submitting to the
 * set through the host it runs (0: not sharded, or one shard). */
static unsigned origin_places(struct serve_state *st, struct bc_engine *e,
			      struct bc_target_place *places)
{
	struct bc_shards *s = bc_cache_shards(st->cache, e);
	unsigned k, n = s ? bc_shards_host_count(s) : 0;

	if (n <= 1)
		return 0;
	if (n > BC_TARGET_MAX_PLACES)
		n = BC_TARGET_MAX_PLACES;
	for (k = 0; k < n; k++)
		places[k] = (struct bc_target_place){ .loop = bc_shards_host_loop(s, k),
						      .target = bc_shards_host_target(s, k) };
	return n;
}

/* Its ublk device: a sharded origin's has a queue per shard, each served on
 * that shard's thread. */
static int start_ublk(struct serve_state *st, struct bc_control_origin *co)
{
	struct bc_ublk_config ucfg = st->o->ucfg;
	struct bc_target_place places[BC_TARGET_MAX_PLACES];
	char why[512];
	int ret;

	/* --ublk=ID: the origins' devices are ID, ID+1, ... in table order. */
	if (ucfg.dev_id >= 0)
		ucfg.dev_id += (int)st->started;
	ucfg.nplaces = origin_places(st, co->engine, places);
	ucfg.places = places;
	ret = bc_ublk_start(&co->ublk, st->loop, bc_cache_target(st->cache, co->engine), &ucfg, why,
			    sizeof(why));
	if (ret < 0) {
		cli_err("serve: origin '%s': %s", bc_engine_name(co->engine), why);
		co->ublk = NULL;
		return ret;
	}
	printf("/dev/ublkb%d\n", bc_ublk_dev_id(co->ublk));
	fflush(stdout);
	return 0;
}

/* Its NBD export: a sharded origin's connections spread over its shards'
 * threads. */
static int add_export(struct serve_state *st, struct bc_engine *e)
{
	struct bc_target_place places[BC_TARGET_MAX_PLACES];
	unsigned n = origin_places(st, e, places);

	if (!n)
		return bc_nbd_server_add_export(st->srv, export_name(st, e), NULL,
						bc_cache_target(st->cache, e));
	return bc_nbd_server_add_export_spread(st->srv, export_name(st, e), NULL, places, n);
}

int serve_origin_start(struct serve_state *st, struct bc_engine *e)
{
	struct bc_control_origin *co;
	int ret;

	if (st->origins.n >= BC_CONTROL_MAX_ORIGINS)
		return -ENOSPC;
	co = &st->origins.o[st->origins.n];
	*co = (struct bc_control_origin){ .engine = e, .shards = bc_cache_shards(st->cache, e) };
	ret = apply_sets(st->o, co);
	if (ret < 0)
		return ret;
	if (st->srv) {
		ret = add_export(st, e);
		if (ret < 0) {
			cli_err("serve: origin '%s': cannot add its NBD export '%s': %s",
				bc_engine_name(e), export_name(st, e), ret == -EEXIST ?
				"an export of that name exists" : strerror(-ret));
			return ret;
		}
	}
	if (st->o->ublk) {
		ret = start_ublk(st, co);
		if (ret < 0) {
			if (st->srv)
				bc_nbd_server_remove_export(st->srv, export_name(st, e));
			return ret;
		}
	}
	st->started++;
	st->origins.n++;
	return 0;
}

#define STOP_REPORT_NS (10ull * 1000000000)

/* An origin that takes long to stop says what it waits for, every 10 s. */
static void stop_report(struct serve_state *st, struct bc_control_origin *co, const char *name,
			unsigned n)
{
	struct bc_ublk_stats us = { 0 };

	if (co->ublk)
		bc_ublk_stats(co->ublk, &us);
	cli_err("serve: origin '%s' still stopping after %u s: %u NBD connection(s), %s",
		name, n * (unsigned)(STOP_REPORT_NS / 1000000000),
		st->srv ? bc_nbd_server_export_conns(st->srv, name) : 0,
		!co->ublk ? "no ublk device" : us.stopped ? "ublk device stopped" :
		"ublk device not stopped yet (the kernel's STOP_DEV has not returned)");
	if (co->ublk)
		cli_err("serve: origin '%s': /dev/ublkb%d: %u request(s) in the cache, %u "
			"command(s) with the kernel", name, us.dev_id, us.inflight, us.armed);
}

void serve_origin_stop(struct serve_state *st, struct bc_engine *e)
{
	struct bc_control_origin *co = find(st, e);
	const char *name = bc_engine_name(e);
	unsigned reported = 0;
	uint64_t t0;

	if (!co)
		return;
	if (co->ublk)
		bc_ublk_shutdown(co->ublk);
	if (st->srv)
		bc_nbd_server_remove_export(st->srv, name);
	/* The engine closes next: nothing may still be submitting to it. */
	t0 = bc_now_ns();
	while ((st->srv && bc_nbd_server_export_conns(st->srv, name)) ||
	       (co->ublk && !bc_ublk_idle(co->ublk))) {
		bc_loop_run_once(st->loop, 100);
		if ((bc_now_ns() - t0) / STOP_REPORT_NS > reported)
			stop_report(st, co, name, ++reported);
	}
	if (co->ublk)
		bc_ublk_free(co->ublk);
	memmove(co, co + 1, (size_t)(st->origins.o + st->origins.n - co - 1) * sizeof(*co));
	st->origins.n--;
}

int serve_attach(void *host, const char *name, const char *origin_path, const char *size,
		 char *why, size_t whylen)
{
	struct serve_state *st = host;
	struct bc_format_config oc = { .name = name, .origin_path = origin_path };
	struct bc_engine *e;
	size_t n = size ? strlen(size) : 0;
	int ret;

	if (n && size[n - 1] == '%') {
		oc.size_percent = (uint32_t)strtoul(size, NULL, 10);
		if (!oc.size_percent || oc.size_percent > 100) {
			snprintf(why, whylen, "size '%s': a share is 1%% to 100%%", size);
			return -EINVAL;
		}
	} else if (n && bc_parse_size(size, &oc.size)) {
		snprintf(why, whylen, "size '%s' is not a size (e.g. 8G) or a share (e.g. 25%%)", size);
		return -EINVAL;
	}
	ret = bc_cache_attach(st->cache, &oc, &e, why, whylen);
	if (ret < 0)
		return ret;
	ret = serve_origin_start(st, e);
	if (ret < 0) {
		snprintf(why, whylen, "origin '%s' is attached to the cache but could not be served "
			 "(see the server's log); it is served at the next start", name);
		bc_cache_remove(st->cache, e);
		return ret;
	}
	fprintf(stderr, "%s: attached origin '%s' (%s)\n", bc_prog, name, origin_path);
	return 0;
}

void serve_detached(void *host, struct bc_engine *e)
{
	struct serve_state *st = host;
	char name[64];
	int ret;

	snprintf(name, sizeof(name), "%s", bc_engine_name(e));
	serve_origin_stop(st, e);
	ret = bc_cache_remove(st->cache, e);
	if (ret < 0)
		cli_err("serve: origin '%s': closing it after its detach failed: %s", name,
			strerror(-ret));
	else
		fprintf(stderr, "%s: origin '%s' is detached: its origin is complete and can be "
			"used without blkcache; its share of the cache is free\n", bc_prog, name);
}
