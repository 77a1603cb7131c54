"""The class as a whole, for OUT/index.html (issue 14 item 4; docs/grading.md).

From the graded submissions of one class run (harness.grade.Graded, fresh
or restored from results.json by --resume): the score histogram, for each
rule how many students broke it (and who), the submissions not judged with
their cause, and the run's settings. The histogram is inline SVG drawn
here (no script, no network): the page opens offline.

Each rule is counted in its list, grade.Rule.kind: broken, not judged,
not applicable or passed.
"""

from __future__ import annotations

import hashlib
import html
import importlib.metadata
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .qemu import DEFAULT_QEMU

if TYPE_CHECKING:
    from .grade import ClassState, Graded

BIN_WIDTH = 10  #: percent per histogram bar (the last bar holds 100 %)
BINS = 100 // BIN_WIDTH
VERSION_TIMEOUT = 10.0  #: seconds `qemu-system-aarch64 --version` may take
#: the histogram's drawing, in SVG user units
SVG_WIDTH, SVG_HEIGHT, SVG_LEFT, SVG_BOTTOM, SVG_TOP = 640, 260, 40, 40, 20


@dataclass(frozen=True)
class Bin:
    """One bar: the submissions whose percent is in [low, high) (the last: [low, 100])."""

    low: int
    high: int
    names: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.low}-{self.high}%"


@dataclass(frozen=True)
class RuleRow:
    """One rule of one scenario, and the students in each of its lists."""

    scenario: str
    test: str
    broken: tuple[str, ...]
    not_judged: tuple[str, ...]
    not_applicable: tuple[str, ...]
    passed: int


@dataclass(frozen=True)
class Unjudged:
    name: str
    status: str  #: "not judged" (scores 0) or "not graded" (an infrastructure fault: no score)
    cause: str


@dataclass(frozen=True)
class Insight:
    bins: tuple[Bin, ...]
    rules: tuple[RuleRow, ...]
    unjudged: tuple[Unjudged, ...]
    settings: tuple[tuple[str, str], ...]
    scored: int  #: submissions with a score (in the histogram)


def bin_of(percent: float) -> int:
    """The histogram bar of a percent (100 goes in the last one)."""
    return min(BINS - 1, max(0, int(percent // BIN_WIDTH)))


def histogram(graded: Iterable[Graded]) -> tuple[Bin, ...]:
    """Every submission with a score, by percent of its own maximum."""
    names: list[list[str]] = [[] for _ in range(BINS)]
    for g in graded:
        if not g.not_graded:
            names[bin_of(g.percent)].append(g.sub.name)
    return tuple(Bin(i * BIN_WIDTH, (i + 1) * BIN_WIDTH, tuple(sorted(n))) for i, n in enumerate(names))


def rule_rows(graded: Iterable[Graded]) -> tuple[RuleRow, ...]:
    """Every rule judged in the class, the most broken first. A submission
    that could not be judged at all is in none of them (it is in unjudged)."""
    lists: dict[tuple[str, str], dict[str, list[str]]] = {}
    for g in graded:
        if g.not_graded or g.problem:
            continue
        for s in g.scenarios:
            for r in s.rules:
                row = lists.setdefault((s.name, r.test), {"broken": [], "not_judged": [],
                                                          "not_applicable": [], "passed": []})
                row[r.kind].append(g.sub.name)
    rows = [RuleRow(scenario, test, tuple(sorted(v["broken"])), tuple(sorted(v["not_judged"])),
                    tuple(sorted(v["not_applicable"])), len(v["passed"]))
            for (scenario, test), v in lists.items()]
    return tuple(sorted(rows, key=lambda r: (-len(r.broken), -len(r.not_judged), r.scenario, r.test)))


def unjudged(graded: Iterable[Graded]) -> tuple[Unjudged, ...]:
    """The submissions not judged (their 0's cause) and not graded (the grader's fault)."""
    found = [Unjudged(g.sub.name, "not graded", f"infrastructure: {g.not_graded}") if g.not_graded
             else Unjudged(g.sub.name, "not judged", _own_problem(g))
             for g in graded if g.not_graded or g.problem]
    return tuple(sorted(found, key=lambda u: (u.status, u.name)))


def _own_problem(g: Graded) -> str:
    """The problem line without the child pytest's option prefix naming the path again."""
    for option in ("--submission", "--kernel"):
        for sep in (" ", "="):
            prefix = f"{option}{sep}{g.sub.path}: "
            if g.problem.startswith(prefix):
                return g.problem[len(prefix):]
    return g.problem


def qemu_version(qemu: str = DEFAULT_QEMU) -> str:
    """The first line of ``qemu --version`` (or why there is none)."""
    if shutil.which(qemu) is None:
        return f"{qemu} not found"
    try:
        done = subprocess.run([qemu, "--version"], capture_output=True, text=True, timeout=VERSION_TIMEOUT,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{qemu} --version failed ({type(e).__name__})"
    return (done.stdout.strip().splitlines() or [f"{qemu} --version printed nothing"])[0]


def _package(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def seed_fingerprint(class_seed: int) -> str:
    """12 hex digits that tell two class seeds apart without revealing either."""
    return hashlib.sha256(f"kt-class-seed/{class_seed}".encode()).hexdigest()[:12]


def run_settings(state: ClassState | None, graded: Sequence[Graded]) -> tuple[tuple[str, str], ...]:
    """The run's settings as (label, value) rows. The class seed itself is
    secret (OUT/grading.json): only its fingerprint is shown."""
    rows: list[tuple[str, str]] = []
    if state is not None:
        rows += [("rule set", state.rules),
                 ("class seed", f"kept in grading.json (secret); fingerprint {seed_fingerprint(state.class_seed)}"),
                 ("rubric sha256", state.rubric), ("suite version", state.suite)]
    modes = sorted({g.sub.mode for g in graded})
    if modes:
        rows.append(("judged from", ", ".join("kernel markers" if m == "markers" else "EL0 facts" for m in modes)))
    args = sorted({" ".join(g.sub.settings.pytest_args(g.sub.mode)) for g in graded} - {""})
    rows.append(("run settings", "; ".join(args) if args else "defaults"))
    rows += [("QEMU", qemu_version()), ("Python", f"{platform.python_version()} ({sys.executable})"),
             ("pytest", _package("pytest")), ("pexpect", _package("pexpect"))]
    return tuple(rows)


def build(graded: Sequence[Graded], state: ClassState | None = None) -> Insight:
    """The class page's content for these submissions."""
    return Insight(histogram(graded), rule_rows(graded), unjudged(graded), run_settings(state, graded),
                   sum(1 for g in graded if not g.not_graded))


def histogram_svg(bins: Sequence[Bin]) -> str:
    """The histogram as an inline SVG element: one bar per bin with its
    count above it and, on hover, the names (<title>); every bar carries
    data-low, data-high and data-count (tests read them)."""
    most = max((len(b.names) for b in bins), default=0) or 1
    plot_w = SVG_WIDTH - SVG_LEFT - 10
    plot_h = SVG_HEIGHT - SVG_BOTTOM - SVG_TOP
    step = plot_w / max(1, len(bins))
    base = SVG_TOP + plot_h
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" id="histogram" width="{SVG_WIDTH}" height="{SVG_HEIGHT}" '
           f'viewBox="0 0 {SVG_WIDTH} {SVG_HEIGHT}" role="img" aria-label="score histogram" '
           f'font-family="system-ui, sans-serif" font-size="12">',
           f'<line x1="{SVG_LEFT}" y1="{base}" x2="{SVG_WIDTH - 10}" y2="{base}" stroke="#444"/>',
           f'<line x1="{SVG_LEFT}" y1="{SVG_TOP}" x2="{SVG_LEFT}" y2="{base}" stroke="#444"/>']
    for tick in sorted({0, most} | ({most // 2} if most % 2 == 0 else set())):
        y = base - plot_h * tick / most
        out.append(f'<text x="{SVG_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>')
    for i, b in enumerate(bins):
        n = len(b.names)
        h = plot_h * n / most
        x = SVG_LEFT + i * step + 3
        title = html.escape(f"{b.label}: {n} submission(s)" + (": " + ", ".join(b.names) if n else ""))
        out.append(f'<rect class="bar" data-low="{b.low}" data-high="{b.high}" data-count="{n}" x="{x:.1f}" '
                   f'y="{base - h:.1f}" width="{step - 6:.1f}" height="{h:.1f}" fill="#5c85d6">'
                   f'<title>{title}</title></rect>')
        if n:
            out.append(f'<text x="{x + (step - 6) / 2:.1f}" y="{base - h - 4:.1f}" text-anchor="middle">{n}</text>')
        label = f"{b.low}-{b.high}" if i == len(bins) - 1 else f"{b.low}"
        out.append(f'<text x="{x + (step - 6) / 2:.1f}" y="{base + 16}" text-anchor="middle">{label}</text>')
    out.append(f'<text x="{SVG_LEFT + plot_w / 2:.1f}" y="{SVG_HEIGHT - 6}" text-anchor="middle">'
               f'percent of the maximum (bars of {BIN_WIDTH}; the last holds 100)</text>')
    out.append("</svg>")
    return "\n".join(out)
