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
from dataclasses import dataclass
from collections.abc import Callable, Sequence

import sympy
from sympy.printing.numpy import NumPyPrinter

__all__ = ["Compiled", "compile_entries", "fold_constants"]


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


_PRINTERS = {
    "numpy": (lambda: _NumPyPrinter, ["numpy"]),
    "torch": (_torch_printer_class, [{"_as_tensor": _as_tensor}, "torch"]),
}


def compile_entries(exprs: Sequence[sympy.Expr], symbols: Sequence[sympy.Symbol], backend: str) -> Compiled:
    """Compile `exprs` (a flat list) into a function of `symbols` for `backend` ("numpy" or "torch")."""
    printer_class, modules = _PRINTERS[backend]
    folded = [fold_constants(e) for e in exprs]
    printer = printer_class()({"fully_qualified_modules": False})
    fn = sympy.lambdify(
        list(symbols),
        folded,
        modules=modules,
        printer=printer,
        cse=True,
        dummify=True,
        docstring_limit=0,
    )
    source = "".join(linecache.getlines(fn.__code__.co_filename)) or "<source unavailable>"
    return Compiled(backend, fn, source, len(folded), len(symbols))
