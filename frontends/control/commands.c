/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Control commands with one reply: status, get, set, mode.  A command
 * addresses one origin ("origin NAME get ...": @only) or every origin:
 * the reply then has the first origin's answer at the top level (what a
 * server of one origin always answered) and one entry per origin in
 * "origins".
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* The origins a command applies to: @only, or all of them. */
struct targets {
	unsigned n;
	const struct bc_control_origin *o[BC_CONTROL_MAX_ORIGINS];
};

static void targets_of(struct bc_control *ctl, const struct bc_control_origin *only,
		       struct targets *t)
{
	unsigned i, n = bc_control_count(&ctl->src);

	t->n = 0;
	if (only) {
		t->o[t->n++] = only;
		return;
	}
	for (i = 0; i < n && i < BC_CONTROL_MAX_ORIGINS; i++)
		t->o[t->n++] = bc_control_at(&ctl->src, i);
}

static const char *oname(const struct bc_control_origin *o)
{
	return bc_engine_name(o->engine);
}

void ctl_unknown_origin(struct bc_control *ctl, const char *name, struct bc_tbuf *out)
{
	struct bc_tbuf names = { 0 };

	bc_control_names(&ctl->src, &names);
	bc_json_error(out, "unknown origin '%s'; served: %s", name, names.p ? names.p : "none");
	bc_tbuf_free(&names);
}

static void no_origin(struct bc_tbuf *out)
{
	bc_json_error(out, "the cache serves no origin yet; attach one first ('blkcache attach "
		       "NAME DEV')");
}

void ctl_cmd_status(struct bc_control *ctl, const struct bc_control_origin *only,
		    struct bc_tbuf *out)
{
	bc_control_status_json_sel(&ctl->src, only, out);
}

static void unknown_tunable(const char *name, struct bc_tbuf *out)
{
	struct bc_tbuf names = { 0 };

	bc_tuntext_names(&names);
	bc_json_error(out, "unknown tunable '%s'; known: %s", name, names.p ? names.p : "");
	bc_tbuf_free(&names);
}

/* "mode" and every tunable of one engine. */
static void get_all(struct bc_jw *w, struct bc_engine *e)
{
	unsigned i, n = bc_tunable_count();
	uint64_t v;

	bc_jw_str(w, "mode", bc_mode_name(bc_engine_mode(e)));
	bc_jw_begin(w, "tunables");
	for (i = 0; i < n; i++) {
		const struct bc_tunable_info *ti = bc_tunable_info(i);

		if (ti && bc_engine_get(e, ti->name, &v) == 0)
			bc_jw_u64(w, ti->name, v);
	}
	bc_jw_end(w);
}

void ctl_cmd_get(struct bc_control *ctl, const struct bc_control_origin *only, const char *name,
		 struct bc_tbuf *out)
{
	const struct bc_tunable_info *ti = NULL;
	struct targets t;
	struct bc_jw w;
	unsigned i;
	uint64_t v;

	targets_of(ctl, only, &t);
	if (!t.n) {
		no_origin(out);
		return;
	}
	if (name && (!(ti = bc_tuntext_find(name)) || bc_engine_get(t.o[0]->engine, name, &v) < 0)) {
		unknown_tunable(name, out);
		return;
	}
	bc_jw_init(&w, out);
	bc_jw_begin(&w, NULL);
	if (!name) {
		get_all(&w, t.o[0]->engine);
	} else {
		bc_jw_str(&w, "name", ti->name);
		bc_jw_u64(&w, "value", v);
		bc_jw_str(&w, "unit", ti->unit);
		bc_jw_u64(&w, "min", ti->min);
		bc_jw_u64(&w, "max", ti->max);
		bc_jw_u64(&w, "default", ti->def);
		bc_jw_str(&w, "help", ti->help);
	}
	if (!only) {
		ctl_jw_array(&w, "origins");
		for (i = 0; i < t.n; i++) {
			bc_jw_begin(&w, NULL);
			bc_jw_str(&w, "name", oname(t.o[i]));
			if (!name)
				get_all(&w, t.o[i]->engine);
			else if (bc_engine_get(t.o[i]->engine, name, &v) == 0)
				bc_jw_u64(&w, "value", v);
			bc_jw_end(&w);
		}
		ctl_jw_array_end(&w);
	}
	bc_jw_end(&w);
}

/*
 * Per-origin results of a command applied to several origins are written
 * as they come, into @res, at the depth of the elements of an array that
 * results_put() then places into the reply.
 */
static void results_begin(struct bc_jw *rw, struct bc_tbuf *res)
{
	bc_jw_init(rw, res);
	rw->depth = 2;
}

static void results_put(struct bc_jw *w, struct bc_tbuf *res, unsigned n)
{
	ctl_jw_array(w, "origins");
	bc_tbuf_add(w->b, res->p ? res->p : "", res->len);
	w->count[w->depth - 1] = n;
	ctl_jw_array_end(w);
	if (res->failed)
		w->b->failed = true;
	bc_tbuf_free(res);
}

/* The failures of a command applied to several origins, as one message. */
struct failures {
	struct bc_tbuf list;     /* "origin a: why; origin b: why" */
	char first[512];
	unsigned n;
	bool same;               /* every failure says the same */
};

static void failure_add(struct failures *f, const char *origin, const char *why)
{
	if (!f->n++) {
		snprintf(f->first, sizeof(f->first), "%s", why);
		f->same = true;
	} else if (strcmp(f->first, why)) {
		f->same = false;
	}
	bc_tbuf_printf(&f->list, "%sorigin %s: %s", f->list.len ? "; " : "", origin, why);
}

/* The message (NULL: no failure); @others: what the rest did, if any did. */
static const char *failure_text(struct failures *f, unsigned targets, const char *others)
{
	if (!f->n)
		return NULL;
	if (f->n == targets && f->same)
		return f->first; /* every origin refused it for the same reason */
	if (f->n < targets)
		bc_tbuf_printf(&f->list, " (%s)", others);
	return f->list.failed ? "out of memory" : f->list.p;
}

/* Set @ti to @v on one engine: 0, or -errno with @why (never empty). */
static int set_one(const struct bc_control_origin *o, const struct bc_tunable_info *ti, uint64_t v,
		   uint64_t *now, char *why, size_t len)
{
	struct bc_engine *e = o->engine;
	int ret;

	why[0] = 0;
	ret = bc_co_set(o, ti->name, v, why, len);
	if (ret < 0 && !why[0])
		snprintf(why, len, "cannot set %s to %llu: %s", ti->name, (unsigned long long)v,
			 strerror(-ret));
	if (ret == 0 && bc_engine_get(e, ti->name, now) < 0)
		*now = v;
	return ret;
}

/* "set" on several origins: each one's result in "origins"; ok only if
 * every one took it. */
static void set_many(const struct targets *t, const struct bc_tunable_info *ti, uint64_t v,
		     struct bc_tbuf *out)
{
	struct failures fail = { 0 };
	struct bc_tbuf res = { 0 };
	const char *err;
	struct bc_jw w, rw;
	uint64_t now, first = v;
	bool any_ok = false;
	char why[512];
	unsigned i;

	results_begin(&rw, &res);
	for (i = 0; i < t->n; i++) {
		int ret = set_one(t->o[i], ti, v, &now, why, sizeof(why));

		bc_jw_begin(&rw, NULL);
		bc_jw_str(&rw, "name", oname(t->o[i]));
		bc_jw_bool(&rw, "ok", ret == 0);
		if (ret == 0) {
			bc_jw_u64(&rw, "value", now);
			if (!any_ok)
				first = now;
			any_ok = true;
		} else {
			bc_jw_str(&rw, "error", why);
			failure_add(&fail, oname(t->o[i]), why);
		}
		bc_jw_end(&rw);
	}
	err = failure_text(&fail, t->n, "the other origins took it");
	bc_jw_init(&w, out);
	bc_jw_begin(&w, NULL);
	bc_jw_bool(&w, "ok", !err);
	if (err)
		bc_jw_str(&w, "error", err);
	bc_jw_str(&w, "name", ti->name);
	bc_jw_u64(&w, "value", first);
	bc_jw_str(&w, "unit", ti->unit);
	results_put(&w, &res, t->n);
	bc_jw_end(&w);
	bc_tbuf_free(&fail.list);
}

void ctl_cmd_set(struct bc_control *ctl, const struct bc_control_origin *only, const char *name,
		 const char *value, struct bc_tbuf *out)
{
	const struct bc_tunable_info *ti = bc_tuntext_find(name);
	struct targets t;
	struct bc_jw w;
	char why[512];
	uint64_t v, now;
	int ret;

	if (!ti) {
		unknown_tunable(name, out);
		return;
	}
	if (bc_tuntext_parse(ti, value, &v, why, sizeof(why)) < 0) {
		bc_json_error(out, "%s", why);
		return;
	}
	targets_of(ctl, only, &t);
	if (!t.n) {
		no_origin(out);
		return;
	}
	if (t.n > 1) {
		set_many(&t, ti, v, out);
		return;
	}
	ret = set_one(t.o[0], ti, v, &now, why, sizeof(why));
	if (ret == -ENOENT) {
		unknown_tunable(name, out);
		return;
	}
	if (ret < 0) {
		bc_json_error(out, "%s", why);
		return;
	}
	bc_jw_init(&w, out);
	bc_jw_begin(&w, NULL);
	bc_jw_bool(&w, "ok", true);
	bc_jw_str(&w, "name", name);
	bc_jw_u64(&w, "value", now);
	bc_jw_str(&w, "unit", ti->unit);
	if (!only) {
		ctl_jw_array(&w, "origins");
		bc_jw_begin(&w, NULL);
		bc_jw_str(&w, "name", oname(t.o[0]));
		bc_jw_bool(&w, "ok", true);
		bc_jw_u64(&w, "value", now);
		bc_jw_end(&w);
		ctl_jw_array_end(&w);
	}
	bc_jw_end(&w);
}

/* Switch one origin: 0, or -errno with @why. */
static int mode_one(struct bc_control *ctl, const struct bc_control_origin *o, enum bc_mode m,
		    enum bc_mode *prev, char *why, size_t len)
{
	int ret;

	*prev = bc_engine_mode(o->engine);
	if (ctl_drain_state(ctl, oname(o)) == CTL_DETACHING) {
		snprintf(why, len, "cannot switch to %s: origin %s is being detached (it stays in "
			 "passthrough until the detach completes)", bc_mode_name(m), oname(o));
		return -EBUSY;
	}
	why[0] = 0;
	ret = bc_co_set_mode(o, m, why, len);
	if (ret < 0) {
		char tmp[400];

		snprintf(tmp, sizeof(tmp), "%s", why[0] ? why : strerror(-ret));
		snprintf(why, len, "cannot switch to %s: %s", bc_mode_name(m), tmp);
	}
	return ret;
}

/* One origin's result: mode, previous, dirty_blocks. */
static void mode_result(struct bc_jw *w, const struct bc_control_origin *o, enum bc_mode prev)
{
	struct bc_engine_stats st;

	bc_co_stats(o, &st);
	bc_jw_str(w, "mode", bc_mode_name(bc_engine_mode(o->engine)));
	bc_jw_str(w, "previous", bc_mode_name(prev));
	bc_jw_u64(w, "dirty_blocks", st.dirty_blocks);
}

void ctl_cmd_mode(struct bc_control *ctl, const struct bc_control_origin *only, const char *name,
		  struct bc_tbuf *out)
{
	enum bc_mode m, prev, prev0 = BC_CACHE_WRITEBACK;
	struct failures fail = { 0 };
	struct bc_tbuf res = { 0 };
	struct bc_jw w, rw;
	struct targets t;
	const char *err;
	char why[512], others[64];
	int ret, ret0 = 0;
	unsigned i;

	if (bc_mode_parse(name, &m) < 0) {
		bc_json_error(out, "unknown mode '%s'; known: writeback, writethrough, writearound, "
			       "passthrough", name);
		return;
	}
	targets_of(ctl, only, &t);
	if (!t.n) {
		no_origin(out);
		return;
	}
	results_begin(&rw, &res);
	for (i = 0; i < t.n; i++) {
		ret = mode_one(ctl, t.o[i], m, &prev, why, sizeof(why));
		if (i == 0) {
			ret0 = ret;
			prev0 = prev;
		}
		bc_jw_begin(&rw, NULL);
		bc_jw_str(&rw, "name", oname(t.o[i]));
		bc_jw_bool(&rw, "ok", ret == 0);
		if (ret == 0) {
			mode_result(&rw, t.o[i], prev);
		} else {
			bc_jw_str(&rw, "error", why);
			failure_add(&fail, oname(t.o[i]), why);
		}
		bc_jw_end(&rw);
	}
	snprintf(others, sizeof(others), "the other origins switched to %s", bc_mode_name(m));
	err = failure_text(&fail, t.n, others);
	if (err && t.n == 1) {
		/* One origin: the error alone, as a server of one origin answered. */
		bc_json_error(out, "%s", err);
	} else {
		bc_jw_init(&w, out);
		bc_jw_begin(&w, NULL);
		bc_jw_bool(&w, "ok", !err);
		if (err)
			bc_jw_str(&w, "error", err);
		if (ret0 == 0)
			mode_result(&w, t.o[0], prev0);
		else
			bc_jw_str(&w, "mode", bc_mode_name(m));
		if (!only)
			results_put(&w, &res, t.n);
		bc_jw_end(&w);
	}
	bc_tbuf_free(&res);
	bc_tbuf_free(&fail.list);
}
