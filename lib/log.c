/* SPDX-License-Identifier: BSD-3-Clause */
#include <stdio.h>

#include "blkcache/log.h"

static bc_log_fn log_fn;
static void *log_arg;
static enum bc_log_level log_max = BC_LOG_INFO;

void bc_log_set(bc_log_fn fn, void *arg, enum bc_log_level max_level)
{
	log_fn = fn;
	log_arg = arg;
	log_max = max_level;
}

void bc_log(enum bc_log_level level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!log_fn || level > log_max)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_fn(log_arg, level, msg);
}
