/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control socket of a running server: a unix socket (mode 0600) taking
 * one-line commands ("status") and answering with one JSON document.
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

#include "blkcache/sockutil.h"
#include "cli.h"

struct ctl_conn {
	struct bc_completion comp;
	struct cli_control *ctl;
	int fd;
	size_t len;
	char buf[256];
	struct ctl_conn *next;
};

struct cli_control {
	struct bc_completion acomp;
	struct bc_loop *loop;
	int lfd;
	bool accept_armed;
	unsigned polls;       /* poll requests in flight */
	char *path;
	struct cli_control_src src;
	struct ctl_conn *conns;
};

/* Copy @s into @out as the inside of a JSON string. */
static const char *json_str(const char *s, char *out, size_t len)
{
	size_t o = 0;

	for (; *s && o + 7 < len; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			out[o++] = '\\';
			out[o++] = (char)ch;
		} else if (ch < 0x20) {
			o += (size_t)snprintf(out + o, len - o, "\\u%04x", ch);
		} else {
			out[o++] = (char)ch;
		}
	}
	out[o] = 0;
	return out;
}

size_t cli_status_json(const struct cli_control_src *src, char *buf, size_t len)
{
	char cpath[512], opath[512];
	struct bc_engine_stats s;
	struct bc_nbd_stats n = { 0 };
	uint64_t lookups;

	bc_engine_get_stats(src->engine, &s);
	if (src->nbd)
		bc_nbd_server_stats(src->nbd, &n);
	lookups = s.read_hit_blocks + s.read_partial_blocks + s.read_miss_blocks;
	return (size_t)snprintf(buf, len,
		"{\"cache\":\"%s\",\"origin\":\"%s\",\"mode\":\"writeback\","
		"\"export_size\":%llu,"
		"\"reads\":%llu,\"writes\":%llu,\"flushes\":%llu,\"fua_writes\":%llu,"
		"\"discards\":%llu,\"write_zeroes\":%llu,"
		"\"read_hit_blocks\":%llu,\"read_partial_blocks\":%llu,\"read_miss_blocks\":%llu,"
		"\"hits\":%llu,\"misses\":%llu,\"hit_ratio\":%.4f,"
		"\"writes_absorbed_blocks\":%llu,\"write_inplace_blocks\":%llu,\"merge_reads\":%llu,"
		"\"cached_blocks\":%llu,\"dirty_blocks\":%llu,"
		"\"segments_total\":%llu,\"segments_used\":%llu,\"segments_written\":%llu,"
		"\"segments_partial\":%llu,\"head_seq\":%llu,\"durable_seq\":%llu,"
		"\"written_back_seq\":%llu,\"cache_full_waits\":%llu,"
		"\"writeback_blocks\":%llu,\"writeback_ios\":%llu,\"writeback_bytes\":%llu,"
		"\"writeback_batches\":%llu,\"writeback_errors\":%llu,"
		"\"cache_flushes\":%llu,\"origin_flushes\":%llu,\"io_errors\":%llu,"
		"\"recovered_segments\":%llu,\"recovery_ms\":%llu,"
		"\"nbd_connections_open\":%u,\"nbd_connections_total\":%llu,\"nbd_requests\":%llu,"
		"\"nbd_protocol_errors\":%llu}\n",
		json_str(src->cache_path, cpath, sizeof(cpath)),
		json_str(src->origin_path, opath, sizeof(opath)), (unsigned long long)s.export_size,
		(unsigned long long)s.reads, (unsigned long long)s.writes,
		(unsigned long long)s.flushes, (unsigned long long)s.fua_writes,
		(unsigned long long)s.discards, (unsigned long long)s.write_zeroes,
		(unsigned long long)s.read_hit_blocks, (unsigned long long)s.read_partial_blocks,
		(unsigned long long)s.read_miss_blocks,
		(unsigned long long)(s.read_hit_blocks + s.read_partial_blocks),
		(unsigned long long)s.read_miss_blocks,
		lookups ? (double)s.read_hit_blocks / (double)lookups : 0.0,
		(unsigned long long)s.write_blocks, (unsigned long long)s.write_inplace_blocks,
		(unsigned long long)s.merge_reads,
		(unsigned long long)s.cached_blocks, (unsigned long long)s.dirty_blocks,
		(unsigned long long)s.segments_total, (unsigned long long)s.segments_used,
		(unsigned long long)s.segments_written, (unsigned long long)s.segments_partial,
		(unsigned long long)s.head_seq, (unsigned long long)s.durable_seq,
		(unsigned long long)s.written_back_seq, (unsigned long long)s.cache_full_waits,
		(unsigned long long)s.writeback_blocks, (unsigned long long)s.writeback_ios,
		(unsigned long long)s.writeback_bytes, (unsigned long long)s.writeback_batches,
		(unsigned long long)s.writeback_errors,
		(unsigned long long)s.cache_flushes, (unsigned long long)s.origin_flushes,
		(unsigned long long)s.io_errors,
		(unsigned long long)s.recovered_segments, (unsigned long long)s.recovery_ms,
		n.connections_open, (unsigned long long)n.connections_total,
		(unsigned long long)n.requests, (unsigned long long)n.protocol_errors);
}

static void conn_free(struct cli_control *ctl, struct ctl_conn *cn)
{
	struct ctl_conn **pp;

	for (pp = &ctl->conns; *pp; pp = &(*pp)->next)
		if (*pp == cn) {
			*pp = cn->next;
			break;
		}
	if (cn->fd >= 0)
		close(cn->fd);
	free(cn);
}

static void conn_reply(struct cli_control *ctl, struct ctl_conn *cn)
{
	char out[4096];
	size_t len, off = 0;

	cn->buf[cn->len] = 0;
	cn->buf[strcspn(cn->buf, "\r\n")] = 0;
	if (!strcmp(cn->buf, "status"))
		len = cli_status_json(&ctl->src, out, sizeof(out));
	else
		len = (size_t)snprintf(out, sizeof(out), "{\"error\":\"unknown command\"}\n");
	if (len >= sizeof(out))
		len = sizeof(out) - 1;
	/* Small reply into an empty socket buffer: one send normally suffices. */
	while (off < len) {
		ssize_t n = send(cn->fd, out + off, len - off, MSG_NOSIGNAL);

		if (n <= 0)
			break;
		off += (size_t)n;
	}
}

static void conn_ready(struct bc_completion *c, int res)
{
	struct ctl_conn *cn = (struct ctl_conn *)c;
	struct cli_control *ctl = cn->ctl;
	ssize_t n;

	ctl->polls--;
	if (res < 0 || ctl->lfd < 0) {
		conn_free(ctl, cn);
		return;
	}
	n = read(cn->fd, cn->buf + cn->len, sizeof(cn->buf) - 1 - cn->len);
	if (n < 0 && errno == EAGAIN)
		goto rearm;
	if (n > 0)
		cn->len += (size_t)n;
	if (n <= 0 || memchr(cn->buf, '\n', cn->len) || cn->len == sizeof(cn->buf) - 1) {
		conn_reply(ctl, cn);
		conn_free(ctl, cn);
		return;
	}
rearm:
	if (bc_loop_poll_add(ctl->loop, cn->fd, POLLIN, &cn->comp) < 0) {
		conn_free(ctl, cn);
		return;
	}
	ctl->polls++;
}

static void accept_ready(struct bc_completion *c, int res)
{
	struct cli_control *ctl = (struct cli_control *)c;
	int fd;

	ctl->polls--;
	ctl->accept_armed = false;
	if (res < 0 || ctl->lfd < 0)
		return;
	while ((fd = accept4(ctl->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		struct ctl_conn *cn = calloc(1, sizeof(*cn));

		if (!cn) {
			close(fd);
			continue;
		}
		cn->fd = fd;
		cn->ctl = ctl;
		cn->comp.fn = conn_ready;
		cn->next = ctl->conns;
		ctl->conns = cn;
		if (bc_loop_poll_add(ctl->loop, fd, POLLIN, &cn->comp) < 0)
			conn_free(ctl, cn);
		else
			ctl->polls++;
	}
	if (bc_loop_poll_add(ctl->loop, ctl->lfd, POLLIN, &ctl->acomp) == 0) {
		ctl->accept_armed = true;
		ctl->polls++;
	}
}

int cli_control_open(struct cli_control **out, struct bc_loop *loop, const char *path,
		     const struct cli_control_src *src, char *why, size_t whylen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct cli_control *ctl;
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
	{
		struct stat st;

		if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
			snprintf(why, whylen, "control socket path %s exists and is not a socket; "
				 "refusing to replace it", path);
			return -EEXIST;
		}
	}
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 ||
	    listen(fd, 16) < 0) {
		ret = -errno;
		snprintf(why, whylen, "cannot create control socket %s: %s", path, strerror(-ret));
		close(fd);
		return ret;
	}
	ctl = calloc(1, sizeof(*ctl));
	if (!ctl) {
		close(fd);
		return -ENOMEM;
	}
	ctl->loop = loop;
	ctl->lfd = fd;
	ctl->src = *src;
	ctl->acomp.fn = accept_ready;
	ctl->path = strdup(path);
	ret = bc_loop_poll_add(loop, fd, POLLIN, &ctl->acomp);
	if (ret < 0) {
		cli_control_close(ctl);
		return ret;
	}
	ctl->accept_armed = true;
	ctl->polls = 1;
	*out = ctl;
	return 0;
}

void cli_control_close(struct cli_control *ctl)
{
	struct ctl_conn *cn;
	int tries;

	if (!ctl)
		return;
	if (ctl->accept_armed)
		bc_loop_poll_cancel(ctl->loop, &ctl->acomp);
	for (cn = ctl->conns; cn; cn = cn->next)
		bc_loop_poll_cancel(ctl->loop, &cn->comp);
	close(ctl->lfd);
	ctl->lfd = -1;
	/* Let the cancelled polls complete before their memory goes away. */
	for (tries = 0; ctl->polls && tries < 100; tries++)
		bc_loop_run_once(ctl->loop, 10);
	while (ctl->conns)
		conn_free(ctl, ctl->conns);
	if (ctl->path) {
		unlink(ctl->path);
		free(ctl->path);
	}
	free(ctl);
}

int cli_control_call(const char *path, const char *cmd, char **reply)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = 0, cap = 8192;
	char *buf;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    write(fd, cmd, strlen(cmd)) < 0 || write(fd, "\n", 1) < 0) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	buf = malloc(cap);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, cap - 1 - len);

		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == cap - 1)
			break;
	}
	close(fd);
	buf[len] = 0;
	*reply = buf;
	return 0;
}
