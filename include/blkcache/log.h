/* SPDX-License-Identifier: BSD-3-Clause */
/* Levelled logging: the library never prints, it calls this callback. */
#ifndef BLKCACHE_LOG_H
#define BLKCACHE_LOG_H

#include <stdarg.h>

enum bc_log_level {
	BC_LOG_ERR = 0,
	BC_LOG_WARN = 1,
	BC_LOG_INFO = 2,
	BC_LOG_DEBUG = 3,
};

typedef void (*bc_log_fn)(void *arg, enum bc_log_level level, const char *msg);

/* Install the process-wide log sink (NULL silences the library).  A loop
 * can have its own: bc_loop_set_log() in blkcache/loop.h. */
void bc_log_set(bc_log_fn fn, void *arg, enum bc_log_level max_level);

/* Log to the process-wide sink (code that runs on a loop uses bc_loop_log). */
void bc_log(enum bc_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
