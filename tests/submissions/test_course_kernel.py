"""The course's own lesson 5 (fixtures/course-lesson5: EL3-only boot, linked
at 0, a 200 ms system-timer tick) is started as it expects and its user
program runs; its student-style broken versions still apply.

Fast checks only: a whole suite over a 200 ms-tick kernel takes minutes
(`make check SUBMISSION=fixtures/course-lesson5 RULES=lesson` runs it)."""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from harness.boot import boot_mode
from harness.calibrate import calibrate
from harness.el0_runner import El0Config, run_el0
from harness.errors import KernelSilent
from harness.port import port_tree
from harness.runner import RunConfig

ROOT = Path(__file__).resolve().parents[2]
COURSE = ROOT / "fixtures" / "course-lesson5"
VARIANTS = ROOT / "fixtures" / "course-lesson5-variants"
KT_USER = ROOT / "build" / "kt-user.o"

pytestmark = pytest.mark.skipif(shutil.which("aarch64-linux-gnu-gcc") is None
                                or shutil.which("qemu-system-aarch64") is None
                                or not KT_USER.is_file(),
                                reason="needs the cross compiler, QEMU and build/kt-user.o")


@pytest.fixture(scope="module")
def course_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The course tree ported (built in the build jail with kt-user.o as its user_process)."""
    return port_tree(COURSE, KT_USER, tmp_path_factory.mktemp("course") / "port", timeout=120.0).image


def test_the_course_kernel_is_started_at_el3_from_0(course_image: Path) -> None:
    mode = boot_mode(course_image)
    assert (mode.el, mode.load) == (3, 0), mode.describe()
    assert "ELF kernel8.elf" in mode.why and "EL3-only" in mode.why


@pytest.mark.qemu
def test_the_course_kernels_user_program_starts(course_image: Path, tmp_path: Path) -> None:
    """Booted at EL3 from 0 it reaches user_process (kt-user.o), which
    reports the scenario and seed patched in. How the run ends is not judged
    here (a 200 ms tick needs the guest-time bounds of issue 13 item 2)."""
    cfg = El0Config(RunConfig(kernel=course_image, boot_timeout=20.0, run_timeout=20.0), stall_cpu=0.5)
    u = run_el0(cfg, "clone_twice", 5, tmp_path)
    assert u.started is not None and (u.started.scenario, u.started.seed) == ("clone_twice", 5), u.lines[-5:]


@pytest.mark.qemu
def test_entered_at_el2_the_course_kernel_prints_nothing(course_image: Path, tmp_path: Path) -> None:
    """What auto avoids: QEMU's -kernel puts it at 0x80000 and enters at EL2,
    where its first EL3-only write is undefined."""
    cfg = El0Config(RunConfig(kernel=course_image, boot_timeout=2.0, boot="el2"))
    with pytest.raises(KernelSilent, match="expect EL3"):
        run_el0(cfg, "clone_twice", 5, tmp_path)


@pytest.mark.parametrize("patch", sorted(VARIANTS.glob("*.patch")), ids=lambda p: p.stem)
def test_every_broken_version_applies(patch: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(COURSE, tree, ignore=shutil.ignore_patterns("build", "kernel8.img"))
    done = subprocess.run(["patch", "-p1", "--dry-run", "-i", str(patch)], cwd=tree,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "FAILED" not in done.stdout, done.stdout + done.stderr
    assert patch.read_text().startswith("Broken student kernel"), "the first line says what is broken"


@pytest.mark.qemu
def test_the_course_kernels_slice_sets_the_shift_and_its_runs_end(course_image: Path,
                                                                   tmp_path: Path) -> None:
    """kt_tick measures its slice, 15 ticks of 200 ms (3 s of guest time):
    shift 10, ~3 M instructions a slice. exit_zombie, which at shift 0 needs
    ~100 s of QEMU and stalled in the 2 s window, then ends with every task
    exited, and a rerun gives the same bytes."""
    base = El0Config(RunConfig(kernel=course_image))
    found = calibrate(base, tmp_path)
    assert found.shift == 10 and found.slice_ns is not None, found.describe()
    assert 2.5e9 < found.slice_ns < 3.5e9, found.describe()
    cfg = replace(base, run=replace(base.run, icount_shift=found.shift))
    first = run_el0(cfg, "exit_zombie", 5, tmp_path)
    assert first.ending == "all_exited", first.ending_detail
    assert run_el0(cfg, "exit_zombie", 5, tmp_path).lines == first.lines
