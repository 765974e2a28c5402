"""Deterministic points inside every catalog function's domain (for tests of higher derivatives).

All entries in [0.5, 1.5] (positive: log, sqrt, powers; away from the kinks of relu and abs at 0),
square matrices made diagonally dominant (invertible, det > 0), drawn from a fixed seed.
"""

import numpy as np


def point(f, seed: int = 0, batch: tuple = ()) -> dict:
    rng = np.random.default_rng(seed)
    values = {}
    for inp in f.inputs:
        v = rng.uniform(0.5, 1.5, size=batch + inp.shape)
        if len(inp.shape) == 2 and inp.shape[0] == inp.shape[1]:
            v = v + inp.shape[0] * np.eye(inp.shape[0])
        values[inp.name] = v
    return values
