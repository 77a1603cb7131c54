"""How a kernel is started (harness/boot.py): the decision from an image's
facts, the QEMU arguments of each way, the jail finding the image in a
loader's file=, and under the real QEMU: an EL3 boot parks cores 1-3 (a
test image linked at 0 shows which cores run it), and the bundled kernel
booted through its EL3 path says el=3."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from selftest_support import ROOT

from harness import boot, jail
from harness.boot import KERNEL_ADDR, PARK_ADDR, BootMode, ImageFacts, boot_mode, decide
from harness.qemu import Qemu, find_qemu, qemu_argv
from harness.runner import RunConfig, run_scenario

CORES = ROOT / "fixtures" / "boot" / "cores.S"
CROSS = "aarch64-linux-gnu-"
needs_tools = pytest.mark.skipif(shutil.which(CROSS + "gcc") is None
                                 or shutil.which("qemu-system-aarch64") is None,
                                 reason="needs the cross compiler and QEMU")


def facts(link: int | None, el3: bool, el2: bool, entry: int | None = None) -> ImageFacts:
    return ImageFacts(link, entry, "test", el3, el2)


# --- the decision ------------------------------------------------------------------

@pytest.mark.parametrize("f, want, expected", [
    # (link, writes ELR_EL3, writes ELR_EL2), want -> (el, load, entry)
    (facts(0, True, False), "auto", (3, 0, 0)),  # the lesson as it ships: kernel_old=1
    (facts(None, True, False), "auto", (3, 0, 0)),  # raw, EL3-only, no sign of 0x80000
    (facts(0, True, True), "auto", (3, 0, 0)),  # linked at 0: only the loader puts it there
    (facts(KERNEL_ADDR, True, False), "auto", (3, KERNEL_ADDR, KERNEL_ADDR)),  # EL3-only at 0x80000
    (facts(0, True, False, 0x800), "auto", (3, 0, 0)),  # ld's entry without ENTRY(): .text, not _start
    (facts(KERNEL_ADDR, True, True), "auto", (2, KERNEL_ADDR, KERNEL_ADDR)),  # both ways: -kernel
    (facts(KERNEL_ADDR, False, False), "auto", (2, KERNEL_ADDR, KERNEL_ADDR)),
    (facts(None, False, False), "auto", (2, KERNEL_ADDR, KERNEL_ADDR)),  # a tiny raw image
    (facts(0x100000, False, True), "auto", (3, 0x100000, 0x100000)),  # -kernel cannot place it
    (facts(KERNEL_ADDR, True, True), "el3", (3, KERNEL_ADDR, KERNEL_ADDR)),
    (facts(None, False, False), "el3", (3, 0, 0)),
    (facts(0, True, False), "el2", (2, KERNEL_ADDR, KERNEL_ADDR)),
])
def test_decision(f: ImageFacts, want: str, expected: tuple[int, int, int]) -> None:
    mode = decide(f, want)
    assert (mode.el, mode.load, mode.entry) == expected, mode.describe()


def test_an_unknown_way_is_refused() -> None:
    with pytest.raises(ValueError, match="auto, el2, el3"):
        decide(facts(0, True, False), "el1")


def test_el2_is_qemus_kernel_option() -> None:
    assert BootMode(2, KERNEL_ADDR, "x").qemu_args(Path("/k.img")) == ["-kernel", "/k.img"]


def test_el3_parks_cores_1_to_3_and_loads_the_image_last() -> None:
    args = BootMode(3, 0, "x").qemu_args(Path("/a,b/k.img"))
    devices = args[1::2]
    assert args[0::2] == ["-device"] * len(devices)
    assert devices[0] == f"loader,addr=0x{PARK_ADDR:x},data=0x17ffffffd503207f,data-len=8"
    assert devices[1:4] == [f"loader,addr=0x{PARK_ADDR:x},cpu-num={n}" for n in (1, 2, 3)]
    assert devices[4] == "loader,addr=0x0,cpu-num=0,force-raw=on,file=/a,,b/k.img"
    assert len(devices) == 5


def test_the_jail_takes_the_image_from_the_loader(tmp_path: Path) -> None:
    image = tmp_path / "odd,name.img"
    image.write_bytes(b"\0" * 16)
    argv = qemu_argv("/usr/bin/qemu-system-aarch64", image, "mini", True, BootMode(3, 0, "x"))
    jailed = jail.qemu_command(argv)
    assert (jail.KERNEL_FD, image) in jailed.opens
    assert f"loader,addr=0x0,cpu-num=0,force-raw=on,file={jail.KERNEL_IN_JAIL}" in jailed.argv
    assert not any(str(tmp_path) in a for a in jailed.argv)


# --- facts read from images --------------------------------------------------------

def _elf(where: Path, name: str, link: int, source: str = "") -> Path:
    """Assemble cores.S (or ``source``) linked at ``link`` into ``where``:
    name.img and name.elf; returns the image."""
    where.mkdir(parents=True, exist_ok=True)
    src = where / f"{name}.S"
    if source:
        src.write_text(source)
    else:
        shutil.copy(CORES, src)
    obj, elf, img = (where / f"{name}{s}" for s in (".o", ".elf", ".img"))
    subprocess.run([CROSS + "gcc", "-c", "-o", obj, src], check=True)
    subprocess.run([CROSS + "ld", "-nostdlib", f"-Ttext=0x{link:x}", "-e", "_start", "-o", elf, obj], check=True)
    subprocess.run([CROSS + "objcopy", "-O", "binary", elf, img], check=True)
    return img


EL3_ONLY = ".globl _start\n_start: adr x0, 1f\n msr elr_el3, x0\n eret\n1: b 1b\n"


@needs_tools
def test_the_elf_beside_the_image_gives_link_address_and_entry(tmp_path: Path) -> None:
    img = _elf(tmp_path, "cores", 0)
    mode = boot_mode(img)
    assert (mode.el, mode.load, mode.entry) == (3, 0, 0) and "ELF cores.elf" in mode.why


@needs_tools
def test_an_elf_that_is_not_the_images_is_ignored(tmp_path: Path) -> None:
    img = _elf(tmp_path, "k", 0, EL3_ONLY)
    other = _elf(tmp_path / "other", "k", 0x80000, EL3_ONLY)
    shutil.copy(other.with_suffix(".elf"), img.with_suffix(".elf"))  # linked at 0x80000, other bytes
    mode = boot_mode(img)
    assert "ELF" not in mode.why and (mode.el, mode.load) == (3, 0)  # raw facts: EL3-only, no pointers


@needs_tools
def test_a_raw_image_with_pointers_into_0x80000_is_linked_there(tmp_path: Path) -> None:
    img = _elf(tmp_path, "k", 0x80000, EL3_ONLY + ".balign 8\n.quad _start\n")
    img.with_suffix(".elf").unlink()
    mode = boot_mode(img)
    assert (mode.el, mode.load, mode.entry) == (3, 0x80000, 0x80000), mode.describe()
    assert "pointer" in mode.why


# --- under the real QEMU -------------------------------------------------------------

def _cores_line(img: Path) -> str:
    argv = qemu_argv(find_qemu("qemu-system-aarch64"), img, "mini", True, boot_mode(img))
    with Qemu(argv, 1 << 12, jail=jail.unavailable() is None) as qemu:
        line = qemu.read_line(time.monotonic() + 20)
        assert qemu.wait_exit(time.monotonic() + 10) is not None
    assert line is not None
    return line


@needs_tools
@pytest.mark.qemu
def test_an_el3_boot_runs_core_0_at_el3_and_parks_the_others(tmp_path: Path) -> None:
    line = _cores_line(_elf(tmp_path, "cores", 0))
    assert line == "EL3 core 0", line


@needs_tools
@pytest.mark.qemu
def test_without_the_park_cores_1_to_3_run_the_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The park's own proof: without it, cores 1-3 start at 0, in the image."""
    monkeypatch.setattr(boot, "SECONDARIES", ())
    line = _cores_line(_elf(tmp_path, "cores", 0))
    assert line.startswith("EL3") and set(re.findall(r"core (\d)", line)) == {"0", "1", "2", "3"}, line


@pytest.mark.qemu
def test_the_bundled_kernel_boots_through_its_el3_path(tmp_path: Path) -> None:
    kernel = ROOT / "build" / "kernel8-test.img"
    if not kernel.is_file():
        pytest.skip("build/kernel8-test.img is not built")
    t = run_scenario(RunConfig(kernel=kernel, boot="el3"), "clone_twice", 3)
    boots = [e for e in t.events if e.KIND == "boot"]
    assert boots and boots[0].el == 3
