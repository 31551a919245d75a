/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Client-side and harness helpers for the NBD server test: see
 * nbd-test-clients.h.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <libnbd.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "blkcache/log.h"
#include "nbd-test-clients.h"
#include "../frontends/nbd/proto.h"

int test_failures, test_checks;

void check_impl(int ok, int line, const char *fmt, ...)
{
	va_list ap;

	test_checks++;
	printf("%s - ", ok ? "ok  " : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	if (!ok) {
		test_failures++;
		printf("  (line %d)", line);
	}
	printf("\n");
}

/* ---------- the server environment ---------- */

struct nbd_test_env test_env = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void *loop_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&test_env.mu);
	while (!atomic_load(&test_env.quit)) {
		if (atomic_load(&test_env.shutdown_req) == 1) {
			bc_nbd_server_shutdown(test_env.srv);
			atomic_store(&test_env.shutdown_req, 2);
		}
		if (bc_loop_run_once(test_env.loop, 5) < 0) {
			fprintf(stderr, "bc_loop_run_once failed\n");
			break;
		}
		if (atomic_load(&test_env.waiters)) {
			pthread_mutex_unlock(&test_env.mu);
			while (atomic_load(&test_env.waiters))
				sched_yield();
			pthread_mutex_lock(&test_env.mu);
		}
	}
	pthread_mutex_unlock(&test_env.mu);
	return NULL;
}

static void log_cb(void *arg, enum bc_log_level level, const char *msg)
{
	(void)arg;
	fprintf(stderr, "[log %d] %s\n", (int)level, msg);
}

static int free_port(char *buf, size_t len)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &sl) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	snprintf(buf, len, "%u", ntohs(sin.sin_port));
	return 0;
}

int env_setup(void)
{
	int r;

	bc_log_set(log_cb, NULL, getenv("BC_TEST_VERBOSE") ? BC_LOG_DEBUG : BC_LOG_ERR);
	r = bc_loop_new(&test_env.loop, 256);
	if (r < 0) {
		printf("# skipped: cannot create an io_uring loop: %s\n", strerror(-r));
		return ENV_SKIP;
	}
	snprintf(test_env.dir, sizeof(test_env.dir), "/tmp/bc-nbd-test.XXXXXX");
	if (!mkdtemp(test_env.dir) || free_port(test_env.port, sizeof(test_env.port)) < 0 ||
	    ram_target_new(&test_env.rt, test_env.loop, DISK_SIZE, MAX_BLOCK, ALL_FLAGS) < 0) {
		printf("FAIL - test setup: %s\n", strerror(errno));
		return -1;
	}
	test_env.rt->delay_max_us = 300; /* completions out of order */
	snprintf(test_env.sock, sizeof(test_env.sock), "%s/nbd.sock", test_env.dir);
	return 0;
}

int bind_stale_socket(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, r;

	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	close(fd);
	return r;
}

int env_start_loop_thread(void)
{
	return pthread_create(&test_env.thread, NULL, loop_main, NULL);
}

void env_teardown(void)
{
	int r;

	atomic_store(&test_env.quit, 1);
	pthread_join(test_env.thread, NULL);
	bc_nbd_server_free(test_env.srv);
	/* Let cancelled polls come back before the loop goes away. */
	for (r = 0; r < 10; r++)
		bc_loop_run_once(test_env.loop, 1);
	bc_loop_free(test_env.loop);
	ram_target_free(test_env.rt);
	rmdir(test_env.dir);
}

void env_lock(void)
{
	atomic_fetch_add(&test_env.waiters, 1);
	pthread_mutex_lock(&test_env.mu);
	atomic_fetch_sub(&test_env.waiters, 1);
}

void env_unlock(void)
{
	pthread_mutex_unlock(&test_env.mu);
}

struct ram_target snap_rt(void)
{
	struct ram_target r;

	env_lock();
	r = *test_env.rt;
	env_unlock();
	return r;
}

struct bc_nbd_stats snap_stats(void)
{
	struct bc_nbd_stats st;

	env_lock();
	bc_nbd_server_stats(test_env.srv, &st);
	env_unlock();
	return st;
}

int ram_equals(uint64_t off, const void *p, size_t n)
{
	int eq;

	env_lock();
	eq = memcmp(test_env.rt->data + off, p, n) == 0;
	env_unlock();
	return eq;
}

void env_server_config(struct bc_nbd_config *cfg, char *tcp, size_t tcplen)
{
	snprintf(tcp, tcplen, "127.0.0.1:%s", test_env.port);
	cfg->unix_path = test_env.sock;
	cfg->tcp_addr = tcp;
	cfg->export_name = EXPORT;
	cfg->description = DESCR;
	cfg->max_inflight = MAX_INFLIGHT;
}

int server_new_on_own_loop(const struct bc_nbd_config *cfg)
{
	struct bc_nbd_server *srv = NULL;
	struct bc_loop *loop2 = NULL;
	int r;

	r = bc_loop_new(&loop2, 16);
	if (r == 0)
		r = bc_nbd_server_new(&srv, loop2, &test_env.rt->target, cfg);
	bc_loop_free(loop2);
	return r;
}

int env_shutdown_server(void)
{
	int idle = 0;
	time_t t0;

	atomic_store(&test_env.shutdown_req, 1);
	for (t0 = time(NULL); !idle && time(NULL) - t0 < 60;) {
		usleep(10000);
		env_lock();
		idle = atomic_load(&test_env.shutdown_req) == 2 && bc_nbd_server_idle(test_env.srv);
		env_unlock();
	}
	return idle;
}

void env_fail_target(uint64_t off, uint64_t len, int result)
{
	env_lock();
	test_env.rt->fail_offset = off;
	test_env.rt->fail_length = len;
	test_env.rt->fail_result = result;
	env_unlock();
}

void env_set_target_delay(uint32_t delay_max_us)
{
	env_lock();
	test_env.rt->delay_max_us = delay_max_us;
	env_unlock();
}

void env_reset_target_max_inflight(void)
{
	env_lock();
	test_env.rt->max_inflight = 0;
	env_unlock();
}

void wait_target_quiet(unsigned max_open)
{
	time_t t0 = time(NULL);

	while ((snap_rt().inflight || snap_stats().connections_open > max_open) &&
	       time(NULL) - t0 < 60)
		usleep(10000);
}

/* ---------- data patterns ---------- */

void fill(void *buf, size_t n, unsigned seed)
{
	uint8_t *p = buf;
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 131u + i * 7u + (i >> 9));
}

int is_zero(const void *buf, size_t n)
{
	const uint8_t *p = buf;
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* ---------- libnbd clients ---------- */

struct nbd_handle *nbd_open(bool tcp)
{
	struct nbd_handle *h = nbd_create();
	int r;

	if (!h)
		return NULL;
	nbd_set_export_name(h, EXPORT);
	r = tcp ? nbd_connect_tcp(h, "127.0.0.1", test_env.port) :
		  nbd_connect_unix(h, test_env.sock);
	if (r == -1) {
		printf("# connect: %s\n", nbd_get_error());
		nbd_close(h);
		return NULL;
	}
	return h;
}

struct nbd_handle *nbd_named(const char *name)
{
	struct nbd_handle *h = nbd_create();

	nbd_set_export_name(h, name);
	return h;
}

int cmd_errno(int r)
{
	return r == -1 ? nbd_get_errno() : 0;
}

/* Bounded (60 s from @start: reached only if replies never come). */
void aio_wait(struct nbd_handle *h, time_t start)
{
	while (nbd_aio_in_flight(h) > 0 && time(NULL) - start < 60)
		nbd_poll(h, 100);
}

int aio_completed(struct nbd_handle *h, const int64_t *cookies, int n)
{
	int i, ok;

	for (i = 0, ok = 0; i < n; i++)
		ok += cookies[i] > 0 && nbd_aio_command_completed(h, (uint64_t)cookies[i]) == 1;
	return ok;
}

int run_capture(const char *cmd, char *out, size_t size, int *status)
{
	FILE *f = popen(cmd, "r");
	size_t n;

	if (!f)
		return -1;
	n = fread(out, 1, size - 1, f);
	out[n] = '\0';
	*status = pclose(f);
	return 0;
}

/* ---------- raw sockets ---------- */

int raw_connect(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	/* A receive timeout only so that a server that never answers fails the
	 * test instead of hanging it: generous, no check expects it to expire. */
	struct timeval tv = { .tv_sec = 60 };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	strcpy(sun.sun_path, test_env.sock);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

int read_full(int fd, void *buf, size_t n)
{
	uint8_t *p = buf;

	while (n > 0) {
		ssize_t r = recv(fd, p, n, 0);

		/* A test thread that runs the server's loop itself is interrupted
		 * by io_uring's task work: a recv() with a timeout then fails with
		 * EINTR instead of restarting. */
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int write_full(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;

	while (n > 0) {
		ssize_t r = send(fd, p, n, MSG_NOSIGNAL);

		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int peer_closed(int fd)
{
	uint8_t b[256];
	ssize_t r;

	do
		r = recv(fd, b, sizeof(b), 0);
	while (r > 0 || (r < 0 && errno == EINTR));
	return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

int raw_hello(int fd, uint32_t cflags)
{
	uint8_t g[18];

	if (read_full(fd, g, sizeof(g)) < 0 || memcmp(g, "NBDMAGICIHAVEOPT\x00\x03", 18))
		return -1;
	cflags = htobe32(cflags);
	return write_full(fd, &cflags, 4);
}

int raw_connect_hello(uint32_t cflags)
{
	int fd = raw_connect();

	raw_hello(fd, cflags);
	return fd;
}

int raw_connect_tx(void)
{
	uint8_t d[10];
	int fd = raw_connect();

	raw_hello(fd, 3);
	raw_opt(fd, NBD_OPT_EXPORT_NAME, NULL, 0);
	read_full(fd, d, 10);
	return fd;
}

void raw_opt(int fd, uint32_t opt, const void *data, uint32_t len)
{
	uint8_t h[16];
	uint32_t v;

	memcpy(h, "IHAVEOPT", 8);
	v = htobe32(opt);
	memcpy(h + 8, &v, 4);
	v = htobe32(len);
	memcpy(h + 12, &v, 4);
	write_full(fd, h, 16);
	if (len)
		write_full(fd, data, len);
}

uint32_t raw_opt_reply(int fd, uint32_t opt, uint8_t *data, uint32_t *len)
{
	uint8_t h[20];
	uint64_t magic;
	uint32_t o, type, l;

	if (read_full(fd, h, 20) < 0)
		return 0;
	memcpy(&magic, h, 8);
	memcpy(&o, h + 8, 4);
	memcpy(&type, h + 12, 4);
	memcpy(&l, h + 16, 4);
	l = be32toh(l);
	if (be64toh(magic) != NBD_REP_MAGIC || be32toh(o) != opt || l > 4096 ||
	    (l && read_full(fd, data, l) < 0))
		return 0;
	*len = l;
	return be32toh(type);
}

void raw_req(int fd, uint16_t flags, uint16_t type, uint64_t handle, uint64_t off,
	     uint32_t len)
{
	uint8_t r[28];
	uint32_t m = htobe32(NBD_REQUEST_MAGIC), l = htobe32(len);
	uint16_t f = htobe16(flags), t = htobe16(type);

	off = htobe64(off);
	memcpy(r, &m, 4);
	memcpy(r + 4, &f, 2);
	memcpy(r + 6, &t, 2);
	memcpy(r + 8, &handle, 8);
	memcpy(r + 16, &off, 8);
	memcpy(r + 24, &l, 4);
	write_full(fd, r, 28);
}

int raw_reply(int fd, uint64_t *handle)
{
	uint8_t r[16];
	uint32_t m, e;

	if (read_full(fd, r, 16) < 0)
		return -1;
	memcpy(&m, r, 4);
	memcpy(&e, r + 4, 4);
	memcpy(handle, r + 8, 8);
	return be32toh(m) == NBD_SIMPLE_REPLY_MAGIC ? (int)be32toh(e) : -1;
}

uint32_t go_payload(uint8_t *p, const char *name, int n_req, const uint16_t *req)
{
	uint32_t nl = (uint32_t)strlen(name), v = htobe32(nl);
	uint16_t c = htobe16((uint16_t)n_req);
	int i;

	memcpy(p, &v, 4);
	memcpy(p + 4, name, nl);
	memcpy(p + 4 + nl, &c, 2);
	for (i = 0; i < n_req; i++) {
		uint16_t r = htobe16(req[i]);

		memcpy(p + 6 + nl + 2 * i, &r, 2);
	}
	return 6 + nl + 2 * (uint32_t)n_req;
}

bool raw_info_export(const uint8_t *d, uint32_t len, uint64_t *size, uint16_t *flags)
{
	uint64_t v64;
	uint16_t v16;

	memcpy(&v16, d, 2);
	if (be16toh(v16) != NBD_INFO_EXPORT || len != 12)
		return false;
	memcpy(&v64, d + 2, 8);
	*size = be64toh(v64);
	memcpy(&v16, d + 10, 2);
	*flags = be16toh(v16);
	return true;
}
