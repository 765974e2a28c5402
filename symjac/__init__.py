"""symjac: exact Jacobians from SymPy, cross-checked against torch autograd and finite differences.

Re-exports only. `import symjac` loads the error classes and nothing else: every other public
name is imported from its module on first use (PEP 562 module `__getattr__`), so SymPy and NumPy
load at the first `symjac.function(...)`, and torch, Hypothesis and matplotlib only when a
check, a property search or a plot needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._errors import (
    BackendNotAvailableError,
    ClosedFormError,
    DomainError,
    ImplementationError,
    InconclusiveCheckError,
    InvalidArgumentError,
    InvalidExpressionError,
    JacobianMismatchError,
    JobTimeoutError,
    ShapeError,
    SymjacError,
    TooLargeError,
    TraceError,
)

if TYPE_CHECKING:  # what type checkers and the API docs see; at run time these load lazily
    from . import ops
    from ._budget import DEFAULT_LIMITS, Limits
    from ._check import check
    from ._function import Function, function
    from ._jacobian import Jacobian, Jacobians
    from ._hessian import HigherDerivative
    from ._latex import latex
    from ._report import Report
    from ._tolerance import ToleranceModel
    from ._verify import verify

__version__ = "0.1.0"

#: Public name -> the module that defines it (relative to this package). The one table of the
#: lazily loaded public surface; `ops` is a public submodule.
_LAZY: dict[str, str] = {
    "DEFAULT_LIMITS": "._budget",
    "Limits": "._budget",
    "check": "._check",
    "Function": "._function",
    "function": "._function",
    "Jacobian": "._jacobian",
    "Jacobians": "._jacobian",
    "HigherDerivative": "._hessian",
    "latex": "._latex",
    "Report": "._report",
    "ToleranceModel": "._tolerance",
    "verify": "._verify",
    "ops": ".ops",
}

__all__ = [
    "BackendNotAvailableError",
    "ClosedFormError",
    "DEFAULT_LIMITS",
    "DomainError",
    "Function",
    "HigherDerivative",
    "ImplementationError",
    "InconclusiveCheckError",
    "InvalidArgumentError",
    "InvalidExpressionError",
    "Jacobian",
    "JacobianMismatchError",
    "Jacobians",
    "JobTimeoutError",
    "Limits",
    "Report",
    "ShapeError",
    "SymjacError",
    "ToleranceModel",
    "TooLargeError",
    "TraceError",
    "check",
    "function",
    "latex",
    "ops",
    "verify",
]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'symjac' has no attribute {name!r}")
    module = importlib.import_module(module_name, __name__)
    value = module if module_name == f".{name}" else getattr(module, name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
