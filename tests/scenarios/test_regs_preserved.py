"""Judge of scenario regs_preserved (tests/scenarios/regs_preserved.c).

Register sets drawn from the seed go through a write and a malloc
(u_regs_svc). For preemption the parent and a sibling hold every register
they can (regs_hold.S) while passing a turn word back and forth: a hold
ends only once the partner has run, so each hold spans at least one
preemption whatever the kernel's tick; each side holds RP_HOLDS times with
set a (x2..x30 held) and RP_HOLDS times with set b (x0..x15, x18..x30),
and the hold compares its registers on every loop turn.
"""
from __future__ import annotations

import pytest

from harness.events import Out, Switch, Sys, Task, Tick

SCENARIO = "regs_preserved"
#: every judge of this file: its route and root (harness/rules.py); an EL0 judge says its own
pytestmark = pytest.mark.rule(route="markers", needs=("test_root_rules",))
HOLDS = 2  # regs_hold.h: RP_HOLDS
SETS = 6   # write, malloc, parent a, sibling a, parent b, sibling b
#: registers each hold keeps (regs_hold.S): set a uses x0/x1, set b x16/x17
HELD = {"a": [i for i in range(31) if i not in (0, 1)],
        "b": [i for i in range(31) if i not in (16, 17)]}
SAW_PARTNER = 2  # regs_hold.h: the partner stepped during the hold
MIN_TICKS = 2    # ticks in a hold that waited out its budget (~50 ms) on a live timer
HOLD_RULE = ("preemption: a task interrupted by ticks and switched out and back in must get "
             "every register back (x0..x30, sp, NZCV)")


@pytest.fixture
def t(run_scenario, kt, request):
    return kt.marker_run(run_scenario, SCENARIO, request)


def plan(seed, kt):
    """regs[k] (x0..x30 draws), nzcv[k] for the SETS register sets; the
    write's text."""
    d = kt.draws(seed, SETS * 32)
    regs = [d[32 * k: 32 * k + 31] for k in range(SETS)]
    nzcv = [kt.nzcv_of(d[32 * k + 31]) for k in range(SETS)]
    text = f"registers kept {regs[0][1]:#x}\n".encode()
    return regs, nzcv, text


def want(p, k, x8=None):
    regs, nzcv, _ = p
    w = {f"x{i}": regs[k][i] for i in range(1, 31)}
    if x8 is not None:
        w["x8"] = x8
    w["nzcv"] = nzcv[k]
    return w


def want_held(p, hset, side):
    """What hold set ``hset`` ('a'/'b') of side 0 (parent) / 1 (sibling) must keep."""
    regs, nzcv, _ = p
    k = 2 + 2 * "ab".index(hset) + side
    w = {f"x{i}": regs[k][i] for i in HELD[hset]}
    w["nzcv"] = nzcv[k]
    return w


def hold_tags():
    return [(hset, i) for hset in "ab" for i in range(1, HOLDS + 1)]


def hold_problem(kt, r, w, what):
    """'what: xN: expected .., got ..; ...' if dump r differs from w (or its
    hold saw a register change), else ''."""
    bad = kt.compare_regs(r, w)
    if kt.u64(r["sp"]) != kt.u64(r["sp0"]):
        bad.append(f"sp: expected {kt.u64(r['sp0']):#x}, got {kt.u64(r['sp']):#x}")
    if not bad and r.get("broke", -1) != -1:
        bad.append(f"a register changed during the hold (at turn {r['broke']}) and was back by the dump")
    return f"{what}: " + "; ".join(bad) if bad else ""


def kept(t, kt, r, w, rule, *cite, what=""):
    bad = kt.compare_regs(r, w)
    if kt.u64(r["sp"]) != kt.u64(r["sp0"]):
        bad.append(f"sp: expected {kt.u64(r['sp0']):#x}, got {kt.u64(r['sp']):#x}")
    t.check(not bad, rule, *cite, r.events[0], detail=f"{what}: " + "; ".join(bad))


def test_write_keeps_registers(t, kt):
    pid = kt.first_pid(t)
    p = plan(t.seed, kt)
    r = kt.regs(t, pid, "write")
    text = p[2]
    t.check(r["x0"] == len(text) and text in t.output(pid),
            "write: must write the string and return its length in x0", r.events[0],
            detail=f"x0={kt.u64(r['x0']):#x}, expected {len(text)}")
    kept(t, kt, r, want(p, 0, kt.SYS_WRITE), "syscall: a write must change no register "
         "but x0 (x1..x30, sp and NZCV kept)", what="write")


def test_malloc_keeps_registers(t, kt):
    pid = kt.first_pid(t)
    p = plan(t.seed, kt)
    r = kt.regs(t, pid, "malloc")
    calls = [s for s in kt.mallocs(t, pid) if s.seq < r.events[0].seq]
    t.check(bool(calls) and kt.u64(r["x0"]) == kt.u64(calls[-1].ret),
            "malloc: the task must get the page the kernel reports in x0", r.events[0],
            *calls[-1:])
    kept(t, kt, r, want(p, 1, kt.SYS_MALLOC), "syscall: a malloc must change no register "
         "but x0 (x1..x30, sp and NZCV kept)", what="malloc")


def holders(t, kt):
    """[(pid, side)]: the parent (side 0) and its sibling (side 1)."""
    parent = kt.first_pid(t)
    kids = kt.children_of(t, parent)
    t.check(len(kids) == 1, "clone: the parent's clone must succeed",
            *t.of(Sys, pid=parent, nr=kt.SYS_CLONE))
    return [(parent, 0), (kids[0], 1)]


@pytest.mark.rule(weight=3)
def test_preemption_keeps_registers(t, kt):
    """Judged only if every hold spanned a preemption (or saw a change)."""
    p = plan(t.seed, kt)
    spanned = 0
    for pid, side in holders(t, kt):
        for hset, i in hold_tags():
            tag = f"hold{hset}{i}"
            r = kt.fact(t, pid, tag, *kt.REG_NAMES, "saw", "broke", what="a hold's register dump")
            bad = hold_problem(kt, r, want_held(p, hset, side), f"pid {pid} in its hold {tag}")
            t.check(not bad, HOLD_RULE, r.events[0], detail=bad)
            spanned += r["saw"] == SAW_PARTNER
    kt.need(spanned == 4 * HOLDS, f"every hold to span a preemption (test_holds_are_preempted): "
            f"{spanned} of {4 * HOLDS} did")


def hold_window(t, kt, pid, tag):
    """(the event before pid's hold, the hold's first dump line): pid's
    last syscall before the dump (or its task marker)."""
    dump = kt.regs(t, pid, tag).events[0]
    before = [e for e in t.before(dump) if (isinstance(e, Sys) and e.pid == pid)
              or (isinstance(e, Task) and e.pid == pid and e.state == "new")]
    return (before[-1] if before else None), dump


@pytest.mark.rule(weight=2)
def test_holds_are_preempted(t, kt):
    """Each hold waited for the partner, so the timer interrupted it and
    the scheduler switched away and back; the program saw the partner run."""
    for pid, _ in holders(t, kt):
        for hset, i in hold_tags():
            tag = f"hold{hset}{i}"
            r = kt.fact(t, pid, tag, "saw", "broke", what="a hold's report")
            kt.need(r["broke"] == -1, f"pid {pid}'s registers to survive (test_preemption_keeps_registers)")
            start, dump = hold_window(t, kt, pid, tag)
            inside = kt.between(t, start, dump)
            ticks = [e for e in inside if isinstance(e, Tick) and e.pid == pid]
            away = [e for e in inside if isinstance(e, Switch) and e.from_ == pid]
            back = [e for e in inside if isinstance(e, Switch) and e.to == pid]
            cite = [*([start] if start else []), dump]
            # a hold the partner never ended waited its whole budget (many slices):
            # without two ticks in it the timer stopped; with them the scheduler did
            want_ticks = 1 if r["saw"] == SAW_PARTNER else MIN_TICKS
            t.check(len(ticks) >= want_ticks, "timer: a task busy at EL0 must be interrupted by "
                    f"timer ticks (tick pid=<it>; at least {want_ticks} during this hold)", *cite,
                    detail=f"pid {pid}, hold {tag}: {len(ticks)} ticks, saw={r['saw']} (2: the partner ran)")
            t.check(bool(away) and bool(back) and r["saw"] == SAW_PARTNER,
                    "scheduling: with two CPU-bound tasks each must be switched out and back "
                    "in while it waits for the other", *cite,
                    detail=f"pid {pid}, hold {tag}: {len(away)} switches away, {len(back)} back, "
                           f"saw={r['saw']} (2: the partner ran)")
            outs = [e for e in inside if isinstance(e, Out) and e.pid == pid]
            t.check(not outs, "scenario: nothing is written during a hold", *outs[:1])


# --- judged from EL0 facts (--submission: a kernel that emits no markers) -----
# The parent is task 1 (dumps "write", "malloc", its holds); the sibling is
# task 2 (its holds).

@pytest.fixture
def u(run_el0, kt, request):
    return kt.el0_run(run_el0, SCENARIO, request)


def el0_regs(u, kt, tag, tid, *more):
    """The register dump ``tag`` of task ``tid`` (a Fact), or None."""
    lines = kt.tagged(u, tag, tid)
    got = kt.merged(lines)
    names = [*kt.REG_NAMES, *more]
    return kt.Fact(tag, got, [line.event for line in lines]) if all(r in got for r in names) else None


def el0_kept(u, kt, r, w, rule, what):
    bad = kt.compare_regs(r, w)
    if kt.u64(r["sp"]) != kt.u64(r["sp0"]):
        bad.append(f"sp: expected {kt.u64(r['sp0']):#x}, got {kt.u64(r['sp']):#x}")
    u.check(not bad, rule, r.events[0], detail=f"{what}: " + "; ".join(bad))


EL0_DUMPS = [("write", 1), ("malloc", 1)] + [(f"hold{h}{i}", tid) for tid in (1, 2)
                                              for h, i in hold_tags()]


@pytest.mark.rule(route="el0", needs=("test_el0_clones_work",))
def test_el0_calls_return(u, kt):
    """Root rule: each svc and each hold comes back with a register dump."""
    for tag, tid in EL0_DUMPS:
        cite, where = kt.where_stopped(u, tid)
        more = ("saw", "broke") if tag.startswith("hold") else ()
        u.check(el0_regs(u, kt, tag, tid, *more) is not None, "syscall/preemption: the task must "
                "get control back and report its registers", *cite,
                detail=f"task {tid} never printed its '{tag}' dump; {where}")


@pytest.mark.rule(route="el0", needs=("test_el0_calls_return",))
def test_el0_write_keeps_registers(u, kt):
    p = plan(u.seed, kt)
    r = el0_regs(u, kt, "write", 1)
    el0_kept(u, kt, r, want(p, 0, kt.SYS_WRITE), "syscall: a write must change no register but "
             "x0 (x1..x30, sp and NZCV kept)", "write")


@pytest.mark.rule(route="el0", sets=("project",), needs=("test_el0_calls_return",))
def test_el0_write_returns_its_count(u, kt):
    """The project's write returns the bytes written in x0 (the lesson's returns nothing)."""
    p = plan(u.seed, kt)
    r = el0_regs(u, kt, "write", 1)
    u.check(r["x0"] == len(p[2]), "write: must return the number of bytes written in x0",
            r.events[0], detail=f"x0={kt.u64(r['x0']):#x}, expected {len(p[2])}")


@pytest.mark.rule(route="el0", needs=("test_el0_calls_return",))
def test_el0_malloc_keeps_registers(u, kt):
    p = plan(u.seed, kt)
    r = el0_regs(u, kt, "malloc", 1)
    u.check(kt.u64(r["x0"]) % kt.PAGE_SIZE == 0 and kt.u64(r["x0"]) != 0, "malloc: must return "
            "a page address in x0", r.events[0], detail=f"x0={kt.u64(r['x0']):#x}")
    el0_kept(u, kt, r, want(p, 1, kt.SYS_MALLOC), "syscall: a malloc must change no register "
             "but x0 (x1..x30, sp and NZCV kept)", "malloc")


def el0_holds(u, kt):
    """[(tid, tag, dump)] of every hold both tasks reported, in order."""
    found = []
    for tag, tid in EL0_DUMPS[2:]:
        r = el0_regs(u, kt, tag, tid, "saw", "broke")
        if r is not None:
            found.append((tid, tag, r))
    return found


@pytest.mark.rule(route="el0", needs=("test_el0_calls_return",), weight=3)
def test_el0_preemption_keeps_registers(u, kt):
    """Every register held through every preemption; judged only on holds
    that spanned one (the partner ran: saw=2) or saw a register change."""
    p = plan(u.seed, kt)
    holds = el0_holds(u, kt)
    for tid, tag, r in holds:
        bad = hold_problem(kt, r, want_held(p, tag[4], tid - 1), f"task {tid} in its hold {tag}")
        u.check(not bad, HOLD_RULE, r.events[0], detail=bad)
    spanned = [h for h in holds if h[2]["saw"] == SAW_PARTNER]
    kt.need(len(spanned) == len(EL0_DUMPS) - 2, f"every hold to span a preemption "
            f"(test_el0_holds_are_preempted): {len(spanned)} of {len(EL0_DUMPS) - 2} did")


@pytest.mark.rule(route="el0", needs=("test_el0_calls_return",), weight=2)
def test_el0_holds_are_preempted(u, kt):
    """Each hold ended because the partner ran while this task held its
    registers (saw=2): the timer preempted a task busy at EL0."""
    holds = el0_holds(u, kt)
    kt.need(all(r["broke"] == -1 for _, _, r in holds),
            "registers that survive (test_el0_preemption_keeps_registers)")
    for tid, tag, r in holds:
        u.check(r["saw"] == SAW_PARTNER, "scheduling: two CPU-bound tasks must be preempted and "
                "switched (the sibling must run while the parent holds its registers, and back)",
                r.events[-1], detail=f"task {tid}'s hold {tag} ended with saw={r['saw']} "
                                      f"(2: the other task ran during it)")
