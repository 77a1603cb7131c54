"""Showing console lines to a person: numbered excerpts, undecodable bytes.

Console lines are ``str`` decoded from UTF-8 with ``surrogateescape``, so a
saved transcript is byte-for-byte what QEMU printed. Before a line goes into
a message it passes through ``printable``: only printable ASCII is shown as
it is, so a stray byte reads ``\\xff`` and an escape sequence ``\\x1b[2J``
instead of acting on the reader's terminal.
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


_SHOWN_RAW = frozenset(range(0x20, 0x7F))  #: printable ASCII: the only bytes shown as they are


def printable(text: str, limit: int | None = 300) -> str:
    """``text`` safe for a terminal or a report: every byte outside printable
    ASCII (escape sequences, CR, form feed, non-ASCII) as ``\\xHH``, so a
    kernel cannot change what the reader's terminal shows and one console
    line stays one line; cut at ``limit`` characters (None: not cut)."""
    raw = encode(text)
    shown = "".join(chr(b) if b in _SHOWN_RAW else f"\\x{b:02x}" for b in raw)
    return shown if limit is None or len(shown) <= limit else shown[:limit] + f"... ({len(shown)} chars)"


def excerpt(lines: Sequence[str], first: int, last: int, mark: int | None = None, *,
            number_of_first: int = 1) -> list[str]:
    """Lines ``first..last`` (1-based, inclusive, clipped to the transcript),
    each as ``'   12 | text'``; line ``mark`` gets ``>>`` in front.
    ``number_of_first``: the console line number of ``lines[0]`` (when only
    a tail is kept); the numbers shown and ``first``/``last``/``mark`` count
    from it."""
    shift = number_of_first - 1
    first, last = max(first, number_of_first), min(last, len(lines) + shift)
    width = len(str(last))
    return [f"{'>>' if n == mark else '  '} {n:>{width}} | {printable(lines[n - 1 - shift])}"
            for n in range(first, last + 1)]


def printable_text(text: str, limit: int | None = None) -> str:
    """Several lines (split on ``\\n`` only) for a report: each through
    ``printable``, so a CR, form feed, NUL or ESC inside a line is shown as
    ``\\xHH`` and never starts, ends or hides a line."""
    return "\n".join(printable(line, limit) for line in text.split("\n"))


def split_lines(raw: bytes) -> list[str]:
    """A saved transcript's lines: split on ``\\n`` only (as the runner wrote
    them), so one console line is one line whatever else it holds."""
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [decode(line) for line in lines]
