/* SPDX-License-Identifier: BSD-3-Clause */
/* Internals of the ublk frontend (frontends/ublk/). */
#ifndef BC_UBLK_INTERNAL_H
#define BC_UBLK_INTERNAL_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#include "blkcache/ublk.h"
#include "counter.h"
#include "uapi.h"

/* ctrl.c: the control device, through its own small SQE128 ring */
struct bc_ublk_ctrl {
	int fd;                   /* /dev/ublk-control */
	struct io_uring ring;
	bool ring_ok;
	bool encoded;             /* the kernel takes ioctl-encoded opcodes */
};
int bc_ublk_ctrl_open(struct bc_ublk_ctrl *c, const char *path, char *why, size_t whylen);
void bc_ublk_ctrl_close(struct bc_ublk_ctrl *c);
/* One control command for device @dev_id; @buf/@len its in/out buffer,
 * @data0 its inline argument.  0 or -errno. */
int bc_ublk_ctrl_cmd(struct bc_ublk_ctrl *c, enum bc_ublk_cmd cmd, uint32_t dev_id, void *buf,
		     uint16_t len, uint64_t data0);
/* Start a command without waiting (STOP_DEV: the kernel waits for the
 * requests in flight, which this loop must keep serving); its result comes
 * from bc_ublk_ctrl_reap() once the ring's fd is readable. */
int bc_ublk_ctrl_cmd_async(struct bc_ublk_ctrl *c, enum bc_ublk_cmd cmd, uint32_t dev_id,
			   uint64_t data0);
/* The result of the async command, or -EAGAIN if it has not finished. */
int bc_ublk_ctrl_reap(struct bc_ublk_ctrl *c);
/* A command in the ioctl encoding (the first one sent) was refused as
 * unknown: use the legacy opcodes from now on; true: send it again. */
bool bc_ublk_ctrl_legacy(struct bc_ublk_ctrl *c, int ret);
/* ADD_DEV: tries the ioctl-encoded opcode first and remembers which one the
 * kernel took.  @info in/out. */
int bc_ublk_ctrl_add(struct bc_ublk_ctrl *c, struct ublksrv_ctrl_dev_info *info);

/* queue.c: one hardware queue: its descriptors, buffers and uring_cmds */
struct bc_ublk_io {
	struct bc_completion comp;  /* the uring_cmd (FETCH or COMMIT_AND_FETCH) */
	struct bc_request req;
	struct bc_ublk_queue *q;
	void *buf;
	uint16_t tag;
	bool cmd_armed;             /* a uring_cmd of this tag is with the kernel */
	bool in_target;             /* its request is in the target */
	bool dead;                  /* aborted: no more fetches */
};

/* A queue's counters: written by its loop's thread only (bc_counter_add),
 * read by the server's (bc_counter_read). */
struct bc_ublk_qstats {
	uint64_t requests, reads, writes, flushes, discards, write_zeroes, errors;
	uint32_t inflight;
};

struct bc_ublk_queue {
	struct bc_ublk *u;
	struct bc_loop *loop;       /* its thread issues its commands (the kernel
				     * takes a queue's commands from one task) */
	const struct bc_target *target; /* submitted to on @loop's thread */
	uint16_t id;
	unsigned depth;
	const struct ublksrv_io_desc *descs; /* mmapped from /dev/ublkcN */
	size_t descs_len;
	void *bufs;
	uint32_t buf_size;
	struct bc_ublk_io *ios;
	unsigned armed, in_target;  /* as the counters */
	struct bc_ublk_qstats st;
	struct bc_msg fetch_msg;    /* on another loop: its first fetches go there */
	int fetch_ret;              /* of those (atomic; 1: not yet) */
};


int bc_ublk_queue_init(struct bc_ublk_queue *q, struct bc_ublk *u, uint16_t id, unsigned depth,
		       uint32_t buf_size, const struct bc_target_place *place, char *why,
		       size_t whylen);
/* Queue a FETCH_REQ for every tag (submitted with the loop's next wait),
 * on the queue's loop's thread. */
int bc_ublk_queue_fetch_all(struct bc_ublk_queue *q);
/* From the server's loop: the fetches of a queue on another loop, posted
 * there; q->fetch_ret says how it went. */
void bc_ublk_queue_fetch_remote(struct bc_ublk_queue *q);
/* Nothing of it is with the kernel or the target (read from any thread). */
bool bc_ublk_queue_quiet(struct bc_ublk_queue *q);
void bc_ublk_queue_unmap(struct bc_ublk_queue *q);
void bc_ublk_queue_destroy(struct bc_ublk_queue *q);

struct bc_ublk {
	struct bc_loop *loop;
	const struct bc_target *target;
	struct bc_ublk_config cfg;
	struct bc_ublk_ctrl ctrl;
	struct ublksrv_ctrl_dev_info info;
	int cdev;                   /* /dev/ublkcN */
	bool added, started, stopping, stopped, recovered;
	struct bc_completion stop_comp; /* the control ring's fd readable */
	struct bc_ublk_queue *qs;   /* queue k on place k's loop */
	unsigned nq;
	struct bc_target_place places[BC_TARGET_MAX_PLACES];
	struct bc_ublk_stats st;    /* dev_id, recovered (the queues count the rest) */
};

#endif
