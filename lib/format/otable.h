/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The origin table of a format v3 cache device: one record per origin (two
 * alternating copies each, like the superblock), naming the origin, its
 * identity and its ring -- a run of the cache's segment positions.
 */
#ifndef BC_FORMAT_OTABLE_H
#define BC_FORMAT_OTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dev/device.h"
#include "format/format.h"

struct bc_otable {
	struct bc_sb_disk sb;                    /* the v3 superblock */
	struct bc_sb_disk *buf;                  /* every record copy, as read */
	const struct bc_sb_disk *rec[BC_ORIGIN_SLOTS]; /* newest valid copy per slot, or NULL */
	enum bc_fmt_status st[BC_ORIGIN_SLOTS][2];
};

/* Read the table that v3 superblock @sb describes.  0 or -errno. */
int bc_otable_read(struct bc_dev *cache, const struct bc_sb_disk *sb, struct bc_otable *t);
void bc_otable_free(struct bc_otable *t);
/* Does record @rec hold cache positions (an attached origin)? */
static inline bool bc_orec_holds_ring(const struct bc_sb_disk *rec)
{
	return rec && !(rec->flags & BC_SB_DETACHED);
}
/* First ring position of a record (index in the cache's ring). */
static inline uint32_t bc_orec_first(const struct bc_sb_disk *sb, const struct bc_sb_disk *rec)
{
	return (uint32_t)((rec->ring_offset - sb->ring_offset) / sb->segment_size);
}
/* The slot of the record named @name (attached or not; of a sharded
 * origin, shard 0's), or -ENOENT.  Origins, not shards, are what the
 * other lookups and counts below see too. */
int bc_otable_find(const struct bc_otable *t, const char *name);
/* The slot of shard @shard of the origin named @name, or -ENOENT. */
int bc_otable_find_shard(const struct bc_otable *t, const char *name, unsigned shard);
/* Which records bc_otable_find_origin looks at. */
enum bc_orec_which { BC_OREC_ATTACHED, BC_OREC_DETACHED };
struct bc_origin_id;
/* The first slot of a @which record that is the origin @id (by
 * bc_origin_id_match), or -- @id NULL -- of any @which record; -ENOENT. */
int bc_otable_find_origin(const struct bc_otable *t, const struct bc_origin_id *id,
			  enum bc_orec_which which);
/* Attached records whose rings overlap: describe the first pair in @why
 * and return -EUCLEAN; 0 if none. */
int bc_otable_check_overlap(const struct bc_otable *t, char *why, size_t whylen);
/* Positions free for a new ring: the largest free run, in @first/@len.
 * @total: positions in use by attached origins. */
void bc_otable_free_run(const struct bc_otable *t, uint32_t *first, uint32_t *len, uint32_t *used);
/* A slot for a new record: a free one, else one of a detached origin;
 * -ENOSPC if every slot holds an attached origin. */
int bc_otable_new_slot(const struct bc_otable *t);
/* The attached origins' names, quoted, separated by ", ". */
void bc_otable_names(const struct bc_otable *t, char *buf, size_t len);
/* Number of attached origins. */
unsigned bc_otable_attached(const struct bc_otable *t);

/* Write record @rec (slot rec->origin_id) of the table of @sb: a new one
 * (@fresh: both copies, generations @rec->seq + 1 and + 2) or its next
 * generation (one copy).  Flushes the device after.  0 or -errno. */
int bc_orec_write_sync(struct bc_dev *cache, const struct bc_sb_disk *sb, struct bc_sb_disk *rec,
		       bool fresh);

#endif
