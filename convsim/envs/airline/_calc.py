"""The ``calculate`` tool's arithmetic: Python semantics without ``eval``.

tau-bench evaluates the expression as Python after checking its characters, so results
and error texts are Python's. Walking the syntax tree gives the same numbers and the same
errors for everything those characters can spell, without running arbitrary code.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any

ALLOWED_CHARACTERS = frozenset("0123456789+-*/(). ")
"""The only characters an expression may contain."""

# Above this many bits an integer power would take minutes and gigabytes (9**9**9);
# refuse it instead of hanging the run.
_MAX_POWER_BITS = 10_000_000

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


def calculate(expression: str) -> str:
    """The expression's value rounded to 2 decimals, as tau-bench prints it.

    Errors come back as text starting with ``Error: ``, as the agent sees them.
    """
    if not set(expression) <= ALLOWED_CHARACTERS:
        return "Error: invalid characters in expression"
    try:
        # Parsing under the file name eval uses makes syntax errors read the same.
        tree = ast.parse(expression, "<string>", mode="eval")
        return str(round(float(_evaluate(tree.body)), 2))
    except Exception as e:
        return f"Error: {e}"


def _evaluate(node: ast.expr) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.Tuple):
        return tuple(_evaluate(e) for e in node.elts)
    if isinstance(node, ast.Call):
        # Only parentheses can spell a call here, as in "(2)(3)": nothing is callable.
        func = _evaluate(node.func)
        raise TypeError(f"'{type(func).__name__}' object is not callable")
    # The allowed characters cannot spell anything else; refuse rather than guess.
    raise ValueError(f"unsupported expression: {ast.dump(node)}")


def _check_power(base: Any, exponent: Any) -> None:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0:
        if base.bit_length() * exponent > _MAX_POWER_BITS:
            raise OverflowError("int too large to convert to float")
