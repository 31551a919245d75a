/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Per-connection output queue: a FIFO of messages (a small inline header
 * plus an optional data pointer) written with sendmsg() and iovecs,
 * surviving partial sends.  A message's release callback runs once it has
 * been sent completely, or when the queue is dropped.
 */
#ifndef BC_NBD_OUTQ_H
#define BC_NBD_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BC_NBD_OMSG_HDR_MAX 32u

struct bc_nbd_omsg {
	struct bc_nbd_omsg *next;
	uint8_t hdr[BC_NBD_OMSG_HDR_MAX];
	uint32_t hdr_len;
	const void *data;
	size_t data_len;
	void (*release)(struct bc_nbd_omsg *m);
};

struct bc_nbd_outq {
	struct bc_nbd_omsg *head;
	struct bc_nbd_omsg **tailp;
	size_t sent;   /* bytes of @head already sent */
	size_t bytes;  /* bytes queued and not yet sent */
};

void bc_nbd_outq_init(struct bc_nbd_outq *q);
void bc_nbd_outq_push(struct bc_nbd_outq *q, struct bc_nbd_omsg *m);
static inline bool bc_nbd_outq_empty(const struct bc_nbd_outq *q)
{
	return q->head == NULL;
}

/* One non-blocking sendmsg() of as much as possible.  Returns the bytes
 * sent (> 0), 0 when the queue is empty, -EAGAIN, or -errno. */
long bc_nbd_outq_send(struct bc_nbd_outq *q, int fd);

/* Release every queued message without sending it. */
void bc_nbd_outq_drop(struct bc_nbd_outq *q);

/* A message owning a copy of @len bytes (released with free()). */
struct bc_nbd_omsg *bc_nbd_omsg_new_copy(const void *p, size_t len);

#endif
