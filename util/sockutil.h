/* SPDX-License-Identifier: BSD-3-Clause */
/* Unix-socket helpers shared by the NBD frontend and the control socket. */
#ifndef BC_UTIL_SOCKUTIL_H
#define BC_UTIL_SOCKUTIL_H

#include <stddef.h>

/*
 * Is a server really answering on the unix socket at @path?  Connects, sends
 * @probe (may be NULL) and waits up to @timeout_ms for any reply byte.  A
 * socket whose owner died still accepts connections for a moment (io_uring
 * tears down asynchronously) but never answers: that counts as stale.
 * Returns 1 if live, 0 if nothing answers (stale or absent).
 */
int bc_unix_socket_live(const char *path, const char *probe, int timeout_ms);

/* Split "HOST:PORT", "[V6]:PORT", ":PORT" or "PORT" (host 127.0.0.1).
 * 0 or -EINVAL / -ENAMETOOLONG. */
int bc_tcp_parse_hostport(const char *addr, char *host, size_t host_len, char *port,
			  size_t port_len);
/* Listen (non-blocking, SO_REUSEADDR) on every address @addr resolves to,
 * at most @max; the descriptors go to @fds.  0, -EINVAL (bad address),
 * -EADDRNOTAVAIL (does not resolve) or the bind/listen error. */
int bc_tcp_listen(const char *addr, int *fds, unsigned max, unsigned *n_out);

#endif
