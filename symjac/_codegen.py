"""Generated code: flat lists of SymPy expressions lambdified for NumPy and torch.

Whole matrices are never lambdified (NumPy builds ragged arrays from constant entries; SymPy's torch
printer wraps matrices in `torch.tensor(...)`, which fixes the dtype and cuts the autograd graph).
Instead a flat list of scalar entries is compiled with common-subexpression elimination, and the
backends assemble the result (broadcast, cast to the point's dtype, reshape).

The generated function takes one argument per scalar input symbol, in declaration order, and
returns the list of entries; each entry is an array/tensor of the batch shape or a Python number.
Symbol names never reach the generated source (`dummify=True`); numeric constants are folded to
Python floats first, so a float32 point is not promoted by `numpy.float64` constants and torch never
sees `torch.sqrt(2)` of a Python int. With SymEngine installed (`symjac[fast]`), common
subexpressions are found by SymEngine and the source is printed by `symjac._symengine` (same
interface, same values up to rounding); otherwise by SymPy's `lambdify(..., cse=True)`.

`symjac._entry_plan` decides what needs generated code at all: entries are written as
polynomials over input entries and shared non-polynomial atoms, evaluated by the backends as whole
arrays; only the atoms are compiled here.
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
from sympy.core.parameters import evaluate
from sympy.printing.numpy import NumPyPrinter

from . import _dag, _symengine
from ._stable import STABLE_FUNCTIONS
from ._errors import DomainError, InvalidExpressionError

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
    """Replace every constant subexpression that is not a plain integer/rational by a float.

    One pass, bottom-up, each distinct subexpression visited once (the iterative walk of
    `symjac._dag`: no recursion over the expression's depth).
    """
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

    return _dag.evaluate((expr,), fold, memo=memo)[expr][0]


def _fold_constant(e: sympy.Basic) -> sympy.Basic:
    if not isinstance(e, sympy.Expr) or e.is_Integer or e.is_Rational:
        return e  # conditions such as `True` stay; integers and rationals stay exact
    value = e.evalf(17)
    if not value.is_Number:  # complex (I), or not a number at all (a matrix expression)
        raise DomainError(
            f"expr: the constant {str(e)[:80]} is not a real number (it evaluates to "
            f"{str(value)[:60]}); symjac generates code for real-valued expressions only"
        )
    return sympy.Float(value, 17)


class _StablePrinting:
    """The stable primitives of `symjac._stable`, printed as calls of their helpers (the same names in
    `_stable.numpy_helpers` and `_stable.torch_helpers`), for both backends."""

    def _print_logsumexp(self, expr):
        return f"_symjac_logsumexp({', '.join(self._print(a) for a in expr.args)})"

    def _print_softplus(self, expr):
        return f"_symjac_softplus({self._print(expr.args[0])})"

    def _print_sigmoid(self, expr):
        return f"_symjac_sigmoid({self._print(expr.args[0])})"


@functools.cache
def _torch_printer_class():
    # sympy.printing.pytorch imports torch at import time: load it only when torch code is made.
    from sympy.printing.pytorch import TorchPrinter

    class _TorchPrinter(_StablePrinting, TorchPrinter):
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

        def _print_atan2(self, expr):
            # SymPy writes |exp(sqrt(x))| with atan2(0, x): torch.atan2 takes tensors only
            y, x = (self._print(arg) for arg in expr.args)
            return f"torch.atan2(_as_tensor({y}, {x}), _as_tensor({x}, {y}))"

        def _print_Heaviside(self, expr):
            x = self._print(expr.args[0])
            half = self._print(expr.args[1]) if len(expr.args) > 1 else "0.5"
            return f"torch.heaviside({x}, _as_tensor({half}, {x}))"

        def _print_Float(self, expr):
            return repr(float(expr))

        def _print_log1p(self, expr):
            return f"torch.log1p({self._print(expr.args[0])})"

        def _print_expm1(self, expr):
            return f"torch.expm1({self._print(expr.args[0])})"

    return _TorchPrinter


class _NumPyPrinter(_StablePrinting, NumPyPrinter):
    def _print_Float(self, expr):
        return repr(float(expr))

    def _print_erf(self, expr):
        # NumPy has no erf; SymPy would print math.erf, which takes one number only.
        return f"_erf({self._print(expr.args[0])})"


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


def _numpy_namespace() -> list:
    # The module's own attributes, not `modules=["numpy"]`: lambdify then runs `from numpy import *`,
    # which loads NumPy's lazy submodules (f2py, testing, ...): 0.25-0.5 s on the first compile.
    from ._stable import numpy_helpers

    return [dict(vars(np), **numpy_helpers(), _erf=_erf)]


def _torch_namespace() -> list:
    import torch

    from ._stable import torch_helpers

    return [{"_as_tensor": _as_tensor, **torch_helpers()}, dict(vars(torch))]


_PRINTERS = {
    "numpy": (lambda: _NumPyPrinter, _numpy_namespace),
    "torch": (_torch_printer_class, _torch_namespace),
}


#: The SymPy node classes generated code is printed from (exact types: a subclass could print
#: itself, `_numpycode`, as any code). Anything else is refused before printing.
_CODE_NODES: frozenset = frozenset({
    sympy.Add, sympy.Mul, sympy.Pow, sympy.Symbol, sympy.Dummy,
    sympy.Integer, sympy.Rational, sympy.Float,
    type(sympy.S.Zero), type(sympy.S.One), type(sympy.S.NegativeOne), type(sympy.S.Half),
    type(sympy.pi), type(sympy.E), type(sympy.S.NaN), type(sympy.oo), type(-sympy.oo), type(sympy.zoo),
    sympy.exp, sympy.log, sympy.sin, sympy.cos, sympy.tan, sympy.sinh, sympy.cosh, sympy.tanh,
    sympy.asin, sympy.acos, sympy.atan, sympy.asinh, sympy.acosh, sympy.atanh, sympy.atan2,
    sympy.Abs, sympy.sign, sympy.re, sympy.im, sympy.Max, sympy.Min, sympy.Heaviside,
    sympy.Piecewise, sympy.functions.elementary.piecewise.ExprCondPair,
    sympy.StrictGreaterThan, sympy.GreaterThan, sympy.StrictLessThan, sympy.LessThan,
    sympy.Eq, sympy.Ne, sympy.And, sympy.Or, sympy.Not,
    type(sympy.true), type(sympy.false),
    sympy.erf,
}) | frozenset(STABLE_FUNCTIONS)


def refuse_unknown_nodes(exprs: Sequence[sympy.Basic]) -> None:
    """Refuse any node whose exact class is not in `_CODE_NODES` (one walk over the DAG)."""
    for node in _dag.postorder(exprs):
        if type(node) not in _CODE_NODES:
            raise InvalidExpressionError(
                f"expr: cannot generate code for {type(node).__name__} (in {str(node)[:60]}): "
                "generated code is printed only from SymPy's own classes for arithmetic, powers, "
                "exp, log, trigonometric and hyperbolic functions, abs, sign, max, min and piecewise "
                "conditions"
            )


def compile_entries(exprs: Sequence[sympy.Expr], symbols: Sequence[sympy.Symbol], backend: str) -> Compiled:
    """Compile `exprs` (a flat list) into a function of `symbols` for `backend` ("numpy" or "torch")."""
    printer_class, namespace = _PRINTERS[backend]
    folded = [fold_constants(e) for e in exprs]
    refuse_unknown_nodes(folded)
    heights = _dag.height(folded)
    deep = bool(folded) and max(heights[e] for e in folded) > MAX_NESTING
    if _symengine.enabled() and not deep:
        source = _symengine.compile_source(folded, symbols, backend)
        if source is not None:
            return Compiled(backend, _exec(source, backend), source, len(folded), len(symbols))
    printer = printer_class()({"fully_qualified_modules": False})
    arguments, cse = list(symbols), True
    if deep:
        arguments = [sympy.Symbol(f"_a{k}") for k in range(len(symbols))]
        assignments, folded = _shallow_cse(folded, dict(zip(symbols, arguments)))
        cse = lambda entries: (assignments, entries)  # noqa: E731
    try:
        fn = sympy.lambdify(
            arguments,
            folded,
            modules=namespace(),
            printer=printer,
            cse=cse,
            dummify=not deep,
            docstring_limit=0,
        )
    except (NotImplementedError, ValueError, TypeError) as error:  # SymPy's printer refused a node
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InvalidExpressionError(
            f"expr: cannot generate {backend} code for this expression or its Jacobian: {reason[:200]}"
        ) from None
    source = "".join(linecache.getlines(fn.__code__.co_filename)) or "<source unavailable>"
    return Compiled(backend, fn, source, len(folded), len(symbols))


#: Generated code nests at most this many operations in one statement: deeper expressions (a
#: 100-step recurrence) are cut into one assignment per level group (`_shallow_cse`), so that
#: neither Python's parser ("too many nested parentheses") nor SymPy's recursive printer sees
#: the expression's depth.
MAX_NESTING = 16


def _cuttable(node: sympy.Basic) -> bool:
    """A node that may become an assignment: a non-atomic scalar expression (not a condition)."""
    return bool(node.args) and isinstance(node, sympy.Expr) and not isinstance(node, sympy.MatrixExpr)


def _shallow_cse(exprs: Sequence[sympy.Expr], rename: dict) -> tuple[list[tuple[sympy.Symbol, sympy.Expr]], list]:
    """Common-subexpression elimination that also bounds nesting, for `lambdify(cse=...)`.

    One walk over the DAG of all entries (`symjac._dag`): every shared non-atomic subexpression,
    and every subexpression `MAX_NESTING` levels above the last one cut, becomes one assignment
    `_cutK = ...` (in dependency order); the entries then refer to those names. `rename` maps the
    input symbols to the generated function's argument names. Nodes are rebuilt without SymPy's
    evaluation (the same operations on new names: evaluating them again is slow, e.g. `tanh`
    asks `Mod` and `gcd` about its argument). Used for deep expressions only: shallow ones keep
    SymPy's own `cse`, which also finds common sub-products.
    """
    exprs = list(exprs)
    parents: dict = {}
    for node in _dag.postorder(exprs):
        for arg in set(node.args):
            parents[arg] = parents.get(arg, 0) + 1
    for e in exprs:
        parents[e] = parents.get(e, 0) + 1
    rebuilt: dict = {}  # node -> the node with its cut children replaced by their names
    level: dict = {}  # node -> levels above the last cut below it
    replacements: list[tuple[sympy.Symbol, sympy.Expr]] = []
    for node in _dag.postorder(exprs):
        if not node.args:
            rebuilt[node], level[node] = rename.get(node, node), 0
            continue
        args = tuple(rebuilt[a] for a in node.args)
        if args == node.args:
            expr = node
        else:
            with evaluate(False):
                expr = node.func(*args)
        depth = 1 + max(level[a] for a in node.args)
        if _cuttable(node) and (parents.get(node, 0) > 1 or depth >= MAX_NESTING):
            name = sympy.Symbol(f"_cut{len(replacements)}")
            replacements.append((name, expr))
            rebuilt[node], level[node] = name, 0
        else:
            rebuilt[node], level[node] = expr, depth
    return replacements, [rebuilt[e] for e in exprs]


_GENERATED = itertools.count()


def _exec(source: str, backend: str) -> Callable:
    """Compile generated source into its function, registering the source for tracebacks."""
    filename = f"<symjac-generated-{next(_GENERATED)}>"
    namespace: dict[str, Any] = {"numpy": np, "_erf": _erf}
    if backend == "torch":
        import torch

        namespace.update(torch=torch, _as_tensor=_as_tensor)
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - our own printed source
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return namespace["_generated"]
