/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control socket of a running server: a unix socket (mode 0600) taking
 * one command line per connection.  Most commands answer with one JSON
 * object and close; "flush" and "detach" stream JSON lines until done.
 * Everything runs on the server's loop; no call blocks.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "sockutil.h"
#include "internal.h"

#define CTL_MAX_CONNS 64
#define CTL_MAX_ARGS 6

static void conn_flush_out(struct ctl_conn *cn);

/* ---- connection lifetime ---- */

static void conn_destroy(struct ctl_conn *cn)
{
	struct ctl_conn **pp;

	bc_loop_timer_cancel(cn->ctl->loop, &cn->timer);
	for (pp = &cn->ctl->conns; *pp; pp = &(*pp)->next)
		if (*pp == cn) {
			*pp = cn->next;
			break;
		}
	bc_tbuf_free(&cn->out);
	free(cn);
}

/* A closed connection is freed once no poll and no caller refers to it. */
static void conn_maybe_destroy(struct ctl_conn *cn)
{
	if (cn->fd < 0 && !cn->rarmed && !cn->warmed && !cn->holds)
		conn_destroy(cn);
}

void ctl_conn_hold(struct ctl_conn *cn)
{
	cn->holds++;
}

void ctl_conn_release(struct ctl_conn *cn)
{
	cn->holds--;
	conn_maybe_destroy(cn);
}

/* Close now; the memory goes when the cancelled polls have completed and
 * nobody holds it. */
static void conn_kill(struct ctl_conn *cn)
{
	struct bc_control *ctl = cn->ctl;
	char sink[512];
	int i;

	if (cn->fd < 0)
		return;
	bc_loop_timer_cancel(ctl->loop, &cn->timer);
	if (cn->drain)
		ctl_drain_forget_conn(cn);
	if (cn->rarmed)
		bc_loop_poll_cancel(ctl->loop, &cn->rcomp);
	if (cn->warmed)
		bc_loop_poll_cancel(ctl->loop, &cn->wcomp);
	/* Unread input would make the close reset the connection, and the
	 * client could lose its reply. */
	for (i = 0; i < 64 && read(cn->fd, sink, sizeof(sink)) > 0; i++)
		;
	close(cn->fd);
	cn->fd = -1;
	if (cn->stop_loop) {
		cn->stop_loop = false;
		bc_loop_stop(ctl->loop);
	}
	conn_maybe_destroy(cn);
}

size_t ctl_conn_pending(const struct ctl_conn *cn)
{
	return cn->out.len;
}

void ctl_conn_send(struct ctl_conn *cn, const char *data, size_t len)
{
	if (cn->fd < 0)
		return;
	if (cn->out.len + len > CTL_OUT_MAX) {
		/* The client does not read: give up on it. */
		conn_kill(cn);
		return;
	}
	bc_tbuf_add(&cn->out, data, len);
	if (cn->out.failed) {
		conn_kill(cn);
		return;
	}
	conn_flush_out(cn);
}

void ctl_conn_finish(struct ctl_conn *cn)
{
	cn->close_after = true;
	cn->reading = false;
	conn_flush_out(cn);
}

static void conn_flush_out(struct ctl_conn *cn)
{
	while (cn->fd >= 0 && cn->out.len) {
		ssize_t n = send(cn->fd, cn->out.p, cn->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			bc_tbuf_consume(&cn->out, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if (!cn->warmed) {
				if (bc_loop_poll_add(cn->ctl->loop, cn->fd, POLLOUT, &cn->wcomp) < 0) {
					conn_kill(cn);
					return;
				}
				cn->warmed = true;
			}
			return;
		}
		/* EPIPE, ECONNRESET: the client went away. */
		conn_kill(cn);
		return;
	}
	if (cn->fd >= 0 && !cn->out.len && cn->close_after)
		conn_kill(cn);
}

/* ---- commands ---- */

static void reply(struct ctl_conn *cn, struct bc_tbuf *out)
{
	if (out->failed) {
		bc_tbuf_free(out);
		bc_json_error(out, "out of memory");
	}
	ctl_conn_send(cn, out->p, out->len);
	bc_tbuf_free(out);
	ctl_conn_finish(cn);
}

#define CTL_COMMANDS "status, get, set, mode, flush, detach, origins, attach"
#define CTL_USAGE "[origin NAME] status | get [TUNABLE] | set TUNABLE VALUE | mode MODE | " \
	"flush | detach | origins; attach NAME PATH [SIZE]"

static bool is_cmd(const char *s)
{
	static const char *const cmds[] = { "status", "get", "set", "mode", "flush", "detach",
					    "origins", "attach" };
	size_t i;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(s, cmds[i]))
			return true;
	return false;
}

/* Run one command (after "origin NAME", if given: @only, @oname).  False if
 * it streams its replies itself (flush, detach). */
static bool run_command(struct ctl_conn *cn, const struct bc_control_origin *only,
			const char *oname, int argc, char **argv, struct bc_tbuf *out)
{
	struct bc_control *ctl = cn->ctl;
	const char *cmd = argv[0];

	if (!strcmp(cmd, "status") && argc == 1) {
		ctl_cmd_status(ctl, only, out);
	} else if (!strcmp(cmd, "get") && argc <= 2) {
		ctl_cmd_get(ctl, only, argc == 2 ? argv[1] : NULL, out);
	} else if (!strcmp(cmd, "set") && argc == 3) {
		ctl_cmd_set(ctl, only, argv[1], argv[2], out);
	} else if (!strcmp(cmd, "mode") && argc == 2) {
		ctl_cmd_mode(ctl, only, argv[1], out);
	} else if (!strcmp(cmd, "origins") && argc == 1) {
		ctl_cmd_origins(ctl, only, out);
	} else if (!strcmp(cmd, "attach") && only) {
		bc_json_error(out, "attach names the new origin itself: attach NAME PATH [SIZE] "
			       "(without 'origin NAME' before it)");
	} else if (!strcmp(cmd, "attach") && (argc == 3 || argc == 4)) {
		ctl_cmd_attach(ctl, argv[1], argv[2], argc == 4 ? argv[3] : NULL, out);
	} else if ((!strcmp(cmd, "flush") || !strcmp(cmd, "detach")) && argc == 1) {
		/* Streams; keep watching the socket to notice the client leaving. */
		ctl_drain_request(ctl, cn, cmd[0] == 'd', oname);
		return false;
	} else if (is_cmd(cmd)) {
		bc_json_error(out, "wrong arguments for '%s'; usage: " CTL_USAGE, cmd);
	} else {
		bc_json_error(out, "unknown command '%s'; known: " CTL_COMMANDS, cmd);
	}
	return true;
}

static void conn_dispatch(struct ctl_conn *cn, bool truncated)
{
	struct bc_control *ctl = cn->ctl;
	const struct bc_control_origin *only = NULL;
	struct bc_tbuf out = { 0 };
	char *argv[CTL_MAX_ARGS + 1], *save = NULL, *tok, **av = argv;
	const char *oname = NULL;
	bool too_many;
	int argc = 0;

	cn->in[cn->len] = 0;
	cn->in[strcspn(cn->in, "\r\n")] = 0;
	if (truncated) {
		bc_json_error(&out, "command line too long (at most %d bytes)", CTL_LINE_MAX - 2);
		reply(cn, &out);
		return;
	}
	for (tok = strtok_r(cn->in, " \t", &save); tok && argc <= CTL_MAX_ARGS;
	     tok = strtok_r(NULL, " \t", &save))
		argv[argc++] = tok;
	too_many = argc > CTL_MAX_ARGS;
	if (argc >= 1 && !strcmp(argv[0], "origin")) {
		/* "origin NAME COMMAND ...": the command for that origin alone */
		if (argc < 3) {
			bc_json_error(&out, "'origin NAME' must be followed by a command (%s)",
				      "status, get, set, mode, flush, detach, origins");
			reply(cn, &out);
			return;
		}
		oname = argv[1];
		only = bc_control_find(&ctl->src, oname);
		if (!only) {
			ctl_unknown_origin(ctl, oname, &out);
			reply(cn, &out);
			return;
		}
		av += 2;
		argc -= 2;
	}
	if (argc == 0)
		bc_json_error(&out, "empty command; known: " CTL_COMMANDS);
	else if (too_many)
		bc_json_error(&out, "too many arguments for '%s'; usage: " CTL_USAGE, av[0]);
	else if (!run_command(cn, only, oname, argc, av, &out))
		return;
	reply(cn, &out);
}

/* ---- socket events ---- */

static void conn_arm_read(struct ctl_conn *cn)
{
	if (cn->fd < 0 || !cn->reading || cn->rarmed)
		return;
	if (bc_loop_poll_add(cn->ctl->loop, cn->fd, POLLIN, &cn->rcomp) < 0) {
		conn_kill(cn);
		return;
	}
	cn->rarmed = true;
}

static void conn_do_read(struct ctl_conn *cn)
{
	char scratch[512];

	while (cn->fd >= 0 && cn->reading) {
		ssize_t n;

		if (!cn->got_line)
			n = read(cn->fd, cn->in + cn->len, sizeof(cn->in) - 1 - cn->len);
		else
			n = read(cn->fd, scratch, sizeof(scratch)); /* ignored */
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n > 0 && cn->got_line)
			continue;
		if (n > 0) {
			cn->len += (size_t)n;
			if (memchr(cn->in, '\n', cn->len)) {
				cn->got_line = true;
				bc_loop_timer_cancel(cn->ctl->loop, &cn->timer);
				conn_dispatch(cn, false);
			} else if (cn->len == sizeof(cn->in) - 1) {
				cn->got_line = true;
				bc_loop_timer_cancel(cn->ctl->loop, &cn->timer);
				conn_dispatch(cn, true);
			}
			continue;
		}
		/* End of input (or an error): a command without '\n' still counts. */
		if (!cn->got_line) {
			if (cn->len == 0 || n < 0) {
				conn_kill(cn);
				return;
			}
			cn->got_line = true;
			bc_loop_timer_cancel(cn->ctl->loop, &cn->timer);
			conn_dispatch(cn, false);
		}
		/* A client that half-closed still reads; one that is gone makes the
		 * next send fail. */
		cn->reading = false;
	}
	conn_arm_read(cn);
}

static void conn_on_read(struct bc_completion *c, int res)
{
	struct ctl_conn *cn = BC_CONTAINER_OF(c, struct ctl_conn, rcomp);

	cn->rarmed = false;
	ctl_conn_hold(cn);
	if (cn->fd >= 0) {
		if (res < 0)
			conn_kill(cn);
		else
			conn_do_read(cn);
	}
	ctl_conn_release(cn);
}

static void conn_on_write(struct bc_completion *c, int res)
{
	struct ctl_conn *cn = BC_CONTAINER_OF(c, struct ctl_conn, wcomp);

	cn->warmed = false;
	ctl_conn_hold(cn);
	if (cn->fd >= 0) {
		if (res < 0)
			conn_kill(cn);
		else
			conn_flush_out(cn);
	}
	ctl_conn_release(cn);
}

static void conn_timeout(struct bc_timer *t)
{
	struct ctl_conn *cn = BC_CONTAINER_OF(t, struct ctl_conn, timer);

	conn_kill(cn);
}

/* Room for one more connection: at the limit, the oldest one that has not
 * sent its command yet goes.  False if all are busy. */
static bool conn_room(struct bc_control *ctl)
{
	struct ctl_conn *cn, *idle = NULL;
	unsigned n = 0;

	for (cn = ctl->conns; cn; cn = cn->next) {
		if (cn->fd < 0)
			continue;
		n++;
		if (!cn->got_line)
			idle = cn; /* the list is newest first */
	}
	if (n < CTL_MAX_CONNS)
		return true;
	if (!idle)
		return false;
	conn_kill(idle);
	return true;
}

static void accept_ready(struct bc_completion *c, int res)
{
	struct bc_control *ctl = (struct bc_control *)c;
	int fd;

	ctl->accept_armed = false;
	if (res < 0 || ctl->lfd < 0)
		return;
	while ((fd = accept4(ctl->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		struct ctl_conn *cn;

		if (!conn_room(ctl) || !(cn = calloc(1, sizeof(*cn)))) {
			close(fd);
			continue;
		}
		cn->fd = fd;
		cn->ctl = ctl;
		cn->reading = true;
		cn->rcomp.fn = conn_on_read;
		cn->wcomp.fn = conn_on_write;
		cn->timer.fn = conn_timeout;
		cn->next = ctl->conns;
		ctl->conns = cn;
		bc_loop_timer_arm(ctl->loop, &cn->timer, CTL_LINE_TIMEOUT_NS);
		conn_arm_read(cn);
	}
	if (bc_loop_poll_add(ctl->loop, ctl->lfd, POLLIN, &ctl->acomp) == 0)
		ctl->accept_armed = true;
}

/* ---- setup and teardown ---- */

int bc_control_open(struct bc_control **out, struct bc_loop *loop, const char *path,
		     const struct bc_control_src *src, char *why, size_t whylen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct bc_control *ctl;
	struct stat st;
	int fd, ret;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(why, whylen, "control socket path %s is too long", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	if (bc_unix_socket_live(path, "ping\n", 1000)) {
		snprintf(why, whylen, "control socket %s is in use by another running blkcache; "
			 "give this one its own --control PATH", path);
		return -EADDRINUSE;
	}
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		snprintf(why, whylen, "control socket path %s exists and is not a socket; "
			 "refusing to replace it", path);
		return -EEXIST;
	}
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		snprintf(why, whylen, "cannot create control socket %s: %s", path, strerror(-ret));
		return ret;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 ||
	    listen(fd, 16) < 0) {
		ret = -errno;
		snprintf(why, whylen, "cannot create control socket %s: %s", path, strerror(-ret));
		close(fd);
		return ret;
	}
	ctl = calloc(1, sizeof(*ctl));
	if (!ctl || !(ctl->path = strdup(path))) {
		free(ctl);
		close(fd);
		unlink(path);
		snprintf(why, whylen, "cannot create control socket %s: out of memory", path);
		return -ENOMEM;
	}
	ctl->loop = loop;
	ctl->lfd = fd;
	ctl->src = *src;
	ctl->acomp.fn = accept_ready;
	ctl_drain_init(ctl);
	ret = bc_loop_poll_add(loop, fd, POLLIN, &ctl->acomp);
	if (ret < 0) {
		snprintf(why, whylen, "cannot watch control socket %s: %s", path, strerror(-ret));
		bc_control_close(ctl);
		return ret;
	}
	ctl->accept_armed = true;
	*out = ctl;
	return 0;
}

void bc_control_shutdown(struct bc_control *ctl)
{
	struct ctl_conn *cn, *next;
	int tries;

	if (!ctl || ctl->shut)
		return;
	ctl->shut = true;
	/* Clients waiting for a drain get a last line. */
	ctl_drain_shutdown(ctl);
	if (ctl->accept_armed)
		bc_loop_poll_cancel(ctl->loop, &ctl->acomp);
	if (ctl->lfd >= 0)
		close(ctl->lfd);
	ctl->lfd = -1;
	unlink(ctl->path);
	for (cn = ctl->conns; cn; cn = next) {
		next = cn->next;
		ctl_conn_hold(cn);
		conn_flush_out(cn); /* one last try, never waiting */
		conn_kill(cn);
		ctl_conn_release(cn);
	}
	/* Let the cancelled polls complete before their memory goes away. */
	for (tries = 0; (ctl->conns || ctl->accept_armed) && tries < 200; tries++)
		bc_loop_run_once(ctl->loop, 10);
}

void bc_control_close(struct bc_control *ctl)
{
	if (!ctl)
		return;
	bc_control_shutdown(ctl);
	/* Polls that never completed cannot be reaped any more after this. */
	while (ctl->conns)
		conn_destroy(ctl->conns);
	ctl_drain_free(ctl);
	free(ctl->path);
	free(ctl);
}
