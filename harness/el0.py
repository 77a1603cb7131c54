"""EL0 markers: what the conformance programs report themselves when the
kernel under test emits no markers (docs/protocol.md, "EL0 markers").

A student's lesson-5 kernel knows nothing of ``@KT`` markers; the suite's
programs, linked into it as ``build/kt-user.o``, write one line per fact
through the lesson's ``write`` syscall::

    @KU <tid> <seq> <tag> <kind>[ <key>=<value>]...

``El0Parser`` turns a console into typed events, keeping everything else
(the kernel's own printing) as noise and every defect of the stream (a
repeated or skipped per-task sequence number, a torn line) as an
``Anomaly`` for the judges: from EL0 a broken kernel can garble the stream,
and that is evidence, not a harness error. A well-formed marker whose tag
is not the one of its (tid, seq) in this run's seed is a ProtocolError: no
kernel garbles a line into another well-formed one with a 16-bit tag that
fits by chance; it is a line of another run (a replay or a splice). ``El0Transcript`` is the run a
judge looks at; ``patch_image`` writes the scenario and seed into a copy
of an image.
"""

from __future__ import annotations

import dataclasses
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NoReturn, TypeVar

from .errors import ImageError, ProtocolError
from .events import Noise, NoiseLines, select
from .judge import Cited, RuleBroken, format_failure
from .prng import LINETAG_DIGITS, MASK64, line_tag
from .quoting import QUOTED_BODY, unquote
from .transcript import Judged

PREFIX = "@KU "
PROTO = 2  #: EL0 marker grammar version (kernel/user/kt/el0.c's KT_PROTO)
#: The parameter block in kt-user.o (kernel/user/kt/el0.c): the tag, the
#: scenario name NUL-padded to 32 bytes at +16, the seed (u64 LE) at +48.
PARAM_TAG = b"KT-EL0-PARAMS-1\0"
PARAM_NAME_AT, PARAM_NAME_SIZE, PARAM_SEED_AT = 16, 32, 48
FIRST_TID = 1
_NEEDS_BOOT_MARKER = ("not judged from EL0: this scenario's bad pointers, stacks and table limits "
                      "come from the kernel's boot marker (memory map, NR_TASKS), which a kernel "
                      "without markers does not give (docs/judging.md)")
#: Scenarios that cannot be judged from EL0 facts, and why.
MARKER_ONLY: dict[str, str] = {
    "clone_errors": _NEEDS_BOOT_MARKER,
    "write_checks": _NEEDS_BOOT_MARKER,
    "malloc_race": "not judged from EL0: its race is judged from the kernel's page markers",
    "demo": "not judged from EL0: the demo is the bundled kernel's own program",
}

_LINE = re.compile(r"@KU (0|[1-9][0-9]{0,5}) (0|[1-9][0-9]{0,9}) ([0-9a-f]{" + str(LINETAG_DIGITS)
                   + r"}) ([a-z_]+)((?: [a-z_]+=(?:\"" + QUOTED_BODY + r"\"|[^ \"]+))*)")
_FIELD = re.compile(r' ([a-z_]+)=("' + QUOTED_BODY + r'"|[^ "]+)')
_MARKER_ANYWHERE = re.compile(r"@KU [0-9]")


@dataclass(frozen=True)
class UEvent:
    """One EL0 marker: ``tid`` and ``useq`` as the program wrote them,
    ``line`` its transcript line, ``raw`` the line itself."""

    KIND: ClassVar[str] = ""
    line: int
    raw: str
    tid: int
    useq: int

    @property
    def pid(self) -> int:
        """The task as the program knows it (kt helpers read ``pid``)."""
        return self.tid


@dataclass(frozen=True)
class UStart(UEvent):
    """The first task began: the scenario and seed it read from the image."""

    KIND = "start"
    scenario: str = ""
    seed: int = 0


@dataclass(frozen=True)
class UClone(UEvent):
    """Before a clone: the child will be task ``child`` on ``stack``."""

    KIND = "clone"
    child: int = 0
    stack: int = 0


@dataclass(frozen=True)
class UCloned(UEvent):
    """In the parent, after the clone: what clone returned for ``child``."""

    KIND = "cloned"
    child: int = 0
    ret: int = 0


@dataclass(frozen=True)
class UDying(UEvent):
    """The task's next instruction must get it killed (a fault at EL0)."""

    KIND = "dying"


@dataclass(frozen=True)
class UOut(UEvent):
    """A line of facts the task printed (u_printf), with its newline."""

    KIND = "out"
    data: bytes = b""


@dataclass(frozen=True)
class UExit(UEvent):
    """The task is about to make the exit syscall."""

    KIND = "exit"


@dataclass(frozen=True)
class UAfterExit(UEvent):
    """exit's svc came back: code ran after exit."""

    KIND = "after_exit"


@dataclass(frozen=True)
class UError(UEvent):
    """The program could not run (e.g. no such scenario in this object)."""

    KIND = "error"
    what: str = ""


KINDS: dict[str, type[UEvent]] = {c.KIND: c for c in (UStart, UClone, UCloned, UOut, UExit, UAfterExit,
                                                      UDying, UError)}

_BASE = {f.name for f in dataclasses.fields(UEvent)}
#: Each kind's wire fields and their Python types, read off its dataclass.
_WIRE: dict[str, dict[str, type]] = {
    kind: {f.name: {"int": int, "str": str, "bytes": bytes}[str(f.type)]
           for f in dataclasses.fields(cls) if f.name not in _BASE}
    for kind, cls in KINDS.items()}
_WIRE["start"]["proto"] = int  # checked against PROTO, not kept in the event


@dataclass(frozen=True)
class Anomaly:
    """A defect of the EL0 stream at ``line``, in words."""

    line: int
    what: str


def _fields(kind: str, text: str) -> dict[str, Any] | None:
    """The fields of one marker, converted; None if they do not fit ``kind``."""
    out: dict[str, Any] = {}
    for key, value in _FIELD.findall(text):
        if value.startswith('"'):
            out[key] = unquote(value[1:-1])
        elif re.fullmatch(r"0x[0-9a-f]{1,16}", value):
            out[key] = int(value, 16)
        elif re.fullmatch(r"-?[0-9]{1,20}", value) and -(1 << 63) <= int(value) <= MASK64:
            out[key] = int(value)
        elif re.fullmatch(r"[a-z0-9_]{1,31}", value):
            out[key] = value
        else:
            return None
    want = _WIRE[kind]
    if set(out) != set(want) or any(not isinstance(out[k], t) for k, t in want.items()):
        return None
    if kind == "start" and out.pop("proto") != PROTO:
        return None
    return out


class El0Parser:
    """Reads a console line by line into EL0 events, noise and anomalies;
    ``seed`` is the one patched into the image, which keys the line tags."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.events: list[UEvent] = []
        self.noise = NoiseLines()
        self.anomalies: list[Anomaly] = []
        self._next_seq: dict[int, int] = {}

    def feed(self, line: int, text: str) -> UEvent | Noise:
        """Take console line number ``line``; return what it is; ProtocolError
        for a marker of another run (its tag)."""
        m = _LINE.fullmatch(text) if text.startswith(PREFIX) else None
        kind = m.group(4) if m else ""
        values = _fields(kind, m.group(5)) if m and kind in KINDS else None
        if m is None or values is None:
            if _MARKER_ANYWHERE.search(text):
                self.anomalies.append(Anomaly(line, "a line holding a torn or malformed EL0 marker "
                                                    "(output of two tasks mixed, or cut)"))
            noise = Noise(line, text)
            self.noise.append(noise)
            return noise
        tid, useq = int(m.group(1)), int(m.group(2))
        want = line_tag(self.seed, tid, useq)
        if m.group(3) != want:
            raise ProtocolError(line, f"line tag {m.group(3)} is wrong: task {tid}'s marker {useq} of the run "
                                      f"with seed {self.seed} carries {want}; this line was not written by "
                                      f"this run's program as the suite built it: a replayed, spliced or "
                                      f"rewritten line, or a task whose registers or memory the kernel "
                                      f"corrupted (a clone child that ran on its parent's state, a syscall "
                                      f"result never stored)", text)
        expected = self._next_seq.get(tid, 0)
        if useq != expected:
            self.anomalies.append(Anomaly(line, f"task {tid} marker {useq} where {expected} was due "
                                                f"({'a repeat: two tasks with one id?' if useq < expected else 'markers lost'})"))
        self._next_seq[tid] = max(expected, useq + 1)
        event = KINDS[kind](line, text, tid, useq, **values)
        self.events.append(event)
        return event


E = TypeVar("E", bound=UEvent)


@dataclass
class El0Transcript(Judged):
    """One run judged from EL0 facts.

    ``ending`` says how the run ended: ``all_exited`` (every task the
    program started reported its exit, and a grace window passed),
    ``stalled`` (no EL0 marker for the stall window), ``timeout``,
    ``qemu_exited``. ``rules`` is the rule set judged: ``project`` or
    ``lesson`` (docs/judging.md).
    """

    lines: list[str]
    events: list[UEvent]
    noise: Sequence[Noise]  #: a NoiseLines when parsed
    anomalies: list[Anomaly]
    scenario: str
    seed: int
    ending: str
    ending_detail: str = ""
    rules: str = "project"
    path: Path | None = None
    replay: str = ""
    boot: str = ""  #: how the kernel was started, e.g. "EL3 from 0x0" (harness.boot)

    @classmethod
    def parse(cls, lines: Sequence[str], scenario: str, seed: int, **kw: Any) -> El0Transcript:
        """Parse console lines (a saved run, or a test's own)."""
        parser = El0Parser(seed)
        for number, text in enumerate(lines, 1):
            parser.feed(number, text)
        return cls(list(lines), parser.events, parser.noise, parser.anomalies, scenario, seed, **kw)

    @property
    def started(self) -> UStart | None:
        """The start marker, if the program got to run."""
        found = self.of(UStart)
        return found[0] if found else None

    def of(self, cls: type[E], **match: Any) -> list[E]:
        """Events of class ``cls`` whose fields equal ``match``, in order; a
        key that is not a field of ``cls`` is a TypeError (a typo must not
        silently match nothing)."""
        return select(self.events, cls, match)

    def outputs(self, pid: int) -> list[UOut]:
        """The fact lines task ``pid`` printed (kt.facts_lines reads these)."""
        return self.of(UOut, tid=pid)

    def output(self, pid: int) -> bytes:
        """Everything task ``pid`` printed, concatenated."""
        return b"".join(o.data for o in self.outputs(pid))

    def tids(self) -> list[int]:
        """The tasks the program started: the first, then each announced child."""
        return [FIRST_TID] + [c.child for c in self.of(UClone)]

    def children_of(self, tid: int) -> list[UClone]:
        """The clone announcements task ``tid`` made, in order."""
        return self.of(UClone, tid=tid)

    def exited(self, tid: int) -> UExit | None:
        """Task ``tid``'s exit marker, if it reported one."""
        found = self.of(UExit, tid=tid)
        return found[0] if found else None

    def last_of(self, tid: int) -> UEvent | None:
        """The last marker task ``tid`` wrote."""
        mine = [e for e in self.events if e.tid == tid]
        return mine[-1] if mine else None

    def fail(self, rule: str, *cited: Cited, detail: str = "") -> NoReturn:
        """Raise RuleBroken for ``rule``, quoting the cited lines."""
        __tracebackhide__ = True
        if self.ending != "all_exited":
            detail = (detail + "\n" if detail else "") + f"the run ended: {self.ending_detail or self.ending}"
        message = format_failure(self.lines, rule, cited, detail, self.path, self.scenario, self.seed,
                                 replay=self.replay or None, rules=self.rules, boot=self.boot or None)
        raise RuleBroken(message, rule, detail, cited, self.path)


def patch_image(image: Path, out: Path, scenario: str, seed: int) -> Path:
    """Copy ``image`` to ``out`` with ``scenario`` and ``seed`` written into
    its parameter block; ImageError unless the tag occurs exactly once."""
    data = bytearray(image.read_bytes())
    count = data.count(PARAM_TAG)
    if count != 1:
        why = ("it was not linked with build/kt-user.o (use SUBMISSION= with a source tree, "
               "or link kt-user.o in place of user_process)" if count == 0
               else f"the tag occurs {count} times: two copies of kt-user.o?")
        raise ImageError(f"{image}: no single EL0 parameter block ({PARAM_TAG[:-1].decode()}): {why}")
    name = scenario.encode("ascii")
    if len(name) >= PARAM_NAME_SIZE:
        raise ValueError(f"scenario name {scenario!r} is longer than {PARAM_NAME_SIZE - 1} bytes")
    at = data.index(PARAM_TAG)
    if at + PARAM_SEED_AT + 8 > len(data):
        raise ImageError(f"{image}: the EL0 parameter block is cut off by the end of the file")
    data[at + PARAM_NAME_AT:at + PARAM_NAME_AT + PARAM_NAME_SIZE] = name.ljust(PARAM_NAME_SIZE, b"\0")
    data[at + PARAM_SEED_AT:at + PARAM_SEED_AT + 8] = struct.pack("<Q", seed & MASK64)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(bytes(data))
    return out
