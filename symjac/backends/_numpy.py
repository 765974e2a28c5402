"""NumPy backend: forward values and exact Jacobians, batched, in the point's dtype.

Both are evaluated by a plan (`symjac._codegen.EntryPlan`, cached per Function): polynomial entries
as gathers, products and one segmented sum over all their monomials, constants broadcast, the rest
through generated code; the result is one gather from the plan's table of columns (for a Jacobian,
structural zeros read a zero column). No Python loop runs per entry, except over the entries left
to generated code. `compiled_forward` / `compiled_jacobian` compile every entry (kept for the
generated source and for comparisons in the tests).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._codegen import Compiled, EntryPlan, compile_entries, plan_entries
from .._values import Point, coerce_point

__all__ = [
    "compiled_forward",
    "compiled_jacobian",
    "forward_plan",
    "jacobian_plan",
    "forward",
    "jacobian",
    "evaluate_forward",
    "evaluate_jacobian",
]


def _all_symbols(function) -> list:
    return [s for inp in function.inputs for s in inp.flat_symbols]


def compiled_forward(function, backend: str = "numpy") -> Compiled:
    """The forward function's flat entries compiled for `backend` (cached on the Function)."""
    return function.cached(
        ("forward", backend),
        lambda: compile_entries(list(function.output.reshape(-1)), _all_symbols(function), backend),
    )


def compiled_jacobian(jac, backend: str = "numpy") -> Compiled:
    """The Jacobian's structural nonzeros compiled for `backend` (cached on the Function)."""
    return jac.function.cached(
        ("jacobian-code", jac.wrt.name, backend),
        lambda: compile_entries(list(jac.entries), _all_symbols(jac.function), backend),
    )


def forward_plan(function, backend: str = "numpy") -> EntryPlan:
    """How the forward's flat entries are evaluated (cached on the Function); see `EntryPlan`."""
    return function.cached(
        ("forward-plan", backend),
        lambda: plan_entries(list(function.output.reshape(-1)), _all_symbols(function), backend),
    )


def jacobian_plan(jac, backend: str = "numpy") -> tuple[EntryPlan, np.ndarray]:
    """How the Jacobian's nonzeros are evaluated, and for each dense entry its column of the table.

    Cached on the Function. The dense index map points structural zeros at the zero column, so the
    dense Jacobian is one gather from the table.
    """

    def build():
        plan = plan_entries(list(jac.entries), _all_symbols(jac.function), backend)
        out_size = math.prod(jac.function.out_shape)
        dense = np.full(out_size * jac.wrt.size, plan.zero_column, dtype=np.int64)
        dense[jac.rows * jac.wrt.size + jac.cols] = plan.take
        return plan, dense

    return jac.function.cached(("jacobian-plan", jac.wrt.name, backend), build)


def _arguments(function, point: Point) -> list[np.ndarray]:
    """One array of the batch shape per scalar input symbol, in declaration order."""
    args = []
    for inp in function.inputs:
        flat = point.values[inp.name].reshape(point.batch_shape + (inp.size,))
        args.extend(flat[..., q] for q in range(inp.size))
    return args


def _assemble(entries: list, batch_shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    out = np.empty(batch_shape + (len(entries),), dtype=dtype)
    for k, entry in enumerate(entries):
        out[..., k] = entry  # broadcasts constants, casts to the point's dtype
    return out


#: Largest monomial-by-point array the polynomial part builds at once (elements); larger batches
#: are evaluated in chunks of points.
_CHUNK_ELEMENTS = 1 << 22


def _polynomials(plan: EntryPlan, x: np.ndarray) -> np.ndarray:
    """The plan's polynomial columns at `x` (`(points, n_inputs)`): `(points, n_polynomials)`."""
    x1 = np.concatenate([x, np.ones(x.shape[:-1] + (1,), dtype=x.dtype)], axis=-1) if plan.degree > 1 else x
    coefs = None if plan.unit_coefs else plan.coefs.astype(x.dtype)
    offsets = None if plan.offsets is None else plan.offsets.astype(x.dtype)
    step = max(1, _CHUNK_ELEMENTS // max(1, len(plan.monomials)))
    out = np.empty((x.shape[0], plan.n_polynomials), dtype=x.dtype)
    for lo in range(0, x.shape[0], step):
        rows = x1[lo : lo + step]
        values = rows[:, plan.monomials[:, 0]]
        for d in range(1, plan.degree):
            values *= rows[:, plan.monomials[:, d]]
        if coefs is not None:
            values *= coefs
        sums = values if plan.one_term_each else np.add.reduceat(values, plan.starts, axis=-1)
        if offsets is not None:
            sums += offsets
        out[lo : lo + step] = sums
    return out


def _table(plan: EntryPlan, function, point: Point) -> np.ndarray:
    """The plan's columns at a point: `batch_shape + (plan.n_columns,)`, in the point's dtype."""
    dtype, batch = point.dtype, point.batch_shape
    x = point.flat(function.input_names)
    parts = [x]
    if plan.n_polynomials:
        flat = x.reshape(-1, plan.n_inputs)
        parts.append(_polynomials(plan, flat).reshape(batch + (plan.n_polynomials,)))
    if len(plan.constants):
        parts.append(np.broadcast_to(plan.constants.astype(dtype), batch + plan.constants.shape))
    if plan.code is not None:
        parts.append(_assemble(plan.code.fn(*_arguments(function, point)), batch, dtype))
    parts.append(np.zeros(batch + (1,), dtype=dtype))
    return np.concatenate(parts, axis=-1)


def forward(function, point: Point) -> np.ndarray:
    """Output values at a validated point: `batch_shape + out_shape`, in the point's dtype."""
    plan = forward_plan(function)
    table = _table(plan, function, point)
    return np.take(table, plan.take, axis=-1).reshape(point.batch_shape + function.out_shape)


def jacobian(jac, point: Point) -> np.ndarray:
    """Exact Jacobian values at a validated point: `batch_shape + jac.shape`, in the point's dtype."""
    plan, dense = jacobian_plan(jac)
    table = _table(plan, jac.function, point)
    return np.take(table, dense, axis=-1).reshape(point.batch_shape + jac.shape)


def evaluate_forward(function, values: dict[str, Any]) -> np.ndarray:
    return forward(function, coerce_point(function.inputs, values))


def evaluate_jacobian(jac, values: dict[str, Any]) -> np.ndarray:
    return jacobian(jac, coerce_point(jac.function.inputs, values))
