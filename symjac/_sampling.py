"""Runs over many points: Hypothesis draws valid inputs, hunts the worst disagreement, shrinks a failure.

A run draws `samples` points from the function's own domain (`symjac.strategies.inputs`), checks
each one (`check` at a point, or `verify` at a point), steers generation with
`hypothesis.target(error / tolerance)` toward the largest disagreement between the exact routes,
and on a failure lets Hypothesis shrink the point to a minimal counterexample. The whole run is one
`Report` with a `RunSummary`: points tried, passed, failed and inconclusive, the worst point and the
minimal counterexample, each as the Report of that point.

Reproducible: the same function, seed and sample count give the same run and a byte-identical
`to_dict()` (Hypothesis is seeded with `seed`, runs without a database, deadline or timing checks).

Verdict of a run: `fail` when any point failed; otherwise `pass` when at least `MIN_PASS_FRACTION`
of the points passed, else `inconclusive` (with the most common reason).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._errors import InvalidArgumentError
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
    from .strategies import DEFAULT_BOUND, DEFAULT_MARGIN

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
    """Run `point_check(f, values)` over Hypothesis-drawn points of the Functions in `functions`.

    Several Functions (one expression at several shapes) are tried smallest first, so a failure
    shrinks to the smallest shape at which it happens. `draw`: keyword arguments of
    `symjac.strategies.inputs` (`draw_options`).
    """
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings, target
    from hypothesis import seed as seed_decorator
    from hypothesis import strategies as st
    from hypothesis.errors import Unsatisfiable

    from .strategies import domain, inputs

    draw = dict(draw or {})
    functions = sorted(functions, key=lambda f: sum(inp.size for inp in f.inputs))
    points = inputs
    if batch is not None:  # `batch` points per case, stacked on a leading axis (symjac._second_order)
        def points(f, *, dtype, **options):
            return st.lists(inputs(f, dtype=dtype, **options), min_size=batch, max_size=batch).map(
                lambda drawn: {name: np.stack([p[name] for p in drawn]) for name in drawn[0]}
            )
    if len(functions) == 1:
        only = functions[0]
        cases = points(only, dtype=dtype, **draw).map(lambda values: (only, values))
    else:
        cases = st.sampled_from(functions).flatmap(
            lambda f: points(f, dtype=dtype, **draw).map(lambda values: (f, values))
        )
    known = {k: draw[k] for k in ("bound", "roles") if k in draw}
    roles = {}
    for f in functions:
        for name, role in domain(f, **known).describe().items():
            shape = f.input(name).shape
            roles[name if len(functions) == 1 else f"{name} {shape}"] = role

    state = _State()

    def body(case):
        f, values = case
        report = point_check(f, values)
        target(state.record(report), label="error / tolerance")
        if report.verdict == "fail":
            raise _PointFailure(report)

    test = settings(
        max_examples=samples,
        database=None,
        deadline=None,
        derandomize=False,
        phases=(Phase.generate, Phase.target, Phase.shrink),
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,
        print_blob=False,
    )(given(cases)(body))
    test = seed_decorator(seed)(test)

    counterexample, unsatisfiable = None, False
    try:
        test()
    except _PointFailure as failure:
        counterexample = failure.report
    except Unsatisfiable:
        unsatisfiable = True

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
