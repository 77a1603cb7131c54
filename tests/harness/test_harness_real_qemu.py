"""The real qemu-system-aarch64 on tiny misbehaving images (fixtures/images)
and, when it is built, on the kernel: each verdict is the named one and no
QEMU is left behind (the autouse fixture in conftest.py checks the latter)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from selftest_support import ROOT, gone

from harness.errors import ImageError, KernelDied, KernelSilent, OutputFlood
from harness.qemu import Qemu, ReadTimeout, qemu_argv
from harness.runner import RunConfig, list_scenarios, run_scenario
from harness.transcript import Transcript

pytestmark = pytest.mark.qemu
KERNEL = ROOT / "build" / "kernel8-test.img"


def config(image: Path, **kw: object) -> RunConfig:
    settings: dict = {"boot_timeout": 1.0, "run_timeout": 30.0, "max_output": 64 << 10} | kw
    return RunConfig(kernel=image, **settings)


def test_silent_image(bad_images: Path) -> None:
    with pytest.raises(KernelSilent, match="nothing came on the mini UART"):
        run_scenario(config(bad_images / "silent.img"), "x", 1)


def test_qemu_is_reaped_after_a_timeout(bad_images: Path) -> None:
    argv = qemu_argv("qemu-system-aarch64", bad_images / "silent.img", "mini", False)
    with Qemu(argv, 1 << 20) as qemu:
        with pytest.raises(ReadTimeout):
            qemu.read_line(time.monotonic() + 0.5)
    assert qemu.pid is not None and gone(qemu.pid)


def test_flood_on_the_mini_uart(bad_images: Path) -> None:
    with pytest.raises(OutputFlood, match=f"more than {64 << 10} bytes"):
        run_scenario(config(bad_images / "flood-mini.img", boot_timeout=30.0), "x", 1)


def test_the_image_note_picks_the_pl011(bad_images: Path) -> None:
    with pytest.raises(OutputFlood):
        run_scenario(config(bad_images / "flood-pl011.img", boot_timeout=30.0), "x", 1)


def test_console_option_overrides_the_note(bad_images: Path) -> None:
    with pytest.raises(KernelSilent, match=r"nothing came on the mini UART \(--console\)"):
        run_scenario(config(bad_images / "flood-pl011.img", console="mini"), "x", 1)


def test_image_that_exits_at_once(bad_images: Path) -> None:
    with pytest.raises(KernelDied, match=r"QEMU exited \(exit status 0\) before the ready marker"):
        run_scenario(config(bad_images / "exit.img", boot_timeout=30.0), "x", 1)


def test_elf_instead_of_image(bad_images: Path) -> None:
    with pytest.raises(ImageError, match="ELF file .AArch64.*objcopy"):
        run_scenario(config(bad_images / "silent.elf"), "x", 1)


@pytest.fixture(scope="module")
def kernel() -> Path:
    if not KERNEL.exists():
        pytest.skip("build/kernel8-test.img is not built")
    return KERNEL


def test_kernel_lists_its_scenarios(kernel: Path) -> None:
    names = list_scenarios(config(kernel, boot_timeout=10.0))
    assert names and all(re.fullmatch(r"[a-z0-9_]{1,31}", name) for name in names)


def test_deterministic_mode_gives_identical_transcripts(kernel: Path, tmp_path: Path) -> None:
    names = list_scenarios(config(kernel, boot_timeout=10.0))
    scenario = "clone_twice" if "clone_twice" in names else names[0]
    saved = []
    for run in ("a", "b"):
        cfg = config(kernel, boot_timeout=10.0, deterministic=True, max_output=4 << 20,
                     transcript_dir=tmp_path / run)
        t = run_scenario(cfg, scenario, 42)
        assert t.path is not None
        saved.append(t.path.read_bytes())
        assert Transcript.load(t.path, scenario=scenario, seed=42).events == t.events
    assert saved[0] == saved[1]
