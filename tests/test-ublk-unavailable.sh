#!/bin/bash
# serve --ublk where the kernel has no ublk (this machine, CI): a clear,
# actionable error, a non-zero exit, and a cache that is left as it was
# (serving it without --ublk afterwards works and the data is there).
# Bad --ublk arguments are refused before anything is opened.  The ublk
# device itself is tested in the VM (tests/vm/).
. "$(dirname "$0")/lib.sh"

if [ -e /dev/ublk-control ]; then
	echo "SKIP: this kernel has ublk (/dev/ublk-control); the VM tests cover it"
	exit 77
fi
make_images 256M 64M
start_server
qio "$T/w.out" "write -q -P 0x5a 0 1M"
stop_server

rc=0
out=$("$BLKCACHE" serve --cache "$CACHE" --origin "$ORIGIN" --control "$CTL" --ublk 2>&1) || rc=$?
echo "$out" > "$T/ublk.out"
[ "$rc" -ne 0 ] || fail "serve --ublk succeeded without ublk in the kernel"
grep -q "cannot open /dev/ublk-control" "$T/ublk.out" || fail "no clear error for missing ublk: $out"
grep -q "modprobe ublk_drv" "$T/ublk.out" || fail "the error does not say what to do: $out"
check_no_sanitizer "$T/ublk.out"
"$BLKCACHE" check --cache "$CACHE" --origin "$ORIGIN" --json > "$T/check.json" ||
	fail "check after the failed serve --ublk: $(cat "$T/check.json")"
[ "$(jfield "$(cat "$T/check.json")" clean_shutdown)" = true ] ||
	fail "the engine was not closed cleanly after the failed serve --ublk: $(cat "$T/check.json")"

for bad in "--ublk=abc" "--ublk=-1" "--ublk=99999999"; do
	rc=0
	out=$("$BLKCACHE" serve --cache "$CACHE" --origin "$ORIGIN" --control "$CTL" "$bad" 2>&1) || rc=$?
	[ "$rc" -eq 2 ] || fail "serve $bad: exit $rc, want 2 (usage): $out"
	echo "$out" | grep -q "wants a device number" || fail "serve $bad: unclear error: $out"
done

rc=0
out=$("$BLKCACHE" serve --cache "$CACHE" --origin "$ORIGIN" --control "$CTL" --buffered-acks \
	--written-acks 2>&1) || rc=$?
[ "$rc" -eq 2 ] || fail "serve --buffered-acks --written-acks: exit $rc, want 2 (usage): $out"
echo "$out" | grep -q "contradict" || fail "serve --buffered-acks --written-acks: unclear error: $out"

start_server
qio "$T/r.out" "read -q -P 0x5a 0 1M"
stop_server
echo "checked: serve --ublk without ublk_drv fails with an actionable error, the cache closed cleanly (check); 3 bad --ublk arguments and contradicting ack options refused (exit 2); the cache serves its data afterwards"
