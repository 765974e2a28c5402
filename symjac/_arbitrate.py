"""Arbitration in high precision: the exact Jacobian and value evaluated with mpmath.

When two routes disagree and the third cannot settle it (finite differences too vague to confirm,
or the float evaluation of the exact formula itself in doubt), the disputed entries' SymPy
expressions are evaluated with `sympy.lambdify(..., "mpmath")` at `DIGITS` significant digits, at
the very same point (its float values are exact binary numbers, taken exactly). The route within
its tolerance of that value is right; the others are the odd ones out.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import mpmath
import numpy as np
import sympy

from ._floats import all_finite

__all__ = ["DIGITS", "exact_jacobian_entries", "exact_values", "arbitrate_report", "entry_cell", "repair_nonfinite"]

#: Significant decimal digits of the arbitration.
DIGITS = 50


def _symbols(f) -> list[sympy.Symbol]:
    return [s for inp in f.inputs for s in inp.flat_symbols]


def _compiled(f, key: tuple, expr: sympy.Expr):
    return f.cached(
        ("mpmath",) + key,
        lambda: sympy.lambdify(_symbols(f), expr, modules=[_mpmath_helpers(), "mpmath"], dummify=True, docstring_limit=0),
    )


def _mpmath_helpers() -> dict:
    from ._determinant import MPMATH_HELPERS as DETERMINANT
    from ._stable import MPMATH_HELPERS

    return {**MPMATH_HELPERS, **DETERMINANT}


def _arguments(f, values: Mapping[str, Any]) -> list:
    return [
        mpmath.mpf(float(v))
        for inp in f.inputs
        for v in np.asarray(values[inp.name], dtype=np.float64).reshape(-1)
    ]


def _to_float(value) -> float:
    if isinstance(value, mpmath.mpc) or isinstance(value, complex):
        return math.nan if value.imag != 0 else float(value.real)
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan


def _nonzeros(f, name: str) -> dict[tuple[int, int], sympy.Expr]:
    def build():
        jac = f.jacobian(name)
        return {(int(r), int(c)): e for r, c, e in zip(jac.rows, jac.cols, jac.entries)}

    return f.cached(("mpmath-nonzeros", name), build)


def exact_jacobian_entries(f, values: Mapping[str, Any], cells: Sequence[tuple[int, str, int]], *, digits: int = DIGITS) -> list[float]:
    """The exact Jacobian at `values` for each `(flat output index, input name, flat input index)`,
    evaluated in `digits` digits and rounded once to float64."""
    args = _arguments(f, values)
    out = []
    with mpmath.workdps(digits):
        for row, name, col in cells:
            expr = _nonzeros(f, name).get((row, col))
            if expr is None:
                out.append(0.0)
                continue
            out.append(_to_float(_compiled(f, ("jacobian", name, row, col), expr)(*args)))
    return out


def exact_values(f, values: Mapping[str, Any], rows: Sequence[int], *, digits: int = DIGITS) -> list[float]:
    """The exact output at `values` for each flat output index, in `digits` digits, rounded to float64."""
    args = _arguments(f, values)
    flat = f.output.reshape(-1)
    with mpmath.workdps(digits):
        return [_to_float(_compiled(f, ("value", int(r)), flat[int(r)])(*args)) for r in rows]


#: Beyond this many non-finite entries, the float64 code's overflow is not repaired with mpmath.
MAX_REPAIRED = 256


def repair_nonfinite(f, values: Mapping[str, Any], matrix: np.ndarray, *, jacobian: bool):
    """Where symjac's own float64 code gave inf or nan (`matrix`: the Jacobian `(out, in)`, all
    inputs side by side, or the flat output), the exact value in `DIGITS` digits instead.

    Returns `(repaired matrix, None)`, or `(matrix, reason)` when it cannot be repaired: a value
    is not real there (mathematically outside the domain), or it is too large for float64 (symjac
    cannot represent it), or there are more than `MAX_REPAIRED` such entries."""
    if all_finite(matrix):  # the common case: nothing to repair
        return matrix, None
    bad = np.argwhere(~np.isfinite(matrix))
    if len(bad) > MAX_REPAIRED:
        return matrix, (
            f"symjac's generated float64 code overflows at {len(bad)} entries here (more than "
            f"{MAX_REPAIRED} to re-evaluate in high precision)"
        )
    columns = [(inp.name, q) for inp in f.inputs for q in range(inp.size)]
    args = _arguments(f, values)
    out = matrix.copy()
    with mpmath.workdps(DIGITS):
        for index in bad:
            index = tuple(int(i) for i in index)
            if jacobian:
                row, col = index
                name, q = columns[col]
                expr = _nonzeros(f, name).get((row, q))
                key = ("jacobian", name, row, q)
            else:
                row = index[0]
                expr = f.output.reshape(-1)[row]
                key = ("value", row)
            if expr is None:
                out[index] = 0.0
                continue
            try:
                value = _compiled(f, key, expr)(*args)
            except (ZeroDivisionError, ValueError, OverflowError, TypeError):
                value = mpmath.nan
            what = "the exact Jacobian entry" if jacobian else "the exact value"
            where = f"{index}" if jacobian else f"out.flat[{row}]"
            if isinstance(value, mpmath.mpc) and value.imag != 0 or not mpmath.isfinite(value):
                return matrix, f"outside the domain: {what} {where} is not a finite real number here"
            number = _to_float(value)
            if not math.isfinite(number):
                return matrix, (
                    f"{what} {where} is about {mpmath.nstr(value, 5)}, beyond float64: symjac cannot "
                    "represent it (not a fault of any route)"
                )
            out[index] = number
    return out, None


def entry_cell(f, entry) -> tuple[int, str, int]:
    """`(flat output index, input name, flat input index)` of a report's `Entry`."""
    row = int(np.ravel_multi_index(entry.output_index, f.out_shape)) if f.out_shape else 0
    shape = f.input(entry.input_name).shape
    col = int(np.ravel_multi_index(entry.input_index, shape)) if shape else 0
    return row, entry.input_name, col


def arbitrate_report(f, report, *, fd_route: str = "finite-diff", exact_entry=None):
    """A failing check that finite differences cannot settle, settled by mpmath.

    It applies when the check failed and either its odd one out is undetermined, or only rounding
    routes disagree while finite differences agree with all of them (a disagreement below what
    they can resolve: `1 - tanh(19)**2` is 0 in float64, its true value about 1e-16). At the worst
    entry of each failing pair the exact Jacobian is evaluated in `DIGITS` digits. Routes farther
    than the pair's tolerance from it are the odd one out; when every route is within it, the
    disagreement was rounding on both sides and the check passes. A note states the value. Other
    reports are returned unchanged. `exact_entry(entry)` evaluates the exact value of a report's
    entry in high precision (default: the Jacobian's, `exact_jacobian_entries`).
    """
    failing = [p for p in report.pairs if not p.ok]
    if any(note.startswith("arbitrated with mpmath") for note in report.notes):
        return report
    if report.verdict != "fail" or not failing or any(p.worst.tolerance is None for p in failing):
        return report
    fd_blind = all(fd_route not in p.routes for p in failing)
    if report.odd_one_out is not None and not fd_blind:
        return report
    outside: list[str] = []
    notes = []
    for pair in failing:
        entry = pair.worst
        if exact_entry is None:
            exact = exact_jacobian_entries(f, report.point, [entry_cell(f, entry)])[0]
        else:
            exact = exact_entry(entry)
        off = [r for r in pair.routes if r != fd_route and not abs(entry.values[r] - exact) <= entry.tolerance]
        outside += [r for r in off if r not in outside]
        notes.append(
            f"arbitrated with mpmath at {DIGITS} digits at {entry.label()}: exact value {exact!r}; "
            f"routes farther than the tolerance {entry.tolerance:.2e} from it: {', '.join(off) or 'none'}"
        )
    notes = tuple(report.notes) + tuple(notes)
    if not outside:
        return dataclasses.replace(
            report, verdict="pass",
            reason="", odd_one_out=None,
            notes=notes + ("the routes' disagreement is rounding: each is within its tolerance of the exact value",),
        )
    judged = {r for p in failing for r in p.routes if r != fd_route}
    odd = ", ".join(outside) if len(outside) < len(judged) else None
    return dataclasses.replace(report, odd_one_out=odd, notes=notes)
