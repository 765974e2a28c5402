"""The vocabulary of the expression language, as functions on symbolic arrays.

A *symbolic array* is a NumPy `ndarray` with `dtype=object` whose entries are SymPy
expressions; a scalar is a 0-d array. Every function here accepts symbolic arrays,
SymPy expressions and real Python/NumPy numbers (converted with `as_symbolic`) and
returns a new symbolic array. Shapes follow NumPy; a shape that does not fit raises
`symjac.ShapeError` naming the function and the shapes it received.

These are the functions that expression text may call (`"tanh(X @ X)"`), and they are
usable directly from a Python callable:

```python
import numpy as np, sympy as sp
from symjac import ops
X = np.array([[sp.Symbol(f"X[{i}, {j}]", real=True) for j in range(2)] for i in range(2)],
             dtype=object)
Y = ops.tanh(ops.matmul(X, X))   # also: ops.tanh(X @ X)
```

Elementwise `+ - * / **` need no wrapper: they are NumPy's object-array broadcasting.
"""

from __future__ import annotations

import builtins as _builtins
import math as _math
import numbers as _numbers
from fractions import Fraction as _Fraction
from typing import Any, Callable

import numpy as np
import sympy as sp

from symjac import _stable
from symjac._errors import DomainError, InvalidArgumentError, ShapeError

__all__ = [
    "as_symbolic",
    "exp",
    "log",
    "sin",
    "cos",
    "tan",
    "tanh",
    "sqrt",
    "abs",
    "relu",
    "sigmoid",
    "sum",
    "mean",
    "transpose",
    "mm",
    "matmul",
    "dot",
    "outer",
    "kron",
    "trace",
    "det",
    "inv",
    "solve",
    "softmax",
    "logsumexp",
    "norm",
    # stable primitives (symjac._stable)
    "log_softmax",
    "softplus",
    "logsigmoid",
    "log1p",
    "expm1",
    "logaddexp",
]

Shape = tuple[int, ...]


# --------------------------------------------------------------------------- conversion


def _float_to_rational(value: float, argument: str) -> sp.Rational:
    """The exact rational of the shortest decimal that round-trips `value` (0.1 -> 1/10)."""
    if not _math.isfinite(value):
        raise InvalidArgumentError(
            f"{argument}: numbers must be finite; received {value!r}"
        )
    fraction = _Fraction(repr(float(value)))
    return sp.Rational(fraction.numerator, fraction.denominator)


def _as_expr(value: Any, argument: str) -> sp.Expr:
    if isinstance(value, sp.Expr):
        return value
    if isinstance(value, (bool, np.bool_)):
        raise InvalidArgumentError(
            f"{argument}: booleans are not numbers here; received {value!r}"
        )
    if isinstance(value, (int, np.integer)):
        return sp.Integer(int(value))
    if isinstance(value, (float, np.floating)):
        return _float_to_rational(float(value), argument)
    if isinstance(value, sp.Basic):
        raise InvalidArgumentError(
            f"{argument}: expected a SymPy expression (sympy.Expr); received "
            f"{type(value).__name__}"
        )
    if isinstance(value, _numbers.Number):  # complex, Decimal, ...
        raise InvalidArgumentError(
            f"{argument}: expected a real int or float; received {type(value).__name__} "
            f"{value!r}"
        )
    raise InvalidArgumentError(
        f"{argument}: expected a SymPy expression or a real number; received "
        f"{type(value).__name__}"
    )


def _scalar(expr: sp.Expr) -> np.ndarray:
    out = np.empty((), dtype=object)
    out[()] = expr
    return out


def as_symbolic(value: Any, *, argument: str = "value") -> np.ndarray:
    """Convert `value` to a symbolic array (an object `ndarray` of SymPy expressions).

    Accepted: an object `ndarray` of SymPy expressions (returned as is), a numeric
    `ndarray`, a `sympy.Matrix`, a SymPy expression, a Python/NumPy `int` or `float`,
    or nested lists of these. Integers become `sympy.Integer`; floats become the exact
    rational of their shortest decimal (`0.1` -> `1/10`), so that arithmetic stays
    exact. Strings are never parsed.

    Args:
        value: what to convert.
        argument: the name used in error messages.

    Returns:
        An object `ndarray` (0-d for a scalar).

    Raises:
        InvalidArgumentError: booleans, complex numbers, NaN/inf, strings or other
            objects.

    Example:
        >>> as_symbolic(0.5).shape, as_symbolic(0.5)[()]
        ((), 1/2)
    """
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            if _builtins.all(isinstance(v, sp.Expr) for v in value.flat):
                return value
            out = np.empty(value.shape, dtype=object)
            for index, v in np.ndenumerate(value):
                out[index] = _as_expr(v, f"{argument}{list(index)}")
            return out
        if value.dtype.kind in "iuf":
            out = np.empty(value.shape, dtype=object)
            for index, v in np.ndenumerate(value):
                out[index] = _as_expr(v.item(), f"{argument}{list(index)}")
            return out
        raise InvalidArgumentError(
            f"{argument}: expected an array of real numbers or SymPy expressions; "
            f"received an array of dtype {value.dtype}"
        )
    if isinstance(value, sp.MatrixBase):
        return as_symbolic(np.array(value.tolist(), dtype=object).reshape(value.shape),
                           argument=argument)
    if isinstance(value, (list, tuple)):
        try:
            array = np.array(value, dtype=object)
        except ValueError as err:
            raise InvalidArgumentError(
                f"{argument}: nested lists must be rectangular; {err}"
            ) from None
        return as_symbolic(array, argument=argument)
    return _scalar(_as_expr(value, argument))


def _map(function: Callable[[sp.Expr], sp.Expr], x: Any) -> np.ndarray:
    a = as_symbolic(x, argument="x")
    out = np.empty(a.shape, dtype=object)
    for index, v in np.ndenumerate(a):
        out[index] = function(v)
    return out


# --------------------------------------------------------------------------- shape rules
# One rule per function: validates the input shapes and returns the output shape. The
# parser uses the same rules to size work before any symbolic work starts.


def _need_ndim(name: str, shape: Shape, ndims: tuple[int, ...], what: str) -> None:
    if len(shape) not in ndims:
        raise ShapeError(f"{name}: needs {what}, received shape {shape}")


def _same(shape: Shape) -> Shape:
    return shape


def _scalar_shape(shape: Shape) -> Shape:
    return ()


def _mean_shape(shape: Shape) -> Shape:
    if _math.prod(shape) == 0:
        raise ShapeError(f"mean: needs at least one entry, received shape {shape}")
    return ()


def _logsumexp_shape(shape: Shape) -> Shape:
    if _math.prod(shape) == 0:
        raise ShapeError(f"logsumexp: needs at least one entry, received shape {shape}")
    return ()


def _transpose_shape(shape: Shape) -> Shape:
    _need_ndim("transpose", shape, (0, 1, 2), "a 1-D or 2-D array")
    return shape[::-1]


def _square(name: str, shape: Shape) -> int:
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ShapeError(f"{name}: needs a square matrix, received shape {shape}")
    return shape[0]


def _trace_shape(shape: Shape) -> Shape:
    _square("trace", shape)
    return ()


def _det_shape(shape: Shape) -> Shape:
    _square("det", shape)
    return ()


def _inv_shape(shape: Shape) -> Shape:
    _square("inv", shape)
    return shape


def _softmax_shape(shape: Shape) -> Shape:
    if len(shape) == 0:
        raise ShapeError(
            "softmax: needs an array with at least 1 dimension (it works along the last "
            "axis), received shape ()"
        )
    return shape


def _mm_shape(left: Shape, right: Shape) -> Shape:
    if len(left) != 2 or len(right) != 2:
        raise ShapeError(
            f"mm: needs two 2-D arrays, received shapes left {left}, right {right}"
        )
    if left[1] != right[0]:
        raise ShapeError(f"mm: inner dimensions differ: left {left}, right {right}")
    return (left[0], right[1])


def _matmul_shape(left: Shape, right: Shape) -> Shape:
    if len(left) not in (1, 2) or len(right) not in (1, 2):
        raise ShapeError(
            "matmul: needs 1-D or 2-D arrays (use * for scalars), received shapes "
            f"left {left}, right {right}"
        )
    inner_right = right[0]
    if left[-1] != inner_right:
        raise ShapeError(f"matmul: inner dimensions differ: left {left}, right {right}")
    return left[:-1] + right[1:]


def _dot_shape(left: Shape, right: Shape) -> Shape:
    if len(left) != 1 or len(right) != 1:
        raise ShapeError(
            f"dot: needs two 1-D arrays, received shapes left {left}, right {right}"
        )
    if left != right:
        raise ShapeError(f"dot: lengths differ: left {left}, right {right}")
    return ()


def _outer_shape(left: Shape, right: Shape) -> Shape:
    if len(left) != 1 or len(right) != 1:
        raise ShapeError(
            f"outer: needs two 1-D arrays, received shapes left {left}, right {right}"
        )
    return (left[0], right[0])


def _kron_shape(left: Shape, right: Shape) -> Shape:
    if len(left) != 2 or len(right) != 2:
        raise ShapeError(
            f"kron: needs two 2-D arrays, received shapes left {left}, right {right}"
        )
    return (left[0] * right[0], left[1] * right[1])


def _solve_shape(left: Shape, right: Shape) -> Shape:
    n = _square("solve", left)
    if len(right) not in (1, 2) or right[0] != n:
        raise ShapeError(
            f"solve: the right-hand side needs {n} rows (shape ({n},) or ({n}, k)), "
            f"received shapes left {left}, right {right}"
        )
    return right


_SHAPE_RULES: dict[str, Callable[..., Shape]] = {
    **{name: _same for name in ("exp", "log", "sin", "cos", "tan", "tanh", "sqrt",
                                "abs", "relu", "sigmoid")},
    "sum": _scalar_shape,
    "mean": _mean_shape,
    "transpose": _transpose_shape,
    "mm": _mm_shape,
    "matmul": _matmul_shape,
    "dot": _dot_shape,
    "outer": _outer_shape,
    "kron": _kron_shape,
    "trace": _trace_shape,
    "det": _det_shape,
    "inv": _inv_shape,
    "solve": _solve_shape,
    "softmax": _softmax_shape,
    "logsumexp": _logsumexp_shape,
    "norm": _scalar_shape,
    # stable primitives (symjac._stable)
    **{name: _same for name in ("softplus", "logsigmoid", "log1p", "expm1")},
    "log_softmax": lambda shape: _log_softmax_shape(shape),
    "logaddexp": lambda left, right: _broadcast_shape("logaddexp", left, right),
}


def _result_shape(name: str, *shapes: Shape) -> Shape:
    """Validate the argument shapes of function `name`; return its output shape."""
    return _SHAPE_RULES[name](*shapes)


# --------------------------------------------------------------------------- elementwise


def exp(x: Any) -> np.ndarray:
    """Elementwise `exp`.

    Example:
        >>> exp(0)[()]
        1
    """
    return _map(sp.exp, x)


def log(x: Any) -> np.ndarray:
    """Elementwise natural logarithm.

    Example:
        >>> log(1)[()]
        0
    """
    return _map(sp.log, x)


def sin(x: Any) -> np.ndarray:
    """Elementwise sine.

    Example:
        >>> sin(0)[()]
        0
    """
    return _map(sp.sin, x)


def cos(x: Any) -> np.ndarray:
    """Elementwise cosine.

    Example:
        >>> cos(0)[()]
        1
    """
    return _map(sp.cos, x)


def tan(x: Any) -> np.ndarray:
    """Elementwise tangent.

    Example:
        >>> tan(0)[()]
        0
    """
    return _map(sp.tan, x)


def tanh(x: Any) -> np.ndarray:
    """Elementwise hyperbolic tangent.

    Example:
        >>> tanh(0)[()]
        0
    """
    return _map(sp.tanh, x)


def sqrt(x: Any) -> np.ndarray:
    """Elementwise square root (`x**(1/2)`).

    Example:
        >>> sqrt(4)[()]
        2
    """
    return _map(sp.sqrt, x)


def abs(x: Any) -> np.ndarray:  # noqa: A001 - the language's name for it
    """Elementwise absolute value (`sympy.Abs`).

    Example:
        >>> abs(-3)[()]
        3
    """
    return _map(sp.Abs, x)


def relu(x: Any) -> np.ndarray:
    """Elementwise `max(0, x)` (`sympy.Max(0, x)`).

    A constant whose sign SymPy cannot decide gives an unevaluated `Max(0, c)`.

    Example:
        >>> relu(-2)[()]
        0
    """
    return _map(_relu, x)


def _relu(v: sp.Expr) -> sp.Expr:
    try:
        return sp.Max(sp.Integer(0), v)
    except ValueError:
        # A constant whose sign SymPy cannot decide (sin(1)**2 + cos(1)**2 - 1 is 0, but
        # SymPy can only tell that it is "not comparable"): keep max(0, v) unevaluated.
        return sp.Max(sp.Integer(0), v, evaluate=False)


def sigmoid(x: Any) -> np.ndarray:
    """Elementwise logistic function `1 / (1 + exp(-x))`.

    Example:
        >>> sigmoid(0)[()]
        1/2
    """
    return _map(lambda v: 1 / (1 + sp.exp(-v)), x)


# --------------------------------------------------------------------------- reductions


def sum(x: Any) -> np.ndarray:  # noqa: A001 - the language's name for it
    """Sum of all entries, as a scalar (0-d array). Any shape; an empty array sums to 0.

    Example:
        >>> sum([1, 2, 3])[()]
        6
    """
    a = as_symbolic(x, argument="x")
    return _scalar(sp.Add(*a.flat))


def mean(x: Any) -> np.ndarray:
    """Mean of all entries, as a scalar. Needs at least one entry.

    Example:
        >>> mean([1, 2])[()]
        3/2
    """
    a = as_symbolic(x, argument="x")
    _result_shape("mean", a.shape)
    return _scalar(sp.Add(*a.flat) / sp.Integer(a.size))


def logsumexp(x: Any) -> np.ndarray:
    """`log(sum(exp(x)))` over all entries, as a scalar. Needs at least one entry.

    Example:
        >>> logsumexp([0])[()]
        0
    """
    a = as_symbolic(x, argument="x")
    _result_shape("logsumexp", a.shape)
    return _scalar(_stable.logsumexp(*a.flat))


def norm(x: Any) -> np.ndarray:
    """Frobenius norm (2-norm of all entries): `sqrt(sum(x**2))`, as a scalar.

    Example:
        >>> norm([3, 4])[()]
        5
    """
    a = as_symbolic(x, argument="x")
    return _scalar(sp.sqrt(sp.Add(*(v**2 for v in a.flat))))


def softmax(x: Any) -> np.ndarray:
    """Softmax along the last axis: `exp(x) / sum(exp(x))` per row. Needs ndim >= 1.

    Example:
        >>> [str(v) for v in softmax([0, 0])]
        ['1/2', '1/2']
    """
    a = as_symbolic(x, argument="x")
    _result_shape("softmax", a.shape)
    out = np.empty(a.shape, dtype=object)
    for index in np.ndindex(a.shape[:-1]):
        row = list(a[index])
        total = _stable.logsumexp(*row)
        for k, v in enumerate(row):
            # exp(x_k - logsumexp(x)): finite wherever softmax is; log(softmax) simplifies to
            # x_k - logsumexp(x)
            out[index + (k,)] = sp.exp(v - total)
    return out


# --------------------------------------------------------------------------- linear algebra


def transpose(x: Any) -> np.ndarray:
    """Transpose of a 2-D array; a 1-D array (or a scalar) is returned unchanged.

    Example:
        >>> transpose([[1, 2]]).shape
        (2, 1)
    """
    a = as_symbolic(x, argument="x")
    _result_shape("transpose", a.shape)
    return a.T.copy()


def _mm2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # Written out rather than `np.matmul`: NumPy's object matmul builds each entry by
    # repeated `+`, which re-flattens a growing sympy.Add (quadratic; 5x slower at
    # n=40). One `sympy.Add(*terms)` per entry gives the same expression.
    m, k = a.shape
    n = b.shape[1]
    out = np.empty((m, n), dtype=object)
    for i in range(m):
        for j in range(n):
            out[i, j] = sp.Add(*(a[i, p] * b[p, j] for p in range(k)))
    return out


def mm(a: Any, b: Any) -> np.ndarray:
    """Matrix product of two 2-D arrays: `(m, k) x (k, n) -> (m, n)`.

    Example:
        >>> mm([[1, 2]], [[3], [4]])[0, 0]
        11
    """
    left, right = as_symbolic(a, argument="a"), as_symbolic(b, argument="b")
    _result_shape("mm", left.shape, right.shape)
    return _mm2(left, right)


def matmul(a: Any, b: Any) -> np.ndarray:
    """Matrix product with NumPy `@` semantics for 1-D and 2-D arrays.

    `(m, k) @ (k, n) -> (m, n)`, `(m, k) @ (k,) -> (m,)`, `(k,) @ (k, n) -> (n,)`,
    `(k,) @ (k,) -> ()`. The expression language's `@` operator calls this.

    Example:
        >>> matmul([1, 2], [3, 4])[()]
        11
    """
    left, right = as_symbolic(a, argument="a"), as_symbolic(b, argument="b")
    shape = _result_shape("matmul", left.shape, right.shape)
    left2 = left.reshape(1, -1) if left.ndim == 1 else left
    right2 = right.reshape(-1, 1) if right.ndim == 1 else right
    return _mm2(left2, right2).reshape(shape)


def dot(a: Any, b: Any) -> np.ndarray:
    """Inner product of two 1-D arrays of the same length, as a scalar.

    Example:
        >>> dot([1, 2], [3, 4])[()]
        11
    """
    left, right = as_symbolic(a, argument="a"), as_symbolic(b, argument="b")
    _result_shape("dot", left.shape, right.shape)
    return _scalar(sp.Add(*(u * v for u, v in zip(left, right))))


def outer(a: Any, b: Any) -> np.ndarray:
    """Outer product of two 1-D arrays: `(m,), (n,) -> (m, n)`.

    Example:
        >>> outer([1, 2], [3]).tolist()
        [[3], [6]]
    """
    left, right = as_symbolic(a, argument="a"), as_symbolic(b, argument="b")
    shape = _result_shape("outer", left.shape, right.shape)
    out = np.empty(shape, dtype=object)
    for i, u in enumerate(left):
        for j, v in enumerate(right):
            out[i, j] = u * v
    return out


def kron(a: Any, b: Any) -> np.ndarray:
    """Kronecker product of two 2-D arrays: `(m, n), (p, q) -> (m*p, n*q)`.

    Example:
        >>> kron([[1, 2]], [[1], [10]]).tolist()
        [[1, 2], [10, 20]]
    """
    left, right = as_symbolic(a, argument="a"), as_symbolic(b, argument="b")
    shape = _result_shape("kron", left.shape, right.shape)
    p, q = right.shape
    out = np.empty(shape, dtype=object)
    for (i, j), u in np.ndenumerate(left):
        for (k, m), v in np.ndenumerate(right):
            out[i * p + k, j * q + m] = u * v
    return out


def trace(x: Any) -> np.ndarray:
    """Sum of the diagonal of a square 2-D array, as a scalar.

    Example:
        >>> trace([[1, 2], [3, 4]])[()]
        5
    """
    a = as_symbolic(x, argument="x")
    n = _square("trace", a.shape)
    return _scalar(sp.Add(*(a[i, i] for i in range(n))))


def _matrix(a: np.ndarray) -> sp.Matrix:
    return sp.Matrix(a.shape[0], a.shape[1], list(a.flat))


def det(x: Any) -> np.ndarray:
    """Determinant of a square 2-D array (Berkowitz, division-free), as a scalar.

    Example:
        >>> det([[1, 2], [3, 4]])[()]
        -2
    """
    a = as_symbolic(x, argument="x")
    _result_shape("det", a.shape)
    return _scalar(_matrix(a).det(method="berkowitz"))


def _adjugate_and_det(name: str, a: np.ndarray) -> tuple[np.ndarray, sp.Expr]:
    matrix = _matrix(a)
    d = matrix.det(method="berkowitz")
    if d == 0:
        raise DomainError(
            f"{name}: the matrix is singular (its determinant is exactly 0), "
            f"received shape {a.shape}"
        )
    adjugate = matrix.adjugate(method="berkowitz")
    return np.array(adjugate.tolist(), dtype=object).reshape(a.shape), d


def inv(x: Any) -> np.ndarray:
    """Inverse of a square 2-D array, as `adjugate(x) / det(x)` entry by entry.

    No cancellation or simplification is attempted. A matrix whose determinant is
    exactly 0 (e.g. a constant singular one) raises `symjac.DomainError`.

    Example:
        >>> inv([[2, 0], [0, 4]]).tolist()
        [[1/2, 0], [0, 1/4]]
    """
    a = as_symbolic(x, argument="x")
    _result_shape("inv", a.shape)
    if a.size == 0:
        return a.copy()
    adjugate, d = _adjugate_and_det("inv", a)
    out = np.empty(a.shape, dtype=object)
    for index, v in np.ndenumerate(adjugate):
        out[index] = v / d
    return out


def solve(a: Any, b: Any) -> np.ndarray:
    """Solution `inv(a) @ b` of `a @ y = b`, for square `a` and `b` of shape `(n,)` or `(n, k)`.

    Computed as `(adjugate(a) @ b) / det(a)`, which equals `inv(a) @ b` with one
    division per entry. A determinant that is exactly 0 raises `symjac.DomainError`.

    Example:
        >>> solve([[2, 0], [0, 4]], [2, 4]).tolist()
        [1, 1]
    """
    left, right = as_symbolic(a, argument="a"), as_symbolic(b, argument="b")
    shape = _result_shape("solve", left.shape, right.shape)
    if left.size == 0:
        return right.copy()
    adjugate, d = _adjugate_and_det("solve", left)
    right2 = right.reshape(-1, 1) if right.ndim == 1 else right
    product = _mm2(adjugate, right2).reshape(shape)
    out = np.empty(shape, dtype=object)
    for index, v in np.ndenumerate(product):
        out[index] = v / d
    return out


# --------------------------------------------------------------------------- stable primitives
# Finite wherever the function is (symjac._stable): one SymPy function each, exact derivative,
# stable generated NumPy and torch code.


def _log_softmax_shape(shape: Shape) -> Shape:
    if len(shape) == 0:
        raise ShapeError(
            "log_softmax: needs an array with at least 1 dimension (it works along the last "
            "axis), received shape ()"
        )
    return shape


def _broadcast_shape(name: str, left: Shape, right: Shape) -> Shape:
    try:
        return tuple(np.broadcast_shapes(left, right))
    except ValueError:
        raise ShapeError(f"{name}: shapes do not broadcast: left {left}, right {right}") from None


def log_softmax(x: Any) -> np.ndarray:
    """`x - logsumexp(x)` along the last axis (`log(softmax(x))`, stable). Needs ndim >= 1.

    Example:
        >>> str(log_softmax([0, 0])[0])
        '-log(2)'
    """
    a = as_symbolic(x, argument="x")
    _result_shape("log_softmax", a.shape)
    out = np.empty(a.shape, dtype=object)
    for index in np.ndindex(a.shape[:-1]):
        row = list(a[index])
        total = _stable.logsumexp(*row)
        for k, v in enumerate(row):
            out[index + (k,)] = v - total
    return out


def softplus(x: Any) -> np.ndarray:
    """Elementwise `log(1 + exp(x))`, stable (`symjac._stable.softplus`; torch's `softplus` with
    its default `beta=1`, exactly: no threshold).

    Example:
        >>> str(softplus(0)[()])
        'log(2)'
    """
    return _map(_stable.softplus, x)


def logsigmoid(x: Any) -> np.ndarray:
    """Elementwise `log(sigmoid(x))` = `-softplus(-x)`, stable.

    Example:
        >>> str(logsigmoid(0)[()])
        '-log(2)'
    """
    return _map(lambda v: -_stable.softplus(-v), x)


def log1p(x: Any) -> np.ndarray:
    """Elementwise `log(1 + x)`, accurate near 0 (`sympy.codegen.cfunctions.log1p`).

    Example:
        >>> log1p(0)[()]
        0
    """
    return _map(_stable.log1p, x)


def expm1(x: Any) -> np.ndarray:
    """Elementwise `exp(x) - 1`, accurate near 0 (`sympy.codegen.cfunctions.expm1`).

    Example:
        >>> expm1(0)[()]
        0
    """
    return _map(_stable.expm1, x)


def logaddexp(a: Any, b: Any) -> np.ndarray:
    """Elementwise `log(exp(a) + exp(b))`, stable, with NumPy broadcasting.

    Example:
        >>> str(logaddexp(0, 0)[()])
        'log(2)'
    """
    left = as_symbolic(a, argument="a")
    right = as_symbolic(b, argument="b")
    shape = _result_shape("logaddexp", left.shape, right.shape)
    lb, rb = np.broadcast_to(left, shape), np.broadcast_to(right, shape)
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(shape):
        out[index] = _stable.logsumexp(lb[index], rb[index])
    return out
