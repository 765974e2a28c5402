"""The exact Jacobian: element-wise SymPy differentiation, kept sparse, in torch's layout.

Layout (decided here, used everywhere): `J[out_index + in_index] = d out[out_index] / d in[in_index]`,
so `J.shape == out_shape + in_shape`, as `torch.autograd.functional.jacobian` returns it.

Each output entry is differentiated only by the input symbols it contains: structural zeros are
never computed, and the nonzeros are stored as (row, col, expr) with row the flat output index and
col the flat input index. SymPy's matrix calculus is never used here (it is sometimes wrong); this
element-wise form is the ground truth that closed forms are checked against.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy
from sympy.core.function import ArgumentIndexError

from . import _adjoint, _dag
from ._products import product, product_all, total
from ._errors import InvalidExpressionError
from ._printable import Printable

__all__ = ["Jacobian", "Jacobians", "exact_jacobian"]


@dataclass(frozen=True, eq=False)
class Jacobian(Printable):
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

    def latex(
        self,
        *,
        mode: str = "plain",
        delimiters: str = "[",
        symbol_names=None,
        index_base: int = 0,
        max_size: int = 8,
        gradient: str = "row",
    ) -> str:
        """The exact entries as a (block) matrix in torch's layout: block `[i, j]` is `dF[i, j]/dX`.

        Options as for [`symjac.latex`][symjac.latex].

        ```python
        >>> print(symjac.function("sum(X)", X=(2, 2)).jacobian().latex())
        \\begin{bmatrix}1 & 1\\\\1 & 1\\end{bmatrix}
        ```
        """
        return self._latex_matrix(mode=mode, delimiters=delimiters, symbol_names=symbol_names,
                                  index_base=index_base, max_size=max_size, gradient=gradient)

    def __repr__(self) -> str:
        return f"Jacobian(d{self.function.out_shape} / d{self.wrt.name}{self.wrt.shape}, shape={self.shape}, nnz={self.nnz})"


class Jacobians(dict):
    """One exact Jacobian per input (`Function.jacobians()`): a dict `{input name: Jacobian}` that
    also evaluates them all at once.

    `evaluate(**point)` returns `{input name: array}`, each exactly what that Jacobian's own
    `evaluate` returns (same entries, shapes, dtype, batch and errors), from one shared NumPy plan:
    the point is validated once, the inputs transposed once, and an atom that several Jacobians read
    (`tanh(u_i)` in the Jacobians of `tanh(W @ x + b)` by `W`, `x` and `b`) computed once.

    ```python
    >>> f = symjac.function("x * y", x=(), y=())
    >>> f.jacobians().evaluate(x=2.0, y=3.0)
    {'x': array(3.), 'y': array(2.)}
    ```
    """

    def __init__(self, function, jacobians: dict):
        super().__init__(jacobians)
        self.function = function

    def evaluate(self, **values: Any) -> dict[str, np.ndarray]:
        """Every Jacobian of the dict at a point (or a batch of points): `{name: array}`."""
        from .backends import numpy_backend

        shared = [(name, jac) for name, jac in self.items()
                  if isinstance(jac, Jacobian) and jac.function is self.function]
        arrays = numpy_backend.evaluate_jacobians(self.function, [jac for _, jac in shared], values)
        found = {name: array for (name, _), array in zip(shared, arrays)}
        # a value put into the dict from elsewhere is evaluated on its own
        return {name: found[name] if name in found else jac.evaluate(**values) for name, jac in self.items()}

    def __reduce__(self):
        return (Jacobians, (self.function, dict(self)))


def exact_jacobian(function, wrt) -> Jacobian:
    """The (cached) exact Jacobian of `function` with respect to the input `wrt`."""
    try:
        return function.cached(("jacobian", wrt.name), lambda: _differentiate(function, wrt))
    except RecursionError:
        # symjac's own walk is iterative; SymPy's rules for nodes it differentiates itself
        # (`Abs`, `Max`, `Piecewise`) and its assumption queries still recurse over depth
        raise InvalidExpressionError(
            f"expr: differentiating by {wrt.name} hit Python's recursion limit inside SymPy "
            "(its derivative rules and assumption queries recurse over the expression's depth); "
            "use fewer nested levels"
        ) from None


def _differentiate(function, wrt) -> Jacobian:
    symbols = wrt.flat_symbols
    position = {sym: q for q, sym in enumerate(symbols)}
    gradient = _Gradient(frozenset(symbols))
    rows: list[int] = []
    cols: list[int] = []
    entries: list[sympy.Expr] = []
    outputs = list(function.output.reshape(-1))
    heights = _dag.height(outputs)
    # a derivative equal to a node of the function is that node (one object per distinct node)
    gradient.made.update((node, node) for node in heights)
    free: dict = {}
    for p, expr in enumerate(outputs):
        if heights[expr] >= _adjoint.DEEP:
            found = _adjoint.gradient(expr, gradient.targets, free=free,  # deep: reverse accumulation
                                      memo=function.cached(("adjoints",), dict))
        else:
            found = gradient(expr)
        for s, derivative in sorted(found.items(), key=lambda item: position[item[0]]):
            if derivative != 0:
                rows.append(p)
                cols.append(position[s])
                entries.append(derivative)
    return Jacobian(
        function,
        wrt,
        np.asarray(rows, dtype=np.int64),
        np.asarray(cols, dtype=np.int64),
        tuple(entries),
    )


class _Gradient:
    """All first derivatives of an expression by the target symbols it contains, in one pass.

    `gradient(expr)` is `{s: expr.diff(s)}` for every target symbol `s` in `expr` (zeros may be
    included), built with SymPy's own rules for `Add`, `Mul`, `Pow` and applied functions
    (`Function._eval_derivative`), applied to whole gradients instead of one symbol at a time, and
    memoised per subexpression: a subexpression shared by many output entries (the determinant in
    every entry of `inv(X)`) is differentiated once, and each output entry is walked once rather
    than once per symbol. Every other node (`Abs`, `Max`, `Piecewise`, ...) is handed to
    `expr.diff(s)` unchanged. The result is the same expression SymPy's `expr.diff(s)` builds (the
    same rules, combined in the same order; products and sums by `_products.product` / `total`, which
    build SymPy's own node without its `flatten` where the node is canonical already);
    tests/test_performance_paths.py checks it.
    """

    def __init__(self, targets: frozenset):
        self.targets = targets
        self.memo: dict[sympy.Basic, dict] = {}
        # every product and sum built here, one object per distinct node: `_products` builds nodes
        # without SymPy's cache, and equal nodes that are distinct objects cost a deep `==` in
        # every later dict look-up (the plan, the code generator)
        self.made: dict = {}

    def _one(self, node: sympy.Expr) -> sympy.Expr:
        return self.made.setdefault(node, node)

    def _product(self, a, b) -> sympy.Expr:
        return self._one(product(a, b))

    def __call__(self, expr: sympy.Basic) -> dict:
        # One iterative walk (symjac._dag), children first: the depth of the expression (a
        # 1,000-step recurrence) never reaches Python's recursion limit. `self(arg)` in the rules
        # below is then a look-up of a child's gradient.
        memo = self.memo
        found = memo.get(expr)
        if found is None:
            _dag.evaluate((expr,), self._gradient, memo=memo, children=self._children)
            found = memo[expr]
        return found

    def _children(self, expr: sympy.Basic) -> tuple:
        """The nodes whose gradients the rule for `expr` combines (none for `expr.diff` fallbacks)."""
        if expr.is_Add or expr.is_Mul or expr.is_Pow:
            return expr.args
        if isinstance(expr, sympy.Function) and type(expr)._eval_derivative is _FUNCTION_DERIVATIVE:
            return expr.args
        return ()

    def _gradient(self, expr: sympy.Basic) -> dict:
        self.made.setdefault(expr, expr)  # a derivative equal to a node of the function: that node
        if expr.is_Symbol:
            return {expr: sympy.S.One} if expr in self.targets else {}
        if not expr.args or expr.is_Number:
            return {}
        if expr.is_Add:
            return self._add(expr)
        if expr.is_Mul:
            return self._mul(expr)
        if expr.is_Pow:
            return self._pow(expr)
        if isinstance(expr, sympy.Function) and type(expr)._eval_derivative is _FUNCTION_DERIVATIVE:
            return self._function(expr)
        mine = _dag.free_symbols((expr,))[expr] & self.targets
        return {s: expr.diff(s) for s in mine}

    def _add(self, expr) -> dict:
        # Add._eval_derivative: Add(*[a.diff(s) for a in args]).
        parts: dict = {}
        for arg in expr.args:
            for s, d in self(arg).items():
                parts.setdefault(s, []).append(d)
        return {s: ds[0] if len(ds) == 1 else self._one(total(ds)) for s, ds in parts.items()}

    def _mul(self, expr) -> dict:
        # Mul._eval_derivative: Add of reduce(mul, args[:i] + [args[i].diff(s)] + args[i+1:], 1).
        args = list(expr.args)
        parts: dict = {}
        for i, arg in enumerate(args):
            grad = self(arg)
            if not grad:
                continue
            others = args[:i] + args[i + 1:]
            for s, d in grad.items():
                if not d:
                    continue
                if d is sympy.S.One and len(others) == 1:
                    term = others[0]  # reduce(mul, [1, other], 1) is `other` itself
                elif d is sympy.S.One:  # reduce(mul, others): one node where the others are canonical
                    term = self._one(product_all(others))
                else:
                    # without reduce's start value 1: `1 * a` is `a` itself, one multiplication less
                    term = functools.reduce(self._product, args[:i] + [d] + args[i + 1:])
                parts.setdefault(s, []).append(term)
        return {s: terms[0] if len(terms) == 1 else self._one(total(terms)) for s, terms in parts.items()}

    def _pow(self, expr) -> dict:
        # Pow._eval_derivative: self * (dexp * log(base) + dbase * exp / base).
        base, exp = expr.args
        dbase, dexp = self(base), self(exp)
        out = {}
        for s in dbase.keys() | dexp.keys():
            db, de = dbase.get(s, sympy.S.Zero), dexp.get(s, sympy.S.Zero)
            if de == 0:  # the dexp * log(base) term is 0: expr * (db * exp / base), SymPy's nodes
                out[s] = self._one(product(expr, product(product(db, exp), sympy.Pow(base, sympy.S.NegativeOne))))
            else:
                out[s] = expr * (de * sympy.log(base) + db * exp / base)
        return out

    def _function(self, expr) -> dict:
        # Function._eval_derivative: Add(*[f.fdiff(i) * a.diff(s) for each argument a]).
        parts: dict = {}
        for i, arg in enumerate(expr.args, start=1):
            grad = {s: d for s, d in self(arg).items() if _nonzero(d)}
            if not grad:
                continue
            try:
                rule = _adjoint.FDIFF.get(type(expr))
                df = rule(expr) if rule is not None else expr.fdiff(i)
            except ArgumentIndexError:
                df = sympy.Function.fdiff(expr, i)
            for s, d in grad.items():
                parts.setdefault(s, []).append(self._product(df, d))
        return {s: terms[0] if len(terms) == 1 else self._one(total(terms)) for s, terms in parts.items()}


_FUNCTION_DERIVATIVE = sympy.Function._eval_derivative



def _nonzero(d: sympy.Expr) -> bool:
    """`not d.is_zero`, as `Function._eval_derivative` asks it, decided from the form of `d`: SymPy's
    assumption query walks the whole of `d` (10 of the 27 s of differentiating attention at n = 6,
    and it recurses over depth). A term `df * d` with `d` zero in value but not in form is kept,
    which changes no value; a `d` that is 0 in form (SymPy's automatic simplification) is dropped.
    A symbol's own derivative, 1, is answered without SymPy's comparison (which sympifies the 0)."""
    return d is _ONE or d != 0


_ONE = sympy.S.One
