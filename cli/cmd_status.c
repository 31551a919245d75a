/* SPDX-License-Identifier: BSD-3-Clause */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void status_usage(FILE *f)
{
	fprintf(f,
		"usage: blkcache status [--name NAME] [--control PATH] [--json]\n"
		"\n"
		"Show the mode and counters of a running 'blkcache serve': of each origin\n"
		"it serves (one block per origin when there are several).\n"
		"\n"
		"  --name NAME     only the origin NAME\n"
		"  --control PATH  its control socket (default %s)\n"
		"  --json          print the server's JSON object (the first or named origin's\n"
		"                  fields at the top level, every origin in \"origins\")\n",
		cli_default_control());
}

#define N(key) ((unsigned long long)bc_json_u64(j, key))

static const char *mib(const struct bc_json *j, const char *key, uint64_t mul, char *buf,
		       size_t len)
{
	return bc_human_bytes(bc_json_u64(j, key) * mul, buf, len);
}

static double pct(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

/* One device's queue depth: "avg 12.3, max 32 in flight over N IOs". */
static void human_queue(const struct bc_json *j, const char *key, const char *label)
{
	const struct bc_json *q = bc_json_get(j, key);

	if (!q || !bc_json_u64(q, "submitted"))
		return;
	printf("  %-17s avg %.1f, max %llu IOs in flight (as each of %llu IOs was submitted)\n",
	       label, bc_json_num(q, "avg_inflight"), (unsigned long long)bc_json_u64(q, "max_inflight"),
	       (unsigned long long)bc_json_u64(q, "submitted"));
}

/* Queue depth and the loop's submission batching. */
static void human_queues(const struct bc_json *j)
{
	const struct bc_json *l = bc_json_get(j, "loop");

	human_queue(j, "cache_queue", "cache queue");
	human_queue(j, "origin_queue", "origin queue");
	if (l && bc_json_u64(l, "enters"))
		printf("  submissions       %.1f IOs per io_uring_enter (%llu enters, %llu loop "
		       "iterations)\n", bc_json_num(l, "sqes_per_enter"),
		       (unsigned long long)bc_json_u64(l, "enters"),
		       (unsigned long long)bc_json_u64(l, "iterations"));
	if (N("write_waited"))
		printf("  waiting writes    %llu waited for log space, %.1f us on average, %.1f ms "
		       "at most\n", N("write_waited"), bc_json_num(j, "write_wait_ns") / 1e3 /
		       (double)bc_json_u64(j, "write_waited"), bc_json_num(j, "write_wait_max_ns") / 1e6);
}

/* The lines about one origin (@j: the top level, or an element of "origins"). */
static void human_origin(const struct bc_json *j)
{
	char a[32], b[32];
	const char *mode = bc_json_str(j, "mode"), *acks = bc_json_str(j, "acks");
	uint64_t rd = bc_json_u64(j, "read_hit_full") + bc_json_u64(j, "read_hit_partial") +
		      bc_json_u64(j, "read_miss_full") + bc_json_u64(j, "read_miss_partial");
	uint64_t wr = bc_json_u64(j, "write_hit_full") + bc_json_u64(j, "write_hit_partial") +
		      bc_json_u64(j, "write_miss_full") + bc_json_u64(j, "write_miss_partial");

	printf("  mode              %s%s%s%s\n", mode ? mode : "?",
	       bc_json_bool(j, "data_crc") ? ", data checksums verified on read" : "",
	       bc_json_bool(j, "writeback_paused") ? ", writeback paused" : "",
	       bc_json_bool(j, "detached") ? ", detached (the origin is complete)" : "");
	if (acks)
		printf("  write acks        %s%s\n", acks,
		       !strcmp(acks, "staged") ? " (in a tmpfs staging file: survive a kill of the "
		       "server)" : !strcmp(acks, "written") ? " (on the cache device: survive a kill of "
		       "the server)" : " (before they are durable: a kill of the server loses "
		       "writes not yet flushed)");
	if (N("staged_replayed"))
		printf("  staging replayed  %llu entries a killed server had acknowledged\n",
		       N("staged_replayed"));
	if (N("writeback_failing"))
		printf("  WRITEBACK FAILING %llu attempts in a row (%s); dirty data is kept and "
		       "retried in %llu ms; check the origin device\n", N("writeback_failing"),
		       bc_json_str(j, "writeback_last_error") ? bc_json_str(j, "writeback_last_error")
							       : "?",
		       N("writeback_retry_ms"));
	if (bc_json_bool(j, "degraded"))
		printf("  DEGRADED          the cache device failed %llu IOs: nothing new is cached, "
		       "writes go to the origin, dirty data is being drained; replace the cache "
		       "device after 'blkcache detach'\n", N("cache_errors"));
	if (N("data_crc_errors"))
		printf("  DATA CRC ERRORS   %llu cached blocks failed their checksum (never returned; "
		       "see the server log)\n", N("data_crc_errors"));
	if (N("write_timeouts"))
		printf("  WRITE TIMEOUTS    %llu writes failed after waiting write_timeout_ms for "
		       "cache space\n", N("write_timeouts"));
	printf("  exported size     %s\n", mib(j, "export_size", 1, a, sizeof(a)));
	printf("  requests          %llu reads, %llu writes, %llu flushes, %llu discards, "
	       "%llu write-zeroes\n", N("reads"), N("writes"), N("flushes"), N("discards"),
	       N("write_zeroes"));
	printf("  read blocks       %llu hits, %llu partial, %llu misses (hit ratio %.1f%%)\n",
	       N("read_hit_blocks"), N("read_partial_blocks"), N("read_miss_blocks"),
	       100.0 * bc_json_num(j, "hit_ratio"));
	printf("  blocks by class   %-6s %13s %13s %13s %13s\n", "", "hit full", "hit partial",
	       "miss full", "miss partial");
	printf("                    %-6s %13llu %13llu %13llu %13llu  (%.1f%% hit)\n", "read",
	       N("read_hit_full"), N("read_hit_partial"), N("read_miss_full"),
	       N("read_miss_partial"),
	       pct(bc_json_u64(j, "read_hit_full") + bc_json_u64(j, "read_hit_partial"), rd));
	printf("                    %-6s %13llu %13llu %13llu %13llu  (%.1f%% hit)\n", "write",
	       N("write_hit_full"), N("write_hit_partial"), N("write_miss_full"),
	       N("write_miss_partial"),
	       pct(bc_json_u64(j, "write_hit_full") + bc_json_u64(j, "write_hit_partial"), wr));
	printf("  read misses       %llu blocks promoted; not promoted: %s sequential, %llu "
	       "blocks missed too few times, %llu for lack of log space\n", N("promoted_blocks"),
	       mib(j, "bypass_sequential_bytes", 1, a, sizeof(a)), N("bypass_nhit_blocks"),
	       N("promote_dropped_blocks"));
	printf("  writes absorbed   %llu blocks (%llu in place in the open buffer)\n",
	       N("writes_absorbed_blocks"), N("write_inplace_blocks"));
	printf("  uncached writes   %llu writethrough, %llu writearound, %llu passthrough blocks; "
	       "%llu cached blocks invalidated\n", N("writethrough_blocks"),
	       N("writearound_blocks"), N("passthrough_blocks"), N("invalidated_blocks"));
	printf("  cached / dirty    %llu / %llu blocks (%s / %s)\n", N("cached_blocks"),
	       N("dirty_blocks"), mib(j, "cached_blocks", BC_UNIT_BLOCK, a, sizeof(a)),
	       mib(j, "dirty_blocks", BC_UNIT_BLOCK, b, sizeof(b)));
	printf("  segments          %llu used of %llu (%llu written, %llu partial; %llu writes "
	       "of the open one)\n", N("segments_used"), N("segments_total"), N("segments_written"),
	       N("segments_partial"), N("open_segment_writes"));
	printf("  reclaim           %llu segments reclaimed, %llu hot blocks re-appended; %llu dirty "
	       "segments carried forward (%llu blocks re-appended, not written back)\n",
	       N("reclaimed_segments"), N("reappended_blocks"), N("carried_segments"), N("carried_blocks"));
	printf("  writeback         %llu blocks (%s) in %llu writes (%llu gap-filled), %llu batches, "
	       "%llu errors\n",
	       N("writeback_blocks"), mib(j, "writeback_bytes", 1, a, sizeof(a)),
	       N("writeback_ios"), N("writeback_fills"), N("writeback_batches"), N("writeback_errors"));
	printf("  drains            %llu completed\n", N("drains"));
	printf("  cache-full waits  %llu (and %llu waits for a segment buffer: the cache device "
	       "was busy)\n", N("cache_full_waits"), N("buffer_waits"));
	human_queues(j);
}

static const char *str(const struct bc_json *j, const char *key)
{
	const char *s = bc_json_str(j, key);

	return s ? s : "?";
}

/* How the cache device persists data (pmem: DAX or not), when it says. */
static void persistence(const struct bc_json *j)
{
	const char *p = str(j, "cache_persistence");

	if (p && *p && strcmp(p, "?"))
		printf("  cache persistence %s\n", p);
}

/* One origin, or a named one: the lines a server of one origin printed. */
static void human_one(const struct bc_json *j, const char *name)
{
	if (name)
		printf("blkcache status: origin %s\n", name);
	else
		printf("blkcache status\n");
	printf("  cache / origin    %s / %s\n", str(j, "cache"), str(j, "origin"));
	persistence(j);
	human_origin(j);
	printf("  NBD               %llu connections open, %llu requests\n",
	       N("nbd_connections_open"), N("nbd_requests"));
}

/* Several origins (or none): the cache, then one block per origin. */
static void human_many(const struct bc_json *j, const struct bc_json *o, unsigned n)
{
	const struct bc_json *u;

	printf("blkcache status\n");
	printf("  cache             %s\n", str(j, "cache"));
	persistence(j);
	if (!n)
		printf("  origins           none (attach one: 'blkcache attach NAME DEV')\n");
	else
		printf("  origins           %u\n", n);
	printf("  NBD               %llu connections open, %llu requests (every export)\n",
	       N("nbd_connections_open"), N("nbd_requests"));
	for (; o; o = o->next) {
		printf("\norigin %s\n", str(o, "name"));
		printf("  origin            %s\n", str(o, "origin"));
		human_origin(o);
		u = bc_json_get(o, "ublk");
		if (u && u->type == BC_JSON_OBJECT)
			printf("  ublk              %s: %llu requests, %llu in flight, %llu errors%s\n",
			       str(u, "device"), (unsigned long long)bc_json_u64(u, "requests"),
			       (unsigned long long)bc_json_u64(u, "inflight"),
			       (unsigned long long)bc_json_u64(u, "errors"),
			       bc_json_bool(u, "recovered") ? " (taken over from a server that died)"
							    : "");
	}
}

static void human(const struct bc_json *j, const char *name)
{
	unsigned n;
	const struct bc_json *o = cli_origins(j, &n);

	if (name || n == 1 || (!o && bc_json_str(j, "mode")))
		human_one(j, name);
	else
		human_many(j, o, n);
}

int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "control", required_argument, NULL, 'C' },
		{ "name", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *control = cli_default_control(), *msg, *name = NULL;
	struct bc_json *j = NULL;
	char *reply = NULL, cmd[512];
	int c, json = 0, ret;

	while ((c = getopt_long(argc, argv, "C:n:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'C': control = optarg; break;
		case 'n': name = optarg; break;
		case 'j': json = 1; break;
		case 'h': status_usage(stdout); return 0;
		default: status_usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		cli_err("status: unexpected argument '%s'", argv[optind]);
		status_usage(stderr);
		return 2;
	}
	if (!cli_origin_cmd("status", name, "status", cmd, sizeof(cmd)))
		return 2;
	ret = cli_control_call(control, cmd, &reply);
	if (ret < 0) {
		cli_control_report("status", control, ret);
		return 1;
	}
	if (bc_json_parse(reply, &j) < 0 || j->type != BC_JSON_OBJECT) {
		reply[strcspn(reply, "\n")] = 0;
		cli_err("status: unexpected answer from the server at %s: %.200s", control, reply);
		ret = 1;
	} else if ((msg = bc_json_str(j, "error"))) {
		cli_err("status: %s", msg);
		ret = 1;
	} else if (json) {
		fputs(reply, stdout);
	} else {
		human(j, name);
	}
	bc_json_free(j);
	free(reply);
	return ret;
}
