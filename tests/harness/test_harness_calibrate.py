"""Choosing the -icount shift (harness.calibrate) and the deterministic
command line (harness.qemu). No QEMU needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.boot import PARK_ADDR
from harness.calibrate import (FALLBACK_SHIFT, PROBE_SHIFT, TARGET_SLICE_INSNS, Calibration, announced,
                               shift_for, slice_ns)
from harness.qemu import deterministic_args, qemu_argv


@pytest.mark.parametrize("slice_ms, shift", [
    (2, 0),       # the bundled kernel: 2 ticks of 1 ms
    (0.5, 0),     # faster than the target: never below 0
    (200, 7),     # one lesson tick
    (3000, 10),   # the course fixture: 15 ticks of 200 ms
    (60000, 10),  # QEMU's largest shift
])
def test_the_shift_makes_a_slice_about_the_bundled_kernels(slice_ms: float, shift: int) -> None:
    assert shift_for(int(slice_ms * 1e6)) == shift
    if 0 < shift < 10:  # within a factor sqrt(2) of the target
        assert TARGET_SLICE_INSNS / 1.5 < slice_ms * 1e6 / 2 ** shift < TARGET_SLICE_INSNS * 1.5


def test_the_probe_line_gives_the_median_slice_in_guest_ns() -> None:
    lines = [b"proof seed=1 draw=0x1\n", b"slices insns=4 turns=10,30,20,99,20\n"]
    assert slice_ns(lines) == 20 * 4 * 2 ** PROBE_SHIFT
    assert slice_ns([b"slices insns=4 turns=\n", b"other\n"]) is None


@pytest.mark.parametrize("hz, priority, shift", [
    (1000, 2, 0),     # the bundled kernel's boot marker
    (5, 15, 10),      # a marker kernel with the course's 200 ms tick and 15-tick slices
    (5, None, 7),     # no priority announced: one tick a slice
])
def test_a_marker_kernel_is_calibrated_from_its_boot_marker(hz: int, priority: int | None, shift: int) -> None:
    found = announced(hz, priority)
    assert found.shift == shift
    assert f"hz={hz}" in found.describe()


def test_an_unmeasured_kernel_says_why() -> None:
    text = Calibration(FALLBACK_SHIFT, why="no slice measured; the probe ended stalled").describe()
    assert text.startswith(f"shift {FALLBACK_SHIFT} (not measured: no slice measured")


def test_the_shift_is_on_the_command_line_and_bounded() -> None:
    assert deterministic_args(10)[:2] == ["-icount", "shift=10,align=off,sleep=off"]
    with pytest.raises(ValueError, match="0..10"):
        deterministic_args(11)


def test_a_deterministic_kernel_boot_parks_cores_1_to_3() -> None:
    """Unparked, QEMU's stub spins them and the transcript follows the host's timing."""
    argv = qemu_argv("qemu", Path("k.img"), "mini", True, shift=3)
    parks = [a for a in argv if a.startswith(f"loader,addr=0x{PARK_ADDR:x},cpu-num=")]
    assert parks == [f"loader,addr=0x{PARK_ADDR:x},cpu-num={c}" for c in (1, 2, 3)]
    assert "-kernel" in argv and "shift=3,align=off,sleep=off" in argv
    assert not any("loader" in a for a in qemu_argv("qemu", Path("k.img"), "mini", False))
