/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ublk control commands: uring_cmds on /dev/ublk-control through a small
 * ring of 128-byte SQEs (struct ublksrv_ctrl_cmd does not fit in 64).  They
 * are rare (start, stop, recovery) and each waits for its answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

int bc_ublk_ctrl_open(struct bc_ublk_ctrl *c, const char *path, char *why, size_t whylen)
{
	int ret;

	c->fd = open(path, O_RDWR | O_CLOEXEC);
	if (c->fd < 0) {
		ret = -errno;
		snprintf(why, whylen, "cannot open %s: %s%s", path, strerror(-ret),
			 ret == -ENOENT ? " (ublk needs Linux >= 6.0 with the ublk_drv module "
			 "loaded: modprobe ublk_drv)" : "");
		return ret;
	}
	ret = io_uring_queue_init(4, &c->ring, IORING_SETUP_SQE128);
	if (ret < 0) {
		snprintf(why, whylen, "cannot set up an io_uring for ublk control: %s",
			 strerror(-ret));
		close(c->fd);
		c->fd = -1;
		return ret;
	}
	c->ring_ok = true;
	c->encoded = true; /* until the kernel says otherwise (bc_ublk_ctrl_legacy) */
	return 0;
}

void bc_ublk_ctrl_close(struct bc_ublk_ctrl *c)
{
	if (c->ring_ok)
		io_uring_queue_exit(&c->ring);
	c->ring_ok = false;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static uint32_t opcode(const struct bc_ublk_ctrl *c, enum bc_ublk_cmd cmd)
{
	if (!c->encoded)
		return cmd;
	switch (cmd) {
	case BC_UBLK_GET_DEV_INFO: return UBLK_U_CMD_GET_DEV_INFO;
	case BC_UBLK_ADD_DEV: return UBLK_U_CMD_ADD_DEV;
	case BC_UBLK_DEL_DEV: return UBLK_U_CMD_DEL_DEV;
	case BC_UBLK_START_DEV: return UBLK_U_CMD_START_DEV;
	case BC_UBLK_STOP_DEV: return UBLK_U_CMD_STOP_DEV;
	case BC_UBLK_SET_PARAMS: return UBLK_U_CMD_SET_PARAMS;
	case BC_UBLK_START_USER_RECOVERY: return UBLK_U_CMD_START_USER_RECOVERY;
	case BC_UBLK_END_USER_RECOVERY: return UBLK_U_CMD_END_USER_RECOVERY;
	case BC_UBLK_DEL_DEV_ASYNC: return UBLK_U_CMD_DEL_DEV_ASYNC;
	}
	return cmd;
}

static int queue_cmd(struct bc_ublk_ctrl *c, enum bc_ublk_cmd cmd, uint32_t dev_id, void *buf,
		     uint16_t len, uint64_t data0)
{
	struct ublksrv_ctrl_cmd cc = {
		.dev_id = dev_id, .queue_id = (uint16_t)-1, .len = len,
		.addr = (uint64_t)(uintptr_t)buf, .data = { data0, 0 },
	};
	struct io_uring_sqe *sqe = io_uring_get_sqe(&c->ring);

	if (!sqe)
		return -EBUSY;
	memset(sqe, 0, 2 * sizeof(*sqe)); /* a 128-byte SQE */
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = c->fd;
	sqe->cmd_op = opcode(c, cmd);
	memcpy(sqe->cmd, &cc, sizeof(cc));
	return 0;
}

int bc_ublk_ctrl_cmd_async(struct bc_ublk_ctrl *c, enum bc_ublk_cmd cmd, uint32_t dev_id,
			   uint64_t data0)
{
	int ret = queue_cmd(c, cmd, dev_id, NULL, 0, data0);

	return ret < 0 ? ret : io_uring_submit(&c->ring);
}

int bc_ublk_ctrl_reap(struct bc_ublk_ctrl *c)
{
	struct io_uring_cqe *cqe;
	int ret;

	if (io_uring_peek_cqe(&c->ring, &cqe))
		return -EAGAIN;
	ret = cqe->res;
	io_uring_cqe_seen(&c->ring, cqe);
	return ret;
}

int bc_ublk_ctrl_cmd(struct bc_ublk_ctrl *c, enum bc_ublk_cmd cmd, uint32_t dev_id, void *buf,
		     uint16_t len, uint64_t data0)
{
	struct io_uring_cqe *cqe;
	int ret = queue_cmd(c, cmd, dev_id, buf, len, data0);

	if (ret < 0)
		return ret;
	ret = io_uring_submit_and_wait(&c->ring, 1);
	if (ret < 0)
		return ret;
	ret = io_uring_wait_cqe(&c->ring, &cqe);
	if (ret < 0)
		return ret;
	ret = cqe->res;
	io_uring_cqe_seen(&c->ring, cqe);
	return ret;
}

bool bc_ublk_ctrl_legacy(struct bc_ublk_ctrl *c, int ret)
{
	if (!c->encoded || (ret != -EOPNOTSUPP && ret != -EINVAL && ret != -ENOTTY))
		return false;
	c->encoded = false; /* a kernel with the legacy opcodes only (6.1) */
	return true;
}

int bc_ublk_ctrl_add(struct bc_ublk_ctrl *c, struct ublksrv_ctrl_dev_info *info)
{
	struct ublksrv_ctrl_dev_info tried = *info;
	int ret;

	if (c->encoded)
		info->flags |= UBLK_F_CMD_IOCTL_ENCODE;
	ret = bc_ublk_ctrl_cmd(c, BC_UBLK_ADD_DEV, info->dev_id, info, sizeof(*info), 0);
	if (!bc_ublk_ctrl_legacy(c, ret))
		return ret;
	*info = tried;
	return bc_ublk_ctrl_cmd(c, BC_UBLK_ADD_DEV, info->dev_id, info, sizeof(*info), 0);
}
