/* SPDX-License-Identifier: BSD-3-Clause */
/* Small helpers for the C test programs (exit 0 pass, 1 fail, 77 skip). */
#ifndef BC_TESTUTIL_H
#define BC_TESTUTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "blkcache/engine.h"
#include "blkcache/loop.h"

extern int t_failures;
extern unsigned long t_checks;

#define CHECK(cond, ...)                                                                     \
	do {                                                                                 \
		t_checks++;                                                                  \
		if (!(cond)) {                                                               \
			t_failures++;                                                        \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);      \
			fprintf(stderr, __VA_ARGS__);                                        \
			fputc('\n', stderr);                                                 \
		}                                                                            \
	} while (0)

/* Print the summary line and return the exit status. */
int t_finish(const char *what);

/* A fresh temp dir (removed by t_cleanup) and sparse files inside it. */
const char *t_tmpdir(void);
char *t_file(const char *name, uint64_t size); /* malloc'd path */
void t_cleanup(void);
/* Copy file @from to @to (created or truncated): 0 or -1. */
int t_copy_file(const char *from, const char *to);

/* Synchronous requests against a target on @loop. */
int t_io(struct bc_loop *loop, const struct bc_target *t, int op, uint32_t flags, uint64_t off,
	 uint64_t len, void *buf);

/* A xorshift step of *@state: a number below @n (0 if @n is 0). */
uint64_t t_rnd(uint64_t *state, uint64_t n);

/* Deterministic block content: block @blk, version @ver. */
void t_fill(void *buf, uint64_t len, uint64_t off, uint32_t ver);
int t_verify(const void *buf, uint64_t len, uint64_t off, uint32_t ver);

void *t_alloc(size_t len);

/* An engine on fresh files in the temp dir, for in-process engine tests. */
extern struct bc_loop *t_loop;
extern char *t_cache_path, *t_origin_path;
extern struct bc_engine_config t_cfg;
/* Format a new cache (segment size 0: default) on fresh files. */
/* Format a fresh cache and origin (format version t_format_version: 0 the
 * default) and point t_cfg at them. */
extern uint32_t t_format_version;
void t_engine_fresh(uint64_t cache_size, uint64_t origin_size, uint32_t seg);
/* Open it; a failure ends the test. */
struct bc_engine *t_engine_open(void);
/* Read [off, off+len) of the fixture's origin file itself into @buf: 0 or -1. */
int t_origin_read(void *buf, uint64_t off, uint64_t len);
/* Does the origin file itself hold version @ver there?  0 yes, -1 no. */
int t_origin_verify(uint64_t off, uint64_t len, uint32_t ver);
/* Drop the engine without its clean shutdown, as after kill -9. */
void t_engine_crash(struct bc_engine *e);
/* Write back every dirty block (bc_engine_drain); 0 or -1. */
int t_drain(struct bc_engine *e);
/* Free the fixture's loop and paths. */
void t_engine_fixture_done(void);

#endif
