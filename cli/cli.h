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

extern const char *bc_prog;

/* Cache block size: the unit of the dirty/cached block counters. */
#define CLI_BLOCK_SIZE 4096u

int cmd_format(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_flush(int argc, char **argv);
int cmd_detach(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_set(int argc, char **argv);
int cmd_mode(int argc, char **argv);
int cmd_check(int argc, char **argv);

/* util.c */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_parse_size(const char *s, uint64_t *out);
void cli_log_to_stderr(int verbose);
const char *cli_default_control(void);
/* "1.5 MiB" style rendering of a byte count into @buf. */
const char *cli_human_bytes(uint64_t v, char *buf, size_t len);
/* Split "HOST:PORT", "[V6]:PORT", ":PORT" or "PORT"; HOST defaults to
 * @def_host.  0 or -EINVAL / -ENAMETOOLONG. */
/* Parse the options shared by the client commands: --control PATH and
 * --help.  Returns -1 to go on (positional arguments are argv[optind..]),
 * else the exit status. */
int cli_client_opts(int argc, char **argv, void (*usage)(FILE *f), const char **control);

/* buf.c: growable buffers and a JSON writer */
struct cli_buf {
	char *p;      /* NUL-terminated when not NULL */
	size_t len, cap;
	bool failed;  /* an allocation failed: the content is incomplete */
};
void cli_buf_free(struct cli_buf *b);
void cli_buf_add(struct cli_buf *b, const void *data, size_t len);
void cli_buf_puts(struct cli_buf *b, const char *s);
void cli_buf_printf(struct cli_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_buf_consume(struct cli_buf *b, size_t n); /* drop the first @n bytes */
void cli_buf_json_str(struct cli_buf *b, const char *s);

#define CLI_JW_MAX_DEPTH 8
struct cli_jw {
	struct cli_buf *b;
	int depth;
	unsigned count[CLI_JW_MAX_DEPTH];
};
void cli_jw_init(struct cli_jw *w, struct cli_buf *b);
/* Objects; @key is NULL at the top level.  The outermost end adds '\n'. */
void cli_jw_begin(struct cli_jw *w, const char *key);
void cli_jw_end(struct cli_jw *w);
void cli_jw_u64(struct cli_jw *w, const char *key, uint64_t v);
void cli_jw_double(struct cli_jw *w, const char *key, double v);
void cli_jw_bool(struct cli_jw *w, const char *key, bool v);
void cli_jw_str(struct cli_jw *w, const char *key, const char *s);
/* Append one {"error":"..."} line. */
void cli_json_error(struct cli_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* json.c: a small JSON reader */
enum cli_json_type {
	CLI_JSON_NULL,
	CLI_JSON_BOOL,
	CLI_JSON_NUMBER,
	CLI_JSON_STRING,
	CLI_JSON_ARRAY,
	CLI_JSON_OBJECT,
};
struct cli_json {
	enum cli_json_type type;
	char *key;                 /* member name inside an object */
	char *str;                 /* STRING: decoded; NUMBER: the literal */
	double num;
	uint64_t u64;
	bool is_u64;               /* a non-negative integer that fits */
	bool b;
	struct cli_json *child;    /* ARRAY / OBJECT members */
	struct cli_json *next;
};
int cli_json_parse(const char *text, struct cli_json **out); /* 0, -EINVAL, -ENOMEM */
void cli_json_free(struct cli_json *j);
const struct cli_json *cli_json_get(const struct cli_json *obj, const char *key);
const char *cli_json_str(const struct cli_json *obj, const char *key);   /* NULL if absent */
double cli_json_num(const struct cli_json *obj, const char *key);        /* 0 if absent */
uint64_t cli_json_u64(const struct cli_json *obj, const char *key);      /* 0 if absent */
bool cli_json_bool(const struct cli_json *obj, const char *key);

/* What the control socket and the metrics endpoint report on. */
struct cli_control_src {
	struct bc_engine *engine;
	struct bc_nbd_server *nbd;
	const char *cache_path, *origin_path;
};

/* status_json.c: the status document (one JSON object and '\n'), and the
 * numbers it shares with the metrics endpoint */
void cli_status_json(const struct cli_control_src *src, struct cli_buf *b);
void cli_control_stats(const struct cli_control_src *src, struct bc_engine_stats *s,
		       struct bc_nbd_stats *n);
double cli_hit_ratio(const struct bc_engine_stats *s); /* whole-block read hits / read blocks */

/* tunable.c: tunable values as text */
const struct bc_tunable_info *cli_tunable_find(const char *name);
/* Parse @s for tunable @ti: decimal; K/M/G/T suffixes for byte-valued
 * tunables; true/false/on/off/yes/no for bools.  On error @why says why. */
int cli_tunable_parse(const struct bc_tunable_info *ti, const char *s, uint64_t *out,
		      char *why, size_t whylen);
/* "4194304 bytes (4 MiB)", "true", "50 percent" */
const char *cli_tunable_format(const char *unit, uint64_t v, char *buf, size_t len);
/* Compact: "4M", "true", "50" (no unit) */
const char *cli_tunable_short(const char *unit, uint64_t v, char *buf, size_t len);
/* Append "a, b, c" (every tunable name). */
void cli_tunable_names(struct cli_buf *b);

/* control.c: the control socket of a running server */
struct cli_control;
int cli_control_open(struct cli_control **out, struct bc_loop *loop, const char *path,
		     const struct cli_control_src *src, char *why, size_t whylen);
/* Stop serving: close the socket and every connection (a client waiting
 * for a flush is told that the server shuts down).  Call before the engine
 * is closed; a drain still running may complete while it closes. */
void cli_control_shutdown(struct cli_control *c);
/* Free; call after bc_engine_close() (no engine callback can come later). */
void cli_control_close(struct cli_control *c);

/* metrics.c: Prometheus text exposition over HTTP */
struct cli_metrics;
int cli_metrics_open(struct cli_metrics **out, struct bc_loop *loop, const char *addr,
		     const struct cli_control_src *src, char *why, size_t whylen);
void cli_metrics_close(struct cli_metrics *m);
/* metrics_text.c */
void cli_metrics_render(const struct cli_control_src *src, struct cli_buf *b);

/* client.c: the client side of the control socket */
#define CLI_CONTROL_TIMEOUT_MS 30000
/* Connect to @path and send the command line @cmd; returns the fd or -errno. */
int cli_control_connect(const char *path, const char *cmd);
/* Read one '\n'-terminated line from @fd into @line (without the '\n');
 * @in keeps what was read beyond it.  1 = a line, 0 = end of stream,
 * -ETIMEDOUT after @timeout_ms without data, -EINTR, -errno. */
int cli_control_read_line(int fd, struct cli_buf *in, struct cli_buf *line, int timeout_ms);
/* One command, one reply: the whole reply into a malloc'd string. */
int cli_control_call(const char *path, const char *cmd, char **reply);
/* Print why @path could not be used for command @what (err = -errno). */
void cli_control_report(const char *what, const char *path, int err);
/* One command, one JSON object as reply; a reply with "error" is printed
 * as "blkcache WHAT: message".  Returns 0 or the exit status 1. */
int cli_control_request(const char *what, const char *path, const char *cmd,
			struct cli_json **reply);

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
