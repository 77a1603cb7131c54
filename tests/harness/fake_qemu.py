"""A stand-in for qemu-system-aarch64 in the harness's own tests.

Run as ``python fake_qemu.py <qemu arguments>``; what it does comes from
the environment, so a test can pass it to the runner as its QEMU:

FAKE_QEMU_MODE      replay (default), silent, deaf, flood, markerflood, spin, ablines, noise, longline,
                    die, stuck, cut, hang, closes, quits
FAKE_QEMU_TRANSCRIPT  the console to replay (a fixtures/transcripts file)
FAKE_QEMU_EXIT      exit status after a replay (default 0)
FAKE_QEMU_PIDFILE   write this process's pid here first
FAKE_QEMU_ARGVFILE  write the arguments here (JSON)
FAKE_QEMU_BOOTLOG   append one line per start here
FAKE_QEMU_LINE_BYTES  the length of mode longline's line (default 1 MiB)
FAKE_QEMU_FOLLOW    if set, the replayed echo and start name the command's
                    scenario and seed instead of the transcript's, and the
                    markers carry that seed's line tags

replay: print the transcript up to its first ready marker, read one command
line, print the rest (its own echo line included) and exit. silent: print
nothing, forever. deaf: like silent but ignores SIGHUP/SIGINT/SIGTERM. flood:
boot, read the command, then print 'U' forever without a newline.
markerflood: replay up to start, then well-formed tick markers forever.
spin: replay up to start, then busy-loop silently (CPU time goes on).
ablines: boot, read the command, then print "ab" lines forever, with an out
marker every 512 lines (so only the output bound stops it). noise: boot,
read the command, then print "ab" lines forever, no marker. longline:
replay up to start, print FAKE_QEMU_LINE_BYTES of 'a' with no line end, and
exit (the console closes mid-line). die: boot, read the command, print one
marker, exit 3. stuck: replay up to start, then sleep. cut: like stuck, but
first print CUT (half a marker, no line end). hang: replay everything, then
sleep instead of exiting. closes: print the lines before ready, close the
console, keep running. quits: boot and exit at once without reading the
command.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from types import ModuleType


CUT = "@KT 3 8f0e tas"  #: what mode cut leaves unterminated
LINE_BYTES = 1 << 20  #: mode longline's line, unless FAKE_QEMU_LINE_BYTES says otherwise


def linetags() -> ModuleType:
    """tests/harness/linetags.py (it needs the harness beside it), imported
    only by what makes up or rewrites markers: a copy of this file run alone
    (the jail tests' QEMU, with no __file__ and no checkout) replays an
    already tagged transcript without it."""
    here = Path(__file__).resolve().parent
    sys.path[:0] = [str(here), str(here.parents[1])]
    import linetags as module
    return module


def emit(lines: list[str]) -> None:
    for line in lines:
        os.write(1, line.encode("utf-8", "surrogateescape") + b"\r\n")


def follow(line: str, scenario: str, seed: str) -> str:
    """``line`` with the run's echo or start rewritten for ``scenario`` and ``seed``."""
    if line.startswith("run "):
        return f"run {scenario} {seed}"
    if " start " in line:
        return re.sub(r"scenario=\S+ seed=\S+", f"scenario={scenario} seed={seed}", line)
    return line


def forever() -> None:
    while True:
        time.sleep(60)


def main() -> int:
    env = os.environ
    if "FAKE_QEMU_PIDFILE" in env:
        with open(env["FAKE_QEMU_PIDFILE"], "w") as f:
            f.write(str(os.getpid()))
    if "FAKE_QEMU_ARGVFILE" in env:
        with open(env["FAKE_QEMU_ARGVFILE"], "w") as f:
            json.dump(sys.argv[1:], f)
    if "FAKE_QEMU_BOOTLOG" in env:
        with open(env["FAKE_QEMU_BOOTLOG"], "a") as f:
            f.write("boot\n")
    mode = env.get("FAKE_QEMU_MODE", "replay")
    if mode in ("silent", "deaf"):
        if mode == "deaf":
            for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_IGN)
        forever()
    with open(env["FAKE_QEMU_TRANSCRIPT"], "rb") as f:
        lines = f.read().decode("utf-8", "surrogateescape").split("\n")[:-1]
    ready = next(i for i, line in enumerate(lines) if line.endswith(" ready")) + 1
    if mode == "closes":
        emit(lines[:ready - 1])
        for fd in (0, 1, 2):
            os.close(fd)
        forever()
    emit(lines[:ready])
    if mode == "quits":
        return 0
    command = sys.stdin.buffer.readline().decode().split()
    rest = lines[ready:]
    if "FAKE_QEMU_FOLLOW" in env and command[0] == "run":
        followed = [follow(line, command[1], command[2]) for line in rest]
        if followed != rest:  # another scenario or seed: its lines carry that seed's tags
            rest = linetags().retag(lines[:ready] + followed)[ready:]
    if mode == "flood":
        while True:
            os.write(1, b"U" * 4096)
    if mode == "ablines":  # short noise lines forever: many small objects for the harness
        seq = sum(line.startswith("@KT ") for line in lines[:ready])
        tag_kt = linetags().tag_kt
        while True:  # an out marker every 512 lines: noise in a row is ConsoleNoise, this is a flood
            out = tag_kt(f'@KT {seq} out pid=1 len=3 data="ab\\x0a"', 0)  # before start: key 0
            os.write(1, b"ab\n" * 512 + out.encode() + b"\r\n")
            seq += 1
    if mode == "noise":  # short noise lines forever, not a marker among them
        while True:
            os.write(1, b"ab\r\n" * 4096)
    if mode == "markerflood":  # well-formed tick markers forever: the limit cuts one in half
        start = next(i for i, line in enumerate(rest) if " start " in line) + 1
        emit(rest[:start])
        seq = int(rest[start - 1].split()[1]) + 1
        key = int(rest[start - 1].rsplit("seed=", 1)[1])
        tag_kt = linetags().tag_kt
        while True:
            os.write(1, "".join(tag_kt(f"@KT {seq + i} tick pid=1 n={seq + i}", key) + "\r\n"
                                for i in range(200)).encode())
            seq += 200
    if mode == "die":
        emit(rest[:2])
        return 3
    if mode == "spin":  # replay up to start, then compute without a word (a guest that stalled)
        emit(rest[:next(i for i, line in enumerate(rest) if " start " in line) + 1])
        while True:
            pass
    if mode == "longline":  # one huge line with no line end, then QEMU is gone
        emit(rest[:next(i for i, line in enumerate(rest) if " start " in line) + 1])
        left = int(env.get("FAKE_QEMU_LINE_BYTES", LINE_BYTES))
        while left > 0:
            left -= os.write(1, b"a" * min(left, 1 << 16))
        return 0
    if mode in ("stuck", "cut"):
        emit(rest[:next(i for i, line in enumerate(rest) if " start " in line) + 1])
        if mode == "cut":
            os.write(1, CUT.encode())
        forever()
    emit(rest)
    if mode == "hang":
        forever()
    return int(env.get("FAKE_QEMU_EXIT", "0"))


if __name__ == "__main__":
    sys.exit(main())
