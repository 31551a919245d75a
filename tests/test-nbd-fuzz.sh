#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Protocol fuzzing: build tests/fuzz/fuzz-nbd.c with clang, libFuzzer, ASan
# and UBSan against the real frontends/nbd sources (or take the one the
# build has: BLKCACHE_BUILD/tests/fuzz/fuzz-nbd, from meson -Dfuzz=enabled
# with CC=clang, the same flags, if it is up to date), and run it for
# BLKCACHE_FUZZ_RUNS (default 60000) executions with the fixed random seed
# BLKCACHE_FUZZ_SEED (default 1) over a copy of the seed corpus
# (tests/fuzz/corpus, which tests/fuzz/make-corpus.py must reproduce).  A
# number of runs rather than a time budget: every machine, fast or slow,
# loaded or not, fuzzes as much, from the same seed (the inputs can still
# drift apart a little where coverage feedback differs from run to run), and
# the checks on the run (executions, coverage) hold at any speed.  A longer
# campaign: raise BLKCACHE_FUZZ_RUNS, or vary the seed.
# Fails on any crash, leak, timeout, sanitizer report or violated invariant;
# clang or libFuzzer missing is a failure, not a skip.
. "$(dirname "$0")/lib.sh"

SRC=$(cd "$(dirname "$0")/.." && pwd)
NBD=$SRC/frontends/nbd
RUNS=${BLKCACHE_FUZZ_RUNS:-60000}
FSEED=${BLKCACHE_FUZZ_SEED:-1}
CLANG=${CLANG:-clang}
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || fail "BLKCACHE_FUZZ_RUNS must be a positive integer (got '$RUNS')"
[[ "$FSEED" =~ ^[1-9][0-9]*$ ]] || fail "BLKCACHE_FUZZ_SEED must be a positive integer (got '$FSEED')"
# Upper bound for the whole run (a hung fuzzer), far above what RUNS take.
BOUND=$((600 + RUNS / 50))

# ---- toolchain ----
command -v "$CLANG" >/dev/null 2>&1 ||
	fail "clang not found: install the Debian packages 'clang' and 'libclang-rt-dev' (libFuzzer)"
major=$("$CLANG" -dumpversion | cut -d. -f1)
rtpkg="libclang-rt-$major-dev"
cat >"$T/probe.c" <<'EOF'
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }
EOF
if ! "$CLANG" -fsanitize=fuzzer,address,undefined "$T/probe.c" -o "$T/probe" >"$T/probe.log" 2>&1; then
	cat "$T/probe.log"
	fail "$CLANG cannot link a libFuzzer target: install the Debian package '$rtpkg' (pulled in by 'libclang-rt-dev'), which ships libclang_rt.fuzzer and the sanitizer runtimes"
fi

# ---- build the fuzzer against the real sources ----
CFLAGS=(-std=gnu11 -D_GNU_SOURCE -fno-strict-aliasing -Wall -Wextra
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -g -O1
	-I"$SRC/include" -I"$SRC/lib" -I"$SRC/util" -I"$NBD")
SRCS=("$SRC/tests/fuzz/fuzz-nbd.c" "$NBD/proto.c" "$NBD/handshake.c" "$NBD/conn.c"
	"$NBD/xmit.c" "$NBD/outq.c" "$NBD/move.c")
# The build's fuzzer (tests/fuzz/meson.build), if the build has it as a
# target and it is up to date (ninja has nothing to do for it); else our own.
FUZZER=$T/fuzz-nbd
BUILT=""
if [ -n "${BLKCACHE_BUILD:-}" ] && [ -x "$BLKCACHE_BUILD/tests/fuzz/fuzz-nbd" ]; then
	dry=$(ninja -C "$BLKCACHE_BUILD" -n tests/fuzz/fuzz-nbd 2>&1) || true
	if [[ "$dry" == *"ninja: no work to do"* ]]; then
		BUILT=$BLKCACHE_BUILD/tests/fuzz/fuzz-nbd
	else
		log "$BLKCACHE_BUILD/tests/fuzz/fuzz-nbd is not an up-to-date target of the build: building our own"
	fi
fi
if [ -n "$BUILT" ]; then
	# Only the warnings check needs a compile of fuzz-nbd.c.
	if ! "$CLANG" "${CFLAGS[@]}" -fsyntax-only "$SRC/tests/fuzz/fuzz-nbd.c" >"$T/build.log" 2>&1; then
		cat "$T/build.log"
		fail "compiling tests/fuzz/fuzz-nbd.c failed"
	fi
	FUZZER=$BUILT
elif ! "$CLANG" "${CFLAGS[@]}" "${SRCS[@]}" -o "$FUZZER" >"$T/build.log" 2>&1; then
	cat "$T/build.log"
	fail "building the fuzzer failed"
fi
if grep -q 'fuzz-nbd\.c:.*warning:' "$T/build.log"; then
	cat "$T/build.log"
	fail "tests/fuzz/fuzz-nbd.c compiles with warnings"
fi
if [ -n "$BUILT" ]; then
	log "using the build's $FUZZER (meson -Dfuzz); fuzz-nbd.c checked for warnings with $("$CLANG" --version | head -1)"
else
	log "built $FUZZER with $("$CLANG" --version | head -1)"
fi

# ---- the seed corpus is reproducible ----
"$PY" "$SRC/tests/fuzz/make-corpus.py" "$T/regen" >/dev/null || fail "make-corpus.py failed"
nseeds=0
for f in "$T"/regen/*; do
	cmp -s "$f" "$SRC/tests/fuzz/corpus/$(basename "$f")" ||
		fail "tests/fuzz/corpus/$(basename "$f") is missing or differs from what make-corpus.py writes"
	nseeds=$((nseeds + 1))
done
[ "$nseeds" -ge 12 ] || fail "only $nseeds seeds"
cp -r "$SRC/tests/fuzz/corpus" "$T/corpus"
mkdir "$T/artifacts"

# ---- fuzz ----
log "fuzzing: $RUNS runs, seed $FSEED, over $(find "$T/corpus" -type f | wc -l) seed files"
rc=0
# -timeout: one input taking 60 s is a hang (inputs take well under 1 ms).
(cd "$T" && exec timeout -k 10 "$BOUND" "$FUZZER" -max_len=4096 -timeout=60 \
	-runs="$RUNS" -seed="$FSEED" -print_final_stats=1 -rss_limit_mb=2048 \
	-error_exitcode=1 -timeout_exitcode=2 -artifact_prefix="$T/artifacts/" \
	"$T/corpus") >"$T/fuzz.log" 2>&1 || rc=$?

artifacts=$(find "$T/artifacts" -type f | wc -l)
if [ $rc -ne 0 ] || [ "$artifacts" -ne 0 ] ||
	grep -qE 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:|deadly signal|invariant violated|ERROR: libFuzzer|ALARM: working on the last Unit|Test unit written to' "$T/fuzz.log"; then
	grep -vE '^#[0-9]+.*(NEW|REDUCE|pulse)' "$T/fuzz.log" | tail -n 80
	for a in "$T"/artifacts/*; do
		[ -f "$a" ] || continue
		echo "---- $a ($(stat -c %s "$a") bytes) ----"
		od -A d -t x1 "$a" | head -n 20
	done
	[ $rc -ne 124 ] || fail "the fuzzer did not finish $RUNS runs within $BOUND s (hung?)"
	fail "the fuzzer found a problem (exit $rc, $artifacts artifacts; reproduce with: fuzz-nbd ARTIFACT)"
fi

execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$T/fuzz.log" | tail -1)
done_execs=$(sed -n 's/^#\([0-9]*\)[[:space:]]*DONE .*/\1/p' "$T/fuzz.log" | tail -1)
cov=$(sed -n 's/^#[0-9]*[[:space:]]*DONE .*cov: \([0-9]*\).*/\1/p' "$T/fuzz.log" | tail -1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *\([0-9]*\).*/\1/p' "$T/fuzz.log" | tail -1)
grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::|^Done' "$T/fuzz.log"
[ -n "$execs" ] && [ -n "$done_execs" ] && [ -n "$cov" ] ||
	{ tail -n 40 "$T/fuzz.log"; fail "no final statistics in the fuzzer output"; }
[ "$execs" -eq "$done_execs" ] || fail "executions: stat says $execs, DONE line says $done_execs"
grep -qE '^#[0-9]+[[:space:]]+INITED' "$T/fuzz.log" || fail "the seed corpus was not loaded"
# Every seed ran, and then the fuzzer generated inputs of its own.
[ "$execs" -ge "$RUNS" ] && [ "$RUNS" -gt $((nseeds * 2)) ] ||
	fail "only $execs executions (want $RUNS, more than twice the $nseeds seeds)"
# The inputs reach the parsers: a few hundred edges of frontends/nbd at least.
[ "$cov" -ge 300 ] || fail "coverage of only $cov edges: the fuzzer does not reach the NBD code"

echo "summary: $execs executions (seed $FSEED, $rate/s, $nseeds seeds, cov $cov), 0 crashes"
