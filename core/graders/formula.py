"""A safe arithmetic evaluator for the `multi` grader's `calculate_output`.

OpenAI's multigrader combines sub-grader scores with a formula such as
`"0.5 * accuracy + 0.5 * fluency"`. The formula comes from the client, so it is parsed with
`ast` and walked against a whitelist: numbers, sub-grader names, `+ - * /` (and `^`/`**` as
power, as in OpenAI's docs), unary signs, parentheses and a few pure math functions. There is
no `eval`, no attribute access, no subscripts, no keywords, no other names or calls.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping

MAX_FORMULA_LENGTH = 1000
MAX_FORMULA_DEPTH = 50
"""Nesting of operations in a formula (`1+1+…` of 500 terms nests 500 deep): evaluation
recurses once per level, and runs inside a trainer's deep stack."""

FUNCTIONS: dict[str, Callable[..., float]] = {
    "min": min,
    "max": max,
    "abs": abs,
    "floor": math.floor,
    "ceil": math.ceil,
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,
}
"""Variadic min/max, unary others; all pure and bounded in time."""

_BINOPS: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.BitXor: operator.pow,  # OpenAI writes powers as `a ^ 2`
}
_UNARY: dict[type[ast.unaryop], Callable[[float], float]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


class FormulaError(ValueError):
    """The formula is not in the allowed arithmetic subset."""


def parse_formula(formula: str, names: set[str]) -> ast.Expression:
    """Parse and check `formula`; every free name must be in `names`."""
    if len(formula) > MAX_FORMULA_LENGTH:
        raise FormulaError(f"formula longer than {MAX_FORMULA_LENGTH} characters")
    try:
        tree = ast.parse(formula.strip(), mode="eval")
    except SyntaxError as exc:
        raise FormulaError(f"formula is not valid arithmetic: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise FormulaError("formula is too deeply nested") from None
    _check(tree.body, names)
    return tree


def _check(node: ast.AST, names: set[str], depth: int = 1) -> None:
    if depth > MAX_FORMULA_DEPTH:
        raise FormulaError(f"formula nests deeper than {MAX_FORMULA_DEPTH} operations")
    depth += 1
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise FormulaError(f"only numeric constants are allowed, got {node.value!r}")
    elif isinstance(node, ast.Name):
        if node.id not in names:
            raise FormulaError(f"unknown name '{node.id}' (sub-graders: {sorted(names)})")
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BINOPS:
            raise FormulaError(f"operator {type(node.op).__name__} is not allowed")
        _check(node.left, names, depth)
        _check(node.right, names, depth)
    elif isinstance(node, ast.UnaryOp):
        if type(node.op) not in _UNARY:
            raise FormulaError(f"operator {type(node.op).__name__} is not allowed")
        _check(node.operand, names, depth)
    elif isinstance(node, ast.Call):
        func = node.func
        if not isinstance(func, ast.Name) or func.id not in FUNCTIONS:
            raise FormulaError(f"only calls to {sorted(FUNCTIONS)} are allowed")
        if node.keywords or not node.args:
            raise FormulaError(f"{func.id}() takes positional arguments only")
        if func.id not in ("min", "max") and len(node.args) != 1:
            raise FormulaError(f"{func.id}() takes exactly one argument")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise FormulaError("star-arguments are not allowed")
            _check(arg, names, depth)
    else:
        raise FormulaError(f"{type(node).__name__} is not allowed in a formula")


def evaluate(tree: ast.Expression, values: Mapping[str, float]) -> float:
    """Evaluate a checked formula. Math errors (x/0, log(0), overflow) give 0.0: a reward
    function must not crash a training run on one odd sample."""
    try:
        result = float(_eval(tree.body, values))
    except (ZeroDivisionError, ValueError, OverflowError):
        return 0.0
    return result if math.isfinite(result) else 0.0


def _eval(node: ast.AST, values: Mapping[str, float]) -> float:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, values), _eval(node.right, values)
        if isinstance(node.op, ast.Pow | ast.BitXor):
            left, right = float(left), float(right)  # float pow never runs unbounded
        return _BINOPS[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_eval(node.operand, values))
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        return FUNCTIONS[node.func.id](*(_eval(a, values) for a in node.args))
    raise FormulaError(f"{type(node).__name__} is not allowed in a formula")  # unreachable
