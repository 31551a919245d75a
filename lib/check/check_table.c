/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The offline checker's look at a format v3 cache: the origin table (each
 * record's two copies, rings inside the cache and apart), then each
 * origin's ring as a v2 cache's (check.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check/check_internal.h"
#include "core/why.h"
#include "format/origin_id.h"
#include "format/otable.h"

/* Record @i: a copy that is not valid next to one that is, copies out of
 * their generation's place. */
static void check_record(struct ck *c, const struct bc_otable *t, uint32_t i)
{
	const struct bc_sb_disk *two = &t->buf[2 * i], *cur = t->rec[i];
	int k;

	c->origin_tag = cur && c->res->origins > 1 ? cur->name : NULL;
	for (k = 0; k < 2; k++) {
		if (t->st[i][k] == BC_FMT_OK) {
			if (two[k].seq % BC_SB_COPIES != (uint64_t)k)
				say(c, at_sb(k), BC_CHECK_ERROR, BC_CHECK_REC_COPES,
				    "origin record %u holds generation %llu in copy %d (generation g "
				    "belongs in copy g mod 2)", i, U(two[k].seq), k);
			continue;
		}
		if (t->st[i][k] == BC_FMT_BAD_MAGIC && (!cur || t->st[i][!k] == BC_FMT_BAD_MAGIC))
			continue; /* an unused slot, or a record written once so far */
		if (cur)
			say(c, at_sb(k), BC_CHECK_ERROR, BC_CHECK_REC_COPES,
			    "origin record %u, copy %d is invalid (%s); the other copy (generation "
			    "%llu) is used", i, k, bc_fmt_strerror(t->st[i][k]), U(cur->seq));
		else if (t->st[i][k] != BC_FMT_BAD_MAGIC)
			say(c, at_sb(k), BC_CHECK_ERROR, BC_CHECK_REC_REFUSES,
			    "origin record %u, copy %d is invalid (%s) and so is the other: the origin "
			    "it described (if any) cannot be served", i, k, bc_fmt_strerror(t->st[i][k]));
	}
	c->origin_tag = NULL;
}

/* Which record bc_ck_table checks: @name, else the one that is c->origin;
 * -1: all. */
static int select_record(struct ck *c, const struct bc_otable *t, const char *name)
{
	struct bc_origin_id found;
	int slot;

	if (name) {
		slot = bc_otable_find(t, name);
		if (slot < 0)
			bc_why(c->res->why, sizeof(c->res->why), "the cache has no origin named '%s' "
			       "(its origins: %s)", name, c->res->origin_names[0] ?
			       c->res->origin_names : "none");
		return slot < 0 ? -ENOENT : slot;
	}
	if (!c->origin)
		return -1;
	bc_origin_id_get(c->origin, &found);
	slot = bc_otable_find_origin(t, &found, BC_OREC_ATTACHED);
	if (slot >= 0)
		return slot;
	if (bc_otable_attached(t) == 1) /* reported as the wrong origin by bc_ck_origin */
		return bc_otable_find_origin(t, NULL, BC_OREC_ATTACHED);
	bc_why(c->res->why, sizeof(c->res->why), "origin %s is none of the cache's origins (%s); "
	       "name the origin to check", c->origin->path, c->res->origin_names);
	return -ENOENT;
}

static int check_one_record(struct ck *c, const struct bc_sb_disk *rec)
{
	int ret;

	c->sb = *rec;
	c->origin_tag = c->res->origins > 1 ? rec->name : NULL; /* findings name it if need be */
	bc_ck_fill(c->res, rec);
	snprintf(c->res->origin_name, sizeof(c->res->origin_name), "%s", rec->name);
	ret = bc_ck_one(c);
	c->origin_tag = NULL;
	return ret;
}

int bc_ck_table(struct ck *c, const char *name)
{
	struct bc_otable t;
	char why[512];
	uint32_t i;
	int slot, ret;

	c->top = c->sb;
	ret = bc_otable_read(c->cache, &c->sb, &t);
	if (ret < 0) {
		say(c, at(BC_CHECK_DEVICE), BC_CHECK_ERROR, BC_CHECK_REC_REFUSES,
		    "cannot read the origin table: %s", strerror(-ret));
		return ret == -ENOMEM ? ret : 0;
	}
	c->res->origins = bc_otable_attached(&t);
	bc_otable_names(&t, c->res->origin_names, sizeof(c->res->origin_names));
	for (i = 0; i < t.sb.origin_slots; i++)
		check_record(c, &t, i);
	if (bc_otable_check_overlap(&t, why, sizeof(why)) < 0)
		say(c, at(BC_CHECK_DEVICE), BC_CHECK_ERROR, BC_CHECK_REC_REFUSES, "%s", why);
	slot = select_record(c, &t, name);
	if (slot >= 0) {
		ret = check_one_record(c, t.rec[slot]);
	} else if (slot == -1) {
		for (i = 0; i < t.sb.origin_slots && ret >= 0; i++)
			if (bc_orec_holds_ring(t.rec[i]))
				ret = check_one_record(c, t.rec[i]);
	} else {
		ret = slot;
	}
	bc_otable_free(&t);
	return ret;
}
