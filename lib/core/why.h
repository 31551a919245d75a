/* SPDX-License-Identifier: BSD-3-Clause */
/* Actionable error messages: functions that can fail for a reason a user
 * must act on take (char *why, size_t whylen) and fill it with bc_why(). */
#ifndef BC_CORE_WHY_H
#define BC_CORE_WHY_H

#include <stddef.h>

/* snprintf into @why (no-op when @why is NULL or @whylen is 0). */
void bc_why(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
