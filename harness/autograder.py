"""One submission, graded where students submit (docs/autograder.md).

    python -m harness autograde [--root /autograder] [--container] [--check]
    python -m harness selfcheck TREE [--rules lesson] [--out DIR] [--classroom FILE]
    python -m harness.autograder bundle build/autograder.zip [--rules R] [--visibility V]

``autograde`` is Gradescope's ``run_autograder``: it grades
``ROOT/submission/`` as ONE submission through grade.py's own path
(``grade_one``: the same seed derivation, copy check, retries, jail and
rubric as ``python -m harness grade``) and writes ``ROOT/results/results.json``
with the report's text as Markdown. ``selfcheck`` is the same grading for a
student before handing in, printed as a table. ``bundle`` writes the zip an
instructor uploads to Gradescope: this checkout, ``setup.sh``,
``run_autograder`` and ``kt-autograder.json`` (the class seed, rule set and
visibility).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import grade, handin, jail, preflight
from .prng import MASK64, parse_seed
from .text import printable

ROOT = grade.ROOT
CONFIG_FILE = "kt-autograder.json"  #: in the bundle (so /autograder/source/): class seed, rules, visibility
SEED_ENV = "KT_CLASS_SEED"  #: overrides the bundle's class seed
ROOT_ENV = "AUTOGRADER_ROOT"
NAME = "submission"  #: every submission's name in the seed derivation (its content binds the seed)
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
GRADESCOPE = ROOT / "ci" / "gradescope"  #: setup.sh and run_autograder
SELFCHECK_OUT = ROOT / "build" / "selfcheck"
NOT_GRADED_EXIT = 3  #: the grader's own fault twice: no results.json (Gradescope: rerun it)


class AutogradeError(Exception):
    """Bad input or setup (one line for the user)."""


@dataclass(frozen=True)
class Config:
    class_seed: int
    rules: str = "project"
    visibility: str = "visible"
    stdout_visibility: str = "hidden"


def load_config(source: Path) -> Config:
    """The bundle's kt-autograder.json; KT_CLASS_SEED in the environment wins."""
    path = source / CONFIG_FILE
    try:
        data = json.loads(path.read_text()) if path.exists() else {}
        seed_text = os.environ.get(SEED_ENV) or str(data.get("class_seed", ""))
        if not seed_text:
            raise AutogradeError(f"no class seed: {path} has none and {SEED_ENV} is not set "
                                 f"(make autograder writes one)")
        cfg = Config(parse_seed(seed_text), str(data.get("rules", "project")),
                     str(data.get("visibility", "visible")), str(data.get("stdout_visibility", "hidden")))
    except (OSError, ValueError, AttributeError) as e:
        raise AutogradeError(f"{path}: {e}") from None
    if cfg.rules not in ("project", "lesson") or cfg.visibility not in VISIBILITIES \
            or cfg.stdout_visibility not in VISIBILITIES:
        raise AutogradeError(f"{path}: rules must be project or lesson, visibilities one of "
                             f"{', '.join(VISIBILITIES)}")
    return cfg


# --- what was handed in --------------------------------------------------------

def locate(handed_in: Path) -> Path:
    """The tree (a folder with a Makefile) or kernel image in ``handed_in``,
    found as ``grade`` finds a class entry's (harness.handin.resolve_folder:
    single wrapping folders descended into, an image-only folder is its
    image); AutogradeError when it holds neither."""
    path, kind = handin.resolve_folder(handed_in)
    if kind == "image" or (path / "Makefile").is_file() or (path / "makefile").is_file():
        return path
    raise AutogradeError(f"no kernel source tree (a folder with a Makefile) and no single kernel "
                         f"image (*.img) in what was handed in ({handed_in.name}/)")


def _submission(path: Path, class_seed: int) -> grade.Submission:
    content = grade.content_hash(path)
    return grade.Submission(NAME, path.resolve(), grade.submission_seed(class_seed, NAME, content),
                            grade._mode(path), content, "tree" if path.is_dir() else "image")


def grade_single(path: Path, out: Path, class_seed: int, rules: str, unsafe: bool,
                 rubric: Path = grade.DEFAULT_RUBRIC) -> grade.Graded:
    """Grade one submission into ``out/submission/`` exactly as ``grade``
    grades each entry of a class folder (grade.grade_one)."""
    sub = _submission(path, class_seed)
    ctx = grade.Context(out, grade.load_rubric(rubric), rules, grade.known_works(), unsafe=unsafe)
    return grade.grade_one(sub, ctx)


def unjudged(handed_in: Path, rules: str, why: str, rubric: Path = grade.DEFAULT_RUBRIC) -> grade.Graded:
    """0 of the full maximum for what could not even be located."""
    r = grade.load_rubric(rubric)
    sub = grade.Submission(NAME, handed_in, 0, "el0", "", "tree")
    scenarios = [grade.ScenarioResult(n, 0.0, s.points) for n, s in sorted(r.scenarios.items())
                 if r.judged(s, "el0", rules)]
    return grade.Graded(sub, rules, scenarios, why)


# --- what the student reads --------------------------------------------------------

def _fence(text: str) -> str:
    """``text`` as a Markdown code block that nothing in it can close."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    tick = "`" * max(3, longest + 1)
    return f"{tick}\n{text}\n{tick}"


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _head(rule: grade.Rule) -> str:
    """A rule's list, as a student reads it: broken, not judged, not applicable, passed."""
    return rule.kind.replace("_", " ")


def scenario_note(s: grade.ScenarioResult) -> str:
    """One line: why a scenario lost points (empty at full marks)."""
    if s.verdict:
        return printable(s.verdict, 200)
    lists = grade.rule_lists(s)
    bad = lists["broken"] + lists["not_judged"]
    if not bad:
        return ""
    first = bad[0]
    counts = f"{len(lists['broken'])} broken" + (f", {len(lists['not_judged'])} not judged"
                                                  if lists["not_judged"] else "")
    return f"{counts}; first: {first.test}: {printable(_first_line(first.message), 200)}"


def replay(g: grade.Graded, tree: str = "path/to/your/tree") -> str:
    """The command a student runs from the suite's checkout to rerun this grading."""
    rules = "" if g.rules == "project" else f" RULES={g.rules}"
    what = f"KERNEL={tree}" if g.sub.mode == "markers" else f"SUBMISSION={tree}{rules}"
    return f'make check {what} PYTEST_ARGS="--seed {g.sub.seed}"'


def summary_markdown(g: grade.Graded) -> str:
    """The student's view on Gradescope: score, how it was judged, the table."""
    lines = [f"## {g.score:g} / {g.max_score:g}", ""]
    if g.problem:
        lines += [f"**Could not be judged:** {printable(g.problem, 500)}", ""]
        if g.problem_log:
            lines += ["The log's end:", "", _fence("\n".join(g.problem_log)), ""]
    else:
        how = "from kernel markers" if g.sub.mode == "markers" else "from what its user programs observed (EL0)"
        lines += [f"Judged {how}, rule set `{g.rules}`, seed `{g.sub.seed}` (this seed belongs to this "
                  f"exact submission).", ""]
    lines += ["| scenario | points | of | why points were lost |", "|---|--:|--:|---|"]
    for s in g.scenarios:
        lines.append(f"| {s.name} | {s.points:g} | {s.max_points:g} | "
                     f"{scenario_note(s).replace('|', '&#124;')} |")
    if not g.problem:
        lines += ["", "Rerun one grading run on your machine, from the suite's checkout: "
                  f"`{replay(g)}`"]
    return "\n".join(lines) + "\n"


def scenario_markdown(s: grade.ScenarioResult) -> str:
    parts = [f"**verdict:** {printable(s.verdict, 500)}"] if s.verdict else []
    for r in s.rules:
        if r.outcome != "passed":
            parts.append(f"**{_head(r)}:** `{r.test}`\n\n{_fence(r.message)}" if r.message
                         else f"**{_head(r)}:** `{r.test}`")
    return "\n\n".join(parts) or "every rule passed"


def gradescope_results(g: grade.Graded, seconds: float, cfg: Config, jailed: bool = True) -> dict[str, Any]:
    """results.json as Gradescope reads it: grade's own fields (grade.results_data)
    with the student's text as Markdown; ``extra_data.kt.jailed`` says whether
    the submission ran in a jail."""
    data = grade.results_data(g, seconds)
    data["extra_data"]["kt"]["jailed"] = jailed
    data["output"] = summary_markdown(g)
    data["output_format"] = data["test_output_format"] = "md"
    data["visibility"] = cfg.visibility
    data["stdout_visibility"] = cfg.stdout_visibility
    by_name = {s.name: s for s in g.scenarios}
    for t in data["tests"]:
        t["output"] = scenario_markdown(by_name[t["name"]])
        t["output_format"] = "md"
        t["visibility"] = cfg.visibility
    return data


def table_text(g: grade.Graded) -> str:
    """The self-check's table: per scenario, points out of the same maximum
    as the autograder's, and each broken rule's first message."""
    out = [f"  {'scenario':<20} {'points':>7} {'of':>4}"]
    for s in g.scenarios:
        out.append(f"  {s.name:<20} {s.points:>7g} {s.max_points:>4g}")
        if s.verdict:
            out.append(f"      verdict: {printable(s.verdict, 300)}")
        for r in s.rules:
            if r.outcome != "passed":
                out.append(f"      {_head(r)}: {r.test}: {printable(_first_line(r.message), 300)}")
    out.append(f"  {'total':<20} {g.score:>7g} {g.max_score:>4g}")
    return "\n".join(out)


def classroom_outputs(g: grade.Graded) -> str:
    """GitHub Classroom's reporter convention: one runner per scenario, its
    result a base64 JSON ({version, status, max_score, tests[]}) read by
    classroom-resources/autograding-grading-reporter as ``<ID>_RESULTS``.
    Lines ``<scenario>=<base64>`` for $GITHUB_OUTPUT."""
    lines = []
    for s in g.scenarios:
        full = s.points >= s.max_points and not s.verdict
        note = scenario_note(s) or "every rule passed"
        result = {"version": 1, "status": "pass" if full else "fail", "max_score": s.max_points,
                  "tests": [{"name": s.name, "status": "pass" if full else "fail", "score": s.points,
                             "message": note, "line_no": 0, "filename": "", "test_code": "",
                             "execution_time": ""}]}
        lines.append(f"{s.name}={base64.b64encode(json.dumps(result).encode()).decode()}")
    return "\n".join(lines) + "\n"


# --- the commands ------------------------------------------------------------

def _jail_decision(container: bool, unsafe_flag: bool, say: Any,
                   escape: str = "pass --unsafe-no-sandbox") -> bool:
    """True: run unjailed. A jail is always used where one can be made."""
    why = jail.unavailable()
    if why is None:
        return False
    if container:
        say(f"NOTE: no jail can be made here ({why}); running unjailed (--unsafe-no-sandbox) "
            f"because this is a disposable per-submission container (--container)")
        return True
    if unsafe_flag:
        return True
    raise AutogradeError(f"no jail can be made here ({why}): student code is not run unjailed; "
                         f"fix that, or {escape}")


def add_autograde_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", type=Path, default=None, help=f"the autograder's folder (default: "
                   f"${ROOT_ENV}, else /autograder): reads submission/, writes results/results.json")
    p.add_argument("--container", action="store_true", help="this runs in a disposable "
                   "per-submission container (Gradescope's): where no jail can be made, grade "
                   "unjailed and say so (never give this on a machine you keep)")
    p.add_argument("--check", action="store_true", help="only check this interpreter and the "
                   "jail, and say how grading would run (setup.sh)")


def autograde(args: argparse.Namespace) -> int:
    """Gradescope's run_autograder. 0: results.json written; 2: bad setup;
    3: the grader's own fault twice (no results.json: rerun it)."""
    started = time.monotonic()
    preflight.require("autograde")
    root = args.root or Path(os.environ.get(ROOT_ENV) or "/autograder")
    say = lambda line: print(line, flush=True)  # noqa: E731 (stdout: Gradescope keeps it)
    try:
        if args.check:
            why = jail.unavailable()
            say(f"autograde: interpreter {sys.executable} {sys.version.split()[0]}: ready; jail: "
                + ("available" if why is None else f"NOT available ({why}): with --container "
                   "submissions run unjailed in their disposable container"))
            return 0
        cfg = load_config(ROOT)
        unsafe = _jail_decision(args.container, False, say, "pass --container if this is a "
                                "disposable per-submission container (run_autograder does)")
        handed_in = root / "submission"
        results = root / "results"
        results.mkdir(parents=True, exist_ok=True)
        try:
            target = locate(handed_in)
        except AutogradeError as e:
            g = unjudged(handed_in, cfg.rules, str(e))
        else:
            work = root / "kt-work"  # the reports, transcripts and build (Gradescope discards the container)
            shutil.rmtree(work, ignore_errors=True)
            say(f"autograde: grading {target.relative_to(root) if target.is_relative_to(root) else target} "
                f"(rule set {cfg.rules}{', UNJAILED' if unsafe else ', jailed'})")
            g = grade_single(target, work, cfg.class_seed, cfg.rules, unsafe)
            if g.not_graded:
                say(f"autograde: not graded: {g.not_graded} (the grader's fault, not the "
                    f"submission's): rerun the autograder")
                return NOT_GRADED_EXIT
        data = gradescope_results(g, time.monotonic() - started, cfg, jailed=not unsafe)
        grade.write_atomic(results / "results.json", json.dumps(data, indent=2) + "\n")
    except AutogradeError as e:
        print(f"autograde: {e}", file=sys.stderr)
        return 2
    say(f"autograde: {g.score:g}/{g.max_score:g}; wrote {results / 'results.json'}")
    return 0


def add_selfcheck_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("tree", type=Path, help="your kernel's source tree (or image)")
    p.add_argument("--rules", choices=("project", "lesson"), default="project",
                   help="the rule set your course grades with (ask your instructor)")
    p.add_argument("--out", type=Path, default=SELFCHECK_OUT, help=f"where the full report goes "
                   f"(default: {SELFCHECK_OUT.relative_to(ROOT)})")
    p.add_argument("--seed", type=parse_seed, default=None, help="a class seed (default: random; "
                   "the autograder's own is secret, so its seeds differ, but not its maximum)")
    p.add_argument("--unsafe-no-sandbox", action="store_true", help="where no jail can be made, run "
                   "your own code unjailed")
    p.add_argument("--container", action="store_true", help="a disposable CI container: where no "
                   "jail can be made, run unjailed and say so")
    p.add_argument("--classroom", type=Path, help="also append GitHub Classroom's per-scenario "
                   "results to this file ($GITHUB_OUTPUT; ci/classroom.yml)")


def selfcheck(args: argparse.Namespace) -> int:
    """Print what the autograder will give. 0: graded (whatever the score);
    2: bad input; 3: the grader's own fault (run it again)."""
    preflight.require("selfcheck")
    say = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    try:
        if not args.tree.exists():
            raise AutogradeError(f"{args.tree}: no such file or folder")
        unsafe = _jail_decision(args.container, args.unsafe_no_sandbox, say)
        shutil.rmtree(args.out.resolve() / NAME, ignore_errors=True)  # no report of an earlier check
        try:
            target = locate(args.tree)
        except AutogradeError as e:
            g = unjudged(args.tree.resolve(), args.rules, str(e))
        else:
            seed = secrets.randbits(64) if args.seed is None else args.seed & MASK64
            out = args.out.resolve()
            say(f"selfcheck: grading {target} as the autograder does (rule set {args.rules}) ...")
            g = grade_single(target, out, seed, args.rules, unsafe)
            if g.not_graded:
                print(f"selfcheck: not graded: {g.not_graded} (the grader's fault); run it again")
                return 3
    except AutogradeError as e:
        print(f"selfcheck: {e}", file=sys.stderr)
        return 2
    kind = "markers" if g.sub.mode == "markers" else "EL0 facts"
    print(f"selfcheck: {args.tree} judged from {kind}, rule set {args.rules}, seed {g.sub.seed}")
    if g.problem:
        print(f"could not be judged: {printable(g.problem, 500)}")
    print(table_text(g))
    print(f"score: {g.score:g}/{g.max_score:g} (what the autograder gives this tree)")
    report = (args.out / NAME / "report.html").resolve()
    if report.exists():
        print(f"full report: {report}")
    if args.classroom is not None:
        with open(args.classroom, "a") as f:
            f.write(classroom_outputs(g))
    return 0


# --- the Gradescope bundle ------------------------------------------------------

def _suite_files() -> list[str]:
    """This checkout's files (git's tracked and not-ignored ones), no build outputs."""
    try:
        done = subprocess.run(["git", "ls-files", "-z", "-c", "-o", "--exclude-standard"], cwd=ROOT,
                              capture_output=True, check=True)
        names = [n for n in done.stdout.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        names = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
                 if p.is_file() and not {"build", ".git", "__pycache__"} & set(p.relative_to(ROOT).parts)]
    return sorted(n for n in set(names) if (ROOT / n).is_file() and not n.startswith("build/"))


def write_bundle(zip_path: Path, class_seed: int, rules: str, visibility: str) -> int:
    """build/autograder.zip: the suite at the zip's root (it becomes
    /autograder/source), setup.sh and run_autograder beside it, and
    kt-autograder.json (the class seed: keep the zip private). Returns the
    number of files."""
    config = {"class_seed": class_seed, "rules": rules, "visibility": visibility,
              "stdout_visibility": "hidden"}
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = zip_path.with_name(f".{zip_path.name}.{os.getpid()}.tmp")  # two makers never share one
    files = []
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for name in _suite_files():
            src = ROOT / name
            try:
                info = zipfile.ZipInfo.from_file(src, name)
                data = src.read_bytes()
            except FileNotFoundError:  # an untracked file deleted since git listed it
                continue
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
            files.append(name)
        for name in ("setup.sh", "run_autograder"):
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o100755 << 16
            z.writestr(info, (GRADESCOPE / name).read_bytes(), zipfile.ZIP_DEFLATED)
        info = zipfile.ZipInfo(CONFIG_FILE, date_time=(2024, 1, 1, 0, 0, 0))
        info.external_attr = 0o100600 << 16
        z.writestr(info, json.dumps(config, indent=2) + "\n", zipfile.ZIP_DEFLATED)
    os.replace(tmp, zip_path)
    return len(files) + 3


def bundle_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.autograder bundle",
                                description="write the Gradescope autograder zip (docs/autograder.md)")
    p.add_argument("zip", type=Path)
    p.add_argument("--rules", choices=("project", "lesson"), default="project")
    p.add_argument("--visibility", choices=VISIBILITIES, default="visible")
    args = p.parse_args(argv)
    seed_text = os.environ.get(SEED_ENV, "")
    try:
        seed = parse_seed(seed_text) if seed_text else secrets.randbits(64)
    except ValueError:
        print(f"autograder: {SEED_ENV}={seed_text!r} is not a number in 0..2**64-1", file=sys.stderr)
        return 2
    n = write_bundle(args.zip, seed, args.rules, args.visibility)
    print(f"wrote {args.zip} ({n} files; rule set {args.rules}, visibility {args.visibility}, class seed "
          f"{'from ' + SEED_ENV if seed_text else 'random'}, kept inside it: keep the zip private)")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["bundle"]:
        sys.exit(bundle_main(sys.argv[2:]))
    print("usage: python -m harness.autograder bundle ZIP [--rules R] [--visibility V]", file=sys.stderr)
    sys.exit(2)
