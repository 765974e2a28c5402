"""Finite-difference Jacobians that always carry an error estimate and the step used.

We use our own fixed stencil rather than `scipy.differentiate.jacobian`: one call of the vectorised
function on a known number of points (6 n + 1), about 0.2-0.5 s for a 1024 x 1024 Jacobian, where
SciPy's adaptive loop made up to 11 calls and took about 4 s (SciPy 1.17). SciPy's error estimate
is only the change between its last two iterations, with no rounding term: we measured it below
the true error on a third or more of the entries of `A @ x` and on the structural zeros of
`sin(x) * x` (which never converge and run to `maxiter`). Ours adds a rounding bound, a
convergence-rate check and a one-sided (kink) check, and keeps SciPy out of the hard dependencies.
"""

from __future__ import annotations

from dataclasses import dataclass
import functools
import math
from typing import Callable

import numpy as np

from . import _floats
from ._errors import InvalidArgumentError, ShapeError

__all__ = ["FDJacobian", "fd_jacobian"]

_EPS = float(np.finfo(np.float64).eps)

#: Relative accuracy assumed for each value the function returns (a few ulps). It sets the
#: rounding part of the error estimate: noise in a difference quotient <= EVAL_REL_ERROR * M / h,
#: with M the size of f_p (see `fd_jacobian`).
EVAL_REL_ERROR = 4.0 * _EPS

#: Base step, relative to max(|x_q|, 1), per method; rounded down to a power of two so that every
#: point x +- step / 2**k of the stencil is exact in float64.
#: central: eps**(1/3) balances h**2 truncation against eps / h rounding.
#: richardson: three levels (h, h/2, h/4) remove the h**2 and h**4 terms (truncation ~ h**6);
#: eps**(1/7) balances that against rounding, and was measured best on the test functions.
BASE_STEP = {"central": _EPS ** (1.0 / 3.0), "richardson": _EPS ** (1.0 / 7.0)}

#: Step levels, coarse to fine, as divisors of the base step. central: the value is the difference
#: at `step`, its truncation estimate comes from a second one at 2 * step.
_LEVELS = {"central": (0.5, 1.0), "richardson": (1.0, 2.0, 4.0)}

#: Differences of the Richardson levels count as truncation (and their ratio is checked) only when
#: they exceed this multiple of their rounding bound.
_RATIO_TEST_NOISE = 10.0

_METHOD_NAMES = {"central": "central", "richardson": "central-richardson"}


@dataclass(frozen=True)
class FDJacobian:
    """A finite-difference Jacobian with its per-entry error estimate.

    Attributes:
        value: `(out_size, in_size)` float64, `value[p, q]` estimates d out[p] / d in[q];
            NaN where the function was not finite at a point of the stencil.
        error: `(out_size, in_size)` float64, >= 0, an estimate of `|value - true|`
            (truncation + rounding + a one-sided disagreement term); inf where `value` is NaN.
        step: `(in_size,)` float64, the base step per input entry (a power of two). `central`
            evaluates at `x +- step` and `x +- 2 step`, `richardson` at `x +- step / 2**k`, k = 0, 1, 2;
            both also at `x`.
        method: `"central"` or `"central-richardson"`.
        evaluations: the number of points at which the function was evaluated (all in one call).

    The arrays are read-only.
    """

    value: np.ndarray
    error: np.ndarray
    step: np.ndarray
    method: str
    evaluations: int


def fd_jacobian(
    fn: Callable[[np.ndarray], np.ndarray], x, *, method: str = "richardson", output_noise=None
) -> FDJacobian:
    """Estimate the Jacobian of a vectorised function at `x` by central differences.

    All points are stacked and passed to `fn` in one call. Every entry carries an error estimate:

    - truncation: the difference between the last two levels of the difference table
      (`richardson`: the h**4-accurate level against the extrapolated h**6 one; `central`:
      the differences at `step` and `2 step`);
      `richardson` also checks that the level differences shrink like h**2 to h**4 and falls
      back to a bound valid for any order >= 1 where they do not (`x * abs(x)` at 0), which also
      counts the coarse level's difference (a stencil across poles);
    - rounding: `EVAL_REL_ERROR * M * sum_k |w_k| / h_k` over the stencil's weights `w_k`, with
      `M` the larger of `max|f_p|` on the stencil and `sum_j |J_pj| (|x_j| + step_j)` (the size of
      the terms a sum like `A @ x` adds up, which its rounding error follows);
    - non-smoothness: central differences only see the odd part of `f` around `x`, so a kink
      exactly at `x` would give a clean-looking symmetric derivative. The jump between the
      one-sided slopes is extrapolated from the same points plus `f(x)`; where it is above its
      rounding noise it is added to the error in full. `abs(x)` at 0 gives value 0 with error
      about 2; `max(x, 0)` at 0 gives 0.5 with error about 1: "cannot be trusted here".

    Limits: the step is relative to `max(|x_q|, 1)`, so a function that varies on a much finer
    scale (`sin(x)` near `x = 1e6`) is aliased and its estimate is not reliable; a stencil that
    leaves the domain (`log` near 0) gives NaN / inf.

    Where `fn` returns a non-finite value for output `p` at any point of column `q`'s stencil
    (or at `x` itself), `value[p, q]` is NaN and `error[p, q]` is inf; nothing is raised.

    Args:
        fn: vectorised function: takes a float64 array `(k, in_size)` and returns `(k, out_size)`,
            rows independent.
        x: the point, a finite 1-D array `(in_size,)`, computed in float64.
        method: `"richardson"` (default, 6 * in_size + 1 points, typically ~1e-12 relative on
            smooth functions) or `"central"` (4 * in_size + 1 points, ~1e-10 relative).
        output_noise: optional `(out_size,)` bound on the absolute rounding error of each output of `fn`
            near `x` (a running error bound of its formula). The rounding term uses the larger
            of it and the relative model above: `log(1 + exp(a))` at `a = -21` is about 6e-10 but
            carries the rounding of `1 + exp(a)`, about 1e-16, which the relative model misses.

    Returns:
        An `FDJacobian`.

    Example:
        >>> import numpy as np
        >>> res = fd_jacobian(lambda X: np.sin(X) * X, np.array([0.5, 2.0]))
        >>> exact = np.diag(np.cos([0.5, 2.0]) * [0.5, 2.0] + np.sin([0.5, 2.0]))
        >>> bool(np.all(np.abs(res.value - exact) <= res.error))
        True
        >>> res.evaluations
        13
    """
    if not callable(fn):
        raise InvalidArgumentError(
            f"fn must be a callable taking a (k, in_size) float64 array; received {fn!r}"
        )
    if not isinstance(method, str) or method not in _LEVELS:
        raise InvalidArgumentError(
            f"method must be one of {sorted(_LEVELS)}; received {method!r}"
        )
    x = _as_point(x)
    noise_bound = None
    if output_noise is not None:
        noise_bound = np.asarray(output_noise, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(noise_bound) & (noise_bound >= 0)):
            raise InvalidArgumentError(f"output_noise must be finite and >= 0; received {output_noise!r}")
    return _fd_jacobian(fn, x, method, noise_bound)


def _fd_jacobian(fn, x: np.ndarray, method: str, noise_bound: np.ndarray | None) -> FDJacobian:
    """`fd_jacobian` with its arguments validated already: `x` a finite 1-D float64 array that
    nothing else writes (`_as_point`'s copy, or a read-only array), `method` one of `_LEVELS`,
    `noise_bound` None or a finite `(m,)` float64 array >= 0 (symjac's engine, whose point and
    running error bounds are validated where they are made).

    The table's rules are written once, generic over a namespace (`_table`, `_error`): NumPy on
    whole arrays here, `symjac._floats` entry by entry for a few entries (`_richardson_in_floats`)."""
    n = x.size
    n_levels = _DIVISORS[method].size
    step, step_levels, points = _stencil(np if n > PYTHON_ENTRIES else _floats, x, method)
    n_points = points.shape[0]
    values = _call(fn, points)
    m = values.shape[1]
    if noise_bound is not None and noise_bound.size != m:
        raise ShapeError(f"output_noise must have one entry per output of fn ({m}); received {noise_bound.size}")

    # Non-finite anywhere in an entry's stencil, or at x: that entry is NaN / inf.
    finite = _floats.all_finite(values)
    if finite and method == "richardson" and n * m <= PYTHON_ENTRIES:
        small = _richardson_in_floats(x, step, values, noise_bound)
        if small is not None:
            return small
    f0 = values[0]  # (m,)
    f = values[1:].reshape(n_levels, 2, n, m)
    f_plus, f_minus = f[:, 0], f[:, 1]  # (levels, n, m)
    if finite:  # the usual case, in one call: no entry is bad
        bad, any_bad = np.zeros((n, m), dtype=bool), False
    else:
        bad = ~np.isfinite(f).all(axis=(0, 1)) | ~np.isfinite(f0)[None, :]  # (n, m)
        any_bad = bool(bad.any())
        if any_bad:
            f_plus = np.where(bad, 0.0, f_plus)
            f_minus = np.where(bad, 0.0, f_minus)
            f0 = np.where(np.isfinite(f0), f0, 0.0)

    h = step_levels[:, :, None]  # (levels, n, 1)
    central, jumps, value, truncation, scale = _table(np, f_plus, f_minus, f0, h, method)
    linear_terms = _linear_terms(np.where(bad, 0.0, np.abs(value)) if any_bad else np.abs(value), x, step)  # (m,)
    inv_h = 1.0 / step_levels  # (levels, n)
    weight_sums, jump_sums = _level_sums(inv_h, method)
    bound = None if noise_bound is None else noise_bound[None, :]
    error = _error(np, method, central, jumps, value, truncation, scale, linear_terms[None, :], bound, h,
                   inv_h[0][:, None], inv_h[-1][:, None], weight_sums[:, None], jump_sums[:, None])

    bad |= ~(np.isfinite(value) & np.isfinite(error))
    if bad.any():
        value = np.where(bad, np.nan, value).T.copy()
        error = np.where(bad, np.inf, error).T.copy()
    else:
        value, error = value.T.copy(), error.T.copy()
    return _result(value, error, step, method, n_points)


def _stencil(xp, x: np.ndarray, method: str) -> tuple:
    """The base step per input (`(n,)`), each level's steps (`(levels, n)`, coarse to fine) and the
    stencil's points: `x`, then for each level l and sign s (+, -), the n points x + s * h_l[q] * e_q
    (`(1 + 2 levels n, n)`). Over `numpy`, whole arrays; over `symjac._floats`, entry by entry (a few
    inputs), the same numbers."""
    if xp is np:
        step = _power_of_two_floor(np, BASE_STEP[method] * np.maximum(np.abs(x), 1.0))
        step_levels = step[None, :] / _DIVISORS[method][:, None]
        n, n_levels = x.size, step_levels.shape[0]
        points = np.empty((1 + 2 * n_levels * n, n))
        points[:] = x
        stencil = points[1:].reshape(n_levels, 2, n, n)  # a view
        # the diagonals of the (n, n) blocks, as strided views of the flat blocks
        stencil[:, 0].reshape(n_levels, n * n)[:, :: n + 1] += step_levels
        stencil[:, 1].reshape(n_levels, n * n)[:, :: n + 1] -= step_levels
        return step, step_levels, points
    xs = x.tolist()
    steps = [_power_of_two_floor(xp, BASE_STEP[method] * xp.maximum(abs(v), 1.0)) for v in xs]
    levels = [[s / d for s in steps] for d in _DIVISOR_LISTS[method]]
    rows = [xs]
    for h in levels:
        for sign in (1.0, -1.0):
            for q, h_q in enumerate(h):
                row = list(xs)
                row[q] = xs[q] + sign * h_q  # sign * h_q exact: x - h_q for the minus sign
                rows.append(row)
    return np.array(steps), np.array(levels), np.array(rows)


def _result(value: np.ndarray, error: np.ndarray, step: np.ndarray, method: str, evaluations: int) -> FDJacobian:
    for array in (value, error, step):
        array.flags.writeable = False
    return FDJacobian(value=value, error=error, step=step, method=_METHOD_NAMES[method], evaluations=int(evaluations))


# -- the table's rules, written once over a namespace `xp`: `numpy` on whole arrays `(n, m)` (each
# level's entry an array), or `symjac._floats` on one entry (each level's entry a float)

def _table(xp, f_plus, f_minus, f0, h, method: str) -> tuple:
    """Each level's central difference and one-sided jump (forward minus backward slope), the value,
    its truncation estimate and the scale of `f` on the stencil. `f_plus`, `f_minus`, `h`: per
    level, coarse to fine."""
    central = [(a - b) / (2.0 * step) for a, b, step in zip(f_plus, f_minus, h)]
    jumps = [(a - 2.0 * f0 + b) / step for a, b, step in zip(f_plus, f_minus, h)]
    if method == "central":
        value = central[1]
        truncation = abs(central[0] - central[1])  # 3 a h**2 for smooth f; covers order >= 1
    else:
        w_last, w_prev = _RULE_WEIGHTS[method][:2]
        value = _weighted(w_last, central)
        truncation = abs(value - _weighted(w_prev, central))
    scale = functools.reduce(xp.maximum, [abs(a) for a in f_plus] + [abs(a) for a in f_minus] + [abs(f0)])
    return central, jumps, value, truncation, scale


def _error(xp, method: str, central, jumps, value, truncation, scale, linear_terms, noise_bound, h,
           inv_h0, inv_h_last, weight_sum, jump_sum):
    """The error estimate of `_table`'s value: truncation (with the ratio test's fallback), rounding
    and a kink term. `linear_terms`: `_linear_terms` of the entry's output; `noise_bound`: None or
    the output's bound; `inv_h0`, `inv_h_last`: 1 / the coarsest and finest steps; `weight_sum`,
    `jump_sum`: `_level_sums`."""
    # Rounding: the values of f are assumed accurate to EVAL_REL_ERROR relative to the larger of
    # |f| on the stencil and sum_j |J_pj| (|x_j| + step_j), the size of the linear terms that a
    # sum such as A @ x adds up (its rounding error follows them, not the possibly cancelled |f|).
    noise = EVAL_REL_ERROR * xp.maximum(scale, linear_terms)
    if noise_bound is not None:
        noise = xp.maximum(noise, noise_bound)
    # |central_l noise| <= noise / h_l; |jump_l noise| <= 4 noise / h_l.
    rounding = noise * weight_sum + _EPS * abs(value)

    if method == "richardson":
        # The table assumes errors a h**2 + b h**4. Successive differences of the levels then shrink
        # by 4 to 16; where they are above noise and do not (x * |x| at 0: errors ~ h), fall back
        # to a bound that holds for any order >= 1: |value - D_last| + |D_last - D_prev|.
        d1 = central[0] - central[1]
        d2 = central[1] - central[2]
        abs_d1, abs_d2 = abs(d1), abs(d2)
        above_noise = (abs_d1 > _RATIO_TEST_NOISE * 3.0 * noise * inv_h0) | (
            abs_d2 > _RATIO_TEST_NOISE * 6.0 * noise * inv_h0
        )
        # Only entries above noise can change below; where none is (a polynomial of degree <= 2,
        # whose central differences are exact), the truncation stands as it is.
        if xp.any(above_noise):
            ratio_ok = (xp.sign(d1) == xp.sign(d2)) & (abs_d1 >= 3.0 * abs_d2) & (abs_d1 <= 20.0 * abs_d2)
            # every level's distance and |d1| too: where the levels do not converge (a stencil across
            # poles of tan: levels -851, 856, 922, or 23, 55, 346, against 6983 and 42805),
            # |value - D_last| + |d2| alone underestimates the error
            fallback = functools.reduce(xp.maximum, [abs(value - c) for c in central]) + abs_d2 + abs_d1
            # The second differences must agree across the levels too: where they differ by more than
            # half their size (above their rounding), the stencil does not resolve the function (poles
            # of tan within it: 22,783 against 172,599), even when the first levels pass the ratio test
            # by chance.
            curvature = [jump / step for jump, step in zip(jumps, h)]
            spread = abs(curvature[0] - curvature[-1])
            curvature_noise = 4.0 * noise * (inv_h_last * inv_h_last)
            unresolved = (spread > 0.5 * functools.reduce(xp.maximum, [abs(c) for c in curvature])) & (
                spread > _RATIO_TEST_NOISE * curvature_noise
            )
            truncation = xp.where(above_noise & (xp.logical_not(ratio_ok) | unresolved),
                                  xp.maximum(truncation, fallback), truncation)

    # A kink exactly at x: forward minus backward slope tends to the jump, not to 0. Counted in full
    # (not half), since extrapolating across a kink also distorts the value.
    jump = abs(_weighted(_RULE_WEIGHTS[method][2], jumps))
    kink = xp.where(jump > 4.0 * noise * jump_sum, jump, 0.0)
    return truncation + rounding + kink


def _linear_terms(abs_value: np.ndarray, x: np.ndarray, step: np.ndarray) -> np.ndarray:
    """`sum_q |J_pq| (|x_q| + step_q)` per output `p`, `abs_value` being `|J|.T` `(n, m)` (NumPy's
    product in both namespaces, so that it rounds alike)."""
    return abs_value.T @ (np.abs(x) + step)


def _level_sums(inv_h: np.ndarray, method: str) -> tuple:
    """`sum_l |w_l| / h_l` per input, of the value's weights and of the jump's: the rounding factors."""
    return _ABS_WEIGHTS[method][0] @ inv_h, _ABS_WEIGHTS[method][1] @ inv_h


#: Up to this many entries (inputs x outputs), a Richardson table whose stencil is all finite is
#: worked out in Python floats (`_richardson_in_floats`: `_table` and `_error` over `symjac._floats`),
#: not in about 60 whole-array NumPy calls whose fixed cost dominates at that size: the same text on
#: the same numbers, so the same results bit for bit (`tests/test_check_fast_paths.py`).
PYTHON_ENTRIES = 8


def _richardson_in_floats(x, step, values: np.ndarray, noise_bound) -> FDJacobian | None:
    """`_fd_jacobian`'s "richardson" table of at most `PYTHON_ENTRIES` entries on its stencil's
    `values` (all finite), entry by entry in Python floats; None where a value or an error is not
    finite (the array code masks it)."""
    n, m = x.size, values.shape[1]
    rows = values.tolist()
    f0 = rows[0]
    hs, inv_first, inv_last, weight_sums, jump_sums = _level_lists(tuple(step.tolist()))  # hs[l][q]
    levels = range(len(hs))
    # entry k = (q, p), q-major as the array code's (n, m)
    tables = []
    for q in range(n):
        h = [level[q] for level in hs]
        for p in range(m):
            f_plus = [rows[1 + (2 * l) * n + q][p] for l in levels]
            f_minus = [rows[1 + (2 * l + 1) * n + q][p] for l in levels]
            tables.append((h, _table(_floats, f_plus, f_minus, f0[p], h, "richardson")))
    linear = _linear_terms(np.array([abs(t[2]) for _, t in tables]).reshape(n, m), x, step).tolist()
    bounds = None if noise_bound is None else noise_bound.tolist()

    out_value, out_error = [0.0] * (n * m), [0.0] * (n * m)
    for k, (h, (central, jumps, value, truncation, scale)) in enumerate(tables):
        q, p = divmod(k, m)
        error = _error(_floats, "richardson", central, jumps, value, truncation, scale, linear[p],
                       None if bounds is None else bounds[p], h, inv_first[q], inv_last[q], weight_sums[q], jump_sums[q])
        if not (math.isfinite(value) and math.isfinite(error)):
            return None
        out_value[p * n + q], out_error[p * n + q] = value, error
    return _result(np.array(out_value).reshape(m, n), np.array(out_error).reshape(m, n), step, "richardson",
                   values.shape[0])


@functools.lru_cache(maxsize=256)
def _level_lists(steps: tuple) -> tuple:
    """What `_richardson_in_floats` reads of the "richardson" levels of the base steps `steps`
    (Python floats, one per input; the levels `_stencil` makes of them), as lists: each level's
    steps, 1 / the coarsest and the finest level's, and `_level_sums`. Kept per tuple of steps:
    they are powers of two, the same at most points (every entry within 1 in magnitude), and
    working them out took about ten NumPy calls per check."""
    step_levels = np.array([[s / d for s in steps] for d in _DIVISOR_LISTS["richardson"]])
    inv_h = 1.0 / step_levels
    weight_sums, jump_sums = _level_sums(inv_h, "richardson")
    return (tuple(map(tuple, step_levels.tolist())), tuple(inv_h[0].tolist()), tuple(inv_h[-1].tolist()),
            tuple(weight_sums.tolist()), tuple(jump_sums.tolist()))


def _as_point(x) -> np.ndarray:
    """Validate `x` (real, 1-D, non-empty, finite) and return it as a fresh float64 array."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise InvalidArgumentError(
            f"x must be a real numeric array; received dtype {arr.dtype} ({_short(x)})"
        )
    if arr.ndim != 1:
        raise ShapeError(f"x must be 1-D (in_size,); received shape {arr.shape}")
    if arr.size == 0:
        raise ShapeError("x must have at least one entry; received shape (0,)")
    arr = arr.astype(np.float64)  # always a copy: the caller's array is never touched
    if not np.isfinite(arr).all():
        bad = np.flatnonzero(~np.isfinite(arr))
        raise InvalidArgumentError(
            f"x must be finite; received non-finite entries at indices {bad[:10].tolist()} "
            f"(values {arr[bad[:10]].tolist()})"
        )
    return arr


def _call(fn, points: np.ndarray) -> np.ndarray:
    """Call `fn` once on the stacked points and check that it returns `(k, out_size)` reals."""
    k = points.shape[0]
    raw = fn(points)
    out = np.asarray(raw)
    if out.dtype.kind not in "biuf":
        raise InvalidArgumentError(
            f"fn must return a real numeric array; received dtype {out.dtype} "
            f"for an input of shape {points.shape}"
        )
    if out.ndim != 2 or out.shape[0] != k:
        raise ShapeError(
            f"fn must map a (k, in_size) array to a (k, out_size) array; for an input of "
            f"shape {points.shape} it returned shape {out.shape}"
        )
    return out.astype(np.float64, copy=False)


def _power_of_two_floor(xp, a):
    """The largest power of two <= a, elementwise (a > 0, finite)."""
    _, exponent = xp.frexp(a)  # a = mantissa * 2**exponent, 0.5 <= mantissa < 1
    return xp.ldexp(1.0, exponent - 1)


def _weighted(weights, levels):
    """`sum_l weights[l] * levels[l]`, added level by level in order (a handful of levels: no BLAS
    call), `levels` each level's entry, arrays or floats; `weights` Python floats."""
    out = weights[0] * levels[0]
    for w, level in zip(weights[1:], levels[1:]):
        out = out + w * level
    return out


def _richardson_table(n_levels: int, first_power: int, power_step: int):
    """Weights on the levels h, h/2, h/4, ... of a Richardson table that remove the error terms
    h**first_power, h**(first_power + power_step), ... in turn: those of the last (most
    extrapolated) entry and of the entry one level before it."""
    table = [[np.eye(n_levels)[i]] for i in range(n_levels)]
    for k in range(1, n_levels):
        factor = 2.0 ** (first_power + (k - 1) * power_step)
        for i in range(k, n_levels):
            table[i].append((factor * table[i][k - 1] - table[i - 1][k - 1]) / (factor - 1.0))
    last, previous = table[-1][-1], table[-1][-2]
    for array in (last, previous):
        array.flags.writeable = False
    return last, previous


#: The step levels' divisors per method as arrays (read-only), made once.
_DIVISORS = {method: np.array(levels) for method, levels in _LEVELS.items()}
for _array in _DIVISORS.values():
    _array.flags.writeable = False

#: The weights of the Richardson tables, computed at import.
_RICHARDSON = {
    key: _richardson_table(*key) for key in ((len(_LEVELS["richardson"]), 2, 2), (len(_LEVELS["richardson"]), 1, 2))
}
_DIVISOR_LISTS = {method: levels.tolist() for method, levels in _DIVISORS.items()}
_N_LEVELS = len(_LEVELS["richardson"])
#: Per method, as Python floats: the value's weights, the weights of the level one before it (its
#: truncation estimate) and the one-sided jump's weights (`_table`, `_error`).
_RULE_WEIGHTS = {
    "central": ([0.0, 1.0], None, [-1.0, 2.0]),  # the jump's weights remove the h term of the slope jump
    "richardson": (*(w.tolist() for w in _RICHARDSON[(_N_LEVELS, 2, 2)]), _RICHARDSON[(_N_LEVELS, 1, 2)][0].tolist()),
}
#: Per method, the magnitudes of the value's and the jump's weights (read-only arrays, `_level_sums`).
_ABS_WEIGHTS = {method: (np.abs(np.array(w[0])), np.abs(np.array(w[2]))) for method, w in _RULE_WEIGHTS.items()}
for _pair in _ABS_WEIGHTS.values():
    for _array in _pair:
        _array.flags.writeable = False


def _short(obj, limit: int = 80) -> str:
    text = repr(obj)
    return text if len(text) <= limit else text[: limit - 3] + "..."
