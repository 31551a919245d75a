/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Transmission phase: turn NBD requests into bc_requests for the target,
 * and target completions into simple replies (sent in completion order).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blkcache/log.h"
#include "internal.h"

#define XMIT_BUF_ALIGN 4096u

static void req_done(struct bc_request *breq, int result);

/* A request with a payload buffer of at least @len bytes (4096-aligned),
 * charged to the connection's limits.  NULL when out of memory. */
static struct bc_nbd_req *req_get(struct bc_nbd_conn *c, uint32_t len)
{
	struct bc_nbd_req *r = c->free_reqs;

	if (r) {
		c->free_reqs = r->next_free;
		c->n_free_reqs--;
		c->cached_bytes -= r->cap;
	} else {
		r = calloc(1, sizeof(*r));
		if (!r)
			return NULL;
	}
	if (len > r->cap) {
		size_t cap = ((size_t)len + XMIT_BUF_ALIGN - 1) & ~(size_t)(XMIT_BUF_ALIGN - 1);
		void *buf;

		if (posix_memalign(&buf, XMIT_BUF_ALIGN, cap) != 0) {
			r->next_free = c->free_reqs;
			c->free_reqs = r;
			c->n_free_reqs++;
			c->cached_bytes += r->cap;
			return NULL;
		}
		free(r->buf);
		r->buf = buf;
		r->cap = cap;
	}
	r->conn = c;
	r->length = 0;
	r->got = 0;
	r->error = 0;
	r->flush_after = false;
	c->live_reqs++;
	return r;
}

void bc_nbd_req_release(struct bc_nbd_req *r)
{
	struct bc_nbd_conn *c = r->conn;

	c->live_reqs--;
	if (r->type == NBD_CMD_READ || r->type == NBD_CMD_WRITE)
		c->live_bytes -= r->length;
	if (c->n_free_reqs >= BC_NBD_FREE_REQS_MAX) {
		free(r->buf);
		free(r);
		return;
	}
	if (r->cap > BC_NBD_KEEP_BUF_MAX || c->cached_bytes + r->cap > BC_NBD_CACHE_BYTES_MAX) {
		free(r->buf);
		r->buf = NULL;
		r->cap = 0;
	}
	c->cached_bytes += r->cap;
	r->next_free = c->free_reqs;
	c->free_reqs = r;
	c->n_free_reqs++;
}

void bc_nbd_xmit_free_cache(struct bc_nbd_conn *c)
{
	while (c->free_reqs) {
		struct bc_nbd_req *r = c->free_reqs;

		c->free_reqs = r->next_free;
		free(r->buf);
		free(r);
	}
	c->n_free_reqs = 0;
	c->cached_bytes = 0;
}

static void reply_sent(struct bc_nbd_omsg *m)
{
	bc_nbd_req_release(BC_CONTAINER_OF(m, struct bc_nbd_req, out));
}

static void req_reply(struct bc_nbd_req *r, uint32_t error)
{
	struct bc_nbd_conn *c = r->conn;

	bc_nbd_proto_put_simple_reply(r->out.hdr, error, r->handle);
	r->out.hdr_len = NBD_SIMPLE_REPLY_LEN;
	r->out.data = NULL;
	r->out.data_len = 0;
	if (r->type == NBD_CMD_READ && error == 0) {
		r->out.data = r->buf;
		r->out.data_len = r->length;
	}
	r->out.release = reply_sent;
	if (error)
		bc_loop_log(c->loop, BC_LOG_DEBUG, "nbd: conn %u: cmd %u off %llu len %u: error %u", c->id,
		       r->type, (unsigned long long)r->offset, r->length, error);
	if (c->dead)
		bc_nbd_req_release(r);
	else
		bc_nbd_outq_push(&c->outq, &r->out);
}

static void req_submit(struct bc_nbd_req *r, uint8_t op, uint32_t flags, uint64_t off,
		       uint64_t len)
{
	struct bc_nbd_conn *c = r->conn;

	r->breq.op = op;
	r->breq.flags = flags;
	r->breq.offset = off;
	r->breq.length = len;
	r->breq.buf = (op == BC_OP_READ || op == BC_OP_WRITE) ? r->buf : NULL;
	r->breq.done = req_done;
	r->breq.priv = r;
	c->at_target++;
	bc_target_submit(c->target, &r->breq);
}

/* Submit the next piece of a TRIM / WRITE_ZEROES. */
static void req_submit_range(struct bc_nbd_req *r)
{
	uint64_t end = r->offset + r->length;
	uint64_t len = end - r->pos;
	uint64_t max = r->conn->chunk_max;
	uint64_t off = r->pos;

	if (len > max)
		len = max;
	r->pos += len;
	if (r->type == NBD_CMD_TRIM)
		req_submit(r, BC_OP_DISCARD, 0, off, len);
	else
		req_submit(r, BC_OP_WRITE_ZEROES,
			   (r->flags & NBD_CMD_FLAG_FUA) ? BC_REQ_FUA : 0, off, len);
}

/* Start a validated request. */
static void req_start(struct bc_nbd_req *r)
{
	uint32_t fua = (r->flags & NBD_CMD_FLAG_FUA) ? BC_REQ_FUA : 0;

	if (r->length == 0 && r->type != NBD_CMD_FLUSH) {
		/* Unspecified by the protocol; nothing to do, so succeed. */
		req_reply(r, 0);
		return;
	}
	switch (r->type) {
	case NBD_CMD_READ:
		req_submit(r, BC_OP_READ, 0, r->offset, r->length);
		break;
	case NBD_CMD_WRITE:
		req_submit(r, BC_OP_WRITE, fua, r->offset, r->length);
		break;
	case NBD_CMD_FLUSH:
		req_submit(r, BC_OP_FLUSH, 0, 0, 0);
		break;
	case NBD_CMD_TRIM:
		/* FUA on a trim: make it durable with a flush afterwards. */
		r->flush_after = fua && (r->conn->target->flags & BC_TARGET_CAN_FLUSH);
		r->pos = r->offset;
		req_submit_range(r);
		break;
	case NBD_CMD_WRITE_ZEROES:
		r->pos = r->offset;
		req_submit_range(r);
		break;
	default:
		req_reply(r, NBD_EINVAL);
		break;
	}
}

static void req_done(struct bc_request *breq, int result)
{
	struct bc_nbd_req *r = breq->priv;
	struct bc_nbd_conn *c = r->conn;

	c->at_target--;
	if (c->dead) {
		bc_nbd_req_release(r);
	} else if (result < 0) {
		req_reply(r, bc_nbd_proto_errno(result));
	} else if ((r->type == NBD_CMD_TRIM || r->type == NBD_CMD_WRITE_ZEROES) &&
		   breq->op != BC_OP_FLUSH && r->pos < r->offset + r->length) {
		req_submit_range(r);
	} else if (r->flush_after) {
		r->flush_after = false;
		req_submit(r, BC_OP_FLUSH, 0, 0, 0);
	} else {
		req_reply(r, 0);
	}
	bc_nbd_conn_settle(c);
}

static void req_fill(struct bc_nbd_req *r, const struct bc_nbd_request_hdr *h)
{
	r->handle = h->handle;
	r->offset = h->offset;
	r->length = h->length;
	r->type = h->type;
	r->flags = h->flags;
	if (h->type == NBD_CMD_READ || h->type == NBD_CMD_WRITE)
		r->conn->live_bytes += h->length;
}

int bc_nbd_xmit_request(struct bc_nbd_conn *c, const struct bc_nbd_request_hdr *h)
{
	struct bc_nbd_req *r;
	uint32_t err;

	bc_counter_add(c->requests, 1);
	if (h->type == NBD_CMD_DISC) {
		bc_loop_log(c->loop, BC_LOG_DEBUG, "nbd: conn %u: disconnect requested", c->id);
		bc_nbd_conn_disconnect(c);
		return 0;
	}
	err = bc_nbd_proto_check_request(h, c->limits);

	if (h->type == NBD_CMD_WRITE) {
		r = err ? NULL : req_get(c, h->length);
		if (!r) {
			if (!err)
				err = NBD_ENOMEM;
			if (h->length > BC_NBD_DISCARD_MAX) {
				bc_nbd_conn_protocol_error(c, "write payload too large");
				return -EPROTO;
			}
			r = req_get(c, 0);
			if (!r)
				goto nomem;
			req_fill(r, h);
			r->type = NBD_CMD_WRITE;
			r->error = err;
			if (h->length == 0) {
				req_reply(r, err);
				return 0;
			}
			/* The payload follows anyway: read and drop it. */
			c->cur = r;
			c->skip_left = h->length;
			c->rx_state = BC_NBD_RX_REQ_SKIP;
			return 0;
		}
		req_fill(r, h);
		if (h->length == 0) {
			req_start(r);
			return 0;
		}
		c->cur = r;
		c->rx_state = BC_NBD_RX_REQ_DATA;
		return 0;
	}

	r = req_get(c, (!err && h->type == NBD_CMD_READ) ? h->length : 0);
	if (!r) {
		r = req_get(c, 0);
		if (!r)
			goto nomem;
		err = NBD_ENOMEM;
	}
	req_fill(r, h);
	if (err)
		req_reply(r, err);
	else
		req_start(r);
	return 0;

nomem:
	bc_nbd_conn_fail(c, "out of memory");
	return -ENOMEM;
}

void bc_nbd_xmit_payload_done(struct bc_nbd_conn *c)
{
	struct bc_nbd_req *r = c->cur;

	c->cur = NULL;
	c->rx_state = BC_NBD_RX_REQ_HDR;
	req_start(r);
}

void bc_nbd_xmit_skip_done(struct bc_nbd_conn *c)
{
	struct bc_nbd_req *r = c->cur;

	c->cur = NULL;
	c->rx_state = BC_NBD_RX_REQ_HDR;
	req_reply(r, r->error);
}
