"""Grading a class: ``python -m harness grade DIR --out OUT`` (docs/grading.md).

Each entry of DIR is one submission: a source tree (ported and judged from
EL0, ``--submission``) or a kernel image (judged with markers if its note
says ``mode=test``, else from EL0). Hand-ins are resolved first (harness.handin):
an archive is unpacked safely into OUT/<name>/handin, a single nested
folder descended into, an image-only folder is its image; names never merge. For each, the whole suite runs in a
child pytest, exactly as ``make check`` would, with one seed derived from
the class seed (random, kept in OUT/grading.json), the submission's name
and a hash of its content; its JUnit XML is scored with the rubric
(grading/rubric.toml). A copy of this project's images or of a fixture is
not run: it scores 0.

Written per submission, under OUT/<name>/: ``transcripts/``, ``junit.xml``,
``pytest.log``, ``report.html``, then ``results.json`` (Gradescope's
format) LAST: it marks a finished grading (``--resume`` skips only a
submission whose results.json is valid for this class). For the class:
``grading.json``, ``summary.csv`` and ``index.html``. Every file is written
atomically (a temporary file, then a rename). Nothing in them depends on
the time or the machine, so two runs with one class seed give the same files.

The grader's own faults are not the student's: a QEMU killed by a signal
the harness did not send, an exception inside the harness, or a child
pytest that crashed is retried once and otherwise recorded as "not graded"
(no results.json); Ctrl-C stops the class and writes nothing for the
submissions in flight; a full disk on OUT stops the run with one line.
"""

from __future__ import annotations

import argparse
import builtins
import concurrent.futures
import contextlib
import csv
import errno
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10 (Ubuntu 22.04): tomli is the same reader (python3-tomli)
    import tomli as tomllib  # type: ignore[no-redef]

from . import gradebook, jail, preflight
from . import rules as kt_rules
from .el0 import MARKER_ONLY
from .errors import HarnessError, InfrastructureError
from .handin import HANDIN_FOLDER, resolve, unique_names, visible
from .image import inspect_image
from .port import SKIP, SYMBOL
from .prng import MASK64, parse_seed
from .ticker import Ticker
from .runner import parse_seconds
from .text import decode, printable, printable_text, split_lines

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RUBRIC = ROOT / "grading" / "rubric.toml"
SUBMISSION_TIMEOUT = 900.0  #: seconds for one submission's whole child pytest (a backstop)
STOP_GRACE = 5.0  #: seconds an interrupted child pytest gets to stop its QEMUs before SIGKILL
STATE_FILE = "grading.json"  #: OUT's class seed, rule set, rubric hash and suite version
STAGING = ".staging"  #: OUT/<name>/.staging: a grading in progress (junit.xml, pytest.log)
PROBE_BYTES = 64 << 10  #: what the disk check writes to OUT after a child pytest failed
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_CITED = re.compile(r"^>> +(\d+) \|", re.M)
#: the submission's own problem when its child pytest stops with a usage error naming it
_OWN_USAGE_ERROR = ("--submission ", "--kernel:")
_PYTEST_EXITS = {2: "interrupted", 3: "internal error", 4: "usage error", 5: "no tests collected"}
PROBLEM_CHARS = 1500  #: characters of a problem line kept (it ends with the transcript path)
REPORT_LINE_CHARS = 2000  #: characters of one transcript line shown in a report
HEARTBEAT = 30.0  #: seconds between "still judging" lines while submissions are in flight


class GradeError(Exception):
    """Bad input to the grade command (one line for the user)."""


class DiskFull(Exception):
    """OUT ran out of space (or quota) while the grader or a child wrote ``where``."""

    def __init__(self, where: Path) -> None:
        super().__init__(f"OUT: no space left on device while writing {where}; everything graded "
                         f"so far is intact; free space and rerun with --resume")
        self.where = where


class Interrupted(Exception):
    """The class was stopped (Ctrl-C) while this submission was graded:
    nothing is written for it."""


# --- the rubric -------------------------------------------------------------

@dataclass(frozen=True)
class ScenarioRubric:
    points: float
    modes: tuple[str, ...]
    rule_sets: tuple[str, ...]


@dataclass(frozen=True)
class Rubric:
    """A course's scenario points (each rule's weight is on its judge:
    harness/rules.py, read back from the JUnit properties)."""

    path: Path
    scenarios: dict[str, ScenarioRubric]

    def max_score(self, mode: str, rules: str) -> float:
        """The most a submission judged in ``mode`` with ``rules`` can score."""
        return sum(s.points for s in self.scenarios.values() if self.judged(s, mode, rules))

    @staticmethod
    def judged(s: ScenarioRubric, mode: str, rules: str) -> bool:
        return mode in s.modes and (mode == "markers" or rules in s.rule_sets)


def load_rubric(path: Path) -> Rubric:
    """Read and check a rubric file; GradeError naming the problem."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise GradeError(f"--rubric {path}: {e}") from None
    if "defaults" in data:
        raise GradeError(f"--rubric {path}: [defaults]: a rule's weight is declared on its judge now "
                         f"(@pytest.mark.rule(weight=...), harness/rules.py), not in the rubric")
    scenarios = {}
    for name, entry in data.get("scenarios", {}).items():
        if "weights" in entry:
            raise GradeError(f"--rubric {path}: scenario {name}: weights: a rule's weight is declared "
                             f"on its judge now (@pytest.mark.rule(weight=...), harness/rules.py)")
        try:
            points = float(entry["points"])
            modes = tuple(entry.get("modes", ["markers"] if name in MARKER_ONLY else ["markers", "el0"]))
            rule_sets = tuple(entry.get("rule_sets", ["project", "lesson"]))
        except (KeyError, TypeError, ValueError) as e:
            raise GradeError(f"--rubric {path}: scenario {name}: {e!r}") from None
        if points < 0 or not set(modes) <= {"markers", "el0"}:
            raise GradeError(f"--rubric {path}: scenario {name}: negative points or an unknown mode")
        scenarios[name] = ScenarioRubric(points, modes, rule_sets)
    if not scenarios:
        raise GradeError(f"--rubric {path}: no [scenarios.<name>] table")
    return Rubric(Path(path), scenarios)


def rubric_hash(path: Path) -> str:
    """sha256 of the rubric file (OUT/grading.json: a resume must use the same one)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def suite_version() -> str:
    """A hash of the judging code (harness/, tests/scenarios/): recorded in
    OUT/grading.json so a resume across a change of the suite is named."""
    h = hashlib.sha256()
    for base in (ROOT / "harness", ROOT / "tests" / "scenarios"):
        for f in sorted(base.rglob("*")):
            if f.is_file() and f.suffix in (".py", ".c", ".S", ".h", ".ld"):
                h.update(str(f.relative_to(ROOT)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


# --- what a submission is ---------------------------------------------------

_CHUNK = 1 << 20


def file_hash(path: Path) -> str:
    """sha256 of a file's bytes (an unreadable file: of the reason, so it is
    still one stable value)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    except OSError as e:
        return hashlib.sha256(f"unreadable: {e.strerror}".encode()).hexdigest()
    return h.hexdigest()


def tree_hash(tree: Path) -> str:
    """A hash of a source tree's content: every entry's path relative to the
    tree, its kind (file, executable, link, folder) and its bytes (a link:
    its target), in a fixed order; build outputs are left out exactly as the
    port leaves them out of its copy (harness.port.SKIP), so building a tree
    does not change its hash and a changed source file does."""
    h = hashlib.sha256(b"kt-tree-1\0")
    todo: list[str] = [""]
    while todo:  # a stack, not recursion: a hostile tree may nest deeper than Python's stack
        rel = todo.pop()
        folder = tree / rel if rel else tree
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name, reverse=True)
        except OSError as e:
            h.update(b"E" + os.fsencode(rel) + b"\0" + str(e.strerror).encode() + b"\0")
            continue
        skipped = SKIP(str(folder), [e.name for e in entries])
        for entry in entries:
            if entry.name in skipped:
                continue
            path = f"{rel}/{entry.name}" if rel else entry.name
            name = os.fsencode(path) + b"\0"
            if entry.is_symlink():
                h.update(b"L" + name + os.fsencode(os.readlink(entry.path)) + b"\0")
            elif entry.is_dir():
                h.update(b"D" + name)
                todo.append(path)
            elif entry.is_file():
                kind = b"X" if os.access(entry.path, os.X_OK) else b"F"
                h.update(kind + name + file_hash(Path(entry.path)).encode() + b"\0")
            else:
                h.update(b"S" + name)
    return h.hexdigest()


def content_hash(path: Path) -> str:
    """The hash of a submission's content: a tree's (tree_hash) or an image's bytes."""
    return tree_hash(path) if path.is_dir() else file_hash(path)


def honest_copy(source: Path, dst: Path, tag: int) -> Path:
    """Copy ``source`` (an image or a source tree) to ``dst`` so that it is
    no longer a copy of it (known_works scores exact copies 0 unrun): an
    image gets ``tag`` appended as bytes (past its end: it boots the same), a
    tree (its build outputs left out, as the port does) a comment naming
    ``tag`` in src/kernel.c, else in its first C file. Equal tags of the same
    source give identical copies (classmates). For self-tests and make bench:
    what an honest student who started from the project hands in."""
    if not source.is_dir():
        dst.write_bytes(source.read_bytes() + tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "little"))
        return dst
    shutil.copytree(source, dst, ignore=shutil.ignore_patterns("build", "kernel8.img"))
    target = dst / "src" / "kernel.c"
    if not target.is_file():
        target = min(dst.rglob("*.c"))  # ValueError: a tree without C sources has nothing to change
    with open(target, "a") as f:
        f.write(f"\n/* student {tag} wrote this */\n")
    return dst


_PROJECT_IMAGES = {"kernel8-test.img": "the project's test image", "kernel8.img": "the project's demo image",
                   "kernel8-test.elf": "the project's test kernel ELF", "kernel8.elf": "the project's demo kernel ELF"}


def known_works(root: Path = ROOT) -> dict[str, str]:
    """Content hash -> what it is, for everything a student must not hand in
    as their own: this project's images (build/), every fixture tree (a
    folder under fixtures/ with a Makefile), every fixture file and every
    image built from fixtures/images (build/bad-images/)."""
    known: dict[str, str] = {}
    for name, what in _PROJECT_IMAGES.items():
        if (root / "build" / name).is_file():
            known.setdefault(file_hash(root / "build" / name), f"{what} build/{name}")
    fixtures = root / "fixtures"
    for makefile in sorted([*fixtures.rglob("Makefile"), *fixtures.rglob("makefile")]):
        tree = makefile.parent
        known.setdefault(tree_hash(tree), f"the fixture tree {tree.relative_to(root)}")
    for f in sorted([*fixtures.rglob("*"), *(root / "build" / "bad-images").glob("*")]):
        if f.is_file() and not f.is_symlink():
            known.setdefault(file_hash(f), f"the fixture {f.relative_to(root)}")
    return known


@dataclass(frozen=True)
class RunSettings:
    """Settings the grader passes on to every child pytest (and its replay command)."""

    run_timeout: float | None = None  #: --run-timeout
    stall: float | None = None  #: --stall
    entry: str | None = None  #: --entry: the user program's symbol when it is not user_process

    def pytest_args(self, mode: str) -> list[str]:
        args = [] if self.run_timeout is None else ["--run-timeout", f"{self.run_timeout:g}"]
        if mode == "el0":
            args += [] if self.stall is None else ["--stall", f"{self.stall:g}"]
            args += [] if self.entry is None else ["--entry", self.entry]
        return args


@dataclass(frozen=True)
class Submission:
    name: str
    path: Path
    seed: int
    mode: str  #: "markers" or "el0"
    content: str = ""  #: content_hash of the submission
    kind: str = "image"  #: "tree" or "image"
    entry: str = ""  #: its entry's own name in the class folder (harness.handin)
    inside: str = ""  #: what was judged, within the entry ("" for the entry itself)
    problem: str = ""  #: set: the hand-in cannot be judged (a zip bomb, an unreadable archive)
    note: str = ""  #: e.g. unsafe archive members skipped
    settings: RunSettings = RunSettings()  #: what its child pytest is given (and its replay)


#: Rule.outcome -> the list a report shows it in (harness.insight counts them the same way):
#: the kernel broke it, a rule it needs did not hold, it was out of reach in this run
#: (counts neither way), or it passed.
LIST_OF = {"failed": "broken", "error": "broken", "needs": "not_judged",
           "not_applicable": "not_applicable", "passed": "passed"}
LISTS = ("broken", "not_judged", "not_applicable")  #: the lists a student reads, in order
_OUTCOME_OF_LIST = {"broken": "failed", "not_judged": "needs", "not_applicable": "not_applicable"}


@dataclass
class Rule:
    """One judged rule (a test) of a submission."""

    test: str
    outcome: str  #: a key of LIST_OF
    weight: float
    message: str = ""

    @property
    def kind(self) -> str:
        """Its list: broken, not_judged, not_applicable or passed (LIST_OF)."""
        return LIST_OF.get(self.outcome, "broken")


@dataclass
class ScenarioResult:
    name: str
    points: float
    max_points: float
    rules: list[Rule] = field(default_factory=list)
    verdict: str = ""  #: why the scenario scores 0 whatever its rules say


def _templates() -> Any:
    """The report templates in grading/ (Debian's python3-jinja2)."""
    import jinja2
    return jinja2.Environment(loader=jinja2.FileSystemLoader(ROOT / "grading"), autoescape=True)


def submission_seed(class_seed: int, name: str, content: str = "") -> int:
    """The seed of one submission: from the class seed (secret), its name and
    the hash of its content, so a resubmission gets another seed and nobody
    without the class seed can compute one before the grading."""
    digest = hashlib.sha256(f"{class_seed}/{name}/{content}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & MASK64


def _mode(path: Path) -> str:
    if path.is_dir():
        return "el0"
    try:
        note = inspect_image(path, want_mode=None).note
    except HarnessError:
        return "el0"  # judged as it is: the probe names what is wrong
    return "markers" if note is not None and note.mode == "test" else "el0"


def find_submissions(directory: Path, class_seed: int, out: Path | None = None) -> list[Submission]:
    """Every entry of ``directory`` (hidden ones and __MACOSX aside), by
    name, resolved as harness.handin says: an archive is unpacked into
    ``out/<name>/handin`` (without ``out`` it is a problem), a single
    nested folder descended into, an image-only folder is that image. Two
    entries never share a name (handin.unique_names)."""
    if not directory.exists():
        raise GradeError(f"{directory}: no such folder (the folder of submissions is missing)")
    if not directory.is_dir():
        raise GradeError(f"{directory}: not a folder of submissions (it is a file)")
    entries = visible(directory)
    names = unique_names([e.name for e in entries])
    subs = []
    for entry in entries:
        name = names[entry.name]
        h = resolve(entry, None if out is None else out / name / HANDIN_FOLDER)
        content = file_hash(h.path) if h.problem else content_hash(h.path)
        subs.append(Submission(name, h.path.resolve(), submission_seed(class_seed, name, content),
                               "el0" if h.problem else _mode(h.path), content, h.kind, entry.name,
                               h.inside, h.problem, h.note))
    if not subs:
        raise GradeError(f"{directory}: no submissions in it")
    return sorted(subs, key=lambda s: s.name)


def identical_groups(subs: list[Submission]) -> dict[str, list[str]]:
    """Name -> the other submissions of the class with the same content."""
    by_content: dict[str, list[str]] = {}
    for s in subs:
        by_content.setdefault(s.content, []).append(s.name)
    return {s.name: [n for n in by_content[s.content] if n != s.name] for s in subs}


def pytest_command(sub: Submission, out: Path, rules: str, staging: Path | None = None,
                   unsafe: bool = False) -> list[str]:
    """The child pytest that judges ``sub`` (the same as make check); its
    JUnit XML goes to ``staging`` (default: ``out``); ``unsafe``:
    --unsafe-no-sandbox (run unjailed where no jail can be made); the
    submission's run settings are passed on."""
    staging = out if staging is None else staging
    target = (["--kernel", str(sub.path)] if sub.mode == "markers"
              else ["--submission", str(sub.path), "--rules", rules, "--port-dir", str(out / "build")])
    return [sys.executable, "-m", "pytest", str(ROOT / "tests" / "scenarios"), "-p", "no:cacheprovider",
            "-p", "no:xdist", "-rfE", "--seed", str(sub.seed), *target,
            "--transcript-dir", str(out / "transcripts"), "--junitxml", str(staging / "junit.xml"),
            "-o", "junit_logging=no", *(["--unsafe-no-sandbox"] if unsafe else []),
            *sub.settings.pytest_args(sub.mode)]


def replay_command(sub: Submission, rules: str) -> str:
    """The command that reruns this submission's judging exactly, and on a
    second line (``debug: make gdb ...``) the one that boots a scenario of it
    under gdb (harness/gdb.py)."""
    args = " ".join([f"--seed {sub.seed}", *sub.settings.pytest_args(sub.mode)])
    entry = "" if sub.settings.entry is None else f" ENTRY={sub.settings.entry}"
    debug = f"\ndebug: make gdb SCENARIO=<a failed scenario> SEED={sub.seed}"  # its twin under gdb
    if sub.mode == "markers":
        return f"make check KERNEL={sub.path} PYTEST_ARGS=\"{args}\"{debug} KERNEL={sub.path}"
    extra = "" if rules == "project" else f" RULES={rules}"
    return f"make check SUBMISSION={sub.path}{extra} PYTEST_ARGS=\"{args}\"{debug} SUBMISSION={sub.path}{entry}"


_EXCEPTION = re.compile(r'(?:failed on \w+ with ")?([A-Za-z_][\w.]*)(?::|"|$)')


def harness_exception(message: str) -> str | None:
    """The first line of a JUnit failure if it is a Python exception raised
    inside the harness (a TypeError in a judge, an OSError writing a
    transcript): a builtin exception other than an assertion. A broken
    rule (RuleBroken) or a verdict is not one."""
    first = message.split("\n", 1)[0].strip()
    m = _EXCEPTION.match(first)
    if m is None:
        return None
    cls = getattr(builtins, m.group(1), None)
    if (isinstance(cls, type) and issubclass(cls, BaseException)
            and not issubclass(cls, (AssertionError, KeyboardInterrupt))):
        return printable(first, 300)
    return None


def _properties(case: ET.Element) -> dict[str, str]:
    """A JUnit testcase's properties (the first value of each name)."""
    found: dict[str, str] = {}
    for prop in case.iter("property"):
        found.setdefault(prop.get("name", ""), prop.get("value", ""))
    return found


#: A judge's outcome class (its kt_outcome property) -> Rule.outcome; a rule
#: that does not apply is kept for the report's third list and counts neither way.
_OUTCOMES = {kt_rules.PASSED: "passed", kt_rules.FAILED: "failed", kt_rules.VERDICT: "failed",
             kt_rules.NOT_JUDGED: "needs", kt_rules.NOT_APPLICABLE: "not_applicable"}


@dataclass(frozen=True)
class JudgeRecord:
    """What one judge's run left for scoring: its test name (without a
    parametrized scenario), its properties (harness/rules.py PROPS) and its
    message (a failure's text, a skip's reason; "" when it passed)."""

    test: str
    props: dict[str, str]
    message: str = ""


def test_name(nodeid_or_name: str) -> str:
    """A judge's test name, from a node id or a JUnit name:
    ``tests/scenarios/test_x.py::test_y[fairness]`` gives ``test_y``."""
    name = nodeid_or_name.rsplit("::", 1)[-1]
    return name.split("[", 1)[0]


def junit_records(junit: Path) -> list[JudgeRecord]:
    """Every testcase of a JUnit XML file, as scoring reads it."""
    found = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        failure = case.find("failure") if case.find("failure") is not None else case.find("error")
        skipped = case.find("skipped")
        if failure is not None:
            message = (failure.text or failure.get("message", "")).strip()
        else:
            message = skipped.get("message", "") if skipped is not None else ""
        found.append(JudgeRecord(test_name(case.get("name", "")), _properties(case), message))
    return found


def score(junit: Path, rubric: Rubric, mode: str, rule_set: str) -> list[ScenarioResult]:
    """Score one JUnit XML file with the rubric (score_records)."""
    return score_records(junit_records(junit), rubric, mode, rule_set)


def score_records(judged: list[JudgeRecord], rubric: Rubric, mode: str, rule_set: str) -> list[ScenarioResult]:
    """Score judges' records with the rubric (module docstring of the
    rubric file), from each judge's properties (harness/rules.py): its
    scenario, weight and outcome class; a verdict's text. Messages are kept
    for the report only, as printable text (a console byte shows as ``\\xHH``)."""
    results = {name: ScenarioResult(name, 0.0, s.points) for name, s in rubric.scenarios.items()
               if rubric.judged(s, mode, rule_set)}
    for case in judged:
        props = case.props
        scenario, kind = props.get(kt_rules.PROPS["scenario"]), props.get(kt_rules.PROPS["outcome"])
        if scenario not in results or kind not in _OUTCOMES:
            continue
        result = results[scenario]
        try:
            weight = float(props.get(kt_rules.PROPS["weight"], ""))
        except ValueError:
            weight = 1.0  # a judge always writes it; a hand-made file may not
        message = printable_text(case.message)
        result.rules.append(Rule(case.test, _OUTCOMES[kind], weight, message))
        if kind == kt_rules.VERDICT and not result.verdict:
            result.verdict = props.get(kt_rules.PROPS["verdict"], "") or message.split("\n", 1)[0]
    for r in results.values():
        judged_weight = sum(rule.weight for rule in r.rules if rule.kind != "not_applicable")
        passed = sum(rule.weight for rule in r.rules if rule.kind == "passed")
        r.points = 0.0 if r.verdict or judged_weight == 0 else round(r.max_points * passed / judged_weight, 2)
        if judged_weight == 0 and not r.verdict:
            r.verdict = "no rule of this scenario was judged"
    return sorted(results.values(), key=lambda r: r.name)


def junit_exceptions(junit: Path) -> list[str]:
    """Every failure of ``junit`` that is an exception inside the harness."""
    found = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        for tag in ("failure", "error"):
            for failure in case.findall(tag):
                text = harness_exception(failure.get("message", "") or failure.text or "")
                if text is not None:
                    found.append(f"{test_name(case.get('name', ''))}: {text}")
    return found


@dataclass
class Graded:
    sub: Submission
    rules: str
    scenarios: list[ScenarioResult]
    problem: str = ""  #: the submission could not be judged at all (build failed, silent, a copy...)
    problem_log: list[str] = field(default_factory=list)
    not_graded: str = ""  #: set: an infrastructure fault; no score at all (no results.json)
    identical_to: list[str] = field(default_factory=list)  #: classmates with the same content

    @property
    def score(self) -> float:
        return round(sum(s.points for s in self.scenarios), 2)

    @property
    def max_score(self) -> float:
        return round(sum(s.max_points for s in self.scenarios), 2)

    @property
    def rule_set(self) -> str:
        """The rule set the score is out of: a marker kernel is judged by the
        project's contract whatever --rules says."""
        return "project" if self.sub.mode == "markers" else self.rules

    @property
    def percent(self) -> float:
        return round(100.0 * self.score / self.max_score, 2) if self.max_score else 0.0


# --- writing OUT --------------------------------------------------------------

@contextlib.contextmanager
def out_space(where: Path) -> Iterator[None]:
    """Turn a full disk (or quota) while writing ``where`` into DiskFull."""
    try:
        yield
    except OSError as e:
        if e.errno in NO_SPACE:
            raise DiskFull(where) from None
        raise


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``path`` whole or not at all: a temporary file beside it, then
    os.replace. A full disk is DiskFull; the temporary file never stays."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    raw = data.encode() if isinstance(data, str) else data
    with out_space(path):
        try:
            with open(tmp, "wb") as f:
                f.write(raw)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def check_space(out: Path, where: Path) -> None:
    """DiskFull if OUT cannot take PROBE_BYTES more (asked after a child
    pytest failed: a full disk, not the submission, may be why)."""
    probe = out / f".space-probe.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        with out_space(where), open(probe, "wb") as f:
            f.write(b"\0" * PROBE_BYTES)
            f.flush()
            os.fsync(f.fileno())
    finally:
        probe.unlink(missing_ok=True)


YOUR_TREE = "path/to/your/tree"  #: what a replay command names the student's tree as
YOUR_IMAGE = "path/to/your/kernel8.img"


def rule_lists(s: ScenarioResult) -> dict[str, list[Rule]]:
    """A scenario's rules that did not pass, as the three lists of a report:
    broken, not judged (with what they needed), not applicable."""
    return {kind: [r for r in s.rules if r.kind == kind] for kind in LISTS}


def student_replay(sub: Submission, rules: str) -> str:
    """The replay command as the student runs it, from the suite's checkout
    with their own tree (or image): no path of the grader's machine."""
    args = " ".join([f"--seed {sub.seed}", *sub.settings.pytest_args(sub.mode)])
    if sub.mode == "markers":
        return f"make check KERNEL={YOUR_IMAGE} PYTEST_ARGS=\"{args}\""
    extra = "" if rules == "project" else f" RULES={rules}"
    return f"make check SUBMISSION={YOUR_TREE}{extra} PYTEST_ARGS=\"{args}\""


def student_text(text: str, sub: Submission) -> str:
    """``text`` (a rule's message, a problem line, a log line) with the
    grader's paths made the student's: the submission's own path is their
    tree (its files relative to it), OUT/<name>/... is relative to the report
    (report.html sits in OUT/<name>/), a replay names ``path/to/your/tree``."""
    own = str(sub.path)
    mine = YOUR_IMAGE if sub.mode == "markers" or sub.kind == "image" else YOUR_TREE
    text = re.sub(rf"--(?:submission|kernel)[ =]{re.escape(own)}: ", "", text)
    text = re.sub(rf"\b(SUBMISSION|KERNEL)={re.escape(own)}(?=[\s\"']|$)", rf"\1={mine}", text)
    if sub.kind == "tree":
        text = text.replace(own + "/", "")
    text = re.sub(rf"{re.escape(own)}(?![\w/.-])", "your tree" if mine == YOUR_TREE else "your image", text)
    return re.sub(rf"(?<![\w.-])/\S*?/{re.escape(sub.name)}/(?=(?:transcripts|build|junit\.xml|pytest\.log)\b)",
                  "", text)


def _rule_text(rule: Rule, sub: Submission | None = None) -> str:
    """One rule as the text of a results.json test: its list's head, its name, its message."""
    message = rule.message if sub is None else student_text(rule.message, sub)
    head = "passed" if rule.kind == "passed" else rule.kind.replace("_", " ").upper()  # BROKEN, NOT JUDGED...
    return f"{head} {rule.test}\n{message}".rstrip()


def problem_text(g: Graded) -> str:
    """Why the submission could not be judged, as its student reads it ("" if it was)."""
    return student_text(g.problem, g.sub) if g.problem else ""


def problem_log(g: Graded) -> list[str]:
    """The log's tail shown under the problem, without the problem line
    itself (it is already the report's first line), paths the student's."""
    lines = [student_text(line, g.sub) for line in g.problem_log]
    problem = problem_text(g)
    return [line for line in lines if not problem or line.removeprefix("ERROR: ").strip() != problem.strip()]


def results_data(g: Graded, execution_time: float | None = None) -> dict[str, Any]:
    """results.json in the Gradescope autograder format; ``extra_data.kt``
    says what was graded (seed, mode, rule set) for a later --resume, and
    ``extra_data.kt.rules`` each scenario's three lists of rule names
    (broken, not_judged, not_applicable: the class page counts them).
    ``execution_time`` (seconds, Gradescope's field) only when given: the
    autograder gives it (harness/autograder.py). Every path in the text is
    the student's (student_text)."""
    tests = []
    lists: dict[str, dict[str, list[str]]] = {}
    for s in g.scenarios:
        groups = rule_lists(s)
        lists[s.name] = {k: [r.test for r in v] for k, v in groups.items()}
        text = [f"verdict: {student_text(s.verdict, g.sub)}"] if s.verdict else []
        if g.problem:
            text.append("not judged: the submission could not be judged (see the top)")
        shown = [r for k in ("broken", "not_judged", "not_applicable") for r in groups[k]]
        text += [_rule_text(r, g.sub) for r in shown] or ([] if g.problem else ["every rule passed"])
        tests.append({"name": s.name, "score": s.points, "max_score": s.max_points,
                      "status": "passed" if s.points >= s.max_points and not s.verdict and not g.problem
                      and not groups["broken"] and not groups["not_judged"] else "failed",
                      "output": "\n\n".join(text), "visibility": "visible"})
    summary = (f"could not be judged: {problem_text(g)}" if g.problem else
               f"judged {'from kernel markers' if g.sub.mode == 'markers' else 'from EL0 facts'}, "
               f"rule set {g.rules}, seed {g.sub.seed}")
    data = {"score": g.score, "max_score": g.max_score,
            "output": f"{summary}\nreplay (from the suite's checkout): {student_replay(g.sub, g.rules)}",
            "output_format": "text", "test_output_format": "text", "stdout_visibility": "hidden",
            "tests": tests,
            "extra_data": {"kt": {"seed": g.sub.seed, "mode": g.sub.mode, "rules": g.rules,
                                  "problem": g.problem, "handed_in": handed_in(g.sub),
                                  "settings": g.sub.settings.pytest_args(g.sub.mode),
                                  "rule_lists": lists}}}
    if execution_time is not None:  # grade leaves it out: its results.json is byte-identical on a rerun
        data["execution_time"] = round(execution_time)
    return data


def write_results(g: Graded, out: Path, execution_time: float | None = None) -> None:
    """results.json (atomically): written last, it marks a finished grading."""
    write_atomic(out / "results.json", json.dumps(results_data(g, execution_time), indent=2,
                                                  sort_keys=True) + "\n")


def _transcripts(out: Path) -> dict[str, list[str]]:
    """Scenario -> its transcript's lines, split on \\n only (one console line,
    one report line) and shown printable (CR, FF, NUL, ESC as \\xHH)."""
    files = sorted((out / "transcripts").rglob("*.txt")) if (out / "transcripts").exists() else []
    return {f.name.rsplit("-", 1)[0]: [printable(line, REPORT_LINE_CHARS) for line in split_lines(f.read_bytes())]
            for f in files}


def write_report(g: Graded, out: Path) -> None:
    """report.html: the page a student reads (jinja2 template): why it could
    not be judged at the top if so; per scenario its broken rules, its rules
    not judged and its rules not applicable, as three lists; paths and the
    replay command the student's own (student_text, student_replay)."""
    env = _templates()
    transcripts = _transcripts(out)
    cited = {s.name: sorted({int(n) for r in s.rules for n in _CITED.findall(r.message)})
             for s in g.scenarios}
    lists = {s.name: rule_lists(s) for s in g.scenarios}
    page = env.get_template("report.html.j2").render(
        g=g, replay=student_replay(g.sub, g.rules), transcripts=transcripts, cited=cited, lists=lists,
        problem=problem_text(g), log=problem_log(g), text=lambda t: student_text(t, g.sub))
    write_atomic(out / "report.html", page)


def handed_in(sub: Submission) -> str:
    """What the student handed in and what of it was judged (summary.csv),
    printable: the entry's own name (two entries whose names clean alike
    get distinct names: this tells them apart), the path judged inside it,
    and the note on unsafe archive members skipped."""
    text = sub.entry or sub.name
    if sub.inside and sub.inside != sub.entry:
        text += f" (judged: {sub.inside})"
    if sub.note:
        text += f"; {sub.note}"
    return printable(text, 500)


def write_class(graded: list[Graded], out: Path, state: ClassState | None = None,
                lms: GradebookSpec | None = None, say: Any = None) -> None:
    """summary.csv, gradebook.csv and index.html, one row per student, best
    first (by percent of the max_score of the student's mode and rule set);
    the submissions not graded (an infrastructure fault) last. index.html
    also shows the class (harness.insight): the score histogram, each rule's
    students by list, who was not judged and why, the run's settings.
    gradebook.csv is for an LMS (harness.gradebook): with ``lms.roster``
    its rows are the roster's; ``say`` gets its warning lines."""
    from . import insight
    names = sorted({s.name for g in graded for s in g.scenarios})
    rows = sorted(graded, key=lambda g: (bool(g.not_graded), -g.percent, -g.score, g.sub.name))
    text = io.StringIO(newline="")
    w = csv.writer(text)
    w.writerow(["name", "score", "max_score", "percent", "mode", "rules", "seed", *names, "problem",
                "identical_to", "handed_in"])
    for g in rows:
        per = {s.name: s.points for s in g.scenarios}
        if g.not_graded:
            w.writerow([g.sub.name, "", "", "", g.sub.mode, g.rule_set, g.sub.seed, *["" for _ in names],
                        f"not graded ({g.not_graded})", " ".join(g.identical_to), handed_in(g.sub)])
        else:
            w.writerow([g.sub.name, g.score, g.max_score, g.percent, g.sub.mode, g.rule_set, g.sub.seed,
                        *[per.get(n, "") for n in names], g.problem, " ".join(g.identical_to),
                        handed_in(g.sub)])
    write_atomic(out / "summary.csv", text.getvalue())
    spec = lms or GradebookSpec()
    book = gradebook.build(rows, spec.roster, spec.assignment)
    write_atomic(out / gradebook.GRADEBOOK, book.csv_text())
    for line in book.warnings:
        if say is not None:
            say(f"gradebook: {line}")
    view = insight.build(rows, state)
    env = _templates()
    write_atomic(out / "index.html", env.get_template("index.html.j2").render(
        rows=rows, names=names, insight=view, histogram=insight.histogram_svg(view.bins), book=book))


@dataclass(frozen=True)
class GradebookSpec:
    """What gradebook.csv is made from: --roster (read by harness.gradebook) and --assignment."""

    roster: Any = None  #: harness.gradebook.Roster, or None: one row per submission
    assignment: str = "Kernel"


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def load_graded(sub: Submission, out: Path, rules: str) -> Graded | None:
    """A finished submission's results (for --resume and the class files):
    None unless OUT/<name>/results.json parses, has the schema, and was
    written for this submission's seed (this class seed and this content),
    mode and rule set. Never raises for a bad file."""
    path = out / sub.name / "results.json"
    try:
        data = json.loads(path.read_text())
        kt = data["extra_data"]["kt"]
        tests = data["tests"]
        ok = (_number(data["score"]) and _number(data["max_score"]) and isinstance(data["output"], str)
              and isinstance(tests, list) and kt.get("seed") == sub.seed and kt.get("mode") == sub.mode
              and kt.get("rules") == rules and isinstance(kt.get("problem", ""), str)
              and kt.get("settings", []) == sub.settings.pytest_args(sub.mode)
              and all(isinstance(t, dict) and isinstance(t.get("name"), str) and _number(t.get("score"))
                      and _number(t.get("max_score")) for t in tests))
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not ok:
        return None
    lists = kt.get("rule_lists") if isinstance(kt.get("rule_lists"), dict) else {}
    scenarios = [ScenarioResult(t["name"], t["score"], t["max_score"], _restored(lists.get(t["name"])))
                 for t in tests]
    return Graded(sub, rules, scenarios, kt.get("problem", ""))


def _restored(lists: object) -> list[Rule]:
    """The rules a finished results.json names (extra_data.kt.rule_lists),
    without their messages or weights: what the class page counts."""
    if not isinstance(lists, dict):
        return []
    return [Rule(test, outcome, 0.0) for key, outcome in _OUTCOME_OF_LIST.items()
            for test in lists.get(key, []) if isinstance(test, str)]


# --- grading one submission ---------------------------------------------------

class Children:
    """The child pytests in flight, so that Ctrl-C can stop them: each runs
    in its own session (the terminal's Ctrl-C reaches only the grader), and
    ``stop_all`` interrupts each one's process group (it kills its QEMUs),
    then kills what is left."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.procs: set[subprocess.Popen[bytes]] = set()
        self.stop = threading.Event()

    def start(self, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        with self.lock:
            if self.stop.is_set():
                raise Interrupted()
            with open(log, "wb") as f:
                proc = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=f,
                                        stderr=subprocess.STDOUT, start_new_session=True,
                                        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
            self.procs.add(proc)
            return proc

    def done(self, proc: subprocess.Popen[bytes]) -> None:
        _kill_group(proc, signal.SIGKILL)  # whatever it left in its group
        with self.lock:
            self.procs.discard(proc)

    def stop_all(self) -> None:
        self.stop.set()
        with self.lock:
            procs = list(self.procs)
        for proc in procs:
            _kill_group(proc, signal.SIGINT)
        deadline = time.monotonic() + STOP_GRACE
        for proc in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill_group(proc, signal.SIGKILL)


def _kill_group(proc: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)


@dataclass
class Context:
    """What every submission of one class run shares."""

    out: Path
    rubric: Rubric
    rules: str
    known: dict[str, str] = field(default_factory=dict)  #: content hash -> not the student's work
    trees_only: bool = False
    unsafe: bool = False  #: --unsafe-no-sandbox
    twins: dict[str, list[str]] = field(default_factory=dict)  #: identical_groups
    children: Children = field(default_factory=Children)
    say_lock: threading.Lock = field(default_factory=threading.Lock)

    def say(self, line: str) -> None:
        with self.say_lock:
            print(line, file=sys.stderr, flush=True)


@dataclass
class Attempt:
    """One run of a submission's child pytest."""

    graded: Graded
    log: str
    infra: str = ""  #: set: an infrastructure fault (why)
    faults: frozenset[tuple[str, str]] = frozenset()  #: (scenario, InfrastructureError verdict)
    other_infra: bool = False  #: a fault no kernel can cause (a crashed pytest, a harness exception)


def _empty(sub: Submission, rubric: Rubric, rules: str) -> list[ScenarioResult]:
    return [ScenarioResult(n, 0.0, s.points) for n, s in sorted(rubric.scenarios.items())
            if rubric.judged(s, sub.mode, rules)]


def rejection(sub: Submission, ctx: Context) -> str:
    """Why ``sub`` is not graded as the student's work, or not judged at all ("" if it is)."""
    if sub.problem:
        return sub.problem
    if sub.content in ctx.known:
        return f"not the student's work: identical to {ctx.known[sub.content]}"
    if ctx.trees_only and sub.kind == "image":
        return ("a kernel image, not a source tree: this class hands in source trees (--trees-only), "
                "so an image is not graded")
    return ""


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)


def _attempt(sub: Submission, ctx: Context, out: Path) -> Attempt:
    """Run the child pytest once into ``out/.staging`` (transcripts into
    ``out/transcripts``); classify how it ended."""
    staging = out / STAGING
    with out_space(out):
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(out / "transcripts", ignore_errors=True)
        staging.mkdir(parents=True)
    proc = ctx.children.start(pytest_command(sub, out, ctx.rules, staging, ctx.unsafe), staging / "pytest.log")
    timed_out = False
    try:
        code = proc.wait(timeout=SUBMISSION_TIMEOUT)
    except subprocess.TimeoutExpired:
        _kill_group(proc, signal.SIGKILL)
        code, timed_out = proc.wait(), True
    finally:
        ctx.children.done(proc)
    if ctx.children.stop.is_set():
        raise Interrupted()
    log = decode((staging / "pytest.log").read_bytes()) if (staging / "pytest.log").exists() else ""
    if timed_out:
        log += f"\njudging took more than {SUBMISSION_TIMEOUT:g} s"
    empty = _empty(sub, ctx.rubric, ctx.rules)
    lines = log.split("\n")
    errors = [line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR: ")]
    tail = [printable(line, 500) for line in lines[-30:]]
    junit = staging / "junit.xml"

    def infra(why: str) -> Attempt:
        return Attempt(Graded(sub, ctx.rules, empty, problem_log=tail), log, why, other_infra=True)

    if timed_out:
        return Attempt(Graded(sub, ctx.rules, empty, f"judging took more than {SUBMISSION_TIMEOUT:g} s",
                              tail), log)
    if code < 0:
        return infra(f"the child pytest died of signal {-code} ({_signal_name(-code)}), "
                     f"which the grader did not send")
    if code == 4 and errors and errors[0].startswith(_OWN_USAGE_ERROR):
        check_space(ctx.out, out)  # a build that failed for want of space is not the student's fault
        return Attempt(Graded(sub, ctx.rules, empty, printable(errors[0], PROBLEM_CHARS), tail), log)
    if code not in (0, 1) or not junit.is_file():
        what = _PYTEST_EXITS.get(code, "an unexpected exit")
        first = next((line for line in lines if line.startswith(("ERROR", "INTERNALERROR"))), "")
        return infra(f"the child pytest exited {code} ({what})"
                     + (f": {printable(first, 200)}" if first else ""))
    try:
        scenarios = score(junit, ctx.rubric, sub.mode, ctx.rules)
        exceptions = junit_exceptions(junit)
    except ET.ParseError as e:
        return infra(f"the child pytest's junit.xml does not parse ({e})")
    graded = Graded(sub, ctx.rules, scenarios)
    faults = frozenset((s.name, s.verdict) for s in scenarios
                       if s.verdict.startswith(f"{InfrastructureError.__name__}:"))
    if exceptions:
        return Attempt(graded, log, f"an exception inside the harness: {exceptions[0]}", faults, True)
    if faults:
        scenario, verdict = min(faults)
        return Attempt(graded, log, f"{scenario}: {verdict}", faults)
    return Attempt(graded, log)


def _kernel_died(graded: Graded, faults: frozenset[tuple[str, str]]) -> Graded:
    """``graded`` with each repeated infrastructure fault judged KernelDied:
    it came back at the same scenario and console line with the same seed."""
    prefix = f"{InfrastructureError.__name__}: "
    for s in graded.scenarios:
        if (s.name, s.verdict) in faults:
            s.verdict = (f"KernelDied: {s.verdict.removeprefix(prefix)}; the same on a retry with "
                         f"the same seed, so the kernel caused it")
            s.points = 0.0
    return graded


def _clear(out: Path, *names: str) -> None:
    for name in names:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def grade_one(sub: Submission, ctx: Context) -> Graded:
    """Judge and score one submission and write its files (results.json
    last). Its own faults are its score; an infrastructure fault is retried
    once, then returned as not graded (nothing written). Raises Interrupted
    (Ctrl-C: nothing written) and DiskFull."""
    out = ctx.out / sub.name
    with out_space(out):
        out.mkdir(parents=True, exist_ok=True)
    _clear(out, "results.json", "report.html")  # a grading in progress is not finished
    twins = ctx.twins.get(sub.name, [])
    why = rejection(sub, ctx)
    if why:
        _clear(out, "transcripts", "junit.xml", "pytest.log", "build", STAGING)
        graded = Graded(sub, ctx.rules, _empty(sub, ctx.rubric, ctx.rules), why, identical_to=twins)
        write_report(graded, out)
        write_results(graded, out)
        return graded
    try:
        first = _attempt(sub, ctx, out)
        done = first
        if first.infra:
            check_space(ctx.out, out)
            ctx.say(f"{sub.name}: infrastructure fault ({first.infra}); retrying once")
            done = _attempt(sub, ctx, out)
            if done.infra and not done.other_infra and done.faults <= first.faults:
                done = replace(done, graded=_kernel_died(done.graded, done.faults), infra="")
            elif done.infra:
                check_space(ctx.out, out)
                _clear(out, STAGING, "transcripts", "build")
                return Graded(sub, ctx.rules, done.graded.scenarios, not_graded=f"infrastructure: {done.infra}",
                              identical_to=twins)
        graded = replace(done.graded, identical_to=twins)
        staging = out / STAGING
        with out_space(out):
            if (staging / "junit.xml").exists():
                os.replace(staging / "junit.xml", out / "junit.xml")
            else:
                (out / "junit.xml").unlink(missing_ok=True)
        write_atomic(out / "pytest.log", printable_text(done.log) + "\n")
        write_report(graded, out)
        write_results(graded, out)
        _clear(out, STAGING)
        return graded
    except (Interrupted, DiskFull):
        _clear(out, STAGING, "transcripts", "build")  # what the child wrote for a grading not finished
        raise


# --- the class's own file: OUT/grading.json -----------------------------------

@dataclass(frozen=True)
class ClassState:
    """What OUT was graded with (OUT/grading.json). The class seed is a
    secret: it is kept here and printed nowhere else."""

    class_seed: int
    rules: str
    rubric: str  #: rubric_hash
    suite: str  #: suite_version

    def to_json(self) -> str:
        return json.dumps({"class_seed": self.class_seed, "rules": self.rules, "rubric_sha256": self.rubric,
                           "suite_version": self.suite}, indent=2, sort_keys=True) + "\n"


def load_state(out: Path) -> tuple[ClassState | None, str]:
    """OUT/grading.json, or None and why not ("" when there is none)."""
    path = out / STATE_FILE
    if not path.exists():
        return None, ""
    try:
        data = json.loads(path.read_text())
        state = ClassState(data["class_seed"], data["rules"], data["rubric_sha256"], data["suite_version"])
        if not (isinstance(state.class_seed, int) and 0 <= state.class_seed <= MASK64
                and all(isinstance(v, str) for v in (state.rules, state.rubric, state.suite))):
            raise ValueError("a field has the wrong type")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        return None, f"{path} is unreadable ({type(e).__name__}); it is replaced"
    return state, ""


# --- the command ------------------------------------------------------------

def _shard(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"([1-9][0-9]*)/([1-9][0-9]*)", text)
    if not m or int(m.group(1)) > int(m.group(2)):
        raise argparse.ArgumentTypeError("must be K/N with 1 <= K <= N, e.g. 2/10")
    return int(m.group(1)), int(m.group(2))


def _symbol(text: str) -> str:
    if not SYMBOL.fullmatch(text):
        raise argparse.ArgumentTypeError("must be a C identifier (the user program's function)")
    return text


def _jobs(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", type=Path, help="folder with one submission per entry (tree or image)")
    p.add_argument("--out", type=Path, required=True, help="where results go")
    p.add_argument("--class-seed", type=parse_seed, default=None, help="the secret every seed is "
                   "derived from, with each submission's name and content (default: random, kept in "
                   "OUT/grading.json and reused by a rerun into OUT)")
    p.add_argument("--rubric", type=Path, default=DEFAULT_RUBRIC, help="points per rule (default: "
                   "grading/rubric.toml)")
    p.add_argument("--rules", choices=("project", "lesson"), default="project",
                   help="rule set for submissions judged from EL0")
    p.add_argument("-j", "--jobs", type=_jobs, default=os.cpu_count() or 1,
                   help="submissions judged at once (default: the cores)")
    p.add_argument("--resume", action="store_true", help="grade only submissions without a valid "
                   "results.json for this class (refused for another class seed or rule set)")
    p.add_argument("--unsafe-no-sandbox", action="store_true", help="where no jail can be made "
                   "(bubblewrap missing, namespaces not allowed), grade unjailed anyway: a hostile "
                   "submission can then reach this machine (without it, grading is refused)")
    p.add_argument("--shard", type=_shard, help="K/N: grade only the K-th of N equal shares")
    p.add_argument("--trees-only", action="store_true", help="the class hands in source trees: a "
                   "kernel image scores 0")
    p.add_argument("--run-timeout", type=parse_seconds, default=None, metavar="S",
                   help="passed to every child pytest: seconds a run may take after its command")
    p.add_argument("--stall", type=parse_seconds, default=None, metavar="S", help="passed to every "
                   "child pytest judging from EL0: seconds of QEMU CPU time with no EL0 marker")
    p.add_argument("--entry", type=_symbol, default=None, metavar="SYMBOL", help="passed to every "
                   "child pytest judging a tree: the user program's function when it is not "
                   "user_process")
    p.add_argument("--roster", type=Path, default=None, metavar="CSV", help="the class list (a Canvas or "
                   "Moodle gradebook export, or any CSV naming students): OUT/gradebook.csv then has one "
                   "row per roster student, matched to submissions by name or ID")
    p.add_argument("--assignment", default="Kernel", metavar="NAME", help="the gradebook.csv column of "
                   "the points (the LMS assignment's name; default: Kernel)")


def _progress(ctx: Context, done: int, total: int, started: float) -> None:
    elapsed = time.monotonic() - started
    left = elapsed / done * (total - done) if done else 0.0
    ctx.say(f"  [{done}/{total} graded, elapsed {elapsed:.0f} s, about {left:.0f} s left]")


def _in_flight(futures: dict[concurrent.futures.Future[Graded], Submission]) -> str:
    """The heartbeat's line: the submissions being judged now ("" if none)."""
    names = sorted(sub.name for fut, sub in futures.items() if fut.running())
    return f"still judging {', '.join(names)}" if names else ""


def _class_seed(args: argparse.Namespace, state: ClassState | None) -> tuple[int, str]:
    if args.class_seed is not None:
        return args.class_seed, "--class-seed"
    if state is not None:
        return state.class_seed, f"reused from {args.out / STATE_FILE}"
    return secrets.randbits(64), f"random, kept in {args.out / STATE_FILE}"


def _refuse_resume(args: argparse.Namespace, state: ClassState | None, seed: int, rubric: str) -> str:
    """Why --resume into this OUT would mix two gradings ("" if it would not)."""
    if not args.resume or state is None:
        return ""
    if state.class_seed != seed:
        return (f"--resume: {args.out} was graded with another class seed; pass that --class-seed "
                f"(or none: {STATE_FILE} keeps it) or grade into a new OUT")
    if state.rules != args.rules:
        return f"--resume: {args.out} was graded with rule set {state.rules}, not {args.rules}"
    if state.rubric != rubric:
        return f"--resume: {args.out} was graded with another rubric (its sha256 is in {STATE_FILE})"
    return ""


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt()


def run(args: argparse.Namespace) -> int:
    """Grade the folder; print one line per submission and the progress.
    0: all graded; 1: some not graded (infrastructure) or OUT full; 2: bad
    input; 130: interrupted (rerun with --resume)."""
    on_main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGTERM, _on_sigterm) if on_main else None
    try:
        return _run(args)
    except KeyboardInterrupt:
        print("grade: interrupted; rerun with --resume to finish", file=sys.stderr)
        return 130
    except DiskFull as e:
        print(f"grade: {e}", file=sys.stderr)
        return 1
    finally:
        if on_main:
            signal.signal(signal.SIGTERM, old)


def _run(args: argparse.Namespace) -> int:
    preflight.require("grade")  # no pytest here: stop before anyone is judged (exit 2)
    try:
        rubric = load_rubric(args.rubric)
        digest = rubric_hash(args.rubric)
        state, bad_state = load_state(args.out)
        class_seed, seed_source = _class_seed(args, state)
        refused = _refuse_resume(args, state, class_seed, digest)
        if refused:
            raise GradeError(refused)
        no_jail = jail.unavailable()
        if no_jail is not None and not args.unsafe_no_sandbox:
            raise GradeError(f"no jail can be made here ({no_jail}): student code is not run "
                             f"unjailed; fix that, or pass --unsafe-no-sandbox to grade anyway")
        settings = RunSettings(args.run_timeout, args.stall, args.entry)
        roster = None if args.roster is None else gradebook.read_roster(args.roster)
        subs = [replace(s, settings=settings) for s in find_submissions(args.dir, class_seed, args.out)]
    except (GradeError, gradebook.RosterError) as e:
        print(f"grade: {e}", file=sys.stderr)
        return 2
    if bad_state:
        print(f"grade: {bad_state}", file=sys.stderr)
    suite = suite_version()
    if args.resume and state is not None and state.suite != suite:
        print(f"grade: note: the suite changed since {args.out} was graded; submissions already "
              f"graded keep their results", file=sys.stderr)
    ctx = Context(args.out, rubric, args.rules, known_works(), args.trees_only, args.unsafe_no_sandbox,
                  identical_groups(subs))
    if args.shard:
        k, n = args.shard
        subs = [s for i, s in enumerate(subs) if i % n == k - 1]
    with out_space(args.out):
        args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / STATE_FILE, ClassState(class_seed, args.rules, digest, suite).to_json())
    ctx.say(f"grading {len(subs)} submissions of {args.dir} (class seed: {seed_source}; rule set "
            f"{args.rules}, {args.jobs} at a time) into {args.out}")
    for s in subs:
        if s.note:
            ctx.say(f"{s.name}: {printable(s.note, 300)}")
    done = {s.name: g for s in subs if args.resume and (g := load_graded(s, args.out, args.rules))}
    todo = [s for s in subs if s.name not in done]
    not_graded: dict[str, Graded] = {}
    started = time.monotonic()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs)
    futures = {pool.submit(grade_one, s, ctx): s for s in todo}
    ticker = Ticker(HEARTBEAT, ctx.say, lambda: _in_flight(futures)).start()
    try:
        for n, fut in enumerate(concurrent.futures.as_completed(futures), 1):
            g = fut.result()  # DiskFull is raised here
            if g.not_graded:
                not_graded[g.sub.name] = g
                ctx.say(f"{g.sub.name}: not graded ({g.not_graded}); rerun with --resume")
            else:
                done[g.sub.name] = g
                ctx.say(f"{g.sub.name}: {g.score:g}/{g.max_score:g} (seed {g.sub.seed})"
                        + (f": {printable(g.problem, 300)}" if g.problem else ""))
            _progress(ctx, n, len(todo), started)
    except (KeyboardInterrupt, DiskFull) as e:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        try:
            ctx.children.stop_all()
            pool.shutdown(wait=True, cancel_futures=True)
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        if isinstance(e, DiskFull):
            raise
        graded = sum(1 for s in subs if load_graded(s, args.out, args.rules) is not None)
        ctx.say(f"interrupted: {graded} graded, {len(subs) - graded} left; rerun with --resume")
        return 130
    finally:
        ticker.stop()
    pool.shutdown(wait=True)
    rows = []
    for s in subs:
        g = done.get(s.name) or not_graded.get(s.name) or load_graded(s, args.out, args.rules)
        if g is not None:
            rows.append(replace(g, identical_to=ctx.twins.get(s.name, [])))
    write_class(rows, args.out, ClassState(class_seed, args.rules, digest, suite),
                GradebookSpec(roster, args.assignment), ctx.say)
    ctx.say(f"wrote {args.out / 'summary.csv'}, {args.out / gradebook.GRADEBOOK} and {args.out / 'index.html'}")
    if not_graded:
        ctx.say(f"{len(not_graded)} submission(s) not graded (infrastructure faults): rerun with --resume")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness grade", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return run(p.parse_args(argv))


__all__ = ["main", "run", "add_arguments", "score", "load_rubric", "submission_seed", "content_hash",
           "tree_hash", "known_works", "InfrastructureError", "DiskFull"]

if __name__ == "__main__":
    sys.exit(main())
