"""`Report`: what a check found, as data. Readable with `str()`, machine-readable with `to_dict()`.

A Report is always returned; raising is a separate, explicit call (`report.raise_if_failed()`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ._errors import JacobianMismatchError

__all__ = ["Report", "PairResult", "Entry", "VERDICTS", "SCHEMA"]

VERDICTS = ("pass", "fail", "inconclusive")
SCHEMA = "symjac.report/1"


@dataclass(frozen=True)
class Entry:
    """One Jacobian entry: output index, input name and index, and every route's value there."""

    output_index: tuple[int, ...]
    input_name: str
    input_index: tuple[int, ...]
    values: dict[str, float]
    tolerance: float | None = None

    def label(self) -> str:
        out = ", ".join(map(str, self.output_index))
        inp = ", ".join(map(str, self.input_index))
        return f"d out[{out}] / d {self.input_name}[{inp}]"

    def to_dict(self) -> dict:
        return {
            "output_index": list(self.output_index),
            "input": self.input_name,
            "input_index": list(self.input_index),
            "values": {k: _json_float(v) for k, v in self.values.items()},
            "tolerance": _json_float(self.tolerance),
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
class Report:
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

    @property
    def ok(self) -> bool:
        """True only for a pass (an inconclusive check is not ok)."""
        return self.verdict == "pass"

    def raise_if_failed(self) -> "Report":
        """Raise `JacobianMismatchError` (an AssertionError) with this report unless it passed."""
        if self.verdict != "pass":
            raise JacobianMismatchError(str(self))
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
            "odd_one_out": self.odd_one_out,
            "tolerance": {k: _json_float(v) if isinstance(v, float) else v for k, v in self.tolerance.items()},
            "reproduce": self.reproduce,
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        head = f"symjac check of {self.function} at a {self.dtype} point: {self.verdict.upper()}"
        lines = [head]
        if self.reason:
            lines.append(f"  reason: {self.reason}")
        if self.pairs:
            width = max(len(" vs ".join(p.routes)) for p in self.pairs)
            lines.append(f"  {'routes':<{width}}  {'max abs err':>11}  {'max rel err':>11}  {'tol at worst':>12}  ok")
            for p in self.pairs:
                lines.append(
                    f"  {' vs '.join(p.routes):<{width}}  {_fmt(p.max_abs_error):>11}  "
                    f"{_fmt(p.max_rel_error):>11}  {_fmt(p.worst.tolerance):>12}  "
                    f"{'yes' if p.ok else f'NO ({p.n_bad} entries)'}"
                )
        if self.worst is not None:
            values = ", ".join(f"{k}={v!r}" for k, v in self.worst.values.items())
            lines.append(f"  worst entry: {self.worst.label()}: {values}")
        if self.verdict == "fail":
            lines.append(f"  odd one out: {self.odd_one_out or 'undetermined (several routes disagree)'}")
        lines.append(
            "  tolerance: per entry, "
            f"{self.tolerance.get('rounding_factor')}*eps*(|J|+max|J|) + {self.tolerance.get('conditioning_factor')}*noise "
            f"between exact routes; {self.tolerance.get('fd_factor')}x the FD error estimate against finite differences"
        )
        for note in self.notes:
            lines.append(f"  note: {note}")
        lines.append(f"  reproduce: {self.reproduce}")
        return "\n".join(lines)


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.2e}" if math.isfinite(x) else str(x)


def _json_float(x: float | None):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else ("nan" if math.isnan(x) else ("inf" if x > 0 else "-inf"))
