/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fio external ioengine: drives the blkcache engine in process, without the
 * NBD transport, so that the cost of the engine itself is measured (the way
 * SPDK measures its bdevs).
 *
 *   fio --ioengine=external:/path/blkcache-fio.so --filename=blkcache \
 *       --bc_cache=cache.img --bc_origin=origin.img [--bc_set=NAME=V:NAME=V] \
 *       [--bc_stats=FILE] --rw=randwrite --bs=4k --iodepth=32 ...
 *
 * The cache must be formatted (blkcache format).  One job per cache (the
 * engine takes the cache device's lock); numjobs=1.  bc_cache=A,B,...
 * (each formatted with the same origin): a shard set, one engine thread per
 * cache, origin blocks routed by stripe (bc_stripe KiB, default 1024); a
 * cache formatted with shards (blkcache format --shards N): its shard set,
 * with the stripe its format records.  bc_hosts=1 with numjobs=N and
 * thread (N at most the shards): the jobs share the one shard set, job k
 * is its host k and runs shard k on its own thread, so N jobs drive N
 * shards on N threads, each submitting to all of them.  READ, WRITE, TRIM
 * (discard) and fsync/fdatasync (FLUSH) are supported; completions are
 * reaped by running the engine's event loop from getevents.  Buffers are
 * page aligned (FIO_RAWIO) so that read hits go from the cache device
 * straight into them (O_DIRECT), as an application's aligned buffers would.
 *
 * Built against a configured fio source tree of the same version as the
 * fio binary that loads it (bench/fetch-fio.sh; meson -Dfio_source=DIR).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fio.h"
#include "optgroup.h"

#include "blkcache/engine.h"
#include "blkcache/log.h"
#include "blkcache/loop.h"
#include "blkcache/shards.h"
#include "blkcache/target.h"

struct bcf_options {
	void *pad; /* an option at offset 0 would not parse */
	char *cache;
	char *origin;
	char *set;
	char *stats;
	unsigned int buffers;
	unsigned int fua;
	unsigned int stripe_kib;
	unsigned int hosts;
};

static struct fio_option bcf_opts[] = {
	{
		.name = "bc_cache",
		.lname = "blkcache cache device",
		.type = FIO_OPT_STR_STORE,
		.off1 = offsetof(struct bcf_options, cache),
		.help = "Formatted blkcache cache device (file or nbd:// URI)",
		.category = FIO_OPT_C_ENGINE,
		.group = FIO_OPT_G_INVALID,
	},
	{
		.name = "bc_origin",
		.lname = "blkcache origin device",
		.type = FIO_OPT_STR_STORE,
		.off1 = offsetof(struct bcf_options, origin),
		.help = "Origin device the cache was formatted for",
		.category = FIO_OPT_C_ENGINE,
		.group = FIO_OPT_G_INVALID,
	},
	{
		.name = "bc_set",
		.lname = "blkcache tunables",
		.type = FIO_OPT_STR_STORE,
		.off1 = offsetof(struct bcf_options, set),
		.help = "Tunables applied after open: NAME=VALUE[:NAME=VALUE...]",
		.category = FIO_OPT_C_ENGINE,
		.group = FIO_OPT_G_INVALID,
	},
	{
		.name = "bc_stats",
		.lname = "blkcache stats file",
		.type = FIO_OPT_STR_STORE,
		.off1 = offsetof(struct bcf_options, stats),
		.help = "Write the engine's counters (NAME VALUE lines) here at the end of the job (before the clean shutdown, which may write back one more batch)",
		.category = FIO_OPT_C_ENGINE,
		.group = FIO_OPT_G_INVALID,
	},
	{
		.name = "bc_buffers",
		.lname = "blkcache segment buffers",
		.type = FIO_OPT_INT,
		.off1 = offsetof(struct bcf_options, buffers),
		.help = "RAM segment buffers (0: the engine's default)",
		.def = "0",
		.category = FIO_OPT_C_ENGINE,
		.group = FIO_OPT_G_INVALID,
	},
	{
		.name = "bc_fua",
		.lname = "blkcache FUA writes",
		.type = FIO_OPT_BOOL,
		.off1 = offsetof(struct bcf_options, fua),
		.help = "Send every write with FUA (complete once durable)",
		.def = "0",
		.category = FIO_OPT_C_ENGINE,
		.group = FIO_OPT_G_INVALID,
	},
	{
		.name = "bc_stripe",
		.lname = "blkcache shard stripe",
		.type = FIO_OPT_INT,
		.off1 = offsetof(struct bcf_options, stripe_kib),
		.help = "with several caches (bc_cache=A,B,...): KiB per stripe (0: 1024)",
		.def = "0",
		.category = FIO_OPT_C_ENGINE,
		.group = FIO_OPT_G_INVALID,
	},
	{
		.name = "bc_hosts",
		.lname = "blkcache shard set shared by the jobs",
		.type = FIO_OPT_BOOL,
		.off1 = offsetof(struct bcf_options, hosts),
		.help = "with shards, numjobs=N and thread: the jobs share the shard set, job k "
			"runs shard k and submits to all",
		.def = "0",
		.category = FIO_OPT_C_ENGINE,
		.group = FIO_OPT_G_INVALID,
	},
	{ .name = NULL },
};

struct bcf {
	struct bc_loop *loop;
	struct bc_engine *eng;
	struct bc_shards *shards; /* bc_cache=A,B,...: one engine thread per cache */
	bool shared;              /* bc_hosts: the set is the jobs' (shared below) */
	bool probe;               /* bcf_setup's: opened to learn the size */
	const struct bc_target *t;
	struct io_u **done;   /* completed, not yet handed to fio */
	unsigned nr_done;
	unsigned reported;    /* returned by the last getevents */
	unsigned inflight;
};

struct bcf_req {
	struct bc_request req;
	struct io_u *io_u;
	struct bcf *d;
};

static void bcf_log(void *arg, enum bc_log_level level, const char *msg)
{
	(void)arg;
	fprintf(stderr, "blkcache-fio: %s: %s\n", level == BC_LOG_ERR ? "error" : "warning", msg);
}

static int bcf_apply_set(struct bc_engine *e, const char *list)
{
	char *copy = strdup(list), *save = NULL, *tok, why[256];
	int ret = 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ":,", &save); tok; tok = strtok_r(NULL, ":,", &save)) {
		char *eq = strchr(tok, '='), *end;
		unsigned long long v;

		if (!eq) {
			fprintf(stderr, "blkcache-fio: bc_set: '%s' is not NAME=VALUE\n", tok);
			ret = -EINVAL;
			break;
		}
		*eq = '\0';
		errno = 0;
		v = strtoull(eq + 1, &end, 0);
		if (errno || *end) {
			fprintf(stderr, "blkcache-fio: bc_set: bad value '%s' for %s\n", eq + 1, tok);
			ret = -EINVAL;
			break;
		}
		why[0] = '\0';
		ret = bc_engine_set(e, tok, v, why, sizeof(why));
		if (ret) {
			fprintf(stderr, "blkcache-fio: bc_set %s=%llu: %s\n", tok, v,
				why[0] ? why : strerror(-ret));
			break;
		}
	}
	free(copy);
	return ret;
}

static int bcf_setup_shard(struct bc_engine *e, unsigned i, void *arg)
{
	(void)i;
	return bcf_apply_set(e, arg);
}

/*
 * bc_hosts: the jobs' shared shard set.  Every job registers its loop;
 * job 0 opens the set once all have (fio starts the jobs' IO setup
 * together), with job k's loop as host k.  At the end a job keeps running
 * its loop (its shard serves the others) until every job is done; the last
 * one stops and closes the set, and frees the loops.
 */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned want, joined, done, parked;
	struct bc_loop *loops[BC_SHARDS_MAX];
	struct bc_shards *shards;
	int state;                /* 0: gathering, 1: open, -1: failed, 2: closed */
} shared = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

/* A job of bc_hosts=1: fio's clones of a job have numjobs 1 and subjob
 * numbers 1..N-1; the job itself, 0 and numjobs N. */
static bool bcf_hosts_job(struct thread_data *td, const struct bcf *d)
{
	return ((struct bcf_options *)td->eo)->hosts && !d->probe &&
	       (td->o.numjobs > 1 || td->subjob_number > 0);
}

static int bcf_open_hosts(struct thread_data *td, struct bcf *d, struct bc_shards_config *sc,
			  struct bc_shards_cache_config *cc)
{
	unsigned k = td->subjob_number, n = td->o.numjobs;
	char why[512] = "";
	int ret = 0;

	if (!td->o.use_thread || k >= BC_SHARDS_MAX || (k == 0 && n > BC_SHARDS_MAX)) {
		log_err("blkcache-fio: bc_hosts=1 wants numjobs=2..%d and thread\n", BC_SHARDS_MAX);
		return -EINVAL;
	}
	pthread_mutex_lock(&shared.mu);
	if (k == 0)
		shared.want = n;
	shared.loops[k] = d->loop;
	shared.joined++;
	pthread_cond_broadcast(&shared.cv);
	if (k == 0) {
		while (shared.joined < n)
			pthread_cond_wait(&shared.cv, &shared.mu);
		if (sc) {
			sc->nhosts = n;
			sc->hosts = shared.loops + 1;
			ret = bc_shards_open(&shared.shards, d->loop, sc, why, sizeof(why));
		} else {
			cc->nhosts = n;
			cc->hosts = shared.loops + 1;
			ret = bc_shards_open_cache(&shared.shards, d->loop, cc, why, sizeof(why));
		}
		if (ret)
			log_err("blkcache-fio: cannot open the shard set for %u jobs: %s\n", n,
				why[0] ? why : strerror(-ret));
		shared.state = ret ? -1 : 1;
		pthread_cond_broadcast(&shared.cv);
	}
	while (!shared.state)
		pthread_cond_wait(&shared.cv, &shared.mu);
	if (shared.state < 0)
		ret = ret ? ret : -EIO;
	pthread_mutex_unlock(&shared.mu);
	if (ret)
		return ret;
	d->shards = shared.shards;
	d->shared = true;
	d->t = bc_shards_host_target(d->shards, k);
	return 0;
}

static void bcf_write_stats(const char *path, struct bc_engine *e);

/* bc_hosts: this job is done (the last one closes the set). */
static void bcf_leave_hosts(struct bcf *d, const char *stats)
{
	unsigned i;
	int ret;

	pthread_mutex_lock(&shared.mu);
	shared.done++;
	if (shared.done < shared.want) {
		/* Serve this job's shard to the others until they are done. */
		while (shared.done < shared.want) {
			pthread_mutex_unlock(&shared.mu);
			bc_loop_run_once(d->loop, 1);
			pthread_mutex_lock(&shared.mu);
		}
		shared.parked++;
		pthread_cond_broadcast(&shared.cv);
		while (shared.state != 2)
			pthread_cond_wait(&shared.cv, &shared.mu);
		pthread_mutex_unlock(&shared.mu);
		d->loop = NULL; /* freed by the last job */
		d->shards = NULL;
		return;
	}
	/* The last job: once the others stopped running their loops, the set
	 * and every loop are this thread's. */
	while (shared.parked < shared.want - 1)
		pthread_cond_wait(&shared.cv, &shared.mu);
	pthread_mutex_unlock(&shared.mu);
	bc_shards_stop(d->shards);
	if (stats) {
		char path[4096];

		for (i = 0; i < bc_shards_count(d->shards); i++) {
			snprintf(path, sizeof(path), i ? "%s.%u" : "%s", stats, i);
			bcf_write_stats(path, bc_shards_engine(d->shards, i));
		}
	}
	ret = bc_shards_close(d->shards);
	if (ret)
		log_err("blkcache-fio: clean shutdown of the shards failed: %s\n", strerror(-ret));
	for (i = 0; i < shared.want; i++)
		bc_loop_free(shared.loops[i]);
	d->loop = NULL;
	d->shards = NULL;
	pthread_mutex_lock(&shared.mu);
	shared.state = 2;
	pthread_cond_broadcast(&shared.cv);
	pthread_mutex_unlock(&shared.mu);
}

/* bc_cache=A,B,...: a shard set, one engine (and thread) per cache. */
static int bcf_open_shards(struct thread_data *td, struct bcf *d, const struct bc_engine_config *base)
{
	struct bcf_options *o = td->eo;
	struct bc_engine_config cfgs[BC_SHARDS_MAX];
	struct bc_shards_config sc = { .queue_depth = td->o.iodepth * 2 + 64 };
	char *list = strdup(o->cache), *save = NULL, *tok, why[512] = "";
	int ret;

	if (!list)
		return -ENOMEM;
	for (tok = strtok_r(list, ",", &save); tok && sc.n < BC_SHARDS_MAX; tok = strtok_r(NULL, ",", &save)) {
		cfgs[sc.n] = *base;
		cfgs[sc.n++].cache_path = tok;
	}
	sc.engines = cfgs;
	sc.stripe = (uint64_t)o->stripe_kib * 1024;
	if (o->set) {
		sc.setup = bcf_setup_shard;
		sc.setup_arg = o->set;
	}
	if (bcf_hosts_job(td, d)) {
		ret = bcf_open_hosts(td, d, &sc, NULL);
		free(list);
		return ret;
	}
	ret = bc_shards_open(&d->shards, d->loop, &sc, why, sizeof(why));
	free(list);
	if (ret) {
		log_err("blkcache-fio: cannot open the shards: %s\n", why[0] ? why : strerror(-ret));
		return ret;
	}
	d->t = bc_shards_target(d->shards);
	return 0;
}

/* bc_cache=PATH of a sharded origin (format --shards): its shard set. */
static int bcf_open_sharded(struct thread_data *td, struct bcf *d, const struct bc_engine_config *cfg)
{
	struct bcf_options *o = td->eo;
	struct bc_shards_cache_config cc = { .engine = cfg, .queue_depth = td->o.iodepth * 2 + 64 };
	char why[512] = "";
	int ret;

	if (o->set) {
		cc.setup = bcf_setup_shard;
		cc.setup_arg = o->set;
	}
	if (bcf_hosts_job(td, d))
		return bcf_open_hosts(td, d, NULL, &cc);
	ret = bc_shards_open_cache(&d->shards, d->loop, &cc, why, sizeof(why));
	if (ret) {
		log_err("blkcache-fio: cannot open the shards of cache %s: %s\n", o->cache,
			why[0] ? why : strerror(-ret));
		return ret;
	}
	d->t = bc_shards_target(d->shards);
	return 0;
}

static int bcf_open(struct thread_data *td, struct bcf *d)
{
	struct bcf_options *o = td->eo;
	struct bc_engine_config cfg = { 0 };
	char why[512] = "";
	int ret;

	if (!o->cache || !o->origin) {
		log_err("blkcache-fio: bc_cache= and bc_origin= are required\n");
		return -EINVAL;
	}
	bc_log_set(bcf_log, NULL, BC_LOG_WARN);
	ret = bc_loop_new(&d->loop, td->o.iodepth * 2 + 64);
	if (ret) {
		log_err("blkcache-fio: event loop: %s\n", strerror(-ret));
		return ret;
	}
	/* fio's thread runs the loop from getevents, over and over: messages
	 * from shard threads need not wake it (blkcache/loop.h). */
	bc_loop_set_polling(d->loop, true);
	cfg.cache_path = o->cache;
	cfg.origin_path = o->origin;
	cfg.nr_buffers = o->buffers;
	if (strchr(o->cache, ',')) {
		ret = bcf_open_shards(td, d, &cfg);
		if (ret)
			goto err_loop;
		return 0;
	}
	ret = bc_engine_open(&d->eng, d->loop, &cfg, why, sizeof(why));
	if (ret == -EISDIR) {
		ret = bcf_open_sharded(td, d, &cfg);
		if (ret)
			goto err_loop;
		return 0;
	}
	if (ret) {
		log_err("blkcache-fio: cannot open cache %s: %s\n", o->cache, why[0] ? why : strerror(-ret));
		goto err_loop;
	}
	if (o->set) {
		ret = bcf_apply_set(d->eng, o->set);
		if (ret)
			goto err_engine;
	}
	d->t = bc_engine_target(d->eng);
	return 0;

err_engine:
	bc_engine_close(d->eng);
	d->eng = NULL;
err_loop:
	bc_loop_free(d->loop);
	d->loop = NULL;
	return ret;
}

static void bcf_close(struct bcf *d)
{
	int ret;

	if (d->shards) {
		ret = bc_shards_close(d->shards);
		if (ret)
			log_err("blkcache-fio: clean shutdown of the shards failed: %s\n", strerror(-ret));
		d->shards = NULL;
	}
	if (d->eng) {
		ret = bc_engine_close(d->eng);
		if (ret)
			log_err("blkcache-fio: clean shutdown failed: %s\n", strerror(-ret));
		d->eng = NULL;
	}
	if (d->loop) {
		bc_loop_free(d->loop);
		d->loop = NULL;
	}
}

/* Runs in the main fio process: learn the export size, then close again
 * (the job itself runs in another process or thread). */
static int bcf_setup(struct thread_data *td)
{
	struct bcf probe = { .probe = true };
	struct fio_file *f;

	if (!td->files_index) {
		add_file(td, td->o.filename ? td->o.filename : "blkcache", 0, 0);
		td->o.nr_files = td->o.nr_files ? : 1;
		td->o.open_files++;
	}
	if (bcf_open(td, &probe))
		return 1;
	f = td->files[0];
	f->real_file_size = probe.t->size;
	bcf_close(&probe);
	return 0;
}

static int bcf_init(struct thread_data *td)
{
	struct bcf *d = calloc(1, sizeof(*d));

	if (!d)
		return 1;
	d->done = calloc(td->o.iodepth + 1, sizeof(*d->done));
	if (!d->done || bcf_open(td, d)) {
		free(d->done);
		free(d);
		return 1;
	}
	td->io_ops_data = d;
	return 0;
}

static void bcf_write_stats(const char *path, struct bc_engine *e)
{
	struct bc_engine_stats st;
	FILE *fp = fopen(path, "w");

	if (!fp) {
		log_err("blkcache-fio: cannot write stats to %s: %s\n", path, strerror(errno));
		return;
	}
	bc_engine_get_stats(e, &st);
#define S(field) fprintf(fp, "%s %" PRIu64 "\n", #field, (uint64_t)st.field)
	S(reads); S(writes); S(flushes); S(fua_writes);
	S(read_hit_blocks); S(read_partial_blocks); S(read_miss_blocks);
	S(write_blocks); S(write_inplace_blocks); S(merge_reads);
	S(cached_blocks); S(dirty_blocks); S(segments_written); S(segments_partial);
	S(cache_full_waits); S(buffer_waits); S(carried_blocks); S(writeback_blocks); S(writeback_ios); S(writeback_fills); S(cache_flushes);
	S(origin_flushes); S(recovery_ms); S(io_errors);
	S(write_waited); S(write_wait_ns); S(write_wait_max_ns);
	S(loop.iterations); S(loop.waits); S(loop.enters); S(loop.sqes); S(loop.ring_full);
	S(cache_queue.submitted); S(cache_queue.inflight_sum); S(cache_queue.max_inflight);
	S(origin_queue.submitted); S(origin_queue.inflight_sum); S(origin_queue.max_inflight);
	for (unsigned i = 0; i < BC_DEV_QD_BUCKETS; i++)
		fprintf(fp, "cache_queue.hist.%u %" PRIu64 "\n", i, st.cache_queue.hist[i]);
	if (st.cache_queue.submitted)
		fprintf(fp, "cache_queue.avg_inflight %.2f\n",
			(double)st.cache_queue.inflight_sum / (double)st.cache_queue.submitted);
	if (st.loop.enters)
		fprintf(fp, "loop.sqes_per_enter %.2f\n", (double)st.loop.sqes / (double)st.loop.enters);
#undef S
	fclose(fp);
}

static void bcf_cleanup(struct thread_data *td)
{
	struct bcf *d = td->io_ops_data;
	struct bcf_options *o = td->eo;

	if (!d)
		return;
	if (d->shared)
		bcf_leave_hosts(d, o->stats);
	if (o->stats && d->eng)
		bcf_write_stats(o->stats, d->eng);
	if (o->stats && d->shards) { /* shard 0's at the path, shard i's at PATH.i */
		char path[4096];

		bc_shards_stop(d->shards);
		for (unsigned i = 0; i < bc_shards_count(d->shards); i++) {
			snprintf(path, sizeof(path), i ? "%s.%u" : "%s", o->stats, i);
			bcf_write_stats(path, bc_shards_engine(d->shards, i));
		}
	}
	bcf_close(d);
	free(d->done);
	free(d);
	td->io_ops_data = NULL;
}

static int bcf_io_u_init(struct thread_data *td, struct io_u *io_u)
{
	struct bcf_req *r = calloc(1, sizeof(*r));

	if (!r)
		return 1;
	r->io_u = io_u;
	r->d = td->io_ops_data;
	io_u->engine_data = r;
	return 0;
}

static void bcf_io_u_free(struct thread_data *td, struct io_u *io_u)
{
	(void)td;
	free(io_u->engine_data);
	io_u->engine_data = NULL;
}

static void bcf_done(struct bc_request *req, int result)
{
	struct bcf_req *r = req->priv;
	struct bcf *d = r->d;

	r->io_u->error = result < 0 ? -result : 0;
	r->io_u->resid = result < 0 ? r->io_u->xfer_buflen : 0;
	d->done[d->nr_done++] = r->io_u;
	d->inflight--;
}

static enum fio_q_status bcf_queue(struct thread_data *td, struct io_u *io_u)
{
	struct bcf *d = td->io_ops_data;
	struct bcf_req *r = io_u->engine_data;
	struct bc_request *req = &r->req;

	fio_ro_check(td, io_u);
	memset(req, 0, offsetof(struct bc_request, target_private));
	switch (io_u->ddir) {
	case DDIR_READ:
		req->op = BC_OP_READ;
		break;
	case DDIR_WRITE:
		req->op = BC_OP_WRITE;
		if (((struct bcf_options *)td->eo)->fua)
			req->flags = BC_REQ_FUA;
		break;
	case DDIR_TRIM:
		req->op = BC_OP_DISCARD;
		break;
	case DDIR_SYNC:
	case DDIR_DATASYNC:
	case DDIR_SYNC_FILE_RANGE:
		req->op = BC_OP_FLUSH;
		break;
	default:
		io_u->error = EINVAL;
		return FIO_Q_COMPLETED;
	}
	if (req->op != BC_OP_FLUSH) {
		req->offset = io_u->offset;
		req->length = io_u->xfer_buflen;
		req->buf = io_u->xfer_buf;
	}
	req->done = bcf_done;
	req->priv = r;
	d->inflight++;
	bc_target_submit(d->t, req);
	return FIO_Q_QUEUED;
}

static int bcf_getevents(struct thread_data *td, unsigned int min, unsigned int max,
			 const struct timespec *t)
{
	struct bcf *d = td->io_ops_data;
	uint64_t deadline = 0;
	unsigned n;

	/* fio has taken the events returned last time. */
	if (d->reported) {
		memmove(d->done, d->done + d->reported, (d->nr_done - d->reported) * sizeof(*d->done));
		d->nr_done -= d->reported;
		d->reported = 0;
	}
	if (t)
		deadline = bc_now_ns() + (uint64_t)t->tv_sec * 1000000000ull + (uint64_t)t->tv_nsec;
	if (d->nr_done < max)
		bc_loop_run_once(d->loop, 0); /* reap what is ready, submit what is queued */
	while (d->nr_done < min) {
		int wait_ms = 100;

		/* Shards: their completions arrive as messages; a short poll
		 * costs less than sleeping and being woken for each batch.
		 * bc_hosts: this thread also runs a shard the other jobs send
		 * parts to, on a core of its own: it polls much longer. */
		if (d->shards) {
			uint64_t t0 = bc_now_ns(), spin_ns = d->shared ? 1000000 : 30000;
			unsigned spins = 0;

			/* (the clock read only now and then: it costs more
			 * than an empty loop round) */
			while (d->nr_done < min && (++spins % 64 || bc_now_ns() - t0 < spin_ns))
				bc_loop_run_once(d->loop, 0);
			if (d->nr_done >= min)
				break;
		}

		if (t) {
			uint64_t now = bc_now_ns();

			if (now >= deadline)
				break;
			wait_ms = (int)((deadline - now + 999999) / 1000000);
		}
		bc_loop_run_once(d->loop, wait_ms);
	}
	n = d->nr_done < max ? d->nr_done : max;
	d->reported = n;
	return (int)n;
}

/* fio commits what it queued (after every iodepth_batch IOs): hand the
 * device IOs those requests produced to the kernel now, so they overlap
 * with fio's work on the next ones instead of waiting for getevents. */
static int bcf_commit(struct thread_data *td)
{
	struct bcf *d = td->io_ops_data;
	int ret = bc_loop_submit(d->loop);

	return ret < 0 ? ret : 0;
}

static struct io_u *bcf_event(struct thread_data *td, int event)
{
	struct bcf *d = td->io_ops_data;

	return d->done[event];
}

static int bcf_open_file(struct thread_data *td, struct fio_file *f)
{
	(void)td;
	(void)f;
	return 0;
}

static int bcf_invalidate(struct thread_data *td, struct fio_file *f)
{
	(void)td;
	(void)f;
	return 0;
}

struct ioengine_ops ioengine = {
	.name = "blkcache",
	.version = FIO_IOOPS_VERSION,
	.flags = FIO_DISKLESSIO | FIO_NOEXTEND | FIO_NODISKUTIL | FIO_RAWIO | FIO_MEMALIGN,
	.setup = bcf_setup,
	.init = bcf_init,
	.cleanup = bcf_cleanup,
	.queue = bcf_queue,
	.commit = bcf_commit,
	.getevents = bcf_getevents,
	.event = bcf_event,
	.open_file = bcf_open_file,
	.close_file = bcf_open_file,
	.invalidate = bcf_invalidate,
	.io_u_init = bcf_io_u_init,
	.io_u_free = bcf_io_u_free,
	.options = bcf_opts,
	.option_struct_size = sizeof(struct bcf_options),
};
