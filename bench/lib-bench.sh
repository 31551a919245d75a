# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=bash disable=SC2034
# Helpers for bench/run (sourced, not executed).
#
# Expects, set by the caller before use:
#   W        work directory (sockets, logs, fio JSON, images)
#   FIO      the fio binary (bench/fetch-fio.sh build: has ioengine=nbd)
#   BC       the blkcache binary, ENGINE the fio external engine (.so)
#   ROWS     the TSV file results are appended to
#   CG       blkio cgroup directory (only for the --cg variants)
#   PY       a python3
# Every process started here is tracked and stopped by bench_cleanup.

BENCH_PIDS=()

say() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }

die() {
	printf 'bench/run: error: %s\n' "$*" >&2
	exit 1
}

track() { BENCH_PIDS+=("$1"); }

untrack() {
	local p keep=()
	for p in "${BENCH_PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	BENCH_PIDS=("${keep[@]}")
}

# stop_pid PID SECS: SIGTERM, wait up to SECS, then SIGKILL; reap.  Returns
# the exit status (255 if it had to be killed).
stop_pid() {
	local pid=$1 secs=${2:-30} i rc=0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < secs * 20; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		untrack "$pid"
		return 255
	fi
	wait "$pid" 2>/dev/null || rc=$?
	untrack "$pid"
	return $rc
}

now_ns() { date +%s%N; }

# num VALUE: succeed if VALUE is a finite decimal number.
num() { [[ $1 =~ ^-?[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?$ ]]; }

# pyexpr EXPR: evaluate a python expression, print the result.
pyexpr() { "$PY" -c 'import sys, math; print(eval(sys.argv[1]))' "$1"; }

# median V...: the median of the numbers given.
median() { "$PY" -c 'import sys, statistics; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

# run_bg_wait LOG CMD...: run CMD in the background (so that a signal to
# this script is handled at once), wait for it; returns its exit status.
run_bg_wait() {
	local log=$1 pid rc=0
	shift
	"$@" >>"$log" 2>&1 &
	pid=$!
	track "$pid"
	wait "$pid" || rc=$?
	untrack "$pid"
	return $rc
}

# cg_exec 0|1 CMD...: (in a subshell) join the benchmark's blkio cgroup if
# the first argument is 1, then exec CMD, so that CMD and all its children
# are throttled from their first I/O on.
cg_exec() {
	if [ "$1" = 1 ]; then
		echo "$BASHPID" >"$CG/cgroup.procs"
	fi
	shift
	exec "$@"
}

# fio_run TAG TIMEOUT [--cg] FIO-ARGS...: run one fio job in $W; JSON in
# $W/TAG.json, fio's stdout and stderr in $W/TAG.log.  Dies if fio fails,
# times out, or any job reports an error.
fio_run() {
	local tag=$1 tmo=$2 rc=0 cg=0
	shift 2
	if [ "${1:-}" = --cg ]; then
		cg=1
		shift
	fi
	rm -f "$W/$tag.json"
	: >"$W/$tag.log"
	(cd "$W" && cg_exec $cg timeout -k 10 "$tmo" ${FIO_PIN:+taskset -c "$FIO_PIN"} "$FIO" "$@" --verify_state_save=0 \
		--output-format=json --output="$W/$tag.json") >"$W/$tag.log" 2>&1 &
	local pid=$!
	track "$pid"
	wait "$pid" || rc=$?
	untrack "$pid"
	if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		tail -n 20 "$W/$tag.log" >&2
		die "fio $tag did not finish within $tmo s"
	fi
	if [ $rc -ne 0 ]; then
		tail -n 20 "$W/$tag.log" >&2
		die "fio $tag exited with status $rc (log: $W/$tag.log)"
	fi
	"$PY" - "$W/$tag.json" <<'EOF' || die "fio $tag: job reported an error (see $W/$tag.log)"
import json, sys
j = json.load(open(sys.argv[1]))
bad = [(x["jobname"], x["error"]) for x in j["jobs"] if x["error"] != 0]
if bad or not j["jobs"]:
    print("fio jobs with errors:", bad, file=sys.stderr)
    sys.exit(1)
EOF
}

# fj TAG EXPR: python expression over the first job (j) of $W/TAG.json.
fj() {
	local v
	v=$("$PY" -c 'import json,sys
j=json.load(open(sys.argv[1]))["jobs"][0]
print(eval(sys.argv[2]))' "$W/$1.json" "$2") || die "cannot read '$2' from $W/$1.json"
	num "$v" || die "fio $1: '$2' is not a number: '$v'"
	printf '%s\n' "$v"
}

# stats_get FILE NAME: a counter from a bc_stats file of the fio engine.
stats_get() {
	local v
	v=$(awk -v k="$2" '$1 == k { print $2 }' "$1")
	num "$v" || die "no counter $2 in $1"
	printf '%s\n' "$v"
}

# engine_args CACHE ORIGIN [SET [STATS]]: the fio arguments for the
# in-process engine, in the array ENG.
engine_args() {
	ENG=(--ioengine=external:"$ENGINE" --filename=blkcache --bc_cache="$1" --bc_origin="$2")
	[ -z "${3:-}" ] || ENG+=(--bc_set="$3")
	[ -z "${4:-}" ] || ENG+=(--bc_stats="$4")
}

# bc_format CACHE ORIGIN: format (--force); the output line in FORMAT_OUT.
FORMAT_OUT=""
bc_format() {
	FORMAT_OUT=$(timeout -k 5 120 "$BC" format --cache "$1" --origin "$2" --force 2>&1) ||
		die "blkcache format --cache $1 --origin $2 failed: $FORMAT_OUT"
	printf '%s\n' "$FORMAT_OUT" >>"$W/format.log"
}

# wait_nbd URI PID SECS: poll (10 ms) until nbdinfo answers on URI; dies if
# PID exits or SECS pass.
wait_nbd() {
	local uri=$1 pid=$2 secs=$3 deadline
	deadline=$(($(date +%s) + secs))
	while ! nbdinfo --size "$uri" >/dev/null 2>&1; do
		kill -0 "$pid" 2>/dev/null || return 1
		[ "$(date +%s)" -lt "$deadline" ] || return 2
		sleep 0.01
	done
}

# serve_start NAME CACHE ORIGIN [--cg] [SERVE-ARGS...]: blkcache serve on
# $W/NAME.sock (control $W/NAME.ctl, log $W/NAME.serve.log), waits until it
# answers NBD.  Sets SERVE_PID, SERVE_URI, SERVE_CTL, SERVE_LOG and
# SERVE_READY_MS (from starting the process to the first nbdinfo answer).
SERVE_PID=""
SERVE_URI=""
SERVE_CTL=""
SERVE_LOG=""
SERVE_READY_MS=""
serve_start() {
	local name=$1 cache=$2 origin=$3 cg=0 t0 t1 rc=0
	shift 3
	if [ "${1:-}" = --cg ]; then
		cg=1
		shift
	fi
	[ -z "$SERVE_PID" ] || die "serve_start $name: a server is already running"
	SERVE_URI="nbd+unix:///?socket=$W/$name.sock"
	SERVE_CTL=$W/$name.ctl
	SERVE_LOG=$W/$name.serve.log
	echo "---- $(date +%T) serve $*" >>"$SERVE_LOG"
	t0=$(now_ns)
	( cg_exec $cg "$BC" serve --cache "$cache" --origin "$origin" --socket "$W/$name.sock" \
		--control "$SERVE_CTL" "$@" ) >>"$SERVE_LOG" 2>&1 &
	SERVE_PID=$!
	track "$SERVE_PID"
	wait_nbd "$SERVE_URI" "$SERVE_PID" 300 || rc=$?
	t1=$(now_ns)
	if [ $rc -ne 0 ]; then
		tail -n 20 "$SERVE_LOG" >&2
		die "blkcache serve ($name) did not come up (log: $SERVE_LOG)"
	fi
	SERVE_READY_MS=$(( (t1 - t0) / 1000000 ))
}

# serve_stop [TERM|KILL]: stop the server; TERM must end in a clean exit.
serve_stop() {
	local how=${1:-TERM} pid=$SERVE_PID rc=0
	[ -n "$pid" ] || return 0
	SERVE_PID=""
	if [ "$how" = KILL ]; then
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		untrack "$pid"
		return 0
	fi
	stop_pid "$pid" 300 || rc=$?
	[ $rc -eq 0 ] || { tail -n 20 "$SERVE_LOG" >&2; die "blkcache serve exited with status $rc on SIGTERM"; }
	grep -q 'clean shutdown complete' "$SERVE_LOG" ||
		die "blkcache serve log lacks 'clean shutdown complete' ($SERVE_LOG)"
}

# bc_status FILE: status --json of the running server into FILE.
bc_status() {
	timeout -k 5 60 "$BC" status --json --control "$SERVE_CTL" >"$1" 2>>"$W/status.err" ||
		die "blkcache status --json failed"
}

# sj FILE KEY: a numeric field of a status JSON file.
sj() {
	local v
	v=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2") ||
		die "no key $2 in $1"
	num "$v" || die "$1: $2 is not a number: '$v'"
	printf '%s\n' "$v"
}

# nbdkit_start NAME [--cg] NBDKIT-ARGS...: nbdkit on $W/NAME.sock (in the
# blkio cgroup with --cg); waits until it answers.  NBDKIT_PIDS[NAME] holds
# its pid.  TMPDIR=$W: the cache filter keeps its cache file on the work disk.
declare -A NBDKIT_PIDS=()
nbdkit_start() {
	local name=$1 pid rc=0 cg=0
	shift
	if [ "${1:-}" = --cg ]; then
		cg=1
		shift
	fi
	rm -f "$W/$name.sock"
	( cg_exec $cg env TMPDIR="$W" nbdkit --foreground --exit-with-parent --unix "$W/$name.sock" "$@" ) \
		>>"$W/$name.nbdkit.log" 2>&1 &
	pid=$!
	track "$pid"
	NBDKIT_PIDS[$name]=$pid
	wait_nbd "nbd+unix:///?socket=$W/$name.sock" "$pid" 60 || rc=$?
	if [ $rc -ne 0 ]; then
		tail -n 20 "$W/$name.nbdkit.log" >&2
		die "nbdkit $* did not come up"
	fi
}

nbdkit_stop() {
	local name=$1 pid=${NBDKIT_PIDS[$1]:-}
	[ -n "$pid" ] || return 0
	stop_pid "$pid" 60 || true
	unset "NBDKIT_PIDS[$name]"
	rm -f "$W/$name.sock" # nbdkit 1.32 leaves its unix socket behind
}

nbdkit_uri() { printf 'nbd+unix:///?socket=%s\n' "$W/$1.sock"; }

# row CASE SYSTEM ORIGIN METRIC VALUE REFSYS REFVALUE TARGET NOTE [RATIO]
#   TARGET: "ratio>=X" (VALUE/REFVALUE, or RATIO when given), "value<=X",
#   "value>=X", "ref" (this row is the reference of others) or "-" (context).
row() {
	[ $# -eq 9 ] || [ $# -eq 10 ] || die "row: want 9 or 10 fields, got $#: $*"
	num "$5" || die "$1 $2: measurement '$4' produced no number ('$5')"
	if [[ $8 == ratio* ]]; then
		num "$7" || die "$1 $2: reference '$6' produced no number ('$7')"
	fi
	[ -z "${10:-}" ] || num "${10}" || die "$1 $2: ratio '${10}' is not a number"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8" "$9" \
		"${10:-}" >>"$ROWS"
	local ref=""
	[ "$6" = - ] || ref=" (reference $6: $7)"
	say "  $1 $2 [$3]: $4 = $5$ref"
}
