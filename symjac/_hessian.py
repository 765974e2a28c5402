"""Exact higher derivatives (Hessians and order k), element-wise, sparse, in torch's layout.

Layout (the Jacobian's, extended): the derivative of order k by the inputs `(W1, ..., Wk)` has
shape `out_shape + W1.shape + ... + Wk.shape`, and entry `[o + i1 + ... + ik]` is
`d^k out[o] / d W1[i1] ... d Wk[ik]`, differentiated by `W1` first. `torch.func.hessian(f)(x)`
(`jacfwd(jacrev(f))`) has this layout: `out_shape + x.shape + x.shape`.

How: the derivative of order k - 1 is differentiated once more, each structural nonzero only by
the symbols of the next input it contains, with `_jacobian._Gradient` (the Jacobian's own
machinery: SymPy's rules, memoised over shared subexpressions). Structural zeros are never
computed. The derivative of a step (`Heaviside`, `sign`: from `relu`, `abs`, `Max`) is
`DiracDelta`, 0 away from the kink; it is written as 0 (at the kink itself the function is not
differentiable and checks are inconclusive). Each order is cached on the Function (`Function.cached`), so `hessian()` reuses the
Jacobian and `derivative(order=3)` reuses the Hessian. Budgets: `Limits.max_derivative_order`,
`max_derivative_entries`, `max_derivative_work`, checked before differentiating.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy

from ._errors import InvalidArgumentError
from ._printable import Printable

__all__ = ["HigherDerivative", "exact_derivative", "resolve_wrt"]


@dataclass(frozen=True, eq=False)
class HigherDerivative(Printable):
    """The exact derivative of order `len(wrt)` of a Function, by the inputs `wrt` in turn.

    `rows`, `cols` and `entries` list its structural nonzeros: `entries[k]` is
    `d^n out.flat[rows[k]] / d wrt[0].flat[cols[k][0]] ... d wrt[n-1].flat[cols[k][n-1]]`.
    """

    function: Any  # symjac.Function
    wrt: tuple  # of symjac._function.Input, one per order
    rows: np.ndarray
    cols: np.ndarray  # (nnz, order) int64
    entries: tuple[sympy.Expr, ...]

    @property
    def order(self) -> int:
        return len(self.wrt)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.function.out_shape + tuple(d for inp in self.wrt for d in inp.shape)

    @property
    def nnz(self) -> int:
        """Number of structural nonzeros."""
        return len(self.entries)

    @property
    def flat_index(self) -> np.ndarray:
        """Position of each nonzero in the flattened dense array."""
        index = self.rows.astype(np.int64)
        for q, inp in enumerate(self.wrt):
            index = index * inp.size + (self.cols[:, q] if self.nnz else np.zeros(0, np.int64))
        return index

    @property
    def sparsity(self) -> np.ndarray:
        """Boolean array of `self.shape`: True where the entry is not identically zero."""
        mask = np.zeros(math.prod(self.shape), dtype=bool)
        mask[self.flat_index] = True
        return mask.reshape(self.shape)

    def to_array(self) -> sympy.ImmutableDenseNDimArray:
        """The dense derivative as a SymPy array of `self.shape`."""
        flat = [sympy.Integer(0)] * math.prod(self.shape)
        for k, e in zip(self.flat_index.tolist(), self.entries):
            flat[k] = e
        return sympy.ImmutableDenseNDimArray(flat, self.shape)

    def evaluate(self, **values: Any) -> np.ndarray:
        """The derivative at a point (or a batch of points) as a NumPy array.

        Batched inputs give `batch_shape + self.shape`; float32 in gives float32 out.

        ```python
        >>> f = symjac.function("x[0] ** 2 * x[1]", x=(2,))
        >>> f.hessian().evaluate(x=[3.0, 5.0])
        array([[10.,  6.],
               [ 6.,  0.]])
        ```
        """
        from ._values import coerce_point

        return evaluate(self, coerce_point(self.function.inputs, values))

    def latex(self, *, mode: str = "plain", delimiters: str = "[", symbol_names=None, index_base: int = 0,
              max_size: int = 8, gradient: str = "row") -> str:
        """The exact entries as a (block) matrix: the derivative read as the Jacobian, by the last
        input of `wrt`, of the order below (block `[i, a]` is `d/d wrt[-1]` of `dF[i]/d wrt[0][a]`).

        ```python
        >>> print(symjac.function("x[0] ** 2 * x[1]", x=(2,)).hessian().latex())
        \\begin{bmatrix}2 x_{1} & 2 x_{0}\\\\2 x_{0} & 0\\end{bmatrix}
        ```
        """
        return self._latex_matrix(mode=mode, delimiters=delimiters, symbol_names=symbol_names,
                                  index_base=index_base, max_size=max_size, gradient=gradient)

    def _repr_latex_(self) -> str:
        return self.latex(mode="display")

    def __repr__(self) -> str:
        by = " d".join(f"{i.name}{i.shape}" for i in self.wrt)
        return f"HigherDerivative(d^{self.order}{self.function.out_shape} / d{by}, shape={self.shape}, nnz={self.nnz})"


def resolve_wrt(function, wrt, order: int) -> tuple:
    """The inputs to differentiate by, one per order, from the caller's spelling.

    `None` (the only input, `order` times), a name (`"X"`: that input `order` times), or a tuple
    of `order` names (`("X", "Y")`: by X, then by Y).
    """
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise InvalidArgumentError(f"order: must be an int >= 1; received {order!r}")
    order = int(order)
    if wrt is None:
        if len(function.inputs) != 1:
            raise InvalidArgumentError(
                f"wrt: this function has inputs {', '.join(function.input_names)}; pass wrt='<name>' "
                f"or a tuple of {order} names such as {tuple(function.input_names[:2])!r} for a mixed derivative"
            )
        names = (function.inputs[0].name,) * order
    elif isinstance(wrt, str):
        names = (wrt,) * order
    elif isinstance(wrt, (tuple, list)) and all(isinstance(n, str) for n in wrt):
        names = tuple(wrt)
        if len(names) != order:
            raise InvalidArgumentError(
                f"wrt: a tuple of names gives one input per order; received {len(names)} names {names!r} "
                f"for order {order}"
            )
    else:
        raise InvalidArgumentError(
            f"wrt: must be an input name or a tuple of names (one per order); received {type(wrt).__name__}"
        )
    return tuple(function.input(n) for n in names)


def exact_derivative(function, wrt: tuple) -> HigherDerivative:
    """The (cached) exact derivative of `function` by the inputs `wrt` in turn (order `len(wrt)`)."""
    key = ("derivative",) + tuple(inp.name for inp in wrt)
    return function.cached(key, lambda: _differentiate(function, wrt))


def _differentiate(function, wrt: tuple) -> HigherDerivative:
    from ._budget import check_derivative
    from ._jacobian import _Gradient

    if len(wrt) == 1:
        jac = function.jacobian(wrt[0].name)
        return HigherDerivative(function, wrt, jac.rows, jac.cols.reshape(-1, 1).astype(np.int64), jac.entries)
    below = exact_derivative(function, wrt[:-1])
    check_derivative(function, wrt, below.entries, function.limits)
    last = wrt[-1]
    position = {s: q for q, s in enumerate(last.flat_symbols)}
    gradient = _Gradient(frozenset(position))
    rows: list[int] = []
    cols: list[tuple[int, ...]] = []
    entries: list[sympy.Expr] = []
    for r, c, e in zip(below.rows.tolist(), below.cols.tolist(), below.entries):
        for s, d in sorted(gradient(e).items(), key=lambda item: position[item[0]]):
            if d.has(sympy.DiracDelta):
                d = d.xreplace({a: sympy.S.Zero for a in d.atoms(sympy.DiracDelta)})
            if d != 0:
                rows.append(r)
                cols.append(tuple(c) + (position[s],))
                entries.append(d)
    return HigherDerivative(
        function,
        wrt,
        np.asarray(rows, dtype=np.int64),
        np.asarray(cols, dtype=np.int64).reshape(len(entries), len(wrt)),
        tuple(entries),
    )


# -- evaluation ---------------------------------------------------------------------------------


def plan(d: HigherDerivative, backend: str = "numpy"):
    """How the nonzeros are evaluated (`_entry_plan.EntryPlan`) and, per dense entry, its column of the
    plan's table (structural zeros read the zero column). Cached on the Function."""
    from ._entry_plan import plan_entries

    def build():
        symbols = [s for inp in d.function.inputs for s in inp.flat_symbols]
        p = plan_entries(list(d.entries), symbols, backend)
        dense = np.full(math.prod(d.shape), p.zero_column, dtype=np.int64)
        dense[d.flat_index] = p.take
        return p, dense

    key = ("derivative-plan",) + tuple(inp.name for inp in d.wrt) + (backend,)
    return d.function.cached(key, build)


def evaluate(d: HigherDerivative, point) -> np.ndarray:
    """Exact values at a validated point: `batch_shape + d.shape`, in the point's dtype."""
    from .backends._numpy import _table

    p, dense = plan(d)
    table = _table(p, d.function, point)
    return np.take(table, dense, axis=-1).reshape(point.batch_shape + d.shape)
