"""Scoring without QEMU (harness/grade.py score() and summary.csv): what
counts as judged, what a verdict costs, and the columns a class sheet has."""
from __future__ import annotations

import csv
import functools
from collections.abc import Generator
from pathlib import Path

import pytest
from xml.sax.saxutils import quoteattr

from harness import rules
from harness.grade import DEFAULT_RUBRIC, Graded, ScenarioResult, Submission, load_rubric, score, write_class

RUBRIC = load_rubric(DEFAULT_RUBRIC)
ROOT = Path(__file__).resolve().parents[2]
MALLOC = "tests.scenarios.test_malloc_exhaustion"
ZOMBIE = "tests.scenarios.test_exit_zombie"


class _Collect:
    """Every judge of tests/scenarios as collected, before any deselection."""

    def __init__(self) -> None:
        self.facts: dict[tuple[str, str, str], rules.RuleFacts] = {}

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> Generator[None, None, None]:
        for item in items:
            facts = rules.facts_of(item)
            if facts is not None:
                self.facts[(rules.scenario_of(item) or "", facts.route, rules.base_name(item))] = facts
        yield


@functools.lru_cache(maxsize=1)
def judges() -> dict[tuple[str, str, str], rules.RuleFacts]:
    """(scenario, route, test) -> facts of every judge the suite collects."""
    collect = _Collect()
    code = pytest.main([str(ROOT / "tests" / "scenarios"), "--collect-only", "-q", "-p", "no:cacheprovider",
                        "-p", "no:xdist", "--rootdir", str(ROOT)], plugins=[collect])
    assert code == 0 and collect.facts, f"collecting tests/scenarios failed ({code})"
    return collect.facts


def junit(tmp_path: Path, cases: list[tuple[str, str, str, str]]) -> Path:
    """A JUnit file of (module, test, outcome 'passed'/'failed'/'skipped'/'verdict', message),
    with the properties the plugin writes: the judge's scenario and weight
    (from its marker) and its outcome class (a skip "not judged: ..." is
    not-judged, any other not-applicable; a verdict's text is the message)."""
    body = []
    for module, test, outcome, message in cases:
        scenario = module.rsplit(".test_", 1)[-1]
        route = "el0" if test.startswith("test_el0_") else "markers"
        weight = judges()[(scenario, route, test)].weight
        kind = {"passed": rules.PASSED, "failed": rules.FAILED, "verdict": rules.VERDICT}.get(outcome) or (
            rules.NOT_JUDGED if message.startswith("not judged") else rules.NOT_APPLICABLE)
        props = {"kt_scenario": scenario, "kt_weight": f"{weight:g}", "kt_outcome": kind}
        if outcome == "verdict":
            props["kt_verdict"] = message.split("\n", 1)[0]
        inner = "<properties>" + "".join(f"<property name={quoteattr(k)} value={quoteattr(v)}/>"
                                         for k, v in props.items()) + "</properties>"
        inner += ("" if outcome == "passed" else
                  f"<failure message={quoteattr(message)}>{message}</failure>" if outcome in ("failed", "verdict")
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
    cut = "RunTimeout: the run was cut by the run bound before every task exited"
    cases = [(ZOMBIE, "test_el0_clones_work", "passed", ""),
             (ZOMBIE, "test_el0_a_exits", "passed", ""),
             (ZOMBIE, "test_el0_exit_never_returns", "passed", ""),
             (ZOMBIE, "test_el0_others_keep_running", "verdict", cut)]
    got = scenario(score(junit(tmp_path, cases), RUBRIC, "el0", "lesson"), "exit_zombie")
    assert got.points == 0 and got.verdict.startswith("RunTimeout:")
    stalled = ("rule broken: scheduler: the other tasks must keep running after a task exits\n"
               "  B counted no turns\n  the run ended: stalled: no EL0 marker for 2 s\n")
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
    assert RUBRIC.max_score("el0", "lesson") == 82 and RUBRIC.max_score("markers", "project") == 100


def test_rubric_matches_the_collected_judges() -> None:
    """Every scenario the suite judges has rubric points (a new scenario
    left out of the rubric would never count), every rubric scenario has
    judges, and the rubric's modes and rule sets are the judges' own."""
    facts = judges()
    scenarios = {s for s, _, _ in facts}
    assert scenarios - set(RUBRIC.scenarios) == set(), "scenarios judged but missing from the rubric"
    assert set(RUBRIC.scenarios) - scenarios == set(), "rubric entries with no judge"
    for name, entry in RUBRIC.scenarios.items():
        routes = {route for s, route, _ in facts if s == name}
        assert routes == set(entry.modes), f"{name}: rubric modes {entry.modes}, judges' routes {routes}"
        own = set().union(*[f.sets or () for (s, route, _), f in facts.items() if s == name and route == "el0"])
        if "el0" in entry.modes:
            assert own == set(entry.rule_sets), f"{name}: rubric rule_sets {entry.rule_sets}, judges' {own}"


def test_every_need_names_a_judge_of_its_scenario_and_route() -> None:
    facts = judges()
    for (scenario, route, test), f in facts.items():
        for need in f.needs:
            assert (scenario, route, need) in facts, f"{scenario}: {test} needs {need}, which is not a judge there"


def test_a_bad_rubric_is_one_line() -> None:
    """Weights live on the judges now: a rubric that still lists some says so."""
    import tempfile
    from harness.grade import GradeError
    with tempfile.TemporaryDirectory() as d:
        bad = Path(d) / "rubric.toml"
        bad.write_text("[scenarios.demo]\npoints = 1\n[scenarios.demo.weights]\ntest_x = 2\n")
        with pytest.raises(GradeError, match="declared on its judge"):
            load_rubric(bad)
