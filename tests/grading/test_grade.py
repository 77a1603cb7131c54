"""`python -m harness grade` over a small class (docs/grading.md): the right
score for each kind of submission, the correct kernels first, a replaying
forger 0 for every scenario it forged, byte-identical results on a rerun,
Gradescope's format, and no QEMU left behind."""
from __future__ import annotations

import csv
import difflib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 600

pytestmark = pytest.mark.skipif(shutil.which("aarch64-linux-gnu-gcc") is None
                                or shutil.which("qemu-system-aarch64") is None,
                                reason="needs the cross compiler and QEMU")


def _tree(src: Path, dst: Path, patch: str | None = None) -> None:
    """A copy of ``src`` with ``patch`` (under fixtures/) applied, and a
    comment naming the student: an exact copy of a fixture is not a
    student's work (it scores 0: tests/grading/test_grade_faults.py)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("build", "kernel8.img"))
    if patch:
        subprocess.run(["patch", "-s", "-p1", "-i", str(ROOT / "fixtures" / patch)], cwd=dst, check=True)
    with open(dst / "src" / "kernel.c", "a") as f:
        f.write(f"\n/* handed in by {dst.name} */\n")


def _image(src: Path, dst: Path) -> None:
    """A copy of the image ``src`` with one byte appended (past its end: it
    boots the same), so it is not a byte-for-byte copy of the project's."""
    dst.write_bytes(src.read_bytes() + b"\0")


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    """A class folder graded twice into one OUT (the second run's files kept)."""
    base = tmp_path_factory.mktemp("class")
    klass, out = base / "class", base / "out"
    klass.mkdir()
    subprocess.run(["make", "-s", "build/kernel8-test.img", "build/kt-user.o"], cwd=ROOT, check=True)
    subprocess.run(["make", "-s", "-C", "fixtures/images"], cwd=ROOT, check=True)
    _image(ROOT / "build" / "kernel8-test.img", klass / "bundled.img")
    _image(ROOT / "build" / "bad-images" / "silent.img", klass / "silent.img")
    _tree(ROOT / "fixtures" / "lesson5", klass / "lesson")
    _tree(ROOT / "fixtures" / "lesson5", klass / "zombie", "lesson5-variants/zombie_still_runs.patch")
    _tree(ROOT / "fixtures" / "lesson5", klass / "hangs", "lesson5-variants/unknown_syscall_hangs.patch")
    _tree(ROOT / "fixtures" / "lesson5", klass / "forger", "forger.patch")
    _tree(ROOT / "fixtures" / "lesson5", klass / "nobuild")
    with open(klass / "nobuild" / "src" / "kernel.c", "a") as f:
        f.write("\nint broken = ;\n")
    cmd = [sys.executable, "-m", "harness", "grade", str(klass), "--out", str(out), "--class-seed", "11",
           "-j", "2"]
    first = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert first.returncode == 0, first.stderr
    before = {p.parent.name: p.read_bytes() for p in out.glob("*/results.json")}
    second = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert second.returncode == 0, second.stderr
    after = {p.parent.name: p.read_bytes() for p in out.glob("*/results.json")}
    changed = sorted(n for n in before if before[n] != after.get(n))
    assert not changed and before.keys() == after.keys(), (
        "two runs with one class seed gave different results.json files:\n" + "\n".join(
            difflib.unified_diff(before[changed[0]].decode().splitlines(),
                                 after[changed[0]].decode().splitlines(), lineterm="")) if changed else "")
    return klass, out, second.stderr.splitlines()


def results(out: Path, name: str) -> dict:
    return json.loads((out / name / "results.json").read_text())


def test_correct_kernels_score_full_marks_and_rank_first(graded) -> None:
    _, out, _ = graded
    for name in ("bundled.img", "lesson"):
        r = results(out, name)
        assert r["score"] == r["max_score"] > 0, (name, r["output"])
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert {rows[0]["name"], rows[1]["name"]} == {"bundled.img", "lesson"}
    assert [float(r["score"]) for r in rows] == sorted((float(r["score"]) for r in rows), reverse=True)


def test_broken_kernels_lose_the_scenario_they_break(graded) -> None:
    _, out, _ = graded
    per = {name: {t["name"]: t for t in results(out, name)["tests"]} for name in ("zombie", "hangs")}
    assert per["zombie"]["exit_zombie"]["score"] < per["zombie"]["exit_zombie"]["max_score"]
    assert "exit: must never return" in per["zombie"]["exit_zombie"]["output"]
    assert per["zombie"]["fairness"]["score"] == per["zombie"]["fairness"]["max_score"]
    # it keeps only the rules judged before its first unknown number (w8 alone names the
    # call, the result comes back in x0): the root rule and all that needs it are lost
    hangs = per["hangs"]["invalid_syscall"]
    assert hangs["score"] < hangs["max_score"] / 2, hangs
    assert "must get control back after svc" in per["hangs"]["invalid_syscall"]["output"]
    assert 0 < results(out, "hangs")["score"] < results(out, "lesson")["score"]


def test_forger_scores_zero_for_every_scenario_it_forged(graded) -> None:
    _, out, _ = graded
    r = results(out, "forger")
    assert r["score"] == 0
    forged = set(re.findall(r"scenario=(\w+) seed=42", (ROOT / "fixtures" / "forger.patch").read_text()))
    for t in r["tests"]:
        # its lines carry seed 42's tags: the parser refuses the run (docs/protocol.md, "Line tags");
        # a forger that re-tagged them would still fail the seed proof; a scenario it holds no
        # recording of (one added since) it cannot answer at all
        why = (("belongs to another run", "not written by this run", "seed proof") if t["name"] in forged
               else ("KernelSilent",))
        assert t["score"] == 0 and any(w in t["output"] for w in why), t


def test_unjudgeable_submissions_score_zero_with_the_reason(graded) -> None:
    _, out, _ = graded
    nobuild, silent = results(out, "nobuild"), results(out, "silent.img")
    assert nobuild["score"] == 0 and "build failed" in nobuild["output"]
    assert nobuild["max_score"] == results(out, "lesson")["max_score"]
    assert silent["score"] == 0 and "could not be judged" in silent["output"]
    report = (out / "nobuild" / "report.html").read_text()
    assert "error: expected expression" in report  # the build log's tail


def test_results_follow_the_gradescope_format(graded) -> None:
    _, out, _ = graded
    for path in out.glob("*/results.json"):
        r = json.loads(path.read_text())
        assert isinstance(r["score"], (int, float)) and isinstance(r["max_score"], (int, float))
        assert r["output_format"] == r["test_output_format"] == "text" and r["stdout_visibility"] == "hidden"
        assert "execution_time" not in r  # it would break the byte-identical rerun
        assert abs(sum(t["score"] for t in r["tests"]) - r["score"]) < 0.05
        for t in r["tests"]:
            assert set(t) == {"name", "score", "max_score", "output", "visibility", "status"}
            clean = not r["extra_data"]["kt"]["problem"] and not re.search(r"^(BROKEN|NOT JUDGED) ", t["output"], re.M)
            assert t["status"] == ("passed" if t["score"] == t["max_score"] and clean else "failed"), t
            assert t["visibility"] in ("visible", "hidden", "after_due_date", "after_published")
            assert 0 <= t["score"] <= t["max_score"]


def test_reports_cite_lines_and_replay_with_the_kernel(graded) -> None:
    klass, out, _ = graded
    page = (out / "zombie" / "report.html").read_text()
    assert "SUBMISSION=path/to/your/tree" in page and "--seed" in page
    assert str(klass) not in page and str(out) not in page  # the student's paths, not the grader's
    assert 'class="hit"' in page  # a cited transcript line is highlighted
    assert any((out / "zombie" / "transcripts").rglob("exit_zombie-*.txt"))
    assert "report.html" in (out / "index.html").read_text()


def test_progress_and_no_qemu_left(graded) -> None:
    _, out, log = graded
    assert any("graded" in line and "left" in line for line in log)
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().decode(errors="replace")
        except OSError:
            continue
        assert not ("qemu-system" in text and str(out.parent) in text), text


def test_class_page_matches_the_results(graded) -> None:
    """index.html's histogram and per-rule counts are those of the class's results.json files."""
    _, out, _ = graded
    page = (out / "index.html").read_text()
    bars = {int(lo): int(n) for lo, n in re.findall(r'data-low="(\d+)" data-high="\d+" data-count="(\d+)"', page)}
    shown = {(s, t): int(b) for s, t, b in re.findall(
        r'data-scenario="([^"]*)" data-rule="([^"]*)" data-broken="(\d+)"', page)}
    want_bars = dict.fromkeys(range(0, 100, 10), 0)
    broken: dict[tuple[str, str], int] = {}
    for path in out.glob("*/results.json"):
        r = json.loads(path.read_text())
        want_bars[min(90, int(100 * r["score"] / r["max_score"] // 10 * 10))] += 1
        if r["extra_data"]["kt"]["problem"]:
            continue
        for scenario, lists in r["extra_data"]["kt"]["rule_lists"].items():
            for test in lists["broken"]:
                broken[(scenario, test)] = broken.get((scenario, test), 0) + 1
    assert bars == want_bars
    assert {k: v for k, v in shown.items() if v} == broken and broken  # the zombie and the hang broke rules
    assert any(scenario == "exit_zombie" for scenario, _ in broken)
    assert 'data-unjudged="nobuild"' in page and "its build failed" in page
    assert (out / "gradebook.csv").read_text().startswith("Student,Kernel,Kernel (percent)")
