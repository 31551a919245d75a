#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Usage: check-ownership.py [--root TREE]

Each engine subsystem owns its part of struct bc_engine: only its own
files may write it (assignment, ++/--, compound assignment, or taking its
address).  Reads across subsystems go through functions where they carry
meaning; this checks the writes.  Counters (e->st.NAME) may each be written
by one subsystem only.  Exit 1 and list every violation."""
import re
import sys
from pathlib import Path

ROOT = Path(sys.argv[2] if len(sys.argv) > 2 and sys.argv[1] == "--root" else
            Path(__file__).resolve().parent.parent)

# field (first member after e->) -> the files (relative to lib/) that own it
CORE = {"engine/engine.c"}
OWNERS = {
    "loop": CORE, "cache": CORE, "origin": CORE, "owns_devs": CORE, "target": CORE,
    "cfg": CORE, "nseg": CORE, "hdr_blocks": CORE, "data_blocks": CORE, "seg_size": CORE,
    "export_blocks": CORE, "index": CORE, "nr_dirty": CORE, "start_comp": CORE,
    "closing": CORE, "degraded": CORE, "promote": CORE,
    "tun": CORE | {"engine/tunables.c"},
    "sb": CORE | {"format/superblock.c"},
    "sb_buf": CORE | {"format/superblock.c"},
    "sb_copy_off": CORE,
    "open_table": CORE,
    "cache_version": CORE,
    "mode": {"engine/mode.c"},
    "log": {"log/segment.c", "log/durable.c", "log/openwrite.c", "log/reclaim.c", "log/carry.c", "log/image.c", "log/staging.c",
            "log/recovery.c"},
    "wr": {"engine/write.c"},
    "rd": {"engine/read.c"},
    "oflush": {"engine/flush.c"},
    "drain": {"engine/drain.c"},
    "wb": {"writeback/writeback.c"},
    "gate": {"writeback/gate.c"},
}

WRITE = re.compile(
    r"(?P<pre>\+\+|--|(?<![&\w)\]])&)?\s*\b(?P<var>e|c->e|wb->e|f->e)->(?P<field>[a-z_]+)"
    r"(?P<sub>(?:\.[a-z_]+|->[a-z_]+|\[[^\]\n]*\])*)"
    r"\s*(?P<op>\+\+|--|[-+*/|&^]?=(?!=)|<<=|>>=)?")


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def main():
    bad = []
    st_writers = {}
    lib = ROOT / "lib"
    for path in sorted(lib.rglob("*.c")):
        rel = str(path.relative_to(lib))
        text = strip_comments(path.read_text())
        for m in WRITE.finditer(text):
            pre, op, field, sub = m.group("pre"), m.group("op"), m.group("field"), m.group("sub")
            # Taking a member's address (&e->log.flush_timer) counts as a
            # write; &e->index alone is handed to the index's own functions.
            writes = op is not None or pre in ("++", "--") or (pre == "&" and sub)
            if not writes:
                continue
            line = text.count("\n", 0, m.start()) + 1
            if field == "st":
                name = sub.split(".")[1] if sub.startswith(".") else sub
                st_writers.setdefault(name, set()).add(rel)
                continue
            owners = OWNERS.get(field)
            if owners is None:
                bad.append(f"lib/{rel}:{line}: e->{field} has no owner in scripts/check-ownership.py")
            elif rel not in owners:
                bad.append(f"lib/{rel}:{line}: writes e->{field}{sub}, owned by "
                           + ", ".join(sorted(owners)))
    for name, files in sorted(st_writers.items()):
        if len(files) > 1:
            bad.append(f"counter e->st.{name} written by several subsystems: " + ", ".join(sorted(files)))
    for b in bad:
        print(b)
    nfields = len(OWNERS)
    print(f"ownership: {nfields} engine fields, {len(st_writers)} counters checked, "
          f"{len(bad)} violations")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
