"""The class page, the student's report and the LMS gradebook, from graded
submissions made here (no QEMU): the histogram and per-rule counts of
index.html, the three lists of report.html, the student's own paths, and
roster matching (docs/grading.md)."""
from __future__ import annotations

import csv
import html
import io
import json
import re
from pathlib import Path

import pytest

from harness import gradebook, insight
from harness.grade import (ClassState, GradebookSpec, Graded, Rule, ScenarioResult, Submission, load_graded,
                           student_replay, student_text, write_class, write_report, write_results)

CLASS = Path("/srv/class")
OUT = Path("/srv/out")


def sub(name: str, entry: str = "", kind: str = "tree") -> Submission:
    return Submission(name, CLASS / (entry or name), 7, "el0", "c", kind, entry or name)


def scenario(name: str, points: float, most: float, *rules: tuple[str, str, str], verdict: str = "") -> ScenarioResult:
    return ScenarioResult(name, points, most, [Rule(t, o, 1.0, m) for t, o, m in rules], verdict)


def passed(test: str) -> tuple[str, str, str]:
    return (test, "passed", "")


def klass() -> list[Graded]:
    """Five students: full marks, one broken rule, a broken root rule with
    the rules it holds up, a build that failed, an infrastructure fault."""
    msg = (f"rule broken: clone: the child must run\nfull transcript: {OUT}/bob/transcripts/el0-bob/c-7.txt\n"
           f"replay: make check SUBMISSION={CLASS}/bob RULES=lesson PYTEST_ARGS=\"--seed 7 -k clone_twice\"")
    return [
        Graded(sub("ada"), "lesson", [scenario("clone_twice", 20, 20, passed("t_root"), passed("t_a")),
                                      scenario("fairness", 10, 10, passed("t_f"))]),
        Graded(sub("bob"), "lesson", [scenario("clone_twice", 10, 20, passed("t_root"), ("t_a", "failed", msg)),
                                      scenario("fairness", 10, 10, passed("t_f"),
                                               ("t_na", "not_applicable", "not applicable: out of budget"))]),
        Graded(sub("cy"), "lesson", [scenario("clone_twice", 0, 20, ("t_root", "failed", "rule broken: x"),
                                              ("t_a", "needs", "not judged: needs clone to work (t_root)")),
                                     scenario("fairness", 10, 10, passed("t_f"))]),
        Graded(sub("dee"), "lesson", [scenario("clone_twice", 0, 20), scenario("fairness", 0, 10)],
               problem=f"--submission {CLASS}/dee: {CLASS}/dee: its build failed (make exited 2; build log: "
                       f"{OUT}/dee/build/build.log)",
               problem_log=[f"ERROR: --submission {CLASS}/dee: {CLASS}/dee: its build failed (make exited 2; "
                            f"build log: {OUT}/dee/build/build.log)", "src/kernel.c:80:14: error: expected"]),
        Graded(sub("eve"), "lesson", [scenario("clone_twice", 0, 20), scenario("fairness", 0, 10)],
               not_graded="the child pytest died of signal 9 (SIGKILL), which the grader did not send"),
    ]


def page_counts(page: str) -> tuple[dict[int, int], dict[tuple[str, str], tuple[int, int]]]:
    """What index.html shows: bar low -> count; (scenario, rule) -> (broken, not judged)."""
    bars = {int(lo): int(n) for lo, n in re.findall(r'data-low="(\d+)" data-high="\d+" data-count="(\d+)"', page)}
    rules = {(html.unescape(s), html.unescape(t)): (int(b), int(n)) for s, t, b, n in re.findall(
        r'data-scenario="([^"]*)" data-rule="([^"]*)" data-broken="(\d+)" data-not-judged="(\d+)"', page)}
    return bars, rules


def test_index_shows_the_histogram_rule_counts_and_who_was_not_judged(tmp_path: Path) -> None:
    write_class(klass(), tmp_path, ClassState(123456789, "lesson", "ab" * 32, "suite1"))
    page = (tmp_path / "index.html").read_text()
    bars, rules = page_counts(page)
    # ada 30/30, bob 20/30, cy 10/30, dee 0 (not judged); eve has no score (not graded)
    assert bars == {0: 1, 10: 0, 20: 0, 30: 1, 40: 0, 50: 0, 60: 1, 70: 0, 80: 0, 90: 1}
    assert rules[("clone_twice", "t_a")] == (1, 1) and rules[("clone_twice", "t_root")] == (1, 0)
    assert rules[("fairness", "t_f")] == (0, 0)
    assert list(rules)[:2] in ([("clone_twice", "t_a"), ("clone_twice", "t_root")],
                               [("clone_twice", "t_root"), ("clone_twice", "t_a")])  # the most broken first
    assert 'href="bob/report.html#clone_twice"' in page
    # the cause in full (it was cut after the path), without the option prefix naming the path twice
    assert "its build failed (make exited 2; build log: /srv/out/dee/build/build.log)" in page
    assert 'data-unjudged="eve"' in page and "SIGKILL" in page
    assert "suite1" in page and "lesson" in page and "QEMU" in page and "Python" in page
    assert "123456789" not in page  # the class seed is secret: only its fingerprint
    assert insight.seed_fingerprint(123456789) in page
    assert "<script src" not in page and "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_index_counts_resumed_submissions_from_results_json(tmp_path: Path) -> None:
    """A --resume restores the rule lists from results.json: the page counts the same."""
    graded = klass()[:3]
    for g in graded:
        (tmp_path / g.sub.name).mkdir()
        write_results(g, tmp_path / g.sub.name)
    write_class(graded, tmp_path)
    fresh = page_counts((tmp_path / "index.html").read_text())
    restored = [load_graded(g.sub, tmp_path, "lesson") for g in graded]
    assert all(r is not None for r in restored)
    write_class(restored, tmp_path)
    again = page_counts((tmp_path / "index.html").read_text())
    assert again[0] == fresh[0]
    assert {k: v for k, v in again[1].items() if v != (0, 0)} == {k: v for k, v in fresh[1].items() if v != (0, 0)}


def test_report_lists_broken_not_judged_and_not_applicable_apart(tmp_path: Path) -> None:
    for g in klass()[1:3]:
        (tmp_path / g.sub.name).mkdir()
        write_report(g, tmp_path / g.sub.name)
        write_results(g, tmp_path / g.sub.name)
    cy = (tmp_path / "cy" / "report.html").read_text()
    assert "Rules broken (1)" in cy and "Rules not judged (1)" in cy and "needs clone to work" in cy
    assert "Every rule judged here passed" not in cy.split('id="fairness"')[0]
    data = json.loads((tmp_path / "cy" / "results.json").read_text())
    clone = next(t for t in data["tests"] if t["name"] == "clone_twice")
    assert clone["output"].startswith("BROKEN t_root") and "NOT JUDGED t_a" in clone["output"]
    assert data["extra_data"]["kt"]["rule_lists"]["clone_twice"] == {
        "broken": ["t_root"], "not_judged": ["t_a"], "not_applicable": []}
    bob = (tmp_path / "bob" / "report.html").read_text()
    assert "Rules not applicable (1)" in bob and "out of budget" in bob
    fairness = next(t for t in json.loads((tmp_path / "bob" / "results.json").read_text())["tests"]
                    if t["name"] == "fairness")
    assert fairness["status"] == "passed" and "NOT APPLICABLE t_na" in fairness["output"]


def test_report_paths_and_replay_are_the_students(tmp_path: Path) -> None:
    bob = klass()[1]
    (tmp_path / "bob").mkdir()
    write_report(bob, tmp_path / "bob")
    write_results(bob, tmp_path / "bob")
    page = (tmp_path / "bob" / "report.html").read_text()
    text = (tmp_path / "bob" / "results.json").read_text()
    for shown in (page, text):
        assert str(CLASS) not in shown and str(OUT) not in shown
        assert "SUBMISSION=path/to/your/tree RULES=lesson" in shown
        assert "transcripts/el0-bob/c-7.txt" in shown
    assert student_replay(bob.sub, "lesson") == ('make check SUBMISSION=path/to/your/tree RULES=lesson '
                                                 'PYTEST_ARGS="--seed 7"')
    image = Submission("x.img", CLASS / "x.img", 9, "markers", "c", "image", "x.img")
    assert student_text(f"replay: make check KERNEL={CLASS}/x.img PYTEST_ARGS=\"--seed 9\"", image) == \
        'replay: make check KERNEL=path/to/your/kernel8.img PYTEST_ARGS="--seed 9"'
    assert student_text(f"{CLASS}/bob/src/kernel.c:3: error", bob.sub) == "src/kernel.c:3: error"


def test_unjudgeable_report_says_why_at_the_top_once(tmp_path: Path) -> None:
    dee = klass()[3]
    (tmp_path / "dee").mkdir()
    write_report(dee, tmp_path / "dee")
    write_results(dee, tmp_path / "dee")
    page = (tmp_path / "dee" / "report.html").read_text()
    why = "your tree: its build failed (make exited 2; build log: build/build.log)"
    assert page.index(why) < page.index("<h2>Scores</h2>")
    assert page.count(why) == 1  # not again as the log's first line
    assert "expected" in page and "Every rule judged here passed" not in page
    data = json.loads((tmp_path / "dee" / "results.json").read_text())
    assert data["output"].startswith(f"could not be judged: {why}")
    assert all("every rule passed" not in t["output"] and t["status"] == "failed" for t in data["tests"])


# --- gradebook.csv ----------------------------------------------------------------

CANVAS = ("Student,ID,SIS User ID,SIS Login ID,Section,Lab 1 (101)\n"
          "    Points Possible,,,,,10\n"
          "\"Lovelace, Ada\",1001,A1,ada@uni.example,S1,9\n"
          "\"Smith, Bob\",1002,B2,bob@uni.example,S1,\n"
          "\"Mystery, Zed\",1003,Z3,zed@uni.example,S2,\n")
MOODLE = ("First name;Last name;ID number;Institution;Email address\n"
          "Ada;Lovelace;s1;Uni;ada@uni.example\n"
          "Bob;Smith;s2;Uni;bob@uni.example\n"
          "Cy;Young;s3;Uni;cy@uni.example\n")


def graded_as(entries: dict[str, float]) -> list[Graded]:
    """Submissions named as an LMS download names them, each with its score out of 10."""
    return [Graded(sub(re.sub(r"[^A-Za-z0-9_.-]", "_", e.removesuffix(".zip")), e), "lesson",
                   [ScenarioResult("s", p, 10.0)]) for e, p in entries.items()]


def rows(book: gradebook.Gradebook) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(book.csv_text())))


def test_gradebook_from_a_canvas_export(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_text(CANVAS)
    roster = gradebook.read_roster(tmp_path / "r.csv")
    assert roster.columns == ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")  # not the old scores
    klass = graded_as({"lovelaceada_1001_55_kernel.zip": 10, "smithbob_LATE_1002_56_lab.zip": 5, "stranger": 3})
    book = gradebook.build(klass, roster, "Lab 1 (101)")
    got = rows(book)
    assert book.header == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Lab 1 (101)",
                           "Lab 1 (101) (percent)"]
    assert [(r["Student"], r["Lab 1 (101)"], r["Lab 1 (101) (percent)"]) for r in got] == [
        ("Lovelace, Ada", "10", "100"), ("Smith, Bob", "5", "50"), ("Mystery, Zed", "", "")]
    assert any("Mystery" in w and "no submission" in w for w in book.warnings)
    assert book.unmatched == ["stranger"]


def test_gradebook_from_a_moodle_export(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_text("\ufeff" + MOODLE)  # Moodle's CSV: a BOM, semicolons
    roster = gradebook.read_roster(tmp_path / "r.csv")
    klass = graded_as({"Ada Lovelace_4711_assignsubmission_file_": 8, "bob@uni.example.zip": 6.5,
                       "Cy Young": 0})
    got = rows(gradebook.build(klass, roster))
    assert [(r["Email address"], r["Kernel"]) for r in got] == [
        ("ada@uni.example", "8"), ("bob@uni.example", "6.5"), ("cy@uni.example", "0")]


def test_gradebook_never_guesses_between_two_students(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_text("Name,Username\nAda Lovelace,alove\nAda Lovelace,alove2\n")
    book = gradebook.build(graded_as({"Ada_Lovelace": 10}), gradebook.read_roster(tmp_path / "r.csv"))
    assert [r["Kernel"] for r in rows(book)] == ["", ""]
    assert any("matches 2 roster rows" in w for w in book.warnings) and book.unmatched == ["Ada_Lovelace"]


def test_gradebook_without_a_roster_and_a_bad_roster(tmp_path: Path) -> None:
    k = klass()
    book = gradebook.build(k)
    by_name = {r["Student"]: r for r in rows(book)}
    assert by_name["ada"]["Kernel"] == "30" and by_name["dee"]["Kernel"] == "0" and by_name["eve"]["Kernel"] == ""
    (tmp_path / "bad.csv").write_text("score,comment\n3,x\n")
    with pytest.raises(gradebook.RosterError, match="no column names a student"):
        gradebook.read_roster(tmp_path / "bad.csv")
    with pytest.raises(gradebook.RosterError, match="missing.csv"):
        gradebook.read_roster(tmp_path / "missing.csv")
    write_class(k, tmp_path, lms=GradebookSpec(None, "Lab 5"))
    assert (tmp_path / "gradebook.csv").read_bytes().startswith(b"Student,Lab 5,Lab 5 (percent)\r\n")
