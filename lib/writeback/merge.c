/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Building writeback's origin writes: a batch's blocks, sorted by origin
 * address (writeback.c), become merged runs of consecutive sectors -- or,
 * with writeback_gap, gap fills that read the clean blocks between dirty
 * ones from the origin and write the whole span.
 */
#include "writeback/wb_priv.h"

/* Number of runs of consecutive sectors in a block's mask. */
static unsigned mask_runs(uint8_t mask)
{
	return (unsigned)__builtin_popcount((unsigned)(mask & ~(mask << 1)) & 0xffu);
}

bool bc_wb_fill_overlaps(const struct bc_engine *e, uint64_t off, uint64_t len)
{
	const struct bc_wb *wb = e->wb;
	unsigned i;

	if (!wb || wb->stage != WB_WRITING)
		return false;
	for (i = 0; i < WB_QD; i++) {
		const struct wb_write *w = &wb->writes[i];

		if (w->busy && w->fill && off < w->start + w->len && w->start < off + len)
			return true;
	}
	return false;
}

/*
 * Gap fill (writeback_gap): dirty blocks at most writeback_gap blocks apart
 * become one origin write of the whole span, its clean gaps read from the
 * origin first -- two IOs instead of one per run, for origins where an IO
 * costs more than its bytes.  Rewriting a gap with the origin's own data
 * changes nothing, also when a crash tears the write, as long as nothing
 * else writes the gap meanwhile: no fill starts while a direct origin
 * write (non-writeback modes) is in flight, and direct writes that overlap
 * a fill wait for it (bc_wb_fill_overlaps, write.c).  Worth it from three
 * runs on.  Starts at the cursor; false: no fill here.
 */
static bool wb_build_fill(struct bc_wb *wb, struct wb_write *w)
{
	struct bc_engine *e = wb->e;
	const struct wb_item *items = wb->items;
	size_t i = wb->cursor, j = i;
	uint64_t gap = e->tun.writeback_gap;
	unsigned runs;

	if (!gap || wb->cursor_sector || items[i].zero || bc_write_origin_busy(e))
		return false;
	runs = mask_runs(items[i].mask);
	while (j + 1 < wb->nitems) {
		const struct wb_item *a = &items[j], *b = &items[j + 1];

		if (b->zero || b->block - a->block - 1 > gap ||
		    (b->block - items[i].block + 1) * BC_BLOCK_SIZE > WB_MAX_IO)
			break;
		runs += mask_runs(b->mask);
		if (b->block == a->block + 1 && (a->mask & 0x80) && (b->mask & 1))
			runs--;
		j++;
	}
	if (runs < 3)
		return false;
	w->fill = true;
	w->fill_first = i;
	w->fill_last = j;
	w->zero = false;
	w->niov = 1;
	w->start = items[i].block << BC_BLOCK_SHIFT;
	w->len = (items[j].block - items[i].block + 1) << BC_BLOCK_SHIFT;
	wb->cursor = j + 1;
	wb->cursor_sector = 0;
	return true;
}

/* Build the next merged run starting at the cursor into @w; false if none. */
bool bc_wb_build(struct bc_wb *wb, struct wb_write *w)
{
	uint64_t start = 0, len = 0;
	unsigned niov = 0;
	int zero = -1;

	w->fill = false;
	if (wb->cursor < wb->nitems && wb_build_fill(wb, w))
		return true;

	while (wb->cursor < wb->nitems) {
		struct wb_item *it = &wb->items[wb->cursor];
		unsigned s = wb->cursor_sector, t;
		uint64_t off;

		while (s < BC_SECTORS_PER_BLOCK && !((it->mask >> s) & 1))
			s++;
		if (s == BC_SECTORS_PER_BLOCK) {
			wb->cursor++;
			wb->cursor_sector = 0;
			continue;
		}
		for (t = s; t < BC_SECTORS_PER_BLOCK && ((it->mask >> t) & 1); t++)
			;
		off = (it->block << BC_BLOCK_SHIFT) + (uint64_t)s * BC_SECTOR_SIZE;
		if (len) {
			if (off != start + len || zero != it->zero || len >= WB_MAX_IO ||
			    (!zero && niov == WB_IOV))
				break;
		} else {
			start = off;
			zero = it->zero;
		}
		if (!it->zero) {
			w->iov[niov].iov_base = (void *)(it->src + (size_t)s * BC_SECTOR_SIZE);
			w->iov[niov].iov_len = (size_t)(t - s) * BC_SECTOR_SIZE;
			niov++;
		}
		len += (uint64_t)(t - s) * BC_SECTOR_SIZE;
		wb->cursor_sector = t;
	}
	if (!len)
		return false;
	w->zero = zero;
	w->niov = niov;
	w->start = start;
	w->len = len;
	return true;
}
