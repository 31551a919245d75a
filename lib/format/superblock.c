/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Superblock persistence (two alternating copies) and the origin label.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "core/why.h"
#include "format/superblock.h"
#include "log/staging.h"

uint64_t bc_label_offset(uint64_t origin_size)
{
	return (origin_size & ~(uint64_t)(BC_BLOCK_SIZE - 1)) - BC_BLOCK_SIZE;
}

/* Fill e->sb_buf with the next superblock generation and return its offset. */
static uint64_t sb_prepare(struct bc_engine *e)
{
	e->sb.seq++;
	bc_staging_note_sb(e, e->sb.seq); /* before it can be on the device */
	e->sb.last_seq = bc_seglog_written_seq(e);
	*e->sb_buf = e->sb;
	if (bc_sb_has_table(&e->sb))
		bc_orec_seal(e->sb_buf);
	else
		bc_sb_seal(e->sb_buf);
	return e->sb_copy_off[e->sb.seq % BC_SB_COPIES];
}

int bc_sb_write_sync(struct bc_engine *e)
{
	uint64_t off = sb_prepare(e);
	int ret;

	/* Whatever the superblock claims must be durable before it. */
	ret = bc_dev_rw_sync(e->cache, BC_DIO_FLUSH, NULL, 0, 0);
	if (!ret)
		ret = bc_dev_rw_sync(e->cache, BC_DIO_WRITE, e->sb_buf, BC_BLOCK_SIZE, off);
	if (!ret)
		ret = bc_dev_rw_sync(e->cache, BC_DIO_FLUSH, NULL, 0, 0);
	return ret;
}

struct sb_async {
	struct bc_dev_io io;
	struct bc_engine *e;
	void (*done)(struct bc_engine *e, int res);
	int stage;
};

static void sb_async_step(struct bc_dev_io *io, int res)
{
	struct sb_async *a = (struct sb_async *)io;
	struct bc_engine *e = a->e;
	void (*done)(struct bc_engine *, int) = a->done;

	if (res < 0 || a->stage == 1) {
		free(a);
		done(e, res < 0 ? res : 0);
		return;
	}
	a->stage = 1;
	bc_note_cache_flush(e);
	bc_dev_io_init(&a->io, BC_DIO_FLUSH, NULL, 0, 0, sb_async_step, a);
	bc_dev_submit(e->cache, &a->io);
}

void bc_sb_write_async(struct bc_engine *e, void (*done)(struct bc_engine *e, int res))
{
	struct sb_async *a = calloc(1, sizeof(*a));
	uint64_t off;

	if (!a) {
		done(e, -ENOMEM);
		return;
	}
	a->e = e;
	a->done = done;
	off = sb_prepare(e);
	bc_dev_io_init(&a->io, BC_DIO_WRITE, e->sb_buf, BC_BLOCK_SIZE, off, sb_async_step, a);
	bc_dev_submit(e->cache, &a->io);
}

/* Read both superblock copies of @dev into @two (8 KiB, aligned). */
int bc_sb_read(struct bc_dev *dev, struct bc_sb_disk *two)
{
	if (dev->size < 2 * BC_BLOCK_SIZE)
		return -ENOSPC;
	return bc_dev_rw_sync(dev, BC_DIO_READ, two, 2 * BC_BLOCK_SIZE, 0);
}

int bc_label_read(struct bc_dev *origin, struct bc_origin_label *l)
{
	if (origin->size < 2 * BC_BLOCK_SIZE)
		return -ENOSPC;
	return bc_dev_rw_sync(origin, BC_DIO_READ, l, BC_BLOCK_SIZE, bc_label_offset(origin->size));
}

void bc_sb_set_flags(struct bc_engine *e, uint32_t set, uint32_t clear)
{
	e->sb.flags = (e->sb.flags & ~clear) | set;
}

void bc_sb_set_mode(struct bc_engine *e, uint32_t mode)
{
	e->sb.mode = mode;
}

void bc_sb_set_written_back(struct bc_engine *e, uint64_t seq)
{
	e->sb.written_back_seq = seq;
	e->sb.written_back_epoch = e->sb.written_back_epoch_seq = 0;
}

void bc_sb_set_written_back_epoch(struct bc_engine *e, uint64_t seq, uint64_t epoch)
{
	e->sb.written_back_epoch_seq = seq;
	e->sb.written_back_epoch = epoch;
}

uint64_t bc_sb_wb_epoch(const struct bc_engine *e, uint64_t seq)
{
	return seq == e->sb.written_back_seq + 1 && seq == e->sb.written_back_epoch_seq ?
		       e->sb.written_back_epoch : 0;
}
