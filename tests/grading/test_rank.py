"""`python -m harness grade --rules lesson` ranks lesson kernels by
correctness (issue 13 item 4): a kernel that keeps what the lesson teaches
scores full marks, one whose only difference is a contract the lesson does
not teach too, and a kernel with a real bug scores below them.

Both run in `make test`: the course's own tree ticks every 200 ms of guest
time, but its calibrated -icount shift (harness/calibrate.py) makes a slice
cost about as many instructions as the bundled kernel's, so it grades in
seconds, not minutes."""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.grade import honest_copy

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 600
COURSE_TIMEOUT_S = 900

pytestmark = pytest.mark.skipif(shutil.which("aarch64-linux-gnu-gcc") is None
                                or shutil.which("qemu-system-aarch64") is None,
                                reason="needs the cross compiler and QEMU")

def handed_in(klass: Path, fixture: str, variants: str, names: list[str]) -> None:
    """An honest copy of fixtures/<fixture> as `good`, and one per variant
    patch of fixtures/<variants>/ (each its own student)."""
    klass.mkdir()
    honest_copy(ROOT / "fixtures" / fixture, klass / "good", 1)
    for tag, name in enumerate(names, 2):
        tree = honest_copy(ROOT / "fixtures" / fixture, klass / name, tag)
        subprocess.run(["patch", "-s", "-p1", "-i", str(ROOT / "fixtures" / variants / f"{name}.patch")],
                       cwd=tree, check=True)


def grade(klass: Path, out: Path, timeout: float, rules: str = "lesson") -> dict[str, dict[str, str]]:
    """Grade the class with --rules RULES; summary.csv's rows by name."""
    done = subprocess.run([sys.executable, "-m", "harness", "grade", str(klass), "--out", str(out),
                           "--rules", rules, "--class-seed", "13", "-j", "2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = list(csv.DictReader(open(out / "summary.csv", newline="")))
    assert [float(r["percent"]) for r in rows] == sorted((float(r["percent"]) for r in rows), reverse=True)
    return {r["name"]: r for r in rows}


def lost(out: Path, name: str) -> str:
    """What a submission lost, for an assertion message."""
    data = json.loads((out / name / "results.json").read_text())
    return "\n".join(f"{t['name']} {t['score']}/{t['max_score']}: {t['output'][:400]}"
                     for t in data["tests"] if t["score"] != t["max_score"])


def test_lesson_kernels_rank_by_correctness(tmp_path: Path) -> None:
    """fixtures/lesson5, the same with unzeroed pages (what the lesson's
    get_free_page does), and with a bit of x19 flipped on every tick."""
    klass, out = tmp_path / "class", tmp_path / "out"
    handed_in(klass, "lesson5", "lesson5-variants", ["malloc_not_zeroed", "irq_flips_x19"])
    rows = grade(klass, out, TIMEOUT_S)
    for name in ("good", "malloc_not_zeroed"):
        assert (float(rows[name]["percent"]), rows[name]["rules"]) == (100, "lesson"), lost(out, name)
    assert float(rows["irq_flips_x19"]["percent"]) < 100
    assert float(rows["irq_flips_x19"]["regs_preserved"]) < 10, lost(out, "irq_flips_x19")


COURSE_BROKEN = ["kernel_exit_skips_x19", "exit_never_frees"]


@pytest.fixture(scope="module")
def course_class(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fixtures/course-lesson5 and two of its student-style broken versions."""
    klass = tmp_path_factory.mktemp("course") / "class"
    handed_in(klass, "course-lesson5", "course-lesson5-variants", COURSE_BROKEN)
    return klass


def verdicts(out: Path, name: str) -> list[str]:
    """The scenarios of a submission that could not be judged (a verdict), with why."""
    data = json.loads((out / name / "results.json").read_text())
    return [f"{t['name']}: {t['output'][:300]}" for t in data["tests"]
            if "verdict:" in t["output"]]


def test_course_kernels_rank_by_correctness(course_class: Path, tmp_path: Path) -> None:
    """Under the lesson rule set the course's correct kernel scores full marks."""
    out = tmp_path / "out"
    rows = grade(course_class, out, COURSE_TIMEOUT_S)
    assert float(rows["good"]["percent"]) == 100, lost(out, "good")
    for name in COURSE_BROKEN:
        assert float(rows[name]["percent"]) < 100, name


def test_course_kernels_under_the_project_rules(course_class: Path, tmp_path: Path) -> None:
    """Under the project rule set the course kernel loses what the lesson does
    not teach (its hang on an unknown syscall, unzeroed pages), yet every
    scenario is judged (no timeout, no stall on its 200 ms tick) and each
    broken version still ranks below it."""
    out = tmp_path / "out"
    rows = grade(course_class, out, COURSE_TIMEOUT_S, rules="project")
    assert rows["good"]["rules"] == "project"
    assert not verdicts(out, "good"), "\n".join(verdicts(out, "good"))
    for name in COURSE_BROKEN:
        assert float(rows[name]["score"]) < float(rows["good"]["score"]), lost(out, name)
