"""Image checks before QEMU: each bad file gets a verdict that says what to do."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pytest
from selftest_support import B_SELF, MINI_NOTE, ROOT

from harness.errors import ImageError
from harness.image import MAX_IMAGE_BYTES, ImageNote, inspect_image


def refused(path: Path) -> str:
    with pytest.raises(ImageError) as raised:
        inspect_image(path)
    message = str(raised.value)
    assert message.startswith(f"ImageError: {path}: ") and "\n" not in message
    return message


def test_missing_file(tmp_path: Path) -> None:
    assert "no such file" in refused(tmp_path / "nope.img")


def test_directory(tmp_path: Path) -> None:
    assert "not a regular file" in refused(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "k.img").write_bytes(b"")
    assert "the file is empty" in refused(tmp_path / "k.img")


def test_elf_file_says_to_pass_the_objcopyd_image(tmp_path: Path) -> None:
    elf = b"\x7fELF\x02\x01\x01" + bytes(11) + (183).to_bytes(2, "little") + bytes(44)
    (tmp_path / "kernel8.elf").write_bytes(elf)
    message = refused(tmp_path / "kernel8.elf")
    assert "ELF file (AArch64)" in message and "objcopy -O binary" in message and ".img" in message


def test_text_file(tmp_path: Path) -> None:
    (tmp_path / "k.img").write_text("this is not a kernel\n")
    assert "a text file" in refused(tmp_path / "k.img")


def test_script(tmp_path: Path) -> None:
    (tmp_path / "k.img").write_bytes(b"#!/bin/sh\n\x00\x01")
    assert "a script" in refused(tmp_path / "k.img")


def test_gzip(tmp_path: Path) -> None:
    (tmp_path / "k.img").write_bytes(gzip.compress(B_SELF * 100))
    assert "gzip-compressed" in refused(tmp_path / "k.img")


def test_too_big(tmp_path: Path) -> None:
    with open(tmp_path / "k.img", "wb") as f:
        f.truncate(MAX_IMAGE_BYTES + 1)  # sparse: no disk used
    assert "64 MiB" in refused(tmp_path / "k.img")


def test_too_small_for_one_instruction(tmp_path: Path) -> None:
    (tmp_path / "k.img").write_bytes(b"\x00\xff")
    assert "too small to hold one AArch64 instruction" in refused(tmp_path / "k.img")


def test_image_without_note(make_image: Callable[..., Path]) -> None:
    info = inspect_image(make_image(note=None))
    assert info.note is None and info.size == 256


def test_image_note_is_read(make_image: Callable[..., Path]) -> None:
    info = inspect_image(make_image(b"KTIMAGE proto=2 console=pl011 mode=test"))
    assert info.note == ImageNote(2, "pl011", "test")
    assert inspect_image(make_image(MINI_NOTE)).note == ImageNote(2, "mini", "test")


def test_demo_image_is_refused_for_tests(make_image: Callable[..., Path]) -> None:
    path = make_image(b"KTIMAGE proto=2 console=mini mode=demo")
    assert "this is the demo image" in refused(path)
    assert inspect_image(path, want_mode=None).note == ImageNote(2, "mini", "demo")


@pytest.mark.parametrize("note, words", [
    (b"KTIMAGE proto=1 console=mini mode=test", "speaks protocol 2"),
    (b"KTIMAGE proto=2 console=uart0 mode=test", "console=uart0"),
    (b"KTIMAGE proto=2 mode=test", "lacks one of"),
    (b"KTIMAGE proto=2 console=mini mode=fast", "mode=fast"),
])
def test_bad_note_is_refused(make_image: Callable[..., Path], note: bytes, words: str) -> None:
    assert words in refused(make_image(note))


def test_note_without_terminator(tmp_path: Path) -> None:
    (tmp_path / "k.img").write_bytes(B_SELF + b"KTIMAGE proto=2 console=mini mode=test" + b"\x01" * 300)
    assert "not NUL-terminated" in refused(tmp_path / "k.img")


def test_bundled_test_image_passes_if_built() -> None:
    image = ROOT / "build" / "kernel8-test.img"
    if not image.exists():
        pytest.skip("build/kernel8-test.img is not built")
    info = inspect_image(image)
    assert info.note is not None and info.note.mode == "test"
