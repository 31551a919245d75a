#!/bin/bash
# nbdcopy with 4 connections in and out of the export: 256 MiB of random data
# through a 64 MiB cache (so writeback runs while copying), byte-identical
# read-back live and after a clean restart.  A second copy of a file with a
# hole over the first checks that zeroed ranges (write-zeroes/trim from
# nbdcopy) really read back as zeroes.
. "$(dirname "$0")/lib.sh"

MIB=$((1024 * 1024))
DATA=$((256 * MIB))
make_images 320M 64M
EXPORT=$(export_size_for $((320 * MIB)))
start_server

head -c $DATA /dev/urandom > "$T/src1"
# Second source: other random data with a 24 MiB hole (reads as zeroes) and a
# short tail hole.
head -c $DATA /dev/urandom > "$T/src2"
fallocate -p -o $((100 * MIB)) -l $((24 * MIB)) "$T/src2"
fallocate -p -o $((DATA - 3 * MIB)) -l $((3 * MIB)) "$T/src2"
cmp -n $((24 * MIB)) -i $((100 * MIB)):0 "$T/src2" /dev/zero >/dev/null ||
	fail "could not punch a hole into the source file"

# check_out OUTFILE SRC: the first 256 MiB equal SRC, the rest of the export is zero.
check_out() {
	local out=$1 src=$2 sz
	sz=$(stat -c %s "$out")
	[ "$sz" -eq "$EXPORT" ] || fail "copied-out file is $sz bytes, want $EXPORT"
	cmp -n $DATA "$src" "$out" || fail "data read back through NBD differs from $(basename "$src")"
	cmp -n $((EXPORT - DATA)) -i $DATA:0 "$out" /dev/zero ||
		fail "the never-written part of the export is not zero"
}

t0=$(date +%s)
nbdcopy --connections=4 --threads=4 --flush "$T/src1" "$URI" || fail "nbdcopy in (src1) failed"
log "copied 256 MiB in ($(( $(date +%s) - t0 )) s)"
nbdcopy --connections=4 --threads=4 "$URI" "$T/out" || fail "nbdcopy out failed"
check_out "$T/out" "$T/src1"
log "live read-back identical"

j=$(status_json)
wb=$(jfield "$j" writeback_blocks)
[ "$wb" -gt 0 ] || fail "writeback_blocks = $wb after copying 256 MiB through a 64 MiB cache"
[ "$(jfield "$j" io_errors)" = 0 ] || fail "io_errors = $(jfield "$j" io_errors)"
conns=$(jfield "$j" nbd_connections_total)
[ "$conns" -ge 8 ] || fail "only $conns NBD connections seen; --connections=4 not used?"
log "status: writeback_blocks $wb, connections $conns"

stop_server
start_server
rm -f "$T/out"
nbdcopy --connections=4 --threads=4 "$URI" "$T/out" || fail "nbdcopy out after restart failed"
check_out "$T/out" "$T/src1"
log "read-back after clean restart identical"

# Overwrite with the holey file; its holes must come back as zeroes.
nbdcopy --connections=4 --threads=4 --flush "$T/src2" "$URI" || fail "nbdcopy in (src2) failed"
rm -f "$T/out"
nbdcopy --connections=4 --threads=4 "$URI" "$T/out" || fail "nbdcopy out (src2) failed"
check_out "$T/out" "$T/src2"
j=$(status_json)
nz=$(( $(jfield "$j" write_zeroes) + $(jfield "$j" discards) ))
[ "$nz" -gt 0 ] || fail "nbdcopy of a file with holes sent no write-zeroes/trim (status: $j)"
log "second copy (with holes) identical; $nz zero/trim requests"
stop_server
start_server
rm -f "$T/out"
nbdcopy --connections=4 --threads=4 "$URI" "$T/out" || fail "nbdcopy out (src2) after restart failed"
check_out "$T/out" "$T/src2"
stop_server

echo "checked: 2 x 256 MiB nbdcopy in (4 connections, --flush) through a 64 MiB cache, 4 copies out byte-identical (live and after restart), holes read as zero, unwritten tail zero, writeback_blocks $wb"
