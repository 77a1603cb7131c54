"""The seed PRNG, against docs/protocol.md and against the scenarios' own C."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from selftest_support import ROOT

from harness.prng import SplitMix64

ULIB = ROOT / "kernel" / "user" / "ulib.c"


def test_first_value_for_seed_0_is_the_documented_one() -> None:
    assert SplitMix64(0).next() == 0xE220A8397B1DCDAF


def test_same_seed_same_sequence_and_values_are_64_bit() -> None:
    a, b = SplitMix64(12345), SplitMix64(12345)
    values = [a.next() for _ in range(1000)]
    assert values == [b.next() for _ in range(1000)]
    assert all(0 <= v < 2**64 for v in values)
    assert len(set(values)) == 1000


def test_another_seed_gives_another_sequence() -> None:
    assert SplitMix64(42).next() != SplitMix64(43).next()


def test_the_state_wraps_modulo_2_64() -> None:
    g = SplitMix64(2**64 - 1)
    g.next()
    assert g.state == (2**64 - 1 + 0x9E3779B97F4A7C15) % 2**64


@pytest.mark.parametrize("seed", [-1, 2**64])
def test_seed_outside_64_bits_is_refused(seed: int) -> None:
    with pytest.raises(ValueError):
        SplitMix64(seed)


def test_matches_u_rng_next_of_the_user_library(tmp_path: Path) -> None:
    """Compile kernel/user/ulib.c's u_rng_next natively and compare."""
    gcc = shutil.which("gcc")
    source = ULIB.read_text() if ULIB.exists() else ""
    function = re.search(r"^unsigned long u_rng_next\(.*?^}\n", source, re.M | re.S)
    if gcc is None or function is None:
        pytest.skip("needs a native gcc and u_rng_next in kernel/user/ulib.c")
    program = tmp_path / "rng.c"
    program.write_text(
        '#include <stdio.h>\n#include "ulib.h"\n' + function.group(0) +
        "int main(void) { unsigned long seeds[] = {0, 42, 18446744073709551615UL};\n"
        "  for (int s = 0; s < 3; s++) { struct u_rng r; r.state = seeds[s];\n"
        '    for (int i = 0; i < 4; i++) printf("%lu\\n", u_rng_next(&r)); } return 0; }\n')
    exe = tmp_path / "rng"
    subprocess.run([gcc, "-I", str(ULIB.parent), "-I", str(ROOT / "kernel" / "include"),
                    "-o", str(exe), str(program)], check=True, capture_output=True)
    got = [int(v) for v in subprocess.run([str(exe)], check=True, capture_output=True,
                                          text=True).stdout.split()]
    want = []
    for seed in (0, 42, 2**64 - 1):
        g = SplitMix64(seed)
        want += [g.next() for _ in range(4)]
    assert got == want
