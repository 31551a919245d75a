/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ublk frontend: exports one bc_target as the kernel block device
 * /dev/ublkbN (Linux >= 6.0, module ublk_drv), served through io_uring
 * uring_cmds on the target's own loop -- or one queue per place of a
 * target seen from several loops (cfg->places: a shard set's hosts).  Written from the kernel's ublk uapi
 * (include/uapi/linux/ublk_cmd.h) and Documentation/block/ublk.rst.
 */
#ifndef BLKCACHE_UBLK_H
#define BLKCACHE_UBLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blkcache/loop.h"
#include "blkcache/target.h"

struct bc_ublk;

struct bc_ublk_config {
	int dev_id;              /* -1: the kernel picks the number */
	unsigned queue_depth;    /* requests in flight (0: 128) */
	uint32_t max_io;         /* largest request in bytes (0: 512 KiB) */
	/* UBLK_F_USER_RECOVERY + REISSUE: when this server dies, the device
	 * stays (IO waits) and a new server started with the same @dev_id takes
	 * it over, reissuing what was in flight. */
	bool recovery;
	const char *control;     /* NULL: /dev/ublk-control */
	/* One hardware queue per place (queue k's commands issued and its
	 * requests submitted on places[k].loop's thread; blk-mq maps the
	 * CPUs over the queues); 0: one queue on @loop with @target. */
	const struct bc_target_place *places;
	unsigned nplaces;        /* up to BC_TARGET_MAX_PLACES */
};

struct bc_ublk_stats {
	int dev_id;
	bool recovered;          /* took over a device left by a server that died */
	uint32_t inflight;       /* requests in the target */
	uint64_t requests, reads, writes, flushes, discards, write_zeroes;
	uint64_t errors;         /* requests completed with an error */
	bool stopped;            /* after bc_ublk_shutdown: the kernel stopped the device */
	uint32_t armed;          /* fetch/commit commands with the kernel */
	uint32_t queues;         /* hardware queues */
	uint64_t queue_requests[BC_TARGET_MAX_PLACES]; /* per queue */
};

/*
 * Create the device (or, with cfg->recovery and an existing, quiesced
 * cfg->dev_id, take it over) and start serving.  Blocks only on the ublk
 * control commands.  On failure returns -errno and @why says why.
 */
int bc_ublk_start(struct bc_ublk **out, struct bc_loop *loop, const struct bc_target *target,
		  const struct bc_ublk_config *cfg, char *why, size_t whylen);
int bc_ublk_dev_id(const struct bc_ublk *u);
/* Stop the device: the kernel fails new IO; requests in the target still
 * complete.  bc_ublk_idle() turns true when none is left. */
void bc_ublk_shutdown(struct bc_ublk *u);
bool bc_ublk_idle(const struct bc_ublk *u);
/* Delete the device (after shutdown and idle) and free. */
void bc_ublk_free(struct bc_ublk *u);
void bc_ublk_stats(const struct bc_ublk *u, struct bc_ublk_stats *st);

#endif
