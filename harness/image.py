"""Checking a kernel image before QEMU sees it, and reading its image note.

QEMU given a bad ``-kernel`` file either refuses with a terse message or,
worse, boots garbage and says nothing; a student then waits for a timeout.
So the harness looks at the file first and names the mistake (docs/protocol.md,
"Which UART", for the note).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import ImageError

MAX_IMAGE_BYTES = 64 << 20  #: far above any teaching kernel; QEMU raspi3b has 1 GiB of RAM
NOTE_MAGIC = b"KTIMAGE "
NOTE_MAX = 256  #: a note longer than this (without its NUL) is malformed
PROTO = 2  #: the protocol version this harness speaks (docs/protocol.md); boot markers say it too
CONSOLES = ("mini", "pl011")
MODES = ("test", "demo")
OBJCOPY_HINT = "aarch64-linux-gnu-objcopy -O binary kernel8.elf kernel8.img"
_ELF_MACHINES = {3: "x86", 40: "32-bit ARM", 62: "x86-64", 183: "AArch64", 243: "RISC-V"}


@dataclass(frozen=True)
class ImageNote:
    """The ``KTIMAGE proto=1 console=mini mode=test`` string of an image."""

    proto: int
    console: str
    mode: str


@dataclass(frozen=True)
class ImageInfo:
    """A kernel image that passed the checks."""

    path: Path
    size: int
    note: ImageNote | None  #: None for an image without a note (a student kernel)


def read_note(path: Path, data: bytes) -> ImageNote | None:
    """The image note in ``data``, None if there is none; ImageError if it is malformed."""
    at = data.find(NOTE_MAGIC)
    if at < 0:
        return None
    end = data.find(b"\0", at, at + NOTE_MAX + 1)
    text = data[at:end].decode("ascii", "replace") if end >= 0 else ""
    fields = dict(tok.partition("=")[::2] for tok in text.split()[1:])
    problem = None
    if end < 0:
        problem = f"is not NUL-terminated within {NOTE_MAX} bytes"
    elif not {"proto", "console", "mode"} <= fields.keys():
        problem = "lacks one of proto=, console=, mode="
    elif fields["proto"] != str(PROTO):
        problem = f"says proto={fields['proto']}, but this harness speaks protocol {PROTO}"
    elif fields["console"] not in CONSOLES:
        problem = f"says console={fields['console']}, not one of {', '.join(CONSOLES)}"
    elif fields["mode"] not in MODES:
        problem = f"says mode={fields['mode']}, not one of {', '.join(MODES)}"
    if problem:
        raise ImageError(f"{path}: the image note at offset 0x{at:x} {problem}")
    return ImageNote(int(fields["proto"]), fields["console"], fields["mode"])


def _format_problem(data: bytes) -> str | None:
    """What ``data`` is if it is plainly not a raw AArch64 image, else None."""
    if data.startswith(b"\x7fELF"):
        machine = int.from_bytes(data[18:20], "little") if len(data) >= 20 else -1
        arch = _ELF_MACHINES.get(machine, f"machine {machine}")
        return (f"is an ELF file ({arch}), not a raw kernel image: pass the objcopy'd .img "
                f"(`{OBJCOPY_HINT}`; the suite's is build/kernel8-test.img)")
    if data.startswith(b"\x1f\x8b"):
        return "is gzip-compressed: decompress it; the Pi 3 and QEMU raspi3b load a raw image"
    if data.startswith(b"#!"):
        return "is a script, not a kernel image"
    head = data[:4096]
    if all(0x20 <= b < 0x7F or b in b"\t\n\r\f" for b in head):
        return "is a text file, not a kernel image"
    if len(data) < 4:
        return f"is {len(data)} bytes: too small to hold one AArch64 instruction"
    return None


def inspect_image(path: Path, *, want_mode: str | None = "test") -> ImageInfo:
    """Check that ``path`` looks like a raw AArch64 kernel image and read its note.

    ``want_mode``: refuse an image whose note says another mode (the demo
    image does not speak the protocol); None accepts any. Raises ImageError
    naming the problem and what to do.
    """
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file (build it, e.g. `make build/kernel8-test.img`)")
    if not path.is_file():
        raise ImageError(f"{path}: not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise ImageError(f"{path}: the file is empty (0 bytes); did the build fail? rebuild it")
    if size > MAX_IMAGE_BYTES:
        raise ImageError(f"{path}: {size} bytes is more than the {MAX_IMAGE_BYTES >> 20} MiB "
                         f"the harness accepts for a Pi 3 kernel image")
    data = path.read_bytes()
    problem = _format_problem(data)
    if problem:
        raise ImageError(f"{path}: {problem}")
    note = read_note(path, data)
    if want_mode is not None and note is not None and note.mode != want_mode:
        raise ImageError(f"{path}: this is the {note.mode} image (its note says mode={note.mode}); "
                         f"the harness needs a {want_mode}-mode image such as build/kernel8-test.img")
    return ImageInfo(path, size, note)
