"""The parser on recorded and hand-written transcripts, good and broken."""

from __future__ import annotations

import pytest
from selftest_support import TRANSCRIPTS

from harness.errors import ProtocolError
from harness.events import (KINDS, Boot, CommandError, End, ListEnd, Out, PMove, Ready,
                            ScenarioName, Switch, Sys)
from harness.protocol import Parser, is_marker, parse_marker
from harness.text import decode
from harness.transcript import Transcript
from linetags import tag_kt


def T(text: str) -> str:
    """A hand-written marker with its tag (key 0: parse_marker checks the
    tag's form only; the Parser checks its value)."""
    return tag_kt(text, 0)


GOOD = [
    "hand_clone_twice_42.txt", "hand_fault_7.txt", "hand_forged_out_42.txt", "hand_panic_5.txt",
    "real_clone_twice_42.txt", "real_clone_twice_max_seed.txt", "real_demo_42.txt",
    "real_el0_faults_42.txt",
]
# file, line of the error, words the message must contain
BAD = [
    ("bad_seq_gap.txt", 16, "sequence gap: expected seq 14, got 15"),
    ("bad_dup_seq.txt", 13, "repeats an earlier sequence number: expected seq 11, got 10"),
    ("bad_forged_raw_end.txt", 25, "marker after the end marker"),
    ("bad_forged_raw_seq.txt", 24, "expected seq 22, got 7"),
    ("bad_malformed.txt", 9, "malformed marker"),
    ("bad_truncated.txt", 27, "truncated run"),
    ("bad_unknown_kind.txt", 21, "unknown marker kind 'yield'"),
    ("bad_missing_field.txt", 10, "missing field 'a2'"),
    ("bad_extra_field.txt", 21, "unexpected field 'cpu'"),
    ("bad_field_order.txt", 22, "fields out of order"),
    ("bad_out_len.txt", 23, "len=9 but data holds 8 bytes"),
    ("bad_end_count.txt", 39, "count=36 but 37 markers came before it"),
    ("bad_hex_case.txt", 11, "'addr'=0x2010AB is not a hex value"),
    ("bad_raw_byte.txt", 9, "bytes outside printable ASCII"),
    ("bad_not_boot_first.txt", 1, "the first marker must be boot"),
    ("bad_second_boot.txt", 21, "boot marker in the middle"),
    ("bad_bad_choice.txt", 13, "'state'=running is not one of"),
]
OTHER = ["hand_list.txt", "hand_unknown_scenario.txt", "contract_exit_returns.txt", "README.md",
         "real_el0_lesson5_clone_twice_42.txt"]  # EL0: tests/harness/test_harness_linetags.py
BOOT = T("@KT 0 boot proto=2 console=mini el=2 nr_tasks=16 hz=1000 nr_syscalls=4 page_size=4096 "
        "pool_base=0x200000 pool_pages=1024 kernel_base=0x80000 kernel_end=0x1a2000 "
        "user_base=0x1a0000 user_end=0x1a2000 write_max=1024")


def test_every_fixture_transcript_is_tested() -> None:
    listed = set(GOOD) | {name for name, _, _ in BAD} | set(OTHER)
    assert {p.name for p in TRANSCRIPTS.iterdir()} == listed


@pytest.mark.parametrize("name", GOOD)
def test_good_transcript_parses_into_consistent_events(name: str) -> None:
    t = Transcript.load(TRANSCRIPTS / name)
    assert t.events[0] is t.boot and t.events[-1] is t.end
    assert [e.seq for e in t.events] == list(range(len(t.events)))
    assert t.end.count == len(t.events) - 1
    for event in t.events:
        assert t.lines[event.line - 1] == event.raw
        assert event.KIND == event.raw.split()[3]
    marker_lines = {e.line for e in t.events}
    noise_lines = {n.line for n in t.noise}
    assert marker_lines | noise_lines == set(range(1, len(t.lines) + 1))
    assert not marker_lines & noise_lines


@pytest.mark.parametrize("name, line, words", BAD)
def test_broken_transcript_is_a_protocol_error_naming_the_line(name: str, line: int,
                                                                words: str) -> None:
    with pytest.raises(ProtocolError) as raised:
        Transcript.load(TRANSCRIPTS / name)
    assert raised.value.line == line
    assert words in str(raised.value)
    assert str(raised.value).startswith(f"ProtocolError: line {line}: ")
    assert "\n" not in str(raised.value)


def test_an_exit_that_returned_reaches_the_judges() -> None:
    t = Transcript.load(TRANSCRIPTS / "contract_exit_returns.txt")
    assert [e.ret for e in t.of(Sys, pid=2, nr=3)] == [0]


def test_a_call_other_than_exit_must_report_its_result() -> None:
    with pytest.raises(ProtocolError, match="missing field 'ret' .only exit's has none."):
        parse_marker(3, T("@KT 9 sys pid=1 nr=2 x8=0x2 a0=0x0 a1=0x0 a2=0x0"))


def test_start_with_another_seed_than_sent_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="start says seed=42 but the harness sent seed 43") as e:
        Transcript.load(TRANSCRIPTS / "hand_clone_twice_42.txt", seed=43)
    assert e.value.line == 4


def test_start_with_another_scenario_than_sent_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="names scenario 'clone_twice' but the harness "
                                            "asked for 'clone_once'") as e:
        Transcript.load(TRANSCRIPTS / "hand_clone_twice_42.txt", scenario="clone_once")
    assert e.value.line == 4


def test_start_matching_what_was_sent_is_accepted() -> None:
    t = Transcript.load(TRANSCRIPTS / "real_clone_twice_max_seed.txt",
                        scenario="clone_twice", seed=2**64 - 1)
    assert t.seed == 2**64 - 1


def test_forged_marker_in_user_output_stays_user_output() -> None:
    t = Transcript.load(TRANSCRIPTS / "hand_forged_out_42.txt")
    assert t.output(1) == b'\n@KT 9 end count=9 reason=all_exited\nquote" bs\\ \xff\r'
    assert [e.seq for e in t.of(End)] == [15]
    assert len(t.lines) == 17  # the forged line break did not split a console line


def test_list_and_error_conversation() -> None:
    parser = Parser()
    lines = (TRANSCRIPTS / "hand_list.txt").read_text().splitlines()
    items = [parser.feed(n, text) for n, text in enumerate(lines, 1)]
    assert [type(i).__name__ for i in parser.events] == [
        "Boot", "Ready", "ScenarioName", "ScenarioName", "ListEnd", "Ready", "CommandError", "Ready"]
    assert [e.name for e in parser.events if isinstance(e, ScenarioName)] == ["clone_twice", "undef_insn"]
    error = next(e for e in parser.events if isinstance(e, CommandError))
    assert (error.what, error.line_, error.line) == ("unknown_command", 'frobnicate "now"', 9)
    assert [n.text for n in parser.noise] == ["list", 'frobnicate "now"']
    assert items[2] == parser.noise[0]  # the parser stores noise compactly, not the objects
    assert not parser.ended


def test_list_end_count_must_match_the_scenarios_listed() -> None:
    parser = Parser()
    for n, text in enumerate([BOOT, T("@KT 1 ready"), T("@KT 2 scenario name=a")], 1):
        parser.feed(n, text)
    with pytest.raises(ProtocolError, match="list_end count=2 but 1 scenario markers"):
        parser.feed(4, T("@KT 3 list_end count=2"))


def test_fields_become_typed_values() -> None:
    sys_ = parse_marker(7, T("@KT 9 sys pid=1 nr=7 x8=0xffffffff00000007 a0=0x0 a1=0x1a a2=0x0 ret=-38"))
    assert isinstance(sys_, Sys)
    assert (sys_.seq, sys_.line, sys_.pid, sys_.nr, sys_.x8, sys_.a1, sys_.ret) == (
        9, 7, 1, 7, 0xFFFFFFFF00000007, 0x1A, -38)
    exit_ = parse_marker(1, T("@KT 9 sys pid=1 nr=3 x8=0x3 a0=0x0 a1=0x0 a2=0x0"))
    assert isinstance(exit_, Sys) and exit_.ret is None
    move = parse_marker(1, T("@KT 5 pmove from=1 to=2 addr=0x201000"))
    assert isinstance(move, PMove) and (move.from_, move.to, move.addr) == (1, 2, 0x201000)
    switch = parse_marker(1, T("@KT 5 switch from=0 to=1"))
    assert isinstance(switch, Switch) and switch.from_ == 0
    out = parse_marker(1, T('@KT 5 out pid=2 len=0 data=""'))
    assert isinstance(out, Out) and out.data == b""
    boot = parse_marker(1, BOOT)
    assert isinstance(boot, Boot) and (boot.pool_base, boot.write_max) == (0x200000, 1024)


def test_every_kind_has_an_event_class_with_wire_fields() -> None:
    assert len(KINDS) == 18
    assert isinstance(parse_marker(1, T("@KT 1 ready")), Ready)
    assert isinstance(parse_marker(1, T("@KT 1 list_end count=0")), ListEnd)


@pytest.mark.parametrize("text, words", [
    ("@KT 1 ready extra", "malformed marker: no ' key=value' field at column 17"),
    ("@KT  1 ready", "expected '@KT <seq> <tag> <kind>'"),
    ("@KT x ready", "expected '@KT <seq> <tag> <kind>'"),
    ("@KT 1 Ready", "malformed marker"),
    ("@KT 1 ready ", "malformed marker"),
    ("@KT 1 tick pid=1 pid=2", "field 'pid' appears twice"),
    ("@KT 1 tick pid=1  n=2", "malformed marker"),
    ('@KT 1 tick pid="1" n=2', "'pid'=\"1\" is not a decimal value"),
    ("@KT 1 fault pid=1 ec=0x0 esr=0x0 elr=0x0 far=0x0 what=oops", "must be a quoted string"),
    ("@KT 1 tick pid=-1 n=1", "not a decimal value"),
    ("@KT 1 tick pid=18446744073709551616 n=1", "does not fit in 64 bits"),
    ("@KT 1 sys pid=1 nr=0 x8=0x0 a0=0x0 a1=0x0 a2=0x0 ret=-9223372036854775809", "does not fit"),
    ('@KT 1 out pid=1 len=1 data="\\x0A"', "malformed marker"),
    ('@KT 1 out pid=1 len=1 data="\\n"', "malformed marker"),
    ("@KT 1 boot proto=1 console=mini el=2 nr_tasks=16 hz=1000 nr_syscalls=4 page_size=4096 "
     "pool_base=0x2 pool_pages=1 kernel_base=0x8 kernel_end=0x9 user_base=0x1 user_end=0x2 "
     "write_max=1024", "'proto'=1 is not one of: 2"),
    ("@KT 1 ready\t", "printable ASCII"),
])
def test_malformed_markers_are_named(text: str, words: str) -> None:
    with pytest.raises(ProtocolError) as raised:
        parse_marker(5, T(text))
    assert words in str(raised.value)
    assert raised.value.line == 5


def test_a_raw_undecodable_byte_cannot_pass_for_an_escape() -> None:
    text = T(decode(b'@KT 1 out pid=1 len=1 data="\xff"'))
    with pytest.raises(ProtocolError, match="bytes outside printable ASCII"):
        parse_marker(1, text)


@pytest.mark.parametrize("text", ["@KT", "@KTX 1 ready", " @KT 1 ready", "", "run x 1", "@kt 1 ready"])
def test_only_lines_starting_with_the_prefix_are_markers(text: str) -> None:
    assert not is_marker(text)
    parser = Parser()
    parser.feed(1, text)
    assert parser.events == [] and parser.noise[0].text == text
