/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A new origin for a cache: the checks an origin must pass (not another
 * cache's, not already cached here, room for a label if asked), the
 * origin's fields of its superblock (v2) or record (v3), and its share of
 * the cache's ring.  Used by format, 'origin add' and a live attach.
 */
#ifndef BC_FORMAT_ORIGIN_REC_H
#define BC_FORMAT_ORIGIN_REC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dev/device.h"
#include "format/format.h"
#include "format/otable.h"

struct bc_orec_req;

/*
 * How a new origin's share of the cache is chosen: a policy, like
 * writeback's and promotion's.  Shares are disjoint runs of the cache's
 * segments, so no origin's data is ever evicted or written back by
 * another's activity; the policy decides only where and how much.
 */
struct bc_share_ops {
	const char *name;
	/* Positions for a new origin in table @t: 0 with @first, @len, or
	 * -errno with @why. */
	int (*choose)(const struct bc_otable *t, const struct bc_orec_req *q, uint32_t *first,
		      uint32_t *len, char *why, size_t whylen);
};
/* The largest free run; q->size / size_percent of the whole cache, by
 * default all of the run (q->whole) or a quarter of the cache. */
extern const struct bc_share_ops bc_share_free_run;

struct bc_orec_req {
	const struct bc_share_ops *share; /* NULL: bc_share_free_run */
	const char *name;       /* NULL: "blkcache" */
	uint64_t size;          /* bytes of the cache for its ring; 0: the default */
	uint32_t size_percent;  /* 1..100 of the cache's ring, if not 0 (overrides size) */
	bool whole;             /* default size: every free position (else a quarter) */
	bool data_crc, origin_label, force;
};

#define BC_DEFAULT_ORIGIN_NAME "blkcache"

/* May @origin be cached by the cache whose superblock is @sb (its
 * current format on the device, or NULL for a device being formatted)?
 * Refuses an origin labelled by another cache (unless forced), checks
 * the room for a label if asked; says in @notice what the origin holds. */
int bc_orec_check_origin(struct bc_dev *origin, const struct bc_sb_disk *old,
			 const struct bc_orec_req *q, char *notice, size_t nlen, char *why,
			 size_t whylen);
/* Fill the origin's fields of @sb (UUID, sizes, mode, nonce, flags,
 * identity) and, with q->origin_label, the label in @label. */
void bc_orec_fill_origin(struct bc_sb_disk *sb, struct bc_dev *origin, const struct bc_orec_req *q,
			 struct bc_origin_label *label);
/* A new record in table @t for @origin (after bc_orec_check_origin): its
 * name unique, the origin not cached here already, a slot and a ring.
 * Fills @rec; writes nothing.  0 or -errno with @why. */
int bc_orec_build(const struct bc_otable *t, struct bc_dev *origin, const struct bc_orec_req *q,
		  struct bc_sb_disk *rec, struct bc_origin_label *label, char *why, size_t whylen);

/* Format v5: make record @recs[0] (a new origin's, its ring and slot
 * chosen) the first of @n shard records @recs[0..n-1]: its ring cut in n
 * equal runs, slots origin_id .. origin_id + n - 1 (free: the caller's
 * business), stripes of @stripe_blocks.  0 or -errno with @why. */
int bc_orec_split_shards(struct bc_sb_disk *recs, unsigned n, uint32_t stripe_blocks, char *why,
			 size_t whylen);

#endif
