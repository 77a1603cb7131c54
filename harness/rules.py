"""What a rule is, declared once, on its judge (docs/judging.md, "Rules").

Every judge in tests/scenarios carries the ``rule`` marker::

    @pytest.mark.rule(route="el0", sets=("project",), needs=("test_el0_a_exits",), weight=3)
    def test_el0_exit_never_returns(u, kt): ...

A module's ``pytestmark = pytest.mark.rule(...)`` gives its judges
defaults; a judge's own marker wins keyword by keyword (function, then
class, then module). The facts:

- ``route``: how the rule is judged: ``"markers"`` (the kernel's @KT
  markers) or ``"el0"`` (what the EL0 programs report, --submission).
  Required (from the module's default at least).
- ``sets``: the rule sets it belongs to (``"project"``, ``"lesson"``);
  default both. ``None``: it follows its scenario, i.e. it is judged in a
  session where the scenario has one of its own rules selected (the rules
  every run keeps, tests/scenarios/test_invariants.py).
- ``needs``: names of tests of the same scenario and route this rule
  builds on. If one of them failed (or was not judged) in this run, the
  rule is not judged ("not judged: needs <rule>"); one that does not
  apply makes this one not apply either. A needed test outside the
  session (``-k``) is brought in, in front of the first that needs it.
- ``weight``: what the rule earns in its scenario's score (default 1).
- ``voids``: set on a rule that earns nothing but whose failure voids the
  scenario (it scores 0): the reason a grader shows (the seed proof).

The plugin (harness.plugin) deselects the other route's judges and those
outside the session's rule set, applies ``needs`` at setup and writes the
facts and the outcome into each test's JUnit properties (``PROPS``);
harness.grade scores from those.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import pytest
from _pytest.outcomes import Skipped

MARKER = "rule"
ROUTES = ("markers", "el0")
RULE_SETS = ("project", "lesson")
#: the marker's line in `pytest --markers` (registered by the plugin)
MARKER_HELP = ("rule(route, sets=('project', 'lesson'), needs=(), weight=1, voids=''): "
               "the facts of a judge (harness/rules.py)")

#: Outcome classes written as the kt_outcome property.
PASSED, FAILED, NOT_JUDGED, NOT_APPLICABLE, VERDICT = (
    "passed", "failed", "not-judged", "not-applicable", "verdict")

#: JUnit property names (user_properties) of a rule's facts and outcome.
PROPS = {"scenario": "kt_scenario", "route": "kt_route", "sets": "kt_sets", "needs": "kt_needs",
         "weight": "kt_weight", "outcome": "kt_outcome", "verdict": "kt_verdict"}


class RuleError(Exception):
    """A ``rule`` marker that says something impossible (one line)."""


def kind_of_skip(exc: BaseException) -> str:
    """The outcome class of a skip: NOT_JUDGED if raised by ``not_judged``
    (the rule builds on something broken: a grader counts it judged and not
    passed), else NOT_APPLICABLE (counted neither way)."""
    return getattr(exc, _KIND, NOT_APPLICABLE)


_KIND = "kt_outcome"  #: attribute a skip raised here carries


@dataclass(frozen=True)
class RuleFacts:
    """One judge's facts, merged from its ``rule`` markers."""

    route: str
    sets: tuple[str, ...] | None = RULE_SETS  #: None: those of its scenario
    needs: tuple[str, ...] = ()
    weight: float = 1.0
    voids: str = ""

    @classmethod
    def merge(cls, marks: Iterable[Mapping[str, Any]], where: str) -> RuleFacts:
        """The facts from the markers' keywords, closest first (the first
        to give a keyword wins); RuleError naming ``where`` if bad."""
        given: dict[str, Any] = {}
        for kwargs in marks:
            for key, value in kwargs.items():
                given.setdefault(key, value)
        unknown = set(given) - {"route", "sets", "needs", "weight", "voids"}
        if unknown:
            raise RuleError(f"{where}: unknown rule fact(s) {', '.join(sorted(unknown))}")
        if given.get("route") not in ROUTES:
            raise RuleError(f"{where}: rule route must be one of {', '.join(ROUTES)}, "
                            f"not {given.get('route')!r}")
        sets = given.get("sets", RULE_SETS)
        if isinstance(sets, str) or (sets is not None and not set(sets) <= set(RULE_SETS)):
            raise RuleError(f"{where}: rule sets must be a tuple of {', '.join(RULE_SETS)} (or None)")
        needs = given.get("needs", ())
        if isinstance(needs, str):
            raise RuleError(f"{where}: rule needs must be a tuple of test names, not a string")
        weight = given.get("weight", 1)
        if not isinstance(weight, (int, float)) or weight < 0:
            raise RuleError(f"{where}: rule weight must be a number >= 0")
        return cls(given["route"], None if sets is None else tuple(sets), tuple(needs),
                   float(weight), str(given.get("voids", "")))

    def props(self) -> list[tuple[str, str]]:
        """The facts as JUnit properties (sets and needs space-separated)."""
        return [(PROPS["route"], self.route), (PROPS["sets"], " ".join(self.sets or ())),
                (PROPS["needs"], " ".join(self.needs)), (PROPS["weight"], f"{self.weight:g}")]


def facts_of(item: pytest.Item) -> RuleFacts | None:
    """The item's facts, or None if it carries no ``rule`` marker (not a
    judge: a harness self-test)."""
    marks = [m.kwargs for m in item.iter_markers(MARKER)]
    if not marks:
        return None
    for m in item.iter_markers(MARKER):
        if m.args:
            raise RuleError(f"{item.nodeid}: the rule marker takes keywords only")
    return RuleFacts.merge(marks, item.nodeid)


def base_name(item: pytest.Item) -> str:
    """The test's name without its parameters (what ``needs`` names)."""
    return getattr(item, "originalname", item.name)


def scenario_of(item: pytest.Item) -> str | None:
    """The scenario a judge judges: the scenario it is parametrized with
    (argument ``t`` or ``u``: test_invariants.py), else its module's
    SCENARIO."""
    callspec = getattr(item, "callspec", None)
    for name in ("t", "u"):
        if callspec is not None and isinstance(callspec.params.get(name), str):
            return callspec.params[name]
    return getattr(getattr(item, "module", None), "SCENARIO", None)


def _skip(kind: str, text: str) -> NoReturn:
    __tracebackhide__ = True  # a skip's report names the judge, not this line
    exc = Skipped(text, pytrace=False)  # a plain Skipped: pytest shows only the text
    setattr(exc, _KIND, kind)
    raise exc


def not_judged(why: str) -> NoReturn:
    """Skip the running judge as not judged (``why`` completes "not judged: "):
    something it builds on is broken."""
    __tracebackhide__ = True
    _skip(NOT_JUDGED, f"not judged: {why}")


def not_applicable(why: str) -> NoReturn:
    """Skip the running judge as not applicable (``why`` completes "not
    applicable: "): its precondition is out of reach in this run."""
    __tracebackhide__ = True
    _skip(NOT_APPLICABLE, f"not applicable: {why}")
