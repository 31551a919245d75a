/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Part of the NBD server test (test-nbd-server.c): several exports on one
 * server, each over its own RAM target, added and removed while the server
 * runs.  The exports "alpha" and "beta" join the test server's "test";
 * their targets pass requests through a gate that can hold them, so that a
 * removal is shown to happen with requests in flight without depending on
 * timing.  Conditions on the server side are waited for with a bounded loop
 * of bc_loop_run_once() on this thread (the loop thread is parked
 * meanwhile), never with a sleep.
 */
#include <endian.h>
#include <errno.h>
#include <libnbd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "blkcache/nbd.h"
#include "nbd-test-clients.h"
#include "../frontends/nbd/handshake.h"
#include "../frontends/nbd/proto.h"

void test_exports(void);

#define ALPHA_SIZE  (16ull << 20)
#define BETA_SIZE   ((8ull << 20) + 4096)
#define BETA_MAX    (256u << 10)
#define BETA_FLAGS  (BC_TARGET_CAN_FLUSH | BC_TARGET_CAN_FUA)
#define DATA_OFF    (1ull << 20)
#define DATA_LEN    (64u << 10)
#define GATE_MAX    64u
#define N_INFLIGHT  8
/* Loop rounds of at most PUMP_WAIT_MS each: reached only if the awaited
 * condition never comes true (60 s). */
#define PUMP_ROUNDS  600
#define PUMP_WAIT_MS 100

/* A target in front of a RAM target that holds requests while closed. */
struct gate {
	struct bc_target target;     /* handed to the server */
	struct ram_target *rt;
	bool closed;
	struct bc_request *held[GATE_MAX];
	unsigned n_held;
	uint64_t calls;              /* submits seen */
};

static struct gate g_alpha, g_beta;

static void gate_submit(void *ctx, struct bc_request *req)
{
	struct gate *g = ctx;

	g->calls++;
	if (g->closed && g->n_held < GATE_MAX) {
		g->held[g->n_held++] = req;
		return;
	}
	bc_target_submit(&g->rt->target, req);
}

static const struct bc_target_ops gate_ops = { "gate", gate_submit };

static int gate_init(struct gate *g, uint64_t size, uint32_t max_block, uint32_t flags)
{
	int r = ram_target_new(&g->rt, test_env.loop, size, max_block, flags);

	if (r < 0)
		return r;
	g->target = g->rt->target;
	g->target.ops = &gate_ops;
	g->target.ctx = g;
	return 0;
}

/* Under the lock: pass the held requests on and stop holding. */
static void gate_open(struct gate *g)
{
	unsigned i;

	g->closed = false;
	for (i = 0; i < g->n_held; i++)
		bc_target_submit(&g->rt->target, g->held[i]);
	g->n_held = 0;
}

/* Under the lock: run the loop until @cond(@arg) or PUMP_ROUNDS rounds. */
static bool pump_until(bool (*cond)(const void *arg), const void *arg)
{
	int i;

	for (i = 0; i < PUMP_ROUNDS && !cond(arg); i++)
		bc_loop_run_once(test_env.loop, PUMP_WAIT_MS);
	return cond(arg);
}

static bool gate_holds_all(const void *arg)
{
	return ((const struct gate *)arg)->n_held >= N_INFLIGHT;
}

static bool no_conns(const void *arg)
{
	return bc_nbd_server_export_conns(test_env.srv, arg) == 0;
}

static bool one_conn(const void *arg)
{
	return bc_nbd_server_export_conns(test_env.srv, arg) == 1;
}

static bool rt_holds(struct ram_target *rt, uint64_t off, const void *p, size_t n)
{
	bool eq;

	env_lock();
	eq = memcmp(rt->data + off, p, n) == 0;
	env_unlock();
	return eq;
}

/* Connected, greeted, FIXED|NO_ZEROES sent: the socket, or -1. */
static int hs_connect(void)
{
	int fd = raw_connect();

	if (fd >= 0 && raw_hello(fd, 3) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* The names NBD_OPT_LIST answers, joined by ',' (or "?" if malformed). */
static void list_names(char *out, size_t size)
{
	uint8_t d[4096];
	uint32_t len, type, nl;
	size_t used = 0;
	int fd = hs_connect();

	out[0] = '\0';
	raw_opt(fd, NBD_OPT_LIST, NULL, 0);
	while ((type = raw_opt_reply(fd, NBD_OPT_LIST, d, &len)) == NBD_REP_SERVER) {
		memcpy(&nl, d, 4);
		nl = be32toh(nl);
		if (len < 4 || nl > len - 4 || used + nl + 2 > size)
			break;
		used += (size_t)snprintf(out + used, size - used, "%s%.*s", used ? "," : "",
					 (int)nl, (const char *)d + 4);
	}
	if (type != NBD_REP_ACK)
		snprintf(out, size, "?");
	if (fd >= 0)
		close(fd);
}

/* A connection to export @name over the unix socket, or NULL. */
static struct nbd_handle *conn_to(const char *name)
{
	struct nbd_handle *h = nbd_named(name);

	if (!h)
		return NULL;
	nbd_set_full_info(h, true);
	nbd_set_strict_mode(h, 0); /* let the server judge */
	if (nbd_connect_unix(h, test_env.sock) == -1) {
		nbd_close(h);
		return NULL;
	}
	return h;
}

/* The option haggling itself, on a chain of three exports and on none. */
static void unit_export_list(void)
{
	struct bc_nbd_export e[3] = {
		{ .name = "a", .name_len = 1, .size = 4096, .min_block = 512 },
		{ .name = "bb", .name_len = 2, .size = 8192, .min_block = 512 },
		{ .name = "", .name_len = 0, .size = 512, .min_block = 512 },
	};
	const struct bc_nbd_export *sel = NULL;
	struct bc_nbd_obuf ob;
	uint8_t p[64];
	int r;

	e[0].next = &e[1];
	bc_nbd_obuf_init(&ob);
	r = bc_nbd_opt_process_sel(e, NBD_OPT_LIST, NULL, 0, true, &ob, &sel);
	CHECK(r == BC_NBD_OPT_CONTINUE && ob.len == 25 + 26 + 20 && !memcmp(ob.data + 24, "a", 1) &&
	      !memcmp(ob.data + 49, "bb", 2) && ob.data[25 + 26 + 15] == NBD_REP_ACK,
	      "pure: LIST of two exports, in order");
	bc_nbd_obuf_release(&ob);
	r = bc_nbd_opt_process_sel(e, NBD_OPT_GO, p, go_payload(p, "bb", 0, NULL), true, &ob,
				   &sel);
	CHECK(r == BC_NBD_OPT_ENTER_TX && sel == &e[1], "pure: GO \"bb\" selects the second");
	bc_nbd_obuf_release(&ob);
	r = bc_nbd_opt_process_sel(e, NBD_OPT_EXPORT_NAME, NULL, 0, true, &ob, &sel);
	CHECK(r == BC_NBD_OPT_ENTER_TX && sel == &e[0], "pure: EXPORT_NAME \"\" selects the first");
	bc_nbd_obuf_release(&ob);
	e[1].next = &e[2];
	r = bc_nbd_opt_process_sel(e, NBD_OPT_GO, p, go_payload(p, "", 0, NULL), true, &ob, &sel);
	CHECK(r == BC_NBD_OPT_ENTER_TX && sel == &e[2], "pure: \"\" selects an export named \"\"");
	bc_nbd_obuf_release(&ob);
	r = bc_nbd_opt_process_sel(NULL, NBD_OPT_LIST, NULL, 0, true, &ob, &sel);
	CHECK(r == BC_NBD_OPT_CONTINUE && ob.len == 20 && ob.data[15] == NBD_REP_ACK,
	      "pure: LIST of no export: ACK alone");
	bc_nbd_obuf_release(&ob);
	r = bc_nbd_opt_process_sel(NULL, NBD_OPT_GO, p, go_payload(p, "", 0, NULL), true, &ob,
				   &sel);
	CHECK(r == BC_NBD_OPT_CONTINUE && be32toh(*(uint32_t *)(ob.data + 12)) ==
	      NBD_REP_ERR_UNKNOWN, "pure: GO with no export: ERR_UNKNOWN");
	bc_nbd_obuf_release(&ob);
	CHECK(bc_nbd_opt_process(NULL, NBD_OPT_EXPORT_NAME, NULL, 0, true, &ob) ==
	      BC_NBD_OPT_DROP && ob.len == 0, "pure: EXPORT_NAME with no export: drop");
	bc_nbd_obuf_release(&ob);
}

static bool server_idle(const void *arg)
{
	return bc_nbd_server_idle(arg);
}

/* bc_nbd_server_new() without a target: a second server on the test loop. */
static void server_without_target(void)
{
	struct bc_nbd_config cfg = { .export_name = "ignored" };
	struct bc_nbd_server *srv = NULL;
	char path[192];
	int r, none = 0, added = -1, conns = -1, removed = -1, again = -1;
	bool idle = false;

	snprintf(path, sizeof(path), "%s/empty.sock", test_env.dir);
	cfg.unix_path = path;
	env_lock();
	r = bc_nbd_server_new(&srv, test_env.loop, NULL, &cfg);
	if (r == 0) {
		none = bc_nbd_server_remove_export(srv, "ignored");
		added = bc_nbd_server_add_export(srv, "x", NULL, &g_alpha.target);
		conns = (int)bc_nbd_server_export_conns(srv, "x");
		removed = bc_nbd_server_remove_export(srv, "x");
		again = bc_nbd_server_remove_export(srv, "x");
		bc_nbd_server_shutdown(srv);
		idle = pump_until(server_idle, srv);
		bc_nbd_server_free(srv);
	}
	env_unlock();
	CHECK(r == 0, "server without a target starts: %s", strerror(-r));
	CHECK(none == -ENOENT, "it has no export (the configured name is ignored)");
	CHECK(added == 0 && conns == 0 && removed == 0 && again == -ENOENT,
	      "add 0, no connection, remove 0, remove again -ENOENT");
	CHECK(idle, "and shuts down");
}

/* Add "alpha" and "beta"; refused additions change nothing. */
static void exports_add(void)
{
	static char longname[NBD_MAX_STRING + 2];
	struct bc_target bad = g_beta.target;
	int ra, rb, dup1, dup2, rlong, rbad, rnull, rnone;
	char names[256];

	memset(longname, 'n', NBD_MAX_STRING + 1);
	bad.min_block = 1000;
	env_lock();
	ra = bc_nbd_server_add_export(test_env.srv, "alpha", "the alpha export", &g_alpha.target);
	rb = bc_nbd_server_add_export(test_env.srv, "beta", NULL, &g_beta.target);
	dup1 = bc_nbd_server_add_export(test_env.srv, "alpha", NULL, &g_beta.target);
	dup2 = bc_nbd_server_add_export(test_env.srv, EXPORT, NULL, &g_beta.target);
	rlong = bc_nbd_server_add_export(test_env.srv, longname, NULL, &g_beta.target);
	rbad = bc_nbd_server_add_export(test_env.srv, "bad", NULL, &bad);
	rnull = bc_nbd_server_add_export(test_env.srv, "null", NULL, NULL);
	rnone = bc_nbd_server_remove_export(test_env.srv, "gamma");
	env_unlock();
	CHECK(ra == 0 && rb == 0, "add_export alpha, beta: %d %d", ra, rb);
	CHECK(dup1 == -EEXIST && dup2 == -EEXIST, "add_export of a name taken: -EEXIST");
	CHECK(rlong == -EINVAL && rbad == -EINVAL && rnull == -EINVAL,
	      "name over 4096 bytes, bad block sizes, no target: -EINVAL");
	CHECK(rnone == -ENOENT, "remove_export of an unknown name: -ENOENT");
	list_names(names, sizeof(names));
	CHECK(!strcmp(names, EXPORT ",alpha,beta"), "LIST: %s", names);
}

/* What each export reports is its own. */
static void exports_props(void)
{
	struct nbd_handle *ha = conn_to("alpha"), *hb = conn_to("beta"), *hd = conn_to("");
	char *da = ha ? nbd_get_export_description(ha) : NULL;
	char *db = hb ? nbd_get_export_description(hb) : NULL;
	uint8_t d[16];
	uint64_t v64;
	int fd;

	CHECK(ha && hb && hd, "connections to alpha, beta and \"\"");
	if (!ha || !hb || !hd)
		goto out;
	CHECK(nbd_get_size(ha) == (int64_t)ALPHA_SIZE && nbd_get_size(hb) == (int64_t)BETA_SIZE &&
	      nbd_get_size(hd) == (int64_t)DISK_SIZE, "sizes %lld, %lld, \"\": %lld",
	      (long long)nbd_get_size(ha), (long long)nbd_get_size(hb), (long long)nbd_get_size(hd));
	CHECK(nbd_get_block_size(ha, LIBNBD_SIZE_MAXIMUM) == MAX_BLOCK &&
	      nbd_get_block_size(hb, LIBNBD_SIZE_MAXIMUM) == BETA_MAX, "maximum block sizes");
	CHECK(nbd_can_trim(ha) == 1 && nbd_can_zero(ha) == 1 && nbd_can_trim(hb) == 0 &&
	      nbd_can_zero(hb) == 0 && nbd_can_multi_conn(hb) == 0 && nbd_can_fua(hb) == 1,
	      "transmission flags per export");
	CHECK(da && !strcmp(da, "the alpha export") && !db, "descriptions: '%s', none",
	      da ? da : "(none)");
	free(da);
	da = nbd_get_canonical_export_name(hd);
	CHECK(da && !strcmp(da, EXPORT), "\"\" is the first export, '%s'", da ? da : "(none)");
	fd = hs_connect();
	raw_opt(fd, NBD_OPT_EXPORT_NAME, "beta", 4);
	CHECK(read_full(fd, d, 10) == 0 && (memcpy(&v64, d, 8), be64toh(v64)) == BETA_SIZE,
	      "EXPORT_NAME \"beta\" answers beta's size");
	if (fd >= 0)
		close(fd);
out:
	free(da);
	free(db);
	if (ha)
		nbd_close(ha);
	if (hb)
		nbd_close(hb);
	if (hd)
		nbd_close(hd);
}

/* Data written through each export lands in its target only. */
static void exports_data(void)
{
	static const char *const names[3] = { EXPORT, "alpha", "beta" };
	struct ram_target *rts[3] = { test_env.rt, g_alpha.rt, g_beta.rt };
	uint8_t *w = malloc(DATA_LEN), *rd = malloc(DATA_LEN);
	struct nbd_handle *h;
	int i, j, wrote = 0, read_ok = 0, own = 0, others = 0;

	for (i = 0; i < 3; i++) {
		fill(w, DATA_LEN, 41 + i);
		h = conn_to(names[i]);
		wrote += h && nbd_pwrite(h, w, DATA_LEN, DATA_OFF, 0) == 0 && nbd_flush(h, 0) == 0;
		if (h)
			nbd_close(h);
	}
	for (i = 0; i < 3; i++) {
		fill(w, DATA_LEN, 41 + i);
		h = conn_to(names[i]);
		memset(rd, 0, DATA_LEN);
		read_ok += h && nbd_pread(h, rd, DATA_LEN, DATA_OFF, 0) == 0 &&
			   !memcmp(rd, w, DATA_LEN);
		if (h)
			nbd_close(h);
		own += rt_holds(rts[i], DATA_OFF, w, DATA_LEN);
		for (j = 0; j < 3; j++)
			others += j != i && rt_holds(rts[j], DATA_OFF, w, DATA_LEN);
	}
	CHECK(wrote == 3, "a write through each export");
	CHECK(read_ok == 3, "read back through a fresh connection to the same name");
	CHECK(own == 3 && others == 0, "each write is in its own target only (%d elsewhere)", others);
	fill(w, 4096, 41);
	h = conn_to("");
	CHECK(h && nbd_pread(h, rd, 4096, DATA_OFF, 0) == 0 && !memcmp(rd, w, 4096),
	      "\"\" reaches the first export's data");
	if (h)
		nbd_close(h);
	CHECK(conn_to("gamma") == NULL, "an unknown name is refused");
	free(w);
	free(rd);
}

/* The limits checked are those of the export chosen. */
static void exports_limits(void)
{
	struct nbd_handle *ha = conn_to("alpha"), *hb = conn_to("beta");
	uint8_t *buf = calloc(1, 2 * BETA_MAX);
	uint64_t calls;
	int e1, e2, e3;

	CHECK(ha && hb, "connections to alpha and beta");
	if (!ha || !hb)
		goto out;
	env_lock();
	calls = g_beta.calls;
	env_unlock();
	e1 = cmd_errno(nbd_pwrite(hb, buf, 4096, BETA_SIZE, 0));
	e2 = cmd_errno(nbd_pread(hb, buf, 2 * BETA_MAX, 0, 0));
	e3 = cmd_errno(nbd_trim(hb, 4096, 0, 0));
	CHECK(e1 == ENOSPC && e2 == EINVAL && e3 == EINVAL,
	      "beta: write past its end, read above its max block, trim: %d %d %d", e1, e2, e3);
	CHECK(nbd_pread(ha, buf, 2 * BETA_MAX, BETA_SIZE, 0) == 0,
	      "the same on alpha is within its limits");
	env_lock();
	calls = g_beta.calls - calls;
	calls += test_env.rt->bad + g_alpha.rt->bad + g_beta.rt->bad;
	env_unlock();
	CHECK(calls == 0, "no invalid request reached a target");
out:
	free(buf);
	if (ha)
		nbd_close(ha);
	if (hb)
		nbd_close(hb);
}

/* Under the lock, with @h's requests sent: remove "beta" while they are held
 * at its target, then let them go and wait for its connection to drain.
 * The counts seen on the way go to @seen. */
struct removal {
	bool all_held;
	int removed;
	unsigned conns_at_removal;
	bool drained;
	uint64_t calls_after;
};

static void remove_beta_locked(struct removal *seen)
{
	seen->all_held = pump_until(gate_holds_all, &g_beta);
	seen->removed = bc_nbd_server_remove_export(test_env.srv, "beta");
	seen->conns_at_removal = bc_nbd_server_export_conns(test_env.srv, "beta");
	gate_open(&g_beta);
	seen->drained = pump_until(no_conns, "beta");
	seen->calls_after = g_beta.calls;
}

/* Remove an export while a connection to it has requests in flight. */
static void exports_remove_inflight(void)
{
	uint8_t *w = malloc(N_INFLIGHT * 4096), *rd = calloc(1, N_INFLIGHT * 4096);
	uint8_t pat[4096 * N_INFLIGHT / 2];
	struct nbd_handle *h = conn_to("beta"), *ha;
	int64_t ck[N_INFLIGHT];
	struct removal seen;
	char names[256];
	uint64_t off;
	int i, done;

	CHECK(h != NULL, "connection to beta");
	if (!h)
		goto out;
	env_lock();
	/* Earlier connections to beta, closed by their clients, are gone. */
	CHECK(pump_until(one_conn, "beta"), "only this connection to beta is left");
	g_beta.closed = true;
	env_unlock();
	fill(w, N_INFLIGHT * 4096, 44);
	for (i = 0; i < N_INFLIGHT; i++) {
		off = (i % 2 ? DATA_OFF : 2 * DATA_OFF) + (uint64_t)(i / 2) * 4096;
		ck[i] = i % 2 ? nbd_aio_pread(h, rd + i * 4096, 4096, off, NBD_NULL_COMPLETION, 0)
			      : nbd_aio_pwrite(h, w + i * 4096, 4096, off, NBD_NULL_COMPLETION, 0);
	}
	env_lock();
	remove_beta_locked(&seen);
	env_unlock();
	CHECK(seen.all_held, "%d requests held at beta's target", N_INFLIGHT);
	CHECK(seen.removed == 0 && seen.conns_at_removal == 1,
	      "remove_export: 0, its connection still draining (%u)", seen.conns_at_removal);
	CHECK(seen.drained, "export_conns drops to 0 once they are answered");
	aio_wait(h, time(NULL));
	done = aio_completed(h, ck, N_INFLIGHT);
	CHECK(done == N_INFLIGHT, "the requests in flight completed (%d)", done);
	fill(pat, sizeof(pat), 43); /* what exports_data wrote through beta */
	for (i = 1, done = 0; i < N_INFLIGHT; i += 2)
		done += !memcmp(rd + i * 4096, pat + (i / 2) * 4096, 4096);
	for (i = 0; i < N_INFLIGHT; i += 2)
		done += rt_holds(g_beta.rt, 2 * DATA_OFF + (uint64_t)(i / 2) * 4096, w + i * 4096,
				 4096);
	CHECK(done == N_INFLIGHT, "their reads returned beta's data, their writes are in beta");
	CHECK(nbd_pread(h, rd, 4096, 0, 0) == -1, "then the connection was closed");
	list_names(names, sizeof(names));
	CHECK(!strcmp(names, EXPORT ",alpha"), "LIST without beta: %s", names);
	CHECK(conn_to("beta") == NULL, "beta can no longer be chosen");
	ha = conn_to("alpha");
	fill(w, 4096, 45);
	CHECK(ha && nbd_pwrite(ha, w, 4096, 0, 0) == 0 && nbd_pread(ha, rd, 4096, 0, 0) == 0 &&
	      !memcmp(rd, w, 4096) && rt_holds(g_alpha.rt, 0, w, 4096), "alpha keeps working");
	if (ha)
		nbd_close(ha);
	env_lock();
	CHECK(g_beta.calls == seen.calls_after && bc_nbd_server_export_conns(test_env.srv, "beta")
	      == 0 && bc_nbd_server_remove_export(test_env.srv, "beta") == -ENOENT,
	      "beta's target not called since; removing it again: -ENOENT");
	env_unlock();
out:
	if (h)
		nbd_close(h);
	free(w);
	free(rd);
}

/* The default export follows removals; with none left, nothing is offered. */
static void exports_default_and_none(void)
{
	struct nbd_handle *h;
	uint8_t p[64], d[4096];
	uint32_t len;
	char names[256];
	int r1, r2, r3, fd;
	bool drained;

	env_lock();
	r1 = bc_nbd_server_remove_export(test_env.srv, EXPORT);
	env_unlock();
	h = conn_to("");
	CHECK(r1 == 0 && h && nbd_get_size(h) == (int64_t)ALPHA_SIZE,
	      "with \"" EXPORT "\" removed, \"\" reaches alpha");
	if (h)
		nbd_close(h);
	env_lock();
	r2 = bc_nbd_server_remove_export(test_env.srv, "alpha");
	drained = pump_until(no_conns, "alpha");
	env_unlock();
	CHECK(r2 == 0 && drained, "alpha removed, its connections gone");
	list_names(names, sizeof(names));
	CHECK(names[0] == '\0', "no export: LIST answers ACK alone");
	fd = hs_connect();
	raw_opt(fd, NBD_OPT_GO, p, go_payload(p, "", 0, NULL));
	CHECK(raw_opt_reply(fd, NBD_OPT_GO, d, &len) == NBD_REP_ERR_UNKNOWN,
	      "no export: GO \"\" -> ERR_UNKNOWN");
	raw_opt(fd, NBD_OPT_EXPORT_NAME, NULL, 0);
	CHECK(fd >= 0 && peer_closed(fd), "no export: EXPORT_NAME \"\" closes");
	if (fd >= 0)
		close(fd);

	env_lock();
	r3 = bc_nbd_server_add_export(test_env.srv, EXPORT, DESCR, &test_env.rt->target);
	env_unlock();
	list_names(names, sizeof(names));
	CHECK(r3 == 0 && !strcmp(names, EXPORT), "\"" EXPORT "\" added again: LIST %s", names);
}

void test_exports(void)
{
	int r1, r2;

	printf("# several exports, added and removed live\n");
	unit_export_list();
	r1 = gate_init(&g_alpha, ALPHA_SIZE, MAX_BLOCK, ALL_FLAGS);
	r2 = gate_init(&g_beta, BETA_SIZE, BETA_MAX, BETA_FLAGS);
	CHECK(r1 == 0 && r2 == 0, "two more RAM targets");
	if (r1 < 0 || r2 < 0)
		goto out;
	server_without_target();
	exports_add();
	exports_props();
	exports_data();
	exports_limits();
	exports_remove_inflight();
	exports_default_and_none();
out:
	/* Whatever happened above: neither export is offered nor has a
	 * connection left before their targets go. */
	env_lock();
	bc_nbd_server_remove_export(test_env.srv, "alpha");
	bc_nbd_server_remove_export(test_env.srv, "beta");
	gate_open(&g_beta);
	r1 = pump_until(no_conns, "alpha") && pump_until(no_conns, "beta");
	env_unlock();
	CHECK(r1, "no connection left to alpha or beta");
	ram_target_free(g_alpha.rt);
	ram_target_free(g_beta.rt);
}
