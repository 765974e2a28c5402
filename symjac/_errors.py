"""The one exception hierarchy of symjac.

Every error symjac raises on purpose is a `SymjacError`, and also the builtin that
fits it, so that `except ValueError` in user code keeps working (the Hypothesis
`InvalidArgument` pattern). Messages name the argument, state the rule and show
what was received.
"""

from __future__ import annotations

__all__ = [
    "SymjacError",
    "InvalidExpressionError",
    "InvalidArgumentError",
    "ShapeError",
    "TooLargeError",
    "DomainError",
    "BackendNotAvailableError",
    "JacobianMismatchError",
    "InconclusiveCheckError",
    "JobTimeoutError",
    "ClosedFormError",
    "ImplementationError",
    "TraceError",
]


class SymjacError(Exception):
    """Root of every error symjac raises on purpose."""


class InvalidArgumentError(SymjacError, ValueError):
    """An argument breaks a documented rule (a name, a shape, a value, an option)."""


class InvalidExpressionError(InvalidArgumentError):
    """Expression text that the expression language does not accept."""


class ShapeError(InvalidArgumentError):
    """Shapes that do not fit together (the message names both shapes)."""


class TooLargeError(InvalidArgumentError):
    """Work over a documented budget, refused before any symbolic work starts."""


class DomainError(InvalidArgumentError):
    """A point outside the function's domain (log of a negative number, a singular matrix)."""


class BackendNotAvailableError(SymjacError, ImportError):
    """An optional dependency (torch, Hypothesis, matplotlib, symengine) is not installed."""


class JacobianMismatchError(SymjacError, AssertionError):
    """Two routes to the same Jacobian disagree beyond their tolerance."""


class InconclusiveCheckError(SymjacError, AssertionError):
    """A check could not decide (a kink, a point outside the domain, routes that cannot confirm),
    raised by `Report.raise_if_failed()` unless `inconclusive="pass"` was chosen."""


class JobTimeoutError(SymjacError, TimeoutError):
    """A job ran past its time limit and was stopped."""


class ClosedFormError(SymjacError, ValueError):
    """No closed matrix-calculus form is known, or the one derived failed the check against the
    element-wise Jacobian (it is then refused, never printed)."""


class ImplementationError(SymjacError, RuntimeError):
    """The implementation under test (`verify`'s `impl`) raised, or could not be run or
    differentiated, at a point: the message names the point and the step (value, reverse mode,
    forward mode), and the original exception is the `__cause__`."""


class TraceError(InvalidExpressionError):
    """torch code that cannot be traced faithfully into an exact Function (the message names the op
    or construct: no data path to an input, an opaque custom op, an op with no exact counterpart,
    data-dependent control flow)."""
