"""Verdict wording: one line each, naming the verdict and what to do."""

from __future__ import annotations

from pathlib import Path

import pytest
from selftest_support import TRANSCRIPTS

from harness.errors import (HarnessError, KernelDied, KernelPanic, KernelSilent, OutputFlood,
                            ProtocolError, QemuNotFound, RunTimeout)
from harness.esr import describe, exception_class
from harness.events import End, Panic
from harness.transcript import Transcript


def test_qemu_not_found_says_what_to_install() -> None:
    message = str(QemuNotFound("qemu-system-aarch64"))
    assert message.startswith("QemuNotFound: cannot run 'qemu-system-aarch64'")
    assert "apt-get install --no-install-recommends qemu-system-arm" in message


@pytest.mark.parametrize("cls", [KernelSilent, KernelDied, RunTimeout, OutputFlood])
def test_verdict_is_one_line_naming_itself(cls: type[HarnessError]) -> None:
    e = cls("what happened")
    assert str(e) == f"{cls.__name__}: what happened"
    assert isinstance(e, HarnessError)


def test_protocol_error_names_the_line() -> None:
    e = ProtocolError(12, "sequence gap", "@KT 13 tick pid=1 n=2")
    assert str(e) == "ProtocolError: line 12: sequence gap: '@KT 13 tick pid=1 n=2'"
    assert e.line == 12


def test_report_adds_the_console_tail_and_the_transcript_path() -> None:
    lines = [f"line {n}" for n in range(1, 31)]
    e = RunTimeout("no end", lines, Path("build/transcripts/x-1.txt"))
    report = e.report().splitlines()
    assert report[0] == "RunTimeout: no end"
    assert report[1] == "--- last 20 of 30 console lines ---"
    assert report[2] == "   11 | line 11" and report[21] == "   30 | line 30"
    assert report[22] == "full transcript: build/transcripts/x-1.txt"


def test_report_of_a_silent_console() -> None:
    assert KernelSilent("nothing").report().splitlines()[1] == "--- the console printed nothing ---"


def test_kernel_panic_decodes_esr_and_shows_elr_and_far() -> None:
    t = Transcript.load(TRANSCRIPTS / "hand_panic_5.txt")
    message = str(KernelPanic(t.of(Panic)[0], t.end))
    assert message == ("KernelPanic: kernel panic (line 9) in vector 'sync_el1h': "
                       "'unexpected exception'; data abort at EL1 (EC 0x25: translation fault "
                       "level 1, write), ESR 0x96000045, ELR 0x81234, FAR 0x0")


def test_kernel_panic_without_a_panic_marker() -> None:
    end = End(seq=5, line=7, raw="@KT 5 end count=5 reason=panic", count=5, reason="panic")
    assert "no panic marker came before it" in str(KernelPanic(None, end))


@pytest.mark.parametrize("esr, words", [
    (0x96000045, "data abort at EL1"),
    (0x92000061, "data abort from EL0 (EC 0x24: alignment fault, write)"),
    (0x02000000, "unknown/undefined instruction (EC 0x00)"),
    (0x56000000, "SVC from AArch64"),
    (0x62000000, "trapped MSR/MRS"),
    (0x82000006, "instruction abort from EL0 (EC 0x20: translation fault level 2)"),
    (0x86000010, "instruction abort at EL1 (EC 0x21: synchronous external abort)"),
    (0x8A000000, "PC alignment fault"),
    (0x9A000000, "SP alignment fault"),
    (0x90000000, "data abort from EL0 (EC 0x24: address size fault level 0, read)"),
    (0xFC000000, "reserved/unrecognised exception class (EC 0x3f)"),
])
def test_esr_in_words(esr: int, words: str) -> None:
    assert words in describe(esr)


def test_exception_class_is_bits_31_to_26() -> None:
    assert exception_class(0x96000045) == 0x25
