"""Judge of scenario malloc_race (tests/scenarios/malloc_race.c).

Two children call malloc where their time slices end, so that one is
switched out inside malloc and the other calls malloc next; the pages the
kernel hands out are replayed from the palloc/pfree/pmove markers.
"""
from __future__ import annotations

import pytest

from harness.events import PAlloc, Switch

SCENARIO = "malloc_race"
#: every judge of this file: its route and root (harness/rules.py)
pytestmark = pytest.mark.rule(route="markers", needs=("test_root_rules",))
ROUNDS = 8  # malloc_race.c MR_ROUNDS
MIN_TURNS = ROUNDS  # switches between the children while both malloc


@pytest.fixture
def t(run_scenario, kt, request):
    return kt.marker_run(run_scenario, SCENARIO, request)


@pytest.mark.rule(weight=3)
def test_no_page_is_given_twice(t, kt):
    """A page malloc hands out is the caller's until the caller exits: two
    tasks inside malloc at the same time never get the same page."""
    pages = kt.Pages(t)
    twice = [(e, why) for e, why in pages.errors if isinstance(e, PAlloc)]
    if twice:
        e, why = twice[0]
        first = [a for a in t.before(e) if isinstance(a, PAlloc) and a.addr == e.addr][-1:]
        t.fail("malloc: two tasks must never get the same page (a page stays its owner's until "
               "the owner exits, whoever else is inside malloc)", *first, e, detail=why)


def test_mallocs_meet_at_slice_ends(t, kt):
    """The scenario's precondition: the children's malloc bursts alternate
    across time slices (a switch between them, each side having called
    malloc), so a switch can land inside one's malloc."""
    a, b = kt.two_children(t)
    turns, last = 0, None
    for e in t.events:
        if isinstance(e, PAlloc) and e.pid in (a, b):
            if last is not None and e.pid != last:
                turns += 1
            last = e.pid
    t.check(turns >= MIN_TURNS, "scheduling: two tasks of equal priority must take turns (the "
            "children's mallocs alternate across their time slices)",
            *[e for e in t.events if isinstance(e, Switch) and e.to in (a, b)][:2],
            detail=f"the children's mallocs changed hands {turns} times (at least {MIN_TURNS} "
                   "expected)")

