/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The metrics endpoint: a minimal HTTP/1.x server on the server's loop.
 * GET /metrics answers the Prometheus text page; anything else is 404.
 * One request per connection (Connection: close), read into a small fixed
 * buffer; a client that does not finish its request in time is dropped.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "blkcache/log.h"
#include "sockutil.h"
#include "metrics.h"
#include "units.h"

#define METRICS_MAX_LISTENERS 8
#define METRICS_MAX_CONNS 32
#define METRICS_REQ_MAX 2048
#define METRICS_TIMEOUT_NS (10ull * 1000 * 1000 * 1000)

struct metrics_listener {
	struct bc_completion comp;
	struct bc_metrics *m;
	int fd;
	bool armed;
};

struct metrics_conn {
	struct bc_completion comp;
	struct bc_timer timer;
	struct bc_metrics *m;
	int fd;
	bool armed;
	bool writing;
	size_t len;
	char req[METRICS_REQ_MAX];
	struct bc_tbuf out;
	size_t off;
	struct metrics_conn *next;
};

struct bc_metrics {
	struct bc_loop *loop;
	struct bc_control_src src;
	struct metrics_listener ls[METRICS_MAX_LISTENERS];
	unsigned nls;
	struct metrics_conn *conns;
	bool closing;
};

static void conn_destroy(struct metrics_conn *c)
{
	struct metrics_conn **pp;

	for (pp = &c->m->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	bc_tbuf_free(&c->out);
	free(c);
}

/* Close; free once the poll (if any) has completed. */
static void conn_close(struct metrics_conn *c)
{
	bc_loop_timer_cancel(c->m->loop, &c->timer);
	if (c->fd >= 0) {
		char sink[512];
		int i;

		/* Read what is left so that close() does not reset the connection
		 * before the client has the reply. */
		for (i = 0; i < 64 && read(c->fd, sink, sizeof(sink)) > 0; i++)
			;
		if (c->armed)
			bc_loop_poll_cancel(c->m->loop, &c->comp);
		close(c->fd);
		c->fd = -1;
	}
	if (!c->armed)
		conn_destroy(c);
}

static void conn_arm(struct metrics_conn *c, unsigned events)
{
	if (bc_loop_poll_add(c->m->loop, c->fd, events, &c->comp) < 0) {
		conn_close(c);
		return;
	}
	c->armed = true;
}

static void respond(struct metrics_conn *c, int code, const char *reason, bool head,
		    const char *ctype, const struct bc_tbuf *body)
{
	size_t blen = body && body->p ? body->len : 0;

	bc_tbuf_printf(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		       "Connection: close\r\nCache-Control: no-store\r\n\r\n", code, reason, ctype,
		       blen);
	if (!head && blen)
		bc_tbuf_add(&c->out, body->p, blen);
}

static void respond_text(struct metrics_conn *c, int code, const char *reason, bool head,
			 const char *text)
{
	struct bc_tbuf body = { 0 };

	bc_tbuf_puts(&body, text);
	respond(c, code, reason, head, "text/plain; charset=utf-8", &body);
	bc_tbuf_free(&body);
}

/* The request is complete in c->req: build the reply in c->out. */
static void handle(struct metrics_conn *c, bool too_long)
{
	char *line_end, *method, *target, *version, *save = NULL;
	bool head;

	if (too_long) {
		respond_text(c, 431, "Request Header Fields Too Large", false,
			     "request too large\n");
		return;
	}
	c->req[c->len] = 0;
	line_end = strpbrk(c->req, "\r\n");
	if (line_end)
		*line_end = 0;
	method = strtok_r(c->req, " ", &save);
	target = strtok_r(NULL, " ", &save);
	version = strtok_r(NULL, " ", &save);
	if (!method || !target || !version || strtok_r(NULL, " ", &save) ||
	    strncmp(version, "HTTP/1.", 7)) {
		respond_text(c, 400, "Bad Request", false, "bad request\n");
		return;
	}
	target[strcspn(target, "?#")] = 0;
	head = !strcmp(method, "HEAD");
	if ((strcmp(method, "GET") && !head) || strcmp(target, "/metrics")) {
		respond_text(c, 404, "Not Found", head, "not found; the metrics are at /metrics\n");
		return;
	}
	{
		struct bc_tbuf body = { 0 };

		bc_metrics_render(&c->m->src, &body);
		if (body.failed)
			respond_text(c, 500, "Internal Server Error", head, "out of memory\n");
		else
			respond(c, 200, "OK", head, "text/plain; version=0.0.4; charset=utf-8", &body);
		bc_tbuf_free(&body);
	}
}

static void conn_write(struct metrics_conn *c)
{
	while (c->off < c->out.len) {
		ssize_t n = send(c->fd, c->out.p + c->off, c->out.len - c->off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			c->off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			conn_arm(c, POLLOUT);
			return;
		}
		break;
	}
	conn_close(c);
}

/* End of the request head: an empty line. */
static bool request_complete(const struct metrics_conn *c)
{
	const char *p = c->req, *end = c->req + c->len;

	for (; p < end; p++)
		if (*p == '\n' && ((p + 1 < end && p[1] == '\n') ||
				   (p + 2 < end && p[1] == '\r' && p[2] == '\n')))
			return true;
	return false;
}

static void conn_read(struct metrics_conn *c)
{
	for (;;) {
		ssize_t n = read(c->fd, c->req + c->len, sizeof(c->req) - 1 - c->len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			conn_arm(c, POLLIN);
			return;
		}
		if (n <= 0) {
			conn_close(c);
			return;
		}
		c->len += (size_t)n;
		if (request_complete(c) || c->len == sizeof(c->req) - 1) {
			handle(c, !request_complete(c));
			if (c->out.failed) {
				conn_close(c);
				return;
			}
			c->writing = true;
			conn_write(c);
			return;
		}
	}
}

static void conn_ready(struct bc_completion *comp, int res)
{
	struct metrics_conn *c = (struct metrics_conn *)comp;

	c->armed = false;
	if (c->fd < 0 || res < 0) {
		conn_close(c);
		return;
	}
	if (c->writing)
		conn_write(c);
	else
		conn_read(c);
}

static void conn_timeout(struct bc_timer *t)
{
	struct metrics_conn *c = BC_CONTAINER_OF(t, struct metrics_conn, timer);

	conn_close(c);
}

/* Room for one more connection: at the limit, the oldest one still
 * reading its request goes.  False if all are busy answering. */
static bool conn_room(struct bc_metrics *m)
{
	struct metrics_conn *c, *idle = NULL;
	unsigned n = 0;

	for (c = m->conns; c; c = c->next) {
		if (c->fd < 0)
			continue;
		n++;
		if (!c->writing)
			idle = c; /* the list is newest first */
	}
	if (n < METRICS_MAX_CONNS)
		return true;
	if (!idle)
		return false;
	conn_close(idle);
	return true;
}

static void accept_ready(struct bc_completion *comp, int res)
{
	struct metrics_listener *l = (struct metrics_listener *)comp;
	struct bc_metrics *m = l->m;
	int fd;

	l->armed = false;
	if (res < 0 || m->closing)
		return;
	while ((fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		struct metrics_conn *c;

		if (!conn_room(m) || !(c = calloc(1, sizeof(*c)))) {
			close(fd);
			continue;
		}
		c->m = m;
		c->fd = fd;
		c->comp.fn = conn_ready;
		c->timer.fn = conn_timeout;
		c->next = m->conns;
		m->conns = c;
		bc_loop_timer_arm(m->loop, &c->timer, METRICS_TIMEOUT_NS);
		conn_arm(c, POLLIN);
	}
	if (bc_loop_poll_add(m->loop, l->fd, POLLIN, &l->comp) == 0)
		l->armed = true;
}

/* Bind every address @addr resolves to. */
static int listen_all(struct bc_metrics *m, const char *addr, char *why, size_t whylen)
{
	int fds[METRICS_MAX_LISTENERS];
	char host[256], port[8];
	unsigned i, n = 0;
	int ret;

	ret = bc_tcp_parse_hostport(addr, host, sizeof(host), port, sizeof(port));
	if (ret == 0)
		ret = bc_tcp_listen(addr, fds, METRICS_MAX_LISTENERS, &n);
	if (ret == -EINVAL || ret == -ENAMETOOLONG) {
		snprintf(why, whylen, "bad --metrics address '%s' (want [ADDR:]PORT, e.g. "
			 "127.0.0.1:9100 or [::1]:9100)", addr);
		return -EINVAL;
	}
	if (ret < 0) {
		snprintf(why, whylen, "cannot listen for metrics on %s: %s", addr, strerror(-ret));
		return ret;
	}
	for (i = 0; i < n; i++) {
		m->ls[m->nls].fd = fds[i];
		m->ls[m->nls].m = m;
		m->ls[m->nls].comp.fn = accept_ready;
		m->nls++;
	}
	bc_loop_log(m->loop, BC_LOG_INFO, "metrics: http://%s%s%s:%s/metrics", strchr(host, ':') ? "[" : "",
	       host, strchr(host, ':') ? "]" : "", port);
	return 0;
}

int bc_metrics_open(struct bc_metrics **out, struct bc_loop *loop, const char *addr,
		     const struct bc_control_src *src, char *why, size_t whylen)
{
	struct bc_metrics *m = calloc(1, sizeof(*m));
	unsigned i;
	int ret;

	if (!m) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	m->loop = loop;
	m->src = *src;
	ret = listen_all(m, addr, why, whylen);
	if (ret < 0)
		goto err;
	for (i = 0; i < m->nls; i++) {
		ret = bc_loop_poll_add(loop, m->ls[i].fd, POLLIN, &m->ls[i].comp);
		if (ret < 0) {
			snprintf(why, whylen, "cannot watch the metrics socket: %s", strerror(-ret));
			goto err;
		}
		m->ls[i].armed = true;
	}
	*out = m;
	return 0;
err:
	bc_metrics_close(m);
	return ret;
}

void bc_metrics_close(struct bc_metrics *m)
{
	struct metrics_conn *c, *next;
	unsigned i;
	int tries;

	if (!m)
		return;
	m->closing = true;
	for (i = 0; i < m->nls; i++) {
		if (m->ls[i].armed)
			bc_loop_poll_cancel(m->loop, &m->ls[i].comp);
		close(m->ls[i].fd);
	}
	for (c = m->conns; c; c = next) {
		next = c->next;
		conn_close(c);
	}
	for (tries = 0; tries < 200; tries++) {
		bool busy = m->conns != NULL;

		for (i = 0; i < m->nls; i++)
			busy |= m->ls[i].armed;
		if (!busy)
			break;
		bc_loop_run_once(m->loop, 10);
	}
	/* Whatever never completed can no longer be reaped by anyone. */
	while (m->conns)
		conn_destroy(m->conns);
	free(m);
}
