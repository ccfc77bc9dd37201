"""binedu/data has no import circle (issue 22): every import of every module, the ones
inside functions too, read from the source (AST), forms a graph without a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "binedu" / "data"


def imports_of(path: Path) -> set[str]:
    """The binedu.data modules that ``path`` imports (relative or absolute, anywhere in the file)."""
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 or node.module and node.module.startswith("binedu.data"):
                if node.level == 1:
                    base = node.module or ""
                else:
                    base = (node.module or "").removeprefix("binedu.data").lstrip(".")
                names = [base.split(".")[0]] if base else [alias.name for alias in node.names]
                found |= {name for name in names if name in modules}
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("binedu.data."):
                    found.add(alias.name.split(".")[2])
    return found - {path.stem}


def graph() -> dict[str, set[str]]:
    return {path.stem: imports_of(path) for path in PACKAGE.glob("*.py") if path.stem != "__init__"}


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``edges`` (a module list from and back to the same module), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(edges.get(module, ())):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(edges):
        if module not in state and (found := visit(module)):
            return found
    return None


def test_the_cycle_finder_finds_a_circle_and_accepts_a_tree():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_imports_inside_functions():
    edges = graph()
    assert "tokenizers" in edges["text"] and "errors" in edges["images"]
    assert imports_of(PACKAGE / "__init__.py") >= {"images", "text", "fetch"}


def test_binedu_data_has_no_import_circle():
    assert cycle(graph()) is None, f"import circle: {' -> '.join(cycle(graph()) or [])}"
