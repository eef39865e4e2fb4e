"""The packages of refsr_blocks import downward only.

The declared order, lowest first (a package may import only the packages before it):

1. ``core``: registry, specs, ``build_model``, plugins, model files, errors;
2. ``ops``: tensor functions (warp, flow pyramids, sampling) and the input checks of models
   (``ops.inputs``, ``ops.references``), which models and inference share;
3. ``layers``: shared network blocks and fast convolutions;
4. ``testing``: the contract of every kind (the conformance kit); a kind's registration
   names its contract, so the contracts sit below the components;
5. ``components``: every registered part, kind ``X`` in ``components/Xs`` (each kind is
   registered by its own package there, not by core);
6. ``interop``: converters of other projects' weights into components;
7. ``data``: datasets, degradations (``matlab_downsample``), image files, and dataset
   entries of configurations (``data.entries``, which training and evaluation both build from);
8. ``assets``: the shipped weights, cards and demo pair;
9. ``inference``: ``Predictor``, tiled ``super_resolve``, the runtime, export;
10. ``evaluation``: metrics, protocols, the reference controls (the blank reference of
    training included), the harness and ``refsr-blocks eval``; it imports nothing from train;
11. ``train``: the trainer, its configuration and run state; it validates with
    evaluation's metrics;
12. ``tools``: the ``refsr-blocks`` command, pictures, summaries;
13. the package itself (``refsr_blocks/__init__.py``): the public names, re-exported; no
    module inside imports it.

Every module is parsed with :mod:`ast`; imports inside functions count, and so does a
string that names a module (``"refsr_blocks.testing.contracts:AlignerContract"``, imported
later by :mod:`importlib`). The test fails on any arrow against the order, which also rules
out cycles between packages, and on a cycle between the modules of one package.
"""

from __future__ import annotations

import ast
import itertools
from collections import defaultdict
from pathlib import Path

import refsr_blocks

ROOT = Path(refsr_blocks.__file__).parent
ORDER = (
    "core",
    "ops",
    "layers",
    "testing",
    "components",
    "interop",
    "data",
    "assets",
    "inference",
    "evaluation",
    "train",
    "tools",
    "refsr_blocks",
)


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _named_modules(module: str, path: Path) -> list[tuple[str, int]]:
    """The refsr_blocks modules that ``module`` imports or names, with line numbers."""
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = module.split(".") if is_package else module.split(".")[:-1]
                base = ".".join([*here[: len(here) - node.level + 1], *([node.module] if node.module else [])])
            for alias in node.names:  # ``from pkg import module`` imports the module
                found.append((f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base, node.lineno))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            name = node.value.partition(":")[0]
            if name.startswith("refsr_blocks.") and name in MODULES:
                found.append((name, node.lineno))
    return sorted({(name, line) for name, line in found if name in MODULES})


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_every_package_is_in_the_order():
    assert {_package(m) for m in MODULES} == set(ORDER)


def test_packages_import_downward_only():
    rank = {name: i for i, name in enumerate(ORDER)}
    upward = []
    for module, path in MODULES.items():
        for target, line in _named_modules(module, path):
            src, dst = _package(module), _package(target)
            if src != dst and rank[dst] > rank[src]:
                upward.append(f"{path.relative_to(ROOT.parent)}:{line}: {module} ({src}) imports {target} ({dst})")
    assert not upward, "imports against the declared order:\n" + "\n".join(upward)


def test_no_cycle_between_modules_of_a_package():
    """Inside a package a module may import a sibling, but no two modules import each other
    (directly or around a loop); a package's ``__init__`` (re-exports) is left out."""
    graph: dict[str, dict[str, int]] = defaultdict(dict)
    for module, path in MODULES.items():
        for target, line in _named_modules(module, path):
            same = _package(module) == _package(target) and target != module
            if same and path.name != "__init__.py" and MODULES[target].name != "__init__.py":
                graph[module].setdefault(target, line)
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt]
            if nxt not in state and (loop := visit(nxt, [*trail, nxt])):
                return loop
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (loop := visit(start, [start])):
            steps = [
                f"{a} imports {b} (line {graph[a][b]} of {MODULES[a].relative_to(ROOT.parent)})"
                for a, b in itertools.pairwise(loop)
            ]
            raise AssertionError("a cycle inside a package:\n" + "\n".join(steps))
