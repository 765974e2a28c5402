"""The domain of a Function, and points drawn from it with NumPy: the role of each input and the
constraints its values must meet (`domain`), and `Draws`, the families drawn from a NumPy `Generator`
(the points of `check(samples=...)` and `verify`'s runs). No Hypothesis here: `symjac.strategies`
builds its Hypothesis strategies on these families.

How the domain is derived (see `domain`): every output entry is scanned for the places where a
function is undefined or not differentiable, giving *constraints* on scalar expressions of the
inputs: the argument of `log` and the base of a fractional power must be positive; a denominator
must be nonzero; the argument of `asin`/`acos` must be inside (-1, 1); the argument of `abs`/`sign`/`Heaviside`, the differences of `Max`/`Min` arguments
and `Piecewise` conditions must stay away from 0 (kinks); `cos` of a `tan` argument must be nonzero.
Each input then gets a *role*, a set of flags of the family it is drawn from, the weakest that
satisfies the constraints it takes part in:

| flag | values drawn (by construction, not by filtering) |
|---|---|
| none | entries in `[-bound, bound]` |
| `nonzero` | entries in `±[margin, bound]` |
| `positive` | entries in `[margin, bound]` |
| `invertible` | square matrices, strictly row diagonally dominant: off-diagonal entries in `[-1, 1]` (`[margin, 1]` if also `positive`), `|X[i, i]| = sum_j |X[i, j]| + 1 + t`, `t` in `[0, 1]`: `|det X| >= 1` and `cond_inf(X) <= 2 n` |
| `posdet` | as `invertible`, with a positive diagonal: `det X > 0` |
| `symmetric` | square matrices with `X == X.T` (the upper triangle drawn, mirrored); with `invertible`, symmetric and diagonally dominant |
| `posdef` | symmetric positive definite: symmetric, strictly diagonally dominant, positive diagonal (`cholesky`, `eigh` inputs) |

Far draws: by default, one point in `FAR_ODDS` is a *far* point whose unconstrained, `nonzero` and
`positive` entries are each, with probability 1/2, drawn from magnitudes in `[bound, reach]`
(log-uniform: a quarter of them beyond 20 at the defaults)
(`reach` default `DEFAULT_REACH` = 40) instead of `[margin, bound]`, so that thresholds far beyond
`bound` (softplus's 20, a clamp at 10) are reached; `reach=bound` turns far draws off. Matrix roles
built by construction (`invertible`, `posdet`, `posdef`) keep their construction.

A determinant node (`symjac._determinant.det`, matrices above 3 x 3) or its absolute value is also
away from 0 where it is nonzero (positive, for "positive") and its matrix has a 2-norm condition number
of at most `MAX_CONDITION`: the margin is absolute, a determinant's size is not (`det(inv(X))` is
`1 / det(X)`).

A constraint counts as satisfied when SymPy's assumptions prove it for the role (`x + y > 0` for
positive `x`, `y`), or when it holds with `margin` at the family's extreme and simplest points and at
32 seeded random ones. Constraints that SymPy did not prove are evaluated again on every drawn value,
which is rejected when one fails (`hypothesis.assume` in `strategies.inputs`, `Draws.valid` here):
rare by construction, but it keeps every value valid even for constraints no family satisfies (`abs(x - y)`: the kink where `x == y` is avoided).

`Draws(f)` draws the same families from a NumPy `Generator` (uniform within each range, one entry in
`1 / _EDGE_ODDS` at an end of its range or its simplest value, the same far odds): the points of
`check(samples=...)` and `verify`'s runs, the same on every machine (`symjac._sampling`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy

from ._errors import InvalidArgumentError
from ._stable import log1p
from ._values import float_dtype

__all__ = ["domain", "Domain", "Constraint", "FLAGS", "Draws"]

#: The flags a role is made of (see the module docstring).
FLAGS = ("nonzero", "positive", "invertible", "posdet", "symmetric", "posdef")
_MATRIX_FLAGS = frozenset({"invertible", "posdet", "symmetric", "posdef"})
#: Roles tried, weakest first, for the inputs of a constraint that is not yet satisfied.
_LADDER = (
    frozenset({"nonzero"}),
    frozenset({"positive"}),
    frozenset({"invertible"}),
    frozenset({"invertible", "posdet"}),
    frozenset({"positive", "invertible", "posdet"}),
)
#: Seeded random points per family when a constraint is tested numerically.
_TRIAL_POINTS = 32
#: A determinant that is nonzero (positive) but less than `margin` from 0 still counts as away from 0
#: when its matrix's 2-norm condition number is at most this: `inv(inv(X))` divides by `det(inv(X))`,
#: `1 / det(X)`, small for every `invertible` X, yet `inv(X)` is as well conditioned as X.
MAX_CONDITION = 100.0
#: Constraints larger than this (SymPy operation count) are not given to SymPy's assumptions.
_MAX_ASSUMPTION_OPS = 400

DEFAULT_BOUND = 3.0
DEFAULT_MARGIN = 0.25
#: Largest magnitude of the far draws (see the module docstring).
DEFAULT_REACH = 40.0
#: One point in this many is a far point.
FAR_ODDS = 2
#: Geometric bands of far magnitudes, each drawn as often.
FAR_STEPS = 8
#: NumPy draws (`Draws`): the chance that an entry is an end of its range or its simplest value.
_EDGE_ODDS = 0.125


@dataclass(frozen=True)
class Constraint:
    """A scalar expression of the inputs that must be `positive` (> margin) or `nonzero` (|.| > margin)."""

    kind: str  # "positive" | "nonzero"
    expr: sympy.Expr
    why: str


@dataclass(frozen=True)
class Domain:
    """The derived domain of a Function: a role (set of flags) per input, and the checked constraints."""

    roles: dict[str, frozenset[str]]
    constraints: tuple[Constraint, ...]
    checked: tuple[Constraint, ...]  # not proven by SymPy: evaluated on every drawn value
    bound: float
    margin: float

    def describe(self) -> dict[str, str]:
        """`{input name: role}` in words, e.g. `{"X": "invertible, posdet", "x": "any"}`."""
        return {name: ", ".join(f for f in FLAGS if f in flags) or "any" for name, flags in self.roles.items()}


def check_number(name: str, value: Any, *, low: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= low:
        raise InvalidArgumentError(f"{name}: must be a finite number > {low}; received {value!r}")
    return float(value)


def _check_function(f: Any):
    from ._function import Function

    if not isinstance(f, Function):
        raise InvalidArgumentError(
            f"f: must be a symjac.Function (build one with symjac.function); received {type(f).__name__}"
        )
    return f


# -- constraints from the expression ---------------------------------------------------------------
def _constraints(output: np.ndarray) -> tuple[Constraint, ...]:
    found: dict[tuple[str, sympy.Expr], str] = {}

    def add(kind: str, expr: sympy.Expr, why: str) -> None:
        if expr.free_symbols:
            found.setdefault((kind, expr), why)

    for entry in output.reshape(-1):
        for atom in entry.atoms(sympy.log):
            add("positive", atom.args[0], f"the argument of {_short(atom)}")
        for atom in entry.atoms(log1p):  # symjac._stable: log1p(u) needs 1 + u > 0
            add("positive", 1 + atom.args[0], f"1 + the argument of {_short(atom)}")
        for atom in entry.atoms(sympy.Pow):
            base, exponent = atom.args
            if exponent.is_integer and exponent.is_negative:
                add("nonzero", base, f"the denominator {_short(base)}")
            elif not exponent.is_integer:
                add("positive", base, f"the base of {_short(atom)}")
        for atom in entry.atoms(sympy.Abs, sympy.sign, sympy.Heaviside):
            add("nonzero", atom.args[0], f"the kink of {_short(atom)}")
        for atom in entry.atoms(sympy.Max, sympy.Min):
            for a, b in itertools.combinations(atom.args, 2):
                add("nonzero", a - b, f"the kink of {_short(atom)}")
        for atom in entry.atoms(sympy.Piecewise):
            for _, cond in atom.args:
                if isinstance(cond, sympy.core.relational.Relational):
                    add("nonzero", cond.lhs - cond.rhs, f"the kink of {_short(atom)}")
        for atom in entry.atoms(sympy.asin, sympy.acos):  # real, and differentiable, only inside (-1, 1)
            add("positive", 1 - atom.args[0] ** 2, f"1 - the square of the argument of {_short(atom)}")
        for atom in entry.atoms(sympy.tan):
            add("nonzero", sympy.cos(atom.args[0]), f"the pole of {_short(atom)}")
    return tuple(Constraint(kind, expr, why) for (kind, expr), why in found.items())


def _short(expr: Any, limit: int = 60) -> str:
    text = str(expr)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _proven(c: Constraint, f, roles: Mapping[str, frozenset[str]]) -> bool:
    if sympy.count_ops(c.expr) > _MAX_ASSUMPTION_OPS:
        return False
    replace = {}
    for inp in f.inputs:
        flags = roles[inp.name]
        if "positive" in flags:
            assumption = {"positive": True}
        elif "nonzero" in flags:
            assumption = {"real": True, "nonzero": True}
        else:
            continue
        for s in inp.flat_symbols:
            replace[s] = sympy.Symbol(s.name, **assumption)
    expr = c.expr.xreplace(replace)
    return bool(expr.is_positive if c.kind == "positive" else expr.is_nonzero)


def effective_flags(inp, flags: frozenset[str]) -> frozenset[str]:
    square = len(inp.shape) == 2 and inp.shape[0] == inp.shape[1]
    return flags if square else flags - _MATRIX_FLAGS


# -- the families, as NumPy samples (for testing constraints) ---------------------------------------
def _numpy_family(inp, flags, rng, count: int, bound: float, margin: float) -> np.ndarray:
    """`count` float64 samples of one input's family: first the simplest point, then the largest one."""
    shape = (count,) + inp.shape
    if "posdef" in flags:
        n = inp.shape[0]
        off = symmetrized(rng.uniform(-1.0, 1.0, shape))
        off[0], off[1] = 0.0, 1.0
        extra = rng.uniform(0.0, 1.0, (count, n))
        extra[0], extra[1] = 0.0, 1.0
        return dominant(off, extra, np.ones((count, n)))
    if "symmetric" in flags and "invertible" not in flags:
        return symmetrized(_numpy_family(inp, flags - {"symmetric"}, rng, count, bound, margin))
    if "invertible" in flags:
        n = inp.shape[0]
        off = rng.uniform(margin if "positive" in flags else -1.0, 1.0, shape)
        if "nonzero" in flags and "positive" not in flags:
            off = np.sign(off) * np.maximum(np.abs(off), margin)
        off[0], off[1] = (margin if "positive" in flags else 0.0), 1.0
        extra = rng.uniform(0.0, 1.0, (count, n))
        extra[0], extra[1] = 0.0, 1.0
        signs = np.ones((count, n)) if {"positive", "posdet"} & flags else rng.choice([-1.0, 1.0], (count, n))
        return dominant(symmetrized(off) if "symmetric" in flags else off, extra, signs)
    if "positive" in flags:
        x = rng.uniform(margin, bound, shape)
        x[0], x[1] = margin, bound
    elif "nonzero" in flags:
        x = rng.uniform(margin, bound, shape) * rng.choice([-1.0, 1.0], shape)
        x[0], x[1] = margin, -bound
    else:
        x = rng.uniform(-bound, bound, shape)
        x[0], x[1] = 0.0, bound
    return x


def symmetrized(x: np.ndarray) -> np.ndarray:
    """The symmetric matrices with the upper triangles (diagonal included) of `x` (`... x n x n`)."""
    upper = np.triu(x)
    return upper + np.swapaxes(np.triu(x, 1), -1, -2)


def dominant(off: np.ndarray, extra: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """Strictly row diagonally dominant matrices: `|X[i, i]| = sum_j |X[i, j]| + 1 + extra[i]`."""
    x = np.array(off, dtype=np.float64)
    n = x.shape[-1]
    idx = np.arange(n)
    x[..., idx, idx] = 0.0
    diag = np.abs(x).sum(axis=-1) + 1.0 + extra
    x[..., idx, idx] = signs * diag
    return x


def _numerically_ok(c_index: int, compiled, f, roles, bound: float, margin: float) -> bool:
    rng = np.random.default_rng(0)
    count = _TRIAL_POINTS + 2
    args = []
    for inp in f.inputs:
        x = _numpy_family(inp, effective_flags(inp, roles[inp.name]), rng, count, bound, margin)
        args.extend(x.reshape(count, -1).T)
    with np.errstate(all="ignore"):
        results = compiled.fn(*args)
        value = np.broadcast_to(np.asarray(results[c_index], dtype=np.float64), (count,))
    return bool(np.all(_satisfied(compiled.kinds[c_index], value, margin, compiled.matrix(c_index, results, (count,)))))


def _satisfied(kind: str, value: np.ndarray, margin: float, matrix: np.ndarray | None = None) -> np.ndarray:
    """Whether `value` (of a constraint of `kind`) is `margin` away from 0 (and positive, for
    "positive"); for a determinant, also where it is merely nonzero (positive) but its `matrix`
    (`(..., n, n)`) is well conditioned, `cond_2 <= MAX_CONDITION` (`_conditioned`)."""
    if kind == "positive":
        ok = np.isfinite(value) & (value >= margin)
    else:
        ok = np.isfinite(value) & (np.abs(value) >= margin)
    if matrix is None:
        return ok
    signed = (value > 0) if kind == "positive" else (value != 0)
    return ok | (np.isfinite(value) & signed & _conditioned(matrix))


def _conditioned(matrix: np.ndarray) -> np.ndarray:
    """Whether each matrix (`(..., n, n)`, finite or not) is real and has `cond_2 <= MAX_CONDITION`."""
    if np.iscomplexobj(matrix):  # a complex entry: outside the real domain
        return np.zeros(matrix.shape[:-2], dtype=bool)
    finite = np.all(np.isfinite(matrix), axis=(-2, -1))
    safe = np.where(finite[..., None, None], matrix, 0.0)
    with np.errstate(all="ignore"):
        singular = np.linalg.svd(safe, compute_uv=False)  # descending, per matrix
        return finite & (singular[..., -1] * MAX_CONDITION >= singular[..., 0]) & (singular[..., 0] > 0)


@dataclass(frozen=True)
class _Compiled:
    fn: Any
    kinds: tuple[str, ...]
    #: per constraint: None, or `(first, n)` for a determinant: its matrix's `n * n` entries are the
    #: compiled results `first ... first + n * n - 1`, after the constraints' own values
    matrices: tuple = ()

    def matrix(self, c_index: int, results: list, count: tuple = ()) -> np.ndarray | None:
        """The matrix of constraint `c_index`'s determinant at the evaluated `results`
        (`count + (n, n)`), or None for a constraint that is not a determinant."""
        where = self.matrices[c_index] if self.matrices else None
        if where is None:
            return None
        first, n = where
        entries = [np.broadcast_to(np.asarray(results[first + k]), count) for k in range(n * n)]
        return np.stack(entries, axis=-1).reshape(count + (n, n))  # complex where an entry is (`meets` refuses it)


def compile_constraints(f, constraints) -> _Compiled:
    """The constraints' values as one generated NumPy function of the inputs' entries; after them,
    the entries of the matrix of each constraint that is a determinant or its absolute value
    (`_Compiled.matrices`)."""
    from ._codegen import compile_entries
    from ._determinant import det

    symbols = [s for inp in f.inputs for s in inp.flat_symbols]
    exprs, matrices = [c.expr for c in constraints], []
    for c in constraints:
        node = c.expr.args[0] if isinstance(c.expr, sympy.Abs) else c.expr  # |det M| > 0 where det M != 0
        if isinstance(node, det):
            matrices.append((len(exprs), math.isqrt(len(node.args))))
            exprs.extend(node.args)
        else:
            matrices.append(None)
    compiled = compile_entries(exprs, symbols, "numpy")
    return _Compiled(compiled.fn, tuple(c.kind for c in constraints), tuple(matrices))


def domain(f, /, *, bound: float = DEFAULT_BOUND, margin: float = DEFAULT_MARGIN, roles: Mapping[str, Any] | None = None) -> Domain:
    """The domain symjac derives for `f`: a role per input and the constraints drawn values must meet.

    - `bound`: largest magnitude of an unconstrained entry; `margin`: smallest distance kept from
      0 for positive and nonzero entries, denominators, `log` arguments and kinks.
    - `roles`: optional `{input name: flags}` (flags from `FLAGS`, a string or an iterable) that
      replaces the derived role of those inputs; the constraints are still checked on every draw.

    ```python
    >>> domain(symjac.function("log(x) + inv(X)[0, 0]", x=(2,), X=(2, 2))).describe()
    {'x': 'positive', 'X': 'invertible'}
    ```
    """
    f = _check_function(f)
    bound = check_number("bound", bound, low=0.0)
    margin = check_number("margin", margin, low=0.0)
    if margin >= bound:
        raise InvalidArgumentError(f"margin: must be smaller than bound ({bound}); received {margin!r}")
    fixed = _check_roles(f, roles)
    key = ("symjac-domain", bound, margin, tuple(sorted((k, tuple(sorted(v))) for k, v in fixed.items())))
    return f.cached(key, lambda: _derive(f, bound, margin, fixed))


def _check_roles(f, roles) -> dict[str, frozenset[str]]:
    if roles is None:
        return {}
    if not isinstance(roles, Mapping):
        raise InvalidArgumentError(f"roles: must be a mapping {{input name: flags}}; received {type(roles).__name__}")
    fixed = {}
    for name, flags in roles.items():
        if name not in f.input_names:
            raise InvalidArgumentError(
                f"roles: f has no input named {name!r}; its inputs are {', '.join(f.input_names)}"
            )
        flags = frozenset([flags] if isinstance(flags, str) else flags if isinstance(flags, Iterable) else [flags])
        unknown = sorted(map(str, flags - set(FLAGS) - {"any"}))
        if unknown:
            raise InvalidArgumentError(f"roles[{name!r}]: flags must be among {FLAGS} (or 'any'); received {unknown}")
        fixed[name] = frozenset(flags - {"any"})
    return fixed


def _derive(f, bound: float, margin: float, fixed: dict[str, frozenset[str]]) -> Domain:
    constraints = _constraints(f.output)
    compiled = compile_constraints(f, constraints) if constraints else None
    roles = {inp.name: fixed.get(inp.name, frozenset()) for inp in f.inputs}
    for k, c in enumerate(constraints):
        if _proven(c, f, roles) or _numerically_ok(k, compiled, f, roles, bound, margin):
            continue
        involved = [inp for inp in f.inputs if inp.name not in fixed and set(inp.flat_symbols) & c.expr.free_symbols]
        for option in _LADDER:
            trial = dict(roles)
            for inp in involved:
                trial[inp.name] = effective_flags(inp, roles[inp.name] | option)
            if trial == roles:
                continue
            if _proven(c, f, trial) or _numerically_ok(k, compiled, f, trial, bound, margin):
                roles = trial
                break
    checked = tuple(c for c in constraints if not _proven(c, f, roles))
    return Domain(roles, constraints, checked, bound, margin)


def far_magnitude(band, t, bound: float, reach: float):
    """A far magnitude in [bound, reach] from a band in `range(FAR_STEPS)` and `t` in [0, 1] (scalars or arrays)."""
    ratio = (reach / bound) ** (1.0 / FAR_STEPS)
    return np.minimum(reach, bound * ratio ** (np.add(band, t)))


def shaped(flat: np.ndarray, shape, mirror: bool) -> np.ndarray:
    x = flat.reshape(shape)
    return symmetrized(x) if mirror else x


def meets(compiled: _Compiled, f, values: Mapping[str, np.ndarray], margin: float) -> bool:
    """Whether one point meets the constraints `compiled` (those SymPy did not prove)."""
    # NumPy scalars, not Python floats: `0.0 ** -1.5` raises and `(-1.0) ** 0.5` is complex in
    # Python; NumPy gives inf and nan (warnings off), which fail the constraint as they should
    args = [v for inp in f.inputs for v in np.asarray(values[inp.name], np.float64).reshape(-1)]
    with np.errstate(all="ignore"):
        results = compiled.fn(*args)
    for k, kind in enumerate(compiled.kinds):
        value = np.asarray(results[k])
        # a negative base to a fractional power is complex in Python: outside the real domain
        if np.iscomplexobj(value):
            return False
        matrix = compiled.matrix(k, results)
        if matrix is not None and np.iscomplexobj(matrix):
            return False
        if not bool(_satisfied(kind, value.astype(np.float64), margin, matrix)):
            return False
    return True


# -- the same distributions as NumPy draws (symjac._sampling's runs) ------------------------------
@dataclass(frozen=True)
class _Param:
    """One array of a point's parameters: `kind` "real" (in [lo, hi]), "nonzero" (+-[lo, hi]) or "sign" (+-1)."""

    input: str
    size: int
    kind: str
    lo: float
    hi: float
    far: bool = False  # entries that a far point draws from [bound, reach]
    live: tuple[int, ...] = ()  # the indices that reach the value (the rest stay at their simplest)


class Draws:
    """`inputs(f, ...)`'s distributions drawn from a NumPy `Generator`: the same families, ranges and far odds.

    A point is held as its *parameters* (`params`, one float64 array per `_Param`), the numbers the
    family is built from (entries; or a matrix's off-diagonal part, diagonal margins and signs), so
    that changing any one parameter inside its range keeps the point inside the family: shrinking
    and hill-climbing (`symjac._sampling`) work on parameters. Draws depend only on the Generator:
    not on the machine, the modules loaded or the working directory (no Hypothesis choice sequence).
    """

    def __init__(self, f, *, dtype: Any = np.float64, bound: float = DEFAULT_BOUND, margin: float = DEFAULT_MARGIN,
                 roles: Mapping[str, Any] | None = None, reach: float = DEFAULT_REACH):
        self.f = _check_function(f)
        self.dtype = float_dtype(dtype)
        self.width = 32 if self.dtype == np.float32 else 64
        dom = domain(f, bound=bound, margin=margin, roles=roles)
        self.domain = dom
        reach = check_number("reach", reach, low=0.0)
        self.reach = reach if reach > dom.bound else None
        self.compiled = (f.cached(("symjac-domain-check", dom.checked), lambda: compile_constraints(f, dom.checked))
                         if dom.checked else None)
        self.params: list[_Param] = []
        self._builders = []
        for inp in f.inputs:
            self._add(inp, effective_flags(inp, dom.roles[inp.name]))

    def _add(self, inp, flags) -> None:
        b, m = self.domain.bound, self.domain.margin
        if "posdef" in flags or "invertible" in flags:
            n = inp.shape[0]
            upper = [i * n + j for i in range(n) for j in range(n) if (j > i if "posdef" in flags or "symmetric" in flags else j != i)]
            if "posdef" in flags:
                off = _Param(inp.name, n * n, "real", -1.0, 1.0, live=tuple(upper))
            elif "positive" in flags:
                off = _Param(inp.name, n * n, "real", min(m, 1.0), 1.0, live=tuple(upper))
            elif "nonzero" in flags:
                off = _Param(inp.name, n * n, "nonzero", min(m, 1.0), 1.0, live=tuple(upper))
            else:
                off = _Param(inp.name, n * n, "real", -1.0, 1.0, live=tuple(upper))
            extra = _Param(inp.name, n, "real", 0.0, 1.0, live=tuple(range(n)))
            fixed_signs = "posdef" in flags or bool({"positive", "posdet"} & flags)
            signs = _Param(inp.name, n, "sign", 1.0, 1.0, live=() if fixed_signs else tuple(range(n)))
            symmetric = "posdef" in flags or "symmetric" in flags
            first = len(self.params)
            self.params += [off, extra, signs]

            def build(params, first=first, n=n, symmetric=symmetric):
                o = params[first].reshape(n, n)
                return dominant(symmetrized(o) if symmetric else o, params[first + 1], params[first + 2]).astype(self.dtype)
        else:
            mirror = "symmetric" in flags
            n = inp.shape[-1] if inp.shape else 1
            live = tuple(k for k in range(inp.size) if not mirror or k % n >= k // n)
            kind = "real" if not {"positive", "nonzero"} & flags else "nonzero" if "positive" not in flags else "positive"
            lo = -b if kind == "real" else m
            param = _Param(inp.name, inp.size, "real" if kind == "positive" else kind, lo, b, far=self.reach is not None,
                           live=live)
            first = len(self.params)
            self.params.append(param)

            def build(params, first=first, inp=inp, mirror=mirror):
                return shaped(np.asarray(params[first], np.float64), inp.shape, mirror).astype(self.dtype)
        self._builders.append((inp.name, build))

    # -- ranges and simplest values --------------------------------------------------------------
    def span(self, p: _Param) -> tuple[float, float]:
        """The range of a parameter's magnitude (kind "nonzero") or value (kind "real"), far draws included."""
        if not p.far:
            return p.lo, p.hi
        return (-self.reach if p.lo < 0 else p.lo), self.reach

    def simplest(self, p: _Param) -> float:
        """The parameter value points shrink toward: 0 if allowed, else the smallest integer in range, else lo."""
        lo, hi = self.span(p)
        if p.kind == "sign":
            return 1.0
        if p.kind == "real" and lo <= 0.0 <= hi:
            return 0.0
        one = math.ceil(lo)
        return float(one) if one <= hi else lo

    def rounded(self, x):
        return np.asarray(x, np.float32).astype(np.float64) if self.width == 32 else np.asarray(x, np.float64)

    def allowed(self, p: _Param, x: float) -> bool:
        lo, hi = self.span(p)
        if p.kind == "sign":
            return x in (-1.0, 1.0)
        return lo <= (abs(x) if p.kind == "nonzero" else x) <= hi

    # -- drawing ----------------------------------------------------------------------------------
    def draw(self, rng: np.random.Generator) -> list[np.ndarray]:
        """One point's parameters (valid or not: see `valid`), far with odds 1 in `FAR_ODDS`."""
        far_point = self.reach is not None and int(rng.integers(FAR_ODDS)) == FAR_ODDS - 1
        out = []
        for p in self.params:
            size = len(p.live)
            x = np.full(p.size, self.simplest(p))
            if p.kind == "sign":
                v = np.where(rng.random(size) < 0.5, -1.0, 1.0)
            elif p.kind == "nonzero":
                v = rng.uniform(p.lo, p.hi, size) * np.where(rng.random(size) < 0.5, -1.0, 1.0)
            else:
                v = rng.uniform(p.lo, p.hi, size)
            if p.kind != "sign":  # like Hypothesis' floats, some entries at the ends of the range or the simplest value
                edges = np.array([p.lo, p.hi, self.simplest(p) if p.kind == "real" else max(p.lo, min(1.0, p.hi))])
                if p.kind == "nonzero":
                    edges = edges[:2] if p.lo > 1.0 or p.hi < 1.0 else edges
                edge = edges[rng.integers(len(edges), size=size)] * (np.sign(v) if p.kind == "nonzero" else 1.0)
                v = np.where(rng.random(size) < _EDGE_ODDS, edge, v)
            if p.far and far_point:  # each entry of a far point: with probability 1/2 from [bound, reach]
                far = rng.random(size) < 0.5
                magnitude = far_magnitude(rng.integers(FAR_STEPS, size=size), rng.random(size),
                                           self.domain.bound, self.reach)
                if p.lo < 0 or p.kind == "nonzero":
                    magnitude = magnitude * np.where(rng.random(size) < 0.5, -1.0, 1.0)
                v = np.where(far, magnitude, v)
            x[list(p.live)] = v
            out.append(self.rounded(x) if p.kind != "sign" else x)
        return out

    def values(self, params: list[np.ndarray]) -> dict[str, np.ndarray]:
        """`{input name: array}` of the point with these parameters."""
        return {name: build(params) for name, build in self._builders}

    def valid(self, values: Mapping[str, np.ndarray]) -> bool:
        """Whether the point meets the constraints SymPy did not prove (the same test as `inputs`)."""
        return self.compiled is None or meets(self.compiled, self.f, values, self.domain.margin)
