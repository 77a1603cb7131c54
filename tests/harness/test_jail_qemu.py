"""The QEMU jail (harness/jail.py): semihosting reaches only the jail's own
/tmp, the stall accounting reads QEMU's CPU time inside the jail, nothing of
the jail outlives a run, and where no jail can be made a foreign image is
refused unless --unsafe-no-sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from selftest_support import FAKE_QEMU, HAND, ROOT, FakeQemu

from harness import jail
from harness.errors import JailUnavailable, KernelStalled
from harness.qemu import Qemu, find_qemu, qemu_argv
from harness.runner import RunConfig, run_scenario

PROBE = Path("/var/tmp/kt-semihost-probe.txt")  #: what fixtures/images/semihost.S creates

needs_jail = pytest.mark.skipif(jail.unavailable() is not None,
                                reason=f"no jail here: {jail.unavailable()}")


def _status(pid: int) -> dict[str, str]:
    """/proc/<pid>/status as fields; empty if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def jail_processes() -> list[int]:
    """Pids of live processes running as a jail's host uid (harness.jail.UID_BASE
    + the pid of the jail's bwrap) that are this process's: its bwrap is our
    child, or its bwrap is gone (an outlived jail, whoever started it). A
    running jail of another test process (xdist, another checkout) is not."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        fields = _status(int(entry.name))
        if not fields or fields["State"].split()[0] == "Z":  # dead; reaping an orphan is init's job
            continue
        uid = int(fields["Uid"].split()[0])
        if uid < jail.UID_BASE:
            continue
        bwrap = _status(uid - jail.UID_BASE)
        alive = bool(bwrap) and int(bwrap["Uid"].split()[0]) == uid
        if not alive or int(bwrap["PPid"]) == os.getpid():
            found.append(int(entry.name))
    return found


def boot_semihost(image: Path, jailed: bool) -> int | None:
    """Boot semihost.img; QEMU's exit status (0: the guest opened PROBE)."""
    argv = qemu_argv(find_qemu("qemu-system-aarch64"), image, "mini", deterministic=False)
    with Qemu(argv, 1 << 16, jail=jailed) as qemu:
        status = qemu.wait_exit(time.monotonic() + 10)
    assert status is not None, "QEMU did not exit"
    return status.code


@needs_jail
@pytest.mark.qemu
def test_semihosting_in_the_jail_cannot_create_a_host_file(bad_images: Path) -> None:
    PROBE.unlink(missing_ok=True)
    mine_before = set(jail_processes())
    try:
        assert boot_semihost(bad_images / "semihost.img", jailed=True) == 1  # SYS_OPEN failed
        assert not PROBE.exists()
    finally:
        PROBE.unlink(missing_ok=True)
    assert set(jail_processes()) - mine_before == set(), "a process of the jail outlived it"


@pytest.mark.qemu
def test_semihosting_unjailed_does_create_it(bad_images: Path) -> None:
    """The probe works: bare, the same image writes the host file (as root)."""
    if os.geteuid() != 0 and not os.access(PROBE.parent, os.W_OK):
        pytest.skip(f"{PROBE.parent} is not writable here")
    PROBE.unlink(missing_ok=True)
    try:
        assert boot_semihost(bad_images / "semihost.img", jailed=False) == 0
        assert PROBE.exists()
    finally:
        PROBE.unlink(missing_ok=True)


def spinning_qemu(tmp_path: Path) -> Path:
    """A self-contained fake QEMU (no host file or variable needed: it runs
    jailed) that replays HAND up to its start marker, then computes silently."""
    script = tmp_path / "spinning-qemu"
    script.write_text(
        "#!/usr/bin/python3\nimport os\n"
        f"open('/tmp/t.txt', 'w').write({HAND.read_text()!r})\n"
        "os.environ.update(FAKE_QEMU_MODE='spin', FAKE_QEMU_TRANSCRIPT='/tmp/t.txt', FAKE_QEMU_FOLLOW='1')\n"
        f"exec(compile({FAKE_QEMU.read_text()!r}, 'fake_qemu.py', 'exec'), {{'__name__': '__main__'}})\n")
    script.chmod(0o755)
    return script


@needs_jail
def test_a_jailed_qemu_that_computes_silently_is_stalled_by_its_own_cpu_time(
        tmp_path: Path, make_image: Callable[..., Path]) -> None:
    """bwrap itself uses no CPU: were bwrap's time read, the run would end
    in RunTimeout instead."""
    cfg = RunConfig(kernel=make_image(), qemu=str(spinning_qemu(tmp_path)), jail="on",
                    deterministic=False, boot_timeout=5.0, run_timeout=20.0, stall_cpu=0.3)
    with pytest.raises(KernelStalled, match="QEMU CPU time"):
        run_scenario(cfg, "clone_twice", 42)
    left = jail_processes()
    assert left == [], [(p, _status(p).get("Name"), _status(p).get("PPid")) for p in left]


@needs_jail
def test_a_jailed_run_passes_and_reports_the_exit_status(tmp_path: Path, make_image: Callable[..., Path]) -> None:
    script = spinning_qemu(tmp_path)
    script.write_text(script.read_text().replace("FAKE_QEMU_MODE='spin'", "FAKE_QEMU_MODE='replay', FAKE_QEMU_EXIT='3'"))
    cfg = RunConfig(kernel=make_image(), qemu=str(script), jail="on", deterministic=False)
    transcript = run_scenario(cfg, "clone_twice", 42)
    assert transcript.exit_code == 3


def test_without_a_jail_a_foreign_image_is_refused_naming_why(
        fake_config: RunConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(jail.JAIL_ENV, "off")
    with pytest.raises(JailUnavailable, match=r"KT_JAIL=off.*--unsafe-no-sandbox"):
        run_scenario(fake_config, "clone_twice", 42)
    assert run_scenario(replace(fake_config, jail="unsafe"), "clone_twice", 42).end is not None


def _session(fake: FakeQemu, image: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST_", "PYTEST_CURRENT"))}
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-q",
            f"--qemu={fake.path}", f"--kernel={image}", f"--transcript-dir={fake.dir / 't'}",
            "--seed", "42", "tests/scenarios/test_clone_twice.py", *args]
    return subprocess.run(argv, cwd=ROOT, env={**env, jail.JAIL_ENV: "off"}, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_a_session_without_a_jail_is_one_usage_error_unless_unsafe(
        fake_qemu: FakeQemu, make_image: Callable[..., Path]) -> None:
    fake_qemu.configure(transcript="hand_clone_twice_42.txt")
    image = make_image()
    refused = _session(fake_qemu, image)
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert "refusing to run code this checkout did not build without a jail" in refused.stderr
    assert "KT_JAIL=off" in refused.stderr and "Traceback" not in refused.stderr
    assert fake_qemu.boots() == 0
    allowed = _session(fake_qemu, image, "--unsafe-no-sandbox")
    assert fake_qemu.boots() >= 1
    assert "refusing" not in allowed.stderr, allowed.stderr
    assert allowed.returncode in (0, 1), allowed.stdout  # it ran: judged, not refused
