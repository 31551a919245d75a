/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Staged acks (log/staging.h): the segment buffers in a shared mapping of a
 * tmpfs file, published entry by entry, replayed onto the ring by the next
 * server if this one is killed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "core/why.h"
#include "engine/engine.h"
#include "log/staging.h"


struct bc_staging {
	char path[PATH_MAX];
	struct bc_stage_hdr *hdr;  /* the whole mapping */
	size_t size;
	bool clean;                /* everything is on the cache device: remove at close */
};

static size_t stage_hdr_size(unsigned nbufs)
{
	size_t n = sizeof(struct bc_stage_hdr) + (size_t)nbufs * sizeof(struct bc_stage_desc);

	return (n + BC_BLOCK_SIZE - 1) & ~(size_t)(BC_BLOCK_SIZE - 1);
}

static uint32_t stage_hdr_crc(const struct bc_stage_hdr *h)
{
	return bc_crc32c_block(h, offsetof(struct bc_stage_hdr, sb_seq_lo),
			       offsetof(struct bc_stage_hdr, crc));
}

static int stage_path(const struct bc_engine *e, const char *dir, char *out, size_t len)
{
	char uuid[37], name[64];

	bc_uuid_format(e->sb.cache_uuid, uuid);
	if (bc_sb_has_table(&e->sb)) /* one file per origin of the cache */
		snprintf(name, sizeof(name), BC_STAGE_FILE_FMT_ORIGIN, uuid, e->sb.origin_id);
	else
		snprintf(name, sizeof(name), BC_STAGE_FILE_FMT, uuid);
	return snprintf(out, len, "%s/%s", dir, name) < (int)len ? 0 : -ENAMETOOLONG;
}

/* ---- replay ---------------------------------------------------------- */

/* Why a staging file cannot be replayed onto this cache, or NULL. */
static const char *stage_stale(const struct bc_engine *e, const struct bc_stage_hdr *h,
			       size_t size)
{
	if (h->crc != stage_hdr_crc(h))
		return "its header CRC does not match";
	if (memcmp(h->cache_uuid, e->sb.cache_uuid, sizeof(h->cache_uuid)) ||
	    h->format_nonce != e->sb.format_nonce)
		return "it belongs to an earlier format of the cache device";
	if (h->segment_size != e->seg_size || h->header_blocks != e->hdr_blocks ||
	    h->data_blocks != e->data_blocks || !h->nr_buffers ||
	    h->buf_offset < stage_hdr_size(h->nr_buffers) ||
	    size < h->buf_offset + (uint64_t)h->nr_buffers * h->segment_size)
		return "its geometry does not match the cache device";
	if (!h->sb_seq_lo)
		return "its server stopped before it served (nothing was acknowledged)";
	if (e->sb.seq < h->sb_seq_lo || e->sb.seq > h->sb_seq_hi)
		return "the cache device was opened since (its superblock generation is outside "
		       "the file's range)";
	return NULL;
}

/* Rebuild the header of the segment staged in buffer @i and write it and
 * its complete entries to their ring position. */
static int replay_buf(struct bc_engine *e, struct bc_stage_hdr *h, unsigned i, uint32_t *nent)
{
	const struct bc_stage_desc *d = &h->bufs[i];
	char *mem = (char *)h + h->buf_offset + (size_t)i * h->segment_size;
	struct bc_seg_hdr *hdr = (struct bc_seg_hdr *)(void *)mem;
	size_t hsz = (size_t)e->hdr_blocks * BC_BLOCK_SIZE;
	uint32_t n = d->nr_entries, k;

	if (n > e->data_blocks)
		return -EUCLEAN;
	if (d->seq <= e->sb.written_back_seq) {
		/* Written back, so written: nothing to replay (cannot happen
		 * while the buffer is held; say so if it does). */
		bc_elog(e, BC_LOG_WARN, "staging: segment %llu in buffer %u is already "
			    "written back; skipped", (unsigned long long)d->seq, i);
		return 0;
	}
	bc_seg_hdr_prepare(hdr, e->hdr_blocks, n, d->seq, e->sb.format_nonce, d->flushed_seq,
			   d->epoch, e->sb.origin_id);
	for (k = 0; k < n; k++) {
		struct bc_seg_entry *ent = &hdr->entries[k];

		ent->data_crc = (ent->flags & (BC_ENT_ZERO | BC_ENT_INVALID)) ? 0 :
			bc_crc32c(0, mem + hsz + (size_t)k * BC_BLOCK_SIZE, BC_BLOCK_SIZE);
	}
	bc_seg_hdr_seal(hdr, e->hdr_blocks);
	*nent += n;
	return bc_dev_rw_sync(e->cache, BC_DIO_WRITE, mem, hsz + (size_t)n * BC_BLOCK_SIZE,
			      seg_offset(e, seg_pos(e, d->seq)));
}

static int replay(struct bc_engine *e, struct bc_stage_hdr *h, const char *path, char *why,
		  size_t whylen)
{
	unsigned i, nseg = 0;
	uint32_t nent = 0;
	int ret = 0;

	for (i = 0; i < h->nr_buffers && !ret; i++) {
		if (h->bufs[i].state != BC_STAGE_HOLDS)
			continue;
		ret = replay_buf(e, h, i, &nent);
		nseg++;
	}
	if (!ret)
		ret = bc_dev_rw_sync(e->cache, BC_DIO_FLUSH, NULL, 0, 0);
	if (ret == -EUCLEAN) {
		bc_why(why, whylen, "staging file %s holds a segment that does not fit the cache "
		       "device's log (damaged?); move it away to serve without its writes", path);
		return ret;
	}
	if (ret < 0) {
		bc_why(why, whylen, "writing the staged writes of %s to the cache device failed: %s; "
		       "the file is kept for the next start", path, strerror(-ret));
		return ret;
	}
	e->st.staged_replayed += nent;
	if (nseg)
		bc_elog(e, BC_LOG_WARN, "staging: replayed %u entries in %u segment(s) "
			    "acknowledged by a server that stopped without closing (%s)", nent, nseg,
			    path);
	return 0;
}

/* Replay @path if it is a valid staging file of this cache; remove it. */
static int restore_one(struct bc_engine *e, const char *path, char *why, size_t whylen)
{
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW), ret = 0;
	struct bc_stage_hdr *h;
	const char *stale;
	struct stat st;

	if (fd < 0)
		return errno == ENOENT ? 0 : (bc_why(why, whylen, "cannot open the staging file %s: %s",
						     path, strerror(errno)), -errno);
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		close(fd);
		bc_why(why, whylen, "cannot stat the staging file %s: %s", path, strerror(-ret));
		return ret;
	}
	/* Only a file of our own replays into the cache: /dev/shm is open to
	 * every user, and a planted file would write whatever it holds. */
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		close(fd);
		bc_why(why, whylen, "staging file %s is not a regular file of this user with mode "
		       "0600 (owner uid %u, mode %o): refusing to replay it; remove it if it is not "
		       "yours", path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	if ((size_t)st.st_size < sizeof(*h)) {
		close(fd);
		bc_elog(e, BC_LOG_WARN, "staging: %s is too short to be a staging file; "
			    "removed", path);
		unlink(path);
		return 0;
	}
	h = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (h == MAP_FAILED) {
		bc_why(why, whylen, "cannot map the staging file %s: %s", path, strerror(errno));
		return -errno;
	}
	if (h->magic != BC_STAGE_MAGIC) {
		stale = "it is not a blkcache staging file";
	} else if (h->version != BC_STAGE_VERSION) {
		bc_why(why, whylen, "staging file %s has version %u; this blkcache knows version %u: "
		       "serve the cache with the blkcache that wrote it", path, h->version,
		       BC_STAGE_VERSION);
		munmap(h, (size_t)st.st_size);
		return -EPROTO;
	} else {
		stale = stage_stale(e, h, (size_t)st.st_size);
	}
	if (stale)
		bc_elog(e, BC_LOG_WARN, "staging: ignoring and removing %s: %s", path, stale);
	else
		ret = replay(e, h, path, why, whylen);
	munmap(h, (size_t)st.st_size);
	if (!ret)
		unlink(path);
	return ret;
}

int bc_staging_restore(struct bc_engine *e, char *why, size_t whylen)
{
	const char *dirs[2] = { e->cfg.staging_dir, BC_STAGING_DIR_DEFAULT };
	char path[PATH_MAX];
	unsigned i;
	int ret;

	for (i = 0; i < 2; i++) {
		if (!dirs[i] || (i == 1 && dirs[0] && !strcmp(dirs[0], dirs[1])))
			continue;
		if (stage_path(e, dirs[i], path, sizeof(path)) < 0)
			continue;
		ret = restore_one(e, path, why, whylen);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* ---- this server's file ------------------------------------------------ */

int bc_staging_dir_check(const char *dir, char *why, size_t whylen)
{
	struct statfs fs;

	if (statfs(dir, &fs) < 0 || access(dir, W_OK) < 0) {
		bc_why(why, whylen, "staging directory %s: %s", dir, strerror(errno));
		return -errno;
	}
	if ((unsigned long)fs.f_type != TMPFS_MAGIC && (unsigned long)fs.f_type != RAMFS_MAGIC) {
		bc_why(why, whylen, "staging directory %s is not on tmpfs: the staging file must "
		       "die with the machine (a stale one on disk could replay old writes after a "
		       "power cut); use /dev/shm or another tmpfs", dir);
		return -EINVAL;
	}
	return 0;
}

static void stage_init_hdr(struct bc_engine *e, struct bc_stage_hdr *h, unsigned nbufs)
{
	memset(h, 0, stage_hdr_size(nbufs));
	h->magic = BC_STAGE_MAGIC;
	h->version = BC_STAGE_VERSION;
	memcpy(h->cache_uuid, e->sb.cache_uuid, sizeof(h->cache_uuid));
	h->format_nonce = e->sb.format_nonce;
	h->segment_size = e->seg_size;
	h->nr_buffers = nbufs;
	h->header_blocks = e->hdr_blocks;
	h->data_blocks = e->data_blocks;
	h->buf_offset = stage_hdr_size(nbufs);
	h->crc = stage_hdr_crc(h);
}

int bc_staging_open(struct bc_engine *e, unsigned nbufs, char *why, size_t whylen)
{
	struct bc_staging *st;
	int fd, ret;
	void *m;

	ret = bc_staging_dir_check(e->cfg.staging_dir, why, whylen);
	if (ret < 0)
		return ret;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	ret = stage_path(e, e->cfg.staging_dir, st->path, sizeof(st->path));
	if (ret < 0) {
		bc_why(why, whylen, "staging directory name too long: %s", e->cfg.staging_dir);
		goto err_free;
	}
	st->size = stage_hdr_size(nbufs) + (size_t)nbufs * e->seg_size;
	fd = open(st->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		ret = -errno;
		bc_why(why, whylen, "cannot create the staging file %s: %s", st->path, strerror(errno));
		goto err_free;
	}
	if (ftruncate(fd, (off_t)st->size) < 0 ||
	    (m = mmap(NULL, st->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
		ret = -errno;
		bc_why(why, whylen, "cannot size or map the staging file %s (%zu bytes): %s", st->path,
		       st->size, strerror(errno));
		close(fd);
		goto err_unlink;
	}
	close(fd);
	st->hdr = m;
	stage_init_hdr(e, st->hdr, nbufs);
	e->log.stage = st;
	return 0;
err_unlink:
	unlink(st->path);
err_free:
	free(st);
	return ret;
}

void *bc_staging_buf_mem(const struct bc_engine *e, unsigned i)
{
	const struct bc_staging *st = e->log.stage;

	return (char *)st->hdr + st->hdr->buf_offset + (size_t)i * e->seg_size;
}

void bc_staging_mark_clean(struct bc_engine *e)
{
	if (e->log.stage)
		e->log.stage->clean = true;
}

void bc_staging_close(struct bc_engine *e)
{
	struct bc_staging *st = e->log.stage;

	if (!st)
		return;
	munmap(st->hdr, st->size);
	if (st->clean)
		unlink(st->path);
	free(st);
	e->log.stage = NULL;
}

/* ---- live updates ------------------------------------------------------ */

void bc_staging_hold(struct bc_engine *e, unsigned idx, const struct bc_seg *s)
{
	struct bc_stage_desc *d;

	if (!e->log.stage)
		return;
	d = &e->log.stage->hdr->bufs[idx];
	d->seq = s->seq;
	d->epoch = s->epoch;
	d->flushed_seq = e->log.durable_seq;
	__atomic_store_n(&d->nr_entries, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&d->state, BC_STAGE_HOLDS, __ATOMIC_RELEASE);
}

void bc_staging_release(struct bc_engine *e, unsigned idx)
{
	if (e->log.stage)
		__atomic_store_n(&e->log.stage->hdr->bufs[idx].state, 0, __ATOMIC_RELEASE);
}

void bc_staging_publish(struct bc_engine *e)
{
	const struct bc_seg *s = e->log.open;

	if (e->log.stage && s)
		__atomic_store_n(&e->log.stage->hdr->bufs[s->buf->idx].nr_entries, s->nr_entries,
				 __ATOMIC_RELEASE);
}

void bc_staging_note_sb(struct bc_engine *e, uint64_t seq)
{
	struct bc_stage_hdr *h;

	if (!e->log.stage)
		return;
	h = e->log.stage->hdr;
	__atomic_store_n(&h->sb_seq_hi, seq, __ATOMIC_RELEASE);
	if (!h->sb_seq_lo)
		__atomic_store_n(&h->sb_seq_lo, seq, __ATOMIC_RELEASE);
}
