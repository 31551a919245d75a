/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The ublk uapi as this frontend uses it: <linux/ublk_cmd.h> (Linux 6.1
 * headers have the legacy opcodes), plus what newer kernels added: the
 * ioctl-encoded opcodes and their feature flag.
 */
#ifndef BC_UBLK_UAPI_H
#define BC_UBLK_UAPI_H

#include <linux/ioctl.h>
#include <linux/ublk_cmd.h>

#ifndef UBLK_F_CMD_IOCTL_ENCODE
#define UBLK_F_CMD_IOCTL_ENCODE (1ULL << 6)
#endif
#ifndef UBLK_U_CMD_ADD_DEV
#define UBLK_U_CMD_GET_DEV_INFO       _IOR('u', UBLK_CMD_GET_DEV_INFO, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_ADD_DEV            _IOWR('u', UBLK_CMD_ADD_DEV, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_DEL_DEV            _IOWR('u', UBLK_CMD_DEL_DEV, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_START_DEV          _IOWR('u', UBLK_CMD_START_DEV, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_STOP_DEV           _IOWR('u', UBLK_CMD_STOP_DEV, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_SET_PARAMS         _IOWR('u', UBLK_CMD_SET_PARAMS, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_START_USER_RECOVERY _IOWR('u', UBLK_CMD_START_USER_RECOVERY, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_END_USER_RECOVERY  _IOWR('u', UBLK_CMD_END_USER_RECOVERY, struct ublksrv_ctrl_cmd)
#endif
#ifndef UBLK_U_CMD_DEL_DEV_ASYNC
/* Linux 6.9: DEL_DEV that does not wait until the device is freed. */
#define UBLK_U_CMD_DEL_DEV_ASYNC      _IOR('u', 0x14, struct ublksrv_ctrl_cmd)
#endif
#ifndef UBLK_U_IO_FETCH_REQ
#define UBLK_U_IO_FETCH_REQ           _IOWR('u', UBLK_IO_FETCH_REQ, struct ublksrv_io_cmd)
#define UBLK_U_IO_COMMIT_AND_FETCH_REQ _IOWR('u', UBLK_IO_COMMIT_AND_FETCH_REQ, struct ublksrv_io_cmd)
#endif

/* The control commands by their legacy number; bc_ublk_ctrl picks the
 * encoding the kernel takes. */
enum bc_ublk_cmd {
	BC_UBLK_GET_DEV_INFO = UBLK_CMD_GET_DEV_INFO,
	BC_UBLK_ADD_DEV = UBLK_CMD_ADD_DEV,
	BC_UBLK_DEL_DEV = UBLK_CMD_DEL_DEV,
	BC_UBLK_START_DEV = UBLK_CMD_START_DEV,
	BC_UBLK_STOP_DEV = UBLK_CMD_STOP_DEV,
	BC_UBLK_SET_PARAMS = UBLK_CMD_SET_PARAMS,
	BC_UBLK_START_USER_RECOVERY = UBLK_CMD_START_USER_RECOVERY,
	BC_UBLK_END_USER_RECOVERY = UBLK_CMD_END_USER_RECOVERY,
	BC_UBLK_DEL_DEV_ASYNC = 0x14, /* encoded opcode only */
};

#endif
