#!/bin/bash
# Run the whole blkcache test suite against a build directory.
#
# Usage: tests/run.sh [OPTIONS] BUILD_DIR [TEST_NAME_FILTER]
#
# Every C test program in BUILD/tests and every tests/test-*.sh runs once
# (per round); a filter runs only the tests whose name contains it (several
# filters separated by commas: the tests matching any of them).
# Exit status of a test: 0 = pass, 77 = skip (counted and reported),
# anything else = fail.  Each test runs in its own process group with its
# output in BUILD/test-logs/NAME.log; a failing test's log tail is printed.
# Ends with the line "N passed, N failed" (totals over all rounds) and
# writes "PASS FAIL SKIP" (the same totals) to BUILD/test-summary.
#
# Options (before BUILD_DIR):
#   --timeout S    Per-test timeout in seconds (default: $BLKCACHE_TEST_TIMEOUT,
#                  else 900).  A test still running after S seconds is killed
#                  with its whole process group (SIGTERM, SIGKILL 10 s later)
#                  and reported as "FAIL NAME (timeout after S s)" with its
#                  log tail; the suite goes on with the next test.
#   --repeat N     Run the whole suite N times.  Stops after the first round
#                  with a failure (its logs are kept); with --keep-going all
#                  N rounds run.  A summary line per round, then the totals.
#                  Logs of a failed test in round R are also kept as
#                  BUILD/test-logs/NAME.roundR.log.
#   --keep-going   With --repeat: run every round even after failures.
#   --stress       Run the suite under load: 'stress-ng --cpu 2 --io 2' runs
#                  in the background for the whole run and is stopped at the
#                  end (also on Ctrl-C).  Without stress-ng installed, says how
#                  to install it and exits 2.  If stress-ng dies early, the
#                  run is reported as not under load and exits non-zero.
#   -h, --help     This text.
# Ctrl-C (SIGINT/SIGTERM/SIGHUP) kills the running test's process group,
# stops stress-ng, prints the summary so far and exits 130.
set -u

usage() { sed -n '2,/^set -u/{/^set -u/d;s/^# \{0,1\}//;p}' "$0"; }

TIMEOUT=${BLKCACHE_TEST_TIMEOUT:-900}
REPEAT=1
KEEP_GOING=0
STRESS=0
while [ $# -gt 0 ]; do
	case $1 in
	--timeout) [ $# -ge 2 ] || { echo "run.sh: --timeout needs a value" >&2; exit 2; }
		TIMEOUT=$2; shift 2;;
	--timeout=*) TIMEOUT=${1#*=}; shift;;
	--repeat) [ $# -ge 2 ] || { echo "run.sh: --repeat needs a value" >&2; exit 2; }
		REPEAT=$2; shift 2;;
	--repeat=*) REPEAT=${1#*=}; shift;;
	--keep-going) KEEP_GOING=1; shift;;
	--stress) STRESS=1; shift;;
	-h | --help) usage; exit 0;;
	--) shift; break;;
	-*) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2;;
	*) break;;
	esac
done
[[ "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: the timeout must be a positive number of seconds (got '$TIMEOUT')" >&2; exit 2; }
[[ "$REPEAT" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --repeat needs a positive count (got '$REPEAT')" >&2; exit 2; }
[ $# -le 2 ] || { echo "run.sh: too many arguments" >&2; usage >&2; exit 2; }

BUILD=$(cd "${1:-build}" && pwd) || exit 2
FILTER=${2:-}
SRC=$(cd "$(dirname "$0")/.." && pwd)
export BLKCACHE="$BUILD/cli/blkcache"
export BLKCACHE_SRC="$SRC"
export BLKCACHE_BUILD="$BUILD"
LOGDIR="$BUILD/test-logs"
mkdir -p "$LOGDIR"
GRACE=10           # seconds between SIGTERM and SIGKILL of a timed-out test

pass=0 fail=0 skip=0          # totals over all rounds
round=0 round_pass=0 round_fail=0 round_skip=0 rounds_run=0 rtag="" cur_name=""
failed=()                     # NAME (or NAME[round R]) of every failure
cur_pid="" cur_sleep=""       # the running test (its pid = its pgid) and its timer
STRESS_PID=""
suite_t0=$(date +%s)

# kill_group PGID: SIGTERM the process group, SIGKILL whatever is left after GRACE s.
kill_group() {
	local g=$1 i
	kill -TERM -- "-$g" 2>/dev/null || return 0
	for ((i = 0; i < GRACE * 10; i++)); do
		kill -0 -- "-$g" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL -- "-$g" 2>/dev/null || true
}

stop_stress() {
	[ -n "$STRESS_PID" ] || return 0
	kill_group "$STRESS_PID"
	wait "$STRESS_PID" 2>/dev/null
	STRESS_PID=""
}

start_stress() {
	if ! command -v stress-ng >/dev/null 2>&1; then
		echo "run.sh: --stress needs stress-ng, which is not installed." >&2
		echo "run.sh: install it with 'sudo apt-get install stress-ng' (or scripts/install-deps.sh)." >&2
		exit 2
	fi
	# Its own process group (setsid: pid = pgid), so that all its workers go with it.
	setsid stress-ng --cpu 2 --io 2 </dev/null >"$LOGDIR/stress-ng.log" 2>&1 &
	STRESS_PID=$!
	sleep 1
	if ! kill -0 "$STRESS_PID" 2>/dev/null; then
		cat "$LOGDIR/stress-ng.log" >&2
		echo "run.sh: stress-ng did not start" >&2
		exit 2
	fi
	echo "under load: stress-ng --cpu 2 --io 2 (pid $STRESS_PID, log $LOGDIR/stress-ng.log)"
}

summary() {
	[ $skip -gt 0 ] && echo "$skip skipped"
	[ $fail -gt 0 ] && echo "failed: ${failed[*]}"
	[ "$REPEAT" -gt 1 ] && echo "overall: $rounds_run of $REPEAT round(s), $pass passed, $fail failed, $skip skipped"
	echo "wall time: $(( $(date +%s) - suite_t0 )) s"
	echo "$pass passed, $fail failed"
	echo "$pass $fail $skip" > "$BUILD/test-summary"
}

on_signal() {
	trap - INT TERM HUP
	echo
	echo "run.sh: interrupted"
	[ -n "$cur_sleep" ] && kill "$cur_sleep" 2>/dev/null
	if [ -n "$cur_pid" ]; then
		kill_group "$cur_pid"
		wait "$cur_pid" 2>/dev/null
		echo "INTR  $cur_name (killed)"
	fi
	stop_stress
	pass=$((pass + round_pass)) fail=$((fail + round_fail + 1)) skip=$((skip + round_skip))
	failed+=("${cur_name:-run.sh}(interrupted)")
	rounds_run=$round
	summary
	exit 130
}
trap on_signal INT TERM HUP
trap stop_stress EXIT

# run_one NAME cmd...: run one test in its own process group under the timeout.
run_one() {
	local name=$1 log="$LOGDIR/$1.log" start end rc=0 done_pid="" timed_out=0 left
	shift
	cur_name=$name
	start=$(date +%s)
	# setsid: the test leads a new process group (pid = pgid; run.sh's
	# background children are not group leaders, so setsid does not fork).
	setsid -w "$@" </dev/null >"$log" 2>&1 &
	cur_pid=$!
	sleep "$TIMEOUT" &
	cur_sleep=$!
	wait -n -p done_pid "$cur_pid" "$cur_sleep"
	rc=$?
	if [ "$done_pid" = "$cur_sleep" ]; then
		timed_out=1
		echo "run.sh: still running after $TIMEOUT s: killing its process group" >>"$log"
		kill_group "$cur_pid"
		wait "$cur_pid" 2>/dev/null
	else
		kill "$cur_sleep" 2>/dev/null
	fi
	wait "$cur_sleep" 2>/dev/null
	cur_sleep=""
	# Anything the test left running in its process group goes too.
	if left=$(pgrep -g "$cur_pid" 2>/dev/null | wc -l) && [ "$left" -gt 0 ]; then
		echo "      (killing $left process(es) the test left running)" >>"$log"
		kill_group "$cur_pid"
	fi
	cur_pid=""
	end=$(date +%s)
	if [ $timed_out -eq 1 ]; then
		round_fail=$((round_fail + 1)); failed+=("$name$rtag")
		printf 'FAIL  %-28s (timeout after %d s) log: %s\n' "$name" "$TIMEOUT" "$(keep_log "$name" "$log")"
		tail -25 "$log" | sed 's/^/      | /'
		return
	fi
	case $rc in
	0) round_pass=$((round_pass + 1)); printf 'PASS  %-28s %4ss  %s\n' "$name" $((end - start)) "$(grep -E '^(checked|summary):' "$log" | tail -1)";;
	77) round_skip=$((round_skip + 1)); printf 'SKIP  %-28s %s\n' "$name" "$(tail -1 "$log")";;
	*) round_fail=$((round_fail + 1)); failed+=("$name$rtag")
	   printf 'FAIL  %-28s (exit %d) log: %s\n' "$name" $rc "$(keep_log "$name" "$log")"
	   tail -25 "$log" | sed 's/^/      | /';;
	esac
}

# keep_log NAME LOG: with --repeat, keep a copy of a failed test's log per round.
keep_log() {
	if [ "$REPEAT" -gt 1 ]; then
		cp "$2" "$LOGDIR/$1.round$round.log" 2>/dev/null && { echo "$LOGDIR/$1.round$round.log"; return; }
	fi
	echo "$2"
}

# selected NAME: does NAME pass the filter?
selected() {
	local f fs
	[ -n "$FILTER" ] || return 0
	IFS=, read -ra fs <<<"$FILTER"
	for f in "${fs[@]}"; do
		[ -n "$f" ] && [[ "$1" == *"$f"* ]] && return 0
	done
	return 1
}

run_round() {
	local t name
	for t in "$BUILD"/tests/test-*; do
		[ -x "$t" ] && [ -f "$t" ] || continue
		name=$(basename "$t")
		selected "$name" || continue
		run_one "$name" "$t"
	done
	for t in "$SRC"/tests/test-*.sh; do
		[ -f "$t" ] || continue
		name=$(basename "$t" .sh)
		selected "$name" || continue
		run_one "$name" bash "$t"
	done
}

[ $STRESS -eq 1 ] && start_stress
[ "$TIMEOUT" -ne 900 ] && echo "per-test timeout: $TIMEOUT s"
for ((round = 1; round <= REPEAT; round++)); do
	round_pass=0 round_fail=0 round_skip=0
	rt0=$(date +%s)
	if [ "$REPEAT" -gt 1 ]; then
		echo "=== round $round of $REPEAT ==="
		rtag="[round $round]"
	fi
	run_round
	rounds_run=$round
	rp=$round_pass rf=$round_fail rs=$round_skip
	pass=$((pass + rp)) fail=$((fail + rf)) skip=$((skip + rs))
	round_pass=0 round_fail=0 round_skip=0
	if [ "$REPEAT" -gt 1 ]; then
		echo "round $round: $rp passed, $rf failed, $rs skipped in $(( $(date +%s) - rt0 )) s"
		if [ $rf -gt 0 ] && [ $KEEP_GOING -eq 0 ] && [ $round -lt "$REPEAT" ]; then
			echo "stopping after round $round (it had failures; --keep-going runs every round)"
			break
		fi
	fi
done

stress_ok=1
if [ -n "$STRESS_PID" ]; then
	if ! kill -0 "$STRESS_PID" 2>/dev/null; then
		stress_ok=0
		echo "WARNING: stress-ng exited before the end of the run (see $LOGDIR/stress-ng.log): not all of it ran under load"
	fi
	stop_stress
fi
summary
[ $fail -eq 0 ] && [ $stress_ok -eq 1 ]
