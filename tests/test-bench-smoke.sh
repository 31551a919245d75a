#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# bench/run --smoke end to end: builds the release tree with the fio engine
# ($BLKCACHE_BUILD/bench-build), runs every smoke case (tiny sizes, 1 s
# runs, fast-file and NBD-delay origins) and checks the result table: exit
# status 0, every case and system expected in smoke mode present, every
# value a positive number (times >= 0: a latency may round to 0 on a fast
# machine), the fio crc32c verify job through the in-process engine (case V)
# passed, and nothing left behind.  Benchmark targets are not checked (a
# missed target is not a failure: timing belongs in bench/, not in verdicts).
. "$(dirname "$0")/lib.sh"

SRC=${BLKCACHE_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${BLKCACHE_BUILD:-$(cd "$(dirname "$BLKCACHE")/.." && pwd)}

for t in fio nbdkit nbdinfo meson ninja; do
	if ! command -v "$t" >/dev/null 2>&1; then
		echo "SKIP: $t is not installed (scripts/install-deps.sh)"
		exit 77
	fi
done
# The fio source tree the engine compiles against (cached after the first
# fetch); without network and without a cached copy there is no benchmark.
if ! "$SRC/bench/fetch-fio.sh" >"$T/fetch.out" 2>"$T/fetch.err"; then
	tail -n 5 "$T/fetch.err"
	echo "SKIP: bench/fetch-fio.sh could not provide the fio source tree"
	exit 77
fi

start=$(date +%s)
rc=0
timeout -k 10 900 "$SRC/bench/run" --smoke --build "$BUILD/bench-build" --work "$T/work" --out "$T" \
	>"$T/bench.out" 2>"$T/bench.err" || rc=$?
secs=$(($(date +%s) - start))
log "bench/run --smoke: exit $rc after ${secs}s"
if [ $rc -ne 0 ]; then
	echo "---- bench/run stderr (last 40 lines) ----"
	tail -n 40 "$T/bench.err"
	fail "bench/run --smoke exited with status $rc"
fi
cat "$T/bench.out"

grep -q '^date: .*UTC' "$T/bench.out" || fail "no UTC date at the top of the output"
grep -q '^command: .*bench/run --smoke' "$T/bench.out" || fail "no command line at the top of the output"
grep -qE '^case +system +origin +metric +value +reference +ratio +target +result' "$T/bench.out" ||
	fail "no table header in the output"
[ -s "$T/bench-results.tsv" ] && [ -s "$T/bench-results.txt" ] || fail "no bench-results.{tsv,txt} in --out"

HAVE_CEPH=0
if command -v ceph-mon >/dev/null && command -v ceph-osd >/dev/null && command -v rbd >/dev/null; then
	HAVE_CEPH=1
fi
export HAVE_CEPH
checked=$("$PY" - "$T/bench-results.tsv" <<'EOF'
import os, sys
expected = {
    "V": {"bc-inproc"},
    "P1": {"raw-cache", "bc-inproc"},
    "P2": {"raw-cache", "bc-inproc"},
    "P3": {"nbdkit-memory", "bc-nbd"},
    "P4": {"nbdkit-cache", "bc-nbd", "bc-inproc", "raw-origin"},
    "P6": {"bc-nbd"},
    "P7": {"bc-nbd"},
    "P8": {"bc-inproc", "raw-cache", "bc-nbd", "nbdkit-memory"},
    "P9": {"bc-inproc", "raw-pmem"},
    "P10": {"bc-inproc"},
    "P11": {"nbdkit-memory", "bc-nbd"},
    "P12": {"bc-inproc"},
    "P13": {"nbdkit-memory", "bc-nbd"},
}
# R1 needs the Ceph packages (optional): expected whenever they are here.
if os.environ.get("HAVE_CEPH") == "1":
    expected["R1"] = {"rbd-raw", "rbd-wb", "bc-nbd", "bc-inproc"}
lines = open(sys.argv[1]).read().splitlines()
head = lines[0].split("\t")
rows = [dict(zip(head, l.split("\t"))) for l in lines[1:]]
errors = []
seen = {}
for r in rows:
    seen.setdefault(r["case"], set()).add(r["system"])
    try:
        v = float(r["value"])
    except ValueError:
        errors.append("%s %s %s: value %r is not a number" % (r["case"], r["system"], r["metric"], r["value"]))
        continue
    # A time (recovery_ms, seconds to ready, a latency in us) may round to 0
    # on a fast enough machine: it must be a number >= 0.  Everything else
    # (throughput, IOPS, sizes, MiB verified) is positive at any speed.
    m = r["metric"]
    is_time = m.startswith(("recovery_ms", "s to ready")) or " us" in " %s " % m.replace("(", " ")
    ok = v >= 0 if is_time else v > 0
    if not ok:
        errors.append("%s %s %s: value %s is not positive" % (r["case"], r["system"], r["metric"], r["value"]))
    if r["target"].startswith("ratio"):
        try:
            float(r["ratio"]); float(r["ref_value"])
        except ValueError:
            errors.append("%s %s: ratio row without a numeric ratio/reference" % (r["case"], r["system"]))
    if r["result"] not in ("met", "MISSED", "(ref)", "-"):
        errors.append("%s %s: result %r" % (r["case"], r["system"], r["result"]))
for case, systems in expected.items():
    missing = systems - seen.get(case, set())
    if missing:
        errors.append("case %s: systems missing: %s" % (case, ", ".join(sorted(missing))))
extra = set(seen) - set(expected)
if extra:
    errors.append("unexpected cases in smoke mode: %s" % ", ".join(sorted(extra)))
targets = [r for r in rows if r["result"] in ("met", "MISSED")]
if not targets:
    errors.append("no row carries a target")
v = [r for r in rows if r["case"] == "V"]
if not v or float(v[0]["value"]) <= 0:
    errors.append("the verify case V did not verify anything")
if errors:
    print("\n".join(errors))
    sys.exit(1)
print("%d rows, %d cases, %d targets (%d met, %d missed), %s MiB verified" % (
    len(rows), len(seen), len(targets), sum(r["result"] == "met" for r in targets),
    sum(r["result"] == "MISSED" for r in targets), v[0]["value"]))
EOF
) || { echo "$checked"; fail "result table check failed"; }
log "table: $checked"

# Every case's rows were printed in the table on stdout too.
for c in V P1 P2 P3 P4 P6 P7 P8 P9 P10 P11 P12 P13 $([ $HAVE_CEPH = 1 ] && echo R1); do
	grep -qE "^$c +" "$T/bench.out" || fail "case $c missing from the printed table"
done
# Nothing left behind: the work directory (results went to --out) and the
# servers bench/run started.
[ -z "$(ls -A "$T/work" 2>/dev/null)" ] || fail "bench/run left files in its work dir: $(ls "$T/work")"
! compgen -G "/dev/shm/blkcache-bench-p9.*" >/dev/null || fail "bench/run left its P9 cache in /dev/shm"
! compgen -G "/dev/shm/blkcache-bench-p1[02]*" >/dev/null || fail "bench/run left its P10/P12 devices in /dev/shm"
if pgrep -f "$T/work" >/dev/null; then
	pgrep -af "$T/work"
	fail "processes of bench/run still running"
fi

echo "summary: bench/run --smoke passed in ${secs}s: $checked"
