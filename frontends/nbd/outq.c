/* SPDX-License-Identifier: BSD-3-Clause */
/* Output queue of a connection: gathered, non-blocking, partial-send safe. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "outq.h"

#define OUTQ_IOV_MAX 64

void bc_nbd_outq_init(struct bc_nbd_outq *q)
{
	q->head = NULL;
	q->tailp = &q->head;
	q->sent = 0;
	q->bytes = 0;
}

void bc_nbd_outq_push(struct bc_nbd_outq *q, struct bc_nbd_omsg *m)
{
	if (m->hdr_len + m->data_len == 0) {
		m->release(m); /* nothing to send: complete at once */
		return;
	}
	m->next = NULL;
	*q->tailp = m;
	q->tailp = &m->next;
	q->bytes += m->hdr_len + m->data_len;
}

static struct bc_nbd_omsg *pop(struct bc_nbd_outq *q)
{
	struct bc_nbd_omsg *m = q->head;

	q->head = m->next;
	if (!q->head)
		q->tailp = &q->head;
	q->sent = 0;
	return m;
}

/* Fill @iov with the unsent parts of the queue, starting @skip bytes into
 * the head message. */
static int gather(const struct bc_nbd_outq *q, struct iovec *iov)
{
	const struct bc_nbd_omsg *m;
	size_t skip = q->sent;
	int n = 0;

	for (m = q->head; m && n < OUTQ_IOV_MAX - 1; m = m->next) {
		if (skip < m->hdr_len) {
			iov[n].iov_base = (void *)(m->hdr + skip);
			iov[n].iov_len = m->hdr_len - skip;
			n++;
			skip = 0;
		} else {
			skip -= m->hdr_len;
		}
		if (skip < m->data_len) {
			iov[n].iov_base = (void *)((const uint8_t *)m->data + skip);
			iov[n].iov_len = m->data_len - skip;
			n++;
		}
		skip = 0;
	}
	return n;
}

long bc_nbd_outq_send(struct bc_nbd_outq *q, int fd)
{
	struct iovec iov[OUTQ_IOV_MAX];
	struct msghdr msg;
	ssize_t n;
	size_t left;

	if (!q->head)
		return 0;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = iov;
	msg.msg_iovlen = (size_t)gather(q, iov);
	do {
		n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;

	q->bytes -= (size_t)n;
	left = (size_t)n;
	while (left > 0) {
		struct bc_nbd_omsg *m = q->head;
		size_t rest = m->hdr_len + m->data_len - q->sent;

		if (left < rest) {
			q->sent += left;
			break;
		}
		left -= rest;
		m = pop(q);
		m->release(m);
	}
	return (long)n;
}

void bc_nbd_outq_drop(struct bc_nbd_outq *q)
{
	while (q->head) {
		struct bc_nbd_omsg *m = pop(q);

		m->release(m);
	}
	q->bytes = 0;
}

static void release_free(struct bc_nbd_omsg *m)
{
	free(m);
}

struct bc_nbd_omsg *bc_nbd_omsg_new_copy(const void *p, size_t len)
{
	struct bc_nbd_omsg *m = malloc(sizeof(*m) + len);

	if (!m)
		return NULL;
	memset(m, 0, sizeof(*m));
	memcpy(m + 1, p, len);
	m->data = m + 1;
	m->data_len = len;
	m->release = release_free;
	return m;
}
