"""The runner against a fake QEMU: the conversation, every verdict, and that
the child process is gone afterwards on every path. No real QEMU needed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from fake_qemu import CUT
from selftest_support import HAND, ROOT, TRANSCRIPTS, FakeQemu, ended, gone

from harness.errors import (CommandRejected, ImageError, InfrastructureError, KernelDied, KernelPanic, KernelSilent,
                            OutputFlood, ProtocolError, QemuNotFound, RunTimeout)
from harness.qemu import ExitStatus, Qemu, SpawnFailed
from harness.runner import RunConfig, check_request, list_scenarios, run_scenario



def test_good_run_is_parsed_and_saved_byte_for_byte(fake_config: RunConfig, fake_qemu: FakeQemu) -> None:
    t = run_scenario(fake_config, "clone_twice", 42)
    assert (t.scenario, t.seed, t.end.reason, t.exit_code) == ("clone_twice", 42, "all_exited", 0)
    assert t.path == fake_config.transcript_dir / "clone_twice-42.txt"
    assert t.path.read_bytes() == HAND.read_bytes()  # \r stripped, nothing lost
    assert gone(fake_qemu.pid())


def test_each_line_is_handed_out_as_it_comes(fake_config: RunConfig) -> None:
    seen: list[str] = []
    t = run_scenario(fake_config, "clone_twice", 42, on_line=seen.append)
    assert seen == t.lines and len(seen) == 39


def test_command_line_for_the_mini_uart(fake_config: RunConfig, fake_qemu: FakeQemu) -> None:
    run_scenario(fake_config, "clone_twice", 42)
    assert fake_qemu.argv() == [
        "-M", "raspi3b", "-kernel", str(fake_config.kernel), "-display", "none",
        "-monitor", "none", "-no-reboot", "-semihosting-config", "enable=on,target=native",
        "-serial", "null", "-serial", "stdio"]


@pytest.mark.parametrize("note, console, serial", [
    (b"KTIMAGE proto=2 console=pl011 mode=test", None, ["-serial", "stdio"]),
    (None, None, ["-serial", "null", "-serial", "stdio"]),
    (b"KTIMAGE proto=2 console=mini mode=test", "pl011", ["-serial", "stdio"]),
    (b"KTIMAGE proto=2 console=pl011 mode=test", "mini", ["-serial", "null", "-serial", "stdio"]),
])
def test_console_comes_from_option_then_note_then_mini(
        fake_config: RunConfig, fake_qemu: FakeQemu, make_image: Callable[..., Path],
        note: bytes | None, console: str | None, serial: list[str]) -> None:
    cfg = replace(fake_config, kernel=make_image(note, "other.img"), console=console)
    run_scenario(cfg, "clone_twice", 42)
    assert fake_qemu.argv()[-len(serial):] == serial
    assert fake_qemu.argv()[-len(serial) - 1] == "enable=on,target=native"


def test_deterministic_mode_adds_icount(fake_config: RunConfig, fake_qemu: FakeQemu) -> None:
    run_scenario(replace(fake_config, deterministic=True), "clone_twice", 42)
    assert fake_qemu.argv()[-4:] == ["-icount", "shift=0,align=off,sleep=off", "-rtc", "clock=vm"]


def test_silent_kernel(fake_config: RunConfig, fake_qemu: FakeQemu) -> None:
    fake_qemu.configure("silent")
    with pytest.raises(KernelSilent, match=r"no ready marker within 0.3 s with QEMU idle \(the guest "
                                           r"asleep, nothing to wake it\) of starting QEMU: "
                                           r"nothing came on the mini UART \(image note\)") as e:
        run_scenario(replace(fake_config, asleep_wall=0.3), "clone_twice", 42)
    assert e.value.lines == [] and e.value.path is not None and e.value.path.read_bytes() == b""
    assert gone(fake_qemu.pid())


def test_a_qemu_that_ignores_hangup_and_terminate_is_killed(fake_config: RunConfig,
                                                            fake_qemu: FakeQemu) -> None:
    fake_qemu.configure("deaf")
    with pytest.raises(KernelSilent):
        run_scenario(fake_config, "clone_twice", 42)
    assert gone(fake_qemu.pid())


def test_flood_stops_at_the_bound(fake_config: RunConfig, fake_qemu: FakeQemu) -> None:
    fake_qemu.configure("flood")
    bound = 64 << 10
    with pytest.raises(OutputFlood, match=f"more than {bound} bytes") as e:
        run_scenario(replace(fake_config, max_output=bound, run_timeout=30), "clone_twice", 42)
    assert sum(len(line) for line in e.value.lines) <= bound  # line ends are not kept
    flood = e.value.lines[-1]
    assert flood == "U" * len(flood) and len(flood) > bound - 1024  # the rest is the boot
    assert gone(fake_qemu.pid())


def test_qemu_exits_during_the_run(fake_config: RunConfig, fake_qemu: FakeQemu) -> None:
    fake_qemu.configure("die")
    with pytest.raises(KernelDied, match=r"QEMU exited \(exit status 3\) before the end marker "
                                         r"\(after `run clone_twice 42`\); its last line: "
                                         r"'@KT 2 7519 start scenario=clone_twice seed=42'"):
        run_scenario(fake_config, "clone_twice", 42)
    assert gone(fake_qemu.pid())


def test_qemu_exits_right_after_ready(fake_config: RunConfig, fake_qemu: FakeQemu) -> None:
    fake_qemu.configure("quits")
    with pytest.raises(KernelDied, match=r"exited \(exit status 0\) before the end marker"):
        run_scenario(fake_config, "clone_twice", 42)


def test_qemu_closes_its_console_but_runs_on(fake_config: RunConfig, fake_qemu: FakeQemu) -> None:
    fake_qemu.configure("closes")
    with pytest.raises(KernelDied, match="QEMU closed its console before the ready marker"):
        run_scenario(fake_config, "clone_twice", 42)
    assert gone(fake_qemu.pid())


def test_run_that_never_ends(fake_config: RunConfig, fake_qemu: FakeQemu) -> None:
    fake_qemu.configure("stuck")
    with pytest.raises(RunTimeout, match=r"no end marker within 0.5 s with QEMU idle \(the guest "
                                         r"asleep, nothing to wake it\) of `run clone_twice 42`; "
                                         r"the last marker is line 4") as e:
        run_scenario(fake_config, "clone_twice", 42)
    assert e.value.path is not None and "@KT 2 7519 start" in e.value.path.read_text()
    assert gone(fake_qemu.pid())


def test_timeout_keeps_the_unterminated_last_line(fake_config: RunConfig,
                                                  fake_qemu: FakeQemu) -> None:
    """Half a marker and then silence: the verdict's tail and the saved
    transcript end with that half line, the likeliest clue to the hang."""
    fake_qemu.configure("cut")
    with pytest.raises(RunTimeout) as e:
        run_scenario(fake_config, "clone_twice", 42)
    assert e.value.lines[-1] == CUT
    assert e.value.path is not None and e.value.path.read_text().endswith(CUT + "\n")
    assert gone(fake_qemu.pid())


def test_qemu_that_does_not_exit_after_end(fake_config: RunConfig, fake_qemu: FakeQemu) -> None:
    fake_qemu.configure("hang")
    with pytest.raises(RunTimeout, match=r"the end marker came \(line 39\) but QEMU did not exit "
                                         r"within 0.3 s with QEMU idle"):
        run_scenario(replace(fake_config, asleep_wall=0.3), "clone_twice", 42)
    assert gone(fake_qemu.pid())


def test_a_run_that_computes_past_its_budget_is_a_timeout(fake_config: RunConfig,
                                                          fake_qemu: FakeQemu) -> None:
    """A guest that computes without end: run_cpu of QEMU CPU time, not the wall clock."""
    fake_qemu.configure("spin")
    with pytest.raises(RunTimeout, match=r"no end marker within 0.3 s of QEMU CPU time \(guest "
                                         r"progress\) of `run clone_twice 42`"):
        run_scenario(replace(fake_config, run_cpu=0.3, stall_cpu=None), "clone_twice", 42)
    assert gone(fake_qemu.pid())


def test_the_wall_clock_safety_net_is_the_machines_fault(fake_config: RunConfig,
                                                         fake_qemu: FakeQemu) -> None:
    """QEMU that cannot compute its budget in the wall-clock safety net (here:
    a budget the fake cannot reach in time) is an InfrastructureError, never
    a verdict on the kernel."""
    fake_qemu.configure("spin")
    with pytest.raises(InfrastructureError, match=r"the wall-clock safety net of 0.5 s expired while "
                                                  r"waiting for the end marker after `run clone_twice 42`"):
        run_scenario(replace(fake_config, run_cpu=60, stall_cpu=None, run_timeout=0.5), "clone_twice", 42)
    assert gone(fake_qemu.pid())


def test_panic_run(fake_config: RunConfig, fake_qemu: FakeQemu) -> None:
    fake_qemu.configure(transcript="hand_panic_5.txt", exit_status=1)
    with pytest.raises(KernelPanic, match="data abort at EL1") as e:
        run_scenario(fake_config, "clone_twice", 5)
    assert e.value.path is not None and e.value.path.name == "clone_twice-5.txt"
    assert len(e.value.lines) == 10


def test_start_with_another_seed(fake_config: RunConfig) -> None:
    with pytest.raises(ProtocolError, match="line 4: start says seed=42 but the harness sent seed 7"):
        run_scenario(fake_config, "clone_twice", 7)


def test_protocol_error_in_the_stream_stops_the_run(fake_config: RunConfig, fake_qemu: FakeQemu) -> None:
    fake_qemu.configure(transcript="bad_seq_gap.txt")
    with pytest.raises(ProtocolError, match="line 16: sequence gap") as e:
        run_scenario(fake_config, "clone_twice", 42)
    assert len(e.value.lines) == 16
    assert gone(fake_qemu.pid())


def test_unknown_scenario_is_a_rejected_command(fake_config: RunConfig, fake_qemu: FakeQemu) -> None:
    fake_qemu.configure(transcript="hand_unknown_scenario.txt")
    with pytest.raises(CommandRejected, match="refused 'run nosuch 1': error what=unknown_scenario "
                                              r"\(line 4\); `python -m harness list`"):
        run_scenario(fake_config, "nosuch", 1)


def test_list(fake_config: RunConfig, fake_qemu: FakeQemu) -> None:
    fake_qemu.configure(transcript="hand_list.txt")
    assert list_scenarios(fake_config) == ["clone_twice", "undef_insn"]
    assert gone(fake_qemu.pid())


def test_ctrl_c_during_a_run_still_reaps_qemu(fake_config: RunConfig, fake_qemu: FakeQemu) -> None:
    def interrupt(line: str) -> None:
        if "start" in line:
            raise KeyboardInterrupt
    fake_qemu.configure("stuck")
    with pytest.raises(KeyboardInterrupt):
        run_scenario(fake_config, "clone_twice", 42, on_line=interrupt)
    assert gone(fake_qemu.pid())


def test_missing_qemu(fake_config: RunConfig, tmp_path: Path) -> None:
    with pytest.raises(QemuNotFound, match="apt-get install"):
        run_scenario(replace(fake_config, qemu=str(tmp_path / "no-qemu")), "clone_twice", 42)


def test_bad_image_is_refused_before_qemu_starts(fake_config: RunConfig, fake_qemu: FakeQemu,
                                                 tmp_path: Path) -> None:
    with pytest.raises(ImageError):
        run_scenario(replace(fake_config, kernel=tmp_path / "missing.img"), "clone_twice", 42)
    assert fake_qemu.boots() == 0


@pytest.mark.parametrize("scenario, seed", [("", 1), ("Clone", 1), ("a b", 1), ("x" * 32, 1),
                                            ("ok", -1), ("ok", 2**64)])
def test_requests_that_cannot_be_sent(scenario: str, seed: int) -> None:
    with pytest.raises(ValueError):
        check_request(scenario, seed)


def test_exit_status_wording() -> None:
    assert str(ExitStatus(3, None)) == "exit status 3"
    assert str(ExitStatus(None, 9)) == "killed by signal 9 (SIGKILL)"


def test_qemu_dies_with_the_harness_process(fake_qemu: FakeQemu) -> None:
    """A harness process killed outright (a crashed xdist worker) takes QEMU with it."""
    fake_qemu.configure("silent")
    script = ("import sys, time; from harness.qemu import Qemu; "
              f"q = Qemu([{str(fake_qemu.path)!r}], 1000).__enter__(); "
              "print(q.pid, flush=True); time.sleep(60)")
    harness = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                               text=True)
    try:
        assert harness.stdout is not None
        qemu_pid = int(harness.stdout.readline())
        harness.send_signal(signal.SIGKILL)
    finally:
        harness.wait()
    deadline = time.monotonic() + 10
    while not ended(qemu_pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ended(qemu_pid)



def test_the_console_is_two_pipes_and_nothing_else_is_inherited(fake_qemu: FakeQemu) -> None:
    """QEMU's console is a pipe (a byte through a terminal cost QEMU far more),
    its stdout and stderr the same pipe, and the child holds no other fd of
    the harness's: a jail must get only what its preexec opens."""
    fake_qemu.configure("silent")
    with Qemu([str(fake_qemu.path)], 1000) as qemu:
        assert qemu.pid is not None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the fake's sh execs python: wait for that
            fds = {int(fd): os.readlink(f"/proc/{qemu.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{qemu.pid}/fd")}
            if "python" in Path(f"/proc/{qemu.pid}/exe").resolve().name:
                break
            time.sleep(0.05)
        console = {fd: target for fd, target in fds.items() if fd <= 2}
        assert all(target.startswith("pipe:") for target in console.values()), console
        assert console[1] == console[2] != console[0]
        assert all(not target.startswith(("pipe:", "socket:", "/dev/pts", "/dev/ptmx")) or fd <= 2
                   for fd, target in fds.items()), fds


def test_a_qemu_that_cannot_be_run_is_reported(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-qemu"
    with pytest.raises(SpawnFailed, match=f"cannot run {missing}"):
        Qemu([str(missing)], 1000).__enter__()
