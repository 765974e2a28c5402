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
import itertools as _itertools
import math as _math
import numbers as _numbers
from fractions import Fraction as _Fraction
from typing import Any, Callable

import numpy as np
import sympy as sp
# SymPy's `Add.flatten` imports `sympy.tensor.tensor` (and with it `sympy.combinatorics`) on the
# first sum of three or more terms: 35-80 ms inside the first Function's build. Imported here, it is
# part of loading symjac's expression modules, once per process, like SymPy's own imports.
import sympy.tensor.tensor  # noqa: F401
from sympy.core.basic import Basic
from sympy.core.mul import _mulsort

from symjac import _determinant, _stable
from symjac._products import product, total
from symjac._errors import DomainError, InvalidArgumentError, ShapeError

_is_zero = _determinant.is_zero

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
    # axis-aware reductions, shapes, piecewise and more elementwise functions (issue 13)
    "erf",
    "asin",
    "acos",
    "atan",
    "atan2",
    "sinh",
    "cosh",
    "maximum",
    "minimum",
    "clamp",
    "where",
    "gt",
    "ge",
    "lt",
    "le",
    "eq",
    "ne",
    "var",
    "prod",
    "max",
    "min",
    "reshape",
    "permute",
    "swapaxes",
    "index",
    "concatenate",
    "stack",
    "diagonal",
    "diag",
    "eye",
    "bmm",
    "gather",
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


def entry_symbols(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """One real SymPy Symbol per entry of an input named `name`: `X[0, 1]` (the input itself when
    it is a scalar). Every front-end names input entries this way."""
    if shape == ():
        return np.array(sp.Symbol(name, real=True), dtype=object)
    cells = [
        sp.Symbol(f"{name}[{', '.join(map(str, index))}]", real=True)
        for index in _itertools.product(*(range(n) for n in shape))
    ]
    return np.array(cells, dtype=object).reshape(shape)


def _map(function: Callable[[sp.Expr], sp.Expr], x: Any, *, build: Callable | None = None) -> np.ndarray:
    a = as_symbolic(x, argument="x")
    out = np.empty(a.shape, dtype=object)
    facts = _FACTS_OF_REAL.get(function)
    build = function if build is None else build
    for index, v in np.ndenumerate(a):
        out[index] = build(v)
        if facts is not None:
            _tell_facts(out[index], function, v, facts)
    return out


# What a function's value is known to be when its argument is real and finite: SymPy works some of
# these out by writing the whole argument out (`tanh(a).is_finite` expands `a.as_real_imag()`, over
# every level below: quadratic in a 1,000-step recurrence, and recursive over its depth). Told to
# the node when it is built, they are answered from SymPy's own cache, one level at a time.
_FACTS_OF_REAL: dict = {
    sp.sin: {"extended_real": True, "finite": True},
    sp.cos: {"extended_real": True, "finite": True},
    sp.tanh: {"extended_real": True, "finite": True},
    sp.atan: {"extended_real": True, "finite": True},
    sp.erf: {"extended_real": True, "finite": True},
    sp.sinh: {"extended_real": True, "finite": True},
    sp.cosh: {"extended_real": True, "finite": True, "extended_positive": True},
    sp.exp: {"extended_real": True, "finite": True, "extended_positive": True},
}


def _tell_facts(node: Any, function: Any, arg: Any, facts: dict) -> None:
    """Record `facts` in the assumptions of `node = function(arg)` (or of `function(...)` in
    `-function(...)`), when `arg` is known real and finite: true facts SymPy would otherwise derive
    the slow way. A node whose facts differ already, or that is not `function`'s node, is left."""
    if isinstance(node, sp.Mul) and len(node.args) == 2 and node.args[0] is sp.S.NegativeOne:
        node = node.args[1]
    if not isinstance(node, function) or len(node.args) != 1:
        return
    arg = node.args[0]
    if not _real_and_finite(arg) and (arg.is_extended_real is not True or arg.is_finite is not True):
        return
    known = node._assumptions
    if any(known.get(k) not in (None, v) for k, v in facts.items()):
        return  # never overwrite a fact (it would be an inconsistency)
    if known is type(node).default_assumptions:
        node._assumptions = known = known.copy()  # as SymPy's own first query does
    known.deduce_all_facts({k: v for k, v in facts.items() if known.get(k) is None})


def _real_and_finite(expr: Any) -> bool:
    """True when `expr` is real and finite by construction: made by `+`, `*` and powers to
    non-negative integers from Rationals, Floats and nodes whose recorded assumptions (read, not
    deduced) say real and finite (real symbols, nodes `_tell_facts` told). SymPy's
    `is_extended_real` and `is_finite` are then both True (its rules for Add, Mul and Pow prove
    them from the same facts), but asking them of a large sum runs its assumption system over every
    term: 250 ms of the 420 ms `tanh(W @ x + b)` took at n = 32. False when not shown so; the
    caller then asks SymPy."""
    seen: set = set()
    stack = [expr]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if node.is_Rational or node.is_Float:
            continue
        known = node._assumptions
        if known.get("extended_real") is True and known.get("finite") is True:
            continue
        if node.is_Add or node.is_Mul:
            stack.extend(node.args)
        elif node.is_Pow and node.exp.is_Integer and node.exp.p >= 0:
            stack.append(node.base)
        else:
            return False
    return True


# --------------------------------------------------------------------------- shape rules
# One rule per function: validates the input shapes and returns the output shape. The
# parser uses the same rules to size work before any symbolic work starts.


def _need_ndim(name: str, shape: Shape, ndims: tuple[int, ...], what: str) -> None:
    if len(shape) not in ndims:
        raise ShapeError(f"{name}: needs {what}, received shape {shape}")


def _same(shape: Shape) -> Shape:
    return shape


def _axes(name: str, shape: Shape, axis: Any) -> tuple[int, ...]:
    """The axes `axis` names (None: all), normalised to 0..ndim-1, sorted, without repeats.

    A 0-d array accepts axis 0 and -1 (as torch does) and reduces nothing else away.
    """
    ndim = len(shape)
    if axis is None:
        return tuple(range(ndim))
    items = axis if isinstance(axis, (tuple, list)) else (axis,)
    result = []
    for item in items:
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, np.integer)):
            raise InvalidArgumentError(
                f"{name}: axis must be an int or a tuple of ints; received {axis!r}")
        bound = _builtins.max(ndim, 1)
        if not -bound <= int(item) < bound:
            raise ShapeError(
                f"{name}: axis {int(item)} is out of range for shape {shape} "
                f"(allowed: {-bound} to {bound - 1})")
        normal = int(item) % bound
        if normal in result:
            raise ShapeError(f"{name}: axis {normal} is repeated in {axis!r}")
        result.append(normal)
    return tuple(sorted(a for a in result if a < ndim))


def _check_keepdim(name: str, keepdim: Any) -> bool:
    if not isinstance(keepdim, (bool, np.bool_)):
        raise InvalidArgumentError(f"{name}: keepdim must be True or False; received {keepdim!r}")
    return bool(keepdim)


def _reduced_shape(name: str, shape: Shape, axis: Any, keepdim: Any) -> Shape:
    axes = _axes(name, shape, axis)
    if _check_keepdim(name, keepdim):
        return tuple(1 if d in axes else n for d, n in enumerate(shape))
    return tuple(n for d, n in enumerate(shape) if d not in axes)


def _reduction_rule(name: str, nonempty: bool = False) -> Callable[..., Shape]:
    def rule(shape: Shape, *, axis: Any = None, keepdim: Any = False, **_: Any) -> Shape:
        axes = _axes(name, shape, axis)
        if nonempty and _math.prod(shape[d] for d in axes) == 0:
            raise ShapeError(f"{name}: needs at least one entry, received shape {shape}")
        return _reduced_shape(name, shape, axis, keepdim)

    return rule


def _scalar_shape(shape: Shape) -> Shape:
    return ()


def _mean_shape(shape: Shape, **keywords: Any) -> Shape:
    return _reduction_rule("mean", nonempty=True)(shape, **keywords)


def _logsumexp_shape(shape: Shape, **keywords: Any) -> Shape:
    return _reduction_rule("logsumexp", nonempty=True)(shape, **keywords)


def _transpose_shape(shape: Shape) -> Shape:
    return shape[::-1]


def _square(name: str, shape: Shape) -> int:
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ShapeError(f"{name}: needs a square matrix, received shape {shape}")
    return shape[0]


def _trace_shape(shape: Shape) -> Shape:
    _square("trace", shape)
    return ()


def _batched_square(name: str, shape: Shape) -> int:
    """A square matrix or a batch of them (`(..., n, n)`); returns n."""
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ShapeError(
            f"{name}: needs a square matrix, received shape {shape} (a batch of square "
            "matrices, shape (..., n, n), also works)")
    return shape[-1]


def _det_shape(shape: Shape) -> Shape:
    if len(shape) == 2:
        _square("det", shape)
    _batched_square("det", shape)
    return shape[:-2]


def _inv_shape(shape: Shape) -> Shape:
    if len(shape) == 2:
        _square("inv", shape)
    _batched_square("inv", shape)
    return shape


def _softmax_shape(shape: Shape, *, axis: Any = -1) -> Shape:
    if axis is None or isinstance(axis, (tuple, list)):
        raise InvalidArgumentError(f"softmax: axis must be one int; received {axis!r}")
    _axes("softmax", shape, axis)
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
    if len(left) == 0 or len(right) == 0:
        raise ShapeError(
            "matmul: needs arrays of at least 1 dimension (use * for scalars), received shapes "
            f"left {left}, right {right}"
        )
    inner_right = right[0] if len(right) == 1 else right[-2]
    if left[-1] != inner_right:
        raise ShapeError(f"matmul: inner dimensions differ: left {left}, right {right}")
    if len(left) <= 2 and len(right) <= 2:
        return left[:-1] + right[1:]
    # NumPy/torch semantics: 1-D operands are promoted and the promoted axis removed after;
    # the leading (batch) axes broadcast.
    try:
        batch = np.broadcast_shapes(left[:-2], right[:-2])
    except ValueError:
        raise ShapeError(
            f"matmul: batch dimensions do not broadcast: left {left}, right {right}") from None
    rows = left[-2:-1] if len(left) >= 2 else ()
    cols = right[-1:] if len(right) >= 2 else ()
    return tuple(batch) + rows + cols


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
    if len(left) > 2:
        n = _batched_square("solve", left)
        if right == left[:-1]:  # a batch of vectors (torch's rule)
            return right
        if len(right) < 2 or right[-2] != n:
            raise ShapeError(
                f"solve: the right-hand side needs {n} rows, received shapes left {left}, "
                f"right {right}")
        try:
            batch = np.broadcast_shapes(left[:-2], right[:-2])
        except ValueError:
            raise ShapeError(
                f"solve: batch dimensions do not broadcast: left {left}, right {right}") from None
        return tuple(batch) + right[-2:]
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
    "sum": _reduction_rule("sum"),
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
    "norm": _reduction_rule("norm"),
    # stable primitives (symjac._stable)
    **{name: _same for name in ("softplus", "logsigmoid", "log1p", "expm1")},
    "log_softmax": lambda shape, *, axis=-1: _softmax_shape(shape, axis=axis),
    "logaddexp": lambda left, right: _broadcast_shape("logaddexp", left, right),
}


def _result_shape(name: str, *shapes: Shape, **keywords: Any) -> Shape:
    """Validate the argument shapes (and keyword options) of function `name`; return its output shape."""
    return _SHAPE_RULES[name](*shapes, **keywords)


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
    return _map(_log, x)


def _log(v: sp.Expr) -> sp.Expr:
    """`sp.log(v)`; for a sum or a `det` node with symbols in it, unevaluated: `log.eval` would only
    ask whether it is provably zero, through the assumption system over the whole sum (50 ms for a
    written-out 4 x 4 determinant, over a second at 8 x 8), and returns it unchanged otherwise."""
    if isinstance(v, (sp.Add, _determinant.det)) and not v.is_number:
        return _unevaluated_log(v)
    return sp.log(v)


def _unevaluated_log(v: sp.Expr) -> sp.Expr:
    """`sp.log(v, evaluate=False)`, the same node, without `Function.__new__`'s cache look-up and
    its `nargs` set built anew (about 150 us a node, 400 us the first): the node with the `nargs`
    SymPy gives every `log`."""
    node = Basic.__new__(sp.log, v)
    node.nargs = _LOG_NARGS
    return node


_LOG_NARGS = sp.log(sp.Symbol("x"), evaluate=False).nargs


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
    return _map(sp.tanh, x, build=_tanh)


def _tanh(v: sp.Expr) -> sp.Expr:
    """`sp.tanh(v)`. For a sum with symbols and no `I` in it, `tanh.eval` only pulls a minus sign out
    (`tanh(-a - b) = -tanh(a + b)`) and otherwise asks whether the sum is provably zero, through
    the assumption system (most of building `tanh(W @ x + b)` at n = 32); the sign rule is applied
    here and the node built unevaluated: the same expression, unless the sum is 0 in value but not
    in form (then `tanh` of it, which is 0 in value)."""
    if isinstance(v, sp.Add) and not v.is_number and not v.has(sp.I):
        if v.could_extract_minus_sign():
            return -sp.tanh(-v, evaluate=False)
        return sp.tanh(v, evaluate=False)
    return sp.tanh(v)


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


def _reduce(name: str, x: Any, axis: Any, keepdim: Any,
            combine: Callable[[list[sp.Expr]], sp.Expr]) -> np.ndarray:
    """`combine` over the entries along `axis` (None: all), keeping size-1 axes with `keepdim`."""
    a = as_symbolic(x, argument="x")
    shape = _result_shape(name, a.shape, axis=axis, keepdim=keepdim)
    axes = _axes(name, a.shape, axis)
    kept = [d for d in range(a.ndim) if d not in axes]
    moved = np.transpose(a, kept + list(axes)).reshape(
        tuple(a.shape[d] for d in kept) + (-1,))
    out = np.empty(moved.shape[:-1], dtype=object)
    for index in np.ndindex(out.shape):
        out[index] = combine(list(moved[index]))
    return out.reshape(shape)


def sum(x: Any, *, axis: Any = None, keepdim: bool = False) -> np.ndarray:  # noqa: A001
    """Sum of the entries along `axis` (default: all, giving a scalar). An empty array sums to 0.

    `axis` is an int or a tuple of ints (negative counts from the end); `keepdim=True` keeps
    the reduced axes with size 1, as torch does.

    Example:
        >>> sum([1, 2, 3])[()]
        6
        >>> sum([[1, 2], [3, 4]], axis=1).tolist()
        [3, 7]
    """
    return _reduce("sum", x, axis, keepdim, lambda v: sp.Add(*v))


def mean(x: Any, *, axis: Any = None, keepdim: bool = False) -> np.ndarray:
    """Mean of the entries along `axis` (default: all). Needs at least one entry.

    Example:
        >>> mean([1, 2])[()]
        3/2
    """
    return _reduce("mean", x, axis, keepdim, lambda v: sp.Add(*v) / sp.Integer(len(v)))


def logsumexp(x: Any, *, axis: Any = None, keepdim: bool = False) -> np.ndarray:
    """`log(sum(exp(x)))` along `axis` (default: all). Needs at least one entry.

    Example:
        >>> logsumexp([0])[()]
        0
    """
    # stable: log(sum(exp)) as one SymPy function, finite wherever it is (symjac._stable)
    return _reduce("logsumexp", x, axis, keepdim, lambda v: _stable.logsumexp(*v))


def norm(x: Any, *, axis: Any = None, keepdim: bool = False, ord: Any = 2) -> np.ndarray:  # noqa: A002
    """Vector 2-norm `sqrt(sum(x**2))` along `axis` (default: all entries, the Frobenius norm).

    `ord=1` gives `sum(|x|)`; other orders are not part of the language.

    Example:
        >>> norm([3, 4])[()]
        5
    """
    if isinstance(ord, bool) or ord not in (1, 2):
        raise InvalidArgumentError(f"norm: ord must be 1 or 2; received {ord!r}")
    if ord == 1:
        return _reduce("norm", x, axis, keepdim, lambda v: sp.Add(*(sp.Abs(e) for e in v)))
    return _reduce("norm", x, axis, keepdim, lambda v: sp.sqrt(sp.Add(*(e**2 for e in v))))


def softmax(x: Any, *, axis: int = -1) -> np.ndarray:
    """Softmax along `axis` (default: the last): `exp(x) / sum(exp(x))`. A 0-d input gives 1.

    Example:
        >>> [str(v) for v in softmax([0, 0])]
        ['1/2', '1/2']
    """
    a = as_symbolic(x, argument="x")
    _result_shape("softmax", a.shape, axis=axis)
    if a.ndim == 0:
        return _scalar(sp.Integer(1))
    moved = np.moveaxis(a, axis, -1)
    out = np.empty(moved.shape, dtype=object)
    for index in np.ndindex(moved.shape[:-1]):
        row = list(moved[index])
        total = _stable.logsumexp(*row)
        for k, v in enumerate(row):
            # exp(x_k - logsumexp(x)): finite wherever softmax is; log(softmax) simplifies to
            # x_k - logsumexp(x)
            out[index + (k,)] = sp.exp(v - total)
    return np.moveaxis(out, -1, axis).copy()


# --------------------------------------------------------------------------- linear algebra


def transpose(x: Any) -> np.ndarray:
    """Transpose: the axes in reverse order (a 2-D array's transpose; 1-D and 0-D unchanged).

    Example:
        >>> transpose([[1, 2]]).shape
        (2, 1)
    """
    a = as_symbolic(x, argument="x")
    _result_shape("transpose", a.shape)
    return a.T.copy()


def _times(a: Any, b: Any) -> Any:
    """`a * b`. For two distinct commutative Symbols (every entry of `X @ X`, `W @ x`, `Q @ K.T`) the
    product SymPy's `Mul.flatten` would build, without it: the two factors in `Mul`'s own order
    (`_mulsort`), 10x faster (flattening two symbols is 80% of building `X @ X` at 32 x 32);
    tests/test_det_expansion.py checks it is the same object SymPy builds."""
    if (type(a) is sp.Symbol and type(b) is sp.Symbol and a is not b
            and a.is_commutative and b.is_commutative):
        factors = [a, b]
        _mulsort(factors)
        return sp.Mul._from_args(tuple(factors), True)
    return a * b


def _mm2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # Written out rather than `np.matmul`: NumPy's object matmul builds each entry by
    # repeated `+`, which re-flattens a growing sympy.Add (quadratic; 5x slower at
    # n=40). One `sympy.Add(*terms)` per entry gives the same expression.
    m, k = a.shape
    n = b.shape[1]
    out = np.empty((m, n), dtype=object)
    keys: dict = {}
    for i in range(m):
        for j in range(n):
            out[i, j] = _sum_of_products([_times(a[i, p], b[p, j]) for p in range(k)], keys)
    return out


def _sum_of_products(terms: list, keys: dict) -> sp.Expr:
    """`sp.Add(*terms)`. When every term is a product of two Symbols (`W[i, p] * x[p]`), the terms
    are first put in the order `Basic.compare` gives such products (by the two factors'
    `_hashable_content`, `keys` memoising it per symbol) and summed by `_products.total`: its sort
    of the terms, by `Basic.compare` itself, then only confirms the order (one comparison per term
    instead of n log n), so the node is SymPy's whatever the key says; 3x faster at n = 32."""
    if not terms or not all(type(t) is sp.Mul and len(t.args) == 2 for t in terms):
        return sp.Add(*terms)
    try:
        terms.sort(key=lambda t: tuple(keys[f] if f in keys else keys.setdefault(f, _symbol_key(f)) for f in t.args))
    except TypeError:  # a factor that is not a Symbol
        return sp.Add(*terms)
    return total(terms)


def _symbol_key(symbol: Any) -> tuple:
    if type(symbol) is not sp.Symbol:
        raise TypeError("not a Symbol")
    return symbol._hashable_content()


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
    if left2.ndim > 2 or right2.ndim > 2:
        return _batched(lambda p, q: _mm2(p, q), left2, right2).reshape(shape)
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


def _rows(a: np.ndarray) -> list:
    return a.tolist()


def _with_facts(d: sp.Expr) -> sp.Expr:
    """`d`, and when it is a `det` node of entries real and finite by construction, those facts
    recorded in its assumptions (as `_tell_facts` does for `tanh`): then the Function's validation
    need not ask SymPy about the node."""
    if isinstance(d, _determinant.det) and all(_real_and_finite(e) for e in d.args):
        known = d._assumptions
        facts = {"extended_real": True, "finite": True}
        if all(known.get(k) in (None, v) for k, v in facts.items()):
            if known is type(d).default_assumptions:
                d._assumptions = known = known.copy()
            missing = {k: v for k, v in facts.items() if known.get(k) is None}
            if missing:
                known.deduce_all_facts(missing)
    return d


def _det2(a: np.ndarray) -> sp.Expr:
    """Determinant of one square 2-D symbolic array (empty: 1): written out up to
    `_determinant.EXPANSION_MAX`, one `det` node above (symjac._determinant)."""
    return _with_facts(_determinant.determinant(_rows(a)))


def det(x: Any) -> np.ndarray:
    """Determinant of a square 2-D array, as a scalar: its cofactor expansion up to 3 x 3, one
    exact `det` node above (symjac._determinant; its derivatives are its cofactors).

    Example:
        >>> det([[1, 2], [3, 4]])[()]
        -2
    """
    a = as_symbolic(x, argument="x")
    shape = _result_shape("det", a.shape)
    if a.ndim > 2:
        out = np.empty(shape, dtype=object)
        for index in np.ndindex(shape):
            out[index] = _det2(a[index])
        return out
    return _scalar(_det2(a))


def _adjugate_and_det(name: str, a: np.ndarray) -> tuple[np.ndarray, sp.Expr]:
    """(adjugate, determinant) of one square 2-D symbolic array: each cofactor from the minors
    built once (`_determinant._Minors`: written out up to `EXPANSION_MAX`, `det` nodes above); the
    determinant from row 0's cofactors up to `EXPANSION_MAX`, one `det` node above."""
    n = a.shape[0]
    rows = _rows(a)
    minors = _determinant.minors_of(rows)
    adjugate = np.empty((n, n), dtype=object)
    for i in range(n):
        for j in range(n):
            adjugate[j, i] = minors.cofactor(i, j)  # adjugate[j, i] = (-1)**(i + j) * det(a without row i, column j)
    if n <= _determinant.EXPANSION_MAX:
        top = rows[0]
        d = total([product(top[j], adjugate[j, 0]) for j in range(n)
                   if not _is_zero(top[j]) and not _is_zero(adjugate[j, 0])])
    else:
        d = _with_facts(_determinant.det.of([e for row in rows for e in row]))
    if d == 0:
        raise DomainError(
            f"{name}: the matrix is singular (its determinant is exactly 0), "
            f"received shape {a.shape}"
        )
    return adjugate.reshape(a.shape), d


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
    if a.ndim > 2:
        out = np.empty(a.shape, dtype=object)
        for index in np.ndindex(a.shape[:-2]):
            out[index] = inv(a[index])
        return out
    if a.size == 0:
        return a.copy()
    adjugate, d = _adjugate_and_det("inv", a)
    out = np.empty(a.shape, dtype=object)
    # `v / d` is `Mul(v, Pow(d, -1))` (`Expr.__truediv__`), the power built once here; a number
    # divides a number itself (one rounding of a Float)
    reciprocal = None if d.is_Number else sp.Pow(d, sp.S.NegativeOne)
    for index, v in np.ndenumerate(adjugate):
        out[index] = v / d if reciprocal is None or v.is_Number else product(v, reciprocal)
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
    if left.ndim > 2:
        if right.shape == left.shape[:-1]:
            return _batched(solve, left, right[..., None])[..., 0].copy()
        return _batched(solve, left, right)
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


def _broadcast_shape(name: str, left: Shape, right: Shape) -> Shape:
    try:
        return tuple(np.broadcast_shapes(left, right))
    except ValueError:
        raise ShapeError(f"{name}: shapes do not broadcast: left {left}, right {right}") from None


def log_softmax(x: Any, *, axis: int = -1) -> np.ndarray:
    """`x - logsumexp(x)` along `axis` (default: the last; `log(softmax(x))`, stable). A 0-d input
    gives 0.

    Example:
        >>> str(log_softmax([0, 0])[0])
        '-log(2)'
    """
    a = as_symbolic(x, argument="x")
    _result_shape("log_softmax", a.shape, axis=axis)
    if a.ndim == 0:
        return _scalar(sp.Integer(0))
    moved = np.moveaxis(a, axis, -1)
    out = np.empty(moved.shape, dtype=object)
    for index in np.ndindex(moved.shape[:-1]):
        row = list(moved[index])
        total = _stable.logsumexp(*row)
        for k, v in enumerate(row):
            out[index + (k,)] = v - total
    return np.moveaxis(out, -1, axis).copy()


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


# --------------------------------------------------------------------------- issue 13: more of the vocabulary
# Everything below is one row each of `symjac._vocabulary.OPERATIONS`, which the text language
# and the torch tracer both read. Batches: a leading axis of a matrix function is a batch axis.


def _batched(function: Callable[[np.ndarray, np.ndarray], np.ndarray], a: np.ndarray,
             b: np.ndarray) -> np.ndarray:
    """`function` of the trailing 2-D blocks of `a` and `b`, over their broadcast batch axes."""
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a_b = np.broadcast_to(a, tuple(batch) + a.shape[-2:])
    b_b = np.broadcast_to(b, tuple(batch) + b.shape[-2:])
    blocks = {index: function(a_b[index], b_b[index]) for index in np.ndindex(tuple(batch))}
    first = next(iter(blocks.values()))
    out = np.empty(tuple(batch) + first.shape, dtype=object)
    for index, block in blocks.items():
        out[index] = block
    return out


def _map2(name: str, function: Callable[[sp.Expr, sp.Expr], sp.Expr], a: Any, b: Any) -> np.ndarray:
    left, right = as_symbolic(a, argument="a"), as_symbolic(b, argument="b")
    shape = _result_shape(name, left.shape, right.shape)
    left_b, right_b = np.broadcast_to(left, shape), np.broadcast_to(right, shape)
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(shape):
        out[index] = function(left_b[index], right_b[index])
    return out


def _broadcast_rule(name: str) -> Callable[..., Shape]:
    def rule(*shapes: Shape) -> Shape:
        try:
            return tuple(np.broadcast_shapes(*shapes))
        except ValueError:
            listed = ", ".join(str(s) for s in shapes)
            raise ShapeError(f"{name}: shapes do not broadcast: {listed}") from None

    return rule


def erf(x: Any) -> np.ndarray:
    """Elementwise error function `2/sqrt(pi) * integral_0^x exp(-t**2) dt` (`sympy.erf`).

    Example:
        >>> erf(0)[()]
        0
    """
    return _map(sp.erf, x)


def asin(x: Any) -> np.ndarray:
    """Elementwise arcsine (domain [-1, 1]; differentiable inside).

    Example:
        >>> asin(0)[()]
        0
    """
    return _map(sp.asin, x)


def acos(x: Any) -> np.ndarray:
    """Elementwise arccosine (domain [-1, 1]; differentiable inside).

    Example:
        >>> acos(1)[()]
        0
    """
    return _map(sp.acos, x)


def atan(x: Any) -> np.ndarray:
    """Elementwise arctangent.

    Example:
        >>> atan(0)[()]
        0
    """
    return _map(sp.atan, x)


def sinh(x: Any) -> np.ndarray:
    """Elementwise hyperbolic sine.

    Example:
        >>> sinh(0)[()]
        0
    """
    return _map(sp.sinh, x)


def cosh(x: Any) -> np.ndarray:
    """Elementwise hyperbolic cosine.

    Example:
        >>> cosh(0)[()]
        1
    """
    return _map(sp.cosh, x)


def atan2(y: Any, x: Any) -> np.ndarray:
    """Elementwise angle of the point `(x, y)`, `atan2(y, x)`, broadcasting `y` and `x`.

    Example:
        >>> atan2(1, 1)[()]
        pi/4
    """
    return _map2("atan2", sp.atan2, y, x)


def maximum(a: Any, b: Any) -> np.ndarray:
    """Elementwise `max(a, b)` (`sympy.Max`), broadcasting.

    Example:
        >>> maximum([1, 5], 3).tolist()
        [3, 5]
    """
    return _map2("maximum", lambda u, v: sp.Max(u, v), a, b)


def minimum(a: Any, b: Any) -> np.ndarray:
    """Elementwise `min(a, b)` (`sympy.Min`), broadcasting.

    Example:
        >>> minimum([1, 5], 3).tolist()
        [1, 3]
    """
    return _map2("minimum", lambda u, v: sp.Min(u, v), a, b)


def clamp(x: Any, low: Any = None, high: Any = None) -> np.ndarray:
    """`min(max(x, low), high)` entry by entry; `low` or `high` may be None (no bound).

    Example:
        >>> clamp([-2, 0, 2], -1, 1).tolist()
        [-1, 0, 1]
    """
    out = as_symbolic(x, argument="x")
    if low is None and high is None:
        raise InvalidArgumentError("clamp: give low, high or both; received neither")
    if low is not None:
        out = maximum(out, low)
    if high is not None:
        out = minimum(out, high)
    return out


def _as_condition(c: Any, argument: str) -> np.ndarray:
    """A boolean array: entries are SymPy relations or `sympy.true`/`false` (from NumPy bools)."""
    array = np.asarray(c, dtype=object) if not isinstance(c, np.ndarray) else c
    out = np.empty(array.shape, dtype=object)
    for index, v in np.ndenumerate(array):
        if isinstance(v, (bool, np.bool_)):
            out[index] = sp.true if v else sp.false
        elif isinstance(v, sp.logic.boolalg.Boolean):
            out[index] = v
        else:
            raise InvalidArgumentError(
                f"{argument}: a condition must be a comparison such as x > 0; received "
                f"{type(v).__name__} {str(v)[:40]}")
    return out


def _compare(name: str, relation: Callable[[sp.Expr, sp.Expr], Any], a: Any, b: Any) -> np.ndarray:
    left, right = as_symbolic(a, argument="a"), as_symbolic(b, argument="b")
    shape = _result_shape(name, left.shape, right.shape)
    left_b, right_b = np.broadcast_to(left, shape), np.broadcast_to(right, shape)
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(shape):
        out[index] = relation(left_b[index], right_b[index])
    return out


def gt(a: Any, b: Any) -> np.ndarray:
    """Elementwise `a > b`, a condition for `where` (not a number).

    Example:
        >>> gt([1, 3], 2).tolist()
        [False, True]
    """
    return _compare("gt", sp.Gt, a, b)


def ge(a: Any, b: Any) -> np.ndarray:
    """Elementwise `a >= b`, a condition for `where`."""
    return _compare("ge", sp.Ge, a, b)


def lt(a: Any, b: Any) -> np.ndarray:
    """Elementwise `a < b`, a condition for `where`."""
    return _compare("lt", sp.Lt, a, b)


def le(a: Any, b: Any) -> np.ndarray:
    """Elementwise `a <= b`, a condition for `where`."""
    return _compare("le", sp.Le, a, b)


def eq(a: Any, b: Any) -> np.ndarray:
    """Elementwise `a == b`, a condition for `where`."""
    return _compare("eq", sp.Eq, a, b)


def ne(a: Any, b: Any) -> np.ndarray:
    """Elementwise `a != b`, a condition for `where`."""
    return _compare("ne", sp.Ne, a, b)


def where(condition: Any, a: Any, b: Any) -> np.ndarray:
    """`a` where `condition` holds, else `b`, entry by entry (`sympy.Piecewise`), broadcasting.

    The condition's boundary is a kink: checks treat points on it as non-differentiable.

    Example:
        >>> where(gt([1, 3], 2), 10, 20).tolist()
        [20, 10]
    """
    c = _as_condition(condition, "condition")
    left, right = as_symbolic(a, argument="a"), as_symbolic(b, argument="b")
    shape = _result_shape("where", c.shape, left.shape, right.shape)
    c_b, l_b, r_b = (np.broadcast_to(v, shape) for v in (c, left, right))
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(shape):
        cond, u, v = c_b[index], l_b[index], r_b[index]
        if cond is sp.true:
            out[index] = u
        elif cond is sp.false:
            out[index] = v
        else:
            out[index] = sp.Piecewise((u, cond), (v, True))
    return out


def var(x: Any, *, axis: Any = None, keepdim: bool = False, correction: int = 1) -> np.ndarray:
    """Variance along `axis`: `sum((x - mean)**2) / (N - correction)`; torch's default correction 1.

    Example:
        >>> var([1, 3])[()]
        2
    """
    if isinstance(correction, bool) or not isinstance(correction, (int, np.integer)) or correction < 0:
        raise InvalidArgumentError(f"var: correction must be an int >= 0; received {correction!r}")

    def combine(v: list[sp.Expr]) -> sp.Expr:
        if len(v) - int(correction) <= 0:
            raise ShapeError(
                f"var: needs more than correction={correction} entries along the axis; "
                f"received {len(v)}")
        m = sp.Add(*v) / sp.Integer(len(v))
        return sp.Add(*((e - m) ** 2 for e in v)) / sp.Integer(len(v) - int(correction))

    return _reduce("var", x, axis, keepdim, combine)


def prod(x: Any, *, axis: Any = None, keepdim: bool = False) -> np.ndarray:
    """Product of the entries along `axis` (default: all). An empty product is 1.

    Example:
        >>> prod([2, 3])[()]
        6
    """
    return _reduce("prod", x, axis, keepdim, lambda v: sp.Mul(*v))


def max(x: Any, *, axis: Any = None, keepdim: bool = False) -> np.ndarray:  # noqa: A001
    """Largest entry along `axis` (default: all), `sympy.Max`. Needs at least one entry.

    Example:
        >>> max([1, 3, 2])[()]
        3
    """
    return _reduce("max", x, axis, keepdim, lambda v: sp.Max(*v))


def min(x: Any, *, axis: Any = None, keepdim: bool = False) -> np.ndarray:  # noqa: A001
    """Smallest entry along `axis` (default: all), `sympy.Min`. Needs at least one entry.

    Example:
        >>> min([1, 3, 2])[()]
        1
    """
    return _reduce("min", x, axis, keepdim, lambda v: sp.Min(*v))


def bmm(a: Any, b: Any) -> np.ndarray:
    """Batched matrix product: `(B, m, k) x (B, k, n) -> (B, m, n)`.

    Example:
        >>> bmm([[[1, 2]]], [[[3], [4]]]).tolist()
        [[[11]]]
    """
    left, right = as_symbolic(a, argument="a"), as_symbolic(b, argument="b")
    _result_shape("bmm", left.shape, right.shape)
    return _batched(_mm2, left, right)


def _shape_tuple(name: str, shape: Any) -> Shape:
    items = (shape,) if isinstance(shape, (int, np.integer)) else shape
    if not isinstance(items, (tuple, list)) or not _builtins.all(
            isinstance(n, (int, np.integer)) and not isinstance(n, (bool, np.bool_)) for n in items):
        raise InvalidArgumentError(f"{name}: shape must be a tuple of ints; received {shape!r}")
    return tuple(int(n) for n in items)


def reshape(x: Any, shape: Any) -> np.ndarray:
    """The entries in row-major order, in a new shape; one dimension may be -1 (inferred).

    Example:
        >>> reshape([1, 2, 3, 4], (2, 2)).tolist()
        [[1, 2], [3, 4]]
    """
    a = as_symbolic(x, argument="x")
    return a.reshape(_result_shape("reshape", a.shape, shape=shape)).copy()


def permute(x: Any, axes: Any) -> np.ndarray:
    """The axes of `x` in the order `axes` (a permutation of 0..ndim-1), as torch's `permute`.

    Example:
        >>> permute([[1, 2]], (1, 0)).tolist()
        [[1], [2]]
    """
    a = as_symbolic(x, argument="x")
    _result_shape("permute", a.shape, axes=axes)
    return np.transpose(a, tuple(int(d) % _builtins.max(a.ndim, 1) for d in axes)).copy()


def swapaxes(x: Any, axis1: int, axis2: int) -> np.ndarray:
    """`x` with axes `axis1` and `axis2` exchanged (torch's `transpose(x, a, b)`).

    Example:
        >>> swapaxes([[1, 2]], 0, 1).tolist()
        [[1], [2]]
    """
    a = as_symbolic(x, argument="x")
    _result_shape("swapaxes", a.shape, axis1=axis1, axis2=axis2)
    if a.ndim == 0:
        return a.copy()
    return np.swapaxes(a, axis1, axis2).copy()


def index(x: Any, key: Any) -> np.ndarray:
    """`x[key]` for a key of ints, slices (`slice(start, stop, step)`, step > 0) and `None`.

    Example:
        >>> index([1, 2, 3, 4], (slice(1, None, 2),)).tolist()
        [2, 4]
    """
    a = as_symbolic(x, argument="x")
    key = key if isinstance(key, tuple) else (key,)
    _result_shape("index", a.shape, key=key)
    picked = a[key]
    return picked.copy() if isinstance(picked, np.ndarray) else _scalar(picked)


def concatenate(*arrays: Any, axis: int = 0) -> np.ndarray:
    """The arrays joined along an existing `axis` (torch's `cat`).

    Example:
        >>> concatenate([1], [2, 3]).tolist()
        [1, 2, 3]
    """
    parts = [as_symbolic(a, argument=f"arrays[{k}]") for k, a in enumerate(arrays)]
    _result_shape("concatenate", *(p.shape for p in parts), axis=axis)
    return np.concatenate(parts, axis=axis)


def stack(*arrays: Any, axis: int = 0) -> np.ndarray:
    """The arrays (all of one shape) stacked along a new `axis`.

    Example:
        >>> stack([1, 2], [3, 4]).tolist()
        [[1, 2], [3, 4]]
    """
    parts = [as_symbolic(a, argument=f"arrays[{k}]") for k, a in enumerate(arrays)]
    _result_shape("stack", *(p.shape for p in parts), axis=axis)
    return np.stack(parts, axis=axis)


def diagonal(x: Any, *, offset: int = 0, axis1: int = 0, axis2: int = 1) -> np.ndarray:
    """The diagonal of `x` over `axis1`, `axis2` (moved last, as NumPy and torch do).

    Example:
        >>> diagonal([[1, 2], [3, 4]]).tolist()
        [1, 4]
    """
    a = as_symbolic(x, argument="x")
    _result_shape("diagonal", a.shape, offset=offset, axis1=axis1, axis2=axis2)
    return np.diagonal(a, offset, axis1, axis2).copy()


def diag(x: Any) -> np.ndarray:
    """A 1-D array as the diagonal of a square matrix (zeros elsewhere); a 2-D array's diagonal.

    Example:
        >>> diag([1, 2]).tolist()
        [[1, 0], [0, 2]]
    """
    a = as_symbolic(x, argument="x")
    shape = _result_shape("diag", a.shape)
    if a.ndim == 2:
        return np.diagonal(a).copy()
    out = np.full(shape, sp.Integer(0), dtype=object)
    for k, v in enumerate(a):
        out[k, k] = v
    return out


def eye(n: Any) -> np.ndarray:
    """The `n` by `n` identity matrix (`n` a positive int).

    Example:
        >>> eye(2).tolist()
        [[1, 0], [0, 1]]
    """
    if isinstance(n, np.ndarray) and n.ndim == 0:
        n = n[()]
    if isinstance(n, sp.Integer):
        n = int(n)
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InvalidArgumentError(f"eye: n must be a positive int literal; received {n!r}")
    out = np.full((int(n), int(n)), sp.Integer(0), dtype=object)
    for k in range(int(n)):
        out[k, k] = sp.Integer(1)
    return out


def _reshape_shape(*shapes: Shape, shape: Any) -> Shape:
    (source,) = shapes
    target = _shape_tuple("reshape", shape)
    size = _math.prod(source)
    unknown = [k for k, n in enumerate(target) if n == -1]
    if len(unknown) > 1 or _builtins.any(n < -1 or n == 0 for n in target):
        raise ShapeError(f"reshape: dimensions must be positive (one may be -1); received {target}")
    known = _math.prod(n for n in target if n != -1)
    if unknown:
        if known == 0 or size % known:
            raise ShapeError(f"reshape: cannot reshape shape {source} into {target}")
        target = tuple(size // known if n == -1 else n for n in target)
    if _math.prod(target) != size:
        raise ShapeError(f"reshape: cannot reshape shape {source} ({size} entries) into {target}")
    return target


def _permute_shape(shape: Shape, *, axes: Any) -> Shape:
    items = _shape_tuple("permute", axes)
    ndim = len(shape)
    bound = _builtins.max(ndim, 1)
    if len(items) != ndim or sorted(d % bound for d in items if -bound <= d < bound) != list(range(ndim)):
        raise ShapeError(
            f"permute: axes must be a permutation of 0..{ndim - 1} for shape {shape}; received {items}")
    return tuple(shape[d % bound] for d in items)


def _swapaxes_shape(shape: Shape, *, axis1: Any, axis2: Any) -> Shape:
    first = _axes("swapaxes", shape, axis1)
    second = _axes("swapaxes", shape, axis2)
    if not shape:
        return shape
    out = list(shape)
    out[first[0]], out[second[0]] = shape[second[0]], shape[first[0]]
    return tuple(out)


def _index_shape(shape: Shape, *, key: Any) -> Shape:
    out: list[int] = []
    axis = 0
    for item in key:
        if item is None:
            out.append(1)
            continue
        if axis >= len(shape):
            raise ShapeError(f"index: too many indices: {len(key)} for shape {shape}")
        length = shape[axis]
        if isinstance(item, slice):
            for part in (item.start, item.stop, item.step):
                if part is not None and (isinstance(part, bool) or not isinstance(part, (int, np.integer))):
                    raise InvalidArgumentError(f"index: slice bounds must be ints; received {item!r}")
            if item.step == 0:
                raise ShapeError("index: a slice step must not be 0")
            out.append(len(range(*item.indices(length))))
        elif isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)):
            if not -length <= item < length:
                raise ShapeError(
                    f"index: index {int(item)} is out of bounds for axis {axis} with size {length} "
                    f"(shape {shape})")
        elif isinstance(item, np.ndarray) and item.dtype.kind in "iu":
            return _advanced_index_shape(shape, key)
        else:
            raise InvalidArgumentError(
                f"index: indices must be ints, slices, None or integer arrays; received "
                f"{type(item).__name__}")
        axis += 1
    return tuple(out) + shape[axis:]


def _advanced_index_shape(shape: Shape, key: tuple) -> Shape:
    """NumPy's shape for a key with integer arrays (constant indices), or ShapeError."""
    try:
        return np.broadcast_to(np.empty((), dtype=np.int8), shape)[key].shape
    except IndexError as err:
        raise ShapeError(f"index: {err} (shape {shape})") from None


def gather(x: Any, axis: int, indices: Any) -> np.ndarray:
    """torch's `gather`: `out[i][j] = x[i][indices[i][j]]` along `axis`, for constant int indices.

    Example:
        >>> gather([[1, 2], [3, 4]], 1, np.array([[1], [0]])).tolist()
        [[2], [3]]
    """
    a = as_symbolic(x, argument="x")
    picks = np.asarray(indices)
    _result_shape("gather", a.shape, axis=axis, indices=picks)
    (normal,) = _axes("gather", a.shape, axis)
    out = np.empty(picks.shape, dtype=object)
    for position, pick in np.ndenumerate(picks):
        source = list(position)
        source[normal] = int(pick)
        out[position] = a[tuple(source)]
    return out


def _gather_shape(shape: Shape, *, axis: Any, indices: Any) -> Shape:
    picks = np.asarray(indices)
    if picks.dtype.kind not in "iu" or picks.ndim != len(shape):
        raise ShapeError(
            f"gather: indices must be an int array with as many dimensions as x {shape}; "
            f"received {picks.dtype} of shape {picks.shape}")
    (normal,) = _axes("gather", shape, axis)
    if picks.size and (picks.min() < -shape[normal] or picks.max() >= shape[normal]):
        raise ShapeError(f"gather: an index is out of range for axis {normal} of shape {shape}")
    return picks.shape


def _join_shape(name: str, new_axis: bool) -> Callable[..., Shape]:
    def rule(*shapes: Shape, axis: Any = 0) -> Shape:
        if not shapes:
            raise ShapeError(f"{name}: needs at least one array")
        first = shapes[0]
        ndim = len(first) + (1 if new_axis else 0)
        if ndim == 0:
            raise ShapeError(f"{name}: cannot join 0-d arrays along an axis")
        (normal,) = _axes(name, (1,) * ndim, axis)
        for other in shapes[1:]:
            if new_axis and other != first:
                raise ShapeError(f"{name}: all arrays need one shape; received {first} and {other}")
            if not new_axis and (len(other) != len(first) or _builtins.any(
                    a != b for d, (a, b) in enumerate(zip(first, other)) if d != normal)):
                raise ShapeError(
                    f"{name}: shapes differ outside axis {normal}: {first} and {other}")
        if new_axis:
            return first[:normal] + (len(shapes),) + first[normal:]
        total = _builtins.sum(s[normal] for s in shapes)
        return first[:normal] + (total,) + first[normal + 1:]

    return rule


def _diagonal_shape(shape: Shape, *, offset: Any = 0, axis1: Any = 0, axis2: Any = 1) -> Shape:
    if len(shape) < 2:
        raise ShapeError(f"diagonal: needs at least 2 dimensions, received shape {shape}")
    if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)):
        raise InvalidArgumentError(f"diagonal: offset must be an int; received {offset!r}")
    (first,), (second,) = _axes("diagonal", shape, axis1), _axes("diagonal", shape, axis2)
    if first == second:
        raise ShapeError(f"diagonal: axis1 and axis2 must differ; received {axis1}, {axis2}")
    rows, cols = shape[first], shape[second]
    length = _builtins.max(0, _builtins.min(rows, cols - offset) if offset >= 0 else
                           _builtins.min(rows + offset, cols))
    rest = tuple(n for d, n in enumerate(shape) if d not in (first, second))
    return rest + (length,)


def _diag_shape(shape: Shape) -> Shape:
    if len(shape) == 1:
        return (shape[0], shape[0])
    if len(shape) == 2:
        return (_builtins.min(shape),)
    raise ShapeError(f"diag: needs a 1-D or 2-D array, received shape {shape}")


def _bmm_shape(left: Shape, right: Shape) -> Shape:
    if len(left) != 3 or len(right) != 3 or left[0] != right[0]:
        raise ShapeError(
            f"bmm: needs two 3-D arrays with one batch size, received shapes left {left}, "
            f"right {right}")
    if left[2] != right[1]:
        raise ShapeError(f"bmm: inner dimensions differ: left {left}, right {right}")
    return (left[0], left[1], right[2])


def _clamp_shape(shape: Shape, *bounds: Shape) -> Shape:
    return _broadcast_rule("clamp")(shape, *bounds)


_SHAPE_RULES.update({
    **{name: _same for name in ("erf", "asin", "acos", "atan", "sinh", "cosh")},
    **{name: _broadcast_rule(name) for name in (
        "atan2", "maximum", "minimum", "where", "gt", "ge", "lt", "le", "eq", "ne")},
    "clamp": _clamp_shape,
    "var": _reduction_rule("var"),
    "prod": _reduction_rule("prod"),
    "max": _reduction_rule("max", nonempty=True),
    "min": _reduction_rule("min", nonempty=True),
    "bmm": _bmm_shape,
    "reshape": _reshape_shape,
    "permute": _permute_shape,
    "swapaxes": _swapaxes_shape,
    "index": _index_shape,
    "concatenate": _join_shape("concatenate", new_axis=False),
    "stack": _join_shape("stack", new_axis=True),
    "diagonal": _diagonal_shape,
    "diag": _diag_shape,
    "eye": lambda n: (int(n), int(n)),
    "gather": _gather_shape,
})
