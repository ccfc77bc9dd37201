"""Quoted numbers in the course's markdown, checked against the run that shows them.

A markdown cell that quotes what a code cell computed carries a marker for each such
sentence, invisible in the rendered notebook, at the end of the cell (where it cannot
split a paragraph)::

    ... grow by a factor of about 32 per layer ...

    <!-- quote: 20 < growth_per_layer < 45 -->

The expression is evaluated in the notebook's kernel after the whole notebook has run,
over the variables that the code cells printed, so the sentence and the run cannot drift
apart: the notebook test fails when the run no longer says what the text says. Markers
must hold in FAST and in long mode (``BINEDU_NOTEBOOK_MODE=long`` runs the notebook test
with ``FAST = False``), so a number that differs between the modes belongs in a printed
f-string, and the marker states what both modes share.

Only a small, side-effect free part of Python is allowed: comparisons, ``and`` / ``or`` /
``not``, arithmetic, names, constants, subscripts, attributes and calls of ``abs``,
``min``, ``max``, ``len``, ``round``, ``all``, ``any``, ``float``, ``int``, ``sum``,
``str``, ``tuple`` and two pure functions of binedu (``CALLS``), and the read-only
methods in ``METHODS`` (``.values()``, ``.best(...)``, ``.norm(...)``, ...).
"""

from __future__ import annotations

import ast
import re

import nbformat

MARKER = re.compile(r"<!--\s*quote:\s*(.+?)\s*-->", re.S)
CALLS = {"abs", "min", "max", "len", "round", "all", "any", "float", "int", "sum", "str", "tuple",
         "bytes_at_bits", "normalized_loss_floor"}  # the last two: pure functions of binedu the notebooks import
METHODS = {"values", "keys", "items", "get", "best", "metric", "item", "mean", "tolist", "num_parameters",
           "norm", "std", "min", "max", "sum", "abs", "all", "any", "element_size", "numel"}  # read-only
_NODES = (
    ast.Expression, ast.Compare, ast.BoolOp, ast.UnaryOp, ast.BinOp, ast.Name, ast.Constant, ast.Subscript,
    ast.Attribute, ast.Call, ast.Load, ast.And, ast.Or, ast.Not, ast.USub, ast.Add, ast.Sub, ast.Mult, ast.Div,
    ast.Pow, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq, ast.Slice, ast.Tuple, ast.List, ast.GeneratorExp,
    ast.comprehension, ast.Store, ast.FloorDiv, ast.Mod, ast.In, ast.NotIn, ast.Is, ast.IsNot, ast.IfExp, ast.keyword,
)


def quote_markers(nb: nbformat.NotebookNode) -> list[tuple[int, str]]:
    """``(cell index, expression)`` of every quote marker in the markdown cells."""
    return [(i, m) for i, c in enumerate(nb.cells) if c.cell_type == "markdown" for m in MARKER.findall(c.source)]


def check_expression(expr: str) -> None:
    """Raise ValueError unless ``expr`` is a side-effect free expression (module docstring)."""
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as err:
        raise ValueError(f"quote marker {expr!r} is not a Python expression: {err.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _NODES):
            raise ValueError(f"quote marker {expr!r} uses {type(node).__name__}, which markers may not")
        if isinstance(node, ast.Call) and not (
            (isinstance(node.func, ast.Name) and node.func.id in CALLS)
            or (isinstance(node.func, ast.Attribute) and node.func.attr in METHODS)
        ):
            raise ValueError(f"quote marker {expr!r} calls something other than {sorted(CALLS)} or .{sorted(METHODS)}()")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise ValueError(f"quote marker {expr!r} reads a private attribute")


def quote_probe(expressions: list[str]) -> str:
    """Code for a cell, run after the notebook, that prints ``BINEDU_QUOTES {json}``: for
    each expression ``[result, values]``, where result is ``true``, ``false`` or the error
    it raised, and values the reprs of the names it reads (for the failure message)."""
    names = {e: names_in(e) for e in expressions}
    return (
        "import json as _json\n"
        f"_names = {names!r}\n"
        "_out = {}\n"
        "for _e, _ns in _names.items():\n"
        "    try:\n"
        "        _v = bool(eval(_e, globals()))\n"
        "    except Exception as _err:\n"
        "        _v = f'{type(_err).__name__}: {_err}'\n"
        "    _out[_e] = [_v, {_n: repr(globals().get(_n, '(undefined)'))[:120] for _n in _ns}]\n"
        "print('BINEDU_QUOTES', _json.dumps(_out))\n"
    )


def names_in(expr: str) -> list[str]:
    """The variable names an expression reads (to print them when it fails)."""
    calls = {n.func.id for n in ast.walk(ast.parse(expr, mode="eval")) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Name)}
    return sorted({n.id for n in ast.walk(ast.parse(expr, mode="eval")) if isinstance(n, ast.Name)} - calls)
