r"""Closed matrix-calculus forms, printed only after they were checked against the exact Jacobian.

The expression language builds element-wise arrays; matrix calculus needs the matrix expression.
So the expression text of a Function is translated a second time, here, into SymPy `MatrixSymbol`
expressions (`X @ X` -> `X X`, `log(det(X))` -> `log |X|`), for the part of the language that has
a matrix form: `@`/`mm`/`matmul`/`dot`, `+`, `-`, multiplication and division by numbers,
`.T`/`transpose`, `inv`, `det`, `trace`, `sum`, `mean` and `log` of a scalar. Anything else
(`sin(X)`, `X * Y`, ...) has no closed form here, and asking for one says so.

The derivative is taken with our own rules, not SymPy's matrix calculus (SymPy 1.14 returns 0
for `log(det(X)).diff(X)` and leaves `det(X).diff(X)` unevaluated): the differential of a product
is a sum of terms `L dX R` (or `L dX^T R`), from which

- a scalar output has the gradient `sum L^T R^T` (`sum R L` for `dX^T`), shaped like `X`;
- a matrix output has `d vec F = sum (R^T \otimes L) d vec X` (times the commutation matrix
  `K` for `dX^T`), with `vec` stacking columns, so that torch's `J[i, j, k, l]` is entry
  `[i + j p, k + l m]` of that matrix (`p` rows of `F`, `m` rows of `X`).

Every closed form is then evaluated numerically, independently of the rules (a small evaluator
of the matrix expression tree), at random points, and compared with the element-wise Jacobian
evaluated there. A closed form that disagrees is refused with `ClosedFormError`, never printed.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy
from sympy.matrices.expressions.kronecker import KroneckerProduct

from ._errors import ClosedFormError

__all__ = [
    "ClosedForm",
    "closed_form",
    "translate",
    "derive",
    "verify",
    "evaluate",
    "CHECK_POINTS",
    "CHECK_RTOL",
]

#: Random points a closed form is checked at.
CHECK_POINTS = 3
#: Largest accepted |closed form - element-wise| / (1 + max |element-wise|) at each point (float64).
CHECK_RTOL = 1e-9


# --------------------------------------------------------------------------- special matrices


def identity(n: int) -> sympy.MatrixSymbol:
    """The n x n identity, as a named MatrixSymbol (prints `I_{n}`; evaluated as `eye(n)`)."""
    return sympy.MatrixSymbol(f"symjac_I_{n}", n, n)


def ones(n: int) -> sympy.MatrixSymbol:
    """The column of n ones (prints `\\mathbf{1}_{n}`)."""
    return sympy.MatrixSymbol(f"symjac_1_{n}", n, 1)


def commutation(m: int, n: int) -> sympy.MatrixSymbol:
    """The commutation matrix `K_{m,n}`: `K vec(A) = vec(A^T)` for `A` of shape (m, n)."""
    return sympy.MatrixSymbol(f"symjac_K_{m}_{n}", m * n, m * n)


def _special_value(symbol: sympy.MatrixSymbol) -> np.ndarray | None:
    name = str(symbol.name)
    if not name.startswith("symjac_"):
        return None
    kind, *sizes = name.split("_")[1:]
    sizes = [int(s) for s in sizes]
    if kind == "I":
        return np.eye(sizes[0])
    if kind == "1":
        return np.ones((sizes[0], 1))
    m, n = sizes
    k = np.zeros((m * n, m * n))
    for i in range(m):
        for j in range(n):
            k[i * n + j, j * m + i] = 1.0  # vec(A)[i + j m] = A[i, j] = vec(A^T)[j + i n]
    return k


# --------------------------------------------------------------------------- translation


class _Unsupported(Exception):
    """The text uses something without a matrix form here (the message says what)."""


@dataclass(frozen=True)
class _Value:
    expr: Any  # a MatrixExpr, or a scalar sympy.Expr
    kind: str  # "matrix", "vector" (an (n, 1) column) or "scalar"


def translate(function) -> tuple[Any, dict[str, sympy.MatrixSymbol]]:
    """The Function's text as a matrix expression, and the MatrixSymbol of each input and constant.

    Vectors become (n, 1) columns; a scalar result is a scalar `Expr` (a 1 x 1 product is taken
    through its trace). Raises `ClosedFormError` for text outside the translatable part.
    """
    if function.source is None:
        if function.matrix_expression is not None:
            return _from_matrix_expression(function, function.matrix_expression)
        raise ClosedFormError(
            "form='matrix': closed forms are derived from expression text or a SymPy matrix expression; "
            "this Function was built from a callable or from scalar SymPy expressions"
        )
    symbols: dict[str, sympy.MatrixSymbol] = {}
    env: dict[str, _Value] = {}
    for inp in function.inputs:
        if len(inp.shape) not in (1, 2):
            raise ClosedFormError(
                f"form='matrix': input {inp.name} has shape {inp.shape}; closed forms here take "
                f"vectors and matrices"
            )
        rows, cols = (inp.shape + (1,))[:2]
        symbols[inp.name] = sympy.MatrixSymbol(inp.name, rows, cols)
        env[inp.name] = _Value(symbols[inp.name], "vector" if len(inp.shape) == 1 else "matrix")
    for name, value in function.consts.items():
        if value.ndim == 0:
            env[name] = _Value(_number(float(value)), "scalar")
        elif value.ndim in (1, 2):
            rows, cols = (value.shape + (1,))[:2]
            symbols[name] = sympy.MatrixSymbol(name, rows, cols)
            env[name] = _Value(symbols[name], "vector" if value.ndim == 1 else "matrix")
    try:
        tree = function.text_tree()  # the Function's one validated tree
        result = _Translator(env).visit(tree.body)
    except _Unsupported as error:
        raise ClosedFormError(
            f"form='matrix': no closed form is known for {function.source!r}: {error}; closed forms "
            f"cover @, +, -, numbers, .T, inv, det, trace, sum, mean, dot and log of a scalar"
        ) from None
    expr = _as_scalar(result) if result.kind == "scalar" else result.expr
    return expr, symbols


def _from_matrix_expression(function, expr) -> tuple[Any, dict[str, sympy.MatrixSymbol]]:
    """A Function built from a SymPy matrix expression already is one: take it as it is.

    Its `MatrixSymbol`s are the inputs and constants (matched by name when the Function was built);
    scalar `Symbol`s may only be scalar constants, which become their exact values.
    """
    symbols: dict[str, sympy.MatrixSymbol] = {}
    for atom in expr.atoms(sympy.MatrixSymbol):
        name = str(atom.name)
        if name in function.input_names or name in function.consts:
            symbols[name] = atom
    scalars = {}
    for atom in expr.atoms(sympy.Symbol):
        name = str(atom.name)
        if name in function.consts and function.consts[name].ndim == 0:
            scalars[atom] = _number(float(function.consts[name]))
        elif name in function.input_names:
            raise ClosedFormError(
                f"form='matrix': input {name} is a scalar Symbol; closed forms here take vectors and "
                f"matrices (MatrixSymbols)"
            )
    for inp in function.inputs:
        if inp.name not in symbols:
            continue
        if len(inp.shape) not in (1, 2):
            raise ClosedFormError(
                f"form='matrix': input {inp.name} has shape {inp.shape}; closed forms here take "
                f"vectors and matrices"
            )
    if scalars:
        expr = expr.xreplace(scalars)
    if isinstance(expr, sympy.MatrixExpr) and expr.shape == (1, 1) and function.out_shape == ():
        expr = sympy.Trace(expr)
    return expr, symbols


def _number(value: float) -> sympy.Expr:
    if float(value).is_integer():
        return sympy.Integer(int(value))
    return sympy.Rational(repr(float(value)))


def _as_scalar(value: _Value) -> sympy.Expr:
    if isinstance(value.expr, sympy.MatrixExpr):
        return sympy.Trace(value.expr)  # a 1 x 1 product, e.g. x^T A x
    return value.expr


class _Translator(ast.NodeVisitor):
    """Walks text that `_parse` already accepted; only the translatable nodes are handled."""

    _CALLS = {"mm", "matmul", "dot", "transpose", "inv", "det", "trace", "sum", "mean", "log"}

    def __init__(self, env: dict[str, _Value]):
        self.env = env

    def generic_visit(self, node):
        raise _Unsupported(f"{type(node).__name__} {ast.unparse(node)!r} has no matrix form here")

    def visit_Name(self, node):
        if node.id in self.env:
            return self.env[node.id]
        if node.id in ("pi", "e"):
            return _Value(sympy.pi if node.id == "pi" else sympy.E, "scalar")
        raise _Unsupported(f"unknown name {node.id!r}")

    def visit_Constant(self, node):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise _Unsupported(f"constant {node.value!r}")
        return _Value(_number(node.value), "scalar")

    def visit_UnaryOp(self, node):
        value = self.visit(node.operand)
        if isinstance(node.op, ast.UAdd):
            return value
        if isinstance(node.op, ast.USub):
            return _Value(-value.expr, value.kind)
        raise _Unsupported(f"operator {ast.unparse(node)!r}")

    def visit_Attribute(self, node):
        if node.attr != "T":
            raise _Unsupported(f"attribute .{node.attr}")
        return self._transpose(self.visit(node.value))

    def visit_BinOp(self, node):
        a, b = self.visit(node.left), self.visit(node.right)
        if isinstance(node.op, ast.MatMult):
            return self._matmul(a, b)
        if isinstance(node.op, (ast.Add, ast.Sub)):
            if a.kind != b.kind or (a.kind != "scalar" and a.expr.shape != b.expr.shape):
                raise _Unsupported(f"{ast.unparse(node)!r} adds a {a.kind} and a {b.kind} (broadcasting)")
            if a.kind == "scalar":
                a, b = _Value(_as_scalar(a), "scalar"), _Value(_as_scalar(b), "scalar")
            return _Value(a.expr + b.expr if isinstance(node.op, ast.Add) else a.expr - b.expr, a.kind)
        if isinstance(node.op, ast.Mult):
            if a.kind == "scalar" and b.kind == "scalar":
                return _Value(_as_scalar(a) * _as_scalar(b), "scalar")
            scalar, other = (a, b) if a.kind == "scalar" else (b, a)
            if scalar.kind != "scalar" or not _is_number(scalar.expr):
                raise _Unsupported(f"{ast.unparse(node)!r} multiplies element by element")
            return _Value(scalar.expr * other.expr, other.kind)
        if isinstance(node.op, ast.Div):
            if b.kind != "scalar" or not _is_number(b.expr):
                raise _Unsupported(f"{ast.unparse(node)!r} divides by something other than a number")
            if a.kind == "scalar":
                return _Value(_as_scalar(a) / b.expr, "scalar")
            return _Value(a.expr / b.expr, a.kind)
        if isinstance(node.op, ast.Pow) and a.kind == "scalar" and b.kind == "scalar" and _is_number(b.expr):
            return _Value(_as_scalar(a) ** b.expr, "scalar")
        raise _Unsupported(f"operator in {ast.unparse(node)!r}")

    def visit_Call(self, node):
        if not isinstance(node.func, ast.Name) or node.func.id not in self._CALLS or node.keywords:
            raise _Unsupported(f"{ast.unparse(node)!r} has no matrix form here")
        name = node.func.id
        args = [self.visit(a) for a in node.args]
        if name in ("mm", "matmul"):
            return self._matmul(*args)
        if name == "dot":
            a, b = args
            if a.kind != "vector" or b.kind != "vector":
                raise _Unsupported(f"{ast.unparse(node)!r} is not a dot product of two vectors")
            return _Value(sympy.MatMul(a.expr.T, b.expr), "scalar")
        (a,) = args
        if name == "transpose":
            return self._transpose(a)
        if name == "log":
            if a.kind != "scalar":
                raise _Unsupported(f"{ast.unparse(node)!r} is an element-wise log")
            return _Value(sympy.log(_as_scalar(a)), "scalar")
        if name in ("sum", "mean"):
            if a.kind == "scalar":
                return a
            rows, cols = a.expr.shape
            total = sympy.MatMul(ones(rows).T, a.expr) if cols == 1 else sympy.MatMul(ones(rows).T, a.expr, ones(cols))
            if name == "mean":
                return _Value(sympy.Trace(total) / (rows * cols), "scalar")
            return _Value(total, "scalar")
        if a.kind != "matrix" or a.expr.shape[0] != a.expr.shape[1]:
            raise _Unsupported(f"{name} of a {a.kind}")
        if name == "inv":
            return _Value(sympy.Inverse(a.expr), "matrix")
        if name == "det":
            return _Value(sympy.Determinant(a.expr), "scalar")
        return _Value(sympy.Trace(a.expr), "scalar")  # trace

    def _transpose(self, a: _Value) -> _Value:
        if a.kind != "matrix":
            return a  # the language leaves vectors and scalars as they are
        return _Value(sympy.Transpose(a.expr), "matrix")

    def _matmul(self, a: _Value, b: _Value) -> _Value:
        if "scalar" in (a.kind, b.kind):
            raise _Unsupported("@ with a scalar")
        if a.kind == "vector" and b.kind == "vector":
            return _Value(sympy.MatMul(a.expr.T, b.expr), "scalar")
        if a.kind == "vector":  # x @ A is the vector A^T x (vectors are columns here)
            return _Value(sympy.MatMul(_T(b.expr), a.expr), "vector")
        return _Value(sympy.MatMul(a.expr, b.expr), "vector" if b.kind == "vector" else "matrix")


def _is_number(expr: Any) -> bool:
    return isinstance(expr, sympy.Expr) and not isinstance(expr, sympy.MatrixExpr) and expr.is_number


# --------------------------------------------------------------------------- derivative rules


@dataclass(frozen=True)
class _Term:
    """One term `coef * L dX R` (or `L dX^T R` when `transposed`) of a differential.

    L and R are tuples of matrix factors (empty: the identity).
    """

    coef: Any
    left: tuple
    transposed: bool
    right: tuple


def _matrix_differential(expr, x) -> list[_Term]:
    if not expr.has(x):
        return []
    if expr == x:
        return [_Term(sympy.Integer(1), (), False, ())]
    if isinstance(expr, sympy.MatAdd):
        return [t for arg in expr.args for t in _matrix_differential(arg, x)]
    if isinstance(expr, sympy.MatMul):
        coef, factors = expr.as_coeff_matrices()
        if _has(coef, x):
            raise _Unsupported(f"a scalar factor that depends on {x} ({coef})")
        terms = []
        for i, factor in enumerate(factors):
            before, after = tuple(factors[:i]), tuple(factors[i + 1:])
            for t in _matrix_differential(factor, x):
                terms.append(_Term(coef * t.coef, before + t.left, t.transposed, t.right + after))
        return terms
    if isinstance(expr, sympy.Transpose):
        return [
            _Term(t.coef, tuple(f.T for f in reversed(t.right)), not t.transposed, tuple(f.T for f in reversed(t.left)))
            for t in _matrix_differential(expr.arg, x)
        ]
    if isinstance(expr, sympy.Inverse):
        inverse = expr
        return [
            _Term(-t.coef, (inverse,) + t.left, t.transposed, t.right + (inverse,))
            for t in _matrix_differential(expr.arg, x)
        ]
    if isinstance(expr, sympy.MatPow) and expr.exp.is_Integer and expr.exp > 0:
        return _matrix_differential(sympy.MatMul(*([expr.base] * int(expr.exp))), x)
    raise _Unsupported(f"{type(expr).__name__} {expr}")


def _has(expr, x) -> bool:
    return isinstance(expr, sympy.Basic) and expr.has(x)


def _scalar_differential(expr, x) -> list[_Term]:
    """`d expr = sum coef * trace(L dX R)`: each term's trace is implied."""
    if not _has(expr, x):
        return []
    if isinstance(expr, sympy.Trace):
        return _matrix_differential(expr.arg, x)
    if isinstance(expr, sympy.MatrixExpr) and expr.shape == (1, 1):
        return _matrix_differential(expr, x)
    if isinstance(expr, sympy.Determinant):
        inverse = sympy.Inverse(expr.arg)
        return [_Term(expr * t.coef, (inverse,) + t.left, t.transposed, t.right) for t in _matrix_differential(expr.arg, x)]
    if isinstance(expr, sympy.Add):
        return [t for arg in expr.args for t in _scalar_differential(arg, x)]
    if isinstance(expr, sympy.Mul):
        terms = []
        for i, factor in enumerate(expr.args):
            rest = sympy.Mul(*(expr.args[:i] + expr.args[i + 1:]))
            terms += [_Term(rest * t.coef, t.left, t.transposed, t.right) for t in _scalar_differential(factor, x)]
        return terms
    if isinstance(expr, sympy.log):
        (arg,) = expr.args
        return [_Term(t.coef / arg, t.left, t.transposed, t.right) for t in _scalar_differential(arg, x)]
    if isinstance(expr, sympy.Pow) and _is_number(expr.exp):
        base, power = expr.args
        return [_Term(power * base ** (power - 1) * t.coef, t.left, t.transposed, t.right) for t in _scalar_differential(base, x)]
    raise _Unsupported(f"{type(expr).__name__} {expr}")


def _T(factor):
    """Transpose of one factor; the identity is its own transpose (and prints without `^T`)."""
    return factor if _is_identity(factor) else factor.T


def _transposed(factors: tuple) -> tuple:
    return tuple(_T(f) for f in reversed(factors))


def _product(factors: tuple, size: int):
    """The product of `factors`, or the size x size identity when there are none."""
    factors = tuple(f for f in factors if not _is_identity(f)) or ()
    if not factors:
        return identity(size)
    return factors[0] if len(factors) == 1 else sympy.MatMul(*factors)


def _kron(a, b):
    """`a \\otimes b`, leaving out a 1 x 1 identity (as for vectors)."""
    if a.shape == (1, 1) and _is_identity(a):
        return b
    if b.shape == (1, 1) and _is_identity(b):
        return a
    if _is_identity(a) and _is_identity(b):
        return identity(a.shape[0] * b.shape[0])
    return KroneckerProduct(a, b)


def _is_identity(m) -> bool:
    return isinstance(m, sympy.MatrixSymbol) and str(m.name).startswith("symjac_I_")


def derive(expr, x: sympy.MatrixSymbol) -> tuple[Any, str]:
    """The closed-form derivative of `expr` by `x`, and its kind.

    Kinds: `"gradient"` (scalar output: a matrix shaped like `x`), `"jacobian"` (vector output by
    vector input: the plain Jacobian matrix) or `"vec"` (`d vec F / d vec X`, stacking columns).
    Raises `_Unsupported` when a rule is missing.
    """
    m, n = x.shape
    if not isinstance(expr, sympy.MatrixExpr):
        parts = []
        for t in _scalar_differential(expr, x):
            # trace(L dX R) = <L^T R^T, dX>;  trace(L dX^T R) = <R L, dX>
            factors = t.right + t.left if t.transposed else _transposed(t.left) + _transposed(t.right)
            parts.append(t.coef * _product(factors, m))
        return _total(parts, (m, n)), "gradient"
    p, q = expr.shape
    parts = []
    for t in _matrix_differential(expr, x):
        # vec(L dX R) = (R^T kron L) vec(dX);  vec(L dX^T R) = (R^T kron L) K vec(dX)
        inner_rows, inner_cols = (n, m) if t.transposed else (m, n)
        block = _kron(_product(_transposed(t.right), inner_cols), _product(t.left, inner_rows))
        if t.transposed:
            block = commutation(m, n) if _is_identity(block) else sympy.MatMul(block, commutation(m, n))
        parts.append(t.coef * block)
    kind = "jacobian" if q == 1 and n == 1 else "vec"
    return _total(parts, (p * q, m * n)), kind


def _total(parts: list, shape: tuple[int, int]):
    """The sum of the parts, tidied by SymPy (`X X` -> `X^2`, numbers folded into one)."""
    if not parts:
        return sympy.ZeroMatrix(*shape)
    total = (parts[0] if len(parts) == 1 else sympy.MatAdd(*parts)).doit()
    # doit() may fold X^{-1} X into SymPy's Identity; name it like ours (I_{n}, not \mathbb{I})
    return total.replace(lambda e: isinstance(e, sympy.Identity), lambda e: identity(int(e.shape[0])))


# --------------------------------------------------------------------------- numeric evaluation


def evaluate(expr, values: dict) -> np.ndarray | float:
    """Evaluate a matrix (or scalar) expression tree numerically: MatrixSymbols from `values`,
    special matrices by their definition. Independent of the derivative rules."""
    if isinstance(expr, sympy.MatrixSymbol):
        special = _special_value(expr)
        if special is not None:
            return special
        return np.asarray(values[expr], dtype=np.float64).reshape(expr.shape)
    if isinstance(expr, sympy.Identity):
        return np.eye(int(expr.shape[0]))
    if isinstance(expr, sympy.ZeroMatrix):
        return np.zeros(tuple(int(s) for s in expr.shape))
    if isinstance(expr, sympy.OneMatrix):
        return np.ones(tuple(int(s) for s in expr.shape))
    if isinstance(expr, sympy.MatAdd):
        return sum((evaluate(a, values) for a in expr.args[1:]), evaluate(expr.args[0], values))
    if isinstance(expr, sympy.MatMul):
        result: Any = 1.0
        for arg in expr.args:
            v = evaluate(arg, values)
            result = result * v if np.ndim(v) == 0 or np.ndim(result) == 0 else result @ v
        return result
    if isinstance(expr, sympy.Transpose):
        return evaluate(expr.arg, values).T
    if isinstance(expr, sympy.Inverse):
        return np.linalg.inv(evaluate(expr.arg, values))
    if isinstance(expr, sympy.MatPow):
        return np.linalg.matrix_power(evaluate(expr.base, values), int(expr.exp))
    if isinstance(expr, KroneckerProduct):
        result = evaluate(expr.args[0], values)
        for arg in expr.args[1:]:
            result = np.kron(result, evaluate(arg, values))
        return result
    if isinstance(expr, sympy.Determinant):
        return float(np.linalg.det(evaluate(expr.arg, values)))
    if isinstance(expr, sympy.Trace):
        return float(np.trace(evaluate(expr.arg, values)))
    if isinstance(expr, sympy.Add):
        return sum(evaluate(a, values) for a in expr.args)
    if isinstance(expr, sympy.Mul):
        return math.prod(evaluate(a, values) for a in expr.args)
    if isinstance(expr, sympy.Pow):
        return evaluate(expr.base, values) ** evaluate(expr.exp, values)
    if isinstance(expr, sympy.log):
        return math.log(evaluate(expr.args[0], values))
    if isinstance(expr, sympy.Expr) and expr.is_number:
        return float(expr)
    raise ValueError(f"cannot evaluate {type(expr).__name__} {expr} numerically")


# --------------------------------------------------------------------------- the check


@dataclass(frozen=True)
class ClosedForm:
    """A closed-form derivative that passed the check against the element-wise Jacobian."""

    wrt: str
    expr: Any  # the SymPy matrix expression
    kind: str  # "gradient", "jacobian" or "vec"
    max_error: float  # largest relative disagreement seen at the check points
    points: int
    symbols: dict = field(repr=False, default_factory=dict)



def closed_form(function, wrt: str) -> ClosedForm:
    """The verified closed form of `d function / d wrt` (cached on the Function).

    Raises `ClosedFormError` when none is known, or when the one derived fails the check.
    """
    inp = function.input(wrt)
    return function.cached(("closed-form", inp.name), lambda: _closed_form(function, inp.name))


def _closed_form(function, wrt: str) -> ClosedForm:
    expr, symbols = translate(function)
    shown = function.source if function.source is not None else str(function.matrix_expression)
    if wrt not in symbols:  # an input the matrix expression does not use: the derivative is 0
        inp = function.input(wrt)
        symbols[wrt] = sympy.MatrixSymbol(wrt, *(inp.shape + (1,))[:2])
    try:
        derivative, kind = derive(expr, symbols[wrt])
    except _Unsupported as error:
        raise ClosedFormError(
            f"form='matrix': no closed form is known for d({shown}) / d{wrt}: {error}"
        ) from None
    return verify(function, wrt, derivative, kind, symbols)


def _random_point(function, rng: np.random.Generator) -> dict[str, np.ndarray]:
    point = {}
    for inp in function.inputs:
        if len(inp.shape) == 2 and inp.shape[0] == inp.shape[1]:
            # well conditioned with a positive determinant: inv, det and log(det) are defined
            point[inp.name] = 2.0 * np.eye(inp.shape[0]) + 0.3 * rng.standard_normal(inp.shape)
        else:
            point[inp.name] = rng.standard_normal(inp.shape)
    return point


def verify(function, wrt: str, candidate, kind: str, symbols: dict, *, seed: int = 0) -> ClosedForm:
    """Check `candidate` (a closed form of `kind`) against the element-wise Jacobian of `function`
    by `wrt` at `CHECK_POINTS` random points; return it as a `ClosedForm`, or raise
    `ClosedFormError` naming the point and the disagreement.

    `symbols` maps input and constant names to the MatrixSymbols the candidate uses.
    """
    inp = function.input(wrt)
    out_shape = function.out_shape
    p, q = (out_shape + (1, 1))[:2] if len(out_shape) < 2 else out_shape
    m, n = (inp.shape + (1,))[:2]
    rng = np.random.default_rng(seed)
    consts = function.consts
    worst = 0.0
    checked = 0
    for _attempt in range(10 * CHECK_POINTS):
        if checked == CHECK_POINTS:
            break
        point = _random_point(function, rng)
        with np.errstate(all="ignore"):
            exact = function.jacobian(wrt).evaluate(**point)
        values = {}
        for name, symbol in symbols.items():
            values[symbol] = point[name] if name in point else consts[name]
        if any(
            len(i.shape) == 2 and i.shape[0] == i.shape[1] and np.linalg.det(point[i.name]) <= 0.1
            for i in function.inputs
        ) or not np.all(np.isfinite(exact)):
            continue
        try:
            with np.errstate(all="raise"):
                value = np.asarray(evaluate(candidate, values), dtype=np.float64)
        except (FloatingPointError, ValueError, np.linalg.LinAlgError) as error:
            raise ClosedFormError(
                f"form='matrix': the closed form {candidate} of d({function.source}) / d{wrt} cannot be "
                f"evaluated at a random point ({error}); refused"
            ) from None
        expected = _as_closed_layout(exact, kind, (p, q), (m, n))
        if value.shape != expected.shape:
            raise ClosedFormError(
                f"form='matrix': the closed form {candidate} of d({function.source}) / d{wrt} has shape "
                f"{value.shape}, the element-wise Jacobian {expected.shape} in that layout; refused"
            )
        error = float(np.max(np.abs(value - expected), initial=0.0)) / (1.0 + float(np.max(np.abs(expected), initial=0.0)))
        if not error <= CHECK_RTOL:
            index = np.unravel_index(int(np.argmax(np.abs(value - expected))), expected.shape)
            raise ClosedFormError(
                f"form='matrix': the closed form {candidate} of d({function.source}) / d{wrt} disagrees with "
                f"the element-wise Jacobian at a random point (seed {seed}): entry {tuple(map(int, index))} "
                f"is {value[index]!r} in closed form and {expected[index]!r} element-wise (relative error "
                f"{error:.2e} > {CHECK_RTOL:.0e}); refused, not printed"
            )
        worst = max(worst, error)
        checked += 1
    if checked < CHECK_POINTS:
        raise ClosedFormError(
            f"form='matrix': could not find {CHECK_POINTS} random points where d({function.source}) / d{wrt} "
            f"is defined to check the closed form against; refused"
        )
    return ClosedForm(wrt, candidate, kind, worst, checked, dict(symbols))


def _as_closed_layout(exact: np.ndarray, kind: str, out: tuple[int, int], inp: tuple[int, int]) -> np.ndarray:
    """The torch-layout Jacobian rearranged as the closed form states it."""
    (p, q), (m, n) = out, inp
    if kind == "gradient":
        return exact.reshape(m, n)
    if kind == "jacobian":
        return exact.reshape(p, m)
    # J[i, j, k, l] -> M[i + j p, k + l m]
    return exact.reshape(p, q, m, n).transpose(1, 0, 3, 2).reshape(p * q, m * n)
