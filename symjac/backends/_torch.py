"""torch backend: the forward function as torch code (autograd graph kept) and autograd Jacobians.

The torch forward is generated from the same SymPy expression as the NumPy one; torch autograd then
differentiates torch's own implementation of each elementary operation: an independent route to
the Jacobian.
"""

from __future__ import annotations

import numpy as np

from .._errors import BackendNotAvailableError
from .._values import Point
from ._numpy import compiled_forward, compiled_jacobian

__all__ = ["torch", "import_torch", "forward", "exact_jacobian", "autograd_jacobians", "MODES"]

#: The autograd modes symjac runs: reverse (jacrev) and forward (jacfwd).
MODES = ("reverse", "forward")


def import_torch():
    try:
        import torch
    except ImportError as error:
        raise BackendNotAvailableError(
            "torch is needed for the autograd routes; install it with `pip install torch` "
            f"(symjac supports torch>=2.2). Import failed with: {error}"
        ) from None
    return torch


def _tensor_dtype(dtype: np.dtype):
    torch = import_torch()
    return {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[np.dtype(dtype)]


def _arguments(function, tensors: dict):
    args = []
    for inp in function.inputs:
        t = tensors[inp.name]
        batch = tuple(t.shape[: t.dim() - len(inp.shape)])
        args.extend(t.reshape(batch + (inp.size,)).unbind(-1))
    return args


def _assemble(entries: list, like):
    torch = import_torch()
    parts = [
        e.to(like.dtype).expand(like.shape) if isinstance(e, torch.Tensor) else torch.full(like.shape, float(e), dtype=like.dtype, device=like.device)
        for e in entries
    ]
    return torch.stack(parts, dim=-1)


def _batch_like(function, tensors: dict):
    inp = function.inputs[0]
    t = tensors[inp.name]
    return t.new_zeros(tuple(t.shape[: t.dim() - len(inp.shape)]))


def forward(function, tensors: dict):
    """The torch forward: `{name: tensor}` -> tensor of `batch_shape + out_shape`, graph kept."""
    entries = compiled_forward(function, "torch").fn(*_arguments(function, tensors))
    like = _batch_like(function, tensors)
    return _assemble(entries, like).reshape(tuple(like.shape) + function.out_shape)


def exact_jacobian(jac, tensors: dict):
    """The exact Jacobian evaluated by generated torch code: `batch_shape + jac.shape`."""
    torch = import_torch()
    function = jac.function
    like = _batch_like(function, tensors)
    nonzeros = _assemble(compiled_jacobian(jac, "torch").fn(*_arguments(function, tensors)), like)
    out_size = int(np.prod(function.out_shape, dtype=np.int64))
    dense = nonzeros.new_zeros(tuple(like.shape) + (out_size * jac.wrt.size,))
    index = torch.as_tensor(jac.rows * jac.wrt.size + jac.cols, device=dense.device)
    dense = dense.index_copy(-1, index, nonzeros) if len(jac.rows) else dense
    return dense.reshape(tuple(like.shape) + jac.shape)


def to_tensors(point: Point) -> dict:
    torch = import_torch()
    dtype = _tensor_dtype(point.dtype)
    return {n: torch.tensor(np.array(v), dtype=dtype) for n, v in point.values.items()}


def autograd_jacobians(function, point: Point, mode: str) -> dict[str, np.ndarray]:
    """Jacobians of the torch forward by torch autograd at one unbatched point, per input.

    `mode` is "reverse" (`torch.func.jacrev`) or "forward" (`torch.func.jacfwd`).
    """
    torch = import_torch()
    if point.batch_shape != ():
        raise ValueError("autograd_jacobians takes one point, not a batch")
    names = function.input_names
    tensors = to_tensors(point)

    def fn(*args):
        return forward(function, dict(zip(names, args)))

    transform = {"reverse": torch.func.jacrev, "forward": torch.func.jacfwd}[mode]
    result = transform(fn, argnums=tuple(range(len(names))))(*(tensors[n] for n in names))
    return {n: r.detach().cpu().numpy() for n, r in zip(names, result)}
