"""SymEngine as a second, opt-in printer of generated code (`pip install symjac[fast]`).

`_codegen.compile_entries` prints generated code from the SymPy DAG itself (`symjac._source`: one
walk, each distinct node printed once). This module is the other way, kept as an independent
cross-check: the entries are converted to SymEngine, their common subexpressions eliminated by
SymEngine's C++ `cse`, and the result printed to Python source here. It is off by default
(`ENABLED = False`): converting every entry with `symengine.sympify` walks it as a tree (shared
subexpressions once per occurrence), which made it 10-60x slower to build than the DAG printer for
no faster code (batch 1,000 evaluations equal within noise: tanh(W @ x + b) n = 16, softmax n = 32,
inv n = 4, X @ X @ X @ X n = 7; /work/wt/_brief/codegen_measure.py).

The interface and the results are the same: a function of one argument per input symbol that
returns the list of entries (arrays or tensors of the batch shape, or Python numbers), computed
in the arguments' dtype (numbers are printed as Python literals, never as `numpy.float64`). The
values agree with the DAG printer up to rounding (the order of operations differs).
tests/test_symengine.py runs the same checks both ways.

Only the node types in `_FUNCTIONS` and arithmetic are printed here; an expression list with any
other node (`Max`, `Piecewise`, `Heaviside`, ...) is left to the DAG printer (`compile_source`
returns None). Set `ENABLED = True` to use it where it can.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

from sympy import SympifyError

from . import _source

__all__ = ["ENABLED", "available", "enabled", "compile_source"]

#: Print generated code through SymEngine where it can (and it is installed). Off by default;
#: tests set it to compare both printers.
ENABLED = False

#: SymEngine function class name -> (NumPy name, torch name): the DAG printer's names (`_source`).
_FUNCTIONS = {name: _source._FUNCTIONS[name] for name in (
    "sin", "cos", "tan", "sinh", "cosh", "tanh", "asin", "acos", "atan", "log", "Abs", "sign",
)}
_SQRT = {"numpy": "numpy.sqrt", "torch": "torch.sqrt"}
_EXP = {"numpy": "numpy.exp", "torch": "torch.exp"}
#: Integers beyond this are printed as floats (NumPy cannot hold larger Python ints in C longs).
_LARGEST_INT = 2**53


@functools.cache
def available() -> bool:
    try:
        import symengine  # noqa: F401
    except ImportError:
        return False
    return True


def enabled() -> bool:
    """True when generated code goes through SymEngine: it is installed and `ENABLED` is set."""
    return ENABLED and available()


class _Unsupported(Exception):
    pass


class _Printer:
    """Python source for SymEngine expressions: fully parenthesised, numbers as Python literals.

    With `constants` (a dict, for torch), numbers other than exponents are printed as `_k[i]`, an
    entry of the generated function's keyword-only argument `_k`, whose default holds the literals.
    The torch backend passes them as dual tensors (zero tangent) in forward-mode autograd, where an
    operation between a dual tensor and a plain number takes a slow decomposition (350 us instead
    of 10 us per operation in torch 2.13).
    """

    def __init__(self, backend: str, names: dict[str, str], constants: dict[str, int] | None = None):
        self.index = 0 if backend == "numpy" else 1
        self.backend = backend
        self.names = names  # symbol name -> Python identifier
        self.constants = constants

    def __call__(self, e) -> str:
        kind = type(e).__name__
        if kind in _NUMBERS:
            return self._constant(self.literal(e))
        method = getattr(self, "_" + kind, None)
        if method is not None:
            return method(e)
        if kind in _FUNCTIONS:
            (arg,) = e.args
            return f"{_FUNCTIONS[kind][self.index]}({self(arg)})"
        raise _Unsupported(kind)

    def _constant(self, literal: str) -> str:
        if self.constants is None:
            return literal
        return f"_k[{self.constants.setdefault(literal, len(self.constants))}]"

    def literal(self, e) -> str:
        """A number as a Python literal (ints exact, rationals as `(p/q)`, the rest as floats)."""
        kind = type(e).__name__
        if kind in ("Integer", "Zero", "One", "NegativeOne"):
            value = int(e)
            return repr(value) if abs(value) <= _LARGEST_INT else repr(float(value))
        if kind in ("Rational", "Half"):
            p, q = (int(v) for v in e.get_num_den())
            if abs(p) <= _LARGEST_INT and abs(q) <= _LARGEST_INT:
                return f"({p}/{q})"
            return repr(p / q)
        value = float(e)
        if not math.isfinite(value):
            raise _Unsupported("non-finite number")
        return repr(value)

    def _Symbol(self, e) -> str:
        try:
            return self.names[e.name]
        except KeyError:
            raise _Unsupported(f"symbol {e.name}") from None

    def _Add(self, e) -> str:
        return "(" + " + ".join(self(a) for a in e.args) + ")"

    def _Mul(self, e) -> str:
        return "(" + "*".join(self(a) for a in e.args) + ")"

    def _Pow(self, e) -> str:
        base, exp = e.args
        if type(base).__name__ == "Exp1":
            return f"{_EXP[self.backend]}({self(exp)})"
        if type(exp).__name__ == "Half":
            return f"{_SQRT[self.backend]}({self(base)})"
        # A numeric exponent stays a literal: `x ** 2` is fast on dual tensors too.
        power = self.literal(exp) if type(exp).__name__ in _NUMBERS else self(exp)
        return f"({self(base)}**{power})"


_NUMBERS = frozenset(
    ("Integer", "Zero", "One", "NegativeOne", "Rational", "Half", "RealDouble", "RealMPFR", "Pi", "Exp1")
)


def compile_source(exprs: Sequence, symbols: Sequence, backend: str) -> str | None:
    """Python source of `def _generated(_a0, _a1, ...)` (one argument per symbol) returning `exprs`.

    `exprs` are SymPy expressions in `symbols`. Returns None when an expression holds a node this
    printer does not print, so that the caller takes the SymPy path.
    """
    import symengine

    args = [f"_a{k}" for k in range(len(symbols))]
    try:
        rename = {symengine.sympify(s): symengine.Symbol(a) for s, a in zip(symbols, args)}
        converted = [symengine.sympify(e).xreplace(rename) for e in exprs]
    except (TypeError, ValueError, NotImplementedError, AttributeError, RuntimeError, OverflowError, SympifyError,
            symengine.SympifyError):
        # SymEngine cannot hold this SymPy node (found: a Dummy with a negative index, which SymPy's
        # random numbering gives about half the time, raises OverflowError in its converter; a
        # node SymEngine has no class for raises SymEngine's own SympifyError, not SymPy's): the
        # caller takes the SymPy path
        return None
    replacements, reduced = symengine.cse(converted) if converted else ([], [])
    names = {a: a for a in args}
    for k, (sym, _) in enumerate(replacements):
        names[sym.name] = f"_t{k}"
    constants: dict[str, int] | None = {} if backend == "torch" else None
    printer = _Printer(backend, names, constants)
    body = []
    try:
        for sym, value in replacements:
            body.append(f"    {names[sym.name]} = {printer(value)}")
        body.append("    return [" + ", ".join(printer(e) for e in reduced) + "]")
    except (_Unsupported, RecursionError):
        return None
    signature = ", ".join(args)
    if constants:
        signature += f", *, _k=({', '.join(constants)},)"
    return "\n".join([f"def _generated({signature}):"] + body) + "\n"
