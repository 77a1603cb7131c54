"""Choosing QEMU's -icount shift from the kernel's own time slice.

Under ``-icount shift=N`` one guest instruction is 2**N ns of guest time,
so one of the kernel's ticks costs QEMU (tick length / 2**N) instructions
of work. The bundled kernel ticks at 1 kHz: at shift 0 a tick is 1 M
instructions. A lesson kernel ticks every 200-270 ms: at shift 0 a tick is
200 M instructions, ~2 s of QEMU's CPU, and everything that waits for the
scheduler waits that long per tick. The shift only rescales guest time;
the kernel's code, and what it does per tick, are the same.

So an EL0 session first boots the kernel once at PROBE_SHIFT with the
``kt_tick`` program (kernel/user/kt/tick.c), which measures how many
instructions its task runs between two switches. The shift whose slice
is nearest TARGET_SLICE_INSNS instructions is then used for every run of
that session: a slow-tick kernel costs QEMU about as much per slice as the
bundled kernel. The probe is itself deterministic (a fixed shift and seed,
the same image), so the shift is a function of the image alone: same
image, scenario and seed, same transcript, on any host and under any load.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from .el0 import UOut
from .el0_runner import El0Config, run_el0
from .errors import HarnessError, InfrastructureError
from .qemu import MAX_SHIFT
from .runner import RunConfig, boot_marker

PROBE = "kt_tick"  #: the calibration program (kernel/user/kt/tick.c)
PROBE_SHIFT = 5  #: 32 ns an instruction: a 1 ms slice is 31 k instructions, a 1 s one 31 M
PROBE_SEED = 1
TARGET_SLICE_INSNS = 2 << 20  #: the bundled kernel's slice at shift 0: 2 ticks (param.h) of 1 ms
#: When the probe measures nothing (a kernel that does not switch, or whose
#: clone is broken): the course kernels' 200-270 ms tick.
FALLBACK_SHIFT = 8
_SLICES = re.compile(rb"slices insns=(\d+) turns=(\d+(?:,\d+)*)\n?")


@dataclass(frozen=True)
class Calibration:
    """The shift chosen for a kernel, and why."""

    shift: int
    slice_ns: int | None = None  #: the measured time slice in guest ns (None: not measured)
    why: str = ""  #: when not measured: what the probe saw

    def describe(self) -> str:
        """One line for the session header."""
        if self.slice_ns is None:
            return f"shift {self.shift} (not measured: {self.why}; the course's 200-270 ms tick assumed)"
        insns = self.slice_ns >> self.shift
        return (f"shift {self.shift} (the kernel's time slice is {self.slice_ns / 1e6:.3g} ms of guest "
                f"time = {insns / 1e6:.3g} M instructions a slice; {self.why or 'measured by ' + PROBE})")


def shift_for(slice_ns: int) -> int:
    """The shift whose slice is nearest TARGET_SLICE_INSNS instructions (0..MAX_SHIFT)."""
    return max(0, min(MAX_SHIFT, round(math.log2(max(slice_ns, 1) / TARGET_SLICE_INSNS))))


def announced(hz: int, priority: int | None) -> Calibration:
    """The shift for a kernel that speaks the marker protocol: its boot
    marker announces its tick rate (``hz``) and its first task's slice in
    ticks (``priority``; 1 when not given), so no probe program is needed."""
    ns = (priority or 1) * 1_000_000_000 // max(hz, 1)
    return Calibration(shift_for(ns), ns, why=f"announced by its boot marker: hz={hz} priority={priority}")


def slice_ns(lines: list[bytes], shift: int = PROBE_SHIFT) -> int | None:
    """The median measured slice in guest ns, from the probe's ``out`` data."""
    for data in lines:
        m = _SLICES.fullmatch(data)
        if m is not None:
            turns = [int(t) for t in m.group(2).split(b",")]
            return int(statistics.median(turns)) * int(m.group(1)) << shift
    return None


T = TypeVar("T")


def _boot_twice(boot: Callable[[], T]) -> T:
    """``boot()``, once more if the machine cut it short (an
    InfrastructureError: QEMU killed from outside); the second one's
    errors are the caller's."""
    try:
        return boot()
    except InfrastructureError:
        return boot()


def calibrate(cfg: El0Config, workdir: Path) -> Calibration:
    """Boot the kernel once with the probe and choose the shift (module
    docstring). A probe cut short by the machine is tried once more."""
    probe = replace(cfg, run=replace(cfg.run, icount_shift=PROBE_SHIFT, transcript_dir=None))
    try:
        t = _boot_twice(lambda: run_el0(probe, PROBE, PROBE_SEED, workdir))
    except InfrastructureError as e:
        return Calibration(FALLBACK_SHIFT, why=f"the probe was cut short twice: {e.summary}")
    except HarnessError as e:
        return Calibration(FALLBACK_SHIFT, why=str(e))
    measured = slice_ns([e.data for e in t.events if isinstance(e, UOut)])
    if measured is None:
        return Calibration(FALLBACK_SHIFT, why=f"no slice measured; the probe ended {t.ending}")
    return Calibration(shift_for(measured), measured)


def calibrate_markers(cfg: RunConfig) -> Calibration | None:
    """The shift of a kernel that speaks the marker protocol, from what its
    boot marker announces (``announced``), read by one boot to ``ready``
    (tried once more if cut short from outside). None when the kernel
    announces nothing: it keeps the default, and each scenario's run then
    says why it cannot be judged."""
    try:
        boot = _boot_twice(lambda: boot_marker(cfg))
    except HarnessError:  # silent, dead, no ready marker, cut short twice
        return None
    return None if boot is None else announced(boot.hz, boot.priority)
