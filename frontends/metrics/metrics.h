/* SPDX-License-Identifier: BSD-3-Clause */
/* Prometheus text exposition over HTTP. */
#ifndef BC_METRICS_H
#define BC_METRICS_H

#include "control.h"

/* metrics.c: Prometheus text exposition over HTTP */
struct bc_metrics;
int bc_metrics_open(struct bc_metrics **out, struct bc_loop *loop, const char *addr,
		     const struct bc_control_src *src, char *why, size_t whylen);
void bc_metrics_close(struct bc_metrics *m);
/* metrics_text.c */
void bc_metrics_render(const struct bc_control_src *src, struct bc_tbuf *b);

#endif
