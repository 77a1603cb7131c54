"""`make gdb` / `python -m harness gdb` (issue 14): the run boots with QEMU's
gdb stub waiting, gdb-multiarch connects with the kernel's symbols and
stops at core 0's first instruction, the run's command is typed, and QEMU
is gone once gdb exits. Batch mode, no terminal needed."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from selftest_support import ROOT, gone

from harness import gdb
from harness.__main__ import main

pytestmark = pytest.mark.skipif(shutil.which(gdb.GDB) is None, reason=f"{gdb.GDB} is not installed ({gdb.APT_GDB})")


@dataclass
class Debugged:
    returncode: int
    stdout: str
    stderr: str


def _debug(tmp_path: Path, capfd: pytest.CaptureFixture[str], *args: str) -> tuple[Debugged, int]:
    """Run the gdb subcommand in batch mode in this process (so no parent's
    death cleans up for it); its result and QEMU's pid (from its banner)."""
    code = main(["gdb", *args, "--batch", "--socket", str(tmp_path / "stub.sock")])
    out, err = capfd.readouterr()
    m = re.search(r"QEMU \(pid (\d+)\) waits for gdb on (\S+)", err)
    assert m is not None, err
    assert m.group(2) == str(tmp_path / "stub.sock")
    return Debugged(code, out, err), int(m.group(1))


@pytest.mark.parametrize("boot", ["auto", "el3"])
def test_gdb_stops_at_the_entry_with_symbols_and_qemu_is_gone_after(tmp_path: Path, capfd, boot: str) -> None:
    done, qemu = _debug(tmp_path, capfd, "clone_twice", "--seed", "42", "--boot", boot,
                        "--ex", "info registers pc", "--ex", "info symbol $pc",
                        "--ex", "break task_exit", "--ex", "continue", "--ex", "info symbol $pc")
    assert done.returncode == 0, done.stderr
    assert re.search(r"^pc\s+0x80000\s", done.stdout, re.M), done.stdout  # the image's first byte
    assert "_start in section .text.boot" in done.stdout
    assert "task_exit in section .text" in done.stdout  # the run itself was started and reached
    console = (ROOT / gdb.CONSOLE_DIR / "clone_twice-42.txt").read_text()
    assert "run clone_twice 42" in console and "start scenario=clone_twice seed=42" in console
    assert gone(qemu), f"QEMU (pid {qemu}) still runs after gdb exited"


def test_a_submission_tree_is_ported_patched_and_debugged(tmp_path: Path, capfd) -> None:
    done, qemu = _debug(tmp_path, capfd, "clone_twice", "--seed", "7", "--submission", str(ROOT / "fixtures" / "lesson5"),
                        "--ex", "info registers pc", "--ex", "break exit_process", "--ex", "continue",
                        "--ex", "info symbol $pc")
    assert done.returncode == 0, done.stderr
    assert re.search(r"^pc\s+0x80000\s", done.stdout, re.M), done.stdout
    assert re.search(r"^exit_process( \+ \d+)? in section \.text$", done.stdout, re.M), done.stdout  # reached from EL0
    console = (ROOT / gdb.CONSOLE_DIR / "clone_twice-7.txt").read_text()
    assert "start proto=2 scenario=clone_twice seed=7" in console  # the suite's program, scenario and seed patched in
    assert gone(qemu), f"QEMU (pid {qemu}) still runs after gdb exited"


def test_the_script_connects_then_runs_to_the_entry_unless_there(tmp_path: Path) -> None:
    target = gdb.Target(Path("k.img"), Path("k.img"), Path("k.elf"), gdb.BootMode(3, 0x80000, "test"),
                        "mini", 0, None, "s", 1)
    script = gdb.gdb_script(target, "/tmp/s.sock")
    assert script.index("file k.elf") < script.index("target remote /tmp/s.sock") < script.index(
        "if $pc != 0x80000\n  tbreak *0x80000\n  continue\nend")
    argv = gdb.gdb_command("gdb-multiarch", tmp_path / "x.gdb", ["bt"], batch=True)
    assert argv[-2:] == ["-ex", "bt"] and "-batch" in argv and str(tmp_path / "x.gdb") in argv


def test_a_missing_debugger_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "harness", "gdb", "clone_twice", "--seed", "1",
                           "--gdb", "no-such-gdb", "--socket", str(tmp_path / "s.sock")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == f"kt gdb: no-such-gdb is not installed: {gdb.APT_GDB} (or --gdb another debugger)"
