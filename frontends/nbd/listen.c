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

#include "blkcache/sockutil.h"

#include "blkcache/log.h"
#include "internal.h"

#define LISTEN_BACKLOG 128
#define DEFAULT_HOST "127.0.0.1"

static int copy_str(char *dst, size_t cap, const char *src, size_t len)
{
	if (len >= cap)
		return -ENAMETOOLONG;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return 0;
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

int bc_nbd_parse_hostport(const char *addr, char *host, size_t host_len,
			  char *port, size_t port_len)
{
	const char *colon, *p;
	int r;

	if (!addr || !*addr)
		return -EINVAL;
	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		r = copy_str(host, host_len, addr + 1, (size_t)(close - addr - 1));
		p = close + 2;
	} else {
		colon = strrchr(addr, ':');
		if (!colon) {
			/* just a port */
			r = copy_str(host, host_len, DEFAULT_HOST, strlen(DEFAULT_HOST));
			p = addr;
		} else {
			if (memchr(addr, ':', (size_t)(colon - addr)))
				return -EINVAL; /* IPv6 literals need brackets */
			if (colon == addr)
				r = copy_str(host, host_len, DEFAULT_HOST, strlen(DEFAULT_HOST));
			else
				r = copy_str(host, host_len, addr, (size_t)(colon - addr));
			p = colon + 1;
		}
	}
	if (r < 0)
		return r;
	if (!*host || !all_digits(p) || strlen(p) > 5 || atoi(p) > 65535)
		return -EINVAL;
	return copy_str(port, port_len, p, strlen(p));
}

int bc_nbd_listen_tcp(const char *addr, int *fds, unsigned max, unsigned *n_out)
{
	struct addrinfo hints, *res = NULL, *ai;
	char host[256], port[8];
	unsigned n = 0;
	int r, err = -EADDRNOTAVAIL;

	*n_out = 0;
	r = bc_nbd_parse_hostport(addr, host, sizeof(host), port, sizeof(port));
	if (r < 0) {
		bc_log(BC_LOG_ERR, "nbd: bad TCP address '%s' (want HOST:PORT)", addr);
		return r;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	r = getaddrinfo(host, port, &hints, &res);
	if (r != 0) {
		bc_log(BC_LOG_ERR, "nbd: cannot resolve '%s': %s", host, gai_strerror(r));
		return -EADDRNOTAVAIL;
	}
	for (ai = res; ai && n < max; ai = ai->ai_next) {
		int one = 1;
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				ai->ai_protocol);

		if (fd < 0) {
			err = -errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
		    listen(fd, LISTEN_BACKLOG) < 0) {
			err = -errno;
			close(fd);
			continue;
		}
		fds[n++] = fd;
	}
	freeaddrinfo(res);
	if (n == 0) {
		bc_log(BC_LOG_ERR, "nbd: cannot listen on %s: %s", addr, strerror(-err));
		return err;
	}
	bc_log(BC_LOG_INFO, "nbd: listening on tcp %s", addr);
	*n_out = n;
	return 0;
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
