"""One boot of the kernel under test: wait for ``ready``, send one command,
read to ``end`` and QEMU's exit; return a Transcript or raise a verdict.

Bounds count guest progress, never wall time (docs/judging.md, "Guest time
decides"): under -icount the guest advances only while QEMU computes, so
QEMU's CPU time is how far the guest got, whatever the host's load.
``boot_timeout`` QEMU CPU seconds from starting QEMU to the first
``ready`` (KernelSilent); ``run_cpu`` from sending the command to ``end``
(RunTimeout); ``exit_timeout`` from ``end`` to QEMU's exit (RunTimeout);
``stall_cpu`` with no console line (KernelStalled). A guest asleep with
nothing to wake it (QEMU idle: under ``sleep=off`` a pending timer is
reached at once, so a live guest never idles) is found by QEMU computing
less than ASLEEP_SHARE of the wall time for ``asleep_wall`` seconds: the
same verdicts. ``run_timeout`` wall seconds is only a safety net for a
host too loaded to run QEMU at all: its expiry is an InfrastructureError
(the grader retries it, never charges it). Every verdict carries the
console lines seen; a run's transcript is saved (when a directory is
configured) whether it passed or not.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .boot import BOOTS, BootMode, boot_mode
from .errors import (CommandRejected, HarnessError, InfrastructureError, KernelDied, KernelPanic,
                     KernelSilent, KernelStalled, OutputFlood, RunTimeout, killed_from_outside)
from .events import Boot, CommandError, End, Event, ListEnd, Panic, Ready, ScenarioName, Tick
from .floods import NOISE_BYTES, NOISE_LINES, STORM_TICKS, FloodWatch
from .image import ImageInfo, inspect_image
from .prng import check_seed
from .protocol import Parser
from .jail import should_jail
from .qemu import DEFAULT_QEMU, DEFAULT_SHIFT, ExitStatus, OutputLimit, Qemu, ReadTimeout, find_qemu, qemu_argv
from .stall import what_stopped
from .text import encode, printable
from .transcript import Transcript

LineSink = Callable[[str], None]
T = TypeVar("T")
R = TypeVar("R")
SCENARIO_NAME = re.compile(r"[a-z0-9_]{1,31}")  # uapi/scenario.h: SCENARIO_NAME_MAX 31
DEFAULT_KERNEL = "build/kernel8-test.img"  #: relative to the repository root
TRANSCRIPT_DIR = "build/transcripts"  #: relative to the repository root
STALL_POLL = 0.05  #: seconds between two looks at QEMU's CPU time while the console is quiet
#: QEMU computing less than this share of the wall time is idle: the guest
#: sleeps with nothing to wake it. A loaded 2-core host with ten busy
#: processes still gives QEMU ~20 %.
ASLEEP_SHARE = 0.02


def asleep(cpu: float, wall: float, window: float) -> bool:
    """Whether QEMU, having computed ``cpu`` seconds in ``wall`` seconds, has
    sat idle for at least ``window`` seconds (its guest asleep for good)."""
    return wall >= window and cpu < ASLEEP_SHARE * wall


class Spent(ReadTimeout):
    """A bound on guest progress was reached (``how``: which, for the verdict)."""

    def __init__(self, how: str) -> None:
        super().__init__(how)
        self.how = how


def safety_net(timeout: float, what: str, cpu: float) -> InfrastructureError:
    """The result when the wall-clock safety net expires: the machine's fault."""
    return InfrastructureError(f"the wall-clock safety net of {timeout:g} s expired while waiting "
                               f"for {what}, after only {cpu:.3g} s of QEMU CPU time (guest "
                               f"progress): the host is too loaded or too slow; not the kernel's verdict")


MAX_SECONDS = 86400.0  #: a day: a longer timeout is a typo, and inf overflows the deadlines


def parse_seconds(text: str) -> float:
    """A timeout or window from the user: above 0, at most MAX_SECONDS
    (so not inf or nan); ValueError naming the bound otherwise."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= MAX_SECONDS:  # also false for nan
        raise ValueError(f"must be a number of seconds above 0 and at most {MAX_SECONDS:g}")
    return value


@dataclass(frozen=True)
class RunConfig:
    """How to boot the kernel under test."""

    kernel: Path
    qemu: str = DEFAULT_QEMU
    console: str | None = None  #: None: the image note's, else "mini"
    deterministic: bool = True  #: -icount/-rtc clock=vm: same seed, same bytes
    icount_shift: int = DEFAULT_SHIFT  #: -icount shift: 2**N guest ns an instruction (harness.calibrate)
    boot_timeout: float = 5.0  #: QEMU CPU s (or asleep_wall idle) to the first ready: KernelSilent
    run_timeout: float = 300.0  #: wall-clock safety net for each phase: InfrastructureError
    exit_timeout: float = 5.0  #: QEMU CPU s (or asleep_wall idle) from end to QEMU's exit: RunTimeout
    run_cpu: float = 30.0  #: QEMU CPU s from the command to end (guest progress): RunTimeout
    asleep_wall: float = 5.0  #: wall s of QEMU idle (< ASLEEP_SHARE busy) that make a guest asleep
    max_output: int = 4 << 20  #: console bytes kept; more is an OutputFlood
    stall_cpu: float | None = 1.0  #: QEMU CPU seconds with no console line: KernelStalled (None: off)
    storm_ticks: int | None = STORM_TICKS  #: ticks in a row, no other marker: TickStorm (None: off)
    noise_lines: int | None = NOISE_LINES  #: non-marker lines in a row: ConsoleNoise (None: off)
    noise_bytes: int | None = NOISE_BYTES  #: bytes of such lines: ConsoleNoise (None: off)
    transcript_dir: Path | None = None  #: where runs are saved; None: not saved
    jail: str = "auto"  #: when QEMU runs in a jail: harness.jail.should_jail (auto, on, unsafe, off)
    boot: str = "auto"  #: how the kernel is started: harness.boot (auto, el2, el3)


def choose_boot(cfg: RunConfig, kernel: Path | None = None) -> BootMode:
    """How ``kernel`` (default cfg.kernel) is started under cfg.boot (harness.boot)."""
    if cfg.boot not in BOOTS:
        raise ValueError(f"boot must be one of {', '.join(BOOTS)}, not {cfg.boot!r}")
    return boot_mode(cfg.kernel if kernel is None else kernel, cfg.boot)


def choose_console(cfg: RunConfig, info: ImageInfo) -> tuple[str, str]:
    """The console to use and where that choice came from: --console, else
    the image note, else mini."""
    if cfg.console is not None:
        return cfg.console, "--console"
    if info.note is not None:
        return info.note.console, "image note"
    return "mini", "default; the image has no note"


def transcript_path(directory: Path, scenario: str, seed: int) -> Path:
    """Where the run of ``scenario`` with ``seed`` is saved."""
    return directory / f"{scenario}-{seed}.txt"


KEEP_TRANSCRIPTS = 300  #: newest transcripts kept per directory; older ones are deleted


def save_transcript(path: Path, lines: list[str]) -> Path:
    """Write ``lines`` to ``path`` atomically (xdist workers may race), keep
    the directory to its KEEP_TRANSCRIPTS newest transcripts; return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:  # line by line: a flood's million lines are not copied at once
        f.writelines(encode(line) + b"\n" for line in lines)
    os.replace(tmp, path)
    _prune(path.parent)
    return path


def _prune(directory: Path) -> None:
    """Delete all but the KEEP_TRANSCRIPTS newest ``*.txt`` of ``directory``."""
    try:
        files = sorted(directory.glob("*.txt"), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:  # another worker pruned one meanwhile
        return
    for old in files[KEEP_TRANSCRIPTS:]:
        old.unlink(missing_ok=True)


class ConsoleSession:
    """The console of one boot, as both routes read it (this module for the
    markers route, harness.el0_runner for the EL0 route): QEMU spawned,
    jailed or not; every line kept in ``lines``, shown to ``on_line`` and fed
    to the route's parser (``feed(line_number, text)``) and to its
    FloodWatch; the output bound turned into OutputFlood; every verdict
    given the lines and the saved transcript; the transcript of a run that
    ended saved too. The route's own reading loop is the ``body`` of run()."""

    def __init__(self, cfg: RunConfig, argv: list[str], jail: bool, path: Path | None,
                 feed: Callable[[int, str], object], floods: FloodWatch,
                 on_line: LineSink | None = None) -> None:
        self.cfg = cfg
        self.argv = argv
        self.jail = jail
        self.path = path  #: where the transcript is saved (None: not saved)
        self.feed = feed
        self.floods = floods
        self.on_line = on_line
        self.lines: list[str] = []  #: the console lines read so far
        self._qemu: Qemu | None = None

    @property
    def qemu(self) -> Qemu:
        """The running QEMU (inside run() only)."""
        assert self._qemu is not None, "the console session is not running"
        return self._qemu

    def take(self, text: str) -> object:
        """Keep one console line, parse it, count it for floods; return what
        the parser made of it."""
        self.lines.append(text)
        if self.on_line is not None:
            self.on_line(text)
        item = self.feed(len(self.lines), text)
        self.floods.feed(item)
        return item

    def exit_status(self, when: str) -> ExitStatus | None:
        """How QEMU ended once its console closed (waiting up to a second);
        raises the InfrastructureError if something outside killed it."""
        status = self.qemu.wait_exit(time.monotonic() + 1.0)
        killed = killed_from_outside(status, when, self.lines)
        if killed is not None:
            raise killed
        return status

    def run(self, body: Callable[[ConsoleSession], R]) -> R:
        """Boot QEMU, run ``body`` on this session, and return its result
        (module docstring: QEMU is always cleaned up)."""
        try:
            with Qemu(self.argv, self.cfg.max_output, jail=self.jail) as qemu:
                self._qemu = qemu
                try:
                    return self._saved(body(self))
                except OutputLimit:
                    raise flooded(qemu, self.lines) from None
        except HarnessError as e:
            e.lines = self.lines
            e.path = None if self.path is None else save_transcript(self.path, self.lines)
            raise
        finally:
            self._qemu = None

    def _saved(self, result: R) -> R:
        if self.path is not None:
            save_transcript(self.path, self.lines)
        return result


class _Conversation:
    """The console of one boot, parsed as it arrives; turns what goes wrong
    into verdicts."""

    def __init__(self, session: ConsoleSession, parser: Parser, console: tuple[str, str]) -> None:
        self.session = session
        self.qemu = session.qemu
        self.parser = parser
        self.cfg = session.cfg
        self.console = console
        self.lines = session.lines
        self.commanded = False  #: a command was sent: from then on a quiet, busy guest has stalled
        self.idle_since: float | None = None  #: QEMU CPU s at the first idle tick since other news
        self.cpu_limit = float("inf")  #: QEMU CPU s (absolute) at which the phase's budget is spent
        self.budget = 0.0  #: the phase's budget, for the verdict
        self.phase_cpu = 0.0  #: QEMU CPU s when the phase began
        self.asleep_window = self.cfg.asleep_wall  #: wall s of QEMU idle that end the phase

    def _phase(self, cpu_budget: float) -> float:
        """Start a phase with ``cpu_budget`` QEMU CPU seconds; return its wall safety-net deadline."""
        self.phase_cpu = self.qemu.cpu_seconds()
        self.budget, self.cpu_limit = cpu_budget, self.phase_cpu + cpu_budget
        self.asleep_window = min(self.cfg.asleep_wall, cpu_budget)
        return time.monotonic() + self.cfg.run_timeout

    def _net(self, what: str) -> InfrastructureError:
        return safety_net(self.cfg.run_timeout, what, self.qemu.cpu_seconds() - self.phase_cpu)

    def _read_until(self, deadline: float, kinds: tuple[type[Event], ...]) -> Event | None:
        """Read lines until an event of ``kinds`` (returned) or the console
        closes (None). On ReadTimeout an unterminated last line is kept in
        ``lines`` first: it is the likeliest clue to what hung."""
        try:
            return self._read_lines_until(deadline, kinds)
        except ReadTimeout:
            fragment = self.qemu.take_fragment()
            if fragment is not None:
                self.lines.append(fragment)
            raise

    def _next_line(self, deadline: float) -> str | None:
        """The next console line, as Qemu.read_line; while the console is quiet,
        raises KernelStalled once QEMU has computed ``stall_cpu`` seconds
        (guest progress) since the last line, with no marker to show for it.
        A line already read is handed out without looking at QEMU's CPU time
        (a /proc read per line made a flood of short lines cost 15 s)."""
        if self.qemu.has_line():
            return self.qemu.read_line(deadline)
        cpu_at_last, wall_at_last = self.qemu.cpu_seconds(), time.monotonic()
        while True:
            try:
                return self.qemu.read_line(min(deadline, time.monotonic() + STALL_POLL))
            except ReadTimeout:
                now = time.monotonic()
                if now >= deadline:
                    raise
                cpu = self.qemu.cpu_seconds()
                stall = self._stall_bound
                if stall is not None and cpu - cpu_at_last > stall:
                    raise self._stalled(stall) from None
                if cpu > self.cpu_limit:
                    raise Spent(f"{self.budget:g} s of QEMU CPU time (guest progress)") from None
                if asleep(cpu - cpu_at_last, now - wall_at_last, self.asleep_window):
                    raise Spent(f"{self.asleep_window:g} s with QEMU idle (the guest asleep, "
                                f"nothing to wake it)") from None

    @property
    def _stall_bound(self) -> float | None:
        """QEMU CPU seconds without news that make a stall; None before the
        command is sent (a silent boot is KernelSilent's job) or when off."""
        return self.cfg.stall_cpu if self.commanded else None

    def _stalled(self, stall: float, idle: bool = False) -> KernelStalled:
        quiet = (f"{stall:g} s of QEMU CPU time (guest progress) with only idle ticks" if idle
                 else f"{stall:g} s of QEMU CPU time (guest progress) without a marker")
        return KernelStalled(f"{what_stopped(self.parser.events)}; then {quiet}")

    def _watch_idle(self, item: object) -> None:
        """Raise KernelStalled once the guest has computed ``stall_cpu``
        seconds with nothing but idle ticks (tick pid=0) to show for it: a
        kernel idling with live tasks, or one that never says all_exited.
        QEMU's CPU time is read only on idle ticks."""
        stall = self._stall_bound
        if stall is None or not (isinstance(item, Tick) and item.pid == 0):
            self.idle_since = None
            return
        now = self.qemu.cpu_seconds()
        if self.idle_since is None:
            self.idle_since = now
        elif now - self.idle_since > stall:
            raise self._stalled(stall, idle=True)

    def _read_lines_until(self, deadline: float, kinds: tuple[type[Event], ...]) -> Event | None:
        while (text := self._next_line(deadline)) is not None:
            item = self.session.take(text)
            self._watch_idle(item)
            if isinstance(item, CommandError):
                hint = ("; `python -m harness list` shows the scenarios this kernel has"
                        if item.what == "unknown_scenario" else "")
                raise CommandRejected(f"the kernel refused {printable(item.line_)!r}: "
                                      f"error what={item.what} (line {item.line}){hint}")
            if isinstance(item, kinds):
                return item
        return None

    def _died(self, before: str) -> HarnessError:
        status = self.session.exit_status(f"before {before}")
        how = "closed its console" if status is None else f"exited ({status})"
        last = f"; its last line: {printable(self.lines[-1], 200)!r}" if self.lines else ""
        return KernelDied(f"QEMU {how} before {before}{last}")

    def boot(self) -> None:
        """Wait for the first ``ready``."""
        deadline = self._phase(self.cfg.boot_timeout)
        try:
            ready = self._read_until(deadline, (Ready,))
        except Spent as e:
            console, source = self.console
            seen = (f"the console printed {self.qemu.bytes_read} bytes but no ready marker"
                    if self.qemu.bytes_read else f"nothing came on the {console} UART ({source})")
            raise KernelSilent(f"no ready marker within {e.how} of starting QEMU: {seen}; "
                               f"booted {choose_boot(self.cfg).describe()}") from None
        except ReadTimeout:
            raise self._net("the ready marker") from None
        if ready is None:
            raise self._died("the ready marker")

    def command(self, command: str, until: type[Event]) -> Event:
        """Send ``command`` and read until an event of class ``until``."""
        self.qemu.send(command + "\n")
        self.commanded = True
        deadline = self._phase(self.cfg.run_cpu)
        try:
            event = self._read_until(deadline, (until,))
        except Spent as e:
            last = (f"; the last marker is line {self.parser.events[-1].line}: "
                    f"{printable(self.parser.events[-1].raw, 160)!r}" if self.parser.events else "")
            raise RunTimeout(f"no {until.KIND} marker within {e.how} of `{command}`{last}") from None
        except ReadTimeout:
            raise self._net(f"the {until.KIND} marker after `{command}`") from None
        if event is None:
            raise self._died(f"the {until.KIND} marker (after `{command}`)")
        return event

    def finish(self, end: End) -> ExitStatus:
        """After ``end``: read to the console's close and reap QEMU."""
        deadline = self._phase(self.cfg.exit_timeout)

        def stuck(how: str) -> RunTimeout:
            return RunTimeout(f"the end marker came (line {end.line}) but QEMU did not exit within "
                              f"{how}: after end the kernel must stop QEMU (semihosting SYS_EXIT, "
                              f"or a watchdog reset under -no-reboot)")
        try:
            self._read_until(deadline, ())
        except Spent as e:
            raise stuck(e.how) from None
        except ReadTimeout:
            raise self._net("QEMU's exit after the end marker") from None
        status = self.qemu.wait_exit(time.monotonic() + self.cfg.exit_timeout)
        if status is None:
            raise stuck(f"{self.cfg.exit_timeout:g} s after closing its console")
        killed = killed_from_outside(status, f"after the end marker (line {end.line})", self.lines)
        if killed is not None:
            raise killed
        return status  # judged by the tests (Transcript.exit_code), not here


def prepare(cfg: RunConfig) -> tuple[list[str], tuple[str, str]]:
    """Check the image and QEMU; return the QEMU command line and the console
    choice (name, source). Raises ImageError or QemuNotFound."""
    info = inspect_image(cfg.kernel)
    console = choose_console(cfg, info)
    return qemu_argv(find_qemu(cfg.qemu), cfg.kernel, console[0], cfg.deterministic,
                     choose_boot(cfg), cfg.icount_shift), console


def jailed(cfg: RunConfig, argv: list[str], kernel: Path | None = None) -> bool:
    """Whether the boot of ``argv`` runs in a jail (cfg.jail's policy for
    ``kernel``, default cfg.kernel). Raises JailUnavailable when refused."""
    return should_jail(cfg.jail, argv[0], cfg.kernel if kernel is None else kernel)


def _session(cfg: RunConfig, argv: list[str], jail: bool, console: tuple[str, str], parser: Parser,
             path: Path | None, on_line: LineSink | None) -> tuple[ConsoleSession, Callable[[ConsoleSession], _Conversation]]:
    """A marker-route session, and what boots it: wait for ready and return the conversation."""
    floods = FloodWatch(cfg.storm_ticks, cfg.noise_lines, cfg.noise_bytes, events=parser.events)
    session = ConsoleSession(cfg, argv, jail, path, parser.feed, floods, on_line)

    def booted(s: ConsoleSession) -> _Conversation:
        conv = _Conversation(s, parser, console)
        conv.boot()
        return conv
    return session, booted


def flooded(qemu: Qemu, lines: list[str]) -> OutputFlood:
    """The verdict once ``qemu`` passed its output limit; the half line the
    limit cut goes to ``lines`` (evidence, never parsed as a marker)."""
    cut = qemu.take_fragment()
    if cut is not None:
        lines.append(cut)
    return OutputFlood(f"the console printed more than {qemu.max_output} bytes; "
                       f"the harness keeps no more (a print loop?)")


def check_request(scenario: str, seed: int) -> None:
    """ValueError unless ``scenario`` and ``seed`` can be sent with ``run``."""
    if not SCENARIO_NAME.fullmatch(scenario):
        raise ValueError(f"scenario name {scenario!r} is not 1..31 characters of [a-z0-9_]")
    check_seed(seed)


def run_scenario(cfg: RunConfig, scenario: str, seed: int,
                 on_line: LineSink | None = None) -> Transcript:
    """Boot, ``run <scenario> <seed>``, and return the parsed run.

    ``on_line`` sees each console line as it arrives (for a person watching).
    Raises a HarnessError verdict (KernelPanic if the run ended in a panic);
    its ``lines`` hold the console and ``path`` the saved transcript.
    """
    check_request(scenario, seed)
    argv, console = prepare(cfg)  # these problems come before any run: nothing to save
    jail = jailed(cfg, argv)
    parser = Parser(scenario, seed)
    path = None if cfg.transcript_dir is None else transcript_path(cfg.transcript_dir, scenario, seed)
    session, booted = _session(cfg, argv, jail, console, parser, path, on_line)

    def script(s: ConsoleSession) -> Transcript:
        conv = booted(s)
        end = conv.command(f"run {scenario} {seed}", End)
        assert isinstance(end, End)
        status = conv.finish(end)
        transcript = Transcript(s.lines, parser, exit_code=status.code, path=path, kernel=cfg.kernel,
                                icount_shift=cfg.icount_shift if cfg.deterministic else None)
        if transcript.end.reason == "panic":
            panics = transcript.of(Panic)
            raise KernelPanic(panics[-1] if panics else None, transcript.end)
        return transcript

    return session.run(script)


def list_scenarios(cfg: RunConfig, on_line: LineSink | None = None) -> list[str]:
    """Boot, send ``list``, and return the scenario names the kernel has."""
    return [e.name for e in _booted(cfg, on_line, lambda conv: conv.command("list", ListEnd))
            if isinstance(e, ScenarioName)]


def boot_marker(cfg: RunConfig) -> Boot | None:
    """Boot to the ready marker and return the kernel's boot marker (what it
    announces: tick rate, slice, pool...), or None if it printed none."""
    return next((e for e in _booted(cfg, None, lambda conv: None) if isinstance(e, Boot)), None)


def _booted(cfg: RunConfig, on_line: LineSink | None, script: Callable[[_Conversation], object]) -> list[Event]:
    """The events of one boot that runs ``script`` once the kernel is ready."""
    argv, console = prepare(cfg)
    parser = Parser()
    session, booted = _session(cfg, argv, jailed(cfg, argv), console, parser, None, on_line)
    session.run(lambda s: script(booted(s)))
    return list(parser.events)
