/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NBD server frontend test: pure protocol helpers, then a real server on a
 * bc_loop thread over a RAM target, driven by libnbd, raw sockets and
 * nbdinfo.  Exit 0: all checks passed, 1: a check failed, 77: skipped.
 * The server harness and client helpers are in nbd-test-clients.c.
 */
#include <endian.h>
#include <errno.h>
#include <libnbd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blkcache/nbd.h"
#include "sockutil.h"
#include "nbd-test-clients.h"
#include "../frontends/nbd/handshake.h"
#include "../frontends/nbd/internal.h"
#include "../frontends/nbd/proto.h"

void test_exports(void); /* nbd-test-exports.c */

/* ---------- pure protocol helpers ---------- */

#define REQ(t, f, o, l) (&(struct bc_nbd_request_hdr){ .type = (t), .flags = (f), \
							.offset = (o), .length = (l) })

/* Transmission flags, request validation and errno mapping. */
static void unit_check_request_tests(void)
{
	struct bc_nbd_limits lim = { DISK_SIZE, 512, MAX_BLOCK, 0 };

	lim.tx_flags = bc_nbd_proto_tx_flags(ALL_FLAGS);
	CHECK(lim.tx_flags == 0x16d, "transmission flags 0x%x", lim.tx_flags);
	CHECK(bc_nbd_proto_tx_flags(0) == NBD_FLAG_HAS_FLAGS, "no target flags: HAS_FLAGS only");
	CHECK(bc_nbd_proto_check_request(REQ(0, 0, 0, 4096), &lim) == 0, "read ok");
	CHECK(bc_nbd_proto_check_request(REQ(0, 0, 100, 512), &lim) == NBD_EINVAL, "unaligned");
	CHECK(bc_nbd_proto_check_request(REQ(0, 0, DISK_SIZE, 512), &lim) == NBD_EINVAL,
	      "read past end: EINVAL");
	CHECK(bc_nbd_proto_check_request(REQ(1, 0, DISK_SIZE - 512, 1024), &lim) == NBD_ENOSPC,
	      "write past end: ENOSPC");
	CHECK(bc_nbd_proto_check_request(REQ(6, 0, UINT64_MAX - 511, 1024), &lim) == NBD_ENOSPC,
	      "write zeroes with wrapping offset: ENOSPC");
	CHECK(bc_nbd_proto_check_request(REQ(4, 0, DISK_SIZE, 512), &lim) == NBD_EINVAL,
	      "trim past end: EINVAL");
	CHECK(bc_nbd_proto_check_request(REQ(0, 0, 0, 2 * MAX_BLOCK), &lim) == NBD_EINVAL,
	      "read above max block");
	CHECK(bc_nbd_proto_check_request(REQ(4, 1, 0, 8 * MAX_BLOCK), &lim) == 0,
	      "large trim with FUA allowed");
	CHECK(bc_nbd_proto_check_request(REQ(6, 2, 0, 4096), &lim) == 0, "NO_HOLE on zeroes");
	CHECK(bc_nbd_proto_check_request(REQ(1, 2, 0, 4096), &lim) == NBD_EINVAL,
	      "NO_HOLE on write rejected");
	CHECK(bc_nbd_proto_check_request(REQ(6, 0x10, 0, 4096), &lim) == NBD_EINVAL,
	      "FAST_ZERO (not advertised) rejected");
	CHECK(bc_nbd_proto_check_request(REQ(0, 4, 0, 4096), &lim) == NBD_EINVAL, "DF rejected");
	CHECK(bc_nbd_proto_check_request(REQ(3, 1, 0, 0), &lim) == 0, "flush with FUA");
	CHECK(bc_nbd_proto_check_request(REQ(5, 0, 0, 4096), &lim) == NBD_EINVAL, "CACHE");
	CHECK(bc_nbd_proto_check_request(REQ(77, 0, 0, 4096), &lim) == NBD_EINVAL, "unknown cmd");
	lim.tx_flags = NBD_FLAG_HAS_FLAGS;
	CHECK(bc_nbd_proto_check_request(REQ(1, 1, 0, 4096), &lim) == NBD_EINVAL,
	      "FUA without SEND_FUA rejected");
	CHECK(bc_nbd_proto_check_request(REQ(3, 0, 0, 0), &lim) == NBD_EINVAL,
	      "FLUSH without SEND_FLUSH rejected");

	CHECK(bc_nbd_proto_errno(-EIO) == 5 && bc_nbd_proto_errno(-ENOSPC) == 28 &&
	      bc_nbd_proto_errno(-EPERM) == 1 && bc_nbd_proto_errno(-ENOMEM) == 12 &&
	      bc_nbd_proto_errno(-EINVAL) == 22 && bc_nbd_proto_errno(-EOVERFLOW) == 75 &&
	      bc_nbd_proto_errno(-ENOTSUP) == 95 && bc_nbd_proto_errno(-ESHUTDOWN) == 108 &&
	      bc_nbd_proto_errno(-EBADMSG) == 5 && bc_nbd_proto_errno(-EDQUOT) == 28,
	      "errno mapping");
}

/* Replies to handshake options. */
static void unit_opt_process_tests(void)
{
	struct bc_nbd_export exp;
	struct bc_nbd_obuf ob;
	int r;

	memset(&exp, 0, sizeof(exp));
	exp.name = EXPORT;
	exp.name_len = 4;
	exp.size = DISK_SIZE;
	exp.tx_flags = 0x16d;
	exp.min_block = 512;
	exp.pref_block = 4096;
	exp.max_block = MAX_BLOCK;
	bc_nbd_obuf_init(&ob);
	r = bc_nbd_opt_process(&exp, 3, NULL, 0, true, &ob);
	CHECK(r == BC_NBD_OPT_CONTINUE && ob.len == 28 + 20 && ob.data[15] == NBD_REP_SERVER &&
	      !memcmp(ob.data + 24, "test", 4) && ob.data[43] == NBD_REP_ACK, "LIST reply");
	bc_nbd_obuf_release(&ob);
	r = bc_nbd_opt_process(&exp, 1, (const uint8_t *)"nope", 4, true, &ob);
	CHECK(r == BC_NBD_OPT_DROP && ob.len == 0, "EXPORT_NAME unknown: drop");
	r = bc_nbd_opt_process(&exp, 1, (const uint8_t *)"test", 4, false, &ob);
	CHECK(r == BC_NBD_OPT_ENTER_TX && ob.len == 134 && is_zero(ob.data + 10, 124),
	      "EXPORT_NAME with zeroes");
	bc_nbd_obuf_release(&ob);
	r = bc_nbd_opt_process(&exp, 1, NULL, 0, true, &ob);
	CHECK(r == BC_NBD_OPT_ENTER_TX && ob.len == 10, "EXPORT_NAME default, NO_ZEROES");
	bc_nbd_obuf_release(&ob);
	r = bc_nbd_opt_process(&exp, 0x99, NULL, 200000, true, &ob);
	CHECK(r == BC_NBD_OPT_CONTINUE && ob.len == 20 && be32toh(*(uint32_t *)(ob.data + 12)) ==
	      NBD_REP_ERR_UNSUP, "oversized unknown option: UNSUP");
	bc_nbd_obuf_release(&ob);
	r = bc_nbd_opt_process(&exp, 7, NULL, 200000, true, &ob);
	CHECK(r == BC_NBD_OPT_CONTINUE && be32toh(*(uint32_t *)(ob.data + 12)) ==
	      NBD_REP_ERR_INVALID, "oversized GO: INVALID");
	bc_nbd_obuf_release(&ob);
	r = bc_nbd_opt_process(&exp, 8, NULL, 0, true, &ob);
	CHECK(r == BC_NBD_OPT_CONTINUE && be32toh(*(uint32_t *)(ob.data + 12)) ==
	      NBD_REP_ERR_UNSUP, "STRUCTURED_REPLY: UNSUP");
	bc_nbd_obuf_release(&ob);
}

static void unit_tests(void)
{
	struct bc_nbd_request_hdr rq;
	struct bc_nbd_info_req ir;
	struct bc_nbd_opt_hdr oh;
	uint8_t b[256];
	char host[64], port[8];
	uint32_t u32;
	int r;

	printf("# protocol helpers\n");
	bc_nbd_proto_put_greeting(b);
	CHECK(memcmp(b, "NBDMAGICIHAVEOPT\x00\x03", 18) == 0, "greeting bytes");
	u32 = htobe32(3);
	CHECK(bc_nbd_proto_parse_client_flags((uint8_t *)&u32, &u32) == 0 && u32 == 3,
	      "client flags FIXED|NO_ZEROES accepted");
	u32 = htobe32(4);
	CHECK(bc_nbd_proto_parse_client_flags((uint8_t *)&u32, &u32) == -EPROTO,
	      "unknown client flag rejected");
	memcpy(b, "IHAVEOPT\x00\x00\x00\x07\x00\x00\x01\x00", 16);
	CHECK(bc_nbd_proto_parse_opt_hdr(b, &oh) == 0 && oh.opt == 7 && oh.len == 256,
	      "option header parsed");
	b[0] = 'X';
	CHECK(bc_nbd_proto_parse_opt_hdr(b, &oh) == -EPROTO, "bad option magic rejected");

	memcpy(b, "\x00\x00\x00\x04test\x00\x02\x00\x01\x00\x03", 14);
	r = bc_nbd_proto_parse_info_req(b, 14, &ir);
	CHECK(r == 0 && ir.name_len == 4 && !memcmp(ir.name, "test", 4) && ir.n_requests == 2 &&
	      ir.requested == ((1u << 1) | (1u << 3)), "GO payload parsed");
	CHECK(bc_nbd_proto_parse_info_req(b, 13, &ir) == -EINVAL, "GO payload: short list");
	CHECK(bc_nbd_proto_parse_info_req(b, 15, &ir) == -EINVAL, "GO payload: trailing byte");
	memcpy(b, "\xff\xff\xff\xf0\x00\x00", 6);
	CHECK(bc_nbd_proto_parse_info_req(b, 6, &ir) == -EINVAL, "GO payload: huge name length");
	CHECK(bc_nbd_proto_parse_info_req(b, 5, &ir) == -EINVAL, "GO payload: too short");

	memcpy(b, "\x25\x60\x95\x13\x00\x01\x00\x01" "ABCDEFGH"
		  "\x00\x00\x00\x00\x00\x00\x10\x00\x00\x00\x02\x00", 28);
	CHECK(bc_nbd_proto_parse_request(b, &rq) == 0 && rq.type == 1 && rq.flags == 1 &&
	      rq.offset == 4096 && rq.length == 512 && !memcmp(&rq.handle, "ABCDEFGH", 8),
	      "request header parsed");
	bc_nbd_proto_put_simple_reply(b, NBD_EINVAL, rq.handle);
	CHECK(!memcmp(b, "\x67\x44\x66\x98\x00\x00\x00\x16" "ABCDEFGH", 16),
	      "simple reply echoes the handle");
	b[0] = 0;
	CHECK(bc_nbd_proto_parse_request(b, &rq) == -EPROTO, "bad request magic rejected");

	unit_check_request_tests();
	unit_opt_process_tests();

	CHECK(bc_tcp_parse_hostport("1.2.3.4:10809", host, sizeof(host), port, sizeof(port)) == 0 &&
	      !strcmp(host, "1.2.3.4") && !strcmp(port, "10809"), "HOST:PORT");
	CHECK(bc_tcp_parse_hostport("[::1]:99", host, sizeof(host), port, sizeof(port)) == 0 &&
	      !strcmp(host, "::1") && !strcmp(port, "99"), "[v6]:PORT");
	CHECK(bc_tcp_parse_hostport(":5", host, sizeof(host), port, sizeof(port)) == 0 &&
	      !strcmp(host, "127.0.0.1"), ":PORT defaults to 127.0.0.1");
	CHECK(bc_tcp_parse_hostport("::1:5", host, sizeof(host), port, sizeof(port)) < 0 &&
	      bc_tcp_parse_hostport("h:x", host, sizeof(host), port, sizeof(port)) < 0 &&
	      bc_tcp_parse_hostport("h:99999", host, sizeof(host), port, sizeof(port)) < 0,
	      "bad addresses rejected");
}

/* ---------- libnbd clients ---------- */

static void test_libnbd_basic(void)
{
	struct ram_target before, after;
	struct nbd_handle *h;
	uint8_t *wbuf = malloc(MAX_BLOCK), *rbuf = malloc(MAX_BLOCK);
	char *descr;

	printf("# libnbd: handshake and data path\n");
	h = nbd_open(false);
	CHECK(h != NULL, "libnbd connects over unix socket");
	if (!h)
		goto out;
	nbd_set_strict_mode(h, LIBNBD_STRICT_MASK);
	CHECK(nbd_get_size(h) == (int64_t)DISK_SIZE, "size %lld", (long long)nbd_get_size(h));
	CHECK(nbd_get_block_size(h, LIBNBD_SIZE_MINIMUM) == 512, "minimum block size");
	CHECK(nbd_get_block_size(h, LIBNBD_SIZE_PREFERRED) == 4096, "preferred block size");
	CHECK(nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM) == MAX_BLOCK, "maximum block size");
	CHECK(nbd_can_flush(h) == 1 && nbd_can_fua(h) == 1 && nbd_can_trim(h) == 1 &&
	      nbd_can_zero(h) == 1 && nbd_can_multi_conn(h) == 1, "flush/fua/trim/zero/multi-conn");
	CHECK(nbd_is_read_only(h) == 0 && nbd_can_df(h) == 0 && nbd_can_cache(h) == 0 &&
	      nbd_can_fast_zero(h) == 0, "not read-only; no DF, CACHE, FAST_ZERO");
	CHECK(nbd_get_structured_replies_negotiated(h) == 0, "simple replies only");
	CHECK(!strcmp(nbd_get_protocol(h), "newstyle-fixed"), "fixed newstyle protocol");

	fill(wbuf, MAX_BLOCK, 1);
	CHECK(nbd_pwrite(h, wbuf, MAX_BLOCK, 0, 0) == 0, "write 1 MiB at 0");
	CHECK(ram_equals(0, wbuf, MAX_BLOCK), "target holds the written data");
	memset(rbuf, 0, MAX_BLOCK);
	CHECK(nbd_pread(h, rbuf, MAX_BLOCK, 0, 0) == 0 && !memcmp(rbuf, wbuf, MAX_BLOCK),
	      "read 1 MiB back");
	CHECK(nbd_pread(h, rbuf, 512, DISK_SIZE - 512, 0) == 0 && is_zero(rbuf, 512),
	      "read the last sector");

	before = snap_rt();
	fill(wbuf, 8192, 2);
	CHECK(nbd_pwrite(h, wbuf, 8192, 1 << 20, LIBNBD_CMD_FLAG_FUA) == 0, "write with FUA");
	CHECK(nbd_flush(h, 0) == 0, "flush");
	after = snap_rt();
	CHECK(after.fua == before.fua + 1, "FUA reached the target");
	CHECK(after.ops[BC_OP_FLUSH] == before.ops[BC_OP_FLUSH] + 1, "flush reached the target");

	fill(wbuf, MAX_BLOCK, 3);
	CHECK(nbd_pwrite(h, wbuf, MAX_BLOCK, 4 << 20, 0) == 0, "write before trim");
	before = snap_rt();
	CHECK(nbd_trim(h, 4 << 20, 4 << 20, 0) == 0, "trim 4 MiB (4 x max block)");
	after = snap_rt();
	CHECK(after.ops[BC_OP_DISCARD] == before.ops[BC_OP_DISCARD] + 4 &&
	      after.max_length <= MAX_BLOCK, "trim split into 4 target requests");
	CHECK(nbd_pread(h, rbuf, MAX_BLOCK, 4 << 20, 0) == 0 && is_zero(rbuf, MAX_BLOCK),
	      "trimmed range reads zeroes");
	before = snap_rt();
	CHECK(nbd_trim(h, 4096, 4 << 20, LIBNBD_CMD_FLAG_FUA) == 0, "trim with FUA");
	after = snap_rt();
	CHECK(after.ops[BC_OP_FLUSH] == before.ops[BC_OP_FLUSH] + 1,
	      "trim with FUA followed by a flush");

	fill(wbuf, 8192, 4);
	CHECK(nbd_pwrite(h, wbuf, 8192, 12 << 20, 0) == 0, "write before zero");
	before = snap_rt();
	CHECK(nbd_zero(h, 4096, 12 << 20, LIBNBD_CMD_FLAG_NO_HOLE | LIBNBD_CMD_FLAG_FUA) == 0,
	      "write zeroes with NO_HOLE|FUA");
	after = snap_rt();
	CHECK(after.ops[BC_OP_WRITE_ZEROES] == before.ops[BC_OP_WRITE_ZEROES] + 1 &&
	      after.fua == before.fua + 1, "write zeroes reached the target with FUA");
	CHECK(nbd_pread(h, rbuf, 8192, 12 << 20, 0) == 0 && is_zero(rbuf, 4096) &&
	      !memcmp(rbuf + 4096, wbuf + 4096, 4096), "only the zeroed range reads zeroes");
	CHECK(nbd_zero(h, 3 * MAX_BLOCK, 16 << 20, 0) == 0, "write zeroes above max block");
	nbd_shutdown(h, 0);
	nbd_close(h);

	h = nbd_named(EXPORT);
	nbd_set_full_info(h, true);
	CHECK(nbd_connect_tcp(h, "127.0.0.1", test_env.port) == 0, "libnbd connects over TCP");
	descr = nbd_get_export_description(h);
	CHECK(descr && !strcmp(descr, DESCR), "description '%s'", descr ? descr : "(none)");
	free(descr);
	descr = nbd_get_canonical_export_name(h);
	CHECK(descr && !strcmp(descr, EXPORT), "canonical name '%s'", descr ? descr : "(none)");
	free(descr);
	CHECK(nbd_pread(h, rbuf, 4096, 0, 0) == 0, "read over TCP");
	nbd_close(h);

	h = nbd_named("other");
	CHECK(nbd_connect_unix(h, test_env.sock) == -1, "unknown export name refused");
	nbd_close(h);
	h = nbd_named("");
	CHECK(nbd_connect_unix(h, test_env.sock) == 0 && nbd_get_size(h) == (int64_t)DISK_SIZE,
	      "default export name \"\" accepted");
	nbd_close(h);
out:
	free(wbuf);
	free(rbuf);
}

static void test_libnbd_errors(void)
{
	struct nbd_handle *h;
	uint8_t *buf = calloc(1, 2 * MAX_BLOCK);
	uint8_t pat[4096];
	int e;

	printf("# libnbd: invalid requests and target errors\n");
	h = nbd_open(false);
	CHECK(h != NULL, "connect");
	if (!h)
		goto out;
	nbd_set_strict_mode(h, 0); /* let the server judge */
	e = cmd_errno(nbd_pread(h, buf, 4096, DISK_SIZE - 2048, 0));
	CHECK(e == EINVAL, "read past the end: %s", strerror(e));
	e = cmd_errno(nbd_pwrite(h, buf, 4096, DISK_SIZE, 0));
	CHECK(e == ENOSPC, "write past the end: %s", strerror(e));
	e = cmd_errno(nbd_zero(h, 4096, DISK_SIZE - 512, 0));
	CHECK(e == ENOSPC, "write zeroes past the end: %s", strerror(e));
	e = cmd_errno(nbd_trim(h, 4096, DISK_SIZE, 0));
	CHECK(e == EINVAL, "trim past the end: %s", strerror(e));
	e = cmd_errno(nbd_pread(h, buf, 512, 100, 0));
	CHECK(e == EINVAL, "unaligned read: %s", strerror(e));
	e = cmd_errno(nbd_pwrite(h, buf, 1000, 0, 0));
	CHECK(e == EINVAL, "unaligned write length: %s", strerror(e));
	e = cmd_errno(nbd_pread(h, buf, 2 * MAX_BLOCK, 0, 0));
	CHECK(e == EINVAL, "read above max block: %s", strerror(e));
	e = cmd_errno(nbd_pwrite(h, buf, 2 * MAX_BLOCK, 0, 0));
	CHECK(e == EINVAL, "write above max block: %s", strerror(e));
	e = cmd_errno(nbd_pread(h, buf, 4096, 0, LIBNBD_CMD_FLAG_NO_HOLE));
	CHECK(e == EINVAL, "read with a flag not valid for it: %s", strerror(e));
	e = cmd_errno(nbd_cache(h, 4096, 0, 0));
	CHECK(e == EINVAL, "unadvertised CACHE command: %s", strerror(e));
	e = cmd_errno(nbd_zero(h, 4096, 0, LIBNBD_CMD_FLAG_FAST_ZERO));
	CHECK(e == EINVAL, "unadvertised FAST_ZERO flag: %s", strerror(e));
	CHECK(nbd_pread(h, buf, 0, 0, 0) == 0, "zero-length read succeeds");
	fill(pat, sizeof(pat), 9);
	CHECK(nbd_pwrite(h, pat, sizeof(pat), 20 << 20, 0) == 0 &&
	      nbd_pread(h, buf, sizeof(pat), 20 << 20, 0) == 0 && !memcmp(buf, pat, sizeof(pat)),
	      "connection still works after the errors");
	CHECK(snap_rt().bad == 0, "no invalid request reached the target");

	env_fail_target(30 << 20, 4096, -EIO);
	e = cmd_errno(nbd_pread(h, buf, 8192, (30 << 20) - 4096, 0));
	CHECK(e == EIO, "target -EIO on read -> %s", strerror(e));
	env_fail_target(30 << 20, 4096, -ENOSPC);
	e = cmd_errno(nbd_pwrite(h, buf, 4096, 30 << 20, 0));
	CHECK(e == ENOSPC, "target -ENOSPC on write -> %s", strerror(e));
	env_fail_target(30 << 20, 4096, -EPERM);
	e = cmd_errno(nbd_trim(h, 4096, 30 << 20, 0));
	CHECK(e == EPERM, "target -EPERM on trim -> %s", strerror(e));
	env_fail_target(30 << 20, 4096, -EBADMSG);
	e = cmd_errno(nbd_zero(h, 4096, 30 << 20, 0));
	CHECK(e == EIO, "target -EBADMSG -> %s", strerror(e));
	env_fail_target(0, 0, 0);
	CHECK(nbd_pread(h, buf, 4096, 30 << 20, 0) == 0, "reads work again");
	nbd_close(h);
out:
	free(buf);
}

#define NASYNC 200

static void test_libnbd_async(void)
{
	struct nbd_handle *h;
	int64_t cookies[NASYNC];
	uint8_t *wbuf = malloc(NASYNC * 4096), *rbuf = calloc(NASYNC, 4096);
	int i, ok, in_flight_max = 0;
	struct ram_target t;

	printf("# libnbd: pipelined requests\n");
	env_reset_target_max_inflight();
	h = nbd_open(false);
	CHECK(h != NULL, "connect");
	if (!h)
		goto out;
	fill(wbuf, NASYNC * 4096, 5);
	for (i = 0; i < NASYNC; i++) {
		/* scattered, so replies complete out of order */
		uint64_t off = (40ull << 20) + (uint64_t)((i * 37) % NASYNC) * 4096;

		cookies[i] = nbd_aio_pwrite(h, wbuf + (size_t)i * 4096, 4096, off,
					    NBD_NULL_COMPLETION, 0);
		if (nbd_aio_in_flight(h) > in_flight_max)
			in_flight_max = nbd_aio_in_flight(h);
	}
	aio_wait(h, time(NULL));
	ok = aio_completed(h, cookies, NASYNC);
	CHECK(ok == NASYNC, "%d/%d async writes succeeded (%d queued at once)", ok, NASYNC,
	      in_flight_max);
	t = snap_rt();
	CHECK(t.max_inflight > 1 && t.max_inflight <= MAX_INFLIGHT,
	      "target saw up to %u requests at once (limit %u)", t.max_inflight, MAX_INFLIGHT);
	for (i = 0; i < NASYNC; i++) {
		uint64_t off = (40ull << 20) + (uint64_t)((i * 37) % NASYNC) * 4096;

		cookies[i] = nbd_aio_pread(h, rbuf + (size_t)i * 4096, 4096, off,
					   NBD_NULL_COMPLETION, 0);
	}
	aio_wait(h, time(NULL));
	ok = aio_completed(h, cookies, NASYNC);
	CHECK(ok == NASYNC && !memcmp(rbuf, wbuf, NASYNC * 4096),
	      "%d/%d async reads returned the written data", ok, NASYNC);
	nbd_close(h);
out:
	free(wbuf);
	free(rbuf);
}

static void test_multi_conn(void)
{
	struct nbd_handle *h[4];
	uint8_t *buf = malloc(4 * 65536), *rbuf = malloc(4 * 65536);
	int64_t ck[4];
	int i, ok = 0, n = 0;
	time_t start;

	printf("# several connections at once\n");
	for (i = 0; i < 4; i++) {
		h[i] = nbd_open(i % 2);
		n += h[i] != NULL;
	}
	CHECK(n == 4, "4 connections (unix and TCP) open");
	if (n != 4)
		goto out;
	fill(buf, 4 * 65536, 11);
	for (i = 0; i < 4; i++)
		ck[i] = nbd_aio_pwrite(h[i], buf + i * 65536, 65536, (48ull << 20) + i * 65536,
				       NBD_NULL_COMPLETION, 0);
	start = time(NULL);
	for (i = 0; i < 4; i++) {
		aio_wait(h[i], start);
		ok += aio_completed(h[i], &ck[i], 1);
	}
	CHECK(ok == 4, "concurrent writes on 4 connections");
	CHECK(nbd_flush(h[0], 0) == 0, "flush on one connection");
	CHECK(nbd_pread(h[3], rbuf, 4 * 65536, 48ull << 20, 0) == 0 &&
	      !memcmp(rbuf, buf, 4 * 65536), "another connection reads all writes");
	CHECK(snap_stats().connections_open == 4, "stats: 4 connections open");
out:
	for (i = 0; i < 4; i++)
		if (h[i])
			nbd_close(h[i]);
	free(buf);
	free(rbuf);
}

/* ---------- raw sockets ---------- */
/* INFO with requested items, then GO of the default export. */
static void raw_options_info_go(int fd)
{
	static const uint16_t want[] = { NBD_INFO_NAME, NBD_INFO_BLOCK_SIZE };
	uint8_t d[4096], p[256];
	uint32_t len, type, plen, min = 0, pref = 0, max = 0;
	uint64_t info_size = 0, go_size = 0;
	int got = 0, name_ok = 0, descr_ok = 0;
	uint16_t v16, info_flags = 0, go_flags = 0;

	plen = go_payload(p, "test", 2, want);
	raw_opt(fd, NBD_OPT_INFO, p, plen);
	while ((type = raw_opt_reply(fd, NBD_OPT_INFO, d, &len)) == NBD_REP_INFO && len >= 2) {
		memcpy(&v16, d, 2);
		v16 = be16toh(v16);
		if (raw_info_export(d, len, &info_size, &info_flags)) {
			got |= 1;
		} else if (v16 == NBD_INFO_BLOCK_SIZE && len == 14) {
			memcpy(&min, d + 2, 4);
			memcpy(&pref, d + 6, 4);
			memcpy(&max, d + 10, 4);
			got |= 2;
		} else if (v16 == NBD_INFO_NAME) {
			name_ok = len == 6 && !memcmp(d + 2, "test", 4);
		} else if (v16 == NBD_INFO_DESCRIPTION) {
			descr_ok = len == 2 + strlen(DESCR) && !memcmp(d + 2, DESCR, len - 2);
		}
	}
	CHECK(type == NBD_REP_ACK && got == 3, "INFO -> INFO_EXPORT, INFO_BLOCK_SIZE, ACK");
	CHECK(info_size == DISK_SIZE && info_flags == 0x16d, "INFO size %llu flags 0x%x",
	      (unsigned long long)info_size, info_flags);
	CHECK(be32toh(min) == 512 && be32toh(pref) == 4096 && be32toh(max) == MAX_BLOCK,
	      "INFO block sizes %u/%u/%u", be32toh(min), be32toh(pref), be32toh(max));
	CHECK(name_ok && descr_ok, "INFO_NAME and INFO_DESCRIPTION");

	plen = go_payload(p, "", 0, NULL);
	raw_opt(fd, NBD_OPT_GO, p, plen);
	while ((type = raw_opt_reply(fd, NBD_OPT_GO, d, &len)) == NBD_REP_INFO)
		raw_info_export(d, len, &go_size, &go_flags);
	CHECK(type == NBD_REP_ACK && go_size == info_size && go_flags == info_flags,
	      "GO (default export) agrees with INFO");
}

/* Requests of each kind, then 16 pipelined READs. */
static void raw_tx_requests(int fd, uint8_t *big)
{
	uint8_t d[4096];
	uint64_t h;
	int err, got, seen[16] = { 0 }, i, bad_order = 0;

	fill(d, 4096, 21);
	raw_req(fd, 0, NBD_CMD_WRITE, 0x1111, 8 << 20, 4096);
	write_full(fd, d, 4096);
	err = raw_reply(fd, &h);
	CHECK(err == 0 && h == 0x1111, "raw WRITE");
	raw_req(fd, 0, NBD_CMD_READ, 0x2222, 8 << 20, 4096);
	err = raw_reply(fd, &h);
	CHECK(err == 0 && h == 0x2222 && read_full(fd, big, 4096) == 0 && !memcmp(big, d, 4096),
	      "raw READ returns the data");
	raw_req(fd, 0, 99, 0x3333, 0, 4096);
	err = raw_reply(fd, &h);
	CHECK(err == NBD_EINVAL && h == 0x3333, "unknown command -> EINVAL");
	raw_req(fd, NBD_CMD_FLAG_DF, NBD_CMD_READ, 0x4444, 0, 4096);
	err = raw_reply(fd, &h);
	CHECK(err == NBD_EINVAL && h == 0x4444, "READ with DF -> EINVAL, no payload");
	raw_req(fd, 0, NBD_CMD_WRITE, 0x5555, 0, 1000);
	write_full(fd, big, 1000);
	err = raw_reply(fd, &h);
	CHECK(err == NBD_EINVAL && h == 0x5555, "unaligned WRITE -> EINVAL, payload skipped");
	raw_req(fd, 0, NBD_CMD_FLUSH, 0x6666, 0, 0);
	err = raw_reply(fd, &h);
	CHECK(err == 0 && h == 0x6666, "FLUSH");

	/* 16 pipelined reads in one send; replies may come in any order. */
	for (i = 0; i < 16; i++)
		raw_req(fd, 0, NBD_CMD_READ, (uint64_t)i, (8 << 20) + (uint64_t)(i % 2) * 4096,
			i % 2 ? 512 : 4096);
	for (i = 0, got = 0; i < 16; i++) {
		err = raw_reply(fd, &h);
		if (err != 0 || h >= 16 || seen[h]++)
			break;
		if (read_full(fd, big, h % 2 ? 512 : 4096) < 0)
			break;
		bad_order += h != (uint64_t)i;
		got += h % 2 || !memcmp(big, d, 4096);
	}
	CHECK(i == 16 && got == 16, "16 pipelined READs answered (%d out of order)", bad_order);
}

static void test_raw_options(void)
{
	uint8_t d[4096], p[256], *big = calloc(1, 100000);
	uint32_t len, type, plen;
	struct bc_nbd_stats st0;
	int fd;

	printf("# raw socket: option haggling and transmission\n");
	fd = raw_connect();
	CHECK(fd >= 0 && raw_hello(fd, 3) == 0, "greeting: NBDMAGIC IHAVEOPT, FIXED|NO_ZEROES");
	raw_opt(fd, 0x4242, "0123456789", 10);
	CHECK(raw_opt_reply(fd, 0x4242, d, &len) == NBD_REP_ERR_UNSUP && len == 0,
	      "unknown option -> ERR_UNSUP");
	raw_opt(fd, NBD_OPT_LIST, NULL, 0);
	type = raw_opt_reply(fd, NBD_OPT_LIST, d, &len);
	CHECK(type == NBD_REP_SERVER && len == 8 && !memcmp(d, "\0\0\0\4test", 8),
	      "LIST -> REP_SERVER \"test\"");
	CHECK(raw_opt_reply(fd, NBD_OPT_LIST, d, &len) == NBD_REP_ACK, "LIST -> ACK");
	raw_opt(fd, NBD_OPT_LIST, "x", 1);
	CHECK(raw_opt_reply(fd, NBD_OPT_LIST, d, &len) == NBD_REP_ERR_INVALID,
	      "LIST with payload -> ERR_INVALID");
	raw_opt(fd, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
	CHECK(raw_opt_reply(fd, NBD_OPT_STRUCTURED_REPLY, d, &len) == NBD_REP_ERR_UNSUP,
	      "STRUCTURED_REPLY -> ERR_UNSUP");
	raw_opt(fd, NBD_OPT_STARTTLS, NULL, 0);
	CHECK(raw_opt_reply(fd, NBD_OPT_STARTTLS, d, &len) == NBD_REP_ERR_UNSUP,
	      "STARTTLS -> ERR_UNSUP");
	plen = go_payload(p, "nope", 0, NULL);
	raw_opt(fd, NBD_OPT_INFO, p, plen);
	CHECK(raw_opt_reply(fd, NBD_OPT_INFO, d, &len) == NBD_REP_ERR_UNKNOWN,
	      "INFO unknown export -> ERR_UNKNOWN");
	plen = go_payload(p, "test", 0, NULL);
	raw_opt(fd, NBD_OPT_INFO, p, plen - 1);
	CHECK(raw_opt_reply(fd, NBD_OPT_INFO, d, &len) == NBD_REP_ERR_INVALID,
	      "INFO with inconsistent lengths -> ERR_INVALID");
	raw_opt(fd, 0x4243, big, 100000);
	CHECK(raw_opt_reply(fd, 0x4243, d, &len) == NBD_REP_ERR_UNSUP,
	      "unknown option with 100 KB payload -> ERR_UNSUP");
	raw_opt(fd, NBD_OPT_GO, big, 100000);
	CHECK(raw_opt_reply(fd, NBD_OPT_GO, d, &len) == NBD_REP_ERR_INVALID,
	      "GO with 100 KB payload -> ERR_INVALID");

	raw_options_info_go(fd);
	raw_tx_requests(fd, big);

	st0 = snap_stats();
	write_full(fd, "garbage garbage garbage garbage", 28);
	CHECK(peer_closed(fd), "bad request magic closes the connection");
	CHECK(snap_stats().protocol_errors == st0.protocol_errors + 1, "counted as protocol error");
	close(fd);
	free(big);
}

/* Malformed input closes the connection, even with requests at the target. */
static void raw_malformed_input_closes(void)
{
	uint8_t d[256];
	uint32_t len;
	int fd, i;

	fd = raw_connect();
	CHECK(fd >= 0 && raw_hello(fd, 3) == 0 && (raw_opt(fd, NBD_OPT_EXPORT_NAME, "nope", 4), 1) &&
	      peer_closed(fd), "EXPORT_NAME of an unknown export closes");
	close(fd);
	fd = raw_connect_hello(3);
	raw_opt(fd, NBD_OPT_ABORT, NULL, 0);
	CHECK(raw_opt_reply(fd, NBD_OPT_ABORT, d, &len) == NBD_REP_ACK && peer_closed(fd),
	      "ABORT -> ACK, then closed");
	close(fd);

	fd = raw_connect_hello(0x80000003u);
	CHECK(peer_closed(fd), "unknown client flags close the connection");
	close(fd);
	fd = raw_connect_hello(3);
	write_full(fd, "IHAVEOPS\0\0\0\3\0\0\0\0", 16);
	CHECK(peer_closed(fd), "bad option magic closes the connection");
	close(fd);
	fd = raw_connect_hello(3);
	raw_opt(fd, NBD_OPT_GO, NULL, 0);
	raw_opt_reply(fd, NBD_OPT_GO, d, &len); /* ERR_INVALID: empty GO */
	write_full(fd, "IHAVEOPT\0\0\0\7\0\x20\0\0", 16);
	CHECK(peer_closed(fd), "option with a 2 MiB payload closes the connection");
	close(fd);
	fd = raw_connect_tx();
	raw_req(fd, 0, NBD_CMD_WRITE, 9, 0, 128u << 20);
	CHECK(peer_closed(fd), "WRITE announcing a 128 MiB payload closes the connection");
	close(fd);
	/* Killed while its requests sit at the target: freed only after
	 * their completions (ASan builds would catch a use after free). */
	env_set_target_delay(200000);
	fd = raw_connect_tx();
	for (i = 0; i < 8; i++)
		raw_req(fd, 0, NBD_CMD_READ, (uint64_t)i, (uint64_t)i * 4096, 4096);
	write_full(fd, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 28);
	CHECK(peer_closed(fd), "bad magic behind 8 slow READs closes at once");
	close(fd);
	/* Bounded wait (60 s: reached only if they never complete). */
	wait_target_quiet(1);
	CHECK(snap_rt().inflight == 0 && snap_stats().connections_open == 1,
	      "its requests completed and the connection was freed afterwards");
	env_set_target_delay(300);
}

static void test_raw_misc(void)
{
	struct nbd_handle *other;
	struct bc_nbd_stats st0;
	uint8_t d[256], z[124], w[4096];
	uint64_t h, v64, h1 = 0, h2 = 0;
	int fd, e1, e2;

	printf("# raw socket: EXPORT_NAME, ABORT, DISC and malformed input\n");
	other = nbd_open(false);
	CHECK(other != NULL, "a libnbd connection stays open meanwhile");
	st0 = snap_stats();

	fd = raw_connect();
	CHECK(fd >= 0 && raw_hello(fd, 1) == 0, "client flags FIXED only");
	raw_opt(fd, NBD_OPT_EXPORT_NAME, "test", 4);
	CHECK(read_full(fd, d, 10) == 0 && read_full(fd, z, 124) == 0 && is_zero(z, 124),
	      "EXPORT_NAME reply with 124 zero bytes");
	memcpy(&v64, d, 8);
	CHECK(be64toh(v64) == DISK_SIZE && d[8] == 0x01 && d[9] == 0x6d,
	      "EXPORT_NAME size and flags");
	raw_req(fd, 0, NBD_CMD_READ, 7, 0, 512);
	CHECK(raw_reply(fd, &h) == 0 && h == 7 && read_full(fd, d, 512 - 256) == 0 &&
	      read_full(fd, d, 256) == 0, "READ after EXPORT_NAME");
	raw_req(fd, 0, NBD_CMD_DISC, 8, 0, 0);
	CHECK(peer_closed(fd), "DISC closes the connection");
	close(fd);

	fd = raw_connect();
	CHECK(fd >= 0 && raw_hello(fd, 3) == 0, "client flags FIXED|NO_ZEROES");
	raw_opt(fd, NBD_OPT_EXPORT_NAME, NULL, 0);
	CHECK(read_full(fd, d, 10) == 0, "EXPORT_NAME \"\": 10-byte reply");
	/* DISC right behind two requests: both are answered, then EOF. */
	fill(w, sizeof(w), 31);
	raw_req(fd, NBD_CMD_FLAG_FUA, NBD_CMD_WRITE, 1, 24 << 20, 4096);
	write_full(fd, w, 4096);
	raw_req(fd, 0, NBD_CMD_READ, 2, 28 << 20, 256 * 2);
	raw_req(fd, 0, NBD_CMD_DISC, 3, 0, 0);
	e1 = raw_reply(fd, &h1);
	if (e1 == 0 && h1 == 2)
		read_full(fd, d, 256), read_full(fd, d, 256);
	e2 = raw_reply(fd, &h2);
	if (e2 == 0 && h2 == 2)
		read_full(fd, d, 256), read_full(fd, d, 256);
	CHECK(e1 == 0 && e2 == 0 && h1 + h2 == 3, "requests before DISC answered (no zeroes sent)");
	CHECK(peer_closed(fd), "then the connection closes");
	CHECK(ram_equals(24 << 20, w, 4096), "the write before DISC landed");
	close(fd);

	raw_malformed_input_closes();
	CHECK(snap_stats().protocol_errors == st0.protocol_errors + 5,
	      "5 more protocol errors counted");
	CHECK(other && nbd_pread(other, w, 4096, 24 << 20, 0) == 0 && ram_equals(24 << 20, w, 4096),
	      "the other connection still works");
	if (other)
		nbd_close(other);
}

static void test_nbdinfo(void)
{
	char cmd[512], out[8192];
	int st;

	printf("# nbdinfo\n");
	snprintf(cmd, sizeof(cmd), "nbdinfo --json 'nbd+unix:///%s?socket=%s' 2>&1", EXPORT,
		 test_env.sock);
	if (run_capture(cmd, out, sizeof(out), &st) < 0) {
		printf("# skipped: popen failed\n");
		return;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 127) {
		printf("# skipped: nbdinfo not installed\n");
		return;
	}
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "nbdinfo exits 0");
	CHECK(strstr(out, "\"export-size\": 67108864") != NULL, "nbdinfo reports the size");
	CHECK(strstr(out, "\"block_size_maximum\": 1048576") != NULL,
	      "nbdinfo reports the maximum block size");
	if (test_failures)
		printf("# nbdinfo output:\n%s\n", out);
}

static void test_shutdown(void)
{
	struct bc_nbd_stats st;
	struct nbd_handle *h;
	struct stat sb;
	uint8_t buf[4096];
	int fd, idle;

	printf("# shutdown\n");
	h = nbd_open(false);
	fd = raw_connect();
	CHECK(h && fd >= 0 && nbd_pread(h, buf, 4096, 0, 0) == 0,
	      "one connection in transmission, one in handshake");
	idle = env_shutdown_server();
	CHECK(idle, "server idle after shutdown");
	CHECK(fd >= 0 && peer_closed(fd), "handshaking connection closed");
	CHECK(h && nbd_pread(h, buf, 4096, 0, 0) == -1, "transmission connection closed");
	CHECK(stat(test_env.sock, &sb) < 0 && errno == ENOENT, "unix socket removed");
	CHECK(raw_connect() < 0, "new connections refused");
	st = snap_stats();
	CHECK(st.connections_open == 0 && st.connections_total >= 20 && st.requests > 400,
	      "stats: %llu connections, %llu requests, %llu protocol errors",
	      (unsigned long long)st.connections_total, (unsigned long long)st.requests,
	      (unsigned long long)st.protocol_errors);
	CHECK(snap_rt().inflight == 0 && snap_rt().bad == 0, "target idle, saw no bad request");
	if (fd >= 0)
		close(fd);
	if (h)
		nbd_close(h);
}

int main(void)
{
	struct bc_nbd_config cfg = { 0 };
	struct bc_nbd_server *dup = NULL;
	char tcp[64], path[192];
	struct stat sb;
	int r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	unit_tests();

	r = env_setup();
	if (r == ENV_SKIP)
		return test_failures ? 1 : 77;
	if (r < 0)
		return 1;
	env_server_config(&cfg, tcp, sizeof(tcp));

	/* A stale socket file (nobody listening) is replaced. */
	r = bind_stale_socket(test_env.sock);
	printf("# server\n");
	r = bc_nbd_server_new(&test_env.srv, test_env.loop, &test_env.rt->target, &cfg);
	CHECK(r == 0, "server starts over a stale socket file: %s", strerror(-r));
	if (r < 0)
		return 1;
	memset(&sb, 0, sizeof(sb));
	r = stat(test_env.sock, &sb);
	CHECK(r == 0 && S_ISSOCK(sb.st_mode) && (sb.st_mode & 0777) == 0600,
	      "unix socket has mode 0600 (0%o)", sb.st_mode & 0777);
	snprintf(path, sizeof(path), "%s/file", test_env.dir);
	fclose(fopen(path, "w"));
	cfg.unix_path = path;
	cfg.tcp_addr = NULL;
	r = bc_nbd_server_new(&dup, test_env.loop, &test_env.rt->target, &cfg);
	CHECK(r == -EEXIST && stat(path, &sb) == 0, "a regular file is never replaced");
	unlink(path);
	cfg.unix_path = NULL;
	cfg.tcp_addr = "no-port";
	CHECK(bc_nbd_server_new(&dup, test_env.loop, &test_env.rt->target, &cfg) == -EINVAL,
	      "bad TCP address");

	if (env_start_loop_thread() != 0) {
		printf("FAIL - pthread_create\n");
		return 1;
	}
	/* A live server answers its socket at once: a second one is refused
	 * (probed from another loop; the first one is serving on its thread). */
	cfg.unix_path = test_env.sock;
	cfg.tcp_addr = NULL;
	r = server_new_on_own_loop(&cfg);
	CHECK(r == -EADDRINUSE, "second server on a live socket path: %s", strerror(-r));
	test_libnbd_basic();
	test_libnbd_errors();
	test_libnbd_async();
	test_multi_conn();
	test_raw_options();
	test_raw_misc();
	test_nbdinfo();
	test_exports();
	test_shutdown();

	env_teardown();

	printf("summary: %d checks, %d failed\n", test_checks, test_failures);
	return test_failures ? 1 : 0;
}
