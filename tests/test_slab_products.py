"""A stage's products taken slab by slab (`PolynomialStage.slabs`, `backends._numpy._slab_products`):
runs of monomials whose factors are each one fixed column or consecutive columns are one broadcast
multiply of table rows instead of a gather; the values are the same bits as the gathered products."""

import numpy as np
import pytest

import symjac as sj
from symjac._entry_plan import MIN_SLAB, PolynomialStage
from symjac.backends import _numpy as numpy_backend
from symjac.backends._numpy import _products, _slab_products


def _stage(monomials, coefs=None, pad=99) -> PolynomialStage:
    monomials = np.asarray(monomials, dtype=np.intp)
    T = len(monomials)
    coefs = np.ones(T) if coefs is None else np.asarray(coefs, dtype=np.float64)
    return PolynomialStage(width=pad, pad=pad, monomials=monomials, coefs=coefs,
                           starts=np.arange(T), offsets=None)


def _expand(slabs, degree: int) -> np.ndarray:
    """The monomials the slabs stand for."""
    rows = []
    for a, b, factors in slabs:
        assert len(factors) == degree
        for t in range(a, b):
            rows.append([c + (t - a) if steps else c for c, steps in factors])
    return np.array(rows, dtype=np.intp).reshape(-1, degree)


def _slabbed_monomials(rng, degree: int, pad: int | None = None) -> np.ndarray:
    """Random monomials made of runs (each factor fixed or stepping by one), some of length 1;
    with `pad`, a run in four has its last factor the column of ones (a lower degree)."""
    rows = []
    while len(rows) < 200:
        length = int(rng.integers(1, 20))
        base = rng.integers(0, 60, degree)
        steps = rng.integers(0, 2, degree)
        if pad is not None and rng.integers(0, 4) == 0:
            base[-1], steps[-1] = pad, 0
        rows.extend((base + steps * t).tolist() for t in range(length))
    return np.array(rows, dtype=np.intp)


@pytest.mark.parametrize("degree", [1, 2, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_slabs_stand_for_exactly_the_monomials(degree, seed):
    monomials = _slabbed_monomials(np.random.default_rng(seed), degree)
    slabs = _stage(monomials).slabs
    assert slabs is not None
    np.testing.assert_array_equal(_expand(slabs, degree), monomials)
    # consecutive, covering every monomial once
    assert slabs[0][0] == 0 and slabs[-1][1] == len(monomials)
    assert all(s[1] == t[0] for s, t in zip(slabs, slabs[1:]))


def test_short_slabs_are_not_used():
    # steps of 2 never make a slab: every slab one monomial, below MIN_SLAB on average
    monomials = np.stack([np.arange(0, 40, 2), np.arange(1, 41, 2)], axis=1)
    assert _stage(monomials).slabs is None
    # MIN_SLAB monomials per slab on average is enough
    run = np.stack([np.arange(MIN_SLAB), np.full(MIN_SLAB, 50)], axis=1)
    assert len(_stage(np.concatenate([run, run + 1])).slabs) == 2


@pytest.mark.parametrize("degree", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("unit", [True, False])
def test_slab_products_equal_gathered_products_bit_for_bit(degree, dtype, unit):
    rng = np.random.default_rng(degree)
    monomials = _slabbed_monomials(rng, degree, pad=99)
    assert (monomials == 99).any()
    coefs = None if unit else rng.uniform(-2.0, 2.0, len(monomials))
    stage = _stage(monomials, coefs)
    table = rng.uniform(-1.5, 1.5, (101, 13)).astype(dtype)
    table[99] = 1.0
    c = None if coefs is None else coefs.astype(dtype)
    gathered = np.empty((len(monomials), 13), dtype=dtype)
    slabbed = np.empty_like(gathered)
    _products(table, monomials, c, gathered)
    _slab_products(table, stage.slabs, c, slabbed)
    assert slabbed.dtype == dtype
    np.testing.assert_array_equal(slabbed, gathered)
    # negative: a slab read with a factor's step flipped gives other values
    a, b, factors = next(s for s in stage.slabs if s[1] - s[0] > 1)
    wrong = list(stage.slabs)
    wrong[wrong.index((a, b, factors))] = (a, b, ((factors[0][0], not factors[0][1]),) + factors[1:])
    _slab_products(table, tuple(wrong), c, slabbed)
    assert not np.array_equal(slabbed, gathered)


def _tanh(n: int):
    return sj.function("tanh(W @ x + b)", W=(n, n), x=(n,), b=(n,))


def test_tanh_layer_products_are_slabs_of_n():
    n = 8
    f = _tanh(n)
    plan, _ = numpy_backend.jacobians_plan(f, tuple(f.jacobians().values()))
    first, second = plan.stages
    # t_i * t_i (for 1 - t_i**2): one slab, both factors stepping
    assert len(first.monomials) == n and len(first.slabs) == 1
    assert [steps for _, steps in first.slabs[0][2]] == [True, True]
    # x_k * (1 - t_i**2) (by W) and W[i, k] * (1 - t_i**2) (by x): 2 n slabs of n products
    assert second.one_term_each and len(second.monomials) == 2 * n * n
    assert len(second.slabs) == 2 * n and all(b - a == n for a, b, _ in second.slabs)


@pytest.mark.parametrize("batch", [(), (5,), (2, 3)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tanh_layer_jacobians_with_slabs_equal_them_gathered(batch, dtype):
    n = 8
    f = _tanh(n)
    jacs = f.jacobians()
    rng = np.random.default_rng(4)
    point = {name: rng.uniform(-1.0, 1.0, batch + shape).astype(dtype)
             for name, shape in (("W", (n, n)), ("x", (n,)), ("b", (n,)))}
    plan, _ = numpy_backend.jacobians_plan(f, tuple(jacs.values()))
    assert all(s.slabs is not None for s in plan.stages)
    slabbed = jacs.evaluate(**point)
    saved = [s.slabs for s in plan.stages]
    for s in plan.stages:
        s.__dict__["slabs"] = None  # the gathered products, the path taken before slabs
    try:
        gathered = jacs.evaluate(**point)
    finally:
        for s, slabs in zip(plan.stages, saved):
            s.__dict__["slabs"] = slabs
    for name, jac in jacs.items():
        assert slabbed[name].dtype == dtype and slabbed[name].shape == batch + jac.shape
        np.testing.assert_array_equal(slabbed[name], gathered[name])
    if dtype == np.float64:
        # and the per-entry generated code (no plan)
        code = numpy_backend.compiled_jacobian(jacs["W"])
        args = [point[inp.name].reshape(batch + (inp.size,))[..., q]
                for inp in f.inputs for q in range(inp.size)]
        dense = np.zeros(batch + (n * n * n,))
        for r, c, v in zip(jacs["W"].rows, jacs["W"].cols, code.fn(*args)):
            dense[..., int(r) * n * n + int(c)] = v
        np.testing.assert_allclose(slabbed["W"], dense.reshape(batch + jacs["W"].shape), rtol=1e-13, atol=1e-13)
