/* SPDX-License-Identifier: BSD-3-Clause */
/* NBD wire encoding and decoding: pure functions over byte buffers. */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "blkcache/target.h"
#include "proto.h"

static void put16(uint8_t *p, uint16_t v)
{
	v = htobe16(v);
	memcpy(p, &v, sizeof(v));
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, sizeof(v));
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, sizeof(v));
}

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return be16toh(v);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return be32toh(v);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return be64toh(v);
}

void bc_nbd_proto_put_greeting(uint8_t out[NBD_GREETING_LEN])
{
	put64(out, NBD_MAGIC);
	put64(out + 8, NBD_IHAVEOPT);
	put16(out + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
}

void bc_nbd_proto_put_opt_reply_hdr(uint8_t out[NBD_OPT_REPLY_HDR_LEN], uint32_t opt,
				    uint32_t type, uint32_t len)
{
	put64(out, NBD_REP_MAGIC);
	put32(out + 8, opt);
	put32(out + 12, type);
	put32(out + 16, len);
}

void bc_nbd_proto_put_simple_reply(uint8_t out[NBD_SIMPLE_REPLY_LEN], uint32_t error,
				   uint64_t handle)
{
	put32(out, NBD_SIMPLE_REPLY_MAGIC);
	put32(out + 4, error);
	/* The handle is opaque: echo its bytes exactly as received. */
	memcpy(out + 8, &handle, sizeof(handle));
}

size_t bc_nbd_proto_put_export_name_reply(uint8_t out[NBD_EXPORT_NAME_REPLY_MAX],
					  uint64_t size, uint16_t tx_flags, bool no_zeroes)
{
	put64(out, size);
	put16(out + 8, tx_flags);
	if (no_zeroes)
		return 10;
	memset(out + 10, 0, 124);
	return NBD_EXPORT_NAME_REPLY_MAX;
}

int bc_nbd_proto_parse_client_flags(const uint8_t in[NBD_CLIENT_FLAGS_LEN], uint32_t *flags)
{
	uint32_t f = get32(in);

	/* Only flags matching what the greeting advertised are allowed. */
	if (f & ~(uint32_t)(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES))
		return -EPROTO;
	*flags = f;
	return 0;
}

int bc_nbd_proto_parse_opt_hdr(const uint8_t in[NBD_OPT_HDR_LEN], struct bc_nbd_opt_hdr *h)
{
	if (get64(in) != NBD_IHAVEOPT)
		return -EPROTO;
	h->opt = get32(in + 8);
	h->len = get32(in + 12);
	return 0;
}

int bc_nbd_proto_parse_request(const uint8_t in[NBD_REQUEST_LEN], struct bc_nbd_request_hdr *r)
{
	if (get32(in) != NBD_REQUEST_MAGIC)
		return -EPROTO;
	r->flags = get16(in + 4);
	r->type = get16(in + 6);
	memcpy(&r->handle, in + 8, sizeof(r->handle)); /* opaque, kept raw */
	r->offset = get64(in + 16);
	r->length = get32(in + 24);
	return 0;
}

int bc_nbd_proto_parse_info_req(const uint8_t *data, uint32_t len, struct bc_nbd_info_req *r)
{
	uint32_t name_len, pos;
	uint16_t n, i;

	memset(r, 0, sizeof(*r));
	/* 32-bit name length + name + 16-bit count + 16-bit * count */
	if (len < 6)
		return -EINVAL;
	name_len = get32(data);
	if (name_len > len - 6 || name_len > NBD_MAX_STRING)
		return -EINVAL;
	pos = 4 + name_len;
	n = get16(data + pos);
	pos += 2;
	if ((uint64_t)pos + 2u * (uint64_t)n != len)
		return -EINVAL;
	r->name = (const char *)data + 4;
	r->name_len = name_len;
	r->n_requests = n;
	for (i = 0; i < n; i++) {
		uint16_t type = get16(data + pos + 2u * i);

		if (type < 32)
			r->requested |= 1u << type;
	}
	return 0;
}

uint16_t bc_nbd_proto_tx_flags(uint32_t tflags)
{
	uint16_t f = NBD_FLAG_HAS_FLAGS;

	if (tflags & BC_TARGET_CAN_FLUSH)
		f |= NBD_FLAG_SEND_FLUSH;
	if (tflags & BC_TARGET_CAN_FUA)
		f |= NBD_FLAG_SEND_FUA;
	if (tflags & BC_TARGET_CAN_DISCARD)
		f |= NBD_FLAG_SEND_TRIM;
	if (tflags & BC_TARGET_CAN_ZEROES)
		f |= NBD_FLAG_SEND_WRITE_ZEROES;
	if (tflags & BC_TARGET_MULTI_CONN)
		f |= NBD_FLAG_CAN_MULTI_CONN;
	return f;
}

uint32_t bc_nbd_proto_check_request(const struct bc_nbd_request_hdr *r,
				    const struct bc_nbd_limits *lim)
{
	uint16_t allowed = 0;
	uint32_t range_err = NBD_EINVAL;
	bool check_max = false;

	if (lim->tx_flags & NBD_FLAG_SEND_FUA)
		allowed |= NBD_CMD_FLAG_FUA;

	switch (r->type) {
	case NBD_CMD_READ:
		check_max = true;
		break;
	case NBD_CMD_WRITE:
		check_max = true;
		range_err = NBD_ENOSPC;
		break;
	case NBD_CMD_FLUSH:
		if (!(lim->tx_flags & NBD_FLAG_SEND_FLUSH))
			return NBD_EINVAL;
		/* offset and length are reserved: not interpreted */
		return (r->flags & ~allowed) ? NBD_EINVAL : 0;
	case NBD_CMD_TRIM:
		if (!(lim->tx_flags & NBD_FLAG_SEND_TRIM))
			return NBD_EINVAL;
		break;
	case NBD_CMD_WRITE_ZEROES:
		if (!(lim->tx_flags & NBD_FLAG_SEND_WRITE_ZEROES))
			return NBD_EINVAL;
		allowed |= NBD_CMD_FLAG_NO_HOLE;
		range_err = NBD_ENOSPC;
		break;
	default:
		return NBD_EINVAL;
	}
	if (r->flags & ~allowed)
		return NBD_EINVAL;
	if (lim->min_block > 1 &&
	    ((r->offset % lim->min_block) != 0 || (r->length % lim->min_block) != 0))
		return NBD_EINVAL;
	if (r->offset > lim->size || r->length > lim->size - r->offset)
		return range_err;
	if (check_max && r->length > lim->max_block)
		return NBD_EINVAL;
	return 0;
}

uint32_t bc_nbd_proto_errno(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case 0:
		return 0;
	case EPERM:
	case EROFS:
		return NBD_EPERM;
	case EIO:
		return NBD_EIO;
	case ENOMEM:
		return NBD_ENOMEM;
	case EINVAL:
		return NBD_EINVAL;
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return NBD_ENOSPC;
	case EOVERFLOW:
		return NBD_EOVERFLOW;
	case ENOTSUP:
		return NBD_ENOTSUP;
	case ESHUTDOWN:
		return NBD_ESHUTDOWN;
	default:
		return NBD_EIO;
	}
}
