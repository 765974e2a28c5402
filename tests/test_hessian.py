"""Exact higher derivatives (`Function.hessian`, `Function.derivative`): layout, sparsity, dtype,
cache, budgets, LaTeX, and agreement with torch's reverse-over-reverse on the whole catalog."""

import math

import mpmath
import numpy as np
import pytest
import sympy

import symjac as sj
from symjac._tolerance import running_error
from symjac import _catalog

from _points import point

torch = pytest.importorskip("torch")


def test_hessian_of_a_scalar_function_of_a_vector():
    f = sj.function("x[0] ** 2 * x[1]", x=(2,))
    H = f.hessian()
    assert H.shape == (2, 2) and H.order == 2 and H.nnz == 3
    np.testing.assert_array_equal(H.evaluate(x=[3.0, 5.0]), [[10.0, 6.0], [6.0, 0.0]])
    assert H.sparsity.tolist() == [[True, True], [True, False]]
    x0, x1 = f.inputs[0].flat_symbols
    assert H.to_array().tolist() == [[2 * x1, 2 * x0], [2 * x0, 0]]


def test_layout_is_output_then_first_input_then_second():
    # d/dY of d out / dX of X @ Y: out[i, j] = sum_k X[i, k] Y[k, j]; d2 out[i,j]/dX[i,k] dY[k,j] = 1
    f = sj.function("X @ Y", X=(2, 3), Y=(3, 2))
    H = f.hessian(("X", "Y"))
    assert H.shape == (2, 2) + (2, 3) + (3, 2)
    dense = H.evaluate(X=np.ones((2, 3)), Y=np.ones((3, 2)))
    expected = np.zeros(H.shape)
    for i in range(2):
        for j in range(2):
            for k in range(3):
                expected[i, j, i, k, k, j] = 1.0
    np.testing.assert_array_equal(dense, expected)
    # the other order is the transposed blocks
    HYX = f.hessian(("Y", "X")).evaluate(X=np.ones((2, 3)), Y=np.ones((3, 2)))
    np.testing.assert_array_equal(HYX, np.moveaxis(expected, (4, 5), (2, 3)))


def test_batches_keep_dtype_and_shape():
    f = sj.function("sin(x) * x[0]", x=(3,))
    H = f.hessian()
    batch = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = H.evaluate(x=batch)
    assert out.dtype == np.float32 and out.shape == (2, 3, 3, 3)
    np.testing.assert_allclose(out[1], H.evaluate(x=batch[1].astype(np.float64)), rtol=1e-6)


def test_cached_on_the_function_and_reuses_lower_orders():
    f = sj.function("exp(x) * x[1]", x=(3,))
    assert f.hessian() is f.hessian("x") is f.derivative("x", order=2) is f.derivative(("x", "x"), order=2)
    third = f.derivative(order=3)
    assert third.shape == (3, 3, 3, 3)
    # the third derivative differentiates the cached Hessian's entries once more
    x = f.inputs[0].flat_symbols
    assert sympy.simplify(third.to_array()[1, 1, 1, 1] - sympy.diff(f.output[1], x[1], 3)) == 0


def test_derivative_order_one_is_the_jacobian():
    f = sj.function("X @ X", X=(2, 2))
    d, j = f.derivative(order=1), f.jacobian()
    assert d.shape == j.shape and d.entries == j.entries


@pytest.mark.parametrize("wrt, order, message", [
    (None, 2, "wrt: this function has inputs x, y"),
    (("x",), 2, "wrt: a tuple of names gives one input per order; received 1 names"),
    ("z", 2, "wrt: this function has no input named 'z'"),
    (3, 2, "wrt: must be an input name or a tuple of names"),
    ("x", 0, "order: must be an int >= 1; received 0"),
    ("x", True, "order: must be an int >= 1; received True"),
])
def test_bad_wrt_and_order_are_clear_errors(wrt, order, message):
    f = sj.function("x * y", x=(2,), y=(2,))
    with pytest.raises(sj.InvalidArgumentError, match=message.replace("(", r"\(").replace(")", r"\)")):
        f.derivative(wrt, order=order)


def test_budgets_refuse_before_differentiating():
    f = sj.function("sin(x)", x=(3,))
    with pytest.raises(sj.TooLargeError, match=r"order 4 .* over the budget of 3 \(Limits.max_derivative_order\)"):
        f.derivative(order=4)
    small = sj.function("sin(x)", x=(4,), limits=sj.Limits(max_derivative_entries=63))
    with pytest.raises(sj.TooLargeError, match=r"64 dense entries, over the budget of 63 \(Limits.max_derivative_entries\)"):
        small.hessian()
    # inv 4 x 4's Jacobian (cofactors as `det` nodes) is about 2.3e5 nodes x inputs: under the default 2e6
    with pytest.raises(sj.TooLargeError, match=r"about 231808 operations .* over the budget of 200000 \(Limits.max_derivative_work\)"):
        sj.function("inv(X)", X=(4, 4), limits=sj.Limits(max_derivative_work=200_000)).hessian()
    assert sj.function("inv(X)", X=(4, 4), limits=sj.Limits(max_derivative_work=240_000)).hessian().shape == (4, 4) * 3
    raised = sj.function("sin(x)", x=(3,), limits=sj.Limits(max_derivative_order=4))
    assert raised.derivative(order=4).shape == (3,) * 5


def test_steps_differentiate_to_zero_away_from_the_kink():
    f = sj.function("relu(x) * x + abs(x)", x=(2,))
    H = f.hessian()
    assert not any(e.has(sympy.DiracDelta) for e in H.entries)
    np.testing.assert_array_equal(H.evaluate(x=[2.0, -3.0]), [[[2.0, 0], [0, 0]], [[0, 0], [0, 0]]])


def test_latex_reads_the_hessian_as_a_matrix():
    f = sj.function("x[0] ** 2 * x[1]", x=(2,))
    assert f.hessian().latex() == r"\begin{bmatrix}2 x_{1} & 2 x_{0}\\2 x_{0} & 0\end{bmatrix}"
    assert f.hessian()._repr_latex_().startswith("$$\\begin{bmatrix}")
    assert "HigherDerivative(d^2() / dx(2,) dx(2,), shape=(2, 2), nnz=3)" == repr(f.hessian())


def _torch_hessian(f, vals, i, j):
    from symjac.backends import torch_backend

    names = f.input_names
    args = [torch.tensor(vals[n]) for n in names]

    def fn(*a):
        return torch_backend.forward(f, dict(zip(names, a)))

    fn(*args)  # plan tensors made outside the transforms
    return torch.func.jacrev(torch.func.jacrev(fn, argnums=i), argnums=j)(*args).numpy()


def _mpmath_entry(f, H, vals, flat):
    expr = H.to_array().reshape(math.prod(H.shape))[flat]
    symbols = [s for inp in f.inputs for s in inp.flat_symbols]
    args = [mpmath.mpf(float(v)) for inp in f.inputs for v in np.asarray(vals[inp.name]).reshape(-1)]
    with mpmath.workdps(50):
        truth = float(sympy.lambdify(symbols, expr, "mpmath")(*args))
    bound = float(sympy.lambdify(symbols, running_error(expr), "mpmath")(*args))
    return truth, bound


@pytest.mark.timeout(300)
def test_every_catalog_hessian_agrees_with_reverse_over_reverse():
    refused, checked_by_mpmath = [], []
    for e in _catalog.CATALOG:
        f = e.function()
        vals = point(f)
        for i, a in enumerate(f.input_names):
            for j, b in enumerate(f.input_names):
                try:
                    H = f.hessian((a, b))
                except sj.TooLargeError:
                    refused.append(e.name)
                    continue
                ours, theirs = H.evaluate(**vals), _torch_hessian(f, vals, i, j)
                assert ours.shape == theirs.shape, e.name
                scale = max(float(np.abs(theirs).max()), 1e-300)
                gap = np.abs(ours - theirs)
                if gap.max() <= 1e-13 * scale:
                    continue
                # Off by more than float64 rounding of the largest entry (both formulas cancel, as
                # 1 - tanh(u)**2 does in `layer`): ours must be within float64 rounding of the
                # 50-digit value, that is within eps times the formula's running error bound.
                k = int(np.argmax(gap))
                truth, rounding = _mpmath_entry(f, H, vals, k)
                mine = ours.reshape(-1)[k]
                assert abs(mine - truth) <= 4 * np.finfo(float).eps * rounding + 1e-13 * scale, (e.name, a, b, truth)
                checked_by_mpmath.append(e.name)
    assert sorted(set(refused)) == []  # inv_4x4 was over Limits.max_derivative_work before det/inv by cofactor expansion
    assert len(set(checked_by_mpmath)) <= 3, checked_by_mpmath  # the rest agree to 1e-13 of max|H|
