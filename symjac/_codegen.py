"""Generated code: flat lists of SymPy expressions compiled for NumPy and torch.

Whole matrices are never compiled (NumPy builds ragged arrays from constant entries; a torch
matrix literal fixes the dtype and cuts the autograd graph). Instead a flat list of scalar entries
is printed as one Python function by `symjac._source`, from the DAG of all entries together: each
distinct node printed once, shared nodes and deep levels as assignments, every constant folded to a
number once, and the backends assemble the result (broadcast, cast to the point's dtype, reshape).

The generated function takes one argument per scalar input symbol, in declaration order, and
returns the list of entries; each entry is an array/tensor of the batch shape or a Python number.
Symbol names never reach the generated source; numbers are Python numbers, so a float32 point is
not promoted by `numpy.float64` constants and torch never sees `torch.sqrt(2)` of a Python int.

`plan_entries` decides what needs generated code at all: entries that are input entries,
constants or low-degree polynomials in the inputs are evaluated by the backends as whole arrays
(see `EntryPlan`); only the rest is compiled.
"""

from __future__ import annotations

import functools
import itertools
import linecache
import math
from dataclasses import dataclass
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy

from . import _dag, _source, _symengine
from ._errors import InvalidExpressionError

__all__ = ["Compiled", "EntryPlan", "compile_entries", "fold_constants", "fold_constants_all", "plan_entries"]


@dataclass(frozen=True, eq=False)
class Compiled:
    """A compiled flat entry list: the callable and its generated source (kept for reports)."""

    backend: str
    fn: Callable
    source: str
    n_entries: int
    n_args: int


def fold_constants(expr: sympy.Expr) -> sympy.Expr:
    """Replace every constant subexpression that is not a plain integer/rational by a float.

    One pass, bottom-up, each distinct subexpression visited once (the iterative walk of
    `symjac._dag`: no recursion over the expression's depth).
    """
    return fold_constants_all((expr,))[0]


def fold_constants_all(exprs: Sequence[sympy.Expr]) -> list[sympy.Expr]:
    """`fold_constants` of each of `exprs`, with one memo across all of them (one walk of the DAG)."""
    memo: dict = {}  # node -> (folded node, whether it holds a symbol)

    def fold(e) -> tuple[sympy.Basic, bool]:
        if e.is_Symbol:
            return (e, True)
        if not e.args:
            return (_fold_constant(e), False)
        parts = [memo[a] for a in e.args]
        if any(has for _, has in parts):
            args = tuple(a for a, _ in parts)
            return (e if args == e.args else e.func(*args), True)
        return (_fold_constant(e), False)

    _dag.evaluate(exprs, fold, memo=memo)
    return [memo[e][0] for e in exprs]


def _fold_constant(e: sympy.Basic) -> sympy.Basic:
    folded = _source.fold_constant(e)
    return sympy.Float(folded, 17) if folded.is_Float else folded


def _erf(x):
    """`math.erf` entry by entry, keeping the dtype (float32 stays float32)."""
    array = np.asarray(x)
    dtype = array.dtype if array.dtype.kind == "f" else np.float64
    return np.vectorize(math.erf, otypes=[dtype])(array)


def _as_tensor(value, like):
    import torch

    if isinstance(value, torch.Tensor):
        return value
    if isinstance(like, torch.Tensor):
        return torch.as_tensor(value, dtype=like.dtype, device=like.device)
    return torch.as_tensor(value)


def _where(condition, value, other):
    """`torch.where` that keeps float64 when both branches are numbers (torch would make them float32)."""
    import torch

    if not isinstance(value, torch.Tensor) and not isinstance(other, torch.Tensor):
        value = torch.as_tensor(value, dtype=torch.float64, device=condition.device)
    return torch.where(condition, value, other)


def _imag(value):
    """The imaginary part of a real tensor (torch.imag takes complex tensors only): zero, NaN kept."""
    import torch

    value = value if isinstance(value, torch.Tensor) else torch.as_tensor(value, dtype=torch.float64)
    return torch.where(torch.isnan(value), value, torch.zeros_like(value))


#: The SymPy node classes generated code is printed from (exact types: a subclass could print
#: itself as any code). Anything else is refused before printing (`symjac._source`).
_CODE_NODES: frozenset = _source.CODE_NODES

#: Generated code nests at most this many operations in one statement (`symjac._source`).
MAX_NESTING = _source.MAX_NESTING


def refuse_unknown_nodes(exprs: Sequence[sympy.Basic]) -> None:
    """Refuse any node whose exact class is not in `_CODE_NODES` (one walk over the DAG)."""
    for node in _dag.postorder(exprs):
        if type(node) not in _CODE_NODES:
            _source._refuse(node)


def compile_entries(exprs: Sequence[sympy.Expr], symbols: Sequence[sympy.Symbol], backend: str) -> Compiled:
    """Compile `exprs` (a flat list) into a function of `symbols` for `backend` ("numpy" or "torch")."""
    if backend not in ("numpy", "torch"):
        raise ValueError(f"backend: expected 'numpy' or 'torch', received {backend!r}")
    if _symengine.enabled():  # opt-in second printer (SymEngine's cse), a cross-check of this one
        folded = fold_constants_all(exprs)
        refuse_unknown_nodes(folded)
        if not folded or max(_dag.height(folded)[e] for e in folded) <= MAX_NESTING:
            source = _symengine.compile_source(folded, symbols, backend)
            if source is not None:
                return Compiled(backend, _exec(source, backend), source, len(folded), len(symbols))
    source = _source.generate(exprs, symbols, backend)
    return Compiled(backend, _exec(source, backend), source, len(exprs), len(symbols))


_GENERATED = itertools.count()


def _exec(source: str, backend: str) -> Callable:
    """Compile generated source into its function, registering the source for tracebacks."""
    filename = f"<symjac-generated-{next(_GENERATED)}>"
    namespace: dict[str, Any] = {"numpy": np, "_erf": _erf}
    if backend == "torch":
        import torch

        from ._stable import torch_helpers

        namespace.update(torch=torch, _as_tensor=_as_tensor, _where=_where, _imag=_imag, **torch_helpers())
    else:
        from ._stable import numpy_helpers

        namespace.update(numpy_helpers())
    try:
        code = compile(source, filename, "exec")
    except (SyntaxError, RecursionError, MemoryError) as error:  # pragma: no cover - bounded nesting
        raise InvalidExpressionError(
            f"expr: the generated {backend} code for this expression could not be compiled by Python: "
            f"{type(error).__name__}"
        ) from None
    exec(code, namespace)  # noqa: S102 - our own printed source
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return namespace["_generated"]


@dataclass(frozen=True, eq=False)
class EntryPlan:
    """How a flat entry list is evaluated without a Python loop over its entries.

    Most Jacobian entries of the functions people check are constants (`A @ X`, `sum(X)`) or
    low-degree polynomials in the inputs (`X @ X`: `X[1, 0]`, `X[0, 0] + X[1, 1]`; `X @ X @ X`:
    sums of products of two entries). Those are evaluated together, as gathers, products and one
    segmented sum over all their monomials; only the remaining entries go through generated code.
    A backend builds a table of columns, `[inputs | polynomials | constants | generated | 0]`, and
    every entry is then one column of it: `table[..., take]`.

    - `n_inputs`: the inputs' scalar entries, all inputs flattened and side by side (`x`);
    - `monomials` `(T, D)`: input indices of each monomial's factors, padded with `n_inputs`, the
      index of a column of ones; polynomial `i` is
      `offsets[i] + sum(coefs[t] * prod(x1[monomials[t]]) for t in starts[i]:starts[i + 1])`
      with `x1 = [x | 1]`;
    - `constants`: the values of the constant entries (float64, as generated code would fold them);
    - `code`: generated code for the remaining entries (`None` if there are none);
    - `take`: for each entry of the list, its column of the table.
    """

    n_inputs: int
    monomials: np.ndarray
    coefs: np.ndarray
    starts: np.ndarray
    offsets: np.ndarray | None
    constants: np.ndarray
    code: Compiled | None
    take: np.ndarray

    @property
    def n_polynomials(self) -> int:
        return len(self.starts)

    @property
    def degree(self) -> int:
        return self.monomials.shape[1]

    @property
    def n_columns(self) -> int:
        """Columns of the table, the final zero column included."""
        n_code = self.code.n_entries if self.code is not None else 0
        return self.n_inputs + self.n_polynomials + len(self.constants) + n_code + 1

    @property
    def zero_column(self) -> int:
        return self.n_columns - 1

    @functools.cached_property
    def unit_coefs(self) -> bool:
        return bool(np.all(self.coefs == 1.0))

    @functools.cached_property
    def one_term_each(self) -> bool:
        """Every polynomial is a single monomial: the segmented sum is the identity."""
        return len(self.monomials) == self.n_polynomials

    @functools.cached_property
    def segment(self) -> np.ndarray:
        """For each monomial, the index of its polynomial."""
        counts = np.diff(np.append(self.starts, len(self.monomials)))
        return np.repeat(np.arange(self.n_polynomials), counts)


#: Polynomial entries above this degree, or with more monomials, go to generated code instead.
MAX_DEGREE = 4
MAX_MONOMIALS_PER_ENTRY = 256


def _constant_value(expr: sympy.Expr) -> float | None:
    """The float a generated function would return for a constant entry, or None if not finite."""
    value = fold_constants(expr)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _constant(e: sympy.Basic, free: dict | None) -> bool:
    """No symbol in `e`, from the walk's memo when it holds `e` (SymPy's `free_symbols` re-walks
    shared subexpressions: 8 of the 10 s of planning a 60-step recurrence's Jacobian)."""
    if free is not None and e in free:
        return not free[e]
    return not e.free_symbols


def _monomial(term: sympy.Expr, position: dict, free: dict | None = None) -> tuple[float, list[int]] | None:
    """`term` as `(coefficient, [input index per factor])`, or None if it is not a monomial."""
    factors = term.args if term.is_Mul else (term,)
    coef: list[sympy.Expr] = []
    indices: list[int] = []
    for factor in factors:
        if factor.is_Symbol:
            if factor not in position:
                return None
            indices.append(position[factor])
        elif factor.is_Pow and factor.base.is_Symbol and factor.exp.is_Integer and 1 <= factor.exp <= MAX_DEGREE:
            if factor.base not in position:
                return None
            indices.extend([position[factor.base]] * int(factor.exp))
        elif _constant(factor, free):
            coef.append(factor)
        else:
            return None
    if len(indices) > MAX_DEGREE:
        return None
    value = _constant_value(sympy.Mul(*coef)) if coef else 1.0
    return None if value is None else (value, indices)


def _polynomial(expr: sympy.Expr, position: dict, free: dict | None = None
                ) -> tuple[list[tuple[float, list[int]]], float] | None:
    """`expr` as `([(coefficient, factor indices)], offset)` if it is a polynomial in the inputs.

    A polynomial here: a sum of monomials `c * x_a * x_b ...` (`c` a finite constant, at most
    `MAX_DEGREE` factors, integer powers of one symbol counted as repeated factors) and constants,
    with at most `MAX_MONOMIALS_PER_ENTRY` monomials. Anything else gives None.
    """
    args = expr.args if expr.is_Add else (expr,)
    if len(args) > MAX_MONOMIALS_PER_ENTRY:
        return None
    monomials: list[tuple[float, list[int]]] = []
    offset = 0.0
    for term in args:
        if _constant(term, free):
            value = _constant_value(term)
            if value is None:
                return None
            offset += value
            continue
        monomial = _monomial(term, position, free)
        if monomial is None:
            return None
        monomials.append(monomial)
    return monomials, offset


def plan_entries(exprs: Sequence[sympy.Expr], symbols: Sequence[sympy.Symbol], backend: str) -> EntryPlan:
    """Sort `exprs` into input entries, polynomials, constants and entries left to generated code.

    Equal entries are evaluated once. Only the last kind is compiled (for `backend`, as in
    `compile_entries`), so a Jacobian that is polynomial in the inputs compiles no code at all.
    """
    position = {s: q for q, s in enumerate(symbols)}
    n_inputs = len(position)
    unique: dict = {}
    first_of = [unique.setdefault(e, len(unique)) for e in exprs]
    free = _dag.free_symbols(unique)
    kinds: list[tuple[str, Any]] = []
    for expr in unique:
        if expr.is_Symbol and expr in position:
            kinds.append(("input", position[expr]))
            continue
        if not free[expr]:
            value = _constant_value(expr)
            if value is not None:
                kinds.append(("constant", value))
                continue
        poly = _polynomial(expr, position, free) if (expr.is_Add or expr.is_Mul or expr.is_Pow) else None
        kinds.append(("polynomial", poly) if poly is not None else ("code", expr))

    polys = [v for k, v in kinds if k == "polynomial"]
    constants = [v for k, v in kinds if k == "constant"]
    generated = [v for k, v in kinds if k == "code"]
    bases = {"polynomial": n_inputs, "constant": n_inputs + len(polys), "code": n_inputs + len(polys) + len(constants)}
    counters = {"polynomial": 0, "constant": 0, "code": 0}
    column_of_unique = []
    for kind, value in kinds:
        if kind == "input":
            column_of_unique.append(value)
        else:
            column_of_unique.append(bases[kind] + counters[kind])
            counters[kind] += 1

    flat = [m for monomials, _ in polys for m in monomials]
    degree = max((len(idx) for _, idx in flat), default=1)
    monomials = np.full((len(flat), degree), n_inputs, dtype=np.int64)
    for t, (_, idx) in enumerate(flat):
        monomials[t, : len(idx)] = idx
    starts = np.cumsum([0] + [len(m) for m, _ in polys[:-1]]) if polys else np.zeros(0)
    offsets = np.array([o for _, o in polys], dtype=np.float64)
    code = compile_entries(generated, symbols, backend) if generated else None
    return EntryPlan(
        n_inputs=n_inputs,
        monomials=monomials,
        coefs=np.array([c for c, _ in flat], dtype=np.float64),
        starts=np.asarray(starts, dtype=np.int64),
        offsets=offsets if np.any(offsets != 0.0) else None,
        constants=np.asarray(constants, dtype=np.float64),
        code=code,
        take=np.asarray(column_of_unique, dtype=np.int64)[np.asarray(first_of, dtype=np.int64)]
        if exprs else np.zeros(0, dtype=np.int64),
    )
