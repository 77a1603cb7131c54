"""Long commands say what they still do, a judging session ends with its
rubric score, `make help` lists the targets, and `grade` on a missing
folder says so (issue 14 item 7)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.grade import junit_records
from harness.progress import _ScoreLine
from harness.ticker import Ticker

ROOT = Path(__file__).resolve().parents[2]

needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-aarch64") is None, reason="needs QEMU")


def test_make_help_lists_every_target() -> None:
    done = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    phony = re.search(r"^\.PHONY:(.*)$", (ROOT / "Makefile").read_text(), re.M)
    assert phony is not None
    listed = set(re.findall(r"^\s+make ([a-z-]+)", done.stdout, re.M))
    assert set(phony.group(1).split()) - {"all", "FORCE"} <= listed, done.stdout
    assert not done.stdout.startswith("#")  # the comment marks are stripped


def test_heartbeat_names_the_test_still_running(tmp_path: Path) -> None:
    (tmp_path / "test_slow.py").write_text("import time\n\ndef test_slow():\n    time.sleep(4)\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "harness.plugin", "-p", "no:cacheprovider",
                           str(tmp_path / "test_slow.py"), "--heartbeat", "1", "-q"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[still running: " in done.stdout and "test_slow.py::test_slow" in done.stdout, done.stdout


def test_ticker_says_what_is_in_flight() -> None:
    said: list[str] = []
    two = threading.Event()

    def say(line: str) -> None:
        said.append(line)
        if len(said) >= 2:
            two.set()

    ticker = Ticker(0.05, say, lambda: "still judging alice").start()
    assert two.wait(30)
    ticker.stop()
    assert said[0].startswith("  [still judging alice; ") and said[0].endswith(" s in]")


JUNIT = """<testsuites><testsuite>
<testcase classname="tests.scenarios.test_fairness" name="test_both_finish"><properties>
<property name="kt_scenario" value="fairness"/><property name="kt_weight" value="1"/>
<property name="kt_outcome" value="passed"/></properties></testcase>
<testcase classname="tests.scenarios.test_fairness" name="test_interleaving"><properties>
<property name="kt_scenario" value="fairness"/><property name="kt_weight" value="1"/>
<property name="kt_outcome" value="failed"/></properties>
<failure message="rule broken: fairness">rule broken: fairness: one task ran alone</failure></testcase>
</testsuite></testsuites>"""


def test_score_line_is_grades_score_of_the_run(tmp_path: Path) -> None:
    (tmp_path / "junit.xml").write_text(JUNIT)
    score_line = _ScoreLine()
    score_line.judged = {j.test: j.props for j in junit_records(tmp_path / "junit.xml")}
    line = score_line.text(SimpleNamespace(stash={}))
    assert line is not None
    m = re.match(r"rubric score: ([\d.]+)/7 \(rule set project; grading/rubric.toml; (\d+) scenario\(s\) not run",
                 line)
    assert m and 0 < float(m.group(1)) < 7, line


@needs_qemu
def test_check_ends_with_the_rubric_score() -> None:
    subprocess.run(["make", "-s", "build/kernel8-test.img"], cwd=ROOT, check=True, timeout=600)
    done = subprocess.run([sys.executable, "-m", "pytest", "tests/scenarios", "-p", "no:cacheprovider",
                           "-p", "no:xdist", "-k", "clone_twice", "-q"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:]
    *_, score, counts = done.stdout.strip().splitlines()  # the score, then pytest's own last line
    assert re.match(r"rubric score: 20/20 \(rule set project; grading/rubric.toml; \d+ scenario\(s\) not run",
                    score), score
    assert " passed" in counts and re.search(r"\bin [0-9.]+s\b", counts), counts
    assert "kt-score-" not in done.stdout  # the temporary JUnit XML is not announced


def test_grade_names_a_missing_folder(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "harness", "grade", str(tmp_path / "submissions"), "--out",
                           str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"grade: {tmp_path / 'submissions'}: no such folder (the folder of submissions is missing)"]
