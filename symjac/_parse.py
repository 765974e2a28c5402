"""The safe expression language: text -> symbolic array, through an `ast` allow-list.

User text is parsed with `ast.parse(text, mode="eval")` and walked node by node; each
allowed node is turned into a value directly, from the declared names and the functions
of `symjac.ops`. Nothing is ever executed: no `eval`, `exec`, `compile` to code,
`sympify` or `parse_expr` (all of which run text as Python), and no `getattr` with user
strings. Why not a parsing library: the grammar is Python's own expression grammar, and
`ast` already parses it exactly; what matters is the allow-list and the budgets, which
live here.

Every limit is a field of `Limits` (`symjac._budget`, re-exported here; the documented
defaults are `DEFAULT_LIMITS`). Text that
breaks a rule of the language raises `InvalidExpressionError`; work over a budget raises
`TooLargeError`, before the work is done wherever it can be sized in advance.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import io
import keyword
import math
import operator
import re
import tokenize
import unicodedata
import warnings
from collections.abc import Mapping
from typing import Any, Callable, Iterator

import mpmath
import numpy as np
import sympy as sp

from symjac import ops
from symjac._vocabulary import KEYWORD_KINDS, TEXT_FUNCTIONS
from symjac import _cost
from symjac._budget import DEFAULT_LIMITS, Limits, exceeds_digits, raise_hint
from symjac._errors import (
    DomainError,
    InvalidArgumentError,
    InvalidExpressionError,
    ShapeError,
    SymjacError,
    TooLargeError,
)

__all__ = [
    "DEFAULT_LIMITS",
    "FUNCTIONS",
    "Limits",
    "RESERVED_NAMES",
    "parse_expression",
    "validate_name",
]


# --------------------------------------------------------------------------- limits

# `Limits` (every budget of symjac, the expression text's included) lives in `symjac._budget`;
# it is re-exported here, where the text budgets are enforced.

# --------------------------------------------------------------------------- vocabulary

# name -> (function, least number of positional arguments), read from the one table of
# operations (symjac._vocabulary); its rows also give keywords, arity ranges and budget facts.
FUNCTIONS: Mapping[str, tuple[Callable[..., np.ndarray], int]] = {
    name: (row.implementation, row.arity[0]) for name, row in TEXT_FUNCTIONS.items()
}

_CONSTANTS = {"pi": sp.pi, "e": sp.E}
_ELEMENTWISE = {name for name, row in TEXT_FUNCTIONS.items() if row.elementwise}
_BOUNDED_ARGUMENT = {name for name, row in TEXT_FUNCTIONS.items() if row.bounded_argument}
# The comparisons of the language (only as the condition of where(c, a, b)).
_COMPARISONS: dict[type, tuple[str, Callable[[Any, Any], np.ndarray]]] = {
    ast.Gt: (">", ops.gt), ast.GtE: (">=", ops.ge), ast.Lt: ("<", ops.lt),
    ast.LtE: ("<=", ops.le), ast.Eq: ("==", ops.eq), ast.NotEq: ("!=", ops.ne),
}


def _signature(name: str) -> str:
    return TEXT_FUNCTIONS[name].signature()


# --------------------------------------------------------------------------- names

_NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_MAX_NAME_LENGTH = 32
_MODULE_NAMES = frozenset({
    "torch", "numpy", "np", "sympy", "sp", "math", "cmath", "mpmath", "symengine",
    "scipy", "jax", "jnp", "tf", "tensorflow", "os", "sys", "builtins", "symjac", "ops",
})
_SPECIAL_VALUE_NAMES = frozenset({"inf", "nan", "oo", "zoo"})
_KEYWORDS = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist)
_BUILTIN_NAMES = frozenset(n for n in dir(builtins) if not n.startswith("_"))

RESERVED_NAMES: frozenset[str] = (
    frozenset(FUNCTIONS)
    | frozenset(_CONSTANTS)
    | _KEYWORDS
    | _BUILTIN_NAMES
    | _MODULE_NAMES
    | _SPECIAL_VALUE_NAMES
)


def _reserved_reason(name: str) -> str | None:
    if name in FUNCTIONS:
        return "a function of the expression language"
    if name in _CONSTANTS:
        return "a constant of the expression language"
    if name in _KEYWORDS:
        return "a Python keyword"
    if name in _BUILTIN_NAMES:
        return "a Python builtin"
    if name in _MODULE_NAMES:
        return "a module name"
    if name in _SPECIAL_VALUE_NAMES:
        return "the name of a special value in SymPy or NumPy"
    return None


def validate_name(name: Any, *, argument: str, kind: str = "input") -> str:
    """Check that `name` can name an input or a constant; return it.

    A name is a `str` of at most 32 characters matching `^[A-Za-z][A-Za-z0-9_]*$`
    (ASCII, no leading underscore) that is not in `RESERVED_NAMES` (the functions and
    constants of the language, Python keywords and builtins, module names such as
    `torch` and `np`, and `inf`, `nan`, `oo`, `zoo`).

    Args:
        name: the candidate.
        argument: how the caller's argument is named in the message.
        kind: what the name names, for the message (`"input"`, `"constant"`).

    Raises:
        InvalidArgumentError: with the rule and what was received.

    Example:
        >>> validate_name("X", argument="X")
        'X'
    """
    if not isinstance(name, str):
        raise InvalidArgumentError(
            f"{argument}: {kind} name must be a str; received {type(name).__name__} "
            f"{name!r}"
        )
    if not _NAME_PATTERN.fullmatch(name):
        raise InvalidArgumentError(
            f"{argument}: {kind} name {name!r} is not valid; a name starts with an ASCII "
            "letter and continues with letters, digits or '_' (^[A-Za-z][A-Za-z0-9_]*$)"
        )
    if len(name) > _MAX_NAME_LENGTH:
        raise InvalidArgumentError(
            f"{argument}: {kind} name {name[:_MAX_NAME_LENGTH]!r}... is too long; at most "
            f"{_MAX_NAME_LENGTH} characters, received {len(name)}"
        )
    reason = _reserved_reason(name)
    if reason is not None:
        raise InvalidArgumentError(f"{argument}: {kind} name {name!r} is reserved ({reason})")
    return name


# --------------------------------------------------------------------------- syntax tables

_CONSTRUCTS: dict[type, str] = {
    ast.Lambda: "lambda",
    ast.ListComp: "list comprehension",
    ast.SetComp: "set comprehension",
    ast.DictComp: "dict comprehension",
    ast.GeneratorExp: "generator expression",
    ast.JoinedStr: "f-string",
    ast.FormattedValue: "f-string",
    ast.Compare: "comparison",
    ast.BoolOp: "boolean operator (and/or)",
    ast.IfExp: "conditional expression (a if c else b)",
    ast.NamedExpr: "assignment expression (:=)",
    ast.List: "list",
    ast.Tuple: "tuple",
    ast.Set: "set",
    ast.Dict: "dict",
    ast.Starred: "starred expression (*args)",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slice (a:b)",
}
# Operations whose symbolic work `_Evaluator.call_work` estimates by name.
_LEGACY_WORK = frozenset({
    "exp", "log", "sin", "cos", "tan", "tanh", "sqrt", "abs", "relu", "sigmoid", "sum", "mean",
    "transpose", "mm", "matmul", "dot", "outer", "kron", "trace", "det", "inv", "solve",
    "softmax", "logsumexp", "norm",
})
_COMPARISON_HINT = "comparisons are allowed only as the condition of where(c, a, b)"

_BINARY: dict[type, tuple[str, Callable[[Any, Any], Any] | None]] = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
    ast.Pow: ("**", operator.pow),
    ast.MatMult: ("@", None),
}
_RUN_GROUPS = {ast.Add: "+", ast.Sub: "+", ast.Mult: "*", ast.Div: "*"}
_REFUSED_BINARY = {
    ast.FloorDiv: "//", ast.Mod: "%", ast.LShift: "<<", ast.RShift: ">>",
    ast.BitOr: "|", ast.BitXor: "^", ast.BitAnd: "&",
}
_REFUSED_UNARY = {ast.Not: "not", ast.Invert: "~"}

# Nodes that are not counted: operator and context markers.
_UNCOUNTED = (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)

_ALLOWED_SUMMARY = (
    "allowed: numbers, declared names, pi, e, + - * / ** @, calls of the language's "
    "functions, .T and integer indexing"
)

# Flags of a SymPy node (see _Evaluator.info).
_UNDEFINED = 1
_NONREAL = 2
_BIGNUM = 4

_UNDEFINED_ATOMS = (sp.S.NaN, sp.S.ComplexInfinity, sp.S.Infinity, sp.S.NegativeInfinity)

_LIMIT_FIELD = re.compile(r"\(Limits\.(\w+)\)")

_iv = mpmath.iv
_INTERVAL_CAP = 10**6  # beyond this magnitude, sin/cos fall back to [-1, 1], exp to unknown


_scalar = ops._scalar


def _float_to_rational(value: float) -> sp.Rational:
    return ops._float_to_rational(value, "expr")


def _ends(enclosure: Any) -> tuple[Any, Any]:
    """The end points of an mpmath interval, as mpf."""
    return mpmath.mpf(enclosure.a), mpmath.mpf(enclosure.b)


def _magnitude(enclosure: Any) -> Any:
    """The largest absolute value in an mpmath interval, as an mpf."""
    low, high = _ends(enclosure)
    return max(abs(low), abs(high))


def _flat_terms(terms: list[np.ndarray], shape: tuple[int, ...]) -> list[np.ndarray]:
    """Each term broadcast to `shape` and flattened in C order (a term of that shape as it is)."""
    return [term.reshape(-1) if term.shape == shape else np.broadcast_to(term, shape).reshape(-1)
            for term in terms]


def _nargs(expr: sp.Basic) -> int:
    return len(expr.args) if (expr.is_Add or expr.is_Mul) else 1


# --------------------------------------------------------------------------- evaluator


class _Evaluator:
    """One parse: the text, the declared names, the limits and the work spent so far."""

    def __init__(self, text: str, names: Mapping[str, Any], limits: Limits):
        self.text = text
        self.names = names
        self.limits = limits
        self.work = 0
        self.seconds = 0.0  # the cost model's estimate of the steps so far (symjac._cost)
        self.values: dict[str, np.ndarray] = {}
        self.infos: dict[sp.Basic, tuple[int, int, bool]] = {}
        self.intervals: dict[sp.Basic, Any] = {}

    # ---------------------------------------------------------------- messages

    def snippet(self, node: ast.AST) -> str:
        segment = ast.get_source_segment(self.text, node) or self.text
        segment = " ".join(segment.split())
        return segment if len(segment) <= 60 else segment[:57] + "..."

    def error(self, message: str, node: ast.AST | None = None) -> InvalidExpressionError:
        where = f" (in {self.snippet(node)!r})" if node is not None else ""
        return InvalidExpressionError(f"expr: {message}{where}")

    def too_large(self, message: str, node: ast.AST) -> TooLargeError:
        field = _LIMIT_FIELD.search(message)
        value = _cost.suggest(self.seconds, later=True) if field and field.group(1) == "max_seconds" else None
        hint = f"; use smaller shapes or simpler text, {raise_hint(field.group(1), value)}" if field else ""
        return TooLargeError(f"expr: {message} (in {self.snippet(node)!r}){hint}")

    @contextlib.contextmanager
    def guard(self, label: str, node: ast.AST) -> Iterator[None]:
        """Report SymPy's own failures while building `label` as errors of the text."""
        try:
            yield
        except SymjacError:
            raise
        except (ArithmeticError, ValueError, TypeError, NotImplementedError) as err:
            raise self.error(
                f"{label}: SymPy could not build this expression ({type(err).__name__}: "
                f"{str(err)[:200]})", node) from err
        except MemoryError:
            raise self.too_large(f"{label} ran out of memory", node) from None

    # ---------------------------------------------------------------- pass 1: size

    def count(self, root: ast.AST) -> None:
        """Count nodes and nesting iteratively, before anything else looks at the tree."""
        limits = self.limits
        nodes = 0
        stack: list[tuple[ast.AST, int]] = [(root, 1)]
        while stack:
            node, depth = stack.pop()
            if isinstance(node, _UNCOUNTED):
                continue
            nodes += 1
            if nodes > limits.max_nodes:
                raise InvalidExpressionError(
                    f"expr: expression too large: more than {limits.max_nodes} syntax "
                    "nodes (Limits.max_nodes)"
                )
            if depth > limits.max_depth:
                raise InvalidExpressionError(
                    f"expr: nesting too deep: more than {limits.max_depth} levels "
                    "(Limits.max_depth)"
                )
            left = node.left if isinstance(node, ast.BinOp) else None
            for child in ast.iter_child_nodes(node):
                stack.append((child, depth if child is left else depth + 1))

    # ---------------------------------------------------------------- pass 2: allow-list

    def validate(self, root: ast.AST) -> None:
        """Check every node against the allow-list, in reading order, iteratively."""
        stack: list[Any] = [root]
        while stack:
            item = stack.pop()
            if isinstance(item, tuple):
                kind, node = item
                if kind == "attribute":
                    if node.attr != "T":
                        raise self.error(
                            f"attribute '.{node.attr}' is not allowed; the only attribute "
                            "is .T (transpose)", node)
                elif kind == "subscript":
                    self.indices(node)
                elif kind == "compare":
                    self.check_compare(node, stack)
                else:  # a call of something other than a bare function name
                    raise self.error(
                        "only the language's functions can be called, by bare name (e.g. "
                        f"sin(x)); received a call of {self.snippet(node.func)!r}", node)
                continue
            node = item
            if isinstance(node, ast.Constant):
                self.check_constant(node)
            elif isinstance(node, ast.Name):
                self.check_bare_name(node)
            elif isinstance(node, ast.UnaryOp):
                if type(node.op) in _REFUSED_UNARY:
                    raise self.error(
                        f"construct not allowed: operator '{_REFUSED_UNARY[type(node.op)]}'; "
                        f"{_ALLOWED_SUMMARY}", node)
                stack.append(node.operand)
            elif isinstance(node, ast.BinOp):
                if type(node.op) in _REFUSED_BINARY:
                    raise self.error(
                        "construct not allowed: operator "
                        f"'{_REFUSED_BINARY[type(node.op)]}'; {_ALLOWED_SUMMARY}", node)
                stack.append(node.right)
                stack.append(node.left)
            elif isinstance(node, ast.Call):
                self.check_call(node, stack)
            elif isinstance(node, ast.Attribute):
                stack.append(("attribute", node))
                stack.append(node.value)
            elif isinstance(node, ast.Subscript):
                stack.append(("subscript", node))
                stack.append(node.value)
            elif isinstance(node, ast.Expression):
                stack.append(node.body)
            else:
                what = _CONSTRUCTS.get(type(node), type(node).__name__)
                if isinstance(node, ast.Compare):
                    what += f" ({_COMPARISON_HINT})"
                raise self.error(f"construct not allowed: {what}; {_ALLOWED_SUMMARY}", node)

    def check_constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bool):
            what = "boolean literal (True/False)"
        elif isinstance(value, int):
            if exceeds_digits(value, self.limits.max_int_digits):
                raise self.error(
                    "integer literal too large: more than "
                    f"{self.limits.max_int_digits} digits (Limits.max_int_digits)", node)
            return
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise self.error("float literal too large: it is not a finite number", node)
            rational = _float_to_rational(value)
            if self.big(rational):
                raise self.error(
                    "float literal too large or too small: as an exact number it has more "
                    f"than {self.limits.max_number_digits} digits "
                    "(Limits.max_number_digits)", node)
            return
        elif isinstance(value, complex):
            what = "complex literal (the language is real-valued)"
        elif value is None:
            what = "None"
        elif isinstance(value, str):
            what = "string literal"
        elif isinstance(value, bytes):
            what = "bytes literal"
        elif value is Ellipsis:
            what = "Ellipsis (...)"
        else:
            what = f"literal of type {type(value).__name__}"
        raise self.error(f"construct not allowed: {what}; {_ALLOWED_SUMMARY}", node)

    def unknown_name(self, name: str, node: ast.AST) -> InvalidExpressionError:
        declared = ", ".join(self.names) or "(none)"
        points = f" ({_code_points(name)})" if not name.isascii() else ""
        message = f"unknown name {name!r}{points}; declared names: {declared}"
        if _NAME_PATTERN.fullmatch(name) and _reserved_reason(name) is None:
            message += (
                f". Declare an input with symjac.function(..., {name}=()) or a constant "
                f"with consts={{{name!r}: ...}}"
            )
        return self.error(message, node)

    def check_bare_name(self, node: ast.Name) -> None:
        name = node.id
        if name in self.names or name in _CONSTANTS:
            return
        if name in FUNCTIONS:
            raise self.error(
                f"function not called: {name!r} needs its arguments, e.g. {_signature(name)}",
                node)
        raise self.unknown_name(name, node)

    def check_call(self, node: ast.Call, stack: list[Any]) -> None:
        func = node.func
        if not isinstance(func, ast.Name):
            if isinstance(func, ast.Lambda):
                raise self.error(f"construct not allowed: lambda; {_ALLOWED_SUMMARY}", func)
            stack.append(("call", node))
            stack.append(func)
            return
        name = func.id
        if name not in FUNCTIONS:
            if name in self.names or name in _CONSTANTS:
                raise self.error(f"{name!r} is a declared name, not a function", node)
            raise self.error(
                f"unknown function {name!r}; allowed functions: {', '.join(sorted(FUNCTIONS))}",
                node)
        row = TEXT_FUNCTIONS[name]
        if node.keywords and not row.keywords:
            raise self.error(
                f"{name}: keyword arguments are not allowed; call it as {_signature(name)}",
                node)
        for keyword_node in node.keywords:
            self.literal_keyword(name, keyword_node, node)
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.error(
                    f"construct not allowed: starred expression (*args); {_ALLOWED_SUMMARY}",
                    arg)
        low, high = row.arity
        if len(node.args) < low or (high is not None and len(node.args) > high):
            arity = low if low == high else (f"{low} or more" if high is None else f"{low} to {high}")
            plural = "argument" if arity == 1 else "arguments"
            raise self.error(
                f"{name} takes {arity} {plural} ({_signature(name)}); received "
                f"{len(node.args)}", node)
        if row.int_arguments:
            for arg in node.args:
                self.int_literal(arg, f"{name}: arguments must be int literals, e.g. {name}(3)")
            return
        args = list(node.args)
        if name == "where" and isinstance(args[0], ast.Compare):
            stack.extend(reversed(args[1:]))
            stack.append(("compare", args[0]))
            return
        stack.extend(reversed(args))

    def check_compare(self, node: ast.Compare, stack: list[Any]) -> None:
        if len(node.ops) != 1 or type(node.ops[0]) not in _COMPARISONS:
            raise self.error(
                "construct not allowed: chained comparison; write one comparison such as "
                "x > 0 as the condition of where(c, a, b)", node)
        stack.append(node.comparators[0])
        stack.append(node.left)

    def int_literal(self, node: ast.AST, message: str) -> int:
        """The value of an int literal such as `3` or `-1`; anything else is refused."""
        value, sign = node, 1
        if isinstance(value, ast.UnaryOp) and isinstance(value.op, (ast.USub, ast.UAdd)):
            sign = -1 if isinstance(value.op, ast.USub) else 1
            value = value.operand
        if (isinstance(value, ast.Constant) and isinstance(value.value, int)
                and not isinstance(value.value, bool)):
            self.check_constant(value)
            return sign * value.value
        raise self.error(f"{message}; received {self.snippet(node)!r}", node)

    def literal_keyword(self, name: str, keyword_node: ast.keyword, call: ast.Call) -> Any:
        """The literal value of `axis=1`, `keepdim=True`, `shape=(2, 3)`: allowed ones only."""
        row = TEXT_FUNCTIONS[name]
        key = keyword_node.arg
        if key is None or key not in row.keywords:
            allowed = ", ".join(row.keywords) or "none"
            raise self.error(
                f"{name}: keyword argument {key or '**'!r} is not allowed; allowed keywords: "
                f"{allowed}", call)
        kind = row.keywords[key]
        value = keyword_node.value
        message = f"{name}: {key}= must be {KEYWORD_KINDS.get(kind, kind)}"
        if kind == "bool":
            if isinstance(value, ast.Constant) and isinstance(value.value, bool):
                return value.value
            raise self.error(f"{message}; received {self.snippet(value)!r}", call)
        if kind == "int":
            return self.int_literal(value, message)
        if isinstance(value, ast.Tuple):
            return tuple(self.int_literal(item, message) for item in value.elts)
        if kind == "ints":
            return self.int_literal(value, message)
        raise self.error(f"{message}; received {self.snippet(value)!r}", call)

    def indices(self, node: ast.Subscript) -> tuple[Any, ...]:
        """The integer literals and literal slices of `X[0, -1]`, `X[1:, ::2]`; nothing else."""
        parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        result: list[Any] = []
        for part in parts:
            if isinstance(part, ast.Slice):
                bounds = [None if bound is None else self.int_literal(
                    bound, "construct not allowed: slice bounds must be int literals, e.g. X[1:3]")
                    for bound in (part.lower, part.upper, part.step)]
                if bounds[2] is not None and bounds[2] <= 0:
                    raise self.error(
                        f"a slice step must be a positive int literal; received {bounds[2]}", node)
                result.append(slice(*bounds))
                continue
            value = part
            sign = 1
            if isinstance(value, ast.UnaryOp) and isinstance(value.op, (ast.USub, ast.UAdd)):
                sign = -1 if isinstance(value.op, ast.USub) else 1
                value = value.operand
            if (isinstance(value, ast.Constant) and isinstance(value.value, int)
                    and not isinstance(value.value, bool)):
                self.check_constant(value)
                result.append(sign * value.value)
                continue
            if isinstance(part, ast.Slice):
                raise self.error(
                    "construct not allowed: slice (a:b); indices are integer literals, "
                    "e.g. X[0, 1]", node)
            raise self.error(
                f"indices must be integer literals, e.g. X[0, 1]; received "
                f"{self.snippet(part)!r}", node)
        return tuple(result)

    # ---------------------------------------------------------------- pass 3: evaluation

    def evaluate(self, node: ast.AST) -> np.ndarray:
        if isinstance(node, ast.Expression):
            return self.evaluate(node.body)
        if isinstance(node, ast.Constant):
            if isinstance(node.value, int):
                return _scalar(sp.Integer(node.value))
            return _scalar(_float_to_rational(node.value))
        if isinstance(node, ast.Name):
            return self.lookup(node.id, node)
        if isinstance(node, ast.UnaryOp):
            value = self.evaluate(node.operand)
            if isinstance(node.op, ast.UAdd):
                return value
            return self.negate(value, node)
        if isinstance(node, ast.BinOp):
            # A chain a + b - c ... nests to the left: walk its spine with a loop, so
            # that only real nesting costs recursion (and counts against max_depth).
            chain = []
            left: ast.AST = node
            while isinstance(left, ast.BinOp):
                chain.append(left)
                left = left.left
            chain.reverse()
            accumulated = self.evaluate(left)
            position = 0
            while position < len(chain):
                group = _RUN_GROUPS.get(type(chain[position].op))
                if group is None:  # ** and @
                    binop = chain[position]
                    accumulated = self.binary(binop, accumulated, self.evaluate(binop.right))
                    position += 1
                    continue
                # A run of + and - (or of * and /) becomes one sympy.Add (sympy.Mul) per
                # entry: combining terms one by one re-flattens the growing sum, which
                # is quadratic in its length.
                run = []
                while (position < len(chain)
                       and _RUN_GROUPS.get(type(chain[position].op)) == group):
                    run.append((chain[position], self.evaluate(chain[position].right)))
                    position += 1
                accumulated = self.run(accumulated, run, group)
            return accumulated
        if isinstance(node, ast.Call):
            row = TEXT_FUNCTIONS[node.func.id]
            keywords = {k.arg: self.literal_keyword(row.name, k, node) for k in node.keywords}
            if row.int_arguments:
                return self.call(row.name, [self.int_literal(a, "") for a in node.args], node)
            if row.name == "where" and isinstance(node.args[0], ast.Compare):
                args = [self.comparison(node.args[0])]
                args += [self.evaluate(arg) for arg in node.args[1:]]
            else:
                args = [self.evaluate(arg) for arg in node.args]
            return self.call(node.func.id, args, node, keywords)
        if isinstance(node, ast.Attribute):
            return self.call("transpose", [self.evaluate(node.value)], node)
        if isinstance(node, ast.Subscript):
            return self.index(self.evaluate(node.value), node)
        raise AssertionError(f"unvalidated node {type(node).__name__}")  # pragma: no cover

    def lookup(self, name: str, node: ast.AST) -> np.ndarray:
        if name in _CONSTANTS:
            return _scalar(_CONSTANTS[name])
        if name not in self.values:
            value = ops.as_symbolic(self.names[name], argument=f"names[{name!r}]")
            self.values[name] = self.check_result(value, repr(name), node)
        return self.values[name]

    # ---------------------------------------------------------------- budgets

    def spend(self, work: int, entries: int, label: str, node: ast.AST) -> None:
        limits = self.limits
        if entries > limits.max_entries:
            raise self.too_large(
                f"{label} would produce {entries} entries; the limit is "
                f"{limits.max_entries} (Limits.max_entries)", node)
        self.work += work + 1
        step = _cost.operation_seconds(label, work + 1)
        self.seconds += step
        if self.seconds > limits.max_seconds:
            raise self.too_large(
                f"building this expression is estimated to take about {self.seconds:,.1f} s here, over the "
                f"limit of {limits.max_seconds:g} s (Limits.max_seconds); {label} alone about {step:,.1f} s",
                node)
        if self.work > limits.max_work:
            raise self.too_large(
                f"too much symbolic work: about {self.work} elementary operations so far, "
                f"over the budget of {limits.max_work} (Limits.max_work); {label} alone "
                f"needs about {work + 1}", node)

    def size_of(self, entry: sp.Basic) -> int:
        return self.info(entry)[0]

    def call_work(self, name: str, args: list[np.ndarray], out_size: int) -> int:
        first = args[0]
        if name in ("abs", "relu"):
            weight = 1 if name == "abs" else 10  # sign checks walk the written-out tree
            return sum(1 + weight * self.size_of(v) for v in first.flat)
        if name in ("sigmoid", "softmax", "log_softmax"):
            return 3 * first.size
        if name == "logaddexp":
            return 3 * out_size
        if name in _ELEMENTWISE:
            return first.size
        if name in ("sum", "mean", "trace", "norm", "logsumexp"):
            total = sum(_nargs(v) for v in first.flat)
            return total if name in ("sum", "mean", "trace") else 2 * total
        if name == "transpose":
            return 0
        if name in ("mm", "matmul", "bmm"):  # a product and a share of a sum: ~1.5 operations
            return out_size * first.shape[-1] * 3 // 2
        if name not in _LEGACY_WORK:  # the operations of issue 13: about one step per entry read
            sizes = [arg.size for arg in args if isinstance(arg, np.ndarray)]
            if name in ("prod", "var", "max", "min"):
                return 2 * sum(sum(_nargs(v) for v in arg.flat) for arg in args) + out_size
            else:
                return out_size + sum(sizes)
        if name in ("dot", "outer", "kron"):
            return max(out_size, first.size)
        n = first.shape[-1]
        batch = first.size // max(n * n, 1)  # leading axes of det/inv/solve are batch axes
        # A determinant is one node of n**2 entries above 3 x 3 (symjac._determinant); its Jacobian,
        # the n**2 cofactors of (n - 1)**2 entries each, about n**4. inv and solve: n**2 cofactors
        # whose Jacobians are n**2 entries of about n**2 each, n**6 (priced in `_cost.PARSE_SECONDS`).
        if name == "det":
            # times the square root of the entries' mean written-out size: every cofactor holds
            # (n - 1)**2 of them (`det(X @ X.T)`'s entries are sums of n products; measured at the
            # largest sizes accepted, 2026-12-02, it fits within the default 30 s)
            mean = sum(self.size_of(v) for v in first.flat) / max(first.size, 1)
            return int(batch * n**4 * math.sqrt(max(mean, 1.0)))
        inverse = batch * n**6
        if name == "inv":
            return inverse
        return inverse + out_size * n  # solve

    # ---------------------------------------------------------------- node facts

    def info(self, expr: sp.Basic) -> tuple[int, int, bool]:
        """(written-out size, flags, is constant) of a SymPy node, memoised over the DAG.

        Iterative and shared across the whole parse, so each distinct subexpression is
        visited once even when the written-out tree is exponentially larger.
        """
        memo = self.infos
        if expr in memo:
            return memo[expr]
        stack: list[tuple[sp.Basic, bool]] = [(expr, False)]
        while stack:
            node, expanded = stack.pop()
            if node in memo:
                continue
            args = node.args
            if not args:
                memo[node] = self.atom_info(node)
                continue
            if not expanded:
                stack.append((node, True))
                stack.extend((arg, False) for arg in args if arg not in memo)
                continue
            size, flags, constant = 1, 0, True
            for arg in args:
                arg_size, arg_flags, arg_constant = memo[arg]
                size += arg_size
                flags |= arg_flags
                constant = constant and arg_constant
            if (isinstance(node, sp.Pow) and node.base.is_Number and node.base.is_negative
                    and node.exp.is_Rational and not node.exp.is_Integer):
                flags |= _NONREAL  # (-8)**(1/3)
            memo[node] = (size, flags, constant)
        return memo[expr]

    def atom_info(self, node: sp.Basic) -> tuple[int, int, bool]:
        if isinstance(node, sp.Symbol):
            return (1, 0, False)
        if any(node is atom for atom in _UNDEFINED_ATOMS):
            return (1, _UNDEFINED, True)
        if node is sp.S.ImaginaryUnit:
            return (1, _NONREAL, True)
        if isinstance(node, sp.Rational):
            return (1, _BIGNUM if self.big(node) else 0, True)
        return (1, 0, True)

    def big(self, number: sp.Rational) -> bool:
        """More than `max_number_digits` digits in the numerator or the denominator."""
        digits = self.limits.max_number_digits
        return exceeds_digits(number.p, digits) or exceeds_digits(number.q, digits)

    def check_result(self, result: np.ndarray, label: str, node: ast.AST) -> np.ndarray:
        limits = self.limits
        infos, info = self.infos, self.info
        for position, entry in enumerate(result.flat):
            found = infos.get(entry)
            size, flags, _ = info(entry) if found is None else found
            if flags & _UNDEFINED:
                raise self.error("undefined expression (division by zero?): the result "
                                 "contains zoo, nan or oo", node)
            if flags & _NONREAL:
                raise self.error("not a real expression: the result contains the imaginary "
                                 "unit I (e.g. sqrt or log of a negative number, or a "
                                 "fractional power of one); the language is real-valued",
                                 node)
            if flags & _BIGNUM:
                raise self.too_large(
                    f"{label} produces a number with more than {limits.max_number_digits} "
                    "digits (Limits.max_number_digits)", node)
            if size > limits.max_entry_size:
                index = [int(i) for i in np.unravel_index(position, result.shape)]
                where = f"entry {index} of " if result.ndim else ""
                raise self.too_large(
                    f"{where}{label} has {size} nodes when written out; the limit is "
                    f"{limits.max_entry_size} (Limits.max_entry_size)", node)
        return result

    def interval(self, expr: sp.Basic) -> Any:
        """A rigorous enclosing interval of a constant (mpmath.iv), or None if unknown."""
        memo = self.intervals
        stack: list[tuple[sp.Basic, bool]] = [(expr, False)]
        while stack:
            node, expanded = stack.pop()
            if node in memo:
                continue
            if node.args and not expanded:
                stack.append((node, True))
                stack.extend((arg, False) for arg in node.args if arg not in memo)
                continue
            try:
                value = self.interval_step(node)
            except (ArithmeticError, ValueError, TypeError):
                value = None
            if value is not None:
                low, high = _ends(value)
                if not (mpmath.isfinite(low) and mpmath.isfinite(high)):
                    value = None
            memo[node] = value
        return memo[expr]

    def interval_step(self, node: sp.Basic) -> Any:
        iv = _iv
        memo = self.intervals
        args = [memo[arg] for arg in node.args]
        if isinstance(node, (sp.sin, sp.cos, sp.tanh)):
            unit = iv.mpf([-1, 1])
            if isinstance(node, sp.tanh) or args[0] is None:
                return unit
            if _magnitude(args[0]) > _INTERVAL_CAP:
                return unit
            return iv.sin(args[0]) if isinstance(node, sp.sin) else iv.cos(args[0])
        if any(arg is None for arg in args):
            return None
        if isinstance(node, sp.Integer):
            return iv.mpf(node.p)
        if isinstance(node, sp.Rational):
            return iv.mpf(node.p) / iv.mpf(node.q)
        if isinstance(node, sp.Float):
            value = float(node)
            return iv.mpf(value) if math.isfinite(value) else None
        if node is sp.pi:
            return iv.pi
        if node is sp.E:
            return iv.e
        if isinstance(node, sp.Add):
            total = args[0]
            for arg in args[1:]:
                total = total + arg
            return total
        if isinstance(node, sp.Mul):
            product = args[0]
            for arg in args[1:]:
                product = product * arg
            return product
        if isinstance(node, sp.Pow):
            base, exponent = args
            if node.exp.is_Integer:
                return base ** int(node.exp)
            if _ends(base)[0] > 0:
                power = exponent * iv.log(base)
                return None if _magnitude(power) > _INTERVAL_CAP else iv.exp(power)
            return None
        if isinstance(node, sp.exp):
            return None if _magnitude(args[0]) > _INTERVAL_CAP else iv.exp(args[0])
        if isinstance(node, sp.log):
            return iv.log(args[0]) if _ends(args[0])[0] > 0 else None
        if isinstance(node, sp.tan):
            return None if _magnitude(args[0]) > _INTERVAL_CAP else iv.tan(args[0])
        if isinstance(node, sp.Abs):
            return abs(args[0])
        if isinstance(node, (sp.Max, sp.Min)):
            pick = max if isinstance(node, sp.Max) else min
            low = pick(_ends(arg)[0] for arg in args)
            high = pick(_ends(arg)[1] for arg in args)
            return iv.mpf([low, high])
        return None

    def check_constant_arguments(self, name: str, argument: np.ndarray, node: ast.AST) -> None:
        bound = self.limits.max_constant_argument
        for entry in argument.flat:
            if not self.info(entry)[2]:
                continue
            enclosure = self.interval(entry)
            if enclosure is None or _magnitude(enclosure) > bound:
                raise self.too_large(
                    f"{name}: a constant argument must lie within +-{bound} "
                    "(Limits.max_constant_argument); this one is larger or cannot be "
                    "bounded", node)

    # ---------------------------------------------------------------- operations

    def negate(self, value: np.ndarray, node: ast.UnaryOp) -> np.ndarray:
        self.spend(value.size, value.size, "'-'", node)
        out = np.empty(value.shape, dtype=object)
        with self.guard("'-'", node):
            for index, entry in np.ndenumerate(value):
                out[index] = -entry
        return self.check_result(out, "'-'", node)

    def check_exponent(self, exponent: np.ndarray, node: ast.BinOp) -> None:
        bound = self.limits.max_exponent
        for entry in exponent.flat:
            if entry.is_Number:
                if abs(entry) > bound:
                    raise self.error(
                        f"exponent too large: |{entry}| > {bound}; numeric exponents are "
                        f"limited to |p| <= {bound} (Limits.max_exponent)", node)
            elif self.info(entry)[2]:
                enclosure = self.interval(entry)
                if enclosure is None or _magnitude(enclosure) > bound:
                    raise self.error(
                        f"exponent too large or cannot be bounded: constant exponents are "
                        f"limited to |p| <= {bound} (Limits.max_exponent)", node)

    def broadcast(self, node: ast.BinOp, left: tuple[int, ...], right: tuple[int, ...]
                  ) -> tuple[int, ...]:
        try:
            return np.broadcast_shapes(left, right)
        except ValueError:
            symbol = _BINARY[type(node.op)][0]
            raise ShapeError(
                f"expr: '{symbol}': shapes do not broadcast: left {left}, right {right} "
                f"(in {self.snippet(node)!r})") from None

    def flatten_work(self, values: list[np.ndarray], size: int) -> int:
        # SymPy's Add/Mul re-read the arguments of Add/Mul operands: about a fifth of an
        # elementary operation per argument.
        return sum(sum(_nargs(v) for v in value.flat) * (size // value.size)
                   for value in values if value.size) // 5

    def run(self, first: np.ndarray, run: list[tuple[ast.BinOp, np.ndarray]], group: str
            ) -> np.ndarray:
        """`first + a - b + ...` (group "+") or `first * a / b * ...` (group "*")."""
        shape = first.shape
        for binop, value in run:
            shape = self.broadcast(binop, shape, value.shape)
        node = run[-1][0]
        size = math.prod(shape)
        terms = [first] + [value for _, value in run]
        label = f"'{group}'"
        self.spend(size * len(run) + self.flatten_work(terms, size), size, label, node)
        inverted = [False] + [isinstance(binop.op, (ast.Sub, ast.Div)) for binop, _ in run]
        broadcast = _flat_terms(terms, shape)
        out = np.empty(size, dtype=object)
        pairs = list(zip(inverted, broadcast))
        with self.guard(label, node):
            if group == "+":
                for k in range(size):  # entry by entry in C order, as np.ndindex(shape)
                    out[k] = sp.Add(*(-term[k] if invert else term[k] for invert, term in pairs))
            else:
                for k in range(size):
                    out[k] = sp.Mul(*(sp.Pow(term[k], -1) if invert else term[k] for invert, term in pairs))
        return self.check_result(out.reshape(shape), label, node)

    def binary(self, node: ast.BinOp, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        symbol, function = _BINARY[type(node.op)]
        if function is None:
            return self.call("matmul", [left, right], node)
        shape = self.broadcast(node, left.shape, right.shape)
        size = math.prod(shape)
        label = f"'{symbol}'"
        self.spend(size + self.flatten_work([left, right], size), size, label, node)
        if function is operator.pow:
            self.check_exponent(right, node)
        left_b, right_b = _flat_terms([left, right], shape)
        out = np.empty(size, dtype=object)
        with self.guard(label, node):
            for k in range(size):  # entry by entry in C order, as np.ndindex(shape)
                out[k] = function(left_b[k], right_b[k])
        return self.check_result(out.reshape(shape), label, node)

    def call(self, name: str, args: list[Any], node: ast.AST,
             keywords: Mapping[str, Any] | None = None) -> np.ndarray:
        keywords = dict(keywords or {})
        row = TEXT_FUNCTIONS[name]
        try:
            if row.int_arguments:
                shape = ops._result_shape(name, *args)
            else:
                shape = ops._result_shape(name, *(arg.shape for arg in args), **keywords)
        except ShapeError as err:
            raise ShapeError(f"expr: {err} (in {self.snippet(node)!r})") from None
        except InvalidArgumentError as err:
            raise self.error(str(err), node) from None
        size = math.prod(shape)
        self.spend(self.call_work(name, args, size), size, name, node)
        if name in _BOUNDED_ARGUMENT:
            for argument in args:
                self.check_constant_arguments(name, argument, node)
        try:
            with self.guard(name, node):
                result = FUNCTIONS[name][0](*args, **keywords)
        except DomainError as err:
            raise DomainError(f"expr: {err} (in {self.snippet(node)!r})") from None
        except ShapeError as err:
            raise ShapeError(f"expr: {err} (in {self.snippet(node)!r})") from None
        return self.check_result(result, name, node)

    def comparison(self, node: ast.Compare) -> np.ndarray:
        """The condition `a > b` of where(c, a, b), as an array of SymPy relations."""
        symbol, function = _COMPARISONS[type(node.ops[0])]
        left, right = self.evaluate(node.left), self.evaluate(node.comparators[0])
        try:
            shape = np.broadcast_shapes(left.shape, right.shape)
        except ValueError:
            raise ShapeError(
                f"expr: '{symbol}': shapes do not broadcast: left {left.shape}, right "
                f"{right.shape} (in {self.snippet(node)!r})") from None
        self.spend(math.prod(shape), math.prod(shape), f"'{symbol}'", node)
        with self.guard(f"'{symbol}'", node):
            return function(left, right)

    def index(self, value: np.ndarray, node: ast.Subscript) -> np.ndarray:
        indices = self.indices(node)
        where = f"(in {self.snippet(node)!r})"
        if value.ndim == 0:
            raise ShapeError(f"expr: cannot index a scalar (shape ()) {where}")
        if any(isinstance(position, slice) for position in indices):
            try:
                shape = ops._result_shape("index", value.shape, key=indices)
            except ShapeError as err:
                raise ShapeError(f"expr: {err} {where}") from None
            self.spend(math.prod(shape), math.prod(shape), "indexing", node)
            return self.check_result(ops.index(value, indices), "indexing", node)
        if len(indices) > value.ndim:
            raise ShapeError(
                f"expr: too many indices: {len(indices)} for shape {value.shape} {where}")
        for axis, position in enumerate(indices):
            length = value.shape[axis]
            if not -length <= position < length:
                raise ShapeError(
                    f"expr: index {position} is out of bounds for axis {axis} with size "
                    f"{length} (shape {value.shape}) {where}")
        picked = value[indices]
        if isinstance(picked, np.ndarray):
            return picked.copy()
        return _scalar(picked)


# --------------------------------------------------------------------------- entry point


#: ASCII's control characters (category Cc) other than tab and line breaks.
_ASCII_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _check_characters(text: str) -> None:
    """Refuse control and format characters (tabs and line breaks aside).

    Python's parser accepts them in comments, and the text is shown in reports, on the terminal
    and in LaTeX: an escape sequence (`\x1b[2J`) or a bidi override (U+202E) there would rewrite
    what the reader sees.
    """
    if text.isascii() and not _ASCII_CONTROL.search(text):
        return  # the only control characters in ASCII are C0 and DEL; no format or surrogate ones
    for position, char in enumerate(text):
        if char not in "\t\n\r" and unicodedata.category(char) in ("Cc", "Cf", "Cs"):
            raise InvalidExpressionError(
                f"expr: control character U+{ord(char):04X} at position {position} is not allowed")


def _code_points(text: str) -> str:
    """`U+XXXX NAME` for each non-ASCII character of `text`, for messages."""
    return ", ".join(f"U+{ord(c):04X} {unicodedata.name(c, '?')}" for c in dict.fromkeys(text) if ord(c) > 127)


def _check_identifiers(text: str, names: Mapping[str, Any]) -> None:
    """Refuse identifiers that are not plain ASCII, before Python's parser normalises them.

    Python reads identifiers in NFKC normal form: `ｘ` (fullwidth), `ſ` (long s) and mathematical
    bold x are all read as ASCII letters, so the text shown would not be the text evaluated. The
    raw identifiers come from the tokenizer, which does not normalise.
    """
    if text.isascii():
        return  # every identifier is ASCII
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return  # not valid Python: the parser reports it
    for token in tokens:
        name = token.string
        if token.type != tokenize.NAME or name.isascii():
            continue
        normal = unicodedata.normalize("NFKC", name)
        if normal != name:
            raise InvalidExpressionError(
                f"expr: identifier {name!r} ({_code_points(name)}) is not in Unicode normal form "
                f"NFKC: Python would read it as {normal!r}, so the text shown is not the text "
                "evaluated; write names in ASCII")
        declared = ", ".join(names) or "(none)"
        raise InvalidExpressionError(
            f"expr: unknown name {name!r} ({_code_points(name)}); declared names: {declared}; "
            "names are ASCII letters, digits and '_' (a non-ASCII look-alike is not the same name)")


def _parse_tree(text: str, limits: Limits) -> ast.Expression:
    too_deep = InvalidExpressionError(
        "expr: nesting too deep (or expression too large) for Python's parser; limits: "
        f"depth {limits.max_depth} (Limits.max_depth), {limits.max_nodes} syntax nodes "
        "(Limits.max_nodes)"
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(text, mode="eval")
    except (RecursionError, MemoryError):
        raise too_deep from None
    except SyntaxError as err:
        message = err.msg or ""
    except ValueError as err:  # null bytes or huge int literals, on some Python versions
        message = str(err)
        if "Exceeds the limit" not in message:
            raise InvalidExpressionError(f"expr: cannot be parsed: {message}") from None
    if "too many nested parentheses" in message:
        raise too_deep
    if "Exceeds the limit" in message:
        raise InvalidExpressionError(
            f"expr: integer literal too large: more than {limits.max_int_digits} digits "
            "(Limits.max_int_digits)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = ast.parse(text, mode="exec")
    except (RecursionError, MemoryError):
        raise too_deep from None
    except (SyntaxError, ValueError):
        module = None
    if module is not None and (len(module.body) != 1 or not isinstance(module.body[0], ast.Expr)):
        raise InvalidExpressionError(
            f"expr: one expression only; received {len(module.body)} statement(s) "
            "(statements such as import, assignment, or several lines separated by ';' or "
            "newlines are not part of the language)")
    raise InvalidExpressionError(f"expr: syntax error: {message}")


def parse_expression(
    text: Any, names: Mapping[str, Any], *, limits: Limits = DEFAULT_LIMITS
) -> np.ndarray:
    """Parse expression text into a symbolic array, without executing anything.

    The text is one Python-syntax expression over the declared `names`, the constants
    `pi` and `e`, int and float literals, unary `+ -`, binary `+ - * / ** @`, calls of
    the functions in `FUNCTIONS` by bare name with positional arguments, `.T`, and
    indexing with integer literals. See `docs/expression-language.md`.

    Args:
        text: the expression.
        names: declared name -> value (a symbolic array, a SymPy expression or a real
            number): the inputs and the constants. Names must pass `validate_name`.
        limits: the budgets; see `Limits`.

    Returns:
        A new object `ndarray` of SymPy expressions (0-d for a scalar result).

    Raises:
        InvalidExpressionError: text outside the language, or an undefined or
            non-real result (`x/0`, `sqrt(-1)`).
        ShapeError: shapes that do not fit (the message names both).
        TooLargeError: work over a budget of `limits`.
        DomainError: `inv`/`solve` of a matrix whose determinant is exactly 0.
        InvalidArgumentError: a bad `names` or `limits` argument.

    Example:
        >>> import sympy as sp
        >>> x = sp.Symbol("x", real=True)
        >>> parse_expression("2 * sin(x) ** 2", {"x": x})[()]
        2*sin(x)**2
    """
    if not isinstance(limits, Limits):
        raise InvalidArgumentError(
            f"limits: must be a symjac Limits instance; received {type(limits).__name__}")
    if not isinstance(names, Mapping):
        raise InvalidArgumentError(
            "names: must be a mapping from name to symbolic array; received "
            f"{type(names).__name__}")
    for name in names:
        validate_name(name, argument="names", kind="declared")
    if not isinstance(text, str):
        raise InvalidExpressionError(
            f"expr must be a non-empty string; received {type(text).__name__}")
    if not text.strip():
        raise InvalidExpressionError(
            "expr must be a non-empty string; received an empty or blank string")
    if len(text) > limits.max_length:
        raise InvalidExpressionError(
            f"expr: expression too large: {len(text)} characters; the limit is "
            f"{limits.max_length} (Limits.max_length)")

    tree, evaluator = _validated(text, names, limits)
    try:
        result = evaluator.evaluate(tree)
        evaluator.check_result(result, "the expression", tree.body)
    except RecursionError:
        raise InvalidExpressionError(
            f"expr: nesting too deep to evaluate (limit {limits.max_depth}, "
            "Limits.max_depth)") from None
    return result.copy()


def validated_tree(text: str, names: Mapping[str, Any], *, limits: Limits = DEFAULT_LIMITS) -> ast.Expression:
    """The `ast` tree of `text` after the same checks `parse_expression` makes before evaluating
    (characters, syntax, identifiers, size, the allow-list), for readers of the text other than
    SymPy (`symjac.backends._torch_tensor`): one parser, one set of rules."""
    return _validated(text, names, limits)[0]


def _validated(text: str, names: Mapping[str, Any], limits: Limits) -> tuple[ast.Expression, "_Evaluator"]:
    """The checks before evaluation: characters, syntax, identifiers, size, the allow-list."""
    _check_characters(text)
    tree = _parse_tree(text, limits)
    _check_identifiers(text, names)
    evaluator = _Evaluator(text, names, limits)
    evaluator.count(tree.body)
    evaluator.validate(tree)
    return tree, evaluator
