/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Infrastructure for the NBD server test (test-nbd-server.c): the check
 * reporter, the server environment (a bc_loop thread serving a RAM
 * target), and the client side: libnbd and raw-socket helpers.
 */
#ifndef BC_TEST_NBD_TEST_CLIENTS_H
#define BC_TEST_NBD_TEST_CLIENTS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "blkcache/loop.h"
#include "blkcache/nbd.h"
#include "ram-target.h"

struct nbd_handle;

#define DISK_SIZE  (64ull << 20)
#define MAX_BLOCK  (1u << 20)
#define MAX_INFLIGHT 32u
#define EXPORT     "test"
#define DESCR      "blkcache test export"
#define ALL_FLAGS  (BC_TARGET_CAN_FLUSH | BC_TARGET_CAN_FUA | BC_TARGET_CAN_DISCARD | \
		    BC_TARGET_CAN_ZEROES | BC_TARGET_MULTI_CONN)

/* ---------- checks ---------- */

extern int test_failures, test_checks;

#define CHECK(cond, ...) check_impl(!!(cond), __LINE__, __VA_ARGS__)

__attribute__((format(printf, 3, 4)))
void check_impl(int ok, int line, const char *fmt, ...);

/* ---------- the server environment ---------- */

struct nbd_test_env {
	pthread_mutex_t mu;
	pthread_t thread;
	atomic_int quit, waiters, shutdown_req; /* shutdown_req: 1 asks, 2 done */
	struct bc_loop *loop;
	struct ram_target *rt;
	struct bc_nbd_server *srv;             /* created by the test itself */
	char dir[64], sock[128], port[16];
};

extern struct nbd_test_env test_env;

#define ENV_SKIP (-2) /* env_setup(): no io_uring loop here */

/*
 * Logging, the loop, a temp dir, a free TCP port, the RAM target and the
 * unix socket path.  0, ENV_SKIP or -1 (setup failed), having said why.
 */
int env_setup(void);
/* Leave a socket file at @path that nobody listens on (bind()'s result). */
int bind_stale_socket(const char *path);
/* Run the loop on its own thread (pthread_create()'s result). */
int env_start_loop_thread(void);
/* Stop the loop thread, free the server, loop and target, remove the dir. */
void env_teardown(void);

/* While locked, the loop thread is outside bc_loop_run_once(). */
void env_lock(void);
void env_unlock(void);

/* Copies / comparisons taken under the lock. */
struct ram_target snap_rt(void);
struct bc_nbd_stats snap_stats(void);
int ram_equals(uint64_t off, const void *p, size_t n);

/* The test server's config: both sockets (TCP address written to @tcp),
 * EXPORT, DESCR and MAX_INFLIGHT. */
void env_server_config(struct bc_nbd_config *cfg, char *tcp, size_t tcplen);
/* bc_nbd_server_new() on a loop of its own, freed again: its result. */
int server_new_on_own_loop(const struct bc_nbd_config *cfg);
/* Ask the loop thread to shut the server down; true once the server is
 * idle (bounded wait: 60 s, reached only if the shutdown never completes). */
int env_shutdown_server(void);

/* RAM target knobs, set under the lock. */
/* Requests touching [@off, @off + @len) complete with @result (@len 0: none). */
void env_fail_target(uint64_t off, uint64_t len, int result);
void env_set_target_delay(uint32_t delay_max_us);
void env_reset_target_max_inflight(void);
/* Wait until no request is at the target and at most @max_open connections
 * are open (bounded: 60 s). */
void wait_target_quiet(unsigned max_open);

/* ---------- data patterns ---------- */

void fill(void *buf, size_t n, unsigned seed);
int is_zero(const void *buf, size_t n);

/* ---------- libnbd clients ---------- */

/* Connected to EXPORT over TCP or the unix socket, or NULL. */
struct nbd_handle *nbd_open(bool tcp);
/* nbd_create() with export name @name, not connected yet. */
struct nbd_handle *nbd_named(const char *name);
/* The errno of a failed libnbd command (r == -1), else 0. */
int cmd_errno(int r);
/* Poll @h until no command is in flight, or 20 s after @start. */
void aio_wait(struct nbd_handle *h, time_t start);
/* How many of the @n @cookies completed successfully (retiring them). */
int aio_completed(struct nbd_handle *h, const int64_t *cookies, int n);

/*
 * Run a shell command, its output (NUL-terminated, truncated to @size - 1)
 * in @out and pclose()'s result in @status; -1 if popen() failed.
 */
int run_capture(const char *cmd, char *out, size_t size, int *status);

/* ---------- raw sockets ---------- */

/* Connected to the unix socket with a 5 s receive timeout, or -1. */
int raw_connect(void);
int read_full(int fd, void *buf, size_t n);
int write_full(int fd, const void *buf, size_t n);
/* The server closed the connection (EOF or reset, not a timeout). */
int peer_closed(int fd);
/* Read the greeting and send client flags; -1 on a bad greeting. */
int raw_hello(int fd, uint32_t cflags);
/* raw_connect() and raw_hello() with @cflags (unchecked): the socket. */
int raw_connect_hello(uint32_t cflags);
/* raw_connect(), FIXED|NO_ZEROES, EXPORT_NAME "" and its 10-byte reply (unchecked). */
int raw_connect_tx(void);
void raw_opt(int fd, uint32_t opt, const void *data, uint32_t len);
/* Read one option reply; returns its type, or 0 on failure. */
uint32_t raw_opt_reply(int fd, uint32_t opt, uint8_t *data, uint32_t *len);
void raw_req(int fd, uint16_t flags, uint16_t type, uint64_t handle, uint64_t off,
	     uint32_t len);
/* Read a simple reply header; returns the error or -1. */
int raw_reply(int fd, uint64_t *handle);
/* Option payload for INFO/GO. */
uint32_t go_payload(uint8_t *p, const char *name, int n_req, const uint16_t *req);
/* If the NBD_REP_INFO payload @d (@len bytes) is NBD_INFO_EXPORT: true, with
 * the export's size and transmission flags in @size and @flags. */
bool raw_info_export(const uint8_t *d, uint32_t len, uint64_t *size, uint16_t *flags);

#endif
