"""Quoted marker strings: escaping and unescaping."""

from __future__ import annotations

import pytest

from harness.quoting import quote, unquote


def test_every_byte_round_trips() -> None:
    data = bytes(range(256))
    assert unquote(quote(data)) == data


def test_printable_bytes_stand_for_themselves_and_the_rest_are_escaped() -> None:
    assert quote(b"hi there~") == "hi there~"
    assert quote(b'"\\\n\r\x00\x7f\x80\xff') == "\\x22\\x5c\\x0a\\x0d\\x00\\x7f\\x80\\xff"


def test_a_quoted_string_never_holds_a_line_break_quote_or_bare_backslash() -> None:
    body = quote(bytes(range(256)))
    assert "\n" not in body and "\r" not in body and '"' not in body
    assert body.replace("\\x", "").count("\\") == 0


@pytest.mark.parametrize("body", ['a"b', "\\n", "\\x4", "\\x4G", "\\X41", "\\x0A", "tab\there", "é"])
def test_unquote_rejects_what_the_grammar_does_not_allow(body: str) -> None:
    with pytest.raises(ValueError):
        unquote(body)


def test_unquote_decodes_escapes() -> None:
    assert unquote("a\\x22b\\x5c\\x0a") == b'a"b\\\n'
