/* SPDX-License-Identifier: BSD-3-Clause */
/* The offline checker's state, shared by its parts (check.c: superblocks
 * and the ring; check_origin.c: the origin). */
#ifndef BC_CHECK_INTERNAL_H
#define BC_CHECK_INTERNAL_H

#include <stdint.h>

#include "blkcache/check.h"
#include "dev/device.h"
#include "format/format.h"

/* What a ring position holds. */
enum pos_kind {
	PK_UNREAD,  /* the read failed (reported) */
	PK_EMPTY,   /* zeroes: never written, or invalidated by recovery */
	PK_OTHER,   /* not a segment header */
	PK_FOREIGN, /* a header of an earlier format of the device (other nonce) */
	PK_DAMAGED, /* a header of this format that fails its check */
	PK_VALID,
};

struct pos_info {
	uint64_t seq, flushed;        /* as the header says (not trustworthy unless VALID) */
	uint32_t nr_entries, hdr_blocks;
	uint8_t kind, st;
};

struct ck {
	const struct bc_check_ops *ops;
	void *arg;
	struct bc_check_result *res;
	struct bc_loop *loop;
	struct bc_dev *cache, *origin;
	struct bc_sb_disk sb;         /* the current copy (format v3: of the origin's record) */
	struct bc_sb_disk top;        /* format v3: the superblock */
	const char *origin_tag;       /* format v3: the origin being checked, for findings */
	struct pos_info *pos;
	void *seg;                    /* one whole segment */
	uint32_t nseg, hdr_blocks, data_blocks;
	uint64_t wb;                  /* written_back_seq */
	uint64_t vouch;               /* highest segment known to have been written */
	char vouch_by[96];
	uint64_t torn;                /* first segment recovery takes for torn; 0 = none */
	uint32_t torn_ent;            /* its first entry with bad data: recovery keeps those before */
	uint64_t inflight_max;        /* segments a writer can have in flight */
	uint64_t prev_epoch;
	char msg[640];
};

#define U(x) ((unsigned long long)(x))

static inline struct bc_check_finding at_ent(enum bc_check_area area, uint64_t seq, int64_t pos,
				      int64_t entry, uint64_t block)
{
	return (struct bc_check_finding){ .area = area, .sb_copy = -1, .seq = seq, .pos = pos,
					  .entry = entry, .block = block };
}
#define at(area) at_ent(area, 0, -1, -1, 0)
#define at_seg(area, seq, pos) at_ent(area, seq, pos, -1, 0)

static inline struct bc_check_finding at_sb(int copy)
{
	struct bc_check_finding f = at(BC_CHECK_SUPERBLOCK);

	f.sb_copy = copy;
	return f;
}

/* Report a finding (counted in the result). */
void bc_ck_say(struct ck *c, struct bc_check_finding f, enum bc_check_severity sev,
	       enum bc_check_recovery rec, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
#define say bc_ck_say

/* The origin: its label, or its recorded identity. */
int bc_ck_origin(struct ck *c);
/* One origin: superblock fields (c->sb), ring, origin device. */
int bc_ck_one(struct ck *c);
void bc_ck_fill(struct bc_check_result *r, const struct bc_sb_disk *sb);
/* Format v3 (c->sb: the superblock): the origin table, then bc_ck_one()
 * for the origin named @name, or that is c->origin, or each one. */
int bc_ck_table(struct ck *c, const char *name);

#endif
