#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Usage: check-layout.py [--root TREE]

Size limits of the source tree: no file over 800 lines, no function over
100 lines (from the line with its opening brace at column 0 to the closing
one).  Exit 1 and list what is over."""
import re
import sys
from pathlib import Path

ROOT = Path(sys.argv[2] if len(sys.argv) > 2 and sys.argv[1] == "--root" else
            Path(__file__).resolve().parent.parent)
DIRS = ["lib", "frontends", "cli", "util", "include", "tests", "bench", "examples"]
MAX_FILE, MAX_FUNC = 800, 100


def functions(lines):
    """(name, first line, length) of each function defined at top level."""
    out, start, name = [], None, None
    for i, line in enumerate(lines):
        if start is None and line.startswith("{") and i > 0:
            start = i
            j = i - 1
            while j > 0 and "(" not in lines[j]:
                j -= 1
            m = re.search(r"([A-Za-z_][A-Za-z_0-9]*)\s*\(", lines[j])
            name = m.group(1) if m else "?"
        elif start is not None and line.startswith("}"):
            out.append((name, start + 1, i - start + 1))
            start = None
    return out


def main():
    bad, nfiles, nfuncs = [], 0, 0
    for d in DIRS:
        for path in sorted((ROOT / d).rglob("*.[ch]")) if (ROOT / d).is_dir() else []:
            rel = path.relative_to(ROOT)
            lines = path.read_text().split("\n")
            nfiles += 1
            if len(lines) - 1 > MAX_FILE:
                bad.append(f"{rel}: {len(lines) - 1} lines (limit {MAX_FILE})")
            for name, first, n in functions(lines):
                nfuncs += 1
                if n > MAX_FUNC:
                    bad.append(f"{rel}:{first}: {name}() is {n} lines (limit {MAX_FUNC})")
    for b in bad:
        print(b)
    print(f"layout: {nfiles} files, {nfuncs} functions, {len(bad)} over the limits")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
