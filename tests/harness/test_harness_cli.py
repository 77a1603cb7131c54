"""python -m harness list|run, against the fake QEMU."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from selftest_support import FakeQemu

from harness.__main__ import main


@pytest.fixture
def common(fake_qemu: FakeQemu, make_image: Callable[..., Path], tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.chdir(tmp_path)  # transcripts go to ./build/transcripts
    return ["--kernel", str(make_image()), "--qemu", str(fake_qemu.path), "--boot-timeout", "2"]


def test_run_streams_the_console_and_exits_0(common: list[str], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "clone_twice", "--seed", "42", *common]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[3] == "@KT 2 7519 start scenario=clone_twice seed=42"
    assert len(out.splitlines()) == 39
    assert "# ended: reason=all_exited, 38 markers, QEMU exit status 0" in err
    assert (tmp_path / "build" / "transcripts" / "clone_twice-42.txt").exists()


def test_run_prints_a_verdict_in_one_line_and_exits_1(common: list[str], fake_qemu: FakeQemu,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    fake_qemu.configure(transcript="hand_panic_5.txt", exit_status=1)
    assert main(["run", "clone_twice", "--seed", "5", *common]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[1].startswith("KernelPanic: kernel panic (line 9) in vector 'sync_el1h'")
    assert err[2].startswith("transcript: ") and err[2].endswith("clone_twice-5.txt")


def test_run_picks_and_prints_a_random_seed(common: list[str], fake_qemu: FakeQemu,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    fake_qemu.monkeypatch.setenv("FAKE_QEMU_FOLLOW", "1")
    assert main(["run", "clone_twice", *common]) == 0
    err = capsys.readouterr().err
    seed = err.split("# run clone_twice ", 1)[1].split()[0]
    assert f"replay: --seed {seed}" in err


def test_list_prints_the_names(common: list[str], fake_qemu: FakeQemu,
                               capsys: pytest.CaptureFixture[str]) -> None:
    fake_qemu.configure(transcript="hand_list.txt")
    assert main(["list", *common]) == 0
    assert capsys.readouterr().out == "clone_twice\nundef_insn\n"


def test_bad_scenario_name_is_a_usage_error(common: list[str],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "No Such", "--seed", "1", *common]) == 2
    assert "is not 1..31 characters of [a-z0-9_]" in capsys.readouterr().err


def test_bad_seed_is_refused_by_argparse(common: list[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["run", "x", "--seed", "-1", *common])
    assert e.value.code == 2
