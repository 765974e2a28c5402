"""`det`, `inv` and `solve`: written out by cofactor expansion with shared minors up to 3 x 3
(`_determinant._Minors`), one exact `det` node above (`symjac._determinant`); `log` of a sum or of
a node built without SymPy's zero query.

The expressions differ from SymPy's Berkowitz ones, so they are checked against those symbolically
(the difference expands to 0, the node written out by `_determinant.expanded`), against NumPy's
LAPACK values, and through the whole pipeline: the exact Jacobian of `log(det(X))` against
`inv(X).T` (a different formula) and torch autograd."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import symjac as sj
from symjac import _determinant, ops
from symjac._determinant import det as Det


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
    d = ops.det(a)[()]
    assert isinstance(d, Det) == (n > _determinant.EXPANSION_MAX)  # written out up to 3 x 3, a node above
    assert sympy.expand(_determinant.expanded(d) - berkowitz) == 0
    adjugate = sympy.Matrix(n, n, list(a.flat)).adjugate(method="berkowitz")
    inverse = ops.inv(a)
    for (i, j), v in np.ndenumerate(inverse):
        assert sympy.expand(_determinant.expanded(v) * berkowitz - adjugate[i, j]) == 0


def test_values_match_lapack_with_zeros_and_constants():
    rng = np.random.default_rng(3)
    for n in range(1, 6):
        values = np.round(rng.uniform(-2, 2, (n, n)), 1)
        values[rng.uniform(size=(n, n)) < 0.3] = 0.0  # structural zeros are skipped
        exact = np.array([[sympy.Rational(str(v)) for v in row] for row in values], dtype=object)
        d = ops.det(exact)[()]
        assert d.is_Rational  # numbers give the exact number, at every size
        assert float(d) == pytest.approx(np.linalg.det(values), rel=1e-9, abs=1e-12)
        if d != 0:
            inverse = np.array(ops.inv(exact).tolist(), dtype=float)
            np.testing.assert_allclose(inverse, np.linalg.inv(values), rtol=1e-9, atol=1e-12)
    with pytest.raises(sj.DomainError, match="singular"):
        ops.inv(np.array([[1, 2], [2, 4]], dtype=object))
    with pytest.raises(sj.DomainError, match="singular"):  # a zero row makes a node exactly 0
        ops.inv(np.array([[1, 2, 3, 4], [0, 0, 0, 0], [5, 6, 7, 8], [9, 1, 2, 3]], dtype=object) * _symbols(4))
    assert ops.det(np.zeros((0, 0), dtype=object))[()] == 1


def test_node_rules_triangular_zero_numbers_and_small_sizes():
    a = _symbols(4)
    upper = np.triu(a)
    assert ops.det(upper)[()] == sympy.Mul(*np.diag(a))  # triangular: the diagonal's product
    assert ops.det(np.tril(a))[()] == sympy.Mul(*np.diag(a))  # lower triangular too
    b = a.copy()
    b[:, 2] = 0
    assert ops.det(b)[()] == 0  # a zero column
    assert Det(*_symbols(2).flat) == sympy.expand(sympy.Matrix(_symbols(2).tolist()).det())  # a node is >= 3 x 3
    assert isinstance(Det(*_symbols(3).flat), Det)
    with pytest.raises(TypeError, match=r"n\*\*2 entries"):
        Det(*list(a.flat)[:15])


@pytest.mark.parametrize("n", [4, 5])
def test_node_derivatives_are_the_cofactors(n):
    a = _symbols(n)
    d = ops.det(a)[()]
    written = _determinant.expanded(d)
    for (i, j), x in np.ndenumerate(a):
        first = d.diff(x)
        assert sympy.expand(_determinant.expanded(first) - written.diff(x)) == 0
        assert first.diff(x) == 0  # the cofactor of (i, j) holds no entry of row i or column j
    x, y = a[0, 0], a[1, 1]
    assert sympy.expand(_determinant.expanded(d.diff(x, y)) - written.diff(x, y)) == 0


def test_codes_evaluate_the_determinant_batched_in_both_dtypes():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    for n in (3, 4, 6):
        m = rng.standard_normal((5, n, n))
        args = [m[:, i, j] for i in range(n) for j in range(n)]
        np.testing.assert_allclose(_determinant.numpy_helpers()["_symjac_det"](*args), np.linalg.det(m), rtol=1e-12)
        for dtype in (torch.float32, torch.float64):
            t = [torch.as_tensor(v, dtype=dtype) for v in args]
            got = _determinant.torch_helpers()["_symjac_det"](*t)
            assert got.dtype == dtype
            np.testing.assert_allclose(got.numpy(), np.linalg.det(m), rtol=1e-4 if dtype == torch.float32 else 1e-12)
        # scalars broadcast against arrays (a constant entry beside input entries)
        args[1] = 0.5
        m[:, 0, 1] = 0.5
        np.testing.assert_allclose(_determinant.numpy_helpers()["_symjac_det"](*args), np.linalg.det(m), rtol=1e-12)
    import mpmath

    with mpmath.workdps(30):
        value = _determinant.MPMATH_HELPERS["det"](*[mpmath.mpf(v) for v in m[0].flat])
    assert float(value) == pytest.approx(np.linalg.det(m[0]), rel=1e-12)
    assert float(Det(*[sympy.Float(v) * sympy.pi / sympy.pi for v in m[0].flat]).evalf()) == pytest.approx(
        np.linalg.det(m[0]), rel=1e-12)


@pytest.mark.parametrize("n", [3, 4, 6, 9, 12])
def test_running_error_bound_covers_the_generated_codes_error_including_ill_conditioned_matrices(n):
    """eps times the node's running error bound is at least the actual error (against mpmath) of
    the NumPy code (3 x 3 and 4 x 4 written out, LAPACK's LU above) and of LAPACK itself, for well
    and badly conditioned matrices (and it is not absurdly loose on the well conditioned)."""
    import mpmath

    from symjac._codegen import compile_entries
    from symjac._tolerance import running_error

    a = _symbols(n)
    node = Det(*a.flat)
    bound = compile_entries([running_error(node)], list(a.flat), "numpy")
    rng = np.random.default_rng(n)
    eps = np.finfo(np.float64).eps
    for k in range(6):
        m = rng.standard_normal((n, n))
        if k >= 3:  # nearly singular: two rows nearly equal
            m[1] = m[0] + 10.0 ** (-3 * (k - 2)) * rng.standard_normal(n)
        with mpmath.workdps(60):
            exact = float(mpmath.det(mpmath.matrix(m.tolist())))
        b = float(bound.fn(*m.flat)[0]) * eps
        for value in (np.linalg.det(m), _determinant.numpy_helpers()["_symjac_det"](*m.flat)):
            assert abs(value - exact) <= b, (k, value, exact, b)
    # diagonally dominant (Hadamard's bound close to |det|): about 2 n**2.5 eps relative, not vacuous
    m = _point(n, n)
    assert float(bound.fn(*m.flat)[0]) * eps <= 4 * n**2.5 * eps * abs(np.linalg.det(m))
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


def test_witness_in_real_arithmetic_finds_no_value_through_a_value_that_is_not_real():
    """The witness evaluates in float64: a node that is not real is NaN, and so is everything
    above it. An entry real only through such a node is not witnessed; SymPy decides it (real:
    kept), and one that is not real anywhere is still refused."""
    from symjac._function import _real_somewhere

    x = sympy.Symbol("x", real=True)
    through = sympy.Abs(sympy.log(-x**2 - 1))  # real, but its argument is nowhere real
    assert _real_somewhere([through, sympy.log(x**2 + 1), sympy.asin(x**2 + 2), sympy.log(0 * x + 0.5)], [x]) \
        == [False, True, False, True]
    assert sj.function(through, x=()).output[()] == through
    with pytest.raises(sj.InvalidExpressionError, match="is not real"):
        sj.function(sympy.asin(x**2 + 2), x=())
    f = sj.function("log(det(X))", X=(4, 4))  # det(X) > 0 at one of the points
    assert _real_somewhere([f.output[()]], list(f.inputs[0].flat_symbols)) == [True]


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


def test_torch_code_is_elementary_exact_at_singular_matrices_and_differentiates_in_every_composition():
    """The generated torch code's determinant (expansion up to `TORCH_EXPANSION_MAX`, elimination
    above): LAPACK's values in both dtypes, 0 at singular matrices, its gradient the cofactors, and
    forward over forward equal to reverse over reverse (torch.linalg.det's forward over forward is
    0 in torch 2.13, docs/findings.md)."""
    torch = pytest.importorskip("torch")
    det_code = _determinant.torch_helpers()["_symjac_det"]
    rng = np.random.default_rng(5)
    for n in (3, 4, 5, 8, 9, 11):
        m = rng.standard_normal((4, n, n)) + n * np.eye(n) * (n > 8)
        for dtype, rtol in ((torch.float64, 1e-11), (torch.float32, 2e-4)):
            got = det_code(*[torch.as_tensor(m[:, i, j], dtype=dtype) for i in range(n) for j in range(n)])
            assert got.dtype == dtype
            np.testing.assert_allclose(got.numpy(), np.linalg.det(m), rtol=rtol)
        singular = m[0].copy()
        singular[2] = singular[1]
        zero = det_code(*[torch.tensor(v) for v in singular.flat])
        assert abs(float(zero)) <= 1e-12 * np.prod(np.linalg.norm(singular, axis=1))
        assert float(det_code(*[torch.tensor(0.0)] * (n * n))) == 0.0

        def f(flat):
            return det_code(*flat.unbind())

        x = torch.tensor(m[0].reshape(-1))
        grad = torch.autograd.functional.jacobian(f, x).numpy().reshape(n, n)
        np.testing.assert_allclose(grad, np.linalg.det(m[0]) * np.linalg.inv(m[0]).T, rtol=1e-9, atol=1e-12)
        if n <= 5:
            ff = torch.func.jacfwd(torch.func.jacfwd(f))(x)
            rr = torch.func.jacrev(torch.func.jacrev(f))(x)
            np.testing.assert_allclose(ff.numpy(), rr.numpy(), rtol=1e-9, atol=1e-10)
            assert np.abs(ff.numpy()).max() > 0.1  # not the zero torch.linalg.det's gives


@pytest.mark.parametrize("text, n, options", [("log(det(X))", 4, {"order": 2}), ("det(X)", 5, {"batch": 2})])
def test_second_order_and_batched_checks_of_determinant_nodes_pass(text, n, options):
    f = sj.function(text, X=(n, n))
    x = _point(n, 9)
    if "batch" in options:
        x = np.stack([x, x + 0.1])
    r = sj.check(f, X=x, **options)
    assert r.ok, str(r)


def test_implementation_bounds_stay_within_the_running_bounds_budget():
    """verify's fused-implementation bounds (`_implementations`) are built entry by entry through
    SymPy's tree walks: they take entries only while their written-out sizes fit
    `MAX_RUNNING_TOTAL`, and none of an output that holds a `det` node (`log(det(sigmoid(X)))` at
    16 x 16 ran for minutes before)."""
    from symjac._budget import written_sizes
    from symjac._implementations import implementation_bounds
    from symjac._tolerance import MAX_RUNNING_TOTAL

    f = sj.function("sigmoid(X @ X @ X)", X=(4, 4))
    jac = f.jacobian()
    sizes = written_sizes(list(jac.entries), refuse=False)
    assert sum(sizes) > MAX_RUNNING_TOTAL  # the budget binds here
    compiled, rows, cols = implementation_bounds(f, np.float32, 20.0, jacobian=True)
    taken = len(rows)
    assert 0 < taken < jac.nnz
    assert sum(sizes[:taken]) <= MAX_RUNNING_TOTAL < sum(sizes[:taken + 1])
    assert len(implementation_bounds(f, np.float32, 20.0, jacobian=False)[1]) == 16  # the outputs fit
    for text in ("log(det(sigmoid(X)))", "det(sigmoid(X)) + sigmoid(X[0, 0])"):
        g = sj.function(text, X=(4, 4))
        assert implementation_bounds(g, np.float32, 20.0, jacobian=True) is None


def test_torch_routes_at_unbounded_fused_entries_are_inconclusive_not_a_false_alarm():
    """torch's fused sigmoid backward `y (1 - y)` loses about 1e-11 relative at `sigmoid(12)`; inside
    `inv` (determinant nodes) symjac has no implementation bound there (`_implementations.unbounded_fused`),
    so the torch routes' disagreement alone is inconclusive, not a fail. A wrong candidate still fails."""
    from symjac._implementations import unbounded_fused

    f = sj.function("inv(sigmoid(X))", X=(4, 4))
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (4, 4)) + 12.0 * np.eye(4)
    report = sj.check(f, X=x)
    assert report.verdict == "inconclusive" and "fused sigmoid" in report.reason
    J = f.jacobian().evaluate(X=x)
    for wrong in (-J, J * (1 + 1e-4), J.T):
        assert sj.check(f, X=x, jacobian=wrong).verdict == "fail"
    assert sj.check(f, X=rng.uniform(-1, 1, (4, 4)) + 4.0 * np.eye(4)).verdict == "pass"
    mask = unbounded_fused(f, np.float64, 20.0)
    assert mask is not None and mask.shape == (16, 16) and mask.all()
    assert unbounded_fused(sj.function("sigmoid(x) * x", x=(3,)), np.float64, 20.0) is None  # all bounded
    assert unbounded_fused(sj.function("inv(X)", X=(4, 4)), np.float64, 20.0) is None  # no fused primitive
