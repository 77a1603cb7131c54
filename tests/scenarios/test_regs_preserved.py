"""Judge of scenario regs_preserved (tests/scenarios/regs_preserved.c).

Register sets drawn from the seed go through a write and a malloc
(u_regs_svc) and through a long busy loop that only touches x0
(u_regs_spin), run by the parent and a sibling side by side so that both
are interrupted by ticks and switched out and back in.
"""
from __future__ import annotations

import pytest

from harness.events import Out, Switch, Sys, Tick

SCENARIO = "regs_preserved"
SPIN_BASE, SPIN_SPAN = 8000000, 1000000  # as in regs_preserved.c
MIN_TICKS = 2


@pytest.fixture
def t(run_scenario, kt, request):
    return kt.marker_run(run_scenario, SCENARIO, request)


def plan(seed, kt):
    """regs[k] (x0..x30 draws), nzcv[k] for k = write, malloc, parent spin,
    child spin; the spin counts; the write's text."""
    d = kt.draws(seed, 4 * 32 + 2)
    regs = [d[32 * k: 32 * k + 31] for k in range(4)]
    nzcv = [kt.nzcv_of(d[32 * k + 31]) for k in range(4)]
    counts = [SPIN_BASE + d[128] % SPIN_SPAN, SPIN_BASE + d[129] % SPIN_SPAN]
    text = f"registers kept {regs[0][1]:#x}\n".encode()
    return regs, nzcv, counts, text


def want(p, k, x8=None):
    regs, nzcv, _, _ = p
    w = {f"x{i}": regs[k][i] for i in range(1, 31)}
    if x8 is not None:
        w["x8"] = x8
    w["nzcv"] = nzcv[k]
    return w


def kept(t, kt, r, w, rule, *cite, what=""):
    bad = kt.compare_regs(r, w)
    if kt.u64(r["sp"]) != kt.u64(r["sp0"]):
        bad.append(f"sp: expected {kt.u64(r['sp0']):#x}, got {kt.u64(r['sp']):#x}")
    t.check(not bad, rule, *cite, r.events[0], detail=f"{what}: " + "; ".join(bad))


def test_write_keeps_registers(t, kt):
    pid = kt.first_pid(t)
    p = plan(t.seed, kt)
    r = kt.regs(t, pid, "write")
    text = p[3]
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


def spinners(t, kt):
    parent = kt.first_pid(t)
    kids = kt.children_of(t, parent)
    t.check(len(kids) == 1, "clone: the parent's clone must succeed",
            *t.of(Sys, pid=parent, nr=kt.SYS_CLONE))
    return [(parent, 2), (kids[0], 3)]


def test_preemption_keeps_registers(t, kt):
    p = plan(t.seed, kt)
    for pid, k in spinners(t, kt):
        r = kt.regs(t, pid, f"spin{k}")
        t.check(r["x0"] == 0, "scenario: the spin loop must end with x0 = 0", r.events[0])
        w = want(p, k)
        w["x8"] = p[0][k][8]
        kept(t, kt, r, w, "preemption: a task interrupted by ticks and switched out and "
             "back in must get every register back (x1..x30, sp, NZCV)",
             what=f"pid {pid} after its spin")


def spin_window(t, kt, pid, k):
    """(begin sys, first dump out) around pid's spin."""
    begin = kt.fact(t, pid, f"begin{k}", "n")
    start = next(e for e in t.after(begin.events[0]) if isinstance(e, Sys) and e.pid == pid)
    dump = kt.regs(t, pid, f"spin{k}").events[0]
    return start, dump


def test_spins_are_preempted(t, kt):
    p = plan(t.seed, kt)
    for (pid, k), n in zip(spinners(t, kt), p[2]):
        got = kt.fact(t, pid, f"begin{k}", "n")
        t.check(got["n"] == n, "scenario: the spin count must come from the seed",
                got.events[0])
        start, dump = spin_window(t, kt, pid, k)
        inside = kt.between(t, start, dump)
        ticks = [e for e in inside if isinstance(e, Tick) and e.pid == pid]
        t.check(len(ticks) >= MIN_TICKS, "timer: a task busy at EL0 must be interrupted by "
                f"timer ticks (tick pid=<it>; at least {MIN_TICKS} during this spin)",
                start, dump, detail=f"pid {pid}: {len(ticks)} ticks")
        away = [e for e in inside if isinstance(e, Switch) and e.from_ == pid]
        back = [e for e in inside if isinstance(e, Switch) and e.to == pid]
        t.check(bool(away) and bool(back), "scheduling: with two CPU-bound tasks each must "
                "be switched out and back in during its spin", start, dump,
                detail=f"pid {pid}: {len(away)} switches away, {len(back)} back")
        outs = [e for e in inside if isinstance(e, Out) and e.pid == pid]
        t.check(not outs, "scenario: nothing is written during the spin", *outs[:1])



# --- judged from EL0 facts (--submission: a kernel that emits no markers) -----
# The parent is task 1 (dumps "write", "malloc", "spin2"); the sibling is
# task 2 ("spin3").

@pytest.fixture
def u(run_el0, kt, request):
    return kt.el0_run(run_el0, SCENARIO, request)


def test_el0_clones_work(u, kt):
    """Root rule: clone itself works (else every rule below is skipped)."""
    kt.judge_el0_clones(u)


def el0_regs(u, kt, tag, tid):
    """The register dump ``tag`` of task ``tid`` (a Fact), or None."""
    lines = kt.tagged(u, tag, tid)
    got = kt.merged(lines)
    return kt.Fact(tag, got, [line.event for line in lines]) if all(r in got for r in kt.REG_NAMES) else None


def el0_kept(u, kt, r, w, rule, what):
    bad = kt.compare_regs(r, w)
    if kt.u64(r["sp"]) != kt.u64(r["sp0"]):
        bad.append(f"sp: expected {kt.u64(r['sp0']):#x}, got {kt.u64(r['sp']):#x}")
    u.check(not bad, rule, r.events[0], detail=f"{what}: " + "; ".join(bad))


def test_el0_calls_return(u, kt):
    """Root rule: each svc and each spin comes back with a register dump."""
    for tag, tid in (("write", 1), ("malloc", 1), ("spin2", 1), ("spin3", 2)):
        cite, where = kt.where_stopped(u, tid)
        u.check(el0_regs(u, kt, tag, tid) is not None, "syscall/preemption: the task must get "
                "control back and report its registers", *cite,
                detail=f"task {tid} never printed its '{tag}' dump; {where}")


def test_el0_write_keeps_registers(u, kt):
    p = plan(u.seed, kt)
    r = el0_regs(u, kt, "write", 1)
    kt.need(r, "the write's return (test_el0_calls_return)")
    if u.rules == "project":
        u.check(r["x0"] == len(p[3]), "write: must return the number of bytes written in x0",
                r.events[0], detail=f"x0={kt.u64(r['x0']):#x}, expected {len(p[3])}")
    el0_kept(u, kt, r, want(p, 0, kt.SYS_WRITE), "syscall: a write must change no register but "
             "x0 (x1..x30, sp and NZCV kept)", "write")


def test_el0_malloc_keeps_registers(u, kt):
    p = plan(u.seed, kt)
    r = el0_regs(u, kt, "malloc", 1)
    kt.need(r, "the malloc's return (test_el0_calls_return)")
    u.check(kt.u64(r["x0"]) % kt.PAGE_SIZE == 0 and kt.u64(r["x0"]) != 0, "malloc: must return "
            "a page address in x0", r.events[0], detail=f"x0={kt.u64(r['x0']):#x}")
    el0_kept(u, kt, r, want(p, 1, kt.SYS_MALLOC), "syscall: a malloc must change no register "
             "but x0 (x1..x30, sp and NZCV kept)", "malloc")


def test_el0_preemption_keeps_registers(u, kt):
    p = plan(u.seed, kt)
    for k, tid in ((2, 1), (3, 2)):
        r = el0_regs(u, kt, f"spin{k}", tid)
        kt.need(r, f"task {tid}'s spin to end (test_el0_calls_return)")
        begin = kt.first_tagged(u, f"begin{k}", tid)
        u.check(begin is not None and begin["n"] == p[2][k - 2] and r["x0"] == 0,
                "scenario: the spin count must come from the seed and end at x0 = 0", r.events[0])
        w = want(p, k)
        w["x8"] = p[0][k][8]
        el0_kept(u, kt, r, w, "preemption: a task interrupted by ticks and switched out and back "
                 "in must get every register back (x1..x30, sp, NZCV)", f"task {tid} after its spin")


def test_el0_spins_overlap(u, kt):
    """The sibling started its spin while the parent was inside its own: so
    the parent was switched out mid-spin (what the register check needs)."""
    b2, d2 = kt.first_tagged(u, "begin2", 1), kt.first_tagged(u, "spin2", 1)
    b3 = kt.first_tagged(u, "begin3", 2)
    kt.need(b2 and d2 and b3, "both spins (test_el0_calls_return)")
    u.check(b2.event.line < b3.event.line < d2.event.line or b3.event.line < b2.event.line,
            "scheduling: two CPU-bound tasks must be preempted and switched (the sibling must "
            "run while the parent spins)", b2.event, d2.event, b3.event)
