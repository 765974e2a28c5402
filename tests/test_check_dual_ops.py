"""The loop of dual-number forwards (forward mode for one or two columns: issue 14's `x * y` floor)
calls torch's own dual-number operations (`backends._torch._dual_ops`: `torch._VF._make_dual`,
`_unpack_dual`) instead of `forward_ad.make_dual` / `unpack_dual`, which run them after per-call
checks. It gives the same columns bit for bit as `forward_ad`'s functions, in float32 and float64,
including a zero column (an output that ignores an input) and a one-sided undefined tangent; and
`forward_ad`'s own functions are used while an export mode is active. No timing is asserted here
(`benchmarks/check_floors.py` measures the floor).
"""

from __future__ import annotations

import numpy as np
import pytest

import symjac as sj
from symjac._values import coerce_point

torch = pytest.importorskip("torch")
from symjac.backends import _torch as tb  # noqa: E402

RNG = np.random.default_rng(23)

CASES = [
    ("x * y", {"x": (), "y": ()}),
    ("x * exp(y)", {"x": (), "y": ()}),
    ("sin(x) + 0 * y", {"x": (), "y": ()}),
    ("x", {"x": (), "y": ()}),  # y unused: a zero column
    ("tanh(x * y)", {"x": (2,), "y": ()}),
    ("sigmoid(x)", {"x": ()}),
]


def _with_fwad(monkeypatch):
    import torch.autograd.forward_ad as fwad

    monkeypatch.setattr(tb, "_dual_ops", lambda torch, fwad_: (fwad.make_dual, fwad.unpack_dual))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("text, shapes", CASES, ids=[c[0] for c in CASES])
def test_dual_loop_gives_forward_ads_columns_bit_for_bit(monkeypatch, text, shapes, dtype):
    f = sj.function(text, **shapes)
    point = coerce_point(f.inputs, {k: RNG.normal(size=s).astype(dtype) for k, s in shapes.items()})
    assert sum(inp.size for inp in f.inputs) <= tb.FEW_COLUMNS or text == "tanh(x * y)"
    monkeypatch.setattr(tb, "FEW_COLUMNS", 10_000)  # every column by the loop
    fast = tb.tensor_jacobians(f, point, "forward")
    with monkeypatch.context() as m:
        _with_fwad(m)
        slow = tb.tensor_jacobians(f, point, "forward")
    reverse = tb.tensor_jacobians(f, point, "reverse")
    for name in slow:
        assert fast[name].dtype == slow[name].dtype == np.dtype(dtype)
        np.testing.assert_array_equal(fast[name], slow[name])
        np.testing.assert_allclose(fast[name], reverse[name], rtol=1e-5 if dtype == np.float32 else 1e-12,
                                   atol=1e-6 if dtype == np.float32 else 1e-14)


def test_unused_input_gives_a_zero_column():
    f = sj.function("x", x=(), y=())
    point = coerce_point(f.inputs, {"x": np.array(0.3), "y": np.array(2.0)})
    out = tb.tensor_jacobians(f, point, "forward")
    assert float(out["x"]) == 1.0 and float(out["y"]) == 0.0


def test_dual_ops_are_torchs_own_and_forward_ads_under_export(monkeypatch):
    import torch.autograd.forward_ad as fwad
    import torch._export.utils as export_utils

    make, unpack = tb._dual_ops(torch, fwad)
    assert make is torch._VF._make_dual and unpack is torch._VF._unpack_dual
    monkeypatch.setattr(export_utils, "_maybe_find_pre_dispatch_tf_mode_for_export", lambda: object())
    make, unpack = tb._dual_ops(torch, fwad)
    assert make is fwad.make_dual and unpack is fwad.unpack_dual


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_check_of_x_times_y_catches_wrong_and_passes_right(dtype):
    f = sj.function("x * y", x=(), y=())
    x, y = np.array(1.3, dtype=dtype), np.array(-0.7, dtype=dtype)
    assert sj.check(f, x=x, y=y).verdict == "pass"
    right = {"x": np.array(float(y)), "y": np.array(float(x))}
    assert sj.check(f, at={"x": x, "y": y}, jacobian=right).verdict == "pass"
    for how, wrong in {"sign-flipped": {"x": -right["x"], "y": -right["y"]},
                       "off by 1e-4": {"x": right["x"] * (1 + 1e-4), "y": right["y"]},
                       "swapped": {"x": right["y"], "y": right["x"]}}.items():
        report = sj.check(f, at={"x": x, "y": y}, jacobian=wrong)
        assert report.verdict == "fail", how
        assert report.odd_one_out == "candidate", how


def test_torch_builtin_forward_route_without_false_alarm_in_float32_and_float64():
    for dtype in (np.float32, np.float64):
        for text in ("x * y", "exp(x) * sin(y)", "sigmoid(x) * y", "softplus(x) + y"):
            f = sj.function(text, x=(), y=())
            report = sj.check(f, at={"x": np.array(0.8, dtype=dtype), "y": np.array(-1.1, dtype=dtype)})
            assert report.verdict == "pass", (text, dtype, str(report))
            assert "torch-forward" in report.routes
