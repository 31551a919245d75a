/* SPDX-License-Identifier: BSD-3-Clause */
/* Control commands about the set of origins: "origins" (the list) and
 * "attach NAME PATH [SIZE]" (another origin, live). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "blkcache/log.h"
#include "internal.h"

/* One word for what an origin is doing. */
static const char *origin_state(struct bc_control *ctl, const struct bc_control_origin *o,
				const struct bc_engine_stats *st)
{
	switch (ctl_drain_state(ctl, bc_engine_name(o->engine))) {
	case CTL_DETACHING:
		return "detaching";
	case CTL_FLUSHING:
		return "flushing";
	case CTL_IDLE:
		break;
	}
	if (st->detached)
		return "detached";
	if (st->degraded)
		return "degraded";
	if (st->writeback_failing)
		return "writeback-failing";
	return "serving";
}

static void origin_entry(struct bc_control *ctl, struct bc_jw *w,
			 const struct bc_control_origin *o)
{
	struct bc_engine_stats st;
	char dev[32];

	bc_co_stats(o, &st);
	bc_jw_begin(w, NULL);
	bc_jw_str(w, "name", bc_engine_name(o->engine));
	bc_jw_str(w, "origin", bc_engine_origin_path(o->engine));
	bc_jw_u64(w, "export_size", st.export_size);
	bc_jw_str(w, "mode", bc_mode_name((enum bc_mode)st.mode));
	bc_jw_u64(w, "dirty_blocks", st.dirty_blocks);
	bc_jw_u64(w, "dirty_bytes", st.dirty_blocks * BC_UNIT_BLOCK);
	bc_jw_u64(w, "cached_blocks", st.cached_blocks);
	bc_jw_u64(w, "segments_total", st.segments_total);
	bc_jw_u64(w, "segments_used", st.segments_used);
	bc_jw_u64(w, "writeback_failing", st.writeback_failing);
	bc_jw_bool(w, "degraded", st.degraded != 0);
	bc_jw_str(w, "state", origin_state(ctl, o, &st));
	if (o->ublk) {
		snprintf(dev, sizeof(dev), "/dev/ublkb%d", bc_ublk_dev_id(o->ublk));
		bc_jw_str(w, "ublk_dev", dev);
	} else {
		ctl_jw_null(w, "ublk_dev");
	}
	bc_jw_end(w);
}

void ctl_cmd_origins(struct bc_control *ctl, const struct bc_control_origin *only,
		     struct bc_tbuf *out)
{
	unsigned i, n = bc_control_count(&ctl->src);
	struct bc_jw w;

	bc_jw_init(&w, out);
	bc_jw_begin(&w, NULL);
	bc_jw_bool(&w, "ok", true);
	bc_jw_str(&w, "cache", ctl->src.cache_path ? ctl->src.cache_path : "");
	ctl_jw_array(&w, "origins");
	for (i = 0; i < n; i++) {
		const struct bc_control_origin *o = bc_control_at(&ctl->src, i);

		if (!only || o == only)
			origin_entry(ctl, &w, o);
	}
	ctl_jw_array_end(&w);
	bc_jw_end(&w);
}

void ctl_cmd_attach(struct bc_control *ctl, const char *name, const char *path,
		    const char *size, struct bc_tbuf *out)
{
	const struct bc_control_origin *o;
	struct bc_engine_stats st;
	struct bc_jw w;
	char why[512];
	int ret;

	if (!ctl->src.attach) {
		bc_json_error(out, "this server cannot attach an origin while it serves; stop it, "
			       "add the origin offline ('blkcache origin add') and start it again");
		return;
	}
	if (ctl->detaching) {
		bc_json_error(out, "a detach of the only origin is in progress; the server shuts "
			       "down when it completes");
		return;
	}
	if (bc_control_find(&ctl->src, name)) {
		bc_json_error(out, "an origin named '%s' is already served; choose another name",
			       name);
		return;
	}
	why[0] = 0;
	ret = ctl->src.attach(ctl->src.host, name, path, size, why, sizeof(why));
	if (ret < 0) {
		bc_json_error(out, "cannot attach %s as origin '%s': %s", path, name,
			       why[0] ? why : strerror(-ret));
		bc_loop_log(ctl->loop, BC_LOG_ERR, "control: cannot attach %s as origin '%s': %s",
			    path, name, why[0] ? why : strerror(-ret));
		return;
	}
	bc_loop_log(ctl->loop, BC_LOG_INFO, "control: attached %s as origin '%s'", path, name);
	bc_jw_init(&w, out);
	bc_jw_begin(&w, NULL);
	bc_jw_bool(&w, "ok", true);
	bc_jw_str(&w, "name", name);
	o = bc_control_find(&ctl->src, name);
	if (o) {
		bc_co_stats(o, &st);
		bc_jw_str(&w, "origin", bc_engine_origin_path(o->engine));
		bc_jw_u64(&w, "export_size", st.export_size);
		bc_jw_u64(&w, "segments_total", st.segments_total);
		bc_jw_str(&w, "mode", bc_mode_name((enum bc_mode)st.mode));
		if (o->ublk) {
			char dev[32];

			snprintf(dev, sizeof(dev), "/dev/ublkb%d", bc_ublk_dev_id(o->ublk));
			bc_jw_str(&w, "ublk_dev", dev);
		}
	}
	bc_jw_end(&w);
}
