/* SPDX-License-Identifier: BSD-3-Clause */
/* A small JSON reader. */
#ifndef BC_UTIL_JSON_H
#define BC_UTIL_JSON_H

#include <stdbool.h>
#include <stdint.h>

/* json.c: a small JSON reader */
enum bc_json_type {
	BC_JSON_NULL,
	BC_JSON_BOOL,
	BC_JSON_NUMBER,
	BC_JSON_STRING,
	BC_JSON_ARRAY,
	BC_JSON_OBJECT,
};
struct bc_json {
	enum bc_json_type type;
	char *key;                 /* member name inside an object */
	char *str;                 /* STRING: decoded; NUMBER: the literal */
	double num;
	uint64_t u64;
	bool is_u64;               /* a non-negative integer that fits */
	bool b;
	struct bc_json *child;    /* ARRAY / OBJECT members */
	struct bc_json *next;
};
int bc_json_parse(const char *text, struct bc_json **out); /* 0, -EINVAL, -ENOMEM */
void bc_json_free(struct bc_json *j);
const struct bc_json *bc_json_get(const struct bc_json *obj, const char *key);
const char *bc_json_str(const struct bc_json *obj, const char *key);   /* NULL if absent */
double bc_json_num(const struct bc_json *obj, const char *key);        /* 0 if absent */
uint64_t bc_json_u64(const struct bc_json *obj, const char *key);      /* 0 if absent */
bool bc_json_bool(const struct bc_json *obj, const char *key);

#endif
