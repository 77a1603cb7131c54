"""Judge of scenario write_tick (tests/scenarios/write_tick.c).

Two children write raw ~970-byte lines timed so that their slices end
inside a write ("wrote k= lines= fill=" says how many each wrote): every
one must come out whole. The parent exits after cloning.
"""
from __future__ import annotations

import pytest


SCENARIO = "write_tick"
#: every judge of this file: its route and root (harness/rules.py); an EL0 judge says its own
pytestmark = pytest.mark.rule(route="markers", needs=("test_root_rules",))
LETTERS = 26  # write_tick.c WT_LETTERS
WHOLE_RULE = ("write: a string must come out in one piece: a tick during a write may not let "
              "another task's output into it")


@pytest.fixture
def t(run_scenario, kt, request):
    return kt.marker_run(run_scenario, SCENARIO, request)


def raw_lines(seed, kt, k, wrote):
    """The raw lines child k wrote ("raw <k> <i> " + its fill letter
    `fill` times), as write_tick.c makes them, given its "wrote" line."""
    first = kt.draws(seed, 1)[0] % LETTERS
    letter = chr(ord("a") + (first + k) % LETTERS)
    return [f"raw {k} {i} " + letter * wrote["fill"] for i in range(wrote["lines"])]


def test_writes_come_out_whole(t, kt):
    """Each raw line is one write of its child and arrives whole, in order."""
    for k, pid in enumerate(kt.two_children(t)):
        wrote = kt.fact(t, pid, "wrote", "lines", "fill")
        want = [(line + "\n").encode() for line in raw_lines(t.seed, kt, k, wrote)]
        got = [o for o in t.outputs(pid) if o.data.startswith(b"raw ")]
        bad = next((i for i, o in enumerate(got) if i >= len(want) or o.data != want[i]), None)
        t.check(bad is None and len(got) == len(want), WHOLE_RULE,
                *([got[bad]] if bad is not None else wrote.events),
                detail=f"pid {pid} reported {len(want)} raw lines; {len(got)} writes of them came "
                       + (f"out, write {bad} is not line {bad} whole" if bad is not None else "out"))


# --- judged from EL0 facts (--submission: a kernel that emits no markers) -----
# The parent is task 1; the children are tasks 2 (k=0) and 3 (k=1).

@pytest.fixture
def u(run_el0, kt, request):
    return kt.el0_run(run_el0, SCENARIO, request)


def where_torn(text, head, line):
    """Where console line `text`, which holds `head`, stops being `line`."""
    start = text.index(head)
    at = next((i for i, (a, b) in enumerate(zip(text[start:], line)) if a != b),
              min(len(line), len(text) - start))
    return (f"after {at} of its bytes come {text[start + at:start + at + 24]!r}... (a tick "
            f"switched tasks inside the write)" if start + at < len(text) else
            f"its line ends after {at} of its bytes (the rest came out later, after another "
            f"task's output)")


@pytest.mark.rule(route="el0", sets=("project",), needs=("test_el0_clones_work",), weight=2)
def test_el0_writes_come_out_whole(u, kt):
    """Each child's raw lines (write_tick.c: their slices end inside a
    write) appear as whole console lines: no other task's bytes inside one.
    Project rules: the lesson's sys_write need not keep a string in one
    piece across a tick (the course's does not)."""
    console = {n.text for n in u.noise}
    for k in range(2):
        wrote = kt.first_tagged(u, "wrote", 2 + k)
        kt.need(wrote is not None, f"child {k}'s report of its raw lines ('wrote k={k} lines=..')")
        for i, line in enumerate(raw_lines(u.seed, kt, k, wrote)):
            if line in console:
                continue
            head = f"raw {k} {i} "
            torn = [n for n in u.noise if head in n.text][:1]
            u.fail(WHOLE_RULE, *(torn or [wrote.event]),
                   detail=f"child {k}'s raw line {i} ({len(line)} bytes, its letter "
                          f"{line[-1]!r}) never came out as one whole line"
                          + (f": {where_torn(torn[0].text, head, line)}" if torn else ""))
