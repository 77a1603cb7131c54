"""Exception Syndrome Register decoding, in words a student can act on.

The kernel runs at EL1 and its tasks at EL0, so "lower EL" is EL0 and
"same EL" is EL1 (ARM ARM D17.2.37, ESR_EL1).
"""

from __future__ import annotations

EC_NAMES: dict[int, str] = {
    0x00: "unknown/undefined instruction",
    0x01: "trapped WFI/WFE",
    0x07: "trapped SIMD/floating-point access",
    0x0E: "illegal execution state",
    0x11: "SVC from AArch32",
    0x15: "SVC from AArch64",
    0x16: "HVC from AArch64",
    0x17: "SMC from AArch64",
    0x18: "trapped MSR/MRS or system instruction",
    0x20: "instruction abort from EL0",
    0x21: "instruction abort at EL1",
    0x22: "PC alignment fault",
    0x24: "data abort from EL0",
    0x25: "data abort at EL1",
    0x26: "SP alignment fault",
    0x2C: "trapped floating-point exception",
    0x2F: "SError interrupt",
    0x30: "breakpoint from EL0",
    0x31: "breakpoint at EL1",
    0x32: "software step from EL0",
    0x33: "software step at EL1",
    0x34: "watchpoint from EL0",
    0x35: "watchpoint at EL1",
    0x3C: "BRK instruction",
}

_ABORT_ECS = frozenset({0x20, 0x21, 0x24, 0x25})


def exception_class(esr: int) -> int:
    """ESR bits [31:26]."""
    return (esr >> 26) & 0x3F


def _fault_status(fsc: int) -> str:
    """Words for an abort's fault status code (ISS bits [5:0])."""
    level = fsc & 0x3
    kinds = {0x00: "address size fault", 0x04: "translation fault",
             0x08: "access flag fault", 0x0C: "permission fault"}
    if fsc & 0x3C in kinds:
        return f"{kinds[fsc & 0x3C]} level {level}"
    return {0x10: "synchronous external abort",
            0x21: "alignment fault",
            0x30: "TLB conflict abort"}.get(fsc, f"fault status 0x{fsc:02x}")


def describe(esr: int) -> str:
    """One phrase for an ESR value, e.g.
    ``'data abort at EL1 (EC 0x25: translation fault level 0, write)'``."""
    ec = exception_class(esr)
    name = EC_NAMES.get(ec, "reserved/unrecognised exception class")
    detail = f"EC 0x{ec:02x}"
    if ec in _ABORT_ECS:
        extra = [_fault_status(esr & 0x3F)]
        if ec in (0x24, 0x25):
            extra.append("write" if esr & (1 << 6) else "read")
        detail += ": " + ", ".join(extra)
    return f"{name} ({detail})"
