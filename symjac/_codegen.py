"""Generated code: flat lists of SymPy expressions lambdified for NumPy and torch.

Whole matrices are never lambdified (NumPy builds ragged arrays from constant entries; SymPy's torch
printer wraps matrices in `torch.tensor(...)`, which fixes the dtype and cuts the autograd graph).
Instead a flat list of scalar entries is compiled with common-subexpression elimination, and the
backends assemble the result (broadcast, cast to the point's dtype, reshape).

The generated function takes one argument per scalar input symbol, in declaration order, and
returns the list of entries; each entry is an array/tensor of the batch shape or a Python number.
Symbol names never reach the generated source (`dummify=True`); numeric constants are folded to
Python floats first, so a float32 point is not promoted by `numpy.float64` constants and torch never
sees `torch.sqrt(2)` of a Python int.
"""

from __future__ import annotations

import functools
import linecache
import math
from dataclasses import dataclass
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy
from sympy.printing.numpy import NumPyPrinter

__all__ = ["Compiled", "EntryPlan", "compile_entries", "fold_constants", "plan_entries"]


@dataclass(frozen=True, eq=False)
class Compiled:
    """A compiled flat entry list: the callable and its generated source (kept for reports)."""

    backend: str
    fn: Callable
    source: str
    n_entries: int
    n_args: int


def fold_constants(expr: sympy.Expr) -> sympy.Expr:
    """Replace every constant subexpression that is not a plain integer/rational by a float."""
    if not isinstance(expr, sympy.Expr):  # a condition of a Piecewise, `True`: folded inside only
        if expr.is_Atom or not expr.free_symbols:
            return expr
        args = tuple(fold_constants(a) for a in expr.args)
        return expr if args == expr.args else expr.func(*args)
    if not expr.free_symbols:
        if expr.is_Integer or expr.is_Rational:
            return expr
        return sympy.Float(expr.evalf(17), 17)
    if expr.is_Atom:
        return expr
    args = tuple(fold_constants(a) for a in expr.args)
    if args == expr.args:
        return expr
    return expr.func(*args)


@functools.cache
def _torch_printer_class():
    # sympy.printing.pytorch imports torch at import time: load it only when torch code is made.
    from sympy.printing.pytorch import TorchPrinter

    class _TorchPrinter(TorchPrinter):
        """SymPy's torch printer, with the few functions it prints for tensors only fixed."""

        def _print_Max(self, expr):
            return self._reduce_pairwise("torch.maximum", expr.args)

        def _print_Min(self, expr):
            return self._reduce_pairwise("torch.minimum", expr.args)

        def _reduce_pairwise(self, fn, args):
            # torch.maximum needs two tensors; `_as_tensor` lifts a Python number next to a tensor.
            text = self._print(args[0])
            for arg in args[1:]:
                other = self._print(arg)
                text = f"{fn}(_as_tensor({text}, {other}), _as_tensor({other}, {text}))"
            return text

        def _print_Heaviside(self, expr):
            x = self._print(expr.args[0])
            half = self._print(expr.args[1]) if len(expr.args) > 1 else "0.5"
            return f"torch.heaviside({x}, _as_tensor({half}, {x}))"

        def _print_Float(self, expr):
            return repr(float(expr))

    return _TorchPrinter


class _NumPyPrinter(NumPyPrinter):
    def _print_Float(self, expr):
        return repr(float(expr))


def _as_tensor(value, like):
    import torch

    if isinstance(value, torch.Tensor):
        return value
    if isinstance(like, torch.Tensor):
        return torch.as_tensor(value, dtype=like.dtype, device=like.device)
    return torch.as_tensor(value)


def _numpy_namespace() -> list:
    # The module's own attributes, not `modules=["numpy"]`: lambdify then runs `from numpy import *`,
    # which loads NumPy's lazy submodules (f2py, testing, ...): 0.25-0.5 s on the first compile.
    return [dict(vars(np))]


def _torch_namespace() -> list:
    import torch

    return [{"_as_tensor": _as_tensor}, dict(vars(torch))]


_PRINTERS = {
    "numpy": (lambda: _NumPyPrinter, _numpy_namespace),
    "torch": (_torch_printer_class, _torch_namespace),
}


def compile_entries(exprs: Sequence[sympy.Expr], symbols: Sequence[sympy.Symbol], backend: str) -> Compiled:
    """Compile `exprs` (a flat list) into a function of `symbols` for `backend` ("numpy" or "torch")."""
    printer_class, namespace = _PRINTERS[backend]
    folded = [fold_constants(e) for e in exprs]
    printer = printer_class()({"fully_qualified_modules": False})
    fn = sympy.lambdify(
        list(symbols),
        folded,
        modules=namespace(),
        printer=printer,
        cse=True,
        dummify=True,
        docstring_limit=0,
    )
    source = "".join(linecache.getlines(fn.__code__.co_filename)) or "<source unavailable>"
    return Compiled(backend, fn, source, len(folded), len(symbols))


@dataclass(frozen=True, eq=False)
class EntryPlan:
    """How a flat entry list is evaluated without a Python loop over its entries.

    Most Jacobian entries of the functions people check are constants (`A @ X`, `sum(X)`) or
    linear in the inputs (`X @ X`: `X[1, 0]`, `X[0, 0] + X[1, 1]`). Those are evaluated together,
    as one gather and one segmented sum; only the remaining entries go through generated code.
    A backend builds a table of columns, `[inputs | linear sums | constants | generated | 0]`,
    and every entry is then one column of it: `table[..., take]`.

    - `n_inputs`: the inputs' scalar entries, all inputs flattened and side by side;
    - `gather`, `gather_from`: entries that are exactly one input entry `x[gather_from[i]]`;
    - `terms`, `coefs`, `starts`, `offsets`: each remaining linear entry `i` is
      `offsets[i] + sum(coefs[t] * x[terms[t]] for t in starts[i]:starts[i + 1])`;
    - `constants`: the values of the constant entries (float64; exact up to rounding);
    - `code`: generated code for the remaining entries (`None` if there are none);
    - `take`: for each entry of the list, its column of the table.
    """

    n_inputs: int
    terms: np.ndarray
    coefs: np.ndarray
    starts: np.ndarray
    offsets: np.ndarray | None
    constants: np.ndarray
    code: Compiled | None
    take: np.ndarray

    @property
    def n_linear(self) -> int:
        return len(self.starts)

    @property
    def n_columns(self) -> int:
        """Columns of the table, the final zero column included."""
        n_code = self.code.n_entries if self.code is not None else 0
        return self.n_inputs + self.n_linear + len(self.constants) + n_code + 1

    @property
    def zero_column(self) -> int:
        return self.n_columns - 1

    @property
    def unit_coefs(self) -> bool:
        return bool(np.all(self.coefs == 1.0))


def _constant_value(expr: sympy.Expr) -> float | None:
    """The float a generated function would return for a constant entry, or None if not finite."""
    value = fold_constants(expr)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _linear_terms(expr: sympy.Expr, position: dict) -> tuple[list[tuple[int, float]], float] | None:
    """`expr` as `([(input index, coefficient)], offset)` if it is affine in the inputs, else None.

    Affine means: a sum of terms `c * x` with `c` a finite constant and `x` one input symbol, plus
    at most constants. Anything else (products of symbols, functions, powers) gives None.
    """
    terms: list[tuple[int, float]] = []
    offset = 0.0
    for term in expr.args if expr.is_Add else (expr,):
        if term.is_Symbol:
            if term not in position:
                return None
            terms.append((position[term], 1.0))
        elif term.is_Mul:
            symbols = [a for a in term.args if a.is_Symbol]
            if len(symbols) != 1 or symbols[0] not in position:
                return None
            rest = [a for a in term.args if a is not symbols[0]]
            if any(a.free_symbols for a in rest):
                return None
            coef = _constant_value(sympy.Mul(*rest))
            if coef is None:
                return None
            terms.append((position[symbols[0]], coef))
        elif not term.free_symbols:
            value = _constant_value(term)
            if value is None:
                return None
            offset += value
        else:
            return None
    return terms, offset


def plan_entries(exprs: Sequence[sympy.Expr], symbols: Sequence[sympy.Symbol], backend: str) -> EntryPlan:
    """Sort `exprs` into input entries, linear entries, constants and entries left to generated code.

    Equal entries are evaluated once. Only the last kind is compiled (for `backend`, as in
    `compile_entries`), so a Jacobian that is linear in the inputs compiles no code at all.
    """
    position = {s: q for q, s in enumerate(symbols)}
    n_inputs = len(position)
    unique: dict = {}
    first_of = [unique.setdefault(e, len(unique)) for e in exprs]
    kinds: list[tuple[str, Any]] = []
    for expr in unique:
        if expr.is_Symbol and expr in position:
            kinds.append(("input", position[expr]))
            continue
        if not expr.free_symbols:
            value = _constant_value(expr)
            if value is not None:
                kinds.append(("constant", value))
                continue
        linear = _linear_terms(expr, position) if (expr.is_Add or expr.is_Mul) else None
        kinds.append(("linear", linear) if linear is not None else ("code", expr))

    linear = [v for k, v in kinds if k == "linear"]
    constants = [v for k, v in kinds if k == "constant"]
    generated = [v for k, v in kinds if k == "code"]
    base_linear = n_inputs
    base_constant = base_linear + len(linear)
    base_code = base_constant + len(constants)
    counters = {"linear": 0, "constant": 0, "code": 0}
    bases = {"linear": base_linear, "constant": base_constant, "code": base_code}
    column_of_unique = []
    for kind, value in kinds:
        if kind == "input":
            column_of_unique.append(value)
        else:
            column_of_unique.append(bases[kind] + counters[kind])
            counters[kind] += 1

    terms = [q for t, _ in linear for q, _ in t]
    coefs = [c for t, _ in linear for _, c in t]
    starts = np.cumsum([0] + [len(t) for t, _ in linear[:-1]]) if linear else np.zeros(0)
    offsets = np.array([o for _, o in linear], dtype=np.float64)
    code = compile_entries(generated, symbols, backend) if generated else None
    return EntryPlan(
        n_inputs=n_inputs,
        terms=np.asarray(terms, dtype=np.int64),
        coefs=np.asarray(coefs, dtype=np.float64),
        starts=np.asarray(starts, dtype=np.int64),
        offsets=offsets if np.any(offsets != 0.0) else None,
        constants=np.asarray(constants, dtype=np.float64),
        code=code,
        take=np.asarray(column_of_unique, dtype=np.int64)[np.asarray(first_of, dtype=np.int64)]
        if exprs else np.zeros(0, dtype=np.int64),
    )
