"""Flags for review: an AST scan of a submitted answer cell for code that takes an answer
from binedu instead of computing it (its reference functions, the exercise registry,
private names), fabricates a measurement, copies code objects or patches the checker."""

from __future__ import annotations

import ast

SUSPECT_NAMES = {
    "get_exercise": "uses the exercise registry",
    "solution": "asks for a model answer",
    "model_answer": "asks for a model answer",
    "expected": "asks for the expected value",
    "reference": "uses the exercise's reference",
    "Measured": "builds a measurement by hand",
    "_seal": "seals a measurement by hand",
    "__code__": "copies a code object",
    "FunctionType": "builds a function from a code object",
    "co_code": "copies bytecode",
    "_REGISTRY": "edits the exercise registry",
    "_GUARDED": "edits the checker",
}
LIBRARY_ANSWERS = ("binedu.course.exercises", "binedu.train", "binedu.packed", "binedu.bits", "binedu.normalize",
                   "binedu.quantize", "binedu.conv", "binedu.linear", "binedu.model", "binedu.units",
                   "binedu.language_model", "binedu.metrics")


def scan(source: str, forbidden: tuple[str, ...] = ()) -> list[str]:
    """Reasons to review an answer cell (empty: nothing suspicious). ``forbidden`` are the
    dotted names the exercise switches off: naming one is flagged too."""
    try:
        tree = ast.parse(_strip_magics(source))
    except SyntaxError as err:
        return [f"does not parse: {err.msg}"]
    defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)}
    defined |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    short = {name.rsplit(".", 1)[-1]: name for name in forbidden if name.rsplit(".", 1)[-1] not in defined}
    flags: list[str] = []
    for node in ast.walk(tree):
        name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
        if name in SUSPECT_NAMES:
            flags.append(f"{SUSPECT_NAMES[name]} (`{name}`)")
        elif name in short:
            flags.append(f"calls `{short[name]}`, which the exercise switches off")
        elif name and name.startswith("_") and isinstance(node, ast.Attribute) and not name.startswith("__"):
            flags.append(f"reaches a private name (`{name}`)")
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(LIBRARY_ANSWERS):
            flags.append(f"imports from `{node.module}` in an answer cell")
        if isinstance(node, ast.Import) and any(a.name.startswith(LIBRARY_ANSWERS) for a in node.names):
            flags.append("imports a binedu module in an answer cell")
        if isinstance(node, ast.Assign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name | ast.Attribute):
                    owner = ast.unparse(t.value)
                    if owner.split(".")[0] in ("binedu", "core", "torch", "F", "np", "numpy") or "exercises" in owner:
                        flags.append(f"patches `{ast.unparse(t)}`")
    return sorted(set(flags))


def _strip_magics(source: str) -> str:
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
