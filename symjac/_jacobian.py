"""The exact Jacobian: element-wise SymPy differentiation, kept sparse, in torch's layout.

Layout (decided here, used everywhere): `J[out_index + in_index] = d out[out_index] / d in[in_index]`,
so `J.shape == out_shape + in_shape`, as `torch.autograd.functional.jacobian` returns it.

Each output entry is differentiated only by the input symbols it contains: structural zeros are
never computed, and the nonzeros are stored as (row, col, expr) with row the flat output index and
col the flat input index. SymPy's matrix calculus is never used here (it is sometimes wrong); this
element-wise form is the ground truth that closed forms are checked against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy

__all__ = ["Jacobian", "exact_jacobian"]


@dataclass(frozen=True, eq=False)
class Jacobian:
    """The exact Jacobian of a Function with respect to one input.

    `rows`, `cols` and `entries` list its structural nonzeros: `entries[k]` is
    `d out.flat[rows[k]] / d wrt.flat[cols[k]]` as a SymPy expression.
    """

    function: Any  # symjac.Function
    wrt: Any  # symjac._function.Input
    rows: np.ndarray
    cols: np.ndarray
    entries: tuple[sympy.Expr, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.function.out_shape + self.wrt.shape

    @property
    def nnz(self) -> int:
        """Number of structural nonzeros."""
        return len(self.entries)

    @property
    def sparsity(self) -> np.ndarray:
        """Boolean array of `self.shape`: True where the entry is not identically zero."""
        mask = np.zeros(self.shape, dtype=bool)
        mask.reshape(-1)[self.rows * self.wrt.size + self.cols] = True
        return mask

    def to_array(self) -> sympy.ImmutableDenseNDimArray:
        """The dense Jacobian as a SymPy array of `self.shape`."""
        flat = [sympy.Integer(0)] * int(np.prod(self.shape, dtype=np.int64))
        for r, c, e in zip(self.rows, self.cols, self.entries):
            flat[int(r) * self.wrt.size + int(c)] = e
        return sympy.ImmutableDenseNDimArray(flat, self.shape)

    def evaluate(self, **values: Any) -> np.ndarray:
        """The Jacobian at a point (or a batch of points) as a NumPy array.

        Batched inputs give `batch_shape + self.shape`; float32 in gives float32 out.

        ```python
        >>> f = symjac.function("X @ X", X=(2, 2))
        >>> f.jacobian().evaluate(X=[[2.0, 3.0], [4.0, 5.0]])[0, 0]
        array([[4., 4.],
               [3., 0.]])
        ```
        """
        from .backends import numpy_backend

        return numpy_backend.evaluate_jacobian(self, values)

    def __repr__(self) -> str:
        return f"Jacobian(d{self.function.out_shape} / d{self.wrt.name}{self.wrt.shape}, shape={self.shape}, nnz={self.nnz})"


def exact_jacobian(function, wrt) -> Jacobian:
    """The (cached) exact Jacobian of `function` with respect to the input `wrt`."""
    return function.cached(("jacobian", wrt.name), lambda: _differentiate(function, wrt))


def _differentiate(function, wrt) -> Jacobian:
    position = {sym: q for q, sym in enumerate(wrt.flat_symbols)}
    rows: list[int] = []
    cols: list[int] = []
    entries: list[sympy.Expr] = []
    for p, expr in enumerate(function.output.reshape(-1)):
        mine = sorted((position[s] for s in expr.free_symbols if s in position))
        for q in mine:
            derivative = expr.diff(wrt.flat_symbols[q])
            if derivative != 0:
                rows.append(p)
                cols.append(q)
                entries.append(derivative)
    return Jacobian(
        function,
        wrt,
        np.asarray(rows, dtype=np.int64),
        np.asarray(cols, dtype=np.int64),
        tuple(entries),
    )
