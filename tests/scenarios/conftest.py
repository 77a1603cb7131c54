"""Helpers shared by the scenario judges, handed to tests as the `kt` fixture.

The pytest plugin (run_scenario, options) is registered by tests/conftest.py;
this file only adds judge-side helpers that several scenarios need:

- facts(t, pid): the "tag key=value ..." lines a scenario printed, parsed;
- regs(...): a register dump printed by u_print_regs (kernel/user/ulib.c);
- Pages: a replay of palloc/pfree/pmove that knows who owns which page;
- small event queries (the exit of a pid, the events between two events);

Use it as `def test_x(t, kt): kt.facts(t, pid)`.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pytest

from harness import abi
from harness.abi import SYS_CLONE, SYS_EXIT, SYS_MALLOC  # kt.SYS_*, kt.E*: every number, see __getattr__
from harness.el0 import UAfterExit, UClone, UCloned, UError, UEvent, UExit  # noqa: F401 (kt.*)
from harness.events import (AllExited, Event, Fault, Out, PAlloc, PFree, PMove, Switch, Sys, Task,
                            Tick, live_pids)
from harness.prng import MASK64, SplitMix64
from harness.rules import base_name, facts_of, not_applicable, not_judged  # noqa: F401 (kt.*)
from harness.rules import scenario_of as rule_scenario

REG_NAMES = [f"x{i}" for i in range(31)] + ["nzcv", "sp", "sp0"]
PAGE_SIZE = 4096  # docs/syscalls.md: malloc's pages, clone's stacks


# --- numbers ------------------------------------------------------------------

def u64(v: int) -> int:
    """v as an unsigned 64-bit value (what a register holds)."""
    return v & MASK64


def s64(v: int) -> int:
    """v as a signed 64-bit value (what a `long` result means)."""
    v &= MASK64
    return v - (1 << 64) if v >> 63 else v


def draws(seed: int, n: int) -> list[int]:
    """The first n values of splitmix64(seed), as the scenario drew them."""
    g = SplitMix64(seed)
    return [g.next() for _ in range(n)]


def nzcv_of(draw: int) -> int:
    """The NZCV word a scenario derives from one draw (its top 4 bits)."""
    return (draw >> 60) << 28


# --- what a scenario printed ---------------------------------------------------

@dataclass
class Fact:
    """One tag's values, merged over every line that starts with the tag."""
    tag: str
    values: dict[str, Any] = field(default_factory=dict)
    events: list[Out] = field(default_factory=list)  # the out markers, to cite

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def _value(text: str) -> Any:
    try:
        return int(text, 0)
    except ValueError:
        return text


@dataclass
class Line:
    """One printed "tag key=value ..." line and the out marker it came in
    (a kernel's `out` marker, or an EL0 `out` marker)."""
    tag: str
    values: dict[str, Any]
    event: Any

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def facts_lines(t: Any, pid: int, *tags: str) -> list[Line]:
    """Every "tag key=value ..." line pid printed (only those tags, if any
    are given), in order. Numbers (0x.. or decimal) become ints."""
    lines = []
    for ev in t.outputs(pid):
        for text in ev.data.decode("latin-1").split("\n"):
            words = text.split()
            if not words or "=" in words[0] or (tags and words[0] not in tags):
                continue
            values = {}
            for w in words[1:]:
                if "=" in w:
                    k, v = w.split("=", 1)
                    values[k] = _value(v)
            lines.append(Line(words[0], values, ev))
    return lines


def facts(t: Any, pid: int) -> dict[str, Fact]:
    """The lines pid printed, merged by tag (a later line's key wins), in
    order of first appearance."""
    out: dict[str, Fact] = {}
    for line in facts_lines(t, pid):
        fact = out.setdefault(line.tag, Fact(line.tag))
        if not fact.events or fact.events[-1] is not line.event:
            fact.events.append(line.event)
        fact.values.update(line.values)
    return out


def fact(t: Any, pid: int, tag: str, *keys: str, what: str = "") -> Fact:
    """facts(t, pid)[tag], failing with a readable rule if the scenario did
    not print it (or a key of it): the task never got that far."""
    got = facts(t, pid).get(tag)
    missing = [k for k in keys if got is None or k not in got.values]
    if got is None or missing:
        detail = (f"pid {pid} never printed its '{tag}' line"
                  + (f" (missing {', '.join(missing)})" if got is not None else "")
                  + (f": {what}" if what else ""))
        cite = last_events_of(t, pid, 1)
        t.fail(f"the scenario's task must run to the end and report '{tag}' "
               "(it was killed, hung, or its output was lost)", *cite, detail=detail)
    return got  # type: ignore[return-value]


def regs(t: Any, pid: int, tag: str) -> Fact:
    """The register dump `tag` printed by u_print_regs: keys x0..x30, nzcv,
    sp, sp0."""
    return fact(t, pid, tag, *REG_NAMES, what="a register dump")


def compare_regs(got: Fact, want: dict[str, int]) -> list[str]:
    """'xN: expected .., got ..' for every register whose value differs."""
    return [f"{name}: expected {want[name]:#x}, got {u64(got[name]):#x}"
            for name in want if u64(got[name]) != u64(want[name])]


# --- EL0-judged runs (--submission: the kernel emits no markers) ---------------

def tagged(u: Any, tag: str, tid: int | None = None) -> list[Line]:
    """Every "tag key=value ..." line printed with ``tag``, by ``tid`` or by
    any task (a child whose sp was not set prints under its parent's id)."""
    tids = [tid] if tid is not None else sorted({e.tid for e in u.events})
    found = [line for t in tids for line in facts_lines(u, t, tag)]
    return sorted(found, key=lambda line: line.event.line)


def first_tagged(u: Any, tag: str, tid: int | None = None) -> Line | None:
    """The first line ``tagged(u, tag, tid)``, or None."""
    found = tagged(u, tag, tid)
    return found[0] if found else None


def merged(lines: list[Line]) -> dict[str, Any]:
    """The values of several lines of one tag (a register dump is 5 lines)."""
    out: dict[str, Any] = {}
    for line in lines:
        out.update(line.values)
    return out


def need(cond: object, what: str) -> None:
    """Skip a rule whose precondition, a fact of this transcript no other
    rule owns, does not hold: "not judged: needs <what>". (A rule that
    builds on another rule says so in its marker: needs=(...).)"""
    __tracebackhide__ = True
    if not cond:
        not_judged(f"needs {what}")


def where_stopped(u: Any, tid: int) -> tuple[list[Any], str]:
    """What to cite and say about where task ``tid`` stopped reporting."""
    last = u.last_of(tid)
    if last is None:
        return [], f"task {tid} wrote no EL0 marker at all"
    return [last], f"task {tid}'s last EL0 marker is line {last.line}"


def el0_clone_problem(u: Any) -> tuple[str, list[Any], str] | None:
    """(rule, cited, detail) if clone itself is broken in this EL0 run, the
    root cause of whatever else the scenario then misses; None if not. It
    tells the child that ran the parent's path (it reported a clone result
    it never asked for), the clone that never came back, the child on
    another's stack, the parent never preempted (the child never ran while
    the parent stayed busy at EL0) and the child that never ran (though its
    parent gave up the CPU) apart."""
    for back in u.of(UCloned):
        asked = [c for c in u.of(UClone, tid=back.tid) if c.child == back.child and c.line < back.line]
        if not asked:
            return ("clone: the child must start at the instruction after the svc with x0 = 0 (it "
                    "took the parent's path)", [back],
                    f"task {back.tid} reported clone's result for child {back.child} (ret={back.ret}) "
                    f"without having cloned it: a child got a non-zero x0 from clone and went on as "
                    f"its parent")
    for clone in u.of(UClone):
        back = [c for c in u.of(UCloned, tid=clone.tid) if c.child == clone.child]
        if not back:
            cite, where = where_stopped(u, clone.tid)
            return ("clone: the call must return to the caller, after its svc and on its own "
                    "stack, with the child's pid in x0", [clone, *cite],
                    f"task {clone.tid} announced child {clone.child} but never got clone's "
                    f"result back; {where}")
    shared = [tid for tid in sorted({e.tid for e in u.events}) if len(u.of(UExit, tid=tid)) > 1]
    if shared:
        exits = u.of(UExit, tid=shared[0])
        return ("clone: the child must start with sp = stack + 4096 (on its own stack page)",
                exits[:2], f"task {shared[0]} exited {len(exits)} times: other tasks write as task "
                           f"{shared[0]} (the program names a task by its stack page), so they run "
                           f"on its stack")
    repeats = [a for a in u.anomalies if "a repeat" in a.what]
    if repeats:
        return ("clone: the child must start with sp = stack + 4096 (on its own stack page)",
                [], f"two tasks wrote as one ({repeats[0].what}, line {repeats[0].line}): a child "
                    f"runs on another task's stack")
    hung_at_fault = bool(u.events) and u.events[-1].KIND == "dying"  # the fault's fault, not clone's
    for back in u.of(UCloned):
        if (0 < back.ret < 1 << 31 and u.last_of(back.child) is None and u.ending != "all_exited"
                and not hung_at_fault):
            said = [n for n in u.noise if n.line > back.line][:1]  # the kernel spoke (a fault?)
            if u.exited(back.tid) is None and not said:
                cite, where = where_stopped(u, back.tid)
                return ("scheduling: the timer must preempt a task busy at EL0, so that the child "
                        "it cloned runs", [back, *cite],
                        f"child {back.child} (pid {back.ret}) never ran while task {back.tid}, "
                        f"which cloned it, went on at EL0 and never exited ({where}): the "
                        f"parent was never preempted (timer ticks at EL0 masked or ignored)")
            why = (f"the kernel printed {said[0].text[:80]!r} after the clone" if said
                   else f"task {back.tid} exited and gave up the CPU")
            return ("clone: the child must start at the instruction after the svc and run",
                    [back], f"child {back.child} (pid {back.ret}) never wrote anything, although "
                            f"{why} (the child starts from a copy of the caller's registers with "
                            f"x0 = 0 and sp = stack + 4096)")
    return None


def fail_with(t: Any, problem: tuple[str, list[Any], str] | None) -> None:
    """Fail t's test with a (rule, cited, detail) problem, if there is one."""
    __tracebackhide__ = True
    if problem is not None:
        rule, cited, detail = problem
        t.fail(rule, *cited, detail=detail)


def judge_el0_clones(u: Any) -> None:
    """The root rule of a scenario that clones: clone itself works."""
    __tracebackhide__ = True
    fail_with(u, el0_clone_problem(u))


def el0_entry_problem(u: Any) -> tuple[str, list[Any], str] | None:
    """(rule, cited, detail) if the first task entered EL0 on a stack it
    cannot use: user_process (kernel/user/kt/el0.c) checks sp, and the page
    below it, before it pushes anything, and reports from a rescue stack
    (an `error` marker what=entry_sp or entry_stack after an "entry sp=..
    at=.. word=.." line); else None."""
    errors = [e for e in u.of(UError) if e.what in ("entry_sp", "entry_stack")]
    if not errors:
        return None
    entry = merged(tagged(u, "entry", errors[0].tid))
    sp, at, word = (u64(entry.get(k, 0)) for k in ("sp", "at", "word"))
    if errors[0].what == "entry_sp":
        return ("entry: the first task must enter EL0 with sp = the top of its stack page "
                "(sp_el0 restored from the saved frame on the way out of the kernel)", [errors[0]],
                f"user_process began with sp={sp:#x} (0 or not 16-byte aligned): it could not push "
                f"anything")
    return ("entry: the first task must enter EL0 on a fresh stack page of its own (no kernel data "
            "on it: not the task's own task page, not a page handed out twice)", [errors[0]],
            f"user_process began with sp={sp:#x}; below it, on its page, the word at {at:#x} is "
            f"{word:#x} (a fresh page is all zeros)")


#: The EL0 root rule of a scenario that clones (test_invariants.py, one
#: parametrized test): a rule of such a scenario names it in needs=.
EL0_ROOT_TEST = "test_el0_clones_work"


def _unjudged_root(request: pytest.FixtureRequest, root: str, scenario: str) -> bool:
    """Whether the test needs ``root`` (harness.rules) but ``root`` is not
    in this session (one file run alone): then the test judges it itself."""
    facts = facts_of(request.node)
    if facts is None or root not in facts.needs:
        return False
    return not any(base_name(item) == root and rule_scenario(item) == scenario
                   for item in request.session.items)


def el0_run(run_el0: Any, scenario: str, request: pytest.FixtureRequest) -> Any:
    """The EL0 run of ``scenario`` for one test. No rule is judged when the
    first task entered EL0 on a stack it cannot use (the entry rule,
    test_invalid_syscall.py::test_el0_program_enters_on_its_own_stack, says
    so). A rule that needs test_el0_clones_work is not judged when that
    failed (its marker says so); when it is not in the session, the rule
    fails with it here."""
    __tracebackhide__ = True
    u = run_el0(scenario)
    need(el0_entry_problem(u) is None, "a usable stack at entry "
         "(test_invalid_syscall.py::test_el0_program_enters_on_its_own_stack)")
    if _unjudged_root(request, EL0_ROOT_TEST, scenario):
        judge_el0_clones(u)
    return u


# --- root rules (marker runs) ---------------------------------------------------
# A kernel-wide break (a child started on the wrong stack) derails every rule
# of a scenario after it. Each scenario's first test, test_root_rules in
# test_invariants.py, judges these; every other marker rule needs it (each
# module's pytestmark), so it is not judged rather than repeating the damage.

def child_stack_problem(t: Any) -> tuple[str, list[Any], str] | None:
    """(rule, cited, detail) if a clone child did not start on its own stack
    page: its first syscall ran with sp outside (stack, stack + 4096], or it
    faulted before making one (every scenario's child writes first)."""
    rule = "clone: the child must start with sp = stack + 4096 (on its own stack page)"
    for new in t.of(Task, state="new", reason="clone"):
        moves = [e for e in t.events[new.seq:] if isinstance(e, PMove) and e.to == new.pid][:1]
        if not moves:
            continue  # test_clone_event_order's rule
        stack = moves[0].addr
        if stack % PAGE_SIZE:
            continue  # a misaligned stack had to be refused: test_bad_stack_is_einval's rule
        first = next((e for e in t.events[new.seq:] if isinstance(e, (Sys, Fault))
                      and e.pid == new.pid), None)
        if isinstance(first, Fault):
            return (rule, [moves[0], first],
                    f"child {new.pid} faulted ({first.what}) at ELR {first.elr:#x}, FAR "
                    f"{first.far:#x} before its first syscall; its stack page is {stack:#x}")
        if isinstance(first, Sys) and first.sp is not None and not stack < first.sp <= stack + PAGE_SIZE:
            return (rule, [moves[0], first],
                    f"child {new.pid}'s first syscall ran with sp={first.sp:#x}; its stack page "
                    f"is [{stack:#x}, {stack + PAGE_SIZE:#x})")
    return None


def early_end_problem(t: Any) -> tuple[str, list[Any], str] | None:
    """(rule, cited, detail) if the kernel said all_exited while a user task
    had not exited: the run ended under every later rule's feet."""
    done = t.of(AllExited)
    if not done:
        return None
    alive = sorted(live_pids(t.before(done[0])))
    if not alive:
        return None
    return ("run: all_exited may only come when every user task has exited (a live task in "
            "any table slot, the last one too, counts)", [done[0], *last_events_of(t, alive[0], 1)],
            f"pids still live at all_exited: {alive}")


#: Kernel-wide root rules, judged first on every marker run, most basic first.
ROOT_CHECKS = (early_end_problem, child_stack_problem)
ROOT_TEST = "test_root_rules"


def root_problem(t: Any) -> tuple[str, list[Any], str] | None:
    """The first kernel-wide root rule this run breaks, or None."""
    for check in ROOT_CHECKS:
        problem = check(t)
        if problem is not None:
            return problem
    return None


def judge_root_rules(t: Any) -> None:
    """Fail with the first root rule the run breaks."""
    __tracebackhide__ = True
    fail_with(t, root_problem(t))


def marker_run(run_scenario: Any, scenario: str, request: pytest.FixtureRequest) -> Any:
    """The marker run of ``scenario`` for one test. Every marker rule needs
    test_root_rules (each module's pytestmark): it is not judged when that
    failed; when that test is not in the session, it fails with the root
    rule here."""
    __tracebackhide__ = True
    t = run_scenario(scenario)
    if _unjudged_root(request, ROOT_TEST, scenario):
        judge_root_rules(t)
    return t


# --- events -------------------------------------------------------------------

def pid_of(ev: Any) -> int | None:
    """The user task an event is about (None for global events); for an
    EL0 marker, the task that wrote it."""
    if isinstance(ev, UEvent):
        return ev.tid
    if isinstance(ev, (Task, Tick, Sys, Out, PAlloc, PFree, Fault)):
        return ev.pid
    if isinstance(ev, Switch):
        return ev.to
    if isinstance(ev, PMove):
        return ev.from_
    return None


def last_events_of(t: Any, pid: int, n: int) -> list[Event]:
    """The last n events about pid (to cite when something is missing)."""
    mine = [e for e in t.events if pid_of(e) == pid]
    return mine[-n:]


def between(t: Any, a: Event | None, b: Event | None) -> list[Event]:
    """The events strictly after a (start if None) and before b (end if None)."""
    lo = a.seq + 1 if a is not None else 0
    hi = b.seq if b is not None else len(t.events)
    return t.events[lo:hi]


def previous_of_pid(t: Any, ev: Event, pid: int) -> Event | None:
    """The last event before ev at which pid was known to be back at EL0 (its
    previous sys, a tick that interrupted it, a switch to it, its task
    marker): what the kernel reports from there to ev belongs to ev's call."""
    for e in reversed(t.before(ev)):
        if isinstance(e, (Sys, Tick)) and e.pid == pid:
            return e
        if isinstance(e, Switch) and e.to == pid:
            return e
        if isinstance(e, Task) and e.pid == pid:
            return e
    return None


def exit_of(t: Any, pid: int) -> Sys | None:
    """pid's exit syscall (sys nr=3, no ret), or None."""
    found = t.of(Sys, pid=pid, nr=SYS_EXIT)
    return found[0] if found else None


def zombie_of(t: Any, pid: int) -> Task | None:
    """The `task pid=.. state=zombie` event, or None."""
    found = t.of(Task, pid=pid, state="zombie")
    return found[0] if found else None


def new_of(t: Any, pid: int) -> Task | None:
    """The `task pid=.. state=new` event, or None."""
    found = t.of(Task, pid=pid, state="new")
    return found[0] if found else None


def children_of(t: Any, parent: int) -> list[int]:
    """Pids cloned by parent, in creation order."""
    return [e.pid for e in t.of(Task, state="new", reason="clone") if e.parent == parent]


def two_children(t: Any) -> list[int]:
    """The two children the first task cloned (fairness, malloc_race,
    write_tick): checked, in creation order."""
    parent = first_pid(t)
    kids = children_of(t, parent)
    t.check(len(kids) == 2, "clone: the parent's two clones must succeed",
            *t.of(Sys, pid=parent, nr=SYS_CLONE), detail=f"children: {kids}")
    return kids


def first_pid(t: Any) -> int:
    """The scenario's first task."""
    found = t.of(Task, state="new", reason="scenario")
    if not found:
        t.fail("run: the scenario's first task must be created (task state=new reason=scenario)")
    return found[0].pid


def mallocs(t: Any, pid: int) -> list[Sys]:
    """pid's malloc syscalls (nr=1)."""
    return t.of(Sys, pid=pid, nr=SYS_MALLOC)


# --- pages --------------------------------------------------------------------

class Pages:
    """A replay of the page events: who owns which pool page at each point.

    `errors` lists (event, message) for events that contradict the replay
    (a page allocated twice, freed or moved by a task that did not own it).
    Snapshots are recomputed on demand (a run can hold ~2000 page events).
    """

    def __init__(self, t: Any) -> None:
        self.t = t
        self.errors: list[tuple[Event, str]] = []
        self.owner = self._replay(len(t.events), self.errors)

    def _replay(self, upto: int, errors: list | None = None) -> dict[int, int]:
        """Owners after the first `upto` events."""
        o: dict[int, int] = {}
        for ev in self.t.events[:upto]:
            if isinstance(ev, PAlloc):
                if ev.addr in o and errors is not None:
                    errors.append((ev, f"page {ev.addr:#x} given to pid {ev.pid} while "
                                       f"pid {o[ev.addr]} still owns it"))
                o[ev.addr] = ev.pid
            elif isinstance(ev, PFree):
                if o.get(ev.addr) != ev.pid and errors is not None:
                    errors.append((ev, f"pid {ev.pid} frees page {ev.addr:#x} owned by "
                                       f"{o.get(ev.addr, 'nobody')}"))
                o.pop(ev.addr, None)
            elif isinstance(ev, PMove):
                if o.get(ev.addr) != ev.from_ and errors is not None:
                    errors.append((ev, f"page {ev.addr:#x} moves from pid {ev.from_} "
                                       f"but is owned by {o.get(ev.addr, 'nobody')}"))
                o[ev.addr] = ev.to
        return o

    def at(self, ev: Event) -> dict[int, int]:
        """Owners (addr -> pid) right after ev."""
        return self._replay(ev.seq + 1)

    def before(self, ev: Event) -> dict[int, int]:
        """Owners right before ev."""
        return self._replay(ev.seq)

    def owned_by(self, pid: int, ev: Event, *, before: bool = True) -> list[int]:
        """Pages pid owns right before (or after) ev, ascending."""
        snap = self.before(ev) if before else self.at(ev)
        return sorted(a for a, p in snap.items() if p == pid)

    def final(self) -> dict[int, int]:
        """Owners at the end of the transcript."""
        return dict(self.owner)

    def in_pool(self, addr: int) -> bool:
        """Whether addr is a byte of the page pool."""
        b = self.t.boot
        return b.pool_base <= addr < b.pool_base + b.pool_pages * b.page_size


def fmt_events(evs: Iterable[Event], limit: int = 6) -> str:
    """A few raw marker lines, for a detail text."""
    evs = list(evs)
    text = "\n".join(e.raw for e in evs[:limit])
    return text + (f"\n... and {len(evs) - limit} more" if len(evs) > limit else "")


scenario_of = rule_scenario  #: the scenario a test judges (harness.rules.scenario_of)


#: The order scenarios are judged in, most basic first: a kernel bug shows
#: first where the least else is needed to see it (a register not restored
#: fails regs_preserved before it garbles clone_twice). Scenarios not listed
#: come after these, in file order.
SUITE_ORDER = ("invalid_syscall", "regs_preserved", "write_checks", "malloc_exhaustion",
               "clone_twice", "fairness", "write_tick", "exit_zombie", "clone_errors", "el0_faults", "demo")


def _suite_rank(item: pytest.Item) -> tuple[int, int]:
    """Where item goes: its scenario's place in SUITE_ORDER, and within a
    scenario test_root_rules first, then the scenario's own tests, then the
    invariants every run keeps."""
    name = scenario_of(item)
    rank = SUITE_ORDER.index(name) if name in SUITE_ORDER else len(SUITE_ORDER)
    if base_name(item) in (ROOT_TEST, EL0_ROOT_TEST):
        return rank, 0
    return rank, 2 if item.path.name == "test_invariants.py" else 1


@pytest.hookimpl(tryfirst=True)  # before xdist turns the groups into node ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Judge scenarios in SUITE_ORDER, each with its root rules first (a
    stable sort: file order within each part). Under xdist (--dist
    loadgroup), keep every test of one scenario on one worker: the run is
    cached per worker, so the scenario then boots once."""
    here = Path(__file__).parent
    mine = [i for i, item in enumerate(items) if item.path.parent == here]
    for i, item in zip(mine, sorted((items[i] for i in mine), key=_suite_rank)):
        items[i] = item
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        name = scenario_of(item)
        if name is not None:
            item.add_marker(pytest.mark.xdist_group(name))


def __getattr__(name: str) -> int:
    """kt.SYS_*, kt.NR_SYSCALLS, kt.E*: the numbers of kernel/include/uapi/syscall.h (harness.abi)."""
    try:
        return abi.NUMBERS[name]
    except KeyError:
        raise AttributeError(f"kt has no {name!r}") from None


_THIS = sys.modules[__name__]


@pytest.fixture(scope="session")
def kt() -> Any:
    """This module: the judges' shared helpers (see the module docstring)."""
    return _THIS
