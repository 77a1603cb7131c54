"""Markers to typed events, and every protocol error (docs/protocol.md).

``parse_marker`` turns one ``@KT`` line into an event or raises
ProtocolError; ``Parser`` takes a console line by line and adds the checks
that need history: sequence numbers, each line's tag (the line belongs to
this run, at this seq), boot first, nothing after end, the start matching
what the harness sent, list counts. The runner feeds lines
as they arrive; harness.transcript feeds saved files through the same code.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from .abi import SYS_EXIT
from .errors import ProtocolError
from .events import (KINDS, Boot, End, Event, FieldSpec, Fmt, ListEnd, Noise, NoiseLines,
                     Out, Ready, ScenarioName, Start, Sys)
from .prng import KERNEL_STREAM, LINETAG_DIGITS, MASK64, line_tag
from .quoting import QUOTED_BODY, unquote

PREFIX = "@KT "
NOISE_KEEP = 4096  #: characters of a noise line kept as an event (a 1 MiB line stays in the file)
TAG = f"[0-9a-f]{{{LINETAG_DIGITS}}}"  #: a line tag on the wire (docs/protocol.md, "Line tags")
_HEAD = re.compile(re.escape(PREFIX) + r"([0-9]+) (" + TAG + r") ([a-z_]+)")
_UNTAGGED = re.compile(re.escape(PREFIX) + r"[0-9]+ [a-z_]+")
MAX_DIGITS = 20  #: a 64-bit number has at most 20 decimal digits; longer is malformed
_FIELD = re.compile(r' ([a-z_][a-z0-9_]*)=("' + QUOTED_BODY + r'"|[\x21\x23-\x5b\x5d-\x7e]+)')
_VALUE = {
    Fmt.DEC: re.compile(r"[0-9]+"),
    Fmt.SDEC: re.compile(r"-?[0-9]+"),
    Fmt.HEX: re.compile(r"0x[0-9a-f]+"),
    Fmt.NAME: re.compile(r"[a-z0-9_]+"),
}
_SPECS: dict[str, tuple[FieldSpec, ...]] = {k: c.field_specs() for k, c in KINDS.items()}


def is_marker(text: str) -> bool:
    """True if the line claims to be a marker (starts with ``@KT ``)."""
    return text.startswith(PREFIX)


def _value(spec: FieldSpec, token: str, line: int, raw: str) -> Any:
    """Convert one wire token for ``spec``; raise ProtocolError if it does not fit."""
    quoted = token.startswith('"')
    if spec.fmt in (Fmt.TEXT, Fmt.BYTES):
        if not quoted:
            raise ProtocolError(line, f"field {spec.key!r} must be a quoted string, got {token!r}", raw)
        data = unquote(token[1:-1])  # the grammar already matched QUOTED_BODY
        value: Any = data if spec.fmt is Fmt.BYTES else data.decode("latin-1")
    elif quoted or _VALUE[spec.fmt].fullmatch(token) is None:
        shown = token if len(token) <= 40 else token[:40] + "..."
        raise ProtocolError(line, f"field {spec.key!r}={shown} is not a {spec.fmt.value} value", raw)
    elif spec.fmt is Fmt.NAME:
        value = token
    elif len(token) > MAX_DIGITS + 2:  # before int(): Python refuses > 4300 digits with ValueError
        raise ProtocolError(line, f"field {spec.key!r} has {len(token)} characters: it does not "
                                  f"fit in 64 bits", raw[:200])
    else:
        value = int(token, 16 if spec.fmt is Fmt.HEX else 10)
        low, high = (-(1 << 63), (1 << 63) - 1) if spec.fmt is Fmt.SDEC else (0, MASK64)
        if not low <= value <= high:
            raise ProtocolError(line, f"field {spec.key!r}={token} does not fit in 64 bits", raw)
    if spec.choices and value not in spec.choices:
        allowed = ", ".join(str(c) for c in spec.choices)
        raise ProtocolError(line, f"field {spec.key!r}={token} is not one of: {allowed}", raw)
    return value


def _split_fields(text: str, start: int, line: int) -> list[tuple[str, str]]:
    """The ``key=value`` pairs after the kind, or ProtocolError (malformed)."""
    pairs: list[tuple[str, str]] = []
    pos = start
    while pos < len(text):
        m = _FIELD.match(text, pos)
        if m is None:
            raise ProtocolError(line, f"malformed marker: no ' key=value' field at column {pos + 1}", text)
        pairs.append((m.group(1), m.group(2)))
        pos = m.end()
    return pairs


def _check_keys(kind: str, specs: tuple[FieldSpec, ...], keys: list[str], line: int, raw: str) -> None:
    """Every required field present, no unknown or repeated field, wire order."""
    known = {s.key for s in specs}
    for key in keys:
        if keys.count(key) > 1:
            raise ProtocolError(line, f"{kind} marker: field {key!r} appears twice", raw)
        if key not in known:
            raise ProtocolError(line, f"{kind} marker: unexpected field {key!r} "
                                      f"(it has: {' '.join(s.key for s in specs) or 'no fields'})", raw)
    for spec in specs:
        if spec.key not in keys and not spec.optional:
            raise ProtocolError(line, f"{kind} marker: missing field {spec.key!r}", raw)
    expected = [s.key for s in specs if s.key in keys]
    if keys != expected:
        raise ProtocolError(line, f"{kind} marker: fields out of order: {' '.join(keys)} "
                                  f"(expected {' '.join(expected)})", raw)


def _parse_slow(line: int, text: str) -> Event:
    """Parse a marker field by field, raising ProtocolError at the first fault."""
    if not text.isascii() or not text.isprintable():
        raise ProtocolError(line, "malformed marker: bytes outside printable ASCII", text)
    head = _HEAD.match(text)
    if head is None:
        untagged = _UNTAGGED.match(text) is not None
        raise ProtocolError(line, "malformed marker: no line tag after the seq (a kernel of protocol 1?)"
                            if untagged else "malformed marker: expected '@KT <seq> <tag> <kind>'", text)
    if len(head.group(1)) > MAX_DIGITS:
        raise ProtocolError(line, f"malformed marker: seq has {len(head.group(1))} digits "
                                  f"(at most {MAX_DIGITS})", text)
    seq, kind = int(head.group(1)), head.group(3)
    if kind not in KINDS:
        raise ProtocolError(line, f"unknown marker kind {kind!r}", text)
    specs = _SPECS[kind]
    pairs = _split_fields(text, head.end(), line)
    _check_keys(kind, specs, [k for k, _ in pairs], line, text)
    tokens = dict(pairs)
    values = [_value(s, tokens[s.key], line, text) if s.key in tokens else None for s in specs]
    return KINDS[kind](seq, line, text, *values)


# The fast path: one full-line regex per kind, built from the same field
# declarations. Digit counts keep every number it accepts inside 64 bits and
# alternations keep names to their choices, so it accepts a subset of what
# _parse_slow accepts; anything else (a 20-digit seed, a defect) goes to
# _parse_slow, which either accepts it too or says precisely what is wrong.
_FAST_PATTERN = {Fmt.DEC: "([0-9]{1,19})", Fmt.SDEC: "(-?[0-9]{1,18})",
                 Fmt.HEX: "0x([0-9a-f]{1,16})", Fmt.NAME: "([a-z0-9_]+)",
                 Fmt.TEXT: f'"({QUOTED_BODY})"', Fmt.BYTES: f'"({QUOTED_BODY})"'}
_FAST_CONVERT: dict[Fmt, Callable[[str], Any]] = {
    Fmt.DEC: int, Fmt.SDEC: int, Fmt.HEX: functools.partial(int, base=16), Fmt.NAME: str,
    Fmt.TEXT: lambda v: unquote(v).decode("latin-1"), Fmt.BYTES: unquote}


def _fast_field(spec: FieldSpec) -> str:
    value = (f"({'|'.join(re.escape(str(c)) for c in spec.choices)})" if spec.choices
             else _FAST_PATTERN[spec.fmt])
    return f"(?: {spec.key}={value})?" if spec.optional else f" {spec.key}={value}"


_FAST = {kind: (re.compile(re.escape(PREFIX) + f"([0-9]{{1,19}}) {TAG} {kind}" + "".join(map(_fast_field, specs))),
                [_FAST_CONVERT[s.fmt] for s in specs])
         for kind, specs in _SPECS.items()}


def _parse_fast(line: int, text: str) -> Event | None:
    """The event if ``text`` is a well-formed marker in the common form, else None."""
    parts = text.split(" ", 4)
    fast = _FAST.get(parts[3]) if len(parts) > 3 else None
    m = fast[0].fullmatch(text) if fast is not None else None
    if m is None:
        return None
    groups = m.groups()
    values = [None if raw is None else convert(raw) for convert, raw in zip(fast[1], groups[1:])]
    return KINDS[parts[3]](int(groups[0]), line, text, *values)


def parse_marker(line: int, text: str) -> Event:
    """Parse one marker line (which starts with ``@KT ``) into its event.

    Checks the grammar (the line tag's form, not its value: that needs the
    run's seed, see Parser), the kind, each field's presence, order and type, and
    what a marker says about itself: ``sys`` has ``ret`` unless it is exit,
    ``out``'s ``len`` is the length of its data, ``end``'s count is its seq.
    An exit ``sys`` *with* ``ret`` is accepted: it is the kernel's true report
    that exit returned, a broken rule for the judges, not a broken marker.
    """
    event = _parse_fast(line, text) or _parse_slow(line, text)
    if isinstance(event, Sys) and event.ret is None and event.nr != SYS_EXIT:
        raise ProtocolError(line, "sys marker: missing field 'ret' (only exit's has none)", text)
    if isinstance(event, Out) and event.len != len(event.data):
        raise ProtocolError(line, f"out marker: len={event.len} but data holds {len(event.data)} bytes", text)
    if isinstance(event, End) and event.count != event.seq:
        raise ProtocolError(line, f"end marker: count={event.count} but {event.seq} markers came before it", text)
    return event


class Parser:
    """Reads a console line by line; keeps the events and the noise.

    ``scenario``/``seed``: what the harness sent with ``run``; a ``start``
    marker that names anything else is a protocol error. None: not checked
    (a saved transcript whose command is unknown, or a ``list``).

    Every marker's tag must be ``line_tag(key, KERNEL_STREAM, seq)``, where
    the key is 0 before ``start`` and the seed ``start`` names from it on
    (which is the seed the harness sent, when it is given): a line copied
    from another run, or moved to another seq, is a protocol error.
    """

    def __init__(self, scenario: str | None = None, seed: int | None = None) -> None:
        self.scenario = scenario
        self.seed = seed
        self.events: list[Event] = []
        self.noise = NoiseLines()
        self._listed = 0  # scenario markers since the last ready
        self._tag_key: int | None = None  # the seed tags are keyed by; None: before start (key 0)

    @property
    def ended(self) -> bool:
        """True once the end marker has been read."""
        return bool(self.events) and isinstance(self.events[-1], End)

    def feed(self, line: int, text: str) -> Event | Noise:
        """Take console line number ``line``; return what it is, or raise ProtocolError."""
        if not is_marker(text):
            noise = Noise(line, text[:NOISE_KEEP])  # the transcript file keeps it whole
            self.noise.append(noise)
            return noise
        event = parse_marker(line, text)
        self._check_order(event)
        self.events.append(event)
        return event

    def _check_order(self, event: Event) -> None:
        line, raw = event.line, event.raw
        if self.ended:
            raise ProtocolError(line, "marker after the end marker", raw)
        expected = len(self.events)
        if event.seq != expected:
            what = ("repeats an earlier sequence number" if event.seq < expected
                    else "sequence gap")
            raise ProtocolError(line, f"{what}: expected seq {expected}, got {event.seq}", raw)
        if (expected == 0) != isinstance(event, Boot):
            problem = (f"the first marker must be boot, got {event.KIND!r}" if expected == 0
                       else "boot marker in the middle of the transcript (did the kernel reset?)")
            raise ProtocolError(line, problem, raw)
        if isinstance(event, Start):
            self._check_start(event)
            self._tag_key = event.seed
        self._check_tag(event)
        if isinstance(event, ScenarioName):
            self._listed += 1
        elif isinstance(event, ListEnd) and event.count != self._listed:
            raise ProtocolError(line, f"list_end count={event.count} but {self._listed} "
                                      f"scenario markers came before it", raw)
        elif isinstance(event, Ready):
            self._listed = 0

    def _check_tag(self, event: Event) -> None:
        """The marker's tag must be the one of its seq in this run."""
        key = 0 if self._tag_key is None else self._tag_key
        want = line_tag(key, KERNEL_STREAM, event.seq)
        got = event.raw.split(" ", 3)[2]  # parse_marker checked the head: '@KT <seq> <tag> <kind>'
        if got != want:
            run = "the lines before start (key 0)" if self._tag_key is None else f"the run with seed {key}"
            raise ProtocolError(event.line, f"line tag {got} is wrong: seq {event.seq} of {run} carries "
                                            f"{want}; this line belongs to another run (a replayed, "
                                            f"spliced or rewritten line)", event.raw)

    def _check_start(self, start: Start) -> None:
        if any(isinstance(e, Start) for e in self.events):
            raise ProtocolError(start.line, "a second start marker in one run", start.raw)
        if self.scenario is not None and start.scenario != self.scenario:
            raise ProtocolError(start.line, f"start names scenario {start.scenario!r} but the "
                                            f"harness asked for {self.scenario!r}", start.raw)
        if self.seed is not None and start.seed != self.seed:
            raise ProtocolError(start.line, f"start says seed={start.seed} but the harness "
                                            f"sent seed {self.seed}", start.raw)
