"""Every tolerance decision, in one place, as data.

Two kinds of route are compared:

- **rounding routes** compute the Jacobian from exact formulas in the point's dtype (the symbolic
  route, torch autograd in reverse and forward mode, a user's candidate). Two of them may differ by
  rounding only. The per-entry bound is
  `rounding_factor * eps(dtype) * max(|a|, |b|) + conditioning_factor * noise + tiny / eps`, per
  entry: never scaled by unrelated entries (a verdict must not change with them)
  (`tiny / eps`, 1e-31 in float32 and 1e-292 in float64, the `underflow` floor: an intermediate
  below the smallest normal number `tiny` keeps fewer digits or is flushed to zero by the
  hardware, and a later factor up to `1 / eps` carries that loss up into normal numbers: torch's
  float32 sigmoid backward at `u = -88.6` gives 0 where `x * sigmoid'(u)` is `-1.6e-38`),
  where `noise` is the larger of two measured sensitivities of that entry:
  *evaluation noise*, the symbolic route evaluated in float32 and float64 at the same
  (float32-representable) point, scaled from float32's epsilon to the dtype's (a formula that
  cancels badly); and *conditioning*, how far the entry (in float64) moves when every input moves
  by one rounding of the dtype, `x * (1 + eps(dtype) * s)` for `perturbations` fixed sign patterns
  `s` (see `perturbed`): what a backward-stable implementation computing in the dtype may be off
  by; and the *running error bound* of the formula (`running_error`): a first-order bound on the
  rounding error of evaluating it, which sees cancellation that both float32 and float64 round to
  nothing (`1 - tanh(u)**2` at `u = 19`: 0 in both, 1e-16 in truth). In `verify`, `noise` also
  holds what a fused implementation's own formula may lose (`symjac._implementations`: torch's
  sigmoid backward `y * (1 - y)`, softplus beyond its documented threshold).
  An ill-conditioned entry gets a looser bound; others stay tight: in float64 a 1e-4 relative
  error is caught (`torch.autograd.gradcheck` at its defaults, atol=1e-5 and rtol=1e-3, misses
  it), while correct float32 code, whose errors are a few eps(float32) times the conditioning,
  is not flagged.
- **finite differences** carry their own per-entry error estimate; against them the bound is
  `fd_factor * fd_error` plus the rounding bound of the other route.

Nothing here is scaled by array size, loosened by flags, or replaced silently: an explicit
`rtol=0`-style override is honoured as given, and every Report states the model it used.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

import numpy as np
import sympy
from sympy.core.basic import Basic

from . import _dag
from ._determinant import det as _det
from ._errors import InvalidArgumentError

__all__ = ["ToleranceModel", "DEFAULT_TOLERANCE", "eps", "underflow", "perturbed", "perturbed_normwise", "running_error", "MAX_RUNNING_TOTAL"]


def eps(dtype) -> float:
    return _finfo(dtype)[0]


def underflow(dtype) -> float:
    """The absolute floor of every rounding bound: `tiny / eps` of the dtype (see the module
    docstring): differences below it are what underflow of an intermediate leaves, not evidence."""
    return _finfo(dtype)[1]


def _finfo(dtype) -> tuple[float, float]:
    """`(eps, tiny / eps)` of `dtype`, asked of NumPy once per spelling (np.float64,
    np.dtype("float64"), "float64": a check asks a dozen times per point); an unhashable
    spelling is asked afresh."""
    try:
        return _known_finfo(dtype)
    except TypeError:
        return _known_finfo.__wrapped__(dtype)


@functools.lru_cache(maxsize=64)
def _known_finfo(dtype) -> tuple[float, float]:
    info = np.finfo(np.dtype(dtype))
    return float(info.eps), float(info.tiny) / float(info.eps)


def _nonnegative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise InvalidArgumentError(f"{name}: must be a finite number >= 0; received {value!r}")
    return float(value)


@dataclass(frozen=True)
class ToleranceModel:
    """The tolerance model of a check; the defaults are the documented ones."""

    #: multiples of eps(dtype) allowed between two rounding routes, relative to the entry
    rounding_factor: float = 64.0
    #: multiples of the measured float32-vs-float64 noise of an entry (rescaled to the dtype)
    conditioning_factor: float = 16.0
    #: multiples of the finite-difference error estimate
    fd_factor: float = 4.0
    #: finite differences confirm an entry only when their error estimate is below this fraction
    #: of (|J| + max|J|); above it (a kink inside the stencil, wild curvature) the check is
    #: inconclusive rather than a pass resting on two routes
    fd_informative: float = 1e-3
    #: ... or below this absolute size: a Jacobian that is 0 at the point (`x ** 2` at 0) has no
    #: scale of its own, and an FD error estimate of 1e-17 there confirms it as well as any
    fd_absolute: float = 1e-8
    #: fixed sign patterns of the input perturbations that measure each entry's conditioning
    #: (0 turns the conditioning term off)
    perturbations: int = 4
    #: implementations judged by `verify` may replace softplus(u) by u beyond this threshold
    #: (torch's documented default, `threshold=20`); see `symjac._implementations`
    softplus_threshold: float = 20.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            _nonnegative(name, value)

    # Each rule is one text for whole arrays and for one entry's Python floats: the methods with a
    # namespace `xp` first (`_rounding`, `_fd_untrusted`) take `numpy` (what the public methods pass)
    # or `symjac._floats` (what `_engine` passes for a check of a few entries, where NumPy's fixed
    # cost per call dominates); the same operations on the same numbers either way.

    def rounding(self, a: np.ndarray, b: np.ndarray, dtype, noise: np.ndarray) -> np.ndarray:
        """Per-entry bound on |a - b| for two rounding routes in `dtype`."""
        return self._rounding(np, a, b, dtype, noise)

    def _rounding(self, xp, a, b, dtype, noise):
        # Per entry, never scaled by unrelated entries (max|J|): an entry's cancellation is in its
        # running error bound (`noise`), and a verdict must not change with the other entries.
        scale = xp.fmax(abs(a), abs(b))
        # + underflow(dtype): below it a difference is underflow, not disagreement (at X = 1e-320
        # every product underflows and eps * |J| rounds to 0; a flushed subnormal intermediate
        # times a factor of 25 leaves a normal number lost).
        epsilon, floor = _finfo(dtype)  # eps(dtype), underflow(dtype)
        bound = self.rounding_factor * epsilon * scale + self.conditioning_factor * noise
        return bound + floor

    def against_fd(self, fd_error, rounding):
        """Per-entry bound on |route - fd| given FD's own error estimate (arrays or one entry's floats)."""
        return self.fd_factor * fd_error + rounding

    def fd_uninformative(self, fd_error: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Entries where the finite-difference error estimate is too large to confirm anything."""
        scale = np.abs(reference)
        jmax = float(np.max(scale)) if scale.size else 0.0
        return self.fd_uninformative_at(fd_error, scale, jmax)

    def fd_uninformative_at(self, fd_error, scale, jmax: float):
        """`fd_uninformative` given `scale`, the |reference| (arrays or one entry's floats), and
        `jmax`, the largest of them."""
        return fd_error > self.fd_informative * (scale + jmax) + self.fd_absolute

    def fd_untrusted(self, fd_error: np.ndarray, fd_value: np.ndarray) -> np.ndarray:
        """Entries where finite differences' own error estimate exceeds their own value (and
        `fd_absolute`): not even the sign is known (a stencil across a pole of `tan`, wild
        curvature), so a disagreement there is no evidence against the other routes (NaN: untrusted)."""
        return self._fd_untrusted(np, fd_error, fd_value)

    def _fd_untrusted(self, xp, fd_error, fd_value):
        return xp.logical_not(fd_error <= abs(fd_value) + self.fd_absolute)

    def too_coarse(self, bound, scale, jmax: float):
        """Whether a rounding `bound` is too wide to confirm `fd_informative` agreement at entries
        of magnitude `scale` (the largest `jmax`), arrays or one entry's floats: `_engine`'s "weak
        at" note."""
        return bound > self.fd_informative * (scale + jmax)

    def describe(self, dtype) -> dict:
        return {
            "model": "symjac per-entry",
            "dtype": str(np.dtype(dtype)),
            "eps": eps(dtype),
            "rounding_factor": self.rounding_factor,
            "conditioning_factor": self.conditioning_factor,
            "fd_factor": self.fd_factor,
            "fd_informative": self.fd_informative,
            "fd_absolute": self.fd_absolute,
            "perturbations": self.perturbations,
            "softplus_threshold": self.softplus_threshold,
            "rounding_bound": "rounding_factor*eps*max(|a|,|b|) + conditioning_factor*noise + tiny/eps",
            "noise": "max(|J32 - J64| * eps/eps32, max_s |J(x*(1+eps*s)) - J(x)|, max_s |J(x + eps*max|x|*s) - J(x)| (per input array),"
            " eps * running_error(J)) per entry"
            " (verify: also eps * running_error of the fused implementation's formula, plus documented thresholds)",
            "fd_bound": "fd_factor*fd_error + rounding_bound",
            "fd_untrusted": "fd_error > |fd_value| + fd_absolute: a disagreement there is inconclusive, never a fail",
        }


DEFAULT_TOLERANCE = ToleranceModel()

#: Seed of the fixed sign patterns of `perturbed` (fixed so that every check is reproducible).
PERTURBATION_SEED = 0


#: Sign patterns of at most this many entries are kept (`_signs`), not drawn again at every check.
_KEPT_SIGNS = 1 << 16


@functools.lru_cache(maxsize=64)
def _kept_signs(seed: int, count: int, size: int) -> np.ndarray:
    signs = _draw_signs(seed, count, size)
    signs.flags.writeable = False
    return signs


def _draw_signs(seed: int, count: int, size: int) -> np.ndarray:
    return np.random.default_rng(seed).choice([-1.0, 1.0], size=(count, size))


def _signs(seed: int, count: int, size: int) -> np.ndarray:
    """The fixed random signs `(count, size)` of `seed`: the same numbers every time."""
    count, size = int(count), int(size)
    return _kept_signs(seed, count, size) if count * size <= _KEPT_SIGNS else _draw_signs(seed, count, size)


def perturbed(x: np.ndarray, dtype, count: int, *, out: np.ndarray | None = None) -> np.ndarray:
    """`count` float64 copies of the flat point `x`, each entry moved by one rounding of `dtype`:
    `x * (1 + eps(dtype) * s)`, with fixed random signs `s` (shape `(count, x.size)`); written
    into `out` (float64, that shape) when given."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    return np.multiply(x[None, :], _factors(eps(dtype), int(count), x.size), out=out)


@functools.lru_cache(maxsize=64)
def _kept_factors(eps_value: float, count: int, size: int) -> np.ndarray:
    factors = 1.0 + eps_value * _signs(PERTURBATION_SEED, count, size)
    factors.flags.writeable = False
    return factors


def _factors(eps_value: float, count: int, size: int) -> np.ndarray:
    """`1 + eps * s` of `perturbed`, the same numbers every time (kept, like `_signs`, up to `_KEPT_SIGNS` entries)."""
    if count * size <= _KEPT_SIGNS:
        return _kept_factors(eps_value, count, size)
    return 1.0 + eps_value * _signs(PERTURBATION_SEED, count, size)


def perturbed_normwise(x: np.ndarray, dtype, count: int, sizes, *, out: np.ndarray | None = None) -> np.ndarray:
    """`count` float64 copies of the flat point `x` moved normwise, as a backward-stable matrix
    algorithm (LU, QR) is exact for: each input array moved by `eps(dtype) * max|array| * s`,
    with fixed random signs `s` (`sizes`: the flat size of each input array, in order). A
    determinant's cofactor of 3e-38 among entries of size 2 moves by 1e-15 this way, which
    `torch.linalg.det`'s backward (`det * inv(X).T`) may be off by; component-wise moves see 1e-53.
    Written into `out` (float64, `(count, x.size)`) when given."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    sizes = [int(n) for n in sizes]
    if all(n == 1 for n in sizes):  # scalars only: each one's largest magnitude is its own
        scale = np.abs(x)
    elif len(sizes) == 1 and sizes[0]:  # one array: its largest magnitude everywhere
        scale = np.full(sizes[0], np.max(np.abs(x)))
    elif all(sizes):  # each array's largest magnitude, repeated over its entries
        starts = np.cumsum([0] + sizes[:-1])
        scale = np.repeat(np.maximum.reduceat(np.abs(x), starts), sizes)
    else:
        scale = np.concatenate([np.full(n, np.max(np.abs(part), initial=0.0)) for n, part in zip(sizes, np.split(x, np.cumsum(sizes)[:-1]))])
    signs = _signs(PERTURBATION_SEED + 1, count, x.size)
    moved = np.multiply(eps(dtype) * scale[None, :], signs, out=out)
    moved += x[None, :]  # x + eps max|x| s, as the sum the other way round: the same number
    return moved


#: Running error bounds are compiled smallest entry first, until they reach MAX_RUNNING_TOTAL
#: expression-tree nodes in all, once for the Jacobian's entries and once for the outputs (used by
#: finite differences); the bound's code grows with its entries, about 0.2 ms of build per node here. An entry left out gets no bound: its tolerance comes from the
#: measured noise and conditioning only, and the report says so.
MAX_RUNNING_TOTAL = 10_000


def _abs(e: sympy.Expr) -> sympy.Expr:
    """|e| kept as an Abs node: SymPy rewrites Abs(log(u)) as sqrt(log(u)*conjugate(log(u))) when
    u may be negative, which has no NumPy code (found at log(det(X)), 4x4)."""
    return _abs_node(e) if not e.is_number else abs(e)


def _abs_node(e: sympy.Expr) -> sympy.Expr:
    """`sympy.Abs(e, evaluate=False)`, the same node, without `Function.__new__`'s cache look-up and
    its `nargs` set built anew (most of a 32 x 32 `X @ X`'s forward bounds' build)."""
    node = Basic.__new__(sympy.Abs, e)
    node.nargs = _ABS_NARGS
    return node


_ABS_NARGS = sympy.Abs(sympy.Symbol("x"), evaluate=False).nargs


def running_error(expr: sympy.Expr) -> sympy.Expr:
    """A first-order bound, in units of eps, on the rounding error of evaluating `expr` in floating
    point with exact inputs (Wilkinson's running error analysis, written as an expression):

    - a symbol or number: 0; `a + b + ...` (n terms): the terms' bounds + (n - 1) sum |terms|;
    - `a * b * ...`: sum_i bound(a_i) prod_{j != i} |a_j| + (n - 1) |product|;
    - `b ** k`: |k b**(k-1)| bound(b) + |b**k| (and |log(b) b**k| bound(k) for a symbolic k);
    - `g(a)`: |g'(a)| bound(a) + |g(a)|; anything else: the arguments' bounds + |value|;
    - `det(a)` of an n x n matrix (`symjac._determinant`, evaluated by LU with partial pivoting):
      `sum_i P_i sum_j bound(a_ij) + 2 n**2.5 H + (n - 1) |det|` (`_det_bound`), with `H` the
      product of the rows' 2-norms (Hadamard's bound on |det|) and `P_i` the same product without
      row i (which bounds every cofactor of row i).

    The result is an expression in the same symbols, to be evaluated at the point and multiplied by
    eps(dtype).
    """
    memo: dict = {}
    free = _dag.free_symbols((expr,))  # `is_number` recurses over depth

    def _abs(e):
        number = not free[e] if e in free else e.is_number
        return abs(e) if number else _abs_node(e)

    def bound(e):  # a look-up: the walk below computes children first
        return memo[e]

    def children(e):
        return () if e.is_Atom else tuple(a for a in e.args if isinstance(a, sympy.Expr))

    def step(e):
        # Sums and products built unevaluated, zero bounds left out (an input entry's or a number's):
        # the bound is only evaluated numerically, and SymPy's Add and Mul would sort and combine
        # every term (a 32 x 32 `X @ X`'s 1,024 forward bounds took 19 s that way).
        if e.is_Atom:
            result = _ZERO
        elif e.is_Add:
            result = _sum([bound(a) for a in e.args] + [_times(len(e.args) - 1, _sum([_abs(a) for a in e.args]))])
        elif e.is_Mul:
            absolute = [_abs(a) for a in e.args]
            parts = [_product([bound(a)] + absolute[:i] + absolute[i + 1:]) for i, a in enumerate(e.args)
                     if _nonzero(bound(a))]
            result = _sum(parts + [_times(len(e.args) - 1, _abs(e))])
        elif e.is_Pow:
            b, k = e.args
            terms = [_abs(e)]
            if _nonzero(bound(b)):
                terms.append(_product([_abs(k * b ** (k - 1)), bound(b)]))
            if k.free_symbols and _nonzero(bound(k)):
                terms.append(_product([_abs(sympy.log(b) * e), bound(k)]))
            result = _sum(terms)
        elif isinstance(e, _det):
            result = _det_bound(e, bound, _abs)
        elif isinstance(e, sympy.Function) and len(e.args) == 1:
            terms = [_abs(e)]
            if _nonzero(bound(e.args[0])):
                try:
                    slope = e.fdiff(1)
                except Exception:  # functions without a derivative rule
                    slope = _ZERO
                if slope.has(sympy.Derivative, sympy.Subs, sympy.DiracDelta):
                    # sign, Heaviside: constant away from their kinks (kinks are judged apart), and an
                    # unevaluated derivative has no generated code
                    slope = _ZERO
                if _nonzero(slope):
                    terms.insert(0, _product([_abs(slope), bound(e.args[0])]))
            result = _sum(terms)
        else:
            result = _sum([bound(a) for a in e.args if isinstance(a, sympy.Expr)] + [_abs(e)])
        return result

    # One iterative walk (symjac._dag): no recursion over the expression's depth.
    return _dag.evaluate((expr,), step, memo=memo, children=children)[expr]


_ZERO = sympy.S.Zero


def _nonzero(e: sympy.Expr) -> bool:
    """Whether the bound `e` is not 0 in form (0 is an input entry's or a number's bound)."""
    return e is not _ZERO and not (e.is_Number and e.is_zero)


def _sum(terms: list) -> sympy.Expr:
    """The unevaluated sum of the terms that are not 0 (0 for none, the term itself for one)."""
    terms = [t for t in terms if _nonzero(t)]
    if not terms:
        return _ZERO
    return terms[0] if len(terms) == 1 else sympy.Add(*terms, evaluate=False)


def _product(factors: list) -> sympy.Expr:
    """The unevaluated product of `factors` (0 when one is 0)."""
    if not all(_nonzero(f) for f in factors):
        return _ZERO
    return factors[0] if len(factors) == 1 else sympy.Mul(*factors, evaluate=False)


def _times(k: int, e: sympy.Expr) -> sympy.Expr:
    """`k * e` unevaluated (`e` for k = 1, 0 for k = 0)."""
    if k == 0 or not _nonzero(e):
        return _ZERO
    return e if k == 1 else sympy.Mul(sympy.Integer(k), e, evaluate=False)


def _det_bound(e, bound, absolute) -> sympy.Expr:
    """The running error bound, in units of eps, of a `det` node computed by LU with partial
    pivoting and the product of U's diagonal (what `numpy.linalg.det` and `torch.linalg.det` do).

    LU's computed factors are those of `A + dA` with `|dA| <= n eps |L| |U|` (Higham, Accuracy and
    Stability of Numerical Algorithms, Thm 9.3), and `|L| |U|` is taken as at most twice `|A|` row
    by row in the 1-norm (a growth factor of 2: partial pivoting's in practice, not its worst case
    2**(n - 1)). To first order the determinant then moves by `sum_ij |C_ij| |dA_ij|`, and every
    cofactor of row i is at most `P_i`, the product of the other rows' 2-norms (Hadamard), so
    `sum_ij |C_ij| |dA_ij| <= 2 n eps sum_i P_i |a_i|_1 <= 2 n**1.5 eps sum_i P_i |a_i|_2 = 2 n**2.5
    eps H`. The arguments' own errors add `sum_i P_i sum_j bound(a_ij)`, the product of the
    diagonal `(n - 1) |det|`. Written with the rows' norms only: about 2 n**2 nodes, where the
    cofactors themselves would be n**2 determinants of (n - 1)**2 entries each."""
    n = e.size
    rows = [e.args[i * n:(i + 1) * n] for i in range(n)]
    # Built unevaluated (it is only evaluated numerically): SymPy's Add and Mul would sort and
    # combine every term, minutes for `det(X @ X)` at 20 x 20, whose entries are sums.
    add, mul, two, half = sympy.Add, sympy.Mul, sympy.Integer(2), sympy.Rational(1, 2)
    norms = [sympy.Pow(add(*(sympy.Pow(a, two, evaluate=False) for a in row), evaluate=False), half, evaluate=False)
             for row in rows]
    others = [mul(*(norms[:i] + norms[i + 1:]), evaluate=False) for i in range(n)]
    propagated = []
    for i, row in enumerate(rows):
        errors = [b for b in map(bound, row) if b != 0]  # input entries and numbers have none
        if errors:
            propagated.append(mul(others[i], add(*errors, evaluate=False), evaluate=False))
    hadamard = mul(2 * sympy.Integer(n) ** sympy.Rational(5, 2), *norms, evaluate=False)
    return add(*propagated, hadamard, mul(n - 1, absolute(e), evaluate=False), evaluate=False)


def compile_running_bounds(cells, symbols, budget: int | None = None):
    """Running error bounds of `cells` (`(written-out size, row, col, expression)`), compiled smallest
    first within `MAX_RUNNING_TOTAL` nodes (or `budget`), as functions of `symbols`:
    `(compiled or None, (rows, cols), number left without one)`."""
    from ._codegen import compile_entries
    from ._errors import InvalidExpressionError

    exprs, rows, cols, total = [], [], [], 0
    budget = MAX_RUNNING_TOTAL if budget is None else budget
    for size, r, c, e in sorted(cells, key=lambda cell: cell[:3]):
        if total + size > budget:
            break
        total += size
        exprs.append(running_error(e))
        rows.append(r)
        cols.append(c)
    left = len(cells) - len(exprs)
    if not exprs:
        return None, ([], []), left
    try:
        compiled = compile_entries(exprs, list(symbols), "numpy")
    except InvalidExpressionError:  # a bound with no NumPy code: those entries go without one
        return None, ([], []), len(cells)
    return compiled, (np.array(rows), np.array(cols)), left
