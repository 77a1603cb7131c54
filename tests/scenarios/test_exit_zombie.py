"""Judge of scenario exit_zombie (tests/scenarios/exit_zombie.c).

P clones A and B. A takes a few pages, writes and exits early with the raw
syscall (an "after-exit" line would show if exit returned); B and P keep the
scheduler busy for at least 20 more context switches and ticks.
"""
from __future__ import annotations

import pytest

from harness.events import AllExited, Fault, Out, PFree, Switch, Sys, Tick

SCENARIO = "exit_zombie"
#: every judge of this file: its route and root (harness/rules.py); an EL0 judge says its own
pytestmark = pytest.mark.rule(route="markers", needs=("test_root_rules",))
LATER = 20  # switches and ticks that must follow A's exit
TURNS = 12


@pytest.fixture
def t(run_scenario, kt, request):
    return kt.marker_run(run_scenario, SCENARIO, request)


def seed_values(t, kt):
    """(a_word, a_pages, exit_args, b_word)."""
    d = kt.draws(t.seed, 6)
    return d[0], 1 + d[1] % 3, d[2:5], d[5]


def pids(t, kt):
    p = kt.first_pid(t)
    kids = kt.children_of(t, p)
    t.check(len(kids) == 2, "clone: the parent's two clones must succeed",
            *t.of(Sys, pid=p, nr=kt.SYS_CLONE), detail=f"children: {kids}")
    return p, kids[0], kids[1]


def a_exit(t, kt):
    """A's exit sys and zombie marker."""
    _, a, _ = pids(t, kt)
    ex = kt.exit_of(t, a)
    t.check(ex is not None, "exit: the task's exit call must be reported (sys nr=3)",
            *kt.last_events_of(t, a, 2))
    z = kt.zombie_of(t, a)
    t.check(z is not None and z.seq > ex.seq and z.reason == "exit",
            "exit: the task must become a zombie (task state=zombie reason=exit) after its "
            "exit", ex, *([z] if z else []))
    return a, ex, z


def test_exit_makes_a_zombie(t, kt):
    _, _, args, _ = seed_values(t, kt)
    a, ex, z = a_exit(t, kt)
    t.check(ex.ret is None, "protocol: the exit sys marker has no ret (exit never returns)", ex)
    t.check([ex.a0, ex.a1, ex.a2] == args, "protocol: sys a0..a2 must be x0..x2 at entry", ex)
    nxt = t.after(z)[:1]
    t.check(bool(nxt) and (isinstance(nxt[0], AllExited) or
                           (isinstance(nxt[0], Switch) and nxt[0].from_ == a)),
            "exit: after the task zombie marker the kernel must switch away from the "
            "zombie (switch from=<it>) or report all_exited", z, *nxt)


@pytest.mark.rule(weight=4)
def test_exit_never_returns(t, kt):
    a, ex, z = a_exit(t, kt)
    after = b"after-exit" in t.output(a)
    later = [e for e in t.after(ex) if isinstance(e, (Sys, Out)) and e.pid == a]
    t.check(not after and not later, "exit: must never return; a zombie must never run "
            "again (A wrote after its exit)", ex, *later[:2])


@pytest.mark.rule(weight=4)
def test_zombie_is_never_scheduled(t, kt):
    a, ex, z = a_exit(t, kt)
    bad = [e for e in t.after(z) if (isinstance(e, Switch) and e.to == a)
           or (isinstance(e, (Tick, Sys, Out, Fault)) and e.pid == a)]
    t.check(not bad, "scheduler: a zombie must never be scheduled again (no switch to it, "
            "no tick in it)", z, *bad[:2], detail=kt.fmt_events(bad, 3))


def test_scheduler_keeps_going_after_the_exit(t, kt):
    a, ex, z = a_exit(t, kt)
    rest = t.after(z)
    switches = [e for e in rest if isinstance(e, Switch)]
    ticks = [e for e in rest if isinstance(e, Tick)]
    t.check(len(switches) >= LATER and len(ticks) >= LATER,
            f"scheduler: after a task exits the others must keep being preempted and "
            f"switched (at least {LATER} switches and ticks in this scenario)", z,
            detail=f"{len(switches)} switches and {len(ticks)} ticks after the zombie")


@pytest.mark.rule(weight=2)
def test_zombie_pages_are_freed(t, kt):
    _, a_pages, _, _ = seed_values(t, kt)
    a, ex, z = a_exit(t, kt)
    pages = kt.Pages(t)
    owned = pages.owned_by(a, ex)
    got = [line["page"] for line in kt.facts_lines(t, a, "a")
           if "page" in line.values]
    t.check(len(owned) == 1 + a_pages and all(p in owned for p in got),
            "malloc/clone: before exit the task must own its stack page and the pages "
            "it malloc'd", ex, detail=f"owned {[hex(p) for p in owned]}, "
            f"malloc'd {[hex(p) for p in got]}")
    freed = [e.addr for e in kt.between(t, ex, z) if isinstance(e, PFree) and e.pid == a]
    t.check(freed == owned, "exit: every page the zombie owned must be freed (pfree of "
            "each, by ascending address, between its exit and task zombie)", ex, z,
            detail=f"owned {[hex(p) for p in owned]}, freed {[hex(p) for p in freed]}")
    later = [e for e in t.after(z) if isinstance(e, PFree) and e.pid == a]
    t.check(not later and not pages.owned_by(a, z, before=False),
            "exit: a zombie must own no page", z, *later[:1])


def test_others_keep_running(t, kt):
    a_word, _, _, b_word = seed_values(t, kt)
    p, a, b = pids(t, kt)
    _, _, z = a_exit(t, kt)
    a_said = kt.fact(t, a, "a", "word")
    t.check(a_said["word"] == a_word, "the task must run its own code before exiting "
            "(A's word)", a_said.events[0])
    done = kt.fact(t, b, "b", "done", "word")
    t.check(done["word"] == b_word and done["done"] == TURNS,
            "scheduler: the other tasks must keep running after a task exits (B counts "
            f"{TURNS} turns of P)", done.events[-1], detail=f"B counted {done['done']}")
    pd = kt.fact(t, p, "p", "done")
    t.check(pd["done"] == 1, "scheduler: the parent must keep running until B is done",
            pd.events[-1])
    for pid in (p, b):
        outs = [o for o in t.of(Out, pid=pid) if o.seq > z.seq]
        t.check(bool(outs), "scheduler: the other tasks must keep running after a task "
                "exits", z, detail=f"pid {pid} wrote nothing after the exit")
        zz = kt.zombie_of(t, pid)
        t.check(zz is not None and zz.reason == "exit", "exit: every task must end as a "
                "zombie with reason=exit", *kt.last_events_of(t, pid, 1))



# --- judged from EL0 facts (--submission: a kernel that emits no markers) -----
# P is task 1, A task 2, B task 3.

@pytest.fixture
def u(run_el0, kt, request):
    return kt.el0_run(run_el0, SCENARIO, request)


def el0_clones_ok(u, kt):
    """Whether both clones came back to P with a pid (judged in clone_twice)."""
    got = kt.merged(kt.tagged(u, "p", 1))
    return "a" in got and "b" in got and got["a"] > 0 and got["b"] > 0


@pytest.mark.rule(route="el0", needs=("test_el0_clones_work",), weight=3)
def test_el0_a_exits(u, kt):
    """Root rule: A runs its code and makes its exit call."""
    a_word, _, _, _ = seed_values(u, kt)
    kt.need(el0_clones_ok(u, kt), "both clones to return to P (see clone_twice)")
    said = kt.merged(kt.tagged(u, "a", 2))
    cite, where = kt.where_stopped(u, 2)
    u.check(said.get("word") == a_word and u.exited(2) is not None,
            "exit: the task must run its own code and then make its exit call", *cite,
            detail=f"A (task 2) did not reach its exit; {where}")


@pytest.mark.rule(route="el0", needs=("test_el0_a_exits",), weight=4)
def test_el0_exit_never_returns(u, kt):
    ex = u.exited(2)
    later = [e for e in u.events if e.tid == 2 and e.line > ex.line]
    u.check(not later, "exit: must never return; a zombie must never run again (A ran after "
            "its exit)", ex, *later[:2])


@pytest.mark.rule(route="el0", needs=("test_el0_a_exits",), weight=2)
def test_el0_others_keep_running(u, kt):
    _, _, _, b_word = seed_values(u, kt)
    ex = u.exited(2)
    b = kt.merged(kt.tagged(u, "b", 3))
    cite, where = kt.where_stopped(u, 3)
    u.check(b.get("word") == b_word and b.get("done") == TURNS,
            f"scheduler: the other tasks must keep running after a task exits (B counts {TURNS} "
            "turns of P after A's exit)", ex, *cite,
            detail=f"B counted {b.get('done', 'no')} turns; {where}")
    p = kt.merged(kt.tagged(u, "p", 1))
    cite, where = kt.where_stopped(u, 1)
    u.check(p.get("done") == 1, "scheduler: the parent must keep running until B is done",
            *cite, detail=where)


@pytest.mark.rule(route="el0", needs=("test_el0_others_keep_running",), weight=3)
def test_el0_exited_pages_come_back(u, kt):
    p = kt.merged(kt.tagged(u, "p", 1))
    lines = [line for line in kt.tagged(u, "p", 1) if "again" in line.values]
    cite, where = kt.where_stopped(u, 1)
    u.check(lines and lines[0]["again"] == p["sa"], "exit: the pages of an exited task go back "
            "to the pool: the next malloc returns the lowest free page, A's stack",
            *([lines[0].event] if lines else cite),
            detail=(f"malloc returned {kt.u64(lines[0]['again']):#x}, A's stack was {p['sa']:#x}"
                    if lines else where))


@pytest.mark.rule(route="el0", sets=("project",), needs=("test_el0_others_keep_running",), weight=3)
def test_el0_exited_mallocd_pages_come_back(u, kt):
    """Not only the stack: every page A malloc'd is free again after its
    exit (P mallocs until it has them all back, within 12 tries). Project
    rules: the lesson's exit frees only the task's stack page."""
    p = kt.merged(kt.tagged(u, "p", 1))
    kt.need("done" in p and "sa" in p, "P to finish (test_el0_others_keep_running)")
    a_pages = [line["page"] for line in kt.tagged(u, "a", 2) if "page" in line.values]
    lines = [line for line in kt.tagged(u, "p", 1) if "back" in line.values]
    cite, where = kt.where_stopped(u, 1)
    u.check(lines and lines[0]["back"] == lines[0]["of"], "exit: every page the task malloc'd "
            "goes back to the pool (not only its stack): the next mallocs return them again",
            *([lines[0].event] if lines else cite),
            detail=(f"P got {lines[0]['back']} of A's {lines[0]['of']} malloc'd pages back "
                    f"({', '.join(f'{kt.u64(a):#x}' for a in a_pages)}) in 12 mallocs"
                    if lines else where))


@pytest.mark.rule(route="el0", sets=("project",), needs=("test_el0_exited_pages_come_back",), weight=1)
def test_el0_reused_pages_are_zeroed(u, kt):
    """A contract difference, not a lesson bug: its own rule, so it never
    costs what a page that does not come back costs. It needs A's page
    really back: a kernel that never frees hands out fresh (zero) pages."""
    lines = [line for line in kt.tagged(u, "p", 1) if "again" in line.values and "nonzero" in line.values]
    kt.need(lines, "A's page back to P (its 'p again=' line)")
    u.check(lines[0]["nonzero"] == 0, "malloc: a page freed by an exited task must be "
            "zeroed before it is handed out again", lines[0].event,
            detail=f"{lines[0]['nonzero']} non-zero words in A's old stack page")


@pytest.mark.rule(route="el0", needs=("test_el0_clones_work",))
def test_el0_everyone_exits(u, kt):
    kt.need(el0_clones_ok(u, kt), "both clones to return to P (see clone_twice)")
    for tid in (1, 2, 3):
        after = u.of(kt.UAfterExit, tid=tid)
        u.check(not after, "exit: must never return (code ran after the task's exit)", *after)
        cite, where = kt.where_stopped(u, tid)
        u.check(u.exited(tid) is not None, "exit: every task must end with exit", *cite, detail=where)
