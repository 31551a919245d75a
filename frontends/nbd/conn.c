/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One client connection: socket readiness, the receive state machine
 * (handshake options, then request headers and payloads), the output
 * queue, and the connection's lifetime.
 *
 * Every entry point from the loop (poll and defer completions, target
 * completions in xmit.c) ends with bc_nbd_conn_settle(), which is the only
 * place a connection is freed.  Functions below it never free.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "blkcache/log.h"
#include "internal.h"

/* recv() calls per readiness event before yielding to other sockets. */
#define CONN_RECV_BUDGET 16
/* Payload reads at least this large bypass the staging buffer. */
#define CONN_DIRECT_MIN  4096u

static void rd_poll_cb(struct bc_completion *comp, int res);
static void wr_poll_cb(struct bc_completion *comp, int res);
static void flush_cb(struct bc_completion *comp, int res);

/* Cancel an armed poll once; its callback still runs (-ECANCELED). */
static void conn_cancel_poll(struct bc_nbd_conn *c, bool write)
{
	bool *cancelled = write ? &c->wr_cancelled : &c->rd_cancelled;

	if (!(write ? c->wr_armed : c->rd_armed) || *cancelled)
		return;
	*cancelled = true;
	bc_loop_poll_cancel(c->loop, write ? &c->wr_poll : &c->rd_poll);
}

static void conn_kill(struct bc_nbd_conn *c)
{
	if (c->dead)
		return;
	c->dead = true;
	c->rx_stop = true;
	c->rx_paused = false;
	if (c->cur) {
		bc_nbd_req_release(c->cur);
		c->cur = NULL;
	}
	free(c->opt_data);
	c->opt_data = NULL;
	bc_nbd_outq_drop(&c->outq);
	/* Wakes any armed poll and tells the peer at once; the descriptor
	 * itself is closed only when no poll can refer to it any more. */
	shutdown(c->fd, SHUT_RDWR);
	conn_cancel_poll(c, false);
	conn_cancel_poll(c, true);
	bc_loop_log(c->loop, BC_LOG_DEBUG, "nbd: conn %u: closed", c->id);
}

void bc_nbd_conn_protocol_error(struct bc_nbd_conn *c, const char *what)
{
	if (c->dead)
		return;
	bc_loop_log(c->loop, BC_LOG_WARN, "nbd: conn %u: protocol error: %s; closing", c->id, what);
	bc_counter_add(c->protocol_errors, 1);
	conn_kill(c);
}

void bc_nbd_conn_fail(struct bc_nbd_conn *c, const char *what)
{
	if (c->dead)
		return;
	bc_loop_log(c->loop, BC_LOG_ERR, "nbd: conn %u: %s; closing", c->id, what);
	conn_kill(c);
}

/* Stop reading for good; requests already received are still answered. */
static void conn_stop_reading(struct bc_nbd_conn *c)
{
	c->rx_stop = true;
	c->rx_paused = false;
	if (c->cur) {
		bc_nbd_req_release(c->cur);
		c->cur = NULL;
	}
	free(c->opt_data);
	c->opt_data = NULL;
	conn_cancel_poll(c, false);
}

void bc_nbd_exp_put(struct bc_nbd_exp *e)
{
	if (--e->refs == 0)
		free(e);
}

void bc_nbd_conn_unlink(struct bc_nbd_conn *c)
{
	struct bc_nbd_server *srv = c->srv;

	if (srv) {
		if (c->prev)
			c->prev->next = c->next;
		else
			srv->conns = c->next;
		if (c->next)
			c->next->prev = c->prev;
		srv->stats.connections_open--;
		srv->stats.requests += c->requests;
		srv->stats.protocol_errors += c->protocol_errors;
		c->srv = NULL;
	}
	if (c->exp)
		bc_nbd_exp_put(c->exp); /* its target is called no more */
	c->exp = NULL;
}

void bc_nbd_conn_release_io(struct bc_nbd_conn *c)
{
	close(c->fd);
	bc_nbd_xmit_free_cache(c);
	free(c->rxbuf);
	c->rxbuf = NULL;
}

static void conn_free(struct bc_nbd_conn *c)
{
	bc_nbd_conn_unlink(c);
	bc_nbd_conn_release_io(c);
	bc_nbd_conn_unref(c);
}

bool bc_nbd_conn_open(const struct bc_nbd_conn *c)
{
	return c->remote ? !c->kill_sent : !c->dead;
}

static int conn_arm(struct bc_nbd_conn *c, bool write)
{
	struct bc_completion *comp = write ? &c->wr_poll : &c->rd_poll;
	bool *armed = write ? &c->wr_armed : &c->rd_armed;
	int r;

	if (*armed)
		return 0;
	r = bc_loop_poll_add(c->loop, c->fd, write ? POLLOUT : POLLIN, comp);
	if (r < 0) {
		bc_loop_log(c->loop, BC_LOG_ERR, "nbd: conn %u: poll: %s", c->id, strerror(-r));
		conn_kill(c);
		return r;
	}
	*armed = true;
	if (write)
		c->wr_cancelled = false;
	else
		c->rd_cancelled = false;
	return 0;
}

static bool conn_blocked(const struct bc_nbd_conn *c)
{
	if (c->rx_state == BC_NBD_RX_OPT_HDR)
		return c->outq.bytes >= BC_NBD_HS_OUT_MAX;
	if (c->rx_state == BC_NBD_RX_REQ_HDR)
		return c->live_reqs >= c->max_inflight || c->live_bytes >= BC_NBD_CONN_BYTES_MAX;
	return false;
}

static void conn_queue_bytes(struct bc_nbd_conn *c, const void *p, size_t len)
{
	struct bc_nbd_omsg *m = bc_nbd_omsg_new_copy(p, len);

	if (!m) {
		bc_loop_log(c->loop, BC_LOG_ERR, "nbd: conn %u: out of memory", c->id);
		conn_kill(c);
		return;
	}
	bc_nbd_outq_push(&c->outq, m);
}

/* The exports a client may choose from (a list through ->next). */
static const struct bc_nbd_export *conn_exports(const struct bc_nbd_server *srv)
{
	if (srv->exports)
		return srv->exports;
	return srv->target ? &srv->exp : NULL;
}

/* The client chose @sel: its requests go to that export's target. */
static void conn_bind(struct bc_nbd_conn *c, const struct bc_nbd_export *sel)
{
	struct bc_nbd_server *srv = c->srv;
	struct bc_nbd_exp *e;

	if (sel == &srv->exp) {
		c->target = srv->target;
		c->limits = &srv->limits;
		c->chunk_max = srv->chunk_max;
	} else {
		e = BC_CONTAINER_OF(sel, struct bc_nbd_exp, info);
		e->refs++;
		c->exp = e;
		c->place = &e->places[e->next_place++ % e->nplaces];
		c->target = c->place->target;
		c->limits = &e->limits;
		c->chunk_max = e->chunk_max;
	}
	bc_loop_log(c->loop, BC_LOG_DEBUG, "nbd: conn %u: export '%s'", c->id, sel->name);
}

/* A complete option has been received (or skipped). */
static int conn_option(struct bc_nbd_conn *c)
{
	const struct bc_nbd_export *sel = NULL;
	struct bc_nbd_obuf out;
	const uint8_t *data = c->rx_state == BC_NBD_RX_OPT_DATA ? c->opt_data : NULL;
	int action;

	bc_nbd_obuf_init(&out);
	action = bc_nbd_opt_process_sel(conn_exports(c->srv), c->opt, data, c->opt_len,
					c->no_zeroes, &out, &sel);
	free(c->opt_data);
	c->opt_data = NULL;
	bc_loop_log(c->loop, BC_LOG_DEBUG, "nbd: conn %u: option %u, %u bytes -> %d", c->id, c->opt,
	       c->opt_len, action);
	if (action < 0) {
		bc_nbd_obuf_release(&out);
		bc_loop_log(c->loop, BC_LOG_ERR, "nbd: conn %u: option: %s", c->id, strerror(-action));
		conn_kill(c);
		return action;
	}
	if (out.len)
		conn_queue_bytes(c, out.data, out.len);
	bc_nbd_obuf_release(&out);
	if (c->dead)
		return -ENOMEM;

	c->rx_state = BC_NBD_RX_OPT_HDR;
	switch (action) {
	case BC_NBD_OPT_ENTER_TX:
		conn_bind(c, sel);
		c->transmission = true;
		c->rx_state = BC_NBD_RX_REQ_HDR;
		bc_loop_log(c->loop, BC_LOG_DEBUG, "nbd: conn %u: transmission phase", c->id);
		if (c->place && c->place->loop != c->loop)
			bc_nbd_move_start(c); /* reads nothing more here */
		break;
	case BC_NBD_OPT_ABORT:
		conn_stop_reading(c);
		c->closing = true;
		break;
	case BC_NBD_OPT_DROP:
		bc_loop_log(c->loop, BC_LOG_INFO, "nbd: conn %u: unknown export requested; closing", c->id);
		conn_kill(c);
		return -ENOENT;
	default:
		break;
	}
	return 1;
}

static void consume(struct bc_nbd_conn *c, size_t n)
{
	c->rx_head += n;
	if (c->rx_head == c->rx_tail)
		c->rx_head = c->rx_tail = 0;
}

/* Skip up to skip_left buffered bytes; true when all are gone. */
static bool skip_some(struct bc_nbd_conn *c, size_t avail)
{
	size_t n = avail < c->skip_left ? avail : (size_t)c->skip_left;

	consume(c, n);
	c->skip_left -= n;
	return c->skip_left == 0;
}

/* A fixed-size field parsed into @res: consumed if good, else a protocol
 * error named @bad.  False: the connection is being closed. */
static bool fixed_ok(struct bc_nbd_conn *c, int res, size_t len, const char *bad)
{
	if (res < 0) {
		bc_nbd_conn_protocol_error(c, bad);
		return false;
	}
	consume(c, len);
	return true;
}

/* The client's flags after the server's greeting. */
static int conn_parse_client_flags(struct bc_nbd_conn *c, const uint8_t *p, size_t avail)
{
	uint32_t flags;

	if (avail < NBD_CLIENT_FLAGS_LEN)
		return 0;
	if (!fixed_ok(c, bc_nbd_proto_parse_client_flags(p, &flags), NBD_CLIENT_FLAGS_LEN,
		      "unknown client flags"))
		return -EPROTO;
	c->no_zeroes = (flags & NBD_FLAG_C_NO_ZEROES) != 0;
	c->rx_state = BC_NBD_RX_OPT_HDR;
	return 1;
}

/* An option header: then its payload is read, skipped or refused. */
static int conn_parse_opt_hdr(struct bc_nbd_conn *c, const uint8_t *p, size_t avail)
{
	struct bc_nbd_opt_hdr oh;

	if (avail < NBD_OPT_HDR_LEN)
		return 0;
	if (!fixed_ok(c, bc_nbd_proto_parse_opt_hdr(p, &oh), NBD_OPT_HDR_LEN, "bad option magic"))
		return -EPROTO;
	c->opt = oh.opt;
	c->opt_len = oh.len;
	c->opt_got = 0;
	if (oh.len == 0) {
		c->rx_state = BC_NBD_RX_OPT_DATA;
		return conn_option(c);
	}
	if (oh.len <= BC_NBD_OPT_MAX) {
		c->opt_data = malloc(oh.len);
		if (!c->opt_data) {
			conn_kill(c);
			return -ENOMEM;
		}
		c->rx_state = BC_NBD_RX_OPT_DATA;
	} else if (oh.len <= BC_NBD_OPT_DISCARD_MAX && oh.opt != NBD_OPT_EXPORT_NAME) {
		c->skip_left = oh.len;
		c->rx_state = BC_NBD_RX_OPT_SKIP;
	} else {
		bc_nbd_conn_protocol_error(c, "option payload too large");
		return -EPROTO;
	}
	return 1;
}

/* Copy what has arrived of the @want bytes still missing into @dst. */
static uint32_t take(struct bc_nbd_conn *c, void *dst, uint32_t want, const uint8_t *p,
		     size_t avail)
{
	size_t n = want < avail ? want : avail;

	memcpy(dst, p, n);
	consume(c, n);
	return (uint32_t)n;
}

/* More of an option's payload. */
static int conn_parse_opt_data(struct bc_nbd_conn *c, const uint8_t *p, size_t avail)
{
	if (avail == 0)
		return 0;
	c->opt_got += take(c, c->opt_data + c->opt_got, c->opt_len - c->opt_got, p, avail);
	if (c->opt_got == c->opt_len)
		return conn_option(c);
	return 1;
}

/* A request header in the transmission phase. */
static int conn_parse_req_hdr(struct bc_nbd_conn *c, const uint8_t *p, size_t avail)
{
	struct bc_nbd_request_hdr rh;

	if (avail < NBD_REQUEST_LEN)
		return 0;
	if (!fixed_ok(c, bc_nbd_proto_parse_request(p, &rh), NBD_REQUEST_LEN, "bad request magic"))
		return -EPROTO;
	if (bc_nbd_xmit_request(c, &rh) < 0 || c->dead)
		return -EPROTO;
	return 1;
}

/* More of the current request's payload, through the staging buffer. */
static int conn_parse_req_data(struct bc_nbd_conn *c, const uint8_t *p, size_t avail)
{
	if (avail == 0)
		return 0;
	c->cur->got += take(c, (uint8_t *)c->cur->buf + c->cur->got, c->cur->length - c->cur->got,
			    p, avail);
	if (c->cur->got == c->cur->length)
		bc_nbd_xmit_payload_done(c);
	return 1;
}

/* Make progress on buffered input.  1: progress, 0: need more bytes,
 * < 0: the connection was closed. */
static int conn_parse(struct bc_nbd_conn *c)
{
	size_t avail = c->rx_tail - c->rx_head;
	const uint8_t *p = c->rxbuf + c->rx_head;

	switch (c->rx_state) {
	case BC_NBD_RX_CLIENT_FLAGS:
		return conn_parse_client_flags(c, p, avail);
	case BC_NBD_RX_OPT_HDR:
		return conn_parse_opt_hdr(c, p, avail);
	case BC_NBD_RX_OPT_DATA:
		return conn_parse_opt_data(c, p, avail);
	case BC_NBD_RX_OPT_SKIP:
		if (avail == 0)
			return 0;
		if (skip_some(c, avail))
			return conn_option(c);
		return 1;
	case BC_NBD_RX_REQ_HDR:
		return conn_parse_req_hdr(c, p, avail);
	case BC_NBD_RX_REQ_DATA:
		return conn_parse_req_data(c, p, avail);
	case BC_NBD_RX_REQ_SKIP:
		if (avail == 0)
			return 0;
		if (skip_some(c, avail))
			bc_nbd_xmit_skip_done(c);
		return 1;
	}
	return 0;
}

/* The peer closed its side: answer what is in flight, then close. */
static void conn_eof(struct bc_nbd_conn *c)
{
	bc_loop_log(c->loop, BC_LOG_DEBUG, "nbd: conn %u: end of input", c->id);
	if (!c->transmission) {
		conn_kill(c);
		return;
	}
	conn_stop_reading(c);
	c->closing = true;
}

/* One recv().  1: got bytes, 0: would block, < 0: closed or failed. */
static int conn_recv(struct bc_nbd_conn *c)
{
	ssize_t n;
	bool direct = false;

	if (c->rx_state == BC_NBD_RX_REQ_DATA && c->rx_head == c->rx_tail &&
	    c->cur->length - c->cur->got >= CONN_DIRECT_MIN)
		direct = true;

	do {
		if (direct) {
			n = recv(c->fd, (uint8_t *)c->cur->buf + c->cur->got,
				 c->cur->length - c->cur->got, MSG_DONTWAIT);
		} else {
			if (c->rx_head > 0) {
				memmove(c->rxbuf, c->rxbuf + c->rx_head, c->rx_tail - c->rx_head);
				c->rx_tail -= c->rx_head;
				c->rx_head = 0;
			}
			n = recv(c->fd, c->rxbuf + c->rx_tail, BC_NBD_RXBUF_SIZE - c->rx_tail,
				 MSG_DONTWAIT);
		}
	} while (n < 0 && errno == EINTR);

	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		bc_loop_log(c->loop, BC_LOG_DEBUG, "nbd: conn %u: recv: %s", c->id, strerror(errno));
		conn_kill(c);
		return -errno;
	}
	if (n == 0) {
		conn_eof(c);
		return -ECONNRESET;
	}
	if (direct) {
		c->cur->got += (uint32_t)n;
		if (c->cur->got == c->cur->length)
			bc_nbd_xmit_payload_done(c);
	} else {
		c->rx_tail += (size_t)n;
	}
	return 1;
}

static void conn_read(struct bc_nbd_conn *c)
{
	int budget = CONN_RECV_BUDGET;
	int r;

	while (!c->dead && !c->rx_stop && !c->moving) {
		if (conn_blocked(c)) {
			c->rx_paused = true;
			return;
		}
		r = conn_parse(c);
		if (r < 0)
			return;
		if (r > 0)
			continue;
		if (budget-- == 0) {
			conn_arm(c, false); /* data is likely waiting: fires soon */
			return;
		}
		r = conn_recv(c);
		if (r < 0)
			return;
		if (r == 0) {
			conn_arm(c, false);
			return;
		}
	}
}

static void conn_write(struct bc_nbd_conn *c)
{
	long n;

	while (!c->dead) {
		n = bc_nbd_outq_send(&c->outq, c->fd);
		if (n == 0)
			return;
		if (n == -EAGAIN) {
			if (!c->moving) /* else armed where it goes */
				conn_arm(c, true);
			return;
		}
		if (n < 0) {
			bc_loop_log(c->loop, BC_LOG_DEBUG, "nbd: conn %u: send: %s", c->id, strerror((int)-n));
			conn_kill(c);
			return;
		}
	}
}

void bc_nbd_conn_settle(struct bc_nbd_conn *c)
{
	if (c->moving && !c->dead) {
		bc_nbd_move_settle(c);
		return;
	}
	if (!c->dead && c->rx_paused && !c->rx_stop && !conn_blocked(c)) {
		c->rx_paused = false;
		conn_read(c);
	}
	if (!c->dead && !bc_nbd_outq_empty(&c->outq) && !c->wr_armed && !c->flush_queued) {
		/* Coalesce replies completed in this loop iteration. */
		c->flush_queued = true;
		bc_loop_defer(c->loop, &c->flush, 0);
	}
	if (!c->dead && c->closing && c->live_reqs == 0 && bc_nbd_outq_empty(&c->outq))
		conn_kill(c);
	if (c->dead && !c->rd_armed && !c->wr_armed && !c->flush_queued && c->at_target == 0 &&
	    !c->returned) {
		if (c->remote)
			bc_nbd_move_return(c);
		else
			conn_free(c);
	}
}

/* A readiness wait ended: false (and the connection killed) if it failed. */
static bool poll_ok(struct bc_nbd_conn *c, int res)
{
	if (res < 0 && res != -ECANCELED) {
		bc_loop_log(c->loop, BC_LOG_DEBUG, "nbd: conn %u: poll: %s", c->id, strerror(-res));
		conn_kill(c);
		return false;
	}
	return true;
}

static void rd_poll_cb(struct bc_completion *comp, int res)
{
	struct bc_nbd_conn *c = BC_CONTAINER_OF(comp, struct bc_nbd_conn, rd_poll);

	c->rd_armed = false;
	if (!c->dead && !c->rx_stop && poll_ok(c, res))
		conn_read(c);
	bc_nbd_conn_settle(c);
}

static void wr_poll_cb(struct bc_completion *comp, int res)
{
	struct bc_nbd_conn *c = BC_CONTAINER_OF(comp, struct bc_nbd_conn, wr_poll);

	c->wr_armed = false;
	if (!c->dead && poll_ok(c, res))
		conn_write(c);
	bc_nbd_conn_settle(c);
}

static void flush_cb(struct bc_completion *comp, int res)
{
	struct bc_nbd_conn *c = BC_CONTAINER_OF(comp, struct bc_nbd_conn, flush);

	(void)res;
	c->flush_queued = false;
	if (!c->dead && !c->wr_armed)
		conn_write(c);
	bc_nbd_conn_settle(c);
}

int bc_nbd_conn_start(struct bc_nbd_server *srv, int fd)
{
	uint8_t greeting[NBD_GREETING_LEN];
	struct bc_nbd_conn *c;

	c = calloc(1, sizeof(*c));
	if (!c)
		goto err_close;
	c->rxbuf = malloc(BC_NBD_RXBUF_SIZE);
	if (!c->rxbuf)
		goto err_free;
	c->srv = srv;
	c->loop = c->home = srv->loop;
	atomic_init(&c->refs, 1);
	c->fd = fd;
	c->id = ++srv->next_conn_id;
	c->max_inflight = srv->max_inflight;
	c->rx_state = BC_NBD_RX_CLIENT_FLAGS;
	c->rd_poll.fn = rd_poll_cb;
	c->wr_poll.fn = wr_poll_cb;
	c->flush.fn = flush_cb;
	bc_nbd_outq_init(&c->outq);

	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->stats.connections_total++;
	srv->stats.connections_open++;
	bc_loop_log(c->loop, BC_LOG_DEBUG, "nbd: conn %u: accepted", c->id);

	bc_nbd_proto_put_greeting(greeting);
	conn_queue_bytes(c, greeting, sizeof(greeting));
	conn_read(c);
	bc_nbd_conn_settle(c);
	return 0;

err_free:
	free(c);
err_close:
	close(fd);
	return -ENOMEM;
}

bool bc_nbd_conn_quiet(struct bc_nbd_conn *c)
{
	conn_cancel_poll(c, false);
	conn_cancel_poll(c, true);
	return !c->rd_armed && !c->wr_armed && !c->flush_queued && c->at_target == 0;
}

void bc_nbd_conn_resume(struct bc_nbd_conn *c)
{
	if (!c->dead && !c->rx_stop)
		conn_read(c);
	bc_nbd_conn_settle(c);
}

void bc_nbd_conn_shutdown(struct bc_nbd_conn *c)
{
	if (c->remote)
		bc_nbd_move_op(c, BC_NBD_OP_DRAIN);
	else
		bc_nbd_conn_shutdown_here(c);
}

void bc_nbd_conn_shutdown_here(struct bc_nbd_conn *c)
{
	if (c->dead)
		return;
	if (!c->transmission) {
		conn_kill(c);
	} else {
		conn_stop_reading(c);
		c->closing = true;
	}
	bc_nbd_conn_settle(c);
}

void bc_nbd_conn_kill(struct bc_nbd_conn *c)
{
	if (c->remote)
		bc_nbd_move_op(c, BC_NBD_OP_KILL);
	else
		bc_nbd_conn_kill_here(c);
}

void bc_nbd_conn_kill_here(struct bc_nbd_conn *c)
{
	conn_kill(c);
	bc_nbd_conn_settle(c);
}

void bc_nbd_conn_disconnect(struct bc_nbd_conn *c)
{
	conn_stop_reading(c);
	c->closing = true;
}
