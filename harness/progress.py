"""What a long pytest session says while it runs and when it ends (issue 14 item 7).

A pytest plugin (loaded by harness.plugin):

- ``--heartbeat S``: every S seconds without a finished test, one line
  naming the tests still running and for how long, so ``make test`` has
  no multi-minute silent stretch (a class graded inside one test takes
  minutes). Under xdist the controller prints it (it hears every worker's
  test start and finish).
- the rubric score line: a session that judged scenarios (``make check``,
  ``make check SUBMISSION=tree``) ends with the score ``grade`` gives that
  run (just before pytest's last line, the counts), computed by
  grade.score_records from the judges' reports (the properties harness.rules
  writes: the same ones grade reads from the JUnit XML), e.g.
  ``rubric score: 68.46/70 (rule set lesson; grading/rubric.toml)``.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Any

import pytest

from .rules import PROPS

#: config.stash keys
_BEAT = pytest.StashKey["Heartbeat"]()
RUBRIC_NAME = "grading/rubric.toml"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kt", "kernel conformance harness")
    group.addoption("--heartbeat", type=float, default=0.0, metavar="S",
                    help="every S seconds without a finished test, name the tests still running "
                         "(0: never; make test passes 30)")
    group.addoption("--no-score-line", action="store_true",
                    help="do not end a session that judged scenarios with its rubric score")


class Heartbeat:
    """A thread that names the running tests after ``interval`` seconds of silence."""

    def __init__(self, config: pytest.Config, interval: float) -> None:
        self.config = config
        self.interval = interval
        self.lock = threading.Lock()
        self.running: dict[str, float] = {}
        self.last = time.monotonic()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="kt-heartbeat", daemon=True)

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        with self.lock:
            self.running[nodeid] = time.monotonic()

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        with self.lock:
            self.running.pop(nodeid, None)
            self.last = time.monotonic()

    def line(self, now: float) -> str | None:
        """The line to print now, or None (a test finished recently)."""
        with self.lock:
            if now - self.last < self.interval:
                return None
            self.last = now
            running = sorted(self.running.items(), key=lambda kv: kv[1])
        if not running:
            return "[still working: collecting or setting up]"
        (oldest, since), more = running[0], len(running) - 1
        return (f"[still running: {oldest} ({now - since:.0f} s)"
                + (f" and {more} more" if more else "") + "]")

    def _loop(self) -> None:
        out = _terminal_fd(self.config)
        while not self.stop.wait(min(self.interval, 5.0)):
            text = self.line(time.monotonic())
            if text is None:
                continue
            if out is not None:
                with contextlib.suppress(OSError):
                    os.write(out, f"\n{text}\n".encode())
                continue
            reporter = self.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line(text)


def _terminal_fd(config: pytest.Config) -> int | None:
    """The terminal's own stdout while pytest captures fd 1 around each test
    (a serial session): the capture saved it. None: write through pytest's
    reporter (no fd capture)."""
    capman = config.pluginmanager.get_plugin("capturemanager")
    out = getattr(getattr(getattr(capman, "_global_capturing", None), "out", None), "targetfd_save", None)
    return out if isinstance(out, int) else None


class _ScoreLine:
    """Prints the rubric score of the session's scenarios at its end, from
    the judges' reports: each carries its rule's properties (harness/rules.py),
    in a serial session and from xdist's workers alike."""

    def __init__(self) -> None:
        self.judged: dict[str, dict[str, str]] = {}  #: a judge's node id: its settled properties

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties)
        if PROPS["outcome"] in props:
            self.judged[report.nodeid] = props

    def text(self, config: pytest.Config) -> str | None:
        from .grade import DEFAULT_RUBRIC, JudgeRecord, load_rubric, score_records, test_name
        from .plugin import _SESSION
        session = config.stash.get(_SESSION, None)
        mode = getattr(session, "route", "markers")
        rules = getattr(session, "rules", "project")
        judged = [JudgeRecord(test_name(nodeid), props) for nodeid, props in self.judged.items()]
        scenarios = score_records(judged, load_rubric(DEFAULT_RUBRIC), mode, rules)
        run = [s for s in scenarios if s.rules]
        if not run:
            return None
        got, most = sum(s.points for s in run), sum(s.max_points for s in run)
        line = f"rubric score: {got:g}/{most:g} (rule set {rules}; {RUBRIC_NAME}"
        left = [s for s in scenarios if not s.rules and s.max_points > 0]
        if left:
            line += (f"; {len(left)} scenario(s) not run ({', '.join(s.name for s in left)}): a full run is "
                     f"out of {sum(s.max_points for s in scenarios):g}")
        return line + ")"

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_terminal_summary(self, terminalreporter: Any, config: pytest.Config) -> Any:
        """After pytest's own summary sections: the score comes after the
        short test summary, just before the last line ("1 failed, 43 passed
        ... in 3.1s")."""
        yield
        try:
            text = self.text(config)
        except Exception as e:  # a score line must never turn a finished session into a crash
            text = f"rubric score: not computed ({type(e).__name__}: {e})"
        if text is not None:
            terminalreporter.write_line(text, bold=True)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker: the controller speaks
        return
    interval = config.getoption("heartbeat", 0.0) or 0.0
    if interval > 0:
        beat = Heartbeat(config, interval)
        config.stash[_BEAT] = beat
        config.pluginmanager.register(beat, "kt-heartbeat")
        beat.thread.start()
    if config.getoption("no_score_line", False) or getattr(config.option, "collectonly", False):
        return
    config.pluginmanager.register(_ScoreLine(), "kt-score-line")


def pytest_unconfigure(config: pytest.Config) -> None:
    beat = config.stash.get(_BEAT, None)
    if beat is not None:
        beat.stop.set()
