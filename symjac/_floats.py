"""NumPy's few element-wise functions, for one entry in Python floats.

symjac's per-entry rules (finite differences' Richardson table and its error estimate,
`_tolerance`'s bounds, `_engine`'s noise and comparison) are written once, as code generic over a
namespace `xp`: `numpy` itself for whole arrays, or this module for one entry at a time, where
NumPy's fixed cost per call (about a microsecond) is most of the work (a check of `x * y`). Each
function gives what NumPy's gives on one finite float64 (and on NaN where noted), so that both
namespaces give the same numbers bit for bit (`tests/test_check_fast_paths.py`). The arithmetic
operators, comparisons, `&`, `|` and the builtin `abs` are already generic; `~` is not (on a Python
bool it is an int): generic code writes `xp.logical_not`.
"""

from __future__ import annotations

import math
import operator

import numpy as np

__all__ = ["fmax", "maximum", "where", "logical_not", "isfinite", "sign", "any", "zeros_like", "frexp", "ldexp",
           "all_finite", "FEW"]

#: `all_finite` tests arrays of at most this many entries in Python floats.
FEW = 16


def all_finite(array: np.ndarray) -> bool:
    """`bool(numpy.isfinite(array).all())` of a real NumPy array: up to `FEW` entries in Python
    floats, one `math.isfinite` each (NumPy's ufunc and reduction took about 3x that there, and
    more between other work, where a check of `x * y` makes half a dozen such tests), else NumPy's."""
    if array.size <= FEW:
        return all(map(math.isfinite, array.flat))
    return bool(np.isfinite(array).all())


def fmax(a: float, b: float) -> float:
    """`numpy.fmax`: the larger, ignoring a NaN (`a` on a tie, as NumPy)."""
    return b if b > a or a != a else a


def maximum(a: float, b: float) -> float:
    """`numpy.maximum`: the larger, NaN if either is (`a` on a tie, as NumPy)."""
    return a if a >= b or a != a else b


def where(condition: bool, a, b):
    """`numpy.where` of one entry (both branches computed already, as NumPy's are)."""
    return a if condition else b


logical_not = operator.not_
isfinite = math.isfinite
frexp, ldexp = math.frexp, math.ldexp  # numpy.frexp, numpy.ldexp of one entry
any = bool  # noqa: A001 - `numpy.any` of one entry


def sign(a: float) -> float:
    """`numpy.sign` of a number that is not NaN."""
    return float((a > 0) - (a < 0))


def zeros_like(a: float) -> float:
    """`numpy.zeros_like` of one entry."""
    return 0.0
