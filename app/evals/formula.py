"""The `calculate_output` formula of a multi grader: arithmetic over its graders' scores.

A formula is parsed with `ast` and walked by hand, never compiled or run: only numbers, the
graders' names, `+ - * / **`, unary minus, parentheses and calls of the functions below are
allowed. Everything is computed in floats, so `9 ** 9 ** 9` overflows into an error instead
of building a huge integer.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Collection, Mapping

from app.core.errors import BadRequest

MAX_FORMULA_LENGTH = 1000


def _power(base: float, exponent: float) -> float:
    result = base**exponent
    if isinstance(result, complex):  # Python's answer for a negative base and a fractional exponent
        raise ValueError(f"{base} ** {exponent} is not a real number")
    return result


BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: _power,
}
FUNCTIONS: dict[str, tuple[Callable[..., float], range]] = {
    # name: (function, how many arguments it takes)
    "min": (min, range(1, 100)),
    "max": (max, range(1, 100)),
    "abs": (abs, range(1, 2)),
    "floor": (math.floor, range(1, 2)),
    "ceil": (math.ceil, range(1, 2)),
    "exp": (math.exp, range(1, 2)),
    "sqrt": (math.sqrt, range(1, 2)),
    "log": (math.log, range(1, 3)),  # log(x) is natural, log(x, base) any base
}


class FormulaError(ValueError):
    """A formula that cannot be read, or whose value cannot be computed (division by zero, overflow)."""


def check(formula: str, names: Collection[str], param: str) -> None:
    """Refuse a formula that is malformed or uses a name other than `names` or an unsupported operation."""
    try:
        _parse(formula, names)
    except FormulaError as error:
        raise BadRequest(f"Invalid formula in '{param}': {error}.", param=param, code="invalid_formula") from error


def evaluate(formula: str, values: Mapping[str, float]) -> float:
    """The formula's value with each name bound to `values[name]`; FormulaError when it has none."""
    tree = _parse(formula, values.keys())
    try:
        result = _value(tree, values)
    except ZeroDivisionError as error:
        raise FormulaError(f"'{formula}' divides by zero") from error
    except (OverflowError, ValueError) as error:  # math domain errors: sqrt(-1), log(0)
        raise FormulaError(f"'{formula}' cannot be computed: {error}") from error
    if not isinstance(result, float) or not math.isfinite(result):
        raise FormulaError(f"'{formula}' is not a finite real number for these scores ({result})")
    return result


def _parse(formula: str, names: Collection[str]) -> ast.expr:
    if not isinstance(formula, str) or not formula.strip():
        raise FormulaError("the formula is empty")
    if len(formula) > MAX_FORMULA_LENGTH:
        raise FormulaError(f"the formula is longer than {MAX_FORMULA_LENGTH} characters")
    try:
        tree = ast.parse(formula.strip(), mode="eval").body
    except (SyntaxError, RecursionError, MemoryError) as error:
        raise FormulaError(f"'{formula}' is not a valid expression") from error
    # A function's name is checked with its call; every other name must be a grader's.
    callees = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    for node in ast.walk(tree):
        if id(node) not in callees:
            _check_node(node, names)
    return tree


def _check_node(node: ast.AST, names: Collection[str]) -> None:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise FormulaError(f"{node.value!r} is not a number")
    elif isinstance(node, ast.Name):
        if node.id not in names:
            known = ", ".join(sorted(names)) or "none"
            raise FormulaError(f"'{node.id}' is not one of the graders' names ({known})")
    elif isinstance(node, ast.Call):
        _check_call(node)
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in BINARY:
            raise FormulaError(f"the operator {ast.unparse(node)!r} is not allowed; use + - * / **")
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, ast.USub):
            raise FormulaError(f"{ast.unparse(node)!r}: only unary minus is allowed")
    elif not isinstance(node, ast.operator | ast.unaryop | ast.Load):
        raise FormulaError(f"{ast.unparse(node)!r} is not allowed; use numbers, names, + - * / ** and functions")


def _check_call(node: ast.Call) -> None:
    allowed = ", ".join(FUNCTIONS)
    if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
        raise FormulaError(f"{ast.unparse(node.func)!r} is not a function a formula may call ({allowed})")
    arity = FUNCTIONS[node.func.id][1]
    if node.keywords or any(isinstance(argument, ast.Starred) for argument in node.args):
        raise FormulaError(f"{node.func.id}() takes positional arguments only")
    if len(node.args) not in arity:
        counts = str(arity.start) if len(arity) == 1 else f"{arity.start} to {arity.stop - 1}"
        raise FormulaError(f"{node.func.id}() takes {counts} arguments, not {len(node.args)}")


def _value(node: ast.expr, values: Mapping[str, float]) -> float:
    """The value of a checked tree; the cases are exactly those `_check_node` lets through."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.Name):
        return float(values[node.id])
    if isinstance(node, ast.UnaryOp):
        return -_value(node.operand, values)
    if isinstance(node, ast.BinOp):
        return BINARY[type(node.op)](_value(node.left, values), _value(node.right, values))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        function = FUNCTIONS[node.func.id][0]
        return float(function(*(_value(argument, values) for argument in node.args)))
    raise FormulaError(f"{ast.unparse(node)!r} is not allowed")
