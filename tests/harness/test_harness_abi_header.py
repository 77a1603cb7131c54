"""harness.abi reads its numbers from kernel/include/uapi/syscall.h, the one
source C and Python share (issue 15): its values are what the C
preprocessor makes of the header, a fifth syscall needs no Python edit, and
a header it cannot use stops it with a one-line reason."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from selftest_support import ROOT

from harness import abi

GOOD = """/* a contract header */
#ifndef UAPI_SYSCALL_H
#define UAPI_SYSCALL_H
#define SYS_WRITE   0   /* write */
#define SYS_MALLOC  1
#define SYS_CLONE   2
#define SYS_EXIT    3
#define NR_SYSCALLS 4
#define EAGAIN  11
#define ENOMEM  12
#define EFAULT  14
#define EINVAL  22
#define ENOSYS  38
#define MALLOC_FAILED (-1L)
#endif
"""


def _cpp_numbers(header: Path) -> dict[str, int]:
    """The object-like macros the C preprocessor defines in header, as integers."""
    cpp = shutil.which("aarch64-linux-gnu-cpp") or shutil.which("cpp")
    if cpp is None:
        pytest.skip("no C preprocessor (cpp) to read the header with")
    done = subprocess.run([cpp, "-dM", "-undef", "-nostdinc", str(header)], capture_output=True,
                          text=True, check=True, timeout=60)
    found = {}
    for name, body in re.findall(r"^#define (\w+) (.+)$", done.stdout, re.M):
        if name.endswith("_H") or name.startswith("_"):  # the guard, the compiler's own
            continue
        # C integer constant -> Python: drop the L/UL suffixes, keep parentheses and sign
        found[name] = int(eval(re.sub(r"(?<=[0-9a-fA-F])[uUlL]+\b", "", body), {}))
    return found


def test_the_numbers_are_what_the_preprocessor_reads_in_the_header() -> None:
    said = _cpp_numbers(abi.HEADER)
    assert said, "the preprocessor found no #define in the header"
    assert abi.NUMBERS == said
    for name, value in said.items():
        assert getattr(abi, name) == value, name
    assert abi.SYSCALL_NAMES == {0: "write", 1: "malloc", 2: "clone", 3: "exit"}


def test_a_syscall_added_to_the_header_is_read_without_a_python_edit() -> None:
    text = GOOD.replace("#define NR_SYSCALLS 4", "#define SYS_YIELD 4\n#define NR_SYSCALLS 5")
    values = abi.parse(text, Path("syscall.h"))
    assert values["NR_SYSCALLS"] == 5 and values["SYS_YIELD"] == 4
    assert abi.syscall_names(values)[4] == "yield"


@pytest.mark.parametrize(("edit", "why"), [
    (("#define NR_SYSCALLS 4\n", ""), "no #define for NR_SYSCALLS"),
    (("#define ENOSYS  38", "#define ENOSYS  ENOMEM"), "line 13: ENOSYS is 'ENOMEM', not an integer"),
    (("#define SYS_EXIT    3", "#define SYS_EXIT    4"), "the SYS_* numbers [0, 1, 2, 4] are not 0..NR"),
    (("#define SYS_EXIT    3", "#define SYS_EXIT    2"), "the SYS_* numbers [0, 1, 2, 2] are not 0..NR"),
    (("#define NR_SYSCALLS 4", "#define NR_SYSCALLS 5"), "(NR_SYSCALLS is 5)"),
    (("#define EAGAIN  11", "#define EAGAIN  11\n#define EAGAIN  11"), "line 10: EAGAIN is defined twice"),
])
def test_a_bad_header_is_refused_naming_why(edit: tuple[str, str], why: str) -> None:
    assert edit[0] in GOOD
    with pytest.raises(abi.AbiHeaderError) as e:
        abi.parse(GOOD.replace(*edit), Path("kernel/include/uapi/syscall.h"))
    assert str(e.value).startswith("kernel/include/uapi/syscall.h: ")
    assert why in str(e.value)


def test_the_good_sample_parses_with_its_comments_and_guard() -> None:
    assert abi.parse(GOOD)["MALLOC_FAILED"] == -1


def test_a_missing_header_is_named() -> None:
    with pytest.raises(abi.AbiHeaderError, match="nowhere/syscall.h: cannot read the contract header"):
        abi.read(Path("nowhere/syscall.h"))


def test_the_harness_will_not_load_with_a_bad_header(tmp_path: Path) -> None:
    """A copy of the suite whose header lost NR_SYSCALLS: importing harness.abi fails with the reason."""
    shutil.copytree(ROOT / "harness", tmp_path / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    header = tmp_path / "kernel" / "include" / "uapi" / "syscall.h"
    header.parent.mkdir(parents=True)
    header.write_text(GOOD.replace("#define NR_SYSCALLS 4\n", ""))
    done = subprocess.run([sys.executable, "-c", "import harness.abi"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert f"AbiHeaderError: {header}: no #define for NR_SYSCALLS" in done.stderr
