/* SPDX-License-Identifier: BSD-3-Clause */
/* A log sink: the process-wide one (bc_log_set) or a loop's own. */
#ifndef BC_CORE_LOGGER_H
#define BC_CORE_LOGGER_H

#include <stdarg.h>
#include <stdbool.h>

#include "blkcache/log.h"

struct bc_logger {
	bc_log_fn fn;
	void *arg;
	enum bc_log_level max;
	bool set;
};

/* Format and deliver to @lg, or to the process-wide sink if @lg is NULL. */
void bc_logger_vlog(const struct bc_logger *lg, enum bc_log_level level, const char *fmt,
		    va_list ap);

#endif
