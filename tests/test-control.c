/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control socket and the metrics page of a cache serving several
 * origins, in process (no server): one cache device, origins a, b and c,
 * the control socket on the test's loop, a client on the same thread.
 *  - "origin NAME" prefix, unknown names listed; status / get / set / mode
 *    per origin and for every origin ("origins" arrays, ok false and the
 *    reason when one refuses); origins; attach through the host hook;
 *  - flush of every origin and of one; detach without a name refused,
 *    "origin b detach": only b drained, the host's detached hook runs, b's
 *    origin file holds its data, the others keep their dirty data;
 *  - metrics: every family's HELP/TYPE once, per-origin series labelled
 *    origin="NAME", unique series; one origin left: unlabelled, as before.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "blkcache/cache.h"
#include "control.h"
#include "json.h"
#include "metrics.h"

#define MIB (1024ull * 1024)

static int failures;
static unsigned long checks;

#define CHECK(cond, ...)                                                                     \
	do {                                                                                 \
		checks++;                                                                    \
		if (!(cond)) {                                                               \
			failures++;                                                          \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);      \
			fprintf(stderr, __VA_ARGS__);                                        \
			fputc('\n', stderr);                                                 \
		}                                                                            \
	} while (0)

static char dir[] = "/tmp/bc-test-control.XXXXXX";
static struct bc_loop *loop;
static struct bc_cache *cache;
static struct bc_control_origins origins;
static struct bc_control_src src;
static char ctl_path[256];
static unsigned detached_calls;

static char *path_of(const char *name)
{
	static char p[8][256];
	static unsigned k;
	char *s = p[k++ % 8];

	snprintf(s, 256, "%s/%s", dir, name);
	return s;
}

static void sparse(const char *name, uint64_t size)
{
	int fd = open(path_of(name), O_RDWR | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
		perror(name);
		exit(1);
	}
	close(fd);
}

/* ---- the host: what blkcache serve does for the control socket ---- */

static void refresh(void)
{
	unsigned i;

	origins.n = bc_cache_count(cache);
	for (i = 0; i < origins.n; i++)
		origins.o[i] = (struct bc_control_origin){ .engine = bc_cache_engine(cache, i) };
}

static int host_attach(void *host, const char *name, const char *path, const char *size,
		       char *why, size_t whylen)
{
	struct bc_format_config oc = { .name = name, .origin_path = path };
	struct bc_engine *e;
	int ret;

	(void)host;
	if (size)
		oc.size_percent = (uint32_t)atoi(size);
	ret = bc_cache_attach(cache, &oc, &e, why, whylen);
	refresh();
	return ret;
}

static void host_detached(void *host, struct bc_engine *e)
{
	(void)host;
	detached_calls++;
	CHECK(bc_cache_remove(cache, e) == 0, "bc_cache_remove");
	refresh();
}

/* ---- a client on the same thread ---- */

/* Send @line, run the loop until the server closes: every line it sent. */
static char *call(const char *fmt, ...)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static char reply[1 << 20];
	char line[1024];
	size_t len = 0;
	uint64_t t0 = bc_now_ns();
	va_list ap;
	int fd;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	strcat(line, "\n");
	strcpy(sa.sun_path, ctl_path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    write(fd, line, strlen(line)) != (ssize_t)strlen(line)) {
		perror("control socket");
		exit(1);
	}
	fcntl(fd, F_SETFL, O_NONBLOCK);
	for (;;) {
		ssize_t n = read(fd, reply + len, sizeof(reply) - 1 - len);

		if (n > 0) {
			len += (size_t)n;
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			break;
		if (bc_now_ns() - t0 > 60ull * 1000000000) {
			fprintf(stderr, "no answer to %s", line);
			exit(1);
		}
		bc_loop_run_once(loop, 10);
	}
	close(fd);
	reply[len] = 0;
	return reply;
}

/* The last line of a reply, parsed. */
static struct bc_json *last_json(const char *reply)
{
	const char *p = reply, *last = reply;
	struct bc_json *j = NULL;
	char buf[1 << 16];

	for (; *p; p++)
		if (*p == '\n' && p[1])
			last = p + 1;
	snprintf(buf, sizeof(buf), "%s", last);
	if (bc_json_parse(buf, &j) < 0 || j->type != BC_JSON_OBJECT) {
		fprintf(stderr, "not a JSON object: %s\n", buf);
		exit(1);
	}
	return j;
}

static struct bc_json *cmd(const char *line)
{
	return last_json(call("%s", line));
}

static unsigned count(const struct bc_json *j, const char *key)
{
	const struct bc_json *a = bc_json_get(j, key), *c;
	unsigned n = 0;

	for (c = a && a->type == BC_JSON_ARRAY ? a->child : NULL; c; c = c->next)
		n++;
	return n;
}

static const struct bc_json *elem(const struct bc_json *j, unsigned i)
{
	const struct bc_json *a = bc_json_get(j, "origins"), *c;

	for (c = a ? a->child : NULL; c && i; c = c->next)
		i--;
	return c;
}

struct wait {
	int done, res;
};

static void on_done(struct bc_request *req, int result)
{
	struct wait *w = req->priv;

	w->done = 1;
	w->res = result;
}

static void write_blocks(const char *name, uint64_t off, uint64_t len, int pattern)
{
	struct bc_engine *e = bc_cache_find(cache, name);
	struct bc_request r = { .op = BC_OP_WRITE, .offset = off, .length = len };
	struct wait w = { 0, 0 };
	void *buf;

	if (!e || posix_memalign(&buf, 4096, len))
		exit(1);
	memset(buf, pattern, len);
	r.buf = buf;
	r.priv = &w;
	r.done = on_done;
	bc_target_submit(bc_engine_target(e), &r);
	while (!w.done)
		bc_loop_run_once(loop, 100);
	CHECK(w.res == 0, "write to %s: %d", name, w.res);
	free(buf);
}

static uint64_t dirty(const char *name)
{
	struct bc_engine_stats st;

	bc_engine_get_stats(bc_cache_find(cache, name), &st);
	return st.dirty_blocks;
}

/* Does file @name hold @pattern at [off, off+len)? */
static bool file_has(const char *name, uint64_t off, uint64_t len, int pattern)
{
	unsigned char *buf = malloc(len);
	int fd = open(path_of(name), O_RDONLY);
	bool ok = fd >= 0 && buf && pread(fd, buf, len, (off_t)off) == (ssize_t)len;
	uint64_t i;

	for (i = 0; ok && i < len; i++)
		ok = buf[i] == pattern;
	if (fd >= 0)
		close(fd);
	free(buf);
	return ok;
}

/* ---- the metrics page ---- */

/* Every family's HELP and TYPE once and before its samples; series unique;
 * per-origin families labelled origin="..." first iff @labelled.  Returns
 * the number of samples. */
static unsigned check_metrics(bool labelled)
{
	static const char *const wide[] = { "blkcache_origins", "blkcache_nbd_" };
	struct bc_tbuf b = { 0 };
	char *save = NULL, *ln, cur[96] = "";
	char (*seen)[160] = calloc(4096, sizeof(*seen));
	unsigned nseen = 0, i, ntype = 0;
	char types[128][96];
	bool cur_hist = false;

	bc_metrics_render(&src, &b);
	CHECK(b.p && !b.failed, "metrics rendered");
	for (ln = strtok_r(b.p, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
		char name[96], *sp;
		bool is_wide = false;

		if (!strncmp(ln, "# TYPE ", 7)) {
			char type[16] = "";

			sscanf(ln + 7, "%95s %15s", cur, type);
			cur_hist = !strcmp(type, "histogram");
			for (i = 0; i < ntype && strcmp(types[i], cur); i++)
				;
			CHECK(i == ntype, "TYPE of %s twice", cur);
			if (ntype < 128)
				snprintf(types[ntype++], 96, "%s", cur);
			continue;
		}
		if (ln[0] == '#')
			continue;
		sp = ln + strcspn(ln, "{ ");
		snprintf(name, sizeof(name), "%.*s", (int)(sp - ln), ln);
		/* A histogram's samples are NAME_bucket, NAME_sum, NAME_count. */
		CHECK(!strcmp(name, cur) || (cur_hist && strlen(name) > strlen(cur) &&
					      !strncmp(name, cur, strlen(cur)) &&
					      (!strcmp(name + strlen(cur), "_bucket") ||
					       !strcmp(name + strlen(cur), "_sum") ||
					       !strcmp(name + strlen(cur), "_count"))),
		      "sample %s not after its TYPE (%s)", ln, cur);
		for (i = 0; i < 2; i++)
			if (!strncmp(name, wide[i], strlen(wide[i])))
				is_wide = true;
		if (is_wide)
			CHECK(*sp == ' ', "cache-wide %s labelled", ln);
		else if (labelled)
			CHECK(!strncmp(sp, "{origin=\"", 9), "%s has no origin label first", ln);
		else
			CHECK(!strstr(ln, "origin=\"") || !strcmp(name, "blkcache_info"),
			      "%s labelled with one origin", ln);
		*strrchr(ln, ' ') = 0;
		for (i = 0; i < nseen && strcmp(seen[i], ln); i++)
			;
		CHECK(i == nseen, "series %s twice", ln);
		if (nseen < 4096)
			snprintf(seen[nseen++], 160, "%s", ln);
	}
	bc_tbuf_free(&b);
	free(seen);
	return nseen;
}

static void cleanup(void)
{
	static const char *const files[] = { "cache.img", "origin-a.img", "origin-b.img",
					     "origin-c.img", "origin-d.img", "ctl.sock" };
	unsigned i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		unlink(path_of(files[i]));
	rmdir(dir);
}

/* A string member, "" if absent. */
static const char *S(const struct bc_json *j, const char *key)
{
	const char *s = bc_json_str(j, key);

	return s ? s : "";
}

/* ---- the scenario ---- */

static void setup(void)
{
	struct bc_engine_config cfg = { 0 };
	char why[512];
	const char *names[] = { "a", "b", "c" };
	unsigned i;
	int ret;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		exit(1);
	}
	sparse("cache.img", 64 * MIB);
	for (i = 0; i < 4; i++) {
		char f[32];

		snprintf(f, sizeof(f), "origin-%c.img", 'a' + i);
		sparse(f, 16 * MIB);
	}
	ret = bc_cache_format(&(struct bc_format_config){ .cache_path = path_of("cache.img") },
			      why, sizeof(why));
	CHECK(ret == 0, "format: %s", why);
	for (i = 0; i < 3; i++) {
		char f[32];

		snprintf(f, sizeof(f), "origin-%s.img", names[i]);
		ret = bc_origin_add(&(struct bc_format_config){ .cache_path = path_of("cache.img"),
				    .origin_path = path_of(f), .name = names[i], .size_percent = 25 },
				    why, sizeof(why));
		CHECK(ret == 0, "origin add %s: %s", names[i], why);
	}
	if (bc_loop_new(&loop, 256) < 0)
		exit(1);
	cfg.cache_path = path_of("cache.img");
	ret = bc_cache_open(&cache, loop, &cfg, why, sizeof(why));
	if (ret < 0) {
		fprintf(stderr, "bc_cache_open: %s\n", why);
		exit(1);
	}
	refresh();
	src = (struct bc_control_src){ .origins = &origins, .cache_path = path_of("cache.img"),
				       .attach = host_attach, .detached = host_detached };
	snprintf(ctl_path, sizeof(ctl_path), "%s/ctl.sock", dir);
}

/* status, get, set, mode: per origin and for all. */
static void test_settings(void)
{
	struct bc_json *j;

	j = cmd("status");
	CHECK(!strcmp(S(j, "name"), "a"), "status: top level is origin a's");
	CHECK(count(j, "origins") == 3, "status: 3 origins");
	CHECK(bc_json_str(elem(j, 2), "mode") && !strcmp(bc_json_str(elem(j, 2), "name"), "c"),
	      "status: origin c's entry");
	bc_json_free(j);
	j = cmd("origin b status");
	CHECK(!strcmp(S(j, "name"), "b") && count(j, "origins") == 1,
	      "origin b status");
	bc_json_free(j);
	j = cmd("origin zz status");
	CHECK(strstr(S(j, "error"), "unknown origin 'zz'; served: a, b, c"),
	      "unknown origin: %s", bc_json_str(j, "error"));
	bc_json_free(j);
	j = cmd("set writeback_rate 1M");
	CHECK(bc_json_bool(j, "ok") && count(j, "origins") == 3 &&
	      bc_json_u64(elem(j, 1), "value") == MIB, "set on every origin");
	bc_json_free(j);
	j = cmd("origin b set writeback_rate 0");
	CHECK(bc_json_bool(j, "ok") && !bc_json_get(j, "origins"), "set on b");
	bc_json_free(j);
	j = cmd("get writeback_rate");
	CHECK(bc_json_u64(elem(j, 0), "value") == MIB && bc_json_u64(elem(j, 1), "value") == 0 &&
	      bc_json_u64(elem(j, 2), "value") == MIB, "get per origin");
	bc_json_free(j);
	j = cmd("set dirty_low 99");
	CHECK(!bc_json_bool(j, "ok") && bc_json_str(j, "error") &&
	      !strstr(bc_json_str(j, "error"), "origin a"), "refused by all: one reason: %s",
	      bc_json_str(j, "error"));
	bc_json_free(j);
	j = cmd("mode writethrough");
	CHECK(bc_json_bool(j, "ok") && count(j, "origins") == 3, "mode for all");
	bc_json_free(j);
	j = cmd("origin c mode writeback");
	CHECK(bc_json_bool(j, "ok") && !strcmp(S(j, "previous"), "writethrough"),
	      "mode of c");
	bc_json_free(j);
	j = cmd("get");
	CHECK(!strcmp(S(elem(j, 0), "mode"), "writethrough") &&
	      !strcmp(S(elem(j, 2), "mode"), "writeback"), "get: modes per origin");
	bc_json_free(j);
	j = cmd("mode writeback");
	bc_json_free(j);
	j = cmd("origin a attach x y");
	CHECK(bc_json_str(j, "error"), "attach after a prefix refused");
	bc_json_free(j);
}

/* flush, detach of one origin of several. */
static void test_drains(void)
{
	struct bc_json *j;

	j = cmd("set writeback_paused 1");
	bc_json_free(j);
	write_blocks("a", 0, MIB, 0xaa);
	write_blocks("b", MIB, MIB, 0xbb);
	write_blocks("c", 0, MIB, 0xcc);
	j = cmd("origin a flush");
	CHECK(bc_json_bool(j, "done") && dirty("a") == 0 && dirty("b") > 0, "flush of a only");
	bc_json_free(j);
	CHECK(file_has("origin-a.img", 0, MIB, 0xaa), "a's origin holds its data after flush");
	j = cmd("detach");
	CHECK(strstr(S(j, "error"), "name the origin to detach"),
	      "detach without a name: %s", bc_json_str(j, "error"));
	bc_json_free(j);
	write_blocks("a", 2 * MIB, MIB, 0xa2);
	j = cmd("origin b detach");
	CHECK(bc_json_bool(j, "done") && bc_json_bool(j, "detached") &&
	      bc_json_get(j, "shutdown") && !bc_json_bool(j, "shutdown"), "detach of b");
	bc_json_free(j);
	CHECK(detached_calls == 1 && origins.n == 2 && !bc_cache_find(cache, "b"),
	      "the host's detached hook removed b");
	CHECK(file_has("origin-b.img", MIB, MIB, 0xbb), "b's origin holds its data");
	CHECK(dirty("a") > 0 && dirty("c") > 0, "a and c kept their dirty data");
	CHECK(!bc_loop_stopping(loop), "the server keeps running");
	j = cmd("origins");
	CHECK(count(j, "origins") == 2 && !strcmp(S(elem(j, 1), "name"), "c"),
	      "origins: a, c");
	bc_json_free(j);
	j = cmd("flush");
	CHECK(bc_json_bool(j, "done") && count(j, "origins") == 2 && dirty("a") == 0 &&
	      dirty("c") == 0, "flush of every origin");
	bc_json_free(j);
	CHECK(file_has("origin-a.img", 2 * MIB, MIB, 0xa2) && file_has("origin-c.img", 0, MIB, 0xcc),
	      "every origin holds its data");
	j = cmd("set writeback_paused 0");
	bc_json_free(j);
}

static void test_attach(void)
{
	struct bc_json *j;

	j = last_json(call("attach d %s 20", path_of("origin-d.img")));
	CHECK(bc_json_bool(j, "ok") && !strcmp(S(j, "name"), "d"), "attach d: %s", S(j, "error"));
	bc_json_free(j);
	j = cmd("origins");
	CHECK(count(j, "origins") == 3 && bc_cache_find(cache, "d"), "d is served");
	bc_json_free(j);
	j = cmd("attach d /nonexistent");
	CHECK(strstr(S(j, "error"), "already served"), "attach of a served name");
	bc_json_free(j);
}

int main(void)
{
	struct bc_control *ctl;
	char why[512];
	unsigned n;

	setup();
	if (bc_control_open(&ctl, loop, ctl_path, &src, why, sizeof(why)) < 0) {
		fprintf(stderr, "control: %s\n", why);
		return 1;
	}
	test_settings();
	n = check_metrics(true);
	CHECK(n > 3 * 60, "metrics: %u series for 3 origins", n);
	test_drains();
	test_attach();
	check_metrics(true);
	/* One origin left: the page and status of a server of one origin. */
	bc_json_free(cmd("origin c detach"));
	bc_json_free(cmd("origin d detach"));
	CHECK(origins.n == 1, "one origin left");
	check_metrics(false);
	{
		struct bc_json *j = cmd("detach");

		CHECK(bc_json_bool(j, "done") && bc_json_bool(j, "shutdown"),
		      "detach of the only origin shuts the server down");
		bc_json_free(j);
	}
	CHECK(bc_loop_stopping(loop) && detached_calls == 3, "stopped, hook not called for the last");
	bc_control_shutdown(ctl);
	bc_cache_close(cache);
	bc_control_close(ctl);
	bc_loop_free(loop);
	cleanup();
	printf("test-control: %lu checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
