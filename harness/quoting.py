"""Quoted marker strings (docs/protocol.md, "Lines").

Inside ``"..."`` the bytes 0x20..0x7e other than ``"`` and ``\\`` stand for
themselves and every other byte is ``\\xHH`` with lower-case hex. There is no
other escape, so a quoted string never holds a line break.
"""

import re

_LITERAL = frozenset(range(0x20, 0x7F)) - {ord('"'), ord("\\")}
#: The body of a well-formed quoted string (without the quotes).
QUOTED_BODY = r'(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\x[0-9a-f]{2})*'
_BODY_RE = re.compile(QUOTED_BODY)
_ESCAPE_RE = re.compile(r"\\x([0-9a-f]{2})")


def quote(data: bytes) -> str:
    """Return the body of the quoted string for ``data`` (no surrounding quotes)."""
    return "".join(chr(b) if b in _LITERAL else f"\\x{b:02x}" for b in data)


def unquote(body: str) -> bytes:
    """Return the bytes a quoted-string body stands for.

    Raises ValueError if ``body`` is not exactly a well-formed body: a raw
    quote, a backslash not followed by ``x`` and two lower-case hex digits,
    or a character outside 0x20..0x7e.
    """
    if _BODY_RE.fullmatch(body) is None:
        raise ValueError(f"not a well-formed quoted string: {body!r}")
    return _ESCAPE_RE.sub(lambda m: chr(int(m.group(1), 16)), body).encode("latin-1")
