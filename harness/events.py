"""Typed events: one frozen dataclass per marker kind (docs/harness-api.md).

Every event has ``seq`` (the marker's sequence number), ``line`` (1-based
line number in the transcript) and ``raw`` (the marker line itself), then
the kind's fields in wire order. Each field's metadata says how it is
written on the wire; harness.protocol reads the grammar from here, so this
file is the one place a kind or a field is declared.
"""

from __future__ import annotations

import enum
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar, overload


class Fmt(enum.Enum):
    """How a field's value is written on the wire."""

    DEC = "decimal"  #: unsigned decimal -> int
    SDEC = "signed decimal"  #: optionally negative decimal -> int
    HEX = "hex"  #: 0x + lower-case hex digits -> int
    NAME = "name"  #: bare [a-z0-9_]+ token -> str
    TEXT = "quoted"  #: quoted string -> str (latin-1, one char per byte)
    BYTES = "quoted bytes"  #: quoted string -> bytes


def _wire(fmt: Fmt, *, key: str | None = None, choices: tuple[Any, ...] = (),
          optional: bool = False) -> Any:
    """Declare a field: its wire format, wire key (if not the Python name),
    allowed values (empty: any), and whether it may be absent."""
    return field(metadata={"fmt": fmt, "key": key, "choices": choices,
                           "optional": optional})


@dataclass(frozen=True)
class FieldSpec:
    """A field as harness.protocol sees it."""

    key: str  #: name on the wire, e.g. "from" (the attribute may be from_)
    fmt: Fmt
    choices: tuple[Any, ...]
    optional: bool


@dataclass(frozen=True)
class Event:
    """Base of all events. ``KIND`` is the marker kind on the wire."""

    KIND: ClassVar[str] = ""
    seq: int
    line: int
    raw: str

    @classmethod
    def field_specs(cls) -> tuple[FieldSpec, ...]:
        """The kind's own fields (not seq/line/raw), in wire order."""
        return tuple(
            FieldSpec(f.metadata["key"] or f.name, f.metadata["fmt"],
                      f.metadata["choices"], f.metadata["optional"])
            for f in fields(cls) if "fmt" in f.metadata)


@dataclass(frozen=True)
class Noise:
    """A console line that is not a marker (echo, QEMU's own messages...)."""

    line: int
    text: str


class NoiseLines(Sequence[Noise]):
    """The noise lines of a console in order, stored compactly: per line its
    number in an array and a reference to its text, not a Noise object and
    an int (some 80 bytes more). A kernel printing short lines forever sends
    a million of them before its flood verdict. Noise objects are made as
    they are read; a NoiseLines equals any sequence of the same Noise."""

    def __init__(self, items: Iterable[Noise] = ()) -> None:
        self._numbers = array("q")
        self._texts: list[str] = []
        for item in items:
            self.append(item)

    def append(self, noise: Noise) -> None:
        """Add ``noise`` (after every line before it)."""
        self._numbers.append(noise.line)
        self._texts.append(noise.text)

    def __len__(self) -> int:
        return len(self._texts)

    @overload
    def __getitem__(self, index: int) -> Noise: ...
    @overload
    def __getitem__(self, index: slice) -> list[Noise]: ...
    def __getitem__(self, index: int | slice) -> Noise | list[Noise]:
        if isinstance(index, slice):
            return [Noise(n, t) for n, t in zip(self._numbers[index], self._texts[index])]
        return Noise(self._numbers[index], self._texts[index])

    def __iter__(self) -> Iterator[Noise]:
        return (Noise(n, t) for n, t in zip(self._numbers, self._texts))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"NoiseLines({list(self)!r})"


@dataclass(frozen=True)
class Boot(Event):
    KIND = "boot"
    proto: int = _wire(Fmt.DEC, choices=(2,))  # harness.image.PROTO: version 2 tags every line
    console: str = _wire(Fmt.NAME, choices=("mini", "pl011"))
    el: int = _wire(Fmt.DEC)
    nr_tasks: int = _wire(Fmt.DEC)
    hz: int = _wire(Fmt.DEC)
    nr_syscalls: int = _wire(Fmt.DEC)
    page_size: int = _wire(Fmt.DEC)
    pool_base: int = _wire(Fmt.HEX)
    pool_pages: int = _wire(Fmt.DEC)
    kernel_base: int = _wire(Fmt.HEX)
    kernel_end: int = _wire(Fmt.HEX)
    user_base: int = _wire(Fmt.HEX)
    user_end: int = _wire(Fmt.HEX)
    write_max: int = _wire(Fmt.DEC)
    priority: int | None = _wire(Fmt.DEC, optional=True)


@dataclass(frozen=True)
class Ready(Event):
    KIND = "ready"


@dataclass(frozen=True)
class ScenarioName(Event):
    KIND = "scenario"
    name: str = _wire(Fmt.NAME)


@dataclass(frozen=True)
class ListEnd(Event):
    KIND = "list_end"
    count: int = _wire(Fmt.DEC)


@dataclass(frozen=True)
class CommandError(Event):
    """The kernel refused a command line. The wire field ``line`` is
    ``line_`` here, because ``line`` is already the transcript line number."""

    KIND = "error"
    what: str = _wire(Fmt.NAME, choices=("unknown_command", "unknown_scenario",
                                         "bad_seed", "line_too_long"))
    line_: str = _wire(Fmt.TEXT, key="line")


@dataclass(frozen=True)
class Start(Event):
    KIND = "start"
    scenario: str = _wire(Fmt.NAME)
    seed: int = _wire(Fmt.DEC)


@dataclass(frozen=True)
class Task(Event):
    KIND = "task"
    pid: int = _wire(Fmt.DEC)
    parent: int = _wire(Fmt.DEC)
    state: str = _wire(Fmt.NAME, choices=("new", "user", "zombie", "reaped"))
    reason: str = _wire(Fmt.NAME, choices=("scenario", "clone", "entry", "exit",
                                           "fault", "slot_reuse"))


@dataclass(frozen=True)
class Switch(Event):
    KIND = "switch"
    from_: int = _wire(Fmt.DEC, key="from")
    to: int = _wire(Fmt.DEC)


@dataclass(frozen=True)
class Tick(Event):
    KIND = "tick"
    pid: int = _wire(Fmt.DEC)
    n: int = _wire(Fmt.DEC)


@dataclass(frozen=True)
class Sys(Event):
    """A system call. ``ret`` is None for exit (nr 3), whose marker comes at
    entry; an exit with a ``ret`` is one that returned (the kernel broke
    "exit never returns", which judges check)."""

    KIND = "sys"
    pid: int = _wire(Fmt.DEC)
    nr: int = _wire(Fmt.DEC)
    x8: int = _wire(Fmt.HEX)
    a0: int = _wire(Fmt.HEX)
    a1: int = _wire(Fmt.HEX)
    a2: int = _wire(Fmt.HEX)
    sp: int | None = _wire(Fmt.HEX, optional=True)
    ret: int | None = _wire(Fmt.SDEC, optional=True)


@dataclass(frozen=True)
class Out(Event):
    KIND = "out"
    pid: int = _wire(Fmt.DEC)
    len: int = _wire(Fmt.DEC)
    data: bytes = _wire(Fmt.BYTES)


@dataclass(frozen=True)
class PAlloc(Event):
    KIND = "palloc"
    pid: int = _wire(Fmt.DEC)
    addr: int = _wire(Fmt.HEX)


@dataclass(frozen=True)
class PFree(Event):
    KIND = "pfree"
    pid: int = _wire(Fmt.DEC)
    addr: int = _wire(Fmt.HEX)


@dataclass(frozen=True)
class PMove(Event):
    KIND = "pmove"
    from_: int = _wire(Fmt.DEC, key="from")
    to: int = _wire(Fmt.DEC)
    addr: int = _wire(Fmt.HEX)


@dataclass(frozen=True)
class Fault(Event):
    KIND = "fault"
    pid: int = _wire(Fmt.DEC)
    ec: int = _wire(Fmt.HEX)
    esr: int = _wire(Fmt.HEX)
    elr: int = _wire(Fmt.HEX)
    far: int = _wire(Fmt.HEX)
    what: str = _wire(Fmt.TEXT)


@dataclass(frozen=True)
class Panic(Event):
    KIND = "panic"
    vector: str = _wire(Fmt.TEXT)
    esr: int = _wire(Fmt.HEX)
    elr: int = _wire(Fmt.HEX)
    far: int = _wire(Fmt.HEX)
    what: str = _wire(Fmt.TEXT)


@dataclass(frozen=True)
class AllExited(Event):
    KIND = "all_exited"


@dataclass(frozen=True)
class End(Event):
    KIND = "end"
    count: int = _wire(Fmt.DEC)
    reason: str = _wire(Fmt.NAME, choices=("all_exited", "panic"))


#: Every kind the protocol defines, by its wire name.
KINDS: dict[str, type[Event]] = {cls.KIND: cls for cls in (
    Boot, Ready, ScenarioName, ListEnd, CommandError, Start, Task, Switch,
    Tick, Sys, Out, PAlloc, PFree, PMove, Fault, Panic, AllExited, End)}


E = TypeVar("E")


def select(events: Iterable[object], cls: type[E], match: dict[str, Any]) -> list[E]:
    """The events of class ``cls`` (a dataclass) whose fields equal
    ``match``, in order. A key that is not a field of ``cls`` is a
    TypeError, so a typo cannot silently match nothing."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(match) - names)
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {', '.join(unknown)} "
                        f"(fields: {', '.join(sorted(names - {'raw'}))})")
    return [e for e in events if isinstance(e, cls)
            and all(getattr(e, k) == v for k, v in match.items())]


def live_pids(events: Iterable[object]) -> set[int]:
    """The user tasks alive after ``events``: created (task new) and not yet
    zombies (task zombie)."""
    live: set[int] = set()
    for e in events:
        if isinstance(e, Task) and e.state == "new":
            live.add(e.pid)
        elif isinstance(e, Task) and e.state == "zombie":
            live.discard(e.pid)
    return live
