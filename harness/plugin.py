"""The pytest plugin: options, report header, the run_scenario fixture, and
failures that read as one line.

Settings come, in this order of precedence, from the command line, the ini
file (``[tool.pytest.ini_options]`` in pyproject.toml), then the defaults;
a bad value is a usage error naming where it came from (after pytest-timeout).

Under xdist the controller picks the random seed and hands it to every
worker, so the whole session runs one seed; each worker caches its own runs.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from _pytest._code.code import ExceptionInfo, ReprFileLocation

from .build import ensure_built
from .errors import HarnessError, ImageError
from .image import CONSOLES, inspect_image
from .judge import RuleBroken
from .prng import parse_seed
from .qemu import DEFAULT_QEMU
from .runner import (DEFAULT_KERNEL, TRANSCRIPT_DIR, RunConfig, choose_console,
                     run_scenario)
from .transcript import Transcript

_WORKER_SEED = "kt_seed"  # key in xdist's workerinput


@dataclass(frozen=True)
class _Option:
    """One setting: its command-line flag, ini name, help, and parser."""

    flag: str
    ini: str
    help: str
    parse: Callable[[str], Any]
    metavar: str | None = None


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError("must be a positive number of seconds")
    return value


def _console(text: str) -> str:
    if text not in CONSOLES:
        raise ValueError(f"must be one of {', '.join(CONSOLES)}")
    return text


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
    _Option("--run-timeout", "kt_run_timeout", "seconds a run may take after its command "
            f"(default: {RunConfig.run_timeout:g})", _positive_seconds, "S"),
    _Option("--boot-timeout", "kt_boot_timeout", "seconds from starting QEMU to the ready "
            f"marker (default: {RunConfig.boot_timeout:g})", _positive_seconds, "S"),
    _Option("--seed", "kt_seed", "seed for every run (default: random, shown in the header)",
            parse_seed, "N"),
    _Option("--console", "kt_console", "console UART: mini or pl011 (default: the image "
            "note's, else mini)", _console, "UART"),
    _Option("--deterministic", "kt_deterministic", "run QEMU with -icount so a seed always "
            "gives the same transcript (the default; --realtime turns it off)", _flag),
    _Option("--transcript-dir", "kt_transcript_dir", f"where run transcripts are saved "
            f"(default: {TRANSCRIPT_DIR})", str, "DIR"),
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
                    help="run QEMU in real time (no -icount): timing varies from run to run")


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

    def run(self, scenario: str, seed: int) -> Transcript | HarnessError:
        """The run of ``scenario`` with ``seed``: booted once, then cached."""
        key = (scenario, seed)
        if key not in self.runs:
            try:
                self._build_kernel()
                self.runs[key] = run_scenario(self.cfg, scenario, seed)
            except HarnessError as e:
                self.runs[key] = e
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
_PATHS = pytest.StashKey[list[Path]]()


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
    for name, attr in (("kt_qemu", "qemu"), ("kt_run_timeout", "run_timeout"),
                       ("kt_boot_timeout", "boot_timeout"), ("kt_console", "console"),
                       ("kt_deterministic", "deterministic")):
        if values[name] is not None:
            cfg = replace(cfg, **{attr: values[name][0]})
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        seed, source = workerinput[_WORKER_SEED], "from the xdist controller"
    elif values["kt_seed"] is not None:
        seed, source = values["kt_seed"]
    else:
        seed, source = random.getrandbits(64), "random"
    return _Session(cfg, seed, source, build_root)


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_SESSION] = _make_session(config)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: every worker runs the controller's seed."""
    node.workerinput[_WORKER_SEED] = node.config.stash[_SESSION].seed


def _kernel_summary(session: _Session) -> str:
    cfg = session.cfg
    if not cfg.kernel.exists() and session.build_root is not None:
        return f"{cfg.kernel} (not built yet: `make {DEFAULT_KERNEL}` runs on first use)"
    try:
        console, source = choose_console(cfg, inspect_image(cfg.kernel))
    except HarnessError as e:
        return f"{cfg.kernel} ({e})"
    return f"{cfg.kernel} (console {console}: {source})"


def pytest_report_header(config: pytest.Config) -> list[str]:
    session = config.stash[_SESSION]
    cfg = session.cfg
    return [
        f"kt kernel: {_kernel_summary(session)}",
        f"kt qemu: {cfg.qemu}, boot-timeout {cfg.boot_timeout:g} s, run-timeout "
        f"{cfg.run_timeout:g} s, deterministic {'on' if cfg.deterministic else 'off'}",
        f"kt seed: {session.seed} ({session.seed_source}; replay with --seed {session.seed})",
    ]


@pytest.fixture(scope="session")
def kt_seed(request: pytest.FixtureRequest) -> int:
    """The session's seed (from --seed, the ini file, or drawn at random and
    shown in the header): what a test passes on to replay this session."""
    return request.config.stash[_SESSION].seed


@pytest.fixture(name="run_scenario")
def _run_scenario(request: pytest.FixtureRequest) -> Callable[..., Transcript]:
    """``run_scenario(name, seed=None) -> Transcript``: the session's run of
    ``name`` with the session seed (or ``seed``), booted once per session and
    shared by every test that asks. A bad verdict fails the test in one line,
    with the console tail and the saved transcript's path."""
    session = request.config.stash[_SESSION]
    paths = request.node.stash.setdefault(_PATHS, [])

    def run(name: str, seed: int | None = None) -> Transcript:
        __tracebackhide__ = True
        result = session.run(name, session.seed if seed is None else seed)
        if result.path is not None and result.path not in paths:
            paths.append(result.path)
        if isinstance(result, HarnessError):
            pytest.fail(result.report(), pytrace=False)
        return result

    return run


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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """Verdicts and broken rules: the message alone, no traceback. Other
    failures of a test that ran a scenario: a section naming the transcripts."""
    outcome = yield
    report = outcome.get_result()
    if report.when not in ("setup", "call") or not report.failed or call.excinfo is None:
        return
    excinfo = call.excinfo
    if excinfo.errisinstance(RuleBroken) or (
            excinfo.errisinstance(pytest.fail.Exception) and not excinfo.value.pytrace):
        report.longrepr = _one_line_failure(excinfo)
    elif item.stash.get(_PATHS, []):
        report.sections.append(("kt transcripts", "\n".join(map(str, item.stash[_PATHS]))))
