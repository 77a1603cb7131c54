"""Numbers the kernel and the harness share, read from their one source,
kernel/include/uapi/syscall.h (kernel C, kernel assembly and the EL0 user
library include it; the judges read it here).

Every ``#define NAME number`` of the header is an attribute of this module
(``abi.SYS_CLONE``, ``abi.NR_SYSCALLS``, ``abi.ENOSYS``); a syscall added
to the header is here too, named in SYSCALL_NAMES by its ``SYS_`` name in
lower case. Judges may use these instead of bare numbers:
``t.of(Sys, nr=SYS_CLONE)``. A header this reader cannot read stops the
import with AbiHeaderError naming the file and the line.
"""

from __future__ import annotations

import re
from pathlib import Path

HEADER = Path(__file__).resolve().parent.parent / "kernel" / "include" / "uapi" / "syscall.h"

#: names the harness itself relies on; the header must define each
REQUIRED = ("SYS_WRITE", "SYS_MALLOC", "SYS_CLONE", "SYS_EXIT", "NR_SYSCALLS",
            "EAGAIN", "ENOMEM", "EFAULT", "EINVAL", "ENOSYS", "MALLOC_FAILED")

_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)(?![\w(])[ \t]*(.*)$")
#: an integer constant as C spells it here: 4, -1, 0x10, (-1L), 4UL
_NUMBER = re.compile(r"^\(?\s*(-?)\s*(0[xX][0-9a-fA-F]+|\d+)[uUlL]*\s*\)?$")


class AbiHeaderError(Exception):
    """The contract header is missing or says something the harness cannot use."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"{path}: {why}")
        self.path = path


def parse(text: str, path: Path = HEADER) -> dict[str, int]:
    """Every ``#define NAME <integer>`` in header text, checked: the
    REQUIRED names present, the SYS_* numbers exactly 0..NR_SYSCALLS-1."""
    values: dict[str, int] = {}
    lines = _COMMENT.sub(lambda m: "\n" * m.group().count("\n"), text).splitlines()
    for number, line in enumerate(lines, 1):
        m = _DEFINE.match(line)
        if m is None:
            continue
        name, body = m.group(1), m.group(2).strip()
        if name.endswith("_H") and not body:  # the include guard
            continue
        v = _NUMBER.match(body)
        if v is None:
            raise AbiHeaderError(path, f"line {number}: {name} is {body!r}, not an integer constant")
        if name in values:
            raise AbiHeaderError(path, f"line {number}: {name} is defined twice")
        values[name] = int(v.group(2), 0) * (-1 if v.group(1) else 1)
    missing = [n for n in REQUIRED if n not in values]
    if missing:
        raise AbiHeaderError(path, f"no #define for {', '.join(missing)}")
    calls = sorted(values[n] for n in values if n.startswith("SYS_"))
    if calls != list(range(values["NR_SYSCALLS"])):
        raise AbiHeaderError(path, f"the SYS_* numbers {calls} are not 0..NR_SYSCALLS-1 "
                             f"(NR_SYSCALLS is {values['NR_SYSCALLS']}), each once")
    return values


def read(path: Path = HEADER) -> dict[str, int]:
    """parse() of the header file at path."""
    try:
        text = path.read_text()
    except OSError as e:
        raise AbiHeaderError(path, f"cannot read the contract header ({e.strerror or e})") from None
    return parse(text, path)


def syscall_names(values: dict[str, int]) -> dict[int, str]:
    """Number -> name (``SYS_WRITE`` -> ``write``) of every syscall in values."""
    return {v: n.removeprefix("SYS_").lower() for n, v in values.items() if n.startswith("SYS_")}


NUMBERS: dict[str, int] = read()  #: every #define of the header, by name

SYS_WRITE: int = NUMBERS["SYS_WRITE"]  #: long write(const char *s)
SYS_MALLOC: int = NUMBERS["SYS_MALLOC"]  #: void *malloc(void): page address or -1
SYS_CLONE: int = NUMBERS["SYS_CLONE"]  #: long clone(void *stack): child pid / 0 / -errno
SYS_EXIT: int = NUMBERS["SYS_EXIT"]  #: void exit(void): never returns; its ``sys`` marker has no ret
NR_SYSCALLS: int = NUMBERS["NR_SYSCALLS"]  #: numbers >= this get -ENOSYS

EAGAIN: int = NUMBERS["EAGAIN"]  #: task table full
ENOMEM: int = NUMBERS["ENOMEM"]  #: out of memory
EFAULT: int = NUMBERS["EFAULT"]  #: pointer outside user memory
EINVAL: int = NUMBERS["EINVAL"]  #: invalid argument
ENOSYS: int = NUMBERS["ENOSYS"]  #: no such system call

MALLOC_FAILED: int = NUMBERS["MALLOC_FAILED"]  #: what malloc returns when no page is free

SYSCALL_NAMES: dict[int, str] = syscall_names(NUMBERS)

globals().update({n: v for n, v in NUMBERS.items() if n not in globals()})  # a name added to the header
