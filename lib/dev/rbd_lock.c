/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The exclusive lock of an RBD image across a restart (dev/rbd.h).
 *
 * librbd takes an image's exclusive lock on the first write.  When the
 * previous holder was killed, its watch on the image stays registered until
 * the OSDs time it out (osd_client_watch_timeout, 30 s by default), and
 * until then librbd believes the holder alive and waits: writeback and
 * reads of blocks not cached stall for half a minute after every crash.
 * So the driver takes the lock itself at open, and records who holds it in
 * the image's metadata; the next open on this host can then tell its own
 * dead predecessor (same host, its process gone) from a live client, and
 * break only the former's lock (librbd blocklists it, so a half-dead
 * process could not write any more).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blkcache/log.h"
#include "dev/rbd.h"

#define OWNER_KEY "blkcache.owner"
#define MAX_OWNERS 8

/* Field 22 of /proc/PID/stat (start time in clock ticks), or 0. */
static unsigned long long proc_start(long pid)
{
	char p[64], buf[1024], *s;
	unsigned long long v = 0;
	FILE *f;
	int i;

	snprintf(p, sizeof(p), "/proc/%ld/stat", pid);
	f = fopen(p, "r");
	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	s = strrchr(buf, ')'); /* the command may hold spaces */
	for (i = 2; s && i < 22; i++)
		s = strchr(s + 1, ' ');
	if (s)
		v = strtoull(s + 1, NULL, 10);
	return v;
}

/* The lock holder recorded as a blkcache of this host whose process is gone? */
static bool recorded_dead(rbd_image_t image, const char *owner, const char *host)
{
	char val[512], rhost[256], rowner[256];
	size_t len = sizeof(val);
	unsigned long long start;
	long pid;

	if (rbd_metadata_get(image, OWNER_KEY, val, &len) < 0)
		return false;
	val[sizeof(val) - 1] = 0;
	if (sscanf(val, "%255s %ld %llu %255s", rhost, &pid, &start, rowner) != 4)
		return false;
	if (strcmp(rhost, host) || strcmp(rowner, owner))
		return false;
	return pid != getpid() && proc_start(pid) != start;
}

/* Break the lock of a dead blkcache of this host, if it holds it. */
static void break_dead(rbd_image_t image, struct bc_loop *loop, const char *path, const char *host)
{
	char *owners[MAX_OWNERS];
	size_t n = MAX_OWNERS, i;
	rbd_lock_mode_t mode;
	int r;

	if (rbd_lock_get_owners(image, &mode, owners, &n) < 0)
		return;
	for (i = 0; i < n && mode == RBD_LOCK_MODE_EXCLUSIVE; i++) {
		if (!recorded_dead(image, owners[i], host))
			continue;
		r = rbd_lock_break(image, mode, owners[i]);
		bc_loop_log(loop, r < 0 ? BC_LOG_WARN : BC_LOG_INFO,
			    "%s: the image's lock was held by %s, a blkcache of this host that is gone: "
			    "%s", path, owners[i], r < 0 ? strerror(-r) : "broken");
	}
	rbd_lock_get_owners_cleanup(owners, n);
}

/* Record this process as the holder of the lock (keeping the old record). */
static int record_self(rbd_image_t image, const char *host, struct bc_rbd_lock *lk, char *why,
		       size_t whylen)
{
	char *owners[MAX_OWNERS], val[512];
	size_t n = MAX_OWNERS, plen = sizeof(lk->prev);
	rbd_lock_mode_t mode;
	int r;

	lk->had_prev = rbd_metadata_get(image, OWNER_KEY, lk->prev, &plen) >= 0;
	lk->prev[sizeof(lk->prev) - 1] = 0;

	r = rbd_lock_get_owners(image, &mode, owners, &n);
	if (r < 0 || !n) {
		snprintf(why, whylen, "cannot read the image's lock owner: %s",
			 strerror(r < 0 ? -r : ENOENT));
		return r < 0 ? r : -ENOENT;
	}
	snprintf(val, sizeof(val), "%s %ld %llu %s", host, (long)getpid(), proc_start(getpid()),
		 owners[0]);
	rbd_lock_get_owners_cleanup(owners, n);
	r = rbd_metadata_set(image, OWNER_KEY, val);
	if (r < 0)
		snprintf(why, whylen, "cannot record the lock's owner in the image: %s", strerror(-r));
	lk->recorded = r == 0;
	return r;
}

void bc_rbd_lock_undo(rbd_image_t image, const struct bc_rbd_lock *lk)
{
	if (!lk->recorded)
		return;
	if (lk->had_prev)
		rbd_metadata_set(image, OWNER_KEY, lk->prev);
	else
		rbd_metadata_remove(image, OWNER_KEY);
}

/*
 * Images this process has open for writing, by identity: a shard set opens
 * its origin once per shard, and the exclusive lock one handle holds would
 * refuse the others' writes (librbd keeps a lock taken explicitly; there is
 * no going back to its automatic hand-over).  So a second handle of an
 * image with the exclusive-lock feature is refused at open, with what to
 * do; images without the feature may be opened any number of times.
 */
struct held {
	struct held *next;
	char ident[128];
	rbd_image_t image;   /* the first handle */
	unsigned users;
	bool exclusive;      /* it holds the lock explicitly */
};
static struct held *held_list;
static pthread_mutex_t held_mu = PTHREAD_MUTEX_INITIALIZER;

static struct held *held_find(const char *ident)
{
	struct held *h;

	for (h = held_list; h; h = h->next)
		if (!strcmp(h->ident, ident))
			return h;
	return NULL;
}

static int take(rbd_image_t image, struct bc_loop *loop, const char *path,
		struct bc_rbd_lock *lk, char *why, size_t whylen)
{
	char host[256] = "";
	uint64_t features = 0;
	int r;

	if (rbd_get_features(image, &features) < 0 || !(features & RBD_FEATURE_EXCLUSIVE_LOCK))
		return 0;
	if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
		snprintf(host, sizeof(host), "unknown");
	break_dead(image, loop, path, host);
	r = rbd_lock_acquire(image, RBD_LOCK_MODE_EXCLUSIVE);
	if (r < 0) {
		snprintf(why, whylen, "cannot take the image's exclusive lock: %s%s", strerror(-r),
			 r == -EROFS || r == -EBUSY ? " (another client holds it: is the image in use?)"
						    : "");
		return r;
	}
	r = record_self(image, host, lk, why, whylen);
	lk->exclusive = r == 0;
	return r;
}

int bc_rbd_lock_take(rbd_image_t image, struct bc_loop *loop, const char *path,
		     const char *ident, struct bc_rbd_lock *lk, char *why, size_t whylen)
{
	struct held *h;
	int r = 0;

	pthread_mutex_lock(&held_mu);
	h = held_find(ident);
	if (h && h->exclusive) {
		snprintf(why, whylen, "this process has the image open already, holding its exclusive "
			 "lock (a sharded origin?): only images without the exclusive-lock feature can be "
			 "opened more than once (rbd feature disable POOL/IMAGE fast-diff object-map "
			 "exclusive-lock, those of them that are enabled)");
		r = -EBUSY;
		goto out;
	}
	if (h) {
		h->users++;
	} else {
		h = calloc(1, sizeof(*h));
		if (!h) {
			r = -ENOMEM;
			goto out;
		}
		r = take(image, loop, path, lk, why, whylen);
		if (r < 0) {
			free(h);
			goto out;
		}
		snprintf(h->ident, sizeof(h->ident), "%s", ident);
		h->image = image;
		h->users = 1;
		h->exclusive = lk->exclusive;
		h->next = held_list;
		held_list = h;
	}
	lk->held = true;
	snprintf(lk->ident, sizeof(lk->ident), "%s", ident);
out:
	pthread_mutex_unlock(&held_mu);
	return r;
}

void bc_rbd_lock_put(struct bc_rbd_lock *lk)
{
	struct held **pp, *h;

	if (!lk->held)
		return;
	pthread_mutex_lock(&held_mu);
	for (pp = &held_list; (h = *pp); pp = &h->next) {
		if (strcmp(h->ident, lk->ident))
			continue;
		if (--h->users == 0) {
			*pp = h->next;
			free(h);
		}
		break;
	}
	pthread_mutex_unlock(&held_mu);
	lk->held = false;
}
