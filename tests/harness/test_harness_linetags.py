"""Line tags (docs/protocol.md, "Line tags"): every judged marker is bound to
its run's seed and its position, so a real transcript replayed for another
seed, however its seed fields and seed proof were rewritten, or a line moved
to another position, is a ProtocolError in both routes. No QEMU: the real_*
fixtures were recorded from this kernel and from fixtures/lesson5."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from linetags import retag, tag_ku
from selftest_support import ROOT, TRANSCRIPTS

from harness.el0 import El0Transcript
from harness.errors import ProtocolError
from harness.prng import KERNEL_STREAM, MASK64, SplitMix64, line_tag
from harness.quoting import quote
from harness.runner import RunConfig, run_scenario
from harness.transcript import Transcript

SEED_A, SEED_B = 42, 43
PROOF_SALT = 0x6B742D70726F6F66  # kernel/user/ulib.h: U_PROOF_SALT
KT_RUN = TRANSCRIPTS / "real_clone_twice_42.txt"
KU_RUN = TRANSCRIPTS / "real_el0_lesson5_clone_twice_42.txt"
ANOTHER_RUN = "belongs to another run|not written by this run.s program"  #: the markers route | EL0


def proof(seed: int) -> bytes:
    """The seed proof line (tests/scenarios/test_invariants.py)."""
    return f"proof seed={seed} draw={SplitMix64(seed ^ PROOF_SALT).next():#x}\n".encode()


def forge_kt(lines: list[str], seed: int) -> list[str]:
    """A marker transcript as a forger replays it for ``seed``: the command
    echo, ``start``'s seed and the seed proof rewritten, tags left alone."""
    out = []
    for text in lines:
        if text.startswith("run "):
            text = re.sub(r" [0-9]+$", f" {seed}", text)
        elif " start " in text:
            text = re.sub(r"seed=[0-9]+", f"seed={seed}", text)
        elif " out pid=1 " in text and "proof seed=" in text:
            data = proof(seed)
            text = re.sub(r"len=[0-9]+ data=\".*\"", lambda _: f'len={len(data)} data="{quote(data)}"', text)
        out.append(text)
    return out


def forge_ku(lines: list[str], seed: int) -> list[str]:
    """An EL0 transcript replayed for ``seed`` the same way."""
    out = []
    for text in lines:
        if text.startswith("@KU 1 0 "):
            text = re.sub(r"seed=[0-9]+", f"seed={seed}", text)
        elif text.startswith("@KU 1 1 ") and "proof seed=" in text:
            text = re.sub(r'data=".*"', lambda _: f'data="{quote(proof(seed))}"', text)
        out.append(text)
    return out


def kt_lines() -> list[str]:
    return KT_RUN.read_text().splitlines()


def ku_lines() -> list[str]:
    return KU_RUN.read_text().splitlines()


def parse_kt(lines: list[str], seed: int | None) -> Transcript:
    return Transcript.parse("\n".join(lines) + "\n", scenario="clone_twice", seed=seed)


def parse_ku(lines: list[str], seed: int) -> El0Transcript:
    return El0Transcript.parse(lines, "clone_twice", seed, ending="all_exited")


# --- the tag function ------------------------------------------------------------

def test_known_values_and_range() -> None:
    assert line_tag(0, KERNEL_STREAM, 0) == "ec51"  # docs/protocol.md
    assert line_tag(SEED_A, KERNEL_STREAM, 2) == "7519"
    tags = {line_tag(s, t, i) for s in (0, 1, MASK64) for t in range(3) for i in range(50)}
    assert all(re.fullmatch(r"[0-9a-f]{4}", t) for t in tags) and len(tags) > 400


def test_the_position_and_the_seed_each_change_the_tag() -> None:
    base = [line_tag(SEED_A, 1, i) for i in range(200)]
    assert sum(a == b for a, b in zip(base, (line_tag(SEED_B, 1, i) for i in range(200)))) < 5
    assert sum(a == b for a, b in zip(base, (line_tag(SEED_A, 2, i) for i in range(200)))) < 5
    assert sum(a == b for a, b in zip(base, base[1:])) < 5


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a host C compiler")
def test_the_c_definition_gives_the_same_tags(tmp_path: Path) -> None:
    """kernel/include/uapi/linetag.h compiled for the host, against prng.line_tag."""
    cases = [(s, t, i) for s in (0, SEED_A, MASK64, 0x0123456789ABCDEF) for t in (0, 1, 7) for i in (0, 1, 99)]
    calls = "".join(f'printf("%04lx\\n", linetag({s}UL, {t}UL, {i}UL));' for s, t, i in cases)
    (tmp_path / "t.c").write_text(f'#include <stdio.h>\n#include "uapi/linetag.h"\nint main(void){{{calls}return 0;}}\n')
    subprocess.run(["cc", "-std=gnu11", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'kernel/include'}",
                    "-o", str(tmp_path / "t"), str(tmp_path / "t.c")], check=True)
    out = subprocess.run([str(tmp_path / "t")], capture_output=True, text=True, check=True).stdout
    assert out.split() == [line_tag(*c) for c in cases]


# --- the marker route ------------------------------------------------------------

def test_the_real_runs_parse_with_their_own_seed() -> None:
    assert parse_kt(kt_lines(), SEED_A).seed == SEED_A
    assert parse_ku(ku_lines(), SEED_A).anomalies == []


@pytest.mark.parametrize("sent", [SEED_B, None])
def test_a_replay_with_a_recomputed_seed_proof_fails_at_start(sent: int | None) -> None:
    """Seed A's run shown as seed B's: seed fields and the proof rewritten."""
    lines = forge_kt(kt_lines(), SEED_B)
    assert proof(SEED_B).decode()[:-1] in "\n".join(lines)  # the forgery did rewrite the proof
    with pytest.raises(ProtocolError, match=ANOTHER_RUN) as e:
        parse_kt(lines, sent)
    start = next(n for n, text in enumerate(lines, 1) if " start " in text)
    assert e.value.line == start
    assert f"seq 2 of the run with seed {SEED_B} carries {line_tag(SEED_B, KERNEL_STREAM, 2)}" in str(e.value)
    # control: the same forgery with every line re-tagged parses (so the tags caught it)
    assert parse_kt(retag(lines), sent).seed == SEED_B


def test_a_replay_that_also_retags_its_rewritten_lines_fails_at_the_next_one() -> None:
    """However start and the proof were rewritten (tags too), the first
    line the forger copied as it was gives the replay away."""
    lines = forge_kt(kt_lines(), SEED_B)
    retagged = retag(lines)
    touched = {n for n, (a, b) in enumerate(zip(kt_lines(), lines)) if a != b}
    lines = [retagged[n] if n in touched else text for n, text in enumerate(lines)]
    with pytest.raises(ProtocolError, match=ANOTHER_RUN) as e:
        parse_kt(lines, SEED_B)
    first_copied = min(n for n, text in enumerate(lines) if n not in touched and text.startswith("@KT ")
                       and n > min(touched)) + 1
    assert e.value.line == first_copied


def test_the_replay_fails_through_the_runner(fake_config: RunConfig, fake_qemu, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The same forgery as a kernel's console: run_scenario stops on it."""
    forged = tmp_path / "forged.txt"
    forged.write_text("\n".join(forge_kt(kt_lines(), SEED_B)) + "\n")
    fake_qemu.configure()
    monkeypatch.setenv("FAKE_QEMU_TRANSCRIPT", str(forged))
    with pytest.raises(ProtocolError, match=ANOTHER_RUN):
        run_scenario(replace(fake_config, transcript_dir=None), "clone_twice", SEED_B)


def test_a_line_moved_to_another_seq_fails() -> None:
    """Two markers swapped, each renumbered to its new place: the first fails."""
    lines = kt_lines()
    at = next(n for n, text in enumerate(lines) if " tick " in text)
    a, b = lines[at], lines[at + 1]
    seq_a, seq_b = a.split()[1], b.split()[1]
    lines[at] = b.replace(f"@KT {seq_b} ", f"@KT {seq_a} ", 1)
    lines[at + 1] = a.replace(f"@KT {seq_a} ", f"@KT {seq_b} ", 1)
    with pytest.raises(ProtocolError, match=ANOTHER_RUN) as e:
        parse_kt(lines, SEED_A)
    assert e.value.line == at + 1 and f"seq {seq_a} of the run with seed {SEED_A}" in str(e.value)


def test_a_line_spliced_in_from_a_run_of_another_seed_fails() -> None:
    """The same seq of the max-seed run, where both runs print the same fact."""
    lines = kt_lines()
    other = (TRANSCRIPTS / "real_clone_twice_max_seed.txt").read_text().splitlines()
    at = next(n for n, (a, b) in enumerate(zip(lines, other))
              if a.startswith("@KT ") and " tick " in a and a.split()[3:] == b.split()[3:])
    lines[at] = other[at]
    with pytest.raises(ProtocolError, match=ANOTHER_RUN) as e:
        parse_kt(lines, SEED_A)
    assert e.value.line == at + 1


def test_a_line_before_start_is_keyed_by_zero() -> None:
    lines = kt_lines()
    lines[1] = lines[1].replace(line_tag(0, KERNEL_STREAM, 1), line_tag(SEED_A, KERNEL_STREAM, 1))
    with pytest.raises(ProtocolError, match=r"seq 1 of the lines before start \(key 0\)") as e:
        parse_kt(lines, SEED_A)
    assert e.value.line == 2


def test_an_untagged_marker_is_malformed() -> None:
    lines = kt_lines()
    lines[0] = re.sub(r"^@KT 0 [0-9a-f]{4} ", "@KT 0 ", lines[0])
    with pytest.raises(ProtocolError, match="no line tag after the seq"):
        parse_kt(lines, SEED_A)


# --- the EL0 route ---------------------------------------------------------------

def test_an_el0_replay_with_a_recomputed_seed_proof_fails_at_start() -> None:
    lines = forge_ku(ku_lines(), SEED_B)
    assert f"seed={SEED_B}" in lines[1] and proof(SEED_B).decode()[:-1] in lines[2]
    with pytest.raises(ProtocolError, match=ANOTHER_RUN) as e:
        parse_ku(lines, SEED_B)
    assert e.value.line == 2 and f"task 1's marker 0 of the run with seed {SEED_B}" in str(e.value)
    # control: re-tagged for B, the forgery parses
    assert parse_ku([tag_ku(text, SEED_B) for text in lines], SEED_B).started is not None


def test_an_el0_replay_that_retags_start_and_proof_fails_at_the_next_line() -> None:
    lines = forge_ku(ku_lines(), SEED_B)
    lines[1], lines[2] = tag_ku(lines[1], SEED_B), tag_ku(lines[2], SEED_B)
    with pytest.raises(ProtocolError, match=ANOTHER_RUN) as e:
        parse_ku(lines, SEED_B)
    assert e.value.line == 4 and "task 1's marker 2" in str(e.value)


def test_an_el0_line_moved_to_another_task_fails() -> None:
    """Task 2's first fact shown as task 3's: the renumbered line fails."""
    lines = ku_lines()
    at = next(n for n, text in enumerate(lines) if text.startswith("@KU 3 0 "))
    from_2 = next(text for text in lines if text.startswith("@KU 2 0 "))
    lines[at] = "@KU 3 0 " + from_2.removeprefix("@KU 2 0 ")
    with pytest.raises(ProtocolError, match=ANOTHER_RUN) as e:
        parse_ku(lines, SEED_A)
    assert e.value.line == at + 1 and "task 3's marker 0" in str(e.value)
