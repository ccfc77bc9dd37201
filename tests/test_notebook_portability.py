"""Notebooks run on macOS too: nothing reads /proc (Linux only) without a guard.

A code cell may mention /proc only where running it cannot fail elsewhere: inside a
``try`` that catches OSError (or a parent of it), under an ``if`` that tests the path or
the platform, or in a function or string (a probe program) that is only run from such
places. The check reads each cell's syntax tree; magics are transformed as IPython does.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
CAUGHT = {"OSError", "FileNotFoundError", "PermissionError", "IOError", "EnvironmentError", "Exception", "BaseException"}
GUARD_WORDS = ("/proc", "sys.platform", "platform.system", "os.name")
PROC_PATH = re.compile(r"""(^|["'])/proc(/|["']|$)""")


def _mentions_proc(node: ast.AST) -> bool:
    """Whether ``node`` holds a /proc path, or code (a probe program) that opens one; a
    sentence that merely names /proc does not count."""
    return any(
        isinstance(n, ast.Constant) and isinstance(n.value, str) and PROC_PATH.search(n.value) for n in ast.walk(node)
    )


def _catches_oserror(node: ast.Try) -> bool:
    for handler in node.handlers:
        if handler.type is None:
            return True
        names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        if any(isinstance(n, ast.Name) and n.id in CAUGHT for n in names):
            return True
    return False


def _unguarded(nodes: list[ast.stmt], tainted: set[str]) -> list[ast.AST]:
    """The nodes among ``nodes`` (statements run in order) that reach /proc, directly or
    through a tainted name, outside any guard."""
    found: list[ast.AST] = []
    for node in nodes:
        if isinstance(node, ast.Try) and _catches_oserror(node):
            found += _unguarded(node.orelse + node.finalbody, tainted)
        elif isinstance(node, ast.If) and any(word in ast.unparse(node.test) for word in GUARD_WORDS):
            continue
        elif isinstance(node, (ast.If, ast.For, ast.While, ast.With, ast.Try)):
            header = [node.test] if isinstance(node, (ast.If, ast.While)) else []
            header += [node.iter] if isinstance(node, ast.For) else []
            header += [item.context_expr for item in node.items] if isinstance(node, ast.With) else []
            if any(_reaches(part, tainted) for part in header):
                found.append(node)
            for field in ("body", "orelse", "finalbody", "handlers"):
                children = getattr(node, field, [])
                for child in children:
                    found += _unguarded(child.body if isinstance(child, ast.ExceptHandler) else [child], tainted)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue  # a definition runs nothing; its calls are checked where they happen
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            continue  # a string is inert until something runs it
        elif _reaches(node, tainted):
            found.append(node)
    return found


def _reaches(node: ast.AST, tainted: set[str]) -> bool:
    if _mentions_proc(node):
        return True
    return any(isinstance(n, ast.Name) and n.id in tainted for n in ast.walk(node))


def _tainted_names(tree: ast.Module) -> set[str]:
    """Names whose use reaches /proc unguarded: strings that mention it, and functions whose
    body reaches /proc or another tainted name outside a guard (to a fixed point)."""
    tainted = {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and _mentions_proc(node.value)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    while True:
        more = {f.name for f in functions if f.name not in tainted and _unguarded(f.body, tainted)}
        if not more:
            return tainted
        tainted |= more


def unguarded_proc_uses(source: str) -> list[str]:
    """The lines of ``source`` that would read /proc without a guard."""
    tree = ast.parse(TransformerManager().transform_cell(source))
    return [ast.unparse(node).splitlines()[0] for node in _unguarded(tree.body, _tainted_names(tree))]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_reads_proc_only_behind_a_guard(path):
    nb = nbformat.read(path, as_version=4)
    problems = [
        f"cell {i}: {line}"
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and "/proc" in cell.source
        for line in unguarded_proc_uses(cell.source)
    ]
    assert not problems, "reads /proc (Linux only) without a guard; return None off Linux instead:\n" + "\n".join(
        problems
    )


UNGUARDED = [
    'open("/proc/self/statm").read()',
    'def rss():\n    with open("/proc/self/statm") as f:\n        return f.read()\n\nbefore = rss()',
    'P = "/proc/self/status"\ndef f():\n    return open(P).read()\ndef g():\n    return f()\nx = g()',
    'try:\n    open("/proc/self/status")\nexcept ValueError:\n    pass',
    'for line in open("/proc/self/status"):\n    print(line)',
]
GUARDED = [
    'def rss():\n    try:\n        with open("/proc/self/statm") as f:\n            return f.read()\n    except OSError:\n'
    "        return None\n\nbefore = rss()",
    'from pathlib import Path\nif Path("/proc/self/status").exists():\n    print(open("/proc/self/status").read())',
    'import sys\nif sys.platform == "linux":\n    print(open("/proc/self/status").read())',
    'PROBE = "open(\'/proc/self/status\')"\ndef run():\n    exec(PROBE)\nif __import__("os").path.exists("/proc"):\n'
    "    run()",
    'def unused():\n    return open("/proc/self/status").read()',
    'print("not measured here (it reads /proc, which only Linux has)")',
]


@pytest.mark.parametrize("source", UNGUARDED)
def test_the_check_finds_unguarded_reads(source):
    assert unguarded_proc_uses(source)


@pytest.mark.parametrize("source", GUARDED)
def test_the_check_accepts_guarded_reads(source):
    assert unguarded_proc_uses(source) == []
