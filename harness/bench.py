"""Timing figures for the harness (``make bench``; not a test).

    python -m harness.bench [--kernel IMG] [--runs N] [--seed N] [--scenario NAME ...]
                            [--realtime] [--no-suite]

For each scenario: the median wall time of a run through the harness
(spawn on a pty, parse, save) next to a bare run of the same QEMU command
driven by a minimal pipe reader (wait for ``ready``, send the command, read
to EOF, no parsing): the difference is the harness's overhead per run. The
floor is QEMU raspi3b's own boot-to-exit on an image that exits at once
(fixtures/images/exit.S). Then the wall time of the whole suite
(``pytest tests/scenarios``), serially and with ``-n 2``.

Wall times are only as steady as the machine is idle. The default,
deterministic mode (-icount) fixes the guest's work, so the overhead column
measures the harness alone; with --realtime the guest's work itself varies
with the host's speed (a slower run sees more timer ticks).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .build import ensure_built
from .runner import DEFAULT_KERNEL, RunConfig, list_scenarios, prepare, run_scenario

FLOOR_IMAGE = "build/bad-images/exit.img"
TIMEOUT = 60.0


def _median_ms(runs: int, once: Callable[[], object]) -> float:
    """Median wall time of ``once()`` over ``runs`` calls, in milliseconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        once()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _bare_run(argv: list[str], command: bytes | None) -> None:
    """QEMU with the console on pipes: wait for ``ready``, send ``command``,
    read to EOF. The least any driver must do."""
    with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        fd, seen, deadline = proc.stdout.fileno(), b"", time.monotonic() + TIMEOUT
        while command is not None and b" ready\r\n" not in seen and time.monotonic() < deadline:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            seen += chunk
        if command is not None:
            proc.stdin.write(command)
            proc.stdin.flush()
        while os.read(fd, 1 << 16):
            pass
        proc.wait(TIMEOUT)


def _suite_seconds(root: Path, kernel: Path, seed: int, extra: list[str]) -> tuple[float, str]:
    """Wall time of ``pytest tests/scenarios`` and its last output line."""
    argv = [sys.executable, "-m", "pytest", "tests/scenarios", "-q", "-p", "no:cacheprovider",
            f"--kernel={kernel}", "--seed", str(seed), *extra]
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=root, capture_output=True, text=True, check=False)
    lines = proc.stdout.strip().splitlines()
    return time.perf_counter() - start, lines[-1] if lines else f"exit status {proc.returncode}"


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m harness.bench", description="Timing figures "
                                     "for the harness (not a test).")
    parser.add_argument("--kernel", type=Path)
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (median)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--scenario", action="append", help="only these (default: all listed)")
    parser.add_argument("--realtime", dest="deterministic", action="store_false",
                        help="QEMU in real time instead of the default -icount (with -icount the "
                             "guest does the same work in every run, so the overhead column is "
                             "not blurred by the host's speed)")
    parser.add_argument("--no-suite", action="store_true", help="skip the whole-suite timings")
    args = parser.parse_args(argv)
    root = Path.cwd()
    kernel = args.kernel or root / DEFAULT_KERNEL
    if args.kernel is None:
        ensure_built(kernel, [DEFAULT_KERNEL], root)
    ensure_built(root / FLOOR_IMAGE, ["-C", "fixtures/images"], root)
    cfg = RunConfig(kernel=kernel, run_timeout=TIMEOUT, deterministic=args.deterministic,
                    transcript_dir=root / "build" / "bench")
    qemu_cmd, _ = prepare(cfg)
    floor_cmd = qemu_cmd[:qemu_cmd.index("-kernel") + 1] + [str(root / FLOOR_IMAGE)] + \
        qemu_cmd[qemu_cmd.index("-kernel") + 2:]
    floor = _median_ms(args.runs, lambda: _bare_run(floor_cmd, None))
    print(f"QEMU raspi3b boot-to-exit floor ({FLOOR_IMAGE}): {floor:.1f} ms "
          f"(median of {args.runs})\n")
    names = args.scenario or list_scenarios(cfg)
    print(f"mode: {'deterministic (-icount)' if args.deterministic else 'real time'}, seed {args.seed}")
    print(f"{'scenario':<24}{'harness run':>14}{'bare QEMU run':>16}{'overhead':>12}{'markers':>10}")
    overheads = []
    for name in names:
        events = len(run_scenario(cfg, name, args.seed).events)  # warm up, and check it runs
        harness = _median_ms(args.runs, lambda: run_scenario(cfg, name, args.seed))
        command = f"run {name} {args.seed}\n".encode()
        bare = _median_ms(args.runs, lambda: _bare_run(qemu_cmd, command))
        overheads.append(harness - bare)
        print(f"{name:<24}{harness:>11.1f} ms{bare:>13.1f} ms{harness - bare:>9.1f} ms{events:>10}")
    print(f"\nharness overhead per run: median {statistics.median(overheads):.1f} ms, "
          f"max {max(overheads):.1f} ms (harness run minus bare QEMU run)")
    if not args.no_suite:
        mode = [] if args.deterministic else ["--realtime"]
        for label, extra in (("serial", mode), ("-n 2", mode + ["-p", "xdist", "-n", "2"])):
            seconds, last = _suite_seconds(root, kernel, args.seed, extra)
            print(f"suite (pytest tests/scenarios), {label:>6}: {seconds:6.2f} s   [{last}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
