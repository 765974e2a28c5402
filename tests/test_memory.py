"""Memory of a check (issue 15): `check(function("X[0, 0] * 2", X=(64, 64)))` peaked at 2.6 GB. Finite
differences perturbed all 4,096 inputs (a stencil of 24,577 points of 4,096 entries) although the
output reads one; forward mode ran 4,096 copies of 4,096 entries at once. Both are bounded here by
counted quantities (tracemalloc's peak of NumPy's allocations, the entries torch copies), not time.
"""

import tracemalloc

import numpy as np
import pytest

import symjac as sj
from symjac import _check

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.timeout(120)


def test_finite_differences_perturb_only_the_inputs_the_output_reads():
    f = sj.function("X[0, 0] * 2", X=(64, 64))
    point = np.ones((64, 64))
    sj.check(f, X=point)  # compile once, outside the measurement
    tracemalloc.start()
    try:
        report = sj.check(f, X=point)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.verdict == "pass"
    assert peak < 64 * 2**20, peak  # was about 2.4 GB; now a few MB


def test_forward_mode_copies_are_chunked(monkeypatch):
    from symjac.backends import _torch

    sizes = []
    real = _torch._copies

    def counting(t, count):
        copy = real(t, count)
        sizes.append(copy.numel())
        return copy

    monkeypatch.setattr(_torch, "_copies", counting)
    # a callable: no tensor-level forward, so the element-wise routes run (their copies are counted)
    f = sj.function(lambda X: X[0, 0] * 2 + X[63, 63], X=(64, 64))
    report = sj.check(f, X=np.ones((64, 64)))
    assert report.verdict == "pass"
    assert sizes and max(sizes) <= _torch.FORWARD_CHUNK_ENTRIES  # was 4096 * 4096 = 16.7 million


def test_chunked_forward_mode_gives_the_unchunked_jacobian(monkeypatch):
    from symjac.backends import _torch

    f = sj.function("tanh(W @ v) * sum(v)", W=(3, 4), v=(4,))
    rng = np.random.default_rng(3)
    point = {"W": rng.normal(size=(3, 4)), "v": rng.normal(size=4)}
    whole = sj.check(f, **point)
    monkeypatch.setattr(_torch, "FORWARD_CHUNK_ENTRIES", 16)  # 1 column per chunk: 16 entries in all
    chunked = sj.check(f, **point)
    assert chunked.verdict == whole.verdict == "pass"
    assert chunked.to_dict() == whole.to_dict()


def test_tensor_routes_are_chunked(monkeypatch):
    from symjac.backends import _torch

    chunks = []
    real_rows, real_columns = _torch._tensor_rows, _torch._tensor_columns

    def rows(torch, y, xs, start, stop):
        chunks.append((stop - start) * max(y.numel(), sum(x.numel() for x in xs)))
        return real_rows(torch, y, xs, start, stop)

    def columns(torch, fn, primals, sizes, start, stop):
        chunks.append((stop - start) * sum(sizes))
        return real_columns(torch, fn, primals, sizes, start, stop)

    monkeypatch.setattr(_torch, "_tensor_rows", rows)
    monkeypatch.setattr(_torch, "_tensor_columns", columns)
    monkeypatch.setattr(_torch, "FORWARD_CHUNK_ENTRIES", 4096 * 16)
    f = sj.function("X[0, 0] * 2 + X[63, 63] * X[1, 1]", X=(64, 64))
    report = sj.check(f, X=np.ones((64, 64)))
    assert report.verdict == "pass" and "torch-forward" in report.routes
    assert len(chunks) == 1 + 4096 // 16  # one row (a scalar output), 256 chunks of 16 columns
    assert max(chunks) <= _torch.FORWARD_CHUNK_ENTRIES  # unchunked: 4096 * 4096 = 16.7 million


@pytest.mark.parametrize("route, how", [
    ("autograd-forward", "_autograd"), ("autograd-reverse", "_autograd"),
    ("torch-forward", "_tensor_routes"), ("torch-reverse", "_tensor_routes")])
def test_a_wrong_derivative_at_an_input_the_output_does_not_read_is_caught(monkeypatch, route, how):
    # finite differences give an exact 0 (no error) there: an autograd route off there is the odd one out
    real = getattr(_check._Check, how)
    mode = route.split("-")[1]

    def wrong_autograd(self, which):
        value = real(self, which).copy()
        if which == mode:
            value[0, 5] += 1e-4
        return value

    def wrong_tensor(self):
        routes = real(self)
        routes[route] = routes[route].copy()
        routes[route][0, 5] += 1e-4
        return routes

    monkeypatch.setattr(_check._Check, how, wrong_autograd if how == "_autograd" else wrong_tensor)
    # text: the tensor routes; a callable: the element-wise ones
    f = sj.function("X[0, 0] * 2" if how == "_tensor_routes" else (lambda X: X[0, 0] * 2), X=(8, 8))
    report = sj.check(f, X=np.ones((8, 8)))
    assert report.verdict == "fail"
    assert report.odd_one_out == route
    assert report.worst.input_index == (0, 5)


def test_constant_output_still_checks():
    f = sj.function(lambda x: x * 0 + 1, x=(3,))
    assert sj.check(f, x=np.ones(3)).verdict == "pass"
