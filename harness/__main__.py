"""Command line: ``python -m harness list|run`` (for a person at a terminal).

    python -m harness list [--kernel IMG]
    python -m harness run <scenario> [--kernel IMG] [--seed N] [--realtime] [--run-timeout S]
    python -m harness grade DIR --out OUT [--class-seed N] [-j N] [--resume] [--shard K/N]
    python -m harness selfcheck TREE [--rules lesson]     (what the autograder will give)
    python -m harness autograde [--root /autograder]      (Gradescope's run_autograder)
    python -m harness gdb <scenario> [--seed N] [--kernel IMG | --submission TREE]   (harness/gdb.py)

``run`` streams the console live, then prints one summary line; it exits 0
when the run ended with ``end reason=all_exited``, 1 on a verdict (a panic
included), 2 on a usage error. It judges no rule: that is pytest's job.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from . import preflight

if __name__ == "__main__":  # before pexpect and pytest are imported: one line, not a traceback
    _command = sys.argv[1] if len(sys.argv) > 1 else ""
    preflight.require(f"python -m harness {_command}".rstrip(),
                      need_pytest=_command in ("grade", "selfcheck", "autograde"))

from . import autograder, gdb, grade  # noqa: E402
from .build import ensure_built  # noqa: E402
from .errors import HarnessError
from .image import CONSOLES
from .qemu import DEFAULT_QEMU
from .prng import parse_seed
from .runner import (DEFAULT_KERNEL, TRANSCRIPT_DIR, RunConfig, list_scenarios, parse_seconds,
                     run_scenario)
from .text import printable


def _seed(text: str) -> int:
    try:
        return parse_seed(text)
    except ValueError:
        raise argparse.ArgumentTypeError("seed must be a number in 0..2**64-1") from None


def _seconds(text: str) -> float:
    try:
        return parse_seconds(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--kernel", type=Path, help=f"kernel image (default: {DEFAULT_KERNEL}, "
                        "built with make if missing)")
    common.add_argument("--qemu", default=DEFAULT_QEMU, help="QEMU executable")
    common.add_argument("--console", choices=CONSOLES, help="console UART (default: the image note's, else mini)")
    common.add_argument("--boot-timeout", type=_seconds, default=RunConfig.boot_timeout, metavar="S",
                        help="seconds of QEMU CPU time (guest progress), or of QEMU idle, from "
                        "starting QEMU to the ready marker")
    common.add_argument("--run-cpu", type=_seconds, default=RunConfig.run_cpu, metavar="S",
                        help="seconds of QEMU CPU time (guest progress) the command may take once sent")
    common.add_argument("--run-timeout", "--timeout", dest="timeout", type=_seconds,
                        default=RunConfig.run_timeout, metavar="S",
                        help="wall-clock safety net: its expiry is the machine's fault, not a verdict")
    mode = common.add_mutually_exclusive_group()
    mode.add_argument("--deterministic", dest="deterministic", action="store_true", default=True,
                      help="run QEMU with -icount: a seed always gives the same transcript (default)")
    mode.add_argument("--realtime", dest="deterministic", action="store_false",
                      help="run QEMU in real time: timing varies from run to run")
    top = argparse.ArgumentParser(prog="python -m harness", description="Boot the kernel under "
                                  "test in QEMU and list its scenarios or run one.")
    sub = top.add_subparsers(dest="command", required=True)
    sub.add_parser("list", parents=[common], help="boot and list the kernel's scenarios")
    run = sub.add_parser("run", parents=[common], help="run one scenario, streaming the console")
    run.add_argument("scenario")
    run.add_argument("--seed", type=_seed, help="default: random (printed)")
    grade.add_arguments(sub.add_parser("grade", help="grade a folder of submissions (docs/grading.md)"))
    autograder.add_selfcheck_arguments(sub.add_parser(
        "selfcheck", help="the score the autograder will give your tree (docs/autograder.md)"))
    autograder.add_autograde_arguments(sub.add_parser(
        "autograde", help="grade /autograder/submission for Gradescope (docs/autograder.md)"))
    gdb.add_arguments(sub.add_parser("gdb", help="boot one run with QEMU's gdb stub waiting and debug "
                                     "it with gdb-multiarch (make gdb)"))
    return top


def _stream(line: str) -> None:
    """A console line for the person watching: escaped (harness.text.printable)."""
    print(printable(line, None), flush=True)


def _config(args: argparse.Namespace) -> RunConfig:
    root = Path.cwd()
    kernel = args.kernel
    if kernel is None:
        kernel = root / DEFAULT_KERNEL
        ensure_built(kernel, [DEFAULT_KERNEL], root)
    return RunConfig(kernel=kernel, qemu=args.qemu, console=args.console,
                     deterministic=args.deterministic, boot_timeout=args.boot_timeout,
                     run_timeout=args.timeout, run_cpu=args.run_cpu, transcript_dir=root / TRANSCRIPT_DIR)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    args = _parser().parse_args(argv)
    if args.command == "grade":
        return grade.run(args)
    if args.command == "selfcheck":
        return autograder.selfcheck(args)
    if args.command == "autograde":
        return autograder.autograde(args)
    if args.command == "gdb":
        return gdb.run(args)
    try:
        cfg = _config(args)
        if args.command == "list":
            for name in list_scenarios(cfg):
                print(name)
            return 0
        seed = random.getrandbits(64) if args.seed is None else args.seed
        print(f"# run {args.scenario} {seed}", file=sys.stderr, flush=True)
        t = run_scenario(cfg, args.scenario, seed, on_line=_stream)
    except HarnessError as e:
        print(str(e), file=sys.stderr)
        if e.path is not None:
            print(f"transcript: {e.path}", file=sys.stderr)
        return 1
    except ValueError as e:  # a scenario name or seed that cannot be sent
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"# ended: reason={t.end.reason}, {len(t.events)} markers, QEMU exit status "
          f"{t.exit_code}; transcript: {t.path}; replay: --seed {t.seed}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
