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

`symjac._entry_plan` decides what needs generated code at all: entries are written as
polynomials over input entries and shared non-polynomial atoms, evaluated by the backends as whole
arrays; only the atoms are compiled here.
"""

from __future__ import annotations

import itertools
import linecache
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy

from . import _dag, _source, _symengine
from ._errors import InvalidExpressionError

__all__ = ["Compiled", "compile_entries", "fold_constants", "fold_constants_all"]


class Compiled:
    """A compiled flat entry list: the callable and its generated source (kept for reports).

    `compile_entries(..., lazy=True)` makes one whose source is generated and compiled when `fn` or
    `source` is first read (once, thread-safe): a plan whose atoms a backend computes another way
    (`_entry_plan.AtomFunctions`) then never pays for code it does not run."""

    __slots__ = ("backend", "n_entries", "n_args", "_fn", "_source", "_build", "_lock")

    def __init__(self, backend: str, fn: Callable | None, source: str | None, n_entries: int, n_args: int, *,
                 build: Callable[[], tuple[Callable, str]] | None = None):
        self.backend, self.n_entries, self.n_args = backend, n_entries, n_args
        self._fn, self._source, self._build = fn, source, build
        self._lock = threading.Lock() if build is not None else None

    def _built(self) -> None:
        with self._lock:
            if self._build is not None:
                self._fn, self._source = self._build()
                self._build = None

    @property
    def fn(self) -> Callable:
        if self._build is not None:
            self._built()
        return self._fn

    @property
    def source(self) -> str:
        if self._build is not None:
            self._built()
        return self._source

    def __repr__(self) -> str:
        return f"Compiled(backend={self.backend!r}, n_entries={self.n_entries}, n_args={self.n_args})"


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


def compile_entries(exprs: Sequence[sympy.Expr], symbols: Sequence[sympy.Symbol], backend: str, *,
                    lazy: bool = False) -> Compiled:
    """Compile `exprs` (a flat list) into a function of `symbols` for `backend` ("numpy" or "torch").
    `lazy`: the nodes are checked now (`refuse_unknown_nodes`), the code generated and compiled
    when first used (`Compiled`)."""
    if backend not in ("numpy", "torch"):
        raise ValueError(f"backend: expected 'numpy' or 'torch', received {backend!r}")
    if lazy and not _symengine.enabled():
        refuse_unknown_nodes(exprs)
        exprs, symbols = list(exprs), list(symbols)

        def build() -> tuple[Callable, str]:
            source = _source.generate(exprs, symbols, backend)
            return _exec(source, backend), source

        return Compiled(backend, None, None, len(exprs), len(symbols), build=build)
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

        from . import _determinant
        from ._stable import torch_helpers

        namespace.update(torch=torch, _as_tensor=_as_tensor, _where=_where, _imag=_imag, **torch_helpers(),
                         **_determinant.torch_helpers())
    else:
        from . import _determinant
        from ._stable import numpy_helpers

        namespace.update(numpy_helpers(), **_determinant.numpy_helpers())
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
