"""Judge of scenario clone_errors (tests/scenarios/clone_errors.c).

The parent tries clone with bad stacks, then with pages another task owns;
then a chain of children (each clones the next on a page of its own, then
spins until released) fills the task table until a clone fails; the parent
checks -EAGAIN (and -EINVAL first for a bad stack when the table is full),
releases them, and clones once more into a reused zombie slot. Last, it
clones with its sp exactly on a page's edges (its top: -EINVAL; its bottom:
the stack is in the page below, so clone succeeds).
"""
from __future__ import annotations

import pytest

from harness import abi

from harness.events import PMove, Sys, Task, live_pids

SCENARIO = "clone_errors"
#: every judge of this file: its route and root (harness/rules.py); an EL0 judge says its own
pytestmark = pytest.mark.rule(route="markers", needs=("test_root_rules",))
EINVAL, EAGAIN = -abi.EINVAL, -abi.EAGAIN
BAD = ["misaligned", "null", "user_section", "kernel", "past_ram", "free_page",
       "own_stack", "other_stack", "other_page", "full_misaligned"]
FULL = ["full"]
SP_TOP, SP_BELOW = "sp_top", "sp_below"  # the caller's sp = stack + 4096, = stack


@pytest.fixture
def t(run_scenario, kt, request):
    return kt.marker_run(run_scenario, SCENARIO, request)


def clone_call(t, kt, pid, line):
    """The clone sys marker a result line reports (the task's last clone
    with that stack before the line)."""
    before = [e for e in t.before(line.event) if isinstance(e, Sys) and e.pid == pid
              and e.nr == kt.SYS_CLONE and e.a0 == kt.u64(line["stack"])]
    t.check(bool(before),
            "syscall: every clone must be reported by its sys marker (nr=2, a0=stack)",
            line.event, *before[-1:])
    return before[-1]


def case(t, kt, pid, name):
    lines = kt.facts_lines(t, pid, f"c_{name}")
    if not lines:
        t.fail(f"the scenario's task must reach its '{name}' clone and report it",
               *kt.last_events_of(t, pid, 1))
    return lines[0], clone_call(t, kt, pid, lines[0])


def live_before(t, ev):
    """User tasks alive (created, not yet zombies) right before ev."""
    return live_pids(t.before(ev))


def fill_calls(t, kt, pid):
    """(result line, clone sys) of each chain link: filler i's clone, matched
    by stack and result after the parent's first chain clone."""
    chain = case(t, kt, pid, "chain")[1]
    calls = [e for e in t.after(chain) if isinstance(e, Sys) and e.nr == kt.SYS_CLONE]
    out = []
    for ln in kt.facts_lines(t, pid, "fill"):
        found = [s for s in calls if s.a0 == kt.u64(ln["stack"]) and s.ret == ln["ret"]
                 and s.seq < ln.event.seq]
        t.check(bool(found), "clone: the task must see in x0 the result the kernel reports "
                "(sys nr=2 ret)", ln.event,
                detail=f"no clone with stack={kt.u64(ln['stack']):#x} ret={ln['ret']}")
        out.append((ln, found[0]))
    return out


def live_at(t, s):
    """User tasks alive when clone s was called (its own child not counted)."""
    live = live_before(t, s)
    live.discard(s.ret)
    return live


def test_bad_stack_is_einval(t, kt):
    pid = kt.first_pid(t)
    for name in BAD:
        line, s = case(t, kt, pid, name)
        t.check(s.ret == EINVAL and line["ret"] == EINVAL,
                "clone: a stack that is not page-aligned, not a pool page, not owned by the "
                "caller, or the caller's own stack page must get -EINVAL (-22)", s, line.event,
                detail=f"case {name}, stack={kt.u64(line['stack']):#x}: ret={s.ret}")


def test_failed_clone_changes_nothing(t, kt):
    pid = kt.first_pid(t)
    pages = kt.Pages(t)
    failed = [case(t, kt, pid, n)[1] for n in BAD + FULL + [SP_TOP]]
    failed += [s for _, s in fill_calls(t, kt, pid)]
    failed = [s for s in failed if s.ret is not None and s.ret < 0]  # the rest: other tests' rules
    for s in failed:
        start = kt.previous_of_pid(t, s, s.pid)
        acts = [e for e in kt.between(t, start, s)
                if isinstance(e, PMove) or (isinstance(e, Task) and e.state == "new")]
        t.check(not acts, "clone: a failing clone must leave everything as it was (no new "
                "task, no pmove)", *acts[:2], s, detail=f"stack={s.a0:#x}, ret={s.ret}")
        if pages.before(s).get(s.a0) == s.pid:
            t.check(pages.at(s).get(s.a0) == s.pid, "clone: a failing clone must leave the "
                    "stack page with the caller", s)
    for name in ("other_stack", "other_page"):
        _, s = case(t, kt, pid, name)
        owner = pages.before(s).get(s.a0)
        t.check(owner is not None and owner != pid, "scenario: the page must belong to "
                "another live task at this clone", s, detail=f"owner {owner}")


def sp_edge_case(t, kt, pid, name, offset):
    """(result line, clone sys, detail) of an sp case, once the scenario's
    precondition holds: the svc ran with sp = stack + offset."""
    line, s = case(t, kt, pid, name)
    stack, printed = kt.u64(line["stack"]), kt.u64(line["sp"])
    sp = s.sp if s.sp is not None else printed
    if printed != stack + offset or sp != stack + offset:
        t.fail(f"scenario clone_errors: the {name} clone must be made with sp = stack + "
               f"{offset}", s, line.event,
               detail=f"stack={stack:#x}, sp at the svc={sp:#x}, printed sp={printed:#x}")
    return line, s, f"stack={stack:#x}, sp={sp:#x}: kernel ret={s.ret}, task saw {line['ret']}"


def test_caller_sp_at_page_top_is_einval(t, kt):
    """sp == stack + 4096: the caller's stack is in the stack page."""
    pid = kt.first_pid(t)
    line, s, detail = sp_edge_case(t, kt, pid, SP_TOP, t.boot.page_size)
    t.check(s.ret == EINVAL and line["ret"] == EINVAL,
            "clone: a stack page whose top is the caller's sp (sp == stack + 4096) holds the "
            "caller's own stack pointer and must get -EINVAL (-22)", s, line.event, detail=detail)


def test_caller_sp_at_page_bottom_is_not_held(t, kt):
    """sp == stack: the caller's stack is in the page below, not in this one."""
    pid = kt.first_pid(t)
    line, s, detail = sp_edge_case(t, kt, pid, SP_BELOW, 0)
    t.check(s.ret is not None and s.ret > 0 and line["ret"] == s.ret,
            "clone: the caller's sp at a page's bottom (sp == stack) is in the page below: the "
            "page does not hold the caller's stack, so clone must succeed", s, line.event,
            detail=detail)
    start = kt.previous_of_pid(t, s, s.pid)
    moves = [e for e in kt.between(t, start, s) if isinstance(e, PMove) and e.addr == s.a0]
    t.check(len(moves) == 1 and moves[0].from_ == pid and moves[0].to == s.ret,
            "clone: the stack page must pass from the caller to the child (pmove)", s, *moves)


def table_full_problem(t, kt):
    """Precondition of the full-table rules: at the parent's 'full' clone
    every user slot holds a live task. (rule, cited, detail) if not."""
    pid = kt.first_pid(t)
    limit = t.boot.nr_tasks - 1
    _, full = case(t, kt, pid, "full")
    live = live_at(t, full)
    if len(live) == limit:
        return None
    early = [s for _, s in fill_calls(t, kt, pid) if s.ret == EAGAIN and len(live_at(t, s)) < limit]
    if early:
        return ("clone: -EAGAIN only when all nr_tasks-1 user slots hold live tasks (zombies do "
                "not count)", [early[0]], f"the chain's clone failed with {len(live_at(t, early[0]))} "
                f"of {limit} slots live, so the table never filled")
    chain = case(t, kt, pid, "chain")[1]
    gone = [e for e in t.before(full) if isinstance(e, Task) and e.state == "zombie"
            and e.seq > chain.seq]
    return ("scenario clone_errors: the table must be full at the parent's clone (C1 and every "
            "filler stay live until released)", [*gone[:2], full],
            f"{len(live)} of {limit} user tasks were live at it"
            + (f"; pid {gone[0].pid} ended before its release" if gone else ""))


def test_table_filled(t, kt):
    """Precondition of the full-table rules, judged once: the chain filled
    the table and nobody left it before the parent's clone."""
    kt.fail_with(t, table_full_problem(t, kt))


@pytest.mark.rule(needs=("test_table_filled",))
def test_table_full_is_eagain(t, kt):
    pid = kt.first_pid(t)
    limit = t.boot.nr_tasks - 1
    calls = fill_calls(t, kt, pid)
    t.check(bool(calls) and calls[-1][1].ret is not None and calls[-1][1].ret < 0,
            f"clone: with all {limit} user slots holding live tasks clone must fail with "
            "-EAGAIN (-11)", *(calls[-1][1:] if calls else []),
            detail=f"{len(calls)} chain clones all succeeded")
    line, full = case(t, kt, pid, "full")
    good = [s for s in t.of(Sys, nr=kt.SYS_CLONE) if s.ret is not None]
    for s in good:
        live = live_at(t, s)
        if s.ret > 0:
            t.check(len(live) < limit, f"clone: -EAGAIN when the table is full: no more "
                    f"than nr_tasks-1 ({limit}) live user tasks", s,
                    detail=f"{len(live)} live tasks before this clone succeeded")
        elif s.ret == EAGAIN:
            t.check(len(live) == limit, "clone: -EAGAIN only when all nr_tasks-1 user slots "
                    "hold live tasks (zombies do not count)", s,
                    detail=f"{len(live)} live user tasks")
    for s in [calls[-1][1], full]:
        live = live_at(t, s)
        t.check(s.ret == EAGAIN and len(live) == limit,
                f"clone: with all {limit} user slots holding live tasks clone must fail "
                "with -EAGAIN (-11)", s, detail=f"ret={s.ret} with {len(live)} live user tasks")
    t.check(line["ret"] == EAGAIN, "clone: the task must see -EAGAIN (-11) in x0",
            line.event)


@pytest.mark.rule(needs=("test_table_filled",))
def test_einval_checked_before_eagain(t, kt):
    pid = kt.first_pid(t)
    line, s = case(t, kt, pid, "full_misaligned")
    live = live_at(t, s)
    t.check(len(live) == t.boot.nr_tasks - 1, "scenario: the table must be full at this "
            "clone", s, detail=f"{len(live)} live")
    t.check(s.ret == EINVAL, "clone: errors are checked in order: a bad stack gets -EINVAL "
            "even when the table is full", s, detail=f"ret={s.ret}")


def test_pids_never_reused_and_slots_reused(t, kt):
    news = [e.pid for e in t.of(Task, state="new")]
    t.check(news == sorted(set(news)) and news[0] == 1, "clone: pids count up from 1 and "
            "are never reused", *t.of(Task, state="new")[-1:], detail=f"pids {news}")
    zombies = set()
    for e in t.of(Task):
        if e.state == "zombie":
            zombies.add(e.pid)
        elif e.state == "reaped":
            t.check(e.pid in zombies, "clone: only a zombie's slot may be reused (task reaped)",
                    e)
    pid = kt.first_pid(t)
    last = kt.fact(t, pid, "last", "ret", "tries")
    t.check(last["ret"] > 0, "clone: once the children have exited their zombie slots must "
            "be reused for a new task", last.events[0], detail=f"ret={last['ret']}")
    t.check(len(t.of(Task, state="reaped")) >= 1, "clone: when no slot is unused a zombie "
            "slot must be reused, reported as task state=reaped", last.events[0])


def test_children_released_and_all_exit(t, kt):
    pid = kt.first_pid(t)
    word = kt.draws(t.seed, 2)[1]
    kids = [p for p in t.pids() if p != pid]
    for k in kids:
        z = kt.zombie_of(t, k)
        t.check(z is not None and z.reason == "exit", "exit: every released child must "
                "exit (task state=zombie reason=exit)", *kt.last_events_of(t, k, 1))
    p = kt.fact(t, pid, "parent", "fillers", "left")
    t.check(p["left"] == 0, "the parent must go on and see every filling child exit",
            p.events[0])
    last = kt.fact(t, pid, "last", "ret")
    said = kt.fact(t, last["ret"], "last", "word") if last["ret"] > 0 else None
    t.check(said is not None and said["word"] == word, "clone: the child in the reused slot "
            "must run its own code", last.events[0])
    never = [k for k in kids if b"had to fail" in t.output(k)]
    t.check(not never, "clone: a failing clone must not create a task", *t.of(Task, pid=never[0])[:1]
            if never else [])


def test_all_pages_freed(t, kt):
    pages = kt.Pages(t)
    t.check(not pages.errors, "pages: every palloc/pfree/pmove must agree with who owns "
            "the page", *[e for e, _ in pages.errors[:3]],
            detail="; ".join(m for _, m in pages.errors[:3]))
    t.check(not pages.final(), "pages: when every task has exited every page must be free",
            t.end, detail=f"{len(pages.final())} pages still owned")

