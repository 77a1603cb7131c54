"""``python -m harness gdb`` (``make gdb``): boot one run with QEMU's gdb stub
waiting, and debug it with gdb-multiarch on the kernel's ELF, as xv6's
``make qemu-gdb`` does.

    python -m harness gdb SCENARIO [--seed N] [--kernel IMG | --submission TREE-or-IMG]
                          [--boot auto|el2|el3] [--entry SYM] [--icount-shift N]
                          [--socket PATH | --port N] [--gdb EXE] [--no-gdb] [--batch] [--ex CMD]...

What boots is the run ``make check`` boots for that scenario and seed: the
same image (a --submission tree ported as the suite ports it, harness.port,
into the same build/port/<name>; its scenario and seed patched in,
harness.el0), and harness.qemu's command line for it (the boot mode of
harness.boot, -icount with the shift the session uses: 0 for the bundled
kernel, else the one harness.calibrate chooses: from a --kernel's boot
marker, or measured for a --submission), plus ``-S``: every
core waits for gdb at its first instruction.

The stub listens on a unix socket (or a 127.0.0.1 tcp port) that the
harness creates and hands QEMU as an open descriptor (``-chardev
socket,fd=N``): it works the same inside the bubblewrap jail
(harness.jail), whose own network namespace a port QEMU opened would not
leave. gdb starts on the ELF (symbols), connects, sets a temporary
breakpoint at core 0's first instruction in the image (harness.boot) and
continues to it. The console goes to build/gdb/<scenario>-<seed>.txt; for a
kernel with markers ``run <scenario> <seed>`` is typed once it says ready.
When gdb exits QEMU is killed. Ctrl-C in gdb stops the guest, not QEMU.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from . import jail as _jail
from .boot import BOOTS, BootMode, boot_mode
from .build import ensure_built
from .errors import HarnessError
from .events import Ready
from .prng import parse_seed
from .qemu import DEFAULT_QEMU, DEFAULT_SHIFT, MAX_SHIFT, die_with_parent, find_qemu, qemu_argv
from .runner import DEFAULT_KERNEL

ROOT = Path(__file__).resolve().parents[1]
CONSOLE_DIR = "build/gdb"  #: where the console of a gdb run is written
GDB = "gdb-multiarch"  #: Debian's gdb for every architecture
APT_GDB = "apt-get install --no-install-recommends gdb-multiarch"
STUB_FD = 5  #: the stub's listening socket, as QEMU sees it (the jail opens 3 and 4)
STOP_WAIT = 5.0  #: seconds QEMU gets to die once killed


class GdbError(Exception):
    """A gdb session that cannot start; its text is one line for the user."""


@dataclass(frozen=True)
class Target:
    """One run to debug: what QEMU boots and how, and the symbols for gdb."""

    image: Path  #: the image QEMU boots (for --submission: the copy with scenario and seed patched in)
    kernel: Path  #: the kernel as built (the jail policy's subject; the patched copy is the same kernel)
    elf: Path | None  #: its ELF, with symbols, if there is one
    boot: BootMode
    console: str
    shift: int  #: -icount shift
    command: str | None  #: typed on the console once the kernel is ready (marker kernels)
    scenario: str
    seed: int


def _seed(text: str) -> int:
    try:
        return parse_seed(text)
    except ValueError:
        raise argparse.ArgumentTypeError("seed must be a number in 0..2**64-1") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``gdb`` subcommand's options (module docstring)."""
    p.add_argument("scenario", help="the scenario of the run to debug (a report's failed scenario)")
    p.add_argument("--seed", type=_seed, help="the run's seed (a report's --seed); default: random, printed")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--kernel", type=Path, help=f"a kernel image with markers (default: {DEFAULT_KERNEL})")
    what.add_argument("--submission", type=Path, help="a kernel tree (ported with the suite's EL0 "
                      "programs, as make check SUBMISSION= does) or such an image")
    p.add_argument("--boot", choices=BOOTS, default="auto", help="how the kernel is started (harness/boot.py)")
    p.add_argument("--entry", default=None, help="the user program's function in a --submission tree")
    p.add_argument("--icount-shift", type=int, choices=range(MAX_SHIFT + 1), metavar="N",
                   help="QEMU's -icount shift (default: as make check chooses it)")
    p.add_argument("--qemu", default=DEFAULT_QEMU, help="QEMU executable")
    p.add_argument("--gdb", default=GDB, help=f"the debugger (default: {GDB})")
    stub = p.add_mutually_exclusive_group()
    stub.add_argument("--socket", type=Path, help="the stub's unix socket (default: a fresh one under /tmp)")
    stub.add_argument("--port", type=int, help="serve the stub on 127.0.0.1:PORT instead of a unix socket")
    p.add_argument("--no-gdb", action="store_true", help="start no debugger: print how to attach one, "
                   "wait until QEMU ends (Ctrl-C ends it)")
    p.add_argument("--batch", action="store_true", help="run gdb in batch mode (the --ex commands, then "
                   "exit), e.g. for a script")
    p.add_argument("--ex", action="append", default=[], metavar="CMD",
                   help="a gdb command to run once stopped at the entry (repeatable)")
    p.add_argument("--unsafe-no-sandbox", action="store_true",
                   help="boot a kernel this checkout did not build without a jail where none can be made")


def _marker_target(args: argparse.Namespace, seed: int) -> Target:
    from .calibrate import calibrate_markers
    from .image import inspect_image
    from .runner import RunConfig, check_request, choose_console
    kernel = args.kernel
    if kernel is None:
        kernel = ROOT / DEFAULT_KERNEL
        ensure_built(kernel, [DEFAULT_KERNEL], ROOT)
    check_request(args.scenario, seed)
    cfg = RunConfig(kernel=kernel, qemu=args.qemu, boot=args.boot,
                    jail="unsafe" if args.unsafe_no_sandbox else "auto")
    console = choose_console(cfg, inspect_image(kernel))[0]
    shift = args.icount_shift
    if shift is None:  # as make check chooses it: a --kernel's from its boot marker (harness.calibrate)
        found = None if args.kernel is None else calibrate_markers(cfg)
        shift = DEFAULT_SHIFT if found is None else found.shift
    return Target(kernel, kernel, _elf_of(kernel), boot_mode(kernel, args.boot), console, shift,
                  f"run {args.scenario} {seed}", args.scenario, seed)


def _el0_target(args: argparse.Namespace, seed: int, workdir: Path) -> Target:
    from .calibrate import calibrate
    from .el0 import patch_image
    from .el0_runner import El0Config
    from .handin import resolve_folder
    from .image import inspect_image
    from .port import ENTRY, port_tree
    from .runner import RunConfig, choose_console
    submission = args.submission.resolve()
    elf = None
    if submission.is_dir():
        submission = resolve_folder(submission)[0]
    if submission.is_dir():
        ported = port_tree(submission, ROOT / "build" / "kt-user.o", ROOT / "build" / "port" / submission.name,
                           unsafe=args.unsafe_no_sandbox, entry=args.entry or ENTRY)
        kernel, elf = ported.image, ported.elf
    elif submission.is_file():
        kernel, elf = submission, _elf_of(submission)
    else:
        raise GdbError(f"--submission {args.submission}: no such tree or image")
    cfg = RunConfig(kernel=kernel, qemu=args.qemu, boot=args.boot,
                    jail="unsafe" if args.unsafe_no_sandbox else "auto")
    console = choose_console(cfg, inspect_image(kernel, want_mode=None))[0]
    shift = args.icount_shift
    if shift is None:
        print("kt gdb: measuring the kernel's time slice for the -icount shift (one boot)...",
              file=sys.stderr, flush=True)
        shift = calibrate(El0Config(cfg), workdir).shift
    image = patch_image(kernel, workdir / f"{args.scenario}-{seed}.img", args.scenario, seed)
    return Target(image, kernel, elf, boot_mode(kernel, args.boot), console, shift, None, args.scenario, seed)


def _elf_of(image: Path) -> Path | None:
    elf = image.with_suffix(".elf")
    return elf if elf.is_file() else None


def qemu_command(target: Target, qemu: str) -> list[str]:
    """harness.qemu's command line for the target's run, waiting for gdb on fd STUB_FD."""
    argv = qemu_argv(find_qemu(qemu), target.image, target.console, True, target.boot, target.shift)
    return argv + ["-S", "-chardev", f"socket,id=ktgdb,fd={STUB_FD},server=on,wait=off",
                   "-gdb", "chardev:ktgdb"]


def gdb_script(target: Target, remote: str) -> str:
    """gdb's commands: the ELF's symbols, connect, run core 0 to its first
    instruction in the image (an EL3 boot starts there; -kernel's starts in
    QEMU's stub at 0)."""
    entry = f"0x{target.boot.entry:x}"
    lines = ["set architecture aarch64"]
    lines += [] if target.elf is None else [f"file {target.elf}"]
    lines += [f"target remote {remote}", f"if $pc != {entry}", f"  tbreak *{entry}", "  continue", "end"]
    return "\n".join(lines) + "\n"


def gdb_command(gdb: str, script: Path, extra: list[str], batch: bool) -> list[str]:
    """gdb running ``script`` (gdb_script's), then the commands ``extra``."""
    argv = [gdb, "-q"] + (["-batch", "-nx"] if batch else []) + ["-x", str(script)]
    for command in extra:
        argv += ["-ex", command]
    return argv


def _listen(path: Path | None, port: int | None) -> tuple[socket.socket, str]:
    """The stub's listening socket and what gdb's ``target remote`` takes."""
    if port is not None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(1)
        return sock, f"127.0.0.1:{sock.getsockname()[1]}"
    assert path is not None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(1)
    return sock, str(path)


def _preexec(stub: int, then: Callable[[], None]) -> Callable[[], None]:
    def preexec() -> None:
        os.dup2(stub, STUB_FD)  # inheritable; before the jail's own opens (3, 4)
        then()
    return preexec


class _Console(threading.Thread):
    """Copies QEMU's console to a file; types ``command`` once the kernel is ready."""

    def __init__(self, out: IO[bytes], into: IO[bytes], log: Path, command: str | None) -> None:
        super().__init__(daemon=True)
        self.out, self.into, self.log, self.command = out, into, log, command

    def run(self) -> None:
        from .protocol import Parser
        from .text import decode
        parser, n = Parser(), 0
        with open(self.log, "wb") as f:
            for raw in iter(self.out.readline, b""):
                f.write(raw)
                f.flush()
                n += 1
                if self.command is None:
                    continue
                try:
                    item = parser.feed(n, decode(raw.rstrip(b"\r\n")))
                except HarnessError:
                    continue
                if isinstance(item, Ready):
                    try:
                        self.into.write(self.command.encode("ascii") + b"\n")
                        self.into.flush()
                    except OSError:
                        return
                    self.command = None


@contextmanager
def _quiet_interrupts() -> Iterator[None]:
    """Ctrl-C goes to gdb (to stop the guest), not to this process. A
    handler, not SIG_IGN: gdb starts with the default (exec resets handlers)."""
    old = signal.signal(signal.SIGINT, lambda *_: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _stop(proc: subprocess.Popen[bytes], jailed: bool) -> None:
    """Kill QEMU (jailed: QEMU, then bwrap, then what runs as the jail's uid) and reap it."""
    if proc.poll() is None:
        if jailed and (inner := _jail.child_of(proc.pid)) is not None:
            try:
                os.kill(inner, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.kill()
    try:
        proc.wait(timeout=STOP_WAIT)
    except subprocess.TimeoutExpired:
        pass
    if jailed:
        _jail.kill_uid(_jail.host_uid(proc.pid))


def debug(target: Target, args: argparse.Namespace, sockdir: Path) -> int:
    """Boot the target with the stub waiting, run gdb (or wait), kill QEMU; gdb's exit status."""
    argv = qemu_command(target, args.qemu)
    jailed = _jail.should_jail("unsafe" if args.unsafe_no_sandbox else "auto", argv[0], target.kernel)
    gdb = None if args.no_gdb else shutil.which(args.gdb)
    if not args.no_gdb and gdb is None:
        raise GdbError(f"{args.gdb} is not installed: {APT_GDB} (or --gdb another debugger)")
    sock, remote = _listen(args.socket or sockdir / "gdb.sock", args.port)
    log = ROOT / CONSOLE_DIR / f"{target.scenario}-{target.seed}.txt"
    log.parent.mkdir(parents=True, exist_ok=True)
    if jailed:
        command = _jail.qemu_command(argv)
        argv, then = command.argv, _jail.preexec(os.getpid(), command.opens)
    else:
        then = die_with_parent(os.getpid())
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                close_fds=False, start_new_session=True,
                                preexec_fn=_preexec(sock.fileno(), then))
    finally:
        sock.close()  # QEMU holds it now
    assert proc.stdout is not None and proc.stdin is not None
    console = _Console(proc.stdout, proc.stdin, log, target.command)
    console.start()
    where = "" if target.elf is None else f" with symbols from {target.elf}"
    print(f"kt gdb: {target.scenario} seed {target.seed}, booted {target.boot.describe()}, -icount "
          f"shift {target.shift}{', jailed' if jailed else ''}; QEMU (pid {proc.pid}) waits for gdb on "
          f"{remote}{where}; console: {log}", file=sys.stderr, flush=True)
    try:
        if gdb is None:
            print(f"kt gdb: attach with: {GDB} -ex 'target remote {remote}'"
                  + ("" if target.elf is None else f" {target.elf}") + " (Ctrl-C here ends QEMU)",
                  file=sys.stderr, flush=True)
            try:
                return proc.wait()
            except KeyboardInterrupt:
                return 0
        script = sockdir / "start.gdb"
        script.write_text(gdb_script(target, remote))
        with _quiet_interrupts():
            return subprocess.run(gdb_command(gdb, script, args.ex, args.batch), check=False).returncode
    finally:
        _stop(proc, jailed)
        console.join(timeout=STOP_WAIT)
        with contextlib.suppress(OSError):
            proc.stdin.close()
        if not console.is_alive():  # else its readline holds the file (a QEMU that would not die)
            proc.stdout.close()


def run(args: argparse.Namespace) -> int:
    """``python -m harness gdb``: the exit status (gdb's, 1 on a harness error)."""
    import random
    seed = random.getrandbits(64) if args.seed is None else args.seed
    if args.seed is None:
        print(f"kt gdb: seed {seed} (random)", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="kt-gdb-") as tmp:
        try:
            if args.submission is not None:
                target = _el0_target(args, seed, Path(tmp))
            else:
                target = _marker_target(args, seed)
            return debug(target, args, Path(tmp))
        except (GdbError, HarnessError) as e:
            print(f"kt gdb: {e}", file=sys.stderr)
            return 1
        except (OSError, ValueError) as e:  # a socket path taken, a bad scenario name
            print(f"kt gdb: error: {e}", file=sys.stderr)
            return 2
