"""The reference the entry-plan tests compare against: a Jacobian from its own per-entry generated
code (`compiled_jacobian`, no plan, no table), in float64, scattered into the dense layout."""

import numpy as np

from symjac.backends import _numpy as numpy_backend


def per_entry_jacobian(jac, point: dict, batch: tuple) -> np.ndarray:
    """`jac` at `point` (each input `batch + shape`), entry by entry, as `batch + jac.shape`."""
    code = numpy_backend.compiled_jacobian(jac)
    args = [np.asarray(point[inp.name], dtype=np.float64).reshape(batch + (inp.size,))[..., q]
            for inp in jac.function.inputs for q in range(inp.size)]
    dense = np.zeros(batch + (int(np.prod(jac.function.out_shape, dtype=np.int64)) * jac.wrt.size,))
    for r, c, v in zip(jac.rows, jac.cols, code.fn(*args)):
        dense[..., int(r) * jac.wrt.size + int(c)] = v
    return dense.reshape(batch + jac.shape)


def assert_chunks_equal_one_pass(make, point: dict, chunk_elements: int, monkeypatch) -> None:
    """A fresh Function from `make()` evaluated jointly at `point` gives the same arrays, bit for bit,
    when the backend works in chunks of `chunk_elements` as in one pass."""
    whole = make().jacobians().evaluate(**point)
    monkeypatch.setattr(numpy_backend, "_CHUNK_ELEMENTS", chunk_elements)
    chunked = make().jacobians().evaluate(**point)
    for name in whole:
        np.testing.assert_array_equal(chunked[name], whole[name])
