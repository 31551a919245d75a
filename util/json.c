/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A small JSON reader for the client side of the control socket: parses
 * one document into a tree of bc_json nodes.  Numbers keep their literal
 * text so that 64-bit counters survive exactly.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define JSON_MAX_DEPTH 32

struct jparser {
	const char *p;
	int depth;
};

static void skip_ws(struct jparser *jp)
{
	while (*jp->p == ' ' || *jp->p == '\t' || *jp->p == '\n' || *jp->p == '\r')
		jp->p++;
}

static struct bc_json *node_new(enum bc_json_type type)
{
	struct bc_json *j = calloc(1, sizeof(*j));

	if (j)
		j->type = type;
	return j;
}

void bc_json_free(struct bc_json *j)
{
	while (j) {
		struct bc_json *next = j->next;

		bc_json_free(j->child);
		free(j->key);
		free(j->str);
		free(j);
		j = next;
	}
}

static int hex4(const char *s, unsigned *out)
{
	unsigned v = 0;
	int i;

	for (i = 0; i < 4; i++) {
		char c = s[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -EINVAL;
	}
	*out = v;
	return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* A string literal at jp->p (which points at the opening quote). */
static int parse_string(struct jparser *jp, char **out)
{
	const char *s = jp->p + 1, *e;
	char *o, *r;

	/* The decoded string is never longer than the literal. */
	for (e = s; *e && *e != '"'; e++)
		if (*e == '\\' && e[1])
			e++;
	if (*e != '"')
		return -EINVAL;
	r = o = malloc((size_t)(e - s) + 1);
	if (!r)
		return -ENOMEM;
	while (s < e) {
		unsigned cp, lo;

		if ((unsigned char)*s < 0x20)
			goto bad;
		if (*s != '\\') {
			*o++ = *s++;
			continue;
		}
		s++;
		switch (*s++) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '/': *o++ = '/'; break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u':
			if (e - s < 4 || hex4(s, &cp))
				goto bad;
			s += 4;
			if (cp >= 0xd800 && cp <= 0xdbff && e - s >= 6 && s[0] == '\\' &&
			    s[1] == 'u' && !hex4(s + 2, &lo) && lo >= 0xdc00 && lo <= 0xdfff) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				s += 6;
			} else if (cp >= 0xd800 && cp <= 0xdfff) {
				cp = 0xfffd;
			}
			if (cp == 0)
				cp = 0xfffd; /* no NULs inside C strings */
			o += put_utf8(o, cp);
			break;
		default:
			goto bad;
		}
	}
	*o = 0;
	jp->p = e + 1;
	*out = r;
	return 0;
bad:
	free(r);
	return -EINVAL;
}

static int parse_value(struct jparser *jp, struct bc_json **out);

static int parse_members(struct jparser *jp, struct bc_json *parent, bool object)
{
	struct bc_json **tail = &parent->child;
	char close = object ? '}' : ']';
	int ret;

	jp->p++;
	skip_ws(jp);
	if (*jp->p == close) {
		jp->p++;
		return 0;
	}
	for (;;) {
		struct bc_json *child;
		char *key = NULL;

		skip_ws(jp);
		if (object) {
			if (*jp->p != '"')
				return -EINVAL;
			ret = parse_string(jp, &key);
			if (ret < 0)
				return ret;
			skip_ws(jp);
			if (*jp->p != ':') {
				free(key);
				return -EINVAL;
			}
			jp->p++;
		}
		ret = parse_value(jp, &child);
		if (ret < 0) {
			free(key);
			return ret;
		}
		child->key = key;
		*tail = child;
		tail = &child->next;
		skip_ws(jp);
		if (*jp->p == ',') {
			jp->p++;
			continue;
		}
		if (*jp->p != close)
			return -EINVAL;
		jp->p++;
		return 0;
	}
}

static int parse_number(struct jparser *jp, struct bc_json *j)
{
	const char *s = jp->p;
	char *end;
	bool integer = true;

	if (*s == '-')
		s++;
	if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] >= '0' && s[1] <= '9'))
		return -EINVAL; /* no leading zeros */
	while (*s >= '0' && *s <= '9')
		s++;
	if (*s == '.') {
		integer = false;
		s++;
		if (*s < '0' || *s > '9')
			return -EINVAL;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	if (*s == 'e' || *s == 'E') {
		integer = false;
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (*s < '0' || *s > '9')
			return -EINVAL;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	j->str = strndup(jp->p, (size_t)(s - jp->p));
	if (!j->str)
		return -ENOMEM;
	j->num = strtod(j->str, &end);
	if (integer && j->str[0] != '-') {
		errno = 0;
		j->u64 = strtoull(j->str, &end, 10);
		j->is_u64 = errno == 0;
	}
	jp->p = s;
	return 0;
}

static int parse_value(struct jparser *jp, struct bc_json **out)
{
	struct bc_json *j;
	int ret = 0;

	skip_ws(jp);
	if (++jp->depth > JSON_MAX_DEPTH)
		return -EINVAL;
	switch (*jp->p) {
	case '{':
	case '[':
		j = node_new(*jp->p == '{' ? BC_JSON_OBJECT : BC_JSON_ARRAY);
		if (!j)
			return -ENOMEM;
		ret = parse_members(jp, j, j->type == BC_JSON_OBJECT);
		break;
	case '"':
		j = node_new(BC_JSON_STRING);
		if (!j)
			return -ENOMEM;
		ret = parse_string(jp, &j->str);
		break;
	case 't':
	case 'f':
	case 'n':
		j = node_new(*jp->p == 'n' ? BC_JSON_NULL : BC_JSON_BOOL);
		if (!j)
			return -ENOMEM;
		if (!strncmp(jp->p, "true", 4)) {
			j->b = true;
			jp->p += 4;
		} else if (!strncmp(jp->p, "false", 5)) {
			jp->p += 5;
		} else if (!strncmp(jp->p, "null", 4)) {
			jp->p += 4;
		} else {
			ret = -EINVAL;
		}
		break;
	default:
		j = node_new(BC_JSON_NUMBER);
		if (!j)
			return -ENOMEM;
		ret = parse_number(jp, j);
		break;
	}
	jp->depth--;
	if (ret < 0) {
		bc_json_free(j);
		return ret;
	}
	*out = j;
	return 0;
}

int bc_json_parse(const char *text, struct bc_json **out)
{
	struct jparser jp = { .p = text };
	struct bc_json *j;
	int ret;

	ret = parse_value(&jp, &j);
	if (ret < 0)
		return ret;
	skip_ws(&jp);
	if (*jp.p) {
		bc_json_free(j);
		return -EINVAL;
	}
	*out = j;
	return 0;
}

const struct bc_json *bc_json_get(const struct bc_json *obj, const char *key)
{
	const struct bc_json *c;

	if (!obj || obj->type != BC_JSON_OBJECT)
		return NULL;
	for (c = obj->child; c; c = c->next)
		if (c->key && !strcmp(c->key, key))
			return c;
	return NULL;
}

const char *bc_json_str(const struct bc_json *obj, const char *key)
{
	const struct bc_json *j = bc_json_get(obj, key);

	return j && j->type == BC_JSON_STRING ? j->str : NULL;
}

double bc_json_num(const struct bc_json *obj, const char *key)
{
	const struct bc_json *j = bc_json_get(obj, key);

	return j && j->type == BC_JSON_NUMBER ? j->num : 0.0;
}

uint64_t bc_json_u64(const struct bc_json *obj, const char *key)
{
	const struct bc_json *j = bc_json_get(obj, key);

	if (!j)
		return 0;
	if (j->type == BC_JSON_BOOL)
		return j->b;
	return j->type == BC_JSON_NUMBER && j->is_u64 ? j->u64 : 0;
}

bool bc_json_bool(const struct bc_json *obj, const char *key)
{
	const struct bc_json *j = bc_json_get(obj, key);

	if (!j)
		return false;
	if (j->type == BC_JSON_NUMBER)
		return j->num != 0;
	return j->type == BC_JSON_BOOL && j->b;
}
