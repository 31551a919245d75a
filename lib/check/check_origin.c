/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The offline checker's look at the origin: a labelled origin's label
 * must name this cache; an origin cached in place must be the one whose
 * identity the cache recorded; either way it must have the recorded size.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check/check_internal.h"
#include "format/origin_id.h"
#include "format/superblock.h"

/* ---- the origin: its label, or its identity ---- */

/* An origin cached in place (format v2 without a label): the recorded
 * identity, as serve compares it. */
static void check_identity(struct ck *c, struct bc_check_finding f)
{
	struct bc_origin_id rec, found;
	char diff[512];

	bc_origin_id_load(&c->sb, &rec);
	bc_origin_id_get(c->origin, &found);
	if (bc_origin_id_match(&rec, &found, diff, sizeof(diff)) == BC_ORIGIN_DIFFERENT)
		say(c, f, BC_CHECK_ERROR, BC_CHECK_REC_REFUSES, "the origin is not the one this cache "
		    "recorded: %s (serve refuses it without --origin-moved)", diff);
}

int bc_ck_origin(struct ck *c)
{
	const struct bc_sb_disk *sb = &c->sb;
	struct bc_check_finding f = at(BC_CHECK_LABEL);
	struct bc_origin_label *l;
	enum bc_fmt_status st;
	char a[37], b[37];
	int ret;

	if (c->origin->size != sb->origin_size)
		say(c, f, BC_CHECK_ERROR, BC_CHECK_REC_REFUSES,
		    "the origin is %llu bytes, but the cache belongs to an origin of %llu bytes: "
		    "wrong origin? (serve refuses it)", U(c->origin->size), U(sb->origin_size));
	c->res->origin_labeled = bc_sb_labeled(sb);
	if (!c->res->origin_labeled) {
		check_identity(c, f);
		return 0;
	}
	if (c->origin->size < 2 * BC_BLOCK_SIZE) {
		say(c, f, BC_CHECK_ERROR, BC_CHECK_REC_REFUSES, "the origin is too small for a label");
		return 0;
	}
	l = bc_alloc_aligned(BC_BLOCK_SIZE);
	if (!l)
		return -ENOMEM;
	ret = bc_label_read(c->origin, l);
	if (ret < 0) {
		say(c, f, BC_CHECK_ERROR, BC_CHECK_REC_REFUSES, "cannot read the label: %s",
		    strerror(-ret));
		goto out;
	}
	st = bc_label_check(l);
	if (st == BC_FMT_BAD_VERSION) {
		say(c, f, BC_CHECK_ERROR, BC_CHECK_REC_REFUSES,
		    "the label has on-disk format version %u; this blkcache supports version %u",
		    l->version, BC_LABEL_VERSION);
	} else if (st != BC_FMT_OK) {
		say(c, f, BC_CHECK_ERROR, BC_CHECK_REC_REFUSES,
		    "no valid label at byte %llu of the origin (%s): wrong origin? (serve refuses it)",
		    U(bc_label_offset(c->origin->size)), bc_fmt_strerror(st));
	} else {
		if (memcmp(l->origin_uuid, sb->origin_uuid, 16) || memcmp(l->cache_uuid, sb->cache_uuid, 16)) {
			bc_uuid_format(l->origin_uuid, a);
			bc_uuid_format(sb->origin_uuid, b);
			say(c, f, BC_CHECK_ERROR, BC_CHECK_REC_REFUSES,
			    "the label names origin UUID %s, but the cache belongs to origin UUID %s%s "
			    "(serve refuses it)", a, b,
			    memcmp(l->cache_uuid, sb->cache_uuid, 16) ? " and another cache UUID" : "");
		}
		if (l->origin_size != sb->origin_size || l->export_size != sb->export_size)
			say(c, f, BC_CHECK_ERROR, BC_CHECK_REC_COPES,
			    "the label records origin_size %llu and export_size %llu, the superblock "
			    "%llu and %llu", U(l->origin_size), U(l->export_size), U(sb->origin_size),
			    U(sb->export_size));
	}
	ret = 0;
out:
	free(l);
	return ret;
}
