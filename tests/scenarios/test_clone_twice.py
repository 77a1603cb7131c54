"""Judge of scenario clone_twice (tests/scenarios/clone_twice.c).

The first task fills its registers from the seed and clones twice with the
raw syscall (clone_probe.S); it prints its registers after each clone, and
each child prints the registers it started with and the argument it got,
then both children run rounds that need the other child to have run.
"""
from __future__ import annotations

import pytest

from harness.events import PMove, Switch, Sys, Tick

SCENARIO = "clone_twice"
#: every judge of this file: its route and root (harness/rules.py); an EL0 judge says its own
pytestmark = pytest.mark.rule(route="markers", needs=("test_root_rules",))
KEPT = [1, 6, 7] + list(range(9, 31))  # registers filled from the seed
CT_ROUNDS = 4  # clone_twice.c: progress lines per child


@pytest.fixture
def t(run_scenario, kt, request):
    return kt.marker_run(run_scenario, SCENARIO, request)


def expected(seed, kt):
    """The seed's values: args[k], regs_in[k] (x0..x30 draws), nzcv[k], next."""
    d = kt.draws(seed, 2 + 2 * 32 + 1)
    args = d[0:2]
    regs_in = [d[2 + 32 * k: 2 + 32 * k + 31] for k in range(2)]
    nzcv = [kt.nzcv_of(d[2 + 32 * k + 31]) for k in range(2)]
    return args, regs_in, nzcv, d[66]


def clones(t, kt):
    """The parent's two clone syscalls, each with a child pid (> 0)."""
    parent = kt.first_pid(t)
    calls = t.of(Sys, pid=parent, nr=kt.SYS_CLONE)
    t.check(len(calls) == 2, "clone: each of the parent's two clone calls must return "
            "(sys nr=2 with ret) to the parent", *calls,
            detail=f"found {len(calls)} clone syscalls from pid {parent}")
    for c in calls:
        t.check(c.ret is not None and c.ret > 0,
                "clone: a valid clone must return the child's pid (> 0) to the parent", c,
                detail=f"ret={c.ret}")
    return parent, calls


def want_shared(seed, kt, k, before):
    """Registers parent and child must both hold after clone k (all but x0, sp)."""
    _, regs_in, nzcv, _ = expected(seed, kt)
    want = {f"x{i}": regs_in[k][i] for i in KEPT}
    for i in (2, 3, 4, 5):
        want[f"x{i}"] = before[f"x{i}"]
    want["x8"] = kt.SYS_CLONE
    want["nzcv"] = nzcv[k]
    return want


def test_two_distinct_child_pids(t, kt):
    parent, calls = clones(t, kt)
    pids = [c.ret for c in calls]
    t.check(pids[0] != pids[1], "clone: two clones must give two distinct child pids", *calls)
    for c in calls:
        new = kt.new_of(t, c.ret)
        t.check(new is not None and new.seq < c.seq and new.reason == "clone"
                and new.parent == parent,
                "clone: the child's `task new reason=clone parent=<caller>` must come before "
                "the parent's sys ret=<child pid>", c, *( [new] if new else []))
        moves = [e for e in kt.between(t, new, c) if isinstance(e, PMove)]
        t.check(len(moves) == 1 and moves[0].from_ == parent and moves[0].to == c.ret
                and moves[0].addr == c.a0,
                "clone: the stack page must pass to the child (pmove from=parent to=child "
                "addr=stack) between its task new and the parent's sys", c, *moves,
                detail=f"stack argument a0={c.a0:#x}")


def test_parent_sees_child_pid(t, kt):
    parent, calls = clones(t, kt)
    for k, c in enumerate(calls):
        got = kt.fact(t, parent, f"clone{k}", "ret")
        t.check(got["ret"] == c.ret,
                "clone: the parent must get the child's pid in x0 (what the kernel reports)",
                c, got.events[0], detail=f"kernel says ret={c.ret}, the parent saw {got['ret']}")


@pytest.mark.rule(weight=3)
def test_child_sees_zero(t, kt):
    _, calls = clones(t, kt)
    for k, c in enumerate(calls):
        r = kt.regs(t, c.ret, f"child{k}")
        t.check(r["x0"] == 0, "clone: the child must see 0 in x0 as clone's result",
                r.events[0], detail=f"child pid {c.ret} saw x0={kt.u64(r['x0']):#x}")


def test_child_runs_fn_with_arg(t, kt):
    args, _, _, _ = expected(t.seed, kt)
    _, calls = clones(t, kt)
    for k, c in enumerate(calls):
        got = kt.fact(t, c.ret, "child", "arg", "k")
        t.check(got["arg"] == args[k] and got["k"] == k,
                "clone: the child must run fn(arg) with the argument its parent passed",
                got.events[0], detail=f"child pid {c.ret} (clone #{k}) got arg={got['arg']:#x}, "
                f"the seed gives {args[k]:#x}")


@pytest.mark.rule(weight=2)
def test_child_registers_are_a_copy(t, kt):
    parent, calls = clones(t, kt)
    for k, c in enumerate(calls):
        before = kt.fact(t, parent, f"before{k}", "stack", "x2", "x3", "x4", "x5")
        r = kt.regs(t, c.ret, f"child{k}")
        bad = kt.compare_regs(r, want_shared(t.seed, kt, k, before))
        t.check(not bad, "clone: the child's registers must be a copy of the caller's "
                "(x1..x30 and NZCV as they were at the svc)", r.events[0],
                detail=f"child pid {c.ret}: " + "; ".join(bad))


@pytest.mark.rule(weight=3)
def test_child_sp_is_top_of_stack_page(t, kt):
    _, calls = clones(t, kt)
    for k, c in enumerate(calls):
        r = kt.regs(t, c.ret, f"child{k}")
        t.check(kt.u64(r["sp"]) == c.a0 + t.boot.page_size,
                "clone: the child must start with sp = stack + 4096", r.events[-1], c,
                detail=f"stack={c.a0:#x}, child sp={kt.u64(r['sp']):#x}")


@pytest.mark.rule(weight=3)
def test_parent_registers_survive(t, kt):
    parent, calls = clones(t, kt)
    for k, c in enumerate(calls):
        before = kt.fact(t, parent, f"before{k}", "stack", "x2", "x3", "x4", "x5")
        r = kt.regs(t, parent, f"parent{k}")
        want = want_shared(t.seed, kt, k, before)
        want["x0"] = c.ret
        bad = kt.compare_regs(r, want)
        if kt.u64(r["sp"]) != kt.u64(r["sp0"]):
            bad.append(f"sp: expected {kt.u64(r['sp0']):#x}, got {kt.u64(r['sp']):#x}")
        t.check(not bad, "clone: the parent's registers must survive clone unchanged "
                "(only x0 = child pid)", c, r.events[0],
                detail=f"after clone #{k}: " + "; ".join(bad))


def test_parent_continues(t, kt):
    _, _, _, nxt = expected(t.seed, kt)
    parent, calls = clones(t, kt)
    got = kt.fact(t, parent, "parent", "next", "seed")
    t.check(got["next"] == nxt and got["seed"] == t.seed,
            "clone: the parent must go on after both clones with its stack and locals "
            "intact", got.events[-1],
            detail=f"next draw {got['next']:#x}, the seed gives {nxt:#x}")


def test_children_are_preempted_and_interleave(t, kt):
    _, calls = clones(t, kt)
    a, b = calls[0].ret, calls[1].ret
    za, zb = kt.zombie_of(t, a), kt.zombie_of(t, b)
    end = min((z for z in (za, zb) if z is not None), key=lambda e: e.seq, default=None)
    start = kt.new_of(t, b)
    window = kt.between(t, start, end)
    for pid in (a, b):
        ticks = [e for e in t.of(Tick, pid=pid)]
        t.check(len(ticks) >= 1, "scheduling: a CPU-bound task must be interrupted by "
                "timer ticks (tick pid=<it>)", *kt.last_events_of(t, pid, 1),
                detail=f"no tick interrupted pid {pid}")
    switches = [e for e in window if isinstance(e, Switch) and {e.from_, e.to} == {a, b}]
    t.check(len(switches) >= 2, "scheduling: two runnable children must be preempted "
            "and switched between (switch from one child to the other, both ways)",
            *(window[-1:] if window else []),
            detail=f"switches between pids {a} and {b} while both were alive: {len(switches)}")
    for pid, other in ((a, b), (b, a)):
        rounds = kt.facts(t, pid).get("round")
        t.check(rounds is not None and rounds.get("r") == 3,
                "scheduling: both children must run all their rounds",
                *kt.last_events_of(t, pid, 1), detail=f"pid {pid}")


def test_children_exit_as_zombies(t, kt):
    parent, calls = clones(t, kt)
    for c in calls:
        ex = kt.exit_of(t, c.ret)
        z = kt.zombie_of(t, c.ret)
        t.check(ex is not None and z is not None and z.reason == "exit" and z.seq > ex.seq,
                "exit: a child returning from fn must exit and become a zombie "
                "(task state=zombie reason=exit after its sys nr=3)",
                *kt.last_events_of(t, c.ret, 2))
        t.check(z.parent == parent, "exit: the zombie's parent must be the task that "
                "cloned it", z)



# --- judged from EL0 facts (--submission: a kernel that emits no markers) -----
# Task 1 is the parent; its clones announce children 2 and 3 (docs/judging.md).

@pytest.fixture
def u(run_el0, kt, request):
    return kt.el0_run(run_el0, SCENARIO, request)


def el0_child_dump(u, kt, k):
    """Child k's register dump, from whichever task printed it (a child whose
    sp was not set prints under its parent's id); None if it never came."""
    lines = kt.tagged(u, f"child{k}")
    got = kt.merged(lines)
    return (got, lines) if all(r in got for r in kt.REG_NAMES) else (None, lines)


@pytest.mark.rule(route="el0", needs=("test_el0_clones_work",), weight=3)
def test_el0_clone_returns_to_parent(u, kt):
    """Root rule of this scenario: each clone must come back to the caller."""
    pids = []
    for k in range(2):
        announced = u.of(kt.UClone, tid=1)
        line = kt.first_tagged(u, f"clone{k}", 1)
        cite, where = kt.where_stopped(u, 1)
        u.check(line is not None, "clone: the call must return to the caller, after its svc "
                "and on its own stack, with the child's pid in x0",
                *announced[k:k + 1], *cite,
                detail=f"the parent announced clone #{k} but never reported its result; {where}")
        u.check(line["ret"] > 0, "clone: a valid clone must return the child's pid (> 0) to "
                "the parent", line.event, detail=f"clone #{k} returned {kt.s64(line['ret'])}")
        pids.append(line["ret"])
    u.check(pids[0] != pids[1], "clone: two clones must give two distinct child pids",
            *[kt.first_tagged(u, f"clone{k}", 1).event for k in range(2)])


@pytest.mark.rule(route="el0", needs=("test_el0_clones_work",), weight=3)
def test_el0_children_start(u, kt):
    """Precondition of the child rules: each child runs and reports its registers."""
    for k in range(2):
        got, lines = el0_child_dump(u, kt, k)
        child = 2 + k
        cite, where = kt.where_stopped(u, child)
        u.check(got is not None, "clone: the child must start at the instruction after the "
                "svc and run (it prints the registers it woke up with)",
                *(lines[-1:] and [lines[-1].event]), *cite,
                detail=f"child #{k} (task {child}) printed no complete register dump; {where}")


@pytest.mark.rule(route="el0", needs=("test_el0_children_start",), weight=3)
def test_el0_child_sees_zero(u, kt):
    for k in range(2):
        got, lines = el0_child_dump(u, kt, k)
        u.check(got["x0"] == 0, "clone: the child must see 0 in x0 as clone's result",
                lines[0].event, detail=f"child #{k} saw x0={kt.u64(got['x0']):#x}")


@pytest.mark.rule(route="el0", needs=("test_el0_children_start", "test_el0_clone_returns_to_parent"), weight=3)
def test_el0_child_sp_is_top_of_stack_page(u, kt):
    for k in range(2):
        got, lines = el0_child_dump(u, kt, k)
        before = kt.first_tagged(u, f"before{k}", 1)
        u.check(kt.u64(got["sp"]) == before["stack"] + kt.PAGE_SIZE,
                "clone: the child must start with sp = stack + 4096", lines[-1].event,
                before.event, detail=f"stack={before['stack']:#x}, child sp={kt.u64(got['sp']):#x}")


@pytest.mark.rule(route="el0", needs=("test_el0_children_start", "test_el0_clone_returns_to_parent"), weight=2)
def test_el0_child_registers_are_a_copy(u, kt):
    for k in range(2):
        got, lines = el0_child_dump(u, kt, k)
        before = kt.merged(kt.tagged(u, f"before{k}", 1))
        bad = kt.compare_regs(kt.Fact("child", got), want_shared(u.seed, kt, k, before))
        u.check(not bad, "clone: the child's registers must be a copy of the caller's "
                "(x1..x30 and NZCV as they were at the svc)", lines[0].event,
                detail=f"child #{k}: " + "; ".join(bad))


@pytest.mark.rule(route="el0", needs=("test_el0_children_start",))
def test_el0_child_runs_fn_with_arg(u, kt):
    args, _, _, _ = expected(u.seed, kt)
    for k in range(2):
        got = [line for line in kt.tagged(u, "child") if line.get("k") == k]
        u.check(got[0]["arg"] == args[k], "clone: the child must run fn(arg) with the argument "
                "its parent passed", got[0].event,
                detail=f"child #{k} got arg={got[0]['arg']:#x}, the seed gives {args[k]:#x}")


@pytest.mark.rule(route="el0", needs=("test_el0_clone_returns_to_parent",), weight=3)
def test_el0_parent_registers_survive(u, kt):
    for k in range(2):
        ret = kt.first_tagged(u, f"clone{k}", 1)
        lines = kt.tagged(u, f"parent{k}", 1)
        got = kt.merged(lines)
        before = kt.merged(kt.tagged(u, f"before{k}", 1))
        kt.need(all(r in got for r in kt.REG_NAMES), f"the parent's register dump after clone #{k}")
        want = want_shared(u.seed, kt, k, before)
        want["x0"] = ret["ret"]
        bad = kt.compare_regs(kt.Fact("parent", got), want)
        if kt.u64(got["sp"]) != kt.u64(got["sp0"]):
            bad.append(f"sp: expected {kt.u64(got['sp0']):#x}, got {kt.u64(got['sp']):#x}")
        u.check(not bad, "clone: the parent's registers must survive clone unchanged "
                "(only x0 = child pid)", lines[0].event, detail=f"after clone #{k}: " + "; ".join(bad))


@pytest.mark.rule(route="el0", needs=("test_el0_clone_returns_to_parent",))
def test_el0_parent_continues(u, kt):
    _, _, _, nxt = expected(u.seed, kt)
    nexts = [line for line in kt.tagged(u, "parent", 1) if "next" in line.values]
    cite, where = kt.where_stopped(u, 1)
    u.check(nexts and nexts[0]["next"] == nxt, "clone: the parent must go on after both clones "
            "with its stack and locals intact", *([nexts[0].event] if nexts else cite),
            detail=(f"next draw {nexts[0]['next']:#x}, the seed gives {nxt:#x}" if nexts
                    else f"the parent never printed its next draw; {where}"))


@pytest.mark.rule(route="el0", needs=("test_el0_children_start",), weight=2)
def test_el0_children_interleave(u, kt):
    """Each round waits until the other child has run: both finishing all
    rounds, with their lines alternating, shows preemption interleaved them."""
    rounds = [line for line in kt.tagged(u, "round")]
    done = {line["k"]: line for line in kt.tagged(u, "done")}
    for k in range(2):
        mine = [r for r in rounds if r.get("k") == k]
        cite, where = kt.where_stopped(u, 2 + k)
        u.check(len(mine) == CT_ROUNDS and k in done, "scheduling: two runnable children must "
                "both be preempted and interleave (each round waits for the other child to run)",
                *([mine[-1].event] if mine else cite),
                detail=f"child #{k} finished {len(mine)} of {CT_ROUNDS} rounds; {where}")
    order = [r["k"] for r in rounds]
    turns = sum(1 for a, b in zip(order, order[1:]) if a != b)
    u.check(turns >= 2, "scheduling: two runnable children must both be preempted and "
            "interleave", rounds[-1].event, detail=f"their round lines alternate {turns} times")


@pytest.mark.rule(route="el0", needs=("test_el0_clones_work",))
def test_el0_everyone_exits(u, kt):
    for tid in (1, 2, 3):
        after = u.of(kt.UAfterExit, tid=tid)
        u.check(not after, "exit: must never return (code ran after the task's exit)", *after)
        cite, where = kt.where_stopped(u, tid)
        u.check(u.exited(tid) is not None, "exit: every task must end with exit (a child "
                "returning from fn exits)", *cite, detail=where)
