"""Test harness of the kernel's conformance suite (docs/harness-api.md).

Boots the test image in QEMU raspi3b, runs one scenario with a seed, parses
the console (docs/protocol.md) into typed events and hands a Transcript to
the judges. Layers, after U-Boot test/py: qemu (process) -> protocol
(markers) -> runner (one run, verdicts) -> plugin (pytest).
"""

from .errors import (CommandRejected, HarnessError, ImageError, KernelDied, KernelPanic,
                     KernelSilent, OutputFlood, ProtocolError, QemuNotFound, RunTimeout)
from .judge import RuleBroken
from .prng import SplitMix64
from .runner import RunConfig, list_scenarios, run_scenario
from .transcript import Transcript

__all__ = [
    "CommandRejected", "HarnessError", "ImageError", "KernelDied", "KernelPanic",
    "KernelSilent", "OutputFlood", "ProtocolError", "QemuNotFound", "RunTimeout",
    "RuleBroken", "SplitMix64", "RunConfig", "list_scenarios", "run_scenario", "Transcript",
]
