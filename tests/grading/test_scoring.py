"""Scoring without QEMU (harness/grade.py score() and summary.csv): what
counts as judged, what a verdict costs, and the columns a class sheet has."""
from __future__ import annotations

import csv
from pathlib import Path
from xml.sax.saxutils import quoteattr

from harness.grade import DEFAULT_RUBRIC, Graded, ScenarioResult, Submission, load_rubric, score, write_class

RUBRIC = load_rubric(DEFAULT_RUBRIC)
MALLOC = "tests.scenarios.test_malloc_exhaustion"
ZOMBIE = "tests.scenarios.test_exit_zombie"


def junit(tmp_path: Path, cases: list[tuple[str, str, str, str]]) -> Path:
    """A JUnit file of (module, test, outcome 'passed'/'failed'/'skipped', message)."""
    body = []
    for module, test, outcome, message in cases:
        inner = ("" if outcome == "passed" else
                 f"<failure message={quoteattr(message)}>{message}</failure>" if outcome == "failed"
                 else f"<skipped type=\"pytest.skip\" message={quoteattr(message)}/>")
        body.append(f"<testcase classname=\"{module}\" name=\"{test}\">{inner}</testcase>")
    path = tmp_path / "junit.xml"
    path.write_text(f"<testsuites><testsuite>{''.join(body)}</testsuite></testsuites>")
    return path


def scenario(results: list[ScenarioResult], name: str) -> ScenarioResult:
    return next(r for r in results if r.name == name)


def test_a_rule_out_of_reach_counts_neither_way(tmp_path: Path) -> None:
    """Exhaustion not observable within the budget: the scenario is scored on
    the rules that were judged, full marks if they pass; a rule skipped for
    a failed root still costs its weight."""
    na = ("not applicable: malloc exhaustion not observable within the budget "
          "(4096 pages allocated, all distinct, aligned, writable)")
    cases = [(MALLOC, "test_el0_clones_work", "passed", ""),
             (MALLOC, "test_el0_malloc_loop_ends", "passed", ""),
             (MALLOC, "test_el0_pages_are_distinct_and_writable", "passed", ""),
             (MALLOC, "test_el0_exhaustion_returns_exactly_minus_one", "skipped", na),
             (MALLOC, "test_el0_still_writes_after_exhaustion", "skipped", na)]
    got = scenario(score(junit(tmp_path, cases), RUBRIC, "el0", "lesson"), "malloc_exhaustion")
    assert got.points == got.max_points == 15 and not got.verdict
    cases[-1] = (MALLOC, "test_el0_still_writes_after_exhaustion", "skipped",
                 "not judged: needs C's report after its malloc loop (test_el0_malloc_loop_ends)")
    got = scenario(score(junit(tmp_path, cases), RUBRIC, "el0", "lesson"), "malloc_exhaustion")
    assert 0 < got.points < got.max_points


def test_a_run_cut_by_the_run_timeout_scores_zero(tmp_path: Path) -> None:
    """docs/grading.md: a timed-out run is a verdict, never partial credit
    (it scored 10/15 when its other rules passed)."""
    cut = ("rule broken: scheduler: the other tasks must keep running after a task exits\n"
           "  B counted no turns\n  the run ended: no end within the run timeout of 30 s\n")
    cases = [(ZOMBIE, "test_el0_clones_work", "passed", ""),
             (ZOMBIE, "test_el0_a_exits", "passed", ""),
             (ZOMBIE, "test_el0_exit_never_returns", "passed", ""),
             (ZOMBIE, "test_el0_others_keep_running", "failed", cut)]
    got = scenario(score(junit(tmp_path, cases), RUBRIC, "el0", "lesson"), "exit_zombie")
    assert got.points == 0 and got.verdict.startswith("RunTimeout:")
    stalled = cut.replace("no end within the run timeout of 30 s", "stalled: no EL0 marker for 2 s")
    cases[-1] = (ZOMBIE, "test_el0_others_keep_running", "failed", stalled)
    got = scenario(score(junit(tmp_path, cases), RUBRIC, "el0", "lesson"), "exit_zombie")
    assert 0 < got.points < got.max_points and not got.verdict  # a hang the rules judge


def test_a_real_bug_costs_more_than_a_contract_difference(tmp_path: Path) -> None:
    """Project rules: pages that never come back after exit cost more than
    pages handed out again unzeroed (the lesson does not zero)."""
    base = [(ZOMBIE, t, "passed", "") for t in ("test_el0_clones_work", "test_el0_a_exits",
                                                  "test_el0_exit_never_returns",
                                                  "test_el0_others_keep_running")]
    unzeroed = base + [(ZOMBIE, "test_el0_exited_pages_come_back", "passed", ""),
                       (ZOMBIE, "test_el0_reused_pages_are_zeroed", "failed", "rule broken: zeroed")]
    kept = base + [(ZOMBIE, "test_el0_exited_pages_come_back", "failed", "rule broken: come back"),
                   (ZOMBIE, "test_el0_reused_pages_are_zeroed", "passed", "")]
    lost = [15 - scenario(score(junit(tmp_path, c), RUBRIC, "el0", "project"), "exit_zombie").points
            for c in (unzeroed, kept)]
    assert 0 < lost[0] < lost[1], lost


def test_summary_has_percent_and_rule_set_and_ranks_by_percent(tmp_path: Path) -> None:
    def graded(name: str, mode: str, points: list[tuple[float, float]]) -> Graded:
        sub = Submission(name, tmp_path / name, 1, mode)
        return Graded(sub, "lesson", [ScenarioResult(f"s{i}", p, m) for i, (p, m) in enumerate(points)])
    klass = [graded("markers90", "markers", [(90, 100)]), graded("lesson70", "el0", [(70, 70)]),
             graded("lesson35", "el0", [(35, 70)])]
    write_class(klass, tmp_path)
    rows = list(csv.DictReader(open(tmp_path / "summary.csv", newline="")))
    assert [r["name"] for r in rows] == ["lesson70", "markers90", "lesson35"]
    assert [(float(r["percent"]), float(r["max_score"]), r["rules"]) for r in rows] == [
        (100, 70, "lesson"), (90, 100, "project"), (50, 70, "lesson")]
    assert RUBRIC.max_score("el0", "lesson") == 70 and RUBRIC.max_score("markers", "project") == 100
