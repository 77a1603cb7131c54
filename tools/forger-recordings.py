#!/usr/bin/env python3
"""Print fixtures/forger.patch's src/recorded.h: the EL0 transcripts of
fixtures/lesson5 judged with seed 42, as a replaying forger keeps them.

    python3 -m pytest tests/scenarios --submission=fixtures/lesson5 --seed 42 \\
        --transcript-dir /tmp/rec -p no:cacheprovider
    tools/forger-recordings.py /tmp/rec/el0-lesson5 > recorded.h
"""
from __future__ import annotations

import sys
from pathlib import Path


def c_string(text: str) -> str:
    """``text`` as a C string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main(directory: str) -> int:
    files = sorted(Path(directory).glob("*-42.txt"))
    if not files:
        print(f"{directory}: no <scenario>-42.txt transcripts", file=sys.stderr)
        return 1
    out = ["/* recorded.h: the transcripts of fixtures/lesson5 judged with seed 42,",
           " * as a replaying forger keeps them (tools/forger-recordings.py). */",
           "struct recording { const char *scenario; const char *const *lines; };", ""]
    names = []
    for path in files:
        name = path.name.removesuffix("-42.txt")
        names.append(name)
        out.append(f"static const char *const rec_{name}[] = {{")
        out += [f"\t{c_string(line)}," for line in path.read_text().splitlines()]
        out += ["\t0", "};"]
    out.append("static const struct recording recordings[] = {")
    out += [f'\t{{ "{n}", rec_{n} }},' for n in names]
    out += ["\t{ 0, 0 }", "};"]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]) if len(sys.argv) == 2 else 2)
