"""The demo image (`make qemu`): the lesson-5 program must run by itself.

The demo kernel prints plain text, not markers, so this is judged on its
console: the greeting, both children's strings (a character per write),
their interleaving under timer preemption, and the kernel's last words.
The demo then idles; the test stops QEMU (the Qemu context manager always
reaps it).
"""
from __future__ import annotations

import time
from pathlib import Path

from harness.build import ensure_built
from harness.qemu import Qemu, ReadTimeout, find_qemu, qemu_argv

ROOT = Path(__file__).resolve().parents[2]
DEMO = "build/kernel8.img"
ALL_EXITED = "All user tasks have exited."
TIMEOUT_S = 20.0
CHILDREN = ("12345", "abcde")  # kernel/user/demo.c
ROUNDS = 6                     # DEMO_ROUNDS in kernel/user/demo.c


def demo_console() -> str:
    """Everything the demo prints up to the kernel's all-exited line."""
    image = ROOT / DEMO
    ensure_built(image, [DEMO], ROOT)
    argv = qemu_argv(find_qemu("qemu-system-aarch64"), image, "mini", deterministic=True)
    lines: list[str] = []
    deadline = time.monotonic() + TIMEOUT_S
    with Qemu(argv, max_output=1 << 20) as qemu:
        while (line := qemu.read_line(deadline)) is not None:
            lines.append(line)
            if ALL_EXITED in line:
                break
    return "\n".join(lines)


def test_demo_children_interleave_and_the_run_ends() -> None:
    try:
        text = demo_console()
    except ReadTimeout:
        raise AssertionError(f"the demo did not print {ALL_EXITED!r} within {TIMEOUT_S:g} s") from None
    assert "Hello from user mode" in text, f"no greeting from the first task:\n{text}"
    assert text.rstrip().endswith(ALL_EXITED), f"the kernel must say when every task exited:\n{text}"
    body = text[text.index("interleave.") + len("interleave."):text.index(ALL_EXITED)]
    printed = "".join(body.split())
    for child in CHILDREN:
        chars = [c for c in printed if c in child]
        assert "".join(chars) == child * ROUNDS, (
            f"child {child!r} must print its string {ROUNDS} times, in order:\n{text}")
    owners = [0 if c in CHILDREN[0] else 1 for c in printed]
    turns = sum(1 for a, b in zip(owners, owners[1:]) if a != b)
    assert turns >= 2, f"the children's output must interleave (preemption); it switched {turns} times:\n{text}"
