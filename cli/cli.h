/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef BC_CLI_H
#define BC_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blkcache/engine.h"
#include "blkcache/loop.h"
#include "blkcache/nbd.h"

extern const char *bc_prog;

int cmd_format(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_status(int argc, char **argv);

/* util.c */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_parse_size(const char *s, uint64_t *out);
void cli_log_to_stderr(int verbose);
const char *cli_default_control(void);

/* control.c: the control socket of a running server */
struct cli_control;
struct cli_control_src {
	struct bc_engine *engine;
	struct bc_nbd_server *nbd;
	const char *cache_path, *origin_path;
};
int cli_control_open(struct cli_control **out, struct bc_loop *loop, const char *path,
		     const struct cli_control_src *src, char *why, size_t whylen);
void cli_control_close(struct cli_control *c);
/* Render status as JSON into buf; returns length. */
size_t cli_status_json(const struct cli_control_src *src, char *buf, size_t len);
/* Client side: send @cmd, read the whole reply into a malloc'd string. */
int cli_control_call(const char *path, const char *cmd, char **reply);

#endif
