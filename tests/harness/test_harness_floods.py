"""Floods named by counting what the guest did (harness/floods.py): a tick
storm and console noise, on the real QEMU with the hostile images of
fixtures/images (tickstorm.S, noise.S, el0noise.S), through the fake QEMU,
and the watch itself on hand-made lines. Each verdict names its count, its
first and last line and a sample; none waits out the run timeout (what they
cost is a `make bench` figure, not asserted here)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from selftest_support import ROOT, FakeQemu

from harness.build import ensure_built
from harness.el0_runner import El0Config, run_el0
from harness.errors import ConsoleNoise, KernelStalled, TickStorm
from harness.events import Noise
from harness.floods import NOISE_LINES, STORM_TICKS, FloodWatch
from harness.prng import KERNEL_STREAM, line_tag
from harness.protocol import parse_marker
from harness.runner import RunConfig, list_scenarios, run_scenario
from linetags import tag_kt

BOOT = ("@KT 0 boot proto=2 console=mini el=2 nr_tasks=16 hz=1000 nr_syscalls=4 page_size=4096 "
        "pool_base=0x200000 pool_pages=1024 kernel_base=0x80000 kernel_end=0x1a2000 "
        "user_base=0x1a0000 user_end=0x1a2000 write_max=1024 priority=2")


@pytest.fixture(scope="module")
def hostile(bad_images: Path) -> Path:
    """build/bad-images/ with the flooding images (an older build may lack them)."""
    for name in ("tickstorm", "noise", "el0noise"):
        ensure_built(bad_images / f"{name}.img", ["-C", "fixtures/images"], ROOT)
    return bad_images


def config(image: Path, tmp_path: Path) -> RunConfig:
    """The defaults `make check` runs with (30 s run timeout, 4 MiB of output)."""
    return RunConfig(kernel=image, transcript_dir=tmp_path / "transcripts")


# --- the real QEMU on the hostile images -----------------------------------------

@pytest.mark.qemu
def test_a_tick_storm_is_named_at_its_bound(hostile: Path, tmp_path: Path) -> None:
    """tickstorm.S: boot, ready, start (the scenario and seed sent), the
    task's entry, then tick markers forever: lines 1-6, ticks from line 7."""
    with pytest.raises(TickStorm) as e:
        run_scenario(config(hostile / "tickstorm.img", tmp_path), "fairness", 7)
    last = 6 + STORM_TICKS
    tag = line_tag(7, KERNEL_STREAM, last - 1)  # a valid marker of the run with seed 7
    assert e.value.summary == (
        f"{STORM_TICKS} tick markers in a row (lines 7..{last}, pids [1]) and no other marker: no "
        f"syscall, switch, output or exit; the timer ticks but no task makes progress; the last: "
        f"'@KT {last - 1} {tag} tick pid=1 n={STORM_TICKS}'")
    verdict = e.value.settle()
    assert verdict.total_lines == last and len(verdict.lines) == verdict.KEEP_LINES
    assert f"--- last 20 of {last} console lines ---" in verdict.report()
    assert verdict.path is not None and verdict.path.read_text().count("\n") == last


@pytest.mark.qemu
def test_a_tick_storm_after_list_is_named_too(hostile: Path, tmp_path: Path) -> None:
    """tickstorm.S answers any command other than run with ticks at once."""
    with pytest.raises(TickStorm, match=rf"^TickStorm: {STORM_TICKS} tick markers in a row \(lines 3\.\."
                                        rf"{2 + STORM_TICKS}, pids \[1\]\)"):
        list_scenarios(config(hostile / "tickstorm.img", tmp_path))


@pytest.mark.qemu
def test_console_noise_is_named_at_its_bound(hostile: Path, tmp_path: Path) -> None:
    """noise.S: boot, ready, then "ab" lines forever after the command."""
    with pytest.raises(ConsoleNoise) as e:
        run_scenario(config(hostile / "noise.img", tmp_path), "fairness", 7)
    last = 2 + NOISE_LINES
    assert e.value.summary == (
        f"{NOISE_LINES} console lines ({3 * NOISE_LINES} bytes) that are not markers, lines 3..{last}, "
        f"after the marker at line 2 (the bound is {NOISE_LINES} lines): the kernel prints lines the "
        f"protocol does not know (a print loop?); the first: 'ab'")
    verdict = e.value.settle()
    assert verdict.total_lines == last and verdict.lines[-1] == "ab"


@pytest.mark.qemu
def test_console_noise_between_el0_markers_is_named(hostile: Path, tmp_path: Path) -> None:
    """el0noise.S: a correct EL0 start marker from the patched parameter
    block, then the kernel prints "ab" lines forever."""
    cfg = El0Config(config(hostile / "el0noise.img", tmp_path))
    seed = 12345678901234567890  # 20 digits: the image prints all 64 bits of it
    with pytest.raises(ConsoleNoise) as e:
        run_el0(cfg, "fairness", seed, tmp_path)
    assert e.value.summary.startswith(
        f"{NOISE_LINES} console lines ({3 * NOISE_LINES} bytes) that are not EL0 markers, lines "
        f"2..{1 + NOISE_LINES}, after the EL0 marker at line 1 (the bound is {NOISE_LINES} lines)")
    assert e.value.lines[0] == f"@KU 1 0 {line_tag(seed, 1, 0)} start proto=2 scenario=fairness seed={seed}"


@pytest.mark.qemu
@pytest.mark.parametrize("image, verdict", [("tickstorm", "TickStorm: 5000 tick markers in a row"),
                                            ("noise", "ConsoleNoise: 1000 console lines")])
def test_a_session_against_a_flood_fails_with_the_verdict(hostile: Path, tmp_path: Path,
                                                          image: str, verdict: str) -> None:
    """`make check KERNEL=` in small: one scenario's tests fail, each naming
    the verdict (the scenario boots once: the verdict is cached)."""
    done = subprocess.run([sys.executable, "-m", "pytest", "tests/scenarios/test_fairness.py", "-q",
                           "-p", "no:cacheprovider", "-p", "no:xdist", f"--kernel={hostile / f'{image}.img'}",
                           f"--transcript-dir={tmp_path}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode == pytest.ExitCode.TESTS_FAILED and verdict in out, out[-3000:]
    assert "RunTimeout" not in out and "Traceback" not in out


# --- the fake QEMU ----------------------------------------------------------------

def test_noise_from_the_fake_qemu_is_console_noise(fake_config: RunConfig, fake_qemu: FakeQemu) -> None:
    fake_qemu.configure("noise")
    with pytest.raises(ConsoleNoise, match=r"^ConsoleNoise: 1000 console lines \(3000 bytes\) that are not markers, "
                                           r"lines 3\.\.1002, after the marker at line 2 "):
        run_scenario(replace(fake_config, run_timeout=30), "clone_twice", 42)


def test_noise_counting_can_be_turned_off(fake_config: RunConfig, fake_qemu: FakeQemu) -> None:
    """With no noise bound the same console runs into the output bound."""
    from harness.errors import OutputFlood
    fake_qemu.configure("noise")
    with pytest.raises(OutputFlood):
        run_scenario(replace(fake_config, run_timeout=30, noise_lines=None, noise_bytes=None,
                             max_output=64 << 10), "clone_twice", 42)


# --- the watch on hand-made lines ---------------------------------------------------

def feed(watch: FloodWatch, texts: list[str], first_line: int = 1, key: int = 0) -> None:
    """Feed ``texts`` as console lines from ``first_line``: markers tagged as
    a kernel would (``key`` until a start marker, then its seed) and parsed,
    the rest noise."""
    for n, text in enumerate(texts, first_line):
        if text.startswith("@KT ") and " start " in text:
            key = int(text.rsplit("seed=", 1)[1])
        item = parse_marker(n, tag_kt(text, key)) if text.startswith("@KT ") else Noise(n, text)
        if not isinstance(item, Noise) and watch.events is not None:
            watch.events.append(item)
        watch.feed(item)


def ticks(seq: int, n: int, count: int, pid: int = 1) -> list[str]:
    return [f"@KT {seq + i} tick pid={pid} n={n + i}" for i in range(count)]


def test_a_switch_to_another_task_ends_a_storm_a_switch_to_itself_does_not() -> None:
    watch = FloodWatch(storm_ticks=4, events=[])
    feed(watch, [BOOT, "@KT 1 start scenario=x seed=1", *ticks(2, 1, 3),
                 "@KT 5 switch from=1 to=2", *ticks(6, 4, 3, pid=2)])  # 3 + 3: no storm
    with pytest.raises(TickStorm, match=r"^TickStorm: 4 tick markers in a row \(lines 7\.\.11, pids \[2\]\)"):
        feed(watch, ["@KT 9 switch from=2 to=2", *ticks(10, 7, 2, pid=2)], first_line=10, key=1)


def test_noise_between_ticks_does_not_end_a_storm() -> None:
    watch = FloodWatch(storm_ticks=3, events=[])
    with pytest.raises(TickStorm, match=r"^TickStorm: 3 tick markers in a row \(lines 2\.\.6, pids \[1\]\)"):
        feed(watch, [BOOT, "@KT 1 tick pid=1 n=1", "hello", "@KT 2 tick pid=1 n=2", "hello",
                     "@KT 3 tick pid=1 n=3"])


def test_a_storm_of_idle_ticks_is_the_idle_stall_rule_first() -> None:
    watch = FloodWatch(storm_ticks=3, events=[])
    lines = [BOOT, "@KT 1 start scenario=x seed=1", "@KT 2 task pid=1 parent=0 state=new reason=scenario",
             "@KT 3 switch from=0 to=1", "@KT 4 switch from=1 to=0", *ticks(5, 1, 3, pid=0)]
    with pytest.raises(KernelStalled) as e:
        feed(watch, lines)
    assert e.value.summary.startswith("scheduling: the idle task may run only when no user task is "
                                      "runnable: pids [1] are live")
    assert e.value.summary.endswith("; then 3 idle ticks in a row (lines 6..8) and no other marker")


def test_any_marker_ends_noise_and_the_byte_bound_counts_line_ends() -> None:
    watch = FloodWatch(noise_lines=3, noise_bytes=None)
    feed(watch, [BOOT, "a", "b", "@KT 1 ready", "c", "d"])  # 2, then 2: under 3
    watch = FloodWatch(noise_lines=None, noise_bytes=10)
    with pytest.raises(ConsoleNoise, match=r"^ConsoleNoise: 2 console lines \(10 bytes\) that are not markers, lines "
                                           r"2\.\.3, after the marker at line 1 \(the bound is 10 bytes\).*"
                                           r"the first: '\\\\x1b\[2J'$"):
        feed(watch, [BOOT, "\x1b[2J", "abcd"])  # 4 + 4 bytes, 2 line ends


def test_noise_before_any_marker_says_so() -> None:
    with pytest.raises(ConsoleNoise, match=r"^ConsoleNoise: 2 console lines \(4 bytes\) that are not markers, lines "
                                           r"1\.\.2, and no marker since QEMU started"):
        feed(FloodWatch(noise_lines=2), ["a", "b"])

