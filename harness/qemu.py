"""QEMU on pipes: the command line, reading the console, cleanup.

The console is QEMU's stdio: its stdout and stderr are one pipe the harness
reads, its stdin a pipe the harness writes commands into. Not a pty: QEMU's
UART models hand the chardev one byte per write(), and a byte through a
terminal (line discipline, output processing, a wake-up of the reader)
costs QEMU far more than a byte into a pipe whose reader gathers
(measured on malloc_exhaustion: about a quarter of QEMU's CPU time). A
pipe has no echo, no line editing and no \r\n translation either: what
the kernel prints is what the harness reads.

``Qemu`` is a context manager. However the block is left (normally, by a
verdict, by KeyboardInterrupt), QEMU is killed if it still runs, reaped,
and its pipes closed: politely after a run, with SIGKILL at once when the
harness is interrupted (Ctrl-C must stop a session within 2 s; QEMU runs
in a session of its own, so the terminal's Ctrl-C never reaches it).
Should the harness process itself die (SIGKILL, a crashed xdist worker),
the kernel sends QEMU SIGKILL (PR_SET_PDEATHSIG). No QEMU outlives its run.

Jailed (``jail=True``, harness.jail): the process spawned is bwrap, and QEMU
runs inside as the jail's pid 1 (``--as-pid-1``), bwrap's only child. Its
CPU time is read from QEMU's own host pid (``cpu_seconds``), found once
bwrap has started it. Killing bwrap kills QEMU (``--die-with-parent``, and
the pid namespace dies with its pid 1); after reaping, whatever still runs
with the jail's host uid is killed too (harness.jail.kill_uid). The child
inherits the two pipes as fds 0-2 and nothing else (every other fd is
closed before the jail's preexec opens what bwrap copies in).

Reading uses select() + os.read() in large chunks (see GATHER) and splits
lines incrementally. The console's end is the pipe's end: every holder of
its write side (QEMU, bwrap) has closed it or exited.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import errno
import os
import select
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from . import jail as _jail
from .boot import PARK_ADDR, PARK_CODE, SECONDARIES, BootMode
from .errors import QemuNotFound
from .text import decode

DEFAULT_QEMU = "qemu-system-aarch64"
SERIAL = {
    "mini": ["-serial", "null", "-serial", "stdio"],  # serial 1 is the PL011, 2 the mini UART
    "pl011": ["-serial", "stdio"],
}
#: -icount shift=N: every guest instruction advances the guest's clocks by 2**N ns,
#: exactly, whatever the host's load, so a seed always gives the same transcript.
#: The shift only rescales guest time: how many instructions fit in one of the
#: kernel's ticks. 0 suits a 1 kHz tick (the bundled kernel, 1 M instructions a
#: tick); a lesson kernel's 200 ms tick at 0 costs 200 M instructions (~2 s of
#: QEMU) a tick, so EL0 sessions choose it from the kernel's measured time slice
#: (harness.calibrate). QEMU allows 0..10.
DEFAULT_SHIFT = 0
MAX_SHIFT = 10


def deterministic_args(shift: int = DEFAULT_SHIFT) -> list[str]:
    """QEMU's arguments for a deterministic run with -icount shift ``shift``."""
    if not 0 <= shift <= MAX_SHIFT:
        raise ValueError(f"icount shift must be 0..{MAX_SHIFT}, not {shift}")
    return ["-icount", f"shift={shift},align=off,sleep=off", "-rtc", "clock=vm"]


DETERMINISTIC = deterministic_args()
CHUNK = 1 << 16  #: bytes asked of os.read at a time
#: QEMU writes the console one byte per write(); reading each dribble as it
#: comes costs a wake-up per byte, of the harness and inside QEMU's write.
#: So once select() says data is there, the reader lets this long pass to
#: gather more before it reads: at most ~1000 wake-ups a second, ~1 ms of
#: latency. The pipe buffers (64 KiB) far more than QEMU's UART emits in
#: that time, so QEMU never waits for it.
GATHER = 0.001
TERM_GRACE = 0.05  #: seconds between close()'s escalation steps (SIGHUP, SIGINT, SIGKILL)
KILL_WAIT = 1.0  #: seconds an interrupted harness waits for QEMU to die of SIGKILL

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_MAX_FD = os.sysconf("SC_OPEN_MAX")
_EXEC_FAILED = 127  #: the spawned child's exit status when it could not exec


def qemu_argv(qemu: str, kernel: Path, console: str, deterministic: bool,
              boot: BootMode | None = None, shift: int = DEFAULT_SHIFT) -> list[str]:
    """The QEMU command line for one boot of ``kernel`` with ``console`` on
    stdio, started as ``boot`` says (harness.boot; None: -kernel, EL2);
    ``deterministic``: with -icount shift ``shift``."""
    place = boot.qemu_args(kernel) if boot is not None else ["-kernel", str(kernel)]
    if deterministic and place[0] == "-kernel":
        place = parked_secondaries() + place
    argv = [qemu, "-M", "raspi3b", *place, "-display", "none",
            "-monitor", "none", "-no-reboot", "-semihosting-config", "enable=on,target=native",
            *SERIAL[console]]
    return argv + deterministic_args(shift) if deterministic else argv


def qemu_cpu_seconds(pid: int | None) -> float:
    """User + system CPU time QEMU has used so far (0 once it is gone)."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def parked_secondaries() -> list[str]:
    """Loader entries that park cores 1-3 in ``1: wfi; b 1b`` (harness.boot's
    park) for a -kernel boot too. QEMU's own -kernel stub has them spin in a
    wfe loop polling the spin table: under -icount they are never idle, so
    guest time never jumps to the next timer while core 0 waits in WFI for
    the harness's command, and where in a tick the command lands (so every
    later tick's place in the program) follows the host's timing. Measured
    on the bundled kernel, fairness seed 99 under load: 4 of 6 transcripts
    differed unparked, none parked. The loaders' reset runs after -kernel's
    and sets those cores' PC to the park."""
    args = ["-device", f"loader,addr=0x{PARK_ADDR:x},data=0x{PARK_CODE:x},data-len=8"]
    for cpu in SECONDARIES:
        args += ["-device", f"loader,addr=0x{PARK_ADDR:x},cpu-num={cpu}"]
    return args


def find_qemu(qemu: str) -> str:
    """The full path of the QEMU executable ``qemu``; QemuNotFound if there is none."""
    found = shutil.which(qemu)
    if found is None:
        raise QemuNotFound(qemu)
    return found


def die_with_parent(parent: int) -> Callable[[], None]:
    """A preexec_fn: the child gets SIGKILL when ``parent`` dies."""
    def preexec() -> None:
        if _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)
    return preexec


class SpawnFailed(OSError):
    """The child could not start the command (exec failed, or its preexec raised)."""


class _Child:
    """One spawned process on pipes: ``argv`` run with stdin from one pipe and
    stdout and stderr into another, in a session of its own, every other fd
    closed before ``preexec`` runs (so only what preexec opens is inherited).
    Raises SpawnFailed with the child's reason when the exec fails."""

    def __init__(self, argv: list[str], preexec: Callable[[], None]) -> None:
        in_r, self.stdin = os.pipe()
        self.stdout, out_w = os.pipe()
        err_r, err_w = os.pipe()  # close-on-exec: EOF at once when the exec works
        self.status: int | None = None  #: os.waitpid's status once reaped
        self.pid = os.fork()
        if self.pid == 0:  # the child: nothing here may return
            try:
                os.setsid()
                os.dup2(in_r, 0)
                os.dup2(out_w, 1)
                os.dup2(out_w, 2)
                os.closerange(3, err_w)
                os.closerange(err_w + 1, _MAX_FD)
                preexec()
                os.execvp(argv[0], argv)
            except BaseException as e:  # noqa: B036 - the child reports and dies whatever it is
                os.write(err_w, f"cannot run {argv[0]}: {e}".encode(errors="replace"))
            os._exit(_EXEC_FAILED)
        for fd in (in_r, out_w, err_w):
            os.close(fd)
        with os.fdopen(err_r, "rb") as f:
            why = f.read()
        if why:
            self.wait(None)
            self.close_pipes()
            raise SpawnFailed(errno.ENOEXEC, why.decode(errors="replace"))

    def alive(self) -> bool:
        """True while the process runs (reaps it if it has ended)."""
        if self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == self.pid:
                self.status = status
        return self.status is None

    def wait(self, deadline: float | None) -> bool:
        """Wait until the process ends (None: however long), reap it; False
        if it still runs at ``deadline`` (time.monotonic())."""
        if self.status is not None or not self.alive():
            return True
        if deadline is None:
            self.status = os.waitpid(self.pid, 0)[1]
            return True
        pidfd = os.pidfd_open(self.pid)
        try:
            select.select([pidfd], [], [], max(0.0, deadline - time.monotonic()))
        finally:
            os.close(pidfd)
        return not self.alive()

    def kill(self, sig: int) -> None:
        """Send ``sig`` if the process still runs."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def exit_status(self) -> tuple[int | None, int | None]:
        """(exit code, killing signal) of the reaped process."""
        assert self.status is not None, "not reaped yet"
        if os.WIFSIGNALED(self.status):
            return None, os.WTERMSIG(self.status)
        return os.WEXITSTATUS(self.status), None

    def close_pipes(self) -> None:
        """Close the harness's ends of the pipes (idempotent)."""
        for fd in (self.stdin, self.stdout):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.stdin = self.stdout = -1


class ReadTimeout(Exception):
    """The deadline passed before a whole line arrived."""


class OutputLimit(Exception):
    """QEMU printed more than ``max_output`` bytes."""


@dataclass(frozen=True)
class ExitStatus:
    """How QEMU ended: an exit code, or the signal that killed it (jailed:
    both, the code being bwrap's 128+N, see _BWRAP_SIGNALLED)."""

    code: int | None
    signal: int | None

    def __str__(self) -> str:
        if self.code is not None and self.signal is not None:
            return (f"killed by signal {self.signal} ({signal.Signals(self.signal).name}; "
                    f"bwrap exit status {self.code})")
        if self.code is not None:
            return f"exit status {self.code}"
        return f"killed by signal {self.signal} ({signal.Signals(self.signal).name})"


class Qemu:
    """One QEMU process and its console (see the module docstring).

    ``max_output``: the most console bytes kept; past it read_line raises
    OutputLimit (after handing out the lines that fit).
    """

    def __init__(self, argv: list[str], max_output: int, jail: bool = False) -> None:
        self.argv = argv
        self.max_output = max_output
        self.jail = jail
        self.bytes_read = 0
        self.pid: int | None = None  #: the spawned process (QEMU, or its bwrap), kept after close()
        self.qemu_pid: int | None = None  #: QEMU's own host pid (jailed: found on first need)
        self.uid: int | None = None  #: the jail's host uid (None: bare, or not root)
        self._child: _Child | None = None
        self._lines: collections.deque[str] = collections.deque()
        self._partial = bytearray()  # bytes after the last line end
        self._eof = False
        self._flooded = False

    def __enter__(self) -> Qemu:
        if self.jail:
            jailed = _jail.qemu_command(self.argv)
            argv, preexec = jailed.argv, _jail.preexec(os.getpid(), jailed.opens)
        else:
            argv, preexec = self.argv, die_with_parent(os.getpid())
        child = _Child(argv, preexec)
        self._child, self.pid = child, child.pid
        if self.jail:
            self.uid = _jail.host_uid(child.pid)
        else:
            self.qemu_pid = child.pid
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        # KeyboardInterrupt, SystemExit, pytest.exit: not a verdict, the harness is stopping.
        self.close(at_once=exc_type is not None and not issubclass(exc_type, Exception))

    def cpu_seconds(self) -> float:
        """User + system CPU time QEMU itself has used so far (never bwrap's);
        0 before a jailed QEMU has started and once it is gone."""
        if self.qemu_pid is None and self.pid is not None:
            self.qemu_pid = _jail.child_of(self.pid)
        return qemu_cpu_seconds(self.qemu_pid)

    def send(self, text: str) -> None:
        """Type ``text`` on QEMU's console. If QEMU has already hung up, the
        text is lost and the next read_line reports the end of the console."""
        assert self._child is not None, "QEMU is not running"
        data = text.encode("ascii")
        try:
            while data:
                data = data[os.write(self._child.stdin, data):]
        except OSError as e:  # EPIPE: QEMU closed its stdin or is gone
            if e.errno not in (errno.EPIPE, errno.EIO):
                raise

    def has_line(self) -> bool:
        """True if a whole line has been read and waits to be handed out
        (read_line then returns at once)."""
        return bool(self._lines)

    def read_line(self, deadline: float) -> str | None:
        """The next console line without its line end; None once QEMU has
        closed the console (an unterminated last fragment comes out as a line
        first). ``deadline`` is a time.monotonic() value; raises ReadTimeout
        when it passes, OutputLimit past max_output bytes."""
        while not self._lines:
            if self._flooded:
                raise OutputLimit()
            if self._eof:
                return None
            self._fill(deadline)
        return self._lines.popleft()

    def _fill(self, deadline: float) -> None:
        assert self._child is not None, "QEMU is not running"
        fd = self._child.stdout
        timeout = deadline - time.monotonic()
        if timeout <= 0 or not select.select([fd], [], [], timeout)[0]:
            raise ReadTimeout()
        time.sleep(GATHER)
        try:
            chunk = os.read(fd, CHUNK)
        except OSError as e:  # EIO: a hung-up terminal, should the console ever be one
            if e.errno != errno.EIO:
                raise
            chunk = b""
        at_eof = not chunk
        room = self.max_output - self.bytes_read
        if len(chunk) > room:
            chunk, self._flooded = chunk[:room], True
        self.bytes_read += len(chunk)
        pieces = chunk.split(b"\n")
        self._partial += pieces[0]  # appending: a long unterminated line costs O(n)
        if len(pieces) > 1:
            complete = [bytes(self._partial), *pieces[1:-1]]
            self._partial = bytearray(pieces[-1])
            self._lines.extend(decode(line.rstrip(b"\r")) for line in complete)
        if at_eof and not self._flooded:  # no more will come: a partial line is a line
            fragment = self.take_fragment()
            if fragment is not None:
                self._lines.append(fragment)
        # A flood's cut line is never handed out to be parsed (a half marker would
        # read as a protocol error): it stays for take_fragment, then OutputLimit.
        self._eof = at_eof

    def take_fragment(self) -> str | None:
        """The unterminated text read after the last line end, if any, now
        handed out (for a verdict's tail when a deadline passes mid-line)."""
        fragment, self._partial = bytes(self._partial), bytearray()
        return decode(fragment.rstrip(b"\r")) if fragment else None

    def wait_exit(self, deadline: float) -> ExitStatus | None:
        """Wait until QEMU exits, reap it and return how; None if it still
        runs at ``deadline`` (time.monotonic())."""
        assert self._child is not None, "QEMU is not running"
        return _wait(self._child, deadline, self.jail)

    def close(self, at_once: bool = False) -> None:
        """Kill QEMU if it still runs (SIGHUP, SIGCONT, SIGINT, then SIGKILL,
        TERM_GRACE apart; ``at_once``: SIGKILL first), reap it, close the
        pipes. Idempotent."""
        child, self._child = self._child, None
        if child is None:
            return
        try:
            if self.jail and child.alive():  # QEMU first, so that bwrap reaps it and exits
                qemu = self.qemu_pid or _jail.child_of(child.pid)
                if qemu is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(qemu, signal.SIGKILL)
                child.wait(time.monotonic() + KILL_WAIT)
            steps = (signal.SIGKILL,) if at_once else (signal.SIGHUP, signal.SIGINT, signal.SIGKILL)
            for sig in steps:
                if sig == signal.SIGINT:
                    child.kill(signal.SIGCONT)  # a stopped QEMU must run to die of SIGINT
                child.kill(sig)
                grace = KILL_WAIT if sig == signal.SIGKILL else TERM_GRACE
                if child.wait(time.monotonic() + grace):
                    break
        finally:
            child.close_pipes()
            if self.jail:  # QEMU dies with bwrap; this is in case anything of the jail did not
                _jail.kill_uid(self.uid)


#: bwrap exits 128+N when the command it ran died of signal N (its monitor's
#: convention). A jailed ExitStatus keeps that code and fills ``signal`` with N,
#: so "QEMU killed by a signal" reads the same jailed or bare. A guest can make
#: QEMU exit 128+N itself (semihosting SYS_EXIT); the two cannot be told apart.
_BWRAP_SIGNALLED = 128
_SIGNALS = {int(s) for s in signal.Signals}


def _wait(child: _Child, deadline: float, jailed: bool = False) -> ExitStatus | None:
    """Wait until ``child`` exits, reap it and return how; None if it still
    runs at ``deadline`` (time.monotonic()). ``jailed``: ``child`` is bwrap
    (see _BWRAP_SIGNALLED)."""
    if not child.wait(deadline):
        return None
    code, sig = child.exit_status()
    if jailed and sig is None and code is not None and code - _BWRAP_SIGNALLED in _SIGNALS:
        sig = code - _BWRAP_SIGNALLED
    return ExitStatus(code, sig)
