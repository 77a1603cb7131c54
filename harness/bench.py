"""Timing figures for the harness (``make bench``; not a test).

    python -m harness.bench [--kernel IMG] [--runs N] [--seed N] [--scenario NAME ...]
                            [--realtime] [--no-suite]

For each scenario: the median wall time of a run through the harness
(spawn on a pty, parse, save) next to a bare run of the same QEMU command
driven by a minimal reader (wait for ``ready``, send the command, read to
the end, no parsing) on a pty as the harness uses: the difference is the
harness's overhead per run. A bare run on pipes is shown too: QEMU writes
each UART byte with its own write(), which costs more on a terminal than on
a pipe, so output-heavy scenarios pay for the pty itself. The
floor is QEMU raspi3b's own boot-to-exit on an image that exits at once
(fixtures/images/exit.S). Then the wall time of the whole suite
(``pytest tests/scenarios``), serially and with ``-n 2``, and the time to
judge the lesson-style kernel fixtures/lesson5 from EL0 (``--submission``:
port, build and every scenario).

Wall times are only as steady as the machine is idle. The default,
deterministic mode (-icount) fixes the guest's work, so the overhead column
measures the harness alone; with --realtime the guest's work itself varies
with the host's speed (a slower run sees more timer ticks).
"""

from __future__ import annotations

import argparse
import os
import pty
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .build import ensure_built
from .prng import parse_seed
from .qemu import qemu_argv
from .runner import DEFAULT_KERNEL, RunConfig, list_scenarios, prepare, run_scenario

FLOOR_IMAGE = "build/bad-images/exit.img"
GRADE_N = 20  #: submissions per grading figure
TIMEOUT = 60.0


def _median_ms(runs: int, once: Callable[[], object]) -> float:
    """Median wall time of ``once()`` over ``runs`` calls, in milliseconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        once()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _read(fd: int) -> bytes:
    """One read of the console; b"" at its end (a pty reports that as EIO)."""
    try:
        return os.read(fd, 1 << 16)
    except OSError:
        return b""


def _bare_run(argv: list[str], command: bytes | None, on_pty: bool) -> None:
    """QEMU with the console on a pty (as the harness has it) or on pipes:
    wait for ``ready``, send ``command``, read to the end. The least any
    driver must do: no parsing, no saving."""
    if on_pty:
        master, slave = pty.openpty()
        proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        os.close(slave)
        read_fd, write_fd = master, master
    else:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        assert proc.stdin is not None and proc.stdout is not None
        read_fd, write_fd = proc.stdout.fileno(), proc.stdin.fileno()
    try:
        seen, deadline = b"", time.monotonic() + TIMEOUT
        while command is not None and b" ready" not in seen and time.monotonic() < deadline:
            chunk = _read(read_fd)
            if not chunk:
                break
            seen += chunk
        if command is not None:
            os.write(write_fd, command)
        while _read(read_fd):
            pass
        proc.wait(TIMEOUT)
    finally:
        proc.kill()
        proc.wait()
        if on_pty:
            os.close(master)
        else:
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()


def _suite_seconds(root: Path, kernel: Path, seed: int, extra: list[str]) -> tuple[float, str]:
    """Wall time of ``pytest tests/scenarios`` and its last output line."""
    argv = [sys.executable, "-m", "pytest", "tests/scenarios", "-q", "-p", "no:cacheprovider",
            f"--kernel={kernel}", "--seed", str(seed), *extra]
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=root, capture_output=True, text=True, check=False)
    lines = proc.stdout.strip().splitlines()
    return time.perf_counter() - start, lines[-1] if lines else f"exit status {proc.returncode}"


def _submission_seconds(root: Path, tree: Path, seed: int) -> tuple[float, str]:
    """Wall time of judging a source tree from EL0 (port + build + every
    scenario, as `make check SUBMISSION=` with two workers) and its last line."""
    argv = [sys.executable, "-m", "pytest", "tests/scenarios", "-q", "-p", "no:cacheprovider",
            f"--submission={tree}", "--seed", str(seed), "-n", "2", "--dist", "loadgroup",
            "--transcript-dir", str(root / "build" / "bench")]
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=root, capture_output=True, text=True, check=False)
    lines = proc.stdout.strip().splitlines()
    return time.perf_counter() - start, lines[-1] if lines else f"exit status {proc.returncode}"


def _grading_seconds(root: Path, kind: str, source: Path, n: int) -> float:
    """Wall time of `python -m harness grade` over ``n`` copies of ``source``
    (an image or a tree), with the default -j (the cores)."""
    klass = root / "build" / "bench" / f"class-{kind}"
    out = root / "build" / "bench" / f"graded-{kind}"
    for d in (klass, out):
        shutil.rmtree(d, ignore_errors=True)
    klass.mkdir(parents=True)
    for i in range(n):
        dst = klass / f"s{i:03d}{source.suffix}"
        if source.is_dir():
            shutil.copytree(source, dst, ignore=shutil.ignore_patterns("build", "kernel8.img"))
        else:
            shutil.copy(source, dst)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "harness", "grade", str(klass), "--out", str(out)], cwd=root,
                   capture_output=True, check=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m harness.bench", description="Timing figures "
                                     "for the harness (not a test).")
    parser.add_argument("--kernel", type=Path)
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (median)")
    parser.add_argument("--seed", type=parse_seed, default=42)
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
    qemu_cmd, (console, _) = prepare(cfg)
    floor_cmd = qemu_argv(qemu_cmd[0], root / FLOOR_IMAGE, console, cfg.deterministic)
    floor = _median_ms(args.runs, lambda: _bare_run(floor_cmd, None, on_pty=True))
    print(f"QEMU raspi3b boot-to-exit floor ({FLOOR_IMAGE}): {floor:.1f} ms "
          f"(median of {args.runs})\n")
    names = args.scenario or list_scenarios(cfg)
    print(f"mode: {'deterministic (-icount)' if args.deterministic else 'real time'}, seed {args.seed}")
    print("harness run: through the harness; bare: the same QEMU command read by a minimal "
          "driver\n(pty, as the harness uses; pipe, to show what the terminal itself costs)")
    print(f"{'scenario':<20}{'harness run':>13}{'bare, pty':>12}{'overhead':>11}"
          f"{'bare, pipe':>13}{'markers':>9}")
    overheads = []
    for name in names:
        events = len(run_scenario(cfg, name, args.seed).events)  # warm up, and check it runs
        harness = _median_ms(args.runs, lambda: run_scenario(cfg, name, args.seed))
        command = f"run {name} {args.seed}\n".encode()
        bare = _median_ms(args.runs, lambda: _bare_run(qemu_cmd, command, on_pty=True))
        piped = _median_ms(args.runs, lambda: _bare_run(qemu_cmd, command, on_pty=False))
        overheads.append(harness - bare)
        print(f"{name:<20}{harness:>10.1f} ms{bare:>9.1f} ms{harness - bare:>8.1f} ms"
              f"{piped:>10.1f} ms{events:>9}")
    print(f"\nharness overhead per run: median {statistics.median(overheads):.1f} ms, "
          f"max {max(overheads):.1f} ms (harness run minus bare run on a pty); "
          f"floor {floor:.1f} ms")
    if not args.no_suite:
        mode = [] if args.deterministic else ["--realtime"]
        parallel = ["-p", "xdist", "-n", "2", "--dist", "loadgroup"]
        timed = {}
        for label, extra in (("serial", mode), ("-n 2", mode + parallel)):
            seconds, last = _suite_seconds(root, kernel, args.seed, extra)
            timed[label] = seconds
            print(f"suite (pytest tests/scenarios), {label:>6}: {seconds:6.2f} s   [{last}]")
        seconds, last = _submission_seconds(root, root / "fixtures" / "lesson5", args.seed)
        print(f"lesson-style kernel judged from EL0 (make check SUBMISSION=fixtures/lesson5: port, "
              f"build, every scenario, -n 2): {seconds:6.2f} s = {seconds / timed['-n 2']:.1f}x "
              f"the bundled kernel's suite   [{last}]")
        n = GRADE_N
        for kind, source in (("bundled", kernel), ("lesson", root / "fixtures" / "lesson5")):
            seconds = _grading_seconds(root, kind, source, n)
            print(f"grade {n} copies of the {kind} kernel (-j {os.cpu_count()}): {seconds:6.1f} s, "
                  f"{seconds / n:.2f} s per submission; 100 submissions: about {seconds / n * 100:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
