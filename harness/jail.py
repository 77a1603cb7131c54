"""Jails for code the grader did not write: a QEMU booting a student's kernel,
and a student's ``make`` (docs/grading.md, "Threat model and jails").

A jail is bubblewrap (``bwrap``) with new user, pid, network, ipc, uts and
cgroup namespaces, every capability dropped, no further user namespaces, a
new session, a clean environment, read-only ``/usr`` (and the ``/bin``,
``/lib``, ``/lib64``, ``/sbin`` links into it), its own ``/proc`` and a
minimal ``/dev``, and a private size-capped tmpfs ``/tmp`` as its only
writable place. Nothing else of the host is visible: no checkout, no
``/root``, no ``/home``, no classmate. Files a jail needs (the kernel image,
a QEMU outside ``/usr``) are opened by the harness and copied in from a file
descriptor (``--ro-bind-data``), so the unprivileged jail never needs the
right to walk to them.

When the harness runs as root, the jail runs as an unprivileged host uid of
its own, ``UID_BASE`` + the pid of the jail's first process (unique among
live processes), so RLIMIT_NPROC counts that jail's processes alone and
binds (it does not bind root). The uid is dropped in the child before bwrap
runs; PR_SET_PDEATHSIG is set after the drop (a credential change clears
it). After a jail ends, ``kill_uid`` kills whatever still runs with its uid
(belt and braces: the pid namespace already dies with its first process).

``KT_JAIL=off`` in the environment makes ``unavailable()`` say so: the
harness then behaves as on a machine where namespaces cannot be made (the
self-tests of the refusal, and the bare figures of ``make bench``).
"""

from __future__ import annotations

import ctypes
import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

JAIL_ENV = "KT_JAIL"  #: "off": act as if no jail could be made
UID_BASE = 2_000_000_000  #: host uids of jails: UID_BASE + pid (pids stay below 2^22)
INNER_UID = 1000  #: the uid (and gid) a jailed process sees itself as
QEMU_TMP_BYTES = 16 << 20  #: the QEMU jail's /tmp (semihosting's only reach)
KERNEL_IN_JAIL = "/kernel8.img"  #: where the image is, inside a QEMU jail
QEMU_IN_JAIL = "/qemu"  #: where a QEMU from outside /usr is, inside the jail
#: QEMU's own seccomp filter: no exec, no setuid, no priority/affinity games.
QEMU_SANDBOX = ["-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"]
REAP_WAIT = 1.0  #: seconds kill_uid waits for a jail's leftovers to vanish

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _base(tmp_bytes: int) -> list[str]:
    """The bwrap options every jail shares (module docstring)."""
    return ["--unshare-all", "--unshare-user", "--uid", str(INNER_UID), "--gid", str(INNER_UID),
            "--cap-drop", "ALL", "--disable-userns", "--die-with-parent", "--new-session",
            "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/tmp",
            "--setenv", "LANG", "C.UTF-8",
            "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
            "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/sbin", "/sbin",
            "--proc", "/proc", "--dev", "/dev", "--size", str(tmp_bytes), "--tmpfs", "/tmp",
            "--chdir", "/tmp"]


def unavailable() -> str | None:
    """None if a jail can be made here; else why not, in one line."""
    if os.environ.get(JAIL_ENV, "").lower() in ("off", "0", "no", "false"):
        return f"jails are turned off ({JAIL_ENV}={os.environ[JAIL_ENV]})"
    return _probe()


@functools.lru_cache(maxsize=None)
def _probe() -> str | None:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap is not installed (apt-get install bubblewrap)"
    try:
        done = subprocess.run([bwrap, *_base(1 << 20), "--", "true"], capture_output=True, text=True,
                              timeout=10, preexec_fn=Drop(os.getpid()), check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"bwrap could not run: {e}"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return f"bwrap cannot create the jail's namespaces here: {last}"
    return None


@dataclass
class Drop:
    """A preexec_fn for a jail's first process: open ``opens`` (target fd,
    path) as the harness, set ``limits`` (soft = hard), drop to the jail's
    host uid if root, then PR_SET_PDEATHSIG (after the drop, which would
    clear it) and stop if ``parent`` is already gone."""

    parent: int
    opens: Sequence[tuple[int, Path]] = ()
    limits: dict[int, int] = field(default_factory=dict)

    def __call__(self) -> None:
        for target, path in self.opens:
            fd = os.open(path, os.O_RDONLY)
            if fd != target:
                os.dup2(fd, target)  # inheritable
                os.close(fd)
            else:
                os.set_inheritable(fd, True)
        for which, value in self.limits.items():
            resource.setrlimit(which, (value, value))
        if os.geteuid() == 0:
            uid = UID_BASE + os.getpid()
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
        if _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            os._exit(126)
        if os.getppid() != self.parent:
            os._exit(126)


def host_uid(first_pid: int) -> int | None:
    """The host uid of the jail whose first process is ``first_pid`` (None
    when the harness is not root: the jail then runs as the harness's uid)."""
    return UID_BASE + first_pid if os.geteuid() == 0 else None


def _uids_processes(uid: int) -> list[int]:
    """Pids of the processes whose real uid is ``uid``."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", "rb") as f:
                for line in f:
                    if line.startswith(b"State:") and line.split()[1] == b"Z":
                        break  # dead already: reaping it is its parent's (or init's) job
                    if line.startswith(b"Uid:"):
                        if int(line.split()[1]) == uid:
                            found.append(int(entry.name))
                        break
        except (OSError, ValueError):
            continue
    return found


def kill_uid(uid: int | None, wait: float = REAP_WAIT) -> list[int]:
    """SIGKILL every process still running as the jail uid ``uid`` (a jail's
    leftovers); wait up to ``wait`` s for them to go. Returns those found."""
    if uid is None or uid < UID_BASE:
        return []
    killed: list[int] = []
    deadline = time.monotonic() + wait
    while (left := _uids_processes(uid)) and time.monotonic() < deadline:
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        killed += [p for p in left if p not in killed]
        time.sleep(0.01)
    return killed


def child_of(pid: int) -> int | None:
    """The first child of process ``pid`` (bwrap's child is the jailed
    command with --as-pid-1), None if it has none (yet, or any more)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = f.read().split()
    except OSError:
        return None
    return int(kids[0]) if kids else None


def _script_interpreter(exe: Path) -> str | None:
    """The ``#!`` interpreter of ``exe``, None if it is not a script."""
    with open(exe, "rb") as f:
        head = f.read(256)
    if not head.startswith(b"#!"):
        return None
    words = head[2:].split(b"\n", 1)[0].split()
    return os.fsdecode(words[0]) if words else None


def is_script(exe: str | Path) -> bool:
    """True if ``exe`` is a ``#!`` script (a test double, not a QEMU build)."""
    try:
        return _script_interpreter(Path(exe)) is not None
    except OSError:
        return False


@dataclass(frozen=True)
class JailedCommand:
    """A command line that runs in a jail, and what its preexec must open."""

    argv: list[str]
    opens: list[tuple[int, Path]]


QEMU_FD = 3  #: the fds a QEMU jail's preexec opens for --ro-bind-data
KERNEL_FD = 4


def _image_arg(rest: list[str]) -> tuple[int, Path]:
    """Where the kernel image is named in QEMU's arguments ``rest``: its
    index and path. It is ``-kernel PATH`` or, for an EL3 boot
    (harness.boot), a ``-device loader,...,file=PATH`` (file= last, commas
    doubled). ValueError unless exactly one is there."""
    found = []
    for i, arg in enumerate(rest):
        if arg == "-kernel" and i + 1 < len(rest):
            found.append((i + 1, Path(rest[i + 1])))
        elif i > 0 and rest[i - 1] == "-device" and arg.startswith("loader,") and ",file=" in arg:
            found.append((i, Path(arg.partition(",file=")[2].replace(",,", ","))))
    if len(found) != 1:
        raise ValueError(f"QEMU's arguments name {len(found)} kernel images, not one: {rest}")
    return found[0]


def qemu_command(argv: list[str]) -> JailedCommand:
    """``argv`` (harness.qemu.qemu_argv's) jailed: the image copied in at
    KERNEL_IN_JAIL (wherever it is named: -kernel or a loader's file=),
    QEMU's own -sandbox added. A QEMU under /usr runs as it is; one
    elsewhere is copied in (a script's ``#!`` interpreter must be under
    /usr; an ELF QEMU's libraries too)."""
    qemu, rest = argv[0], list(argv[1:])
    k, kernel = _image_arg(rest)
    if rest[k].startswith("loader,"):
        rest[k] = rest[k].partition(",file=")[0] + ",file=" + KERNEL_IN_JAIL
    else:
        rest[k] = KERNEL_IN_JAIL
    opens = [(KERNEL_FD, kernel)]
    data = ["--perms", "0444", "--ro-bind-data", str(KERNEL_FD), KERNEL_IN_JAIL]
    resolved = Path(qemu).resolve()
    if resolved.is_relative_to("/usr"):
        inner = str(resolved)
    else:
        opens.insert(0, (QEMU_FD, resolved))
        data += ["--perms", "0555", "--ro-bind-data", str(QEMU_FD), QEMU_IN_JAIL]
        inner = QEMU_IN_JAIL
    bwrap = shutil.which("bwrap") or "bwrap"
    return JailedCommand([bwrap, *_base(QEMU_TMP_BYTES), *data, "--as-pid-1", "--",
                          inner, *QEMU_SANDBOX, *rest], opens)


def build_command(command: list[str], tmp_bytes: int, fds: Sequence[int] = ()) -> list[str]:
    """``command`` (a build) jailed: /tmp of ``tmp_bytes`` is its only
    writable place (the copy of the tree and the build live there); ``fds``
    (the harness's pipes and files) are inherited as they are."""
    del fds  # bwrap passes inherited fds through; named for the reader
    bwrap = shutil.which("bwrap") or "bwrap"
    return [bwrap, *_base(tmp_bytes), "--", *command]


def preexec(parent: int, opens: Sequence[tuple[int, Path]] = (),
            limits: dict[int, int] | None = None) -> Callable[[], None]:
    """A ``Drop`` (its docstring)."""
    return Drop(parent, tuple(opens), dict(limits or {}))


POLICIES = ("auto", "on", "unsafe", "off")
ROOT = Path(__file__).resolve().parents[1]
_NOT_OURS = ("port", "bench")  #: build/ folders that hold others' code (ported trees, bench copies)
_noticed: set[str] = set()


def own_image(kernel: Path) -> bool:
    """True if ``kernel`` is an image this checkout built (under build/, not
    a ported tree or a copy made for the benchmark)."""
    build = ROOT / "build"
    path = Path(kernel).resolve()
    return path.is_relative_to(build) and not any(path.is_relative_to(build / d) for d in _NOT_OURS)


def should_jail(policy: str, qemu: str, kernel: Path) -> bool:
    """Whether a boot of ``kernel`` with ``qemu`` runs jailed, under ``policy``:

    - ``auto``: jailed whenever a jail can be made (a ``#!`` script QEMU, a
      test double, runs bare); without one, this checkout's own images run
      bare after a one-line notice on stderr, any other is refused;
    - ``unsafe`` (--unsafe-no-sandbox): as auto, but any image runs bare
      when no jail can be made;
    - ``on``: always jailed (a script too); refused if no jail can be made;
    - ``off``: never jailed (the benchmark's bare figures).

    Raises JailUnavailable when refused."""
    from .errors import JailUnavailable
    if policy not in POLICIES:
        raise ValueError(f"jail policy must be one of {', '.join(POLICIES)}, not {policy!r}")
    if policy == "off":
        return False
    why = unavailable()
    if policy == "on":
        if why is not None:
            raise JailUnavailable(f"cannot jail QEMU: {why}")
        return True
    if why is None:
        return not is_script(qemu)
    if policy == "unsafe":
        return False
    if own_image(kernel):
        if why not in _noticed:
            _noticed.add(why)
            print(f"kt: notice: this checkout's own image runs without a jail ({why})",
                  file=sys.stderr)
        return False
    raise JailUnavailable(f"refusing to boot {kernel} without a jail (it is not this checkout's own "
                          f"build): {why}; pass --unsafe-no-sandbox to run it unjailed anyway")
