/* SPDX-License-Identifier: BSD-3-Clause */
/* Levelled logging: the library never prints, it calls a sink.  Each loop
 * may have its own (bc_loop_set_log); the process-wide one is the default. */
#include <stdio.h>

#include "core/logger.h"

static struct bc_logger global = { .max = BC_LOG_INFO };

void bc_log_set(bc_log_fn fn, void *arg, enum bc_log_level max_level)
{
	global = (struct bc_logger){ .fn = fn, .arg = arg, .max = max_level, .set = true };
}

void bc_logger_vlog(const struct bc_logger *lg, enum bc_log_level level, const char *fmt,
		    va_list ap)
{
	char msg[512];

	if (!lg)
		lg = &global;
	if (!lg->fn || level > lg->max)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	lg->fn(lg->arg, level, msg);
}

void bc_log(enum bc_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	bc_logger_vlog(NULL, level, fmt, ap);
	va_end(ap);
}
