/* SPDX-License-Identifier: BSD-3-Clause */
/* Tunable values as text: parsing "set" arguments and rendering values. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "control.h"
#include "units.h"

const struct bc_tunable_info *bc_tuntext_find(const char *name)
{
	unsigned i, n = bc_tunable_count();

	for (i = 0; i < n; i++) {
		const struct bc_tunable_info *ti = bc_tunable_info(i);

		if (ti && !strcmp(ti->name, name))
			return ti;
	}
	return NULL;
}

void bc_tuntext_names(struct bc_tbuf *b)
{
	unsigned i, n = bc_tunable_count();

	for (i = 0; i < n; i++) {
		const struct bc_tunable_info *ti = bc_tunable_info(i);

		if (ti)
			bc_tbuf_printf(b, "%s%s", i ? ", " : "", ti->name);
	}
}

static bool is_bytes(const char *unit)
{
	return !strcmp(unit, "bytes") || !strcmp(unit, "bytes/s");
}

int bc_tuntext_parse(const struct bc_tunable_info *ti, const char *s, uint64_t *out,
		      char *why, size_t whylen)
{
	static const char *const yes[] = { "true", "on", "yes", "1" };
	static const char *const no[] = { "false", "off", "no", "0" };
	unsigned long long v;
	const char *p;
	unsigned i;
	int ret;

	if (!strcmp(ti->unit, "bool")) {
		for (i = 0; i < 4; i++) {
			if (!strcasecmp(s, yes[i])) {
				*out = 1;
				return 0;
			}
			if (!strcasecmp(s, no[i])) {
				*out = 0;
				return 0;
			}
		}
		snprintf(why, whylen, "%s is a switch: give true/false, on/off or 1/0, not '%s'",
			 ti->name, s);
		return -EINVAL;
	}
	if (is_bytes(ti->unit)) {
		ret = bc_parse_size(s, out);
		if (ret == -ERANGE) {
			snprintf(why, whylen, "%s: '%s' is too large", ti->name, s);
			return ret;
		}
		if (ret < 0) {
			snprintf(why, whylen, "%s takes a size in %s: a decimal number with an "
				 "optional K, M, G or T suffix (e.g. 4M, 512K, 1048576), not '%s'",
				 ti->name, ti->unit, s);
			return ret;
		}
		return 0;
	}
	for (p = s; isdigit((unsigned char)*p); p++)
		;
	if (p == s || *p) {
		snprintf(why, whylen, "%s takes a whole decimal number (%s), not '%s'", ti->name,
			 ti->unit, s);
		return -EINVAL;
	}
	errno = 0;
	v = strtoull(s, NULL, 10);
	if (errno) {
		snprintf(why, whylen, "%s: '%s' is too large", ti->name, s);
		return -ERANGE;
	}
	*out = v;
	return 0;
}

const char *bc_tuntext_format(const char *unit, uint64_t v, char *buf, size_t len)
{
	char h[32];

	if (!strcmp(unit, "bool"))
		snprintf(buf, len, "%s", v ? "true" : "false");
	else if (is_bytes(unit) && v >= 1024)
		snprintf(buf, len, "%llu %s (%s%s)", (unsigned long long)v, unit,
			 bc_human_bytes(v, h, sizeof(h)), strcmp(unit, "bytes/s") ? "" : "/s");
	else
		snprintf(buf, len, "%llu %s", (unsigned long long)v, unit);
	return buf;
}

const char *bc_tuntext_short(const char *unit, uint64_t v, char *buf, size_t len)
{
	static const char *const sfx[] = { "", "K", "M", "G", "T", "P", "E" };
	unsigned i = 0;

	if (!strcmp(unit, "bool")) {
		snprintf(buf, len, "%s", v ? "true" : "false");
		return buf;
	}
	if (is_bytes(unit))
		while (v >= 1024 && v % 1024 == 0 && i + 1 < sizeof(sfx) / sizeof(sfx[0])) {
			v /= 1024;
			i++;
		}
	snprintf(buf, len, "%llu%s", (unsigned long long)v, sfx[i]);
	return buf;
}
