"""Exact first derivatives of one deep expression by reverse accumulation (adjoints), in one walk.

`_jacobian._Gradient` differentiates forwards: every node carries the derivatives by all the target
symbols below it. Along an unrolled recurrence `h = tanh(w*h + x[i])` of N steps that is N**2 / 2
derivatives, each a product SymPy flattens and sorts (its comparison recursing over depth): a
100-step recurrence took minutes by `x`. Here each node of the expression gets one adjoint
(`d expr / d node`) from its parents, children after parents, so the work is one pass over the
distinct nodes (`_dag.postorder`), and the derivative by `x[i]` shares the adjoint chain of
`x[i+1]`. Adjoints are multiplied by local partials without SymPy's flattening
(`Mul(..., evaluate=False)`): a chain of N factors stays a chain of N nodes, and its value is the
same number (same rules as `_Gradient`: SymPy's `fdiff` for applied functions, `Pow`'s
`self * exp / base` and `self * log(base)`, `Add` and `Mul` by the product rule; other nodes are
differentiated by SymPy's `diff`, by the symbols they contain).

Used by `_jacobian` for output entries deeper than `DEEP` levels; the nested products it builds
are cut into one assignment per level group by code generation (`_codegen`).
"""

from __future__ import annotations

import sympy
from sympy.core.function import ArgumentIndexError

from . import _dag

__all__ = ["DEEP", "FDIFF", "gradient"]

#: Output entries at least this many levels deep are differentiated here.
DEEP = 48

_ONE = sympy.S.One
_FUNCTION_DERIVATIVE = sympy.Function._eval_derivative

#: `fdiff` rules that reuse the node itself: SymPy's `tanh.fdiff` is `1 - tanh(arg)**2` with
#: `tanh(arg)` built again, whose evaluation asks whether `arg` is provably zero (the assumption
#: system over the whole argument: most of differentiating `tanh(W @ x + b)` at n = 32). The node
#: is that same `tanh(arg)`, so the expression is the one SymPy builds.
FDIFF = {sympy.tanh: lambda node: sympy.S.One - node**2}


class _Builder:
    """Products and sums of adjoints, each built once: a second request returns the same object
    (SymPy compares equal trees by recursing into them; shared objects compare by identity)."""

    def __init__(self):
        self.made: dict = {}

    def times(self, a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
        if a is _ONE:
            return b
        if b is _ONE:
            return a
        if a is sympy.S.Zero or b is sympy.S.Zero:  # structural: SymPy's `is_zero` recurses over depth
            return sympy.S.Zero
        key = ("*", id(a), id(b))
        if key not in self.made:
            self.made[key] = (sympy.Mul(a, b, evaluate=False), a, b)  # a, b kept: their ids stay theirs
        return self.made[key][0]

    def sum(self, terms: list) -> sympy.Expr:
        terms = [t for t in terms if t is not sympy.S.Zero]
        if not terms:
            return sympy.S.Zero
        if len(terms) == 1:
            return terms[0]
        key = ("+",) + tuple(map(id, terms))
        if key not in self.made:
            self.made[key] = (sympy.Add(*terms, evaluate=False), terms)
        return self.made[key][0]


def gradient(expr: sympy.Expr, targets: frozenset, *, free: dict | None = None,
             memo: dict | None = None) -> dict:
    """`{s: d expr / d s}` for the target symbols `s` in `expr` (a derivative may be 0 in value).

    `free`: a `_dag.free_symbols` memo to share across entries; `memo`: a dict kept across calls
    (per Function) so that the derivatives of one expression by different inputs share their
    adjoints (the same objects).
    """
    free = _dag.free_symbols((expr,), memo={} if free is None else free)
    memo = {} if memo is None else memo
    builder = memo.setdefault(_Builder, _Builder())
    if expr not in memo:
        memo[expr] = _adjoints(expr, free, builder)
    return {s: d for s, d in memo[expr].items() if s in targets}


def _adjoints(expr: sympy.Expr, free: dict, builder: _Builder) -> dict:
    """`{s: d expr / d s}` for every symbol `s` in `expr`."""
    targets = free[expr]

    def children(node):
        if not _standard(node):
            return ()
        return tuple(arg for arg in node.args if free[arg] & targets)

    order = list(_dag.postorder((expr,), children=children))
    adjoints: dict = {expr: [_ONE]}
    result: dict = {}
    for node in reversed(order):
        terms = adjoints.pop(node, None)
        if terms is None:
            continue
        bar = builder.sum(terms)
        if node.is_Symbol:
            result.setdefault(node, []).append(bar)
            continue
        if not _standard(node):
            for s in free[node]:
                result.setdefault(s, []).append(builder.times(bar, node.diff(s)))
            continue
        for arg, partial in _partials(node, free, targets):
            adjoints.setdefault(arg, []).append(builder.times(bar, partial))
    return {s: builder.sum(terms) for s, terms in result.items()}


def _standard(node) -> bool:
    """Nodes whose partials by their arguments this module writes (the rest go to `diff`)."""
    if node.is_Symbol or node.is_Add or node.is_Mul or node.is_Pow:
        return True
    return isinstance(node, sympy.Function) and type(node)._eval_derivative is _FUNCTION_DERIVATIVE


def _partials(node, free: dict, targets: frozenset):
    """(argument, d node / d argument) for the arguments of `node` that contain a target."""
    args = node.args
    live = [i for i, arg in enumerate(args) if free[arg] & targets]
    if node.is_Add:
        for i in live:
            yield args[i], _ONE
    elif node.is_Mul:
        for i in live:
            others = args[:i] + args[i + 1:]
            yield args[i], others[0] if len(others) == 1 else sympy.Mul(*others)
    elif node.is_Pow:
        base, exp = args
        if free[base] & targets:
            yield base, node * exp / base
        if free[exp] & targets:
            yield exp, node * sympy.log(base)
    else:
        for i in live:
            try:
                rule = FDIFF.get(type(node))
                df = rule(node) if rule is not None else node.fdiff(i + 1)
            except ArgumentIndexError:
                df = sympy.Function.fdiff(node, i + 1)
            yield args[i], df
