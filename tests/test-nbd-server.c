/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NBD server frontend test: pure protocol helpers, then a real server on a
 * bc_loop thread over a RAM target, driven by libnbd, raw sockets and
 * nbdinfo.  Exit 0: all checks passed, 1: a check failed, 77: skipped.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <libnbd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "blkcache/log.h"
#include "blkcache/loop.h"
#include "blkcache/nbd.h"
#include "ram-target.h"
#include "../frontends/nbd/handshake.h"
#include "../frontends/nbd/internal.h"
#include "../frontends/nbd/proto.h"

#define DISK_SIZE  (64ull << 20)
#define MAX_BLOCK  (1u << 20)
#define MAX_INFLIGHT 32u
#define EXPORT     "test"
#define DESCR      "blkcache test export"
#define ALL_FLAGS  (BC_TARGET_CAN_FLUSH | BC_TARGET_CAN_FUA | BC_TARGET_CAN_DISCARD | \
		    BC_TARGET_CAN_ZEROES | BC_TARGET_MULTI_CONN)

static int failures, checks;

#define CHECK(cond, ...) check_impl(!!(cond), __LINE__, __VA_ARGS__)

__attribute__((format(printf, 3, 4)))
static void check_impl(int ok, int line, const char *fmt, ...)
{
	va_list ap;

	checks++;
	printf("%s - ", ok ? "ok  " : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	if (!ok) {
		failures++;
		printf("  (line %d)", line);
	}
	printf("\n");
}

/* ---------- the server thread ---------- */

static struct {
	pthread_mutex_t mu;
	pthread_t thread;
	atomic_int quit, waiters, shutdown_req;
	struct bc_loop *loop;
	struct ram_target *rt;
	struct bc_nbd_server *srv;
	char dir[64], sock[128], port[16];
} S = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void *loop_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&S.mu);
	while (!atomic_load(&S.quit)) {
		if (atomic_load(&S.shutdown_req) == 1) {
			bc_nbd_server_shutdown(S.srv);
			atomic_store(&S.shutdown_req, 2);
		}
		if (bc_loop_run_once(S.loop, 5) < 0) {
			fprintf(stderr, "bc_loop_run_once failed\n");
			break;
		}
		if (atomic_load(&S.waiters)) {
			pthread_mutex_unlock(&S.mu);
			while (atomic_load(&S.waiters))
				sched_yield();
			pthread_mutex_lock(&S.mu);
		}
	}
	pthread_mutex_unlock(&S.mu);
	return NULL;
}

/* While locked, the loop thread is outside bc_loop_run_once(). */
static void lock(void)
{
	atomic_fetch_add(&S.waiters, 1);
	pthread_mutex_lock(&S.mu);
	atomic_fetch_sub(&S.waiters, 1);
}

static void unlock(void)
{
	pthread_mutex_unlock(&S.mu);
}

static struct ram_target snap_rt(void)
{
	struct ram_target r;

	lock();
	r = *S.rt;
	unlock();
	return r;
}

static struct bc_nbd_stats snap_stats(void)
{
	struct bc_nbd_stats st;

	lock();
	bc_nbd_server_stats(S.srv, &st);
	unlock();
	return st;
}

static int ram_equals(uint64_t off, const void *p, size_t n)
{
	int eq;

	lock();
	eq = memcmp(S.rt->data + off, p, n) == 0;
	unlock();
	return eq;
}

static void log_cb(void *arg, enum bc_log_level level, const char *msg)
{
	(void)arg;
	fprintf(stderr, "[log %d] %s\n", (int)level, msg);
}

static void fill(void *buf, size_t n, unsigned seed)
{
	uint8_t *p = buf;
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 131u + i * 7u + (i >> 9));
}

static int is_zero(const void *buf, size_t n)
{
	const uint8_t *p = buf;
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* ---------- pure protocol helpers ---------- */

static void unit_tests(void)
{
	struct bc_nbd_limits lim = { DISK_SIZE, 512, MAX_BLOCK, 0 };
	struct bc_nbd_request_hdr rq;
	struct bc_nbd_info_req ir;
	struct bc_nbd_opt_hdr oh;
	struct bc_nbd_export exp;
	struct bc_nbd_obuf ob;
	uint8_t b[256];
	uint32_t u32;
	char host[64], port[8];
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

	lim.tx_flags = bc_nbd_proto_tx_flags(ALL_FLAGS);
	CHECK(lim.tx_flags == 0x16d, "transmission flags 0x%x", lim.tx_flags);
	CHECK(bc_nbd_proto_tx_flags(0) == NBD_FLAG_HAS_FLAGS, "no target flags: HAS_FLAGS only");
#define REQ(t, f, o, l) (&(struct bc_nbd_request_hdr){ .type = (t), .flags = (f), \
							.offset = (o), .length = (l) })
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

	CHECK(bc_nbd_parse_hostport("1.2.3.4:10809", host, sizeof(host), port, sizeof(port)) == 0 &&
	      !strcmp(host, "1.2.3.4") && !strcmp(port, "10809"), "HOST:PORT");
	CHECK(bc_nbd_parse_hostport("[::1]:99", host, sizeof(host), port, sizeof(port)) == 0 &&
	      !strcmp(host, "::1") && !strcmp(port, "99"), "[v6]:PORT");
	CHECK(bc_nbd_parse_hostport(":5", host, sizeof(host), port, sizeof(port)) == 0 &&
	      !strcmp(host, "127.0.0.1"), ":PORT defaults to 127.0.0.1");
	CHECK(bc_nbd_parse_hostport("::1:5", host, sizeof(host), port, sizeof(port)) < 0 &&
	      bc_nbd_parse_hostport("h:x", host, sizeof(host), port, sizeof(port)) < 0 &&
	      bc_nbd_parse_hostport("h:99999", host, sizeof(host), port, sizeof(port)) < 0,
	      "bad addresses rejected");
}

