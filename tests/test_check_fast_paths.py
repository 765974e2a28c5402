"""The shortcuts the single-point check takes to cut its fixed cost (issue 14's `x * y` floor) give
the numbers of the longer way, and keep verdicts right both ways.

- `_finite_diff._weighted` equals the levels weighted and added one by one, bit for bit; so does
  `fd_jacobian` with its all-finite shortcut against the general path (NaN masks) on a finite stencil;
- the rules written once over a namespace (`symjac._floats` for a few entries, NumPy for arrays:
  finite differences' table, the comparison, the noise, the "weak at" note) give the same numbers
  both ways, and `symjac._floats` gives NumPy's functions' numbers on one entry;
- `_tolerance.perturbed` keeps `1 + eps s` per dtype and size: the same numbers as computed
  afresh, per dtype (float32 and float64 differ), read-only, not shared wrongly across sizes;
- the symbolic route of a Function with several inputs (one shared table) equals each input's
  Jacobian evaluated alone to rounding, and the check still fails wrong Jacobians (sign-flipped,
  transposed, off by 1e-4 relative; 1e-3 in float32) and passes a correct one written differently;
- the running error bounds of a few entries are placed in Python floats (`_Check._placed_bounds`):
  the same arrays as NumPy's (the end-to-end test of the shortcuts turns it off too);
- the torch-forward route of an element-wise function of scalars runs its columns side by side in
  one dual forward (`backends._torch._side_by_side_jvps`): the loop's columns bit for bit, only
  where copies cannot mix (no softmax, reduction, index or non-scalar), a wrong JVP still caught.
No timing is asserted here: `benchmarks/check_floors.py` measures the floors.
"""

from __future__ import annotations

import numpy as np
import pytest

import symjac as sj
from symjac import _engine, _finite_diff, _floats, _tolerance
from symjac._values import coerce_point
from symjac.backends import numpy_backend

RNG = np.random.default_rng(5)


def _weighted_one_by_one(weights, levels):
    out = weights[0] * levels[0]
    for w, level in zip(weights[1:], levels[1:]):
        out = out + w * level
    return out


@pytest.mark.parametrize("shape", [(3, 1, 1), (3, 2, 1), (3, 7, 5), (3, 40, 3)])
def test_weighted_levels_equal_the_sum_written_out_bit_for_bit(shape):
    tables = list(_finite_diff._RICHARDSON.values())
    for _ in range(50):
        levels = RNG.normal(size=shape) * 10.0 ** RNG.integers(-200, 200, size=shape)
        for weights in [w for pair in tables for w in pair]:
            assert np.array_equal(_finite_diff._weighted(weights, levels), _weighted_one_by_one(weights, levels))


@pytest.mark.parametrize("fn, n", [
    (lambda r: (r[:, 0] * r[:, 1])[:, None], 2),
    (lambda r: np.stack([np.sin(r[:, 0]) * r[:, 1], np.exp(r[:, 1]) - r[:, 0] ** 3, np.abs(r[:, 0])], axis=1), 2),
    (lambda r: np.tanh(r @ np.arange(12.0).reshape(4, 3) / 7), 4),
])
def test_fd_all_finite_shortcut_equals_the_general_path(monkeypatch, fn, n):
    x = RNG.normal(size=n)
    fast = _finite_diff.fd_jacobian(fn, x)
    real_all_finite = _floats.all_finite
    calls = {"n": 0}

    def all_finite_first_false(a):  # the shortcut's test of the whole stencil sees "not finite"
        if np.ndim(a) == 2 and np.shape(a)[0] == 6 * n + 1 and not calls["n"]:
            calls["n"] += 1
            return False
        return real_all_finite(a)

    monkeypatch.setattr(_finite_diff._floats, "all_finite", all_finite_first_false)
    general = _finite_diff.fd_jacobian(fn, x)
    monkeypatch.undo()
    assert calls["n"] == 1  # the general path ran
    for name in ("value", "error", "step"):
        assert np.array_equal(getattr(fast, name), getattr(general, name)), name


def test_fd_with_a_non_finite_stencil_point_still_marks_that_entry():
    def fn(r):  # log(x0) * x1: the stencil of x0 near 0 leaves the domain
        with np.errstate(all="ignore"):
            return (np.log(r[:, 0]) * r[:, 1])[:, None]

    res = _finite_diff.fd_jacobian(fn, np.array([1e-4, 2.0]))
    assert np.isnan(res.value[0, 0]) and np.isinf(res.error[0, 0])
    assert np.isfinite(res.value[0, 1])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("size", [1, 2, 9])
def test_perturbation_factors_are_kept_per_dtype_and_size(dtype, size):
    x = RNG.normal(size=size)
    count = sj.ToleranceModel().perturbations
    expected = x[None, :] * (1.0 + _tolerance.eps(dtype) * _tolerance._signs(_tolerance.PERTURBATION_SEED, count, size))
    for _ in range(2):  # computed the first time, kept the second
        got = _tolerance.perturbed(x, dtype, count)
        assert np.array_equal(got, expected) and got.shape == (count, size)
    kept = _tolerance._factors(_tolerance.eps(dtype), count, size)
    assert not kept.flags.writeable
    other = np.float32 if dtype == np.float64 else np.float64
    assert not np.array_equal(kept, _tolerance._factors(_tolerance.eps(other), count, size))


CASES = [
    ("x * y", {"x": (), "y": ()}),
    ("tanh(W @ x + b)", {"W": (4, 4), "x": (4,), "b": (4,)}),
    ("x * y + sin(x) / y", {"x": (3,), "y": (3,)}),
    ("sigmoid(x) * y", {"x": (2,), "y": (2,)}),
    ("sum(X) * y", {"X": (2, 3), "y": ()}),
]


def _values(text, shapes, dtype):
    """A point of the case in `dtype` (`y` moved away from 0 where the text divides by it)."""
    return {k: (RNG.normal(size=s) + (2.0 if text.endswith("/ y") and k == "y" else 0.0)).astype(dtype)
            for k, s in shapes.items()}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("text, shapes", CASES, ids=[c[0] for c in CASES])
def test_symbolic_route_from_one_table_equals_each_jacobian_alone(text, shapes, dtype):
    f = sj.function(text, **shapes)
    values = _values(text, shapes, dtype)
    point = coerce_point(f.inputs, values)
    chk = _engine._Check(f, point, None, sj.ToleranceModel())
    got = chk._symbolic(point)
    alone = np.concatenate([numpy_backend.jacobian(j, point).reshape(got.shape[0], -1) for j in _engine._jacobians(f)],
                           axis=1)
    assert got.dtype == np.dtype(dtype) and got.shape == alone.shape
    np.testing.assert_allclose(got, alone, rtol=8 * np.finfo(dtype).eps, atol=8 * np.finfo(dtype).tiny)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("text, shapes", CASES, ids=[c[0] for c in CASES])
def test_checks_still_fail_wrong_jacobians_and_pass_right_ones(text, shapes, dtype):
    f = sj.function(text, **shapes)
    values = _values(text, shapes, dtype)
    assert sj.check(f, at=values).verdict == "pass"
    exact = {inp.name: f.jacobian(inp.name).evaluate(**{k: v.astype(np.float64) for k, v in values.items()})
             for inp in f.inputs}
    # float32's own tolerance is wider: 1e-4 relative is not always beyond it there (on the tree
    # before these shortcuts too: tanh(W @ x + b) n = 4, 3 of 40 random float32 points)
    off = 1e-4 if dtype == np.float64 else 1e-3
    wrongs = {"sign-flipped": {k: -v for k, v in exact.items()},
              f"off by {off}": {k: v * (1 + off) for k, v in exact.items()}}
    first = f.inputs[0]
    if len(first.shape) == 1 and f.out_shape == first.shape:
        wrongs["transposed"] = {**exact, first.name: exact[first.name].T.copy()}
    for how, wrong in wrongs.items():
        if all(np.array_equal(wrong[k], exact[k]) for k in exact):
            continue  # e.g. a symmetric block transposed
        report = sj.check(f, at=values, jacobian=wrong)
        assert report.verdict == "fail", (how, str(report))
        assert report.odd_one_out == "candidate", how
    assert sj.check(f, at=values, jacobian=exact).verdict == "pass"


def test_correct_jacobians_from_other_formulas_pass_in_both_dtypes():
    n = 4
    W, x, b = RNG.normal(size=(n, n)) / 2, RNG.normal(size=n), RNG.normal(size=n)
    f = sj.function("tanh(W @ x + b)", W=(n, n), x=(n,), b=(n,))
    g = sj.function("x * y", x=(), y=())
    for dtype in (np.float64, np.float32):
        t = np.tanh(W @ x + b)
        d = 1.0 - t ** 2  # tanh' written as 1 - tanh^2, not SymPy's form
        by_w = np.einsum("ik,j->ijk", np.diag(d), x)  # d out_i / d W[k, j] = delta_ik d_i x_j
        by_w = np.transpose(by_w, (0, 2, 1))
        hand = {"W": by_w, "x": d[:, None] * W, "b": np.diag(d)}
        at = {"W": W.astype(dtype), "x": x.astype(dtype), "b": b.astype(dtype)}
        assert sj.check(f, at=at, jacobian=hand).verdict == "pass"
        assert sj.check(f, at=at, jacobian={**hand, "x": hand["x"].T.copy()}).verdict == "fail"
        pt = {"x": np.array(1.3, dtype=dtype), "y": np.array(-0.7, dtype=dtype)}
        assert sj.check(g, at=pt, jacobian={"x": np.array(-0.7), "y": np.array(1.3)}).verdict == "pass"
        report = sj.check(g, at=pt, jacobian={"x": np.array(1.3), "y": np.array(-0.7)})  # swapped: wrong
        assert report.verdict == "fail" and report.odd_one_out == "candidate"


torch = pytest.importorskip("torch")

CONSTANT_CASES = [
    ("2 * x * y", {"x": (), "y": ()}, {}),
    ("x * y + 1", {"x": (), "y": ()}, {}),
    ("x / 3 - y * 0.1", {"x": (3,), "y": (3,)}, {}),
    ("1 - x * 0.7", {"x": (2,)}, {}),
    ("maximum(x, 0) * y", {"x": (4,), "y": (4,)}, {}),
    ("clamp(x, -0.5, 0.5) + y", {"x": (3,), "y": (3,)}, {}),
    ("tanh(W @ x + 0.5) * 2", {"W": (3, 3), "x": (3,)}, {}),
    ("A @ x * 0.3 + c", {"x": (3,)}, {"A": np.arange(9.0).reshape(3, 3) / 7, "c": 0.25}),
    ("softmax(x * 1.7)", {"x": (6,)}, {}),
    ("x ** 2 / 7", {"x": ()}, {}),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("text, shapes, consts", CONSTANT_CASES, ids=[c[0] for c in CONSTANT_CASES])
def test_constants_with_zero_tangents_give_functorchs_columns_bit_for_bit(monkeypatch, text, shapes, consts, dtype):
    """The loop of dual forwards and the dual vmap give the constants zero tangents (`lift`);
    functorch's vmap runs the forward as written: the same numbers."""
    from symjac.backends import _torch as tb

    f = sj.function(text, consts=consts, **shapes)
    point = coerce_point(f.inputs, {k: RNG.normal(size=s).astype(dtype) for k, s in shapes.items()})
    lifted = []
    real = tb._zero_tangent
    monkeypatch.setattr(tb, "_zero_tangent", lambda t: lifted.append(1) or real(t))
    results = []
    for few, dual in ((10_000, 0), (0, 10_000), (0, 0)):  # the loop, the dual vmap, functorch's vmap
        monkeypatch.setattr(tb, "FEW_COLUMNS", few)
        monkeypatch.setattr(tb, "DUAL_VMAP_COLUMNS", dual)
        before = len(lifted)
        results.append(tb.tensor_jacobians(f, point, "forward"))
        if few or dual:
            assert len(lifted) > before, "no constant was given a zero tangent"
        else:
            assert len(lifted) == before  # functorch's vmap: the forward as written
    for got in results[:2]:
        for name in got:
            assert got[name].dtype == results[2][name].dtype == np.dtype(dtype)
            assert np.array_equal(got[name], results[2][name]), name
    before = len(lifted)
    tb.tensor_jacobians(f, point, "reverse")
    assert len(lifted) == before  # reverse mode runs the forward as written


def test_check_with_constants_still_catches_wrong_jacobians():
    f = sj.function("2 * x * y + 0.5 * x", x=(3,), y=(3,))
    at = {"x": RNG.normal(size=3), "y": RNG.normal(size=3)}
    assert sj.check(f, at=at).routes[1:3] == ("torch-reverse", "torch-forward")
    exact = {"x": np.diag(2 * at["y"] + 0.5), "y": np.diag(2 * at["x"])}
    assert sj.check(f, at=at, jacobian=exact).verdict == "pass"
    for wrong in ({"x": -exact["x"], "y": exact["y"]}, {"x": exact["x"] * (1 + 1e-4), "y": exact["y"]},
                  {"x": exact["y"], "y": exact["x"]}):
        report = sj.check(f, at=at, jacobian=wrong)
        assert report.verdict == "fail" and report.odd_one_out == "candidate"


# -- the torch forward route of an element-wise function of scalars, its columns side by side --------
SIDE_BY_SIDE_CASES = [
    ("x * y", {"x": (), "y": ()}, {}),
    ("tanh(x * y) + exp(y) / x", {"x": (), "y": ()}, {}),
    ("sigmoid(x) ** 3 - log1p(y * y) * c", {"x": (), "y": ()}, {"c": 1.7}),
    ("where(x > y, softplus(x), atan2(y, x)) + maximum(x, 0.3) * z", {"x": (), "y": (), "z": ()}, {}),
    ("clamp(x, -0.5, 0.5) * sin(y) - 2 ** x + relu(y) / (1 + abs(x))", {"x": (), "y": ()}, {}),
    ("x ** 2 / 7", {"x": ()}, {}),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("text, shapes, consts", SIDE_BY_SIDE_CASES, ids=[c[0] for c in SIDE_BY_SIDE_CASES])
def test_side_by_side_forward_columns_equal_the_loop_bit_for_bit(monkeypatch, text, shapes, consts, dtype):
    """`_side_by_side_jvps` (one dual forward, the inputs copied side by side) gives the loop of
    dual forwards' columns, bit for bit, at many points in both dtypes."""
    from symjac.backends import _torch as tb
    from symjac.backends._torch_tensor import tensor_forward

    f = sj.function(text, consts=consts, **shapes)
    assert tensor_forward(f).elementwise
    ran = []
    real = tb._side_by_side_jvps
    monkeypatch.setattr(tb, "_side_by_side_jvps", lambda *a: ran.append(1) or real(*a))
    for _ in range(25):
        point = coerce_point(f.inputs, {k: np.array(RNG.normal() * 2, dtype=dtype) for k in shapes})
        monkeypatch.setattr(tb, "SIDE_BY_SIDE_COLUMNS", 8)
        before = len(ran)
        fast = tb.tensor_jacobians(f, point, "forward")
        assert len(ran) == before + 1
        monkeypatch.setattr(tb, "SIDE_BY_SIDE_COLUMNS", 0)
        loop = tb.tensor_jacobians(f, point, "forward")
        assert len(ran) == before + 1  # the loop of dual forwards, not side by side
        for name in shapes:
            assert fast[name].dtype == loop[name].dtype == np.dtype(dtype)
            assert fast[name].shape == loop[name].shape == ()
            assert np.array_equal(fast[name], loop[name], equal_nan=True), (name, fast[name], loop[name])


@pytest.mark.parametrize("text, shapes, consts", [
    ("softmax(x) * y", {"x": (), "y": ()}, {}),  # a softmax of copies side by side would mix them
    ("sum(x) * y", {"x": (), "y": ()}, {}),
    ("logsumexp(x) + y", {"x": (), "y": ()}, {}),
    ("x * y", {"x": (2,), "y": (2,)}, {}),  # not scalars
    ("x * c", {"x": ()}, {"c": [1.0, 2.0]}),  # a constant that is not a scalar
    ("x[0] * y", {"x": (1,), "y": ()}, {}),
    ("x.T * y", {"x": (), "y": ()}, {}),
])
def test_only_element_wise_forwards_of_scalars_run_side_by_side(text, shapes, consts):
    from symjac.backends._torch_tensor import tensor_forward

    f = sj.function(text, consts=consts, **shapes)
    run = tensor_forward(f)
    assert run is not None and not run.elementwise
    report = sj.check(f, at={k: np.full(s, 0.7) for k, s in shapes.items()})
    assert report.verdict == "pass" and "torch-forward" in report.routes, str(report)


@pytest.mark.parametrize("how", ["relative", "sign"])
def test_a_wrong_forward_rule_side_by_side_is_caught(monkeypatch, how):
    """A tanh whose JVP is off (1e-4 relative, or sign-flipped) is caught by the torch-forward route
    run side by side, and blamed on torch."""
    import torch

    from symjac.backends import _torch as tb

    real = torch.tanh

    class Wrong(torch.autograd.Function):
        @staticmethod
        def forward(x):
            return real(x)

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_forward(inputs[0])
            ctx.save_for_backward(inputs[0])

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * (1 - real(x) ** 2)

        @staticmethod
        def jvp(ctx, t):
            (x,) = ctx.saved_tensors
            exact = t * (1 - real(x) ** 2)
            return exact * (1 + 1e-4) if how == "relative" else -exact

    ran = []
    side = tb._side_by_side_jvps
    monkeypatch.setattr(tb, "_side_by_side_jvps", lambda *a: ran.append(1) or side(*a))
    monkeypatch.setattr(torch, "tanh", Wrong.apply)
    f = sj.function("tanh(x * y) + y", x=(), y=())
    report = sj.check(f, x=0.8, y=-0.6)
    assert ran, "the forward route did not run side by side"
    assert report.verdict == "fail", str(report)
    odd = set(report.odd_one_out.split(", "))
    assert odd == {"torch-forward"}, str(report)


def test_a_side_by_side_output_that_reads_no_input_falls_back_to_the_loop():
    import torch

    from symjac.backends import _torch as tb
    from symjac.backends._torch_tensor import tensor_forward

    f = sj.function("2.5 + 0 * y", x=(), y=())  # the text's forward: a number plus a tensor of y
    assert tensor_forward(f).elementwise
    point = coerce_point(f.inputs, {"x": np.array(0.3), "y": np.array(-1.2)})
    jac = tb.tensor_jacobians(f, point, "forward")
    assert jac["x"] == 0.0 and jac["y"] == 0.0
    g = sj.function("3.5", x=(), y=())
    primals = (torch.tensor(0.3, dtype=torch.float64), torch.tensor(-1.2, dtype=torch.float64))
    out = tb._side_by_side_jvps(torch, tb._FlatForward(tensor_forward(g), ["x", "y"]), primals, 0, 2)
    assert out is None  # a number, not two outputs side by side: the loop runs instead
    assert sj.check(g, x=0.3, y=-1.2).verdict == "pass"


# -- finite differences of a few entries in Python floats ------------------------------------------
SMALL_FD_CASES = [
    (lambda r: (r[:, 0] * r[:, 1])[:, None], 2),
    (lambda r: np.stack([np.sin(r[:, 0]) * r[:, 1], np.exp(r[:, 1]) - r[:, 0] ** 3, np.abs(r[:, 0])], axis=1), 2),
    (lambda r: np.tanh(r @ np.arange(6.0).reshape(3, 2) / 7), 3),
    (lambda r: np.abs(r) * r[:, ::-1], 2),  # a kink at 0
    (lambda r: np.tan(r * 30.0), 1),  # poles within the stencil at some points
    (lambda r: 1 / (r[:, :1] - 0.5) + r[:, 1:2] ** 4, 2),  # a pole at 0.5: non-finite stencil values
    (lambda r: np.maximum(r, 0.0), 4),  # 16 entries: over PYTHON_ENTRIES, the array code on the same stencil
    (lambda r: np.sqrt(r[:, :1] ** 2 + 1e-300) * 0 + r[:, :1] * 1e300 * r[:, 1:], 2),  # overflow in the result
]


@pytest.mark.parametrize("case", range(len(SMALL_FD_CASES)))
def test_fd_in_python_floats_equals_the_array_code_bit_for_bit(monkeypatch, case):
    """`_finite_diff._richardson_in_floats` (a few entries, entry by entry in Python floats) gives
    the array code's value, error and step bit for bit: smooth functions, kinks, poles, non-finite
    stencil values, with and without an output noise bound."""
    fn, n = SMALL_FD_CASES[case]
    rng = np.random.default_rng(case)
    ran = []
    real = _finite_diff._richardson_in_floats
    monkeypatch.setattr(_finite_diff, "_richardson_in_floats", lambda *a: ran.append(real(*a)) or ran[-1])
    for trial in range(80):
        x = rng.normal(size=n) * 10.0 ** rng.integers(-3, 3)
        if trial % 7 == 0:
            x[0] = 0.0
        if trial % 11 == 0:
            x[-1] = 0.5
        noise = None if trial % 2 else np.abs(rng.normal(size=fn(x[None]).shape[1])) * 1e-14
        monkeypatch.setattr(_finite_diff, "PYTHON_ENTRIES", 8)
        fast = _finite_diff.fd_jacobian(fn, x, output_noise=noise)
        monkeypatch.setattr(_finite_diff, "PYTHON_ENTRIES", 0)
        slow = _finite_diff.fd_jacobian(fn, x, output_noise=noise)
        for name in ("value", "error", "step"):
            assert np.array_equal(getattr(fast, name), getattr(slow, name), equal_nan=True), (name, x)
            assert not getattr(fast, name).flags.writeable
        assert (fast.method, fast.evaluations) == (slow.method, slow.evaluations)
    if n * fn(np.zeros((1, n))).shape[1] <= 8:
        assert any(isinstance(r, _finite_diff.FDJacobian) for r in ran), "the Python-float table never ran"


def test_fd_in_python_floats_checks_what_the_array_code_checks():
    with pytest.raises(sj.SymjacError, match="output_noise must have one entry per output"):
        _finite_diff.fd_jacobian(lambda r: r * 2, np.array([1.0, 2.0]), output_noise=np.zeros(3))
    with pytest.raises(sj.SymjacError, match=r"\(k, out_size\)"):
        _finite_diff.fd_jacobian(lambda r: r[:, 0], np.array([1.0, 2.0]))
    res = _finite_diff.fd_jacobian(lambda r: np.abs(r), np.array([0.0]))  # abs at its kink: "cannot be trusted"
    assert res.value[0, 0] == 0.0 and res.error[0, 0] > 1.0


# -- the comparison of a few entries in Python floats ---------------------------------------------
def _compare_both_ways(monkeypatch, seen: list):
    """Patch `_Check._compare` to run the Python-float comparison and the array code on the same
    routes and assert the same pairs, ratios and masks."""
    real = _engine._Check._compare

    def both(self, routes, fd, noise):
        monkeypatch.setattr(_engine, "COMPARE_IN_FLOATS", 8)
        ran = []
        inner = _engine._compare_in_floats
        monkeypatch.setattr(_engine, "_compare_in_floats", lambda *a: ran.append(inner(*a)) or ran[-1])
        fast = real(self, routes, fd, noise)
        fast_masks = (self._disputed.copy(), self._fd_excused.copy())
        monkeypatch.setattr(_engine, "_compare_in_floats", inner)
        monkeypatch.setattr(_engine, "COMPARE_IN_FLOATS", 0)
        slow = real(self, routes, fd, noise)
        assert fast == slow
        assert all(np.array_equal(a, b) for a, b in zip(fast_masks, (self._disputed, self._fd_excused)))
        seen.append(any(r is not None for r in ran))
        return slow

    monkeypatch.setattr(_engine._Check, "_compare", both)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compare_in_python_floats_equals_the_array_code(monkeypatch, dtype):
    seen: list = []
    _compare_both_ways(monkeypatch, seen)
    rng = np.random.default_rng(11)
    cases = [("x * y", {"x": (), "y": ()}), ("tanh(x * y) + exp(y) / x", {"x": (), "y": ()}),
             ("abs(x) * y", {"x": (), "y": ()}), ("x ** 2 - 3 * y", {"x": (2,), "y": ()}),
             ("tan(x * 30)", {"x": ()}), ("sum(x * x) * y", {"x": (3,), "y": ()}),
             ("x @ x", {"x": (3, 3)})]  # 81 entries: the array code alone
    verdicts = set()
    for text, shapes in cases:
        f = sj.function(text, **shapes)
        for trial in range(12):
            at = {k: (rng.normal(size=s) * 10.0 ** rng.integers(-2, 2)).astype(dtype) for k, s in shapes.items()}
            if trial == 0:
                at = {k: np.zeros(s, dtype=dtype) for k, s in shapes.items()}  # kinks, zeros
            jac = sj.check(f, at=at)
            verdicts.add(jac.verdict)
            with np.errstate(all="ignore"):  # 1 / x at x = 0
                exact = f.jacobians().evaluate(**{k: v.astype(np.float64) for k, v in at.items()})
            if not isinstance(exact, dict):
                exact = {f.input_names[0]: exact}
            if not all(np.all(np.isfinite(v)) for v in exact.values()):
                continue  # outside the domain: no candidate to check
            wrong = {k: v * (1 + 1e-3) + (1e-3 if trial % 2 else 0.0) for k, v in exact.items()}
            verdicts.add(sj.check(f, at=at, jacobian=wrong).verdict)
    assert any(seen) and not all(seen)  # both ways ran: a few entries in floats, 81 in arrays
    assert {"pass", "fail"} <= verdicts


def test_compare_in_python_floats_falls_back_on_non_finite_values():
    from symjac._finite_diff import FDJacobian

    model = sj.ToleranceModel()
    index = ((0,), (1,), (0,), (1,), (False,))
    fd = FDJacobian(np.zeros((1, 2)), np.zeros((1, 2)), np.ones(2), "central-richardson", 13)
    noise = np.zeros((1, 2))
    stacked = np.array([[[1.0, np.inf]], [[1.0, 2.0]]])
    assert _engine._compare_in_floats(model, np.float64, stacked, index, noise, fd) is None
    finite = np.array([[[1.0, 3.0]], [[1.0, 2.0]]])
    (worst, tol_k, ratio, max_abs, max_rel, n_bad), = _engine._compare_in_floats(model, np.float64, finite, index,
                                                                                noise, fd)[0]
    want_tol = model.rounding(np.array(3.0), np.array(2.0), np.float64, np.array(0.0))
    assert (worst, max_abs, n_bad) == (1, 1.0, 1) and tol_k == want_tol and ratio == 1.0 / want_tol
    assert max_rel == 1.0 / 3.0


def test_a_tolerance_model_with_its_own_rules_is_compared_by_them():
    """A subclass that overrides a rule: the array code runs, with its rule (no Python-float copy
    of the base rules)."""
    class Loose(sj.ToleranceModel):
        def rounding(self, a, b, dtype, noise):
            return super().rounding(a, b, dtype, noise) + 1e-3

    assert _engine._model_rules(sj.ToleranceModel()) and not _engine._model_rules(Loose())
    f = sj.function("x * y", x=(), y=())
    at = {"x": 1.3, "y": -0.7}
    off = {"x": np.array(-0.7 + 5e-4), "y": np.array(1.3)}
    assert sj.check(f, at=at, jacobian=off).verdict == "fail"
    assert sj.check(f, at=at, jacobian=off, tolerance=Loose()).verdict == "pass"


# -- the noise of a few entries in Python floats ---------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_noise_in_python_floats_equals_the_array_code(monkeypatch, dtype):
    """`_engine._noise_in_floats` (a Jacobian of a few entries) gives `_Check._noise`'s array
    numbers bit for bit: smooth points, zeros, overflow in float32 (non-finite noise), kinks."""
    rng = np.random.default_rng(13)
    cases = [("x * y", {"x": (), "y": ()}), ("tanh(x * y) + exp(y) / x", {"x": (), "y": ()}),
             ("abs(x) * y - sqrt(y * y + 1)", {"x": (), "y": ()}), ("x ** 3 - 3 * y", {"x": (2,), "y": ()}),
             ("exp(x * 60)", {"x": ()})]  # exp(60 x) overflows float32 at x = 1.5
    seen = 0
    for text, shapes in cases:
        f = sj.function(text, **shapes)
        for trial in range(10):
            at = {k: rng.normal(size=s) * 10.0 ** rng.integers(-2, 1) for k, s in shapes.items()}
            if trial == 0:
                at = {k: np.zeros(s) + 1.5 for k, s in shapes.items()}
            point = coerce_point(f.inputs, {k: v.astype(dtype) for k, v in at.items()})
            results = []
            for small in (8, 0):
                monkeypatch.setattr(_engine, "NOISE_IN_FLOATS", small)
                check = _engine._Check(f, point, None, sj.ToleranceModel())
                with np.errstate(all="ignore"):
                    symbolic = check._reference(check.p64)
                results.append((check._noise(symbolic, implementation=True), list(check.notes), check.bounded.copy()))
            (fast, notes_fast, bounded_fast), (slow, notes_slow, bounded_slow) = results
            assert fast.dtype == slow.dtype == np.float64 and fast.shape == slow.shape
            assert np.array_equal(fast, slow), (text, at, fast, slow)
            assert notes_fast == notes_slow and np.array_equal(bounded_fast, bounded_slow)
            seen += 1
    assert seen == 50


def test_no_perturbations_turn_the_conditioning_off_without_an_error():
    """`ToleranceModel(perturbations=0)` ("0 turns the conditioning term off"): `_change` of no
    points is 0 (it raised "zero-size array to reduction operation maximum" before), and the check
    still tells wrong Jacobians from right ones, at a few entries and at many."""
    model = sj.ToleranceModel(perturbations=0)
    assert np.array_equal(_engine._change(np, np.ones((2, 3)), np.ones((0, 2, 3))), np.zeros((2, 3)))
    assert _engine._change(_floats, 1.0, []) == 0.0
    for f, at in ((sj.function("x * y", x=(), y=()), {"x": 1.3, "y": -0.7}),
                  (sj.function("X @ X", X=(3, 3)), {"X": np.eye(3) + 0.1})):
        assert sj.check(f, at=at, tolerance=model).verdict == "pass"
        exact = f.jacobians().evaluate(**at)
        exact = exact if isinstance(exact, dict) else {f.input_names[0]: exact}
        wrong = {k: -v for k, v in exact.items()}
        assert sj.check(f, at=at, jacobian=wrong, tolerance=model).verdict == "fail"


@pytest.mark.parametrize("text, shapes", [("sigmoid(X) @ X", {"X": (2, 2)}), ("tanh(x * y) + x ** 3", {"x": (), "y": ()}),
                                          ("log(x) * y", {"x": (), "y": ()}), ("x * y", {"x": (), "y": ()})])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_running_bounds_placed_in_floats_equal_the_array_code(monkeypatch, text, shapes, dtype):
    """`_Check._placed_bounds` in Python floats (up to `_floats.FEW` entries) gives the array code's
    arrays bit for bit: the Jacobian's bounds (`_running`, 2-D places in the bounds' own order) and
    the forward's (`_forward_running`), with the bounded mask and the notes; not all zero."""
    f = sj.function(text, **shapes)
    rng = np.random.default_rng(21)
    nonzero = 0
    for _ in range(8):
        at = {k: (np.abs(rng.normal(size=s)) + 0.2).astype(dtype) for k, s in shapes.items()}
        point = coerce_point(f.inputs, at)
        results = []
        for few in (16, -1):
            monkeypatch.setattr(_floats, "FEW", few)
            check = _engine._Check(f, point, None, sj.ToleranceModel())
            shape = (int(np.prod(f.out_shape)), sum(inp.size for inp in f.inputs))
            with np.errstate(all="ignore"):
                results.append((check._running(shape), check._forward_running(), check.bounded.copy(), list(check.notes)))
        (fast, fast_fwd, fast_mask, fast_notes), (slow, slow_fwd, slow_mask, slow_notes) = results
        assert fast.shape == slow.shape and np.array_equal(fast, slow)
        assert (fast_fwd is None) == (slow_fwd is None) and (fast_fwd is None or np.array_equal(fast_fwd, slow_fwd))
        assert np.array_equal(fast_mask, slow_mask) and fast_notes == slow_notes
        nonzero += int(np.any(fast != 0) or (fast_fwd is not None and np.any(fast_fwd != 0)))
    assert nonzero == 8


def _all_shortcuts(monkeypatch, on: bool):
    from symjac.backends import _torch as tb

    monkeypatch.setattr(_engine, "COMPARE_IN_FLOATS", 8 if on else 0)
    monkeypatch.setattr(_engine, "NOISE_IN_FLOATS", 8 if on else 0)
    monkeypatch.setattr(_finite_diff, "PYTHON_ENTRIES", 8 if on else 0)
    monkeypatch.setattr(tb, "SIDE_BY_SIDE_COLUMNS", 8 if on else 0)
    monkeypatch.setattr(_floats, "FEW", 16 if on else -1)  # `all_finite`, the running bounds' placement


SMALL_CHECKS = [("abs(x) * y", dict(x=0.0, y=1.0)), ("abs(x) * y", dict(x=1e-9, y=1.0)),
                ("sqrt(x*x + y*y)", dict(x=1e-12, y=0.0)), ("exp(x) - exp(y)", dict(x=30.0, y=30.0)),
                ("cos(x) - cos(y)", dict(x=1e4, y=1e-3)), ("tanh(x * y)", dict(x=30.0, y=1.0)),
                ("x ** 3 * y", dict(x=1e5, y=1e-5)), ("sin(x * 1e6) * y", dict(x=1.0, y=2.0)),
                ("log(x) * y", dict(x=1.0000001, y=3.0)), ("maximum(x, y)", dict(x=1.0, y=1.0 + 1e-9)),
                ("x * y", dict(x=1.3, y=-0.7)), ("log(x) * y", dict(x=-1.0, y=2.0)),
                ("exp(x * 800) * y", dict(x=1.0, y=1.0))]  # outside the domain; float64 overflow


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_small_checks_report_the_same_with_and_without_the_shortcuts(monkeypatch, dtype):
    """End to end: every field of the report (pass, fail, inconclusive for each reason, notes) is the
    same with the Python-float and side-by-side shortcuts as with the array code alone."""
    verdicts = set()
    for text, at in SMALL_CHECKS:
        f = sj.function(text, x=(), y=())
        point = {k: np.array(v, dtype=dtype) for k, v in at.items()}
        reports = []
        for on in (True, False):
            _all_shortcuts(monkeypatch, on)
            with np.errstate(all="ignore"):
                reports.append(sj.check(f, at=point))
                wrong = sj.check(f, at=point, jacobian={"x": np.array(0.25), "y": np.array(-4.0)})
            reports.append(wrong)
        assert reports[0].to_dict() == reports[2].to_dict(), text
        assert reports[1].to_dict() == reports[3].to_dict(), text
        verdicts |= {r.verdict for r in reports}
    assert verdicts == {"pass", "fail", "inconclusive"}


def test_coarse_note_in_python_floats_equals_the_array_code(monkeypatch):
    """`_coarse_in_floats` decides "weak at" as the array code does: where it finds no coarse entry
    the array code adds no note, where it finds one the array code writes it."""
    f = sj.function("x * y", x=(), y=())
    point = coerce_point(f.inputs, {"x": np.array(1.3), "y": np.array(-0.7)})
    rng = np.random.default_rng(17)
    found = 0
    for _ in range(300):
        symbolic = rng.normal(size=(1, 2)) * 10.0 ** rng.integers(-3, 3, size=(1, 2))
        noise = np.abs(rng.normal(size=(1, 2))) * 10.0 ** rng.integers(-18, -2, size=(1, 2))
        notes = []
        for small in (8, 0):
            monkeypatch.setattr(_engine, "COMPARE_IN_FLOATS", small)
            check = _engine._Check(f, point, None, sj.ToleranceModel())
            check._note_coarse(symbolic, noise)
            notes.append(check.notes)
        assert notes[0] == notes[1]
        assert _engine._coarse_in_floats(sj.ToleranceModel(), np.float64, symbolic, noise) == bool(notes[1])
        found += bool(notes[1])
    assert 0 < found < 300


def test_bounded_mask_is_kept_per_function_read_only_and_refined_on_a_copy(monkeypatch):
    """`_engine._bounded_mask`: the entries with a running error bound, kept per Function; a check
    that compiles the left-out bounds (`refine_noise`) marks them on its own copy."""
    f = sj.function("x * y", x=(), y=())
    g = sj.function("X @ X", X=(2, 2))
    sj.check(f, x=1.3, y=-0.7)
    sj.check(g, X=np.eye(2) + 0.3)
    masks = {fn: [v for k, v in fn._cache.items() if isinstance(k, tuple) and k[0] == "check-bounded"] for fn in (f, g)}
    (mf,), (mg,) = masks[f], masks[g]
    assert mf.shape == (1, 2) and mg.shape == (4, 4) and not mf.flags.writeable and not mg.flags.writeable
    from symjac import _tolerance

    monkeypatch.setattr(_tolerance, "MAX_RUNNING_TOTAL", 1)  # every bound left out: refine_noise compiles them
    h = sj.function("tanh(x * y) * 3", x=(), y=())
    point = coerce_point(h.inputs, {"x": np.array(0.4), "y": np.array(0.9)})
    check = _engine._Check(h, point, None, sj.ToleranceModel())
    with np.errstate(all="ignore"):
        check._noise(check._reference(check.p64))
    kept = check.bounded
    assert not kept.any() and not kept.flags.writeable
    noise, added = check.refine_noise(np.zeros((1, 2)), np.ones((1, 2), dtype=bool))
    assert added == 2 and check.bounded.all() and not kept.any()  # the kept mask is unchanged


@pytest.mark.parametrize("dtypes", [["f4"], ["f8"], ["f4", "f8"], ["f8", "f8"], ["i8"], [">f8"], ["f2", "f4"]])
def test_resolve_dtype_of_one_float_dtype_is_that_dtype_as_numpy_says(dtypes):
    from symjac._values import resolve_dtype

    arrays = {str(i): np.zeros(1, dtype=d) for i, d in enumerate(dtypes)}
    assert resolve_dtype(arrays) == np.result_type(*(a.dtype for a in arrays.values()))


# -- symjac._floats: NumPy's functions on one entry ------------------------------------------------
_EDGE = [0.0, -0.0, 1.0, -1.5, 2.0 ** -1074, 1e308, -1e308, float("inf"), float("-inf"), float("nan")]


@pytest.mark.parametrize("name", ["fmax", "maximum"])
def test_floats_fmax_and_maximum_give_numpys_numbers(name):
    ours, numpys = getattr(_floats, name), getattr(np, name)
    for a in _EDGE:
        for b in _EDGE:
            want = float(numpys(np.float64(a), np.float64(b)))
            got = ours(a, b)
            assert type(got) is float and (got == want or (got != got and want != want)), (name, a, b, got, want)


def test_floats_element_wise_functions_give_numpys_numbers():
    for a in _EDGE:
        assert _floats.isfinite(a) == bool(np.isfinite(a))
        assert _floats.where(a > 0, 1.0, 2.0) == float(np.where(a > 0, 1.0, 2.0))
        assert _floats.logical_not(a > 0) is bool(np.logical_not(a > 0)) and _floats.logical_not(True) is False
        assert _floats.any(a > 0) == bool(np.any(a > 0))
        if a == a:
            assert _floats.sign(a) == float(np.sign(a))
    assert _floats.zeros_like(3.0) == 0.0 and np.array_equal(np.zeros_like(np.ones(3)), np.zeros(3))


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_all_finite_gives_numpys_answer_below_and_above_few(dtype):
    """`_floats.all_finite` (Python floats up to `FEW` entries, NumPy above) answers as
    `numpy.isfinite(a).all()` at every size, shape and position of a bad entry."""
    rng = np.random.default_rng(3)
    for size in (0, 1, 2, _floats.FEW, _floats.FEW + 1, 40):
        for shape in ((size,), (1, size), (size, 1)) if size else ((0,), (2, 0)):
            a = rng.normal(size=shape).astype(dtype)
            assert _floats.all_finite(a) is True
            if a.size == 0 or dtype is np.int64:
                continue
            for bad in (np.nan, np.inf, -np.inf):
                for k in (0, a.size - 1):
                    b = a.copy()
                    b.reshape(-1)[k] = bad
                    assert _floats.all_finite(b) is False, (size, shape, bad, k)
    assert _floats.all_finite(np.array(np.nan)) is False and _floats.all_finite(np.array(2.0)) is True


def test_the_rules_run_one_text_in_both_namespaces():
    """The comparison's and the noise's rules on arrays equal their floats entry by entry (trusted
    and untrusted finite differences, with and without them; the noise above its running bound)."""
    model, rng = sj.ToleranceModel(), np.random.default_rng(8)
    a, b, noise = rng.normal(size=6), rng.normal(size=6) * 1e-9, np.abs(rng.normal(size=6)) * 1e-15
    b = a + b
    fd_error, fd_value = np.abs(rng.normal(size=6)) * np.array([1e-12, 1e-12, 10, 1e-12, 10, 1e-12]), a
    untrusted = model.fd_untrusted(fd_error, fd_value)
    assert untrusted.tolist() == [model._fd_untrusted(_floats, e, v) for e, v in zip(fd_error.tolist(), fd_value.tolist())]
    assert untrusted.any() and not untrusted.all()
    for with_fd in (False, True):
        arrays = _engine._ratios(np, model, np.float64, a, b, a, b, noise, np.array(with_fd), fd_error, untrusted, np.inf)
        for k in range(6):
            one = _engine._ratios(_floats, model, np.float64, a[k], b[k], a[k], b[k], noise[k], with_fd, float(fd_error[k]),
                                  bool(untrusted[k]), np.inf)
            assert [float(v) for v in one] == [float(v[k]) for v in arrays], (with_fd, k)
    j32, moved, running = a + 1e-8, a[None] + rng.normal(size=(5, 6)) * 1e-14, noise
    arrays = _engine._noise_rule(np, j32, a, 2.0 ** -29, _engine._change(np, a, moved), running)
    floats = _engine._noise_in_floats(j32, a, a, moved, 2.0 ** -29, running)
    assert np.array_equal(arrays, floats) and (arrays > running).all()
