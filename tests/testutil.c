/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>

#include "blkcache/log.h"
#include "engine/engine.h"
#include "testutil.h"

int t_failures;
unsigned long t_checks;
static char tmpdir[256];

int t_finish(const char *what)
{
	t_cleanup();
	printf("checked: %lu assertions%s%s, %d failed\n", t_checks, what ? ", " : "", what ? what : "",
	       t_failures);
	return t_failures ? 1 : 0;
}

const char *t_tmpdir(void)
{
	if (!tmpdir[0]) {
		strcpy(tmpdir, "/tmp/bc-test-XXXXXX");
		if (!mkdtemp(tmpdir)) {
			perror("mkdtemp");
			exit(1);
		}
	}
	return tmpdir;
}

char *t_file(const char *name, uint64_t size)
{
	char *p = malloc(512);
	int fd;

	snprintf(p, 512, "%s/%s", t_tmpdir(), name);
	fd = open(p, O_CREAT | O_RDWR | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
		perror(p);
		exit(1);
	}
	close(fd);
	return p;
}

void t_cleanup(void)
{
	char cmd[300];

	if (tmpdir[0] && !getenv("BC_KEEP_TMP")) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", tmpdir);
		tmpdir[0] = 0;
	}
}

struct t_wait {
	bool done;
	int res;
};

int t_copy_file(const char *from, const char *to)
{
	static char chunk[1 << 16];
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ssize_t n = 0;

	while (in >= 0 && out >= 0 && (n = read(in, chunk, sizeof(chunk))) > 0)
		if (write(out, chunk, (size_t)n) != n)
			n = -1;
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return in < 0 || out < 0 || n < 0 ? -1 : 0;
}

static void t_done(struct bc_request *r, int res)
{
	struct t_wait *w = r->priv;

	w->done = true;
	w->res = res;
}

int t_io(struct bc_loop *loop, const struct bc_target *t, int op, uint32_t flags, uint64_t off,
	 uint64_t len, void *buf)
{
	struct bc_request r;
	struct t_wait w = { 0 };

	memset(&r, 0, sizeof(r));
	r.op = (uint8_t)op;
	r.flags = flags;
	r.offset = off;
	r.length = len;
	r.buf = buf;
	r.done = t_done;
	r.priv = &w;
	bc_target_submit(t, &r);
	while (!w.done)
		if (bc_loop_run_once(loop, 1000) < 0)
			return -EIO;
	return w.res;
}

uint64_t t_rnd(uint64_t *state, uint64_t n)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return n ? *state % n : 0;
}

static inline uint64_t mix(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ull;
	x ^= x >> 27;
	return x;
}

void t_fill(void *buf, uint64_t len, uint64_t off, uint32_t ver)
{
	uint64_t *p = buf, i;

	for (i = 0; i < len / 8; i++)
		p[i] = mix(((off + i * 8) << 8) ^ ver);
}

int t_verify(const void *buf, uint64_t len, uint64_t off, uint32_t ver)
{
	const uint64_t *p = buf;
	uint64_t i;

	for (i = 0; i < len / 8; i++)
		if (p[i] != mix(((off + i * 8) << 8) ^ ver))
			return -1;
	return 0;
}

void *t_alloc(size_t len)
{
	void *p = NULL;

	if (posix_memalign(&p, 4096, len))
		exit(1);
	memset(p, 0, len);
	return p;
}

int t_origin_read(void *buf, uint64_t off, uint64_t len)
{
	int fd = open(t_origin_path, O_RDONLY), ret = -1;

	if (fd >= 0 && pread(fd, buf, len, (off_t)off) == (ssize_t)len)
		ret = 0;
	if (fd >= 0)
		close(fd);
	return ret;
}

int t_origin_verify(uint64_t off, uint64_t len, uint32_t ver)
{
	void *buf = t_alloc(len);
	int ret = t_origin_read(buf, off, len);

	if (!ret)
		ret = t_verify(buf, len, off, ver) ? -1 : 0;
	free(buf);
	return ret;
}

struct bc_loop *t_loop;
char *t_cache_path, *t_origin_path;
struct bc_engine_config t_cfg;
uint32_t t_format_version;

void t_engine_fresh(uint64_t cache_size, uint64_t origin_size, uint32_t seg)
{
	struct bc_format_config f = { 0 };
	char why[512];

	if (!t_loop && bc_loop_new(&t_loop, 256) < 0) {
		fprintf(stderr, "cannot create the loop\n");
		exit(1);
	}
	free(t_cache_path);
	free(t_origin_path);
	t_cache_path = t_file("cache.img", cache_size);
	t_origin_path = t_file("origin.img", origin_size);
	f.cache_path = t_cache_path;
	f.origin_path = t_origin_path;
	f.segment_size = seg;
	f.version = t_format_version;
	CHECK(bc_cache_format(&f, why, sizeof(why)) == 0, "format: %s", why);
	t_cfg.cache_path = t_cache_path;
	t_cfg.origin_path = t_origin_path;
	t_cfg.flush_deadline_us = 100;
}

struct bc_engine *t_engine_open(void)
{
	struct bc_engine *e = NULL;
	char why[512];
	int ret = bc_engine_open(&e, t_loop, &t_cfg, why, sizeof(why));

	CHECK(ret == 0, "open: %s", why);
	if (ret)
		exit(t_finish("aborted"));
	return e;
}

void t_engine_crash(struct bc_engine *e)
{
	int i;

	/* Let in-flight IO land (as a dying process's IO may), then drop. */
	for (i = 0; i < 20; i++)
		bc_loop_run_once(t_loop, 1);
	bc_engine_free(e);
}

static void drained(void *arg, int res)
{
	*(int *)arg = res == 0 ? 1 : -1;
}

int t_drain(struct bc_engine *e)
{
	int done = 0;

	if (bc_engine_drain(e, drained, &done) < 0)
		return -1;
	while (!done)
		bc_loop_run_once(t_loop, 100);
	return done == 1 ? 0 : -1;
}

void t_engine_fixture_done(void)
{
	bc_loop_free(t_loop);
	free(t_cache_path);
	free(t_origin_path);
	t_loop = NULL;
	t_cache_path = t_origin_path = NULL;
}
