"""The kernel's include graph has no circle but run <-> task (issue 15):
tools/kernel-includes.py checks kernel/, and is itself checked on small
made-up trees so a checker that sees nothing cannot pass."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "kernel-includes.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kernel_includes", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ki = _load()


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    """A made-up kernel folder: name -> the quoted headers it includes."""
    kernel = tmp_path / "kernel"
    (kernel / "include" / "uapi").mkdir(parents=True)
    for name, heads in files.items():
        path = kernel / name
        path.write_text("".join(f'#include "{h}"\n' for h in heads.split()) + "int x;\n")
    return kernel


def test_the_kernel_has_no_include_circle_but_run_and_task() -> None:
    found = ki.circles(ki.include_graph(ROOT / "kernel"))
    assert not found, "include circles in kernel/: " + "; ".join(", ".join(c) for c in found)


def test_the_tool_exits_zero_on_the_kernel() -> None:
    done = subprocess.run([sys.executable, str(TOOL)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_c_file_and_its_header_are_one_node(tmp_path: Path) -> None:
    kernel = _tree(tmp_path, {"a.c": "a.h b.h", "include/a.h": "", "include/b.h": "uapi/b.h",
                              "b.c": "b.h", "include/uapi/b.h": ""})
    assert ki.include_graph(kernel) == {"a": {"b"}, "b": {"uapi/b"}, "uapi/b": set()}


def test_a_circle_through_headers_and_sources_is_named(tmp_path: Path) -> None:
    # a.c -> b.h, b.c -> c.h, c.h -> a.h: one circle of three; d stands aside.
    kernel = _tree(tmp_path, {"a.c": "a.h b.h", "include/a.h": "", "b.c": "c.h",
                              "include/b.h": "", "include/c.h": "a.h", "d.c": "a.h"})
    assert ki.circles(ki.include_graph(kernel)) == [["a", "b", "c"]]
    done = subprocess.run([sys.executable, str(TOOL), str(kernel)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    assert "include circle of 3 files: a, b, c" in done.stderr


def test_run_and_task_may_include_each_other(tmp_path: Path) -> None:
    kernel = _tree(tmp_path, {"run.c": "task.h", "task.c": "run.h", "include/run.h": "",
                              "include/task.h": ""})
    assert ki.circles(ki.include_graph(kernel)) == []
    kernel2 = _tree(tmp_path / "2", {"run.c": "task.h", "task.c": "run.h sched.h",
                                     "include/run.h": "", "include/task.h": "",
                                     "include/sched.h": "run.h"})
    assert ki.circles(ki.include_graph(kernel2)) == [["run", "sched", "task"]]


@pytest.mark.parametrize("text", ['/* #include "b.h" */', '// #include "b.h"', '#include <b.h>'])
def test_commented_and_system_includes_are_no_edge(tmp_path: Path, text: str) -> None:
    kernel = _tree(tmp_path, {"include/b.h": "a.h", "include/a.h": ""})
    (kernel / "a.c").write_text(text + "\n")
    assert ki.include_graph(kernel)["a"] == set()
