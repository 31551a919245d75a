/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NBD wire format (NetworkBlockDevice doc/proto.md): constants and pure
 * encode/decode helpers over byte buffers.  Nothing here touches sockets,
 * the loop or the target, so these functions can be unit-tested and fed to
 * a fuzzer directly.  All multi-byte wire fields are big-endian.
 */
#ifndef BC_NBD_PROTO_H
#define BC_NBD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Magic numbers. */
#define NBD_MAGIC               0x4e42444d41474943ULL /* "NBDMAGIC" */
#define NBD_IHAVEOPT            0x49484156454f5054ULL /* "IHAVEOPT" */
#define NBD_REP_MAGIC           0x0003e889045565a9ULL
#define NBD_REQUEST_MAGIC       0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC  0x67446698u

/* Handshake flags (server, 16 bits). */
#define NBD_FLAG_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_NO_ZEROES      (1u << 1)

/* Client flags (32 bits). */
#define NBD_FLAG_C_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_C_NO_ZEROES      (1u << 1)

/* Transmission flags (16 bits). */
#define NBD_FLAG_HAS_FLAGS         (1u << 0)
#define NBD_FLAG_READ_ONLY         (1u << 1)
#define NBD_FLAG_SEND_FLUSH        (1u << 2)
#define NBD_FLAG_SEND_FUA          (1u << 3)
#define NBD_FLAG_ROTATIONAL        (1u << 4)
#define NBD_FLAG_SEND_TRIM         (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_SEND_DF           (1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN    (1u << 8)
#define NBD_FLAG_SEND_RESIZE       (1u << 9)
#define NBD_FLAG_SEND_CACHE        (1u << 10)
#define NBD_FLAG_SEND_FAST_ZERO    (1u << 11)

/* Options. */
#define NBD_OPT_EXPORT_NAME       1u
#define NBD_OPT_ABORT             2u
#define NBD_OPT_LIST              3u
#define NBD_OPT_PEEK_EXPORT       4u
#define NBD_OPT_STARTTLS          5u
#define NBD_OPT_INFO              6u
#define NBD_OPT_GO                7u
#define NBD_OPT_STRUCTURED_REPLY  8u
#define NBD_OPT_LIST_META_CONTEXT 9u
#define NBD_OPT_SET_META_CONTEXT  10u
#define NBD_OPT_EXTENDED_HEADERS  11u

/* Option reply types. */
#define NBD_REP_ACK          1u
#define NBD_REP_SERVER       2u
#define NBD_REP_INFO         3u
#define NBD_REP_META_CONTEXT 4u
#define NBD_REP_ERR_BIT      (1u << 31)
#define NBD_REP_ERR_UNSUP           (NBD_REP_ERR_BIT + 1)
#define NBD_REP_ERR_POLICY          (NBD_REP_ERR_BIT + 2)
#define NBD_REP_ERR_INVALID         (NBD_REP_ERR_BIT + 3)
#define NBD_REP_ERR_PLATFORM        (NBD_REP_ERR_BIT + 4)
#define NBD_REP_ERR_TLS_REQD        (NBD_REP_ERR_BIT + 5)
#define NBD_REP_ERR_UNKNOWN         (NBD_REP_ERR_BIT + 6)
#define NBD_REP_ERR_SHUTDOWN        (NBD_REP_ERR_BIT + 7)
#define NBD_REP_ERR_BLOCK_SIZE_REQD (NBD_REP_ERR_BIT + 8)
#define NBD_REP_ERR_TOO_BIG         (NBD_REP_ERR_BIT + 9)

/* NBD_REP_INFO types. */
#define NBD_INFO_EXPORT      0u
#define NBD_INFO_NAME        1u
#define NBD_INFO_DESCRIPTION 2u
#define NBD_INFO_BLOCK_SIZE  3u

/* Commands. */
#define NBD_CMD_READ         0u
#define NBD_CMD_WRITE        1u
#define NBD_CMD_DISC         2u
#define NBD_CMD_FLUSH        3u
#define NBD_CMD_TRIM         4u
#define NBD_CMD_CACHE        5u
#define NBD_CMD_WRITE_ZEROES 6u
#define NBD_CMD_BLOCK_STATUS 7u

/* Command flags. */
#define NBD_CMD_FLAG_FUA       (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE   (1u << 1)
#define NBD_CMD_FLAG_DF        (1u << 2)
#define NBD_CMD_FLAG_REQ_ONE   (1u << 3)
#define NBD_CMD_FLAG_FAST_ZERO (1u << 4)

/* Error values of the simple reply. */
#define NBD_EPERM     1u
#define NBD_EIO       5u
#define NBD_ENOMEM    12u
#define NBD_EINVAL    22u
#define NBD_ENOSPC    28u
#define NBD_EOVERFLOW 75u
#define NBD_ENOTSUP   95u
#define NBD_ESHUTDOWN 108u

/* Sizes of the fixed-size wire messages. */
#define NBD_GREETING_LEN      18u  /* NBDMAGIC + IHAVEOPT + 16-bit flags */
#define NBD_CLIENT_FLAGS_LEN  4u
#define NBD_OPT_HDR_LEN       16u
#define NBD_OPT_REPLY_HDR_LEN 20u
#define NBD_REQUEST_LEN       28u
#define NBD_SIMPLE_REPLY_LEN  16u
#define NBD_EXPORT_NAME_REPLY_MAX (8u + 2u + 124u)

/* Longest string (export name, description) the protocol allows. */
#define NBD_MAX_STRING 4096u

struct bc_nbd_opt_hdr {
	uint32_t opt;
	uint32_t len;
};

struct bc_nbd_request_hdr {
	uint16_t flags;
	uint16_t type;
	uint64_t handle;
	uint64_t offset;
	uint32_t length;
};

/* Parsed NBD_OPT_INFO / NBD_OPT_GO payload.  @name points into the
 * caller's buffer (not NUL-terminated). */
struct bc_nbd_info_req {
	const char *name;
	uint32_t name_len;
	uint16_t n_requests;
	uint32_t requested;    /* bit i set: NBD_INFO type i (< 32) requested */
};

/* What the transmission phase enforces; derived from the bc_target. */
struct bc_nbd_limits {
	uint64_t size;
	uint32_t min_block;
	uint32_t max_block;
	uint16_t tx_flags;     /* as advertised */
};

/* Encoders.  Each writes exactly the documented number of bytes. */
void bc_nbd_proto_put_greeting(uint8_t out[NBD_GREETING_LEN]);
void bc_nbd_proto_put_opt_reply_hdr(uint8_t out[NBD_OPT_REPLY_HDR_LEN], uint32_t opt,
				    uint32_t type, uint32_t len);
void bc_nbd_proto_put_simple_reply(uint8_t out[NBD_SIMPLE_REPLY_LEN], uint32_t error,
				   uint64_t handle);
/* Reply to NBD_OPT_EXPORT_NAME; returns the number of bytes written
 * (10, or 134 with the reserved zeroes). */
size_t bc_nbd_proto_put_export_name_reply(uint8_t out[NBD_EXPORT_NAME_REPLY_MAX],
					  uint64_t size, uint16_t tx_flags, bool no_zeroes);

/* Decoders.  0 on success, -EPROTO for data that must close the connection. */
int bc_nbd_proto_parse_client_flags(const uint8_t in[NBD_CLIENT_FLAGS_LEN], uint32_t *flags);
int bc_nbd_proto_parse_opt_hdr(const uint8_t in[NBD_OPT_HDR_LEN], struct bc_nbd_opt_hdr *h);
int bc_nbd_proto_parse_request(const uint8_t in[NBD_REQUEST_LEN], struct bc_nbd_request_hdr *r);
/* Payload of NBD_OPT_INFO/GO; -EINVAL when lengths are inconsistent. */
int bc_nbd_proto_parse_info_req(const uint8_t *data, uint32_t len, struct bc_nbd_info_req *r);

/* Transmission flags to advertise for a target with BC_TARGET_* @tflags. */
uint16_t bc_nbd_proto_tx_flags(uint32_t tflags);

/* Validate a request against @lim before it reaches the target.  Returns 0
 * or the NBD error to reply with (NBD_EINVAL, NBD_ENOSPC).  NBD_CMD_DISC is
 * not validated here. */
uint32_t bc_nbd_proto_check_request(const struct bc_nbd_request_hdr *r,
				    const struct bc_nbd_limits *lim);

/* Map a target result (-errno or errno) to an NBD error value. */
uint32_t bc_nbd_proto_errno(int err);

#endif
