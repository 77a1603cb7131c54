"""Judge of scenario write_checks (tests/scenarios/write_checks.c).

After each test call the task prints "w_<case> addr=.. ret=..": the call's
own sys marker is the task's last write before that line.
"""
from __future__ import annotations

import pytest

from harness import abi

from harness.events import AllExited, End, Out, Sys

SCENARIO = "write_checks"
#: every judge of this file: its route and root (harness/rules.py); an EL0 judge says its own
pytestmark = pytest.mark.rule(route="markers", needs=("test_root_rules",))
EFAULT, EINVAL = -abi.EFAULT, -abi.EINVAL
MARKER = b"\n@KT 99 end count=99 reason=all_exited\n"
FORMAT = b"%s%n%x%d%p%%\n"
ALL_BYTES = bytes(range(1, 256))
NOT_USER = ["null", "kernel", "past_ram", "wrap", "free_page", "off_page"]
TOO_LONG = ["cap_first", "long", "max_plus1"]
TAIL = b"last user byte\n"  # write_checks.c WC_TAIL_TEXT: its NUL is user_end - 1
PAST_USER = ["user_end"]  # starts at user_end: -EFAULT
HIGH_TEXT = b"high bits\n"  # write_checks.c wc_high
OTHER_TEXT = b"on another task's page\n"  # write_checks.c WC_OTHER_TEXT


@pytest.fixture
def t(run_scenario, kt, request):
    return kt.marker_run(run_scenario, SCENARIO, request)


def seed_values(seed, kt):
    """The seed's strings s0..s3 and off_len, fit_len, fill, parent and child text."""
    from harness.prng import SplitMix64
    g = SplitMix64(seed)
    strings = []
    for i, (base, span) in enumerate(((0, 1), (1, 50), (50, 200), (200, 600))):
        n = base + g.next() % span
        if i == 0:
            n = 0
        strings.append(bytes(0x20 + g.next() % 95 for _ in range(n)))
    off_len = 1 + g.next() % 1000
    fit_len = 1 + g.next() % 1000
    fill = ord("a") + g.next() % 26
    parent = f"parent says {g.next():#x}\n".encode()
    child = f"child says {g.next():#x}\n".encode()
    high = g.next() >> 32 | 1
    return dict(strings=strings, off_len=off_len, fit_len=fit_len, fill=fill,
                parent=parent, child=child, high=high)


class Call:
    """One test call: the result line the task printed, the call's sys
    marker and the out markers the call produced."""

    def __init__(self, t, kt, pid, case):
        lines = kt.facts_lines(t, pid, f"w_{case}")
        if not lines:
            t.fail(f"the scenario's task must reach its '{case}' write and report it",
                   *kt.last_events_of(t, pid, 1), detail=f"pid {pid} printed no w_{case} line")
        self.line = lines[0]
        self.user_ret = self.line["ret"]
        self.addr = self.line["addr"]
        before = [e for e in t.before(self.line.event) if isinstance(e, Sys) and e.pid == pid]
        self.sys = before[-1] if before else None
        start = kt.previous_of_pid(t, self.sys, pid) if self.sys else None
        self.outs = [e for e in kt.between(t, start, self.sys)
                     if isinstance(e, Out)] if self.sys else []
        t.check(self.sys is not None and self.sys.nr == kt.SYS_WRITE
                and self.sys.a0 == kt.u64(self.addr),
                "syscall: every write must be reported by its sys marker (nr=0, a0=the "
                "string)", self.line.event, *([self.sys] if self.sys else []))

    def data(self):
        return b"".join(o.data for o in self.outs)


def test_byte_count(t, kt):
    pid = kt.first_pid(t)
    v = seed_values(t.seed, kt)
    for i, s in enumerate(v["strings"]):
        c = Call(t, kt, pid, f"s{i}")
        t.check(c.sys.ret == len(s) and c.user_ret == len(s),
                "write: must return the number of bytes written (the terminator not "
                "counted; 0 for an empty string)", c.sys, c.line.event,
                detail=f"string of {len(s)} bytes: kernel ret={c.sys.ret}, task saw {c.user_ret}")
        t.check(c.data() == s, "write: the out marker must carry exactly the string's bytes",
                c.sys, *c.outs, detail=f"expected {s!r}")


def test_not_user_memory_is_efault(t, kt):
    pid = kt.first_pid(t)
    for case in NOT_USER:
        c = Call(t, kt, pid, case)
        t.check(c.sys.ret == EFAULT and c.user_ret == EFAULT,
                "write: a string that is not entirely in user memory must get -EFAULT (-14)",
                c.sys, c.line.event, detail=f"case {case}, s={kt.u64(c.addr):#x}: "
                f"kernel ret={c.sys.ret}, task saw {c.user_ret}")


def test_free_page_really_was_free(t, kt):
    pid = kt.first_pid(t)
    pages = kt.Pages(t)
    p = kt.fact(t, pid, "page", "p")["p"]
    for case in ("free_page", "off_page"):
        c = Call(t, kt, pid, case)
        t.check(p + t.boot.page_size not in pages.before(c.sys) and
                pages.before(c.sys).get(p) == pid,
                "malloc: the lowest free page must be taken (the page after P must still be "
                "free here)", c.sys, detail=f"P={p:#x}")


def test_too_long_is_einval(t, kt):
    pid = kt.first_pid(t)
    for case in TOO_LONG:
        c = Call(t, kt, pid, case)
        t.check(c.sys.ret == EINVAL and c.user_ret == EINVAL,
                "write: a string with no terminator within write_max + 1 bytes must get "
                "-EINVAL (-22), even if it would leave user memory later", c.sys,
                detail=f"case {case}: kernel ret={c.sys.ret}, task saw {c.user_ret}")


def test_failed_writes_write_nothing(t, kt):
    pid = kt.first_pid(t)
    for case in NOT_USER + PAST_USER + TOO_LONG:
        c = Call(t, kt, pid, case)  # one that did not fail is its own test's rule
        t.check(c.sys.ret >= 0 or not c.outs, "write: a failing write must write nothing (no out "
                "marker)", *c.outs, c.sys, detail=f"case {case}")


def test_write_max_exactly(t, kt):
    pid = kt.first_pid(t)
    v = seed_values(t.seed, kt)
    n = t.boot.write_max
    c = Call(t, kt, pid, "max")
    want = 1024 if 1024 <= n else EINVAL
    t.check(c.sys.ret == want, f"write: a string of exactly write_max ({n}) bytes must be "
            "written", c.sys, detail=f"ret={c.sys.ret}")
    if want > 0:
        t.check(c.data() == bytes([v["fill"]]) * 1024, "write: the out marker must carry "
                "exactly the string's bytes", c.sys, *c.outs[:1])


def test_strings_at_page_edges(t, kt):
    pid = kt.first_pid(t)
    v = seed_values(t.seed, kt)
    fit = Call(t, kt, pid, "fit")
    t.check(fit.sys.ret == v["fit_len"] and fit.data() == bytes([v["fill"]]) * v["fit_len"],
            "write: a string whose terminator is the last byte of an owned page is user "
            "memory and must be written", fit.sys, *fit.outs[:1],
            detail=f"{v['fit_len']} bytes, ret={fit.sys.ret}")
    p = kt.fact(t, pid, "page", "p", "q")
    t.check(p["q"] == p["p"] + t.boot.page_size, "malloc: the lowest free page must be "
            "taken", p.events[-1])
    cross = Call(t, kt, pid, "cross")
    t.check(cross.sys.ret == 500 and cross.data() == bytes([v["fill"]]) * 500,
            "write: a string crossing from one owned page into the next owned page is user "
            "memory and must be written", cross.sys, detail=f"ret={cross.sys.ret}")


def test_user_section_edges(t, kt):
    """write at the first byte past and the last byte before the user section."""
    pid = kt.first_pid(t)
    last, past = Call(t, kt, pid, "user_last"), Call(t, kt, pid, "user_end")
    end = t.boot.user_end
    if kt.u64(last.addr) + len(TAIL) + 1 != end or kt.u64(past.addr) != end:
        t.fail("scenario write_checks: the tail string's NUL must be the user section's last "
               "byte (kernel/linker.ld .user_tail), so its end is user_end", last.line.event,
               past.line.event, detail=f"tail at {kt.u64(last.addr):#x}, past it "
               f"{kt.u64(past.addr):#x}, boot user_end={end:#x}")
    t.check(last.sys.ret == len(TAIL) and last.user_ret == len(TAIL) and last.data() == TAIL,
            "write: a string whose terminator is the last byte of the user section "
            "(user_end - 1) is user memory and must be written", last.sys, *last.outs[:1],
            detail=f"s={kt.u64(last.addr):#x}: kernel ret={last.sys.ret}, task saw "
            f"{last.user_ret}, wrote {last.data()!r}")
    t.check(past.sys.ret == EFAULT and past.user_ret == EFAULT,
            "write: user_end, the first byte past the user section, is not user memory: a "
            "string there must get -EFAULT (-14)", past.sys, past.line.event,
            detail=f"s=user_end={end:#x}: kernel ret={past.sys.ret}, task saw {past.user_ret}")


def test_bytes_travel_unchanged(t, kt):
    pid = kt.first_pid(t)
    for case, want in (("marker", MARKER), ("all_bytes", ALL_BYTES), ("format", FORMAT)):
        c = Call(t, kt, pid, case)
        t.check(c.sys.ret == len(want) and c.data() == want,
                "write: bytes must be copied as they are (never a format string, every byte "
                "value escaped in the out marker)", c.sys, *c.outs,
                detail=f"case {case}: expected {want!r}, got {c.data()!r}")
    t.check(len(t.of(End)) == 1 and len(t.of(AllExited)) == 1,
            "write: user bytes that look like a marker must stay user output", t.end)


def test_output_goes_to_the_writer(t, kt):
    pid = kt.first_pid(t)
    v = seed_values(t.seed, kt)
    kids = kt.children_of(t, pid)
    t.check(len(kids) == 1, "clone: the parent's clone must succeed",
            *t.of(Sys, pid=pid, nr=kt.SYS_CLONE))
    child = kids[0]
    new = kt.new_of(t, child)
    mine, theirs = t.output(pid), t.output(child)
    t.check(v["parent"] in mine and v["parent"] not in theirs,
            "write: output must be attributed to the task that wrote it (the parent's text)",
            *t.of(Out, pid=pid)[-2:])
    t.check(v["child"] in theirs and v["child"] not in mine and MARKER in theirs,
            "write: output must be attributed to the task that wrote it (the child's text)",
            *t.of(Out, pid=child)[:2], new)
    early = [o for o in t.of(Out, pid=child) if o.seq < new.seq]
    t.check(not early, "causality: a child's output must come after its task new", *early[:1])
    c = Call(t, kt, child, "child_text")
    t.check(c.sys.ret == len(v["child"]), "write: must return the number of bytes written",
            c.sys)


@pytest.mark.rule(weight=2)
def test_high_bits_are_not_user_memory(t, kt):
    """A pointer whose low 32 bits are a user string but whose high 32 bits
    are not 0 is not user memory: the whole 64-bit pointer is checked."""
    pid = kt.first_pid(t)
    v = seed_values(t.seed, kt)
    c = Call(t, kt, pid, "high_bits")
    low = kt.u64(c.addr) & 0xffffffff
    if kt.u64(c.addr) >> 32 != v["high"]:
        t.fail("scenario write_checks: the high_bits pointer must carry the seed's high 32 bits",
               c.line.event, detail=f"s={kt.u64(c.addr):#x}, expected high bits {v['high']:#x}")
    t.check(c.sys.ret == EFAULT and c.user_ret == EFAULT and not c.outs,
            "write: a pointer whose high 32 bits are not 0 is not user memory, even when its low "
            "32 bits are a user string: it must get -EFAULT (-14) and write nothing",
            c.sys, *c.outs[:1], c.line.event,
            detail=f"s={kt.u64(c.addr):#x} (low 32 bits {low:#x}: the string {HIGH_TEXT!r}): "
            f"kernel ret={c.sys.ret}, task saw {c.user_ret}, wrote {c.data()!r}")


@pytest.mark.rule(weight=2)
def test_another_live_tasks_page_is_user_memory(t, kt):
    """A string on a pool page that another live task owns is user memory
    (docs/syscalls.md: any task's page, not only the caller's)."""
    parent = kt.first_pid(t)
    kids = kt.children_of(t, parent)
    t.check(len(kids) == 1, "clone: the parent's clone must succeed",
            *t.of(Sys, pid=parent, nr=kt.SYS_CLONE))
    c = Call(t, kt, kids[0], "child_other")
    page = kt.u64(c.addr) & ~(t.boot.page_size - 1)
    owner = kt.Pages(t).before(c.sys).get(page)
    zombie = kt.zombie_of(t, parent)
    if owner != parent or (zombie is not None and zombie.seq < c.sys.seq):
        t.fail("scenario write_checks: the child's child_other string must lie on a page its "
               "live parent owns", c.sys, *([zombie] if zombie else []),
               detail=f"s={kt.u64(c.addr):#x}: page {page:#x} owned by {owner}, parent {parent}")
    t.check(c.sys.ret == len(OTHER_TEXT) and c.user_ret == len(OTHER_TEXT)
            and c.data() == OTHER_TEXT,
            "write: a string on a page another live task owns is user memory and must be written",
            c.sys, *c.outs[:1], c.line.event,
            detail=f"pid {kids[0]} wrote s={kt.u64(c.addr):#x} on page {page:#x} of pid {parent}: "
            f"kernel ret={c.sys.ret}, task saw {c.user_ret}, wrote {c.data()!r}")

