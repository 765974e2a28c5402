"""A corpus of wrong derivative implementations, each with its correct twin.

Every case is a custom `torch.autograd.Function` (or a function returning a Jacobian or gradient)
that is wrong in one documented way, and the same code made right. `symjac.verify` must report each
wrong one as a failure at an entry where it is wrong, and never fail the twins, in float64 or
float32. Built lazily (torch is imported only when a case is made); cases are named, so pytest-xdist
workers rebuild them by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Case", "CASES", "case", "names"]

_A2 = [[2.0, 3.0], [-1.0, 0.5]]
_A3 = [[2.0, -1.0, 0.5], [0.0, 1.5, 1.0], [1.0, 0.25, -3.0]]


@dataclass(frozen=True)
class Case:
    """A wrong implementation, its correct twin, and the spec they implement."""

    name: str
    what: str  # the kind of mistake, in words
    expr: str
    shapes: dict[str, tuple[int, ...]]
    make: Callable[[bool], Any]  # make(wrong) -> impl
    consts: dict[str, Any] = field(default_factory=dict)
    kind: str = "function"
    #: where the wrong one must be reported: input name, input index, or "value" (None: any wrong entry)
    expect_input: str | None = None
    expect_index: tuple[int, ...] | None = None
    #: the wrong one is only wrong in float64 (it loses precision): its float32 run is not a bug
    float64_only: bool = False

    def spec(self):
        import symjac

        return symjac.function(self.expr, consts=self.consts or None, **self.shapes)

    def impl(self, *, wrong: bool):
        return self.make(wrong)


def _custom(name: str, forward, backward_right, backward_wrong, wrong: bool):
    import torch

    backward = backward_wrong if wrong else backward_right

    class Fn(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *xs):
            ctx.save_for_backward(*xs)
            return forward(*xs)

        @staticmethod
        def backward(ctx, g):
            return backward(g, *ctx.saved_tensors)

    Fn.__name__ = Fn.__qualname__ = f"{name}_{'wrong' if wrong else 'right'}"
    return Fn.apply


def _t(value, like):
    import torch

    return torch.as_tensor(value, dtype=like.dtype)


def _matsquare(wrong):
    return _custom("MatSquare", lambda X: X @ X,
                   lambda g, X: g @ X.T + X.T @ g,
                   lambda g, X: g @ X + X @ g, wrong)


def _transposed(wrong):
    return _custom("ConstTimes", lambda X: _t(_A2, X) @ X,
                   lambda g, X: _t(_A2, X).T @ g,
                   lambda g, X: _t(_A2, X) @ g, wrong)


def _sign(wrong):
    import torch

    return _custom("Sin", torch.sin, lambda g, x: g * torch.cos(x), lambda g, x: -g * torch.cos(x), wrong)


def _missing_term(wrong):
    import torch

    return _custom("XSinX", lambda x: x * torch.sin(x),
                   lambda g, x: g * (torch.sin(x) + x * torch.cos(x)),
                   lambda g, x: g * x * torch.cos(x), wrong)


def _negative_only(wrong):
    return _custom("Cube", lambda x: x ** 3, lambda g, x: 3 * g * x * x, lambda g, x: 3 * g * x * x.abs(), wrong)


def _one_entry(wrong):
    import torch

    def bad(g, X):
        grad = g * torch.exp(X)
        grad = grad.clone()
        grad[1, 2] = grad[1, 2] * 2
        return grad

    return _custom("Exp", torch.exp, lambda g, X: g * torch.exp(X), bad, wrong)


def _relative(wrong):
    import torch

    return _custom("Tanh", torch.tanh,
                   lambda g, x: g * (1 - torch.tanh(x) ** 2),
                   lambda g, x: g * (1 - torch.tanh(x) ** 2) * (1 + 1e-4), wrong)


def _dtype(wrong):
    import torch

    def bad(g, x):  # computes in float32 whatever it is given
        y = x.float()
        return (g.float() * torch.exp(y) * (1 + y)).to(g.dtype)

    return _custom("XExpX", lambda x: x * torch.exp(x), lambda g, x: g * torch.exp(x) * (1 + x), bad, wrong)


def _softmax(wrong):
    import torch

    def right(g, x):
        s = torch.softmax(x, 0)
        return s * (g - (g * s).sum())

    return _custom("Softmax", lambda x: torch.softmax(x, 0), right, lambda g, x: g * torch.softmax(x, 0), wrong)


def _inv(wrong):
    import torch

    def right(g, X):
        Xi = torch.linalg.inv(X)
        return -Xi.T @ g @ Xi.T

    def bad(g, X):
        Xi = torch.linalg.inv(X)
        return -Xi @ g @ Xi

    return _custom("Inv", torch.linalg.inv, right, bad, wrong)


def _logdet(wrong):
    import torch

    return _custom("LogDet", lambda X: torch.logdet(X),
                   lambda g, X: g * torch.linalg.inv(X).T,
                   lambda g, X: g * torch.linalg.inv(X), wrong)


def _second_input(wrong):
    import torch

    return _custom("MatVec", lambda W, x: W @ x,
                   lambda g, W, x: (torch.outer(g, x), W.T @ g),
                   lambda g, W, x: (torch.outer(g, x), -(W.T @ g)), wrong)


def _norm(wrong):
    import torch

    return _custom("Norm", torch.linalg.vector_norm,
                   lambda g, x: g * x / torch.linalg.vector_norm(x),
                   lambda g, x: g * x / torch.linalg.vector_norm(x) ** 2, wrong)


def _logsumexp(wrong):
    import torch

    return _custom("LogSumExp", lambda x: torch.logsumexp(x, 0),
                   lambda g, x: g * torch.softmax(x, 0),
                   lambda g, x: g * torch.exp(x), wrong)


def _value(wrong):
    import torch

    class MatSquareValue(torch.autograd.Function):
        @staticmethod
        def forward(ctx, X):
            ctx.save_for_backward(X)
            Y = X @ X
            return Y * (1 + 1e-6) if wrong else Y

        @staticmethod
        def backward(ctx, g):
            (X,) = ctx.saved_tensors
            return g @ X.T + X.T @ g

    MatSquareValue.__name__ = MatSquareValue.__qualname__ = f"MatSquareValue_{'wrong' if wrong else 'right'}"
    return MatSquareValue.apply


def _jacobian(wrong):
    import torch

    def jacobian(x):
        s = torch.sigmoid(x)
        return torch.diag(s * (1 + s) if wrong else s * (1 - s))

    return jacobian


def _gradient(wrong):
    def gradient(x):
        A = _t(_A3, x)
        return 2 * A @ x if wrong else (A + A.T) @ x

    return gradient


CASES: tuple[Case, ...] = (
    Case("non_symmetric", "right only for symmetric X", "X @ X", {"X": (3, 3)}, _matsquare),
    Case("transposed", "a transposed factor", "A @ X", {"X": (2, 2)}, _transposed, consts={"A": _A2}),
    Case("sign", "a sign error", "sin(x)", {"x": (3,)}, _sign),
    Case("missing_term", "a missing product-rule term", "x * sin(x)", {"x": (3,)}, _missing_term),
    Case("negative_only", "wrong only for negative inputs", "x ** 3", {"x": (3,)}, _negative_only),
    Case("one_entry", "wrong at one entry only", "exp(X)", {"X": (2, 3)}, _one_entry,
         expect_input="X", expect_index=(1, 2)),
    Case("relative_1e-4", "off by 1e-4 relative", "tanh(x)", {"x": (3,)}, _relative),
    Case("dtype", "computes in float32 whatever the input dtype", "x * exp(x)", {"x": (3,)}, _dtype,
         float64_only=True),
    Case("softmax", "softmax backward without the subtracted term", "softmax(x)", {"x": (4,)}, _softmax),
    Case("inv", "inverse backward without the transposes", "inv(X)", {"X": (3, 3)}, _inv),
    Case("logdet", "log-det backward with inv(X) for inv(X).T", "log(det(X))", {"X": (3, 3)}, _logdet),
    Case("second_input", "wrong for the second input only", "W @ x", {"W": (2, 3), "x": (3,)}, _second_input,
         expect_input="x"),
    Case("norm", "norm backward divided by the norm squared", "norm(x)", {"x": (3,)}, _norm),
    Case("logsumexp", "logsumexp backward not normalised", "logsumexp(x)", {"x": (4,)}, _logsumexp),
    Case("value", "the forward value off by 1e-6 relative", "X @ X", {"X": (2, 2)}, _value, expect_input="value"),
    Case("jacobian", "a returned Jacobian with a sign error", "sigmoid(x)", {"x": (3,)}, _jacobian, kind="jacobian"),
    Case("gradient", "a returned gradient right only for symmetric A", "dot(x, A @ x)", {"x": (3,)}, _gradient,
         consts={"A": _A3}, kind="gradient"),
)

_BY_NAME = {c.name: c for c in CASES}


def names() -> list[str]:
    return [c.name for c in CASES]


def case(name: str) -> Case:
    return _BY_NAME[name]

