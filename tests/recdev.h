/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A recording in-memory device driver for tests ("rec:NAME").
 *
 * Images live in RAM as tables of 4 KiB pages (NULL: zeroes) that can be
 * cloned copy-on-write, so building many power-cut images is cheap.  An
 * image is attached under a name; the engine opens "rec:NAME".
 *
 * Recording devices append every WRITE/DISCARD/ZERO/FLUSH to rec_log, in
 * one global order across all devices, with the data as submitted and the
 * positions (rec_clock_tick) of submission and completion.  They complete
 * IO in a random order after random delays (counted in loop rounds, from a
 * seeded generator, so a run is reproducible); data reaches the image at
 * completion and reads are served from the image at completion.  Plain
 * devices complete everything in submission order in the next loop round.
 * Delaying devices (REC_DELAY) record nothing but give every IO its own
 * delay, drawn at submission from a heavy-tailed distribution (most IOs
 * complete within a few rounds, one in a few hundred only after up to
 * 2000), so IOs overtake each other by long stretches: a read issued early
 * may complete after many later writes to the same place.  Their reads
 * copy the image at completion and their writes take the data from the
 * caller's buffer at completion, so a buffer or position reused while an
 * IO of it is in flight shows up in the data.
 * Completions are always delivered from the loop (bc_loop_defer).
 */
#ifndef BC_TEST_RECDEV_H
#define BC_TEST_RECDEV_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#define REC_PAGE   4096u
#define REC_NEVER  UINT64_MAX
#define REC_MAXDEV 4u

struct rec_img {
	uint64_t size;    /* bytes, a multiple of REC_PAGE */
	uint64_t npages;
	uint8_t **page;   /* page[i]: REC_PAGE bytes, or NULL for zeroes */
	uint8_t *own;     /* page[i] belongs to (is freed with) this image */
};

struct rec_img *rec_img_new(uint64_t size);
/* A copy sharing @src's pages copy-on-write: @src must not change while
 * the clone is in use. */
struct rec_img *rec_img_clone(const struct rec_img *src);
struct rec_img *rec_img_copy(const struct rec_img *src); /* deep copy */
void rec_img_free(struct rec_img *img);
void rec_img_read(const struct rec_img *img, uint64_t off, void *buf, uint64_t len);
void rec_img_write(struct rec_img *img, uint64_t off, const void *buf, uint64_t len);
void rec_img_zero(struct rec_img *img, uint64_t off, uint64_t len);

/* One recorded device IO (never READ). */
struct rec_ev {
	uint8_t dev;        /* attach id */
	uint8_t op;         /* BC_DIO_WRITE, _FLUSH, _DISCARD, _ZERO */
	uint64_t off, len;
	uint64_t submit;    /* global positions */
	uint64_t complete;  /* REC_NEVER while in flight */
	uint8_t *data;      /* WRITE: the data as submitted (len bytes) */
};

struct rec_log {
	struct rec_ev *ev;
	size_t n, cap;
	uint64_t overlaps;  /* writes submitted over an overlapping write in flight */
	uint64_t modified;  /* write buffers changed between submission and completion */
	uint64_t digest;    /* hash of the event order, to check reproducibility */
};
extern struct rec_log rec_log;

/* The global order: positions shared by device IO and client requests. */
uint64_t rec_clock_tick(void); /* take the next position */
uint64_t rec_clock_now(void);  /* the next position to be taken */

/* A device registry holding the driver ("rec:NAME" paths) for the engine's
 * and format's configs (rec_register: create it; idempotent). */
void rec_register(void);
const struct bc_dev_registry *rec_devices(void);
void rec_seed(uint64_t seed);
/* Make @img available as "rec:@name" with attach id @id (< REC_MAXDEV).
 * The image stays the caller's.  @record: log its IO, random completion. */
void rec_attach(unsigned id, const char *name, struct rec_img *img, bool record);
enum rec_mode { REC_PLAIN, REC_RECORD, REC_DELAY };
void rec_attach_mode(unsigned id, const char *name, struct rec_img *img, enum rec_mode mode);
void rec_detach(unsigned id);
/* Completion delays of recording devices: each round completes every
 * pending IO with probability 1/@spread (at least one). */
void rec_set_spread(unsigned spread);
unsigned rec_pending(void); /* submitted, not completed, on all open devices */
void rec_log_reset(void);   /* free the log and restart the clock */

#endif
