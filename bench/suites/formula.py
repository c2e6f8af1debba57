"""A score formula evaluated safely: numbers, variables, + - * /, unary minus, max/min/abs. No ``eval``.

The formula is parsed with :mod:`ast` and only the node types above are accepted, so a suite
file can never run code: ``"CLIPIQA + MUSIQ/100 + max(0, (10 - NIQE)/10)"``. Everything that could
fail later is refused when the suite is read: the text is at most MAX_CHARS long and MAX_DEPTH
deep, every number is a finite float, ``abs`` takes one argument and ``max``/``min`` at least one.
"""
from __future__ import annotations

import ast
import math
import operator
from collections.abc import Mapping

from bench.core.errors import UserError

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_FUNCTIONS = {"max": max, "min": min, "abs": abs}
#: (lowest, highest) number of arguments of each function
_ARITY = {"max": (1, 64), "min": (1, 64), "abs": (1, 1)}
MAX_CHARS = 2000
MAX_DEPTH = 50


class Formula:
    """A parsed, validated formula; :meth:`evaluate` takes the variable values."""

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise UserError(f"score formula {text!r}: must be text")
        self.text = text
        shown = text if len(text) <= 80 else text[:77] + "..."
        if len(text) > MAX_CHARS:
            raise UserError(f"score formula {shown!r}: {len(text)} characters, more than {MAX_CHARS}")
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise UserError(f"score formula {shown!r}: not a valid expression ({exc.msg})") from exc
        except (RecursionError, MemoryError, ValueError) as exc:  # ValueError: a NUL byte
            raise UserError(f"score formula {shown!r}: not a valid expression ({type(exc).__name__})") from exc
        self.variables: list[str] = []
        self._check(tree.body, 0)
        self._tree = tree.body

    def _check(self, node: ast.AST, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise UserError(f"score formula {self.text[:80]!r}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            try:
                ok = math.isfinite(float(node.value))
            except OverflowError:
                ok = False
            if not ok:
                raise UserError(f"score formula {self.text[:80]!r}: the number {str(node.value)[:20]}... is not a "
                                "finite float")
            return
        if isinstance(node, ast.Name):
            if node.id in _FUNCTIONS:
                raise UserError(f"score formula {self.text!r}: {node.id} is a function, call it as {node.id}(...)")
            if node.id not in self.variables:
                self.variables.append(node.id)
            return
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            self._check(node.left, depth + 1)
            self._check(node.right, depth + 1)
            return
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            self._check(node.operand, depth + 1)
            return
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
                and not node.keywords and node.args):
            lo, hi = _ARITY[node.func.id]
            if not lo <= len(node.args) <= hi or any(isinstance(a, ast.Starred) for a in node.args):
                raise UserError(f"score formula {self.text[:80]!r}: {node.func.id}() takes "
                                + (f"{lo} argument" if lo == hi else f"{lo} to {hi} arguments")
                                + f", got {len(node.args)}")
            for arg in node.args:
                self._check(arg, depth + 1)
            return
        raise UserError(
            f"score formula {self.text[:80]!r}: {ast.unparse(node)[:60]!r} is not allowed "
            "(numbers, variables, + - * /, parentheses, max(), min(), abs() only)"
        )

    def evaluate(self, values: Mapping[str, float]) -> float:
        """The formula's value; NaN when a variable is missing or NaN (never a partial score)."""
        missing = [v for v in self.variables if v not in values]
        if missing:
            raise KeyError(f"score formula needs {', '.join(missing)}")
        return self._eval(self._tree, values)

    def _eval(self, node: ast.AST, values: Mapping[str, float]) -> float:
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name):
            try:
                return float(values[node.id])
            except (TypeError, ValueError):
                return math.nan  # not a number: no score, never a partial one
        if isinstance(node, ast.BinOp):
            a, b = self._eval(node.left, values), self._eval(node.right, values)
            if isinstance(node.op, ast.Div) and b == 0:
                return math.nan
            out = _BINARY[type(node.op)](a, b)
            return out if not math.isinf(out) or math.isinf(a) or math.isinf(b) else math.nan
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](self._eval(node.operand, values))
        if isinstance(node, ast.Call):
            args = [self._eval(a, values) for a in node.args]
            if any(math.isnan(a) for a in args):
                return math.nan  # max(0, nan) must not hide a missing value
            return float(_FUNCTIONS[node.func.id](*args) if len(args) > 1 or node.func.id == "abs" else args[0])
        raise AssertionError("unreachable: the formula was validated")  # pragma: no cover


__all__ = ["Formula"]
