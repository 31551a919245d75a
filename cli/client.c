/* SPDX-License-Identifier: BSD-3-Clause */
/* The client side of the control socket: connect, send one line, read. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "blkcache/loop.h"
#include "cli.h"

int cli_control_connect(const char *path, const char *cmd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len, off = 0;
	char line[BC_CONTROL_LINE_MAX];
	int fd, ret;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	len = (size_t)snprintf(line, sizeof(line), "%s\n", cmd);
	if (len >= sizeof(line))
		return -E2BIG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto err;
	while (off < len) {
		ssize_t n = send(fd, line + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto err;
		off += (size_t)n;
	}
	return fd;
err:
	ret = -errno;
	close(fd);
	return ret;
}

int cli_control_read_line(int fd, struct bc_tbuf *in, struct bc_tbuf *line, int timeout_ms)
{
	uint64_t deadline = bc_now_ns() + (uint64_t)timeout_ms * 1000000;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		char *nl = in->p ? memchr(in->p, '\n', in->len) : NULL;
		char chunk[4096];
		uint64_t now;
		ssize_t n;
		int ret;

		if (nl) {
			line->len = 0;
			bc_tbuf_add(line, in->p, (size_t)(nl - in->p));
			bc_tbuf_consume(in, (size_t)(nl - in->p) + 1);
			return line->failed ? -ENOMEM : 1;
		}
		now = bc_now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		ret = poll(&pfd, 1, (int)((deadline - now + 999999) / 1000000));
		if (ret < 0)
			return -errno;
		if (ret == 0)
			continue;
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			return -EINTR;
		if (n < 0)
			return errno == ECONNRESET ? 0 : -errno;
		if (n == 0) {
			if (!in->len)
				return 0;
			/* A last line without '\n'. */
			line->len = 0;
			bc_tbuf_add(line, in->p, in->len);
			bc_tbuf_consume(in, in->len);
			return line->failed ? -ENOMEM : 1;
		}
		bc_tbuf_add(in, chunk, (size_t)n);
		if (in->failed)
			return -ENOMEM;
	}
}

int cli_control_call(const char *path, const char *cmd, char **reply)
{
	uint64_t deadline = bc_now_ns() + (uint64_t)CLI_CONTROL_TIMEOUT_MS * 1000000;
	struct bc_tbuf b = { 0 };
	int fd, ret = 0;

	fd = cli_control_connect(path, cmd);
	if (fd < 0)
		return fd;
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		uint64_t now = bc_now_ns();
		char chunk[4096];
		ssize_t n;

		if (now >= deadline) {
			ret = -ETIMEDOUT;
			break;
		}
		ret = poll(&pfd, 1, (int)((deadline - now + 999999) / 1000000));
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0) {
			ret = -errno;
			break;
		}
		if (ret == 0)
			continue;
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != ECONNRESET) {
			ret = -errno;
			break;
		}
		if (n <= 0) {
			ret = 0;
			break;
		}
		bc_tbuf_add(&b, chunk, (size_t)n);
		if (b.failed) {
			ret = -ENOMEM;
			break;
		}
	}
	close(fd);
	if (ret == 0 && !b.len)
		ret = -ECONNRESET; /* closed without a word */
	if (ret < 0) {
		bc_tbuf_free(&b);
		return ret;
	}
	*reply = b.p;
	return 0;
}

void cli_control_report(const char *what, const char *path, int err)
{
	switch (err) {
	case -ENOENT:
	case -ECONNREFUSED:
	case -ENOTSOCK:
	case -ENOTDIR:
		cli_err("%s: cannot reach a running blkcache at control socket %s (is 'blkcache "
			"serve' running? pass --control PATH)", what, path);
		break;
	case -EACCES:
	case -EPERM:
		cli_err("%s: no permission to use control socket %s (it is only for the user "
			"running 'blkcache serve')", what, path);
		break;
	case -ENAMETOOLONG:
		cli_err("%s: control socket path %s is too long", what, path);
		break;
	case -E2BIG:
		cli_err("%s: the command is too long for the control socket (at most %d bytes); "
			"give a shorter device path (a symlink to it, for instance)", what,
			BC_CONTROL_LINE_MAX - 1);
		break;
	case -ETIMEDOUT:
		cli_err("%s: the blkcache at control socket %s did not answer within %d s", what,
			path, CLI_CONTROL_TIMEOUT_MS / 1000);
		break;
	case -ECONNRESET:
	case -EPIPE:
		cli_err("%s: the blkcache at control socket %s closed the connection without an "
			"answer (is it shutting down?)", what, path);
		break;
	default:
		cli_err("%s: cannot talk to a blkcache at control socket %s: %s (is 'blkcache "
			"serve' running? pass --control PATH)", what, path, strerror(-err));
		break;
	}
}

int cli_control_request(const char *what, const char *path, const char *cmd,
			struct bc_json **reply)
{
	struct bc_json *j = NULL;
	char *text = NULL;
	const char *msg;
	int ret;

	ret = cli_control_call(path, cmd, &text);
	if (ret < 0) {
		cli_control_report(what, path, ret);
		return 1;
	}
	if (bc_json_parse(text, &j) < 0 || j->type != BC_JSON_OBJECT) {
		text[strcspn(text, "\n")] = 0;
		cli_err("%s: unexpected answer from the server at %s: %.200s", what, path, text);
		bc_json_free(j);
		free(text);
		return 1;
	}
	free(text);
	msg = bc_json_str(j, "error");
	if (msg) {
		cli_err("%s: %s", what, msg);
		bc_json_free(j);
		return 1;
	}
	*reply = j;
	return 0;
}

int cli_client_opts_name(int argc, char **argv, void (*usage)(FILE *f), const char **control,
			 const char **name)
{
	static const struct option opts[] = {
		{ "control", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ "name", required_argument, NULL, 'n' }, /* only when @name is given */
		{ 0 },
	};
	static const struct option opts_no_name[] = {
		{ "control", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c, i;

	*control = cli_default_control();
	if (name)
		*name = NULL;
	/* getopt would take a negative number for an option: say what is wrong. */
	for (i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		if (argv[i][0] == '-' && isdigit((unsigned char)argv[i][1])) {
			cli_err("%s: '%s' is not a valid value: values are whole numbers >= 0 "
				"(see 'blkcache get NAME' for the range)", argv[0], argv[i]);
			return 1;
		}
	}
	while ((c = getopt_long(argc, argv, name ? "C:n:h" : "C:h", name ? opts : opts_no_name,
				NULL)) != -1) {
		switch (c) {
		case 'C': *control = optarg; break;
		case 'n': *name = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	return -1;
}

bool cli_word_ok(const char *what, const char *label, const char *s)
{
	if (!*s) {
		cli_err("%s: %s must not be empty", what, label);
		return false;
	}
	if (strpbrk(s, " \t\r\n")) {
		cli_err("%s: %s '%s' contains a space, tab or newline; the control socket takes one "
			"word there%s", what, label, s, strcmp(label, "DEV") ? "" :
			" (use a symlink to the device without spaces)");
		return false;
	}
	return true;
}

bool cli_origin_cmd(const char *what, const char *name, const char *cmd, char *buf, size_t len)
{
	int n;

	if (name && !cli_word_ok(what, "origin name", name))
		return false;
	n = name ? snprintf(buf, len, "origin %s %s", name, cmd) : snprintf(buf, len, "%s", cmd);
	if (n < 0 || (size_t)n >= len) {
		cli_err("%s: origin name '%.40s...' is too long", what, name ? name : "");
		return false;
	}
	return true;
}

const struct bc_json *cli_origins(const struct bc_json *j, unsigned *n)
{
	const struct bc_json *a = bc_json_get(j, "origins"), *c;

	*n = 0;
	if (!a || a->type != BC_JSON_ARRAY)
		return NULL;
	for (c = a->child; c; c = c->next)
		(*n)++;
	return a->child;
}
