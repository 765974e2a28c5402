"""Runs over many points: seeded NumPy draws from the domain, a hunt for the worst disagreement, shrinking.

A run draws `samples` points from the function's own domain (`symjac._domain.Draws`: the
distributions of `symjac.strategies.inputs` from `numpy.random.default_rng(seed)`, no Hypothesis), checks each
one (`check` at a point, or `verify` at a point), hill-climbs over the last `TARGET_FRACTION` of
the points from the worst so far (`score`: error / tolerance between the exact routes), and stops at
the first failing point, which it shrinks to a minimal counterexample (`_shrink`: one parameter at a
time toward its simplest value, while the point still fails). The whole run is one `Report` with a
`RunSummary`: points tried, passed, failed and inconclusive (the shrinking's trials not counted),
the worst point and the minimal counterexample, each as the Report of that point.

Reproducible: the same function, seed and sample count give the same run and a byte-identical
`to_dict()`, on any machine and whatever is imported: no Hypothesis engine runs (its choices mix in
constants read from the user's local modules, cached under `.hypothesis/` in the working
directory), and nothing is written.

Verdict of a run: `fail` when any point failed; otherwise `pass` when at least `MIN_PASS_FRACTION`
of the points passed, else `inconclusive` (with the most common reason).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._errors import ImplementationError, InvalidArgumentError
from ._report import Report, RunSummary

__all__ = [
    "DEFAULT_SAMPLES", "MAX_SAMPLES", "MIN_PASS_FRACTION", "run", "validate_samples", "validate_seed", "score",
    "draw_options", "options_text",
]

#: Points per run when a caller asks for a run without saying how many.
DEFAULT_SAMPLES = 100
#: Largest accepted `samples`.
MAX_SAMPLES = 100_000
#: A run without failures passes only when at least this fraction of its points passed.
MIN_PASS_FRACTION = 0.5
#: Routes whose disagreement steers `target()`: all but finite differences, whose error estimate
#: is not a bound to hunt against.
_UNTARGETED = ("finite-diff",)


def validate_samples(samples: Any) -> int:
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or not 1 <= samples <= MAX_SAMPLES:
        raise InvalidArgumentError(f"samples: must be an int from 1 to {MAX_SAMPLES}; received {samples!r}")
    return int(samples)


def validate_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidArgumentError(f"seed: must be an int >= 0; received {seed!r}")
    return int(seed)


def draw_options(bound: Any = None, roles: Any = None) -> dict:
    """Keyword arguments of `symjac.strategies.inputs` for a run's `bound=` and `roles=`.

    `bound=None`: the default domain (entries mostly within `strategies.DEFAULT_BOUND`, far points
    out to `strategies.DEFAULT_REACH`). `bound=b`: entries out to `b`, most within
    `min(DEFAULT_BOUND, b)`. `roles`: `{input name: flags}` replacing derived roles (see
    `symjac.strategies.domain`), e.g. `{"X": "posdef"}` for a Cholesky-based implementation.
    """
    from ._domain import DEFAULT_BOUND, DEFAULT_MARGIN

    options: dict = {}
    if bound is not None:
        if isinstance(bound, bool) or not isinstance(bound, (int, float, np.integer, np.floating)) or not (
            math.isfinite(bound) and bound > DEFAULT_MARGIN
        ):
            raise InvalidArgumentError(
                f"bound: must be a finite number > {DEFAULT_MARGIN} (the margin kept from 0, poles and kinks); "
                f"received {bound!r}"
            )
        options["bound"] = min(DEFAULT_BOUND, float(bound))
        options["reach"] = float(bound)
    if roles is not None:
        options["roles"] = roles
    return options


def options_text(bound: Any = None, roles: Any = None) -> str:
    """`, bound=..., roles=...` for a reproduction line (empty for the defaults)."""
    text = "" if bound is None else f", bound={float(bound)!r}"
    if roles is not None:
        text += f", roles={dict(roles)!r}"
    return text


def score(report: Report) -> float:
    """The largest |a - b| / tolerance at the worst entry of any pair of exact routes (0 if none)."""
    best = 0.0
    for pair in report.pairs:
        if set(pair.routes) & set(_UNTARGETED) or not pair.worst.tolerance:
            continue
        a, b = (pair.worst.values.get(r) for r in pair.routes)
        if a is None or b is None:
            continue
        ratio = abs(a - b) / pair.worst.tolerance
        best = max(best, ratio if np.isfinite(ratio) else 1e300)
    return float(best)


class _PointFailure(Exception):
    def __init__(self, report: Report):
        super().__init__(report.reason)
        self.report = report


class _State:
    def __init__(self):
        self.tried = 0
        self.verdicts: Counter = Counter()
        self.reasons: Counter = Counter()
        self.worst: tuple[float, Report] | None = None
        self.first: Report | None = None

    def record(self, report: Report) -> float:
        self.tried += 1
        self.verdicts[report.verdict] += 1
        if report.verdict == "inconclusive":
            self.reasons[report.reason.split(":")[0]] += 1
        self.first = self.first or report
        s = score(report)
        if report.pairs and (self.worst is None or s > self.worst[0]):
            self.worst = (s, report)
        return s


#: Of a run's `samples` points, this fraction (at the end) hill-climbs from the worst point so far
#: (`target`), the rest are drawn afresh.
TARGET_FRACTION = 0.25
#: Most point checks spent on shrinking a failure to a minimal counterexample.
SHRINK_BUDGET = 300
#: Draws of a smaller shape tried when a failure at a larger one is shrunk.
SMALLER_SHAPE_TRIES = 20
#: Draws tried per point before the domain counts as one no valid point can be drawn from.
MAX_REJECTIONS = 2000


def run(
    functions: Sequence[Any],
    point_check: Callable[[Any, dict], Report],
    *,
    samples: int,
    seed: int,
    dtype: Any = np.float64,
    reproduce: str,
    describe: str,
    tolerance: dict,
    batch: int | None = None,
    task: str = "check",
    draw: dict | None = None,
) -> Report:
    """Run `point_check(f, values)` over points of the Functions in `functions` drawn from their domains.

    Points come from `symjac._domain.Draws` (the distributions of `strategies.inputs`) with a NumPy
    Generator seeded with `seed`: the same on every machine, whatever modules are loaded, and nothing
    is written anywhere. The first `1 - TARGET_FRACTION` of the points are fresh draws; the rest
    hill-climb from the worst point so far (`score`: the largest error / tolerance of the exact
    routes). The run stops at the first failing point, which is shrunk (`_shrink`) to a minimal
    counterexample. Several Functions (one expression at several shapes) are drawn from alike, and a
    failure is first tried at the smaller shapes, so it shrinks to the smallest shape at which it
    happens. `draw`: keyword arguments of `symjac.strategies.inputs` (`draw_options`). `batch`: `batch`
    points per case, stacked on a leading axis (symjac._second_order).
    """
    from ._domain import Draws, domain

    draw = dict(draw or {})
    functions = sorted(functions, key=lambda f: sum(inp.size for inp in f.inputs))
    samplers = [Draws(f, dtype=dtype, **draw) for f in functions]
    known = {k: draw[k] for k in ("bound", "roles") if k in draw}
    roles = {}
    for f in functions:
        for name, role in domain(f, **known).describe().items():
            shape = f.input(name).shape
            roles[name if len(functions) == 1 else f"{name} {shape}"] = role

    cases = _Cases(functions, samplers, point_check, batch)
    rng = np.random.default_rng(seed)
    state = _State()
    explore = samples - int(samples * TARGET_FRACTION)
    best: tuple[float, int, list] | None = None
    failure = None
    unsatisfiable = False
    step = 0.1  # of the hill-climbing moves, relative to a parameter's near range
    for i in range(samples):
        case = None
        if i >= explore and best is not None and best[0] > 0:
            case = cases.mutate(best[1], best[2], rng, step)
        if case is None:
            k = int(rng.integers(len(functions))) if len(functions) > 1 else 0
            case = cases.fresh(k, rng)
        if case is None:
            unsatisfiable = state.tried == 0
            break
        k, params = case
        try:
            report = cases.check(k, params)
        except ImplementationError as error:  # verify: impl raised at this point; shrink it, raise at the simplest
            raise _shrink(cases, k, params, error, np.random.default_rng([seed, 1]))
        s = state.record(report)
        if i >= explore and best is not None and best[0] > 0:  # a (1+1) evolution strategy's step rule
            step = min(1.0, step * 2.0) if s > best[0] else max(1e-6, step * 0.84)
        if best is None or s > best[0]:
            best = (s, k, params)
        if report.verdict == "fail":
            failure = (k, params, report)
            break

    counterexample = None
    if failure is not None:
        counterexample = _shrink(cases, *failure, np.random.default_rng([seed, 1]))

    passed, failed = state.verdicts["pass"], state.verdicts["fail"]
    inconclusive = state.verdicts["inconclusive"]
    common = state.reasons.most_common(1)[0] if state.reasons else None
    notes: list[str] = []
    if counterexample is not None:
        verdict = "fail"
        reason = f"{failed} of {state.tried} points failed; minimal counterexample: {counterexample.reason}"
    elif unsatisfiable or state.tried == 0:
        verdict, reason = "inconclusive", "no valid point could be drawn from the function's domain"
    elif passed < MIN_PASS_FRACTION * state.tried:
        verdict = "inconclusive"
        reason = f"only {passed} of {state.tried} points passed (at least {MIN_PASS_FRACTION:.0%} must)"
        if common:
            reason += f"; most common reason: {common[0]} ({common[1]} points)"
    else:
        verdict, reason = "pass", ""
        if inconclusive:
            notes.append(
                f"{inconclusive} of {state.tried} points were inconclusive: "
                + "; ".join(f"{r} ({n})" for r, n in sorted(state.reasons.items()))
            )

    worst = state.worst[1] if state.worst else None
    summary = RunSummary(
        samples=samples,
        seed=seed,
        points_tried=state.tried,
        passed=passed,
        failed=failed,
        inconclusive=inconclusive,
        inconclusive_reasons=dict(sorted(state.reasons.items())),
        inputs=roles,
        worst=worst,
        counterexample=counterexample,
    )
    featured = counterexample or worst or state.first
    if featured is None:
        return Report(
            verdict=verdict, reason=reason, function=describe, dtype=str(np.dtype(dtype)), point={},
            routes=(), pairs=(), worst=None, odd_one_out=None, tolerance=tolerance,
            reproduce=reproduce, points_tried=state.tried, notes=tuple(notes), run=summary, task=task,
        )
    return Report(
        verdict=verdict,
        reason=reason,
        function=describe,
        dtype=featured.dtype,
        point=featured.point,
        routes=featured.routes,
        pairs=featured.pairs,
        worst=featured.worst,
        odd_one_out=featured.odd_one_out if verdict == "fail" else None,
        tolerance=featured.tolerance,
        reproduce=reproduce,
        points_tried=state.tried,
        notes=tuple(featured.notes) + tuple(notes),
        run=summary,
        task=task,
    )


class _Cases:
    """The cases of a run: a Function (by index) and the parameters of its point(s) (`_domain.Draws`)."""

    def __init__(self, functions, samplers, point_check, batch):
        self.functions, self.samplers, self.point_check, self.batch = functions, samplers, point_check, batch

    def values(self, k: int, params: list) -> dict | None:
        """The values of a case, or None when a point is outside the domain (a checked constraint fails)."""
        sampler = self.samplers[k]
        points = [sampler.values(p) for p in params]
        if not all(sampler.valid(v) for v in points):
            return None
        if self.batch is None:
            return points[0]
        return {name: np.stack([v[name] for v in points]) for name in points[0]}

    def check(self, k: int, params: list) -> Report:
        return self.point_check(self.functions[k], self.values(k, params))

    def fresh(self, k: int, rng) -> tuple[int, list] | None:
        """A valid case of Function `k` drawn afresh (None after `MAX_REJECTIONS` invalid draws)."""
        sampler, params = self.samplers[k], []
        for _ in range(self.batch or 1):
            for _ in range(MAX_REJECTIONS):
                p = sampler.draw(rng)
                if sampler.valid(sampler.values(p)):
                    params.append(p)
                    break
            else:
                return None
        return k, params

    def mutate(self, k: int, params: list, rng, step: float) -> tuple[int, list] | None:
        """A valid case near `params`: one parameter entry (sometimes two) moved within its range by about
        `step` times its near range (None if none found)."""
        sampler = self.samplers[k]
        coords = self.coords(k, len(params))
        if not coords:
            return None
        for _ in range(10):
            trial = [[a.copy() for a in p] for p in params]
            for _ in range(1 + (rng.random() < 0.25)):
                b, j, i = coords[int(rng.integers(len(coords)))]
                param = sampler.params[j]
                trial[b][j][i] = _moved(sampler, param, float(trial[b][j][i]), rng, step)
            if self.values(k, trial) is not None:
                return k, trial
        return None

    def coords(self, k: int, count: int) -> list[tuple[int, int, int]]:
        """(point in the batch, parameter, index) of every parameter entry that reaches the value."""
        sampler = self.samplers[k]
        return [(b, j, i) for b in range(count) for j, p in enumerate(sampler.params) for i in p.live]


def _moved(sampler, param, x: float, rng, step: float) -> float:
    """`x` moved within the parameter's range: to an end of the range (1 in 16) or by a normal step of
    `step` times the parameter's near range (clipped to the range; a nonzero entry keeps its sign)."""
    if param.kind == "sign":
        return -x
    lo, hi = sampler.span(param)
    delta = rng.normal() * step * (param.hi - param.lo)
    end = rng.random() < 0.0625
    if param.kind == "nonzero":
        sign = -1.0 if x < 0 else 1.0
        if end:
            return sign * (hi if rng.random() < 0.5 else lo)
        return sign * float(sampler.rounded(np.clip(abs(x) + delta, lo, hi)))
    if end:
        return hi if rng.random() < 0.5 else lo
    return float(sampler.rounded(np.clip(x + delta, lo, hi)))


def _candidates(sampler, param, x: float) -> list[float]:
    """Simpler values for one parameter entry, simplest first: the family's simplest value, the
    positive twin, integers (smaller first, halving the distance), then fewer decimal digits; all
    inside the parameter's range."""
    out: list[float] = []
    simplest = sampler.simplest(param)

    def key(c: float) -> tuple:  # smaller is simpler; candidates are strictly simpler than x (no cycles)
        whole = float(c).is_integer()
        digits = next((d for d in range(18) if round(c, d) == c), 18)
        return (c != simplest, c < 0, not whole, digits, abs(c))

    def add(c: float) -> None:
        c = float(sampler.rounded(c))
        if c not in out and sampler.allowed(param, c) and key(c) < key(x):
            out.append(c)

    add(simplest)
    if param.kind == "sign":
        return out
    if x < 0:
        add(-x)
    sign, m = (-1.0 if x < 0 else 1.0), abs(x)
    # integers before fractions, smaller magnitudes first (Hypothesis' order of simplicity)
    add(sign)
    whole = math.floor(m)
    step = whole // 2
    while step >= 1:
        add(sign * (whole - step))
        step //= 2
    add(sign * whole)
    add(sign * math.ceil(m))
    for digits in range(7):
        add(round(x, digits))
    return out


def _shrink(cases: _Cases, k: int, params: list, report, rng):
    """A minimal failing case from a failing one: the smallest shape at which a fresh draw fails,
    then every parameter entry in turn moved to the simplest value at which the point still fails
    (`_candidates`), repeated until nothing changes; at most `SHRINK_BUDGET` point checks.
    `report`: the failing point's Report (returns the minimal one), or the `ImplementationError` the
    implementation raised there (returns the one it raises at the minimal point that raises)."""
    budget = SHRINK_BUDGET
    raised = isinstance(report, ImplementationError)

    def outcome(case_k: int, trial: list):
        """The trial's Report or error if it fails the way the original did, else None."""
        try:
            result = cases.check(case_k, trial)
        except ImplementationError as error:
            return error if raised else None
        return result if not raised and result.verdict == "fail" else None
    for j in range(k):  # the Functions are sorted smallest first
        for _ in range(SMALLER_SHAPE_TRIES):
            case = cases.fresh(j, rng)
            if case is None or budget <= 0:
                break
            budget -= 1
            trial = outcome(*case)
            if trial is not None:
                k, params, report = case[0], case[1], trial
                break
        else:
            continue
        break

    def attempt(trial: list) -> bool:
        nonlocal budget, params, report
        if budget <= 0 or cases.values(k, trial) is None:
            return False
        budget -= 1
        result = outcome(k, trial)
        if result is None:
            return False
        params, report = trial, result
        return True

    sampler = cases.samplers[k]
    # the simplest point of all first, then each point of a batch at its simplest
    simplest = [np.array([sampler.simplest(p)] * p.size) for p in sampler.params]
    if not attempt([[a.copy() for a in simplest] for _ in params]) and len(params) > 1:
        for b in range(len(params)):
            trial = [[a.copy() for a in p] for p in params]
            trial[b] = [a.copy() for a in simplest]
            attempt(trial)
    changed = True
    while changed and budget > 0:
        changed = False
        for b, j, i in cases.coords(k, len(params)):
            param = sampler.params[j]
            moved = True
            while moved and budget > 0:
                moved = False
                for c in _candidates(sampler, param, float(params[b][j][i])):
                    trial = [[a.copy() for a in p] for p in params]
                    trial[b][j][i] = c
                    if attempt(trial):
                        moved = changed = True
                        break
    return report
