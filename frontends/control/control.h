/* SPDX-License-Identifier: BSD-3-Clause */
/* The control socket of a running server, its status document, and tunables as text. */
#ifndef BC_CONTROL_H
#define BC_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include "blkcache/engine.h"
#include "blkcache/loop.h"
#include "blkcache/nbd.h"
#include "blkcache/ublk.h"
#include "buf.h"

/* What the control socket and the metrics endpoint report on. */
struct bc_control_src {
	struct bc_engine *engine;
	struct bc_nbd_server *nbd;   /* NULL: not serving NBD */
	struct bc_ublk *ublk;        /* NULL: not serving ublk */
	const char *cache_path, *origin_path;
};

/* status_json.c: the status document (one JSON object and '\n'), and the
 * numbers it shares with the metrics endpoint */
void bc_control_status_json(const struct bc_control_src *src, struct bc_tbuf *b);
void bc_control_stats(const struct bc_control_src *src, struct bc_engine_stats *s,
		       struct bc_nbd_stats *n);
double bc_hit_ratio(const struct bc_engine_stats *s); /* whole-block read hits / read blocks */

/* tunable.c: tunable values as text */
const struct bc_tunable_info *bc_tuntext_find(const char *name);
/* Parse @s for tunable @ti: decimal; K/M/G/T suffixes for byte-valued
 * tunables; true/false/on/off/yes/no for bools.  On error @why says why. */
int bc_tuntext_parse(const struct bc_tunable_info *ti, const char *s, uint64_t *out,
		      char *why, size_t whylen);
/* "4194304 bytes (4 MiB)", "true", "50 percent" */
const char *bc_tuntext_format(const char *unit, uint64_t v, char *buf, size_t len);
/* Compact: "4M", "true", "50" (no unit) */
const char *bc_tuntext_short(const char *unit, uint64_t v, char *buf, size_t len);
/* Append "a, b, c" (every tunable name). */
void bc_tuntext_names(struct bc_tbuf *b);

/* control.c: the control socket of a running server */
struct bc_control;
int bc_control_open(struct bc_control **out, struct bc_loop *loop, const char *path,
		     const struct bc_control_src *src, char *why, size_t whylen);
/* Stop serving: close the socket and every connection (a client waiting
 * for a flush is told that the server shuts down).  Call before the engine
 * is closed; a drain still running may complete while it closes. */
void bc_control_shutdown(struct bc_control *c);
/* Free; call after bc_engine_close() (no engine callback can come later). */
void bc_control_close(struct bc_control *c);

#endif
