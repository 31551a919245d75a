#!/bin/bash
# Several origins share one cache (format v3):
#  - format a cache alone, 'origin add' three origins (a quarter of it each),
#    wrong adds refused (same name, same origin, no room, bad name);
#  - serve: one NBD export per origin (NBD_OPT_LIST lists them);
#  - fio crc32c verify randrw on all three exports at once, together more than
#    3x the cache: 0 errors; each origin's ring wrapped and wrote back;
#  - 'blkcache flush': each origin file alone verifies (nbdkit on the file),
#    and one origin's job does NOT verify against another's file;
#  - restart: all three exports verify again; check: consistent, 3 origins.
. "$(dirname "$0")/lib.sh"

MIB=$((1024 * 1024))
NAMES=(a b c)
SERVE_NO_ORIGIN=1
uri_of() { echo "nbd+unix:///$1?socket=$SOCK"; }
ofile() { echo "$T/origin-$1.img"; }

rm -f "$CACHE"
truncate -s 80M "$CACHE"
"$BLKCACHE" format --cache "$CACHE" >"$T/format.out" 2>&1 || { cat "$T/format.out"; fail "format of a cache alone failed"; }
grep -q "no origin yet" "$T/format.out" || fail "format without an origin does not say so: $(cat "$T/format.out")"
for n in "${NAMES[@]}"; do
	truncate -s 128M "$(ofile "$n")"
	"$BLKCACHE" origin add --cache "$CACHE" --origin "$(ofile "$n")" --name "$n" --size 25% \
		>"$T/add.$n" 2>&1 || { cat "$T/add.$n"; fail "origin add $n failed"; }
	check_no_sanitizer "$T/add.$n"
	log "$(cat "$T/add.$n")"
done

# Wrong adds are refused with a reason, and change nothing.
truncate -s 128M "$T/origin-x.img"
refused() {
	local what=$1 re=$2 rc=0
	shift 2
	"$@" >"$T/refused.out" 2>&1 || rc=$?
	check_no_sanitizer "$T/refused.out"
	[ $rc -ne 0 ] || fail "$what: not refused"
	grep -qE "$re" "$T/refused.out" || fail "$what: message does not match /$re/: $(cat "$T/refused.out")"
	log "$what: refused: $(cat "$T/refused.out")"
}
refused "a second origin named 'a'" "already has an origin named 'a'" \
	"$BLKCACHE" origin add --cache "$CACHE" --origin "$T/origin-x.img" --name a
refused "origin b added again as 'x'" "already cached by this cache, as 'b'" \
	"$BLKCACHE" origin add --cache "$CACHE" --origin "$(ofile b)" --name x
refused "an origin larger than the free space" "free segments" \
	"$BLKCACHE" origin add --cache "$CACHE" --origin "$T/origin-x.img" --name x --size 50%
refused "a name with a slash" "invalid" \
	"$BLKCACHE" origin add --cache "$CACHE" --origin "$T/origin-x.img" --name x/y
refused "origin add to a version 2 cache" "version 2" \
	bash -c "truncate -s 64M '$T/v2.img' && '$BLKCACHE' format --cache '$T/v2.img' --origin '$T/origin-x.img' --format-version 2 >/dev/null && '$BLKCACHE' origin add --cache '$T/v2.img' --origin '$(ofile a)' --name y"
"$BLKCACHE" check --cache "$CACHE" --json >"$T/check0.json" || fail "check of the fresh cache failed"
[ "$(jfield "$(cat "$T/check0.json")" origins)" = 3 ] || fail "check does not see 3 origins"

start_server
nbdinfo --list "$URI" >"$T/list.out" || fail "nbdinfo --list failed"
for n in "${NAMES[@]}"; do
	grep -q "export=\"$n\"" "$T/list.out" || fail "NBD_OPT_LIST lacks export '$n': $(cat "$T/list.out")"
	[ "$(nbdinfo --size "$(uri_of "$n")")" = $((128 * MIB)) ] || fail "export $n has the wrong size"
done
log "NBD_OPT_LIST: $(grep -c 'export=' "$T/list.out") exports"

COMMON=(--ioengine=nbd --bsrange=4k-64k --iodepth=16 --verify=crc32c --verify_fatal=0
	--group_reporting=1 --rw=randrw --rwmixread=30 --size=128M --offset=0)
declare -A SEED
for n in "${NAMES[@]}"; do SEED[$n]=$((1000 + RANDOM)); done
log "fio seeds: a ${SEED[a]}, b ${SEED[b]}, c ${SEED[c]}"
job() { echo --name="job-$1" --randseed="${SEED[$1]}"; }

# All three at once.
pids=()
for n in "${NAMES[@]}"; do
	# shellcheck disable=SC2046
	( fio_checked "w$n" 600 "${COMMON[@]}" $(job "$n") --uri="$(uri_of "$n")" --do_verify=1 ) &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent fio verify failed (see above)"; done
total=0
for n in "${NAMES[@]}"; do
	w=$(fio_get "w$n" 'j["write"]["io_bytes"]')
	total=$((total + w))
done
[ "$total" -ge $((3 * 80 * MIB)) ] || fail "the three jobs wrote $((total / MIB)) MiB, less than 3x the cache"
log "concurrent randrw on a, b, c: $((total / MIB)) MiB written, verified, 0 errors"
for n in "${NAMES[@]}"; do
	"$BLKCACHE" status --control "$CTL" --name "$n" --json >"$T/st.$n" || fail "status --name $n failed"
	j=$(cat "$T/st.$n")
	[ "$(jfield "$j" head_seq)" -gt "$(jfield "$j" segments_total)" ] ||
		fail "origin $n: its ring did not wrap (head_seq $(jfield "$j" head_seq))"
	[ "$(jfield "$j" writeback_blocks)" -gt 0 ] || fail "origin $n wrote nothing back"
	[ "$(jfield "$j" io_errors)" = 0 ] || fail "origin $n: io_errors"
done

# flush: every origin's dirty data on its origin, which alone verifies.
"$BLKCACHE" flush --control "$CTL" >"$T/flush.out" 2>&1 || { cat "$T/flush.out"; fail "flush failed"; }
for n in "${NAMES[@]}"; do
	[ "$("$BLKCACHE" status --control "$CTL" --name "$n" --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["dirty_blocks"])')" = 0 ] ||
		fail "origin $n has dirty blocks after flush"
done
verify_file() { # TAG NAME FILE: job NAME verify-only against FILE alone
	nbdkit_start "$T/file.sock" "$T/nbdkit.$1.log" --readonly file "$3"
	local rc=0
	# shellcheck disable=SC2046
	( fio_checked "$1" 300 "${COMMON[@]}" $(job "$2") --uri="nbd+unix:///?socket=$T/file.sock" \
		--do_verify=1 --verify_only=1 ) || rc=$?
	nbdkit_stop "$NBDKIT_PID"
	return $rc
}
for n in "${NAMES[@]}"; do
	verify_file "f$n" "$n" "$(ofile "$n")" || fail "origin file $n alone does not verify after flush"
	[ "$(fio_get "f$n" 'j["read"]["io_bytes"]')" -gt 0 ] || fail "verify of origin file $n read nothing"
done
log "after flush: each origin file alone verifies"
if verify_file neg a "$(ofile b)" >/dev/null 2>&1; then
	fail "job a verified against origin b's file: the check cannot fail?"
fi
log "negative control: a's data is not in b's file"

stop_server
"$BLKCACHE" check --cache "$CACHE" >"$T/check.out" 2>&1 || { cat "$T/check.out"; fail "check after a clean shutdown found problems"; }
grep -qE "origins +3 \('a', 'b', 'c'\); 3 ring\(s\) checked" "$T/check.out" || fail "check does not cover the 3 origins: $(head -3 "$T/check.out")"
start_server
for n in "${NAMES[@]}"; do
	# shellcheck disable=SC2046
	fio_checked "r$n" 300 "${COMMON[@]}" $(job "$n") --uri="$(uri_of "$n")" --do_verify=1 --verify_only=1
done
log "after restart: all three exports verify"
stop_server
echo "checked: 3 origins on one cache (origin add x3, 5 wrong adds refused), NBD list, concurrent fio crc32c randrw ($((total / MIB)) MiB, rings wrapped), flush -> each origin file verifies alone (negative control), restart -> exports verify, check consistent"
