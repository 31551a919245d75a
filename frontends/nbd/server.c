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

/* (Re)arm the grace timer for the earliest kill_at of a live connection. */
static void grace_arm(struct bc_nbd_server *srv)
{
	struct bc_nbd_conn *c;
	uint64_t first = 0, now;

	for (c = srv->conns; c; c = c->next)
		if (bc_nbd_conn_open(c) && c->kill_at && (!first || c->kill_at < first))
			first = c->kill_at;
	if (!first) {
		bc_loop_timer_cancel(srv->loop, &srv->grace);
		return;
	}
	now = bc_now_ns();
	bc_loop_timer_arm(srv->loop, &srv->grace, first > now ? first - now : 0);
}

static void grace_cb(struct bc_timer *t)
{
	struct bc_nbd_server *srv = BC_CONTAINER_OF(t, struct bc_nbd_server, grace);
	struct bc_nbd_conn *c, *next;
	uint64_t now = bc_now_ns();
	unsigned n = 0;

	for (c = srv->conns; c; c = next) {
		next = c->next;
		if (bc_nbd_conn_open(c) && c->kill_at && c->kill_at <= now) {
			n++;
			bc_nbd_conn_kill(c);
		}
	}
	if (n)
		bc_loop_log(srv->loop, BC_LOG_WARN, "nbd: grace period over; closed %u connections", n);
	grace_arm(srv);
}

/* Close @c once its requests in flight are answered, or at the latest when
 * the grace period is over (the caller arms the timer). */
static void conn_drain(struct bc_nbd_conn *c, uint64_t kill_at)
{
	if (!bc_nbd_conn_open(c))
		return;
	if (!c->kill_at || c->kill_at > kill_at)
		c->kill_at = kill_at;
	bc_nbd_conn_shutdown(c); /* may free it */
}

static struct bc_nbd_exp *exp_of(const struct bc_nbd_export *info)
{
	return BC_CONTAINER_OF(info, struct bc_nbd_exp, info);
}

static bool name_ok(const char *s)
{
	return s && strlen(s) <= NBD_MAX_STRING;
}

/* A new export object (one reference) for @t, or NULL (*err set). */
static struct bc_nbd_exp *exp_new(struct bc_nbd_server *srv, const char *name,
				  const char *description, const struct bc_target *t, int *err)
{
	size_t nlen, dlen = description ? strlen(description) : 0;
	uint32_t min, pref, max;
	struct bc_nbd_exp *e;
	char *p;

	*err = -EINVAL;
	if (!name_ok(name) || (description && !name_ok(description)) || !t || !t->ops)
		return NULL;
	min = t->min_block ? t->min_block : 512;
	pref = t->pref_block ? t->pref_block : 4096;
	max = t->max_block ? t->max_block : DEFAULT_MAX_BLOCK;
	if (!is_pow2(min) || min > 65536 || !is_pow2(pref) || pref < min || max < min) {
		bc_loop_log(srv->loop, BC_LOG_ERR, "nbd: export '%s': target has invalid block sizes %u/%u/%u",
			    name, min, pref, max);
		return NULL;
	}
	nlen = strlen(name);
	e = calloc(1, sizeof(*e) + nlen + 1 + dlen + 1);
	if (!e) {
		*err = -ENOMEM;
		return NULL;
	}
	p = (char *)(e + 1);
	memcpy(p, name, nlen + 1);
	e->info.name = p;
	e->info.name_len = nlen;
	if (description) {
		memcpy(p + nlen + 1, description, dlen + 1);
		e->info.description = p + nlen + 1;
		e->info.description_len = dlen;
	}
	e->info.size = t->size;
	e->info.tx_flags = bc_nbd_proto_tx_flags(t->flags);
	e->info.min_block = min;
	e->info.pref_block = pref < 512 ? 512 : pref;
	e->info.max_block = max - max % min;
	e->limits.size = t->size;
	e->limits.min_block = min;
	e->limits.max_block = e->info.max_block;
	e->limits.tx_flags = e->info.tx_flags;
	e->target = t;
	e->chunk_max = e->info.max_block;
	e->refs = 1;
	e->places[0] = (struct bc_target_place){ .loop = srv->loop, .target = t };
	e->nplaces = 1;
	return e;
}

/* The link that points at the export called @name (exactly), or NULL. */
static struct bc_nbd_export **exp_link_of(struct bc_nbd_server *srv, const char *name)
{
	struct bc_nbd_export **pp;
	size_t len = strlen(name);

	for (pp = &srv->exports; *pp; pp = &(*pp)->next)
		if ((*pp)->name_len == len && memcmp((*pp)->name, name, len) == 0)
			return pp;
	return NULL;
}

/* Offer @e, last in the list. */
static void exp_append(struct bc_nbd_server *srv, struct bc_nbd_exp *e)
{
	struct bc_nbd_export **pp = &srv->exports;

	while (*pp)
		pp = &(*pp)->next;
	*pp = &e->info;
	bc_loop_log(srv->loop, BC_LOG_INFO, "nbd: export '%s' added: %llu bytes, flags 0x%x",
		    e->info.name, (unsigned long long)e->info.size, e->info.tx_flags);
}

int bc_nbd_server_add_export(struct bc_nbd_server *srv, const char *name, const char *description,
			     const struct bc_target *target)
{
	struct bc_nbd_exp *e;
	int r;

	if (!srv || !name_ok(name))
		return -EINVAL;
	if (exp_link_of(srv, name))
		return -EEXIST;
	e = exp_new(srv, name, description, target, &r);
	if (!e)
		return r;
	exp_append(srv, e);
	return 0;
}

int bc_nbd_server_add_export_spread(struct bc_nbd_server *srv, const char *name,
				    const char *description, const struct bc_target_place *places,
				    unsigned n)
{
	struct bc_nbd_exp *e;
	unsigned i;
	int r;

	if (!srv || !name_ok(name) || !places || !n || n > BC_TARGET_MAX_PLACES)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (!places[i].loop || !places[i].target || !places[i].target->ops ||
		    places[i].target->size != places[0].target->size ||
		    places[i].target->flags != places[0].target->flags)
			return -EINVAL;
	if (exp_link_of(srv, name))
		return -EEXIST;
	e = exp_new(srv, name, description, places[0].target, &r);
	if (!e)
		return r;
	memcpy(e->places, places, n * sizeof(*places));
	e->nplaces = n;
	exp_append(srv, e);
	return 0;
}

int bc_nbd_server_remove_export(struct bc_nbd_server *srv, const char *name)
{
	struct bc_nbd_export **pp = srv && name ? exp_link_of(srv, name) : NULL;
	uint64_t kill_at = bc_now_ns() + BC_NBD_SHUTDOWN_GRACE_NS;
	struct bc_nbd_conn *c, *next;
	struct bc_nbd_exp *e;
	unsigned n = 0;

	if (!pp)
		return -ENOENT;
	e = exp_of(*pp);
	*pp = e->info.next; /* new connections cannot choose it any more */
	e->info.next = NULL;
	for (c = srv->conns; c; c = c->next)
		n += c->exp == e && bc_nbd_conn_open(c);
	bc_loop_log(srv->loop, BC_LOG_INFO, "nbd: export '%s' removed (%u connections closing)",
		    e->info.name, n);
	for (c = srv->conns; c; c = next) {
		next = c->next;
		if (c->exp == e)
			conn_drain(c, kill_at);
	}
	grace_arm(srv);
	bc_nbd_exp_put(e); /* freed here, or by its last connection */
	return 0;
}

unsigned bc_nbd_server_export_conns(const struct bc_nbd_server *srv, const char *name)
{
	const struct bc_nbd_conn *c;
	size_t len = name ? strlen(name) : 0;
	unsigned n = 0;

	if (!srv || !name)
		return 0;
	/* Until it is freed, a connection may still have requests at the
	 * target, even closed hard: all of them count. */
	for (c = srv->conns; c; c = c->next)
		n += c->exp && c->exp->info.name_len == len && memcmp(c->exp->info.name, name, len) == 0;
	return n;
}

static int server_listen(struct bc_nbd_server *srv, const struct bc_nbd_config *cfg)
{
	int fds[BC_NBD_MAX_LISTENERS];
	unsigned i, n = 0;
	int r, fd;

	if (cfg->unix_path) {
		srv->unix_path = strdup(cfg->unix_path);
		if (!srv->unix_path)
			return -ENOMEM;
		r = bc_nbd_listen_unix(cfg->unix_path, &fd, &srv->unix_dev, &srv->unix_ino);
		if (r < 0) {
			free(srv->unix_path);
			srv->unix_path = NULL;
			return r;
		}
		r = listener_add(srv, fd);
		if (r < 0)
			return r;
	}
	if (cfg->tcp_addr) {
		r = bc_nbd_listen_tcp(cfg->tcp_addr, fds, BC_NBD_MAX_LISTENERS - srv->n_listeners,
				      &n);
		if (r < 0)
			return r;
		for (i = 0; i < n; i++) {
			r = listener_add(srv, fds[i]);
			if (r < 0) {
				while (++i < n)
					close(fds[i]);
				return r;
			}
		}
	}
	return 0;
}

int bc_nbd_server_new(struct bc_nbd_server **out, struct bc_loop *loop,
		      const struct bc_target *target, const struct bc_nbd_config *cfg)
{
	struct bc_nbd_server *srv;
	struct bc_nbd_exp *e = NULL;
	unsigned i;
	int r;

	if (!out || !loop || (target && !target->ops) || !cfg ||
	    (!cfg->unix_path && !cfg->tcp_addr))
		return -EINVAL;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->loop = loop;
	srv->max_inflight = cfg->max_inflight ? cfg->max_inflight : BC_NBD_DEFAULT_INFLIGHT;
	srv->grace.fn = grace_cb;
	if (target) {
		e = exp_new(srv, cfg->export_name ? cfg->export_name : "", cfg->description, target,
			    &r);
		if (!e)
			goto err_free;
	}
	r = server_listen(srv, cfg);
	if (r < 0)
		goto err_listeners;
	for (i = 0; i < srv->n_listeners; i++)
		listener_arm(srv->listeners[i]);
	if (e)
		exp_append(srv, e);
	*out = srv;
	return 0;

err_listeners:
	close_listeners(srv); /* none is armed yet: all freed here */
	remove_unix_socket(srv);
	if (e)
		bc_nbd_exp_put(e);
err_free:
	free(srv);
	return r;
}

void bc_nbd_server_shutdown(struct bc_nbd_server *srv)
{
	uint64_t kill_at;
	struct bc_nbd_conn *c, *next;

	if (!srv || srv->shutting_down)
		return;
	srv->shutting_down = true;
	bc_loop_log(srv->loop, BC_LOG_INFO, "nbd: shutting down (%u connections)", srv->stats.connections_open);
	close_listeners(srv);
	remove_unix_socket(srv);
	kill_at = bc_now_ns() + BC_NBD_SHUTDOWN_GRACE_NS;
	for (c = srv->conns; c; c = next) {
		next = c->next;
		conn_drain(c, kill_at);
	}
	grace_arm(srv);
}

int bc_nbd_server_idle(const struct bc_nbd_server *srv)
{
	return srv->shutting_down && !srv->conns && srv->n_listeners == 0;
}

void bc_nbd_server_stats(const struct bc_nbd_server *srv, struct bc_nbd_stats *st)
{
	const struct bc_nbd_conn *c;

	*st = srv->stats;
	/* Live connections count their own (some on other threads). */
	for (c = srv->conns; c; c = c->next) {
		st->requests += bc_counter_read(c->requests);
		st->protocol_errors += bc_counter_read(c->protocol_errors);
	}
}

void bc_nbd_server_free(struct bc_nbd_server *srv)
{
	struct bc_nbd_conn *c, *next;
	struct bc_nbd_export *x;
	unsigned i;

	if (!srv)
		return;
	close_listeners(srv);
	for (i = 0; i < srv->n_listeners; i++)
		srv->listeners[i]->srv = NULL;
	bc_loop_timer_cancel(srv->loop, &srv->grace);
	/* Connections still open are closed and orphaned: they free
	 * themselves once the target and the loop are done with them, and
	 * release their exports then. */
	for (c = srv->conns; c; c = next) {
		next = c->next;
		c->srv = NULL;
		c->prev = c->next = NULL;
		bc_nbd_conn_kill(c);
	}
	srv->conns = NULL;
	while ((x = srv->exports) != NULL) {
		srv->exports = x->next;
		x->next = NULL;
		bc_nbd_exp_put(exp_of(x));
	}
	remove_unix_socket(srv);
	free(srv);
}
