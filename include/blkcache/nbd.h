/* SPDX-License-Identifier: BSD-3-Clause */
/* NBD server frontend: exports one bc_target over unix and/or TCP sockets. */
#ifndef BLKCACHE_NBD_H
#define BLKCACHE_NBD_H

#include <stdint.h>

#include "blkcache/loop.h"
#include "blkcache/target.h"

struct bc_nbd_server;

struct bc_nbd_config {
	const char *unix_path;   /* NULL: no unix socket; created mode 0600 */
	const char *tcp_addr;    /* "HOST:PORT" or NULL; HOST 127.0.0.1 by default */
	const char *export_name; /* name answered to LIST and accepted by GO ("" always accepted) */
	const char *description; /* NBD_INFO_DESCRIPTION, may be NULL */
	unsigned max_inflight;   /* requests in flight per connection (0: 128) */
};

struct bc_nbd_stats {
	uint64_t connections_total;
	uint32_t connections_open;
	uint64_t requests;
	uint64_t protocol_errors; /* connections closed for malformed data */
};

int bc_nbd_server_new(struct bc_nbd_server **out, struct bc_loop *loop,
		      const struct bc_target *target, const struct bc_nbd_config *cfg);
/* Stop accepting; close connections once their in-flight requests finish.
 * bc_nbd_server_idle() turns true when nothing is left. */
void bc_nbd_server_shutdown(struct bc_nbd_server *srv);
int bc_nbd_server_idle(const struct bc_nbd_server *srv);
void bc_nbd_server_stats(const struct bc_nbd_server *srv, struct bc_nbd_stats *st);
void bc_nbd_server_free(struct bc_nbd_server *srv);

#endif
