"""Is this interpreter able to judge anyone? (issue 14, "runs on what courses have")

``grade``, ``selfcheck`` and ``autograde`` run the suite in a child pytest
started with ``sys.executable``. On an interpreter without pytest (pyenv's
``python3`` beside Debian's, a bare virtualenv) every child would fail and
every student would be "not graded" or worse; so these commands ask first
and stop with one line naming what is missing and how to get it.

Only the standard library is imported here, and nothing of the harness:
``python -m harness`` calls this before it imports the modules that need
pexpect.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
from pathlib import Path

#: module -> (Debian/Ubuntu package, the oldest version that works or None)
REQUIRED: dict[str, tuple[str, tuple[int, ...] | None]] = {
    "pytest": ("python3-pytest", (7, 0)),  # pytest.StashKey (harness/plugin.py)
    "pexpect": ("python3-pexpect", None),
    "jinja2": ("python3-jinja2", None),  # the reports (grading/*.j2)
}
#: Python < 3.11 has no tomllib; tomli (python3-tomli) reads the rubric the same way
TOML_FALLBACK = ("tomli", "python3-tomli")
DEBIAN_PYTHON = "/usr/bin/python3"  #: the interpreter the Makefile uses (Debian's packages)


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(c for c in piece if c.isdigit()) if piece[:1].isdigit() else ""
        if not digits:
            break
        parts.append(int(digits[:6]))
    return tuple(parts)


def _importable(module: str) -> str | None:
    """None if ``module`` imports; else why not, briefly."""
    try:
        importlib.import_module(module)
    except Exception as e:  # an ImportError, or a broken install raising anything
        return f"{type(e).__name__}: {e}".splitlines()[0][:160]
    return None


def problems(need_pytest: bool = True) -> list[tuple[str, str]]:
    """(what is wrong, the package that fixes it) for this interpreter."""
    found = []
    for module, (package, oldest) in REQUIRED.items():
        if module == "pytest" and not need_pytest:
            continue
        why = _importable(module)
        if why is not None:
            found.append((f"no {module} ({why})", package))
            continue
        if oldest is not None:
            try:
                have = importlib.metadata.version(module)
            except importlib.metadata.PackageNotFoundError:
                continue  # importable without metadata (vendored): trust it
            if _version(have) < oldest:
                want = ".".join(map(str, oldest))
                found.append((f"{module} {have} is older than {want}", package))
    if sys.version_info < (3, 11) and _importable("tomllib") is not None:
        module, package = TOML_FALLBACK
        if _importable(module) is not None:
            found.append((f"no tomllib (Python {sys.version_info[0]}.{sys.version_info[1]}) and no {module}",
                          package))
    if sys.version_info < (3, 10):
        found.append((f"Python {sys.version.split()[0]} is older than 3.10", "python3"))
    return found


def message(command: str, found: list[tuple[str, str]]) -> str:
    """The one line that stops ``command``."""
    what = "; ".join(w for w, _ in found)
    fix = f"apt-get install {' '.join(sorted({p for _, p in found}))}"
    if Path(sys.executable).resolve() != Path(DEBIAN_PYTHON).resolve() and Path(DEBIAN_PYTHON).exists():
        fix = f"run it with {DEBIAN_PYTHON} (make: PYTHON={DEBIAN_PYTHON}), or {fix}"
    return f"{command}: this Python ({sys.executable}) cannot run the suite: {what}; {fix}"


def require(command: str, need_pytest: bool = True) -> None:
    """Exit 2 with one line on stderr if this interpreter cannot judge."""
    found = problems(need_pytest)
    if found:
        print(message(command, found), file=sys.stderr)
        raise SystemExit(2)
