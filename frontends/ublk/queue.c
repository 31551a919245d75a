/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One ublk queue, served on its loop (the kernel takes a queue's commands
 * from one task: that loop's thread).  Every tag has a buffer and, while
 * idle, a FETCH_REQ with the kernel; when a request arrives its uring_cmd
 * completes on the loop, the descriptor (mmapped from /dev/ublkcN) says
 * what it is, it goes to the queue's target as a bc_request, and its
 * result goes back with COMMIT_AND_FETCH_REQ, which also waits for the
 * tag's next request.  The kernel copies write data into the buffer before
 * the fetch completes and read data out of it when the commit arrives.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

static void cmd_done(struct bc_completion *c, int res);

static int submit_cmd(struct bc_ublk_io *io, uint32_t legacy_op, uint32_t encoded_op, int result)
{
	struct bc_ublk_queue *q = io->q;
	struct bc_ublk *u = q->u;
	struct io_uring_sqe *sqe = bc_loop_sqe(q->loop);
	struct ublksrv_io_cmd cmd = {
		.q_id = q->id, .tag = io->tag, .result = result,
		.addr = (uint64_t)(uintptr_t)io->buf,
	};

	if (!sqe)
		return -EBUSY;
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = u->cdev;
	sqe->cmd_op = u->ctrl.encoded ? encoded_op : legacy_op;
	memcpy(sqe->cmd, &cmd, sizeof(cmd)); /* 16 bytes: fits a 64-byte SQE */
	io->comp.fn = cmd_done;
	io_uring_sqe_set_data(sqe, &io->comp);
	io->cmd_armed = true;
	bc_counter_add(q->armed, 1);
	return 0;
}

static void io_dead(struct bc_ublk_io *io)
{
	io->dead = true;
}

/* The target finished @req: give the kernel its result and fetch again. */
static void req_done(struct bc_request *req, int result)
{
	struct bc_ublk_io *io = req->priv;
	struct bc_ublk_queue *q = io->q;
	int res = result < 0 ? result : 0;

	io->in_target = false;
	bc_counter_add(q->in_target, -1);
	bc_counter_add(q->st.inflight, -1);
	if (result < 0)
		bc_counter_add(q->st.errors, 1);
	else if (req->op == BC_OP_READ || req->op == BC_OP_WRITE)
		res = (int)req->length;
	if (submit_cmd(io, UBLK_IO_COMMIT_AND_FETCH_REQ, UBLK_U_IO_COMMIT_AND_FETCH_REQ, res) < 0) {
		/* The ring is full even after submitting: nothing can be done for
		 * this tag but to stop using it; the kernel times the request out. */
		bc_loop_log(q->loop, BC_LOG_ERR, "ublk: queue %u: cannot queue the commit of tag %u",
			    q->id, io->tag);
		io_dead(io);
	}
}

/* A request from the kernel, as its descriptor says.  False: refused. */
static bool build_request(struct bc_ublk_io *io, const struct ublksrv_io_desc *d, int *err)
{
	struct bc_request *r = &io->req;
	struct bc_ublk_qstats *st = &io->q->st;

	memset(r, 0, offsetof(struct bc_request, target_private));
	switch (ublksrv_get_op(d)) {
	case UBLK_IO_OP_READ: r->op = BC_OP_READ; bc_counter_add(st->reads, 1); break;
	case UBLK_IO_OP_WRITE: r->op = BC_OP_WRITE; bc_counter_add(st->writes, 1); break;
	case UBLK_IO_OP_FLUSH: r->op = BC_OP_FLUSH; bc_counter_add(st->flushes, 1); break;
	case UBLK_IO_OP_DISCARD: r->op = BC_OP_DISCARD; bc_counter_add(st->discards, 1); break;
	case UBLK_IO_OP_WRITE_ZEROES:
		r->op = BC_OP_WRITE_ZEROES;
		bc_counter_add(st->write_zeroes, 1);
		break;
	default:
		*err = -EOPNOTSUPP;
		return false;
	}
	if ((uint64_t)d->nr_sectors << 9 > io->q->buf_size &&
	    (r->op == BC_OP_READ || r->op == BC_OP_WRITE)) {
		*err = -EINVAL;
		return false;
	}
	if (d->op_flags & UBLK_IO_F_FUA)
		r->flags |= BC_REQ_FUA;
	r->offset = d->start_sector << 9;
	r->length = (uint64_t)d->nr_sectors << 9;
	r->buf = io->buf;
	r->done = req_done;
	r->priv = io;
	return true;
}

static void cmd_done(struct bc_completion *c, int res)
{
	struct bc_ublk_io *io = BC_CONTAINER_OF(c, struct bc_ublk_io, comp);
	struct bc_ublk_queue *q = io->q;
	int err = 0;

	io->cmd_armed = false;
	bc_counter_add(q->armed, -1);
	if (res != UBLK_IO_RES_OK) {
		/* UBLK_IO_RES_ABORT: the device stops; anything else: refused. */
		if (res != UBLK_IO_RES_ABORT)
			bc_loop_log(q->loop, BC_LOG_ERR, "ublk: queue %u tag %u: uring_cmd failed: %s",
				    q->id, io->tag, strerror(-res));
		io_dead(io);
		return;
	}
	bc_counter_add(q->st.requests, 1);
	if (!build_request(io, &q->descs[io->tag], &err)) {
		bc_counter_add(q->st.errors, 1);
		if (submit_cmd(io, UBLK_IO_COMMIT_AND_FETCH_REQ, UBLK_U_IO_COMMIT_AND_FETCH_REQ,
			       err) < 0)
			io_dead(io);
		return;
	}
	io->in_target = true;
	bc_counter_add(q->in_target, 1);
	bc_counter_add(q->st.inflight, 1);
	bc_target_submit(q->target, &io->req);
}

int bc_ublk_queue_init(struct bc_ublk_queue *q, struct bc_ublk *u, uint16_t id, unsigned depth,
		       uint32_t buf_size, const struct bc_target_place *place, char *why,
		       size_t whylen)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t len = depth * sizeof(struct ublksrv_io_desc);
	off_t off = UBLKSRV_CMD_BUF_OFFSET +
		    (off_t)id * UBLK_MAX_QUEUE_DEPTH * (off_t)sizeof(struct ublksrv_io_desc);
	unsigned i;
	void *p;

	memset(q, 0, sizeof(*q));
	q->u = u;
	q->loop = place->loop;
	q->target = place->target;
	q->id = id;
	q->depth = depth;
	q->buf_size = buf_size;
	q->descs_len = (len + (size_t)page - 1) & ~((size_t)page - 1);
	p = mmap(NULL, q->descs_len, PROT_READ, MAP_SHARED | MAP_POPULATE, u->cdev, off);
	if (p == MAP_FAILED) {
		snprintf(why, whylen, "ublk: cannot map the request descriptors: %s",
			 strerror(errno));
		q->descs_len = 0;
		return -errno;
	}
	q->descs = p;
	q->ios = calloc(depth, sizeof(*q->ios));
	if (!q->ios || posix_memalign(&q->bufs, 4096, (size_t)depth * buf_size)) {
		q->bufs = NULL;
		snprintf(why, whylen, "ublk: out of memory for %u buffers of %u bytes", depth,
			 buf_size);
		return -ENOMEM;
	}
	for (i = 0; i < depth; i++) {
		q->ios[i].q = q;
		q->ios[i].tag = (uint16_t)i;
		q->ios[i].buf = (char *)q->bufs + (size_t)i * buf_size;
	}
	return 0;
}

int bc_ublk_queue_fetch_all(struct bc_ublk_queue *q)
{
	unsigned i;
	int ret;

	for (i = 0; i < q->depth; i++) {
		q->ios[i].dead = false;
		ret = submit_cmd(&q->ios[i], UBLK_IO_FETCH_REQ, UBLK_U_IO_FETCH_REQ, 0);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* On the queue's loop: its first fetches. */
static void fetch_here(struct bc_completion *c, int res)
{
	struct bc_ublk_queue *q = BC_CONTAINER_OF(c, struct bc_ublk_queue, fetch_msg.c);
	int ret = bc_ublk_queue_fetch_all(q);

	(void)res;
	if (ret >= 0)
		ret = bc_loop_submit(q->loop);
	__atomic_store_n(&q->fetch_ret, ret < 0 ? ret : 0, __ATOMIC_RELEASE);
}

void bc_ublk_queue_fetch_remote(struct bc_ublk_queue *q)
{
	q->fetch_ret = 1;
	q->fetch_msg.c.fn = fetch_here;
	bc_loop_post(q->u->loop, q->loop, &q->fetch_msg, 0);
}

bool bc_ublk_queue_quiet(struct bc_ublk_queue *q)
{
	return !bc_counter_read(q->armed) && !bc_counter_read(q->in_target);
}

void bc_ublk_queue_unmap(struct bc_ublk_queue *q)
{
	if (q->descs_len)
		munmap((void *)q->descs, q->descs_len);
	q->descs_len = 0;
}

void bc_ublk_queue_destroy(struct bc_ublk_queue *q)
{
	bc_ublk_queue_unmap(q);
	free(q->bufs);
	free(q->ios);
	memset(q, 0, sizeof(*q));
}
