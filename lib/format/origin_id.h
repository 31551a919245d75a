/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The identity of an origin, recorded on the cache device (format v2) so
 * that a cache can be put in front of a volume without writing to it, and
 * still refuse the wrong volume: size plus what names the device stably --
 * a file's canonical path and inode; a block device's WWN or serial (a
 * loop device's backing file), partition UUID, /dev/disk/by-id name and
 * path; a network origin's URI.
 */
#ifndef BC_ORIGIN_ID_H
#define BC_ORIGIN_ID_H

#include <stddef.h>
#include <stdint.h>

#include "dev/device.h"
#include "format/format.h"

struct bc_origin_id {
	uint32_t kind;          /* enum bc_origin_kind */
	uint64_t inode;         /* file: st_ino; block device: st_rdev */
	char path[256];
	char serial[128];
	char partuuid[40];
	char byid[256];
};

/* Identify the device @dev (opened from dev->path). */
void bc_origin_id_get(const struct bc_dev *dev, struct bc_origin_id *id);
void bc_origin_id_store(struct bc_sb_disk *sb, const struct bc_origin_id *id);
void bc_origin_id_load(const struct bc_sb_disk *sb, struct bc_origin_id *id);

enum bc_origin_match {
	BC_ORIGIN_SAME = 0,     /* the recorded device */
	BC_ORIGIN_RENAMED,      /* the same device under another name (@why says which) */
	BC_ORIGIN_DIFFERENT,    /* another device (@why says what differs) */
};
enum bc_origin_match bc_origin_id_match(const struct bc_origin_id *rec,
					const struct bc_origin_id *found, char *why, size_t len);
/* One line describing @id, e.g. "file /srv/o.img (inode 1234)". */
void bc_origin_id_describe(const struct bc_origin_id *id, char *buf, size_t len);

#endif
