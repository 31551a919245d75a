/* SPDX-License-Identifier: BSD-3-Clause */
/* Shared internals of the NBD server frontend (server, conn, xmit, listen). */
#ifndef BC_NBD_INTERNAL_H
#define BC_NBD_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "blkcache/loop.h"
#include "blkcache/nbd.h"
#include "blkcache/target.h"
#include "counter.h"
#include "handshake.h"
#include "outq.h"
#include "proto.h"

#define BC_NBD_DEFAULT_INFLIGHT 128u
#define BC_NBD_MAX_LISTENERS    8u
/* Receive staging buffer of a connection. */
#define BC_NBD_RXBUF_SIZE       (64u * 1024u)
/* Payload bytes a connection may hold (requests received and not yet
 * answered) before it stops reading new requests. */
#define BC_NBD_CONN_BYTES_MAX   (128u * 1024u * 1024u)
/* Handshake replies queued before reading further options pauses. */
#define BC_NBD_HS_OUT_MAX       (1024u * 1024u)
/* A WRITE whose payload cannot be accepted is read and thrown away when it
 * is at most this large; larger ones close the connection. */
#define BC_NBD_DISCARD_MAX      (64u * 1024u * 1024u)
/* Idle requests a connection keeps for reuse, with their payload buffers
 * if those are at most BC_NBD_KEEP_BUF_MAX and BC_NBD_CACHE_BYTES_MAX in
 * all. */
#define BC_NBD_FREE_REQS_MAX    64u
#define BC_NBD_KEEP_BUF_MAX     (256u * 1024u)
#define BC_NBD_CACHE_BYTES_MAX  (2u * 1024u * 1024u)
/* After bc_nbd_server_shutdown() or the removal of their export,
 * connections that have not finished within this time are closed hard. */
#define BC_NBD_SHUTDOWN_GRACE_NS (10ull * 1000 * 1000 * 1000)
/* Retry delay of accept() after running out of descriptors or memory. */
#define BC_NBD_ACCEPT_RETRY_NS  (100ull * 1000 * 1000)

struct bc_nbd_conn;
struct bc_nbd_listener;

/*
 * One export: a name and the target behind it.  The server holds a
 * reference while the export is offered, each connection bound to it one
 * more; the last bc_nbd_exp_put() frees it.  A removed export therefore
 * lives on while connections drain from it, and may outlive the server
 * (connections orphaned by bc_nbd_server_free()).
 */
struct bc_nbd_exp {
	struct bc_nbd_export info;    /* what the handshake answers; info.next
				       * links the server's exports */
	struct bc_nbd_limits limits;  /* what the transmission phase enforces */
	const struct bc_target *target;
	uint64_t chunk_max;           /* largest TRIM / WRITE_ZEROES piece */
	unsigned refs;
	/* Where its connections run, in turn (places[0]: @target on the
	 * server's loop, unless added with bc_nbd_server_add_export_spread). */
	struct bc_target_place places[BC_TARGET_MAX_PLACES];
	unsigned nplaces, next_place;
	/* the name and description follow, NUL-terminated */
};

struct bc_nbd_server {
	struct bc_loop *loop;
	/* The exports offered, in the order added (struct bc_nbd_exp);
	 * the first is the default export. */
	struct bc_nbd_export *exports;
	/* One fixed export of a server set up by hand (the fuzzer builds one
	 * from conn.c and xmit.c without server.c): used only while @exports
	 * is NULL and @target is set.  server.c never sets them. */
	const struct bc_target *target;
	struct bc_nbd_export exp;
	struct bc_nbd_limits limits;
	uint64_t chunk_max;
	char *unix_path;         /* NULL: none bound */
	dev_t unix_dev;
	ino_t unix_ino;
	unsigned max_inflight;
	struct bc_nbd_listener *listeners[BC_NBD_MAX_LISTENERS];
	unsigned n_listeners;
	struct bc_nbd_conn *conns;
	unsigned next_conn_id;
	bool shutting_down;
	struct bc_timer grace;   /* kills connections past their kill_at */
	struct bc_nbd_stats stats;
};

struct bc_nbd_listener {
	struct bc_nbd_server *srv; /* NULL once the server is freed */
	int fd;
	struct bc_completion poll;
	bool poll_armed;
	bool closed;
	struct bc_timer retry;
	struct bc_loop *loop;
};

/* One NBD request of a connection. */
struct bc_nbd_req {
	struct bc_request breq;  /* what the target sees */
	struct bc_nbd_conn *conn;
	struct bc_nbd_omsg out;  /* the simple reply (+ read data) */
	struct bc_nbd_req *next_free;
	uint64_t handle;
	uint64_t offset;
	uint32_t length;
	uint32_t got;            /* WRITE payload bytes received */
	uint16_t type;
	uint16_t flags;
	uint32_t error;          /* NBD error to reply with */
	uint64_t pos;            /* TRIM / WRITE_ZEROES: next byte to submit */
	bool flush_after;        /* TRIM with FUA: flush before replying */
	void *buf;
	size_t cap;
};

enum bc_nbd_rx_state {
	BC_NBD_RX_CLIENT_FLAGS = 0,
	BC_NBD_RX_OPT_HDR,
	BC_NBD_RX_OPT_DATA,
	BC_NBD_RX_OPT_SKIP,
	BC_NBD_RX_REQ_HDR,
	BC_NBD_RX_REQ_DATA,
	BC_NBD_RX_REQ_SKIP,
};

/*
 * A connection runs on the server's loop until the handshake ends; one
 * whose export places it on another loop then moves there (move.c) and is
 * "remote" from then on: that loop's thread owns it, and the server's
 * thread touches only the fields marked (server) and the atomics, and
 * reaches it through messages (drain, kill); it comes back in a message
 * when it is done, and the server unlinks it.
 */
struct bc_nbd_conn {
	struct bc_nbd_server *srv;  /* (server) NULL once orphaned by server_free */
	struct bc_nbd_conn *prev, *next; /* (server) */
	struct bc_loop *loop;       /* where it runs now */
	struct bc_loop *home;       /* the server's loop */
	/* The export chosen (NULL: none yet, or the server's fixed one), and
	 * what the transmission phase uses of it. */
	struct bc_nbd_exp *exp;
	const struct bc_target *target;
	const struct bc_nbd_limits *limits;
	int fd;
	unsigned id;
	uint64_t kill_at;   /* (server) CLOCK_MONOTONIC ns: closed hard then (0: never) */

	/* Moving to another loop (move.c) */
	const struct bc_target_place *place; /* its export's place for it */
	bool moving;        /* (server) waits for its callbacks, then moves */
	bool remote;        /* set before the move, never cleared */
	bool kill_sent;     /* (server) remote: told to close hard */
	bool returned;      /* (its loop) done there: on its way back */
	struct bc_msg move_msg, op_msg, gone_msg;
	atomic_uint ops;    /* remote: what the server asks (move.c) */
	atomic_bool op_queued; /* op_msg is on its way */
	atomic_uint refs;   /* 1 + op_msg on its way: the last one frees it */

	/* Counters the server adds up (written by its loop's thread only) */
	uint64_t requests;
	uint64_t protocol_errors;

	bool transmission;  /* handshake done */
	bool no_zeroes;
	bool rx_stop;       /* read nothing more */
	bool rx_paused;     /* reading waits for replies to drain */
	bool closing;       /* close once everything in flight is answered */
	bool dead;          /* hard-closed: only waiting for callbacks */

	/* receive side */
	enum bc_nbd_rx_state rx_state;
	uint8_t *rxbuf;
	size_t rx_head, rx_tail;
	uint32_t opt;       /* option being received */
	uint32_t opt_len;
	uint32_t opt_got;
	uint8_t *opt_data;
	uint64_t skip_left; /* bytes still to discard */
	struct bc_nbd_req *cur; /* WRITE whose payload is being received */

	/* loop hooks */
	struct bc_completion rd_poll, wr_poll, flush;
	bool rd_armed, wr_armed, flush_queued;
	bool rd_cancelled, wr_cancelled;

	struct bc_nbd_outq outq;

	/* requests */
	unsigned max_inflight;
	uint64_t chunk_max;     /* largest TRIM / WRITE_ZEROES piece for the target */
	unsigned live_reqs;     /* allocated: being received, at target or queued */
	uint64_t live_bytes;    /* their payload bytes */
	unsigned at_target;
	struct bc_nbd_req *free_reqs;
	unsigned n_free_reqs;
	size_t cached_bytes;    /* payload buffers held by free_reqs */
};

/* conn.c */
/* Drop a reference to @e; the last one frees it. */
void bc_nbd_exp_put(struct bc_nbd_exp *e);
int bc_nbd_conn_start(struct bc_nbd_server *srv, int fd);
/* The server's view (its thread): not closed hard (nor told to be). */
bool bc_nbd_conn_open(const struct bc_nbd_conn *c);
/* Server shutdown: handshaking connections close, others finish.  This
 * and bc_nbd_conn_kill() are for the server's thread; on a remote
 * connection they send the order to its loop (the _here versions run it
 * there). */
void bc_nbd_conn_shutdown(struct bc_nbd_conn *c);
void bc_nbd_conn_shutdown_here(struct bc_nbd_conn *c);
void bc_nbd_conn_kill_here(struct bc_nbd_conn *c);
/* Cancel its readiness waits: true once nothing of it is pending on its
 * loop (no poll, no deferred flush, no request at the target). */
bool bc_nbd_conn_quiet(struct bc_nbd_conn *c);
/* Moved in: read what is buffered and go on (on its new loop). */
void bc_nbd_conn_resume(struct bc_nbd_conn *c);
/* Unlink a finished connection from its server and drop its export (the
 * server's thread); then free it, or (remote) release its socket and
 * buffers first (its own loop's thread). */
void bc_nbd_conn_unlink(struct bc_nbd_conn *c);
void bc_nbd_conn_release_io(struct bc_nbd_conn *c);

/* move.c */
enum { BC_NBD_OP_DRAIN = 1u, BC_NBD_OP_KILL = 2u };
/* Server thread: the export chose a place on another loop (c->place). */
void bc_nbd_move_start(struct bc_nbd_conn *c);
/* Server thread: a moving connection's settle: moves it once nothing of
 * it is left on this loop. */
void bc_nbd_move_settle(struct bc_nbd_conn *c);
/* Server thread: ask a remote connection's loop to drain it or kill it. */
void bc_nbd_move_op(struct bc_nbd_conn *c, unsigned op);
/* Its loop's thread: a remote connection is done; back to the server. */
void bc_nbd_move_return(struct bc_nbd_conn *c);
/* Drop a reference (either thread); the last frees @c's memory. */
void bc_nbd_conn_unref(struct bc_nbd_conn *c);
/* NBD_CMD_DISC: read nothing more, close once in-flight requests are
 * answered.  Does not settle (called from inside request parsing). */
void bc_nbd_conn_disconnect(struct bc_nbd_conn *c);
/* Close at once (replies not sent are dropped). */
void bc_nbd_conn_kill(struct bc_nbd_conn *c);
/* Re-evaluate a connection after any event; may free it. */
void bc_nbd_conn_settle(struct bc_nbd_conn *c);
/* Note malformed data from the peer and close.  Neither this nor
 * bc_nbd_conn_fail() settles: both are safe inside request parsing. */
void bc_nbd_conn_protocol_error(struct bc_nbd_conn *c, const char *what);
/* Close after a local failure (out of memory, ...). */
void bc_nbd_conn_fail(struct bc_nbd_conn *c, const char *what);

/* xmit.c */
/* A request header was received; sets up payload reception or submits. */
int bc_nbd_xmit_request(struct bc_nbd_conn *c, const struct bc_nbd_request_hdr *h);
/* The payload of c->cur is complete. */
void bc_nbd_xmit_payload_done(struct bc_nbd_conn *c);
/* The skipped payload of c->cur has been discarded: reply with its error. */
void bc_nbd_xmit_skip_done(struct bc_nbd_conn *c);
/* Give back a request that never reached the reply queue. */
void bc_nbd_req_release(struct bc_nbd_req *r);
/* Free the cached requests of a connection. */
void bc_nbd_xmit_free_cache(struct bc_nbd_conn *c);

/* listen.c */
int bc_nbd_listen_unix(const char *path, int *fd_out, dev_t *dev, ino_t *ino);
/* Binds every address HOST:PORT resolves to; fills up to @max fds. */
int bc_nbd_listen_tcp(const char *addr, int *fds, unsigned max, unsigned *n_out);

#endif
