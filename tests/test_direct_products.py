"""A plan's last stage written straight into the dense Jacobians (`backends._numpy._direct`):
`tanh(W @ x + b)`'s Jacobians by `W` (`x_k * (1 - t_i**2)` at `[i, i, k]`) and by `x`
(`W[i, k] * (1 - t_i**2)`) are broadcast products of the inputs and the stage's earlier columns,
written into the output, not products in the table copied out. The values are the table's, bit for
bit, and the per-entry generated code's to 1e-13; a wrong placement or factor is caught."""

from __future__ import annotations

import numpy as np
import pytest

import symjac as sj
from symjac._values import coerce_point
from symjac.backends import _numpy as numpy_backend
from symjac.backends._numpy import _direct, _direct_products, _group
from _reference import assert_chunks_equal_one_pass, per_entry_jacobian

W8 = np.round(np.random.default_rng(4).uniform(-1, 1, (8, 8)), 3) + 0.0005
CASES = {
    "tanh(W @ x + b), W x b inputs": lambda: sj.function("tanh(W @ x + b)", W=(8, 8), x=(8,), b=(8,)),
    "tanh(W @ x + b), W constant": lambda: sj.function("tanh(W @ x + b)", consts={"W": W8}, x=(8,), b=(8,)),
    "sigmoid(A @ x), A x inputs, A 8 x 9": lambda: sj.function("sigmoid(A @ x)", A=(8, 9), x=(9,)),
    "tanh(W @ x + b) * 3, W x b inputs": lambda: sj.function("3 * tanh(W @ x + b)", W=(8, 8), x=(8,), b=(8,)),
    "exp(X) * X": lambda: sj.function("exp(X) * X", X=(2, 3)),
    "softmax(x)": lambda: sj.function("softmax(x)", x=(6,)),
}
IDS = list(CASES)


def _point(f, batch, dtype, seed=5):
    rng = np.random.default_rng(seed)
    return {inp.name: rng.uniform(-1.5, 1.5, batch + inp.shape).astype(dtype) for inp in f.inputs}


def _without_direct(make, point, monkeypatch):
    """The joint evaluation of a fresh Function with the direct products switched off."""
    with monkeypatch.context() as m:
        m.setattr(numpy_backend, "_direct", lambda *a, **k: None)
        return make().jacobians().evaluate(**point)


def test_the_tanh_layer_writes_its_last_stage_straight_into_the_outputs():
    f = CASES["tanh(W @ x + b), W x b inputs"]()
    jacs = f.jacobians()
    plan, dense = numpy_backend.jacobians_plan(f, tuple(jacs.values()))
    runs = tuple(numpy_backend._runs(index, plan.zero_column) for index in dense)
    direct = _direct(plan, f, dense, runs)
    assert direct is not None
    # by W: one group of 8 slices of 8 (x times one 1 - t_i**2 each), spaced 8 * 8 + 8 apart;
    # by x: one group of 8 slices (row i of W times 1 - t_i**2); by b: nothing of the last stage
    (w_group,), (x_group,), b_groups = direct.pieces
    assert w_group[:4] == (0, 72, 8, 8) and x_group[:4] == (0, 8, 8, 8) and b_groups == ()
    # the runs left to copy read no row of the last stage
    last = plan.stages[-1]
    for kept in direct.runs:
        assert all(s < last.width or s >= last.width + last.n_polynomials for _, _, s in kept or ())


@pytest.mark.parametrize("case", IDS)
@pytest.mark.parametrize("batch", [(), (7,), (2, 3)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_direct_products_equal_the_table_bit_for_bit_and_the_code(case, batch, dtype, monkeypatch):
    make = CASES[case]
    f = make()
    point = _point(f, batch, dtype)
    got = f.jacobians().evaluate(**point)
    table = _without_direct(make, point, monkeypatch)
    for name, jac in f.jacobians().items():
        assert got[name].dtype == dtype and got[name].shape == batch + jac.shape
        np.testing.assert_array_equal(got[name], table[name])
        np.testing.assert_array_equal(jac.evaluate(**point), got[name])  # one Jacobian alone, too
        if dtype == np.float64:
            np.testing.assert_allclose(got[name], per_entry_jacobian(jac, point, batch), rtol=1e-13, atol=1e-14)


def test_direct_products_in_chunks_of_points_equal_one_pass(monkeypatch):
    make = CASES["tanh(W @ x + b), W x b inputs"]
    point = _point(make(), (11,), np.float64)
    assert_chunks_equal_one_pass(make, point, 100, monkeypatch)


def test_broadcast_and_non_contiguous_inputs():
    f = CASES["tanh(W @ x + b), W x b inputs"]()
    rng = np.random.default_rng(2)
    W = rng.uniform(-1, 1, (8, 8))  # one W for the whole batch (broadcast)
    x = rng.uniform(-1, 1, (8, 6)).T  # a transposed, non-contiguous batch
    b = rng.uniform(-1, 1, (6, 8))
    got = f.jacobians().evaluate(W=W, x=x, b=b)
    full = {"W": np.broadcast_to(W, (6, 8, 8)), "x": x, "b": b}
    for name, jac in f.jacobians().items():
        np.testing.assert_allclose(got[name], per_entry_jacobian(jac, full, (6,)), rtol=1e-13, atol=1e-14)


def test_grouping_of_equally_spaced_pieces():
    # pieces (a, b, factors, m), factors (source, column, length): three slices of 2, spaced 5
    # apart, the first factor stepping by 2 columns, the second one column broadcast stepping by 1
    pieces = [(0, 2, ((0, 0, 2), (1, 3, 1)), 0), (5, 7, ((0, 2, 2), (1, 4, 1)), 2),
              (10, 12, ((0, 4, 2), (1, 5, 1)), 4)]
    assert _group(pieces) == ((0, 5, 3, 2, ((0, 0, 2, 2), (1, 3, 1, 1)), 0, 2),)
    # a fourth piece out of step starts a group of its own
    more = pieces + [(16, 18, ((0, 6, 2), (1, 6, 1)), 6)]
    assert _group(more) == ((0, 5, 3, 2, ((0, 0, 2, 2), (1, 3, 1, 1)), 0, 2),
                            (16, 2, 1, 2, ((0, 6, 0, 2), (1, 6, 0, 1)), 6, 2))
    # the groups compute what the pieces say, slice by slice
    rng = np.random.default_rng(3)
    sources = [rng.standard_normal((4, 8)), rng.standard_normal((4, 7))]
    coefs = rng.standard_normal(8)
    out = np.zeros((4, 18))
    _direct_products(_group(more), sources, coefs, out)
    expected = np.zeros((4, 18))
    for a, b, ((_, c, n), (_, d, _)), m in more:
        expected[:, a:b] = sources[0][:, c:c + n] * sources[1][:, d:d + 1] * coefs[m:m + b - a]
    np.testing.assert_array_equal(out, expected)


# ------------------------------------------------------------------------------ negative tests
@pytest.mark.parametrize("fault", ["placement", "factor column", "monomial"])
def test_a_wrong_group_is_caught_by_the_per_entry_code(fault):
    """The comparison with per-entry code can fail: a group written one slice too far, reading
    the next column of a factor, or the next monomial's coefficient."""
    f = sj.function("3 * tanh(W @ x + b)", W=(8, 8), x=(8,), b=(8,))
    jacs = f.jacobians()
    values = _point(f, (3,), np.float64)
    point = coerce_point(f.inputs, values)
    plan, dense = numpy_backend.jacobians_plan(f, tuple(jacs.values()))
    runs = tuple(numpy_backend._runs(index, plan.zero_column) for index in dense)
    direct = _direct(plan, f, dense, runs)
    assert direct is not None and direct.coefs is not None  # the 3 * ... is a coefficient
    (group,), *rest = direct.pieces
    a, da, n, length, factors, m, dm = group
    if fault == "placement":
        group = (a + 1, da, n, length, factors, m, dm)
    elif fault == "factor column":
        (j, c, dc, k), *others = factors
        group = (a, da, n, length, ((j, c + 1, dc, k), *others), m, dm)
    else:
        group = (a, da, n, length, factors, m + 1, dm)
    coefs = direct.coefs.copy()
    coefs[m + 1 :] *= 1.5  # coefficients that differ from one monomial to the next
    for pieces, fine in (((group,), False), (direct.pieces[0], True)):
        bad = numpy_backend._Direct(pieces=(pieces, *rest), runs=direct.runs, coefs=coefs if not fine else direct.coefs,
                                    reads_inputs=direct.reads_inputs, reads_table=direct.reads_table)
        got = numpy_backend._gather_many(plan, f, point, dense, [j.shape for j in jacs.values()], runs, bad)
        expected = per_entry_jacobian(jacs["W"], values, (3,))
        assert np.allclose(got[0], expected, rtol=1e-13, atol=1e-14) is fine


def test_a_last_stage_with_constant_terms_is_not_written_directly():
    """The direct products have no constant terms: a last stage with offsets keeps the table."""
    from symjac._entry_plan import EntryPlan, PolynomialStage

    f = CASES["tanh(W @ x + b), W x b inputs"]()
    jacs = f.jacobians()
    plan, dense = numpy_backend.jacobians_plan(f, tuple(jacs.values()))
    runs = tuple(numpy_backend._runs(index, plan.zero_column) for index in dense)
    last = plan.stages[-1]

    def with_offsets(offsets):
        stage = PolynomialStage(last.width, last.pad, last.monomials, last.coefs, last.starts, offsets)
        return EntryPlan(n_inputs=plan.n_inputs, code=plan.code, stages=plan.stages[:-1] + (stage,),
                         constants=plan.constants, take=plan.take)

    assert _direct(with_offsets(None), f, dense, runs) is not None
    assert _direct(with_offsets(np.ones(last.n_polynomials)), f, dense, runs) is None
