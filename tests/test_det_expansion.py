"""`det`, `inv` and `solve` built by cofactor expansion with shared minors (`ops._Minors`, up to
`ops.EXPANSION_MAX`), Berkowitz above; `log` of a sum built without SymPy's zero query.

The expressions differ from SymPy's Berkowitz ones, so they are checked against those symbolically
(the difference expands to 0), against NumPy's LAPACK values, and through the whole pipeline: the
exact Jacobian of `log(det(X))` against `inv(X).T` (a different formula) and torch autograd."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import symjac as sj
from symjac import ops


def _symbols(n: int, name: str = "a") -> np.ndarray:
    return np.array([[sympy.Symbol(f"{name}{i}_{j}", real=True) for j in range(n)] for i in range(n)],
                    dtype=object).reshape(n, n)


def _point(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 0.5 * rng.standard_normal((n, n)) / np.sqrt(n) + n * np.eye(n)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_expansion_equals_berkowitz(n):
    a = _symbols(n)
    berkowitz = sympy.Matrix(n, n, list(a.flat)).det(method="berkowitz")
    assert sympy.expand(ops.det(a)[()] - berkowitz) == 0
    adjugate = sympy.Matrix(n, n, list(a.flat)).adjugate(method="berkowitz")
    inverse = ops.inv(a)
    for (i, j), v in np.ndenumerate(inverse):
        assert sympy.expand(v * berkowitz - adjugate[i, j]) == 0


def test_values_match_lapack_with_zeros_and_constants():
    rng = np.random.default_rng(3)
    for n in range(1, ops.EXPANSION_MAX + 1):
        values = np.round(rng.uniform(-2, 2, (n, n)), 1)
        values[rng.uniform(size=(n, n)) < 0.3] = 0.0  # structural zeros are skipped
        exact = np.array([[sympy.Rational(str(v)) for v in row] for row in values], dtype=object)
        d = ops.det(exact)[()]
        assert float(d) == pytest.approx(np.linalg.det(values), rel=1e-9, abs=1e-12)
        if d != 0:
            inverse = np.array(ops.inv(exact).tolist(), dtype=float)
            np.testing.assert_allclose(inverse, np.linalg.inv(values), rtol=1e-9, atol=1e-12)
    with pytest.raises(sj.DomainError, match="singular"):
        ops.inv(np.array([[1, 2], [2, 4]], dtype=object))
    assert ops.det(np.zeros((0, 0), dtype=object))[()] == 1


def test_berkowitz_above_the_expansion_size(monkeypatch):
    monkeypatch.setattr(ops, "EXPANSION_MAX", 2)
    a = _symbols(3)
    d = ops.det(a)[()]
    assert sympy.expand(d - sympy.Matrix(3, 3, list(a.flat)).det(method="bareiss")) == 0
    x = _point(3)
    inverse = sympy.lambdify(list(a.flat), sympy.Matrix(ops.inv(a).tolist()))(*x.flat)
    np.testing.assert_allclose(np.asarray(inverse, dtype=float), np.linalg.inv(x), rtol=1e-12)


def test_batched_det_and_solve():
    a = np.stack([_symbols(3), _symbols(3, "b")])
    assert ops.det(a).shape == (2,)
    x = np.stack([_point(3, 1), _point(3, 2)])
    values = dict(zip(a.reshape(-1), x.reshape(-1)))
    got = [float(e.subs(values)) for e in ops.det(a)]
    np.testing.assert_allclose(got, np.linalg.det(x), rtol=1e-12)
    f = sj.function("solve(X, b)", X=(3, 3), b=(3,))
    b = np.array([1.0, -2.0, 0.5])
    from symjac.backends._numpy import evaluate_forward

    np.testing.assert_allclose(evaluate_forward(f, {"X": x[0], "b": b}), np.linalg.solve(x[0], b), rtol=1e-12)


@pytest.mark.parametrize("n", [3, 4, 6])
def test_logdet_jacobian_is_inverse_transpose(n):
    f = sj.function("log(det(X))", X=(n, n))
    x = _point(n, n)
    J = f.jacobian().evaluate(X=x)
    np.testing.assert_allclose(J, np.linalg.inv(x).T, rtol=1e-10, atol=1e-12)
    assert not np.allclose(J, np.linalg.inv(x), rtol=1e-6)  # the layout is not transposed by accident


@pytest.mark.parametrize("text", ["log(det(X))", "det(X) * trace(X)", "log(det(X.T @ X + eye(4)))", "inv(X)"])
def test_det_class_checks_and_wrong_jacobians_are_caught(text):
    f = sj.function(text, X=(4, 4))
    x = _point(4, 7)
    assert sj.check(f, X=x).ok
    J = f.jacobian().evaluate(X=x)
    for wrong in (-J, J * (1 + 1e-4)):
        assert not sj.check(f, X=x, jacobian=wrong).ok


def test_log_of_a_sum_is_left_unevaluated_and_numbers_still_fold():
    x, y = sympy.symbols("x y", real=True)
    built = ops.log(np.array(x * y + x, dtype=object))[()]
    assert isinstance(built, sympy.log) and built.args[0] == x * y + x
    assert ops.log(1)[()] == 0
    assert ops.log(np.array(sympy.Integer(2) + sympy.Integer(3), dtype=object))[()] == sympy.log(5)
    assert ops.log(np.array(sympy.exp(x), dtype=object))[()] == x  # not a sum: SymPy's rules apply


def test_symbol_products_are_sympys_own():
    names = ["X[0, 1]", "X[10, 2]", "X[2, 10]", "b", "a_1", "W[31, 0]", "x", "Z"]
    symbols = [sympy.Symbol(n, real=True) for n in names] + [sympy.Symbol("p", positive=True), sympy.Symbol("q")]
    for a in symbols:
        for b in symbols:
            built, own = ops._times(a, b), a * b
            assert built == own and built.args == own.args and hash(built) == hash(own)
    x = sympy.Symbol("x", real=True)
    assert ops._times(x, x) == x**2 and ops._times(2, x) == 2 * x
    X = np.array([[sympy.Symbol(f"X[{i}, {j}]", real=True) for j in range(3)] for i in range(3)], dtype=object)
    expected = sympy.Matrix(X.tolist()) * sympy.Matrix(X.tolist())
    assert sympy.Matrix(ops.matmul(X, X).tolist()) == expected


def test_real_witness_skips_only_entries_real_at_a_point():
    from symjac._budget import HAS_I, HAS_UNDEFINED, NOT_POLYNOMIAL, scan_output
    from symjac._function import _real_somewhere

    x, y = sympy.symbols("x y", real=True)
    entries = [sympy.log(x**2 + y**2 + 1), sympy.log(-x**2 - 1), sympy.sqrt(-(x - y)**2 - 2),
               sympy.log(x * y + 1), sympy.Heaviside(x)]
    assert _real_somewhere(entries, [x, y]) == [True, False, False, True, False]
    scan = scan_output([x * y + 2, sympy.exp(x), sympy.I * x, sympy.Mul(x, sympy.zoo, evaluate=False)], {x, y},
                       refuse=False)
    flags = {node: fact[1] for node, fact in scan.facts.items()}
    assert [flags[e] & NOT_POLYNOMIAL for e in (x * y + 2, sympy.exp(x))] == [0, NOT_POLYNOMIAL]
    assert flags[sympy.I * x] & HAS_I and flags[sympy.Mul(x, sympy.zoo, evaluate=False)] & HAS_UNDEFINED
    # entries the witness cannot show real still get SymPy's question: refused when not real, kept
    # when SymPy does not know (log(x * y - 3) is real where x * y > 3, at none of the 16 points)
    for expr in (sympy.log(-x**2 - 1), sympy.sqrt(-x**2 - 1)):
        with pytest.raises(sj.InvalidExpressionError, match="is not real"):
            sj.function(expr, x=())
    assert sj.function("log(x * y - 3)", x=(), y=()).output.shape == ()


def test_tanh_of_a_sum_is_sympys_expression():
    W = np.array([[sympy.Symbol(f"W[{i}, {j}]", real=True) for j in range(3)] for i in range(3)], dtype=object)
    x = np.array([sympy.Symbol(f"x[{i}]", real=True) for i in range(3)], dtype=object)
    b = np.array([sympy.Symbol(f"b[{i}]", real=True) for i in range(3)], dtype=object)
    for u in list(ops.matmul(W, x) + b) + list(-ops.matmul(W, x) - b) + [x[0] - x[1], x[1] - x[0], 2 * x[0] + 1]:
        built, own = ops.tanh(np.array(u, dtype=object))[()], sympy.tanh(u)
        assert built == own and hash(built) == hash(own), (u, built, own)
    assert ops.tanh(0)[()] == 0 and ops.tanh(np.array(sympy.Integer(-2), dtype=object))[()] == -sympy.tanh(2)
    f = sj.function("tanh(W @ x + b)", W=(3, 3), x=(3,), b=(3,))
    rng = np.random.default_rng(5)
    at = {"W": rng.standard_normal((3, 3)), "x": rng.standard_normal(3), "b": rng.standard_normal(3)}
    assert sj.check(f, **at).ok
    J = f.jacobian("W").evaluate(**at)
    expected = (1 - np.tanh(at["W"] @ at["x"] + at["b"]) ** 2)[:, None, None] * np.eye(3)[:, :, None] * at["x"]
    np.testing.assert_allclose(J, expected, rtol=1e-12, atol=1e-15)


def test_witness_evaluates_stable_primitives_where_their_arguments_are_real():
    from symjac._function import _real_somewhere

    x = sympy.Symbol("x", real=True)
    f = sj.function("softmax(x)", x=(4,))
    assert all(_real_somewhere(list(f.output), list(f.inputs[0].flat_symbols)))
    g = sj.function("sigmoid(x) + softplus(x) + log1p(x * x) + expm1(x)", x=())
    assert _real_somewhere([g.output[()]], [x]) == [True]
    from symjac._stable import sigmoid

    assert _real_somewhere([sigmoid(sympy.sqrt(-1 - x**2))], [x]) == [False]  # its argument is not real
    with pytest.raises(sj.InvalidExpressionError, match="is not real"):
        sj.function(sympy.log(-1 - x**2) + sympy.exp(x), x=())
