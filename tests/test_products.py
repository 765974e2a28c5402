"""`_products.product(a, b)` builds the node SymPy's `a * b` builds, and `_products.total(terms)` the
node `Add(*terms)` builds: equal, same arguments in the same order, on the fast paths (no
`Mul.flatten` / `Add.flatten`) and on every bail-out to SymPy's own constructors; `product_all`
builds SymPy's pairwise `a * b * c ...`."""

from __future__ import annotations

import itertools

import pytest
import sympy

import functools
import operator

from symjac._products import compare, product, product_all, total

x, y, z = sympy.symbols("x y z", real=True)
w = sympy.Symbol("w")
A = sympy.MatrixSymbol("A", 2, 2)

FACTORS = [
    sympy.S.One, sympy.S.NegativeOne, sympy.Integer(2), sympy.Rational(-3, 4), sympy.Float(0.5),
    sympy.Float(1.0), sympy.S.Zero, sympy.S.Half, x, y, w, -x, 2 * x, x * y, -2 * x * y,
    x ** 2, x ** -1, x ** sympy.Rational(1, 2), x ** y, x ** (2 * y), sympy.sqrt(2), sympy.sqrt(3) * x,
    sympy.exp(x), sympy.exp(y), sympy.exp(-x), sympy.exp(x + y), sympy.exp(2 * x), sympy.sin(x),
    sympy.tanh(x + y), 1 - sympy.tanh(x) ** 2, x + 1, x + y, 2 * (x + 1), -(x + y), (x + 1) * y,
    (x + 1) ** -1, (x + y) ** 2, sympy.log(x), sympy.Abs(x), sympy.I, sympy.I * x, sympy.oo, -sympy.oo,
    sympy.zoo, sympy.nan, sympy.E, sympy.pi, sympy.pi * x, 2 ** x, sympy.Integer(2) ** sympy.Rational(1, 3),
    sympy.Mul(x, x, evaluate=False), sympy.Mul(2, x + 1, evaluate=False), sympy.Order(x),
]


def same_node(got, want) -> bool:
    return got == want and sympy.srepr(got) == sympy.srepr(want)


@pytest.mark.parametrize("a, b", list(itertools.product(FACTORS, repeat=2)), ids=lambda e: sympy.srepr(e))
def test_product_is_sympys_product(a, b):
    try:
        want = a * b
    except NotImplementedError:  # SymPy's own product fails (`Abs(x) * O(x)`): so does this one
        with pytest.raises(NotImplementedError):
            product(a, b)
        return
    assert same_node(product(a, b), want)


def test_product_of_noncommutative_factors_is_sympys():
    B = sympy.MatrixSymbol("B", 2, 2)
    assert product(A, B) == A * B
    assert product(x, A) == x * A


def test_unevaluated_context_is_sympys():
    with sympy.evaluate(False):
        got, want = product(x, 2 * x), x * (2 * x)
    assert same_node(got, want)


def test_fast_path_skips_flatten(monkeypatch):
    # the fast path is taken where it applies (the pairs of a softmax Jacobian), and not where a
    # base is shared: counted by Mul.flatten calls
    a, b = sympy.exp(x - sympy.log(z)), -sympy.exp(y - sympy.log(z))
    want = a * b
    calls = []
    original = sympy.Mul.flatten.__func__
    monkeypatch.setattr(sympy.Mul, "flatten", classmethod(lambda cls, seq: calls.append(1) or original(cls, seq)))
    got = product(a, b)
    assert calls == [] and same_node(got, want)
    product(x ** y, 1 / sympy.sqrt(x) * sympy.exp(x))  # x ** y and x ** (-1/2) share a base, not a term of
    assert calls                                         # the exponent: SymPy's own flatten


def test_shared_base_fast_path_is_sympys(monkeypatch):
    # factors with one base and exponent term are combined as _gather does, without flatten:
    # `1/d * (-e/d)` (a quotient rule's product), `x * x**2`, `exp(x) * exp(2 x)`; a zero exponent
    # (`x * 1/x`) and non-rational coefficients still go to SymPy. Symbols of this test only, and
    # the products taken before SymPy's (whose cache would answer the fallback's `a * b`).
    p, q = sympy.symbols("p_shared q_shared", real=True)
    d, e = p + q ** 2, -(q + 1)
    fast = [(1 / d, e / d), (p, p ** 2 * q), (sympy.exp(p), 2 * sympy.exp(2 * p)), (p ** q, p ** (2 * q))]
    slow = [(q, 1 / q), (p ** sympy.Float(0.5), p ** sympy.Float(0.5))]
    fallbacks = []
    original = sympy.Mul.flatten.__func__

    def flatten(cls, seq):
        fallbacks.append(tuple(seq))
        return original(cls, seq)

    monkeypatch.setattr(sympy.Mul, "flatten", classmethod(flatten))
    for pairs, taken in ((fast, False), (slow, True)):
        for a, b in pairs:
            fallbacks.clear()
            got = product(a, b)
            assert ((a, b) in fallbacks) is taken, (a, b)
            assert same_node(got, a * b)


def test_compare_is_sympys_order():
    # `compare` (the sort key of product and total) answers what Basic.compare answers
    nodes = FACTORS + TERMS + [sympy.Mul(x, x, evaluate=False), sympy.Tuple(x, y), sympy.FiniteSet(x, y)]
    for a, b in itertools.product(nodes, repeat=2):
        assert compare(a, b) == sympy.Basic.compare(a, b), (a, b)


def test_same_node_tells_argument_order_apart():
    # the comparison above can fail: a product with its arguments out of SymPy's order is equal
    # in value (and even ==) but not the node SymPy builds
    want = x * sympy.exp(y)
    unsorted = sympy.Mul._from_args(tuple(reversed(want.args)), True)
    assert not same_node(unsorted, want)


TERMS = [
    sympy.S.Zero, sympy.S.One, sympy.Integer(-2), sympy.Rational(1, 3), sympy.Float(0.25), x, -x, 2 * x,
    sympy.Float(1.5) * x, y, x * y, -x * y, 3 * x * y, x ** 2, -(x ** 2), x ** -1, 2 ** x, sympy.sqrt(2),
    sympy.exp(x), sympy.sin(x) * y, x + y, x - 1, 2 * (x + 1), sympy.Mul(2, x + 1, evaluate=False),
    sympy.Add(x, x, evaluate=False), sympy.oo, sympy.zoo, sympy.nan, sympy.Order(x), sympy.I, sympy.I * x,
]
TERM_LISTS = [list(p) for p in itertools.product(TERMS, repeat=2)] + [
    [a, b, c] for a, b, c in itertools.product(TERMS[:20], TERMS[5:12], TERMS[12:20])
]


@pytest.mark.parametrize("terms", TERM_LISTS, ids=lambda ts: "+".join(sympy.srepr(t) for t in ts))
def test_total_is_sympys_sum(terms):
    try:
        want = sympy.Add(*terms)
    except NotImplementedError:
        with pytest.raises(NotImplementedError):
            total(terms)
        return
    assert same_node(total(terms), want)


def test_total_of_matrix_terms_is_sympys():
    B = sympy.MatrixSymbol("B", 2, 2)
    assert total([A, B]) == sympy.Add(A, B)


def test_total_fast_path_skips_flatten(monkeypatch):
    terms = [x * y, -sympy.exp(x) * y, sympy.Integer(3), sympy.sin(y)]
    want, shared = sympy.Add(*terms), 2 * x * y
    calls = []
    original = sympy.Add.flatten.__func__
    monkeypatch.setattr(sympy.Add, "flatten", classmethod(lambda cls, seq: calls.append(1) or original(cls, seq)))
    assert same_node(total(terms), want) and calls == []
    total([x * y, shared])  # both are multiples of x * y: SymPy's own flatten adds them
    assert calls


PRODUCT_LISTS = [
    [x, y, z], [z, y, x], [sympy.S.NegativeOne, x, y], [sympy.Integer(2), x, y, z], [sympy.Float(0.5), x, y], [sympy.Integer(2), x + 1, y], [sympy.S.NegativeOne, x + y, z],
    [x, x, y], [x, x ** 2, y], [x, sympy.exp(x), y], [sympy.exp(x), sympy.exp(y), z], [x, y, sympy.sqrt(2)],
    [sympy.I, x, y], [x, y, sympy.oo], [sympy.Integer(0), x, y], [sympy.S.One, x, y], [x * y, z, w],
    [x, sympy.sin(x), sympy.tanh(y)], [sympy.Integer(-2), sympy.sin(y), x + y], [x, y], [x + 1, x + 2, y],
    [sympy.sin(x), x, y], [A, x, y], [x, A, y],
]


@pytest.mark.parametrize("factors", PRODUCT_LISTS, ids=lambda fs: "*".join(sympy.srepr(f) for f in fs))
def test_product_all_is_sympys_pairwise_product(factors):
    assert same_node(product_all(list(factors)), functools.reduce(operator.mul, factors))


def test_product_all_of_a_canonical_products_factors_is_one_node(monkeypatch):
    full = -3 * x * y * z * sympy.sin(w) * (x + y)
    others = list(full.args[:2]) + list(full.args[3:])  # a product rule's args[:i] + args[i + 1:]
    want = functools.reduce(operator.mul, others)
    calls = []
    original = sympy.Mul.flatten.__func__
    monkeypatch.setattr(sympy.Mul, "flatten", classmethod(lambda cls, seq: calls.append(1) or original(cls, seq)))
    assert same_node(product_all(others), want) and calls == []


def test_total_keys_a_products_rest_by_its_factors():
    # a term's non-coefficient part is found without building it: `3 x y` and `x y` share it (SymPy
    # adds them), as do `2 * (x y)` held unevaluated and `x y`; `3 x y` and `x z` do not
    nested = sympy.Mul(2, sympy.Mul(x, y, evaluate=False), evaluate=False)
    for terms in ([3 * x * y, x * y], [nested, x * y], [3 * x * y, x * z], [nested, -x * z, sympy.exp(x) * y * z],
                  [-2 * x * y * z, x * y, 5 * y * z]):
        assert same_node(total(terms), sympy.Add(*terms)), terms
