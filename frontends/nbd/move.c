/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Connections that run on another loop than the server's (an export's
 * places, bc_nbd_server_add_export_spread): the move after the handshake,
 * the server's orders to a moved ("remote") connection, and its return.
 *
 * Move: once the client chose an export placed elsewhere, the connection
 * reads nothing more here, cancels its polls, and when every callback of
 * it has come back it is posted to its place's loop, which re-arms it
 * there and parses what was already buffered.  From then on that loop's
 * thread owns it.  The server keeps it in its list (exports count their
 * connections, status counts requests) and reaches it only through
 * messages: a drain (shutdown, export removed) or a kill (grace period
 * over, server freed) -- bits in @ops, carried by one message at a time.
 * Return: when it is finished there, it releases its socket and buffers
 * and posts itself back; the server's thread unlinks it and drops its
 * export.  Its memory goes with the last reference: its own, or an order
 * still on its way.
 */
#include <stdlib.h>

#include "blkcache/log.h"
#include "internal.h"

void bc_nbd_conn_unref(struct bc_nbd_conn *c)
{
	if (atomic_fetch_sub(&c->refs, 1) == 1)
		free(c);
}

/* Its new loop: take it over. */
static void move_arrive(struct bc_completion *comp, int res)
{
	struct bc_nbd_conn *c = BC_CONTAINER_OF(comp, struct bc_nbd_conn, move_msg.c);

	(void)res;
	c->loop = c->place->loop;
	bc_loop_log(c->loop, BC_LOG_DEBUG, "nbd: conn %u: moved to its export's place", c->id);
	bc_nbd_conn_resume(c);
}

void bc_nbd_move_start(struct bc_nbd_conn *c)
{
	c->moving = true;
}

void bc_nbd_move_settle(struct bc_nbd_conn *c)
{
	if (!bc_nbd_conn_quiet(c))
		return; /* a callback still to come settles again */
	c->moving = false;
	c->remote = true;
	if (c->srv)
		c->srv->stats.connections_moved++;
	c->move_msg.c.fn = move_arrive;
	bc_loop_post(c->loop, c->place->loop, &c->move_msg, 0);
}

/* Its loop: the server's orders. */
static void op_arrive(struct bc_completion *comp, int res)
{
	struct bc_nbd_conn *c = BC_CONTAINER_OF(comp, struct bc_nbd_conn, op_msg.c);
	unsigned ops;

	(void)res;
	/* In this order: an order the server adds after this exchange
	 * comes in a message of its own. */
	atomic_store(&c->op_queued, false);
	ops = atomic_exchange(&c->ops, 0);
	if (!c->returned) {
		if (ops & BC_NBD_OP_KILL)
			bc_nbd_conn_kill_here(c);
		else if (ops & BC_NBD_OP_DRAIN)
			bc_nbd_conn_shutdown_here(c);
	}
	bc_nbd_conn_unref(c);
}

void bc_nbd_move_op(struct bc_nbd_conn *c, unsigned op)
{
	if (op & BC_NBD_OP_KILL)
		c->kill_sent = true;
	atomic_fetch_or(&c->ops, op);
	if (atomic_exchange(&c->op_queued, true))
		return; /* the message on its way takes it */
	atomic_fetch_add(&c->refs, 1);
	c->op_msg.c.fn = op_arrive;
	bc_loop_post(c->home, c->place->loop, &c->op_msg, 0);
}

/* The server's loop: a remote connection is done. */
static void gone_arrive(struct bc_completion *comp, int res)
{
	struct bc_nbd_conn *c = BC_CONTAINER_OF(comp, struct bc_nbd_conn, gone_msg.c);

	(void)res;
	bc_nbd_conn_unlink(c);
	bc_nbd_conn_unref(c);
}

void bc_nbd_move_return(struct bc_nbd_conn *c)
{
	c->returned = true;
	bc_loop_log(c->loop, BC_LOG_DEBUG, "nbd: conn %u: closed on its place; back to the server",
		    c->id);
	bc_nbd_conn_release_io(c);
	c->gone_msg.c.fn = gone_arrive;
	bc_loop_post(c->loop, c->home, &c->gone_msg, 0);
}
