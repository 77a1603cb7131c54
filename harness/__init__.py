"""Test harness of the kernel's conformance suite (docs/harness-api.md).

Boots the test image in QEMU raspi3b, runs one scenario with a seed, parses
the console (docs/protocol.md) into typed events and hands a Transcript to
the judges. Layers, after U-Boot test/py: qemu (process) -> protocol
(markers) -> runner (one run, verdicts) -> plugin (pytest).
"""

from __future__ import annotations

import importlib
from typing import Any

# Loaded on first use (PEP 562), so ``python -m harness`` can check its
# interpreter (harness/preflight.py) before pexpect is imported.
_HOME = {
    **dict.fromkeys(["CommandRejected", "HarnessError", "ImageError", "KernelDied", "KernelPanic",
                     "KernelSilent", "OutputFlood", "ProtocolError", "QemuNotFound", "RunTimeout"], "errors"),
    "RuleBroken": "judge", "SplitMix64": "prng", "RunConfig": "runner", "list_scenarios": "runner",
    "run_scenario": "runner", "Transcript": "transcript",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CommandRejected", "HarnessError", "ImageError", "KernelDied", "KernelPanic",
    "KernelSilent", "OutputFlood", "ProtocolError", "QemuNotFound", "RunTimeout",
    "RuleBroken", "SplitMix64", "RunConfig", "list_scenarios", "run_scenario", "Transcript",
]
