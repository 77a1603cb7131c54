"""Hand-ins as students make them (docs/grading.md, "What a submission is";
harness/handin.py): an image-only folder, a tree one folder down, .zip and
.tar.gz hand-ins unpacked safely (a hostile archive's ``..``, absolute names
and links skipped, a bomb one problem line), the usual toolchain prefixes,
``--entry`` for a renamed user program (and a static one refused in one
line), names that never merge, and the run settings passed on by grade."""
from __future__ import annotations

import csv
import io
import json
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from harness.grade import RunSettings, Submission, content_hash, find_submissions, honest_copy, pytest_command
from harness.handin import UNPACK_BYTES, UNPACK_MEMBERS, unique_names
from harness.port import NoUserProgram, port_tree

ROOT = Path(__file__).resolve().parents[2]
LESSON = ROOT / "fixtures" / "lesson5"
KT_USER = ROOT / "build" / "kt-user.o"
TIMEOUT_S = 600

needs_tools = pytest.mark.skipif(shutil.which("aarch64-linux-gnu-gcc") is None
                                 or shutil.which("qemu-system-aarch64") is None,
                                 reason="needs the cross compiler and QEMU")


@pytest.fixture(scope="module", autouse=True)
def built() -> None:
    subprocess.run(["make", "-s", "build/kernel8-test.img", "build/kt-user.o"], cwd=ROOT, check=True)


def tree(dst: Path, tag: int, *, entry: str | None = None) -> Path:
    """An honest copy of fixtures/lesson5; ``entry``: its user_process renamed."""
    honest_copy(LESSON, dst, tag)
    if entry is not None:
        kernel = dst / "src" / "kernel.c"
        kernel.write_text(re.sub(r"\buser_process\b", entry, kernel.read_text()))
    return dst


def zip_of(folder: Path, archive: Path, under: str, extra: dict[str, tuple[int, bytes]] | None = None) -> Path:
    """A zip of ``folder`` under ``under/``; ``extra``: name -> (unix mode, bytes)."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                z.write(f, f"{under}/{f.relative_to(folder)}")
        for name, (mode, data) in (extra or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            z.writestr(info, data)
    return archive


def tar_of(folder: Path, archive: Path, under: str, hostile: bool = False) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=under)
        if hostile:
            for name, kind in (("../escaped.txt", tarfile.REGTYPE), ("/tmp/kt-absolute.txt", tarfile.REGTYPE),
                               (f"{under}/link", tarfile.SYMTYPE), (f"{under}/hard", tarfile.LNKTYPE),
                               (f"{under}/null", tarfile.CHRTYPE)):
                info = tarfile.TarInfo(name)
                info.type = kind
                info.linkname = "/etc/passwd" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
                data = b"escaped\n" if kind == tarfile.REGTYPE else b""
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return archive


# --- resolving hand-ins (no QEMU) ---------------------------------------------------

def test_an_image_only_folder_is_that_image(tmp_path: Path) -> None:
    klass = tmp_path / "class"
    (klass / "amy").mkdir(parents=True)
    honest_copy(ROOT / "build" / "kernel8-test.img", klass / "amy" / "kernel8.img", 1)
    (klass / "amy" / ".DS_Store").write_bytes(b"x")
    (klass / "bo" / "out").mkdir(parents=True)  # one folder down, one *.img of another name
    honest_copy(ROOT / "build" / "kernel8-test.img", klass / "bo" / "out" / "mykernel.img", 2)
    subs = {s.name: s for s in find_submissions(klass, 5, tmp_path / "out")}
    assert subs["amy"].kind == "image" and subs["amy"].path == (klass / "amy" / "kernel8.img").resolve()
    assert subs["amy"].mode == "markers"  # its note says mode=test
    assert subs["amy"].content == content_hash(klass / "amy" / "kernel8.img")
    assert subs["bo"].kind == "image" and subs["bo"].inside == "out/mykernel.img"


def test_a_single_nested_folder_is_descended_into_within_a_bound(tmp_path: Path) -> None:
    klass = tmp_path / "class"
    tree(klass / "Ann" / "lesson05", 3)
    (klass / "Ann" / "__MACOSX").mkdir()
    (klass / "Ann" / ".hidden").write_text("x")
    deep = klass / "deep"
    for i in range(12):
        deep /= f"d{i}"
    tree(deep, 4)
    subs = {s.name: s for s in find_submissions(klass, 5, tmp_path / "out")}
    assert subs["Ann"].kind == "tree" and subs["Ann"].path == (klass / "Ann" / "lesson05").resolve()
    assert subs["Ann"].content == content_hash(klass / "Ann" / "lesson05")
    assert subs["deep"].path == (klass / "deep" / "d0" / "d1" / "d2" / "d3" / "d4" / "d5" / "d6" / "d7"
                                 / "d8").resolve()  # eight levels down, not further


def test_zip_and_tar_gz_are_unpacked_under_out_and_judged_as_what_they_hold(tmp_path: Path) -> None:
    klass, out = tmp_path / "class", tmp_path / "out"
    klass.mkdir()
    source = tree(tmp_path / "src", 5)
    zip_of(source, klass / "zed.zip", "zed/lesson05", {"__MACOSX/zed/._Makefile": (0o100644, b"junk")})
    tar_of(source, klass / "ty.tar.gz", "lesson05")
    subs = {s.name: s for s in find_submissions(klass, 5, out)}
    assert subs["zed"].kind == "tree" and subs["zed"].path == (out / "zed" / "handin" / "zed" / "lesson05").resolve()
    assert subs["ty"].path == (out / "ty" / "handin" / "lesson05").resolve()
    assert subs["zed"].content == subs["ty"].content == content_hash(source)  # so a copy of a fixture is found
    assert subs["zed"].inside == "zed.zip/zed/lesson05" and not subs["zed"].problem


def test_a_hostile_archive_creates_nothing_outside_and_follows_no_link(tmp_path: Path) -> None:
    klass, out = tmp_path / "class", tmp_path / "out"
    klass.mkdir()
    source = tree(tmp_path / "src", 6)
    tar_of(source, klass / "evil.tgz", "t", hostile=True)
    zip_of(source, klass / "evilz.zip", "z", {"../../zip-escaped.txt": (0o100644, b"x"),
                                               "/tmp/kt-zip-absolute.txt": (0o100644, b"x"),
                                               "z/link": (stat.S_IFLNK | 0o777, b"/etc/passwd")})
    subs = {s.name: s for s in find_submissions(klass, 5, out)}
    for name in ("evil", "evilz"):
        assert subs[name].kind == "tree" and not subs[name].problem, subs[name]
        assert subs[name].content == content_hash(source)  # the hostile members left no trace
        assert "unsafe archive member(s) skipped" in subs[name].note
    assert "5 unsafe" in subs["evil"].note and "3 unsafe" in subs["evilz"].note
    assert not list(tmp_path.rglob("*escaped*")) and not Path("/tmp/kt-absolute.txt").exists()
    assert not Path("/tmp/kt-zip-absolute.txt").exists()
    assert not [p for p in out.rglob("*") if p.is_symlink() or not (p.is_file() or p.is_dir())]


def test_a_bomb_is_one_problem_line(tmp_path: Path) -> None:
    klass, out = tmp_path / "class", tmp_path / "out"
    klass.mkdir()
    with zipfile.ZipFile(klass / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("bomb/zeros", "w", force_zip64=True) as f:
            for _ in range((UNPACK_BYTES >> 20) + 1):
                f.write(bytes(1 << 20))
    with tarfile.open(klass / "many.tar", "w") as tar:
        for i in range(UNPACK_MEMBERS + 1):
            tar.addfile(tarfile.TarInfo(f"f{i}"), io.BytesIO(b""))
    (klass / "junk.zip").write_bytes(b"PK not really a zip")
    subs = {s.name: s for s in find_submissions(klass, 5, out)}
    assert "unpacks to more than 64 MiB (a zip bomb?)" in subs["bomb"].problem
    assert f"more than {UNPACK_MEMBERS} members" in subs["many"].problem
    assert "cannot be unpacked" in subs["junk"].problem
    assert all("\n" not in s.problem for s in subs.values())
    assert sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) == 0  # nothing kept of them


def test_names_that_clean_alike_never_merge() -> None:
    names = unique_names(["Leo Smith", "Leo_Smith", "Leo_Smith.zip", "Leo+Smith.tar.gz", "amy"])
    assert len(set(names.values())) == 5
    assert names["Leo_Smith"] == "Leo_Smith" and names["amy"] == "amy"
    assert all(n.startswith("Leo_Smith-") for e, n in names.items() if e not in ("Leo_Smith", "amy"))
    assert unique_names(["Leo Smith"]) == {"Leo Smith": "Leo_Smith"}  # no collision: no suffix


def test_grade_passes_the_run_settings_to_the_child_pytest(tmp_path: Path) -> None:
    sub = Submission("x", tmp_path, 1, "el0", settings=RunSettings(60.0, 3.0, "user_main"))
    argv = pytest_command(sub, tmp_path, "lesson")
    for flag, value in (("--run-timeout", "60"), ("--stall", "3"), ("--entry", "user_main"),
                        ("--rules", "lesson")):
        assert argv[argv.index(flag) + 1] == value
    help_text = subprocess.run([sys.executable, "-m", "harness", "grade", "--help"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout
    assert "--run-timeout" in help_text and "--stall" in help_text and "--entry" in help_text
    make = subprocess.run(["make", "-n", "grade", "DIR=d", "OUT=o", "RULES=lesson", "ENTRY=user_main",
                           "RUN_TIMEOUT=60", "STALL=3"], cwd=ROOT, capture_output=True, text=True).stdout
    assert all(f in make for f in ("--rules lesson", "--entry user_main", "--run-timeout=60", "--stall=3"))


# --- building (the build jail, no QEMU) ---------------------------------------------

@needs_tools
@pytest.mark.parametrize("how", ["aarch64-none-elf-", "aarch64-elf-"])
def test_hard_coded_toolchain_prefixes_build(tmp_path: Path, how: str) -> None:
    src = tree(tmp_path / "t", 7)
    makefile = src / "Makefile"
    makefile.write_text(makefile.read_text().replace("$(ARMGNU)-", how))  # hard-coded in every recipe
    ported = port_tree(src, KT_USER, tmp_path / "work")
    assert b"KT-EL0-PARAMS-1" in ported.image.read_bytes()  # kt-user.o was linked in
    assert how + "gcc" in ported.log.read_text()


@needs_tools
def test_entry_names_a_renamed_user_program_and_a_static_one_is_refused(tmp_path: Path) -> None:
    src = tree(tmp_path / "t", 8, entry="user_main")
    with pytest.raises(NoUserProgram, match="global function user_process"):
        port_tree(src, KT_USER, tmp_path / "w1")
    ported = port_tree(src, KT_USER, tmp_path / "w2", entry="user_main")
    assert b"KT-EL0-PARAMS-1" in ported.image.read_bytes()
    kernel = src / "src" / "kernel.c"
    kernel.write_text(kernel.read_text().replace("void user_main(void)", "static void user_main(void)"))
    with pytest.raises(NoUserProgram) as e:
        port_tree(src, KT_USER, tmp_path / "w3", entry="user_main")
    assert "user_main() is a static function" in e.value.summary and "\n" not in e.value.summary


# --- one class of real hand-ins, graded ------------------------------------------

@needs_tools
def test_a_class_of_real_hand_ins_is_graded_as_handed_in(tmp_path: Path) -> None:
    """Graded with --entry user_main (every tree renames its program),
    --run-timeout and --stall passed on."""
    klass, out = tmp_path / "class", tmp_path / "out"
    klass.mkdir()
    (klass / "img only").mkdir()
    honest_copy(ROOT / "build" / "kernel8-test.img", klass / "img only" / "kernel8.img", 20)
    tree(klass / "Leo Smith" / "lesson05", 21, entry="user_main")
    (klass / "Leo Smith" / "__MACOSX").mkdir()
    zip_of(tree(tmp_path / "z", 22, entry="user_main"), klass / "Leo_Smith.zip", "Leo_Smith/lesson05")
    tar_of(tree(tmp_path / "a", 23, entry="user_main"), klass / "ann.tar.gz", "ann", hostile=True)
    with zipfile.ZipFile(klass / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros", bytes(UNPACK_BYTES + 1))
    never = tree(klass / "never", 24, entry="user_main")  # prints, but never starts the program
    kernel = never / "src" / "kernel.c"
    kernel.write_text(kernel.read_text().replace("move_to_user_mode((unsigned long)&user_main)", "-1"))
    done = subprocess.run([sys.executable, "-m", "harness", "grade", str(klass), "--out", str(out), "-j", "2",
                           "--class-seed", "3", "--entry", "user_main", "--run-timeout", "60", "--stall", "3"],
                          cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    rows = {r["name"]: r for r in csv.DictReader(open(out / "summary.csv", newline=""))}
    leos = sorted(n for n in rows if n.startswith("Leo_Smith-"))
    assert len(leos) == 2 and len(rows) == 6, rows.keys()
    assert {rows[n]["handed_in"].split(" ")[0] for n in leos} == {"Leo", "Leo_Smith.zip"}
    for name in ("img_only", "ann", *leos):
        assert rows[name]["score"] == rows[name]["max_score"] and not rows[name]["problem"], rows[name]
    assert "unsafe archive member(s) skipped" in rows["ann"]["handed_in"]
    assert float(rows["bomb"]["score"]) == 0 and "zip bomb" in rows["bomb"]["problem"]
    problem = rows["never"]["problem"]
    assert float(rows["never"]["score"]) == 0 and "never started" in problem and "\n" not in problem
    assert "its last line: \\x0duser task killed: ESR" in problem  # the kernel's own abort line
    transcript = Path(problem.rsplit("transcript: ", 1)[1])
    assert transcript.is_file() and out in transcript.parents
    replay = json.loads((out / "ann" / "results.json").read_text())["output"]
    assert "--run-timeout 60 --stall 3 --entry user_main" in replay
    assert not (tmp_path / "escaped.txt").exists()
