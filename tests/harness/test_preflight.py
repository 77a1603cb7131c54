"""`grade`, `selfcheck` and `autograde` on a Python that cannot run the suite
(no pytest, no pexpect, pytest too old) stop at once with one line and exit
2 (harness/preflight.py), before anyone is judged or OUT is made; before,
`grade` ran every child pytest, each died, and every student was "not
graded"."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import preflight

ROOT = Path(__file__).resolve().parents[2]


def _fake(tmp: Path, **modules: str) -> dict[str, str]:
    """An environment whose Python finds ``modules`` (name -> source) first."""
    fake = tmp / "fake"
    fake.mkdir(exist_ok=True)
    for name, source in modules.items():
        (fake / f"{name}.py").write_text(source)
    return {**os.environ, "PYTHONPATH": str(fake)}


def _class(tmp: Path) -> Path:
    klass = tmp / "class"
    (klass / "alice").mkdir(parents=True)
    (klass / "alice" / "Makefile").write_text("all:\n")
    return klass


@pytest.mark.parametrize("command", ["grade", "selfcheck", "autograde"])
def test_no_pytest_stops_with_one_line(tmp_path: Path, command: str) -> None:
    env = _fake(tmp_path, pytest='raise ImportError("simulated: no pytest here")\n')
    klass, out = _class(tmp_path), tmp_path / "out"
    argv = {"grade": ["grade", str(klass), "--out", str(out)],
            "selfcheck": ["selfcheck", str(klass / "alice"), "--out", str(out)],
            "autograde": ["autograde", "--root", str(tmp_path)]}[command]
    done = subprocess.run([sys.executable, "-m", "harness", *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "no pytest" in lines[0] and "python3-pytest" in lines[0], done.stderr
    assert f"python -m harness {command}:" in lines[0] and "Traceback" not in done.stderr
    assert not out.exists() and not (tmp_path / "results").exists()


def test_no_pexpect_stops_even_list(tmp_path: Path) -> None:
    env = _fake(tmp_path, pexpect='raise ImportError("simulated: no pexpect here")\n')
    done = subprocess.run([sys.executable, "-m", "harness", "list"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no pexpect" in done.stderr and "python3-pexpect" in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_a_pytest_older_than_7_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight.importlib.metadata, "version", lambda name: "6.2.5")
    found = preflight.problems()
    assert ("pytest 6.2.5 is older than 7.0", "python3-pytest") in found
    assert preflight.problems() != [] and preflight.problems(need_pytest=False) == []


def test_this_python_is_ready() -> None:
    assert preflight.problems() == []


@pytest.mark.skipif(shutil.which("python3", path="/root/.pyenv/shims") is None,
                    reason="no second python3 (pyenv's) here")
def test_another_python_without_pytest(tmp_path: Path) -> None:
    """pyenv's python3 beside Debian's: the line says to use Debian's."""
    other = shutil.which("python3", path="/root/.pyenv/shims")
    probe = subprocess.run([other, "-c", "import pytest"], capture_output=True)
    if probe.returncode == 0:
        pytest.skip("this pyenv python3 has pytest")
    done = subprocess.run([other, "-m", "harness", "grade", str(_class(tmp_path)), "--out",
                           str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "run it with /usr/bin/python3" in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()
