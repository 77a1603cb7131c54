"""The pytest plugin, in child pytest sessions driving the fake QEMU."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from selftest_support import ROOT, FakeQemu

JUDGE = '''
from harness.events import Sys

def test_clone_returns_pids(run_scenario):
    t = run_scenario("clone_twice")
    t.check([c.ret for c in t.of(Sys, pid=1, nr=2)] == [2, 3], "clone returns the child pid")

def test_exit_codes(run_scenario):
    assert run_scenario("clone_twice").exit_code == 0
'''


@pytest.fixture
def session(pytester: pytest.Pytester, fake_qemu: FakeQemu, make_image: Callable[..., Path],
            monkeypatch: pytest.MonkeyPatch) -> Callable[..., pytest.RunResult]:
    """Run a child pytest over ``files`` (name -> source) with the fake QEMU."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    image = make_image()

    def run(files: dict[str, str], *args: str) -> pytest.RunResult:
        pytester.makepyprojecttoml("[tool.pytest.ini_options]\n")
        for name, source in files.items():
            pytester.makepyfile(**{name: source})
        # --opt=PATH: pytest picks the rootdir before it knows these options,
        # and would take a separate PATH argument for a test path.
        return pytester.runpytest_subprocess(
            "-p", "harness.plugin", f"--qemu={fake_qemu.path}", f"--kernel={image}",
            "--boot-timeout", "0.5", *(() if AUTO_SHIFT in args else SHIFT),
            *(a for a in args if a != AUTO_SHIFT), timeout=120)
    return run

#: these sessions count QEMU boots: a fixed shift skips the one boot that
#: reads a --kernel's boot marker to choose it (test_marker_shift_* below)
SHIFT = ("--icount-shift", "0")
AUTO_SHIFT = "(auto shift)"  #: a session argument: leave the shift to the plugin


def test_header_shows_the_settings_and_the_seed(session: Callable[..., pytest.RunResult],
                                                make_image: Callable[..., Path]) -> None:
    result = session({"test_a": "def test_a(): pass"}, "--seed", "42")
    result.stdout.re_match_lines([
        rf"kt kernel: {re.escape(str(make_image()))} \(console mini: image note\)",
        r"kt qemu: .*qemu-system-aarch64, boot-timeout 0.5 s, run-cpu 30 s \(QEMU CPU time: guest "
        r"progress\), run-timeout 300 s \(wall-clock safety net\), deterministic on",
        r"kt icount: shift 0 \(--icount-shift\)",
        r"kt seed: 42 \(--seed; replay with --seed 42\)",
    ])


def test_marker_shift_is_read_from_the_boot_marker(session: Callable[..., pytest.RunResult],
                                                   fake_qemu: FakeQemu) -> None:
    """A --kernel session boots once to read the tick rate its boot marker
    announces, and chooses the -icount shift from it (harness.calibrate)."""
    result = session({"test_a": "def test_a(): pass"}, "--seed", "42", AUTO_SHIFT)
    result.stdout.re_match_lines([r"kt icount: shift 0 \(the kernel's time slice is .* announced by "
                                  r"its boot marker: hz=1000 .*\)"])
    assert fake_qemu.boots() == 1


def test_random_seed_is_shown_for_replay(session: Callable[..., pytest.RunResult]) -> None:
    result = session({"test_a": "def test_a(): pass"})
    result.stdout.re_match_lines([r"kt seed: (\d+) \(random; replay with --seed \1\)"])


def test_passing_judges_share_one_boot(session: Callable[..., pytest.RunResult],
                                       fake_qemu: FakeQemu, pytester: pytest.Pytester) -> None:
    result = session({"test_judge": JUDGE}, "--seed", "42")
    result.assert_outcomes(passed=2)
    assert fake_qemu.boots() == 1
    assert (pytester.path / "build" / "transcripts" / "clone_twice-42.txt").exists()


def test_verdict_fails_each_test_in_one_line(session: Callable[..., pytest.RunResult],
                                             fake_qemu: FakeQemu) -> None:
    fake_qemu.configure("silent")
    result = session({"test_judge": JUDGE}, "--seed", "42", "-rf")
    result.assert_outcomes(failed=2)
    assert fake_qemu.boots() == 1  # the verdict is cached too
    out = result.stdout.str()
    assert "Traceback" not in out and "pexpect" not in out and "def test_" not in out
    result.stdout.fnmatch_lines([
        "*_ test_clone_returns_pids _*",
        "KernelSilent: no ready marker within 0.5 s with QEMU idle (the guest asleep, nothing to "
        "wake it) of starting QEMU: nothing came on the mini UART*",
        "--- the console printed nothing ---",
        "full transcript: *build/transcripts/clone_twice-42.txt",
        "FAILED test_judge.py::test_clone_returns_pids - KernelSilent: no ready marker*",
    ])


@pytest.mark.parametrize("parallel", [[], ["-p", "xdist", "-n", "2"]], ids=["serial", "xdist"])
def test_broken_rule_shows_rule_context_and_transcript(session: Callable[..., pytest.RunResult],
                                                       parallel: list[str]) -> None:
    if parallel:
        pytest.importorskip("xdist")
    judge = JUDGE.replace("[2, 3]", "[2, 4]")
    result = session({"test_judge": judge}, "--seed", "42", "-rf", *parallel)
    result.assert_outcomes(failed=1, passed=1)
    out = result.stdout.str()
    assert "def test_clone_returns_pids" not in out and "raise RuleBroken" not in out
    result.stdout.fnmatch_lines([
        "rule broken: clone returns the child pid",
        "scenario clone_twice, seed 42",
        "last 5 lines of the transcript:",
        "*| @KT 37 9fe9 end count=37 reason=all_exited",
        "full transcript: *build/transcripts/clone_twice-42.txt",
        "replay: python -m harness run clone_twice --seed 42 --kernel *kernel.img",
        "FAILED test_judge.py::test_clone_returns_pids - rule broken: clone*",
    ])


def test_plain_assert_failure_names_the_transcript(session: Callable[..., pytest.RunResult]) -> None:
    judge = JUDGE.replace("exit_code == 0", "exit_code == 1")
    result = session({"test_judge": judge}, "--seed", "42")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*- kt transcripts -*", "*build/transcripts/clone_twice-42.txt"])


def test_explicit_seed_argument(session: Callable[..., pytest.RunResult], fake_qemu: FakeQemu) -> None:
    fake_qemu.monkeypatch.setenv("FAKE_QEMU_FOLLOW", "1")
    judge = ("def test_seed(run_scenario):\n"
             "    assert run_scenario('clone_twice', seed=7).seed == 7\n"
             "    assert run_scenario('clone_twice').seed == 99\n")
    session({"test_judge": judge}, "--seed", "99").assert_outcomes(passed=1)
    assert fake_qemu.boots() == 2


@pytest.mark.parametrize("args, ini, words", [
    (["--run-timeout", "0"], "", "invalid value '0' for --run-timeout: must be a number of seconds above 0"),
    (["--seed", "-3"], "", "invalid value '-3' for --seed: must be in 0..2**64-1"),
    (["--console", "uart0"], "", "invalid value 'uart0' for --console: must be one of mini, pl011"),
    ([], 'kt_boot_timeout = "soon"', "invalid value 'soon' for ini option kt_boot_timeout"),
])
def test_bad_settings_are_usage_errors_naming_their_source(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, args: list[str], ini: str,
        words: str) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyprojecttoml(f"[tool.pytest.ini_options]\n{ini}\n")
    pytester.makepyfile(test_a="def test_a(): pass")
    result = pytester.runpytest_subprocess("-p", "harness.plugin", *args, timeout=60)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{words}*"])


def test_ini_settings_apply_and_the_command_line_wins(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\nkt_seed = "5"\nkt_run_timeout = "9"\n'
                               'kt_deterministic = "false"\n')
    pytester.makepyfile(test_a="def test_a(): pass")
    result = pytester.runpytest_subprocess("-p", "harness.plugin", "--seed", "6", timeout=60)
    result.stdout.fnmatch_lines(["*run-timeout 9 s (wall-clock safety net), deterministic off*",
                                 "kt seed: 6 (--seed; replay with --seed 6)"])


def test_realtime_turns_deterministic_mode_off(pytester: pytest.Pytester,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(test_a="def test_a(): pass")
    result = pytester.runpytest_subprocess("-p", "harness.plugin", "--realtime", timeout=60)
    result.stdout.fnmatch_lines(["*deterministic off*"])


def test_transcripts_go_to_the_transcript_dir(session: Callable[..., pytest.RunResult],
                                              tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    result = session({"test_a": "def test_a(run_scenario):\n    run_scenario('clone_twice')\n"},
                     "--seed", "42", f"--transcript-dir={target}")
    result.assert_outcomes(passed=1)
    assert [p.name for p in target.iterdir()] == ["clone_twice-42.txt"]


def test_xdist_workers_run_the_controllers_seed(session: Callable[..., pytest.RunResult],
                                                fake_qemu: FakeQemu, tmp_path: Path) -> None:
    pytest.importorskip("xdist")
    fake_qemu.monkeypatch.setenv("FAKE_QEMU_FOLLOW", "1")
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    judge = "".join(
        f"def test_{n}(run_scenario):\n"
        f"    (__import__('pathlib').Path({str(seeds)!r}) / '{n}').write_text("
        f"str(run_scenario('clone_twice').seed))\n" for n in range(6))
    result = session({"test_judge": judge}, "-p", "xdist", "-n", "2")
    result.assert_outcomes(passed=6)
    header_seed = re.search(r"kt seed: (\d+) \(random", result.stdout.str())
    assert header_seed is not None
    assert {p.read_text() for p in seeds.iterdir()} == {header_seed.group(1)}
    assert fake_qemu.boots() == 2  # one boot per worker


def _build_session(pytester: pytest.Pytester, fake_qemu: FakeQemu, recipe: str,
                   monkeypatch: pytest.MonkeyPatch) -> pytest.RunResult:
    """A child session without --kernel, in a tree whose Makefile runs ``recipe``."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyprojecttoml("[tool.pytest.ini_options]\n")
    (pytester.path / "Makefile").write_text(f"build/kernel8-test.img:\n\techo make >> make.log\n\t{recipe}\n")
    pytester.makepyfile(test_judge=(
        "def test_a(run_scenario):\n    run_scenario('clone_twice')\n"
        "def test_b(run_scenario):\n    run_scenario('clone_twice', seed=43)\n"))
    return pytester.runpytest_subprocess("-p", "harness.plugin", f"--qemu={fake_qemu.path}",
                                         "--seed", "42", timeout=120)


def test_missing_default_kernel_is_built_once(pytester: pytest.Pytester, fake_qemu: FakeQemu,
                                              make_image: Callable[..., Path],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    fake_qemu.monkeypatch.setenv("FAKE_QEMU_FOLLOW", "1")
    result = _build_session(pytester, fake_qemu, f"mkdir -p build && cp {make_image()} $@",
                            monkeypatch)
    result.stdout.fnmatch_lines(["kt kernel: *build/kernel8-test.img (not built yet: "
                                 "`make build/kernel8-test.img` runs on first use)"])
    result.assert_outcomes(passed=2)
    assert (pytester.path / "make.log").read_text() == "make\n"


def test_failed_build_is_one_line_and_not_retried(pytester: pytest.Pytester, fake_qemu: FakeQemu,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    result = _build_session(pytester, fake_qemu, "echo 'kernel/main.c:1: error: oops' && false",
                            monkeypatch)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "ImageError: *build/kernel8-test.img is missing and `make build/kernel8-test.img` (in *) "
        "exited 2 without making it",
        "*| kernel/main.c:1: error: oops"])
    assert (pytester.path / "make.log").read_text() == "make\n"
    assert fake_qemu.boots() == 0
