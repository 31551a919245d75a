/* SPDX-License-Identifier: BSD-3-Clause */
/* The origin table of a format v3 cache device (format/otable.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/why.h"
#include "format/origin_id.h"
#include "format/otable.h"

int bc_otable_read(struct bc_dev *cache, const struct bc_sb_disk *sb, struct bc_otable *t)
{
	uint64_t len = 2ull * sb->origin_slots * BC_BLOCK_SIZE;
	uint32_t i;
	int ret;

	memset(t, 0, sizeof(*t));
	t->sb = *sb;
	if (!bc_sb_has_table(sb))
		return -EINVAL;
	t->buf = bc_alloc_aligned(len);
	if (!t->buf)
		return -ENOMEM;
	ret = bc_dev_rw_sync(cache, BC_DIO_READ, t->buf, len, sb->table_offset);
	if (ret < 0) {
		bc_otable_free(t);
		return ret;
	}
	for (i = 0; i < sb->origin_slots; i++)
		t->rec[i] = bc_orec_pick(&t->buf[2 * i], sb, i, &t->st[i][0], &t->st[i][1]);
	return 0;
}

void bc_otable_free(struct bc_otable *t)
{
	free(t->buf);
	t->buf = NULL;
	memset(t->rec, 0, sizeof(t->rec));
}

int bc_otable_find(const struct bc_otable *t, const char *name)
{
	uint32_t i;

	for (i = 0; i < t->sb.origin_slots; i++)
		if (t->rec[i] && !t->rec[i]->shard_index && !strcmp(t->rec[i]->name, name))
			return (int)i;
	return -ENOENT;
}

int bc_otable_find_shard(const struct bc_otable *t, const char *name, unsigned shard)
{
	uint32_t i;

	for (i = 0; i < t->sb.origin_slots; i++)
		if (t->rec[i] && t->rec[i]->shard_index == shard && !strcmp(t->rec[i]->name, name))
			return (int)i;
	return -ENOENT;
}

int bc_otable_find_origin(const struct bc_otable *t, const struct bc_origin_id *id,
			  enum bc_orec_which which)
{
	struct bc_origin_id rec;
	char diff[512];
	uint32_t i;

	for (i = 0; i < t->sb.origin_slots; i++) {
		if (!t->rec[i] || t->rec[i]->shard_index ||
		    bc_orec_holds_ring(t->rec[i]) != (which == BC_OREC_ATTACHED))
			continue;
		if (!id)
			return (int)i;
		bc_origin_id_load(t->rec[i], &rec);
		if (bc_origin_id_match(&rec, id, diff, sizeof(diff)) != BC_ORIGIN_DIFFERENT)
			return (int)i;
	}
	return -ENOENT;
}

unsigned bc_otable_attached(const struct bc_otable *t)
{
	unsigned i, n = 0;

	for (i = 0; i < t->sb.origin_slots; i++)
		n += bc_orec_holds_ring(t->rec[i]) && !t->rec[i]->shard_index;
	return n;
}

int bc_otable_check_overlap(const struct bc_otable *t, char *why, size_t whylen)
{
	const struct bc_sb_disk *a, *b;
	uint32_t i, j;

	for (i = 0; i < t->sb.origin_slots; i++) {
		a = t->rec[i];
		if (!bc_orec_holds_ring(a))
			continue;
		for (j = i + 1; j < t->sb.origin_slots; j++) {
			b = t->rec[j];
			if (!bc_orec_holds_ring(b))
				continue;
			if (a->ring_offset < b->ring_offset + (uint64_t)b->nr_segments * b->segment_size &&
			    b->ring_offset < a->ring_offset + (uint64_t)a->nr_segments * a->segment_size) {
				bc_why(why, whylen, "the origin table is inconsistent: the rings of "
				       "origins '%s' (positions %u..%u) and '%s' (positions %u..%u) "
				       "overlap", a->name, bc_orec_first(&t->sb, a),
				       bc_orec_first(&t->sb, a) + a->nr_segments - 1, b->name,
				       bc_orec_first(&t->sb, b),
				       bc_orec_first(&t->sb, b) + b->nr_segments - 1);
				return -EUCLEAN;
			}
		}
	}
	return 0;
}

/* Is position @pos inside an attached origin's ring?  Returns the first
 * position after that ring, or @pos if it is free. */
static uint32_t ring_end_at(const struct bc_otable *t, uint32_t pos)
{
	uint32_t i, first;

	for (i = 0; i < t->sb.origin_slots; i++) {
		if (!bc_orec_holds_ring(t->rec[i]))
			continue;
		first = bc_orec_first(&t->sb, t->rec[i]);
		if (pos >= first && pos < first + t->rec[i]->nr_segments)
			return first + t->rec[i]->nr_segments;
	}
	return pos;
}

void bc_otable_free_run(const struct bc_otable *t, uint32_t *first, uint32_t *len, uint32_t *used)
{
	uint32_t pos = 0, next, start, n = t->sb.nr_segments;

	*first = 0;
	*len = 0;
	*used = 0;
	while (pos < n) {
		next = ring_end_at(t, pos);
		if (next != pos) {
			*used += next - pos;
			pos = next;
			continue;
		}
		start = pos;
		while (pos < n && ring_end_at(t, pos) == pos)
			pos++;
		if (pos - start > *len) {
			*first = start;
			*len = pos - start;
		}
	}
}

int bc_otable_new_slot(const struct bc_otable *t)
{
	uint32_t i;

	for (i = 0; i < t->sb.origin_slots; i++)
		if (!t->rec[i])
			return (int)i;
	for (i = 0; i < t->sb.origin_slots; i++)
		if (!bc_orec_holds_ring(t->rec[i]))
			return (int)i;
	return -ENOSPC;
}

int bc_orec_write_sync(struct bc_dev *cache, const struct bc_sb_disk *sb, struct bc_sb_disk *rec,
		       bool fresh)
{
	struct bc_sb_disk *two = bc_alloc_aligned(2 * BC_BLOCK_SIZE);
	uint64_t off;
	int ret;

	if (!two)
		return -ENOMEM;
	if (fresh) {
		/* Both copies, generations seq + 1 and seq + 2 (@rec->seq: that of
		 * the slot's previous record, or 0), generation g in copy g % 2. */
		rec->seq++;
		bc_orec_seal(rec);
		two[rec->seq % BC_SB_COPIES] = *rec;
		rec->seq++;
		bc_orec_seal(rec);
		two[rec->seq % BC_SB_COPIES] = *rec;
		ret = bc_dev_rw_sync(cache, BC_DIO_WRITE, two, 2 * BC_BLOCK_SIZE,
				     bc_orec_offset(sb, rec->origin_id, 0));
	} else {
		rec->seq++;
		bc_orec_seal(rec);
		two[0] = *rec;
		off = bc_orec_offset(sb, rec->origin_id, (unsigned)(rec->seq % BC_SB_COPIES));
		ret = bc_dev_rw_sync(cache, BC_DIO_WRITE, two, BC_BLOCK_SIZE, off);
	}
	if (!ret)
		ret = bc_dev_rw_sync(cache, BC_DIO_FLUSH, NULL, 0, 0);
	free(two);
	return ret;
}

void bc_otable_names(const struct bc_otable *t, char *buf, size_t len)
{
	size_t used = 0;
	uint32_t i;
	int n;

	if (len)
		buf[0] = 0;
	for (i = 0; i < t->sb.origin_slots && used < len; i++) {
		if (!bc_orec_holds_ring(t->rec[i]) || t->rec[i]->shard_index)
			continue;
		n = snprintf(buf + used, len - used, "%s'%s'", used ? ", " : "", t->rec[i]->name);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}
