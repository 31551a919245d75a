/* SPDX-License-Identifier: BSD-3-Clause */
/* Control commands with one reply: status, get, set, mode. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

void ctl_cmd_status(struct bc_control *ctl, struct bc_tbuf *out)
{
	bc_control_status_json(&ctl->src, out);
}

static void unknown_tunable(const char *name, struct bc_tbuf *out)
{
	struct bc_tbuf names = { 0 };

	bc_tuntext_names(&names);
	bc_json_error(out, "unknown tunable '%s'; known: %s", name, names.p ? names.p : "");
	bc_tbuf_free(&names);
}

void ctl_cmd_get(struct bc_control *ctl, const char *name, struct bc_tbuf *out)
{
	struct bc_engine *e = ctl->src.engine;
	const struct bc_tunable_info *ti;
	struct bc_jw w;
	unsigned i, n;
	uint64_t v;

	bc_jw_init(&w, out);
	if (!name) {
		bc_jw_begin(&w, NULL);
		bc_jw_str(&w, "mode", bc_mode_name(bc_engine_mode(e)));
		bc_jw_begin(&w, "tunables");
		n = bc_tunable_count();
		for (i = 0; i < n; i++) {
			ti = bc_tunable_info(i);
			if (ti && bc_engine_get(e, ti->name, &v) == 0)
				bc_jw_u64(&w, ti->name, v);
		}
		bc_jw_end(&w);
		bc_jw_end(&w);
		return;
	}
	ti = bc_tuntext_find(name);
	if (!ti || bc_engine_get(e, name, &v) < 0) {
		unknown_tunable(name, out);
		return;
	}
	bc_jw_begin(&w, NULL);
	bc_jw_str(&w, "name", ti->name);
	bc_jw_u64(&w, "value", v);
	bc_jw_str(&w, "unit", ti->unit);
	bc_jw_u64(&w, "min", ti->min);
	bc_jw_u64(&w, "max", ti->max);
	bc_jw_u64(&w, "default", ti->def);
	bc_jw_str(&w, "help", ti->help);
	bc_jw_end(&w);
}

void ctl_cmd_set(struct bc_control *ctl, const char *name, const char *value,
		 struct bc_tbuf *out)
{
	const struct bc_tunable_info *ti = bc_tuntext_find(name);
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
	why[0] = 0;
	ret = bc_engine_set(ctl->src.engine, name, v, why, sizeof(why));
	if (ret == -ENOENT) {
		unknown_tunable(name, out);
		return;
	}
	if (ret < 0) {
		if (why[0])
			bc_json_error(out, "%s", why);
		else
			bc_json_error(out, "cannot set %s to %llu: %s", name, (unsigned long long)v,
				       strerror(-ret));
		return;
	}
	if (bc_engine_get(ctl->src.engine, name, &now) < 0)
		now = v;
	bc_jw_init(&w, out);
	bc_jw_begin(&w, NULL);
	bc_jw_bool(&w, "ok", true);
	bc_jw_str(&w, "name", name);
	bc_jw_u64(&w, "value", now);
	bc_jw_str(&w, "unit", ti->unit);
	bc_jw_end(&w);
}

void ctl_cmd_mode(struct bc_control *ctl, const char *name, struct bc_tbuf *out)
{
	struct bc_engine *e = ctl->src.engine;
	struct bc_engine_stats st;
	enum bc_mode m, prev;
	struct bc_jw w;
	char why[512];
	int ret;

	if (bc_mode_parse(name, &m) < 0) {
		bc_json_error(out, "unknown mode '%s'; known: writeback, writethrough, writearound, "
			       "passthrough", name);
		return;
	}
	prev = bc_engine_mode(e);
	why[0] = 0;
	ret = bc_engine_set_mode(e, m, why, sizeof(why));
	if (ret < 0) {
		bc_json_error(out, "cannot switch to %s: %s", bc_mode_name(m),
			       why[0] ? why : strerror(-ret));
		return;
	}
	bc_engine_get_stats(e, &st);
	bc_jw_init(&w, out);
	bc_jw_begin(&w, NULL);
	bc_jw_bool(&w, "ok", true);
	bc_jw_str(&w, "mode", bc_mode_name(bc_engine_mode(e)));
	bc_jw_str(&w, "previous", bc_mode_name(prev));
	bc_jw_u64(&w, "dirty_blocks", st.dirty_blocks);
	bc_jw_end(&w);
}
