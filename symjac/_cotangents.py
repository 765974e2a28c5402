"""Cotangents and tangents that mean something: `verify`'s vector-Jacobian and Jacobian-vector checks.

The Jacobian routes of `verify` feed the implementation unit cotangents (`e_k`, one per output
entry) and unit tangents. A backward that ignores `grad_output`, or uses it non-linearly
(`grad_output.abs()`, `grad_output ** 2`), gives the right answer for a unit vector, and for a
scalar output the cotangent is always 1. So `verify` also runs, at every point:

- reverse mode with two cotangents `v1`, `v2` of the output's shape: `vjp(v1)` and `vjp(v2)`
  against `v^T J` of the exact Jacobian (route `impl-vjp`), and linearity,
  `vjp(v1 + v2)` against `vjp(v1) + vjp(v2)` (route `impl-vjp-sum`);
- forward mode (where the implementation supports it) with two tangents `t1`, `t2` of the inputs'
  shapes: `jvp(t)` against `J t` (route `impl-jvp`) and `jvp(t1 + t2)` against
  `jvp(t1) + jvp(t2)` (route `impl-jvp-sum`).

Entries are drawn from `VALUES` with random signs: readable, exact in float32 and float64, never 0
and never 1. They are seeded by `verify`'s `seed` and the point itself (`draw`), so the same point
gets the same vectors in a run and in its `at=` reproduction; every report states them.

Tolerances come from the Jacobian's per-entry bounds (`symjac._tolerance`): the bound on an entry
of `v^T J` is `sum_k |v_k| * bound[k, c]`, on `J t` it is `sum_c bound[k, c] * |t_c|`.
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["VALUES", "SEED", "draw", "point_key", "describe_vector"]

#: Magnitudes of cotangent and tangent entries (each with a random sign).
VALUES = (0.5, 0.75, 1.25, 1.5, 2.0)
#: Mixed into every draw, so that cotangents are not correlated with other seeded streams.
SEED = 0x51C07A


def draw(size: int, *, seed: int, point_key: bytes, stream: int) -> np.ndarray:
    """`size` entries from `VALUES` with random signs, for verify's `seed`, a point and a stream
    (0, 1: the two cotangents; 2, 3: the two tangents)."""
    rng = np.random.default_rng([SEED, int(seed), zlib.crc32(point_key), int(stream)])
    magnitudes = rng.choice(np.asarray(VALUES), size=size)
    signs = rng.choice(np.asarray([-1.0, 1.0]), size=size)
    return magnitudes * signs


def point_key(values: dict) -> bytes:
    """The bytes a point's cotangents are seeded by: its values in float64, in input order."""
    return b"".join(np.ascontiguousarray(np.asarray(v, dtype=np.float64)).tobytes() for v in values.values())


def describe_vector(v: np.ndarray, limit: int = 8) -> str:
    flat = [f"{x:g}" for x in np.asarray(v).reshape(-1)]
    shown = ", ".join(flat[:limit]) + (f", ... ({len(flat)} entries)" if len(flat) > limit else "")
    return f"[{shown}]"
