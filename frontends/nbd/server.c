/* SPDX-License-Identifier: BSD-3-Clause */
/* The NBD server object: configuration, listeners, accepting, shutdown. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blkcache/log.h"
#include "internal.h"

#define ACCEPT_BATCH 64
#define DEFAULT_MAX_BLOCK (32u * 1024u * 1024u)

static void listener_poll_cb(struct bc_completion *comp, int res);
static void listener_retry_cb(struct bc_timer *t);

static bool is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

static void listener_finalize(struct bc_nbd_listener *l)
{
	struct bc_nbd_server *srv = l->srv;
	unsigned i;

	if (srv) {
		for (i = 0; i < srv->n_listeners; i++) {
			if (srv->listeners[i] == l) {
				srv->listeners[i] = srv->listeners[--srv->n_listeners];
				break;
			}
		}
	}
	close(l->fd);
	free(l);
}

static void listener_close(struct bc_nbd_listener *l)
{
	if (l->closed)
		return;
	l->closed = true;
	bc_loop_timer_cancel(l->loop, &l->retry);
	/* Refuse new connections now; the descriptor is closed once the
	 * armed poll, if any, has come back. */
	shutdown(l->fd, SHUT_RDWR);
	if (l->poll_armed)
		bc_loop_poll_cancel(l->loop, &l->poll);
	else
		listener_finalize(l);
}

static void listener_arm(struct bc_nbd_listener *l)
{
	int r = bc_loop_poll_add(l->loop, l->fd, POLLIN, &l->poll);

	if (r < 0) {
		bc_loop_log(l->loop, BC_LOG_ERR, "nbd: listener poll: %s; retrying", strerror(-r));
		bc_loop_timer_arm(l->loop, &l->retry, BC_NBD_ACCEPT_RETRY_NS);
		return;
	}
	l->poll_armed = true;
}

static void listener_retry_cb(struct bc_timer *t)
{
	struct bc_nbd_listener *l = BC_CONTAINER_OF(t, struct bc_nbd_listener, retry);

	if (!l->closed && !l->poll_armed)
		listener_arm(l);
}

static void listener_poll_cb(struct bc_completion *comp, int res)
{
	struct bc_nbd_listener *l = BC_CONTAINER_OF(comp, struct bc_nbd_listener, poll);
	int i, fd, one = 1;

	l->poll_armed = false;
	if (l->closed || !l->srv) {
		listener_finalize(l);
		return;
	}
	if (res < 0)
		bc_loop_log(l->loop, BC_LOG_WARN, "nbd: listener poll: %s", strerror(-res));

	for (i = 0; i < ACCEPT_BATCH; i++) {
		fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
				continue;
			/* EMFILE, ENFILE, ENOBUFS, ENOMEM, ...: back off. */
			bc_loop_log(l->loop, BC_LOG_WARN, "nbd: accept: %s", strerror(errno));
			bc_loop_timer_arm(l->loop, &l->retry, BC_NBD_ACCEPT_RETRY_NS);
			return;
		}
		/* Fails harmlessly on unix sockets. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (bc_nbd_conn_start(l->srv, fd) < 0)
			bc_loop_log(l->loop, BC_LOG_ERR, "nbd: cannot start connection: out of memory");
	}
	listener_arm(l);
}

static int listener_add(struct bc_nbd_server *srv, int fd)
{
	struct bc_nbd_listener *l;

	if (srv->n_listeners >= BC_NBD_MAX_LISTENERS) {
		close(fd);
		return -ENOSPC;
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		close(fd);
		return -ENOMEM;
	}
	l->srv = srv;
	l->fd = fd;
	l->loop = srv->loop;
	l->poll.fn = listener_poll_cb;
	l->retry.fn = listener_retry_cb;
	srv->listeners[srv->n_listeners++] = l; /* armed once all are set up */
	return 0;
}

static void close_listeners(struct bc_nbd_server *srv)
{
	unsigned i = 0;

	while (i < srv->n_listeners) {
		struct bc_nbd_listener *l = srv->listeners[i];

		if (l->closed) {
			i++;
			continue;
		}
		listener_close(l); /* may remove it from the array */
		if (i < srv->n_listeners && srv->listeners[i] == l)
			i++;
	}
}

static void remove_unix_socket(struct bc_nbd_server *srv)
{
	struct stat st;

	if (!srv->unix_path)
		return;
	/* Only remove the file if it is still the socket we created. */
	if (lstat(srv->unix_path, &st) == 0 && st.st_dev == srv->unix_dev &&
	    st.st_ino == srv->unix_ino)
		unlink(srv->unix_path);
	free(srv->unix_path);
	srv->unix_path = NULL;
}

static void grace_cb(struct bc_timer *t)
{
	struct bc_nbd_server *srv = BC_CONTAINER_OF(t, struct bc_nbd_server, grace);
	struct bc_nbd_conn *c, *next;

	if (srv->conns)
		bc_loop_log(srv->loop, BC_LOG_WARN, "nbd: shutdown grace period over; closing connections");
	for (c = srv->conns; c; c = next) {
		next = c->next;
		bc_nbd_conn_kill(c);
	}
}

static int setup_export(struct bc_nbd_server *srv, const struct bc_target *t,
			const struct bc_nbd_config *cfg)
{
	uint32_t min = t->min_block ? t->min_block : 512;
	uint32_t pref = t->pref_block ? t->pref_block : 4096;
	uint32_t max = t->max_block ? t->max_block : DEFAULT_MAX_BLOCK;
	const char *name = cfg->export_name ? cfg->export_name : "";

	if (!is_pow2(min) || min > 65536 || !is_pow2(pref) || pref < min || max < min) {
		bc_loop_log(srv->loop, BC_LOG_ERR, "nbd: target has invalid block sizes %u/%u/%u", min, pref, max);
		return -EINVAL;
	}
	if (pref < 512)
		pref = 512;
	max -= max % min;
	if (strlen(name) > NBD_MAX_STRING ||
	    (cfg->description && strlen(cfg->description) > NBD_MAX_STRING))
		return -EINVAL;

	srv->export_name = strdup(name);
	if (!srv->export_name)
		return -ENOMEM;
	if (cfg->description) {
		srv->description = strdup(cfg->description);
		if (!srv->description)
			return -ENOMEM;
	}
	srv->exp.name = srv->export_name;
	srv->exp.name_len = strlen(name);
	srv->exp.description = srv->description;
	srv->exp.description_len = srv->description ? strlen(srv->description) : 0;
	srv->exp.size = t->size;
	srv->exp.tx_flags = bc_nbd_proto_tx_flags(t->flags);
	srv->exp.min_block = min;
	srv->exp.pref_block = pref;
	srv->exp.max_block = max;
	srv->limits.size = t->size;
	srv->limits.min_block = min;
	srv->limits.max_block = max;
	srv->limits.tx_flags = srv->exp.tx_flags;
	srv->chunk_max = max;
	return 0;
}

int bc_nbd_server_new(struct bc_nbd_server **out, struct bc_loop *loop,
		      const struct bc_target *target, const struct bc_nbd_config *cfg)
{
	struct bc_nbd_server *srv;
	int fds[BC_NBD_MAX_LISTENERS];
	unsigned i, n = 0;
	int r, fd;

	if (!out || !loop || !target || !target->ops || !cfg ||
	    (!cfg->unix_path && !cfg->tcp_addr))
		return -EINVAL;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->loop = loop;
	srv->target = target;
	srv->max_inflight = cfg->max_inflight ? cfg->max_inflight : BC_NBD_DEFAULT_INFLIGHT;
	srv->grace.fn = grace_cb;
	r = setup_export(srv, target, cfg);
	if (r < 0)
		goto err_free;

	if (cfg->unix_path) {
		srv->unix_path = strdup(cfg->unix_path);
		if (!srv->unix_path) {
			r = -ENOMEM;
			goto err_free;
		}
		r = bc_nbd_listen_unix(cfg->unix_path, &fd, &srv->unix_dev, &srv->unix_ino);
		if (r < 0) {
			free(srv->unix_path);
			srv->unix_path = NULL;
			goto err_free;
		}
		r = listener_add(srv, fd);
		if (r < 0)
			goto err_listeners;
	}
	if (cfg->tcp_addr) {
		r = bc_nbd_listen_tcp(cfg->tcp_addr, fds, BC_NBD_MAX_LISTENERS - srv->n_listeners,
				      &n);
		if (r < 0)
			goto err_listeners;
		for (i = 0; i < n; i++) {
			r = listener_add(srv, fds[i]);
			if (r < 0) {
				while (++i < n)
					close(fds[i]);
				goto err_listeners;
			}
		}
	}
	for (i = 0; i < srv->n_listeners; i++)
		listener_arm(srv->listeners[i]);
	bc_loop_log(srv->loop, BC_LOG_INFO, "nbd: export '%s', %llu bytes, flags 0x%x", srv->export_name,
	       (unsigned long long)target->size, srv->exp.tx_flags);
	*out = srv;
	return 0;

err_listeners:
	close_listeners(srv); /* none is armed yet: all freed here */
	remove_unix_socket(srv);
err_free:
	free(srv->export_name);
	free(srv->description);
	free(srv);
	return r;
}

void bc_nbd_server_shutdown(struct bc_nbd_server *srv)
{
	struct bc_nbd_conn *c, *next;

	if (!srv || srv->shutting_down)
		return;
	srv->shutting_down = true;
	bc_loop_log(srv->loop, BC_LOG_INFO, "nbd: shutting down (%u connections)", srv->stats.connections_open);
	close_listeners(srv);
	remove_unix_socket(srv);
	for (c = srv->conns; c; c = next) {
		next = c->next;
		bc_nbd_conn_shutdown(c);
	}
	if (srv->conns)
		bc_loop_timer_arm(srv->loop, &srv->grace, BC_NBD_SHUTDOWN_GRACE_NS);
}

int bc_nbd_server_idle(const struct bc_nbd_server *srv)
{
	return srv->shutting_down && !srv->conns && srv->n_listeners == 0;
}

void bc_nbd_server_stats(const struct bc_nbd_server *srv, struct bc_nbd_stats *st)
{
	*st = srv->stats;
}

void bc_nbd_server_free(struct bc_nbd_server *srv)
{
	struct bc_nbd_conn *c, *next;
	unsigned i;

	if (!srv)
		return;
	close_listeners(srv);
	for (i = 0; i < srv->n_listeners; i++)
		srv->listeners[i]->srv = NULL;
	bc_loop_timer_cancel(srv->loop, &srv->grace);
	/* Connections still open are closed and orphaned: they free
	 * themselves once the target and the loop are done with them. */
	for (c = srv->conns; c; c = next) {
		next = c->next;
		c->srv = NULL;
		c->prev = c->next = NULL;
		bc_nbd_conn_kill(c);
	}
	srv->conns = NULL;
	remove_unix_socket(srv);
	free(srv->export_name);
	free(srv->description);
	free(srv);
}
