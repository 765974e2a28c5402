"""Numeric values at a point: validation, batch shapes and the dtype rule, decided here once.

The dtype rule: float32 stays float32 and float64 stays float64; anything else that is real and
numeric (Python floats and ints, NumPy integers, nested lists) becomes float64. Several inputs at
one point share the widest float dtype among them. Complex, boolean and object values are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ._errors import InvalidArgumentError, ShapeError

__all__ = ["Point", "coerce_point", "coerce_array", "float_dtype", "resolve_dtype", "FLOAT_DTYPES"]

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _to_numpy(value: Any, *, argument: str) -> np.ndarray:
    if type(value).__module__.startswith("torch"):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:
        raise InvalidArgumentError(
            f"{argument}: must be a number or a nested list/array of numbers; "
            f"received {type(value).__name__} ({error})"
        ) from None
    if array.dtype.kind == "b" or array.dtype.kind not in "fiu":
        raise InvalidArgumentError(
            f"{argument}: must hold real numbers (float or int); received dtype {array.dtype}"
        )
    return array


def coerce_array(value: Any, shape: tuple[int, ...], *, argument: str) -> np.ndarray:
    """`value` as a finite NumPy array whose trailing dims are `shape` (leading dims: a batch)."""
    array = _to_numpy(value, argument=argument)
    if array.dtype not in FLOAT_DTYPES:
        array = array.astype(np.float64)
    if array.ndim < len(shape) or array.shape[array.ndim - len(shape):] != shape:
        raise ShapeError(
            f"{argument}: expected shape {shape} (optionally with leading batch dims); "
            f"received shape {array.shape}"
        )
    bad = ~np.isfinite(array)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InvalidArgumentError(
            f"{argument}: values must be finite; received {array[index]} at index {index}"
        )
    return array


def float_dtype(dtype: Any, *, argument: str = "dtype") -> np.dtype:
    """`dtype` as float32 or float64, the only dtypes a point is evaluated in."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved not in FLOAT_DTYPES:
        raise InvalidArgumentError(f"{argument}: must be float32 or float64; received {dtype!r}")
    return resolved


def resolve_dtype(arrays: Mapping[str, np.ndarray]) -> np.dtype:
    """The one dtype a point is evaluated in: the widest float dtype among its arrays."""
    if not arrays:
        return np.dtype(np.float64)
    return np.result_type(*(a.dtype for a in arrays.values()))


class Point:
    """Validated values for every input of a Function: same dtype, a common batch shape."""

    __slots__ = ("values", "dtype", "batch_shape")

    def __init__(self, values: dict[str, np.ndarray], dtype: np.dtype, batch_shape: tuple[int, ...]):
        self.values = values
        self.dtype = dtype
        self.batch_shape = batch_shape

    def as_dtype(self, dtype: np.dtype) -> "Point":
        return Point({k: v.astype(dtype) for k, v in self.values.items()}, np.dtype(dtype), self.batch_shape)

    def flat(self, names: tuple[str, ...]) -> np.ndarray:
        """All inputs flattened and concatenated along the last axis: (batch..., total_size)."""
        parts = [self.values[n].reshape(self.batch_shape + (-1,)) for n in names]
        return np.concatenate(parts, axis=-1) if parts else np.zeros(self.batch_shape + (0,), self.dtype)


#: Keywords a user may pass to `check` as if they were options; the message says where they go.
_TOLERANCE_WORDS = frozenset({"rtol", "atol", "tol", "eps", "epsilon", "rel_tol", "abs_tol"})


def coerce_point(inputs, values: Mapping[str, Any], *, function_name: str = "f") -> Point:
    """Check `values` against the declared `inputs` (a sequence of `Input`) and build a Point."""
    declared = {inp.name: inp for inp in inputs}
    unknown = sorted(set(values) - set(declared))
    if unknown:
        tolerance_like = [n for n in unknown if n in _TOLERANCE_WORDS]
        hint = (
            f"; {tolerance_like[0]!r} is not an option: tolerances are set with "
            "tolerance=symjac.ToleranceModel(...)" if tolerance_like else ""
        )
        raise InvalidArgumentError(
            f"values: {function_name} has no input named {', '.join(map(repr, unknown))}; "
            f"its inputs are {', '.join(declared) or '(none)'}{hint}"
        )
    missing = [name for name in declared if name not in values]
    if missing:
        raise InvalidArgumentError(
            f"values: missing a value for input {', '.join(map(repr, missing))} of {function_name}; "
            f"pass it as a keyword, e.g. {missing[0]}=..."
        )
    arrays = {
        name: coerce_array(values[name], inp.shape, argument=name) for name, inp in declared.items()
    }
    dtype = resolve_dtype(arrays)
    batches = [a.shape[: a.ndim - len(declared[n].shape)] for n, a in arrays.items()]
    try:
        batch_shape = np.broadcast_shapes(*batches) if batches else ()
    except ValueError:
        raise ShapeError(
            "values: the leading batch dims of the inputs do not broadcast; received "
            + ", ".join(f"{n}: {a.shape}" for n, a in arrays.items())
        ) from None
    arrays = {
        n: np.broadcast_to(a.astype(dtype, copy=False), batch_shape + declared[n].shape)
        for n, a in arrays.items()
    }
    return Point(arrays, dtype, tuple(batch_shape))
