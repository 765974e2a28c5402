"""Backends: assemble generated flat entry lists into arrays (NumPy) or tensors (torch).

`numpy_backend` is always available; `torch_backend` imports torch on first use only.
"""

from . import _numpy as numpy_backend

__all__ = ["numpy_backend", "torch_backend"]


def __getattr__(name):
    if name == "torch_backend":
        from . import _torch

        return _torch
    raise AttributeError(name)
