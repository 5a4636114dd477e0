"""The code's shape, as docs/design.md promises it: no import cycle, a short main path.

The import graph is read from the source (every ``import`` and ``from ...
import``, at module level or inside a function, ``TYPE_CHECKING`` blocks
included: a cycle hidden in a function is still a cycle), between the
project's own modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("mcp_tools", "consumers", "config", "conformance")
# docs/design.md's map: one execution, socket to socket.
MAIN_PATH = (
    "consumers/executions.py",
    "mcp_tools/services.py",
    "mcp_tools/engine/runner.py",
    "mcp_tools/events/publisher.py",
    "mcp_tools/delivery.py",
)
MAIN_PATH_MAX_LINES = 300


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    }


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    graph = {name: imports_of(name, path, known) for name, path in modules.items()}
    # A package's __init__ importing its own submodules is how packages re-export; not a cycle of design.
    return {name: {t for t in targets if not t.startswith(name + ".")} for name, targets in graph.items()}


def test_no_import_cycle_between_the_projects_modules():
    assert cycles(import_graph()) == []


def test_the_graph_reader_sees_a_cycle_when_there_is_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_main_path_is_five_files_of_fewer_than_300_lines():
    lengths = {name: len((ROOT / name).read_text().splitlines()) for name in MAIN_PATH}
    assert len(lengths) <= 5
    assert all(n < MAIN_PATH_MAX_LINES for n in lengths.values()), lengths
    design = (ROOT / "docs" / "design.md").read_text()
    assert all(name in design for name in MAIN_PATH)
