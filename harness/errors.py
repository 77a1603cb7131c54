"""Verdicts: why a run gave no transcript fit for judging.

Each verdict is an exception whose ``str()`` is ONE line naming the verdict
and the cause (``KernelSilent: no ready marker within 5 s ...``). It carries
the console lines seen so far; ``report()`` adds the last ones and the path
of the saved transcript. A verdict is about the run, not about a rule of the
system-call contract: those are judged by tests (harness.judge).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .esr import describe
from .events import End, Panic
from .text import excerpt, printable

APT_QEMU = "apt-get install --no-install-recommends qemu-system-arm"


class HarnessError(Exception):
    """Base of all verdicts.

    ``lines``: the console lines seen before the verdict (the runner fills
    them in); ``path``: where they were saved, if they were.
    """

    TAIL_LINES = 20
    KEEP_LINES = 200  #: lines a settled verdict keeps (the whole console is in the transcript)
    KEEP_CHARS = 1000  #: characters kept of each of those lines

    def __init__(self, summary: str, lines: Sequence[str] = (), path: Path | None = None,
                 source: str = "console") -> None:
        super().__init__(summary)
        self.summary = summary
        self.lines = list(lines)  #: the console's lines (or make's, see ``source``)
        self.total_lines = len(self.lines)  #: how many lines there were before settle()
        self.path = path
        self.source = source  #: what printed ``lines``

    def __str__(self) -> str:
        return f"{type(self).__name__}: {self.summary}"

    def settle(self) -> HarnessError:
        """Keep only a bounded tail of the console and drop the traceback
        (whose frames hold the parser and every event): a verdict cached for
        a session must not hold a flood's worth of objects. Returns self."""
        self.total_lines = len(self.lines)
        self.lines = [line[:self.KEEP_CHARS] for line in self.lines[-self.KEEP_LINES:]]
        self.__traceback__ = self.__context__ = self.__cause__ = None
        return self

    def tail(self) -> list[str]:
        """The last TAIL_LINES of ``lines``, numbered as in the whole console."""
        total = max(self.total_lines, len(self.lines))
        return excerpt(self.lines, total - self.TAIL_LINES + 1, total,
                       number_of_first=total - len(self.lines) + 1)

    def report(self) -> str:
        """The one-line verdict, then the console tail and the transcript path."""
        parts = [str(self)]
        if self.lines:
            parts.append(f"--- last {min(len(self.lines), self.TAIL_LINES)} of "
                         f"{max(self.total_lines, len(self.lines))} {self.source} lines ---")
            parts.extend(self.tail())
        else:
            parts.append(f"--- the {self.source} printed nothing ---")
        if self.path is not None:
            parts.append(f"full transcript: {self.path}")
        return "\n".join(parts)


class QemuNotFound(HarnessError):
    """The QEMU executable is not there."""

    def __init__(self, qemu: str) -> None:
        super().__init__(f"cannot run {qemu!r}: not found or not executable; "
                         f"install it with `{APT_QEMU}` or pass --qemu PATH")


class ImageError(HarnessError):
    """The kernel image is missing or is not an AArch64 kernel image."""


class KernelSilent(HarnessError):
    """No ready marker within the boot timeout."""


class KernelDied(HarnessError):
    """QEMU exited before the end of the run."""


class RunTimeout(HarnessError):
    """The run did not end (or QEMU did not exit) within its timeout."""


class KernelStalled(HarnessError):
    """The guest kept computing but printed nothing for the stall window."""


class OutputFlood(HarnessError):
    """The console printed more than the harness keeps."""


class CommandRejected(HarnessError):
    """The kernel answered the harness's command with an ``error`` marker."""


class ProtocolError(HarnessError):
    """The console broke docs/protocol.md; names the line."""

    def __init__(self, line: int, problem: str, raw: str | None = None) -> None:
        shown = "" if raw is None else f": {printable(raw, 160)!r}"
        super().__init__(f"line {line}: {problem}{shown}")
        self.line = line


class KernelPanic(HarnessError):
    """The run ended with ``end reason=panic``; decodes the panic marker."""

    def __init__(self, panic: Panic | None, end: End) -> None:
        if panic is None:
            summary = f"the run ended with reason=panic (line {end.line}) but no panic marker came before it"
        else:
            summary = (f"kernel panic (line {panic.line}) in vector {printable(panic.vector)!r}: "
                       f"{printable(panic.what)!r}; {describe(panic.esr)}, ESR 0x{panic.esr:x}, "
                       f"ELR 0x{panic.elr:x}, FAR 0x{panic.far:x}")
        super().__init__(summary)
        self.panic = panic


class TickStorm(HarnessError):
    """Tick markers in a row and nothing else: the timer ticks, no task makes
    progress (harness.floods; counted, not timed)."""


class ConsoleNoise(HarnessError):
    """Console lines that are not markers, in a row, past a bound
    (harness.floods; counted, not timed)."""


class JailUnavailable(HarnessError):
    """A kernel that is not this checkout's own build would run without a
    jail (harness.jail): refused unless --unsafe-no-sandbox; names why no
    jail can be made."""


class InfrastructureError(HarnessError):
    """The run was cut short by something outside the kernel and the harness:
    QEMU died of a signal the harness did not send (killed from outside, the
    machine out of memory). The grader retries such a run once: a fault that
    comes back at the same scenario and console line is the kernel's own
    doing (it can fake one) and is judged as KernelDied."""


def killed_from_outside(status: object, when: str, lines: Sequence[str]) -> InfrastructureError | None:
    """The InfrastructureError for a QEMU that ``status`` (a qemu.ExitStatus
    or None) says died of a signal, which the harness never sends while it
    reads the console; None for an exit code or no status. Names the console
    line reached (``lines``: the console so far), so a retry can tell a fault
    the kernel repeats (its own doing) from one from outside."""
    if not isinstance(getattr(status, "signal", None), int):
        return None
    at = (f"after console line {len(lines)}: {printable(lines[-1], 200)!r}" if lines
          else "before any console line")
    return InfrastructureError(f"QEMU was {status}, a signal the harness did not send, {when}; {at}")
