#!/usr/bin/env python3
"""Check the kernel's include graph for circles.

    tools/kernel-includes.py [KERNEL_DIR]     (default: kernel/ next to tools/)

Nodes are the kernel's subsystems: kernel/NAME.c and kernel/include/NAME.h
are one node NAME (a header under include/uapi/ is the node ``uapi/NAME``).
An edge runs from a node to every header its .c or .h names in
``#include "..."`` (whatever #if surrounds it; comments are ignored). Every
strongly connected component of more than one node is a circle; the one
circle allowed is {run, task} (a run starts the first task and the last
task's exit ends the run). Exit status 0 when there is no other circle, 1
(naming each circle) otherwise.
"""
from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

ALLOWED: frozenset[frozenset[str]] = frozenset({frozenset({"run", "task"})})
_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"]+)"', re.M)

Graph = dict[str, set[str]]


def includes(text: str) -> list[str]:
    """The ``#include "..."`` names in C source text, comments removed."""
    return _INCLUDE.findall(_COMMENT.sub(" ", text))


def _node(path: Path, include_dir: Path) -> str:
    """The node a .c or .h file belongs to: its stem, with uapi/ kept."""
    try:
        return path.relative_to(include_dir).with_suffix("").as_posix()
    except ValueError:
        return path.stem


def include_graph(kernel_dir: Path) -> Graph:
    """Node -> the nodes it includes, for kernel_dir/*.c and include/**/*.h.
    Names that resolve to no file there (generated or system headers) are left out."""
    include_dir = kernel_dir / "include"
    sources = sorted(kernel_dir.glob("*.c")) + sorted(include_dir.glob("**/*.h"))
    graph: Graph = {}
    for path in sources:
        node = _node(path, include_dir)
        edges = graph.setdefault(node, set())
        for name in includes(path.read_text(errors="replace")):
            for base in (include_dir, path.parent):
                target = base / name
                if target.is_file():
                    other = _node(target.resolve(), include_dir.resolve())
                    if other != node:
                        edges.add(other)
                    break
    return graph


def components(graph: Mapping[str, Iterable[str]]) -> list[set[str]]:
    """The strongly connected components of graph (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            step = next(edges, None)
            if step is not None:
                if step not in index:
                    index[step] = low[step] = len(index)
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(sorted(graph.get(step, ())))))
                elif step in on_stack:
                    low[node] = min(low[node], index[step])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                part: set[str] = set()
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    part.add(top)
                    if top == node:
                        break
                found.append(part)
    return found


def circles(graph: Mapping[str, Iterable[str]],
            allowed: frozenset[frozenset[str]] = ALLOWED) -> list[list[str]]:
    """Every component of more than one node that is not allowed, each sorted."""
    return sorted(sorted(c) for c in components(graph)
                  if len(c) > 1 and frozenset(c) not in allowed)


def main(argv: list[str]) -> int:
    kernel_dir = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent / "kernel"
    if not (kernel_dir / "include").is_dir():
        print(f"{kernel_dir}: not a kernel source folder (no include/)", file=sys.stderr)
        return 2
    found = circles(include_graph(kernel_dir))
    for circle in found:
        print(f"{kernel_dir}: include circle of {len(circle)} files: {', '.join(circle)}",
              file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
