"""Fixtures for the harness's own tests: the fixture transcripts, a fake
QEMU (tests/harness/fake_qemu.py) and small fake kernel images, and a check
that no child process outlives a test."""

from __future__ import annotations

import shutil
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selftest_support import B_SELF, FAKE_QEMU, MINI_NOTE, ROOT, FakeQemu, children

from harness.build import ensure_built
from harness.runner import RunConfig


@pytest.fixture(autouse=True)
def no_leftover_children() -> Iterator[None]:
    """Every test in tests/harness: no child process may outlive it."""
    before = set(children())
    yield
    left = set(children()) - before
    assert not left, f"child processes left behind: {sorted(left)}"


@pytest.fixture
def fake_qemu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeQemu:
    """A fake QEMU that replays hand_clone_twice_42.txt unless configured otherwise."""
    work = tmp_path / "fake"
    work.mkdir()
    exe = work / "qemu-system-aarch64"
    exe.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE_QEMU} "$@"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("FAKE_QEMU_PIDFILE", str(work / "pid"))
    monkeypatch.setenv("FAKE_QEMU_ARGVFILE", str(work / "argv"))
    monkeypatch.setenv("FAKE_QEMU_BOOTLOG", str(work / "boots"))
    return FakeQemu(exe, work, monkeypatch).configure()


@pytest.fixture
def make_image(tmp_path: Path) -> Callable[..., Path]:
    """``make_image(note=MINI_NOTE, name="kernel.img")``: a small raw image of
    `b .` instructions carrying ``note`` (None: no note)."""
    def make(note: bytes | None = MINI_NOTE, name: str = "kernel.img") -> Path:
        path = tmp_path / name
        path.write_bytes(B_SELF * 64 + (b"" if note is None else note + b"\0"))
        return path
    return make


@pytest.fixture
def fake_config(fake_qemu: FakeQemu, make_image: Callable[..., Path], tmp_path: Path) -> RunConfig:
    """A RunConfig that boots the fake QEMU in real-time mode (no -icount on
    its command line) with short bounds; a fake that sleeps is a guest asleep
    after asleep_wall, well before the wall-clock safety net."""
    return RunConfig(kernel=make_image(), qemu=str(fake_qemu.path), boot_timeout=2.0,
                     run_timeout=10.0, exit_timeout=1.0, asleep_wall=0.5, deterministic=False,
                     transcript_dir=tmp_path / "transcripts")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked ``qemu`` are skipped where QEMU is not installed."""
    if item.get_closest_marker("qemu") and shutil.which("qemu-system-aarch64") is None:
        pytest.skip("qemu-system-aarch64 is not installed")


@pytest.fixture(scope="session")
def bad_images() -> Path:
    """build/bad-images/, made by fixtures/images/Makefile with the cross compiler."""
    if shutil.which("aarch64-linux-gnu-gcc") is None:
        pytest.skip("aarch64-linux-gnu-gcc is not installed")
    out = ROOT / "build" / "bad-images"
    ensure_built(out / "exit.img", ["-C", "fixtures/images"], ROOT)
    return out
