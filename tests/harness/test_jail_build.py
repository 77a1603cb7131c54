"""The build jail (harness/port.py, harness/jail.py) against a hostile
Makefile: no host file through /proc/1/root, no grader variable, no write
outside, no shared network namespace, no daemon left, and a fork bomb and a
disk fill bounded. Each tree is a bare Makefile: its recipe prints what it
could reach into the build log."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from selftest_support import ROOT

from harness import jail
from harness.port import BuildFailed, PortError, port_tree

pytestmark = pytest.mark.skipif(jail.unavailable() is not None,
                                reason=f"no jail here: {jail.unavailable()}")
KT_USER = ROOT / "build" / "kt-user.o"


@pytest.fixture(scope="module")
def kt_user() -> Path:
    if not KT_USER.is_file():
        pytest.skip("build/kt-user.o is not built (make all)")
    return KT_USER


def build_log(tmp_path: Path, kt_user: Path, recipe: str, **limits: int) -> str:
    """Port a tree whose Makefile runs ``recipe`` (shell lines, then fails:
    there is no kernel); the whole build log."""
    tree = tmp_path / "tree"
    tree.mkdir(exist_ok=True)
    lines = "".join(f"\t{line}\n" for line in recipe.strip().splitlines())
    (tree / "Makefile").write_text(f"all:\n{lines}\tfalse\n")
    with pytest.raises(BuildFailed) as raised:
        port_tree(tree, kt_user, tmp_path / "port", timeout=60.0, **limits)
    return "\n".join(raised.value.lines)


def test_a_build_cannot_read_a_host_file_through_proc(kt_user: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-5e1f\n")
    log = build_log(tmp_path, kt_user, f"-cat /proc/1/root{secret} /proc/2/root{secret} {secret}\n"
                                       f"-cat /proc/1/root/etc/hostname /root/.bashrc")
    assert "SECRET-5e1f" not in log
    assert "No such file" in log


def test_a_build_sees_no_grader_variable(kt_user: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KT_GRADER_TOKEN", "token-77a1")
    log = build_log(tmp_path, kt_user, "env")
    assert "token-77a1" not in log and "KT_GRADER_TOKEN" not in log
    assert "PATH=" in log  # env ran


def test_a_build_cannot_write_outside(kt_user: Path, tmp_path: Path) -> None:
    targets = [tmp_path / "written.txt", ROOT / "build" / f"written-{tmp_path.name}.txt"]
    try:
        log = build_log(tmp_path, kt_user, "\n".join(f"-echo pwned > {t}" for t in targets))
        assert not any(t.exists() for t in targets), log
    finally:
        for t in targets:
            t.unlink(missing_ok=True)


def test_a_build_has_its_own_network_namespace(kt_user: Path, tmp_path: Path) -> None:
    log = build_log(tmp_path, kt_user, "echo NETNS=$$(readlink /proc/self/ns/net)")
    seen = [line.split("=", 1)[1] for line in log.splitlines() if line.startswith("NETNS=")]
    assert seen and seen[0] != os.readlink("/proc/self/ns/net"), log


def _running(name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if name.encode() in (entry / "cmdline").read_bytes():
                    stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    if stat[0] != "Z":
                        found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_a_setsid_daemon_does_not_outlive_the_build(kt_user: Path, tmp_path: Path) -> None:
    name = f"ktd{os.getpid()}"
    build_log(tmp_path, kt_user, f"cp /usr/bin/sleep /tmp/{name}\n"
                                 f"setsid -f /tmp/{name} 120 < /dev/null > /dev/null 2>&1\n"
                                 f"nohup /tmp/{name} 121 < /dev/null > /dev/null 2>&1 &\n"
                                 "sleep 0.2")
    left = _running(name)
    for pid in left:  # do not leave it running should the test fail
        os.kill(pid, 9)
    assert left == []


def test_a_fork_bomb_is_bounded(kt_user: Path, tmp_path: Path) -> None:
    log = build_log(tmp_path, kt_user, "-for i in $$(seq 1 60); do sleep 3 & done; wait", nproc=24)
    assert "Resource temporarily unavailable" in log or "fork" in log, log[-2000:]


def test_a_disk_fill_is_bounded_in_total(kt_user: Path, tmp_path: Path) -> None:
    log = build_log(tmp_path, kt_user, "-dd if=/dev/zero of=big bs=1M count=6\n"
                                       "-dd if=/dev/zero of=/tmp/big2 bs=1M count=6",
                    disk=8 << 20)
    assert "No space left on device" in log, log[-2000:]
    port = tmp_path / "port"
    assert sum(p.stat().st_size for p in port.rglob("*") if p.is_file()) < 9 << 20


def test_without_a_jail_a_build_is_refused_unless_unsafe(kt_user: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(jail.JAIL_ENV, "off")
    tree = tmp_path / "lesson5"
    shutil.copytree(ROOT / "fixtures" / "lesson5", tree, ignore=shutil.ignore_patterns("build", "kernel8.img"))
    with pytest.raises(PortError, match=r"refusing to build it without a jail: .*KT_JAIL=off"):
        port_tree(tree, kt_user, tmp_path / "port")
    assert port_tree(tree, kt_user, tmp_path / "port", unsafe=True).image.is_file()
