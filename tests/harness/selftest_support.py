"""Helpers the harness's own tests import (fixtures live in conftest.py).

A separate module, not conftest.py: when tests/ runs as a whole, more than
one conftest.py is imported under the name ``conftest``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRANSCRIPTS = ROOT / "fixtures" / "transcripts"
FAKE_QEMU = Path(__file__).with_name("fake_qemu.py")
MINI_NOTE = b"KTIMAGE proto=2 console=mini mode=test"
B_SELF = (0x14000000).to_bytes(4, "little")  # AArch64 `b .`


HAND = TRANSCRIPTS / "hand_clone_twice_42.txt"  #: a hand-written good run


def proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state, ppid,
    ...), or None if there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # it exited while we looked
        return None


def children() -> list[int]:
    """Pids of this process's children, zombies included (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = proc_stat(int(entry.name))
            if stat is not None and int(stat[1]) == os.getpid():
                found.append(int(entry.name))
    return found


def gone(pid: int) -> bool:
    """True if ``pid`` neither runs nor waits to be reaped."""
    return not Path(f"/proc/{pid}").exists()


def ended(pid: int) -> bool:
    """True if ``pid`` is gone or a zombie: an orphan's reaping is init's job."""
    stat = proc_stat(pid)
    return stat is None or stat[0] == "Z"


@dataclass
class FakeQemu:
    """The fake QEMU of one test: ``path`` is the executable to run."""

    path: Path
    dir: Path
    monkeypatch: pytest.MonkeyPatch

    def configure(self, mode: str = "replay", transcript: str = "hand_clone_twice_42.txt",
                  exit_status: int = 0) -> FakeQemu:
        self.monkeypatch.setenv("FAKE_QEMU_MODE", mode)
        self.monkeypatch.setenv("FAKE_QEMU_TRANSCRIPT", str(TRANSCRIPTS / transcript))
        self.monkeypatch.setenv("FAKE_QEMU_EXIT", str(exit_status))
        return self

    def pid(self) -> int:
        return int((self.dir / "pid").read_text())

    def argv(self) -> list[str]:
        return json.loads((self.dir / "argv").read_text())

    def boots(self) -> int:
        log = self.dir / "boots"
        return len(log.read_text().splitlines()) if log.exists() else 0


T = TypeVar("T")


def wait_for(what: Callable[[], T], within: float, step: float = 0.02) -> T:
    """Poll ``what()`` until it is true (returned) or ``within`` seconds pass
    (its last, false value returned)."""
    deadline = time.monotonic() + within
    while not (found := what()) and time.monotonic() < deadline:
        time.sleep(step)
    return found


def fake_qemus(image: Path) -> list[int]:
    """Pids of the running fake QEMUs (or the shell about to exec one) that
    boot ``image``: a test's own image path tells its QEMUs from those of
    tests running beside it. Zombies have no command line: not listed."""
    wanted = b"\0-kernel\0" + os.fsencode(image) + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:  # it exited while we looked
                continue
            if wanted in cmdline:
                found.append(int(entry.name))
    return found


def _default_sigint() -> None:
    """In the child, before exec: SIGINT back to its default. An xdist worker
    ignores SIGINT, and a Python started with SIGINT ignored installs no
    KeyboardInterrupt handler, so a session started from a worker would
    never see the Ctrl-C a test sends it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def scenario_session(fake: FakeQemu, image: Path, out: Path, *args: str) -> subprocess.Popen[bytes]:
    """A child ``pytest`` over ``args`` (scenario test files and options)
    judging ``image`` with the fake QEMU, in a session and process group of
    its own, as a terminal runs it (its pgid is its pid); its output goes to
    ``out`` (a pipe nobody reads could fill and stall it). The caller ends it
    with ``stop_session`` in a ``finally``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST_", "PYTEST_CURRENT"))}
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--qemu={fake.path}",
            f"--kernel={image}", f"--transcript-dir={fake.dir / 'transcripts'}", "--seed", "42",
            "--icount-shift", "0", *args]  # no calibration boot: these sessions count and kill QEMUs
    with open(out, "wb") as f:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=f,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_default_sigint)


def session_exit(proc: subprocess.Popen[bytes], within: float, out: Path, after: str) -> int:
    """The exit code of a ``scenario_session`` that must end within
    ``within`` seconds ``after`` something; fail with its output if not."""
    import pytest
    try:
        return proc.wait(timeout=within)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the session still ran {within:g} s after {after}:\n{out.read_text()[-3000:]}")


def stop_session(proc: subprocess.Popen[bytes]) -> None:
    """Kill what is left of a ``scenario_session``, its xdist workers too
    (its process group; its QEMUs follow by PR_SET_PDEATHSIG), and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:  # the group is empty: all ended
        pass
    proc.wait()


def wait_peak_rss(proc: subprocess.Popen[bytes], within: float) -> tuple[int, int] | None:
    """Wait up to ``within`` seconds for ``proc`` to end and reap it with
    wait4: (its exit code, its peak RSS in bytes), the peak being the largest
    of its own and of every descendant it reaped (xdist workers, QEMUs), not a
    sum. None if it still runs."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage.ru_maxrss * 1024  # Linux counts KiB
        time.sleep(0.05)
    return None
