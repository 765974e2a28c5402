"""What a correct implementation may compute instead of the exact formula: the allowance of verify.

A correct implementation computes a different formula than the exact one. Libraries fuse common
compositions into one primitive whose backward reuses the forward's output, and that formula can
cancel where the exact one does not: torch's `sigmoid` backward is `y * (1 - y)`, which at x = 8
loses 3e-13 of its value in float64 (`1 - y` with y = 0.99966 keeps the rounding of y, about
1e-16, against a value of 3.4e-4), while the exact `exp(-x) / (1 + exp(-x))**2` loses nothing.
Libraries also replace a function by its asymptote beyond a documented threshold: `softplus(x)`
is `x` for x > 20 (torch's default `threshold=20`), 2e-9 from the truth at x = 20.

This module rewrites a spec's output with those fused primitives (`FORMS`), differentiates it the
way such an implementation does (the backward from the forward's output), and returns, per
Jacobian entry and per output entry, a bound on the implementation's error: the running error
bound of its formula (`symjac._tolerance.running_error`, in units of eps) plus the documented
deviations, scaled to eps units of the dtype. Each bound is per entry; nothing depends on other
entries. The result joins the tolerance model's `noise` (see `symjac._tolerance`), so a
correct fused implementation passes and an error beyond what its own formula can lose is caught.

Patterns recognised in the spec's SymPy form (the expression language writes `sigmoid(x)` as
`1 / (1 + exp(-x))`): `(1 + exp(w))**-k` is `sigmoid(-w)**k`; `log(1 + exp(w))` is `softplus(w)`;
symjac's stable primitives `softplus` and `sigmoid` (symjac._stable) map to the same.
A spec without them gets no allowance here (None), and costs nothing.
"""

from __future__ import annotations

import numpy as np
import sympy
from sympy.codegen.cfunctions import expm1

from . import _dag
from ._determinant import det as _det

__all__ = ["FORMS", "implementation_bounds", "unbounded_fused"]

#: The fused primitives whose implementations' formulas differ from the exact ones, and how.
FORMS = {
    "sigmoid": "torch.sigmoid: backward y * (1 - y) from the output y",
    "softplus": "torch.nn.functional.softplus: x beyond threshold (20), backward 1 there; "
    "below it log1p(exp(x)), backward z / (z + 1) with z = exp(x)",
    "expm1": "torch.expm1: backward y + 1 from the output y (cancels where exp(x) is small)",
}


class _Sigmoid(sympy.Function):
    """sigmoid(u), differentiated as an implementation does: `y * (1 - y)` from its output y."""

    def fdiff(self, argindex=1):
        return self * (1 - self)


class _Expm1(sympy.Function):
    """expm1(u), differentiated as torch does: `y + 1` from its output y."""

    def fdiff(self, argindex=1):
        return self + 1


class _Softplus(sympy.Function):
    """softplus(u), differentiated as torch does: the slope `_SoftplusSlope(u)`."""

    def fdiff(self, argindex=1):
        return _SoftplusSlope(self.args[0])


class _SoftplusSlope(sympy.Function):
    """sigmoid(u) as torch's softplus backward computes it (1 beyond the threshold)."""

    def fdiff(self, argindex=1):
        return self * (1 - self)


class _Deviation(sympy.Function):
    """A documented deviation of a primitive from its exact value, as an absolute amount; its value
    in the compiled bound is `_DEVIATIONS[kind](u) / eps(dtype)`, so the running error analysis
    adds it like a rounding (`|term|` of a sum). Its derivative is the deviation of the slope."""

    nargs = 2

    def fdiff(self, argindex=1):
        kind, u = self.args
        if argindex == 1:
            return sympy.Integer(0)
        return _Deviation(sympy.Symbol(str(kind) + "'"), u) if not str(kind).endswith("'") else sympy.Integer(0)


def _sigmoid_of(base: sympy.Expr) -> sympy.Expr | None:
    """`w` when `base` is `1 + exp(w)`, else None."""
    if base.is_Add and len(base.args) == 2:
        one, other = sorted(base.args, key=lambda a: 0 if a == 1 else 1)
        if one == 1 and isinstance(other, sympy.exp):
            return other.args[0]
    return None


def rewrite(expr: sympy.Expr, threshold: float) -> tuple[sympy.Expr, bool]:
    """`expr` with the fused primitives of `FORMS` made explicit, and whether any was found."""
    found = [False]
    memo: dict = {}

    def walk(e):
        if e in memo:
            return memo[e]
        if e.is_Atom:
            memo[e] = e
            return e
        args = tuple(walk(a) for a in e.args)
        out = None
        name = type(e).__name__
        if e.is_Pow and args[1].is_Integer and args[1] < 0:
            w = _sigmoid_of(args[0])
            if w is not None:
                out = _Sigmoid(-w) ** (-args[1])
        elif isinstance(e, sympy.log):
            w = _sigmoid_of(args[0])
            if w is not None:
                out = _softplus(w, threshold)
        elif name == "softplus":
            out = _softplus(args[0], threshold)
        elif name == "sigmoid":
            out = _Sigmoid(args[0])
        elif name == "expm1":
            out = _Expm1(args[0])
        if out is None:
            out = e if args == e.args else e.func(*args)
        else:
            found[0] = True
        memo[e] = out
        return out

    return walk(expr), found[0]


def _softplus(w: sympy.Expr, threshold: float) -> sympy.Expr:
    return _Softplus(w) + _Deviation(sympy.Symbol("softplus"), w)


def _numeric(expr: sympy.Expr, dtype, threshold: float) -> sympy.Expr:
    """The bound expression with the internal primitives written as code can evaluate them."""
    from ._tolerance import eps

    inv = sympy.Float(1.0 / eps(dtype))
    t = sympy.Float(threshold)

    def deviation(kind, u):
        # beyond the threshold the value is u (off by log1p(exp(-u)) <= exp(-u)) and the slope is
        # 1 (off by sigmoid(-u) <= exp(-u))
        return sympy.Piecewise((sympy.exp(-u) * inv, u > t), (0, True))

    return expr.replace(_Deviation, deviation).replace(
        _Sigmoid, lambda u: 1 / (1 + sympy.exp(-u))
    ).replace(_SoftplusSlope, lambda u: 1 / (1 + sympy.exp(-u))).replace(
        _Expm1, lambda u: expm1(u)  # a node of its own: expm1(u) + 1 keeps its rounding
    ).replace(
        _Softplus, lambda u: sympy.log(1 + sympy.exp(u))
    )


def implementation_bounds(f, dtype, threshold: float, *, jacobian: bool):
    """Compiled per-entry bounds (units of eps(dtype)) of what a fused implementation may differ by,
    for the Jacobian's structural nonzeros (`jacobian=True`) or the outputs; `(compiled, rows, cols)`
    or None when the spec has no fused primitive (cached on the Function per dtype)."""

    def build():
        from ._budget import written_sizes
        from ._tolerance import MAX_RUNNING_TOTAL, running_error

        outputs = list(f.output.reshape(-1))
        # Outputs that hold a determinant node (symjac._determinant) go without: their bounds, built
        # through SymPy's evaluated constructors and tree walks, took about 10 s an entry at 20 x 20
        # (`det(sigmoid(X))`); their tolerance rests on the measured noise and the running bounds.
        opaque = _dag.holds(_dag.has_symbols(outputs), (_det,))
        rewritten = [(e, False) if opaque and opaque[e] else rewrite(e, threshold) for e in outputs]
        if not any(found for _, found in rewritten):
            return None
        symbols = [s for inp in f.inputs for s in inp.flat_symbols]
        # Within the running bounds' budget, in written-out nodes of the exact entries the bounds
        # are built from (and at most MAX_RUNNING_TOTAL // 10 entries): a bound is rebuilt from
        # the rewritten spec entry by entry, through SymPy's tree walks (`replace`), so its cost
        # grows with the written-out size (`log(det(sigmoid(X)))` at 16 x 16 ran for minutes).
        cells, budget = [], MAX_RUNNING_TOTAL
        if jacobian:
            offset = 0
            for inp in f.inputs:
                jac = f.jacobian(inp.name)
                sizes = written_sizes(list(jac.entries), refuse=False)
                for r, c, size in zip(jac.rows, jac.cols, sizes):
                    e, found = rewritten[int(r)]
                    if not found:
                        continue
                    budget -= size
                    if budget < 0 or len(cells) >= MAX_RUNNING_TOTAL // 10:
                        break
                    d = sympy.diff(e, symbols[offset + int(c)])
                    cells.append((0, int(r), offset + int(c), _numeric(running_error(d), dtype, threshold)))
                offset += inp.size
        else:
            for p, ((e, found), size) in enumerate(zip(rewritten, written_sizes(outputs, refuse=False))):
                if found:
                    budget -= size
                    if budget < 0:
                        break
                    cells.append((0, p, 0, _numeric(running_error(e), dtype, threshold)))
        cells = [(0, r, c, e) for _, r, c, e in cells]
        compiled, (rows, cols), _ = _compile_bounds_exprs(cells, f)
        return None if compiled is None else (compiled, rows, cols)

    return f.cached(("implementation-bounds", str(np.dtype(dtype)), float(threshold), jacobian), build)


def unbounded_fused(f, dtype, threshold: float):
    """`(out_size, in_size)` mask of the Jacobian's structural nonzeros, all inputs side by side, in
    outputs that hold a fused primitive (`FORMS`, as `rewrite` finds them) where `implementation_bounds`
    has no bound (an output that holds a `det` node, or one past the budget): what a fused
    implementation may lose there is not bounded, so a torch route's disagreement there alone is no
    verdict (`_engine`); None when there is no such entry (cached on the Function per dtype)."""
    def build():
        outputs = list(f.output.reshape(-1))
        held = np.array([rewrite(e, threshold)[1] for e in outputs], dtype=bool)  # the forms `rewrite` finds
        if not held.any():
            return None
        mask = np.zeros((len(outputs), sum(inp.size for inp in f.inputs)), dtype=bool)
        offset = 0
        for inp in f.inputs:
            jac = f.jacobian(inp.name)
            rows, cols = np.asarray(jac.rows, dtype=np.intp), np.asarray(jac.cols, dtype=np.intp)
            keep = held[rows] if rows.size else rows.astype(bool)
            mask[rows[keep], offset + cols[keep]] = True
            offset += inp.size
        found = implementation_bounds(f, dtype, threshold, jacobian=True)
        if found is not None:
            _, bounded_rows, bounded_cols = found
            mask[np.asarray(bounded_rows, dtype=np.intp), np.asarray(bounded_cols, dtype=np.intp)] = False
        mask.flags.writeable = False
        return mask if mask.any() else None

    return f.cached(("unbounded-fused", str(np.dtype(dtype)), float(threshold)), build)


def _compile_bounds_exprs(cells, f):
    """Compile ready bound expressions `(0, row, col, expr)`: `(compiled or None, (rows, cols), 0)`."""
    from ._codegen import compile_entries
    from ._errors import InvalidExpressionError

    if not cells:
        return None, ([], []), 0
    symbols = [s for inp in f.inputs for s in inp.flat_symbols]
    try:
        compiled = compile_entries([e for *_, e in cells], symbols, "numpy")
    except InvalidExpressionError:
        return None, ([], []), 0
    return compiled, (np.array([r for _, r, _, _ in cells]), np.array([c for _, _, c, _ in cells])), 0
