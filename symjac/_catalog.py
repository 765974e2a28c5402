"""The built-in catalog: functions symjac cross-checks (SymPy vs torch vs finite differences).

Each entry is plain, picklable data (expression text, input shapes, constants). Its *point maker*
(`CatalogEntry.points`) is `symjac.strategies.inputs` of the Function: the domain is derived from
the expression (`log` and `sqrt` arguments positive, denominators and kinks away from zero,
invertible matrices diagonally dominant), never written by hand here, so the catalog also tests
that derivation. Worker processes (pytest-xdist) rebuild the Functions from this data.

Run it with `pytest --pyargs symjac.suite` or `symjac suite`; `benchmarks/suite_thorough.py` runs
it at 100+ samples per function.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["CatalogEntry", "CATALOG", "entry", "names", "run_entry"]

#: Samples per function in the suite's CI profile and in its thorough profile.
CI_SAMPLES = 10
THOROUGH_SAMPLES = 100

_A2 = [[2.0, 3.0], [4.0, 5.0]]
_A3 = [[2.0, -1.0, 0.5], [0.0, 1.5, 1.0], [1.0, 0.25, -3.0]]


@dataclass(frozen=True)
class CatalogEntry:
    """One catalog function: `symjac.function(expr, consts=consts, **shapes)` and its point maker."""

    name: str
    group: str
    expr: str
    shapes: dict[str, tuple[int, ...]]
    consts: dict[str, Any] = field(default_factory=dict)

    def function(self):
        """The Function (built once per process and cached)."""
        return _build(self.name)

    def points(self, *, dtype: Any = np.float64):
        """The point maker: the Hypothesis strategy of this entry's points, from its own domain."""
        from .strategies import inputs

        return inputs(self.function(), dtype=dtype)


def _e(name, group, expr, consts=None, **shapes) -> CatalogEntry:
    return CatalogEntry(name, group, expr, shapes, consts or {})


CATALOG: tuple[CatalogEntry, ...] = (
    # elementwise
    _e("exp", "elementwise", "exp(x)", x=(4,)),
    _e("log", "elementwise", "log(x)", x=(4,)),
    _e("sqrt", "elementwise", "sqrt(x)", x=(4,)),
    _e("sin", "elementwise", "sin(x)", x=(4,)),
    _e("cos", "elementwise", "cos(X)", X=(2, 2)),
    _e("tan", "elementwise", "tan(x)", x=(3,)),
    _e("tanh", "elementwise", "tanh(X)", X=(2, 3)),
    _e("sigmoid", "elementwise", "sigmoid(x)", x=(4,)),
    _e("relu", "elementwise", "relu(x)", x=(4,)),
    _e("abs", "elementwise", "abs(x)", x=(4,)),
    _e("square", "elementwise", "x ** 2", x=(4,)),
    _e("reciprocal", "elementwise", "1 / x", x=(4,)),
    _e("rational", "elementwise", "x ** 3 / (1 + x ** 2)", x=(4,)),
    _e("softplus", "elementwise", "log(1 + exp(x))", x=(4,)),
    _e("x_log_x", "elementwise", "x * log(x)", x=(4,)),
    _e("power", "elementwise", "x ** 1.5", x=(3,)),
    _e("sin_over_x", "elementwise", "sin(x) / x", x=(3,)),
    # reductions
    _e("sum", "reduction", "sum(X)", X=(3, 2)),
    _e("mean", "reduction", "mean(X)", X=(2, 3)),
    _e("sum_of_squares", "reduction", "sum(X * X)", X=(2, 3)),
    _e("norm", "reduction", "norm(x)", x=(4,)),
    _e("matrix_norm", "reduction", "norm(X)", X=(2, 2)),
    _e("logsumexp", "reduction", "logsumexp(x)", x=(5,)),
    _e("softmax", "reduction", "softmax(x)", x=(5,)),
    _e("softmax_rows", "reduction", "softmax(X)", X=(2, 3)),
    # products
    _e("const_at_X", "product", "A @ X", consts={"A": _A2}, X=(2, 2)),
    _e("X_at_X", "product", "X @ X", X=(3, 3)),
    _e("X_at_X_at_X", "product", "X @ X @ X", X=(3, 3)),
    _e("gram", "product", "X.T @ X", X=(3, 2)),
    _e("matvec", "product", "W @ x", W=(2, 3), x=(3,)),
    _e("mm", "product", "mm(X, Y)", X=(2, 3), Y=(3, 2)),
    _e("dot", "product", "dot(x, y)", x=(3,), y=(3,)),
    _e("outer", "product", "outer(x, y)", x=(3,), y=(2,)),
    _e("kron", "product", "kron(X, Y)", X=(2, 2), Y=(2, 2)),
    _e("hadamard", "product", "X * Y", X=(2, 3), Y=(2, 3)),
    _e("quadratic_form", "product", "dot(x, A @ x)", consts={"A": _A3}, x=(3,)),
    _e("trace_X_at_X", "product", "trace(X @ X)", X=(3, 3)),
    # linear algebra
    _e("inv", "linalg", "inv(X)", X=(3, 3)),
    _e("inv_4x4", "linalg", "inv(X)", X=(4, 4)),
    _e("det", "linalg", "det(X)", X=(3, 3)),
    _e("logdet", "linalg", "log(det(X))", X=(3, 3)),
    _e("solve_vector", "linalg", "solve(A, b)", A=(3, 3), b=(3,)),
    _e("solve_matrix", "linalg", "solve(A, B)", A=(2, 2), B=(2, 3)),
    _e("trace_inv", "linalg", "trace(inv(X))", X=(3, 3)),
    _e("inv_at_Y", "linalg", "inv(X) @ Y", X=(2, 2), Y=(2, 2)),
    _e("det_of_square", "linalg", "det(X @ X)", X=(2, 2)),
    _e("inv_of_square", "linalg", "inv(X @ X)", X=(2, 2)),
    # compositions
    _e("layer", "composition", "tanh(W @ x + b)", W=(3, 3), x=(3,), b=(3,)),
    _e("softmax_layer", "composition", "softmax(W @ x)", W=(3, 3), x=(3,)),
    _e("logsumexp_affine", "composition", "logsumexp(A @ x)", consts={"A": _A3}, x=(3,)),
    _e("least_squares", "composition", "mean((X @ w - y) ** 2)", X=(3, 2), w=(2,), y=(3,)),
    _e("cross_entropy", "composition", "-log(softmax(x)[0])", x=(4,)),
    _e("relu_layer", "composition", "relu(W @ x)", W=(2, 3), x=(3,)),
    _e("sigmoid_dot", "composition", "sigmoid(dot(w, x))", w=(3,), x=(3,)),
    _e("norm_of_matvec", "composition", "norm(A @ x)", consts={"A": _A3}, x=(3,)),
    _e("abs_cubed", "composition", "abs(x) ** 3", x=(4,)),
    _e("logdet_plus_trace", "composition", "log(det(X)) + trace(inv(X) @ S)", consts={"S": _A3}, X=(3, 3)),
)

_BY_NAME = {e.name: e for e in CATALOG}


def names() -> list[str]:
    """The catalog's names, in catalog order."""
    return [e.name for e in CATALOG]


def entry(name: str) -> CatalogEntry:
    """The catalog entry called `name`."""
    from ._errors import InvalidArgumentError

    try:
        return _BY_NAME[name]
    except KeyError:
        raise InvalidArgumentError(
            f"name: no catalog function is called {name!r}; the catalog has {', '.join(names())}"
        ) from None


@functools.lru_cache(maxsize=None)
def _build(name: str):
    from ._function import function

    e = _BY_NAME[name]
    return function(e.expr, consts=e.consts or None, **e.shapes)


def run_entry(name: str, *, samples: int = CI_SAMPLES, seed: int = 0):
    """`symjac.check` of one catalog function over `samples` points; returns its Report."""
    from ._check import check

    return check(entry(name).function(), samples=samples, seed=seed)
