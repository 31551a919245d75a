/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sockutil.h"

int bc_unix_socket_live(const char *path, const char *probe, int timeout_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct pollfd pfd;
	char byte;
	int fd, live = 0;

	if (strlen(path) >= sizeof(sa.sun_path))
		return 0;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto out;
	if (probe && send(fd, probe, strlen(probe), MSG_NOSIGNAL) < 0)
		goto out;
	pfd.fd = fd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, timeout_ms) == 1 && recv(fd, &byte, 1, MSG_DONTWAIT) == 1)
		live = 1;
out:
	close(fd);
	return live;
}

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

int bc_tcp_parse_hostport(const char *addr, char *host, size_t host_len,
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

int bc_tcp_listen(const char *addr, int *fds, unsigned max, unsigned *n_out)
{
	struct addrinfo hints, *res = NULL, *ai;
	char host[256], port[8];
	unsigned n = 0;
	int r, err = -EADDRNOTAVAIL;

	*n_out = 0;
	r = bc_tcp_parse_hostport(addr, host, sizeof(host), port, sizeof(port));
	if (r < 0) {
		return r;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	r = getaddrinfo(host, port, &hints, &res);
	if (r != 0) {
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
		    listen(fd, 64) < 0) {
			err = -errno;
			close(fd);
			continue;
		}
		fds[n++] = fd;
	}
	freeaddrinfo(res);
	if (n == 0)
		return err;
	*n_out = n;
	return 0;
}
