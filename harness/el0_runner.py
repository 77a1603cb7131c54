"""One boot of a kernel that emits no markers, judged from EL0 (docs/judging.md).

The image holds build/kt-user.o in place of its user program. Before the
boot, the scenario and seed are written into a copy of the image
(harness.el0.patch_image). Such a kernel never stops QEMU, so this runner
ends the run itself:

- **all_exited**: every task the program started has reported its exit
  (or announced its own death by a fault), and a grace window followed in
  which a task that runs after its exit would show;
- **stalled**: no EL0 marker for ``stall_cpu`` seconds of QEMU's CPU time
  (guest progress: under ``-icount`` the guest advances only while QEMU
  computes, so a loaded host does not shorten the window), or the guest
  asleep: QEMU idle (harness.runner.asleep) for ``stall_wall`` seconds (a
  guest in WFI with nothing to wake it costs no CPU);
- **timeout**: ``run.run_cpu`` seconds of QEMU CPU time passed;
- **qemu_exited**: QEMU stopped by itself (a reset under -no-reboot).

The session's -icount shift makes those CPU seconds a number of the
kernel's own time slices (harness.calibrate). Wall time decides nothing:
``run.run_timeout`` wall seconds is a safety net whose expiry is an
InfrastructureError (the machine's fault, retried by the grader).

The transcript is returned in every such case: what the program managed
to report is the evidence. A kernel that prints nothing, or never starts
the program within ``run.boot_timeout`` QEMU CPU seconds (or asleep that
long), is a verdict (KernelSilent), as is a flood (OutputFlood), or
NOISE_LINES console lines with no EL0 marker between (ConsoleNoise,
harness.floods: counted, so a kernel printing forever is named within
seconds, the same on any host).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from .el0 import FIRST_TID, El0Parser, El0Transcript, UEvent, patch_image
from .errors import HarnessError, KernelSilent, ProtocolError
from .floods import FloodWatch
from .image import inspect_image
from .qemu import Qemu, ReadTimeout, find_qemu, qemu_argv
from .runner import (ConsoleSession, RunConfig, asleep, choose_boot, choose_console, jailed, safety_net,
                     transcript_path)

POLL = 0.05  #: seconds between two looks at QEMU's CPU time while the console is quiet


@dataclass(frozen=True)
class El0Config:
    """How to run and end an EL0-judged boot (``run`` as for marker runs;
    its ``boot_timeout`` bounds the wait for the program's start marker)."""

    run: RunConfig
    stall_cpu: float = 2.0  #: QEMU CPU seconds with no EL0 marker: the run has stalled
    stall_wall: float = 5.0  #: wall seconds of QEMU idle with no EL0 marker: stalled (an asleep guest)
    grace_cpu: float = 0.05  #: QEMU CPU seconds after the last exit before the run ends
    replay: str = ""  #: the command that reruns a scenario ({scenario} and {seed} filled in)


class _Watch:
    """Which tasks the program started, which are done, when it last spoke."""

    def __init__(self) -> None:
        self.expected: set[int] = {FIRST_TID}
        self.done: set[int] = set()
        self.announced: dict[int, int] = {}  # child tid -> parent tid

    def take(self, ev: UEvent) -> None:
        """Update from one EL0 event."""
        kind = ev.KIND
        if kind == "clone":
            self.announced[ev.child] = ev.tid  # type: ignore[attr-defined]
        elif kind == "cloned" and 0 < ev.ret < 1 << 31:  # type: ignore[attr-defined]  # (an int -1 is 2^32-1)
            self.expected.add(ev.child)  # type: ignore[attr-defined]
        elif kind in ("exit", "dying"):
            self.done.add(ev.tid)
        if ev.tid in self.announced:  # a child that speaks exists, whatever clone said
            self.expected.add(ev.tid)

    @property
    def all_done(self) -> bool:
        """Every task the program started has exited or announced its death."""
        return self.expected <= self.done


def _silent(qemu: Qemu, cfg: El0Config, console: tuple[str, str]) -> KernelSilent:
    """The verdict for a kernel whose program never started."""
    name, source = console
    timeout = cfg.run.boot_timeout
    boot = choose_boot(cfg.run)
    if qemu.bytes_read == 0:
        if boot.el == 2:
            where = ("does its boot code expect EL3? QEMU raspi3b enters at EL2 (at 0x80000; "
                     "--boot el3 starts it at EL3)")
        else:
            where = f"it was started at EL3 (booted {boot.describe()}; --boot el2 enters at EL2)"
        return KernelSilent(f"the kernel printed nothing within {timeout:g} s of guest progress on the {name} UART "
                            f"({source}): {where}; or is its console another UART (--console)?")
    return KernelSilent(f"the kernel printed {qemu.bytes_read} bytes but the conformance program "
                        f"never started within {timeout:g} s of guest progress (no '@KU 1 0 <tag> start' line): does "
                        f"kernel_main reach move_to_user_mode(user_process), and does its write "
                        f"syscall print the string it is given? (booted {boot.short})")


def run_el0(cfg: El0Config, scenario: str, seed: int, workdir: Path) -> El0Transcript:
    """Patch, boot, read until the run ends (module docstring); return the
    transcript. ``workdir`` holds the patched image copy."""
    info = inspect_image(cfg.run.kernel, want_mode=None)  # a demo image with kt-user.o is fine
    console = choose_console(cfg.run, info)
    boot = choose_boot(cfg.run)  # decided on the kernel as built (and its ELF), not the patched copy
    image = patch_image(cfg.run.kernel, workdir / f"{scenario}-{seed}.img", scenario, seed)
    argv = qemu_argv(find_qemu(cfg.run.qemu), image, console[0], cfg.run.deterministic, boot,
                     cfg.run.icount_shift)
    try:
        jail = jailed(cfg.run, argv, cfg.run.kernel)  # the patched copy is the same kernel
    except HarnessError:
        image.unlink(missing_ok=True)
        raise
    directory = cfg.run.transcript_dir
    path = None if directory is None else transcript_path(directory, scenario, seed)
    parser = El0Parser(seed)
    floods = FloodWatch(None, cfg.run.noise_lines, cfg.run.noise_bytes, marker="EL0 marker")
    session = ConsoleSession(cfg.run, argv, jail, path, parser.feed, floods)
    try:
        ending, detail = session.run(lambda s: _read(s, cfg, console, parser, scenario, seed))
    finally:
        image.unlink(missing_ok=True)
    return El0Transcript(session.lines, parser.events, parser.noise, parser.anomalies, scenario, seed,
                         ending, detail, path=path,
                         replay=cfg.replay.format(scenario=scenario, seed=seed), boot=boot.short)


def _read(session: ConsoleSession, cfg: El0Config, console: tuple[str, str],
          parser: El0Parser, scenario: str, seed: int) -> tuple[str, str]:
    """Read the console until the run ends; return (ending, detail)."""
    qemu = session.qemu
    watch = _Watch()
    t0 = time.monotonic()
    cpu0 = qemu.cpu_seconds()
    started = False
    last_wall: float = t0
    last_cpu: float | None = cpu0  # None: since the last EL0 marker, not read yet
    done_cpu: float | None = None
    while True:
        now = time.monotonic()
        if now - t0 > cfg.run.run_timeout:
            raise safety_net(cfg.run.run_timeout, "the run's end" if started else "the program's start",
                             qemu.cpu_seconds() - cpu0)
        if not qemu.has_line():  # QEMU's CPU time only while waiting, not per buffered line
            cpu = qemu.cpu_seconds()
            last_cpu = cpu if last_cpu is None else last_cpu
            idle = asleep(cpu - last_cpu, now - last_wall, cfg.stall_wall)
            if not started and (cpu - cpu0 > cfg.run.boot_timeout
                                or asleep(cpu - cpu0, now - t0, cfg.run.boot_timeout)):
                raise _silent(qemu, cfg, console)
            if cpu - cpu0 > cfg.run.run_cpu:  # the bound, not the reading: reruns match
                return "timeout", (f"no end within the run bound of {cfg.run.run_cpu:g} s of QEMU "
                                   f"CPU time (guest progress)")
            if started and watch.all_done:
                done_cpu = cpu if done_cpu is None else done_cpu
                if cpu - done_cpu >= cfg.grace_cpu:
                    return "all_exited", "every task exited"
            elif started and (cpu - last_cpu > cfg.stall_cpu or idle):
                quiet = (f"{cfg.stall_cpu:g} s of QEMU CPU time (guest progress)"  # the bound, not the
                         if not idle else f"{cfg.stall_wall:g} s with QEMU idle (the guest asleep)")  # reading
                waiting = sorted(watch.expected - watch.done)
                return "stalled", (f"stalled: no EL0 marker for {quiet} after line {_last_line(parser)}; "
                                   f"task(s) {', '.join(map(str, waiting))} had not exited")
        try:
            text = qemu.read_line(min(now + POLL, t0 + cfg.run.run_timeout))
        except ReadTimeout:
            continue
        if text is None:
            status = session.exit_status("during the run")
            return "qemu_exited", f"QEMU exited by itself ({status})"
        item = session.take(text)
        if not isinstance(item, UEvent):
            continue
        last_wall, last_cpu, done_cpu = time.monotonic(), None, None
        if item.KIND == "start":
            started = True
            _check_start(item, scenario, seed)
        watch.take(item)


def _last_line(parser: El0Parser) -> int:
    return parser.events[-1].line if parser.events else 0


def _check_start(start: UEvent, scenario: str, seed: int) -> None:
    """The start marker must name what was patched in (else a forged or stale run)."""
    got = (getattr(start, "scenario", None), getattr(start, "seed", None))
    if got != (scenario, seed):
        raise ProtocolError(start.line, f"the program says it runs {got[0]!r} with seed {got[1]}, but "
                                        f"the harness patched {scenario!r} with seed {seed} into the image",
                            start.raw)

