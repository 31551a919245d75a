/* SPDX-License-Identifier: BSD-3-Clause */
/* Listening sockets: a unix socket (mode 0600) and TCP "HOST:PORT". */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "sockutil.h"

#include "blkcache/log.h"
#include "internal.h"

#define LISTEN_BACKLOG 128
#define DEFAULT_HOST "127.0.0.1"

int bc_nbd_listen_tcp(const char *addr, int *fds, unsigned max, unsigned *n_out)
{
	int r = bc_tcp_listen(addr, fds, max, n_out);

	if (r == -EINVAL)
		bc_log(BC_LOG_ERR, "nbd: bad TCP address '%s' (want HOST:PORT)", addr);
	else if (r < 0)
		bc_log(BC_LOG_ERR, "nbd: cannot listen on %s: %s", addr, strerror(-r));
	else
		bc_log(BC_LOG_INFO, "nbd: listening on tcp %s", addr);
	return r;
}

/* A socket file at @path: remove it if nobody is listening there. */
static int remove_stale(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	/* A live NBD server greets at once; a dying one never does. */
	if (bc_unix_socket_live(path, NULL, 1000))
		return -EADDRINUSE;
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int bc_nbd_listen_unix(const char *path, int *fd_out, dev_t *dev, ino_t *ino)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd, r;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		bc_log(BC_LOG_ERR, "nbd: socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	strcpy(sun.sun_path, path);

	r = remove_stale(path);
	if (r < 0) {
		bc_log(BC_LOG_ERR, "nbd: %s: %s", path, strerror(-r));
		return r;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (const struct sockaddr *)&sun, sizeof(sun)) < 0) {
		r = -errno;
		goto err_close;
	}
	/* Restrict access before anyone can connect (not listening yet). */
	if (chmod(path, 0600) < 0 || stat(path, &st) < 0) {
		r = -errno;
		goto err_unlink;
	}
	if (listen(fd, LISTEN_BACKLOG) < 0) {
		r = -errno;
		goto err_unlink;
	}
	*dev = st.st_dev;
	*ino = st.st_ino;
	*fd_out = fd;
	bc_log(BC_LOG_INFO, "nbd: listening on unix %s", path);
	return 0;

err_unlink:
	unlink(path);
err_close:
	close(fd);
	bc_log(BC_LOG_ERR, "nbd: cannot listen on %s: %s", path, strerror(-r));
	return r;
}
