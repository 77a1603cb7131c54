"""Porting a student's lesson-5 tree (harness/port.py) and judging it from
EL0 under the real QEMU (harness/el0_runner.py): each broken tree gets its
verdict, the student's folder is never written, and no QEMU is left behind
(the autouse fixture in conftest.py checks children, the EL3 test /proc)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from selftest_support import ROOT

from harness.boot import boot_mode
from harness.el0 import PARAM_TAG, UAfterExit, UExit
from harness.el0_runner import El0Config, run_el0
from harness.errors import KernelSilent
from harness.port import BuildFailed, NoImage, NoUserProgram, PortError, Ported, port_tree
from harness.runner import RunConfig

pytestmark = pytest.mark.skipif(shutil.which("aarch64-linux-gnu-gcc") is None,
                                reason="aarch64-linux-gnu-gcc is not installed")
LESSON5 = ROOT / "fixtures" / "lesson5"
VARIANTS = ROOT / "fixtures" / "lesson5-variants"
KT_USER = ROOT / "build" / "kt-user.o"


@pytest.fixture(scope="module")
def kt_user() -> Path:
    if not KT_USER.is_file():
        pytest.skip("build/kt-user.o is not built (make -C the suite all)")
    return KT_USER


def tree_copy(tmp_path: Path, variant: str | None = None) -> Path:
    """A copy of fixtures/lesson5 in tmp_path, with ``variant``'s patch applied."""
    tree = tmp_path / (variant or "lesson5")
    shutil.copytree(LESSON5, tree)
    if variant is not None:
        subprocess.run(["patch", "-p1", "-s", "-i", str(VARIANTS / f"{variant}.patch")], cwd=tree,
                       check=True, timeout=30)
    return tree


def snapshot(tree: Path) -> dict[str, bytes]:
    """Every file under ``tree`` and its bytes."""
    return {str(p.relative_to(tree)): p.read_bytes() for p in sorted(tree.rglob("*")) if p.is_file()}


def el0_config(image: Path, boot_timeout: float = 10.0, boot: str = "auto") -> El0Config:
    return El0Config(RunConfig(kernel=image, boot_timeout=boot_timeout, run_timeout=12.0, boot=boot))


def port(tree: Path, kt_user: Path, tmp_path: Path) -> Ported:
    return port_tree(tree, kt_user, tmp_path / "port", timeout=60.0)


# --- building ------------------------------------------------------------------

def test_good_tree_image_holds_the_parameter_tag_once(kt_user: Path, tmp_path: Path) -> None:
    ported = port(LESSON5, kt_user, tmp_path)
    assert ported.image.is_file() and ported.image.is_relative_to(tmp_path)
    assert ported.image.read_bytes().count(PARAM_TAG) == 1


def test_porting_leaves_the_students_folder_untouched(kt_user: Path, tmp_path: Path) -> None:
    assert not (LESSON5 / "build").exists() and not (LESSON5 / "kernel8.img").exists(), \
        "fixtures/lesson5 already holds build products: run `make clean` there"
    before = snapshot(LESSON5)
    port(LESSON5, kt_user, tmp_path)
    assert snapshot(LESSON5) == before
    assert not (LESSON5 / "build").exists() and not (LESSON5 / "kernel8.img").exists()


def test_syntax_error_is_build_failed_with_the_compilers_error(kt_user: Path, tmp_path: Path) -> None:
    tree = tree_copy(tmp_path)
    kernel_c = tree / "src" / "kernel.c"
    kernel_c.write_text(kernel_c.read_text() + "\nint broken(void) { return 0 }\n")
    with pytest.raises(BuildFailed) as raised:
        port(tree, kt_user, tmp_path)
    assert "its build failed" in raised.value.summary
    assert any("kernel.c" in line and "error:" in line for line in raised.value.lines), raised.value.lines


def test_renamed_user_process_is_no_user_program(kt_user: Path, tmp_path: Path) -> None:
    tree = tree_copy(tmp_path)
    subprocess.run(["sed", "-i", r"s/\buser_process\b/user_proc/g", str(tree / "src" / "kernel.c")],
                   check=True, timeout=30)
    assert "user_proc(" in (tree / "src" / "kernel.c").read_text()
    with pytest.raises(NoUserProgram) as raised:
        port(tree, kt_user, tmp_path)
    assert "user_process" in raised.value.summary
    assert "no object file of the final link defines" in raised.value.summary


def test_makefile_that_makes_no_kernel8_img_is_no_image(kt_user: Path, tmp_path: Path) -> None:
    tree = tree_copy(tmp_path)
    makefile = tree / "Makefile"
    makefile.write_text(makefile.read_text().replace("kernel8.img", "kernel7.img"))
    with pytest.raises(NoImage) as raised:
        port(tree, kt_user, tmp_path)
    assert "made no kernel8.img" in raised.value.summary
    # the build itself succeeded (its log shows the image it made instead); only
    # a kernel8.img ever leaves the build jail, so the folder does not hold it
    assert "kernel7.img" in (tmp_path / "port" / "build.log").read_text()


def test_workdir_holding_the_tree_is_refused_and_the_tree_kept(kt_user: Path, tmp_path: Path) -> None:
    home = tmp_path / "rpi-os"
    home.mkdir()
    tree = tree_copy(home)
    with pytest.raises(PortError):
        port_tree(tree, kt_user, home)  # e.g. `python -m harness.port ~/rpi-os/lesson5 ~/rpi-os`
    assert snapshot(tree) == snapshot(LESSON5)


# --- booting under QEMU -----------------------------------------------------------

def qemu_processes_under(path: Path) -> list[str]:
    """Command lines of running qemu-system-aarch64 processes that mention ``path``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:  # it exited while we looked
            continue
        text = b" ".join(argv).decode(errors="replace")
        if argv and Path(argv[0].decode(errors="replace")).name == "qemu-system-aarch64" and str(path) in text:
            found.append(text)
    return found


@pytest.mark.qemu
def test_el3_boot_code_entered_at_el2_is_kernel_silent_naming_el3_and_el2(kt_user: Path, tmp_path: Path) -> None:
    ported = port(tree_copy(tmp_path, "boot_expects_el3"), kt_user, tmp_path)
    with pytest.raises(KernelSilent) as raised:
        run_el0(el0_config(ported.image, boot_timeout=2.0, boot="el2"), "exit_zombie", 7, tmp_path / "run")
    assert "printed nothing" in raised.value.summary
    assert "EL3" in raised.value.summary and "EL2" in raised.value.summary
    assert qemu_processes_under(tmp_path) == []


@pytest.mark.qemu
def test_el3_boot_code_is_started_at_el3_from_its_elf_entry(kt_user: Path, tmp_path: Path) -> None:
    """auto: the ported tree's ELF (brought out of the build jail beside the
    image) says 0x80000, its code returns only from EL3: loader, EL3, 0x80000."""
    ported = port(tree_copy(tmp_path, "boot_expects_el3"), kt_user, tmp_path)
    assert ported.elf == ported.image.with_suffix(".elf") and ported.elf.read_bytes()[:4] == b"\x7fELF"
    mode = boot_mode(ported.image)
    assert (mode.el, mode.load, mode.entry) == (3, 0x80000, 0x80000) and "ELF" in mode.why
    u = run_el0(el0_config(ported.image), "exit_zombie", 7, tmp_path / "run")
    assert u.ending == "all_exited", u.ending_detail
    assert qemu_processes_under(tmp_path) == []


@pytest.mark.qemu
def test_good_tree_runs_exit_zombie_to_the_end(kt_user: Path, tmp_path: Path) -> None:
    ported = port(LESSON5, kt_user, tmp_path)
    u = run_el0(el0_config(ported.image), "exit_zombie", 7, tmp_path / "run")
    assert u.ending == "all_exited", u.ending_detail
    assert u.started is not None and (u.started.scenario, u.started.seed) == ("exit_zombie", 7)
    assert (u.scenario, u.seed) == ("exit_zombie", 7)
    assert all(isinstance(u.exited(tid), UExit) for tid in (1, 2, 3)), u.lines
    assert u.of(UAfterExit) == [] and u.anomalies == []


@pytest.mark.qemu
def test_zombie_that_still_runs_shows_after_exit(kt_user: Path, tmp_path: Path) -> None:
    ported = port(tree_copy(tmp_path, "zombie_still_runs"), kt_user, tmp_path)
    u = run_el0(el0_config(ported.image), "exit_zombie", 7, tmp_path / "run")
    assert u.started is not None
    after = u.of(UAfterExit)
    assert after, u.lines
    assert all(u.exited(a.tid) is not None and u.exited(a.tid).line < a.line for a in after)


def test_a_build_cannot_write_outside_its_copy(kt_user: Path, tmp_path: Path) -> None:
    """An untrusted Makefile writes only inside its copy (bubblewrap); the
    attempt fails the build and leaves nothing behind."""
    from harness.port import _bwrap_works
    if not _bwrap_works():
        pytest.skip("bubblewrap cannot create namespaces here")
    tree = tmp_path / "evil"
    shutil.copytree(ROOT / "fixtures" / "lesson5", tree, ignore=shutil.ignore_patterns("build", "kernel8.img"))
    outside = ROOT / "build" / f"written-by-student-{tmp_path.name}.txt"  # the suite's own folder
    makefile = tree / "Makefile"
    makefile.write_text(makefile.read_text().replace("all : kernel8.img", f"all : escape kernel8.img\n\nescape:\n\techo pwned > {outside}\n", 1))
    try:
        with pytest.raises(BuildFailed, match="build failed"):
            port_tree(tree, kt_user, tmp_path / "port")
        assert not outside.exists()
    finally:
        outside.unlink(missing_ok=True)
