"""The package's shape: dependencies point one way (read → check → goto → engine → report →
jobs → the front doors), no module imports itself round a cycle, and a module imported inside
a function says why there."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import importer

ROOT = Path(importer.__file__).parent
#: each part of the package, and how far up the flow it stands: a module may import from its
#: own part and from parts below it, never from one above
LAYERS = {
    "errors": 0,
    "model": 0,
    "text": 0,
    "files": 0,
    "version": 0,
    "events": 1,
    "progress": 1,
    "read": 2,
    "checks": 3,
    "serve": 4,
    "goto": 5,
    "engine": 6,
    "report": 7,
    "sandbox": 7,
    "jobs": 8,
    "api": 9,
    "__init__": 9,
    "web": 9,
    "cli": 10,
    "__main__": 10,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def part_of(module: str) -> str:
    """``importer.goto.client`` → ``goto``; the package itself is ``__init__``."""
    names = module.split(".")
    return names[1] if len(names) > 1 else "__init__"


def imports(path: Path) -> Iterator[tuple[str, ast.stmt, bool]]:
    """Every module of the package imported by the file at ``path``: its name, the statement,
    and whether it stands inside a function."""
    tree = ast.parse(path.read_text("utf-8"))
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            inside |= {id(child) for child in ast.walk(node) if child is not node}
    modules = {module_name(p) for p in ROOT.rglob("*.py")}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "importer":
                continue
            named = [f"{node.module}.{alias.name}" for alias in node.names]
            found = [name for name in named if name in modules] or [node.module]
            for name in found:
                yield name, node, id(node) in inside
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "importer":
                    yield alias.name, node, id(node) in inside
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: a relative import; the package imports absolutely")


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        edges[module_name(path)] = {
            name for name, _, _ in imports(path) if name != "importer" or path.name != "__init__.py"
        }
    return edges


def test_dependencies_point_down_the_flow() -> None:
    upward = []
    for module, targets in graph().items():
        for target in targets:
            if LAYERS[part_of(target)] > LAYERS[part_of(module)]:
                upward.append(f"{module} → {target}")
    assert upward == []


def test_no_module_imports_itself_round_a_cycle() -> None:
    edges = graph()
    cycles = []
    state: dict[str, int] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges.get(module, ())):
            if state.get(target) == 1:
                cycles.append(" → ".join([*trail[trail.index(target) :], target]))
            elif target not in state:
                visit(target, [*trail, target])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_a_module_imported_inside_a_function_says_why() -> None:
    unexplained = []
    for path in ROOT.rglob("*.py"):
        lines = path.read_text("utf-8").splitlines()
        for name, node, inside in imports(path):
            said = lines[node.lineno - 1] + lines[node.lineno - 2]  # on its line, or above
            if inside and "#" not in said:
                unexplained.append(f"{path.relative_to(ROOT.parent)}:{node.lineno} {name}")
    assert unexplained == []


def test_importing_the_package_loads_only_its_version() -> None:
    code = (
        "import sys, importer; print(sorted(m for m in sys.modules if m.startswith('importer.')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "['importer.version']"
