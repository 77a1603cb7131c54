"""Line tags for the consoles tests write or rewrite (docs/protocol.md,
"Line tags"): a test that builds a marker by hand, or a fake QEMU that
replays a fixture with another seed, tags it as a kernel would, with
harness.prng.line_tag (the one Python definition).

A line already tagged is re-tagged, so a test can take a fixture's line,
change it and tag it again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from harness.prng import KERNEL_STREAM, line_tag

_KT = re.compile(r"@KT ([0-9]+) (?:[0-9a-f]{4} (?=\S))?")
_KU = re.compile(r"@KU ([0-9]+) ([0-9]+) (?:[0-9a-f]{4} (?=\S))?")
_SEED = re.compile(r" seed=([0-9]+)")


def tag_kt(text: str, key: int) -> str:
    """``@KT <seq> [<old tag> ]<rest>`` with the tag of ``seq`` under ``key``."""
    m = _KT.match(text)
    if m is None:
        return text
    return f"@KT {m.group(1)} {line_tag(key, KERNEL_STREAM, int(m.group(1)))} {text[m.end():]}"


def retag(lines: Iterable[str], seed: int | None = None) -> list[str]:
    """Every ``@KT`` line tagged as a kernel would: key 0 up to ``start``,
    then ``seed`` (default: the seed the start line names)."""
    out, key = [], 0
    for text in lines:
        m = _KT.match(text)
        if m is not None and text[m.end():].startswith("start "):
            found = _SEED.search(text)
            key = seed if seed is not None else int(found.group(1)) if found else 0
        out.append(tag_kt(text, key))
    return out


def tag_ku(text: str, seed: int) -> str:
    """``@KU <tid> <seq> [<old tag> ]<rest>`` with its tag under ``seed``."""
    m = _KU.match(text)
    if m is None:
        return text
    tag = line_tag(seed, int(m.group(1)), int(m.group(2)))
    return f"@KU {m.group(1)} {m.group(2)} {tag} {text[m.end():]}"


def retag_el0(lines: Iterable[str], seed: int) -> list[str]:
    """Every ``@KU`` line tagged for ``seed``; other lines as they are."""
    return [tag_ku(text, seed) for text in lines]
