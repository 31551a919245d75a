/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the NBD server frontend (frontends/nbd).
 *
 * The input is what a client would send after the server's greeting:
 *
 *   client flags (4) | options (16-byte header + payload)... |
 *   requests (28-byte header [+ WRITE payload])...
 *
 * Every input goes through two stages:
 *
 * 1. Pure: the stream is walked the way conn.c walks it, but only the pure
 *    functions are called (bc_nbd_proto_parse_client_flags,
 *    bc_nbd_proto_parse_opt_hdr, bc_nbd_opt_process against a fixed export,
 *    bc_nbd_proto_parse_info_req, bc_nbd_proto_parse_request,
 *    bc_nbd_proto_check_request, the reply encoders).  Their results are
 *    checked against invariants taken from the NBD protocol: every option
 *    reply is well framed, echoes the option and ends with one ACK or one
 *    error; GO enters transmission only after NBD_INFO_EXPORT and ACK; a
 *    request that passes validation lies inside the export, is aligned and
 *    carries only advertised flags; and so on.  A violated invariant aborts.
 *    (Option payloads of more than BC_NBD_OPT_MAX bytes, which the server
 *    reads and discards, are taken as already skipped here: they cannot
 *    fit in a fuzz input.)
 *
 * 2. Connection: the same bytes are fed to the real connection state
 *    machine (conn.c, xmit.c, outq.c) through an in-process AF_UNIX
 *    socketpair, with a fake event loop and a fake target defined below.
 *    The fake target checks that everything the frontend submits is within
 *    the export, aligned, and within the block / chunk limits, and writes
 *    every byte of READ buffers (so ASan sees a short buffer).  The loop
 *    runs until the connection has freed itself; a connection that stalls
 *    or leaks (ASan leak check) is a failure.  How the session ends is
 *    chosen by the input size (size % 3): the client closes its side after
 *    the input; the server shuts down once the input is consumed; or the
 *    connection is killed hard while requests are at the target.  The
 *    input is delivered in pieces of 5, 64, 1000 bytes or all at once
 *    ((size / 3) % 4) so that headers arrive split across reads.
 */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "blkcache/log.h"
#include "blkcache/loop.h"
#include "blkcache/target.h"
#include "internal.h"

#define CHECK(cond)                                                                   \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "fuzz-nbd: invariant violated at %s:%d: %s\n", \
				__FILE__, __LINE__, #cond);                           \
			abort();                                                      \
		}                                                                     \
	} while (0)

/* The fixed export: named like the real server's, with small limits so
 * that the fuzzer reaches them, in two variants: everything supported with
 * 512-byte blocks (as blkcache serves), or no FLUSH/FUA/TRIM/WRITE_ZEROES
 * with 4 KiB blocks.  (size / 12) % 2 picks one. */
#define FZ_NAME      "blkcache"
#define FZ_DESC      "fuzzed export"
#define FZ_SIZE      (8ull * 1024 * 1024)
#define FZ_INFLIGHT  4u

struct fz_cfg {
	uint32_t tflags;  /* BC_TARGET_* */
	uint32_t min_block, pref_block, max_block;
	uint64_t chunk;   /* largest TRIM / WRITE_ZEROES piece */
};

static const struct fz_cfg fz_cfgs[2] = {
	{ BC_TARGET_CAN_FLUSH | BC_TARGET_CAN_FUA | BC_TARGET_CAN_DISCARD |
		  BC_TARGET_CAN_ZEROES | BC_TARGET_MULTI_CONN,
	  512, 4096, 128 * 1024, 64 * 1024 },
	{ 0, 4096, 4096, 64 * 1024, 64 * 1024 },
};

static const struct fz_cfg *cfg = &fz_cfgs[0];
/* Loop iterations after which a connection that still exists has hung. */
#define FZ_MAX_ITERS 200000u

static uint16_t rd16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return be16toh(v);
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return be32toh(v);
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return be64toh(v);
}

static bool is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

static void fz_export(struct bc_nbd_export *e, struct bc_nbd_limits *l)
{
	memset(e, 0, sizeof(*e));
	e->name = FZ_NAME;
	e->name_len = strlen(FZ_NAME);
	e->description = FZ_DESC;
	e->description_len = strlen(FZ_DESC);
	e->size = FZ_SIZE;
	e->tx_flags = bc_nbd_proto_tx_flags(cfg->tflags);
	e->min_block = cfg->min_block;
	e->pref_block = cfg->pref_block;
	e->max_block = cfg->max_block;
	l->size = FZ_SIZE;
	l->min_block = cfg->min_block;
	l->max_block = cfg->max_block;
	l->tx_flags = e->tx_flags;
}

/* ---- stage 1: pure functions ---- */

struct reader {
	const uint8_t *p;
	size_t n;
};

static const uint8_t *take(struct reader *r, size_t n)
{
	const uint8_t *p = r->p;

	if (r->n < n)
		return NULL;
	r->p += n;
	r->n -= n;
	return p;
}

static void check_info_req(const uint8_t *data, uint32_t len)
{
	struct bc_nbd_info_req req;
	uint32_t i;

	if (bc_nbd_proto_parse_info_req(data, len, &req) < 0)
		return;
	CHECK(len >= 6);
	CHECK(req.name_len <= NBD_MAX_STRING);
	CHECK(req.name == (const char *)data + 4);
	CHECK(4ull + req.name_len + 2 + 2ull * req.n_requests == len);
	CHECK(rd32(data) == req.name_len);
	for (i = 0; i < req.n_requests; i++) {
		uint16_t t = rd16(data + 4 + req.name_len + 2 + 2 * i);

		if (t < 32)
			CHECK(req.requested & (1u << t));
	}
}

/* One reply to option @opt: its type and its payload (@len bytes at @h). */
static void check_opt_reply(const struct bc_nbd_export *exp, uint32_t opt, uint32_t type,
			    const uint8_t *h, uint32_t len, bool *saw_export, bool *saw_block)
{
	if (type == NBD_REP_INFO) {
		CHECK(opt == NBD_OPT_INFO || opt == NBD_OPT_GO);
		CHECK(len >= 2);
		switch (rd16(h)) {
		case NBD_INFO_EXPORT:
			CHECK(len == 12);
			CHECK(rd64(h + 2) == exp->size);
			CHECK(rd16(h + 10) == exp->tx_flags);
			CHECK(rd16(h + 10) & NBD_FLAG_HAS_FLAGS);
			*saw_export = true;
			break;
		case NBD_INFO_BLOCK_SIZE:
			CHECK(len == 14);
			CHECK(is_pow2(rd32(h + 2)) && rd32(h + 2) <= 65536);
			CHECK(is_pow2(rd32(h + 6)) && rd32(h + 6) >= rd32(h + 2));
			CHECK(rd32(h + 10) >= rd32(h + 6));
			CHECK(rd32(h + 10) % rd32(h + 2) == 0);
			*saw_block = true;
			break;
		case NBD_INFO_NAME:
			CHECK(len - 2 == exp->name_len);
			CHECK(memcmp(h + 2, exp->name, exp->name_len) == 0);
			break;
		case NBD_INFO_DESCRIPTION:
			CHECK(exp->description && len - 2 == exp->description_len);
			CHECK(memcmp(h + 2, exp->description, exp->description_len) == 0);
			break;
		default:
			CHECK(!"unknown NBD_INFO type sent");
		}
	} else if (type == NBD_REP_SERVER) {
		CHECK(opt == NBD_OPT_LIST);
		CHECK(len >= 4 && rd32(h) == len - 4);
		CHECK(len - 4 == exp->name_len && memcmp(h + 4, exp->name, exp->name_len) == 0);
	} else if (type & NBD_REP_ERR_BIT) {
		CHECK(type >= NBD_REP_ERR_UNSUP && type <= NBD_REP_ERR_TOO_BIG);
		CHECK(len == 0);
	} else {
		CHECK(type == NBD_REP_ACK);
		CHECK(len == 0);
	}
}

/* The reply bytes of one option, as bc_nbd_opt_process produced them. */
static void check_opt_output(const struct bc_nbd_export *exp, uint32_t opt, int action,
			     bool no_zeroes, const struct bc_nbd_obuf *out)
{
	uint32_t last = 0, n = 0;
	bool saw_export = false, saw_block = false;
	size_t pos = 0, i;

	CHECK(action >= BC_NBD_OPT_CONTINUE && action <= BC_NBD_OPT_DROP);
	CHECK(out->err == 0);
	if (action == BC_NBD_OPT_DROP) {
		/* Only EXPORT_NAME cannot be answered with an error. */
		CHECK(opt == NBD_OPT_EXPORT_NAME);
		CHECK(out->len == 0);
		return;
	}
	if (opt == NBD_OPT_EXPORT_NAME) {
		CHECK(action == BC_NBD_OPT_ENTER_TX);
		CHECK(out->len == (no_zeroes ? 10u : NBD_EXPORT_NAME_REPLY_MAX));
		CHECK(rd64(out->data) == exp->size);
		CHECK(rd16(out->data + 8) == exp->tx_flags);
		for (i = 10; i < out->len; i++)
			CHECK(out->data[i] == 0);
		return;
	}
	while (pos < out->len) {
		const uint8_t *h = out->data + pos;
		uint32_t type, len;

		/* Nothing may follow the final ACK or error. */
		CHECK(n == 0 || (last != NBD_REP_ACK && !(last & NBD_REP_ERR_BIT)));
		CHECK(out->len - pos >= NBD_OPT_REPLY_HDR_LEN);
		CHECK(rd64(h) == NBD_REP_MAGIC);
		CHECK(rd32(h + 8) == opt);
		type = rd32(h + 12);
		len = rd32(h + 16);
		pos += NBD_OPT_REPLY_HDR_LEN;
		CHECK(len <= out->len - pos);
		h = out->data + pos;
		check_opt_reply(exp, opt, type, h, len, &saw_export, &saw_block);
		last = type;
		n++;
		pos += len;
	}
	/* Every option but a refused EXPORT_NAME is answered, with exactly
	 * one final ACK or error. */
	CHECK(n > 0);
	CHECK(last == NBD_REP_ACK || (last & NBD_REP_ERR_BIT));
	if (last & NBD_REP_ERR_BIT)
		CHECK(action == BC_NBD_OPT_CONTINUE && n == 1);
	switch (opt) {
	case NBD_OPT_ABORT:
		CHECK(action == BC_NBD_OPT_ABORT && last == NBD_REP_ACK && n == 1);
		break;
	case NBD_OPT_GO:
	case NBD_OPT_INFO:
		if (last == NBD_REP_ACK) {
			/* NBD_INFO_EXPORT is mandatory; block sizes are
			 * sent because the minimum is not 1. */
			CHECK(saw_export && saw_block);
			CHECK(action == (opt == NBD_OPT_GO ? BC_NBD_OPT_ENTER_TX
							   : BC_NBD_OPT_CONTINUE));
		}
		break;
	case NBD_OPT_LIST:
		CHECK(action == BC_NBD_OPT_CONTINUE);
		CHECK(last == NBD_REP_ACK ? n == 2 : n == 1);
		break;
	default:
		CHECK(action == BC_NBD_OPT_CONTINUE);
		CHECK(last == NBD_REP_ERR_UNSUP);
		break;
	}
}

/* Handshake; true when the transmission phase is entered. */
static bool pure_handshake(struct reader *in, const struct bc_nbd_export *exp)
{
	const uint8_t *p;
	uint32_t flags = 0;
	bool no_zeroes;
	uint8_t greeting[NBD_GREETING_LEN];

	bc_nbd_proto_put_greeting(greeting);
	CHECK(rd64(greeting) == NBD_MAGIC && rd64(greeting + 8) == NBD_IHAVEOPT);
	CHECK(rd16(greeting + 16) == (NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES));

	p = take(in, NBD_CLIENT_FLAGS_LEN);
	if (!p)
		return false;
	if (bc_nbd_proto_parse_client_flags(p, &flags) < 0) {
		CHECK(rd32(p) & ~3u);
		return false;
	}
	CHECK(flags == rd32(p) && !(flags & ~3u));
	no_zeroes = flags & NBD_FLAG_C_NO_ZEROES;

	for (;;) {
		struct bc_nbd_opt_hdr oh;
		struct bc_nbd_obuf out;
		const uint8_t *data = NULL;
		int action;

		p = take(in, NBD_OPT_HDR_LEN);
		if (!p)
			return false;
		if (bc_nbd_proto_parse_opt_hdr(p, &oh) < 0) {
			CHECK(rd64(p) != NBD_IHAVEOPT);
			return false;
		}
		CHECK(rd64(p) == NBD_IHAVEOPT && oh.opt == rd32(p + 8) && oh.len == rd32(p + 12));
		/* The size rules of conn.c. */
		if (oh.len <= BC_NBD_OPT_MAX) {
			data = take(in, oh.len);
			if (!data)
				return false; /* truncated: the peer went away */
		} else if (oh.len > BC_NBD_OPT_DISCARD_MAX || oh.opt == NBD_OPT_EXPORT_NAME) {
			return false; /* closed as a protocol error */
		}
		if (data && (oh.opt == NBD_OPT_INFO || oh.opt == NBD_OPT_GO))
			check_info_req(data, oh.len);

		bc_nbd_obuf_init(&out);
		action = bc_nbd_opt_process(exp, oh.opt, oh.len ? data : NULL, oh.len, no_zeroes,
					    &out);
		check_opt_output(exp, oh.opt, action, no_zeroes, &out);
		bc_nbd_obuf_release(&out);
		if (action == BC_NBD_OPT_ENTER_TX)
			return true;
		if (action != BC_NBD_OPT_CONTINUE)
			return false;
	}
}

static void check_validated(const struct bc_nbd_request_hdr *h, const struct bc_nbd_limits *lim,
			    uint32_t err)
{
	uint16_t allowed = 0;

	if (err) {
		CHECK(err == NBD_EINVAL || err == NBD_ENOSPC);
		if (err == NBD_ENOSPC)
			CHECK(h->type == NBD_CMD_WRITE || h->type == NBD_CMD_WRITE_ZEROES);
		return;
	}
	if (lim->tx_flags & NBD_FLAG_SEND_FUA)
		allowed |= NBD_CMD_FLAG_FUA;
	switch (h->type) {
	case NBD_CMD_READ:
	case NBD_CMD_WRITE:
		CHECK(h->length <= lim->max_block);
		break;
	case NBD_CMD_FLUSH:
		CHECK(lim->tx_flags & NBD_FLAG_SEND_FLUSH);
		CHECK(!(h->flags & ~allowed));
		return;
	case NBD_CMD_TRIM:
		CHECK(lim->tx_flags & NBD_FLAG_SEND_TRIM);
		break;
	case NBD_CMD_WRITE_ZEROES:
		CHECK(lim->tx_flags & NBD_FLAG_SEND_WRITE_ZEROES);
		allowed |= NBD_CMD_FLAG_NO_HOLE;
		break;
	default:
		CHECK(!"unknown command accepted");
	}
	CHECK(!(h->flags & ~allowed));
	CHECK(h->offset <= lim->size && h->length <= lim->size - h->offset);
	CHECK(h->offset % lim->min_block == 0 && h->length % lim->min_block == 0);
}

static void pure_transmission(struct reader *in, const struct bc_nbd_limits *lim)
{
	static const uint32_t nbd_errors[] = { 0, NBD_EPERM, NBD_EIO, NBD_ENOMEM, NBD_EINVAL,
					       NBD_ENOSPC, NBD_EOVERFLOW, NBD_ENOTSUP,
					       NBD_ESHUTDOWN };
	const uint8_t *p;

	while ((p = take(in, NBD_REQUEST_LEN)) != NULL) {
		struct bc_nbd_request_hdr h;
		uint8_t reply[NBD_SIMPLE_REPLY_LEN];
		uint32_t err, mapped;
		size_t i;
		bool known = false;

		if (bc_nbd_proto_parse_request(p, &h) < 0) {
			CHECK(rd32(p) != NBD_REQUEST_MAGIC);
			return; /* closed as a protocol error */
		}
		CHECK(rd32(p) == NBD_REQUEST_MAGIC);
		CHECK(h.flags == rd16(p + 4) && h.type == rd16(p + 6));
		CHECK(h.offset == rd64(p + 16) && h.length == rd32(p + 24));
		CHECK(memcmp(&h.handle, p + 8, 8) == 0);
		if (h.type == NBD_CMD_DISC)
			return;

		err = bc_nbd_proto_check_request(&h, lim);
		check_validated(&h, lim, err);

		/* The reply echoes the handle bytes unchanged. */
		bc_nbd_proto_put_simple_reply(reply, err, h.handle);
		CHECK(rd32(reply) == NBD_SIMPLE_REPLY_MAGIC && rd32(reply + 4) == err);
		CHECK(memcmp(reply + 8, p + 8, 8) == 0);

		/* Any target error maps onto a value the protocol defines. */
		mapped = bc_nbd_proto_errno(-(int)(h.offset & 0xff));
		for (i = 0; i < sizeof(nbd_errors) / sizeof(nbd_errors[0]); i++)
			known |= mapped == nbd_errors[i];
		CHECK(known);
		CHECK(bc_nbd_proto_errno((int)(h.offset & 0xff)) == mapped);

		if (h.type == NBD_CMD_WRITE) {
			/* Accepted or not, the payload follows (conn.c closes
			 * the connection above BC_NBD_DISCARD_MAX). */
			if (err && h.length > BC_NBD_DISCARD_MAX)
				return;
			if (!take(in, h.length))
				return;
		}
	}
}

static void run_pure(const uint8_t *data, size_t size)
{
	struct bc_nbd_export exp;
	struct bc_nbd_limits lim;
	struct reader in = { data, size };
	uint8_t buf[NBD_EXPORT_NAME_REPLY_MAX];

	fz_export(&exp, &lim);
	CHECK(bc_nbd_proto_put_export_name_reply(buf, exp.size, exp.tx_flags, true) == 10);
	if (pure_handshake(&in, &exp))
		pure_transmission(&in, &lim);
}

/* ---- stage 2: the real connection state machine ---- */

#define FZ_POLLS   4
#define FZ_PENDING 64

struct fz_poll {
	struct bc_completion *comp;
	int fd;
	unsigned events;
	bool used;
	bool cancelled;
};

/* The fake event loop (struct bc_loop is opaque to the frontend). */
struct bc_loop {
	struct fz_poll polls[FZ_POLLS];
	struct bc_completion *defer_head;
	struct bc_completion **defer_tail;
};

static struct bc_loop fz_loop;
static struct bc_request *fz_pending[FZ_PENDING];
static unsigned fz_npending;

void bc_log(enum bc_log_level level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	(void)level;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap); /* the arguments are still used */
	va_end(ap);
}

void bc_loop_log(struct bc_loop *loop, enum bc_log_level level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	(void)loop;
	(void)level;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
}

int bc_loop_poll_add(struct bc_loop *loop, int fd, unsigned events, struct bc_completion *c)
{
	unsigned i;

	for (i = 0; i < FZ_POLLS; i++)
		CHECK(!(loop->polls[i].used && loop->polls[i].comp == c)); /* armed twice */
	CHECK(fd >= 0 && c->fn);
	for (i = 0; i < FZ_POLLS; i++) {
		if (!loop->polls[i].used) {
			loop->polls[i] = (struct fz_poll){ c, fd, events, true, false };
			return 0;
		}
	}
	CHECK(!"too many polls armed");
	return -EBUSY;
}

int bc_loop_poll_cancel(struct bc_loop *loop, struct bc_completion *c)
{
	unsigned i;

	for (i = 0; i < FZ_POLLS; i++) {
		if (loop->polls[i].used && loop->polls[i].comp == c) {
			loop->polls[i].cancelled = true;
			return 0;
		}
	}
	return -ENOENT;
}

void bc_loop_defer(struct bc_loop *loop, struct bc_completion *c, int res)
{
	struct bc_completion *d;

	for (d = loop->defer_head; d; d = d->next)
		CHECK(d != c); /* deferred twice */
	CHECK(c->fn);
	c->res = res;
	c->next = NULL;
	*loop->defer_tail = c;
	loop->defer_tail = &c->next;
}

/* The fuzzed server has one export on its own loop: nothing moves. */
int bc_loop_post(struct bc_loop *from, struct bc_loop *to, struct bc_msg *m, int res)
{
	(void)from, (void)to, (void)m, (void)res;
	CHECK(!"a connection moved to another loop");
	return -EINVAL;
}

static void fz_submit(void *ctx, struct bc_request *req)
{
	(void)ctx;
	CHECK(req->done);
	CHECK(fz_npending < FZ_PENDING);
	switch (req->op) {
	case BC_OP_READ:
	case BC_OP_WRITE:
		CHECK(req->length > 0 && req->length <= cfg->max_block);
		CHECK(req->buf && (uintptr_t)req->buf % 512 == 0);
		if (req->op == BC_OP_READ) {
			memset(req->buf, 0xa5, req->length);
		} else {
			volatile uint8_t sum = 0;
			uint64_t i;

			for (i = 0; i < req->length; i++)
				sum ^= ((const uint8_t *)req->buf)[i];
			(void)sum;
		}
		break;
	case BC_OP_FLUSH:
		CHECK(req->offset == 0 && req->length == 0 && req->flags == 0);
		break;
	case BC_OP_DISCARD:
	case BC_OP_WRITE_ZEROES:
		CHECK(req->length > 0 && req->length <= cfg->chunk);
		break;
	default:
		CHECK(!"unknown op submitted");
	}
	CHECK(req->op != BC_OP_FLUSH || (cfg->tflags & BC_TARGET_CAN_FLUSH));
	CHECK(req->op != BC_OP_DISCARD || (cfg->tflags & BC_TARGET_CAN_DISCARD));
	CHECK(req->op != BC_OP_WRITE_ZEROES || (cfg->tflags & BC_TARGET_CAN_ZEROES));
	CHECK(!(req->flags & BC_REQ_FUA) || (cfg->tflags & BC_TARGET_CAN_FUA));
	if (req->op != BC_OP_FLUSH) {
		CHECK(req->offset % cfg->min_block == 0 && req->length % cfg->min_block == 0);
		CHECK(req->offset <= FZ_SIZE && req->length <= FZ_SIZE - req->offset);
	}
	CHECK(!(req->flags & ~BC_REQ_FUA));
	CHECK(!(req->flags & BC_REQ_FUA) || req->op == BC_OP_WRITE ||
	      req->op == BC_OP_WRITE_ZEROES);
	fz_pending[fz_npending++] = req;
}

static const struct bc_target_ops fz_target_ops = { "fuzz", fz_submit };
static struct bc_target fz_target = { .ops = &fz_target_ops, .size = FZ_SIZE };

/* Some requests fail, depending on where they are. */
static int fz_result(const struct bc_request *req)
{
	switch ((req->offset >> 9) % 17) {
	case 11:
		return -EIO;
	case 13:
		return -ENOSPC;
	case 15:
		return -EROFS;
	default:
		return 0;
	}
}

static bool run_defers(struct bc_loop *loop)
{
	struct bc_completion *c = loop->defer_head;

	if (!c)
		return false;
	loop->defer_head = NULL;
	loop->defer_tail = &loop->defer_head;
	while (c) {
		struct bc_completion *next = c->next;

		c->next = NULL;
		c->fn(c, c->res);
		c = next;
	}
	return true;
}

/* Complete what the target holds, in submission order or reversed. */
static bool run_target(bool reverse)
{
	struct bc_request *batch[FZ_PENDING];
	unsigned i, n = fz_npending;

	if (n == 0)
		return false;
	memcpy(batch, fz_pending, n * sizeof(batch[0]));
	fz_npending = 0;
	for (i = 0; i < n; i++) {
		struct bc_request *r = batch[reverse ? n - 1 - i : i];

		r->done(r, fz_result(r));
	}
	return true;
}

static bool run_polls(struct bc_loop *loop)
{
	bool progress = false;
	unsigned i;

	for (i = 0; i < FZ_POLLS; i++) {
		struct fz_poll p = loop->polls[i];
		struct pollfd pfd;
		int res;

		if (!p.used)
			continue;
		if (p.cancelled) {
			res = -ECANCELED;
		} else {
			pfd = (struct pollfd){ .fd = p.fd, .events = (short)p.events };
			if (poll(&pfd, 1, 0) <= 0)
				continue;
			res = pfd.revents;
		}
		loop->polls[i].used = false;
		p.comp->fn(p.comp, res);
		progress = true;
	}
	return progress;
}

/* Read whatever the server sent; keep its first bytes. */
static void drain(int fd, uint8_t *head, size_t *total)
{
	uint8_t buf[65536];
	ssize_t n;

	while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		if (*total < NBD_GREETING_LEN) {
			size_t k = NBD_GREETING_LEN - *total;

			memcpy(head + *total, buf, (size_t)n < k ? (size_t)n : k);
		}
		*total += (size_t)n;
	}
}

enum fz_end { FZ_END_EOF = 0, FZ_END_SHUTDOWN, FZ_END_KILL };

static void run_conn(const uint8_t *data, size_t size)
{
	static const size_t pieces[] = { SIZE_MAX, 5, 64, 1000 };
	enum fz_end end = (enum fz_end)(size % 3);
	size_t piece = pieces[(size / 3) % 4];
	struct bc_nbd_server srv;
	uint8_t head[NBD_GREETING_LEN], greeting[NBD_GREETING_LEN];
	size_t fed = 0, total = 0;
	bool eof_sent = false, ended = false;
	unsigned iter;
	int sv[2], sndbuf = 4096;

	memset(&fz_loop, 0, sizeof(fz_loop));
	fz_loop.defer_tail = &fz_loop.defer_head;
	fz_npending = 0;
	memset(&srv, 0, sizeof(srv));
	srv.loop = &fz_loop;
	srv.target = &fz_target;
	fz_export(&srv.exp, &srv.limits);
	srv.max_inflight = FZ_INFLIGHT;
	srv.chunk_max = cfg->chunk;
	fz_target.min_block = cfg->min_block;
	fz_target.pref_block = cfg->pref_block;
	fz_target.max_block = cfg->max_block;
	fz_target.flags = cfg->tflags;

	/* Fails if an earlier run leaked descriptors. */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	/* A small send buffer: large replies go out in several sends. */
	CHECK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) == 0);
	CHECK(bc_nbd_conn_start(&srv, sv[0]) == 0);

	for (iter = 0; srv.conns; iter++) {
		bool progress = false;

		CHECK(iter < FZ_MAX_ITERS);
		if (fed < size) {
			size_t n = size - fed < piece ? size - fed : piece;
			ssize_t w = send(sv[1], data + fed, n, MSG_DONTWAIT | MSG_NOSIGNAL);

			if (w > 0) {
				fed += (size_t)w;
				progress = true;
			}
		}
		if (fed == size && end == FZ_END_EOF && !eof_sent) {
			shutdown(sv[1], SHUT_WR);
			eof_sent = true;
			progress = true;
		}
		drain(sv[1], head, &total);
		if (end == FZ_END_KILL && !ended && fz_npending > 0) {
			bc_nbd_conn_kill(srv.conns);
			ended = true;
			continue;
		}
		progress |= run_defers(&fz_loop);
		progress |= run_target(iter & 1);
		if (!srv.conns)
			break;
		progress |= run_polls(&fz_loop);
		if (!srv.conns || progress)
			continue;
		/* Quiet, and all input delivered. */
		CHECK(fed == size);
		CHECK(!ended); /* hung: waiting for something that never comes */
		ended = true;
		if (end == FZ_END_SHUTDOWN)
			bc_nbd_conn_shutdown(srv.conns);
		else if (end == FZ_END_KILL)
			bc_nbd_conn_kill(srv.conns);
		else
			CHECK(!"connection hung after end of input");
	}
	drain(sv[1], head, &total);
	close(sv[1]);

	/* Everything was given back. */
	CHECK(fz_npending == 0);
	CHECK(fz_loop.defer_head == NULL);
	for (iter = 0; iter < FZ_POLLS; iter++)
		CHECK(!fz_loop.polls[iter].used);
	CHECK(srv.stats.connections_open == 0 && srv.stats.connections_total == 1);

	/* The greeting always leads, unless the connection died first. */
	if (total >= NBD_GREETING_LEN) {
		bc_nbd_proto_put_greeting(greeting);
		CHECK(memcmp(head, greeting, NBD_GREETING_LEN) == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cfg = &fz_cfgs[(size / 12) % 2];
	run_pure(data, size);
	run_conn(data, size);
	return 0;
}
