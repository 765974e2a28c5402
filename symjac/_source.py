"""Generated Python source from a SymPy DAG: one walk, each distinct node printed once.

`generate(exprs, symbols, backend)` prints a flat list of scalar SymPy expressions as the source of
one Python function, `def _generated(_a0, _a1, ..., *, _k=(...)):`, with one argument per input
symbol (in order; symbol names never reach the source) that returns the list of entries.

The expressions are one DAG (the entries of a Jacobian share most of their subexpressions), and the
source is printed from the DAG, never from the written-out trees:

- one walk (`symjac._dag.postorder`) over all entries together lists each distinct node once,
  refuses node classes outside `CODE_NODES` (a subclass could print itself as any code), counts
  parents and marks the nodes that hold an input symbol;
- every constant subexpression (no input symbol) is folded to a number once (`evalf(17)`; integers
  and rationals stay exact until printed), and every distinct number is printed once, as an entry
  of the keyword-only argument `_k` (torch passes dual tensors there in forward-mode autograd, where
  an operation between a dual tensor and a plain number is slow); exponents stay literals;
- each distinct node is printed once; a node with more than one parent, or `MAX_NESTING` levels
  above the last assignment, becomes an assignment `_tK = ...` that its parents refer to. The source
  is therefore linear in the number of distinct nodes, and its nesting bounded whatever the depth;
- two cheap savings of operations: a negated term printed inline is subtracted (`a - b`), and a
  pair of factors shared by several products of three or more factors (the terms of a
  determinant) is multiplied once;
- parentheses only where Python would parse another tree (`a + b - (c + d)`, `(-x)**2`): the same
  operations in the same order as a fully parenthesised printing, read by Python's parser in
  about 60% of the time.

The printed code computes in the arguments' dtype: numbers are Python numbers (NumPy's and torch's
weak scalars), never `numpy.float64`; torch functions that take tensors only get `_as_tensor`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import sympy

from . import _dag
from ._errors import DomainError, InvalidExpressionError
from ._determinant import DETERMINANT_FUNCTIONS
from ._stable import STABLE_FUNCTIONS

__all__ = ["CODE_NODES", "MAX_NESTING", "generate", "fold_constant"]

#: Generated code nests at most this many operations in one statement: deeper expressions (a
#: 100-step recurrence) are cut into one assignment per level group, so that Python's parser
#: ("too many nested parentheses") never sees the expression's depth.
MAX_NESTING = 16

#: Sums and products with more terms are printed in parenthesised groups of this many (Python's
#: compiler recurses over a long `a + b + c + ...` chain).
_GROUP = 64
#: Products with up to this many factors share their pairs of factors (`_Source.pair_count`).
_PAIRED_FACTORS = 8

_ExprCondPair = sympy.functions.elementary.piecewise.ExprCondPair

#: The SymPy node classes generated code is printed from (exact types). Anything else is refused.
CODE_NODES: frozenset = frozenset({
    sympy.Add, sympy.Mul, sympy.Pow, sympy.Symbol, sympy.Dummy,
    sympy.Integer, sympy.Rational, sympy.Float,
    type(sympy.S.Zero), type(sympy.S.One), type(sympy.S.NegativeOne), type(sympy.S.Half),
    type(sympy.pi), type(sympy.E), type(sympy.S.NaN), type(sympy.oo), type(-sympy.oo), type(sympy.zoo),
    sympy.exp, sympy.log, sympy.sin, sympy.cos, sympy.tan, sympy.sinh, sympy.cosh, sympy.tanh,
    sympy.asin, sympy.acos, sympy.atan, sympy.asinh, sympy.acosh, sympy.atanh, sympy.atan2,
    sympy.Abs, sympy.sign, sympy.re, sympy.im, sympy.Max, sympy.Min, sympy.Heaviside,
    sympy.Piecewise, _ExprCondPair,
    sympy.StrictGreaterThan, sympy.GreaterThan, sympy.StrictLessThan, sympy.LessThan,
    sympy.Eq, sympy.Ne, sympy.And, sympy.Or, sympy.Not,
    type(sympy.true), type(sympy.false),
    sympy.erf,
}) | frozenset(STABLE_FUNCTIONS) | frozenset(DETERMINANT_FUNCTIONS)

#: One-argument functions: class name -> (NumPy code, torch code).
_FUNCTIONS = {
    "exp": ("numpy.exp", "torch.exp"),
    "log": ("numpy.log", "torch.log"),
    "sin": ("numpy.sin", "torch.sin"),
    "cos": ("numpy.cos", "torch.cos"),
    "tan": ("numpy.tan", "torch.tan"),
    "sinh": ("numpy.sinh", "torch.sinh"),
    "cosh": ("numpy.cosh", "torch.cosh"),
    "tanh": ("numpy.tanh", "torch.tanh"),
    "asin": ("numpy.arcsin", "torch.asin"),
    "acos": ("numpy.arccos", "torch.acos"),
    "atan": ("numpy.arctan", "torch.atan"),
    "asinh": ("numpy.arcsinh", "torch.asinh"),
    "acosh": ("numpy.arccosh", "torch.acosh"),
    "atanh": ("numpy.arctanh", "torch.atanh"),
    "Abs": ("numpy.abs", "torch.abs"),
    "sign": ("numpy.sign", "torch.sign"),
    "re": ("numpy.real", "torch.real"),
    "im": ("numpy.imag", "_imag"),
    "erf": ("_erf", "torch.erf"),
    "log1p": ("numpy.log1p", "torch.log1p"),
    "expm1": ("numpy.expm1", "torch.expm1"),
    "softplus": ("_symjac_softplus", "_symjac_softplus"),
    "sigmoid": ("_symjac_sigmoid", "_symjac_sigmoid"),
}
_RELATIONS = {"StrictGreaterThan": ">", "GreaterThan": ">=", "StrictLessThan": "<", "LessThan": "<=",
              "Equality": "==", "Unequality": "!="}
#: Integers beyond this are printed as floats (NumPy cannot hold larger Python ints in C longs).
_LARGEST_INT = 2**53


def fold_constant(e: sympy.Basic) -> sympy.Basic:
    """A constant expression as the number generated code uses: integers and rationals stay exact,
    anything else is evaluated to a 17-digit Float; conditions (`True`) stay as they are."""
    if not isinstance(e, sympy.Expr) or e.is_Integer or e.is_Rational:
        return e
    value = e.evalf(17)
    if not value.is_Number:  # complex (I), or not a number at all (a matrix expression)
        raise DomainError(
            f"expr: the constant {str(e)[:80]} is not a real number (it evaluates to "
            f"{str(value)[:60]}); symjac generates code for real-valued expressions only"
        )
    return value if value.is_Float or value in (sympy.oo, -sympy.oo, sympy.nan, sympy.zoo) else sympy.Float(value, 17)


def _refuse(node: sympy.Basic) -> None:
    raise InvalidExpressionError(
        f"expr: cannot generate code for {type(node).__name__} (in {str(node)[:60]}): "
        "generated code is printed only from SymPy's own classes for arithmetic, powers, "
        "exp, log, trigonometric and hyperbolic functions, abs, sign, max, min and piecewise "
        "conditions"
    )


def _literal(number: sympy.Basic, backend: str) -> str:
    """A folded number (or condition) as Python source: ints exact, the rest as float literals."""
    if number is sympy.true or number is sympy.false:
        return repr(bool(number))
    if type(number) not in CODE_NODES or not number.is_Number:
        _refuse(number)
    if number is sympy.zoo or number is sympy.nan:
        return "numpy.nan" if backend == "numpy" else "torch.nan"
    if number.is_Integer:
        value = int(number)
        text = repr(value) if abs(value) <= _LARGEST_INT else repr(float(value))
    else:
        value = float(number)
        if math.isfinite(value):
            text = repr(value)
        else:
            module = "numpy" if backend == "numpy" else "torch"
            text = f"{module}.nan" if math.isnan(value) else f"{module}.inf" if value > 0 else f"(-{module}.inf)"
    return f"({text})" if text.startswith("-") else text


class _Source:
    """The state of one printing: numbers, assignments, and each node's text.

    Nodes with an input symbol are numbered in walk order (`number`); every table of the printing
    is keyed by those numbers (a SymPy node's `__hash__` is a Python call, and the printing asked
    for it about 25 times per node), each node's children by `kids` (None for a constant child)."""

    def __init__(self, backend: str):
        self.backend = backend
        self.index = 0 if backend == "numpy" else 1
        self.numbers: dict[str, int] = {}  # literal -> index in _k
        self.folded: dict = {}  # constant node -> its literal
        self.kids: list[tuple] = []  # number -> its children's numbers (None: a constant child)
        self.text: list = []  # number -> its text (a name once assigned)
        self.prec: list[int] = []  # number -> the precedence of its text (`_ATOM` ... `_ADD`)
        self.assigned: list[bool] = []  # number -> its text is the name of an assignment
        self.level: list[int] = []  # number -> operations above the last assignment below it
        self.lines: list[str] = []
        self.negated: dict[int, tuple] = {}  # `-1 * rest` printed inline -> (text, precedence) of `rest` (for `a - rest`)
        self.pair_count: dict = {}  # (factor, factor) -> how many products of 3+ factors hold both
        self.pairs: dict = {}  # (factor, factor) -> the name of their product, once assigned

    def assign(self, text: str) -> str:
        name = f"_t{len(self.lines)}"
        self.lines.append(f"    {name} = {text}")
        return name

    def literal(self, node) -> str:
        found = self.folded.get(node)
        if found is None:
            found = self.folded[node] = _literal(fold_constant(node), self.backend)
        return found

    def constant(self, node) -> str:
        """A constant operand: its number as an entry of `_k` (conditions stay literals)."""
        literal = self.literal(node)
        if literal in ("True", "False"):
            return literal
        return f"_k[{self.numbers.setdefault(literal, len(self.numbers))}]"

    def ref(self, node, k: int | None, need: int = 0) -> str:
        """The text of a child `node` whose number is `k` (None: a constant), in parentheses where
        its precedence is below `need`."""
        if k is None:
            return self.constant(node)
        return self.text[k] if self.prec[k] >= need else f"({self.text[k]})"

    def operand(self, node, k: int | None) -> tuple[str, int]:
        """(text, precedence) of a child `node` whose number is `k` (None: a constant)."""
        return (self.text[k], self.prec[k]) if k is not None else (self.constant(node), _ATOM)

    def refs(self, node, i: int) -> list[str]:
        """The texts of the children of `node` (number `i`), as arguments of a call."""
        text = self.text
        return [text[k] if k is not None else self.constant(a) for a, k in zip(node.args, self.kids[i])]


def generate(exprs: Sequence[sympy.Basic], symbols: Sequence[sympy.Symbol], backend: str) -> str:
    """The source of `def _generated(_a0, ...)` returning `exprs` (a flat list) for `backend`.

    Raises `InvalidExpressionError` for a node class outside `CODE_NODES` or a symbol outside
    `symbols`, `DomainError` for a constant that is not a real number.
    """
    exprs = list(exprs)
    argument = {s: f"_a{k}" for k, s in enumerate(symbols)}
    out = _Source(backend)
    kids, text, level, prec, assigned = out.kids, out.text, out.level, out.prec, out.assigned
    # The walk: each distinct node once, children first; each symbolic node numbered (pairs of
    # factors below are keyed by two ints: no tree hashing).
    order: list = []  # (number, node) of the symbolic nodes that are printed
    parents: list[int] = []  # number -> parents (distinct nodes, and entries of the list)
    number: dict = {}
    for node in _dag.postorder(exprs):
        if node.is_Symbol:
            if type(node) not in CODE_NODES:
                _refuse(node)
            name = argument.get(node)
            if name is None:
                raise InvalidExpressionError(
                    f"expr: the symbol {str(node)[:40]} is not an input of the generated code "
                    f"(its inputs are {len(argument)} entries of the function's inputs)"
                )
            number[node] = len(kids)
            kids.append(())
            text.append(name)
            level.append(0)
            prec.append(_ATOM)
            assigned.append(False)
            parents.append(0)
            continue
        ks = tuple(map(number.get, node.args))
        if ks.count(None) == len(ks):
            continue  # constant: folded where it is used
        if type(node) not in CODE_NODES:
            _refuse(node)
        i = number[node] = len(kids)
        kids.append(ks)
        text.append(None)
        level.append(0)
        prec.append(_ATOM)
        assigned.append(False)
        parents.append(0)
        order.append((i, node))
        for k in set(ks):
            if k is not None:
                parents[k] += 1
    returned = [number.get(e) for e in exprs]
    for k in returned:
        if k is not None:
            parents[k] += 1

    # Products of three or more factors that share two of them (the terms of a determinant,
    # `X[0, 0] * X[1, 1] * X[2, 2]` and `X[0, 0] * X[1, 1] * X[2, 3]`) compute the pair once.
    pair_count = out.pair_count
    mul = sympy.Mul
    for i, node in order:
        if node.__class__ is mul:
            factors = [k for k in kids[i] if k is not None]
            if 3 <= len(factors) <= _PAIRED_FACTORS:
                for j, a in enumerate(factors):
                    for b in factors[j + 1:]:
                        pair_count[(a, b)] = pair_count.get((a, b), 0) + 1
    pair = _ExprCondPair
    for i, node in order:
        line, p = _print(node, i, out)
        height = 1 + max([level[k] for k in kids[i] if k is not None], default=0)
        if node.__class__ is not pair and (parents[i] > 1 or height >= MAX_NESTING):
            line, height, p = out.assign(line), 0, _ATOM
            assigned[i] = True
        text[i], level[i], prec[i] = line, height, p
    returned_text = ", ".join(text[k] if k is not None else out.constant(e) for e, k in zip(exprs, returned))
    signature = ", ".join(argument.values())
    if out.numbers:
        signature += (", " if signature else "") + f"*, _k=({', '.join(out.numbers)},)"
    return "\n".join([f"def _generated({signature}):", *out.lines, f"    return [{returned_text}]"]) + "\n"


#: Precedences of printed text, as Python parses it: a sum, a product or quotient, a negation, a
#: power, an atom (a name, a call, a subscript, anything in parentheses). A child is parenthesised
#: only where Python would otherwise parse another tree: the source has the tree a fully
#: parenthesised printing has (the same operations in the same order), and Python's parser reads
#: it in about 60% of the time (`inv(X)`'s Jacobian at n = 4: 1.8 ms against 3.1 ms).
_ADD, _MUL, _UNARY, _POW, _ATOM = 1, 2, 3, 4, 5


def _wrap(part: tuple[str, int], need: int) -> str:
    text, prec = part
    return text if prec >= need else f"({text})"


def _chain(parts: list[tuple[str, int]], operator: str, prec: int) -> tuple[str, int]:
    """`a op b op c ...` (left to right) of (text, precedence) parts, `prec` the operator's; longer
    chains than `_GROUP` as a chain of parenthesised groups (Python's compiler recurses over one)."""
    if len(parts) == 1:
        return parts[0]
    if len(parts) > _GROUP:
        return _chain([_chain(parts[i:i + _GROUP], operator, prec) for i in range(0, len(parts), _GROUP)], operator, prec)
    right = prec + 1  # a right operand of the same precedence is a group of its own
    return operator.join([_wrap(parts[0], prec)] + [_wrap(part, right) for part in parts[1:]]), prec


def _print(node, i: int, out: _Source) -> tuple[str, int]:
    """The (text, precedence) of one node (number `i`) whose children are printed already."""
    kind = type(node).__name__
    torch = out.index == 1
    if kind == "Add":
        return _print_add(node, i, out)
    if kind == "Mul":
        return _print_mul(node, i, out)
    if kind == "Pow":
        return _print_pow(node, i, out)
    if kind == "Piecewise":
        return _print_piecewise(node, i, out), _ATOM
    if kind == "ExprCondPair":
        return "", _ATOM  # printed by its Piecewise
    return _print_call(node, i, out, kind, torch), _ATOM


def _print_call(node, i: int, out: _Source, kind: str, torch: bool) -> str:
    """The text of a node printed as a call (or a parenthesised comparison): an atom."""
    args = out.refs(node, i)
    if kind in _FUNCTIONS:
        (arg,) = args
        return f"{_FUNCTIONS[kind][out.index]}({arg})"
    if kind in _RELATIONS:
        lhs, rhs = args
        return f"({lhs} {_RELATIONS[kind]} {rhs})"
    if kind in ("Max", "Min"):
        fn = ("numpy." if not torch else "torch.") + ("maximum" if kind == "Max" else "minimum")
        return _pairwise(fn, args, torch)
    if kind in ("And", "Or"):
        fn = ("numpy." if not torch else "torch.") + ("logical_and" if kind == "And" else "logical_or")
        return _pairwise(fn, args, torch)
    if kind == "Not":
        return f"{'torch' if torch else 'numpy'}.logical_not({args[0]})"
    if kind == "atan2":
        y, x = args
        if torch:
            return f"torch.atan2(_as_tensor({y}, {x}), _as_tensor({x}, {y}))"
        return f"numpy.arctan2({y}, {x})"
    if kind == "Heaviside":
        x = args[0]
        half = args[1] if len(args) > 1 else out.constant(sympy.S.Half)
        if torch:
            return f"torch.heaviside({x}, _as_tensor({half}, {x}))"
        return f"numpy.heaviside({x}, {half})"
    if kind == "logsumexp":
        return f"_symjac_logsumexp({', '.join(args)})"
    if kind == "det":  # symjac._determinant: the entries row by row
        return f"_symjac_det({', '.join(args)})"
    _refuse(node)  # a class in CODE_NODES without a rule here
    raise AssertionError  # pragma: no cover


def _pairwise(fn: str, parts: list[str], torch: bool) -> str:
    text = parts[0]
    for other in parts[1:]:
        if torch:  # torch.maximum and friends take two tensors: `_as_tensor` lifts a number
            text = f"{fn}(_as_tensor({text}, {other}), _as_tensor({other}, {text}))"
        else:
            text = f"{fn}({text}, {other})"
    return text


def _print_mul(node, i: int, out: _Source) -> tuple[str, int]:
    text, kids, prec, assigned = out.text, out.kids, out.prec, out.assigned
    args = node.args
    ks = kids[i]
    start = 1 if args[0] is sympy.S.NegativeOne else 0
    numerator, denominator, factors = [], [], []
    for a, k in zip(args[start:], ks[start:]):
        if k is None:
            numerator.append((out.constant(a), _ATOM))
        # x / y rather than x * (1 / y): one rounding, as SymPy's printers write it
        elif a.is_Pow and a.exp is sympy.S.NegativeOne and not assigned[k]:
            denominator.append(out.operand(a.base, kids[k][0]))
        else:
            factors.append(k)
    n_symbolic = len(ks) - ks.count(None)
    if 3 <= n_symbolic <= _PAIRED_FACTORS and len(factors) > 1:
        best, most = None, 1  # the first pair of the most products, if more than one
        pair_count = out.pair_count
        for j, ka in enumerate(factors):
            for kb in factors[j + 1:]:
                count = pair_count.get((ka, kb), 0)
                if count > most:
                    best, most = (ka, kb), count
        if best is not None:
            ka, kb = best
            name = out.pairs.get(best)
            if name is None:
                name = out.pairs[best] = out.assign(_chain([(text[ka], prec[ka]), (text[kb], prec[kb])], "*", _MUL)[0])
            factors = [k for k in factors if k != ka and k != kb]
            numerator.append((name, _ATOM))
    numerator.extend((text[k], prec[k]) for k in factors)
    line = _chain(numerator, "*", _MUL) if numerator else ("1", _ATOM)
    if denominator:
        below = _chain(denominator, "*", _MUL) if len(denominator) > 1 else denominator[0]
        line = f"{_wrap(line, _MUL)}/{_wrap(below, _MUL + 1)}", _MUL
    if start:
        out.negated[i] = line
        return f"-{_wrap(line, _UNARY)}", _UNARY
    return line


def _print_add(node, i: int, out: _Source) -> tuple[str, int]:
    """`a + b - c`: a term `-1 * c` printed inline is subtracted (one operation, not two)."""
    plus, minus = [], []
    text, prec, negated, assigned = out.text, out.prec, out.negated, out.assigned
    for a, k in zip(node.args, out.kids[i]):
        if k is None:
            plus.append((out.constant(a), _ATOM))
            continue
        rest = negated.get(k)
        if rest is not None and not assigned[k]:  # inline, not an assigned name
            minus.append(rest)
        else:
            plus.append((text[k], prec[k]))
    if not plus:
        plus, minus = [(f"-{_wrap(minus[0], _UNARY)}", _UNARY)], minus[1:]
    if not minus:
        return _chain(plus, " + ", _ADD)
    return f"{_wrap(_chain(plus, ' + ', _ADD), _ADD)} - {_wrap(_chain(minus, ' + ', _ADD), _ADD + 1)}", _ADD


def _print_pow(node, i: int, out: _Source) -> tuple[str, int]:
    base, exp = node.args
    kb, ke = out.kids[i]
    sqrt = "torch.sqrt" if out.index else "numpy.sqrt"
    if ke is not None:  # a symbolic exponent
        return f"{out.ref(base, kb, _ATOM)}**{out.ref(exp, ke, _UNARY)}", _POW
    if exp is sympy.S.Half:
        return f"{sqrt}({out.ref(base, kb)})", _ATOM
    if exp == sympy.Rational(-1, 2):
        return f"1/{sqrt}({out.ref(base, kb)})", _MUL
    if exp is sympy.S.NegativeOne:
        return f"1/{out.ref(base, kb, _MUL + 1)}", _MUL
    # A numeric exponent stays a literal: `x ** 2` is fast on dual tensors too.
    return f"{out.ref(base, kb, _ATOM)}**{out.literal(exp)}", _POW


def _print_piecewise(node, i: int, out: _Source) -> str:
    torch = out.index == 1
    pieces = []
    for pair, k in zip(node.args, out.kids[i]):
        value, condition = pair.args
        if k is None:
            pieces.append((out.constant(value), out.constant(condition)))
        else:
            kv, kc = out.kids[k]
            pieces.append((out.ref(value, kv), out.ref(condition, kc)))
    value, condition = pieces[-1]
    text = value if condition == "True" else ("torch.nan" if torch else "numpy.nan")
    if condition not in ("True",):
        text = f"{'_where' if torch else 'numpy.where'}({condition}, {value}, {text})"
    for value, condition in reversed(pieces[:-1]):
        text = f"{'_where' if torch else 'numpy.where'}({condition}, {value}, {text})"
    return text
