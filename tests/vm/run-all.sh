#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Run every VM test (tests/vm/test-*.sh) in its own boot of the test VM.
#
# Usage: tests/vm/run-all.sh [--timeout S] [--image-dir DIR] BUILD [FILTER[,FILTER...]]
#
# Builds the VM image first if needed (tests/vm/build-image.sh); if it cannot
# be built here, says so loudly, writes "0 0 N" (N = the tests not run) to
# BUILD/vm-test-summary and exits 77.  Each test boots a fresh VM through
# tests/vm/run-vm.sh with the options of its "# vm-args:" header line
# (disks, modules, its own --timeout); its output goes to
# BUILD/vm-test-logs/NAME.log, the console log, dmesg and the guest's files
# to BUILD/vm-test-logs/NAME/.  Prints PASS/FAIL/SKIP per test (with its
# "checked:" line, or the log tail when it fails), then "N passed, N failed",
# and writes "PASS FAIL SKIP" to BUILD/vm-test-summary (as tests/run.sh does
# for BUILD/test-summary).  Exit status 0 only if every test passed (skips
# allowed).
#   --timeout S      default per-test bound for tests whose header names none
#                    (default 900); run-vm.sh kills a VM that exceeds it
#   --image-dir DIR  the image directory (default: $BLKCACHE_VM_DIR, else
#                    /var/tmp/blkcache-vm)
set -u

usage() { sed -n '3,/^set -u/{/^set -u/d;s/^# \{0,1\}//;p}' "$0"; }

HERE=$(cd "$(dirname "$0")" && pwd)
TIMEOUT=900
IMG=${BLKCACHE_VM_DIR:-/var/tmp/blkcache-vm}
while [ $# -gt 0 ]; do
	case $1 in
	--timeout) [ $# -ge 2 ] || { echo "run-all.sh: --timeout needs a value" >&2; exit 2; }
		TIMEOUT=$2; shift 2;;
	--image-dir) [ $# -ge 2 ] || { echo "run-all.sh: --image-dir needs a value" >&2; exit 2; }
		IMG=$2; shift 2;;
	-h | --help) usage; exit 0;;
	--) shift; break;;
	-*) echo "run-all.sh: unknown option $1" >&2; usage >&2; exit 2;;
	*) break;;
	esac
done
[ $# -ge 1 ] && [ $# -le 2 ] || { usage >&2; exit 2; }
[[ "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || { echo "run-all.sh: bad --timeout '$TIMEOUT'" >&2; exit 2; }
BUILD=$(cd "$1" && pwd) || exit 2
FILTER=${2:-}
LOGDIR=$BUILD/vm-test-logs
mkdir -p "$LOGDIR"
SUMMARY=$BUILD/vm-test-summary
t_suite=$(date +%s)

selected() {
	local f fs
	[ -n "$FILTER" ] || return 0
	IFS=, read -ra fs <<<"$FILTER"
	for f in "${fs[@]}"; do
		[ -n "$f" ] && [[ "$1" == *"$f"* ]] && return 0
	done
	return 1
}
TESTS=()
for t in "$HERE"/test-*.sh; do
	[ -f "$t" ] || continue
	selected "$(basename "$t" .sh)" && TESTS+=("$t")
done

t0=$(date +%s)
"$HERE/build-image.sh" --dir "$IMG" >"$LOGDIR/build-image.log" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
	cat "$LOGDIR/build-image.log"
	if [ $rc -eq 77 ]; then
		echo "=================================================================="
		echo "VM TESTS NOT RUN: the VM image cannot be built on this machine"
		echo "(see above and $LOGDIR/build-image.log); ${#TESTS[@]} test(s) skipped"
		echo "=================================================================="
		echo "${#TESTS[@]} skipped"
		echo "0 passed, 0 failed"
		echo "0 0 ${#TESTS[@]}" >"$SUMMARY"
		exit 77
	fi
	echo "FAIL  build-image (exit $rc)"
	echo "0 passed, 1 failed"
	echo "0 1 0" >"$SUMMARY"
	exit 1
fi
echo "image: $(tail -1 "$LOGDIR/build-image.log") ($(( $(date +%s) - t0 )) s)"

pass=0 fail=0 skip=0 failed=()
CUR_PID=""
on_signal() {
	trap - INT TERM HUP
	[ -n "$CUR_PID" ] && kill -TERM "$CUR_PID" 2>/dev/null && wait "$CUR_PID" 2>/dev/null
	echo "run-all.sh: interrupted"
	echo "$pass passed, $((fail + 1)) failed"
	echo "$pass $((fail + 1)) $skip" >"$SUMMARY"
	exit 130
}
trap on_signal INT TERM HUP

for t in "${TESTS[@]}"; do
	name=$(basename "$t" .sh)
	log=$LOGDIR/$name.log
	# The test's run-vm.sh options: every "# vm-args:" line of its header.
	read -ra args <<<"$(sed -n '1,40s/^# vm-args://p' "$t" | tr '\n' ' ')"
	tt=$TIMEOUT
	for ((i = 0; i < ${#args[@]}; i++)); do
		[ "${args[$i]}" = --timeout ] && tt=${args[$((i + 1))]:-$TIMEOUT}
	done
	start=$(date +%s)
	rm -rf "${LOGDIR:?}/$name" "${LOGDIR:?}/$name.crash"
	for attempt in 1 2; do
		# run-vm.sh enforces the timeout itself; timeout(1) is the backstop in
		# case run-vm.sh itself hangs.
		timeout -k 30 $((tt + 300)) "$HERE/run-vm.sh" --image-dir "$IMG" --no-build --build "$BUILD" \
			--timeout "$TIMEOUT" "${args[@]}" --out "$LOGDIR/$name" -- "$t" </dev/null >"$log" 2>&1 &
		CUR_PID=$!
		wait "$CUR_PID"
		rc=$?
		CUR_PID=""
		# The guest kernel itself crashed (an oops or panic under qemu's TCG,
		# seen once as a double fault in the slab allocator): that is no
		# verdict on the test, which runs once more -- and must pass then.
		[ $rc -eq 125 ] && [ $attempt = 1 ] &&
			grep -qaE "Kernel panic|Oops: " "$LOGDIR/$name/console.log" 2>/dev/null || break
		mv "$LOGDIR/$name" "$LOGDIR/$name.crash"
		mv "$log" "$LOGDIR/$name.crash/run.log"
		printf 'NOTE  %-28s the guest kernel crashed (%s); not a verdict: running it again\n' "$name" \
			"$(grep -aoE "Oops: [^[]*|Kernel panic[^[]*" "$LOGDIR/$name.crash/console.log" | head -1)"
	done
	end=$(date +%s)
	case $rc in
	0) pass=$((pass + 1))
	   printf 'PASS  %-28s %4ss  %s\n' "$name" $((end - start)) "$(grep -aE '^(checked|summary):' "$log" | tail -1)";;
	77) skip=$((skip + 1))
	   printf 'SKIP  %-28s %s\n' "$name" "$(grep -aE '^SKIP' "$log" | tail -1)";;
	*) fail=$((fail + 1)); failed+=("$name")
	   why="exit $rc"
	   [ $rc -eq 124 ] && why="timeout after $tt s"
	   [ $rc -eq 125 ] && why="guest ended without a result"
	   printf 'FAIL  %-28s (%s) log: %s\n' "$name" "$why" "$log"
	   tail -40 "$log" | sed 's/^/      | /';;
	esac
done

[ $skip -gt 0 ] && echo "$skip skipped"
[ $fail -gt 0 ] && echo "failed: ${failed[*]}"
echo "wall time: $(( $(date +%s) - t_suite )) s"
echo "$pass passed, $fail failed"
echo "$pass $fail $skip" >"$SUMMARY"
[ $fail -eq 0 ]
