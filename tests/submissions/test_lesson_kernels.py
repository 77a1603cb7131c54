"""Proof that kernels without markers are judged right (docs/judging.md).

Each case runs the conformance suite in a child pytest with --submission,
exactly as `make check SUBMISSION=...` does, and checks the verdict per
scenario: the good lesson-style kernel (fixtures/lesson5) and the bundled
kernel's own demo build pass; each student-style broken version in
fixtures/lesson5-variants/ fails exactly the tests it breaks, each naming
its rule, and nothing else; a tree that boots only from EL3, entered at
EL2 (--boot el2), is one usage error that says so.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LESSON = ROOT / "fixtures" / "lesson5"
VARIANTS_DIR = ROOT / "fixtures" / "lesson5-variants"
TIMEOUT_S = 300
STALL_S = "1"  # the fixture ticks every 2 ms of guest time: 1 s of QEMU CPU is many ticks
CLONE_ROOT = "tests/scenarios/test_invariants.py::test_el0_clones_work[{}]"  # one parametrized root
CLONING = ["clone_twice", "el0_faults", "exit_zombie", "fairness", "malloc_exhaustion",
           "regs_preserved", "write_tick"]
WRITE_COUNT = "write: must return the number of bytes written"
ENTERS = "tests/scenarios/test_invalid_syscall.py::test_el0_program_enters_on_its_own_stack"
KEEPS = "tests/scenarios/test_invalid_syscall.py::test_el0_calls_keep_registers"

pytestmark = pytest.mark.skipif(shutil.which("aarch64-linux-gnu-gcc") is None
                                or shutil.which("qemu-system-aarch64") is None,
                                reason="needs the cross compiler and QEMU")


@dataclass(frozen=True)
class Case:
    name: str  #: fixtures/lesson5-variants/<name>.patch, or a plain name for the good trees
    failed: dict[str, str]  #: test node id -> text its report must contain
    rules: str = "project"
    exit_code: int | None = None  #: expected when not 0/1 (a usage error)
    message: str = ""  #: text the output must contain
    extra: tuple[str, ...] = field(default=())
    #: the listed rules fail first (suite order); later scenarios may fail too
    #: (a corrupted callee-saved register derails the scenario programs' own C)
    first: bool = False


VARIANTS = [
    Case("clone_regs_reversed", {CLONE_ROOT.format(s): "clone: the call must return to the caller"
                                 for s in CLONING}),
    Case("child_sp_not_set", {CLONE_ROOT.format(s): "clone: the child must start" for s in CLONING}),
    Case("malloc_no_minus_one", {
        "tests/scenarios/test_malloc_exhaustion.py::test_el0_exhaustion_returns_exactly_minus_one":
            "when no page is free malloc must return exactly -1"}),
    Case("zombie_still_runs", {
        "tests/scenarios/test_exit_zombie.py::test_el0_exit_never_returns": "exit: must never return",
        "tests/scenarios/test_exit_zombie.py::test_el0_everyone_exits": "exit: must never return",
        "tests/scenarios/test_clone_twice.py::test_el0_everyone_exits": "exit: must never return"}),
    Case("unknown_syscall_hangs", {
        "tests/scenarios/test_invalid_syscall.py::test_el0_every_call_returns":
            "invalid syscall: the task must get control back after svc with w8=0x5"}),
    Case("write_returns_nothing", {
        "tests/scenarios/test_invalid_syscall.py::test_el0_only_w8_counts": WRITE_COUNT,
        "tests/scenarios/test_invalid_syscall.py::test_el0_task_goes_on": WRITE_COUNT,
        "tests/scenarios/test_malloc_exhaustion.py::test_el0_write_after_exhaustion_returns_its_count": WRITE_COUNT,
        "tests/scenarios/test_regs_preserved.py::test_el0_write_returns_its_count": WRITE_COUNT}),
    Case("malloc_not_zeroed", {
        "tests/scenarios/test_exit_zombie.py::test_el0_reused_pages_are_zeroed":
            "a page freed by an exited task must be zeroed"}),
    Case("irq_flips_x19", {
        "tests/scenarios/test_regs_preserved.py::test_el0_preemption_keeps_registers":
            "preemption: a task interrupted by ticks and switched out and back in must get every "
            "register back"}, first=True),
    Case("el0_fault_hangs", {
        "tests/scenarios/test_el0_faults.py::test_el0_others_go_on":
            "a fault at EL0 must kill only the task that caused it"}),
    # its kill path is exit_process too: a killed task's malloc'd pages stay taken as well
    Case("exit_keeps_malloc_pages", {
        "tests/scenarios/test_exit_zombie.py::test_el0_exited_mallocd_pages_come_back":
            "every page the task malloc'd goes back to the pool",
        "tests/scenarios/test_el0_faults.py::test_el0_killed_tasks_mallocd_pages_come_back":
            "every page a killed task malloc'd goes back to the pool"}),
    Case("kill_frees_only_stack", {
        "tests/scenarios/test_el0_faults.py::test_el0_killed_tasks_mallocd_pages_come_back":
            "every page a killed task malloc'd goes back to the pool"}, first=True),
    Case("syscall_number_uses_all_of_x8", {
        "tests/scenarios/test_invalid_syscall.py::test_el0_only_w8_counts":
            "only w8 names the call"}, first=True),
    Case("timer_never_preempts", {CLONE_ROOT.format("regs_preserved"):
                                  "scheduling: the timer must preempt a task busy at EL0"}, first=True),
    Case("el0_irqs_masked", {CLONE_ROOT.format("regs_preserved"):
                             "scheduling: the timer must preempt a task busy at EL0"}, first=True),
    Case("child_takes_parent_path", {CLONE_ROOT.format("regs_preserved"):
                                     "(it took the parent's path)"}, first=True),
    Case("syscall_result_not_stored", {
        "tests/scenarios/test_invalid_syscall.py::test_el0_results_come_back_in_x0":
            "syscall: the result must come back in x0"}, first=True),
    Case("write_preemptible", {
        "tests/scenarios/test_write_tick.py::test_el0_writes_come_out_whole":
            "write: a string must come out in one piece"}, first=True),
    Case("kernel_exit_keeps_sp_el0", {ENTERS: "entry: the first task must enter EL0 with sp = the top "
                                                 "of its stack page"}, first=True),
    Case("user_stack_on_task_page", {ENTERS: "entry: the first task must enter EL0 on a fresh stack "
                                                "page of its own"}, first=True),
    Case("kernel_exit_clobbers_x21", {KEEPS: "x21: expected"}, first=True),
    Case("unknown_syscall_skips_next", {
        "tests/scenarios/test_invalid_syscall.py::test_el0_calls_return_after_their_svc":
            "syscall: the call must return to the instruction right after its svc"}, first=True),
    Case("syscall_bound_off_by_one", {
        "tests/scenarios/test_invalid_syscall.py::test_el0_the_bound_is_unknown_too":
            "the bound itself) is unknown too"}, first=True),
    # Started as it expects (auto: EL3 from its ELF's entry) it is a good kernel;
    # entered at EL2 it is one usage error naming EL3.
    Case("boot_expects_el3", {}, exit_code=4, extra=("--boot=el2",),
         message="does its boot code expect EL3? QEMU raspi3b enters at EL2"),
]
# Under the lesson rule set too: the rule leads.
LESSON_FIRST = [
    Case("syscall_number_uses_all_of_x8", {
        "tests/scenarios/test_invalid_syscall.py::test_el0_only_w8_names_the_call":
            "only w8 names the call"}, rules="lesson", first=True),
    Case("syscall_result_not_stored", {
        "tests/scenarios/test_invalid_syscall.py::test_el0_results_come_back_in_x0":
            "syscall: the result must come back in x0"}, rules="lesson", first=True),
    Case("kernel_exit_keeps_sp_el0", {ENTERS: "entry: the first task must enter EL0 with sp"},
         rules="lesson", first=True),
    Case("kernel_exit_clobbers_x21", {KEEPS: "x21: expected"}, rules="lesson", first=True),
    Case("unknown_syscall_skips_next", {
        "tests/scenarios/test_invalid_syscall.py::test_el0_calls_return_after_their_svc":
            "syscall: the call must return to the instruction right after its svc"},
         rules="lesson", first=True),
]
# What the lesson teaches: these behaviours are right under --rules lesson.
LESSON_RULES = [Case(name, {}, rules="lesson") for name in
                ("unknown_syscall_hangs", "write_returns_nothing", "malloc_not_zeroed", "el0_fault_hangs")]


def judge(submission: Path, tmp: Path, seed: int, rules: str = "project",
          extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """The suite with --submission, in a child pytest (one worker, as a student runs it)."""
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "tests" / "scenarios"), "-rfE",
           "-p", "no:cacheprovider", "-p", "no:xdist", f"--submission={submission}",
           f"--rules={rules}", f"--stall={STALL_S}", f"--seed={seed}",
           f"--transcript-dir={tmp / 'transcripts'}", f"--basetemp={tmp / 'pytest'}", *extra]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})


def failed_ids(report: str) -> set[str]:
    """The node ids of the short summary's FAILED/ERROR lines."""
    return set(re.findall(r"^(?:FAILED|ERROR) (\S+)", report, re.M))


def variant_tree(name: str, tmp: Path) -> Path:
    """A copy of the lesson kernel with the variant's patch applied."""
    tree = tmp / name
    shutil.copytree(LESSON, tree, ignore=shutil.ignore_patterns("build", "kernel8.img"))
    patched = subprocess.run(["patch", "-s", "-p1", "-i", str(VARIANTS_DIR / f"{name}.patch")],
                             cwd=tree, capture_output=True, text=True)
    assert patched.returncode == 0, f"{name}.patch no longer applies to fixtures/lesson5:\n{patched.stdout}{patched.stderr}"
    return tree


def test_every_variant_is_listed() -> None:
    on_disk = {p.stem for p in VARIANTS_DIR.glob("*.patch")}
    assert on_disk == {c.name for c in VARIANTS}


def test_good_lesson_kernel_passes(tmp_path: Path, kt_seed: int) -> None:
    done = judge(LESSON, tmp_path, kt_seed)
    report = done.stdout + done.stderr
    assert done.returncode == 0, f"the good lesson kernel failed:\n{report[-5000:]}"
    assert " passed" in report and "rule set project" in report


def test_bundled_kernel_passes_through_the_port(tmp_path: Path, kt_seed: int) -> None:
    """The project's own tree, its demo build, judged as a plain lesson-ABI kernel."""
    tree = tmp_path / "tree"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(".git", "build", "__pycache__", ".pytest_cache"))
    done = judge(tree, tmp_path, kt_seed)
    report = done.stdout + done.stderr
    assert done.returncode == 0, f"the bundled kernel failed when judged from EL0:\n{report[-5000:]}"


@pytest.mark.parametrize("case", VARIANTS + LESSON_FIRST,
                         ids=[c.name for c in VARIANTS] + [f"{c.name}-lesson" for c in LESSON_FIRST])
def test_broken_lesson_kernel_fails_its_rules(case: Case, tmp_path: Path, kt_seed: int) -> None:
    done = judge(variant_tree(case.name, tmp_path), tmp_path, kt_seed, case.rules, case.extra)
    report = done.stdout + done.stderr
    if case.exit_code is not None:
        assert done.returncode == case.exit_code and case.message in report, report[-3000:]
        return
    assert done.returncode == 1, f"{case.name}: expected failures, got exit {done.returncode}:\n{report[-5000:]}"
    got = failed_ids(report)
    if case.first:
        order = re.findall(r"^(?:FAILED|ERROR) (\S+)", report, re.M)
        assert set(order[:len(case.failed)]) == set(case.failed), (
            f"{case.name}: failed first {order}, expected {sorted(case.failed)}\n{report[-5000:]}")
    else:
        assert got == set(case.failed), (f"{case.name}: failed {sorted(got)}, expected exactly "
                                         f"{sorted(case.failed)}\n{report[-5000:]}")
    for node, rule in case.failed.items():
        name = node.split("::")[1]
        section = report.split(f"_ {name} _", 1)[-1]
        assert rule in section, f"{case.name}: {node} does not name the rule {rule!r}:\n{report[-5000:]}"


@pytest.mark.parametrize("case", LESSON_RULES, ids=[c.name for c in LESSON_RULES])
def test_lesson_rule_set_accepts_what_the_lesson_teaches(case: Case, tmp_path: Path, kt_seed: int) -> None:
    done = judge(variant_tree(case.name, tmp_path), tmp_path, kt_seed, "lesson")
    report = done.stdout + done.stderr
    assert done.returncode == 0, f"{case.name} under --rules lesson:\n{report[-5000:]}"
    assert "rule set lesson" in report
