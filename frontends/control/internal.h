/* SPDX-License-Identifier: BSD-3-Clause */
/* Internals of the control socket server (control*.c). */
#ifndef BC_CONTROL_INTERNAL_H
#define BC_CONTROL_INTERNAL_H

#include "control.h"
#include "json.h"
#include "units.h"

#include <stdio.h>

#define CTL_LINE_MAX BC_CONTROL_LINE_MAX /* one command line */
#define CTL_OUT_MAX (1u << 20)      /* unsent reply bytes kept per connection */
#define CTL_LINE_TIMEOUT_NS (10ull * 1000 * 1000 * 1000)

struct ctl_drain;

struct ctl_conn {
	struct bc_control *ctl;
	struct bc_completion rcomp;  /* POLLIN */
	struct bc_completion wcomp;  /* POLLOUT */
	struct bc_timer timer;       /* the command line must come in time */
	bool rarmed, warmed;
	int fd;                      /* -1 once closed */
	bool got_line;               /* the command line has been read */
	bool reading;                /* still watching the socket for input / EOF */
	bool close_after;            /* close once the output is sent */
	bool stop_loop;              /* stop the server when this connection ends */
	unsigned holds;              /* callers still using it: do not free */
	size_t len;
	char in[CTL_LINE_MAX];
	struct bc_tbuf out;
	struct ctl_drain *drain;     /* the flush / detach this connection waits for */
	struct ctl_conn *next;
};

struct bc_control {
	struct bc_completion acomp;
	struct bc_loop *loop;
	int lfd;
	bool accept_armed;
	bool shut;                   /* bc_control_shutdown() ran */
	char *path;
	struct bc_control_src src;
	struct ctl_conn *conns;

	/* flush / detach requests, oldest first; each covers one origin or
	 * several, and an origin runs one drain at a time */
	struct ctl_drain *drains;
	struct bc_timer progress_timer;
	struct bc_completion kick;   /* deferred: finish completed drains, start queued ones */
	bool kick_pending;
	bool advancing;              /* finishing and starting drains (drain.c: advance) */
	bool detaching;              /* a detach of the only origin is queued or running: the
				      * server shuts down when it completes */
};

/* server.c */
/* Keep @cn allocated across calls that may close it (check cn->fd < 0). */
void ctl_conn_hold(struct ctl_conn *cn);
void ctl_conn_release(struct ctl_conn *cn);
/* Queue @len bytes of output and try to send them. */
void ctl_conn_send(struct ctl_conn *cn, const char *data, size_t len);
/* Send the rest of the output, then close. */
void ctl_conn_finish(struct ctl_conn *cn);
/* Output not yet accepted by the socket. */
size_t ctl_conn_pending(const struct ctl_conn *cn);

/* status.c: JSON arrays and null for struct bc_jw */
void ctl_jw_array(struct bc_jw *w, const char *key);
void ctl_jw_array_end(struct bc_jw *w);
void ctl_jw_null(struct bc_jw *w, const char *key);

/* commands.c: commands with one reply.  @only: the origin the command line
 * named ("origin NAME ..."), NULL: every origin (or the only one). */
void ctl_cmd_status(struct bc_control *ctl, const struct bc_control_origin *only,
		    struct bc_tbuf *out);
void ctl_cmd_get(struct bc_control *ctl, const struct bc_control_origin *only, const char *name,
		 struct bc_tbuf *out);
void ctl_cmd_set(struct bc_control *ctl, const struct bc_control_origin *only, const char *name,
		 const char *value, struct bc_tbuf *out);
void ctl_cmd_mode(struct bc_control *ctl, const struct bc_control_origin *only, const char *mode,
		  struct bc_tbuf *out);
/* origins.c: the list of origins, live attach */
void ctl_cmd_origins(struct bc_control *ctl, const struct bc_control_origin *only,
		     struct bc_tbuf *out);
void ctl_cmd_attach(struct bc_control *ctl, const char *name, const char *path,
		    const char *size, struct bc_tbuf *out);
/* An error naming @name as unknown and listing the origins served. */
void ctl_unknown_origin(struct bc_control *ctl, const char *name, struct bc_tbuf *out);

/* drain.c: flush and detach, with progress lines */
void ctl_drain_init(struct bc_control *ctl);
/* Start (or queue) a drain of origin @name (NULL: every origin, or for a
 * detach the only one) for @cn; the connection gets progress lines and
 * the final line, then is closed. */
void ctl_drain_request(struct bc_control *ctl, struct ctl_conn *cn, bool detach,
		       const char *name);
/* What the control socket is doing with origin @name. */
enum ctl_drain_state { CTL_IDLE, CTL_FLUSHING, CTL_DETACHING };
enum ctl_drain_state ctl_drain_state(const struct bc_control *ctl, const char *name);
/* @cn goes away: its drain carries on without it. */
void ctl_drain_forget_conn(struct ctl_conn *cn);
/* Server shutdown: tell waiting clients, drop queued requests. */
void ctl_drain_shutdown(struct bc_control *ctl);
/* Free what is left (after the engines are closed). */
void ctl_drain_free(struct bc_control *ctl);

#endif
