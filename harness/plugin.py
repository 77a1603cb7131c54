"""The pytest plugin: options, report header, the run_scenario fixture, and
failures that read as one line.

Settings come, in this order of precedence, from the command line, the ini
file (``[tool.pytest.ini_options]`` in pyproject.toml), then the defaults;
a bad value is a usage error naming where it came from (after pytest-timeout).

Under xdist the controller picks the random seed and hands it to every
worker, so the whole session runs one seed; each worker caches its own runs.
"""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import pytest
from _pytest._code.code import ExceptionInfo, ReprFileLocation

from .boot import BOOTS
from .build import ensure_built
from .errors import HarnessError, ImageError
from .image import CONSOLES, inspect_image
from .judge import RuleBroken
from . import rules as kt_rules
from .rules import RuleError, RuleFacts
from .prng import parse_seed
from .qemu import DEFAULT_QEMU, MAX_SHIFT
from .el0 import MARKER_ONLY, El0Transcript
from .calibrate import calibrate, calibrate_markers
from .el0_runner import El0Config, run_el0
from .errors import KernelSilent
from .jail import own_image, unavailable
from .handin import resolve_folder
from .port import ENTRY, SYMBOL, PortError, port_tree
from .text import printable
from .runner import (DEFAULT_KERNEL, TRANSCRIPT_DIR, RunConfig, choose_boot, choose_console,
                     parse_seconds, run_scenario)
from .transcript import Transcript

_WORKER_SEED = "kt_seed"  # key in xdist's workerinput
_WORKER_IMAGE = "kt_submission_image"  # the controller's ported image, for the workers
_WORKER_SHIFT = "kt_icount_shift"  # the controller's -icount shift (calibrated once), for the workers
RULE_SETS = kt_rules.RULE_SETS


@dataclass(frozen=True)
class _Option:
    """One setting: its command-line flag, ini name, help, and parser."""

    flag: str
    ini: str
    help: str
    parse: Callable[[str], Any]
    metavar: str | None = None


def _writable_dir(path: Path, flag: str) -> None:
    """UsageError unless ``path`` is a directory, or can be made one."""
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK):
        what = ("is not a directory" if existing is not None and not existing.is_dir()
                else "cannot be created there")
        raise pytest.UsageError(f"{flag} {path}: {existing if existing is not None else path} {what}")


def _one_of(choices: Sequence[str]) -> Callable[[str], str]:
    """A setting's parser: the text if it is one of ``choices``, else ValueError."""
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return text
    return parse


_console, _rules, _boot = _one_of(CONSOLES), _one_of(RULE_SETS), _one_of(BOOTS)


def _symbol(text: str) -> str:
    if not SYMBOL.fullmatch(text):
        raise ValueError("must be a C identifier (the user program's function)")
    return text


def _shift(text: str) -> int | None:
    """--icount-shift: ``auto`` (None) or 0..MAX_SHIFT."""
    if text == "auto":
        return None
    if text.isdigit() and int(text) <= MAX_SHIFT:
        return int(text)
    raise ValueError(f"must be auto or a number 0..{MAX_SHIFT}")


def _flag(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


OPTIONS = (
    _Option("--kernel", "kt_kernel", f"kernel image to test (default: {DEFAULT_KERNEL}, "
            "built with make if missing)", str, "PATH"),
    _Option("--qemu", "kt_qemu", f"QEMU executable (default: {DEFAULT_QEMU})", str, "PATH"),
    _Option("--run-timeout", "kt_run_timeout", "wall-clock safety net: wall seconds any phase of "
            "a boot may take; its expiry is an infrastructure fault (the machine's, retried by the "
            f"grader), never a verdict on the kernel (default: {RunConfig.run_timeout:g})",
            parse_seconds, "S"),
    _Option("--run-cpu", "kt_run_cpu", "seconds of QEMU CPU time (guest progress) a run may take "
            f"after its command before it is a timeout (default: {RunConfig.run_cpu:g})",
            parse_seconds, "S"),
    _Option("--boot-timeout", "kt_boot_timeout", "seconds of QEMU CPU time (guest progress), or "
            "of QEMU idle, from starting QEMU to the ready marker (or the program's start) "
            f"(default: {RunConfig.boot_timeout:g})", parse_seconds, "S"),
    _Option("--boot", "kt_boot", "how the kernel is started: el2 (QEMU -kernel, at 0x80000), el3 "
            "(-device loader at its link address, as a Pi with kernel_old=1; cores 1-3 parked) or "
            "auto (decided from the image and its ELF; harness/boot.py) (default: auto)", _boot, "HOW"),
    _Option("--seed", "kt_seed", "seed for every run (default: random, shown in the header)",
            parse_seed, "N"),
    _Option("--console", "kt_console", "console UART: mini or pl011 (default: the image "
            "note's, else mini)", _console, "UART"),
    _Option("--deterministic", "kt_deterministic", "run QEMU with -icount so a seed always "
            "gives the same transcript (the default; --realtime turns it off)", _flag),
    _Option("--icount-shift", "kt_icount_shift", "QEMU's -icount shift: 2**N ns of guest time an "
            "instruction; auto: 0 for kernels with markers (1 kHz ticks), for a --submission the "
            "shift that makes the kernel's measured time slice ~2 M instructions, as the bundled "
            "kernel's (harness/calibrate.py) (default: auto)", _shift, "N"),
    _Option("--transcript-dir", "kt_transcript_dir", f"where run transcripts are saved "
            f"(default: {TRANSCRIPT_DIR})", str, "DIR"),
    _Option("--submission", "kt_submission", "judge a kernel that emits no markers, from what its "
            "EL0 programs observe: a source tree (built with its own Makefile, build/kt-user.o "
            "linked in place of its user_process) or an image already linked with kt-user.o",
            str, "PATH"),
    _Option("--rules", "kt_rules", "rule set for --submission: 'project' (docs/syscalls.md) or "
            "'lesson' (what RPi OS lesson 5 teaches; docs/judging.md) (default: project)",
            _rules, "SET"),
    _Option("--entry", "kt_entry", "the user program's function in a --submission tree, replaced by "
            f"the conformance programs (default: {ENTRY}; a static function cannot be replaced)",
            _symbol, "SYMBOL"),
    _Option("--port-dir", "kt_port_dir", "where a --submission tree is copied and built "
            "(default: build/port/<its name>)", str, "DIR"),
    _Option("--stall", "kt_stall", "seconds of QEMU CPU time (guest progress) with no EL0 marker "
            f"before a --submission run is ended as stalled (default: {El0Config.stall_cpu:g})",
            parse_seconds, "S"),
    _Option("--unsafe-no-sandbox", "kt_unsafe_no_sandbox", "where no jail can be made (bubblewrap "
            "missing, namespaces not allowed), boot and build code this checkout did not make "
            "anyway, unjailed: a hostile kernel or Makefile can then reach the host (without it, "
            "such a session is refused; docs/grading.md)", _flag),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kt", "kernel conformance harness")
    for opt in OPTIONS:
        dest = opt.ini
        if opt.parse is _flag:
            group.addoption(opt.flag, dest=dest, action="store_const", const="true",
                            default=None, help=opt.help)
        else:
            group.addoption(opt.flag, dest=dest, metavar=opt.metavar, default=None, help=opt.help)
        parser.addini(opt.ini, f"{opt.help} [same as {opt.flag}]")
    group.addoption("--realtime", dest="kt_deterministic", action="store_const", const="false",
                    help="run QEMU in real time (no -icount): timing varies from run to run; needs "
                         "an idle machine (under load timer and fairness rules can fail)")


def _setting(config: pytest.Config, opt: _Option) -> tuple[Any, str] | None:
    """(value, source) from the command line or the ini file; None if unset."""
    for raw, source in ((config.getoption(opt.ini), opt.flag),
                        (config.getini(opt.ini) or None, f"ini option {opt.ini}")):
        if raw is not None:
            try:
                return opt.parse(raw), source
            except ValueError as e:
                raise pytest.UsageError(f"invalid value {raw!r} for {source}: {e}") from None
    return None


@dataclass
class _Session:
    """Settings and the per-session cache of runs, keyed by (scenario, seed)."""

    cfg: RunConfig
    seed: int
    seed_source: str
    build_root: Path | None  #: build the default kernel here with make if it is missing
    runs: dict[tuple[str, int], Transcript | HarnessError] = field(default_factory=dict)
    build_failure: ImageError | None = None
    el0: El0Config | None = None  #: set: the kernel emits no markers (--submission)
    submission: Path | None = None  #: what --submission named (a tree or an image)
    el0_runs: dict[tuple[str, int], El0Transcript | HarnessError] = field(default_factory=dict)
    parent: int = field(default_factory=os.getppid)  #: an xdist worker's controller
    shift_source: str = "auto: the bundled kernel's 1 kHz tick"  #: why cfg.icount_shift
    rules: str = "project"  #: the rule set judged (a marker kernel: always the project's)

    @property
    def route(self) -> str:
        """How this session judges: "el0" (--submission) or "markers"."""
        return "markers" if self.el0 is None else "el0"

    def check_parent(self) -> None:
        """An xdist worker whose controller died starts no new QEMU: it stops."""
        if self.parent != 1 and os.getppid() != self.parent:
            pytest.exit("the pytest controller is gone: this worker starts no new QEMU", returncode=2)

    def set_shift(self, shift: int, why: str) -> None:
        """Run every QEMU of the session with -icount shift ``shift``."""
        self.cfg = replace(self.cfg, icount_shift=shift)
        if self.el0 is not None:
            self.el0 = replace(self.el0, run=self.cfg)
        self.shift_source = why

    def run_el0(self, scenario: str, seed: int, workdir: Path) -> El0Transcript | HarnessError:
        """The EL0-judged run of ``scenario`` with ``seed``: booted once, then cached."""
        assert self.el0 is not None, "not an EL0 session"
        self.check_parent()
        key = (scenario, seed)
        if key not in self.el0_runs:
            try:
                self.el0_runs[key] = replace(run_el0(self.el0, scenario, seed, workdir), rules=self.rules)
            except HarnessError as e:
                self.el0_runs[key] = e.settle()
        return self.el0_runs[key]

    def run(self, scenario: str, seed: int) -> Transcript | HarnessError:
        """The run of ``scenario`` with ``seed``: booted once, then cached."""
        self.check_parent()
        key = (scenario, seed)
        if key not in self.runs:
            try:
                self._build_kernel()
                self.runs[key] = run_scenario(self.cfg, scenario, seed)
            except HarnessError as e:
                self.runs[key] = e.settle()
        return self.runs[key]

    def _build_kernel(self) -> None:
        """Make the default kernel if it is missing, once a session: a failed
        build is not retried for every scenario."""
        if self.build_failure is not None:
            raise self.build_failure
        if self.build_root is not None:
            try:
                ensure_built(self.cfg.kernel, [DEFAULT_KERNEL], self.build_root)
            except ImageError as e:
                self.build_failure = e
                raise
            self.build_root = None


_SESSION = pytest.StashKey[_Session]()
#: the heartbeat (--heartbeat) and the rubric score line that ends a session (harness/progress.py)
pytest_plugins = ["harness.progress"]
_PATHS = pytest.StashKey[list[Path]]()
_FACTS = pytest.StashKey[RuleFacts]()  #: a judge's facts (harness.rules), read at collection
_VERDICT = pytest.StashKey[str]()  #: why the test's run could not be judged, if it could not
_ROOT = pytest.StashKey[str]()  #: not judged for a needed rule: the failed rule below
_CUT = pytest.StashKey[bool]()  #: the test judged an EL0 run cut by the run bound
_DESELECTED = pytest.StashKey[str]()  #: the line saying what the rules deselected
_OUTCOMES = pytest.StashKey[dict[tuple[str | None, str, str], "_Outcome"]]()
_WORKER_DESELECTED = "kt_deselected"  # key in xdist's workeroutput


def _path(config: pytest.Config, setting: tuple[str, str] | None, default: str) -> Path:
    """A path setting: relative to the current directory when given on the
    command line, to the ini file when given there, else ``default`` under
    the rootdir."""
    if setting is None:
        return config.rootpath / default
    value, source = setting
    if source.startswith("--"):
        return config.invocation_params.dir / value
    return (config.inipath or config.rootpath).parent / value


def _make_session(config: pytest.Config) -> _Session:
    values = {opt.ini: _setting(config, opt) for opt in OPTIONS}
    kernel = _path(config, values["kt_kernel"], DEFAULT_KERNEL)
    # Only the default image is built on demand; one named by the user is judged as it is.
    build_root = config.rootpath if values["kt_kernel"] is None else None
    cfg = RunConfig(kernel=kernel,
                    transcript_dir=_path(config, values["kt_transcript_dir"], TRANSCRIPT_DIR))
    assert cfg.transcript_dir is not None
    _writable_dir(cfg.transcript_dir, "--transcript-dir")
    if values["kt_kernel"] is not None and values["kt_submission"] is None:
        try:  # a bad image named up front is one usage error, not one error per test
            inspect_image(kernel)
        except ImageError as e:
            raise pytest.UsageError(f"--kernel: {e.summary}") from None
    for name, attr in (("kt_qemu", "qemu"), ("kt_run_timeout", "run_timeout"), ("kt_run_cpu", "run_cpu"),
                       ("kt_boot_timeout", "boot_timeout"), ("kt_console", "console"),
                       ("kt_deterministic", "deterministic"), ("kt_boot", "boot")):
        if values[name] is not None:
            cfg = replace(cfg, **{attr: values[name][0]})
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        seed, source = workerinput[_WORKER_SEED], "from the xdist controller"
    elif values["kt_seed"] is not None:
        seed, source = values["kt_seed"]
    else:
        seed, source = random.getrandbits(64), "random"
    unsafe = values["kt_unsafe_no_sandbox"] is not None and values["kt_unsafe_no_sandbox"][0]
    if unsafe:
        cfg = replace(cfg, jail="unsafe")
    _check_jail(values, kernel, unsafe)
    session = _Session(cfg, seed, source, build_root)
    if values["kt_submission"] is not None:
        _set_submission(config, session, values)
    elif values["kt_icount_shift"] is not None and values["kt_icount_shift"][0] is not None:
        session.set_shift(values["kt_icount_shift"][0], "--icount-shift")
    elif workerinput is not None:
        session.set_shift(workerinput[_WORKER_SHIFT], "from the xdist controller")
    elif values["kt_kernel"] is not None and cfg.deterministic:
        found = calibrate_markers(session.cfg)  # a --kernel's tick rate, from its boot marker
        if found is not None:
            session.set_shift(found.shift, found.describe())
    return session


def _check_jail(values: dict[str, Any], kernel: Path, unsafe: bool) -> None:
    """Where no jail can be made, a session that would run code this checkout
    did not build (--submission, a --kernel outside build/) is one usage
    error naming why, unless --unsafe-no-sandbox."""
    foreign = values["kt_submission"] is not None or (values["kt_kernel"] is not None
                                                      and not own_image(kernel))
    why = unavailable() if foreign and not unsafe else None
    if why is not None:
        what = "--submission" if values["kt_submission"] is not None else f"--kernel {kernel}"
        raise pytest.UsageError(f"{what}: refusing to run code this checkout did not build without a "
                                f"jail: {why}; pass --unsafe-no-sandbox to run it unjailed anyway")


def _jail_summary(cfg: RunConfig) -> str:
    why = unavailable()
    if cfg.jail == "off":
        return "off: QEMU runs bare"
    if why is None:
        return "every QEMU boot and submission build in a bubblewrap jail"
    if cfg.jail == "unsafe":
        return f"NONE ({why}); --unsafe-no-sandbox: everything runs unjailed"
    return f"none ({why}): only this checkout's own images run (bare)"


def _replay_hint(submission: Path, rules: str, boot: str = "auto", entry: str = ENTRY) -> str:
    """The command that reruns one scenario of a --submission session."""
    extra = (("" if rules == "project" else f" RULES={rules}") + ("" if boot == "auto" else f" BOOT={boot}")
             + ("" if entry == ENTRY else f" ENTRY={entry}"))
    return (f"make check SUBMISSION={submission}{extra} "
            f'PYTEST_ARGS="--seed {{seed}} -k {{scenario}}"')


def _set_submission(config: pytest.Config, session: _Session, values: dict[str, Any]) -> None:
    """An EL0 session: port the tree (once, in the xdist controller), check
    that the result speaks at all, and judge from EL0 markers."""
    submission = _path(config, values["kt_submission"], "")
    if submission.is_dir():  # a hand-in one folder down, or a folder holding only its image
        submission = resolve_folder(submission)[0]
    rules = values["kt_rules"][0] if values["kt_rules"] else "project"
    entry = values["kt_entry"][0] if values["kt_entry"] else ENTRY
    session.rules = rules
    el0 = El0Config(session.cfg, replay=_replay_hint(submission, rules, session.cfg.boot, entry))
    if values["kt_stall"] is not None:
        el0 = replace(el0, stall_cpu=values["kt_stall"][0])
    shift = values["kt_icount_shift"][0] if values["kt_icount_shift"] else None
    session.submission, session.build_root = submission, None
    if session.cfg.transcript_dir is not None:  # never mixed with the bundled kernel's runs
        session.cfg = replace(session.cfg, transcript_dir=session.cfg.transcript_dir / f"el0-{submission.name}")
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        image = Path(workerinput[_WORKER_IMAGE])
    elif submission.is_dir():
        try:
            workdir = (_path(config, values["kt_port_dir"], "") if values["kt_port_dir"]
                       else config.rootpath / "build" / "port" / submission.name)
            ported = port_tree(submission, config.rootpath / "build" / "kt-user.o", workdir,
                               unsafe=session.cfg.jail == "unsafe", entry=entry)
        except PortError as e:
            raise pytest.UsageError(f"--submission {submission}: {e.summary}\n"
                                    + "\n".join(e.tail()[-8:])) from None
        image = ported.image
    elif submission.is_file():
        image = submission
    else:
        raise pytest.UsageError(f"--submission {submission}: no such tree or image")
    session.cfg = replace(session.cfg, kernel=image)
    session.el0 = replace(el0, run=session.cfg)
    if workerinput is not None:
        session.set_shift(workerinput[_WORKER_SHIFT], "from the xdist controller")
        return
    if shift is not None:
        session.set_shift(shift, "--icount-shift")
    elif session.cfg.deterministic:
        with tempfile.TemporaryDirectory(prefix="kt-calibrate-") as workdir:
            found = calibrate(session.el0, Path(workdir))
        session.set_shift(found.shift, found.describe())
    _probe(config, session)


def _probe(config: pytest.Config, session: _Session) -> None:
    """One boot before any test: a kernel that prints nothing, or never starts
    the program, is one usage error, not ten identical failures."""
    with tempfile.TemporaryDirectory(prefix="kt-probe-") as workdir:  # its own: sessions run side by side
        result = session.run_el0("clone_twice", session.seed, Path(workdir))
    if isinstance(result, (KernelSilent, ImageError)):
        last = next((line for line in reversed(result.lines) if line.strip()), None)
        said = "" if last is None else f"; its last line: {printable(last, 200)}"
        where = "" if result.path is None else f"; transcript: {result.path}"
        raise pytest.UsageError(f"--submission {session.submission}: {result.summary}{said}{where}")


class _ShortInterrupt:
    """On Ctrl-C pytest formats the whole traceback (source and arguments of
    every frame) only to print its last line, unless --full-trace: this
    keeps only that entry, so an interrupted session stops at once."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_keyboard_interrupt(self, excinfo: ExceptionInfo[BaseException]) -> None:
        if len(excinfo.traceback) > 1:
            excinfo.traceback = excinfo.traceback[-1:]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", kt_rules.MARKER_HELP)
    config.stash[_SESSION] = _make_session(config)
    config.stash[_OUTCOMES] = {}
    config.pluginmanager.register(_Collected(), "kt-collected")
    if not getattr(config.option, "fulltrace", False):
        config.pluginmanager.register(_ShortInterrupt(), "kt-short-interrupt")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: every worker runs the controller's seed (and its ported image)."""
    session = node.config.stash[_SESSION]
    node.workerinput[_WORKER_SEED] = session.seed
    node.workerinput[_WORKER_SHIFT] = session.cfg.icount_shift
    if session.el0 is not None:
        node.workerinput[_WORKER_IMAGE] = str(session.cfg.kernel)


def _kernel_summary(session: _Session) -> str:
    cfg = session.cfg
    if not cfg.kernel.exists() and session.build_root is not None:
        return f"{cfg.kernel} (not built yet: `make {DEFAULT_KERNEL}` runs on first use)"
    try:
        console, source = choose_console(cfg, inspect_image(cfg.kernel))
    except HarnessError as e:
        return f"{cfg.kernel} ({e})"
    return f"{cfg.kernel} (console {console}: {source})"


def _boot_summary(session: _Session) -> str:
    cfg = session.cfg
    if not cfg.kernel.exists():
        return f"{cfg.boot} (decided once the image is built)"
    try:
        return choose_boot(cfg).describe()
    except OSError as e:
        return f"{cfg.boot} ({e})"


def pytest_report_header(config: pytest.Config) -> list[str]:
    session = config.stash[_SESSION]
    cfg = session.cfg
    judged = ([f"kt submission: {session.submission} (judged from EL0 markers; image {cfg.kernel}; "
               f"rule set {session.rules})"] if session.el0 is not None else [])
    return judged + [
        f"kt kernel: {_kernel_summary(session)}",
        f"kt qemu: {cfg.qemu}, boot-timeout {cfg.boot_timeout:g} s, run-cpu {cfg.run_cpu:g} s "
        f"(QEMU CPU time: guest progress), run-timeout {cfg.run_timeout:g} s (wall-clock safety "
        f"net), deterministic {'on' if cfg.deterministic else 'off'}",
        f"kt boot: {_boot_summary(session)}",
        "kt icount: " + (f"shift {cfg.icount_shift} ({session.shift_source})"
                          if session.shift_source[:5] != "shift" else session.shift_source),
        f"kt seed: {session.seed} ({session.seed_source}; replay with --seed {session.seed})",
        f"kt jail: {_jail_summary(cfg)}",
        f"kt rules: rule set {session.rules}, route {session.route}: the judges of the other route "
        "and of other rule sets are deselected, not skipped (counted after collection)",
    ]


@pytest.fixture(scope="session")
def kt_seed(request: pytest.FixtureRequest) -> int:
    """The session's seed (from --seed, the ini file, or drawn at random and
    shown in the header): what a test passes on to replay this session."""
    return request.config.stash[_SESSION].seed


def _record(request: pytest.FixtureRequest, session: _Session, scenario: str, seed: int,
            path: Path | None) -> None:
    """JUnit properties of the test: what ran, with what, and where its
    transcript is (graders and CI read them)."""
    props = request.node.user_properties
    if ("kt_scenario", scenario) not in props:  # a judge's is there from its setup
        props.append(("kt_scenario", scenario))
    props += [("kt_seed", str(seed)), ("kt_kernel", str(session.cfg.kernel))]
    if session.cfg.kernel.exists():
        props.append(("kt_boot", choose_boot(session.cfg).short))
    if session.el0 is not None:
        props += [("kt_submission", str(session.submission)), ("kt_rules", session.rules)]
    if path is not None:
        props.append(("kt_transcript", str(path)))


R = TypeVar("R", Transcript, El0Transcript)


def _runner(request: pytest.FixtureRequest, boot: Callable[[str, int], R | HarnessError]
            ) -> Callable[..., R]:
    """The function a run fixture hands a test: ``boot`` (cached per session)
    the scenario with the session seed or its own, note what ran (JUnit
    properties, the transcript for the report), fail in one line on a verdict."""
    session = request.config.stash[_SESSION]
    paths = request.node.stash.setdefault(_PATHS, [])

    def run(name: str, seed: int | None = None) -> R:
        __tracebackhide__ = True
        seed = session.seed if seed is None else seed
        result = boot(name, seed)
        _record(request, session, name, seed, result.path)
        if result.path is not None and result.path not in paths:
            paths.append(result.path)
        if isinstance(result, HarnessError):
            request.node.stash[_VERDICT] = result.report().split("\n", 1)[0]
            pytest.fail(result.report(), pytrace=False)
        if isinstance(result, El0Transcript) and result.ending == "timeout":
            request.node.stash[_CUT] = True
        return result

    return run


@pytest.fixture(name="run_scenario")
def _run_scenario(request: pytest.FixtureRequest) -> Callable[..., Transcript]:
    """``run_scenario(name, seed=None) -> Transcript``: the session's run of
    ``name`` with the session seed (or ``seed``), booted once per session and
    shared by every test that asks. A bad verdict fails the test in one line,
    with the console tail and the saved transcript's path."""
    session = request.config.stash[_SESSION]
    if session.el0 is not None:
        pytest.skip("not judged: the kernel reports no events (this rule needs kernel markers; "
                    "the test_el0_* tests judge what EL0 can observe)")
    return _runner(request, session.run)


@pytest.fixture(name="run_el0")
def _run_el0(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Callable[..., El0Transcript]:
    """``run_el0(name, seed=None) -> El0Transcript``: the session's EL0-judged
    run of ``name`` (--submission), booted once per session. Skips when the
    kernel reports markers (then the marker judges decide), and for a
    scenario that needs them (harness.el0.MARKER_ONLY)."""
    session = request.config.stash[_SESSION]
    if session.el0 is None:
        pytest.skip("judged from kernel markers in this session (EL0 judges run with --submission)")
    workdir = tmp_path_factory.getbasetemp() / "el0-images"
    run = _runner(request, lambda name, seed: session.run_el0(name, seed, workdir))

    def run_judgeable(name: str, seed: int | None = None) -> El0Transcript:
        __tracebackhide__ = True
        if name in MARKER_ONLY:
            pytest.skip(MARKER_ONLY[name])
        return run(name, seed)

    return run_judgeable


def _one_line_failure(excinfo: ExceptionInfo[BaseException]) -> Any:
    """The exception's own message as the whole report, its first line as
    the short-summary line; no traceback."""
    longrepr = excinfo.getrepr(style="value", chain=False)
    entry = excinfo.traceback[-1]
    crash = ReprFileLocation(str(entry.path), entry.lineno + 1, str(excinfo.value).split("\n", 1)[0])
    longrepr.reprcrash = crash
    traceback, _, description = longrepr.chain[-1]
    longrepr.chain[-1] = (traceback, crash, description)  # what xdist sends to the controller
    return longrepr


# --- rules (harness/rules.py): deselect, needs, outcomes -------------------------

@dataclass(frozen=True)
class _Outcome:
    """How a judge came out in this run (what a rule that needs it reads)."""

    kind: str  #: harness.rules: PASSED, FAILED, NOT_JUDGED, NOT_APPLICABLE, VERDICT
    reason: str = ""  #: a failure's first line, a skip's message
    root: str = ""  #: not judged for a needed rule: the failed rule at the bottom


def _key(item: pytest.Item, facts: RuleFacts, name: str | None = None) -> tuple[str | None, str, str]:
    return kt_rules.scenario_of(item), facts.route, name or kt_rules.base_name(item)


def _why_out(facts: RuleFacts, session: _Session, own_sets: dict[str | None, set[str]],
             scenario: str | None) -> str | None:
    """Why a judge is deselected in this session ("the el0 route"), or None."""
    if facts.route != session.route:
        return f"of the {facts.route} route"
    sets = (facts.sets if facts.sets is not None
            else own_sets.get(scenario, set(RULE_SETS)))
    if session.rules not in sets:
        return f"outside the {session.rules} rule set"
    return None


def _with_needs(chosen: list[pytest.Item], pool: list[pytest.Item]) -> list[pytest.Item]:
    """``chosen`` with every test it needs (from ``pool``, the judges this
    session may run) brought in, each in front of the first that needs it."""
    by_key = {_key(item, item.stash[_FACTS]): item for item in pool}
    out: list[pytest.Item] = []
    placed: set[int] = set()

    def place(item: pytest.Item) -> None:
        if id(item) in placed:
            return
        placed.add(id(item))
        facts = item.stash.get(_FACTS, None)
        for need in facts.needs if facts is not None else ():
            needed = by_key.get(_key(item, facts, need))
            if needed is not None and needed is not item:
                place(needed)
        out.append(item)

    for item in chosen:
        place(item)
    return out


@pytest.hookimpl(trylast=True)  # after -k/-m and the suite's own ordering
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the judges of the other route and those outside the
    session's rule set (reported once, not as skips); bring in what the
    rest needs. A scenario none of whose own judges is selected is then not
    run at all: its every-run rules follow it (sets=None)."""
    session = config.stash[_SESSION]
    judges = []
    for item in config.stash.get(_COLLECTED, items):
        try:
            facts = kt_rules.facts_of(item)
        except RuleError as e:
            raise pytest.UsageError(str(e)) from None
        if facts is not None:
            item.stash[_FACTS] = facts
            judges.append(item)
    own_sets: dict[str | None, set[str]] = {}
    for item in judges:
        facts = item.stash[_FACTS]
        if facts.route == session.route and facts.sets is not None:
            own_sets.setdefault(kt_rules.scenario_of(item), set()).update(facts.sets)
    why = {id(item): _why_out(item.stash[_FACTS], session, own_sets, kt_rules.scenario_of(item))
           for item in judges}
    pool = [item for item in judges if why[id(item)] is None]
    kept = _with_needs([item for item in items if why.get(id(item)) is None], pool)
    dropped = [item for item in items if why.get(id(item)) is not None]
    counts: dict[str, int] = {}
    for item in dropped:
        counts[why[id(item)]] = counts.get(why[id(item)], 0) + 1  # type: ignore[index]
    items[:] = kept
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    line = (f"kt rules: rule set {session.rules}, route {session.route}: {len(dropped)} judges "
            f"deselected" + (f" ({', '.join(f'{n} {w}' for w, n in sorted(counts.items()))})"
                             if counts else ""))
    if not judges:
        return
    config.stash[_DESELECTED] = line
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[_WORKER_DESELECTED] = line


_COLLECTED = pytest.StashKey[list[pytest.Item]]()  #: every item collected, before -k deselects


class _Collected:
    """Keeps every collected item (before -k or -m deselect any): a needed
    judge outside the selection is brought back from there."""

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_collection_modifyitems(self, config: pytest.Config,
                                      items: list[pytest.Item]) -> Generator[None, Any, None]:
        config.stash[_COLLECTED] = list(items)
        yield


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist: the rules line from a worker (every worker collects the same)."""
    line = getattr(node, "workeroutput", {}).get(_WORKER_DESELECTED)
    if line is not None:
        node.config.stash[_DESELECTED] = line


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    line = config.stash.get(_DESELECTED, None)
    if line is not None:
        terminalreporter.write_line(line)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A judge's facts go into its JUnit properties; a judge whose needed
    rule failed in this run is not judged (before any fixture boots QEMU)."""
    facts = item.stash.get(_FACTS, None)
    if facts is None:
        return
    scenario = kt_rules.scenario_of(item)
    item.user_properties += [(kt_rules.PROPS["scenario"], scenario or ""), *facts.props()]
    outcomes = item.config.stash[_OUTCOMES]
    for need in facts.needs:
        got = outcomes.get(_key(item, facts, need))
        if got is None or got.kind == kt_rules.PASSED:
            continue  # passed, or not run in this session: judged on its own
        if got.kind == kt_rules.NOT_APPLICABLE:
            kt_rules.not_applicable(f"needs {need}, which does not apply here ({got.reason})")
        item.stash[_ROOT] = got.root if got.kind == kt_rules.NOT_JUDGED else need
        if got.root and got.root != need:
            kt_rules.not_judged(f"needs {need}, not judged because {got.root} failed")
        what = "failed" if got.kind != kt_rules.NOT_JUDGED else f"was not judged ({got.reason})"
        kt_rules.not_judged(f"needs {need}, which {what}")


def _classify(item: pytest.Item, report: pytest.TestReport, call: pytest.CallInfo[None],
              facts: RuleFacts) -> tuple[str, str]:
    """(outcome class, verdict text) of a judge's setup or call report."""
    if report.passed:
        return kt_rules.PASSED, ""
    if report.skipped:
        return (kt_rules.NOT_APPLICABLE if call.excinfo is None
                else kt_rules.kind_of_skip(call.excinfo.value)), ""
    verdict = item.stash.get(_VERDICT, "")
    if not verdict and item.stash.get(_CUT, False):
        verdict = "RunTimeout: the run was cut by the run bound before every task exited"
    if not verdict and facts.voids:
        verdict = facts.voids
    return (kt_rules.VERDICT, verdict) if verdict else (kt_rules.FAILED, "")


def _settle(item: pytest.Item, report: pytest.TestReport, call: pytest.CallInfo[None]) -> None:
    """Record a judge's outcome (for the rules that need it, and as JUnit
    properties) once its setup or call settled it."""
    facts = item.stash.get(_FACTS, None)
    if facts is None or report.when not in ("setup", "call") or (report.when == "setup" and report.passed):
        return
    kind, verdict = _classify(item, report, call, facts)
    if report.skipped and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2]).removeprefix("Skipped: ")
    else:
        reason = "" if report.passed else str(getattr(report.longrepr, "reprcrash", None) and
                                              report.longrepr.reprcrash.message or "")  # type: ignore[union-attr]
    root = item.stash.get(_ROOT, "") if kind == kt_rules.NOT_JUDGED else ""
    item.config.stash[_OUTCOMES][_key(item, facts)] = _Outcome(kind, reason.split("\n", 1)[0], root)
    item.user_properties.append((kt_rules.PROPS["outcome"], kind))
    if verdict:
        item.user_properties.append((kt_rules.PROPS["verdict"], verdict))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """Verdicts and broken rules: the message alone, no traceback. Other
    failures of a test that ran a scenario: a section naming the transcripts.
    A judge's outcome is recorded (harness.rules)."""
    outcome = yield
    report = outcome.get_result()
    _settle(item, report, call)
    if report.when not in ("setup", "call") or not report.failed or call.excinfo is None:
        return
    excinfo = call.excinfo
    if excinfo.errisinstance(RuleBroken) or (
            excinfo.errisinstance(pytest.fail.Exception) and not excinfo.value.pytrace):
        report.longrepr = _one_line_failure(excinfo)
    elif item.stash.get(_PATHS, []):
        report.sections.append(("kt transcripts", "\n".join(map(str, item.stash[_PATHS]))))
