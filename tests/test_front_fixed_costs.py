"""The front end's cheaper paths build the same Function as the plain ones (issue 14, build floors).

- `_budget.scan_output`, the one walk of validation, gives the facts the separate walks gave
  (`written_sizes`, `_dag.free_symbols`, the old `_function._entry_flags` and `output_features`).
- `ops.det` / `ops.inv` / `ops.solve` (negation of a minor by `_products.total`, one reciprocal of
  the determinant, zero tests without sympifying) build the very nodes the plain SymPy operators
  built: compared with a reference copy of the old construction.
- `ops._real_and_finite` says True only where SymPy's own queries say True (so the facts
  `_tell_facts` records are the ones it recorded before), and `UNSURE` skips SymPy's question only
  for entries shown real; a non-real entry is still refused.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import symjac as sj
from symjac import _budget, _dag, _determinant, ops

CORPUS = [
    ("x * y", {"x": (), "y": ()}),
    ("log(det(X))", {"X": (4, 4)}),
    ("inv(X)", {"X": (3, 3)}),
    ("tanh(W @ x + b)", {"W": (4, 4), "x": (4,), "b": (4,)}),
    ("softmax(x)", {"x": (5,)}),
    ("relu(X @ X) + abs(X)", {"X": (2, 2)}),
    ("where(x > 0, x, -x) * max(x)", {"x": (3,)}),
    ("sigmoid(x) * exp(-x) + sqrt(x ** 2 + 1)", {"x": (3,)}),
    ("x ** 3 / (1 + x ** 2) + pi * x + e", {"x": (2,)}),
    ("log(1 + exp(x)) - 2.5 * x ** -2", {"x": (2,)}),
    ("solve(X, b)", {"X": (3, 3), "b": (3,)}),
]


def _entry_flags(flat):
    """The walk `_function` ran before `scan_output`: `{node: bits}`, HAS_UNDEFINED (holds zoo, nan
    or an infinity), HAS_I (holds I), NOT_POLYNOMIAL (not made of real symbols and real numbers by
    `+`, `*` and integer powers)."""
    undefined = frozenset((sympy.zoo, sympy.nan, sympy.oo, -sympy.oo))
    memo = {}

    def step(node):
        bits = 0
        for arg in node.args:
            bits |= memo[arg] & (_budget.HAS_UNDEFINED | _budget.HAS_I)
        if node in undefined:
            bits |= _budget.HAS_UNDEFINED
        if node is sympy.I:
            bits |= _budget.HAS_I
        if node.is_Symbol:
            polynomial = node.is_real is True
        elif node.is_Number:
            polynomial = node.is_Rational or node.is_Float
        elif node.is_Add or node.is_Mul:
            polynomial = not any(memo[arg] & _budget.NOT_POLYNOMIAL for arg in node.args)
        elif node.is_Pow and node.exp.is_Integer:
            polynomial = not memo[node.base] & _budget.NOT_POLYNOMIAL
        else:
            polynomial = False
        return bits if polynomial else bits | _budget.NOT_POLYNOMIAL

    return _dag.evaluate(flat, step, memo=memo)


def _old_output_features(flat, symbols, in_size):
    """`_budget.output_features` as it was before the one walk (reference copy)."""
    sizes = _budget.written_sizes(flat, refuse=False)
    free = _dag.free_symbols(flat)
    counts = [len(free[entry] & symbols) for entry in flat]
    node_sizes = {}
    distinct = dag_inputs = branches = 0
    for node in _dag.postorder(flat):
        distinct += 1
        inside = len(free[node] & symbols) if node.args else 0
        dag_inputs += inside
        if node.args:
            node_sizes[node] = 1 + sum(node_sizes.get(arg, 1) for arg in node.args)
            if isinstance(node, _budget._BRANCHES):
                branches += node_sizes[node] * inside
    return sj._cost.Features(
        out_size=len(flat), in_size=in_size, dense=len(flat) * in_size, nonzeros=sum(counts),
        written=sum(sizes), distinct=distinct, dag_inputs=dag_inputs,
        jacobian_written=sum(s * c for s, c in zip(sizes, counts)), branches=branches)


def _check_scan(flat, symbols, in_size=1):
    scan = _budget.scan_output(flat, symbols, refuse=False)
    sizes = _budget.written_sizes(flat, refuse=False)
    assert [scan.sizes[e] for e in flat] == sizes
    free = _dag.free_symbols(flat)
    flags = _entry_flags(flat)
    assert set(scan.sizes) == set(free) == set(flags)
    for node, found in free.items():
        assert scan.free[node] == found, node
        assert scan.bits[node] & 7 == flags[node], node  # HAS_UNDEFINED | HAS_I | NOT_POLYNOMIAL
        assert bool(scan.bits[node] & _budget.STRAY) == bool(found - symbols), node
    assert _budget.output_features(flat, symbols, in_size) == _old_output_features(flat, symbols, in_size)
    return scan


@pytest.mark.parametrize("text, shapes", CORPUS, ids=[t for t, _ in CORPUS])
def test_one_walk_gives_the_facts_of_the_separate_walks(text, shapes):
    f = sj.function(text, **shapes)
    flat = list(f.output.reshape(-1))
    symbols = {s for inp in f.inputs for s in inp.flat_symbols}
    scan = _check_scan(flat, symbols, sum(inp.size for inp in f.inputs))
    assert scan.distinct == len(list(_dag.postorder(flat)))


def test_one_walk_on_nodes_the_parser_never_builds():
    x, y = sympy.symbols("x y", real=True)
    q = sympy.Symbol("q")  # not real, not an input
    entries = [x * y + 2, sympy.exp(x), sympy.I * x, sympy.Mul(x, sympy.zoo, evaluate=False), q * x,
               sympy.Piecewise((x, x > 0), (y, True)), sympy.Abs(x) * y, 2 ** x, sympy.Rational(1, 3) * x,
               sympy.Pow(-2, x, evaluate=False), sympy.Indexed("A", 1) + x, sympy.pi * x, sympy.nan + x]
    scan = _check_scan(entries, {x, y})
    # the number candidates: every Rational, and the constant-base Pows to non-integer powers, in postorder
    order = list(_dag.postorder(entries))
    assert scan.numbers == [n for n in order if isinstance(n, sympy.Rational)
                            or (isinstance(n, sympy.Pow) and not n.base.free_symbols and not n.exp.is_Integer)]
    assert any(isinstance(n, sympy.Pow) for n in scan.numbers)


def test_refusals_come_in_the_same_order():
    # a node no code is generated for is refused before the entry-size budget, as by written_sizes
    x = sympy.Symbol("x", real=True)
    with pytest.raises(sj.InvalidExpressionError, match="gamma"):
        sj.function(sympy.gamma(x) + sympy.Integer(10) ** 200, x=())
    # the number budget before the question of realness, the undefined entry before the stray symbol
    with pytest.raises(sj.TooLargeError, match="max_number_digits"):
        sj.function(sympy.sqrt(-1 - x ** 2) + sympy.Integer(10) ** 200, x=())
    with pytest.raises(sj.InvalidExpressionError, match="undefined"):
        sj.function(lambda x: np.array([sympy.Mul(x, sympy.zoo, evaluate=False), x + sympy.Symbol("z")]), x=())
    with pytest.raises(sj.InvalidExpressionError, match="unknown symbol z in output entry"):
        sj.function(lambda x: x + sympy.Symbol("z", real=True), x=())
    with pytest.raises(sj.DomainError, match="negative constant"):
        sj.function(sympy.Pow(-2, x, evaluate=False), x=())


# --------------------------------------------------------------------------- det / inv / solve


class _OldMinors:
    """`ops._Minors` as it was (reference copy): `== 0` tests, `-term`."""

    def __init__(self, rows):
        self.a, self.memo = rows, {}

    def __call__(self, rows, cols):
        if len(rows) == 1:
            return self.a[rows[0]][cols[0]]
        key = (rows, cols)
        if key not in self.memo:
            top, rest = self.a[rows[0]], rows[1:]
            terms = []
            for p, c in enumerate(cols):
                entry = top[c]
                if entry == 0:
                    continue
                minor = self(rest, cols[:p] + cols[p + 1:])
                if minor == 0:
                    continue
                term = entry * minor
                terms.append(-term if p % 2 else term)
            self.memo[key] = sympy.Add(*terms)
        return self.memo[key]


def _old_det(a):
    n = a.shape[0]
    return _OldMinors(a.tolist())(tuple(range(n)), tuple(range(n)))


def _old_inv(a):
    n = a.shape[0]
    minors, every = _OldMinors(a.tolist()), tuple(range(n))
    adjugate = np.empty((n, n), dtype=object)
    for i in range(n):
        for j in range(n):
            m = minors(every[:i] + every[i + 1:], every[:j] + every[j + 1:]) if n > 1 else sympy.S.One
            adjugate[j, i] = -m if (i + j) % 2 else m
    top = minors.a[0]
    d = sympy.Add(*[top[j] * adjugate[j, 0] for j in range(n) if top[j] != 0 and adjugate[j, 0] != 0])
    out = np.empty((n, n), dtype=object)
    for index, v in np.ndenumerate(adjugate):
        out[index] = v / d
    return out


def _same(a, b):
    assert a == b and a.args == b.args and hash(a) == hash(b) and sympy.srepr(a) == sympy.srepr(b)


def _matrices():
    """Matrices written out (up to `_determinant.EXPANSION_MAX`; larger ones are `det` nodes,
    tests/test_det_expansion.py)."""
    rng = np.random.default_rng(11)
    for n in range(1, _determinant.EXPANSION_MAX + 1):
        yield np.array([[sympy.Symbol(f"X[{i}, {j}]", real=True) for j in range(n)] for i in range(n)], dtype=object)
    x, y = sympy.symbols("x y", real=True)
    yield np.array([[x, 0, 2], [sympy.Float(0.0), y, x * y], [1, sympy.Rational(1, 3), x + y]], dtype=object)
    yield np.array([[sympy.tanh(x), 1 / (x + 2)], [-x, sympy.exp(y) - 1]], dtype=object)
    yield np.array([[-x, y], [y, -x]], dtype=object)
    upper = np.array([[sympy.Symbol(f"u{i}{j}", real=True) if j >= i else sympy.S.Zero for j in range(3)]
                      for i in range(3)], dtype=object)
    yield upper
    for n in (2, 3):
        values = np.round(rng.uniform(-2, 2, (n, n)), 1)
        values[rng.uniform(size=(n, n)) < 0.3] = 0.0
        yield np.array([[sympy.Rational(str(v)) for v in row] for row in values], dtype=object)
        yield np.array([[sympy.Float(v) for v in row] for row in values], dtype=object)
        yield values.astype(object) * sympy.Symbol("s", real=True)


def test_det_inv_solve_build_the_nodes_they_built_before():
    count = 0
    for a in _matrices():
        a = ops.as_symbolic(a)
        d = ops.det(a)[()]
        _same(d, _old_det(a))
        if _old_det(a) == 0:
            continue
        count += 1
        for got, want in zip(ops.inv(a).flat, _old_inv(a).flat):
            _same(got, want)
        n = a.shape[0]
        b = np.array([sympy.Symbol(f"b{i}", real=True) for i in range(n)], dtype=object)
        adjugate, det = ops._adjugate_and_det("solve", a)
        for got, want in zip(ops.solve(a, b).flat, (ops._mm2(adjugate, b.reshape(-1, 1)).reshape(-1) / det)):
            _same(got, want)
    assert count >= 10


def test_negative_is_sympys_negation():
    x, y, z = sympy.symbols("x y z", real=True)
    for e in [x + y, x * y - 2 * z + 3, -x - y, sympy.tanh(x) + x * y, x, 2 * x, sympy.Integer(3), x ** 2 + sympy.Float(1.5),
              sympy.Add(x, sympy.Mul(2, y + z, evaluate=False)), ops.det(next(iter(_matrices())))[()]]:
        _same(_determinant.negative(e), -e)


def test_a_wrong_reference_is_told_apart():
    # the comparison above can fail: a different but equal-valued expansion is not the same node
    a = np.array([[sympy.Symbol(f"a{i}{j}", real=True) for j in range(3)] for i in range(3)], dtype=object)
    other = sympy.Matrix(a.tolist()).det(method="berkowitz")
    assert sympy.expand(other - ops.det(a)[()]) == 0
    with pytest.raises(AssertionError):
        _same(ops.det(a)[()], other)


# --------------------------------------------------------------------------- real and finite


def test_real_and_finite_only_where_sympy_says_so():
    x, y = sympy.symbols("x y", real=True)
    p = sympy.Symbol("p")  # no assumptions
    told = ops.tanh(np.array(x * y + 1, dtype=object))[()]
    shown = [x, x * y + 2, x ** 3 - sympy.Rational(1, 3) * y, sympy.Float(2.5) * x ** 2, told * x + told ** 2,
             ops.exp(np.array(x, dtype=object))[()] + 1]
    not_shown = [1 / x, sympy.sqrt(x), sympy.log(x), p * x, x ** sympy.Rational(1, 2) + 1,
                 sympy.exp(x + 3 * y), sympy.I * x, sympy.zoo, x / y]
    for e in not_shown:  # before any query: SymPy records what it derives, and that is read too
        assert not ops._real_and_finite(e), e
    for e in shown:
        assert ops._real_and_finite(e), e
        assert e.is_extended_real is True and e.is_finite is True, e


def test_unsure_skips_the_question_only_for_entries_shown_real():
    def bits(text, **shapes):
        f = sj.function(text, **shapes)
        flat = list(f.output.reshape(-1))
        scan = _budget.scan_output(flat, {s for inp in f.inputs for s in inp.flat_symbols})
        return [bool(scan.bits[e] & _budget.UNSURE) for e in flat]

    assert bits("tanh(W @ x + b)", W=(2, 2), x=(2,), b=(2,)) == [False, False]
    assert bits("exp(x) * x + 1", x=(2,)) == [False, False]
    assert bits("x * y", x=(), y=()) == [False]
    assert bits("log(det(X))", X=(2, 2)) == [True]
    assert bits("sqrt(x ** 2 + 1)", x=()) == [True]
    assert bits("1 / x", x=()) == [True]  # a negative power: not shown finite
    # not real anywhere: still asked (the validation's question, not the parser's), still refused
    for build in (lambda x: ops.log(-1 - ops.tanh(x) ** 2), lambda x: ops.log(-x ** 2 - 1),
                  lambda x: ops.sqrt(-1 - ops.exp(x))):
        with pytest.raises(sj.InvalidExpressionError, match=r"output entry \(\) is not real"):
            sj.function(build, x=())


def test_matrix_products_sum_to_sympys_nodes():
    # rows of two-symbol products are pre-sorted by a cheap key, then summed by _products.total
    def plain(a, b):
        return [sympy.Add(*(a[i, p] * b[p, j] for p in range(a.shape[1])))
                for i in range(a.shape[0]) for j in range(b.shape[1])]

    X = ops.entry_symbols("X", (4, 4))
    W, x = ops.entry_symbols("W", (3, 5)), ops.entry_symbols("x", (5, 1))
    mixed = np.array([[sympy.Symbol("a", real=True), sympy.Symbol("a")], [sympy.Symbol("b", positive=True),
                      sympy.Symbol("B", real=True)]], dtype=object)  # same names, other assumptions
    numbers = np.array([[2, sympy.Symbol("c", real=True)], [sympy.Rational(1, 2), -1]], dtype=object)
    for a, b in [(X, X), (X, X.T.copy()), (W, x), (mixed, mixed), (mixed, mixed.T.copy()), (numbers, mixed), (X[:2, :2], mixed)]:
        for got, want in zip(ops._mm2(a, b).flat, plain(a, b)):
            _same(got, want)
