"""What the harness mirrors from the kernel's side: harness.abi mirrors
kernel/include/uapi/syscall.h, and qemu_argv mirrors the Makefile's QEMU."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
from selftest_support import ROOT

from harness import abi
from harness.image import CONSOLES
from harness.qemu import DEFAULT_QEMU, SERIAL, qemu_argv

HEADER = ROOT / "kernel" / "include" / "uapi" / "syscall.h"


def test_numbers_match_the_uapi_header() -> None:
    if not HEADER.exists():
        pytest.skip("kernel/include/uapi/syscall.h is not there")
    defines = dict(re.findall(r"^#define\s+([A-Z_]+)\s+\(?(-?\d+)L?\)?", HEADER.read_text(), re.M))
    assert defines, "no #define NAME number found in the header"
    for name, value in defines.items():
        assert getattr(abi, name) == int(value), name
    assert sorted(abi.SYSCALL_NAMES) == list(range(abi.NR_SYSCALLS))


def test_every_console_has_its_serial_wiring() -> None:
    assert sorted(SERIAL) == sorted(CONSOLES)


@pytest.mark.parametrize("console", CONSOLES)
def test_make_qemu_test_boots_as_the_harness_does(console: str) -> None:
    """`make qemu-test` (a person at the console) and the harness must boot
    the same machine: same options and serial wiring, real time, where the
    harness adds only -icount for its deterministic runs."""
    dry = subprocess.run(["make", "-n", "qemu-test", f"CONSOLE={console}"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    line = [ln for ln in dry.stdout.splitlines() if ln.startswith(DEFAULT_QEMU + " ")][-1]
    made = shlex.split(line)
    ours = qemu_argv(DEFAULT_QEMU, Path("build/kernel8-test.img"), console, deterministic=False)

    def without_kernel(argv: list[str]) -> list[str]:
        at = argv.index("-kernel")
        return argv[:at] + argv[at + 2:]

    assert made[made.index("-kernel") + 1] == "build/kernel8-test.img"
    assert without_kernel(made) == without_kernel(ours)
