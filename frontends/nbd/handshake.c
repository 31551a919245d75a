/* SPDX-License-Identifier: BSD-3-Clause */
/* Fixed newstyle option haggling (pure: option bytes and the exports in,
 * reply bytes and the export chosen out). */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "handshake.h"
#include "proto.h"

void bc_nbd_obuf_init(struct bc_nbd_obuf *b)
{
	memset(b, 0, sizeof(*b));
}

void bc_nbd_obuf_put(struct bc_nbd_obuf *b, const void *p, size_t n)
{
	if (b->err || n == 0)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		uint8_t *d;

		while (cap < b->len + n)
			cap *= 2;
		d = realloc(b->data, cap);
		if (!d) {
			b->err = -ENOMEM;
			return;
		}
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void bc_nbd_obuf_release(struct bc_nbd_obuf *b)
{
	free(b->data);
	bc_nbd_obuf_init(b);
}

static void put_reply(struct bc_nbd_obuf *out, uint32_t opt, uint32_t type,
		      const void *payload, uint32_t len)
{
	uint8_t hdr[NBD_OPT_REPLY_HDR_LEN];

	bc_nbd_proto_put_opt_reply_hdr(hdr, opt, type, len);
	bc_nbd_obuf_put(out, hdr, sizeof(hdr));
	bc_nbd_obuf_put(out, payload, len);
}

/* NBD_REP_INFO carrying a 16-bit info type followed by @len bytes. */
static void put_info(struct bc_nbd_obuf *out, uint32_t opt, uint16_t type,
		     const void *payload, uint32_t len)
{
	uint8_t hdr[NBD_OPT_REPLY_HDR_LEN + 2];
	uint16_t be = htobe16(type);

	bc_nbd_proto_put_opt_reply_hdr(hdr, opt, NBD_REP_INFO, len + 2);
	memcpy(hdr + NBD_OPT_REPLY_HDR_LEN, &be, 2);
	bc_nbd_obuf_put(out, hdr, sizeof(hdr));
	bc_nbd_obuf_put(out, payload, len);
}

const struct bc_nbd_export *bc_nbd_export_find(const struct bc_nbd_export *exps,
					       const char *name, size_t len)
{
	const struct bc_nbd_export *e;

	for (e = exps; e; e = e->next)
		if (e->name_len == len && (len == 0 || memcmp(name, e->name, len) == 0))
			return e;
	return len == 0 ? exps : NULL; /* "": the default export */
}

static int opt_info_go(const struct bc_nbd_export *exps, uint32_t opt, const uint8_t *data,
		       uint32_t len, struct bc_nbd_obuf *out, const struct bc_nbd_export **selected)
{
	const struct bc_nbd_export *exp;
	struct bc_nbd_info_req req;
	uint8_t buf[12];
	uint64_t be64;
	uint32_t be32;
	uint16_t be16;

	if (!data || bc_nbd_proto_parse_info_req(data, len, &req) < 0) {
		put_reply(out, opt, NBD_REP_ERR_INVALID, NULL, 0);
		return BC_NBD_OPT_CONTINUE;
	}
	exp = bc_nbd_export_find(exps, req.name, req.name_len);
	if (!exp) {
		put_reply(out, opt, NBD_REP_ERR_UNKNOWN, NULL, 0);
		return BC_NBD_OPT_CONTINUE;
	}

	be64 = htobe64(exp->size);
	be16 = htobe16(exp->tx_flags);
	memcpy(buf, &be64, 8);
	memcpy(buf + 8, &be16, 2);
	put_info(out, opt, NBD_INFO_EXPORT, buf, 10);

	/* Always advertised: the minimum block size is not the default (1). */
	be32 = htobe32(exp->min_block);
	memcpy(buf, &be32, 4);
	be32 = htobe32(exp->pref_block);
	memcpy(buf + 4, &be32, 4);
	be32 = htobe32(exp->max_block);
	memcpy(buf + 8, &be32, 4);
	put_info(out, opt, NBD_INFO_BLOCK_SIZE, buf, 12);

	if (req.requested & (1u << NBD_INFO_NAME))
		put_info(out, opt, NBD_INFO_NAME, exp->name, (uint32_t)exp->name_len);
	if (exp->description)
		put_info(out, opt, NBD_INFO_DESCRIPTION, exp->description,
			 (uint32_t)exp->description_len);

	put_reply(out, opt, NBD_REP_ACK, NULL, 0);
	if (opt != NBD_OPT_GO)
		return BC_NBD_OPT_CONTINUE;
	*selected = exp;
	return BC_NBD_OPT_ENTER_TX;
}

/* One NBD_REP_SERVER per export, in order, then ACK. */
static int opt_list(const struct bc_nbd_export *exps, uint32_t len, struct bc_nbd_obuf *out)
{
	const struct bc_nbd_export *exp;
	uint8_t hdr[NBD_OPT_REPLY_HDR_LEN + 4];
	uint32_t be;

	if (len != 0) {
		put_reply(out, NBD_OPT_LIST, NBD_REP_ERR_INVALID, NULL, 0);
		return BC_NBD_OPT_CONTINUE;
	}
	for (exp = exps; exp; exp = exp->next) {
		bc_nbd_proto_put_opt_reply_hdr(hdr, NBD_OPT_LIST, NBD_REP_SERVER,
					       (uint32_t)exp->name_len + 4);
		be = htobe32((uint32_t)exp->name_len);
		memcpy(hdr + NBD_OPT_REPLY_HDR_LEN, &be, 4);
		bc_nbd_obuf_put(out, hdr, sizeof(hdr));
		bc_nbd_obuf_put(out, exp->name, exp->name_len);
	}
	put_reply(out, NBD_OPT_LIST, NBD_REP_ACK, NULL, 0);
	return BC_NBD_OPT_CONTINUE;
}

static int opt_export_name(const struct bc_nbd_export *exps, const uint8_t *data, uint32_t len,
			   bool no_zeroes, struct bc_nbd_obuf *out,
			   const struct bc_nbd_export **selected)
{
	const struct bc_nbd_export *exp;
	uint8_t buf[NBD_EXPORT_NAME_REPLY_MAX];
	size_t n;

	/* This option cannot be answered with an error: the only way to
	 * refuse is to terminate the session. */
	if ((!data && len) || len > NBD_MAX_STRING)
		return BC_NBD_OPT_DROP;
	exp = bc_nbd_export_find(exps, (const char *)data, len);
	if (!exp)
		return BC_NBD_OPT_DROP;
	n = bc_nbd_proto_put_export_name_reply(buf, exp->size, exp->tx_flags, no_zeroes);
	bc_nbd_obuf_put(out, buf, n);
	*selected = exp;
	return BC_NBD_OPT_ENTER_TX;
}

int bc_nbd_opt_process(const struct bc_nbd_export *exps, uint32_t opt, const uint8_t *data,
		       uint32_t len, bool no_zeroes, struct bc_nbd_obuf *out)
{
	return bc_nbd_opt_process_sel(exps, opt, data, len, no_zeroes, out, NULL);
}

int bc_nbd_opt_process_sel(const struct bc_nbd_export *exps, uint32_t opt, const uint8_t *data,
			   uint32_t len, bool no_zeroes, struct bc_nbd_obuf *out,
			   const struct bc_nbd_export **selected)
{
	const struct bc_nbd_export *sel = NULL;
	int action;

	if (len > 0 && !data && opt != NBD_OPT_EXPORT_NAME && opt != NBD_OPT_ABORT) {
		/* Oversized payload, already skipped. */
		bool known = opt == NBD_OPT_LIST || opt == NBD_OPT_INFO || opt == NBD_OPT_GO;

		put_reply(out, opt, known ? NBD_REP_ERR_INVALID : NBD_REP_ERR_UNSUP, NULL, 0);
		return out->err ? out->err : BC_NBD_OPT_CONTINUE;
	}

	switch (opt) {
	case NBD_OPT_EXPORT_NAME:
		action = opt_export_name(exps, data, len, no_zeroes, out, &sel);
		break;
	case NBD_OPT_ABORT:
		/* Any payload is ignored, as the specification recommends. */
		put_reply(out, opt, NBD_REP_ACK, NULL, 0);
		action = BC_NBD_OPT_ABORT;
		break;
	case NBD_OPT_LIST:
		action = opt_list(exps, len, out);
		break;
	case NBD_OPT_INFO:
	case NBD_OPT_GO:
		action = opt_info_go(exps, opt, data, len, out, &sel);
		break;
	default:
		/* STARTTLS, STRUCTURED_REPLY, meta contexts, extended headers
		 * and anything unknown: simple replies, no TLS. */
		put_reply(out, opt, NBD_REP_ERR_UNSUP, NULL, 0);
		action = BC_NBD_OPT_CONTINUE;
		break;
	}
	if (out->err)
		return out->err;
	if (selected && action == BC_NBD_OPT_ENTER_TX)
		*selected = sel;
	return action;
}
