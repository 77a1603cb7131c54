"""The parsed run a judge looks at (docs/harness-api.md, "Transcript")."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from .errors import ProtocolError
from .events import Boot, End, Event, Noise, Out, Start, Task, select
from .judge import Cited, RuleBroken, format_failure
from .protocol import Parser
from .text import decode

E = TypeVar("E", bound=Event)


class Judged:
    """What both transcripts (this module's and harness.el0's) judge with:
    ``check`` on top of the class's own ``fail``."""

    def fail(self, rule: str, *cited: Cited, detail: str = "") -> NoReturn:
        """Raise RuleBroken for ``rule``, quoting the cited lines."""
        raise NotImplementedError

    def check(self, cond: object, rule: str, *cited: Cited, detail: str = "") -> None:
        """``fail(rule, *cited, detail=detail)`` unless ``cond`` is true."""
        __tracebackhide__ = True
        if not cond:
            self.fail(rule, *cited, detail=detail)


class Transcript(Judged):
    """One complete run: boot, start, ..., end, with the raw console lines.

    Built from a Parser that has read the whole console; raises
    ProtocolError if the run is incomplete (no boot, no start, no end).
    """

    def __init__(self, lines: Sequence[str], parser: Parser, *,
                 exit_code: int | None = None, path: Path | None = None,
                 kernel: Path | None = None, icount_shift: int | None = None) -> None:
        self.lines: list[str] = list(lines)
        self.events: list[Event] = list(parser.events)
        self.noise: Sequence[Noise] = parser.noise  # a NoiseLines: compact, equal to a list of Noise
        self.exit_code = exit_code
        self.path = path
        self.kernel = kernel  #: the image that ran (named in the replay hint)
        #: QEMU's -icount shift for this run (2**N guest ns an instruction), None
        #: when unknown (a loaded file) or in real time: what guest time a judge can rely on
        self.icount_shift = icount_shift
        last = len(self.lines)
        if not self.events:
            raise ProtocolError(last, "no marker at all: this is not a test-mode transcript")
        starts = self.of(Start)
        if not starts:
            raise ProtocolError(last, "no start marker: this is not the transcript of a run")
        if not parser.ended:
            raise ProtocolError(last, "the transcript ends without an end marker (truncated run)")
        self.boot: Boot = self.events[0]  # type: ignore[assignment]  # Parser: boot first
        self.start: Start = starts[0]
        self.end: End = self.events[-1]  # type: ignore[assignment]  # parser.ended
        self.scenario: str = self.start.scenario
        self.seed: int = self.start.seed

    @classmethod
    def parse(cls, text: str, *, scenario: str | None = None, seed: int | None = None,
              path: Path | None = None) -> Transcript:
        """Parse a saved console (one line per ``\\n``, trailing ``\\r`` ignored).

        ``scenario``/``seed``: what was sent with ``run``, checked against
        ``start`` when given.
        """
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        lines = [ln.rstrip("\r") for ln in lines]
        parser = Parser(scenario, seed)
        for number, line in enumerate(lines, 1):
            parser.feed(number, line)
        return cls(lines, parser, path=path)

    @classmethod
    def load(cls, path: Path, *, scenario: str | None = None, seed: int | None = None) -> Transcript:
        """Parse a transcript file written by the runner (or by hand)."""
        return cls.parse(decode(Path(path).read_bytes()), scenario=scenario, seed=seed, path=Path(path))

    def __repr__(self) -> str:
        return (f"<Transcript {self.scenario} seed={self.seed} {len(self.events)} events "
                f"end={self.end.reason} path={self.path}>")

    # --- finding events -------------------------------------------------

    def of(self, cls: type[E], **match: Any) -> list[E]:
        """Events of class ``cls`` whose fields equal ``match``, in order.

        A key that is not a field of ``cls`` is a TypeError, so a typo cannot
        silently match nothing.
        """
        return select(self.events, cls, match)

    def _index(self, event: Event) -> int:
        if not (0 <= event.seq < len(self.events) and self.events[event.seq] == event):
            raise ValueError(f"{event!r} is not an event of this transcript")
        return event.seq

    def after(self, event: Event) -> list[Event]:
        """The events that come after ``event``, in order."""
        return self.events[self._index(event) + 1:]

    def before(self, event: Event) -> list[Event]:
        """The events that come before ``event``, in order."""
        return self.events[:self._index(event)]

    def pids(self) -> list[int]:
        """User pids that ever existed (``task ... state=new``), in creation order."""
        return [t.pid for t in self.of(Task, state="new")]

    # --- user output ----------------------------------------------------

    def outputs(self, pid: int) -> list[Out]:
        """The ``out`` markers of ``pid``: what it wrote, write by write."""
        return self.of(Out, pid=pid)

    def output(self, pid: int) -> bytes:
        """Everything ``pid`` wrote, concatenated (from its ``out`` markers)."""
        return b"".join(o.data for o in self.of(Out, pid=pid))

    def output_lines(self, pid: int) -> list[str]:
        """``output(pid)`` decoded (UTF-8, bad bytes as ``\\xHH``) and split on
        ``\\n``; a final newline does not add an empty line."""
        text = self.output(pid).decode("utf-8", "backslashreplace")
        if text.endswith("\n"):
            text = text[:-1]
        return text.split("\n") if text else []

    # --- judging --------------------------------------------------------

    def fail(self, rule: str, *cited: Cited, detail: str = "") -> NoReturn:
        """Raise RuleBroken for ``rule``, quoting the cited events (harness.judge)."""
        __tracebackhide__ = True
        replay = (None if self.kernel is None else
                  f"python -m harness run {self.scenario} --seed {self.seed} --kernel {self.kernel}")
        message = format_failure(self.lines, rule, cited, detail, self.path, self.scenario, self.seed,
                                 replay=replay)
        raise RuleBroken(message, rule, detail, cited, self.path)

