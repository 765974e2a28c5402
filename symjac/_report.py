"""`Report`: what a check found, as data. Readable with `str()`, machine-readable with `to_dict()`.

A Report is always returned; raising is a separate, explicit call (`report.raise_if_failed()`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ._errors import InconclusiveCheckError, InvalidArgumentError, JacobianMismatchError
from ._printable import Printable

__all__ = ["Report", "PairResult", "Entry", "RouteMatrices", "RunSummary", "VERDICTS", "SCHEMA", "TASKS", "entries_text"]

VERDICTS = ("pass", "fail", "inconclusive")
#: What `Report.raise_if_failed` does with an inconclusive report.
INCONCLUSIVE_CHOICES = ("raise", "pass")
#: Version 2: `odd_one_out` is a list of route names (or null), and `task` says "check" or "verify".
SCHEMA = "symjac.report/2"
#: What made a report: `symjac.check` or `symjac.verify`.
TASKS = ("check", "verify")


@dataclass(frozen=True)
class Entry:
    """One Jacobian entry: output index, input name and index, and every route's value there."""

    output_index: tuple[int, ...]
    input_name: str
    input_index: tuple[int, ...]
    values: dict[str, float]
    tolerance: float | None = None
    #: "jacobian" for a Jacobian entry; "value" for an output value (then input_name is "");
    #: "second" for a second derivative (then `second` names the second input and its index)
    #: `verify`'s directional checks (`symjac._cotangents`): "vjp" (output_index is (k,), the
    #: cotangent v{k+1}; input_name, input_index the entry of v^T J), "vjp-sum" (the same for
    #: vjp(v1 + v2)), "jvp" (output_index the entry of J t; input_index is (k,), the tangent
    #: t{k+1}) and "jvp-sum"
    kind: str = "jacobian"
    #: for kind "second": (input name, input index) differentiated by second
    second: tuple[str, tuple[int, ...]] | None = None
    #: for a batched check (`batch=B`): which point of the batch this entry is at
    batch_index: int | None = None

    def label(self) -> str:
        out = ", ".join(map(str, self.output_index))
        at = "" if self.batch_index is None else f" at batch point {self.batch_index}"
        inp = ", ".join(map(str, self.input_index))
        if self.kind == "value":
            return f"value out[{out}]{at}"
        if self.kind == "vjp":
            return f"v{self.output_index[0] + 1}^T J at {self.input_name}[{inp}] (cotangent v{self.output_index[0] + 1})"
        if self.kind == "vjp-sum":
            return f"vjp(v1 + v2) at {self.input_name}[{inp}] (linearity in the cotangent)"
        if self.kind == "jvp":
            return f"J t{self.input_index[0] + 1} at out[{out}] (tangent t{self.input_index[0] + 1})"
        if self.kind == "jvp-sum":
            return f"jvp(t1 + t2) at out[{out}] (linearity in the tangent)"
        if self.kind == "second" and self.second is not None:
            name, index = self.second
            return f"d2 out[{out}] / d {self.input_name}[{inp}] d {name}[{', '.join(map(str, index))}]{at}"
        return f"d out[{out}] / d {self.input_name}[{inp}]{at}"

    def to_dict(self) -> dict:
        return {
            "output_index": list(self.output_index),
            "input": self.input_name,
            "input_index": list(self.input_index),
            "values": {k: _json_float(v) for k, v in self.values.items()},
            "tolerance": _json_float(self.tolerance),
            "kind": self.kind,
            **({"second_input": self.second[0], "second_input_index": list(self.second[1])} if self.second else {}),
            **({"batch_index": self.batch_index} if self.batch_index is not None else {}),
        }


@dataclass(frozen=True)
class PairResult:
    """One pair of routes compared entry by entry."""

    routes: tuple[str, str]
    max_abs_error: float
    max_rel_error: float
    n_bad: int
    worst: Entry
    ok: bool

    def to_dict(self) -> dict:
        return {
            "routes": list(self.routes),
            "max_abs_error": _json_float(self.max_abs_error),
            "max_rel_error": _json_float(self.max_rel_error),
            "entries_over_tolerance": self.n_bad,
            "worst": self.worst.to_dict(),
            "ok": self.ok,
        }


@dataclass(frozen=True)
class RunSummary:
    """A run over many points (`check(f, samples=...)`, `verify`): counts, the worst point and the
    minimal counterexample, each as the Report of that one point."""

    samples: int
    seed: int
    points_tried: int
    passed: int
    failed: int
    inconclusive: int
    #: reason of the inconclusive points -> how many points gave it (sorted by reason)
    inconclusive_reasons: dict[str, int]
    #: the input roles the points were drawn with (`symjac.strategies.domain`), per shape tried
    inputs: dict[str, str]
    #: the point with the largest error relative to its tolerance (None when no point compared routes)
    worst: "Report | None"
    #: the shrunk failing point, when one failed
    counterexample: "Report | None"

    def to_dict(self) -> dict:
        return {
            "samples": self.samples,
            "seed": self.seed,
            "points_tried": self.points_tried,
            "passed": self.passed,
            "failed": self.failed,
            "inconclusive": self.inconclusive,
            "inconclusive_reasons": dict(self.inconclusive_reasons),
            "inputs": dict(self.inputs),
            "worst": self.worst.to_dict() if self.worst else None,
            "counterexample": self.counterexample.to_dict() if self.counterexample else None,
        }


@dataclass(frozen=True, eq=False)
class RouteMatrices:
    """Every route's Jacobian at the checked point, kept for plots (`Report.plot()`).

    Not part of `Report.to_dict()`, whose schema stays stable and JSON-safe. `values[route]` and
    `nonzero` are `(out_size, in_size)` arrays with the inputs side by side, in declaration order.
    """

    out_shape: tuple[int, ...]
    inputs: tuple[tuple[str, tuple[int, ...]], ...]  # (name, shape) of each input
    values: dict[str, Any]  # route -> float64 ndarray
    nonzero: Any  # bool ndarray: the exact Jacobian's structural nonzeros


@dataclass(frozen=True)
class Report(Printable):
    """The result of a cross-check.

    `verdict` is "pass", "fail" or "inconclusive" (with `reason`). `pairs` has one result per pair
    of routes; `worst` is the entry furthest over (or closest to) its tolerance, with the value of
    every route there; `odd_one_out` names the route that disagrees with all the others, when one
    does. `reproduce` is a line of Python that runs the same check again.
    """

    verdict: str
    reason: str
    function: str
    dtype: str
    point: dict[str, Any]
    routes: tuple[str, ...]
    pairs: tuple[PairResult, ...]
    worst: Entry | None
    odd_one_out: str | None
    tolerance: dict[str, Any]
    reproduce: str
    points_tried: int = 1
    notes: tuple[str, ...] = field(default=())
    matrices: RouteMatrices | None = field(default=None, repr=False, compare=False)
    #: set for a run over many points: the counts, worst point and minimal counterexample
    run: RunSummary | None = None
    #: "check" (`symjac.check`) or "verify" (`symjac.verify`)
    task: str = "check"

    @property
    def ok(self) -> bool:
        """True only for a pass (an inconclusive check is not ok)."""
        return self.verdict == "pass"

    def latex(self, *, mode: str = "plain") -> str:
        """The report as a LaTeX table (verdict, one row per pair of routes, the worst entry)."""
        return self._latex(mode=mode)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {"text/plain": str(self), "text/markdown": self._markdown(), "text/latex": self._repr_latex_()}

    def plot(self, path=None, *, dpi: int = 100):
        """Draw the Jacobian's sparsity pattern and, per pair of routes, a heatmap of the error with
        the worst entry marked; save a PNG to `path` if given. Returns the matplotlib Figure.

        Needs matplotlib (`pip install symjac[plot]`).
        """
        return self._figure(path, dpi=dpi)

    def raise_if_failed(self, *, inconclusive: str = "raise") -> "Report":
        """Raise unless the check passed; return the report when it did.

        - a `fail` raises `JacobianMismatchError` (an AssertionError) with this report;
        - an `inconclusive` report is your choice: `inconclusive="raise"` (the default) raises
          `InconclusiveCheckError` (also an AssertionError, but not a mismatch), `"pass"` returns it.
        """
        if inconclusive not in INCONCLUSIVE_CHOICES:
            raise InvalidArgumentError(
                f"inconclusive: must be one of {INCONCLUSIVE_CHOICES}; received {inconclusive!r}")
        if self.verdict == "fail":
            raise JacobianMismatchError(str(self))
        if self.verdict == "inconclusive" and inconclusive == "raise":
            raise InconclusiveCheckError(str(self))
        return self

    def to_dict(self) -> dict:
        """A JSON-safe dict (no NaN or inf: those become strings) with a stable schema."""
        return {
            "schema": SCHEMA,
            "verdict": self.verdict,
            "reason": self.reason,
            "function": self.function,
            "dtype": self.dtype,
            "point": self.point,
            "points_tried": self.points_tried,
            "routes": list(self.routes),
            "pairs": [p.to_dict() for p in self.pairs],
            "worst": self.worst.to_dict() if self.worst else None,
            "task": self.task,
            "odd_one_out": self.odd_one_out.split(", ") if self.odd_one_out else None,
            "tolerance": {k: _json_float(v) if isinstance(v, float) else v for k, v in self.tolerance.items()},
            "reproduce": self.reproduce,
            "notes": list(self.notes),
            "run": self.run.to_dict() if self.run else None,
        }

    def headline(self) -> str:
        """The first line: task, function, point(s), verdict."""
        if self.run is not None:
            r = self.run
            return (
                f"symjac {self.task} of {self.function} over {r.points_tried} {self.dtype} points "
                f"(samples={r.samples}, seed={r.seed}): {self.verdict.upper()}"
            )
        return f"symjac {self.task} of {self.function} at a {self.dtype} point: {self.verdict.upper()}"

    def run_lines(self) -> list[str]:
        """For a run over many points: the counts and the featured point (minimal counterexample,
        else the worst point), without indentation; empty for a single point."""
        if self.run is None:
            return []
        r = self.run
        lines = [
            f"points: {r.passed} passed, {r.failed} failed, {r.inconclusive} inconclusive; "
            f"inputs drawn as {', '.join(f'{k}: {v}' for k, v in r.inputs.items())}"
        ]
        shown = "minimal counterexample" if r.counterexample is not None else "worst point"
        featured = r.counterexample or r.worst
        if featured is not None:
            lines.append(f"{shown}: {_point_text(featured.point)}")
        return lines

    def point_reproduce(self) -> str | None:
        """For a run: the line that reproduces its featured point alone (None without one)."""
        featured = (self.run.counterexample or self.run.worst) if self.run is not None else None
        return featured.reproduce if featured is not None else None

    def __str__(self) -> str:
        lines = [self.headline()] + [f"  {line}" for line in self.run_lines()]
        if self.reason:
            lines.append(f"  reason: {self.reason}")
        if self.pairs:
            width = max(len(" vs ".join(p.routes)) for p in self.pairs)
            lines.append(f"  {'routes':<{width}}  {'max abs err':>11}  {'max rel err':>11}  {'tol at worst':>12}  ok")
            for p in self.pairs:
                ok = "yes" if p.ok else f"NO ({entries_text(p.n_bad)})"
                lines.append(
                    f"  {' vs '.join(p.routes):<{width}}  {_fmt(p.max_abs_error):>11}  "
                    f"{_fmt(p.max_rel_error):>11}  {_fmt(p.worst.tolerance):>12}  {ok}"
                )
        if self.worst is not None:
            values = ", ".join(f"{k}={v!r}" for k, v in self.worst.values.items())
            lines.append(f"  worst entry: {self.worst.label()}: {values}")
        if self.verdict == "fail":
            lines.append(f"  odd one out: {self.odd_one_out or 'undetermined (several routes disagree)'}")
        lines.append(
            "  tolerance: per entry, "
            f"{self.tolerance.get('rounding_factor')}*eps*|J| + {self.tolerance.get('conditioning_factor')}*noise "
            f"between exact routes; {self.tolerance.get('fd_factor')}x the FD error estimate against finite differences"
        )
        for note in self.notes:
            lines.append(f"  note: {note}")
        lines.append(f"  reproduce: {self.reproduce}")
        if self.point_reproduce() is not None:
            lines.append(f"  reproduce that point: {self.point_reproduce()}")
        return "\n".join(lines)


def entries_text(n: int) -> str:
    """`1 entry`, `2 entries`."""
    return f"{n} {'entry' if n == 1 else 'entries'}"


def _point_text(point: dict[str, Any]) -> str:
    return ", ".join(f"{name}={value!r}" for name, value in point.items())


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.2e}" if math.isfinite(x) else str(x)


def _json_float(x: float | None):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else ("nan" if math.isnan(x) else ("inf" if x > 0 else "-inf"))
