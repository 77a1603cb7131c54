"""The grader under faults that are not the student's (docs/grading.md,
"When the grader fails"), and what it refuses to grade as a student's work:
a QEMU killed from outside, Ctrl-C then --resume, a full OUT disk, a kernel
that fakes a signal death, console lines holding CR/FF/NUL/ESC, copies of
the project's images and fixtures, identical classmates, seeds bound to the
class seed and the content. Real grading runs (small classes, -j 2)."""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from harness.grade import content_hash, find_submissions, honest_copy

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 600
TEST_IMAGE = ROOT / "build" / "kernel8-test.img"
CTRL_IMAGE = ROOT / "build" / "bad-images" / "ctrl_line.img"
RAW = (b"\x00", b"\x1b", b"\x0c")  #: never raw in a text file the grader writes

pytestmark = pytest.mark.skipif(shutil.which("aarch64-linux-gnu-gcc") is None
                                or shutil.which("qemu-system-aarch64") is None,
                                reason="needs the cross compiler and QEMU")


@pytest.fixture(scope="module", autouse=True)
def built() -> None:
    subprocess.run(["make", "-s", "build/kernel8-test.img", "build/kernel8.img", "build/kt-user.o"],
                   cwd=ROOT, check=True)
    subprocess.run(["make", "-s", "-C", "fixtures/images"], cwd=ROOT, check=True)


def honest_image(dst: Path, tag: int) -> Path:
    """The bundled test image with ``tag`` appended: boots the same, but is
    not a byte-for-byte copy of the project's (an honest student)."""
    return honest_copy(TEST_IMAGE, dst, tag)


def honest_tree(dst: Path, tag: int = 0) -> Path:
    """fixtures/lesson5 with one comment line added (an honest student)."""
    return honest_copy(ROOT / "fixtures" / "lesson5", dst, tag)


def grade(klass: Path, out: Path, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "harness", "grade", str(klass), "--out", str(out), "-j", "2",
                           *extra], cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def results(out: Path, name: str) -> dict:
    return json.loads((out / name / "results.json").read_text())


def assert_full_marks(out: Path, names: list[str]) -> None:
    for name in names:
        r = results(out, name)
        assert r["score"] == r["max_score"] > 0, (name, r["output"])


def assert_nothing_partial(out: Path) -> None:
    """No temporary file, no grading in progress, every results.json whole."""
    assert not [p for p in out.rglob("*.tmp")], sorted(out.rglob("*.tmp"))
    assert not list(out.glob("*/.staging")), list(out.glob("*/.staging"))
    for path in out.glob("*/results.json"):
        data = json.loads(path.read_text())
        assert data["tests"] and "kt" in data["extra_data"], path


def _cmdline(pid: int | str) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(k) for k in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return kids


def _is_qemu(argv: list[str]) -> bool:
    """QEMU itself, bare or jailed (where it is /usr/bin/qemu-system-* or
    /qemu and its image /kernel8.img), not the bwrap that runs it."""
    return bool(argv) and Path(argv[0]).name.startswith("qemu")


def _graders_of(marker: str) -> list[int]:
    """The child pytests judging a submission whose path holds ``marker``
    (the grader passes it on their command lines; a jailed QEMU's own
    command line names only /kernel8.img)."""
    return [int(p.name) for p in Path("/proc").glob("[0-9]*")
            if any(marker in a for a in _cmdline(p.name)) and "pytest" in _cmdline(p.name)]


def _qemus_under(pid: int) -> list[int]:
    """Every QEMU descending from ``pid`` (through bwrap, if jailed)."""
    found, todo, seen = [], [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        if p != pid and _is_qemu(_cmdline(p)):
            found.append(p)
        todo += _children(p)
    return found


def assert_no_qemu_of(path: Path) -> None:
    """No child pytest judging anything under ``path`` is left, nor a QEMU
    under one, nor a bare QEMU naming ``path``."""
    left = _graders_of(str(path))
    assert not left, [_cmdline(p) for p in left]
    for proc in Path("/proc").glob("[0-9]*"):
        argv = _cmdline(proc.name)
        assert not (_is_qemu(argv) and any(str(path) in a for a in argv)), argv


# --- faults of the grader ---------------------------------------------------

def _kill_first_qemu(marker: str, stop: threading.Event, killed: list[int]) -> None:
    """Kill (SIGKILL) a scenario run's QEMU for the submission whose path
    holds ``marker``: found under its child pytest, jailed or not. The first
    QEMU seen is spared: it may be the boot that reads the kernel's tick
    rate (harness.plugin), which retries a boot cut from outside itself."""
    seen: set[int] = set()
    while not stop.is_set() and not killed:
        for grader in _graders_of(marker):
            for pid in _qemus_under(grader):
                seen.add(pid)
                if len(seen) < 2 or pid == min(seen):
                    continue
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
                killed.append(pid)
                return
        time.sleep(0.01)


def test_a_qemu_killed_from_outside_is_retried_not_charged(tmp_path: Path) -> None:
    """Outside SIGKILL of one QEMU mid-class: the victim is retried and ends
    at full marks like every honest classmate. Two identical students get a
    note in both reports and summary.csv, their scores unchanged."""
    klass, out = tmp_path / "class", tmp_path / "out"
    klass.mkdir()
    victim = f"victim-{uuid.uuid4().hex[:8]}.img"
    honest_image(klass / "alice.img", 1)
    honest_image(klass / "twin.img", 1)
    honest_image(klass / victim, 2)
    honest_tree(klass / "bob")
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_first_qemu, args=(victim, stop, killed), daemon=True)
    killer.start()
    try:
        done = grade(klass, out)
    finally:
        stop.set()
        killer.join()
    assert killed, "the victim's QEMU was never seen"
    assert f"{victim}: infrastructure fault" in done.stderr and "retrying once" in done.stderr, done.stderr
    assert_full_marks(out, ["alice.img", "twin.img", victim, "bob"])
    rows = {r["name"]: r for r in csv.DictReader(open(out / "summary.csv"))}
    assert rows["alice.img"]["identical_to"] == "twin.img" and rows["twin.img"]["identical_to"] == "alice.img"
    assert rows["bob"]["identical_to"] == "" and rows[victim]["problem"] == ""
    for name in ("alice.img", "twin.img"):
        assert "identical to" in (out / name / "report.html").read_text()
    assert_nothing_partial(out)
    assert_no_qemu_of(klass)


def test_ctrl_c_mid_class_then_resume_finishes_what_is_missing(tmp_path: Path) -> None:
    klass, out = tmp_path / "class", tmp_path / "out"
    klass.mkdir()
    names = [honest_image(klass / f"s{i}.img", i).name for i in range(1, 4)] + [honest_tree(klass / "tree").name]
    # its own session, as a shell's job: the Ctrl-C below goes to its whole process group, as a
    # terminal's does; the child pytests, in sessions of their own, must not see it
    proc = subprocess.Popen([sys.executable, "-m", "harness", "grade", str(klass), "--out", str(out), "-j", "2"],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True, start_new_session=True)
    log = []
    assert proc.stderr is not None
    for line in proc.stderr:  # Ctrl-C once the first submission is graded: others are in flight
        log.append(line)
        if re.match(r"\S+: \d+(\.\d+)?/\d+", line):
            os.killpg(proc.pid, signal.SIGINT)
            break
    log += proc.stderr.readlines()
    code = proc.wait(timeout=60)
    text = "".join(log)
    assert code == 130, text
    assert "Traceback" not in text, text
    m = re.search(r"^interrupted: (\d+) graded, (\d+) left; rerun with --resume$", text, re.M)
    assert m and int(m.group(1)) + int(m.group(2)) == 4 and int(m.group(2)) >= 1, text
    assert_nothing_partial(out)
    assert_no_qemu_of(klass)
    assert len(list(out.glob("*/results.json"))) == int(m.group(1))
    again = grade(klass, out, "--resume")
    regraded = re.findall(r"^(\S+): \d+(?:\.\d+)?/\d+", again.stderr, re.M)
    assert len(regraded) == int(m.group(2)), again.stderr  # exactly what was missing
    assert_full_marks(out, names)
    assert_nothing_partial(out)


def _can_mount() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_mount(), reason="needs root and unshare --mount for a small tmpfs OUT")
def test_a_full_out_disk_is_one_clear_error_then_resume_completes(tmp_path: Path) -> None:
    """OUT on a 1.2 MB tmpfs (one graded image takes about 0.7 MB): the run
    stops with one line, nothing half-written; --resume on a bigger disk
    then completes with every student at full marks."""
    klass, small, big = tmp_path / "class", tmp_path / "small", tmp_path / "big"
    for d in (klass, small, big):
        d.mkdir()
    names = [honest_image(klass / f"s{i}.img", i).name for i in range(1, 4)]
    script = (f'mount -t tmpfs -o size=1200k tmpfs "{small}" && '
              f'"{sys.executable}" -m harness grade "{klass}" --out "{small}" -j 2; '
              f'echo "grade-exit=$?" >&2; cp -a "{small}/." "{big}/"')
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script], cwd=ROOT,
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    code = int(re.search(r"grade-exit=(\d+)", done.stderr).group(1))
    assert code == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if "no space left on device" in line]
    assert errors and errors[0].startswith("grade: OUT: no space left on device while writing "), done.stderr
    assert "rerun with --resume" in errors[0]
    assert not (big / "summary.csv").exists()  # the run stopped: no class file from it
    assert_nothing_partial(big)
    assert len(list(big.glob("*/results.json"))) < len(names)
    grade(klass, big, "--resume")
    assert_full_marks(big, names)
    assert_nothing_partial(big)


# --- what is not graded as the student's work, and what a report shows ----------

ODD = pytest.mark.xdist_group("grade_odd_class")  #: one worker builds the class, its tests run in order


@pytest.fixture(scope="module")
def odd_class(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """Copies of the project's work (not run), and a kernel printing a
    line with CR/FF/NUL/ESC that then kills its own QEMU (run twice)."""
    base = tmp_path_factory.mktemp("odd")
    klass, out = base / "class", base / "out"
    klass.mkdir()
    (klass / "ctrl.img").write_bytes(CTRL_IMAGE.read_bytes() + b"\0")
    shutil.copy(TEST_IMAGE, klass / "project.img")
    shutil.copy(ROOT / "build" / "kernel8.img", klass / "demo.img")
    shutil.copy(ROOT / "build" / "bad-images" / "silent.img", klass / "silent.img")
    shutil.copytree(ROOT / "fixtures" / "lesson5", klass / "lesson5")
    done = grade(klass, out)
    return klass, out, done.stderr


@ODD
def test_copies_of_the_project_and_fixtures_score_zero_unrun(odd_class) -> None:
    _, out, _ = odd_class
    expected = {"project.img": "the project's test image build/kernel8-test.img",
                "demo.img": "the project's demo image build/kernel8.img",
                "silent.img": "the fixture build/bad-images/silent.img",
                "lesson5": "the fixture tree fixtures/lesson5"}
    rows = {r["name"]: r for r in csv.DictReader(open(out / "summary.csv"))}
    for name, what in expected.items():
        r = results(out, name)
        assert r["score"] == 0 and r["max_score"] > 0, r
        line = f"not the student's work: identical to {what}"
        assert line in r["output"].split("\n")[0], r["output"]
        assert rows[name]["problem"] == line
        assert line in (out / name / "report.html").read_text().replace("&#39;", "'")
        assert not (out / name / "transcripts").exists()  # never run


@ODD
def test_a_repeated_signal_death_is_the_kernels_own_doing(odd_class) -> None:
    """ctrl_line.img kills its own QEMU at the same console line each time:
    retried once, then judged KernelDied (0), and the submission is graded."""
    _, out, log = odd_class
    assert "ctrl.img: infrastructure fault" in log and "retrying once" in log, log
    r = results(out, "ctrl.img")
    assert r["score"] == 0
    for t in r["tests"]:
        assert t["output"].startswith("verdict: KernelDied: ") and "the kernel caused it" in t["output"], t
        assert "after console line 3: 'third line'" in t["output"], t


@ODD
def test_report_lines_are_console_lines_with_every_control_byte_escaped(odd_class) -> None:
    _, out, _ = odd_class
    transcript = next((out / "ctrl.img" / "transcripts").rglob("clone_twice-*.txt")).read_bytes()
    assert transcript.split(b"\n")[1] == b"A\rB\x0cC\x00D\x1b[2JE"  # the evidence stays exact
    page = (out / "ctrl.img" / "report.html").read_text()
    assert "    1 | first line\n    2 | A\\x0dB\\x0cC\\x00D\\x1b[2JE\n    3 | third line" in page, page[:3000]
    for path in out.rglob("*"):
        if path.is_file() and "transcripts" not in path.parts:
            data = path.read_bytes()
            assert not [b for b in RAW if b in data], (path, [b for b in RAW if b in data])
    for row in csv.DictReader(open(out / "summary.csv", newline="")):
        assert not any("\r" in v or "\n" in v for v in row.values()), row


@ODD
def test_resume_refuses_another_class_seed_or_rule_set(odd_class) -> None:
    klass, out, _ = odd_class
    seed = json.loads((out / "grading.json").read_text())["class_seed"]
    for extra, why in ((["--class-seed", str(seed ^ 1)], "another class seed"),
                       (["--rules", "lesson"], "rule set project, not lesson")):
        done = grade(klass, out, "--resume", *extra, check=False)
        assert done.returncode == 2 and why in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert json.loads((out / "grading.json").read_text())["class_seed"] == seed


@ODD
def test_resume_regrades_a_damaged_or_foreign_results_file(odd_class) -> None:
    klass, out, _ = odd_class
    good = (out / "demo.img" / "results.json").read_text()
    (out / "demo.img" / "results.json").write_text(good[:len(good) // 2])  # truncated
    foreign = json.loads((out / "project.img" / "results.json").read_text())
    foreign["extra_data"]["kt"]["seed"] += 1  # another class seed's
    (out / "project.img" / "results.json").write_text(json.dumps(foreign))
    done = grade(klass, out, "--resume")
    regraded = sorted(re.findall(r"^(\S+): \d+(?:\.\d+)?/\d+", done.stderr, re.M))
    assert regraded == ["demo.img", "project.img"], done.stderr
    assert (out / "demo.img" / "results.json").read_text() == good
    assert_nothing_partial(out)


def test_trees_only_rejects_an_image(tmp_path: Path) -> None:
    klass, out = tmp_path / "class", tmp_path / "out"
    klass.mkdir()
    honest_image(klass / "alice.img", 7)
    grade(klass, out, "--trees-only")
    r = results(out, "alice.img")
    assert r["score"] == 0 and "not a source tree" in r["output"] and "--trees-only" in r["output"]


# --- seeds ------------------------------------------------------------------

def test_seeds_follow_the_class_seed_and_the_content(tmp_path: Path) -> None:
    klass = tmp_path / "class"
    klass.mkdir()
    tree = honest_tree(klass / "bob")
    honest_image(klass / "alice.img", 3)
    before = {s.name: s.seed for s in find_submissions(klass, 5)}
    assert before == {s.name: s.seed for s in find_submissions(klass, 5)}  # stable
    assert before["bob"] != {s.name: s.seed for s in find_submissions(klass, 6)}["bob"]
    # build outputs (what the port leaves out of its copy) do not change a tree's content
    hashed = content_hash(tree)
    (tree / "build").mkdir()
    (tree / "build" / "kernel8.elf").write_bytes(b"\x7fELF")
    (tree / "src" / "kernel.o").write_bytes(b"obj")
    (tree / "kernel8.img").write_bytes(b"img")
    assert content_hash(tree) == hashed
    with open(tree / "src" / "kernel.c", "a") as f:  # a resubmission: one changed comment
        f.write("/* second try */\n")
    after = {s.name: s.seed for s in find_submissions(klass, 5)}
    assert after["bob"] != before["bob"] and after["alice.img"] == before["alice.img"]
    (tree / "src" / "kernel.c").rename(tree / "src" / "kernel2.c")  # a renamed file is new content too
    assert content_hash(tree) != hashed


@ODD
def test_no_report_prints_the_class_seed(odd_class) -> None:
    klass, out, log = odd_class
    seed = str(json.loads((out / "grading.json").read_text())["class_seed"])
    assert seed not in log
    for path in out.rglob("*"):
        if path.is_file() and path.name != "grading.json":
            assert seed.encode() not in path.read_bytes(), path
