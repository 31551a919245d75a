/* SPDX-License-Identifier: BSD-3-Clause */
/* Control commands with one reply: status, get, set, mode. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "control.h"

void ctl_cmd_status(struct cli_control *ctl, struct cli_buf *out)
{
	cli_status_json(&ctl->src, out);
}

static void unknown_tunable(const char *name, struct cli_buf *out)
{
	struct cli_buf names = { 0 };

	cli_tunable_names(&names);
	cli_json_error(out, "unknown tunable '%s'; known: %s", name, names.p ? names.p : "");
	cli_buf_free(&names);
}

void ctl_cmd_get(struct cli_control *ctl, const char *name, struct cli_buf *out)
{
	struct bc_engine *e = ctl->src.engine;
	const struct bc_tunable_info *ti;
	struct cli_jw w;
	unsigned i, n;
	uint64_t v;

	cli_jw_init(&w, out);
	if (!name) {
		cli_jw_begin(&w, NULL);
		cli_jw_str(&w, "mode", bc_mode_name(bc_engine_mode(e)));
		cli_jw_begin(&w, "tunables");
		n = bc_tunable_count();
		for (i = 0; i < n; i++) {
			ti = bc_tunable_info(i);
			if (ti && bc_engine_get(e, ti->name, &v) == 0)
				cli_jw_u64(&w, ti->name, v);
		}
		cli_jw_end(&w);
		cli_jw_end(&w);
		return;
	}
	ti = cli_tunable_find(name);
	if (!ti || bc_engine_get(e, name, &v) < 0) {
		unknown_tunable(name, out);
		return;
	}
	cli_jw_begin(&w, NULL);
	cli_jw_str(&w, "name", ti->name);
	cli_jw_u64(&w, "value", v);
	cli_jw_str(&w, "unit", ti->unit);
	cli_jw_u64(&w, "min", ti->min);
	cli_jw_u64(&w, "max", ti->max);
	cli_jw_u64(&w, "default", ti->def);
	cli_jw_str(&w, "help", ti->help);
	cli_jw_end(&w);
}

void ctl_cmd_set(struct cli_control *ctl, const char *name, const char *value,
		 struct cli_buf *out)
{
	const struct bc_tunable_info *ti = cli_tunable_find(name);
	struct cli_jw w;
	char why[512];
	uint64_t v, now;
	int ret;

	if (!ti) {
		unknown_tunable(name, out);
		return;
	}
	if (cli_tunable_parse(ti, value, &v, why, sizeof(why)) < 0) {
		cli_json_error(out, "%s", why);
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
			cli_json_error(out, "%s", why);
		else
			cli_json_error(out, "cannot set %s to %llu: %s", name, (unsigned long long)v,
				       strerror(-ret));
		return;
	}
	if (bc_engine_get(ctl->src.engine, name, &now) < 0)
		now = v;
	cli_jw_init(&w, out);
	cli_jw_begin(&w, NULL);
	cli_jw_bool(&w, "ok", true);
	cli_jw_str(&w, "name", name);
	cli_jw_u64(&w, "value", now);
	cli_jw_str(&w, "unit", ti->unit);
	cli_jw_end(&w);
}

void ctl_cmd_mode(struct cli_control *ctl, const char *name, struct cli_buf *out)
{
	struct bc_engine *e = ctl->src.engine;
	struct bc_engine_stats st;
	enum bc_mode m, prev;
	struct cli_jw w;
	char why[512];
	int ret;

	if (bc_mode_parse(name, &m) < 0) {
		cli_json_error(out, "unknown mode '%s'; known: writeback, writethrough, writearound, "
			       "passthrough", name);
		return;
	}
	prev = bc_engine_mode(e);
	why[0] = 0;
	ret = bc_engine_set_mode(e, m, why, sizeof(why));
	if (ret < 0) {
		cli_json_error(out, "cannot switch to %s: %s", bc_mode_name(m),
			       why[0] ? why : strerror(-ret));
		return;
	}
	bc_engine_get_stats(e, &st);
	cli_jw_init(&w, out);
	cli_jw_begin(&w, NULL);
	cli_jw_bool(&w, "ok", true);
	cli_jw_str(&w, "mode", bc_mode_name(bc_engine_mode(e)));
	cli_jw_str(&w, "previous", bc_mode_name(prev));
	cli_jw_u64(&w, "dirty_blocks", st.dirty_blocks);
	cli_jw_end(&w);
}
