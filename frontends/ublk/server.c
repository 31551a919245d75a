/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The ublk device's life: ADD_DEV, SET_PARAMS, open /dev/ublkcN, fetch on
 * every tag, START_DEV; or, for a device whose server died (quiesced, with
 * user recovery), START_USER_RECOVERY ... END_USER_RECOVERY, after which the
 * kernel reissues what was in flight.  Shutdown: STOP_DEV (pending fetches
 * are aborted), wait for the target's requests, close, DEL_DEV (asynchronous where the kernel has it).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define DEFAULT_DEPTH  128
#define DEFAULT_MAX_IO (512u << 10)
#define OPEN_TRIES     200            /* x 10 ms: the char device node appears */
#define BUSY_TRIES     300            /* x 10 ms: a killed server's device is released */
#define REAP_TRIES     1000           /* x 10 ms: cancelled commands complete */

static void pause_10ms(void)
{
	nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
}

static int set_params(struct bc_ublk *u)
{
	const struct bc_target *t = u->target;
	struct ublk_params p = {
		.len = sizeof(p),
		.types = UBLK_PARAM_TYPE_BASIC,
		.basic = {
			.logical_bs_shift = 9,
			.physical_bs_shift = 12,
			.io_opt_shift = 12,
			.io_min_shift = 9,
			.max_sectors = u->info.max_io_buf_bytes >> 9,
			.dev_sectors = t->size >> 9,
		},
	};

	/* A volatile write cache with FUA: FLUSH and FUA reach the target
	 * with the semantics NBD gives them. */
	if (t->flags & BC_TARGET_CAN_FLUSH)
		p.basic.attrs |= UBLK_ATTR_VOLATILE_CACHE;
	if (t->flags & BC_TARGET_CAN_FUA)
		p.basic.attrs |= UBLK_ATTR_FUA;
	if (t->flags & (BC_TARGET_CAN_DISCARD | BC_TARGET_CAN_ZEROES)) {
		p.types |= UBLK_PARAM_TYPE_DISCARD;
		p.discard.discard_granularity = 4096;
		p.discard.max_discard_sectors = (t->flags & BC_TARGET_CAN_DISCARD) ?
						t->max_block >> 9 : 0;
		p.discard.max_write_zeroes_sectors = (t->flags & BC_TARGET_CAN_ZEROES) ?
						     t->max_block >> 9 : 0;
		p.discard.max_discard_segments = 1;
	}
	return bc_ublk_ctrl_cmd(&u->ctrl, BC_UBLK_SET_PARAMS, u->info.dev_id, &p, sizeof(p), 0);
}

static int open_cdev(struct bc_ublk *u, char *why, size_t whylen)
{
	char path[64];
	int tries = 0;

	snprintf(path, sizeof(path), "/dev/ublkc%u", u->info.dev_id);
	while ((u->cdev = open(path, O_RDWR | O_CLOEXEC)) < 0 && errno == ENOENT &&
	       tries++ < OPEN_TRIES)
		pause_10ms();
	if (u->cdev < 0) {
		snprintf(why, whylen, "cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	return 0;
}

/* A new device: ADD_DEV and SET_PARAMS. */
static int add_device(struct bc_ublk *u, char *why, size_t whylen)
{
	int ret;

	u->info = (struct ublksrv_ctrl_dev_info){
		.nr_hw_queues = (uint16_t)u->nq,
		.queue_depth = (uint16_t)u->cfg.queue_depth,
		.max_io_buf_bytes = u->cfg.max_io,
		.dev_id = u->cfg.dev_id < 0 ? (uint32_t)-1 : (uint32_t)u->cfg.dev_id,
		.ublksrv_pid = getpid(),
		.flags = u->cfg.recovery ? UBLK_F_USER_RECOVERY | UBLK_F_USER_RECOVERY_REISSUE : 0,
	};
	ret = bc_ublk_ctrl_add(&u->ctrl, &u->info);
	if (ret < 0) {
		snprintf(why, whylen, "ublk: adding device %d failed: %s%s", u->cfg.dev_id,
			 strerror(-ret), ret == -EEXIST ? " (the number is taken; a server "
			 "that died leaves its device for --ublk-recover)" : "");
		return ret;
	}
	u->added = true;
	ret = set_params(u);
	if (ret < 0)
		snprintf(why, whylen, "ublk: setting the parameters of device %u failed: %s",
			 u->info.dev_id, strerror(-ret));
	return ret;
}

/* An existing device left by a server that died: true if it is there and
 * waits for a new server. */
static int find_quiesced(struct bc_ublk *u, char *why, size_t whylen)
{
	struct ublksrv_ctrl_dev_info info;
	int ret, tries = 0;

	if (!u->cfg.recovery || u->cfg.dev_id < 0)
		return 0;
	ret = bc_ublk_ctrl_cmd(&u->ctrl, BC_UBLK_GET_DEV_INFO, (uint32_t)u->cfg.dev_id, &info,
			       sizeof(info), 0);
	if (bc_ublk_ctrl_legacy(&u->ctrl, ret))
		ret = bc_ublk_ctrl_cmd(&u->ctrl, BC_UBLK_GET_DEV_INFO, (uint32_t)u->cfg.dev_id,
				       &info, sizeof(info), 0);
	if (ret == -ENODEV || ret == -ENOENT)
		return 0;
	if (ret < 0) {
		snprintf(why, whylen, "ublk: querying device %d failed: %s", u->cfg.dev_id,
			 strerror(-ret));
		return ret;
	}
	if (info.state == UBLK_S_DEV_LIVE) {
		snprintf(why, whylen, "ublk: device %d is served by another process (pid %d)",
			 u->cfg.dev_id, info.ublksrv_pid);
		return -EBUSY;
	}
	if (!(info.flags & UBLK_F_USER_RECOVERY)) {
		snprintf(why, whylen, "ublk: device %d exists without user recovery; delete it "
			 "first", u->cfg.dev_id);
		return -EEXIST;
	}
	u->info = info;
	/* The dead server's char device may still be being released. */
	while ((ret = bc_ublk_ctrl_cmd(&u->ctrl, BC_UBLK_START_USER_RECOVERY, info.dev_id, NULL,
				       0, 0)) == -EBUSY && tries++ < BUSY_TRIES)
		pause_10ms();
	if (ret < 0) {
		snprintf(why, whylen, "ublk: starting recovery of device %u failed: %s",
			 info.dev_id, strerror(-ret));
		return ret;
	}
	u->added = true;
	u->recovered = true;
	return 1;
}

/* A control command that may need IO served before it returns. */
static int cmd_serving(struct bc_ublk *u, enum bc_ublk_cmd cmd, uint64_t data0)
{
	int ret = bc_ublk_ctrl_cmd_async(&u->ctrl, cmd, u->info.dev_id, data0);

	if (ret < 0)
		return ret;
	while ((ret = bc_ublk_ctrl_reap(&u->ctrl)) == -EAGAIN) {
		int n = bc_loop_run_once(u->loop, 10);

		if (n < 0)
			return n;
	}
	return ret;
}

/* Every queue: its buffers and descriptors, and a fetch on every tag
 * issued from its loop's thread (posted there, and awaited). */
static int start_queues(struct bc_ublk *u, char *why, size_t whylen)
{
	unsigned k;
	int ret = 0;

	if (u->info.nr_hw_queues != u->nq) {
		snprintf(why, whylen, "ublk: device %u has %u queues, this server serves %u",
			 u->info.dev_id, u->info.nr_hw_queues, u->nq);
		return -EINVAL;
	}
	u->qs = calloc(u->nq, sizeof(*u->qs));
	if (!u->qs)
		return -ENOMEM;
	for (k = 0; k < u->nq && ret >= 0; k++)
		ret = bc_ublk_queue_init(&u->qs[k], u, (uint16_t)k, u->info.queue_depth,
					 u->info.max_io_buf_bytes, &u->places[k], why, whylen);
	for (k = 0; k < u->nq && ret >= 0; k++) {
		struct bc_ublk_queue *q = &u->qs[k];

		if (q->loop != u->loop) {
			bc_ublk_queue_fetch_remote(q);
			continue;
		}
		ret = bc_ublk_queue_fetch_all(q);
		if (ret >= 0)
			ret = bc_loop_submit(u->loop);
	}
	for (k = 0; k < u->nq; k++) {
		struct bc_ublk_queue *q = &u->qs[k];
		int r;

		if (q->loop == u->loop || !q->fetch_msg.c.fn)
			continue; /* nothing posted */
		/* Awaited even after a failure: the queue must outlive the
		 * message.  That loop's thread answers. */
		while ((r = __atomic_load_n(&q->fetch_ret, __ATOMIC_ACQUIRE)) > 0)
			bc_loop_run_once(u->loop, 10);
		if (r < 0 && ret >= 0)
			ret = r;
	}
	if (ret < 0)
		snprintf(why, whylen, "ublk: queueing the fetch commands failed: %s",
			 strerror(-ret));
	return ret;
}

static int start(struct bc_ublk *u, char *why, size_t whylen)
{
	int ret = find_quiesced(u, why, whylen);

	if (ret < 0 || (ret == 0 && (ret = add_device(u, why, whylen)) < 0))
		return ret;
	ret = open_cdev(u, why, whylen);
	if (ret < 0)
		return ret;
	ret = start_queues(u, why, whylen);
	if (ret < 0)
		return ret;
	/* START_DEV (END_USER_RECOVERY) returns once every tag has fetched;
	 * meanwhile the kernel reads the new disk (partition scan), so the
	 * loop serves while the command runs. */
	ret = cmd_serving(u, u->recovered ? BC_UBLK_END_USER_RECOVERY : BC_UBLK_START_DEV,
			  (uint64_t)getpid());
	if (ret < 0) {
		snprintf(why, whylen, "ublk: %s device %u failed: %s",
			 u->recovered ? "ending the recovery of" : "starting", u->info.dev_id,
			 strerror(-ret));
		return ret;
	}
	u->started = true;
	return 0;
}

int bc_ublk_start(struct bc_ublk **out, struct bc_loop *loop, const struct bc_target *target,
		  const struct bc_ublk_config *cfg, char *why, size_t whylen)
{
	struct bc_ublk *u = calloc(1, sizeof(*u));
	int ret;

	if (!u)
		return -ENOMEM;
	u->loop = loop;
	u->target = target;
	u->cfg = *cfg;
	u->cdev = -1;
	u->ctrl.fd = -1;
	u->nq = cfg->nplaces ? cfg->nplaces : 1;
	if (u->nq > BC_TARGET_MAX_PLACES || (cfg->nplaces && !cfg->places)) {
		if (u->nq > BC_TARGET_MAX_PLACES)
			snprintf(why, whylen, "ublk: %u queues: at most %d", u->nq,
				 BC_TARGET_MAX_PLACES);
		else
			snprintf(why, whylen, "ublk: %u queues but no places given for them",
				 u->nq);
		free(u);
		return -EINVAL;
	}
	if (cfg->nplaces)
		memcpy(u->places, cfg->places, cfg->nplaces * sizeof(*cfg->places));
	else
		u->places[0] = (struct bc_target_place){ .loop = loop, .target = target };
	u->cfg.places = NULL; /* the caller's */
	if (!u->cfg.queue_depth || u->cfg.queue_depth > UBLK_MAX_QUEUE_DEPTH)
		u->cfg.queue_depth = DEFAULT_DEPTH;
	if (!u->cfg.max_io)
		u->cfg.max_io = DEFAULT_MAX_IO;
	if (u->cfg.max_io > target->max_block)
		u->cfg.max_io = target->max_block;
	ret = bc_ublk_ctrl_open(&u->ctrl, cfg->control ? cfg->control : "/dev/ublk-control",
				why, whylen);
	if (ret == 0)
		ret = start(u, why, whylen);
	if (ret < 0) {
		bc_ublk_free(u);
		return ret;
	}
	u->st.dev_id = (int)u->info.dev_id;
	u->st.recovered = u->recovered;
	bc_loop_log(loop, BC_LOG_INFO, "ublk: /dev/ublkb%u %s (%u queue%s of %u requests of up to "
		    "%u bytes)", u->info.dev_id, u->recovered ? "recovered" : "ready", u->nq,
		    u->nq > 1 ? "s" : "", u->info.queue_depth, u->info.max_io_buf_bytes);
	*out = u;
	return 0;
}

int bc_ublk_dev_id(const struct bc_ublk *u)
{
	return (int)u->info.dev_id;
}

static void stopped(struct bc_ublk *u, int res)
{
	if (res < 0)
		bc_loop_log(u->loop, BC_LOG_WARN, "ublk: stopping device %u: %s", u->info.dev_id,
			    strerror(-res));
	u->stopped = true;
}

static void stop_ready(struct bc_completion *c, int res)
{
	struct bc_ublk *u = BC_CONTAINER_OF(c, struct bc_ublk, stop_comp);
	int ret = bc_ublk_ctrl_reap(&u->ctrl);

	if (ret == -EAGAIN && res >= 0 &&
	    bc_loop_poll_add(u->loop, u->ctrl.ring.ring_fd, POLLIN, &u->stop_comp) == 0)
		return;
	stopped(u, res < 0 ? res : ret);
}

/* STOP_DEV runs in the kernel while it waits for the requests in flight,
 * which this loop keeps serving: its answer is awaited on the loop. */
void bc_ublk_shutdown(struct bc_ublk *u)
{
	int ret;

	if (u->stopping)
		return;
	u->stopping = true;
	if (!u->added) {
		u->stopped = true;
		return;
	}
	u->stop_comp.fn = stop_ready;
	ret = bc_ublk_ctrl_cmd_async(&u->ctrl, BC_UBLK_STOP_DEV, u->info.dev_id, 0);
	if (ret >= 0)
		ret = bc_loop_poll_add(u->loop, u->ctrl.ring.ring_fd, POLLIN, &u->stop_comp);
	if (ret < 0)
		stopped(u, ret);
}

/* Nothing of any queue is with the kernel or the target (queues on other
 * loops: as their threads last counted). */
static bool queues_quiet(const struct bc_ublk *u)
{
	unsigned k;

	for (k = 0; u->qs && k < u->nq; k++)
		if (u->qs[k].ios && !bc_ublk_queue_quiet(&u->qs[k]))
			return false;
	return true;
}

bool bc_ublk_idle(const struct bc_ublk *u)
{
	return u->stopped && queues_quiet(u);
}

/* DEL_DEV waits until the device is freed: until every opener of
 * /dev/ublkbN (a client killed but not yet gone, a udev probe) has closed
 * it, however long that takes.  The asynchronous form (Linux 6.9) removes
 * the device and returns; then it is awaited here for a bounded time, so a
 * server started right after finds the number free.  Older kernels refuse
 * it and get the waiting one. */
static void delete_device(struct bc_ublk *u)
{
	struct ublksrv_ctrl_dev_info info;
	int ret = -EINVAL, tries = 0;

	if (u->ctrl.encoded)
		ret = bc_ublk_ctrl_cmd(&u->ctrl, BC_UBLK_DEL_DEV_ASYNC, u->info.dev_id, NULL, 0, 0);
	if (ret == -EINVAL || ret == -EOPNOTSUPP || ret == -ENOTTY) {
		ret = bc_ublk_ctrl_cmd(&u->ctrl, BC_UBLK_DEL_DEV, u->info.dev_id, NULL, 0, 0);
	} else if (ret == 0) {
		while ((ret = bc_ublk_ctrl_cmd(&u->ctrl, BC_UBLK_GET_DEV_INFO, u->info.dev_id, &info,
					       sizeof(info), 0)) == 0 && tries++ < BUSY_TRIES)
			pause_10ms();
		if (ret == 0)
			bc_loop_log(u->loop, BC_LOG_WARN, "ublk: device %u is still open (by a "
				    "client that has not exited?): it goes when the last opener "
				    "closes it", u->info.dev_id);
		ret = ret == -ENODEV || ret == -ENOENT || ret == 0 ? 0 : ret;
	}
	if (ret < 0)
		bc_loop_log(u->loop, BC_LOG_WARN, "ublk: deleting device %u: %s", u->info.dev_id,
			    strerror(-ret));
}

static void free_queues(struct bc_ublk *u)
{
	bool leak = false;
	unsigned k;

	for (k = 0; u->qs && k < u->nq; k++) {
		struct bc_ublk_queue *q = &u->qs[k];

		if (!q->ios || bc_ublk_queue_quiet(q)) {
			bc_ublk_queue_destroy(q);
			continue;
		}
		/* Their completions may still come: the queue stays (leaked),
		 * but not its mapping of the char device, which would keep the
		 * device from being freed. */
		bc_loop_log(u->loop, BC_LOG_ERR, "ublk: %u commands of device %u queue %u never "
			    "completed", bc_counter_read(q->armed), u->info.dev_id, k);
		bc_ublk_queue_unmap(q);
		leak = true;
	}
	if (!leak)
		free(u->qs);
	u->qs = NULL;
}

void bc_ublk_free(struct bc_ublk *u)
{
	int tries = 0;

	if (!u)
		return;
	/* Closing the char device cancels fetches still with the kernel; their
	 * completions reference the queue, so they are reaped first. */
	if (u->cdev >= 0)
		close(u->cdev);
	u->cdev = -1;
	while ((!queues_quiet(u) || (u->stopping && !u->stopped)) && tries++ < REAP_TRIES &&
	       bc_loop_run_once(u->loop, 10) >= 0)
		;
	free_queues(u);
	if (u->added)
		delete_device(u);
	bc_ublk_ctrl_close(&u->ctrl);
	free(u);
}

void bc_ublk_stats(const struct bc_ublk *u, struct bc_ublk_stats *st)
{
	unsigned k;

	*st = u->st;
	st->stopped = u->stopped;
	st->queues = u->nq;
	for (k = 0; u->qs && k < u->nq; k++) {
		struct bc_ublk_queue *q = &u->qs[k];

		st->armed += bc_counter_read(q->armed);
		st->inflight += bc_counter_read(q->st.inflight);
		st->queue_requests[k] = bc_counter_read(q->st.requests);
		st->requests += st->queue_requests[k];
		st->reads += bc_counter_read(q->st.reads);
		st->writes += bc_counter_read(q->st.writes);
		st->flushes += bc_counter_read(q->st.flushes);
		st->discards += bc_counter_read(q->st.discards);
		st->write_zeroes += bc_counter_read(q->st.write_zeroes);
		st->errors += bc_counter_read(q->st.errors);
	}
}
