/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Drain progress: a bar redrawn in place on a terminal; elsewhere (a log, a
 * pipe) one plain line every few seconds.
 */
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli.h"

#define PLAIN_INTERVAL_NS (2ull * 1000 * 1000 * 1000)
#define RATE_MIN_NS (100ull * 1000 * 1000)

void cli_progress_init(struct cli_progress *p, FILE *f, const char *what)
{
	memset(p, 0, sizeof(*p));
	p->f = f;
	p->what = what;
	p->tty = isatty(fileno(f));
}

static unsigned term_width(FILE *f)
{
	struct winsize ws;

	if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
		return ws.ws_col;
	return 80;
}

static const char *eta_text(uint64_t left, double rate, char *buf, size_t len)
{
	unsigned long long s;

	if (left == 0) {
		snprintf(buf, len, "0:00");
		return buf;
	}
	if (rate < 1.0) {
		snprintf(buf, len, "--:--");
		return buf;
	}
	s = (unsigned long long)((double)left / rate + 0.5);
	if (s >= 3600)
		snprintf(buf, len, "%llu:%02llu:%02llu", s / 3600, s / 60 % 60, s % 60);
	else
		snprintf(buf, len, "%llu:%02llu", s / 60, s % 60);
	return buf;
}

void cli_progress_update(struct cli_progress *p, uint64_t dirty_bytes, uint64_t wb_bytes)
{
	uint64_t now = bc_now_ns(), done;
	char left[32], rate[32], eta[32], line[256];
	unsigned pct;

	if (!p->t0_ns) {
		p->t0_ns = p->rate_ns = now;
		p->wb0 = p->rate_bytes = wb_bytes;
	}
	/* Writes arriving meanwhile can make the amount grow. */
	if (dirty_bytes > p->total)
		p->total = dirty_bytes;
	done = p->total - dirty_bytes;
	pct = p->total ? (unsigned)(done * 100 / p->total) : 100;
	/* Rate between reports, smoothed. */
	if (now - p->rate_ns >= RATE_MIN_NS) {
		double inst = (double)(wb_bytes - p->rate_bytes) * 1e9 / (double)(now - p->rate_ns);

		p->rate = p->rate_ns == p->t0_ns ? inst : 0.7 * p->rate + 0.3 * inst;
		p->rate_ns = now;
		p->rate_bytes = wb_bytes;
	}
	bc_human_bytes(dirty_bytes, left, sizeof(left));
	bc_human_bytes((uint64_t)p->rate, rate, sizeof(rate));
	eta_text(dirty_bytes, p->rate, eta, sizeof(eta));
	if (p->tty) {
		unsigned width = term_width(p->f), barw, fill, i;
		int n;

		n = snprintf(line, sizeof(line), " %3u%% %11s left %11s/s  ETA %5s", pct, left, rate,
			     eta);
		barw = width > (unsigned)n + strlen(p->what) + 6 ?
			       width - (unsigned)n - (unsigned)strlen(p->what) - 6 : 0;
		if (barw > 50)
			barw = 50;
		fill = p->total ? (unsigned)(done * barw / p->total) : barw;
		fprintf(p->f, "\r%s [", p->what);
		for (i = 0; i < barw; i++)
			fputc(i < fill ? '#' : '.', p->f);
		fprintf(p->f, "]%s\033[K", line);
		fflush(p->f);
		p->drawn = true;
	} else if (!p->last_ns || now - p->last_ns >= PLAIN_INTERVAL_NS) {
		fprintf(p->f, "%s: %s left of %s (%u%%), writing back %s/s, ETA %s\n", p->what,
			left, bc_human_bytes(p->total, line, sizeof(line)), pct, rate, eta);
		fflush(p->f);
		p->last_ns = now;
	}
}

void cli_progress_end(struct cli_progress *p)
{
	if (p->drawn) {
		fputc('\n', p->f);
		fflush(p->f);
		p->drawn = false;
	}
}
