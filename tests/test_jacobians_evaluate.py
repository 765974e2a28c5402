"""`Function.jacobians().evaluate(**point)`: every input's Jacobian from one shared plan, the same
values, shapes, dtypes and errors as each Jacobian's own `evaluate`; and the NumPy gather done as
slice copies of runs (`backends._numpy._runs`)."""

import pickle

import numpy as np
import pytest

import symjac as sj
from symjac.backends import numpy_backend
from symjac.backends._numpy import _copy_runs, _runs
from _reference import per_entry_jacobian

CASES = [
    ("tanh(W @ x + b)", {"W": (4, 4), "x": (4,), "b": (4,)}, {}),
    ("softmax(x)", {"x": (5,)}, {}),
    ("x * y", {"x": (), "y": ()}, {}),
    ("A @ X + sin(X) * X", {"X": (2, 3)}, {"A": [[1.5, -2.0], [0.5, 3.0]]}),
    ("sum(X) * y + y ** 2", {"X": (2, 2), "y": ()}, {}),
    ("inv(X) @ y", {"X": (3, 3), "y": (3,)}, {}),
]


def _point(shapes: dict, batch: tuple, dtype, seed: int = 3) -> dict:
    rng = np.random.default_rng(seed)
    point = {}
    for name, shape in shapes.items():
        value = rng.uniform(0.5, 1.5, batch + shape)
        if name == "X" and len(shape) == 2 and shape[0] == shape[1]:
            value = value + 3.0 * np.eye(shape[0])  # well conditioned for inv
        point[name] = value.astype(dtype)
    return point


@pytest.mark.parametrize("text, shapes, consts", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("batch", [(), (7,), (2, 3)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_joint_evaluate_equals_each_jacobians_evaluate(text, shapes, consts, batch, dtype):
    f = sj.function(text, consts=consts, **shapes)
    jacs = f.jacobians()
    point = _point(shapes, batch, dtype)
    joint = jacs.evaluate(**point)
    assert list(joint) == list(f.input_names)
    rtol = 1e-13 if dtype == np.float64 else 1e-6
    for name, jac in jacs.items():
        alone = jac.evaluate(**point)
        assert joint[name].dtype == alone.dtype == dtype
        assert joint[name].shape == alone.shape == batch + jac.shape
        np.testing.assert_allclose(joint[name], alone, rtol=rtol, atol=rtol)
        if dtype == np.float64:
            np.testing.assert_allclose(joint[name], per_entry_jacobian(jac, point, batch), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("text, shapes, consts", CASES + [
    ("tanh(W @ x + b)", {"W": (6, 6), "x": (6,), "b": (6,)}, {}),
], ids=[c[0] for c in CASES] + ["tanh n=6"])
@pytest.mark.parametrize("batch", [(), (5,)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_jacobian_matrix_is_the_jacobians_side_by_side_bit_for_bit(text, shapes, consts, batch, dtype):
    """`numpy_backend.jacobian_matrix` (what check compares: one map up to `_JOINT_MAP_MAX` entries,
    else the per-input gathers joined) equals `jacobians` side by side, bit for bit."""
    from symjac.backends import _numpy
    from symjac._values import coerce_point

    f = sj.function(text, consts=consts, **shapes)
    jacs = tuple(f.jacobian(name) for name in f.input_names)
    point = coerce_point(f.inputs, _point(shapes, batch, dtype))
    out_size = int(np.prod(f.out_shape))
    total = sum(j.wrt.size for j in jacs)
    matrix = _numpy.jacobian_matrix(f, jacs, point)
    joined = np.concatenate([b.reshape(batch + (out_size, j.wrt.size))
                             for b, j in zip(_numpy.jacobians(f, jacs, point), jacs)], axis=-1)
    assert matrix.dtype == joined.dtype == dtype and matrix.shape == batch + (out_size, total)
    assert np.array_equal(matrix, joined)


def test_jacobian_matrix_cases_cover_one_map_and_joined_blocks():
    from symjac.backends import _numpy

    sizes = [int(np.prod(sj.function(t, consts=c, **s).out_shape)) * sum(int(np.prod(v)) for v in s.values())
             for t, s, c in CASES]
    assert min(sizes) <= _numpy._JOINT_MAP_MAX < max(sizes)


def test_joint_evaluate_sees_a_wrong_entry_as_different():
    # negative: the comparison above is not vacuous; a Jacobian with a sign-flipped or transposed
    # entry map evaluates to different values than the joint plan's
    f = sj.function("tanh(W @ x + b)", W=(3, 3), x=(3,), b=(3,))
    point = _point({"W": (3, 3), "x": (3,), "b": (3,)}, (4,), np.float64)
    joint = f.jacobians().evaluate(**point)
    Jx = f.jacobian("x")
    flipped = sj.Jacobian(f, Jx.wrt, Jx.rows, Jx.cols, tuple(-e for e in Jx.entries))
    transposed = sj.Jacobian(f, Jx.wrt, Jx.cols, Jx.rows, Jx.entries)
    assert not np.allclose(flipped.evaluate(**point), joint["x"])
    assert not np.allclose(transposed.evaluate(**point), joint["x"])
    np.testing.assert_allclose(-flipped.evaluate(**point), joint["x"], rtol=1e-13)


def test_the_plan_is_shared():
    f = sj.function("tanh(W @ x + b)", W=(4, 4), x=(4,), b=(4,))
    jacs = f.jacobians()
    plan, dense = numpy_backend.jacobians_plan(f, tuple(jacs.values()))
    assert plan.n_atoms == 4  # tanh(u_i) once, for the three Jacobians
    assert [len(d) for d in dense] == [4 * 16, 4 * 4, 4 * 4]
    alone = [numpy_backend.jacobian_plan(j)[0].n_atoms for j in jacs.values()]
    assert alone == [4, 4, 4]


@pytest.mark.parametrize("bad, error, match", [
    ({"W": np.ones((4, 4)), "x": np.ones(4)}, sj.InvalidArgumentError, "b"),
    ({"W": np.ones((4, 4)), "x": np.ones(3), "b": np.ones(4)}, sj.ShapeError, "x"),
    ({"W": np.ones((4, 4)), "x": np.full(4, np.nan), "b": np.ones(4)}, sj.SymjacError, "x"),
    ({"W": np.ones((2, 4, 4)), "x": np.ones((3, 4)), "b": np.ones(4)}, sj.ShapeError, "batch"),
    ({"W": np.ones((4, 4)), "x": np.ones(4), "b": np.ones(4), "z": 1.0}, sj.InvalidArgumentError, "z"),
])
def test_bad_points_raise_as_each_jacobian_does(bad, error, match):
    f = sj.function("tanh(W @ x + b)", W=(4, 4), x=(4,), b=(4,))
    with pytest.raises(error, match=match) as joint:
        f.jacobians().evaluate(**bad)
    with pytest.raises(error) as alone:
        f.jacobian("x").evaluate(**bad)
    assert type(joint.value) is type(alone.value) and str(joint.value) == str(alone.value)


def test_jacobians_is_still_a_dict():
    f = sj.function("W @ x", W=(2, 3), x=(3,))
    jacs = f.jacobians()
    assert isinstance(jacs, dict) and isinstance(jacs, sj.Jacobians)
    assert jacs == {"W": f.jacobian("W"), "x": f.jacobian("x")}
    again = pickle.loads(pickle.dumps(jacs))
    assert list(again) == ["W", "x"]
    point = {"W": np.arange(6.0).reshape(2, 3), "x": np.array([1.0, -2.0, 0.5])}
    for name in again:
        np.testing.assert_array_equal(again.evaluate(**point)[name], jacs.evaluate(**point)[name])
    # a subset, and a Jacobian of another Function put in, are evaluated too
    del jacs["W"]
    other = sj.function("W @ x * 2", W=(2, 3), x=(3,)).jacobian("x")
    jacs["other"] = other
    got = jacs.evaluate(**point)
    assert list(got) == ["x", "other"]
    np.testing.assert_array_equal(got["x"], point["W"])
    np.testing.assert_array_equal(got["other"], 2 * point["W"])


def test_runs_of_an_index_map():
    zero = 9
    index = np.array([zero] * 16 + list(range(9)) + [zero] * 16 + list(range(1, 9)) + list(range(9)))
    runs = _runs(index, zero)
    assert runs == ((0, 16, -1), (16, 25, 0), (25, 41, -1), (41, 49, 1), (49, 58, 0))
    assert _runs(np.array([0, 2, 4, 6, 8, 1, 3, 5, 7, zero]), zero) is None  # short runs: np.take
    assert _runs(np.zeros(0, dtype=np.int64), zero) is None
    rows = np.random.default_rng(0).standard_normal((5, zero + 1))
    rows[:, zero] = 0.0
    out = np.zeros((5, len(index)))
    _copy_runs(np.ascontiguousarray(rows.T), runs, out)  # the table with columns as rows
    np.testing.assert_array_equal(out, rows[:, index])
    # negative: a run shifted by one column is not what np.take gives
    shifted = tuple((a, b, s + 1 if s >= 0 else s) for a, b, s in runs)
    out = np.zeros((5, len(index)))
    _copy_runs(np.ascontiguousarray(rows.T), shifted, out)
    assert not np.array_equal(out, rows[:, index])


def test_a_block_diagonal_jacobian_is_copied_in_runs_and_correct():
    # tanh(W @ x + b)'s Jacobian by W: rows of W's entries, zeros between: copied as runs
    f = sj.function("tanh(W @ x + b)", W=(8, 8), x=(8,), b=(8,))
    JW = f.jacobian("W")
    plan, dense = numpy_backend.jacobian_plan(JW)
    assert _runs(dense, plan.zero_column) is not None
    point = _point({"W": (8, 8), "x": (8,), "b": (8,)}, (5,), np.float64)
    expected = per_entry_jacobian(JW, point, (5,))
    np.testing.assert_allclose(JW.evaluate(**point), expected, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(f.jacobians().evaluate(**point)["W"], expected, rtol=1e-13, atol=1e-15)
    assert np.count_nonzero(expected) == 5 * 8 * 8  # the zeros are zeros, the rest is not


def test_polynomial_sums_by_blocks_of_equal_length():
    from symjac._entry_plan import PolynomialStage
    from symjac.backends._numpy import _polynomials

    # three polynomials over columns 0..2 (column 3 is the zero column, 4 the ones): lengths 2, 1, 2
    stage = PolynomialStage(
        width=3, pad=7, monomials=np.array([[0, 1], [2, 7], [1, 1], [0, 2], [2, 2]]),
        coefs=np.array([1.0, -2.0, 3.0, 0.5, 1.0]), starts=np.array([0, 2, 3]), offsets=np.array([0.0, 1.0, 0.0]))
    order, groups = stage.grouped
    assert order.tolist() == [2, 0, 3, 1, 4]  # the one-term polynomial, then term 0s, then term 1s
    assert [(k, m, p.tolist()) for k, m, p in groups] == [(1, 1, [1]), (2, 2, [0, 2])]
    table = np.zeros((8, 4))
    table[:3] = np.random.default_rng(1).standard_normal((3, 4))
    table[7] = 1.0
    _polynomials(stage, table)
    a, b, c = table[:3]
    # each term: its product, times its coefficient; the terms added in their order
    np.testing.assert_array_equal(table[3], (a * b) + (c * 1.0) * -2.0)
    np.testing.assert_array_equal(table[4], (b * b) * 3.0 + 1.0)
    np.testing.assert_array_equal(table[5], (a * c) * 0.5 + (c * c))
    assert not np.array_equal(table[5], (c * c) * 0.5 + (a * c))  # negative: another pairing
