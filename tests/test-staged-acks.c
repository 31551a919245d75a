/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Staged acks (engine config staging_dir): writes are acknowledged from RAM
 * segment buffers that live in a tmpfs file, so a server dropped without its
 * clean shutdown (kill -9) and opened again finds every write it
 * acknowledged.  A random workload (whole blocks, single sectors, write
 * zeroes, in-place overwrites of the open segment, FLUSH now and then) is
 * cut by a crash after a random number of acknowledged requests, 150 times;
 * after every reopen the region must read exactly as the model says.  Then:
 * a crash without staging loses writes (the test can tell), a file left in
 * the default directory is replayed by an open that does not stage, a stale
 * file (the cache was opened since) is ignored and never replays over newer
 * data, a clean close removes the file, a file others may write is refused,
 * and so is a directory not on tmpfs.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "engine/engine.h"
#include "log/staging.h"
#include "testutil.h"

#define B       4096ull
#define REGION  512u          /* blocks of the model */
#define ROUNDS  150u

static unsigned char *model;   /* REGION blocks: what must be read back */
static char *iobuf;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
	return (uint32_t)t_rnd(&rng, n);
}

/* Open with writeback paused: t_engine_crash() must not free the engine
 * under an origin write in flight (the ring is large enough for the run). */
static struct bc_engine *open_paused(void)
{
	struct bc_engine *e = t_engine_open();
	char why[256];

	CHECK(bc_engine_set(e, "writeback_paused", 1, why, sizeof(why)) == 0, "pause: %s", why);
	return e;
}

static int do_io(struct bc_engine *e, int op, uint64_t off, uint64_t len, void *buf)
{
	return t_io(t_loop, bc_engine_target(e), op, 0, off, len, buf);
}

/* One random acknowledged request, applied to the model once acked. */
static void one_op(struct bc_engine *e, uint32_t ver)
{
	uint32_t kind = rnd(10), blk = rnd(REGION), n = 1 + rnd(8);
	uint64_t off, len;

	if (blk + n > REGION)
		n = REGION - blk;
	if (kind < 6) {          /* whole blocks */
		off = blk * B;
		len = n * B;
	} else if (kind < 9) {   /* one sector: merges with what the block holds */
		off = blk * B + rnd(8) * 512u;
		len = 512;
	} else {                 /* write zeroes */
		off = blk * B;
		len = n * B;
		CHECK(do_io(e, BC_OP_WRITE_ZEROES, off, len, NULL) == 0, "write zeroes");
		memset(model + off, 0, len);
		return;
	}
	t_fill(iobuf, len, off, ver);
	CHECK(do_io(e, BC_OP_WRITE, off, len, iobuf) == 0, "write %llu+%llu",
	      (unsigned long long)off, (unsigned long long)len);
	memcpy(model + off, iobuf, len);
}

static int region_matches(struct bc_engine *e)
{
	if (do_io(e, BC_OP_READ, 0, REGION * B, iobuf))
		return 0;
	return !memcmp(iobuf, model, REGION * B);
}

/* The staging file of the fixture's cache in @dir. */
static void stage_file(struct bc_engine *e, const char *dir, char *out, size_t len)
{
	char uuid[37];

	bc_uuid_format(e->sb.cache_uuid, uuid);
	if (e->sb.version >= 3) /* one file per origin: the cache's UUID and the origin's id */
		snprintf(out, len, "%s/blkcache-%s.%u.stage", dir, uuid, e->sb.origin_id);
	else
		snprintf(out, len, "%s/blkcache-%s.stage", dir, uuid);
}

/* Crash after a random number of acknowledged requests, again and again. */
static void crash_rounds(const char *dir)
{
	struct bc_engine_stats st;
	uint64_t replayed = 0;
	uint32_t ver = 1000;
	unsigned round, i, bad = 0;

	t_cfg.staging_dir = dir;
	for (round = 0; round < ROUNDS; round++) {
		struct bc_engine *e = open_paused();
		unsigned nops = 1 + rnd(40);

		bc_engine_get_stats(e, &st);
		CHECK(st.acks == BC_ACKS_STAGED, "acks %u, want staged", st.acks);
		replayed += st.staged_replayed;
		if (round && !region_matches(e)) {
			bad++;
			CHECK(0, "round %u: after the crash the region differs from every "
			      "acknowledged write", round);
		}
		for (i = 0; i < nops; i++) {
			one_op(e, ++ver);
			if (rnd(25) == 0)
				CHECK(do_io(e, BC_OP_FLUSH, 0, 0, NULL) == 0, "flush");
		}
		t_engine_crash(e);
	}
	{
		struct bc_engine *e = open_paused();

		CHECK(region_matches(e), "after the last crash");
		CHECK(bc_engine_close(e) == 0, "close");
	}
	CHECK(replayed > 0, "no crash left anything to replay: the test did not test staging");
	printf("%u crashes, %llu staged entries replayed, %u bad rounds\n", ROUNDS,
	       (unsigned long long)replayed, bad);
}

/* Without staging the same crash loses acknowledged writes. */
static void negative_control(void)
{
	struct bc_engine *e;
	unsigned i;

	t_cfg.staging_dir = NULL;
	e = open_paused();
	for (i = 0; i < 20; i++)
		one_op(e, 5000 + i);
	t_engine_crash(e);
	e = open_paused();
	CHECK(!region_matches(e), "buffered writes survived a crash: the test cannot tell "
	      "staged acks from buffered ones");
	/* The model follows the cache from here on. */
	CHECK(do_io(e, BC_OP_READ, 0, REGION * B, model) == 0, "read");
	CHECK(bc_engine_close(e) == 0, "close");
}

/* A file in the default directory is replayed by any open; a clean close
 * removes it; a stale one is ignored. */
static void default_dir_and_stale(void)
{
	char path[512], saved[512];
	struct bc_engine_stats st;
	struct bc_engine *e;
	struct stat sb;
	unsigned i;

	t_cfg.staging_dir = BC_STAGING_DIR_DEFAULT;
	e = open_paused();
	stage_file(e, BC_STAGING_DIR_DEFAULT, path, sizeof(path));
	snprintf(saved, sizeof(saved), "%s/saved.stage", t_tmpdir());
	for (i = 0; i < 10; i++)
		one_op(e, 6000 + i);
	CHECK(stat(path, &sb) == 0, "no staging file %s while serving", path);
	t_engine_crash(e);
	CHECK(stat(path, &sb) == 0, "the crash removed the staging file");
	CHECK(t_copy_file(path, saved) == 0, "copy the staging file aside");

	t_cfg.staging_dir = NULL; /* an open that does not stage still replays it */
	e = open_paused();
	bc_engine_get_stats(e, &st);
	CHECK(st.acks == BC_ACKS_BUFFERED && st.staged_replayed > 0,
	      "acks %u, %llu replayed", st.acks, (unsigned long long)st.staged_replayed);
	CHECK(region_matches(e), "the default directory's file was not replayed");
	CHECK(stat(path, &sb) < 0 && errno == ENOENT, "the replayed file is still there");
	/* Newer data over the same blocks, closed cleanly. */
	for (i = 0; i < 40; i++)
		one_op(e, 7000 + i);
	CHECK(bc_engine_close(e) == 0, "close");

	/* The old file back: the cache was opened since, it must not replay. */
	CHECK(t_copy_file(saved, path) == 0, "put the stale file back");
	e = open_paused();
	bc_engine_get_stats(e, &st);
	CHECK(st.staged_replayed == 0, "a stale staging file replayed %llu entries",
	      (unsigned long long)st.staged_replayed);
	CHECK(region_matches(e), "a stale staging file changed the data");
	CHECK(stat(path, &sb) < 0 && errno == ENOENT, "the stale file was not removed");
	CHECK(bc_engine_close(e) == 0, "close");

	/* A clean close removes this server's own file. */
	t_cfg.staging_dir = BC_STAGING_DIR_DEFAULT;
	e = open_paused();
	one_op(e, 8000);
	CHECK(bc_engine_close(e) == 0, "close");
	CHECK(stat(path, &sb) < 0 && errno == ENOENT, "a clean close left %s", path);
}

/* A staging file others may write (planted in /dev/shm) is never replayed. */
static void foreign_file(void)
{
	struct bc_engine *e = open_paused();
	char path[512], why[512] = "";
	int fd;

	stage_file(e, BC_STAGING_DIR_DEFAULT, path, sizeof(path));
	CHECK(bc_engine_close(e) == 0, "close");
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0 && fchmod(fd, 0666) == 0 && write(fd, "x", 1) == 1, "plant %s", path);
	if (fd >= 0)
		close(fd);
	e = NULL;
	CHECK(bc_engine_open(&e, t_loop, &t_cfg, why, sizeof(why)) == -EPERM,
	      "a world-writable staging file was accepted");
	CHECK(strstr(why, "refusing to replay") != NULL, "unclear refusal: %s", why);
	unlink(path);
}

/* A staging directory that is not tmpfs is refused with a reason. */
static void not_tmpfs(void)
{
	struct bc_engine *e = NULL;
	struct statfs fs;
	char why[512] = "";

	if (statfs(t_tmpdir(), &fs) == 0 && (unsigned long)fs.f_type == TMPFS_MAGIC) {
		printf("the temp dir is on tmpfs: the refusal of a disk directory is not checked\n");
		return;
	}
	t_cfg.staging_dir = t_tmpdir();
	CHECK(bc_engine_open(&e, t_loop, &t_cfg, why, sizeof(why)) == -EINVAL,
	      "a staging directory on disk was accepted");
	CHECK(strstr(why, "tmpfs") != NULL, "unclear refusal: %s", why);
	t_cfg.staging_dir = NULL;
}

int main(void)
{
	char dir[] = "/dev/shm/blkcache-test-XXXXXX";
	struct statfs fs;

	if (statfs("/dev/shm", &fs) < 0 || (unsigned long)fs.f_type != TMPFS_MAGIC || !mkdtemp(dir)) {
		printf("SKIP: /dev/shm is not a writable tmpfs here\n");
		return 77;
	}
	model = calloc(REGION, B);
	iobuf = t_alloc(REGION * B);
	t_engine_fresh(256ull << 20, 64ull << 20, 256u << 10);
	crash_rounds(dir);
	negative_control();
	default_dir_and_stale();
	foreign_file();
	not_tmpfs();
	rmdir(dir);
	free(model);
	t_engine_fixture_done();
	return t_finish("staged acks survive a kill after every ack; stale files never replay");
}
