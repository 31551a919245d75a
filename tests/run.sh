#!/bin/bash
# Run the whole blkcache test suite against a build directory.
# Usage: tests/run.sh BUILD_DIR [TEST_NAME_FILTER]
# Every C test program in BUILD/tests and every tests/test-*.sh runs once;
# exit status 0 = pass, 77 = skip (counted and reported), anything else = fail.
# Ends with the line "N passed, N failed".
set -u
BUILD=$(cd "${1:-build}" && pwd)
FILTER=${2:-}
SRC=$(cd "$(dirname "$0")/.." && pwd)
export BLKCACHE="$BUILD/cli/blkcache"
export BLKCACHE_SRC="$SRC"
export BLKCACHE_BUILD="$BUILD"
LOGDIR="$BUILD/test-logs"
mkdir -p "$LOGDIR"
pass=0 fail=0 skip=0
failed=()

run_one() {
	local name=$1; shift
	local log="$LOGDIR/$name.log" start end rc
	start=$(date +%s)
	"$@" >"$log" 2>&1
	rc=$?
	end=$(date +%s)
	case $rc in
	0) pass=$((pass + 1)); printf 'PASS  %-28s %4ss  %s\n' "$name" $((end - start)) "$(grep -E '^(checked|summary):' "$log" | tail -1)";;
	77) skip=$((skip + 1)); printf 'SKIP  %-28s %s\n' "$name" "$(tail -1 "$log")";;
	*) fail=$((fail + 1)); failed+=("$name"); printf 'FAIL  %-28s (exit %d) log: %s\n' "$name" $rc "$log"
	   tail -25 "$log" | sed 's/^/      | /';;
	esac
}

for t in "$BUILD"/tests/test-*; do
	[ -x "$t" ] && [ -f "$t" ] || continue
	name=$(basename "$t")
	[ -n "$FILTER" ] && [[ "$name" != *$FILTER* ]] && continue
	run_one "$name" "$t"
done
for t in "$SRC"/tests/test-*.sh; do
	[ -f "$t" ] || continue
	name=$(basename "$t" .sh)
	[ -n "$FILTER" ] && [[ "$name" != *$FILTER* ]] && continue
	run_one "$name" bash "$t"
done

[ $skip -gt 0 ] && echo "$skip skipped"
[ $fail -gt 0 ] && echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed"
echo "$pass $fail $skip" > "$BUILD/test-summary"
[ $fail -eq 0 ]
