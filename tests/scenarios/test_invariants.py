"""Rules every run must keep, whatever its scenario.

Each scenario registered in kernel/user/*.c or tests/scenarios/*.c (found by
its USER_SCENARIO(...) line) is judged here for the event order the
protocol promises, page accounting, zombies, pids and a clean end. The runs
are the same ones the scenario's own test file judges (one boot per
scenario and seed in a session).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.el0 import MARKER_ONLY
from harness.events import (AllExited, End, Fault, Out, PAlloc, PFree, PMove, Switch, Sys,
                            Task, Tick)

ROOT = Path(__file__).resolve().parents[2]
_REGISTERED = re.compile(r"^\s*USER_SCENARIO\((\w+)\)", re.M)


def registered_scenarios() -> list[str]:
    names = []
    for src in sorted([*ROOT.glob("kernel/user/*.c"), *ROOT.glob("tests/scenarios/*.c")]):
        names += _REGISTERED.findall(src.read_text(errors="replace"))
    return names


SCENARIOS = registered_scenarios()
#: every judge of this file: the marker route, after the root rules; judged on a scenario
#: under the rule sets its own judges are (sets=None: harness/rules.py)
pytestmark = pytest.mark.rule(route="markers", sets=None, needs=("test_root_rules",))
SEED_PROOF_FAILED = "the seed proof failed: seed-derived values of another run"


@pytest.fixture(params=SCENARIOS)
def t(request, run_scenario, kt):
    return kt.marker_run(run_scenario, request.param, request)


@pytest.mark.rule(needs=())
def test_root_rules(t, kt):
    """Kernel-wide rules whose break derails everything after it (a child
    started on the wrong stack): judged first for every scenario; when one
    is broken the run's other tests skip with "not judged: needs ..."."""
    kt.judge_root_rules(t)


def _acts(e):
    """The pid an event shows running or being acted on at EL0's behalf."""
    if isinstance(e, (Out, Sys, Tick, Fault, PAlloc)):
        return e.pid
    if isinstance(e, Switch):
        return e.to
    return None


def test_nothing_happens_to_a_task_before_it_exists(t, kt):
    born = set()
    for e in t.events:
        if isinstance(e, Task) and e.state == "new":
            t.check(e.pid not in born, "clone: pids are never reused", e)
            born.add(e.pid)
        pid = _acts(e)
        if pid not in (None, 0):
            t.check(pid in born, "causality: a task's events may only come after its "
                    "task new marker", e, detail=f"pid {pid}")


def test_first_task_setup_order(t, kt):
    first = kt.first_pid(t)
    new = kt.new_of(t, first)
    user = t.of(Task, pid=first, state="user")
    t.check(bool(user), "run: the first task must drop to EL0 (task state=user reason=entry)",
            new)
    stack = [e for e in kt.between(t, new, user[0]) if isinstance(e, PAlloc) and e.pid == first]
    t.check(len(stack) == 1, "run: the first task's stack palloc must come after its task new "
            "and before its task user", new, user[0])
    ran = [e for e in t.before(user[0]) if isinstance(e, (Out, Sys)) and e.pid == first]
    t.check(not ran, "run: the first task runs only after task user reason=entry", *ran[:1])


def test_clone_event_order(t, kt):
    for new in t.of(Task, state="new", reason="clone"):
        rest = t.after(new)
        move = next((e for e in rest if isinstance(e, PMove) and e.to == new.pid), None)
        ret = next((e for e in rest if isinstance(e, Sys) and e.pid == new.parent), None)
        t.check(move is not None and ret is not None and move.seq < ret.seq
                and ret.nr == kt.SYS_CLONE and ret.ret == new.pid and move.from_ == new.parent
                and move.addr == ret.a0,
                "clone: the order must be task new (child), pmove (stack, parent to child), "
                "then the parent's sys with ret = child pid", new, *([move] if move else []),
                *([ret] if ret else []))


def test_exit_and_fault_event_order(t, kt):
    pages = kt.Pages(t)
    for z in t.of(Task, state="zombie"):
        if z.reason == "exit":
            start = kt.exit_of(t, z.pid)
            t.check(start is not None and start.ret is None and start.seq < z.seq,
                    "exit: the exit sys marker (no ret) must come before task zombie "
                    "reason=exit", z)
        else:
            found = t.of(Fault, pid=z.pid)
            start = found[0] if found else None
            t.check(start is not None and start.seq < z.seq, "fault: the fault marker must "
                    "come before task zombie reason=fault", z)
        between = kt.between(t, start, z)
        freed = [e.addr for e in between if isinstance(e, PFree)]
        others = [e for e in between if not isinstance(e, PFree)]
        owned = pages.owned_by(z.pid, start)
        t.check(not others and freed == owned and all(e.pid == z.pid for e in between),
                f"{z.reason}: between the {'exit sys' if z.reason == 'exit' else 'fault'} and "
                "task zombie come only the pfrees of every page the task owned, by ascending "
                "address", start, z, detail=f"owned {[hex(a) for a in owned]}, freed "
                f"{[hex(a) for a in freed]}, other events {len(others)}")
        nxt = t.after(z)[:1]
        t.check(bool(nxt) and (isinstance(nxt[0], AllExited) or (isinstance(nxt[0], Switch)
                                                               and nxt[0].from_ == z.pid)),
                "exit: after task zombie the kernel switches away (switch from=<it>) or "
                "reports all_exited", z, *nxt)


def test_zombies_are_never_scheduled(t, kt):
    for z in t.of(Task, state="zombie"):
        later = [e for e in t.after(z) if _acts(e) == z.pid
                 or (isinstance(e, Task) and e.pid == z.pid and e.state != "reaped")]
        t.check(not later, "scheduler: a zombie must never be scheduled again", z, *later[:1])


def test_out_belongs_to_its_write(t, kt):
    for o in t.of(Out):
        nxt = next((e for e in t.after(o) if isinstance(e, (Sys, Tick, Switch, Out))
                    and _acts(e) == o.pid), None)
        t.check(isinstance(nxt, Sys) and nxt.nr == kt.SYS_WRITE and nxt.pid == o.pid,
                "protocol: an out marker comes right before its write's sys marker", o,
                *([nxt] if nxt else []))
        t.check(o.len == len(o.data), "protocol: out len must be the number of bytes", o)
    for s in t.of(Sys, nr=kt.SYS_WRITE):
        if s.ret is not None and s.ret > 0:
            outs = [e for e in kt.between(t, kt.previous_of_pid(t, s, s.pid), s)
                    if isinstance(e, Out)]
            t.check(sum(o.len for o in outs) == s.ret, "write: the bytes in the out markers "
                    "must be the bytes write says it wrote", s, *outs[:1])


def test_pages_are_accounted(t, kt):
    pages = kt.Pages(t)
    t.check(not pages.errors, "pages: every palloc/pfree/pmove must agree with who owns the "
            "page", *[e for e, _ in pages.errors[:3]],
            detail="; ".join(m for _, m in pages.errors[:3]))
    for e in t.of(PAlloc):
        t.check(pages.in_pool(e.addr) and e.addr % t.boot.page_size == 0,
                "pages: every page handed out must be a page of the pool", e)
    left = pages.final()
    t.check(not left, "pages: when every task has exited every page must be free", t.end,
            detail=f"{len(left)} pages still owned, e.g. " +
            ", ".join(f"{a:#x} by pid {p}" for a, p in list(left.items())[:4]))


def test_live_tasks_fit_the_table(t, kt):
    limit = t.boot.nr_tasks - 1
    live = set()
    for e in t.of(Task):
        if e.state == "new":
            live.add(e.pid)
            t.check(len(live) <= limit, f"clone: at most nr_tasks-1 ({limit}) live user tasks",
                    e)
        elif e.state == "zombie":
            live.discard(e.pid)


def test_zombie_slot_reused_only_when_none_unused(t, kt):
    """docs/syscalls.md: a zombie keeps its slot until clone needs one and no
    slot is unused. Slots in use = tasks created - slots reaped."""
    limit = t.boot.nr_tasks - 1
    used = 0
    for e in t.of(Task):
        if e.state == "new":
            used += 1
            t.check(used <= limit, f"clone: a new task needs a slot: an unused one, or a zombie's "
                    f"(task reaped before task new); the table has {limit} user slots", e,
                    detail=f"{used} slots in use")
        elif e.state == "reaped":
            t.check(used == limit, "exit: a zombie's slot may be reused only when no slot is "
                    "unused", e, detail=f"{used} of {limit} user slots in use ({limit - used} "
                    f"unused) when pid {e.pid}'s slot was reaped")
            used -= 1


def test_lowest_zombie_slot_is_reaped(t, kt):
    """docs/syscalls.md: when clone needs a slot and none is unused, the
    lowest-index zombie slot is reused. Markers name pids, not slots, so the
    slots are replayed: a new task takes the lowest unused slot (the table
    is empty at start), a reaped zombie frees its own."""
    slots: list[int | None] = [None] * (t.boot.nr_tasks - 1)  # user slots 1..nr_tasks-1
    zombies: set[int] = set()
    for e in t.of(Task):
        if e.state == "new" and None in slots:
            slots[slots.index(None)] = e.pid
        elif e.state == "zombie":
            zombies.add(e.pid)
        elif e.state == "reaped" and e.pid in slots:
            held = [(i + 1, pid) for i, pid in enumerate(slots) if pid in zombies]
            t.check(held[0][1] == e.pid, "exit: when clone reuses a zombie's slot it must be the "
                    "lowest-index zombie slot", e, detail=f"pid {e.pid} (slot {slots.index(e.pid) + 1}) "
                    f"was reaped; zombie slots then: " + ", ".join(f"slot {i} pid {p}" for i, p in held))
            slots[slots.index(e.pid)] = None

def test_run_ends_cleanly(t, kt):
    """The last task's exit ends the run: all_exited, then end
    reason=all_exited, then QEMU exits with code 0."""
    ends = t.of(End)
    done = t.of(AllExited)
    t.check(bool(done), "run: when the last user task exits the kernel must report all_exited",
            *ends, detail="no all_exited marker")
    t.check(t.end.reason == "all_exited",
            "run: a run whose tasks all exit must end with end reason=all_exited", t.end,
            detail=f"end reason={t.end.reason}")
    t.check(done[-1].seq == t.end.seq - 1,
            "run: all_exited must be the marker right before end", done[-1], t.end)
    # all_exited with a task still live: kt.early_end_problem, a root rule.
    t.check(t.exit_code == 0, "run: after end reason=all_exited QEMU must exit with code 0 "
            "(semihosting SYS_EXIT 0)", t.end, detail=f"QEMU exit code {t.exit_code}")


PROOF_SALT = 0x6B742D70726F6F66  # kernel/user/ulib.h: U_PROOF_SALT


def proof_line(seed: int) -> bytes:
    """The first line every scenario prints (u_seed_proof)."""
    from harness.prng import SplitMix64
    return f"proof seed={seed} draw={SplitMix64(seed ^ PROOF_SALT).next():#x}\n".encode()


@pytest.mark.rule(weight=0, voids=SEED_PROOF_FAILED)
def test_seed_proof(t, kt):
    """A transcript recorded with another seed (a replaying forger) fails here:
    graders score such a scenario 0 (docs/grading.md)."""
    first = kt.first_pid(t)
    outs = t.of(Out, pid=first)
    t.check(bool(outs) and outs[0].data == proof_line(t.seed), "run: the program's seed-derived "
            "values must be this run's (its first line is the seed proof; a transcript recorded "
            "with another seed, or a kernel that garbles the program, fails here)",
            *(outs[:1] or t.events[-1:]), detail=f"expected {proof_line(t.seed)!r}")


# Scenarios judged from EL0 facts (the others need kernel markers: docs/judging.md).
EL0_SCENARIOS = [s for s in SCENARIOS if s not in MARKER_ONLY]


@pytest.fixture(params=EL0_SCENARIOS)
def u(request, run_el0):
    return run_el0(request.param)


@pytest.mark.rule(route="el0", needs=(), weight=0, voids=SEED_PROOF_FAILED)
def test_el0_seed_proof(u, kt):
    """The EL0 twin of test_seed_proof: task 1's first line is the seed proof."""
    outs = u.outputs(1)
    u.check(bool(outs) and outs[0].data == proof_line(u.seed), "run: the program's seed-derived "
            "values must be this run's (its first line is the seed proof; a transcript recorded "
            "with another seed, or a kernel that garbles the program, fails here)",
            *(outs[:1] or u.events[:1]), detail=f"expected {proof_line(u.seed)!r}")


#: The EL0 scenarios that clone, and what their root rule weighs there.
EL0_CLONING = {"clone_twice": 4, "exit_zombie": 3, "malloc_exhaustion": 1, "regs_preserved": 1,
               "fairness": 1, "write_tick": 1, "el0_faults": 1}


@pytest.mark.parametrize("u", [pytest.param(s, marks=pytest.mark.rule(weight=w))
                               for s, w in EL0_CLONING.items()], indirect=True)
@pytest.mark.rule(route="el0", needs=())
def test_el0_clones_work(u, kt):
    """The EL0 root rule of a scenario that clones: clone returns to the
    parent and each child runs, on its own stack (its other EL0 rules need
    this one: they are not judged when it fails, rather than repeat it)."""
    kt.judge_el0_clones(u)
