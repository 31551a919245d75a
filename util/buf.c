/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Growable output buffers and a small JSON writer on top of them: the
 * control socket's replies, the status document and the metrics page are
 * all built here.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

#define BUF_MIN_CAP 1024

void bc_tbuf_free(struct bc_tbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* Make room for @more bytes plus a terminating NUL. */
static bool buf_reserve(struct bc_tbuf *b, size_t more)
{
	size_t need, cap;
	char *p;

	if (b->failed)
		return false;
	if (more > SIZE_MAX / 2 - b->len)
		goto fail;
	need = b->len + more + 1;
	if (need <= b->cap)
		return true;
	for (cap = b->cap ? b->cap : BUF_MIN_CAP; cap < need; cap *= 2)
		;
	p = realloc(b->p, cap);
	if (!p)
		goto fail;
	b->p = p;
	b->cap = cap;
	return true;
fail:
	b->failed = true;
	return false;
}

void bc_tbuf_add(struct bc_tbuf *b, const void *data, size_t len)
{
	if (!buf_reserve(b, len))
		return;
	memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = 0;
}

void bc_tbuf_puts(struct bc_tbuf *b, const char *s)
{
	bc_tbuf_add(b, s, strlen(s));
}

void bc_tbuf_printf(struct bc_tbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !buf_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void bc_tbuf_consume(struct bc_tbuf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
	} else {
		memmove(b->p, b->p + n, b->len - n);
		b->len -= n;
	}
	if (b->p)
		b->p[b->len] = 0;
}

/* Length of the valid UTF-8 sequence at @s (1..4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned c = s[0], n, i, cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* A JSON string literal; bytes that are not valid UTF-8 become U+FFFD so
 * that the document always parses. */
void bc_tbuf_json_str(struct bc_tbuf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");

	bc_tbuf_add(b, "\"", 1);
	while (*p) {
		size_t n = utf8_len(p);

		if (n == 0) {
			bc_tbuf_puts(b, "\\ufffd");
			p++;
		} else if (*p == '"' || *p == '\\') {
			bc_tbuf_add(b, "\\", 1);
			bc_tbuf_add(b, p++, 1);
		} else if (*p == '\n') {
			bc_tbuf_puts(b, "\\n");
			p++;
		} else if (*p < 0x20 || *p == 0x7f) {
			bc_tbuf_printf(b, "\\u%04x", *p++);
		} else {
			bc_tbuf_add(b, p, n);
			p += n;
		}
	}
	bc_tbuf_add(b, "\"", 1);
}

/* ---- JSON writer: keeps track of the commas ---- */

void bc_jw_init(struct bc_jw *w, struct bc_tbuf *b)
{
	memset(w, 0, sizeof(*w));
	w->b = b;
}

/* Separator and member name before a value. */
static void jw_key(struct bc_jw *w, const char *key)
{
	if (w->depth > 0 && w->count[w->depth - 1]++)
		bc_tbuf_add(w->b, ",", 1);
	if (key) {
		bc_tbuf_json_str(w->b, key);
		bc_tbuf_add(w->b, ":", 1);
	}
}

void bc_jw_begin(struct bc_jw *w, const char *key)
{
	jw_key(w, key);
	bc_tbuf_add(w->b, "{", 1);
	if (w->depth < BC_JW_MAX_DEPTH)
		w->count[w->depth] = 0;
	w->depth++;
}

void bc_jw_end(struct bc_jw *w)
{
	if (w->depth > 0)
		w->depth--;
	bc_tbuf_add(w->b, "}", 1);
	if (w->depth == 0)
		bc_tbuf_add(w->b, "\n", 1);
}

void bc_jw_u64(struct bc_jw *w, const char *key, uint64_t v)
{
	jw_key(w, key);
	bc_tbuf_printf(w->b, "%llu", (unsigned long long)v);
}

void bc_jw_double(struct bc_jw *w, const char *key, double v)
{
	jw_key(w, key);
	/* JSON has no NaN or infinity. */
	bc_tbuf_printf(w->b, "%.4f", v == v && v < 1e300 && v > -1e300 ? v : 0.0);
}

void bc_jw_bool(struct bc_jw *w, const char *key, bool v)
{
	jw_key(w, key);
	bc_tbuf_puts(w->b, v ? "true" : "false");
}

void bc_jw_str(struct bc_jw *w, const char *key, const char *s)
{
	jw_key(w, key);
	bc_tbuf_json_str(w->b, s);
}

void bc_json_error(struct bc_tbuf *b, const char *fmt, ...)
{
	struct bc_jw w;
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	bc_jw_init(&w, b);
	bc_jw_begin(&w, NULL);
	bc_jw_str(&w, "error", msg);
	bc_jw_end(&w);
}
