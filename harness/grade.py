"""Grading a class: ``python -m harness grade DIR --out OUT`` (docs/grading.md).

Each entry of DIR is one submission: a source tree (ported and judged from
EL0, ``--submission``) or a kernel image (judged with markers if its note
says ``mode=test``, else from EL0). For each, the whole suite runs in a
child pytest, exactly as ``make check`` would, with one seed derived from
the class seed and the submission's name; its JUnit XML is scored with the
rubric (grading/rubric.toml). Written per submission, under OUT/<name>/:
``results.json`` (Gradescope's format), ``report.html``, ``transcripts/``,
``junit.xml``, ``pytest.log``; for the class: ``summary.csv`` and
``index.html``. Nothing in them depends on the time or the machine, so two
runs with one class seed give the same files.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import HarnessError
from .image import inspect_image
from .prng import MASK64, parse_seed

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RUBRIC = ROOT / "grading" / "rubric.toml"
SUBMISSION_TIMEOUT = 900.0  #: seconds for one submission's whole child pytest (a backstop)
SEED_PROOFS = ("test_seed_proof", "test_el0_seed_proof")  #: tests/scenarios/test_invariants.py
_NEEDS = "not judged: needs"
_CITED = re.compile(r"^>> +(\d+) \|", re.M)


class GradeError(Exception):
    """Bad input to the grade command (one line for the user)."""


# --- the rubric -------------------------------------------------------------

@dataclass(frozen=True)
class ScenarioRubric:
    points: float
    modes: tuple[str, ...]
    rule_sets: tuple[str, ...]
    weights: dict[str, float]


@dataclass(frozen=True)
class Rubric:
    path: Path
    default_weight: float
    scenarios: dict[str, ScenarioRubric]
    weights: dict[str, float] = field(default_factory=dict)  #: rules of every scenario

    def weight(self, scenario: str, test: str) -> float:
        """The weight of ``test`` in ``scenario``."""
        own = self.scenarios[scenario].weights
        return own.get(test, self.weights.get(test, self.default_weight))

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
    scenarios = {}
    for name, entry in data.get("scenarios", {}).items():
        try:
            points = float(entry["points"])
            modes = tuple(entry.get("modes", ["markers", "el0"]))
            rule_sets = tuple(entry.get("rule_sets", ["project", "lesson"]))
            weights = {k: float(v) for k, v in entry.get("weights", {}).items()}
        except (KeyError, TypeError, ValueError) as e:
            raise GradeError(f"--rubric {path}: scenario {name}: {e!r}") from None
        if points < 0 or any(w < 0 for w in weights.values()) or not set(modes) <= {"markers", "el0"}:
            raise GradeError(f"--rubric {path}: scenario {name}: negative points or an unknown mode")
        scenarios[name] = ScenarioRubric(points, modes, rule_sets, weights)
    if not scenarios:
        raise GradeError(f"--rubric {path}: no [scenarios.<name>] table")
    defaults = data.get("defaults", {})
    try:
        common = {k: float(v) for k, v in defaults.get("weights", {}).items()}
        default_weight = float(defaults.get("weight", 1))
    except (TypeError, ValueError) as e:
        raise GradeError(f"--rubric {path}: [defaults]: {e}") from None
    return Rubric(Path(path), default_weight, scenarios, common)


# --- one submission ---------------------------------------------------------

@dataclass(frozen=True)
class Submission:
    name: str
    path: Path
    seed: int
    mode: str  #: "markers" or "el0"


@dataclass
class Rule:
    """One judged rule (a test) of a submission."""

    test: str
    outcome: str  #: passed, failed, needs (skipped for a failed root), error
    weight: float
    message: str = ""


@dataclass
class ScenarioResult:
    name: str
    points: float
    max_points: float
    rules: list[Rule] = field(default_factory=list)
    verdict: str = ""  #: why the scenario scores 0 whatever its rules say


def _verdict_names() -> set[str]:
    """The names of every verdict (HarnessError and its subclasses): a
    failure message that starts with one means the run could not be judged."""
    found, todo = set(), [HarnessError]
    while todo:
        cls = todo.pop()
        found.add(cls.__name__)
        todo += cls.__subclasses__()
    return found


def _templates() -> Any:
    """The report templates in grading/ (Debian's python3-jinja2)."""
    import jinja2
    return jinja2.Environment(loader=jinja2.FileSystemLoader(ROOT / "grading"), autoescape=True)


def submission_seed(class_seed: int, name: str) -> int:
    """The seed of one submission: from the class seed and its name."""
    digest = hashlib.sha256(f"{class_seed}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & MASK64


def _mode(path: Path) -> str:
    if path.is_dir():
        return "el0"
    try:
        note = inspect_image(path, want_mode=None).note
    except HarnessError:
        return "el0"  # judged as it is: the probe names what is wrong
    return "markers" if note is not None and note.mode == "test" else "el0"


def find_submissions(directory: Path, class_seed: int) -> list[Submission]:
    """Every entry of ``directory`` (hidden ones aside), by name."""
    if not directory.is_dir():
        raise GradeError(f"{directory}: not a folder of submissions")
    subs = []
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith("."):
            continue
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", entry.name)
        subs.append(Submission(name, entry.resolve(), submission_seed(class_seed, name), _mode(entry)))
    if not subs:
        raise GradeError(f"{directory}: no submissions in it")
    return subs


def pytest_command(sub: Submission, out: Path, rules: str, unsafe: bool = False) -> list[str]:
    """The child pytest that judges ``sub`` (the same as make check);
    ``unsafe``: --unsafe-no-sandbox (run unjailed where no jail can be made)."""
    target = (["--kernel", str(sub.path)] if sub.mode == "markers"
              else ["--submission", str(sub.path), "--rules", rules, "--port-dir", str(out / "build")])
    return [sys.executable, "-m", "pytest", str(ROOT / "tests" / "scenarios"), "-p", "no:cacheprovider",
            "-p", "no:xdist", "-rfE", "--seed", str(sub.seed), *target,
            "--transcript-dir", str(out / "transcripts"), "--junitxml", str(out / "junit.xml"),
            "-o", "junit_logging=no", *(["--unsafe-no-sandbox"] if unsafe else [])]


def replay_command(sub: Submission, rules: str) -> str:
    """The command that reruns this submission's judging exactly."""
    if sub.mode == "markers":
        return f"make check KERNEL={sub.path} PYTEST_ARGS=\"--seed {sub.seed}\""
    extra = "" if rules == "project" else f" RULES={rules}"
    return f"make check SUBMISSION={sub.path}{extra} PYTEST_ARGS=\"--seed {sub.seed}\""


def _scenario_of(testcase: ET.Element) -> tuple[str, str]:
    """(scenario, test name) of one JUnit testcase."""
    name = testcase.get("name", "")
    module = testcase.get("classname", "").rsplit(".", 1)[-1]
    m = re.fullmatch(r"(\w+)\[(\w+)\]", name)
    if m:
        return m.group(2), m.group(1)
    return module.removeprefix("test_"), name


def score(junit: Path, rubric: Rubric, mode: str, rules: str) -> list[ScenarioResult]:
    """Score one JUnit XML file with the rubric (module docstring of the rubric file)."""
    results = {name: ScenarioResult(name, 0.0, s.points) for name, s in rubric.scenarios.items()
               if rubric.judged(s, mode, rules)}
    for case in ET.parse(junit).getroot().iter("testcase"):
        scenario, test = _scenario_of(case)
        if scenario not in results:
            continue
        weight = rubric.weight(scenario, test)
        failure = case.find("failure") if case.find("failure") is not None else case.find("error")
        skipped = case.find("skipped")
        if failure is not None:
            message = (failure.text or failure.get("message", "")).strip()
            results[scenario].rules.append(Rule(test, "failed", weight, message))
            first = message.split("\n", 1)[0]
            if first.split(":", 1)[0] in _verdict_names() and not results[scenario].verdict:
                results[scenario].verdict = first
            if test in SEED_PROOFS and not results[scenario].verdict:
                results[scenario].verdict = "the seed proof failed: seed-derived values of another run"
        elif skipped is not None:
            message = skipped.get("message", "")
            if _NEEDS in message:
                results[scenario].rules.append(Rule(test, "needs", weight, message))
        else:
            results[scenario].rules.append(Rule(test, "passed", weight))
    for r in results.values():
        judged = sum(rule.weight for rule in r.rules)
        passed = sum(rule.weight for rule in r.rules if rule.outcome == "passed")
        r.points = 0.0 if r.verdict or judged == 0 else round(r.max_points * passed / judged, 2)
        if judged == 0 and not r.verdict:
            r.verdict = "no rule of this scenario was judged"
    return sorted(results.values(), key=lambda r: r.name)


@dataclass
class Graded:
    sub: Submission
    rules: str
    scenarios: list[ScenarioResult]
    problem: str = ""  #: the submission could not be judged at all (build failed, silent...)
    problem_log: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        return round(sum(s.points for s in self.scenarios), 2)

    @property
    def max_score(self) -> float:
        return round(sum(s.max_points for s in self.scenarios), 2)


def grade_one(sub: Submission, out_root: Path, rubric: Rubric, rules: str, unsafe: bool = False) -> Graded:
    """Judge and score one submission; write its files; never raise for the
    submission's own faults (they are its score)."""
    out = out_root / sub.name
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("junit.xml", "results.json"):
        (out / stale).unlink(missing_ok=True)
    try:
        done = subprocess.run(pytest_command(sub, out, rules, unsafe), cwd=ROOT, capture_output=True, text=True,
                              timeout=SUBMISSION_TIMEOUT, stdin=subprocess.DEVNULL,
                              env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        log, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as e:
        log, code = f"{e.stdout or ''}{e.stderr or ''}\njudging took more than {SUBMISSION_TIMEOUT:g} s", -1
    (out / "pytest.log").write_text(log if isinstance(log, str) else log.decode(errors="replace"))
    empty = [ScenarioResult(n, 0.0, s.points) for n, s in sorted(rubric.scenarios.items())
             if rubric.judged(s, sub.mode, rules)]
    if not (out / "junit.xml").exists() or code not in (0, 1):
        errors = [line.removeprefix("ERROR: ") for line in log.splitlines() if line.startswith("ERROR: ")]
        graded = Graded(sub, rules, empty, errors[0] if errors else f"the suite could not run (exit {code})",
                        log.splitlines()[-30:])
    else:
        graded = Graded(sub, rules, score(out / "junit.xml", rubric, sub.mode, rules))
    write_results(graded, out)
    write_report(graded, out)
    return graded


# --- output -----------------------------------------------------------------

def _rule_text(rule: Rule) -> str:
    head = {"failed": "FAILED", "needs": "NOT JUDGED", "passed": "passed"}[rule.outcome]
    return f"{head} {rule.test}\n{rule.message}".rstrip()


def write_results(g: Graded, out: Path) -> None:
    """results.json in the Gradescope autograder format."""
    tests = []
    for s in g.scenarios:
        broken = [r for r in s.rules if r.outcome != "passed"]
        text = [f"verdict: {s.verdict}"] if s.verdict else []
        text += [_rule_text(r) for r in broken] or ["every rule passed"]
        tests.append({"name": s.name, "score": s.points, "max_score": s.max_points,
                      "output": "\n\n".join(text), "visibility": "visible"})
    summary = (f"could not be judged: {g.problem}" if g.problem else
               f"judged {'from kernel markers' if g.sub.mode == 'markers' else 'from EL0 facts'}, "
               f"rule set {g.rules}, seed {g.sub.seed}")
    data = {"score": g.score, "max_score": g.max_score,
            "output": f"{summary}\nreplay: {replay_command(g.sub, g.rules)}",
            "tests": tests}
    (out / "results.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _transcripts(out: Path) -> dict[str, list[str]]:
    files = sorted((out / "transcripts").rglob("*.txt")) if (out / "transcripts").exists() else []
    return {f.name.rsplit("-", 1)[0]: f.read_text(errors="replace").splitlines() for f in files}


def write_report(g: Graded, out: Path) -> None:
    """report.html: the page a student reads (jinja2 template)."""
    env = _templates()
    transcripts = _transcripts(out)
    cited = {s.name: sorted({int(n) for r in s.rules for n in _CITED.findall(r.message)})
             for s in g.scenarios}
    page = env.get_template("report.html.j2").render(
        g=g, replay=replay_command(g.sub, g.rules), transcripts=transcripts, cited=cited)
    (out / "report.html").write_text(page)


def write_class(graded: list[Graded], out: Path) -> None:
    """summary.csv and index.html, one row per student, best first."""
    names = sorted({s.name for g in graded for s in g.scenarios})
    rows = sorted(graded, key=lambda g: (-g.score, g.sub.name))
    with open(out / "summary.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "score", "max_score", "mode", "seed", *names, "problem"])
        for g in rows:
            per = {s.name: s.points for s in g.scenarios}
            w.writerow([g.sub.name, g.score, g.max_score, g.sub.mode, g.sub.seed,
                        *[per.get(n, "") for n in names], g.problem])
    env = _templates()
    (out / "index.html").write_text(env.get_template("index.html.j2").render(rows=rows, names=names))


def load_graded(sub: Submission, out: Path, rules: str) -> Graded | None:
    """A finished submission's results (for --resume and the class files)."""
    path = out / sub.name / "results.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    scenarios = [ScenarioResult(t["name"], t["score"], t["max_score"]) for t in data["tests"]]
    problem = data["output"].split("\n", 1)[0].removeprefix("could not be judged: ")
    return Graded(sub, rules, scenarios, problem if data["output"].startswith("could not") else "")


# --- the command ------------------------------------------------------------

def _shard(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"([1-9][0-9]*)/([1-9][0-9]*)", text)
    if not m or int(m.group(1)) > int(m.group(2)):
        raise argparse.ArgumentTypeError("must be K/N with 1 <= K <= N, e.g. 2/10")
    return int(m.group(1)), int(m.group(2))


def _jobs(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", type=Path, help="folder with one submission per entry (tree or image)")
    p.add_argument("--out", type=Path, required=True, help="where results go")
    p.add_argument("--class-seed", type=parse_seed, default=0, help="seeds are derived from it and "
                   "each submission's name (default 0): same class seed, same results")
    p.add_argument("--rubric", type=Path, default=DEFAULT_RUBRIC, help="points per rule (default: "
                   "grading/rubric.toml)")
    p.add_argument("--rules", choices=("project", "lesson"), default="project",
                   help="rule set for submissions judged from EL0")
    p.add_argument("-j", "--jobs", type=_jobs, default=os.cpu_count() or 1,
                   help="submissions judged at once (default: the cores)")
    p.add_argument("--resume", action="store_true", help="skip submissions that have results.json")
    p.add_argument("--unsafe-no-sandbox", action="store_true", help="where no jail can be made "
                   "(bubblewrap missing, namespaces not allowed), grade unjailed anyway: a hostile "
                   "submission can then reach this machine (without it, each is refused)")
    p.add_argument("--shard", type=_shard, help="K/N: grade only the K-th of N equal shares")


def _progress(done: int, total: int, started: float) -> None:
    elapsed = time.monotonic() - started
    left = elapsed / done * (total - done) if done else 0.0
    print(f"  [{done}/{total} graded, elapsed {elapsed:.0f} s, about {left:.0f} s left]",
          file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """Grade the folder; print one line per submission and the progress."""
    try:
        rubric = load_rubric(args.rubric)
        subs = find_submissions(args.dir, args.class_seed)
    except GradeError as e:
        print(f"grade: {e}", file=sys.stderr)
        return 2
    if args.shard:
        k, n = args.shard
        subs = [s for i, s in enumerate(subs) if i % n == k - 1]
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"grading {len(subs)} submissions of {args.dir} (class seed {args.class_seed}, rule set "
          f"{args.rules}, {args.jobs} at a time) into {args.out}", file=sys.stderr)
    todo = [s for s in subs if not (args.resume and load_graded(s, args.out, args.rules))]
    graded: list[Graded] = []
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(grade_one, s, args.out, rubric, args.rules,
                               args.unsafe_no_sandbox): s for s in todo}
        try:
            for n, fut in enumerate(concurrent.futures.as_completed(futures), 1):
                g = fut.result()
                print(f"{g.sub.name}: {g.score:g}/{g.max_score:g} (seed {g.sub.seed})"
                      + (f": {g.problem}" if g.problem else ""), file=sys.stderr)
                _progress(n, len(todo), started)
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    for s in subs:
        loaded = load_graded(s, args.out, args.rules)
        if loaded is not None:
            graded.append(loaded)
    write_class(graded, args.out)
    print(f"wrote {args.out / 'summary.csv'} and {args.out / 'index.html'}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness grade", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return run(p.parse_args(argv))


__all__ = ["main", "run", "add_arguments", "score", "load_rubric", "submission_seed"]

if __name__ == "__main__":
    sys.exit(main())
