"""NumPy backend: forward values and exact Jacobians from generated code, batched, dtype kept."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._codegen import Compiled, compile_entries
from .._values import Point, coerce_point

__all__ = ["compiled_forward", "compiled_jacobian", "forward", "jacobian", "evaluate_forward", "evaluate_jacobian"]


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


def forward(function, point: Point) -> np.ndarray:
    """Output values at a validated point: `batch_shape + out_shape`, in the point's dtype."""
    entries = compiled_forward(function).fn(*_arguments(function, point))
    return _assemble(entries, point.batch_shape, point.dtype).reshape(point.batch_shape + function.out_shape)


def jacobian(jac, point: Point) -> np.ndarray:
    """Exact Jacobian values at a validated point: `batch_shape + jac.shape`, in the point's dtype."""
    nonzeros = _assemble(compiled_jacobian(jac).fn(*_arguments(jac.function, point)), point.batch_shape, point.dtype)
    out_size = int(np.prod(jac.function.out_shape, dtype=np.int64))
    dense = np.zeros(point.batch_shape + (out_size * jac.wrt.size,), dtype=point.dtype)
    dense[..., jac.rows * jac.wrt.size + jac.cols] = nonzeros
    return dense.reshape(point.batch_shape + jac.shape)


def evaluate_forward(function, values: dict[str, Any]) -> np.ndarray:
    return forward(function, coerce_point(function.inputs, values))


def evaluate_jacobian(jac, values: dict[str, Any]) -> np.ndarray:
    return jacobian(jac, coerce_point(jac.function.inputs, values))
