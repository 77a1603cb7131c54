"""Building an image on demand with make, once even under xdist."""

from __future__ import annotations

import fcntl
import subprocess
from pathlib import Path

from .errors import ImageError

MAKE_TIMEOUT = 600.0  #: seconds; a kernel build takes a few


def ensure_built(product: Path, make_args: list[str], root: Path) -> None:
    """If ``product`` is missing, run ``make *make_args`` in ``root``.

    Concurrent callers (xdist workers) take turns on a lock file under
    ``root/build`` and the second one finds the product made. Raises
    ImageError with make's last lines if the build fails or makes nothing.
    """
    if product.exists():
        return
    lock_path = root / "build" / ".harness-make.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    command = " ".join(["make", *make_args])
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if product.exists():
            return
        try:
            proc = subprocess.run(["make", *make_args], cwd=root, capture_output=True,
                                  text=True, timeout=MAKE_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ImageError(f"{product} is missing and `{command}` could not run: {e}") from None
        if proc.returncode != 0 or not product.exists():
            raise ImageError(f"{product} is missing and `{command}` (in {root}) exited "
                             f"{proc.returncode} without making it",
                             lines=(proc.stdout + proc.stderr).strip().splitlines(),
                             source="make output")
