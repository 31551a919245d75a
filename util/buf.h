/* SPDX-License-Identifier: BSD-3-Clause */
/* Growable text buffers and a JSON writer. */
#ifndef BC_UTIL_BUF_H
#define BC_UTIL_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* buf.c: growable buffers and a JSON writer */
struct bc_tbuf {
	char *p;      /* NUL-terminated when not NULL */
	size_t len, cap;
	bool failed;  /* an allocation failed: the content is incomplete */
};
void bc_tbuf_free(struct bc_tbuf *b);
void bc_tbuf_add(struct bc_tbuf *b, const void *data, size_t len);
void bc_tbuf_puts(struct bc_tbuf *b, const char *s);
void bc_tbuf_printf(struct bc_tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bc_tbuf_consume(struct bc_tbuf *b, size_t n); /* drop the first @n bytes */
void bc_tbuf_json_str(struct bc_tbuf *b, const char *s);

#define BC_JW_MAX_DEPTH 8
struct bc_jw {
	struct bc_tbuf *b;
	int depth;
	unsigned count[BC_JW_MAX_DEPTH];
};
void bc_jw_init(struct bc_jw *w, struct bc_tbuf *b);
/* Objects; @key is NULL at the top level.  The outermost end adds '\n'. */
void bc_jw_begin(struct bc_jw *w, const char *key);
void bc_jw_end(struct bc_jw *w);
void bc_jw_u64(struct bc_jw *w, const char *key, uint64_t v);
void bc_jw_double(struct bc_jw *w, const char *key, double v);
void bc_jw_bool(struct bc_jw *w, const char *key, bool v);
void bc_jw_str(struct bc_jw *w, const char *key, const char *s);
/* Append one {"error":"..."} line. */
void bc_json_error(struct bc_tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
