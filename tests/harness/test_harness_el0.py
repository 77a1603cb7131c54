"""EL0 markers (harness/el0.py): the parser on hand-written lines, the
transcript helpers judges use, and patch_image on small files. No QEMU."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from harness.el0 import (PARAM_TAG, Anomaly, El0Parser, El0Transcript, UAfterExit, UClone, UCloned,
                         UDying, UError, UExit, UOut, UStart, patch_image)
from harness.errors import ImageError
from harness.events import Noise
from linetags import retag_el0, tag_ku

SEED = 7  #: the seed of the hand-written lines: their tags are keyed by it


def parse_one(text: str) -> tuple[object, El0Parser]:
    """Feed ``text``, tagged for SEED, as line 1 of a fresh parser."""
    parser = El0Parser(SEED)
    return parser.feed(1, tag_ku(text, SEED)), parser


# --- each kind -----------------------------------------------------------------

def test_start_gives_scenario_and_seed() -> None:
    line = tag_ku("@KU 1 0 start proto=2 scenario=exit_zombie seed=7", SEED)
    event, parser = parse_one(line)
    assert event == UStart(1, line, 1, 0, scenario="exit_zombie", seed=7)
    assert parser.events == [event] and parser.noise == [] and parser.anomalies == []


def test_start_takes_a_full_64_bit_seed() -> None:
    event, _ = parse_one("@KU 1 0 start proto=2 scenario=clone_twice seed=18446744073709551615")
    assert isinstance(event, UStart) and event.seed == (1 << 64) - 1


def test_clone_gives_child_and_hex_stack() -> None:
    event, _ = parse_one("@KU 1 2 clone child=2 stack=0x402000")
    assert isinstance(event, UClone)
    assert (event.tid, event.useq, event.child, event.stack) == (1, 2, 2, 0x402000)


def test_cloned_keeps_a_negative_ret() -> None:
    event, _ = parse_one("@KU 1 3 cloned child=2 ret=-1")
    assert isinstance(event, UCloned)
    assert (event.tid, event.useq, event.child, event.ret) == (1, 3, 2, -1)


def test_out_decodes_hex_escapes_to_bytes() -> None:
    event, _ = parse_one(r'@KU 2 0 out data="a page=0x406000\x0a\x00\xff\x22\x5c"')
    assert isinstance(event, UOut)
    assert (event.tid, event.pid, event.useq) == (2, 2, 0)
    assert event.data == b'a page=0x406000\n\x00\xff"\\'


def test_out_with_an_empty_string() -> None:
    event, _ = parse_one('@KU 2 0 out data=""')
    assert isinstance(event, UOut) and event.data == b""


@pytest.mark.parametrize("kind, cls", [("exit", UExit), ("after_exit", UAfterExit), ("dying", UDying)])
def test_kinds_without_fields(kind: str, cls: type) -> None:
    line = tag_ku(f"@KU 3 14 {kind}", SEED)
    event, parser = parse_one(line)
    assert type(event) is cls
    assert (event.line, event.raw, event.tid, event.useq) == (1, line, 3, 14)
    assert parser.anomalies == [Anomaly(1, "task 3 marker 14 where 0 was due (markers lost)")]


def test_error_gives_what() -> None:
    event, _ = parse_one("@KU 1 1 error what=unknown_scenario")
    assert isinstance(event, UError) and event.what == "unknown_scenario"


# --- noise and malformed markers -----------------------------------------------

@pytest.mark.parametrize("text", [
    "Kernel process started. EL 1",
    "",
    "@KT 1 boot proto=1",
    "@KU is a prefix, not a marker",
    "said @KU x",
])
def test_other_lines_stay_noise(text: str) -> None:
    item, parser = parse_one(text)
    assert item == Noise(1, text)
    assert parser.noise == [item] and parser.events == [] and parser.anomalies == []


def test_marker_glued_after_other_text_is_noise_and_a_torn_line() -> None:
    text = "Kernel process start@KU 2 3 exit"
    item, parser = parse_one(text)
    assert item == Noise(1, tag_ku(text, SEED)) and parser.events == []
    assert len(parser.anomalies) == 1
    assert parser.anomalies[0].line == 1 and "torn" in parser.anomalies[0].what


def test_two_markers_on_one_line_are_torn() -> None:
    item, parser = parse_one('@KU 1 4 out data="p a=@KU 2 0 exit')
    assert isinstance(item, Noise) and len(parser.anomalies) == 1


@pytest.mark.parametrize("text", [
    "@KU 1 0 start proto=1 scenario=exit_zombie seed=7",  # another protocol
    "@KU 1 0 start scenario=exit_zombie seed=7",  # proto missing
    "@KU 1 0 start proto=2 seed=7",  # scenario missing
    "@KU 1 0 start proto=2 scenario=exit_zombie seed=7 extra=1",  # a field too many
    "@KU 1 0 start proto=2 scenario=exit_zombie seed=x",  # seed not a number
    "@KU 1 0 clone child=2",  # stack missing
    "@KU 1 0 out data=abc",  # data not quoted
    '@KU 1 0 out data="\\n"',  # not a \xHH escape
    "@KU 1 0 exit code=0",  # exit takes no field
    "@KU 1 0 reboot",  # no such kind
    "@KU 01 0 exit",  # a leading zero
])
def test_malformed_marker_is_not_an_event(text: str) -> None:
    item, parser = parse_one(text)
    assert item == Noise(1, tag_ku(text, SEED)) and parser.events == []
    assert len(parser.anomalies) == 1


# --- per-task sequence numbers -------------------------------------------------

def feed_all(lines: list[str]) -> El0Parser:
    parser = El0Parser(SEED)
    for number, text in enumerate(retag_el0(lines, SEED), 1):
        parser.feed(number, text)
    return parser


def test_interleaved_tasks_each_count_from_zero() -> None:
    parser = feed_all(["@KU 1 0 exit", "@KU 2 0 exit", "@KU 1 1 dying", "@KU 3 0 exit", "@KU 2 1 dying"])
    assert len(parser.events) == 5 and parser.anomalies == []


def test_sequence_gap_is_one_anomaly_naming_the_task() -> None:
    parser = feed_all(["@KU 1 0 exit", "@KU 2 0 exit", "@KU 2 2 dying", "@KU 2 3 dying", "@KU 1 1 dying"])
    assert len(parser.events) == 5  # still events: the stream is evidence
    assert parser.anomalies == [Anomaly(3, "task 2 marker 2 where 1 was due (markers lost)")]


def test_sequence_repeat_is_one_anomaly_naming_the_task() -> None:
    parser = feed_all(["@KU 1 0 exit", "@KU 3 0 exit", "@KU 3 1 exit", "@KU 3 1 exit", "@KU 3 2 exit"])
    assert len(parser.events) == 5
    assert len(parser.anomalies) == 1
    anomaly = parser.anomalies[0]
    assert anomaly.line == 4 and anomaly.what.startswith("task 3 marker 1 where 2 was due")
    assert "repeat" in anomaly.what


# --- El0Transcript -------------------------------------------------------------

RUN = retag_el0([
    "Kernel process started. EL 1",
    "@KU 1 0 start proto=2 scenario=exit_zombie seed=7",
    "@KU 1 1 clone child=2 stack=0x402000",
    "@KU 1 2 cloned child=2 ret=2",
    r'@KU 1 3 out data="p a=2\x0a"',
    "@KU 1 4 clone child=3 stack=0x403000",
    "@KU 1 5 cloned child=3 ret=-1",
    r'@KU 2 0 out data="a one\x0a"',
    r'@KU 2 1 out data="a two\x0a"',
    "@KU 2 2 exit",
    "@KU 2 3 after_exit",
    r'@KU 1 6 out data="p done\x0a"',
    "@KU 1 7 exit",
], SEED)


@pytest.fixture
def u() -> El0Transcript:
    return El0Transcript.parse(RUN, "exit_zombie", 7, ending="all_exited")


def test_parse_keeps_lines_noise_and_run_facts(u: El0Transcript) -> None:
    assert (u.scenario, u.seed, u.ending, u.rules) == ("exit_zombie", 7, "all_exited", "project")
    assert u.lines == RUN and len(u.events) == 12 and u.anomalies == []
    assert u.noise == [Noise(1, "Kernel process started. EL 1")]
    assert u.started == UStart(2, RUN[1], 1, 0, scenario="exit_zombie", seed=7)


def test_tids_are_the_first_task_then_each_announced_child(u: El0Transcript) -> None:
    assert u.tids() == [1, 2, 3]


def test_outputs_per_task(u: El0Transcript) -> None:
    assert [o.data for o in u.outputs(2)] == [b"a one\n", b"a two\n"]
    assert [o.line for o in u.outputs(1)] == [5, 12]
    assert u.output(1) == b"p a=2\np done\n"
    assert u.outputs(3) == [] and u.output(3) == b""


def test_exited_is_the_exit_marker_or_none(u: El0Transcript) -> None:
    assert u.exited(1) == UExit(13, RUN[12], 1, 7)
    assert u.exited(2) is not None and u.exited(2).line == 10
    assert u.exited(3) is None


def test_last_of_is_the_last_marker_of_the_task(u: El0Transcript) -> None:
    assert u.last_of(2) == UAfterExit(11, RUN[10], 2, 3)
    assert isinstance(u.last_of(1), UExit)
    assert u.last_of(3) is None


def test_of_filters_by_class_and_fields_in_order(u: El0Transcript) -> None:
    assert [c.child for c in u.of(UClone)] == [2, 3]
    assert u.of(UCloned, ret=-1) == [UCloned(7, RUN[6], 1, 5, child=3, ret=-1)]
    assert [a.tid for a in u.of(UAfterExit)] == [2]
    assert u.of(UAfterExit, tid=1) == [] and u.of(UDying) == []
    assert [c.child for c in u.children_of(1)] == [2, 3] and u.children_of(2) == []


def test_of_refuses_a_field_the_class_does_not_have(u: El0Transcript) -> None:
    with pytest.raises(TypeError, match="UDying has no field tdi"):
        u.of(UDying, tdi=2)  # the run has no dying marker: a typo would match nothing


def test_parse_records_anomalies() -> None:
    last = tag_ku("@KU 1 5 exit", SEED)
    t = El0Transcript.parse(RUN[:4] + [tag_ku("@KU 1 3 exit@KU 2 0 exit", SEED), last], "exit_zombie", SEED,
                            ending="stalled")
    assert [a.line for a in t.anomalies] == [5, 6]
    assert t.exited(1) == UExit(6, last, 1, 5) and t.exited(2) is None


# --- patch_image ---------------------------------------------------------------

def small_image(tmp_path: Path, tags: int = 1, name: str = "k.img") -> tuple[Path, bytes]:
    block = PARAM_TAG + b"\xaa" * 40  # the name and seed fields, not yet written
    data = b"\x11" * 100 + block * tags + b"\x22" * 60
    path = tmp_path / name
    path.write_bytes(data)
    return path, data


def test_patch_writes_name_and_seed_after_the_tag(tmp_path: Path) -> None:
    image, original = small_image(tmp_path)
    out = tmp_path / "out" / "patched.img"
    assert patch_image(image, out, "exit_zombie", 7) == out
    data = out.read_bytes()
    at = original.index(PARAM_TAG)
    assert len(data) == len(original)
    assert data[:at + 16] == original[:at + 16]
    assert data[at + 16:at + 48] == b"exit_zombie" + bytes(32 - len("exit_zombie"))
    assert data[at + 48:at + 56] == struct.pack("<Q", 7) == b"\x07" + bytes(7)
    assert data[at + 56:] == original[at + 56:]
    assert image.read_bytes() == original


def test_patch_writes_a_large_seed_little_endian(tmp_path: Path) -> None:
    image, original = small_image(tmp_path)
    data = patch_image(image, tmp_path / "p.img", "a" * 31, 0x0102030405060708).read_bytes()
    at = original.index(PARAM_TAG)
    assert data[at + 16:at + 48] == b"a" * 31 + b"\0"
    assert data[at + 48:at + 56] == bytes([8, 7, 6, 5, 4, 3, 2, 1])


def test_patch_refuses_an_image_without_the_tag(tmp_path: Path) -> None:
    image, _ = small_image(tmp_path, tags=0)
    with pytest.raises(ImageError, match="not linked with build/kt-user.o"):
        patch_image(image, tmp_path / "p.img", "exit_zombie", 7)
    assert not (tmp_path / "p.img").exists()


def test_patch_refuses_an_image_with_the_tag_twice(tmp_path: Path) -> None:
    image, _ = small_image(tmp_path, tags=2)
    with pytest.raises(ImageError, match="occurs 2 times"):
        patch_image(image, tmp_path / "p.img", "exit_zombie", 7)
    assert not (tmp_path / "p.img").exists()


def test_patch_refuses_a_32_character_scenario_name(tmp_path: Path) -> None:
    image, original = small_image(tmp_path)
    with pytest.raises(ValueError, match="longer than 31 bytes"):
        patch_image(image, tmp_path / "p.img", "s" * 32, 7)
    assert not (tmp_path / "p.img").exists() and image.read_bytes() == original
