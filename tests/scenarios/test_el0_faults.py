"""Judge of scenario el0_faults (tests/scenarios/el0_faults.c, faults.S).

Seven children each do one thing EL0 may not do; each mallocs CHILD_PAGES
pages and prints where it will fault before doing it. A CPU-bound sibling
and the parent go on; the parent then mallocs and reports which of the
children's malloc'd pages it got back.
"""
from __future__ import annotations

import pytest

from harness.events import Fault, PFree

SCENARIO = "el0_faults"
#: every judge of this file: its route and root (harness/rules.py), an EL0 judge says its own;
#: project rules only: the lesson's kernel hangs on any exception from EL0 but svc
pytestmark = pytest.mark.rule(route="markers", needs=("test_root_rules",), sets=("project",))
KINDS = ["sysreg", "daif", "udf", "brk", "load", "sp", "pc"]
CHILD_PAGES = 2  # EF_CHILD_PAGES: each child's malloc'd pages
BACK_TRIES = 2 * len(KINDS) * (CHILD_PAGES + 1)  # EF_BACK_TRIES
# Exception classes (ESR_EL1.EC) each kind may raise, and what it means.
EC = {
    "sysreg": ({0x00, 0x18}, "a system-register access from EL0 (unknown reason 0x00 or "
               "trapped MSR/MRS 0x18)"),
    "daif": ({0x00, 0x18}, "msr daifset at EL0 with SCTLR_EL1.UMA=0 (0x18 or 0x00)"),
    "udf": ({0x00}, "an undefined instruction (unknown reason, 0x00)"),
    "brk": ({0x3C}, "a BRK instruction (0x3c)"),
    "load": ({0x24}, "a misaligned load (data abort from a lower EL, 0x24)"),
    "sp": ({0x26}, "a load through a misaligned sp (SP alignment fault, 0x26)"),
    "pc": ({0x22}, "a branch to a misaligned address (PC alignment fault, 0x22)"),
}
# The sp check needs SCTLR_EL1.SA0, which QEMU (TCG) does not implement.
MAY_SURVIVE = {"sp"}


@pytest.fixture
def t(run_scenario, kt, request):
    return kt.marker_run(run_scenario, SCENARIO, request)


def children(t, kt):
    """{kind: (pid, the child's own "f<k>" line)} and the sibling's pid."""
    parent = kt.first_pid(t)
    kinds = {}
    for line in kt.facts_lines(t, parent, "clone"):
        t.check(line["ret"] > 0, "clone: the parent's clones must succeed", line.event)
        kinds[KINDS[line["k"]]] = line["ret"]
    t.check(sorted(kinds) == sorted(KINDS), "the scenario's parent must clone one child of "
            "each kind", *kt.last_events_of(t, parent, 1), detail=f"got {sorted(kinds)}")
    sib = kt.fact(t, parent, "sibling", "ret")["ret"]
    out = {}
    for kind, pid in kinds.items():
        k = KINDS.index(kind)
        out[kind] = (pid, kt.fact(t, pid, f"f{k}", "pc", "addr", "page"))
    return out, sib


def fault_of(t, pid):
    found = t.of(Fault, pid=pid)
    return found[0] if found else None


def faulted(t, kt):
    """(kind, pid, what the child said, its fault) for each child that
    faulted. A child that must fault and was not reported breaks the rule
    here; one that may survive (see MAY_SURVIVE) is left out."""
    kids, _ = children(t, kt)
    for kind, (pid, said) in kids.items():
        f = fault_of(t, pid)
        if f is None and kind in MAY_SURVIVE:
            continue
        t.check(f is not None, f"fault: {EC[kind][1]} must be reported by a fault marker and "
                "kill the task", said.events[0], *kt.last_events_of(t, pid, 1))
        yield kind, pid, said, f


def test_each_fault_is_reported(t, kt):
    for kind, pid, said, f in faulted(t, kt):
        ecs, what = EC[kind]
        t.check(f.esr != 0 and f.ec == f.esr >> 26, "protocol: fault ec must be ESR_EL1's "
                "exception class (esr >> 26) and esr nonzero", f)
        t.check(f.ec in ecs, f"fault: {what}: wrong exception class", f,
                detail=f"ec={f.ec:#x}, expected {' or '.join(hex(e) for e in sorted(ecs))}")
        want_elr = said["addr"] if kind == "pc" else said["pc"]
        t.check(f.elr == want_elr, "fault: ELR must be the address of the faulting "
                "instruction (the misaligned target for a PC alignment fault)", f,
                said.events[0], detail=f"elr={f.elr:#x}, expected {want_elr:#x}")
        if kind in ("load", "pc"):
            t.check(f.far == said["addr"], "fault: FAR must be the faulting address", f,
                    said.events[0], detail=f"far={f.far:#x}, expected {said['addr']:#x}")
        if kind == "load":
            off = 1 + kt.draws(t.seed, 7)[6] % 7
            t.check(said["addr"] % 8 == off, "scenario: the load's misalignment must come "
                    "from the seed", said.events[0])
            t.check(f.esr & 0x3F == 0x21, "fault: a misaligned load is an alignment fault "
                    "(ESR DFSC 0x21)", f)
        if kind == "brk":
            t.check(f.esr & 0xFFFF == 0x2A, "fault: a BRK's ESR carries its immediate", f)


def test_faulting_task_is_killed(t, kt):
    # That the zombie is never scheduled again is test_invariants' rule.
    for kind, pid, said, f in faulted(t, kt):
        survived = b"survived" in t.output(pid)
        z = kt.zombie_of(t, pid)
        t.check(not survived and z is not None and z.reason == "fault" and z.seq > f.seq,
                "fault: a faulting EL0 task must be killed (task state=zombie reason=fault "
                "after the fault marker), never resumed", f, *([z] if z else []),
                detail=f"{kind}: " + ("it went on after the fault" if survived else ""))


def test_sp_alignment_if_checked(t, kt):
    kids, _ = children(t, kt)
    pid, said = kids["sp"]
    if fault_of(t, pid) is None:
        pytest.skip("a load through a misaligned sp did not fault: QEMU does not implement "
                    "SCTLR_EL1.SA0 stack alignment checks (real hardware does)")


def test_fault_frees_pages(t, kt):
    pages = kt.Pages(t)
    for kind, pid, said, f in faulted(t, kt):
        z = kt.zombie_of(t, pid)
        owned = pages.owned_by(pid, f)
        freed = [e.addr for e in kt.between(t, f, z) if isinstance(e, PFree) and e.pid == pid]
        t.check(said["page"] in owned and len(owned) == 1 + CHILD_PAGES, "scenario: the child "
                f"owns its stack and {CHILD_PAGES} malloc'd pages when it faults", f,
                detail=f"owned {[hex(p) for p in owned]}")
        t.check(freed == owned, "fault: a killed task's pages must all be freed, as exit "
                "does (pfree of each, by ascending address, between the fault and task "
                "zombie)", f, *([z] if z else []),
                detail=f"owned {[hex(p) for p in owned]}, freed {[hex(p) for p in freed]}")


def test_others_go_on(t, kt):
    kids, sib = children(t, kt)
    parent = kt.first_pid(t)
    faults = t.of(Fault)
    t.check(bool(faults), "fault: EL0 faults must be reported", t.end)
    last = faults[-1]
    word = kt.draws(t.seed, 8)[7]  # after 6 shuffle draws and the misalignment
    for pid, tag in ((parent, "parent"), (sib, "sibling")):
        said = kt.fact(t, pid, tag, "after")
        t.check(said.events[0].seq > last.seq, "fault: the kernel and the other tasks must "
                "go on after an EL0 fault (they write after it)", last, said.events[0],
                detail=f"pid {pid}")
        z = kt.zombie_of(t, pid)
        t.check(z is not None and z.reason == "exit", "exit: the tasks that did not fault "
                "must end with reason=exit", *kt.last_events_of(t, pid, 1))
    t.check(kt.fact(t, sib, "sibling", "word")["word"] == word, "the sibling must run its own "
            "code", kt.fact(t, sib, "sibling", "word").events[0])
    panics = [f for f in faults if f.pid not in [p for p, _ in kids.values()]]
    t.check(not panics, "fault: only the tasks that faulted may be killed", *panics[:1])



# --- judged from EL0 facts (--submission: a kernel that emits no markers) -----
# Each child prints "f<k> kind=.." and a `dying` marker just before its fault.
# A misaligned load faults only if the kernel turns alignment checking on
# (SCTLR_EL1.A, as this project's does); a lesson kernel leaves it off.
MAY_SURVIVE_EL0 = MAY_SURVIVE | {"load"}

@pytest.fixture
def u(run_el0, kt, request):
    return kt.el0_run(run_el0, SCENARIO, request)


@pytest.mark.rule(route="el0", needs=("test_el0_clones_work",))
def test_el0_others_go_on(u, kt):
    """Root rule: after the faults, the parent and the sibling still run."""
    word = kt.draws(u.seed, 8)[7]
    for tag, tid in (("parent", 1), ("sibling", 2)):
        lines = [line for line in kt.tagged(u, tag, tid) if "after" in line.values]
        cite, where = kt.where_stopped(u, tid)
        u.check(bool(lines), "fault: a fault at EL0 must kill only the task that caused it: "
                "the kernel and the other tasks go on", *cite,
                detail=f"the {tag} (task {tid}) never reported that it went on after the "
                       f"children's faults; {where}")
    sib = [line for line in kt.tagged(u, "sibling", 2) if "after" in line.values][0]
    u.check(sib["word"] == word, "fault: the other tasks' memory must be untouched",
            sib.event, detail=f"word={sib['word']:#x}, the seed gives {word:#x}")


@pytest.mark.rule(route="el0", needs=("test_el0_clones_work",))
def test_el0_faulting_tasks_end(u, kt):
    for k, kind in enumerate(KINDS):
        said = kt.first_tagged(u, f"f{k}")
        kt.need(said, f"child {kind}'s report before its fault")
        survived = [line for line in kt.tagged(u, "survived") if line.get("k") == k]
        if kind in MAY_SURVIVE_EL0:
            continue
        u.check(not survived, f"fault: {EC[kind][1]} at EL0 must end the task (it must not "
                "go on after the faulting instruction)", said.event, *[s.event for s in survived])


@pytest.mark.rule(route="el0", needs=("test_el0_others_go_on",))
def test_el0_killed_tasks_mallocd_pages_come_back(u, kt):
    """Not only the stack: every page a child malloc'd before its fault is
    free again once the fault killed it (the parent mallocs up to
    BACK_TRIES times after the faults; its "back" mask has bit
    k * CHILD_PAGES + i for page i of kind k). A child that went on past
    its fault (MAY_SURVIVE_EL0) is not judged here."""
    parent = [line for line in kt.tagged(u, "parent", 1) if "back" in line.values]
    kt.need(parent, "the parent's report of the pages it got back (its 'parent after=' line)")
    back = kt.u64(parent[0]["back"])
    survived = {line.get("k") for line in kt.tagged(u, "survived")}
    missing = []
    for k, kind in enumerate(KINDS):
        said = kt.first_tagged(u, f"f{k}")
        kt.need(said, f"child {kind}'s report before its fault")
        if k in survived:
            continue
        got = sum(back >> (k * CHILD_PAGES + i) & 1 for i in range(CHILD_PAGES))
        if got != CHILD_PAGES:
            missing.append(f"{kind} (page={said['page']:#x}): {got} of {CHILD_PAGES} back")
    u.check(not missing, "fault: every page a killed task malloc'd goes back to the pool, "
            "not only its stack, as exit does: the next mallocs return them again",
            parent[0].event, detail=f"the killed children's malloc'd pages the parent got back "
            f"within {BACK_TRIES} mallocs after the faults: {'; '.join(missing)}")
