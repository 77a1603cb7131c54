"""Judge of scenario fairness (tests/scenarios/fairness.c).

Two CPU-bound children of equal priority do chunks of additions; each
prints its running value whenever it sees the other has progressed, five
times; the parent exits after cloning. (A tick inside a write:
test_write_tick.py.)
"""
from __future__ import annotations

import pytest

from harness.events import Out, Switch, Sys, Task, Tick

SCENARIO = "fairness"
#: every judge of this file: its route and root (harness/rules.py); an EL0 judge says its own
pytestmark = pytest.mark.rule(route="markers", needs=("test_root_rules",))
LINES, TURNS = 5, 100000
MIN_SWITCHES_IN = 3   # times each child must be switched in while both run
MAX_TICKS_IN_A_ROW = 8  # ticks one child may take while the other waits


@pytest.fixture
def t(run_scenario, kt, request):
    return kt.marker_run(run_scenario, SCENARIO, request)


def both_running(t, kt, kids):
    """The events while both children are alive: from the second one's
    creation to the first one's exit."""
    start = kt.new_of(t, kids[1])
    ends = [z for z in (kt.zombie_of(t, k) for k in kids) if z is not None]
    end = min(ends, key=lambda e: e.seq) if ends else None
    return kt.between(t, start, end)


RATE_SLACK = 1.25  # measured ticks within expected / 1.25 - 1 .. expected * 1.25 + 1


def test_tick_rate_is_the_announced_hz(t, kt):
    """Under -icount an instruction is 2**shift ns of guest time, so the
    ticks during the first task's spin of a known count of instructions
    (alone: every tick is its own) must be what the boot marker's hz says."""
    kt.need(t.icount_shift is not None, "guest time (-icount: this run is in real time)")
    pid = kt.first_pid(t)
    lines = kt.facts_lines(t, pid, "rate")
    if len(lines) != 2 or "turns" not in lines[0].values:
        t.fail("the scenario's task must report its timed spin ('rate turns=..', 'rate done')",
               *kt.last_events_of(t, pid, 1), detail=f"pid {pid} printed {len(lines)} rate lines")
    spin = kt.between(t, lines[0].event, lines[1].event)
    ticks = [e for e in spin if isinstance(e, Tick)]
    insns = 2 * lines[0]["turns"]
    want = insns * (1 << t.icount_shift) * t.boot.hz / 1e9
    t.check(want / RATE_SLACK - 1 <= len(ticks) <= want * RATE_SLACK + 1,
            f"timer: the tick rate must be the boot marker's hz ({t.boot.hz} ticks a second of "
            "guest time)", lines[0].event, lines[1].event,
            detail=f"{len(ticks)} ticks during {insns} instructions at -icount shift "
                   f"{t.icount_shift} ({insns * (1 << t.icount_shift) / 1e6:g} ms of guest time): "
                   f"{want:g} expected")

def test_both_compute_correctly(t, kt):
    d = kt.draws(t.seed, 4)
    for k, pid in enumerate(kt.two_children(t)):
        start, step = d[2 * k], d[2 * k + 1]
        lines = kt.facts_lines(t, pid, "prog")
        t.check(len(lines) == LINES, "scheduling: a runnable task must get CPU time until "
                "it is done", *kt.last_events_of(t, pid, 1),
                detail=f"pid {pid} printed {len(lines)} of {LINES} progress lines")
        for line in lines:
            n = line["n"]
            want = (start + n * TURNS * step) & kt.MASK64
            t.check(line["k"] == k and line["x"] == want,
                    "preemption: a task's computation must come out right however often "
                    "it is interrupted", line.event,
                    detail=f"pid {pid} after {n} chunks: x={line['x']:#x}, expected {want:#x}")


def test_both_are_switched_in_repeatedly(t, kt):
    kids = kt.two_children(t)
    window = both_running(t, kt, kids)
    for pid in kids:
        ins = [e for e in window if isinstance(e, Switch) and e.to == pid]
        ticks = [e for e in window if isinstance(e, Tick) and e.pid == pid]
        t.check(len(ins) >= MIN_SWITCHES_IN and len(ticks) >= MIN_SWITCHES_IN,
                "scheduling: two CPU-bound tasks of equal priority must both be run, "
                "switched in again and again (round robin)", *window[-1:],
                detail=f"pid {pid}: switched in {len(ins)} times, {len(ticks)} ticks "
                f"while both were alive")


def test_no_task_hogs_the_cpu(t, kt):
    kids = kt.two_children(t)
    run, last = 0, None
    for e in both_running(t, kt, kids):
        if isinstance(e, Switch):
            run, last = 0, e.to
        elif isinstance(e, Tick) and e.pid in kids:
            run = run + 1 if e.pid == last else 1
            last = e.pid
            t.check(run <= MAX_TICKS_IN_A_ROW, "scheduling: a time slice must end: a task "
                    f"may not run more than {MAX_TICKS_IN_A_ROW} ticks in a row while an "
                    "equal-priority task is runnable", e,
                    detail=f"pid {e.pid} ran {run} ticks without a switch")


def test_progress_interleaves(t, kt):
    a, b = kt.two_children(t)
    order = [o.pid for o in t.of(Out) if o.pid in (a, b) and o.data.startswith(b"prog")]
    for x, y in ((a, b), (b, a)):
        xs = [i for i, p in enumerate(order) if p == x]
        between = [p for p in order[xs[0]:xs[-1]] if p == y] if xs else []
        t.check(bool(between), "scheduling: the progress of two CPU-bound tasks must "
                "interleave (neither runs to the end before the other starts)",
                *t.of(Out, pid=x)[:1], detail=f"pid {y} printed nothing between pid {x}'s "
                "first and last progress lines")


def slices(t, pid):
    """pid's time slices that a tick ended: (ticks it took, the switch that
    began it, the switch that ended it), from the whole run."""
    out, count, began, prev = [], None, None, None
    for e in t.events:
        if isinstance(e, Switch) and e.to == pid:
            count, began = 0, e
        elif isinstance(e, Tick) and e.pid == pid and count is not None:
            count += 1
        elif isinstance(e, Switch) and e.from_ == pid and count is not None:
            if isinstance(prev, Tick) and prev.pid == pid:  # preempted, not exited
                out.append((count, began, e))
            count = None
        prev = e
    return out


def priority(t, kt):
    """The priority (ticks per slice) the kernel announced at boot."""
    kt.need(t.boot.priority is not None, "the boot marker's priority (this kernel does not "
            "announce it)")
    return t.boot.priority


def test_switched_in_task_is_not_charged(t, kt):
    """A task is charged only the ticks that interrupt it: switched in with
    its counter (a fresh child's `priority`, or `priority` after a
    recharge), it runs that many ticks. Every slice short by the same
    count, a fresh child's first one too, is a tick charged at switch-in."""
    prio = priority(t, kt)
    got = [(pid, n, began, ended) for pid in kt.two_children(t) for n, began, ended in slices(t, pid)]
    lengths = {n for _, n, _, _ in got}
    if len(lengths) == 1 and len(got) > 2 and min(lengths) < prio:
        pid, n, began, ended = got[0]
        t.fail("scheduling: a task switched in must not be charged a tick it did not run (a "
               f"slice is its counter's {prio} ticks, each one a tick that interrupted it)",
               began, ended, detail=f"all {len(got)} slices of the children, each one's first "
               f"included, lasted {n} ticks; priority {prio}")


def counters_replayed(t, prio):
    """The contract's counters, replayed from the markers: a task starts
    with `prio`, each tick that interrupts it takes one, it is switched out
    only at 0, and when every live counter is 0 all are recharged to
    counter / 2 + prio. Yields (tick, pid, counters, never_run) at each
    tick that used up pid's slice while pid ran on (no switch followed)."""
    counter: dict[int, int] = {}
    ran: set[int] = set()
    for i, e in enumerate(t.events):
        if isinstance(e, Task) and e.state == "new":
            counter[e.pid] = prio
        elif isinstance(e, Task) and e.state == "zombie":
            counter.pop(e.pid, None)
        elif isinstance(e, Switch):
            if e.from_ in counter:
                counter[e.from_] = 0
            if counter and not any(counter.values()):
                counter = {p: prio for p in counter}
            ran.add(e.to)
        elif isinstance(e, Tick) and e.pid in counter:
            counter[e.pid] = max(counter[e.pid] - 1, 0)
            nxt = t.events[i + 1] if i + 1 < len(t.events) else None
            if counter[e.pid] == 0 and not (isinstance(nxt, Switch) and nxt.from_ == e.pid):
                yield e, e.pid, dict(counter), {p for p in counter if p not in ran}
                counter = {p: (c >> 1) + prio for p, c in counter.items()}


def test_fresh_child_runs_before_a_used_up_slice(t, kt):
    """A child's fresh slice is `priority` ticks, more than a task whose
    slice is used up: when its parent's slice ends the child must be run,
    not the parent again after a recharge."""
    prio = priority(t, kt)
    for tick, pid, counter, fresh in counters_replayed(t, prio):
        waiting = sorted(p for p in fresh if p != pid and counter[p] > 0)
        t.check(not waiting, "clone: the child gets its caller's priority and a fresh time "
                f"slice ({prio} ticks: when the running task's slice is used up, a child that has "
                "not run yet must run before it)", kt.new_of(t, waiting[0]) if waiting else tick,
                tick, detail=f"pid {pid}'s slice ended (tick n={tick.n}) and pid {pid} ran on; "
                f"child {waiting[:1]} had not run yet")

def test_child_starts_with_a_fresh_slice(t, kt):
    """A new child's first slice is a whole one: `priority` ticks (it
    inherits its parent's priority, not what is left of its counter)."""
    prio = priority(t, kt)
    for pid in kt.two_children(t):
        got = slices(t, pid)
        t.check(bool(got), "scheduling: a CPU-bound child must be preempted by a tick "
                "(switch away right after its tick)", *kt.last_events_of(t, pid, 1),
                detail=f"pid {pid} was never switched out by a tick")
        n, began, ended = got[0]
        later = {m for m, _, _ in got[1:]}
        # As long as its later slices: every slice short alike is a charge at switch-in
        # (test_switched_in_task_is_not_charged), not the child's counter.
        t.check(n == prio or later == {n}, "clone: the child gets its caller's priority and a "
                f"fresh time slice ({prio} ticks, the boot marker's priority)", began, ended,
                detail=f"pid {pid}'s first slice lasted {n} ticks, its later ones "
                f"{sorted(later)}")


def test_time_slice_is_priority_ticks(t, kt):
    """Counters run down one a tick and are recharged to counter / 2 +
    priority: a CPU-bound task preempted at zero always ran `priority` ticks."""
    prio = priority(t, kt)
    for pid in kt.two_children(t):
        for n, began, ended in slices(t, pid)[1:]:
            t.check(n == prio, "scheduling: a time slice must last `priority` ticks (each "
                    "tick takes one from the counter; at zero every counter is recharged to "
                    "counter / 2 + priority)", began, ended,
                    detail=f"pid {pid} ran {n} ticks in this slice; its priority is {prio}")


def test_children_start_after_creation(t, kt):
    for pid in kt.two_children(t):
        new = kt.new_of(t, pid)
        early = [e for e in t.before(new) if (isinstance(e, (Out, Sys, Tick)) and e.pid == pid)
                 or (isinstance(e, Switch) and e.to == pid)]
        t.check(not early, "causality: a task can run only after its task new marker",
                *early[:1], new)



# --- judged from EL0 facts (--submission: a kernel that emits no markers) -----
# The parent is task 1; the children are tasks 2 (k=0) and 3 (k=1).

@pytest.fixture
def u(run_el0, kt, request):
    return kt.el0_run(run_el0, SCENARIO, request)


@pytest.mark.rule(route="el0", needs=("test_el0_clones_work",))
def test_el0_both_compute_correctly(u, kt):
    """Root rule: both children get CPU time until done, computing right."""
    d = kt.draws(u.seed, 4)
    for k in range(2):
        start, step = d[2 * k], d[2 * k + 1]
        lines = [line for line in kt.tagged(u, "prog") if line.get("k") == k]
        cite, where = kt.where_stopped(u, 2 + k)
        u.check(len(lines) == LINES, "scheduling: a runnable task must get CPU time until it "
                "is done (two CPU-bound tasks of equal priority must both progress)", *cite,
                detail=f"child {k} printed {len(lines)} of {LINES} progress lines; {where}")
        for line in lines:
            want = (start + line["n"] * TURNS * step) & kt.MASK64
            u.check(line["x"] == want, "preemption: a task's computation must come out right "
                    "however often it is interrupted", line.event,
                    detail=f"child {k} after {line['n']} chunks: x={line['x']:#x}, expected {want:#x}")


@pytest.mark.rule(route="el0", needs=("test_el0_both_compute_correctly",))
def test_el0_progress_interleaves(u, kt):
    lines = kt.tagged(u, "prog")
    order = [line["k"] for line in lines]
    for x, y in ((0, 1), (1, 0)):
        xs = [i for i, k in enumerate(order) if k == x]
        u.check(y in order[xs[0]:xs[-1]], "scheduling: the progress of two CPU-bound tasks must "
                "interleave (neither runs to the end before the other starts)", lines[xs[0]].event,
                detail=f"child {y} printed nothing between child {x}'s first and last progress lines")
