#!/bin/bash
# The structure rules of the tree (docs/architecture.md): no engine field is
# written outside the subsystem that owns it, every counter has one writer,
# no file is over 800 lines and no function over 100.  Each checker is also
# shown to catch a violation planted in a copy of the tree.
. "$(dirname "$0")/lib.sh"

SRC=$(cd "$(dirname "$0")/.." && pwd)

out=$("$PY" "$SRC/scripts/check-ownership.py") || { echo "$out"; fail "an engine field is written outside its owner"; }
own=$(echo "$out" | tail -1)
out=$("$PY" "$SRC/scripts/check-layout.py") || { echo "$out"; fail "a file or function is over the size limits"; }
lay=$(echo "$out" | tail -1)
log "$own"
log "$lay"

# The checkers must fail on a planted violation.
mkdir -p "$T/tree"
cp -r "$SRC/lib" "$T/tree/lib"
printf '\nvoid planted(struct bc_engine *e)\n{\n\te->log.durable_seq = 0;\n\te->st.cache_flushes++;\n}\n' \
	>> "$T/tree/lib/engine/read.c"
if out=$("$PY" "$SRC/scripts/check-ownership.py" --root "$T/tree"); then
	fail "check-ownership.py accepted a write of e->log.durable_seq from engine/read.c"
fi
echo "$out" | grep -q 'lib/engine/read.c:.*writes e->log.durable_seq' ||
	fail "check-ownership.py did not name the planted write: $out"
echo "$out" | grep -q 'counter e->st.cache_flushes written by several' ||
	fail "check-ownership.py did not see the second writer of a counter: $out"
{
	printf 'void planted_long(void)\n{\n'
	for i in $(seq 1 120); do printf '\t(void)%d;\n' "$i"; done
	printf '}\n'
} >> "$T/tree/lib/engine/read.c"
if out=$("$PY" "$SRC/scripts/check-layout.py" --root "$T/tree"); then
	fail "check-layout.py accepted a 122-line function"
fi
echo "$out" | grep -q 'planted_long() is 122 lines' || fail "check-layout.py did not name the long function: $out"

echo "checked: $own; $lay; both checkers catch a planted violation"
