/* SPDX-License-Identifier: BSD-3-Clause */
/* Unix-socket helpers shared by the NBD frontend and the control socket. */
#ifndef BLKCACHE_SOCKUTIL_H
#define BLKCACHE_SOCKUTIL_H

/*
 * Is a server really answering on the unix socket at @path?  Connects, sends
 * @probe (may be NULL) and waits up to @timeout_ms for any reply byte.  A
 * socket whose owner died still accepts connections for a moment (io_uring
 * tears down asynchronously) but never answers: that counts as stale.
 * Returns 1 if live, 0 if nothing answers (stale or absent).
 */
int bc_unix_socket_live(const char *path, const char *probe, int timeout_ms);

#endif
