"""symjac: exact Jacobians from SymPy, cross-checked against torch autograd and finite differences.

Re-exports only. `import symjac` imports neither torch nor Hypothesis.
"""

from ._budget import DEFAULT_LIMITS, Limits
from ._check import check
from ._errors import (
    BackendNotAvailableError,
    ClosedFormError,
    DomainError,
    InvalidArgumentError,
    InvalidExpressionError,
    JacobianMismatchError,
    JobTimeoutError,
    ShapeError,
    SymjacError,
    TooLargeError,
)
from ._function import Function, function
from ._jacobian import Jacobian
from ._latex import latex
from ._report import Report
from ._tolerance import ToleranceModel
from ._verify import verify
from . import ops

__version__ = "0.1.0"

__all__ = [
    "BackendNotAvailableError",
    "ClosedFormError",
    "DEFAULT_LIMITS",
    "DomainError",
    "Function",
    "InvalidArgumentError",
    "InvalidExpressionError",
    "Jacobian",
    "JacobianMismatchError",
    "JobTimeoutError",
    "Limits",
    "Report",
    "ShapeError",
    "SymjacError",
    "ToleranceModel",
    "TooLargeError",
    "check",
    "function",
    "latex",
    "ops",
    "verify",
]
