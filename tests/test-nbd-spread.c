/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The NBD server's spread exports (bc_nbd_server_add_export_spread): an
 * export whose connections run on several loops, as a sharded origin's
 * run on its shards' threads.  Three places -- the server's loop and two
 * loops with threads of their own -- each with a RAM target over one
 * shared buffer, wrapped so that every request checks the thread it is
 * submitted on.  Real clients (libnbd, and a raw socket for malformed
 * data) check:
 *  - connections take the places in turn; those placed elsewhere move
 *    after their handshake (connections_moved), a plain export's do not;
 *  - every request reaches its connection's place, on that place's
 *    thread, and data written through one place reads back through all;
 *  - the server counts requests and protocol errors of moved connections;
 *  - removing the export closes its moved connections (export_conns
 *    reaches 0) and leaves the other export serving; re-adding it works;
 *  - shutdown with moved connections open reaches idle;
 *  - freeing a server with moved connections open closes them.
 */
#include <endian.h>
#include <errno.h>
#include <libnbd.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "blkcache/log.h"
#include "blkcache/nbd.h"
#include "ram-target.h"
#include "testutil.h"

#define SIZE     (16u << 20)
#define MAXBLK   (1u << 20)
#define NPLACE   3
#define PATLEN   (64u << 10)
#define NCONN    6
#define WAIT_S   30 /* bound of every wait for the server */

struct place {
	struct bc_loop *loop;
	pthread_t thread;
	struct ram_target *rt;
	struct bc_target t;        /* rt's, checking the thread */
	atomic_ulong submits, wrong_thread;
};

static struct place pl[NPLACE];
static atomic_bool quit;
static struct bc_nbd_server *srv;
static char sock_path[300];

/* The server's loop runs on the home thread (place 0); the main thread
 * calls the server between its rounds (srv_lock). */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int waiters;

static void srv_lock(void)
{
	atomic_fetch_add(&waiters, 1);
	pthread_mutex_lock(&mu);
	atomic_fetch_sub(&waiters, 1);
}

static void srv_unlock(void)
{
	pthread_mutex_unlock(&mu);
}

static void *home_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	while (!atomic_load(&quit)) {
		bc_loop_run_once(pl[0].loop, 5);
		if (atomic_load(&waiters)) {
			pthread_mutex_unlock(&mu);
			while (atomic_load(&waiters))
				sched_yield();
			pthread_mutex_lock(&mu);
		}
	}
	pthread_mutex_unlock(&mu);
	return NULL;
}

static void *worker_main(void *arg)
{
	struct place *p = arg;

	while (!atomic_load(&quit))
		bc_loop_run_once(p->loop, 5);
	return NULL;
}

static void chk_submit(void *ctx, struct bc_request *r)
{
	struct place *p = ctx;

	atomic_fetch_add(&p->submits, 1);
	if (!pthread_equal(pthread_self(), p->thread))
		atomic_fetch_add(&p->wrong_thread, 1);
	bc_target_submit(&p->rt->target, r);
}

static const struct bc_target_ops chk_ops = { .name = "checked-ram", .submit = chk_submit };

static void places_start(void)
{
	unsigned i;

	for (i = 0; i < NPLACE; i++) {
		struct place *p = &pl[i];

		CHECK(bc_loop_new(&p->loop, 128) == 0, "loop %u", i);
		CHECK(ram_target_new(&p->rt, p->loop, SIZE, MAXBLK,
				     BC_TARGET_CAN_FLUSH | BC_TARGET_CAN_FUA) == 0, "target %u", i);
		if (i) { /* one device seen from three loops */
			free(p->rt->data);
			p->rt->data = pl[0].rt->data;
		}
		p->t = p->rt->target;
		p->t.ops = &chk_ops;
		p->t.ctx = p;
		CHECK(pthread_create(&p->thread, NULL, i ? worker_main : home_main, p) == 0,
		      "thread %u", i);
	}
}

static void places_stop(void)
{
	unsigned i, k;

	atomic_store(&quit, true);
	for (i = 0; i < NPLACE; i++)
		pthread_join(pl[i].thread, NULL);
	for (i = 0; i < NPLACE; i++) {
		for (k = 0; k < 10; k++)
			bc_loop_run_once(pl[i].loop, 1);
		if (i)
			pl[i].rt->data = NULL;
		ram_target_free(pl[i].rt);
		bc_loop_free(pl[i].loop);
	}
}

static struct bc_nbd_stats stats(void)
{
	struct bc_nbd_stats st;

	srv_lock();
	bc_nbd_server_stats(srv, &st);
	srv_unlock();
	return st;
}

static unsigned export_conns(const char *name)
{
	unsigned n;

	srv_lock();
	n = bc_nbd_server_export_conns(srv, name);
	srv_unlock();
	return n;
}

static int add_spread(void)
{
	struct bc_target_place p[NPLACE];
	unsigned i;
	int r;

	for (i = 0; i < NPLACE; i++)
		p[i] = (struct bc_target_place){ .loop = pl[i].loop, .target = &pl[i].t };
	srv_lock();
	r = bc_nbd_server_add_export_spread(srv, "spread", NULL, p, NPLACE);
	srv_unlock();
	return r;
}

static int new_server(const char *path)
{
	struct bc_nbd_config cfg = { .unix_path = path };
	int r;

	srv_lock();
	r = bc_nbd_server_new(&srv, pl[0].loop, NULL, &cfg);
	if (r == 0)
		r = bc_nbd_server_add_export(srv, "plain", NULL, &pl[0].t);
	srv_unlock();
	return r ? r : add_spread();
}

static struct nbd_handle *client(const char *name)
{
	struct nbd_handle *h = nbd_create();

	if (h && (nbd_set_export_name(h, name) < 0 || nbd_connect_unix(h, sock_path) < 0)) {
		fprintf(stderr, "client %s: %s\n", name, nbd_get_error());
		nbd_close(h);
		h = NULL;
	}
	return h;
}

static void pattern(char *buf, unsigned i)
{
	unsigned k;

	for (k = 0; k < PATLEN; k++)
		buf[k] = (char)(i * 37 + k * 11 + (k >> 12));
}

/* Has @h lost its connection (a read fails)? */
static bool cut_off(struct nbd_handle *h, char *buf)
{
	return nbd_pread(h, buf, 4096, 0, 0) < 0;
}

/* Wait until cond() holds, for at most WAIT_S seconds. */
#define WAIT_FOR(cond)                                                   \
	({                                                               \
		time_t t0_ = time(NULL);                                 \
		bool ok_;                                                \
		while (!(ok_ = (cond)) && time(NULL) - t0_ < WAIT_S)     \
			usleep(2000);                                    \
		ok_;                                                     \
	})

/* A raw client: the fixed newstyle handshake for export @name (no
 * zeroes), then @len bytes of garbage; returns the socket. */
static int raw_garbage(const char *name, size_t len)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	unsigned char greet[18], reply[10], opt[16 + 64], junk[64];
	uint32_t nlen = (uint32_t)strlen(name), flags = htobe32(3); /* FIXED_NEWSTYLE | NO_ZEROES */
	uint64_t magic = htobe64(0x49484156454F5054ull);
	uint32_t o = htobe32(1), l = htobe32(nlen);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	strcpy(sun.sun_path, sock_path);
	memset(junk, 0x5a, sizeof(junk));
	memcpy(opt, &magic, 8);
	memcpy(opt + 8, &o, 4);
	memcpy(opt + 12, &l, 4);
	memcpy(opt + 16, name, nlen);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    recv(fd, greet, sizeof(greet), MSG_WAITALL) != (ssize_t)sizeof(greet) ||
	    send(fd, &flags, 4, 0) != 4 || send(fd, opt, 16 + nlen, 0) != (ssize_t)(16 + nlen) ||
	    recv(fd, reply, sizeof(reply), MSG_WAITALL) != (ssize_t)sizeof(reply) ||
	    send(fd, junk, len, 0) != (ssize_t)len) {
		perror("raw client");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static void spread_and_serve(struct nbd_handle **h, char *buf, char *want)
{
	struct bc_nbd_stats st;
	unsigned i, j;

	for (i = 0; i < NCONN; i++) {
		h[i] = client("spread");
		CHECK(h[i] != NULL, "spread connection %u", i);
	}
	h[NCONN] = client("plain");
	CHECK(h[NCONN] != NULL, "plain connection");
	st = stats();
	CHECK(st.connections_moved == NCONN - NCONN / NPLACE && st.connections_open == NCONN + 1,
	      "connections in turn: %llu of %u moved off the server's loop (want %u), %u open",
	      (unsigned long long)st.connections_moved, NCONN, NCONN - NCONN / NPLACE,
	      st.connections_open);

	for (i = 0; i < NCONN && h[i]; i++) {
		pattern(buf, i);
		CHECK(nbd_pwrite(h[i], buf, PATLEN, (uint64_t)i << 20, LIBNBD_CMD_FLAG_FUA) == 0,
		      "write through connection %u: %s", i, nbd_get_error());
	}
	for (i = 0; i < NCONN && h[i]; i++) {
		for (j = 0; j < NCONN; j++) {
			pattern(want, j);
			CHECK(nbd_pread(h[i], buf, PATLEN, (uint64_t)j << 20, 0) == 0 &&
			      memcmp(buf, want, PATLEN) == 0,
			      "connection %u reads what connection %u wrote", i, j);
		}
		CHECK(nbd_flush(h[i], 0) == 0, "flush through connection %u", i);
	}
	CHECK(h[NCONN] && nbd_pread(h[NCONN], buf, PATLEN, 0, 0) == 0, "the plain export reads");
	/* Each place: 2 connections x (1 write + 6 reads + 1 flush); the
	 * plain one's read on place 0. */
	for (i = 0; i < NPLACE; i++) {
		unsigned long want_n = 2 * (1 + NCONN + 1) + (i == 0);

		CHECK(atomic_load(&pl[i].submits) == want_n && atomic_load(&pl[i].wrong_thread) == 0,
		      "place %u: %lu requests (want %lu), %lu on another thread", i,
		      atomic_load(&pl[i].submits), want_n, atomic_load(&pl[i].wrong_thread));
	}
	st = stats();
	CHECK(st.requests == (uint64_t)NCONN * (NCONN + 2) + 1, "the server counts %llu requests",
	      (unsigned long long)st.requests);
}

static void protocol_error(struct nbd_handle **extra, char *buf)
{
	unsigned open0 = stats().connections_open;
	char c;
	int fd;

	/* The next spread connection takes place 0; the one after, place 1. */
	*extra = client("spread");
	CHECK(*extra != NULL, "one more spread connection (place 0)");
	fd = raw_garbage("spread", 28);
	CHECK(fd >= 0, "a raw client on place 1 sends a garbage request");
	if (fd >= 0) {
		CHECK(recv(fd, &c, 1, 0) == 0, "the server closes the garbage connection");
		close(fd);
	}
	CHECK(WAIT_FOR(stats().protocol_errors == 1 && stats().connections_open == open0 + 1),
	      "the moved connection's protocol error is counted and it is gone (%llu errors, %u open)",
	      (unsigned long long)stats().protocol_errors, stats().connections_open);
	CHECK(stats().connections_moved == NCONN - NCONN / NPLACE + 1, "it had moved");
	CHECK(*extra && nbd_pread(*extra, buf, 4096, 0, 0) == 0, "the others go on");
}

static void remove_and_readd(struct nbd_handle **h, char *buf)
{
	struct nbd_handle *again[NPLACE];
	unsigned i;

	srv_lock();
	CHECK(bc_nbd_server_remove_export(srv, "spread") == 0, "remove the spread export");
	srv_unlock();
	CHECK(WAIT_FOR(export_conns("spread") == 0), "its connections close on every place (%u left)",
	      export_conns("spread"));
	for (i = 0; i <= NCONN; i++)
		CHECK(h[i] && cut_off(h[i], buf), "spread connection %u is closed", i);
	CHECK(h[NCONN + 1] && !cut_off(h[NCONN + 1], buf), "the plain export still serves");
	for (i = 0; i <= NCONN + 1; i++)
		if (h[i] && i != NCONN + 1)
			nbd_close(h[i]);
	CHECK(add_spread() == 0, "add it again");
	for (i = 0; i < NPLACE; i++) {
		again[i] = client("spread");
		CHECK(again[i] && nbd_pread(again[i], buf, 4096, 0, 0) == 0, "re-added: connection %u reads",
		      i);
	}
	srv_lock();
	bc_nbd_server_shutdown(srv);
	srv_unlock();
	CHECK(WAIT_FOR(({ srv_lock(); bool idle_ = bc_nbd_server_idle(srv); srv_unlock(); idle_; })),
	      "shutdown with moved connections open reaches idle");
	for (i = 0; i < NPLACE; i++)
		if (again[i])
			nbd_close(again[i]);
	nbd_close(h[NCONN + 1]);
	srv_lock();
	bc_nbd_server_free(srv);
	srv = NULL;
	srv_unlock();
}

/* A server freed with moved connections open: they close too. */
static void orphans(char *buf)
{
	struct nbd_handle *h[2];
	unsigned i;

	unlink(sock_path);
	CHECK(new_server(sock_path) == 0, "a second server");
	for (i = 0; i < 2; i++) {
		h[i] = client("spread");
		CHECK(h[i] && nbd_pread(h[i], buf, 4096, 0, 0) == 0, "orphan-to-be %u reads", i);
	}
	CHECK(stats().connections_moved == 1, "one of them moved");
	srv_lock();
	bc_nbd_server_free(srv);
	srv = NULL;
	srv_unlock();
	for (i = 0; i < 2; i++) {
		CHECK(h[i] && WAIT_FOR(cut_off(h[i], buf)), "orphan %u is closed", i);
		if (h[i])
			nbd_close(h[i]);
	}
}

static void logfn(void *arg, enum bc_log_level level, const char *msg)
{
	(void)arg;
	(void)level;
	fprintf(stderr, "%s\n", msg);
}

int main(void)
{
	struct nbd_handle *h[NCONN + 2] = {0};
	char *buf = t_alloc(PATLEN), *want = t_alloc(PATLEN);

	bc_log_set(logfn, NULL, getenv("BC_TEST_VERBOSE") ? BC_LOG_DEBUG : BC_LOG_WARN);
	snprintf(sock_path, sizeof(sock_path), "%s/nbd.sock", t_tmpdir());
	places_start();
	CHECK(new_server(sock_path) == 0, "server with a plain and a spread export");
	CHECK(add_spread() == -EEXIST, "a second export of that name is refused");
	if (!t_failures) {
		spread_and_serve(h, buf, want);
		h[NCONN + 1] = h[NCONN]; /* the plain one */
		protocol_error(&h[NCONN], buf);
		remove_and_readd(h, buf);
		orphans(buf);
	}
	places_stop();
	free(buf);
	free(want);
	return t_finish("NBD connections spread over loops");
}
