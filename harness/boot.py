"""How a kernel image expects to be started, and the QEMU arguments that start it so.

A Pi 3 starts a kernel in one of two ways, and QEMU raspi3b can do both:

- **EL2 from 0x80000** (the firmware's default; QEMU's ``-kernel``): the raw
  image is placed at 0x80000 and core 0 enters it at EL2; QEMU's own stub
  holds cores 1-3.
- **EL3 from the link address** (``kernel_old=1``, as the RPi OS lessons
  link at 0; or an EL3-only kernel linked at 0x80000, started there): ``-device loader`` places
  the raw image at its link address and resets core 0 there at EL3. Cores
  1-3 reset too, at address 0, so further ``-device loader`` entries put a
  two-instruction park loop (``1: wfi; b 1b``) at PARK_ADDR and set their
  PCs to it: they sleep in WFI (no interrupt is ever routed to them) instead
  of running the kernel's first bytes or zeros. The loop's ``data=`` form
  needs no file, so the jailed QEMU (harness.jail) gets nothing more than
  its image.

``boot_mode(image, want)`` decides. ``want`` is ``el2``, ``el3`` or ``auto``.
The facts it reads, deterministically, from the image and, when there is
one, the ELF beside it (``<stem>.elf`` in the same folder, e.g.
build/kernel8-test.elf or a ported tree's final link, harness.port), taken
only if its lowest load segment holds the image's first bytes:

- the link address: the ELF's lowest ``PT_LOAD`` physical address; for a
  raw image, 0x80000 if any aligned 64-bit word of it points into
  [0x80000, 0x80000 + its size) (a pointer to itself: a GOT entry, a task
  table), else unknown;
- where core 0 starts: the image's first byte, at the link address, as a
  Pi starts it (an ELF's ``e_entry`` is not used: a linker script without
  ``ENTRY()`` makes it the start of ``.text``, which for the lesson's
  layout is not ``_start``);
- EL3-only boot code: the image writes ELR_EL3 (an ``eret`` from EL3) and
  never ELR_EL2 (so it has no way down from EL2).

``auto``: linked at 0 -> EL3 from 0; EL3-only -> EL3 from the link address
(0 when it is unknown: the lesson's ``kernel_old=1`` layout); linked
elsewhere than 0 or 0x80000 -> EL3 from its link address; otherwise -> EL2
from 0x80000. ``el3`` boots at EL3 from the link address (0x80000 when
unknown and the image holds pointers into it, else 0); ``el2`` always uses
``-kernel``.
"""

from __future__ import annotations

import functools
import os
from array import array
from dataclasses import dataclass
from pathlib import Path

BOOTS = ("auto", "el2", "el3")
KERNEL_ADDR = 0x80000  #: where -kernel (and the Pi firmware) puts a raw AArch64 image
PARK_ADDR = 0x3EFFFFF8  #: the park loop: the last 8 bytes of RAM below the peripherals
PARK_CODE = 0x17FFFFFF_D503207F  #: ``1: wfi; b 1b``, as one little-endian 64-bit word
SECONDARIES = (1, 2, 3)
SCAN_BYTES = 4 << 20  #: bytes of an image read for its instructions and pointers

# MSR <sysreg>, Xt with Rt masked off (op0=3): the registers that say how a kernel leaves its EL.
_MSR_ELR_EL3 = 0xD51E4020
_MSR_ELR_EL2 = 0xD51C4020
_RT_MASK = 0xFFFFFFE0
_PT_LOAD = 1


@dataclass(frozen=True)
class BootMode:
    """One way to start a kernel: the EL core 0 enters at, where the image is
    placed (core 0 starts at its first byte), and why this way was chosen."""

    el: int  #: 2 (-kernel) or 3 (-device loader, secondaries parked)
    load: int  #: the image's address in guest memory: core 0 starts at its first byte
    why: str  #: the facts that decided it (one phrase)

    @property
    def entry(self) -> int:
        """Core 0's first PC: the image's first byte, as a Pi (kernel_old=1
        or not) and QEMU's -kernel start a raw image."""
        return self.load

    @property
    def short(self) -> str:
        """``EL2 from 0x80000`` / ``EL3 from 0x0``."""
        return f"EL{self.el} from 0x{self.entry:x}"

    def describe(self) -> str:
        """One line for the report header and the verdicts."""
        if self.el == 2:
            how = "QEMU -kernel"
        else:
            how = ("-device loader, kernel_old=1 style" if self.load == 0 else "-device loader")
            how += ", cores 1-3 parked"
        return f"{self.short} ({how}; {self.why})"

    def qemu_args(self, image: Path) -> list[str]:
        """The QEMU arguments that place ``image`` and start core 0 (and park
        cores 1-3) this way."""
        if self.el == 2:
            return ["-kernel", str(image)]
        args = ["-device", f"loader,addr=0x{PARK_ADDR:x},data=0x{PARK_CODE:x},data-len=8"]
        for cpu in SECONDARIES:
            args += ["-device", f"loader,addr=0x{PARK_ADDR:x},cpu-num={cpu}"]
        # file= comes last: a comma in the path is doubled (QEMU's option syntax),
        # and harness.jail finds the image by this prefix. With cpu-num, the
        # loader also resets that core's PC to addr.
        escaped = str(image).replace(",", ",,")
        args += ["-device", f"loader,addr=0x{self.load:x},cpu-num=0,force-raw=on,file={escaped}"]
        return args




@dataclass(frozen=True)
class ImageFacts:
    """What an image (and its ELF, if one matches) says about its start."""

    link: int | None  #: the link address, None if unknown
    entry: int | None  #: the ELF's e_entry (reported, not used), None without an ELF
    source: str  #: where ``link`` came from ("ELF x.elf", "pointers", "no pointers")
    writes_elr_el3: bool
    writes_elr_el2: bool

    @property
    def el3_only(self) -> bool:
        return self.writes_elr_el3 and not self.writes_elr_el2


def _elf_layout(elf: Path, head: bytes) -> tuple[int, int] | None:
    """(lowest PT_LOAD physical address, entry) of the 64-bit little-endian
    ELF ``elf`` if its lowest loaded bytes begin with ``head``; else None.
    Any malformed or oversized file is None (it may come from a student)."""
    try:
        if elf.stat().st_size > 64 << 20:
            return None
        data = elf.read_bytes()
    except OSError:
        return None
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    entry = int.from_bytes(data[24:32], "little")
    phoff = int.from_bytes(data[32:40], "little")
    phentsize = int.from_bytes(data[54:56], "little")
    phnum = int.from_bytes(data[56:58], "little")
    if phentsize < 56 or phoff + phnum * phentsize > len(data):
        return None
    loads = []
    for i in range(phnum):
        ph = data[phoff + i * phentsize: phoff + (i + 1) * phentsize]
        p_type = int.from_bytes(ph[0:4], "little")
        offset, paddr, filesz = (int.from_bytes(ph[o:o + 8], "little") for o in (8, 24, 32))
        if p_type == _PT_LOAD and filesz > 0:
            loads.append((paddr, offset, filesz))
    if not loads:
        return None
    paddr, offset, filesz = min(loads)
    n = min(len(head), filesz, 4096)
    if n == 0 or offset + n > len(data) or data[offset:offset + n] != head[:n]:
        return None  # not the ELF this image was made from
    return paddr, entry


def _facts(image: Path) -> ImageFacts:
    with open(image, "rb") as f:
        data = f.read(SCAN_BYTES)
    size = image.stat().st_size
    words = array("I", data[: len(data) & ~3])
    masked = {w & _RT_MASK for w in words}
    el3, el2 = _MSR_ELR_EL3 in masked, _MSR_ELR_EL2 in masked
    elf = image.with_suffix(".elf")
    layout = _elf_layout(elf, data[:4096]) if elf.is_file() else None
    if layout is not None:
        return ImageFacts(layout[0], layout[1], f"ELF {elf.name}", el3, el2)
    quads = array("Q", data[: len(data) & ~7])
    hi = KERNEL_ADDR + size
    pointers = sum(1 for q in quads if KERNEL_ADDR <= q < hi)
    if pointers:
        return ImageFacts(KERNEL_ADDR, None, f"{pointers} pointer(s) into 0x{KERNEL_ADDR:x}+", el3, el2)
    return ImageFacts(None, None, f"no pointer into 0x{KERNEL_ADDR:x}+", el3, el2)


@functools.lru_cache(maxsize=64)
def _cached(path: str, size: int, mtime_ns: int, elf_stamp: tuple[int, int] | None,
            want: str) -> BootMode:
    del size, mtime_ns, elf_stamp  # the cache key: a rebuilt image (or ELF) is looked at again
    facts = _facts(Path(path))
    return decide(facts, want)


def decide(facts: ImageFacts, want: str) -> BootMode:
    """The boot mode for ``facts`` under ``want`` (module docstring)."""
    if want not in BOOTS:
        raise ValueError(f"boot must be one of {', '.join(BOOTS)}, not {want!r}")
    link = f"linked at 0x{facts.link:x} ({facts.source})" if facts.link is not None else facts.source
    code = ("EL3-only boot code" if facts.el3_only else
            "boot code for EL2 and EL3" if facts.writes_elr_el3 else "no EL3 boot code")
    if want == "el2":
        return BootMode(2, KERNEL_ADDR, f"--boot el2; {link}")

    def el3(reason: str) -> BootMode:
        load = facts.link if facts.link is not None else 0
        if facts.entry is not None and facts.entry != load:  # ld without ENTRY(): .text's start
            reason += f"; its ELF entry 0x{facts.entry:x} is not where a Pi starts it"
        return BootMode(3, load, reason)

    if want == "el3":
        return el3(f"--boot el3; {link}")
    if facts.link == 0:
        return el3(f"{link}, {code}")
    if facts.el3_only:
        return el3(f"{code}, {link}")
    if facts.link is not None and facts.link != KERNEL_ADDR:
        return el3(f"{link}, {code}")
    return BootMode(2, KERNEL_ADDR, f"{code}, {link}")


def boot_mode(image: Path, want: str = "auto") -> BootMode:
    """How to start ``image`` (module docstring). Raises OSError if it cannot be read."""
    image = Path(image)
    st = image.stat()
    elf = image.with_suffix(".elf")
    try:
        est = elf.stat()
        elf_stamp: tuple[int, int] | None = (est.st_size, est.st_mtime_ns)
    except OSError:
        elf_stamp = None
    return _cached(os.fspath(image.resolve()), st.st_size, st.st_mtime_ns, elf_stamp, want)
