"""harness.abi mirrors kernel/include/uapi/syscall.h."""

from __future__ import annotations

import re

import pytest
from selftest_support import ROOT

from harness import abi

HEADER = ROOT / "kernel" / "include" / "uapi" / "syscall.h"


def test_numbers_match_the_uapi_header() -> None:
    if not HEADER.exists():
        pytest.skip("kernel/include/uapi/syscall.h is not there")
    defines = dict(re.findall(r"^#define\s+([A-Z_]+)\s+\(?(-?\d+)L?\)?", HEADER.read_text(), re.M))
    assert defines, "no #define NAME number found in the header"
    for name, value in defines.items():
        assert getattr(abi, name) == int(value), name
    assert sorted(abi.SYSCALL_NAMES) == list(range(abi.NR_SYSCALLS))
