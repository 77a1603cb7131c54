"""Judge of scenario malloc_exhaustion (tests/scenarios/malloc_exhaustion.c).

The first task clones a child and exits. The child keeps one page aside,
mallocs until malloc fails, calls it a few more times, writes, clones a
grandchild on the page it kept and exits; the grandchild mallocs once the
child's pages are back and reports whether the pages it got are zeroed.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import pytest

from harness.events import Out, PAlloc, PFree, PMove, Sys

SCENARIO = "malloc_exhaustion"
#: every judge of this file: its route and root (harness/rules.py); an EL0 judge says its own
pytestmark = pytest.mark.rule(route="markers", needs=("test_root_rules",))
FAILED = -1
SYS_MALLOC = 1


@pytest.fixture
def t(run_scenario, kt, request):
    return kt.marker_run(run_scenario, SCENARIO, request)


def seed_values(t, kt):
    """(extra calls after the first failure, pages the parent takes)."""
    d = kt.draws(t.seed, 3)
    return 2 + d[0] % 4, 2 + d[2] % 3


def is_page(t, ret):
    return ret is not None and ret > 0 and ret % t.boot.page_size == 0


@dataclass
class Call:
    """One malloc as the page events tell it."""
    sys: Sys
    palloc: PAlloc | None   # the palloc reported for it, if any
    was_owned: bool         # its page was owned by someone at that palloc
    lowest: int | None      # the lowest free pool page right before it
    owned: int              # pool pages owned when the sys was reported


def _lowest_free(t, owner):
    b = t.boot
    for i in range(b.pool_pages):
        addr = b.pool_base + i * b.page_size
        if addr not in owner:
            return addr
    return None


@functools.lru_cache(maxsize=4)
def replay(t):
    """Every malloc of the run, replayed against the page events in one pass."""
    owner: dict[int, int] = {}
    pending: dict[int, tuple] = {}
    calls = []
    for ev in t.events:
        if isinstance(ev, PAlloc):
            pending[ev.pid] = (ev, ev.addr in owner, _lowest_free(t, owner))
            owner[ev.addr] = ev.pid
        elif isinstance(ev, PFree):
            owner.pop(ev.addr, None)
        elif isinstance(ev, PMove):
            owner[ev.addr] = ev.to
        elif isinstance(ev, Sys):
            got = pending.pop(ev.pid, None)
            if ev.nr == SYS_MALLOC:
                calls.append(Call(ev, *(got or (None, False, None)), len(owner)))
    return calls


def pids(t, kt):
    """(first task, the exhausting child, the grandchild it clones at the end)."""
    parent = kt.first_pid(t)
    kids = kt.children_of(t, parent)
    t.check(len(kids) == 1, "clone: the parent's clone of the exhausting child must succeed",
            *t.of(Sys, pid=parent, nr=kt.SYS_CLONE), detail=f"children: {kids}")
    grand = kt.children_of(t, kids[0])
    t.check(len(grand) == 1, "clone: after exhaustion, a clone on a page the caller owns "
            "must still succeed (clone needs no new page)",
            *t.of(Sys, pid=kids[0], nr=kt.SYS_CLONE), detail=f"children of {kids[0]}: {grand}")
    return parent, kids[0], grand[0]


def first_failure(t, kt, child):
    """The child's first malloc that did not return a page."""
    calls = kt.mallocs(t, child)
    for c in calls:
        if not is_page(t, c.ret):
            return c
    t.fail("malloc: once every pool page is taken, malloc must return -1",
           *calls[-1:], detail=f"the child's {len(calls)} mallocs all returned pages")


def test_malloc_returns_free_pool_pages(t, kt):
    b = t.boot
    for c in replay(t):
        ret = c.sys.ret
        if ret == FAILED:
            continue
        where = f"malloc returned {kt.u64(ret):#x}"
        t.check(ret > 0, "malloc: must return a page address or exactly -1 (a failure "
                "is -1, never 0 or an errno)", c.sys, detail=where)
        t.check(is_page(t, ret), "malloc: a successful malloc must return a page-aligned "
                "address", c.sys, detail=where)
        t.check(b.pool_base <= ret < b.pool_base + b.pool_pages * b.page_size,
                "malloc: the page must lie inside the pool [pool_base, pool_base + "
                "pool_pages*page_size)", c.sys, detail=where)
        t.check(not (ret < b.kernel_end and ret + b.page_size > b.kernel_base),
                "malloc: the page must not overlap kernel memory [kernel_base, kernel_end)",
                c.sys, detail=where)
        t.check(not (ret < b.user_end and ret + b.page_size > b.user_base),
                "malloc: the page must not overlap the user section", c.sys, detail=where)
        t.check(c.palloc is not None and c.palloc.addr == ret,
                "malloc: the kernel must report the page it hands out (palloc pid addr) "
                "before the sys", c.sys, detail=where)
        t.check(not c.was_owned, "malloc: the page must not be owned by a live task "
                "(no page is handed out twice)", c.palloc, detail=where)
        t.check(c.lowest == ret, "malloc: the lowest free page must be taken", c.sys,
                detail=f"{where}, the lowest free page was {c.lowest:#x}"
                if c.lowest is not None else where)


@pytest.mark.rule(weight=4)
def test_exhaustion_returns_exactly_minus_one(t, kt):
    _, child, _ = pids(t, kt)
    fail = first_failure(t, kt, child)
    t.check(fail.ret == FAILED, "malloc: when no page is free malloc must return exactly -1 "
            "(not 0 or an errno)", fail, detail=f"it returned {fail.ret}")
    end = kt.fact(t, child, "child", "end")
    t.check(end["end"] == kt.u64(FAILED), "malloc: the task must see -1 in x0 when the "
            "pool is exhausted", end.events[-1], detail=f"the child saw {end['end']:#x}")


def test_minus_one_only_when_pool_is_full(t, kt):
    for c in replay(t):
        if c.sys.ret == FAILED:
            t.check(c.owned == t.boot.pool_pages, "malloc: -1 only when every pool page "
                    "is owned (pool_pages pages)", c.sys,
                    detail=f"{c.owned} of {t.boot.pool_pages} pages owned at this -1")


def test_whole_pool_was_handed_out(t, kt):
    _, child, _ = pids(t, kt)
    fail = first_failure(t, kt, child)
    owned = next(c.owned for c in replay(t) if c.sys is fail)
    t.check(owned == t.boot.pool_pages, "malloc: the pool must hand out all of its "
            "pool_pages pages before malloc fails", fail,
            detail=f"{owned} of {t.boot.pool_pages} pages owned at the first failure")


def test_keeps_returning_minus_one(t, kt):
    extra, _ = seed_values(t, kt)
    _, child, _ = pids(t, kt)
    fail = first_failure(t, kt, child)
    later = [c for c in kt.mallocs(t, child) if c.seq > fail.seq]
    t.check(len(later) == extra, "the scenario's child must make its extra malloc calls",
            *later[-1:], fail, detail=f"expected {extra}, found {len(later)}")
    for c in later:
        t.check(c.ret == FAILED, "malloc: once it failed, every later call must return -1 "
                "until a page is freed", c, detail=f"it returned {c.ret}")
    seen = kt.facts(t, child).get("again")
    lines = [ln for ln in kt.facts_lines(t, child, "again")]
    t.check(seen is not None and all(v.get("ret") == kt.u64(FAILED) for v in lines),
            "malloc: the task must see -1 on every call after exhaustion",
            *(seen.events[:1] if seen else []))


def test_task_sees_what_kernel_reports(t, kt):
    _, child, _ = pids(t, kt)
    fail = first_failure(t, kt, child)
    # the first malloc is the page kept aside for the grandchild's stack
    rets = [c.ret for c in kt.mallocs(t, child) if c.seq < fail.seq][1:]
    got = kt.fact(t, child, "child", "count", "sum", "xor", "lo", "hi")
    x = 0
    for r in rets:
        x ^= r
    want = {"count": len(rets), "sum": kt.u64(sum(rets)), "xor": x,
            "lo": min(rets, default=kt.MASK64), "hi": max(rets, default=0)}
    bad = [f"{k}: kernel reported {want[k]:#x}, the task saw {got[k]:#x}"
           for k in want if got[k] != want[k]]
    t.check(not bad, "malloc: the address in x0 must be the page the kernel reports "
            "(sys ret, palloc)", got.events[0], detail="; ".join(bad))


def test_pages_are_zeroed(t, kt):
    _, child, grand = pids(t, kt)
    got = kt.fact(t, child, "child", "dirty")
    t.check(got["dirty"] == 0, "malloc: every page must be filled with zeros",
            got.events[-1], detail=f"{got['dirty']} pages the child got were not all zero")
    for line in kt.facts_lines(t, grand, "page0", "page1", "page2", "page3"):
        t.check(line["nonzero"] == 0, "malloc: a page freed by an exited task must be "
                "zeroed again before it is handed out", line.event,
                detail=f"page {line['addr']:#x}: {line['nonzero']} nonzero words")


def test_still_writes_after_exhaustion(t, kt):
    _, child, _ = pids(t, kt)
    fail = first_failure(t, kt, child)
    outs = [o for o in t.of(Out, pid=child) if o.seq > fail.seq and o.data == b"still writing\n"]
    t.check(bool(outs), "malloc: the kernel must stay healthy after exhaustion (the task "
            "can still write)", fail)
    sys = next((s for s in t.after(outs[0]) if isinstance(s, Sys) and s.pid == child), None)
    t.check(sys is not None and sys.nr == kt.SYS_WRITE and sys.ret == len(outs[0].data),
            "write: must return the number of bytes written", outs[0], *([sys] if sys else []))


def test_exit_frees_every_page(t, kt):
    _, child, _ = pids(t, kt)
    ex = kt.exit_of(t, child)
    z = kt.zombie_of(t, child)
    t.check(ex is not None and z is not None, "exit: the child must exit and become a zombie",
            *kt.last_events_of(t, child, 2))
    pages = kt.Pages(t)
    owned = pages.owned_by(child, ex)
    freed = [e.addr for e in kt.between(t, ex, z) if isinstance(e, PFree) and e.pid == child]
    t.check(freed == owned, "exit: every page the task owned must go back to the pool "
            "(pfree of each, by ascending address, between its exit and task zombie)", ex, z,
            detail=f"owned {len(owned)} pages, {len(freed)} pfree events"
            + ("" if sorted(freed) == freed else " (not ascending)"))
    t.check(not pages.owned_by(child, z, before=False), "exit: a zombie must own no page", z)
    parent, _, grand = pids(t, kt)
    pz = kt.zombie_of(t, parent)
    alive = {grand} | ({parent} if pz is None or pz.seq > z.seq else set())
    left = pages.at(z)
    t.check(set(left.values()) <= alive, "exit: once the exhausting task has exited, every "
            "page but those of live tasks must be free", z,
            detail=f"{len(left)} pages owned, by pids {sorted(set(left.values()))}")


def test_another_task_allocates_after_exit(t, kt):
    _, pages_wanted = seed_values(t, kt)
    _, child, grand = pids(t, kt)
    z = kt.zombie_of(t, child)
    calls = kt.mallocs(t, grand)
    early = [c for c in calls if z is None or c.seq < z.seq]
    for c in early:
        t.check(c.ret == FAILED, "malloc: while the pool is exhausted every malloc must "
                "return -1", c, detail=f"it returned {c.ret}")
    ok = [c for c in calls if is_page(t, c.ret)]
    t.check(len(ok) == pages_wanted and z is not None and all(c.seq > z.seq for c in ok),
            "malloc: after the exhausting task exits, its pages must be free again and "
            "another task can allocate", *(ok[:1] or calls[-1:] or [t.end]),
            detail=f"pid {grand} got {len(ok)} of {pages_wanted} pages after pid {child} exited")
    got = kt.fact(t, grand, "g", "got")
    t.check(got["got"] == kt.u64(ok[0].ret), "malloc: the address in x0 must be the page "
            "the kernel reports", got.events[-1])


def test_all_pages_free_at_end(t, kt):
    pages = kt.Pages(t)
    t.check(not pages.errors, "pages: every palloc/pfree/pmove must agree with who owns "
            "the page", *[e for e, _ in pages.errors[:3]],
            detail="; ".join(m for _, m in pages.errors[:3]))
    left = pages.final()
    t.check(not left, "pages: when every task has exited every page must be free",
            t.end, detail=f"{len(left)} pages still owned, e.g. " +
            ", ".join(f"{a:#x} by pid {p}" for a, p in list(left.items())[:4]))



# --- judged from EL0 facts (--submission: a kernel that emits no markers) -----
# The first task is 1, the exhausting child C is 2, the grandchild G is 3.

MAX_CALLS = 4096  # malloc_exhaustion.c: ME_MAX_CALLS, C's bound on successful mallocs
STILL = b"still writing\n"


@pytest.fixture
def u(run_el0, kt, request):
    return kt.el0_run(run_el0, SCENARIO, request)


def el0_child(u, kt):
    """C's report after its malloc loop (count, end, dirty, clobbered), or None."""
    got = kt.merged(kt.tagged(u, "child", 2))
    return got if {"count", "end", "dirty", "clobbered"} <= got.keys() else None


def not_observed(got):
    """Why exhaustion is not judged when C's loop reached its budget: the
    lesson's allocator scans its whole pool (about 257k pages) linearly, so
    running it dry takes far longer than any bounded run. Not a failure: the
    grader counts such a rule as not applicable (neither passed nor failed)."""
    pages = (f"{got['count']} pages allocated, all distinct, aligned, writable" if got["clobbered"] == 0
             else f"{got['count']} pages allocated, {got['clobbered']} of them lost their stamp")
    return f"malloc exhaustion not observable within the budget ({pages})"


def el0_exhausted(u, kt):
    """C's report, skipping the test when the pool never ran out: as not
    judged (C never reported) or as not applicable (the budget of MAX_CALLS
    pages was reached first)."""
    got = el0_child(u, kt)
    if got["count"] >= MAX_CALLS:
        kt.not_applicable(not_observed(got))
    return got


@pytest.mark.rule(route="el0", needs=("test_el0_clones_work",), weight=3)
def test_el0_malloc_loop_ends(u, kt):
    """Root rule: C's malloc calls come back until one fails."""
    cite, where = kt.where_stopped(u, 2)
    u.check(el0_child(u, kt) is not None, "malloc: every call must return to the task, a page "
            "or -1, until the pool is exhausted", *cite,
            detail=f"the exhausting child (task 2) never reported the end of its malloc loop; {where}")


@pytest.mark.rule(route="el0", needs=("test_el0_malloc_loop_ends",), weight=4)
def test_el0_exhaustion_returns_exactly_minus_one(u, kt):
    got = el0_exhausted(u, kt)
    line = kt.first_tagged(u, "child", 2)
    u.check(got["end"] == kt.u64(FAILED), "malloc: when no page is free malloc must return "
            "exactly -1 (and every page it returns is page-aligned)", line.event,
            detail=f"after {got['count']} pages malloc returned {kt.u64(got['end']):#x}")


@pytest.mark.rule(route="el0", needs=("test_el0_exhaustion_returns_exactly_minus_one",))
def test_el0_keeps_returning_minus_one(u, kt):
    el0_exhausted(u, kt)  # not applicable when the pool never ran out
    extra = 2 + kt.draws(u.seed, 1)[0] % 4
    again = kt.tagged(u, "again", 2)
    cite, where = kt.where_stopped(u, 2)
    u.check(len(again) == extra and all(a["ret"] == kt.u64(FAILED) for a in again),
            "malloc: once it failed, every later call must return -1 until a page is freed",
            *([a.event for a in again if a["ret"] != kt.u64(FAILED)][:1] or cite),
            detail=f"{len(again)} of {extra} later calls reported: "
                   + ", ".join(f"{kt.u64(a['ret']):#x}" for a in again))


@pytest.mark.rule(route="el0", needs=("test_el0_malloc_loop_ends",), weight=3)
def test_el0_pages_are_distinct_and_writable(u, kt):
    """Judged on every page C got, whether or not the pool ran out."""
    got = el0_child(u, kt)
    u.check(got["clobbered"] == 0, "malloc: each page must be a distinct page of memory the "
            "task can write (every page keeps what its owner wrote)", kt.tagged(u, "child", 2)[-1].event,
            detail=f"{got['clobbered']} of {got['count']} pages lost their stamp: handed out twice, "
                   f"or not writable memory")


@pytest.mark.rule(route="el0", sets=("project",), needs=("test_el0_malloc_loop_ends",))
def test_el0_pages_are_zeroed(u, kt):
    got = el0_child(u, kt)  # judged on the pages got, exhausted or not
    u.check(got["dirty"] == 0, "malloc: every page must be filled with zeros",
            kt.tagged(u, "child", 2)[-1].event, detail=f"{got['dirty']} pages were not")
    for line in kt.tagged(u, "page0", 3) + kt.tagged(u, "page1", 3):
        u.check(line["nonzero"] == 0, "malloc: a page freed by an exited task must be "
                "zeroed before it is handed out again", line.event,
                detail=f"{line['nonzero']} non-zero words")


@pytest.mark.rule(route="el0", needs=("test_el0_exhaustion_returns_exactly_minus_one",))
def test_el0_still_writes_after_exhaustion(u, kt):
    """Precondition: exhaustion itself (a write with pages left proves nothing)."""
    el0_exhausted(u, kt)  # not applicable when the pool never ran out
    lines = [line for line in kt.tagged(u, "child", 2) if "wrote" in line.values]
    cite, where = kt.where_stopped(u, 2)
    u.check(bool(lines), "malloc: the kernel must stay healthy after exhaustion (the task "
            "can still write)", *cite, detail=where)


@pytest.mark.rule(route="el0", sets=("project",), needs=("test_el0_still_writes_after_exhaustion",))
def test_el0_write_after_exhaustion_returns_its_count(u, kt):
    """The project's write returns the bytes written (the lesson's returns nothing)."""
    line = next(line for line in kt.tagged(u, "child", 2) if "wrote" in line.values)
    u.check(line["wrote"] == len(STILL), "write: must return the number of bytes written",
            line.event, detail=f"returned {line['wrote']}")


@pytest.mark.rule(route="el0", needs=("test_el0_exhaustion_returns_exactly_minus_one",))
def test_el0_exited_pages_come_back(u, kt):
    el0_exhausted(u, kt)  # not applicable when the pool never ran out
    clone = [line for line in kt.tagged(u, "child", 2) if "clone" in line.values]
    kt.need(clone, "C's clone of G after exhaustion (its 'child g_stack=' line)")
    if not 0 < clone[0]["clone"] < 1 << 31:
        kt.not_applicable("this kernel's clone failed with the pool empty (its task "
                          "structs come from the pool: the project contract's 'clone never fails for "
                          "want of memory' is judged from kernel markers only); exit_zombie judges "
                          "that an exited task's pages come back")
    pages = 2 + kt.draws(u.seed, 3)[2] % 3
    g = kt.merged(kt.tagged(u, "g", 3))
    got_pages = [kt.merged(kt.tagged(u, f"page{i}", 3)) for i in range(pages)]
    cite, where = kt.where_stopped(u, 3)
    ok = g.get("done") == 1 and all(p.get("addr", FAILED) not in (kt.u64(FAILED), 0)
                                    and p["addr"] % kt.PAGE_SIZE == 0 for p in got_pages)
    u.check(ok, "exit: once the exhausting task has exited, every page it owned must be free "
            f"again (G mallocs {pages} pages)", *cite,
            detail=", ".join(f"page{i}={kt.u64(p['addr']):#x}" for i, p in enumerate(got_pages) if "addr" in p)
            or where)
