"""What the single-point check keeps between calls to cut its fixed cost (issue 14's `x * y` and
`check(samples=100)` floors) gives the numbers it replaces, and is kept per Function, per dtype and
per tolerance model, and is safe across threads.

- `_tolerance.eps` / `underflow` remember NumPy's `finfo` per dtype spelling;
- the report's description of the function, its rebuild call, the dtype's name and the tolerance
  description are made once (per Function; per model and dtype) and each report has its own copy;
- `_engine._pair_chunks`: the pairs' index arrays, once per tuple of route names;
- `_engine._unravel` is `np.unravel_index`;
- `backends._torch._batched_jvps` (torch's own vmap of dual numbers) gives the JVPs of
  `torch.func.vmap(torch.func.jvp)` bit for bit, and forward mode gives the same columns along
  each of its three paths (a loop of dual forwards, the dual vmap, functorch's vmap);
- `_values.coerce_point` without broadcasting (every input already has the batch shape) gives
  read-only arrays, as `np.broadcast_to` did.
No timing is asserted here: `benchmarks/check_floors.py` measures the floors.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import symjac as sj
from symjac import _engine, _tolerance
from symjac._values import coerce_point

RNG = np.random.default_rng(11)


@pytest.mark.parametrize("spelling", [np.float32, np.dtype(np.float32), "float32", np.float64,
                                      np.dtype(np.float64), "float64", np.float16, "f8"])
def test_eps_and_underflow_are_numpys_for_every_spelling(spelling):
    info = np.finfo(np.dtype(spelling))
    for _ in range(2):  # asked of NumPy the first time, remembered the second
        assert _tolerance.eps(spelling) == float(info.eps)
        assert _tolerance.underflow(spelling) == float(info.tiny) / float(info.eps)
    assert _tolerance.eps(np.float32) != _tolerance.eps(np.float64)


def test_reports_describe_their_own_function_and_rebuild_it():
    f = sj.function("x * y", x=(), y=())
    g = sj.function("x + y", x=(), y=())
    h = sj.function("x * y + c", x=(), y=(), consts={"c": 2.0})
    point = {"x": 1.5, "y": -0.25}
    reports = {name: sj.check(fn, **point) for name, fn in (("f", f), ("g", g), ("h", h))}
    assert reports["f"].function == "x * y (x: (), y: ())"
    assert reports["g"].function == "x + y (x: (), y: ())"
    assert reports["h"].function.startswith("x * y + c")
    for name, report in reports.items():
        assert report.verdict == "pass", str(report)
        namespace: dict = {}
        exec(report.reproduce.replace("symjac.check(", "_r = symjac.check(", 1), namespace)  # noqa: S102 - our own line
        again = namespace["_r"]
        assert again.function == report.function and again.verdict == report.verdict
        assert again.to_dict() == report.to_dict()
    assert "consts={'c': 2.0}" in reports["h"].reproduce and "consts" not in reports["f"].reproduce


def test_tolerance_description_is_per_model_and_dtype_and_each_report_owns_its_copy():
    f = sj.function("x * y", x=(), y=())
    point = {"x": np.array(1.5), "y": np.array(-0.25)}
    r64 = sj.check(f, at=point)
    r32 = sj.check(f, at={k: v.astype(np.float32) for k, v in point.items()})
    loose = sj.check(f, at=point, tolerance=sj.ToleranceModel(rounding_factor=128.0))
    assert r64.tolerance == sj.ToleranceModel().describe(np.float64)
    assert r32.tolerance == sj.ToleranceModel().describe(np.float32)
    assert r32.dtype == "float32" and r64.dtype == "float64"
    assert r32.tolerance["eps"] == float(np.finfo(np.float32).eps)
    assert loose.tolerance["rounding_factor"] == 128.0 and r64.tolerance["rounding_factor"] == 64.0
    r64.tolerance["rounding_factor"] = -1.0  # a caller's change to one report reaches no other
    assert sj.check(f, at=point).tolerance["rounding_factor"] == 64.0


@pytest.mark.parametrize("names", [
    ("symbolic", "torch-reverse", "torch-forward", "finite-diff"),
    ("symbolic", "torch-reverse", "torch-forward", "finite-diff", "candidate"),
    ("symbolic", "torch-reverse", "autograd-reverse", "torch-forward", "finite-diff"),
])
@pytest.mark.parametrize("step", [1, 2, 100])
def test_pair_chunks_index_every_pair_in_combination_order(names, step):
    chunks = _engine._pair_chunks(names, step)
    assert chunks is _engine._pair_chunks(names, step)  # made once
    seen = []
    for chunk, used, ia, ib, ta, tb, fd_pair, nan_ratio, any_fd, lists in chunks:
        assert lists == tuple(tuple(a.tolist()) for a in (ia, ib, ta, tb, fd_pair))
        assert len(chunk) <= step
        for i, (a, b) in enumerate(chunk):
            assert (used[ia[i]], used[ib[i]]) == (a, b)
            against_fd = "finite-diff" in (a, b)
            assert fd_pair[i] == against_fd and nan_ratio[i, 0, 0] == (0.0 if against_fd else np.inf)
            other = b if a == "finite-diff" else a
            # the rounding tolerance reads the other route twice against finite differences
            assert (used[ta[i]], used[tb[i]]) == ((other, other) if against_fd else (a, b))
        assert any_fd == bool(fd_pair.any())
        assert not ia.flags.writeable and not fd_pair.flags.writeable
        seen += list(chunk)
    import itertools

    assert seen == list(itertools.combinations(names, 2))


@pytest.mark.parametrize("shape", [(), (1,), (5,), (3, 4), (2, 1, 3), (4, 4, 2, 2)])
def test_unravel_is_numpys(shape):
    for k in range(int(np.prod(shape, dtype=int))):
        assert _engine._unravel(k, shape) == tuple(int(i) for i in np.unravel_index(k, shape))


torch = pytest.importorskip("torch")

TORCH_CASES = [
    ("X @ X", {"X": (4, 4)}),
    ("det(X)", {"X": (3, 3)}),
    ("softmax(x)", {"x": (6,)}),
    ("tanh(W @ x + b)", {"W": (3, 3), "x": (3,), "b": (3,)}),
    ("inv(X)", {"X": (3, 3)}),
    ("x * y", {"x": (2,), "y": (2,)}),
    ("sum(X) * y", {"X": (2, 3), "y": ()}),
]


def _point(f, shapes, dtype):
    values = {k: RNG.normal(size=s) + (2 * np.eye(s[0]) if f.source in ("det(X)", "inv(X)") else 0) for k, s in shapes.items()}
    return coerce_point(f.inputs, {k: v.astype(dtype) for k, v in values.items()})


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("text, shapes", TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_dual_vmap_jvps_equal_functorchs_bit_for_bit(text, shapes, dtype):
    from symjac.backends import _torch as tb
    from symjac.backends._torch_tensor import tensor_forward

    f = sj.function(text, **shapes)
    point = _point(f, shapes, dtype)
    run = tensor_forward(f)
    names = [inp.name for inp in f.inputs]
    tensors = tb.to_tensors(point)
    primals = tuple(tensors[n] for n in names)
    sizes = [inp.size for inp in f.inputs]
    count = sum(sizes)
    units = primals[0].new_zeros((count, count))
    units.diagonal(0).fill_(1)
    tangents = [t.reshape((count,) + tuple(p.shape)) for p, t in zip(primals, units.split(sizes, dim=1))]

    def fn(*args):
        return run(dict(zip(names, args))).reshape(-1)

    with tb.FORWARD_AD_LOCK:
        dual = tb._batched_jvps(torch, fn, primals, tangents)
        functorch = tb._functorch_jvps(torch, fn, primals, tangents)
    assert dual.dtype == functorch.dtype == primals[0].dtype
    assert torch.equal(dual, functorch)


@pytest.mark.parametrize("text, shapes", TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_forward_mode_columns_agree_along_every_path(monkeypatch, text, shapes):
    from symjac.backends import _torch as tb

    f = sj.function(text, **shapes)
    point = _point(f, shapes, np.float64)
    results = []
    for few, dual in ((0, 0), (0, 10_000), (10_000, 0)):  # functorch's vmap, the dual vmap, the loop
        monkeypatch.setattr(tb, "FEW_COLUMNS", few)
        monkeypatch.setattr(tb, "DUAL_VMAP_COLUMNS", dual)
        results.append(tb.tensor_jacobians(f, point, "forward"))
    reverse = tb.tensor_jacobians(f, point, "reverse")
    for got in results:
        for name in got:
            np.testing.assert_allclose(got[name], reverse[name], rtol=1e-12, atol=1e-12)
    for name in results[0]:  # both vmaps: the same numbers
        np.testing.assert_array_equal(results[0][name], results[1][name])


def test_dual_vmap_gives_zeros_for_an_output_that_ignores_the_inputs():
    from symjac.backends import _torch as tb

    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    tangents = [torch.eye(2, dtype=torch.float64)]
    with tb.FORWARD_AD_LOCK:
        out = tb._batched_jvps(torch, lambda x: torch.ones(3, dtype=torch.float64), (x,), tangents)
    assert torch.equal(out, torch.zeros(2, 3, dtype=torch.float64))


@pytest.mark.parametrize("text, shapes", [("x * y", {"x": (), "y": ()}), ("X @ X", {"X": (4, 4)}),
                                          ("tanh(W @ x + b)", {"W": (3, 3), "x": (3,), "b": (3,)})])
def test_wrong_jacobians_are_caught_on_the_fast_paths(text, shapes):
    f = sj.function(text, **shapes)
    point = {k: RNG.normal(size=s) for k, s in shapes.items()}
    exact = {inp.name: f.jacobian(inp.name).evaluate(**point) for inp in f.inputs}
    wrongs = {
        "sign-flipped": {k: -v for k, v in exact.items()},
        "off by 1e-4": {k: v * (1 + 1e-4) for k, v in exact.items()},
    }
    if text == "X @ X":
        wrongs["transposed"] = {"X": exact["X"].transpose(2, 3, 0, 1)}
    for how, wrong in wrongs.items():
        report = sj.check(f, at=point, jacobian=wrong if len(wrong) > 1 else next(iter(wrong.values())))
        assert report.verdict == "fail", how
        assert report.odd_one_out == "candidate", how
    assert sj.check(f, at=point, jacobian=exact if len(exact) > 1 else next(iter(exact.values()))).verdict == "pass"


def test_checks_in_threads_across_dtypes_and_functions_give_the_sequential_reports():
    cases = []
    for text, shapes in (("x * y", {"x": (), "y": ()}), ("X @ X", {"X": (4, 4)}), ("softmax(x)", {"x": (5,)})):
        f = sj.function(text, **shapes)
        for dtype in (np.float64, np.float32):
            cases.append((f, {k: RNG.normal(size=s).astype(dtype) for k, s in shapes.items()}))
    expected = [sj.check(f, at=p).to_dict() for f, p in cases]
    barrier = threading.Barrier(4)

    def run(k):
        barrier.wait() if k < 4 else None
        f, p = cases[k % len(cases)]
        return k % len(cases), sj.check(f, at=p).to_dict()

    with ThreadPoolExecutor(4) as pool:
        for k, got in pool.map(run, range(3 * len(cases))):
            assert got == expected[k]


def test_one_point_without_broadcasting_is_read_only_like_a_broadcast_one():
    f = sj.function("x * y", x=(3,), y=(3,))
    x, y = np.arange(3.0), np.ones(3)
    point = coerce_point(f.inputs, {"x": x, "y": y})
    assert point.batch_shape == () and point.dtype == np.float64
    for name, given in (("x", x), ("y", y)):
        assert not point.values[name].flags.writeable
        np.testing.assert_array_equal(point.values[name], given)
    assert x.flags.writeable  # the caller's array is untouched
    mixed = coerce_point(f.inputs, {"x": x.astype(np.float32), "y": y})
    assert mixed.dtype == np.float64 and mixed.values["x"].dtype == np.float64
    batched = coerce_point(f.inputs, {"x": np.ones((2, 3)), "y": y})  # broadcast: as before
    assert batched.batch_shape == (2,) and batched.values["y"].shape == (2, 3)


def test_implementation_allowance_is_known_per_function_dtype_and_threshold():
    fused = sj.function("sigmoid(x) * y", x=(2,), y=(2,))
    plain = sj.function("x * y", x=(2,), y=(2,))
    point = {"x": np.array([0.3, -1.2]), "y": np.array([2.0, 0.5])}
    for dtype in (np.float64, np.float32):
        p = coerce_point(fused.inputs, {k: v.astype(dtype) for k, v in point.items()})
        assert _engine._Check(fused, p, None, sj.ToleranceModel())._has_implementation_bounds()
        assert not _engine._Check(plain, p, None, sj.ToleranceModel())._has_implementation_bounds()
        # the allowance itself is still added where the spec has a fused primitive
        chk = _engine._Check(fused, p, None, sj.ToleranceModel())
        assert np.any(chk.implementation_noise((2, 4), jacobian=True) > 0)
        assert sj.check(fused, at={k: v.astype(dtype) for k, v in point.items()}).verdict == "pass"
    kept = [k for k in fused._cache if isinstance(k, tuple) and k[0] == "has-implementation-bounds"]
    assert {k[1] for k in kept} == {np.dtype(np.float64), np.dtype(np.float32)}
