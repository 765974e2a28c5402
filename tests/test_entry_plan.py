"""The entry plan (`symjac._entry_plan`): entries as polynomials over atoms, evaluated as a table.

Every plan's values are compared with the direct per-entry generated code of the same entries
(`compile_entries`, one column per entry), in NumPy and torch, float64 and float32, and through
torch's autograd (reverse, and forward mode with dual tensors).
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy
import torch

import symjac as sj
from symjac import _entry_plan
from symjac._codegen import compile_entries
from symjac._entry_plan import plan_entries
from symjac._values import coerce_point
from symjac.backends import _numpy as numpy_backend
from symjac.backends import _torch as torch_backend

RNG_W = np.random.default_rng(11)
W4 = np.round(RNG_W.uniform(-1, 1, (4, 4)), 3) + 0.0005  # non-integer constants
B4 = np.round(RNG_W.uniform(-1, 1, 4), 3) + 0.0005
K3 = np.round(RNG_W.uniform(-1, 1, (3, 3)), 3) + 0.0005
V3 = np.round(RNG_W.uniform(-1, 1, (3, 3)), 3) + 0.0005

CASES = {
    "tanh(W @ x + b)": lambda: sj.function("tanh(W @ x + b)", consts={"W": W4, "b": B4}, x=(4,)),
    "softmax(x)": lambda: sj.function("softmax(x)", x=(5,)),
    "x * sum(tanh(W @ x + b))": lambda: sj.function("x * sum(tanh(W @ x + b))", consts={"W": W4, "b": B4}, x=(4,)),
    "attention, Q input": lambda: sj.function("softmax(Q @ K.T) @ V", consts={"K": K3, "V": V3}, Q=(3, 3)),
    "attention, Q K V inputs": lambda: sj.function("softmax(Q @ K.T) @ V", Q=(2, 2), K=(2, 2), V=(2, 2)),
    "inv(X)": lambda: sj.function("inv(X)", X=(3, 3)),
    "log(det(X))": lambda: sj.function("log(det(X))", X=(3, 3)),
    "X @ X @ X": lambda: sj.function("X @ X @ X", X=(3, 3)),
    "sin(X) * X": lambda: sj.function("sin(X) * X", X=(2, 2)),
    "x**6 + x**2 / (1 + x**2)": lambda: sj.function("x**6 + x**2 / (1 + x**2)", x=(3,)),
    "relu(X @ X) (piecewise)": lambda: sj.function("relu(X @ X)", X=(2, 2)),
    # the kinds of issue 14's benchmark with every argument an input (common factors, cofactors)
    "attention, Q K V inputs, n = 3": lambda: sj.function("softmax(Q @ K.T) @ V", Q=(3, 3), K=(3, 3), V=(3, 3)),
    "tanh(W @ x + b), W x b inputs": lambda: sj.function("tanh(W @ x + b)", W=(3, 3), x=(3,), b=(3,)),
    "sigmoid(W @ x), W x inputs": lambda: sj.function("sigmoid(W @ x)", W=(3, 3), x=(3,)),
    "exp(A @ X)": lambda: sj.function("exp(A @ X)", consts={"A": K3}, X=(3, 3)),
    "softmax(X, axis=1)": lambda: sj.function("softmax(X, axis=1)", X=(3, 4)),
    "X.T @ A @ X": lambda: sj.function("X.T @ A @ X", consts={"A": V3}, X=(3, 3)),
}
IDS = list(CASES)


def _symbols(f):
    return [s for inp in f.inputs for s in inp.flat_symbols]


def _values(f, rng, batch, dtype=np.float64):
    out = {}
    for inp in f.inputs:
        v = rng.standard_normal(batch + inp.shape)
        if len(inp.shape) == 2 and inp.shape[0] == inp.shape[1] and inp.name == "X":
            v = 0.3 * v + 2.0 * np.eye(inp.shape[0])  # inside the domain of inv and log(det)
        out[inp.name] = v.astype(dtype)
    return out


def _direct(exprs, f, point):
    """The entries by per-entry generated code: `(points..., len(exprs))` in float64."""
    code = compile_entries(list(exprs), _symbols(f), "numpy")
    return numpy_backend._assemble(code.fn(*numpy_backend._arguments(f, point)), point.batch_shape, np.float64)


def _dense(J, entries):
    """Nonzero values `(batch..., nnz)` scattered into the dense layout."""
    out = np.zeros(entries.shape[:-1] + (int(np.prod(J.shape[: len(J.function.out_shape)])) * J.wrt.size,))
    out[..., J.rows * J.wrt.size + J.cols] = entries
    return out.reshape(entries.shape[:-1] + J.shape)


@pytest.mark.parametrize("case", IDS)
def test_plan_equals_direct_code_float64(case):
    f = CASES[case]()
    point = coerce_point(f.inputs, _values(f, np.random.default_rng(1), (7,)))
    # 1e-13 relative, and absolute 1e-13 x the largest value: sums in another order than the
    # generated code differ by rounding relative to their terms (`inv`'s cofactors cancel)
    expected = _direct(f.output.reshape(-1), f, point)
    np.testing.assert_allclose(numpy_backend.forward(f, point).reshape(7, -1), expected, rtol=1e-13, atol=1e-13 * np.abs(expected).max())
    for inp in f.inputs:
        J = f.jacobian(inp.name)
        got = numpy_backend.jacobian(J, point)
        assert got.dtype == np.float64 and got.shape == (7,) + J.shape
        expected = _dense(J, _direct(J.entries, f, point))
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13 * np.abs(expected).max())


@pytest.mark.parametrize("case", IDS)
def test_plan_keeps_float32_and_batch_shapes(case):
    f = CASES[case]()
    vals = _values(f, np.random.default_rng(2), (2, 3))
    point64 = coerce_point(f.inputs, vals)
    point32 = coerce_point(f.inputs, {k: v.astype(np.float32) for k, v in vals.items()})
    J = f.jacobian(f.inputs[0].name)
    got = numpy_backend.jacobian(J, point32)
    assert got.dtype == np.float32 and got.shape == (2, 3) + J.shape
    expected = numpy_backend.jacobian(J, point64)
    scale = np.max(np.abs(expected))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * scale)
    assert numpy_backend.forward(f, point32).dtype == np.float32


@pytest.mark.parametrize("case", IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_torch_table_agrees_with_numpy(case, dtype):
    f = CASES[case]()
    vals = _values(f, np.random.default_rng(3), (4,), dtype)
    point = coerce_point(f.inputs, vals)
    tensors = {k: torch.from_numpy(v) for k, v in vals.items()}
    rtol = 1e-13 if dtype == np.float64 else 2e-5
    for inp in f.inputs:
        J = f.jacobian(inp.name)
        t = torch_backend.exact_jacobian(J, tensors)
        assert t.dtype == torch.from_numpy(np.zeros(1, dtype)).dtype and tuple(t.shape) == (4,) + J.shape
        expected = numpy_backend.jacobian(J, point)
        np.testing.assert_allclose(t.numpy(), expected, rtol=rtol, atol=rtol * max(1.0, np.max(np.abs(expected))))
    y = torch_backend.forward(f, tensors)
    np.testing.assert_allclose(y.numpy(), numpy_backend.forward(f, point), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("case", ["x * sum(tanh(W @ x + b))", "softmax(x)", "attention, Q input", "X @ X @ X"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_autograd_through_the_table_reverse_and_forward_mode(case, dtype):
    """The torch forward is the forward plan's table: reverse mode and forward mode (dual
    tensors) through it give the exact Jacobian."""
    f = CASES[case]()
    point = coerce_point(f.inputs, _values(f, np.random.default_rng(4), (), dtype))
    rtol = 1e-12 if dtype == np.float64 else 1e-4
    for mode in torch_backend.MODES:
        got = torch_backend.autograd_jacobians(f, point, mode)
        for inp in f.inputs:
            expected = numpy_backend.jacobian(f.jacobian(inp.name), point)
            assert got[inp.name].dtype == dtype
            np.testing.assert_allclose(got[inp.name], expected, rtol=rtol, atol=rtol * max(1.0, np.max(np.abs(expected))))


def test_reverse_mode_through_the_jacobian_table_gives_the_hessian():
    f = CASES["x * sum(tanh(W @ x + b))"]()
    J = f.jacobian()
    x = np.random.default_rng(5).standard_normal(4)
    plan, _ = numpy_backend.jacobian_plan(J, "torch")
    assert plan.n_atoms > 0 and plan.n_polynomials > 0  # the table, not per-entry code, is differentiated
    hessian = torch.func.jacrev(lambda t: torch_backend.exact_jacobian(J, {"x": t}))(torch.from_numpy(x))
    expected = f.derivative(order=2).evaluate(x=x)
    np.testing.assert_allclose(hessian.numpy(), expected, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------ structure
def test_tanh_layer_is_sixteen_atoms_and_a_table():
    f = sj.function("tanh(W @ x + b)", consts={"W": W4, "b": B4}, x=(4,))
    plan, dense = numpy_backend.jacobian_plan(f.jacobian())
    # 4 atoms tanh(u_i), computed once each; the 16 entries W[i, j] - W[i, j] tanh(u_i)**2 are
    # one stage of degree-2 polynomials over them
    assert plan.n_atoms == 4 and plan.code.n_entries == 4
    assert len(plan.stages) == 1 and plan.n_polynomials == 16 and plan.degree == 2
    stage = plan.stages[0]
    np.testing.assert_allclose(np.sort(stage.offsets), np.sort(W4.reshape(-1)))
    assert set(stage.monomials.reshape(-1)) <= set(range(4, 8))  # only the atoms' columns
    forward = numpy_backend.forward_plan(f)
    # each output is an atom, or minus one (SymPy writes tanh(-u) as -tanh(u))
    assert forward.n_atoms == 4 and forward.degree == 1
    assert all(np.all(np.abs(s.coefs) == 1.0) and s.one_term_each for s in forward.stages)


def test_softmax_jacobian_reads_the_forward_atoms():
    f = sj.function("softmax(x)", x=(6,))
    plan, _ = numpy_backend.jacobian_plan(f.jacobian())
    assert plan.n_atoms == 6  # exp(x_i - logsumexp(x))
    # off-diagonal -s_i s_j: one stage; diagonal (1 - s_i) s_i reads the column 1 - s_i
    assert [s.n_polynomials for s in plan.stages] == [15 + 6, 6]


def test_sums_inside_products_are_columns_not_expanded():
    """`X[1, 0] * (X[0, 0] + X[1, 1])` reads a column `X[0, 0] + X[1, 1]`: the entry is evaluated
    with the operations its formula writes, never multiplied out."""
    X = sympy.symbols("a b c", real=True)
    a, b, c = X
    expr = c * (a - b)
    plan = plan_entries([expr], list(X), "numpy")
    assert plan.code is None and [s.n_polynomials for s in plan.stages] == [1, 1]
    assert plan.stages[1].monomials.shape == (1, 2)
    f = sj.function(expr, a=(), b=(), c=())
    av, bv, cv = 1.0 + 2.0**-52, 1.0, 0.1
    point = coerce_point(f.inputs, {"a": av, "b": bv, "c": cv})
    exact = cv * 2.0**-52  # a - b is exact, and the product only scales by a power of two
    assert cv * av - cv * bv != exact  # multiplied out, the rounding of c * a would show
    table = numpy_backend._table(plan, f, point)
    assert table[plan.take[0]] == exact


def test_an_entry_with_two_private_atoms_stays_one_code_atom():
    f = sj.function("sin(X) * X", X=(2, 2))
    plan, _ = numpy_backend.jacobian_plan(f.jacobian())
    assert plan.n_polynomials == 0 and plan.n_atoms == 4  # X cos(X) + sin(X): no sharing, no split
    f = sj.function("x * sum(tanh(W @ x + b))", consts={"W": W4, "b": B4}, x=(4,))
    plan = numpy_backend.forward_plan(f)
    assert plan.n_atoms == 4 and [s.n_polynomials for s in plan.stages] == [1, 4]  # the sum, then x_i * sum


def test_huge_entry_and_piecewise_fall_back_to_code_atoms():
    f = sj.function("sum(sin(X))", X=(17, 17))  # one entry of 289 terms > MAX_MONOMIALS_PER_ENTRY
    assert 17 * 17 > _entry_plan.MAX_MONOMIALS_PER_ENTRY
    plan = numpy_backend.forward_plan(f)
    assert plan.n_atoms == 1 and plan.n_polynomials == 0
    x = np.random.default_rng(6).standard_normal((3, 17, 17))
    np.testing.assert_allclose(f(X=x), np.sin(x).sum(axis=(1, 2)), rtol=1e-13)
    f = sj.function("relu(X @ X)", X=(2, 2))
    plan = numpy_backend.forward_plan(f)
    assert plan.n_atoms == 4 and plan.n_polynomials == 0  # Max(0, ...) is an atom
    x = np.random.default_rng(7).standard_normal((5, 2, 2))
    np.testing.assert_allclose(f(X=x), np.maximum(x @ x, 0), rtol=1e-13)


def test_high_degree_terms_are_atoms():
    x = sympy.Symbol("x", real=True)
    plan = plan_entries([3 * x**5 + x, x**2 * (x + 1) ** 3], [x], "numpy")
    # x**5 (degree 5 > MAX_DEGREE) is an atom; x**2 (x + 1)**3 has degree 5 over x and x + 1
    assert plan.code is not None and plan.code.n_entries == 2
    f = sj.function("3 * x**5 + x", x=())
    np.testing.assert_allclose(f.jacobian().evaluate(x=[0.5, -2.0]), 15 * np.array([0.5, -2.0]) ** 4 + 1, rtol=1e-14)


def test_equal_entries_share_one_column():
    x, y = sympy.symbols("x y", real=True)
    s = sympy.exp(x) + y
    plan = plan_entries([s * x, s, s * x, sympy.exp(x)], [x, y], "numpy")
    assert plan.take[0] == plan.take[2] and len(set(plan.take.tolist())) == 3
    assert plan.n_atoms == 1  # exp(x)


def test_polynomial_stages_in_chunks_equal_one_pass(monkeypatch):
    f = CASES["attention, Q input"]()
    x = _values(f, np.random.default_rng(8), (9,))
    whole = f.jacobian().evaluate(**x)
    f2 = CASES["attention, Q input"]()
    monkeypatch.setattr(numpy_backend, "_CHUNK_ELEMENTS", 30)
    np.testing.assert_array_equal(f2.jacobian().evaluate(**x), whole)


# ------------------------------------------------------------------------------ negative tests
def test_a_corrupted_plan_is_caught_by_the_direct_comparison():
    """The comparison with per-entry code can fail: one coefficient of the table flipped."""
    f = CASES["tanh(W @ x + b)"]()
    J = f.jacobian()
    point = coerce_point(f.inputs, _values(f, np.random.default_rng(9), (3,)))
    plan, dense = numpy_backend.jacobian_plan(J)
    stage = plan.stages[0]
    coefs = stage.coefs.copy()
    coefs[5] = -coefs[5]
    bad = _entry_plan.EntryPlan(
        n_inputs=plan.n_inputs, code=plan.code, constants=plan.constants, take=plan.take,
        stages=(_entry_plan.PolynomialStage(stage.width, stage.pad, stage.monomials, coefs, stage.starts, stage.offsets),),
    )
    good = numpy_backend._table(plan, f, point)[..., plan.take]
    wrong = numpy_backend._table(bad, f, point)[..., plan.take]
    direct = _direct(J.entries, f, point)
    np.testing.assert_allclose(good, direct, rtol=1e-13)
    assert not np.allclose(wrong, direct, rtol=1e-6)


@pytest.mark.parametrize("case", ["tanh(W @ x + b)", "softmax(x)", "attention, Q input"])
def test_check_catches_wrong_candidates_and_passes_the_right_one(case):
    f = CASES[case]()
    name = f.inputs[0].name
    at = _values(f, np.random.default_rng(10), ())
    J = f.jacobian(name).evaluate(**at)
    assert sj.check(f, at=at, jacobian=J).ok
    n_out, n_in = int(np.prod(f.out_shape)), f.inputs[0].size
    wrongs = {"sign": -J, "off by 1e-4": J * np.where(np.abs(J) == np.abs(J).max(), 1 + 1e-4, 1.0)}
    if n_out == n_in and not np.allclose(J.reshape(n_out, n_in), J.reshape(n_out, n_in).T):  # softmax's is symmetric
        wrongs["transposed"] = J.reshape(n_out, n_in).T.reshape(J.shape)
    for label, wrong in wrongs.items():
        report = sj.check(f, at=at, jacobian=wrong)
        assert report.verdict == "fail" and report.odd_one_out == "candidate", (label, str(report))
