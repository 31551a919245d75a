#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# format --shards (format version 5, docs/shards.md): the cache device gets
# one origin record per shard, each with an equal part of the ring and the
# stripe; check reads every shard's ring (serving one: test-shards-serve);
# bad --shards/--stripe
# arguments and shards that do not fit are refused with clear errors;
# --shards auto makes one shard per two CPUs.
. "$(dirname "$0")/lib.sh"

make_images 256M 64M --shards 2 --stripe 256K
grep -q "as 2 shards of .* segments each, stripes of 256 KiB" "$T/format.out" ||
	fail "format --shards did not say so: $(cat "$T/format.out")"
info=$(py "$BLKCACHE_SRC/tests/cachetool.py" info "$CACHE") || fail "cachetool info failed"
[ "$(echo "$info" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["sb"]["version"])')" = 5 ] ||
	fail "the superblock is not version 5"
"$BLKCACHE" check --cache "$CACHE" >"$T/check.out" 2>&1 || { cat "$T/check.out"; fail "check of a sharded cache failed"; }
grep -q "2 ring(s) checked" "$T/check.out" || fail "check did not check both shards' rings: $(cat "$T/check.out")"


bad() { # EXPECTED-MESSAGE ARGS...: format must exit 2 (usage) with the message
	local want=$1 rc=0
	shift
	"$BLKCACHE" format --cache "$CACHE" "$@" >"$T/bad.out" 2>&1 || rc=$?
	[ $rc = 2 ] && grep -q -- "$want" "$T/bad.out" || fail "format $*: exit $rc, $(cat "$T/bad.out")"
}
bad "a number from 1 to 16" --origin "$ORIGIN" --shards 0
bad "a number from 1 to 16" --origin "$ORIGIN" --shards 17
bad "a number from 1 to 16" --origin "$ORIGIN" --shards 2x
bad "not a power of two of at least 4K" --origin "$ORIGIN" --shards 2 --stripe 3K
bad "give --shards 2 or more" --origin "$ORIGIN" --stripe 1M
bad "describe an origin: give --origin" --shards 2
rc=0
"$BLKCACHE" format --cache "$CACHE" --origin "$ORIGIN" --shards 16 --force >"$T/big.out" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "too few for 16 shards" "$T/big.out" || fail "16 shards on 64 MiB: exit $rc, $(cat "$T/big.out")"
# The failed format left the cache as it was: still the sharded one.
"$BLKCACHE" check --cache "$CACHE" >"$T/check2.out" 2>&1 || fail "the cache was damaged by a refused format"

# One shard is the unsharded format, served as always.
make_images 256M 64M --shards 1
grep -q "shards" "$T/format.out" && fail "format --shards 1 talks about shards: $(cat "$T/format.out")"
start_server
qio "$T/w" "write -P 0x3c 0 1M" "read -P 0x3c 0 1M"
stop_server

# --shards auto: one shard per two CPUs online.
want=$(( $(nproc) / 2 ))
[ "$want" -ge 1 ] || want=1
[ "$want" -le 16 ] || want=16
make_images 256M 64M --shards auto --stripe 256K
if [ "$want" = 1 ]; then
	grep -q "shards auto: $(nproc) CPUs online: one shard" "$T/format.out" ||
		fail "--shards auto on $(nproc) CPUs did not say it made one shard: $(cat "$T/format.out")"
	grep -q "as [0-9]* shards" "$T/format.out" && fail "--shards auto on $(nproc) CPUs made shards: $(cat "$T/format.out")"
else
	grep -q "as $want shards" "$T/format.out" ||
		fail "--shards auto on $(nproc) CPUs did not make $want shards: $(cat "$T/format.out")"
fi
bad "a number from 1 to 16, or auto" --origin "$ORIGIN" --shards automatic
echo "checked: format --shards 2 --stripe 256K writes version 5 with 2 rings (check reads both), 7 bad arguments and 16 shards that do not fit refused (cache left intact), --shards 1 is the unsharded format and serves, --shards auto makes $want on $(nproc) CPUs"
