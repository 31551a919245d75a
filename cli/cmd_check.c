/* SPDX-License-Identifier: BSD-3-Clause */
/* blkcache check: verify a cache device offline and report every problem. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blkcache/check.h"
#include "cli.h"

static void check_usage(FILE *f)
{
	fprintf(f,
		"usage: blkcache check --cache DEV [--origin DEV] [--name NAME] [--json] [--quiet]\n"
		"\n"
		"Verify a cache device offline (nothing is written): both superblock copies, the\n"
		"segment header at every ring position, the log exactly as recovery walks it,\n"
		"every entry and the checksum of every data block in the log, and with --origin\n"
		"the label on the origin.  Every problem is reported with its location and what\n"
		"recovery would make of it.\n"
		"\n"
		"Errors are damage or states no crash can leave; notices are states that are\n"
		"normal after a crash (kill -9 or power loss), which recovery handles.\n"
		"\n"
		"  --cache DEV   the cache device (must not be in use by 'blkcache serve')\n"
		"  --origin DEV  also check the origin against the cache (its label or identity);\n"
		"                with several origins, check this one's ring\n"
		"  --name NAME   with several origins: check this one's ring (default: each)\n"
		"  --json        print one JSON object (the findings in \"problems\")\n"
		"  --quiet       print only the errors (no notices, no summary; not with --json)\n"
		"\n"
		"Exit status: 0 consistent (notices only), 1 problems found, 2 usage error or\n"
		"the device could not be checked (cannot be opened, in use).\n");
}

struct item {
	struct bc_check_finding f;
	char *loc, *msg;
};

struct collect {
	bool json, quiet;
	struct item *items;
	size_t n, cap;
	bool oom;
};

static const char *sev_name(enum bc_check_severity s)
{
	return s == BC_CHECK_ERROR ? "error" : "notice";
}

static const char *area_name(enum bc_check_area a)
{
	switch (a) {
	case BC_CHECK_DEVICE: return "device";
	case BC_CHECK_SUPERBLOCK: return "superblock";
	case BC_CHECK_LOG: return "log";
	case BC_CHECK_SEGMENT: return "segment";
	case BC_CHECK_ENTRY: return "entry";
	case BC_CHECK_DATA: return "data";
	case BC_CHECK_LABEL: return "label";
	}
	return "unknown";
}

static void on_finding(void *arg, const struct bc_check_finding *f)
{
	struct collect *col = arg;
	char loc[300], where[200];

	bc_check_locate(f, where, sizeof(where));
	if (f->origin)
		snprintf(loc, sizeof(loc), "origin '%s', %s", f->origin, where);
	else
		snprintf(loc, sizeof(loc), "%s", where);
	if (!col->json) {
		if (col->quiet && f->severity != BC_CHECK_ERROR)
			return;
		printf("%-6s %s: %s [recovery: %s]\n", f->severity == BC_CHECK_ERROR ? "ERROR" : "notice",
		       loc, f->msg, bc_check_recovery_name(f->recovery));
		return;
	}
	if (col->n == col->cap) {
		size_t cap = col->cap ? col->cap * 2 : 64;
		struct item *p = realloc(col->items, cap * sizeof(*p));

		if (!p) {
			col->oom = true;
			return;
		}
		col->items = p;
		col->cap = cap;
	}
	col->items[col->n].f = *f;
	col->items[col->n].loc = strdup(loc);
	col->items[col->n].msg = strdup(f->msg);
	if (!col->items[col->n].loc || !col->items[col->n].msg)
		col->oom = true;
	col->items[col->n].f.msg = NULL;
	col->n++;
}

static void jw_array_begin(struct bc_jw *w, const char *key)
{
	if (w->depth > 0 && w->count[w->depth - 1]++)
		bc_tbuf_add(w->b, ",", 1);
	bc_tbuf_json_str(w->b, key);
	bc_tbuf_add(w->b, ":[", 2);
	if (w->depth < BC_JW_MAX_DEPTH)
		w->count[w->depth] = 0;
	w->depth++;
}

static void jw_array_end(struct bc_jw *w)
{
	w->depth--;
	bc_tbuf_add(w->b, "]", 1);
}

static void print_json(const char *cache, const char *origin, const struct bc_check_result *r,
		       const struct collect *col)
{
	struct bc_tbuf b = { 0 };
	struct bc_jw w;
	size_t i;

	bc_jw_init(&w, &b);
	bc_jw_begin(&w, NULL);
	bc_jw_str(&w, "cache", cache);
	if (origin)
		bc_jw_str(&w, "origin", origin);
	bc_jw_bool(&w, "consistent", r->errors == 0);
	bc_jw_bool(&w, "clean", r->errors == 0 && r->notices == 0);
	bc_jw_u64(&w, "errors", r->errors);
	bc_jw_u64(&w, "notices", r->notices);
	bc_jw_bool(&w, "superblock_ok", r->superblock_ok);
	if (r->superblock_ok) {
		bc_jw_u64(&w, "format_version", r->format_version);
		if (r->format_version >= 3) {
			bc_jw_u64(&w, "origins", r->origins);
			bc_jw_str(&w, "origin_names", r->origin_names);
			bc_jw_u64(&w, "origins_checked", r->origins_checked);
			bc_jw_str(&w, "origin_name", r->origin_name);
		}
		bc_jw_u64(&w, "superblock_copy", (uint64_t)r->sb_copy);
		bc_jw_u64(&w, "superblock_generation", r->sb_generation);
		bc_jw_str(&w, "cache_uuid", r->cache_uuid);
		bc_jw_str(&w, "origin_uuid", r->origin_uuid);
		bc_jw_u64(&w, "cache_size", r->cache_size);
		bc_jw_u64(&w, "export_size", r->export_size);
		bc_jw_u64(&w, "origin_size", r->origin_size);
		bc_jw_u64(&w, "segment_size", r->segment_size);
		bc_jw_u64(&w, "nr_segments", r->nr_segments);
		bc_jw_u64(&w, "header_blocks", r->header_blocks);
		bc_jw_u64(&w, "data_blocks", r->data_blocks);
		bc_jw_str(&w, "mode", bc_mode_name((enum bc_mode)r->mode));
		bc_jw_bool(&w, "clean_shutdown", r->clean_shutdown);
		bc_jw_bool(&w, "detached", r->detached);
		bc_jw_u64(&w, "written_back_seq", r->written_back_seq);
		bc_jw_u64(&w, "last_seq", r->last_seq);
	}
	bc_jw_bool(&w, "ring_checked", r->ring_checked);
	if (r->ring_checked) {
		bc_jw_u64(&w, "chain_end", r->chain_end);
		bc_jw_u64(&w, "log_end", r->log_end);
		bc_jw_str(&w, "log_end_reason", r->end_reason);
		bc_jw_u64(&w, "flushed_seq", r->flushed_seq);
		bc_jw_u64(&w, "log_segments", r->log_segments);
		bc_jw_u64(&w, "entries", r->entries);
		bc_jw_u64(&w, "dirty_entries", r->dirty_entries);
		bc_jw_u64(&w, "data_blocks_verified", r->data_blocks_verified);
		bc_jw_u64(&w, "data_mismatches", r->data_mismatches);
		bc_jw_u64(&w, "headers_valid", r->headers_valid);
		bc_jw_u64(&w, "headers_beyond", r->headers_beyond);
	}
	bc_jw_bool(&w, "origin_checked", r->origin_checked);
	jw_array_begin(&w, "problems");
	for (i = 0; i < col->n; i++) {
		const struct item *it = &col->items[i];

		bc_jw_begin(&w, NULL);
		bc_jw_str(&w, "severity", sev_name(it->f.severity));
		bc_jw_str(&w, "area", area_name(it->f.area));
		bc_jw_str(&w, "location", it->loc ? it->loc : "");
		if (it->f.sb_copy >= 0)
			bc_jw_u64(&w, "sb_copy", (uint64_t)it->f.sb_copy);
		if (it->f.seq)
			bc_jw_u64(&w, "seq", it->f.seq);
		if (it->f.pos >= 0)
			bc_jw_u64(&w, "position", (uint64_t)it->f.pos);
		if (it->f.entry >= 0) {
			bc_jw_u64(&w, "entry", (uint64_t)it->f.entry);
			bc_jw_u64(&w, "block", it->f.block);
		}
		bc_jw_str(&w, "recovery", bc_check_recovery_name(it->f.recovery));
		bc_jw_str(&w, "message", it->msg ? it->msg : "");
		bc_jw_end(&w);
	}
	jw_array_end(&w);
	bc_jw_end(&w);
	if (b.failed || col->oom) {
		cli_err("check: out of memory building the JSON report");
	} else {
		fputs(b.p, stdout);
	}
	bc_tbuf_free(&b);
}

static void print_summary(const char *cache, const char *origin, const struct bc_check_result *r)
{
	char a[32], b[32], c[32], d[32];

	printf("summary of %s:\n", cache);
	if (r->superblock_ok && r->format_version >= 3)
		printf("  origins       %u (%s); %u ring(s) checked%s%s%s\n", r->origins,
		       r->origin_names[0] ? r->origin_names : "none", r->origins_checked,
		       r->origins_checked ? ", below: origin '" : "", r->origin_name,
		       r->origins_checked ? "'" : "");
	if (r->superblock_ok) {
		printf("  geometry      %u segments of %s (%u header + %u data blocks); cache %s, "
		       "exported %s of a %s origin\n", r->nr_segments,
		       bc_human_bytes(r->segment_size, a, sizeof(a)), r->header_blocks, r->data_blocks,
		       bc_human_bytes(r->cache_size, b, sizeof(b)),
		       bc_human_bytes(r->export_size, c, sizeof(c)),
		       bc_human_bytes(r->origin_size, d, sizeof(d)));
		printf("  identity      cache UUID %s, origin UUID %s\n", r->cache_uuid, r->origin_uuid);
		printf("  superblock    copy %d current (generation %llu); %s%s; mode %s\n", r->sb_copy,
		       (unsigned long long)r->sb_generation,
		       r->clean_shutdown ? "clean shutdown" : "not shut down cleanly (crash, or in use)",
		       r->detached ? ", detached" : "",
		       bc_mode_name((enum bc_mode)r->mode));
	} else {
		printf("  superblock    no valid copy\n");
	}
	if (r->ring_checked) {
		if (r->log_segments)
			printf("  log           %llu segment(s), %llu..%llu;", (unsigned long long)r->log_segments,
			       (unsigned long long)(r->written_back_seq + 1), (unsigned long long)r->log_end);
		else
			printf("  log           empty;");
		printf(" written back up to %llu, last_seq %llu, flushed up to %llu\n",
		       (unsigned long long)r->written_back_seq, (unsigned long long)r->last_seq,
		       (unsigned long long)r->flushed_seq);
		printf("  log end       after segment %llu: %s\n", (unsigned long long)r->log_end,
		       r->end_reason);
		printf("  entries       %llu, %llu dirty; %llu data blocks verified, %llu mismatching\n",
		       (unsigned long long)r->entries, (unsigned long long)r->dirty_entries,
		       (unsigned long long)r->data_blocks_verified,
		       (unsigned long long)r->data_mismatches);
		printf("  headers       %llu valid, %llu beyond the end of the log\n",
		       (unsigned long long)r->headers_valid, (unsigned long long)r->headers_beyond);
	} else {
		printf("  log           not checked\n");
	}
	if (origin)
		printf("  origin        %s: %s %s\n", origin, r->origin_labeled ? "label" : "identity",
		       r->origin_checked ? "checked" : "not checked");
	else
		printf("  origin        not checked (no --origin)\n");
	if (r->errors)
		printf("  result        %u problem(s) found: %u error(s), %u notice(s)\n",
		       r->errors + r->notices, r->errors, r->notices);
	else if (r->notices)
		printf("  result        consistent: %u notice(s), normal after a crash (recovery "
		       "handles them)\n", r->notices);
	else
		printf("  result        clean: no problems found\n");
}

int cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cache", required_argument, NULL, 'c' },
		{ "origin", required_argument, NULL, 'o' },
		{ "name", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const struct bc_check_ops ops = { .finding = on_finding };
	const char *cache = NULL, *origin = NULL, *name = NULL;
	struct collect col = { 0 };
	struct bc_check_result res;
	size_t i;
	int c, ret;

	while ((c = getopt_long(argc, argv, "c:o:n:jqh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': cache = optarg; break;
		case 'n': name = optarg; break;
		case 'o': origin = optarg; break;
		case 'j': col.json = true; break;
		case 'q': col.quiet = true; break;
		case 'h': check_usage(stdout); return 0;
		default: check_usage(stderr); return 2;
		}
	}
	if (!cache || optind != argc) {
		if (optind != argc)
			cli_err("check: unexpected argument '%s'", argv[optind]);
		else
			cli_err("check: --cache is required");
		check_usage(stderr);
		return 2;
	}
	cli_log_to_stderr(0);
	ret = bc_cache_check_origin(cache, origin, name, &ops, &col, &res);
	if (ret < 0) {
		cli_err("check: %s", res.why);
		ret = 2;
		goto out;
	}
	if (col.json)
		print_json(cache, origin, &res, &col);
	else if (!col.quiet)
		print_summary(cache, origin, &res);
	ret = res.errors ? 1 : 0;
out:
	for (i = 0; i < col.n; i++) {
		free(col.items[i].loc);
		free(col.items[i].msg);
	}
	free(col.items);
	return ret;
}
