#!/bin/bash
# fio (ioengine=nbd) data verification through a 64 MiB cache:
#  A: randwrite bsrange=4k-64k iodepth=32 over 192 MiB (3x the cache), then
#     fio's verify pass reads every block back (do_verify=1);
#  B: randrw 50/50 over another 192 MiB region, verified after writing;
#  C: randrw 50/50 with verify_backlog (continuous verification while the
#     mix runs) over a third region;
#  then a clean restart and verify-only passes of A and B (same seeds).
#  (fio's verify_only replay of a verify_backlog job is not faithful: it
#  verifies blocks the original run never wrote, so C is verified live only.)
# The ring must have wrapped and writeback must have run.
. "$(dirname "$0")/lib.sh"

MIB=$((1024 * 1024))
make_images 512M 64M
start_server

SEED_A=$((1000 + RANDOM))
SEED_B=$((1000 + RANDOM))
log "fio seeds: A $SEED_A, B $SEED_B"
COMMON=(--ioengine=nbd --uri="$URI" --bsrange=4k-64k --iodepth=32 --verify=crc32c
	--verify_fatal=0 --group_reporting=1)
JOB_A=(--name=regionA --rw=randwrite --offset=0 --size=192M --randseed=$SEED_A)
JOB_B=(--name=regionB --rw=randrw --rwmixread=50 --offset=192M --size=192M --randseed=$SEED_B)
JOB_C=(--name=regionC --rw=randrw --rwmixread=50 --offset=384M --size=96M --randseed=$((SEED_B + 7))
	--verify_backlog=256)

# A: write 192 MiB then verify all of it.
fio_checked A 300 "${COMMON[@]}" "${JOB_A[@]}" --do_verify=1
wa=$(fio_get A 'j["write"]["io_bytes"]')
ra=$(fio_get A 'j["read"]["io_bytes"]')
[ "$wa" -eq $((192 * MIB)) ] || fail "A wrote $wa bytes, want $((192 * MIB))"
[ "$ra" -eq "$wa" ] || fail "A verified $ra bytes of $wa written"
log "A: wrote and verified $((wa / MIB)) MiB"

j=$(status_json)
total=$(jfield "$j" segments_total)
head=$(jfield "$j" head_seq)
wb=$(jfield "$j" writeback_blocks)
waits=$(jfield "$j" cache_full_waits)
[ "$wb" -gt 0 ] || fail "writeback_blocks = $wb after writing 3x the cache"
[ "$head" -gt "$total" ] || fail "head_seq $head <= segments_total $total: the ring did not wrap"
[ "$(jfield "$j" io_errors)" = 0 ] || fail "io_errors = $(jfield "$j" io_errors)"
[ "$(jfield "$j" writes_absorbed_blocks)" -ge $((192 * MIB / 4096)) ] ||
	fail "writes_absorbed_blocks $(jfield "$j" writes_absorbed_blocks) < blocks written: not through the cache?"
log "status after A: head_seq $head of $total segments, writeback_blocks $wb, cache_full_waits $waits"

# B: mixed random read/write, verified after the mix.
fio_checked B 300 "${COMMON[@]}" "${JOB_B[@]}" --do_verify=1
wb_b=$(fio_get B 'j["write"]["io_bytes"]')
rb=$(fio_get B 'j["read"]["io_bytes"]')
[ "$wb_b" -gt 0 ] && [ "$rb" -gt "$wb_b" ] || fail "B: write $wb_b / read $rb bytes"
log "B: wrote $((wb_b / MIB)) MiB, read (incl. verify) $((rb / MIB)) MiB"
# C: mixed random read/write with continuous verification.
fio_checked C 300 "${COMMON[@]}" "${JOB_C[@]}" --do_verify=1
wc_=$(fio_get C 'j["write"]["io_bytes"]')
rc_=$(fio_get C 'j["read"]["io_bytes"]')
[ "$wc_" -gt 0 ] && [ "$rc_" -gt "$wc_" ] || fail "C: write $wc_ / read $rc_ bytes"
log "C: wrote $((wc_ / MIB)) MiB, read (incl. verify) $((rc_ / MIB)) MiB"

stop_server
start_server
rs=$(status_field recovered_segments)
log "restarted (clean): recovered_segments $rs"

# Verify-only replays of A and B.
fio_checked A2 300 "${COMMON[@]}" "${JOB_A[@]}" --do_verify=1 --verify_only=1
va=$(fio_get A2 'j["read"]["io_bytes"]')
[ "$va" -eq $((192 * MIB)) ] || fail "verify-only A read $va bytes, want $((192 * MIB))"
fio_checked B2 300 "${COMMON[@]}" "${JOB_B[@]}" --do_verify=1 --verify_only=1
vb=$(fio_get B2 'j["read"]["io_bytes"]')
[ "$vb" -gt 0 ] || fail "verify-only B verified nothing"
log "verify-only after restart: A $((va / MIB)) MiB, B $((vb / MIB)) MiB, 0 errors"

# The check can fail: zero one 4 KiB block inside region A behind fio's back;
# the verify-only pass must now report it.
qio "$T/zap.out" "write -q -P 0 $((64 * MIB + 8192)) 4096" "flush"
rc=0
fio "${COMMON[@]}" "${JOB_A[@]}" --do_verify=1 --verify_only=1 --output="$T/neg.out" 2>"$T/neg.err" || rc=$?
if [ $rc -eq 0 ] || ! grep -q 'verify: bad' "$T/neg.err"; then
	fail "fio verify-only did not notice a zeroed block (rc $rc): the check cannot fail?"
fi
log "negative control: fio reported the zeroed block ($(grep -c 'verify' "$T/neg.err") verify message(s))"
[ "$(status_field io_errors)" = 0 ] || fail "io_errors after verification"
stop_server

echo "checked: fio crc32c verify of 192 MiB randwrite (3x cache, ring wrapped, writeback $wb blocks) + randrw (verified after, and with verify_backlog), verify-only of A and B after restart, 0 errors"
