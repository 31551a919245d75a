/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef BC_CLI_H
#define BC_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "blkcache/engine.h"
#include "blkcache/loop.h"
#include "blkcache/nbd.h"
#include "buf.h"
#include "control.h"
#include "json.h"
#include "metrics.h"
#include "units.h"

extern const char *bc_prog;

int cmd_format(int argc, char **argv);
int cmd_origin(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_flush(int argc, char **argv);
int cmd_detach(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_set(int argc, char **argv);
int cmd_mode(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_origins(int argc, char **argv);
int cmd_attach(int argc, char **argv);

/* util.c */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_log_to_stderr(int verbose);
const char *cli_default_control(void);
/* Split "HOST:PORT", "[V6]:PORT", ":PORT" or "PORT"; HOST defaults to
 * @def_host.  0 or -EINVAL / -ENAMETOOLONG. */
/* Parse the options shared by the client commands: --control PATH and
 * --help.  Returns -1 to go on (positional arguments are argv[optind..]),
 * else the exit status. */
int cli_client_opts(int argc, char **argv, void (*usage)(FILE *f), const char **control);

/* client.c: the client side of the control socket */
#define CLI_CONTROL_TIMEOUT_MS 30000
/* Connect to @path and send the command line @cmd; returns the fd or -errno. */
int cli_control_connect(const char *path, const char *cmd);
/* Read one '\n'-terminated line from @fd into @line (without the '\n');
 * @in keeps what was read beyond it.  1 = a line, 0 = end of stream,
 * -ETIMEDOUT after @timeout_ms without data, -EINTR, -errno. */
int cli_control_read_line(int fd, struct bc_tbuf *in, struct bc_tbuf *line, int timeout_ms);
/* One command, one reply: the whole reply into a malloc'd string. */
int cli_control_call(const char *path, const char *cmd, char **reply);
/* Print why @path could not be used for command @what (err = -errno). */
void cli_control_report(const char *what, const char *path, int err);
/* One command, one JSON object as reply; a reply with "error" is printed
 * as "blkcache WHAT: message".  Returns 0 or the exit status 1. */
int cli_control_request(const char *what, const char *path, const char *cmd,
			struct bc_json **reply);

/* Like cli_client_opts(), also taking --name NAME (the origin to address;
 * NULL if not given) unless @name is NULL. */
int cli_client_opts_name(int argc, char **argv, void (*usage)(FILE *f), const char **control,
			 const char **name);
/* Is @s one word the control socket takes (not empty, no blanks)?  Says
 * why not, for argument @label of command @what. */
bool cli_word_ok(const char *what, const char *label, const char *s);
/* The command line for @cmd addressed to origin @name ("origin NAME CMD"),
 * or @cmd alone if @name is NULL, into @buf.  False after saying why not. */
bool cli_origin_cmd(const char *what, const char *name, const char *cmd, char *buf, size_t len);
/* The elements of the "origins" array of a reply (NULL if none) and their number. */
const struct bc_json *cli_origins(const struct bc_json *j, unsigned *n);

/* progress.c: drain progress on the terminal */
struct cli_progress {
	FILE *f;
	const char *what;
	bool tty, drawn;
	uint64_t total;         /* largest dirty byte count seen */
	uint64_t wb0, t0_ns;    /* writeback_bytes and time of the first report */
	uint64_t last_ns;       /* last plain line */
	double rate;            /* bytes/s, smoothed */
	uint64_t rate_bytes, rate_ns;
};
void cli_progress_init(struct cli_progress *p, FILE *f, const char *what);
void cli_progress_update(struct cli_progress *p, uint64_t dirty_bytes, uint64_t writeback_bytes);
/* Leave the line: the cursor goes to a fresh line if a bar was drawn. */
void cli_progress_end(struct cli_progress *p);

#endif
