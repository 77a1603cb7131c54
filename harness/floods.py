"""Floods named by what the guest did, not by the clock: a tick storm (the
timer ticks, no task makes progress) and console noise (lines that are not
markers). Both runners feed every console line's parse here; the watch
raises the verdict at the line that crosses the bound, so the same image
and seed (-icount: the same bytes) get the same verdict on any host.

Bounds, against every real transcript (``make bench`` and the self-tests
show what a flood costs; the figures below are what correct and broken
kernels print):

- STORM_TICKS tick markers in a row with no other marker (a syscall, a
  switch to another task, output, a page move, a task's exit or fault...).
  The bundled kernel's scenarios take at most 4 ticks between two other
  markers; the deliberately broken kernels of tests/variants at most 300
  (fairness under ``scheduler_never_preempts``: one task spins for its
  whole run). A run of idle ticks (pid 0) only is the idle stall
  (KernelStalled, rule first), whichever bound it meets first.
- NOISE_LINES console lines, or NOISE_BYTES bytes of them, with no marker
  between: a marker kernel's noise is the echo of the command (1 line); a
  lesson kernel judged from EL0 prints at most 15 lines (667 bytes) of its
  own between two EL0 markers (fixtures/lesson5 and tests/submissions).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ConsoleNoise, KernelStalled, TickStorm
from .events import Event, Noise, Switch, Tick
from .stall import what_stopped
from .text import encode, printable

STORM_TICKS = 5000  #: tick markers in a row with no other marker: TickStorm
NOISE_LINES = 1000  #: console lines in a row that are not markers: ConsoleNoise
NOISE_BYTES = 64 << 10  #: bytes of such lines (line ends included): ConsoleNoise
SAMPLE_CHARS = 80  #: characters of a sample line a verdict shows (escaped)


@dataclass
class _Run:
    """One unbroken run of ticks or of noise lines."""

    count: int = 0
    first: int = 0  #: line number of the run's first line
    sample: str = ""  #: the run's first line
    size: int = 0  #: bytes (noise only)
    pids: set[int] = field(default_factory=set)  #: ticked pids (ticks only)

    def add(self, line: int, text: str) -> None:
        if self.count == 0:
            self.first, self.sample = line, text
        self.count += 1


class FloodWatch:
    """Counts what the console said since the last sign of progress; raises
    TickStorm, KernelStalled (idle ticks only) or ConsoleNoise.

    ``marker``: what a marker is called in messages (``marker`` or ``EL0
    marker``); ``events``: the parser's event list (for the idle stall's
    rule-first message; None for the EL0 route, which has no ticks).
    None for a bound turns that check off.
    """

    def __init__(self, storm_ticks: int | None = STORM_TICKS, noise_lines: int | None = NOISE_LINES,
                 noise_bytes: int | None = NOISE_BYTES, marker: str = "marker",
                 events: list[Event] | None = None) -> None:
        self.storm_ticks = storm_ticks
        self.noise_lines = noise_lines
        self.noise_bytes = noise_bytes
        self.marker = marker
        self.events = events
        self.ticks = _Run()
        self.noise = _Run()
        self.last_marker = 0  #: line number of the last marker that was not noise (0: none yet)

    def feed(self, item: object) -> None:
        """Take one parsed console line: a Noise, an event of either route."""
        if isinstance(item, Noise):
            self._noise(item)
            return
        self.noise = _Run()
        self.last_marker = getattr(item, "line", 0)
        if isinstance(item, Tick):
            self._tick(item)
        elif not (isinstance(item, Switch) and item.from_ == item.to):  # a switch to itself is no progress
            self.ticks = _Run()

    def _tick(self, tick: Tick) -> None:
        run = self.ticks
        run.add(tick.line, tick.raw)
        run.pids.add(tick.pid)
        if self.storm_ticks is None or run.count < self.storm_ticks:
            return
        lines = f"lines {run.first}..{tick.line}"
        if run.pids == {0} and self.events is not None:
            raise KernelStalled(f"{what_stopped(self.events)}; then {run.count} idle ticks in a row "
                                f"({lines}) and no other marker")
        raise TickStorm(f"{run.count} tick markers in a row ({lines}, pids {sorted(run.pids)}) and no "
                        f"other marker: no syscall, switch, output or exit; the timer ticks but no "
                        f"task makes progress; the last: {printable(tick.raw, SAMPLE_CHARS)!r}")

    def _noise(self, noise: Noise) -> None:
        run = self.noise
        run.add(noise.line, noise.text)
        run.size += len(encode(noise.text)) + 1
        lines_over = self.noise_lines is not None and run.count >= self.noise_lines
        bytes_over = self.noise_bytes is not None and run.size >= self.noise_bytes
        if not (lines_over or bytes_over):
            return
        after = (f"after the {self.marker} at line {self.last_marker}" if self.last_marker
                 else f"and no {self.marker} since QEMU started")
        bound = (f"the bound is {self.noise_lines} lines" if lines_over
                 else f"the bound is {self.noise_bytes} bytes")
        raise ConsoleNoise(f"{run.count} console lines ({run.size} bytes) that are not {self.marker}s, "
                           f"lines {run.first}..{noise.line}, {after} ({bound}): the kernel prints "
                           f"lines the protocol does not know (a print loop?); the first: "
                           f"{printable(run.sample, SAMPLE_CHARS)!r}")
