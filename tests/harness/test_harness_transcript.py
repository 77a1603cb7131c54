"""The Transcript API judges use, and the RuleBroken message format."""

from __future__ import annotations

from pathlib import Path

import pytest
from selftest_support import HAND, TRANSCRIPTS

from harness.events import End, Noise, Out, PFree, Switch, Sys, Task
from harness.judge import RuleBroken
from harness.transcript import Transcript



@pytest.fixture
def t() -> Transcript:
    return Transcript.load(HAND)


def test_run_facts(t: Transcript) -> None:
    assert (t.scenario, t.seed, t.exit_code, t.path) == ("clone_twice", 42, None, HAND)
    assert t.boot.pool_base == 0x200000 and t.start.seq == 2 and t.end.reason == "all_exited"
    assert t.noise == [Noise(3, "run clone_twice 42")]
    assert len(t.lines) == 39 and t.lines[2] == "run clone_twice 42"


def test_of_filters_by_class_and_fields_in_order(t: Transcript) -> None:
    clones = t.of(Sys, pid=1, nr=2)
    assert [(c.seq, c.ret) for c in clones] == [(13, 2), (18, 3)]
    assert [s.to for s in t.of(Switch, from_=1)] == [2]
    assert len(t.of(Task, state="zombie")) == 3
    assert t.of(Sys, pid=99) == []


def test_of_refuses_a_field_the_class_does_not_have(t: Transcript) -> None:
    with pytest.raises(TypeError, match="Sys has no field from_"):
        t.of(Sys, from_=1)


def test_output_per_pid(t: Transcript) -> None:
    assert t.output(1) == b"hello\n"
    assert t.output(2) == b"child 2\n"
    assert t.output(7) == b""
    assert t.output_lines(3) == ["child 3"]
    assert t.output_lines(7) == []


def test_output_lines_splits_on_newline_only() -> None:
    t = Transcript.load(TRANSCRIPTS / "hand_forged_out_42.txt")
    assert t.output_lines(1) == ["", "@KT 9 end count=9 reason=all_exited", 'quote" bs\\ \\xff\r']


def test_pids_in_creation_order(t: Transcript) -> None:
    assert t.pids() == [1, 2, 3]


def test_after_and_before(t: Transcript) -> None:
    exit2 = t.of(Sys, pid=2, nr=3)[0]
    assert [type(e) for e in t.after(exit2)[:2]] == [PFree, Task]
    assert t.before(exit2)[-1].KIND == "sys" and len(t.before(exit2)) == exit2.seq
    assert t.after(t.end) == [] and t.before(t.boot) == []


def test_after_refuses_an_event_of_another_transcript(t: Transcript) -> None:
    other = Transcript.load(TRANSCRIPTS / "hand_fault_7.txt")
    with pytest.raises(ValueError, match="not an event of this transcript"):
        t.after(other.end)


def test_fail_message_names_rule_detail_context_and_path(t: Transcript) -> None:
    clone = t.of(Sys, pid=1, nr=2)[0]
    with pytest.raises(RuleBroken) as raised:
        t.fail("clone returns the child's pid in the parent", clone, detail="expected 7, got 2")
    assert isinstance(raised.value, AssertionError)
    assert str(raised.value) == "\n".join([
        "rule broken: clone returns the child's pid in the parent",
        "  expected 7, got 2",
        "scenario clone_twice, seed 42",
        "at line 15:",
        "   13 | @KT 11 faff task pid=2 parent=1 state=new reason=clone",
        "   14 | @KT 12 caed pmove from=1 to=2 addr=0x201000",
        ">> 15 | @KT 13 5430 sys pid=1 nr=2 x8=0x2 a0=0x201000 a1=0x0 a2=0x0 ret=2",
        "   16 | @KT 14 81bd palloc pid=1 addr=0x202000",
        "   17 | @KT 15 354b sys pid=1 nr=1 x8=0x1 a0=0x2 a1=0x0 a2=0x0 ret=2105344",
        f"full transcript: {HAND}",
        "replay: python -m harness run clone_twice --seed 42",
    ])
    assert raised.value.rule == "clone returns the child's pid in the parent"
    assert raised.value.cited == (clone,) and raised.value.path == HAND


def test_fail_clips_context_at_the_ends_and_cites_several_events(t: Transcript) -> None:
    with pytest.raises(RuleBroken) as raised:
        t.fail("r", t.boot, t.end)
    text = str(raised.value).splitlines()
    assert text[2:6] == ["at line 1:", ">> 1 | " + t.lines[0], "   2 | @KT 1 df40 ready",
                         "   3 | run clone_twice 42"]
    assert text[6] == "at line 39:" and text[9] == ">> 39 | @KT 37 9fe9 end count=37 reason=all_exited"


def test_fail_without_cited_events_shows_the_end_of_the_transcript(t: Transcript) -> None:
    with pytest.raises(RuleBroken) as raised:
        t.fail("pid 4 must exist")
    text = str(raised.value).splitlines()
    assert text[2] == "last 5 lines of the transcript:"
    assert text[3:8] == [f"   {n} | {t.lines[n - 1]}" for n in range(35, 40)]


def test_fail_on_an_unsaved_transcript_says_so() -> None:
    t = Transcript.parse(HAND.read_text())
    with pytest.raises(RuleBroken, match=r"full transcript: \(not saved\)"):
        t.fail("r")


def test_check_fails_only_when_the_condition_is_false(t: Transcript) -> None:
    t.check(True, "never shown")
    with pytest.raises(RuleBroken, match="rule broken: every task exits"):
        t.check(len(t.of(End)) == 2, "every task exits", t.end)


def test_parse_ignores_a_trailing_carriage_return(tmp_path: Path) -> None:
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes(HAND.read_bytes().replace(b"\n", b"\r\n"))
    assert Transcript.load(crlf).lines == Transcript.load(HAND).lines


def test_a_console_without_a_run_is_refused() -> None:
    with pytest.raises(Exception, match="no start marker"):
        Transcript.load(TRANSCRIPTS / "hand_list.txt")
    with pytest.raises(Exception, match="no marker at all"):
        Transcript.parse("hello\nworld\n")


def test_out_events_carry_bytes(t: Transcript) -> None:
    assert all(isinstance(o.data, bytes) for o in t.of(Out))


def test_both_transcripts_share_one_check() -> None:
    """One ``check`` for the markers route and the EL0 route (issue 15)."""
    from harness.el0 import El0Transcript
    from harness.transcript import Judged
    assert El0Transcript.check is Transcript.check is Judged.check
