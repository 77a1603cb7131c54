"""Showing console lines to a person: numbered excerpts, undecodable bytes.

Console lines are ``str`` decoded from UTF-8 with ``surrogateescape``, so a
saved transcript is byte-for-byte what QEMU printed. Before a line goes into
a message it passes through ``printable`` so a stray byte reads ``\\xff``
instead of breaking the terminal or the report.
"""

from __future__ import annotations

from collections.abc import Sequence

ENCODING = "utf-8"
ERRORS = "surrogateescape"


def decode(raw: bytes) -> str:
    """Console bytes -> str, losslessly (``encode`` gives the bytes back)."""
    return raw.decode(ENCODING, ERRORS)


def encode(text: str) -> bytes:
    """The console bytes a ``decode``d line came from."""
    return text.encode(ENCODING, ERRORS)


def printable(text: str, limit: int = 300) -> str:
    """``text`` safe for a report: undecodable bytes as ``\\xHH``, cut at ``limit``."""
    shown = encode(text).decode(ENCODING, "backslashreplace")
    return shown if len(shown) <= limit else shown[:limit] + f"... ({len(shown)} chars)"


def excerpt(lines: Sequence[str], first: int, last: int, mark: int | None = None) -> list[str]:
    """Lines ``first..last`` (1-based, inclusive, clipped to the transcript),
    each as ``'   12 | text'``; line ``mark`` gets ``>>`` in front."""
    first, last = max(first, 1), min(last, len(lines))
    width = len(str(last))
    return [f"{'>>' if n == mark else '  '} {n:>{width}} | {printable(lines[n - 1])}"
            for n in range(first, last + 1)]
