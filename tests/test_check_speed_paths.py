"""The single-point check's shared work (issue 14's check floors) computes the same numbers as the
work it replaces, and its caches are per Function and safe across threads.

- `_Check._reference` evaluates the symbolic route at the point and at the noise's points in one
  batched call; `_noise` reads them from there: the same noise as evaluating each point alone
  (the path `symjac.verify` still takes).
- finite differences' first stencil point is the point: its forward is the forward at the point.
- the conditioning's sign patterns are drawn once (read-only) and are the same numbers as a fresh draw.
- `_compare` stacks pairs: the same pairs, in the same order, as comparing them one at a time.
No timing is asserted here: `benchmarks/check_floors.py` measures the floors.
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import symjac as sj
from symjac import _engine, _tolerance
from symjac._values import coerce_point

RNG = np.random.default_rng(3)
N = 4
CASES = [
    ("x * y", {"x": (), "y": ()}, {"x": np.array(1.3), "y": np.array(-0.7)}),
    ("X @ X", {"X": (3, 3)}, {"X": RNG.normal(size=(3, 3))}),
    ("tanh(W @ x + b)", {"W": (N, N), "x": (N,), "b": (N,)},
     {"W": RNG.normal(size=(N, N)) / 2, "x": RNG.normal(size=N), "b": RNG.normal(size=N)}),
    ("softmax(x)", {"x": (4,)}, {"x": RNG.normal(size=4)}),
    ("log(det(X))", {"X": (3, 3)}, {"X": np.eye(3) * 2 + RNG.normal(size=(3, 3)) / 4}),
]
IDS = [c[0] for c in CASES]


def _build(text, shapes):
    return sj.function(text, **shapes)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("text, shapes, point", CASES, ids=IDS)
def test_batched_reference_and_noise_equal_the_points_one_at_a_time(text, shapes, point, dtype):
    f = _build(text, shapes)
    p = coerce_point(f.inputs, {k: v.astype(dtype) for k, v in point.items()})
    batched = _engine._Check(f, p, None, sj.ToleranceModel())
    reference = batched._reference(batched.p64)
    noise = batched._noise(reference)
    alone = _engine._Check(f, p, None, sj.ToleranceModel())
    symbolic = alone._symbolic(alone.p64)
    np.testing.assert_array_equal(reference, symbolic)  # bit for bit: the batch is element-wise
    np.testing.assert_array_equal(noise, alone._noise(symbolic))  # the unbatched path (verify's)
    assert batched._evaluated is None  # read once, then dropped


@pytest.mark.parametrize("text, shapes, point", CASES, ids=IDS)
def test_finite_differences_centre_is_the_forward_at_the_point(text, shapes, point):
    from symjac.backends import numpy_backend

    f = _build(text, shapes)
    check = _engine._Check(f, coerce_point(f.inputs, point), None, sj.ToleranceModel())
    check._finite_diff()
    np.testing.assert_array_equal(check._center, numpy_backend.forward(f, check.p64).reshape(-1))


def test_an_unread_input_keeps_its_centre_too():
    # the stencil perturbs only the read columns (issue 15); its first point is still the point
    f = sj.function("X[0, 0] * 2 + X[1, 1]", X=(3, 3))
    x = RNG.normal(size=(3, 3))
    check = _engine._Check(f, coerce_point(f.inputs, {"X": x}), None, sj.ToleranceModel())
    fd = check._finite_diff()
    assert check._center.tolist() == [x[0, 0] * 2 + x[1, 1]]
    assert fd.value[0].tolist() == pytest.approx([2, 0, 0, 0, 1, 0, 0, 0, 0], abs=1e-9)


def test_kept_sign_patterns_are_fresh_draws_and_read_only():
    for seed, count, size in ((0, 4, 3), (1, 4, 300), (0, 2, 1)):
        kept = _tolerance._signs(seed, count, size)
        fresh = np.random.default_rng(seed).choice([-1.0, 1.0], size=(count, size))
        np.testing.assert_array_equal(kept, fresh)
        assert not kept.flags.writeable
        with pytest.raises(ValueError):
            kept[0, 0] = 2.0
    # beyond the kept size: drawn each time, the same numbers
    count, size = 2, _tolerance._KEPT_SIGNS
    np.testing.assert_array_equal(_tolerance._signs(5, count, size),
                                  np.random.default_rng(5).choice([-1.0, 1.0], size=(count, size)))


def test_normwise_perturbation_scales_each_array_by_its_largest_entry():
    x = np.array([1.0, -3.0, 2.0, 0.5, 7.0])
    moved = _tolerance.perturbed_normwise(x, np.float32, 3, [2, 3])
    signs = np.random.default_rng(_tolerance.PERTURBATION_SEED + 1).choice([-1.0, 1.0], size=(3, 5))
    scale = np.array([3.0, 3.0, 7.0, 7.0, 7.0])
    np.testing.assert_array_equal(moved, x[None] + _tolerance.eps(np.float32) * scale[None] * signs)


def _pairs_one_at_a_time(check, routes, fd, noise):
    """The comparison as it was written before pairs were stacked: one pair at a time."""
    out = []
    for a, b in itertools.combinations(list(routes), 2):
        ra, rb = routes[a], routes[b]
        if _engine.FINITE_DIFF in (a, b):
            other = rb if a == _engine.FINITE_DIFF else ra
            tol = check.tol.against_fd(fd.error, check.tol.rounding(other, other, check.dtype, noise))
        else:
            tol = check.tol.rounding(ra, rb, check.dtype, noise)
        diff, rel, ratio = _engine.differences(ra, rb, tol)
        ratio = np.where(np.isnan(ratio), np.inf if _engine.FINITE_DIFF not in (a, b) else 0.0, ratio)
        if _engine.FINITE_DIFF in (a, b):
            ratio = np.where(check.tol.fd_untrusted(fd.error, fd.value), 0.0, ratio)
        k = int(np.argmax(ratio))
        p, c = divmod(k, ratio.shape[1])
        out.append(_engine.pair_result((a, b), diff, rel, ratio > 1.0, check._entry(p, c, routes, float(tol[p, c]))))
    return out


@pytest.mark.parametrize("chunk", [1, 3, 1 << 16])
@pytest.mark.parametrize("how", ["right", "transposed", "sign", "relative", "nan"])
def test_stacked_comparison_equals_one_pair_at_a_time(monkeypatch, chunk, how):
    monkeypatch.setattr(_engine, "COMPARE_CHUNK", chunk * 9)  # X 3 x 3: 81 entries per pair
    f = sj.function("X @ X", X=(3, 3))
    x = RNG.normal(size=(3, 3))
    check = _engine._Check(f, coerce_point(f.inputs, {"X": x}), None, sj.ToleranceModel())
    symbolic = check._reference(check.p64)
    fd = check._finite_diff()
    noise = check._noise(symbolic)
    candidate = {"right": symbolic, "transposed": symbolic.T, "sign": -symbolic,
                 "relative": symbolic * (1 + 1e-4), "nan": np.where(symbolic != 0, np.nan, 0.0)}[how]
    routes = {_engine.SYMBOLIC: symbolic, **check._torch_routes(), _engine.FINITE_DIFF: fd.value,
              _engine.CANDIDATE: np.array(candidate)}
    pairs, _ = check._compare(routes, fd, noise)
    # (as dicts: a NaN entry value is not equal to itself)
    assert [repr(p.to_dict()) for p in pairs] == [repr(p.to_dict()) for p in _pairs_one_at_a_time(check, routes, fd, noise)]
    assert all(p.ok for p in pairs) == (how == "right")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("text, shapes, point", CASES, ids=IDS)
def test_every_wrong_candidate_is_caught_and_a_right_one_passes(text, shapes, point, dtype):
    f = _build(text, shapes)
    p = {k: v.astype(dtype) for k, v in point.items()}
    report = sj.check(f, at=p)
    assert report.verdict == "pass", str(report)
    symbolic = report.matrices.values["symbolic"]

    def as_candidate(matrix):
        out, offset = {}, 0
        for inp in f.inputs:
            out[inp.name] = matrix[:, offset : offset + inp.size].reshape(f.out_shape + inp.shape)
            offset += inp.size
        return out

    # a correct Jacobian from another formula: torch's own jacrev of the user's code
    torch = pytest.importorskip("torch")
    ops = {"x * y": lambda x, y: x * y, "X @ X": lambda X: X @ X,
           "tanh(W @ x + b)": lambda W, x, b: torch.tanh(W @ x + b), "softmax(x)": lambda x: torch.softmax(x, -1),
           "log(det(X))": lambda X: torch.logdet(X)}[text]
    args = tuple(torch.tensor(p[inp.name]) for inp in f.inputs)
    jac = torch.func.jacrev(ops, argnums=tuple(range(len(args))))(*args)
    right = {inp.name: np.asarray(j, dtype=np.float64) for inp, j in zip(f.inputs, jac)}
    assert sj.check(f, at=p, jacobian=right if len(f.inputs) > 1 else right[f.inputs[0].name]).verdict == "pass"
    wrongs = {"sign": -symbolic, "relative": symbolic * (1 + 1e-4)}
    if symbolic.shape[0] == symbolic.shape[1] and not np.allclose(symbolic, symbolic.T):
        wrongs["transposed"] = symbolic.T
    for how, wrong in wrongs.items():
        given = as_candidate(wrong)
        got = sj.check(f, at=p, jacobian=given if len(f.inputs) > 1 else given[f.inputs[0].name])
        assert got.verdict == "fail", (how, str(got))
        assert got.odd_one_out == "candidate", (how, str(got))


def test_checks_in_threads_on_one_function_give_the_sequential_reports():
    f = sj.function("tanh(W @ x + b)", W=(N, N), x=(N,), b=(N,))
    points = [{"W": RNG.normal(size=(N, N)), "x": RNG.normal(size=N), "b": RNG.normal(size=N)} for _ in range(6)]
    points += [{k: v.astype(np.float32) for k, v in p.items()} for p in points[:3]]
    sequential = [sj.check(f, at=p).to_dict() for p in points]
    wrong = {"W": np.zeros((N, N, N)), "x": np.zeros((N, N)), "b": np.eye(N)}
    g = sj.function("tanh(W @ x + b)", W=(N, N), x=(N,), b=(N,))  # a fresh Function: caches built in threads
    start = threading.Barrier(4, timeout=120)

    def fresh(k):
        if k < 4:
            start.wait()  # four threads ask for the (not yet built) caches at once
        return sj.check(g, at=points[k]).to_dict(), sj.check(g, at=points[k], jacobian=wrong).verdict

    with ThreadPoolExecutor(4) as pool:
        got_fresh = list(pool.map(fresh, range(len(points))))
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda k: sj.check(f, at=points[k % len(points)]).to_dict(), range(2 * len(points))))
    assert got == sequential + sequential
    assert [d for d, _ in got_fresh] == sequential
    assert all(v == "fail" for _, v in got_fresh)


def test_caches_are_per_function():
    # two Functions with the same text and shapes but different constants share nothing
    f = sj.function("A @ x", x=(2,), consts={"A": [[1.0, 2.0], [3.0, 4.0]]})
    g = sj.function("A @ x", x=(2,), consts={"A": [[0.0, 1.0], [1.0, 0.0]]})
    x = np.array([0.3, -1.2])
    rf, rg = sj.check(f, x=x), sj.check(g, x=x)
    np.testing.assert_array_equal(rf.matrices.values["symbolic"], [[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(rg.matrices.values["symbolic"], [[0.0, 1.0], [1.0, 0.0]])
    assert _engine._jacobians(f)[0] is not _engine._jacobians(g)[0]
    np.testing.assert_array_equal(_engine._sparsity(g), [[False, True], [True, False]])
    assert not _engine._sparsity(f).flags.writeable
