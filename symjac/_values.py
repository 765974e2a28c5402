"""Numeric values at a point: validation, batch shapes and the dtype rule, decided here once.

The dtype rule: float32 stays float32 and float64 stays float64; anything else that is real and
numeric (Python floats and ints, NumPy integers, float16, torch's bfloat16, nested lists) becomes
float64. Several inputs at one point share the widest float dtype among them. Complex, boolean and
object values are refused.

Every numeric value symjac takes (points, constants, a caller's Jacobian) passes `coerce_array`,
the one validator. Torch tensors are read through their values: the conjugate and negative bits
are resolved, bfloat16 becomes float64, `requires_grad` is dropped for points (a constant that
requires grad is refused: it would get no derivative). Tensors without plain values (meta,
sparse, nested, other layouts) are refused, and so are `torch.Size` (a shape, not values), NumPy
masked arrays with masked entries (their masked values are not meant to be used) and empty
batches.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ._errors import InvalidArgumentError, ShapeError
from ._floats import all_finite

__all__ = ["Point", "coerce_point", "coerce_array", "float_dtype", "resolve_dtype", "FLOAT_DTYPES"]

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _torch_to_numpy(value: Any, *, argument: str, constant: bool) -> np.ndarray:
    """A torch value's numbers as a NumPy array, or a clear error for what has none."""
    kind = type(value).__name__
    if not hasattr(value, "detach"):  # torch.Size, and whatever else torch has that is not a tensor
        what = "a shape, not values" if kind == "Size" else "not a tensor"
        raise InvalidArgumentError(f"{argument}: must be numbers; received torch.{kind} ({what})")
    if getattr(value, "is_nested", False):
        raise InvalidArgumentError(f"{argument}: nested tensors are not accepted; received a nested tensor")
    if getattr(value, "is_meta", False) or str(getattr(value, "device", "")) == "meta":
        raise InvalidArgumentError(f"{argument}: a tensor on the meta device has no values; received one of "
                                   f"shape {tuple(value.shape)}")
    layout = str(getattr(value, "layout", "torch.strided"))
    if layout != "torch.strided":
        raise InvalidArgumentError(
            f"{argument}: only dense (strided) tensors are accepted; received layout {layout} "
            "(pass value.to_dense())"
        )
    if constant and getattr(value, "requires_grad", False):
        raise InvalidArgumentError(
            f"{argument}: a tensor that requires grad is a constant here and gets no derivative; declare it as "
            "an input to differentiate by it, or pass value.detach()"
        )
    tensor = value.detach()
    if tensor.is_complex():
        tensor = tensor.resolve_conj()
    tensor = tensor.resolve_neg()
    if str(tensor.dtype) == "torch.bfloat16":  # NumPy has no bfloat16; every bfloat16 is a float64
        tensor = tensor.double()
    try:
        return tensor.cpu().numpy()
    except (RuntimeError, TypeError) as error:
        raise InvalidArgumentError(f"{argument}: cannot read this tensor's values ({error})") from None


def _to_numpy(value: Any, *, argument: str, constant: bool = False) -> np.ndarray:
    kind = type(value)
    if kind is not np.ndarray and kind is not np.float64 and kind is not float:  # those: neither torch's nor masked
        if kind.__module__.startswith("torch"):
            value = _torch_to_numpy(value, argument=argument, constant=constant)
        if isinstance(value, np.ma.MaskedArray):
            if np.ma.getmaskarray(value).any():
                index = tuple(int(i) for i in np.argwhere(np.ma.getmaskarray(value))[0])
                raise InvalidArgumentError(
                    f"{argument}: a masked array with masked entries (the first at index {index}); its masked "
                    "values would be used as they are: pass value.filled(...) or plain values"
                )
            value = np.ma.getdata(value)
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


def coerce_array(value: Any, shape: tuple[int, ...], *, argument: str, constant: bool = False) -> np.ndarray:
    """`value` as a finite NumPy array whose trailing dims are `shape` (leading dims: a batch).
    `constant`: the value is a Function's constant (a tensor that requires grad is refused)."""
    array = _to_numpy(value, argument=argument, constant=constant)
    if array.dtype not in FLOAT_DTYPES:
        array = array.astype(np.float64)
    if array.ndim < len(shape) or array.shape[array.ndim - len(shape):] != shape:
        raise ShapeError(
            f"{argument}: expected shape {shape} (optionally with leading batch dims); "
            f"received shape {array.shape}"
        )
    # one test in the usual case (a few entries: in Python floats); the first bad index only on failure
    if not all_finite(array):
        bad = ~np.isfinite(array)
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
    dtypes = {a.dtype for a in arrays.values()}
    if len(dtypes) == 1 and next(iter(dtypes)) in FLOAT_DTYPES:  # one float dtype already: it (no NumPy call)
        return dtypes.pop()
    return np.result_type(*dtypes)


class Point:
    """Validated values for every input of a Function: same dtype, a common batch shape. `rows`:
    the same values as one `(points, in_size)` array, inputs side by side in declaration order,
    when the point was made from one (None otherwise), for the backends to read in one piece."""

    __slots__ = ("values", "dtype", "batch_shape", "rows")

    def __init__(self, values: dict[str, np.ndarray], dtype: np.dtype, batch_shape: tuple[int, ...],
                 rows: np.ndarray | None = None):
        self.values = values
        self.dtype = dtype
        self.batch_shape = batch_shape
        self.rows = rows

    def as_dtype(self, dtype: np.dtype) -> "Point":
        return Point({k: v.astype(dtype) for k, v in self.values.items()}, np.dtype(dtype), self.batch_shape)

    def flat(self, names: tuple[str, ...]) -> np.ndarray:
        """All inputs flattened and concatenated along the last axis: (batch..., total_size)."""
        parts = [self.values[n].reshape(self.batch_shape + (-1,)) for n in names]
        return np.concatenate(parts, axis=-1) if parts else np.zeros(self.batch_shape + (0,), self.dtype)


def _read_only(array: np.ndarray) -> np.ndarray:
    """A read-only view of `array` (what `np.broadcast_to` gives when the shape is already right)."""
    view = array.view()
    view.flags.writeable = False
    return view


#: Keywords a user may pass to `check` as if they were options; the message says where they go.
_TOLERANCE_WORDS = frozenset({"rtol", "atol", "tol", "eps", "epsilon", "rel_tol", "abs_tol"})


def coerce_point(inputs, values: Mapping[str, Any], *, function_name: str = "f") -> Point:
    """Check `values` against the declared `inputs` (a sequence of `Input`) and build a Point."""
    declared = {inp.name: inp for inp in inputs}
    same = values.keys() == declared.keys()  # the usual case: nothing unknown, nothing missing
    unknown = [] if same else sorted(set(values) - set(declared))
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
    missing = [] if same else [name for name in declared if name not in values]
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
    for (name, array), batch in zip(arrays.items(), batches):
        if 0 in batch:
            raise ShapeError(
                f"{name}: an empty batch has no point to evaluate; received shape {array.shape} "
                f"(batch {batch}, input shape {declared[name].shape})"
            )
    if all(batch == batches[0] for batch in batches):  # one batch shape already (one point: `()`)
        return Point({n: _read_only(a if a.dtype == dtype else a.astype(dtype)) for n, a in arrays.items()}, dtype,
                     tuple(batches[0]) if batches else ())
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
