"""Tests of the finite-difference route (`symjac._finite_diff`).

Every estimate is compared with an analytic Jacobian: the true error must lie below the reported
per-entry `error` (the estimate is honest) and that estimate must stay small (not absurdly loose).
No torch here.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from symjac._errors import InvalidArgumentError, ShapeError, SymjacError
from symjac._finite_diff import FDJacobian, fd_jacobian

METHODS = ["richardson", "central"]

#: Largest `error / |J|` accepted on the nonzero entries of the smooth cases below, per method.
#: (Measured: about 1e-11 for richardson, 1e-9 for central.)
LOOSENESS = {"richardson": 1e-9, "central": 1e-6}


# --- smooth functions with analytic Jacobians -------------------------------------------------

_RNG = np.random.default_rng(20240601)
_A = _RNG.standard_normal((3, 4))


def _linear(X):
    return X @ _A.T


def _linear_jac(x):
    return _A


def _sin_x(X):
    return np.sin(X) * X


def _sin_x_jac(x):
    return np.diag(np.cos(x) * x + np.sin(x))


def _exp(X):
    return np.exp(X)


def _exp_jac(x):
    return np.diag(np.exp(x))


def _matrix_square(X):
    M = X.reshape(-1, 2, 2)
    return (M @ M).reshape(X.shape[0], 4)


def _matrix_square_jac(x):
    # d(M M)/dM_kl = E_kl M + M E_kl, flattened row-major: (M kron I) + (I kron M^T).
    M = x.reshape(2, 2)
    eye = np.eye(2)
    return np.kron(M, eye) + np.kron(eye, M.T)


def _scales(X):
    x0, x1, x2 = X.T
    return np.stack(
        [x0**2, 1e-6 * np.exp(x1), 1e6 * x1**2, 1e-6 * x0 * x2, np.sin(x0 / 1e6), 1e6 * np.cos(x2)],
        axis=1,
    )


def _scales_jac(x):
    x0, x1, x2 = x
    return np.array(
        [
            [2 * x0, 0, 0],
            [0, 1e-6 * np.exp(x1), 0],
            [0, 2e6 * x1, 0],
            [1e-6 * x2, 0, 1e-6 * x0],
            [np.cos(x0 / 1e6) / 1e6, 0, 0],
            [0, 0, -1e6 * np.sin(x2)],
        ]
    )


SMOOTH_CASES = {
    "linear": (_linear, _linear_jac, np.array([0.3, -1.7, 2.5, 0.01])),
    "sin_x": (_sin_x, _sin_x_jac, np.array([0.3, -1.2, 2.0, 5.0, 0.0])),
    "exp": (_exp, _exp_jac, np.array([-3.0, 0.0, 0.5, 4.0])),
    "matrix_square": (_matrix_square, _matrix_square_jac, np.array([1.5, -0.4, 0.8, 2.2])),
    "large_and_tiny": (_scales, _scales_jac, np.array([2e6, 3e-6, 0.7])),
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", sorted(SMOOTH_CASES))
def test_error_estimate_is_honest_and_tight(case, method):
    fn, jac, x = SMOOTH_CASES[case]
    exact = jac(x)
    res = fd_jacobian(fn, x, method=method)

    assert res.value.shape == exact.shape and res.error.shape == exact.shape
    assert res.value.dtype == np.float64 and res.error.dtype == np.float64
    assert np.all(np.isfinite(res.value)) and np.all(np.isfinite(res.error))
    assert np.all(res.error >= 0)

    true_error = np.abs(res.value - exact)
    # honest: every entry's true error is within the reported estimate
    assert np.all(true_error <= res.error), (true_error, res.error)
    # not absurdly loose: relative to the entry on every nonzero entry
    nonzero = exact != 0
    assert np.all(res.error[nonzero] <= LOOSENESS[method] * np.abs(exact[nonzero]))


def test_linear_map_is_exact_to_rounding():
    res = fd_jacobian(_linear, np.array([0.3, -1.7, 2.5, 0.01]))
    assert np.max(np.abs(res.value - _A)) <= 1e-12
    assert np.max(res.error) <= 1e-10


def test_sin_x_accuracy_richardson():
    x = np.array([0.3, -1.2, 2.0, 5.0, 0.0])
    res = fd_jacobian(_sin_x, x)
    assert np.max(np.abs(res.value - _sin_x_jac(x))) <= 1e-12
    assert np.max(res.error) <= 1e-10


def test_independent_inputs_give_exact_zeros():
    # f_p does not depend on x_q (q != p): every point of the stencil gives the same value.
    x = np.array([0.3, -1.2, 2.0])
    for method, bound in [("richardson", 1e-10), ("central", 1e-8)]:
        res = fd_jacobian(_sin_x, x, method=method)
        off = ~np.eye(3, dtype=bool)
        assert np.all(res.value[off] == 0.0)
        assert np.all(res.error[off] <= bound)


@pytest.mark.parametrize("method", METHODS)
def test_rounding_of_long_sums_is_covered(method):
    # A @ x with n = 200: the rounding error follows sum |A_pj x_j|, not the cancelled |f_p|.
    rng = np.random.default_rng(7)
    A = rng.standard_normal((50, 200))
    x = rng.uniform(-2.0, 2.0, 200)
    res = fd_jacobian(lambda X: X @ A.T, x, method=method)
    assert np.all(np.abs(res.value - A) <= res.error)
    assert np.max(res.error) <= {"richardson": 1e-9, "central": 1e-6}[method]


# --- non-smooth points: FD says it cannot be trusted ------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_kink_exactly_at_x_gives_large_error(method):
    # abs at 0: central differences see only the odd part (0); the one-sided slopes are -1 and +1.
    # Documented result: value 0, error about 2 (the jump between one-sided slopes, in full).
    res = fd_jacobian(np.abs, np.array([0.0]), method=method)
    assert res.value[0, 0] == 0.0
    assert 1.0 <= res.error[0, 0] <= 3.0
    # both one-sided derivatives lie within value +- error
    assert abs(-1.0 - res.value[0, 0]) <= res.error[0, 0]
    assert abs(1.0 - res.value[0, 0]) <= res.error[0, 0]


@pytest.mark.parametrize("method", METHODS)
def test_relu_at_zero_covers_both_one_sided_slopes(method):
    # SymPy says 1/2, torch says 0 at 0: FD gives 0.5 with error about 1, so both fit.
    res = fd_jacobian(lambda X: np.maximum(X, 0.0), np.array([0.0]), method=method)
    assert res.value[0, 0] == pytest.approx(0.5, rel=1e-15)
    assert 0.5 <= res.error[0, 0] <= 1.5


@pytest.mark.parametrize("method", METHODS)
def test_kink_inside_the_stencil_gives_large_error(method):
    # The kink at 1e-9 is between x = 0 and x + step; the true derivative at 0 is -1.
    res = fd_jacobian(lambda X: np.abs(X - 1e-9), np.array([0.0]), method=method)
    assert abs(res.error[0, 0]) >= 1.0
    assert abs(-1.0 - res.value[0, 0]) <= res.error[0, 0]


@pytest.mark.parametrize("method", METHODS)
def test_kink_away_from_x_is_not_flagged(method):
    res = fd_jacobian(np.abs, np.array([1.0, -2.0]), method=method)
    true_error = np.abs(res.value - np.diag([1.0, -1.0]))
    assert np.all(true_error <= res.error)
    assert np.max(res.error) <= 1e-9


def test_once_differentiable_point_keeps_an_honest_estimate():
    # x * |x| has derivative 2|x| = 0 at 0, but its differences shrink like h, not h**2:
    # the convergence-rate check falls back to a bound that covers it.
    res = fd_jacobian(lambda X: X * np.abs(X), np.array([0.0]))
    assert abs(res.value[0, 0]) <= res.error[0, 0]


# --- non-finite values: NaN / inf, never an exception -----------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_non_finite_at_a_perturbed_point_gives_nan_and_inf(method):
    def fn(X):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.stack([np.log(X[:, 0]), X[:, 1] ** 2], axis=1)

    # richardson steps by 2**-8 (central by 2**-18): x0 = 1e-6 puts x0 - step below zero.
    res = fd_jacobian(fn, np.array([1e-6, 3.0]), method=method)
    assert np.isnan(res.value[0, 0]) and res.error[0, 0] == np.inf
    # the other entries are unaffected
    assert res.value[0, 1] == 0.0 and np.isfinite(res.error[0, 1])
    assert res.value[1, 0] == 0.0 and np.isfinite(res.error[1, 0])
    assert abs(res.value[1, 1] - 6.0) <= res.error[1, 1] <= 1e-6


def test_non_finite_at_x_itself_gives_nan_for_that_output():
    def fn(X):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.stack([np.sin(X[:, 0]) / X[:, 0], X[:, 1]], axis=1)

    res = fd_jacobian(fn, np.array([0.0, 1.0]))
    assert np.all(np.isnan(res.value[0])) and np.all(res.error[0] == np.inf)
    assert abs(res.value[1, 1] - 1.0) <= res.error[1, 1]


# --- one vectorised call ----------------------------------------------------------------------


@pytest.mark.parametrize(("method", "points_per_input"), [("richardson", 6), ("central", 4)])
def test_single_vectorised_call(method, points_per_input):
    calls = []

    def fn(X):
        calls.append((X.shape, X.dtype))
        return np.sin(X) * X

    x = np.linspace(-1.0, 1.0, 7)
    res = fd_jacobian(fn, x, method=method)
    n_points = points_per_input * 7 + 1
    assert calls == [((n_points, 7), np.dtype(np.float64))]
    assert res.evaluations == n_points


def test_result_fields():
    x = np.array([0.5, -3.0, 1e3])
    res = fd_jacobian(_sin_x, x)
    assert isinstance(res, FDJacobian)
    assert res.method == "central-richardson"
    assert fd_jacobian(_sin_x, x, method="central").method == "central"
    assert res.step.shape == (3,) and res.step.dtype == np.float64
    # steps are powers of two, relative to max(|x|, 1), and exact: (x + h) - x == h
    mantissa, _ = np.frexp(res.step)
    assert np.all(mantissa == 0.5)
    assert np.all((x + res.step) - x == res.step)
    ratio = res.step / np.maximum(np.abs(x), 1.0)
    assert np.all((ratio > 2e-3) & (ratio <= 6e-3))
    # immutable
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.method = "other"
    for array in (res.value, res.error, res.step):
        with pytest.raises(ValueError):
            array[0] = 1.0


def test_x_is_cast_to_float64_and_not_modified():
    seen = []

    def fn(X):
        seen.append(X.dtype)
        return X**2

    x32 = np.array([1.0, 2.0], dtype=np.float32)
    res = fd_jacobian(fn, x32)
    assert seen == [np.dtype(np.float64)]
    np.testing.assert_allclose(res.value, np.diag([2.0, 4.0]), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(x32, np.array([1.0, 2.0], dtype=np.float32))

    res_list = fd_jacobian(fn, [1, 2])  # integers and lists are accepted
    np.testing.assert_allclose(res_list.value, np.diag([2.0, 4.0]), rtol=0, atol=1e-12)


def test_zero_outputs():
    res = fd_jacobian(lambda X: np.empty((X.shape[0], 0)), np.array([1.0, 2.0]))
    assert res.value.shape == (0, 2) and res.error.shape == (0, 2)


# --- argument errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "error", "message"),
    [
        (np.zeros((2, 2)), ShapeError, r"x must be 1-D \(in_size,\); received shape \(2, 2\)"),
        (np.float64(1.0), ShapeError, r"x must be 1-D \(in_size,\); received shape \(\)"),
        (np.array([]), ShapeError, r"x must have at least one entry; received shape \(0,\)"),
        (
            np.array([1.0, np.nan, np.inf]),
            InvalidArgumentError,
            r"x must be finite; received non-finite entries at indices \[1, 2\] "
            r"\(values \[nan, inf\]\)",
        ),
        (np.array([1j]), InvalidArgumentError, r"x must be a real numeric array; received dtype complex128"),
        (["a"], InvalidArgumentError, r"x must be a real numeric array; received dtype <U1"),
    ],
)
def test_bad_x(x, error, message):
    with pytest.raises(error, match=message):
        fd_jacobian(_exp, x)


@pytest.mark.parametrize("method", ["forward", "Richardson", "", None, 3])
def test_bad_method(method):
    with pytest.raises(
        InvalidArgumentError,
        match=r"method must be one of \['central', 'richardson'\]; received " + re.escape(repr(method)),
    ):
        fd_jacobian(_exp, np.array([1.0]), method=method)


def test_method_is_keyword_only():
    with pytest.raises(TypeError):
        fd_jacobian(_exp, np.array([1.0]), "central")


def test_fn_not_callable():
    with pytest.raises(InvalidArgumentError, match=r"fn must be a callable .*; received 3"):
        fd_jacobian(3, np.array([1.0]))


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (lambda X: X[:, 0], r"returned shape \(13,\)"),
        (lambda X: X[:3], r"returned shape \(3, 2\)"),
        (lambda X: X[None], r"returned shape \(1, 13, 2\)"),
    ],
)
def test_fn_returning_wrong_shape(fn, message):
    with pytest.raises(
        ShapeError,
        match=r"fn must map a \(k, in_size\) array to a \(k, out_size\) array; "
        r"for an input of shape \(13, 2\) it " + message,
    ):
        fd_jacobian(fn, np.array([1.0, 2.0]))


def test_fn_returning_complex():
    with pytest.raises(InvalidArgumentError, match=r"fn must return a real numeric array; received dtype complex128"):
        fd_jacobian(lambda X: X + 0j, np.array([1.0, 2.0]))


def test_errors_are_symjac_and_builtin_errors():
    with pytest.raises(SymjacError):
        fd_jacobian(_exp, np.array([np.nan]))
    with pytest.raises(ValueError):
        fd_jacobian(_exp, np.array([1.0]), method="forward")


C = 2.0 * np.log(1.0 + np.exp(2.0))


def _softplus_of_sum(X):
    return np.log(1.0 + np.exp(C * X.sum(axis=1)))[:, None]


def test_noise_bound_covers_rounding_the_relative_model_misses():
    # Found by benchmarks/expression_search.py: log(1 + exp(a)) at a = C * sum(x) = -21.3 is about
    # 5.8e-10, but 1 + exp(a) rounds at about 1e-16, absolute; the relative model (a few ulps of
    # |f|) puts the rounding error far lower and the estimate under-reports at one entry.
    x = np.array([0.0, 0.0, -2.0, -3.0])
    exact = C / (1.0 + np.exp(-C * x.sum()))
    plain = fd_jacobian(_softplus_of_sum, x)
    assert np.any(np.abs(plain.value[0] - exact) > plain.error[0])  # the miss this argument fixes
    bounded = fd_jacobian(_softplus_of_sum, x, output_noise=np.array([2.0 * np.finfo(float).eps]))
    assert np.array_equal(bounded.value, plain.value)
    assert np.all(np.abs(bounded.value[0] - exact) <= bounded.error[0])
    assert np.all(bounded.error[0] < 1e-3 * exact)  # still informative


@pytest.mark.parametrize("noise, error", [([-1.0], "output_noise must be finite and >= 0"),
                                          ([np.nan], "output_noise must be finite and >= 0"),
                                          ([1e-16, 1e-16], "one entry per output")])
def test_noise_argument_errors(noise, error):
    with pytest.raises(InvalidArgumentError, match=error):
        fd_jacobian(_softplus_of_sum, np.array([0.0, -21.0]), output_noise=np.array(noise))
