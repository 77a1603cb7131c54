"""Failure messages for broken rules, after MIT gradelib.

A judge cites the events that show a violation; the message names the rule,
gives the detail, quotes each cited line with two lines of context on each
side (line numbers, the cited line marked ``>>``) and ends with the path of
the full transcript and how to replay the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from .text import excerpt

CONTEXT = 2  #: lines shown on each side of a cited line
TAIL = 5  #: lines shown from the end when no event is cited


class Cited(Protocol):
    """Anything with a transcript line number: an event or a noise line."""

    @property
    def line(self) -> int: ...


class RuleBroken(AssertionError):
    """A rule of the system-call contract does not hold in this transcript.

    ``str()`` is the whole multi-line message; ``rule``, ``detail``, ``cited``
    and ``path`` are kept for tools.
    """

    def __init__(self, message: str, rule: str, detail: str,
                 cited: Sequence[Cited], path: Path | None) -> None:
        super().__init__(message)
        self.rule = rule
        self.detail = detail
        self.cited = tuple(cited)
        self.path = path


def format_failure(lines: Sequence[str], rule: str, cited: Sequence[Cited], detail: str,
                   path: Path | None, scenario: str, seed: int, *, replay: str | None = None,
                   rules: str | None = None, boot: str | None = None) -> str:
    """The message of a RuleBroken (see the module docstring). ``replay``:
    the command that reruns it (default: the CLI on the bundled kernel);
    ``rules``: the rule set judged, when there is a choice; ``boot``: how
    the kernel was started (harness.boot), when the kernel does not say."""
    out = [f"rule broken: {rule}"]
    out += [f"  {d}" for d in detail.splitlines()]
    out.append(f"scenario {scenario}, seed {seed}" + (f", rule set {rules}" if rules else "")
               + (f", booted {boot}" if boot else ""))
    for item in cited:
        out.append(f"at line {item.line}:")
        out += excerpt(lines, item.line - CONTEXT, item.line + CONTEXT, mark=item.line)
    if not cited:
        out.append(f"last {min(TAIL, len(lines))} lines of the transcript:")
        out += excerpt(lines, len(lines) - TAIL + 1, len(lines))
    out.append(f"full transcript: {path if path is not None else '(not saved)'}")
    out.append(f"replay: {replay or f'python -m harness run {scenario} --seed {seed}'}")
    return "\n".join(out)
