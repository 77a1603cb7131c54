"""Judge of scenario invalid_syscall (tests/scenarios/invalid_syscall.c).

The task makes 14 raw svc calls with every register and NZCV filled from
the seed: 12 with unknown numbers (w8 >= NR_SYSCALLS, some with high bits set in x8)
and a write and a malloc whose x8 has high bits set, then a plain write.
"""
from __future__ import annotations

import pytest

from harness import abi
from harness.prng import MASK64

from harness.events import Out, PAlloc, PFree, PMove, Sys, Task

SCENARIO = "invalid_syscall"
#: every judge of this file: its route and root (harness/rules.py), an EL0 judge says its own;
#: project rules only: the lesson's kernel hangs a task that makes an unknown syscall (it
#: prints an error and never returns to it)
pytestmark = pytest.mark.rule(route="markers", needs=("test_root_rules",), sets=("project",))
CALLS = 14
WRITE_HI, MALLOC_HI = 11, 12
#: The order the calls are made in (invalid_syscall.c is_order): the w8 write and malloc first,
#: then w8 = 5 (the bound + 1) before w8 = 4 (the bound).
BOUND, PAST_BOUND = 0, 1  # the calls with w8 = 4 and w8 = 5
ORDER = (WRITE_HI, MALLOC_HI, PAST_BOUND, BOUND, *range(2, WRITE_HI), 13)
#: out[0] of u_regs_svc when the instruction after its svc never ran (kernel/user/uregs.S).
SKIPPED = 0x6b74736b69707065
HI = 1 << 32
ENOSYS = -abi.ENOSYS
NR = abi.NR_SYSCALLS  # the first unknown number (kernel/include/uapi/syscall.h)


@pytest.fixture
def t(run_scenario, kt, request):
    return kt.marker_run(run_scenario, SCENARIO, request)


def plan(seed, kt):
    """(numbers[i], regs_in[i] (x0..x30 draws), nzcv[i], text) as the scenario
    computes them (see is_numbers() in invalid_syscall.c)."""
    d = kt.draws(seed, 7 + 32 * CALLS)
    r = d[:7]
    nr = [NR, NR + 1, NR + 1 + r[0] % 996, NR + 1 + r[1] % 996, NR + 1 + r[2] % 996,
          (r[3] & 0xFFFFFFFF) | NR, 0xFFFFFFFF, 0x80000000,
          ((r[4] << 32) | HI | (NR + 3)) & MASK64,
          ((r[5] << 32) | HI | (NR + r[6] % (HI - NR))) & MASK64,
          MASK64,
          ((r[6] << 32) | HI | abi.SYS_WRITE) & MASK64,
          ((r[3] << 32) | HI | abi.SYS_MALLOC) & MASK64,
          HI | NR]
    regs_in, nzcv = [], []
    for i in range(CALLS):
        block = d[7 + 32 * i: 7 + 32 * (i + 1)]
        regs_in.append(block[:31])
        nzcv.append(kt.nzcv_of(block[31]))
    text = f"w8 is write {r[6]:#x}\n".encode()
    return nr, regs_in, nzcv, text


def invalid(i):
    return i not in (WRITE_HI, MALLOC_HI)


def the_sys(t, kt, pid, i, x8):
    """The sys marker of call i: the first with its whole x8 after the task's
    "call<i>" line (numbers drawn from the seed may repeat)."""
    lines = kt.facts_lines(t, pid, f"call{i}")
    after = t.after(lines[0].event) if lines else t.events
    found = [s for s in after if isinstance(s, Sys) and s.pid == pid and s.x8 == x8]
    if not found:
        t.fail("syscall: every svc must be reported by a sys marker, then return to the "
               "task", *(lines[0].event,) if lines else kt.last_events_of(t, pid, 1),
               detail=f"no sys with x8={x8:#x} (call {i})")
    return found[0]


def want_regs(t, kt, i, plan_):
    nr, regs_in, nzcv, _ = plan_
    want = {f"x{j}": regs_in[i][j] for j in range(1, 31)}
    want["x8"] = nr[i]
    want["nzcv"] = nzcv[i]
    return want


@pytest.mark.rule(weight=4)
def test_unknown_numbers_return_enosys(t, kt):
    pid = kt.first_pid(t)
    p = plan(t.seed, kt)
    for i in filter(invalid, range(CALLS)):
        s = the_sys(t, kt, pid, i, p[0][i])
        t.check(s.ret == ENOSYS, f"syscall: an unknown number (w8 >= {NR}, the bound "
                "included) must return -ENOSYS (-38)", s,
                detail=f"x8={s.x8:#x} (w8={s.x8 & 0xFFFFFFFF}) returned {s.ret}")
        r = kt.regs(t, pid, f"r{i}")
        t.check(kt.s64(r["x0"]) == ENOSYS, "syscall: the task must see -ENOSYS (-38) in x0 "
                "after an unknown number", r.events[0],
                detail=f"x0={kt.u64(r['x0']):#x}")


def test_no_handler_runs_for_unknown_numbers(t, kt):
    pid = kt.first_pid(t)
    p = plan(t.seed, kt)
    for i in filter(invalid, range(CALLS)):
        s = the_sys(t, kt, pid, i, p[0][i])
        start = kt.previous_of_pid(t, s, pid)
        acts = [e for e in kt.between(t, start, s)
                if isinstance(e, (Out, PAlloc, PFree, PMove, Task))]
        t.check(not acts, "syscall: no handler may run for an unknown number (-ENOSYS "
                "without out, page or task events)", *acts[:2], s,
                detail=f"x8={s.x8:#x}:\n{kt.fmt_events(acts)}")


def test_sys_marker_reports_w8(t, kt):
    pid = kt.first_pid(t)
    p = plan(t.seed, kt)
    for i in range(CALLS):
        s = the_sys(t, kt, pid, i, p[0][i])
        t.check(s.nr == s.x8 & 0xFFFFFFFF, "protocol: sys nr must be w8, the low 32 bits "
                "of x8", s)
        t.check(s.a0 == (p[1][i][0] if i != WRITE_HI else s.a0) and s.a1 == p[1][i][1]
                and s.a2 == p[1][i][2], "protocol: sys a0..a2 must be x0..x2 at entry", s)


@pytest.mark.rule(weight=2)
def test_unknown_numbers_change_no_other_register(t, kt):
    pid = kt.first_pid(t)
    p = plan(t.seed, kt)
    for i in filter(invalid, range(CALLS)):
        r = kt.regs(t, pid, f"r{i}")
        bad = kt.compare_regs(r, want_regs(t, kt, i, p))
        if kt.u64(r["sp"]) != kt.u64(r["sp0"]):
            bad.append(f"sp: expected {kt.u64(r['sp0']):#x}, got {kt.u64(r['sp']):#x}")
        t.check(not bad, "syscall: an unknown number must change no register but x0 "
                "(x1..x30, sp and NZCV kept)", r.events[0],
                detail=f"call {i}, x8={p[0][i]:#x}: " + "; ".join(bad))


def test_only_w8_counts_write(t, kt):
    pid = kt.first_pid(t)
    p = plan(t.seed, kt)
    text = p[3]
    s = the_sys(t, kt, pid, WRITE_HI, p[0][WRITE_HI])
    rule = ("syscall: only w8 names the call: x8 = (high bits << 32) | 0 must be write "
            "(the high 32 bits of x8 are ignored)")
    t.check(s.ret == len(text), rule, s, detail=f"ret={s.ret}, expected {len(text)}")
    outs = [e for e in kt.between(t, kt.previous_of_pid(t, s, pid), s) if isinstance(e, Out)]
    t.check(len(outs) == 1 and outs[0].data == text and outs[0].pid == pid, rule, s,
            *outs, detail=f"expected one out of {text!r}")
    r = kt.regs(t, pid, f"r{WRITE_HI}")
    bad = kt.compare_regs(r, want_regs(t, kt, WRITE_HI, p))
    t.check(r["x0"] == len(text) and not bad, "syscall: write must return the byte count "
            "in x0 and change no other register", r.events[0],
            detail=f"x0={kt.u64(r['x0']):#x}; " + "; ".join(bad))


def test_only_w8_counts_malloc(t, kt):
    pid = kt.first_pid(t)
    p = plan(t.seed, kt)
    s = the_sys(t, kt, pid, MALLOC_HI, p[0][MALLOC_HI])
    pallocs = [e for e in kt.between(t, kt.previous_of_pid(t, s, pid), s)
               if isinstance(e, PAlloc)]
    t.check(s.ret > 0 and s.ret % t.boot.page_size == 0 and len(pallocs) == 1
            and pallocs[0].addr == s.ret,
            "syscall: only w8 names the call: x8 = (high bits << 32) | 1 must be malloc",
            s, *pallocs, detail=f"ret={s.ret}")
    r = kt.regs(t, pid, f"r{MALLOC_HI}")
    bad = kt.compare_regs(r, want_regs(t, kt, MALLOC_HI, p))
    t.check(kt.u64(r["x0"]) == s.ret and not bad, "syscall: malloc must return the page "
            "in x0 and change no other register", r.events[0],
            detail=f"x0={kt.u64(r['x0']):#x}; " + "; ".join(bad))


def test_task_goes_on(t, kt):
    pid = kt.first_pid(t)
    text = b"plain write after the invalid calls\n"
    outs = [o for o in t.of(Out, pid=pid) if o.data == text]
    t.check(len(outs) == 1, "syscall: after unknown numbers the task must go on and its "
            "next valid call (write) must work", *kt.last_events_of(t, pid, 2))
    after = kt.fact(t, pid, "after", "wrote")
    t.check(after["wrote"] == len(text), "write: must return the number of bytes written",
            after.events[0], detail=f"returned {after['wrote']}")



# --- judged from EL0 facts (--submission: a kernel that emits no markers) -----
# The task prints "call<i> x8=.." before each svc and its registers ("r<i>")
# after it; a call whose "r<i>" never comes never returned.

AFTER_TEXT = b"plain write after the invalid calls\n"


@pytest.fixture
def u(run_el0, kt):
    return run_el0(SCENARIO)


def el0_dump(u, kt, i):
    """The registers after call i, or None if they never came."""
    got = kt.merged(kt.tagged(u, f"r{i}", 1))
    return got if all(r in got for r in kt.REG_NAMES) else None


@pytest.mark.rule(route="el0", sets=("project", "lesson"), needs=(), weight=4)
def test_el0_program_enters_on_its_own_stack(u, kt):
    """Root rule of every EL0 run (both rule sets): the first task enters
    EL0 with a usable sp on a fresh page (kernel/user/kt/el0.c checks it
    before it pushes anything, and reports from a stack of its own)."""
    kt.fail_with(u, kt.el0_entry_problem(u))


@pytest.mark.rule(route="el0", sets=("project", "lesson"),
                  needs=("test_el0_program_enters_on_its_own_stack",), weight=2)
def test_el0_calls_return_after_their_svc(u, kt):
    """Root rule of the call results (both rule sets): a call returns to the
    instruction right after its svc; u_regs_svc's next instruction stores
    x0, so when the kernel returns past it out[0] keeps SKIPPED."""
    p = plan(u.seed, kt)
    for i in ORDER:
        got = el0_dump(u, kt, i)
        if got is None:
            continue  # test_el0_every_call_returns's rule
        u.check(kt.u64(got["x0"]) != SKIPPED, "syscall: the call must return to the instruction "
                "right after its svc (the saved ELR, unchanged)", kt.first_tagged(u, f"r{i}", 1).event,
                detail=f"call {i} (x8={p[0][i]:#x}): the task's next instruction (storing x0) never "
                       f"ran: the kernel returned past it")


@pytest.mark.rule(route="el0", sets=("project", "lesson"),
                  needs=("test_el0_program_enters_on_its_own_stack",), weight=2)
def test_el0_calls_keep_registers(u, kt):
    """Root rule of the call results (both rule sets): every call gives back
    x1..x30, sp and NZCV as they were (the program itself runs on them)."""
    p = plan(u.seed, kt)
    for i in ORDER:
        got = el0_dump(u, kt, i)
        if got is None:
            continue  # test_el0_every_call_returns's rule
        bad = kt.compare_regs(kt.Fact(f"r{i}", got), want_regs(u, kt, i, p))
        if kt.u64(got["sp"]) != kt.u64(got["sp0"]):
            bad.append(f"sp: expected {kt.u64(got['sp0']):#x}, got {kt.u64(got['sp']):#x}")
        u.check(not bad, "syscall: a call must give back every register but x0 (x1..x30, sp and "
                "NZCV) as they were at the svc", kt.first_tagged(u, f"r{i}", 1).event,
                detail=f"the first call made, {i} (x8={p[0][i]:#x}): " + "; ".join(bad)
                if i == ORDER[0] else f"call {i} (x8={p[0][i]:#x}): " + "; ".join(bad))


@pytest.mark.rule(route="el0", needs=(), weight=2)
def test_el0_the_bound_is_unknown_too(u, kt):
    """w8 = 4, the bound, returns -ENOSYS like w8 = 5 (made just before it):
    a bound check that lets 4 through indexes past the 4-entry table."""
    p = plan(u.seed, kt)
    past = el0_dump(u, kt, PAST_BOUND)
    kt.need(past is not None and kt.s64(past["x0"]) == ENOSYS,
            f"w8={p[0][PAST_BOUND]:#x} to return -ENOSYS (test_el0_unknown_numbers_return_enosys)")
    call = kt.first_tagged(u, f"call{BOUND}", 1)
    cite, where = kt.where_stopped(u, 1)
    got = el0_dump(u, kt, BOUND)
    u.check(got is not None, f"syscall: w8 = {p[0][BOUND]} (the number of calls, the bound itself) "
            "is unknown too: it must return -ENOSYS, never index the table past its end",
            *([call.event] if call else cite),
            detail=f"w8={p[0][PAST_BOUND]:#x} returned -ENOSYS; then w8={p[0][BOUND]:#x} never "
                   f"returned to the task; {where}")


@pytest.mark.rule(route="el0", needs=(), weight=4)
def test_el0_every_call_returns(u, kt):
    """Root rule: the task gets control back after each svc."""
    p = plan(u.seed, kt)
    for n, i in enumerate(ORDER):
        call = kt.first_tagged(u, f"call{i}", 1)
        cite, where = kt.where_stopped(u, 1)
        kt.need(call or n > 0, "the task's first call line")
        u.check(call is not None and el0_dump(u, kt, i) is not None,
                f"invalid syscall: the task must get control back after svc with "
                f"w8={p[0][i] & 0xFFFFFFFF:#x} (an unknown number must return, never hang the task)"
                if invalid(i) else "syscall: the task must get control back after every svc",
                *([call.event] if call else cite),
                detail=f"call {i} (x8={p[0][i]:#x}) never returned to the task; {where}")


@pytest.mark.rule(route="el0", sets=("project", "lesson"), needs=(), weight=4)
def test_el0_results_come_back_in_x0(u, kt):
    """Root rule of the call results (both rule sets): what the kernel
    returns replaces the caller's x0. A kernel that never stores it gives
    every call back the x0 it was made with (a malloc "returns" its draw)."""
    p = plan(u.seed, kt)
    got = el0_dump(u, kt, MALLOC_HI)
    kt.need(got, f"call {MALLOC_HI}'s return (test_el0_every_call_returns)")
    sent = kt.u64(p[1][MALLOC_HI][0])
    u.check(kt.u64(got["x0"]) != sent, "syscall: the result must come back in x0 (the kernel "
            "must store it over the caller's saved x0)", kt.first_tagged(u, f"r{MALLOC_HI}", 1).event,
            detail=f"malloc (x8={p[0][MALLOC_HI]:#x}) came back with x0={sent:#x}, the value the "
                   f"task passed in")


@pytest.mark.rule(route="el0", needs=("test_el0_every_call_returns",), weight=4)
def test_el0_unknown_numbers_return_enosys(u, kt):
    p = plan(u.seed, kt)
    for i in filter(invalid, range(CALLS)):
        got = el0_dump(u, kt, i)
        u.check(kt.s64(got["x0"]) == ENOSYS, f"syscall: an unknown number (w8 >= {NR}, the bound "
                "included) must return -ENOSYS (-38)", kt.first_tagged(u, f"r{i}", 1).event,
                detail=f"x8={p[0][i]:#x} (w8={p[0][i] & 0xFFFFFFFF}) gave x0={kt.u64(got['x0']):#x}")


@pytest.mark.rule(route="el0", needs=("test_el0_every_call_returns",), weight=2)
def test_el0_unknown_numbers_change_no_other_register(u, kt):
    p = plan(u.seed, kt)
    for i in filter(invalid, range(CALLS)):
        got = el0_dump(u, kt, i)
        bad = kt.compare_regs(kt.Fact(f"r{i}", got), want_regs(u, kt, i, p))
        if kt.u64(got["sp"]) != kt.u64(got["sp0"]):
            bad.append(f"sp: expected {kt.u64(got['sp0']):#x}, got {kt.u64(got['sp']):#x}")
        u.check(not bad, "syscall: an unknown number must change no register but x0 "
                "(x1..x30, sp and NZCV kept)", kt.first_tagged(u, f"r{i}", 1).event,
                detail=f"call {i}, x8={p[0][i]:#x}: " + "; ".join(bad))


@pytest.mark.rule(route="el0", needs=("test_el0_every_call_returns",))
def test_el0_only_w8_counts(u, kt):
    p = plan(u.seed, kt)
    for i, what in ((WRITE_HI, "write"), (MALLOC_HI, "malloc")):
        got = el0_dump(u, kt, i)
        x0 = kt.u64(got["x0"])
        if what == "write":  # the text must have gone out (raw: the kernel's own write)
            text = p[3].decode().rstrip("\n")
            ok = any(n.text == text for n in u.noise)
        else:
            ok = x0 % kt.PAGE_SIZE == 0 and 0 < x0 < MASK64
        bad = kt.compare_regs(kt.Fact(f"r{i}", got), want_regs(u, kt, i, p))
        u.check(ok and not bad, f"syscall: only w8 names the call: x8 = (high bits << 32) | "
                f"{i - WRITE_HI} must be {what}, and change no register but x0",
                kt.first_tagged(u, f"r{i}", 1).event, detail=f"x0={x0:#x}; " + "; ".join(bad))
        if what == "write":
            u.check(x0 == len(p[3]), "write: must return the number of bytes written",
                    kt.first_tagged(u, f"r{i}", 1).event, detail=f"x0={x0:#x}, expected {len(p[3])}")


@pytest.mark.rule(route="el0", sets=("lesson",), needs=(), weight=2)
def test_el0_only_w8_names_the_call(u, kt):
    """The lesson's rule too (its el0_svc does `uxtw scno, w8`): x8 with high
    bits set and w8 = 0 is write, w8 = 1 malloc. Under the project rule set
    test_el0_only_w8_counts judges this with every register."""
    p = plan(u.seed, kt)
    for i, what in ((WRITE_HI, "write"), (MALLOC_HI, "malloc")):
        got = el0_dump(u, kt, i)
        call = kt.first_tagged(u, f"call{i}", 1)
        cite, where = kt.where_stopped(u, 1)
        text = p[3].decode().rstrip("\n")
        if what == "write":
            ok = any(n.text == text for n in u.noise)
        else:
            ok = got is not None and kt.u64(got["x0"]) % kt.PAGE_SIZE == 0 and 0 < kt.u64(got["x0"]) < MASK64
        u.check(got is not None and ok, f"syscall: only w8 names the call: x8 = (high bits << 32) "
                f"| {i - WRITE_HI} must be {what}",
                *([kt.first_tagged(u, f"r{i}", 1).event] if got else [call.event] if call else cite),
                detail=(f"x8={p[0][i]:#x}: " + (f"x0={kt.u64(got['x0']):#x}" if got else
                                                 f"the call never returned; {where}")
                        + (f"; {text!r} was not printed" if what == "write" and not ok else "")))


@pytest.mark.rule(route="el0", needs=("test_el0_every_call_returns",))
def test_el0_task_goes_on(u, kt):
    after = kt.first_tagged(u, "after", 1)
    cite, where = kt.where_stopped(u, 1)
    u.check(after is not None, "syscall: after unknown numbers the task must go on",
            *cite, detail=where)
    u.check(after["wrote"] == len(AFTER_TEXT), "write: must return the number of bytes written",
            after.event, detail=f"wrote={after['wrote']}")
