"""Helpers the harness's own tests import (fixtures live in conftest.py).

A separate module, not conftest.py: when tests/ runs as a whole, more than
one conftest.py is imported under the name ``conftest``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRANSCRIPTS = ROOT / "fixtures" / "transcripts"
FAKE_QEMU = Path(__file__).with_name("fake_qemu.py")
MINI_NOTE = b"KTIMAGE proto=1 console=mini mode=test"
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
