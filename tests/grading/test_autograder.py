"""Grading where students submit (docs/autograder.md): the Gradescope bundle
unpacked into a simulated /autograder grades a correct lesson tree at full
marks and a broken one below, in Gradescope's results format; its setup.sh
names only packages of both Debian 12 and Ubuntu 22.04; `make selfcheck`
prints the autograder's score; ci/classroom.yml reports the rubric's
scenarios."""
from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from harness import grade
from harness.autograder import CONFIG_FILE, classroom_outputs

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 600
CLASS_SEED = 9876543210123456789  #: large, so "printed nowhere" can be checked
VISIBILITIES = {"hidden", "after_due_date", "after_published", "visible"}
FORMATS = {"text", "html", "simple_format", "md", "ansi"}
#: Ubuntu 22.04 (jammy) packages setup.sh may name: from the jammy archive as known
#: (not checkable from this Debian machine; each is also checked against Debian 12 below).
JAMMY = {"make", "patch", "gcc-aarch64-linux-gnu", "binutils-aarch64-linux-gnu", "qemu-system-arm",
         "bubblewrap", "python3", "python3-pip", "python3-pytest", "python3-pexpect", "python3-jinja2",
         "python3-tomli", "git", "ca-certificates"}

needs_tools = pytest.mark.skipif(shutil.which("aarch64-linux-gnu-gcc") is None
                                 or shutil.which("qemu-system-aarch64") is None,
                                 reason="needs the cross compiler and QEMU")


def _unzip(bundle: Path, dst: Path) -> None:
    """Unpack as Gradescope does, keeping the modes the zip records."""
    with zipfile.ZipFile(bundle) as z:
        for info in z.infolist():
            path = Path(z.extract(info, dst))
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                path.chmod(mode)


def _student(dst: Path, tag: int, patch: str | None = None) -> Path:
    grade.honest_copy(ROOT / "fixtures" / "lesson5", dst, tag)
    if patch:
        subprocess.run(["patch", "-s", "-p1", "-i", str(ROOT / "fixtures" / patch)], cwd=dst, check=True)
    return dst


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make autograder` unpacked into a simulated /autograder/source, set up by its setup.sh."""
    made = subprocess.run(["make", "-s", "autograder", f"CLASS_SEED={CLASS_SEED}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert made.returncode == 0, made.stderr
    assert str(CLASS_SEED) not in made.stdout + made.stderr  # the class seed is printed nowhere
    root = tmp_path_factory.mktemp("autograder")
    _unzip(ROOT / "build" / "autograder.zip", root / "source")
    return root


@pytest.fixture(scope="module")
def autograder(bundle: Path) -> Path:
    setup = subprocess.run(["sh", str(bundle / "source" / "setup.sh")], env={"PATH": "/usr/bin:/bin",
                           "KT_SETUP_APT": "0", "HOME": str(bundle)}, capture_output=True, text=True,
                           timeout=TIMEOUT_S)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert "autograde: interpreter" in setup.stdout
    return bundle


def run_autograder(root: Path, submission: Path, **env: str) -> tuple[dict, str]:
    shutil.rmtree(root / "submission", ignore_errors=True)
    shutil.rmtree(root / "results", ignore_errors=True)
    shutil.copytree(submission, root / "submission")
    done = subprocess.run(["sh", str(root / "source" / "run_autograder")],
                          env={"PATH": "/usr/bin:/bin", "AUTOGRADER_ROOT": str(root), "HOME": str(root), **env},
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((root / "results" / "results.json").read_text()), done.stdout


def check_gradescope_spec(r: dict) -> None:
    """The fields Gradescope reads (its autograder specification)."""
    assert isinstance(r["score"], (int, float)) and isinstance(r["max_score"], (int, float))
    assert isinstance(r["execution_time"], int) and r["execution_time"] >= 0
    assert r["output_format"] in FORMATS and r["test_output_format"] in FORMATS
    assert r["stdout_visibility"] in VISIBILITIES and r["visibility"] in VISIBILITIES
    assert isinstance(r["output"], str) and r["output"]
    assert abs(sum(t["score"] for t in r["tests"]) - r["score"]) < 0.05
    assert abs(sum(t["max_score"] for t in r["tests"]) - r["max_score"]) < 0.05
    for t in r["tests"]:
        assert {"name", "score", "max_score", "output", "status", "visibility"} <= set(t), t
        assert t["status"] in ("passed", "failed") and t["visibility"] in VISIBILITIES
        assert t.get("output_format", "md") in FORMATS
        assert 0 <= t["score"] <= t["max_score"]
    json.dumps(r)  # plain JSON


@needs_tools
def test_correct_tree_full_marks_broken_tree_below(autograder: Path, tmp_path: Path) -> None:
    good, log = run_autograder(autograder, _student(tmp_path / "good", 31))
    check_gradescope_spec(good)
    assert good["score"] == good["max_score"] == 90, good["output"]
    assert all(t["status"] == "passed" for t in good["tests"])
    assert good["output_format"] == "md" and "| clone_twice | 20 | 20 |" in good["output"]
    assert str(CLASS_SEED) not in json.dumps(good) and "jailed" in log
    assert good["extra_data"]["kt"]["jailed"] is True

    bad, _ = run_autograder(autograder, _student(tmp_path / "bad", 32, "lesson5-variants/zombie_still_runs.patch"))
    check_gradescope_spec(bad)
    assert 0 < bad["score"] < bad["max_score"] == good["max_score"], bad["output"]
    zombie = next(t for t in bad["tests"] if t["name"] == "exit_zombie")
    assert zombie["status"] == "failed" and "must never return" in zombie["output"]


@needs_tools
def test_where_no_jail_can_be_made(autograder: Path, tmp_path: Path) -> None:
    """In Gradescope's disposable container (run_autograder's --container) a
    submission runs unjailed and the log says so first; without --container
    (a machine the instructor keeps) autograde refuses with one line."""
    tree = _student(tmp_path / "t", 51)
    r, log = run_autograder(autograder, tree, KT_JAIL="off")
    check_gradescope_spec(r)
    assert log.startswith("NOTE: no jail can be made here (jails are turned off (KT_JAIL=off)); running "
                          "unjailed (--unsafe-no-sandbox) because this is a disposable per-submission "
                          "container"), log
    assert r["extra_data"]["kt"]["jailed"] is False and r["score"] == r["max_score"] == 90
    shutil.rmtree(autograder / "results")
    done = subprocess.run([sys.executable, "-m", "harness", "autograde", "--root", str(autograder)],
                          cwd=autograder / "source", env={"PATH": "/usr/bin:/bin", "KT_JAIL": "off"},
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 2 and "student code is not run unjailed" in done.stderr, done.stderr
    assert len(done.stderr.splitlines()) == 1 and not (autograder / "results" / "results.json").exists()


@needs_tools
def test_a_tree_wrapped_in_a_folder_and_nothing_to_grade(autograder: Path, tmp_path: Path) -> None:
    """An upload that put the tree in a folder is found; an empty one scores 0 with the reason."""
    wrapped = tmp_path / "wrapped"
    wrapped.mkdir()
    _student(wrapped / "lesson5", 52, "lesson5-variants/unknown_syscall_hangs.patch")
    (wrapped / "notes.txt").write_text("my notes\n")
    r, _ = run_autograder(autograder, wrapped)
    check_gradescope_spec(r)
    assert r["max_score"] == 90 and 0 < r["score"] < 90 and "no kernel source tree" not in r["output"]
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README").write_text("hello\n")
    empty, _ = run_autograder(autograder, tmp_path / "empty")
    check_gradescope_spec(empty)
    assert empty["score"] == 0 and empty["max_score"] == 90 and "no kernel source tree" in empty["output"]


@needs_tools
def test_selfcheck_prints_the_autograders_score(autograder: Path, tmp_path: Path) -> None:
    """make selfcheck with the bundle's class seed derives the autograder's own seed, so
    even a broken tree gets the very same points; a correct one prints full marks."""
    for tag, patch in ((41, None), (42, "lesson5-variants/zombie_still_runs.patch")):
        tree = _student(tmp_path / f"t{tag}", tag, patch)
        r, _ = run_autograder(autograder, tree)
        out = tmp_path / f"out{tag}"
        gh = tmp_path / f"github_output{tag}"
        done = subprocess.run(["make", "-s", "selfcheck", f"SUBMISSION={tree}",
                               f"SELFCHECK_ARGS=--seed {CLASS_SEED} --out {out} --classroom {gh}"],
                              cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
        assert done.returncode == 0, done.stdout + done.stderr
        m = re.search(r"^score: ([\d.]+)/([\d.]+) ", done.stdout, re.M)
        assert m and (float(m.group(1)), float(m.group(2))) == (r["score"], r["max_score"]), done.stdout
        assert f"seed {r['extra_data']['kt']['seed']}" in done.stdout
        assert f"full report: {out / 'submission' / 'report.html'}" in done.stdout
        for t in r["tests"]:
            assert re.search(rf"^  {t['name']} +{t['score']:g} +{t['max_score']:g}$", done.stdout, re.M), t
        if patch:
            assert "broken: test_el0_exit_never_returns: rule broken: exit: must never return" in done.stdout
        runners = dict(line.split("=", 1) for line in gh.read_text().splitlines())
        decoded = {k: json.loads(base64.b64decode(v)) for k, v in runners.items()}
        assert sum(d["tests"][0]["score"] for d in decoded.values()) == pytest.approx(r["score"])
        assert sum(d["max_score"] for d in decoded.values()) == r["max_score"]


def test_bundle_holds_the_suite_scripts_and_config(bundle: Path) -> None:
    src = bundle / "source"
    for name in ("setup.sh", "run_autograder"):
        assert (src / name).stat().st_mode & 0o111, name
    config = json.loads((src / CONFIG_FILE).read_text())
    assert config["class_seed"] == CLASS_SEED and config["rules"] == "project"
    assert (src / CONFIG_FILE).stat().st_mode & 0o077 == 0  # the class seed: not world-readable
    for needed in ("harness/grade.py", "harness/autograder.py", "tests/scenarios/conftest.py",
                   "grading/rubric.toml", "fixtures/lesson5/Makefile", "Makefile", "kernel/linker.ld"):
        assert (src / needed).is_file(), needed
    with zipfile.ZipFile(ROOT / "build" / "autograder.zip") as z:
        assert not [n for n in z.namelist() if n.startswith(("build/", ".git/"))]


def _setup_packages(setup: Path) -> list[str]:
    m = re.search(r'^PACKAGES="([^"]*)"', setup.read_text(), re.M)
    assert m, "setup.sh has no PACKAGES=\"...\""
    return m.group(1).split()


def test_setup_names_only_packages_of_debian_12_and_ubuntu_22_04(bundle: Path) -> None:
    names = _setup_packages(bundle / "source" / "setup.sh")
    assert {"python3-tomli", "bubblewrap", "qemu-system-arm", "python3-pytest"} <= set(names)
    assert set(names) <= JAMMY, sorted(set(names) - JAMMY)
    if shutil.which("apt-cache") is None or not _debian_candidate("make"):
        pytest.skip("no apt lists here to check the Debian names (apt-get update)")
    missing = [n for n in names if not _debian_candidate(n)]
    assert not missing, f"not in this Debian's archive: {missing}"


def _debian_candidate(name: str) -> bool:
    done = subprocess.run(["apt-cache", "policy", name], capture_output=True, text=True)
    m = re.search(r"Candidate: (\S+)", done.stdout)
    return bool(m) and m.group(1) != "(none)"


def test_classroom_workflow_reports_the_rubrics_scenarios() -> None:
    yaml = pytest.importorskip("yaml")
    flow = yaml.safe_load((ROOT / "ci" / "classroom.yml").read_text())
    rules = flow["env"]["KT_RULES"]
    rubric = grade.load_rubric(grade.DEFAULT_RUBRIC)
    want = sorted(n for n, s in rubric.scenarios.items() if rubric.judged(s, "el0", rules) and s.points > 0)
    (job,) = flow["jobs"].values()
    steps = job["steps"]
    reporter = next(s for s in steps if "autograding-grading-reporter" in s.get("uses", ""))
    runners = reporter["with"]["runners"].split(",")
    assert sorted(runners) == want
    suite = next(s for s in steps if s.get("id") == "suite")
    assert "--classroom \"$GITHUB_OUTPUT\"" in suite["run"] and '--rules "$KT_RULES"' in suite["run"]
    assert reporter["env"] == {f"{r.upper()}_RESULTS": f"${{{{ steps.suite.outputs.{r} }}}}" for r in runners}
    assert any("upload-artifact" in s.get("uses", "") for s in steps)
    install = next(s["run"] for s in steps if "apt-get install" in s.get("run", ""))
    assert set(_setup_packages(ROOT / "ci" / "gradescope" / "setup.sh")) - {"python3-pip"} <= set(install.split())


def test_classroom_outputs_follow_the_reporters_convention() -> None:
    sub = grade.Submission("submission", ROOT, 1, "el0")
    g = grade.Graded(sub, "project", [grade.ScenarioResult("clone_twice", 12.5, 20.0, [
        grade.Rule("test_el0_children_start", "failed", 3, "rule broken: children must start\nmore")]),
        grade.ScenarioResult("fairness", 10.0, 10.0)])
    lines = dict(line.split("=", 1) for line in classroom_outputs(g).splitlines())
    clone = json.loads(base64.b64decode(lines["clone_twice"]))
    assert clone["status"] == "fail" and clone["max_score"] == 20.0 and clone["tests"][0]["score"] == 12.5
    assert "children must start" in clone["tests"][0]["message"] and "more" not in clone["tests"][0]["message"]
    fair = json.loads(base64.b64decode(lines["fairness"]))
    assert fair["status"] == "pass" and fair["tests"][0]["score"] == 10.0
