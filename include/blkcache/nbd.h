/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NBD server frontend: exports bc_targets over unix and/or TCP sockets.
 * Each export is a name and a target; exports can be added and removed
 * while the server runs.  All calls are made from the server's loop thread
 * (an export's connections may run on other loops: see
 * bc_nbd_server_add_export_spread).
 */
#ifndef BLKCACHE_NBD_H
#define BLKCACHE_NBD_H

#include <stdint.h>

#include "blkcache/loop.h"
#include "blkcache/target.h"

struct bc_nbd_server;

struct bc_nbd_config {
	const char *unix_path;   /* NULL: no unix socket; created mode 0600 */
	const char *tcp_addr;    /* "HOST:PORT" or NULL; HOST 127.0.0.1 by default */
	/* The export bc_nbd_server_new() creates for its target (ignored
	 * without one): name answered to LIST and accepted by GO (NULL: ""),
	 * and its NBD_INFO_DESCRIPTION (may be NULL). */
	const char *export_name;
	const char *description;
	unsigned max_inflight;   /* requests in flight per connection (0: 128) */
};

struct bc_nbd_stats {
	uint64_t connections_total;
	uint32_t connections_open;
	uint64_t requests;
	uint64_t protocol_errors; /* connections closed for malformed data */
	uint64_t connections_moved; /* run on another loop than the server's
				     * (bc_nbd_server_add_export_spread) */
};

/* A server listening on @cfg's sockets.  With a @target it starts with one
 * export, cfg->export_name; with @target NULL, with none (add them with
 * bc_nbd_server_add_export()). */
int bc_nbd_server_new(struct bc_nbd_server **out, struct bc_loop *loop,
		      const struct bc_target *target, const struct bc_nbd_config *cfg);

/*
 * Offer @target as export @name (at most 4096 bytes; @description, sent as
 * NBD_INFO_DESCRIPTION, may be NULL), listed after the exports already
 * there.  A client asking for "" gets the export named "" if there is one,
 * else the default export: the first one added that is still offered.
 * After the export's removal its target may be called until
 * bc_nbd_server_export_conns() reports no connection for it (after
 * bc_nbd_server_free(), until the requests it holds have completed).
 * 0, -EEXIST (an export has that name), -EINVAL (bad name, description or
 * target block sizes) or -ENOMEM.
 */
int bc_nbd_server_add_export(struct bc_nbd_server *srv, const char *name,
			     const char *description, const struct bc_target *target);
/*
 * As bc_nbd_server_add_export(), with the export's connections spread
 * over @places (1 to BC_TARGET_MAX_PLACES, views of one device: a shard
 * set's hosts, place 0 usually the server's own loop): each new
 * connection takes the next place in turn, and one placed on another loop
 * than the server's moves there once its handshake is done -- that loop
 * then runs its socket and requests.  Every place's loop must run until
 * bc_nbd_server_export_conns() reports no connection for the export (at
 * the latest until bc_nbd_server_idle() after a shutdown).
 */
int bc_nbd_server_add_export_spread(struct bc_nbd_server *srv, const char *name,
				    const char *description, const struct bc_target_place *places,
				    unsigned n);
/*
 * Stop offering export @name: new connections cannot choose it; those
 * bound to it close like at bc_nbd_server_shutdown() (requests in flight
 * are answered first; after a grace period they are closed hard).  0 or
 * -ENOENT.
 */
int bc_nbd_server_remove_export(struct bc_nbd_server *srv, const char *name);
/* Connections bound to export @name, including those still draining from
 * it after its removal (while any is, its target may still be called). */
unsigned bc_nbd_server_export_conns(const struct bc_nbd_server *srv, const char *name);

/* Stop accepting; close connections once their in-flight requests finish.
 * bc_nbd_server_idle() turns true when nothing is left. */
void bc_nbd_server_shutdown(struct bc_nbd_server *srv);
int bc_nbd_server_idle(const struct bc_nbd_server *srv);
void bc_nbd_server_stats(const struct bc_nbd_server *srv, struct bc_nbd_stats *st);
void bc_nbd_server_free(struct bc_nbd_server *srv);

#endif
