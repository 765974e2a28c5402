"""The field corpus: realistic custom `torch.autograd.Function`s, half of them wrong, and a builtin sweep.

Used by `benchmarks/field.py` (symjac and `torch.autograd.gradcheck` side by side over several
seeds) and pinned by `tests/test_field.py`. Each `FieldCase` is one Function (right or wrong), the
spec it implements in symjac's expression language, the bug class it belongs to, and how to draw
inputs for `gradcheck` (which has no domain of its own: `torch.randn`, made valid where the
function needs it, as a user would). `BUILTINS` lists torch builtins the language covers, each with
its spec, for `verify` at default settings in float32 and float64.

Built lazily: torch is imported only when a case is made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["FieldCase", "CASES", "BUG_CLASSES", "case", "names", "Builtin", "BUILTINS", "builtin", "gradcheck_inputs"]

#: The bug classes the corpus must cover (issue 11, "Done when").
BUG_CLASSES = (
    "normalisation backward missing a mean term",
    "wrong reduction axis",
    "wrong constant in GELU",
    "sign slip in one region",
    "missing scale",
    "missing projection term",
    "threshold on the wrong side",
    "float32 inside a float64 op",
    "bug only for non-symmetric inputs",
    "bug in one of two inputs",
    "backward ignores grad_output",
    "bug only beyond |x| > 3",
)

_GELU_C = math.sqrt(2.0 / math.pi)
_ONEHOT = [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
_CLASSES = [2, 0]
_TARGET = [0.5, -1.0, 2.0, 0.0]


@dataclass(frozen=True)
class FieldCase:
    """One custom Function: its name, whether it is wrong, the bug class, the spec, how to build it."""

    name: str
    wrong: bool
    bug: str  # a BUG_CLASSES entry (for a right one: the class its wrong twin belongs to)
    expr: str
    shapes: dict[str, tuple[int, ...]]
    make: Callable[[], Any]
    consts: dict[str, Any] = field(default_factory=dict)
    #: verify options the user would pass (roles for matrix inputs)
    roles: dict[str, str] | None = None
    #: how gradcheck's inputs are made valid: "any", "posdef", "symmetric", "nonzero"
    draw: str = "any"

    def spec(self):
        import symjac

        return symjac.function(self.expr, consts=self.consts or None, **self.shapes)

    def impl(self):
        return self.make()


def _function(name: str, forward, backward, *, save=None):
    """A classic `forward(ctx, *xs)` / `backward(ctx, g)` Function; `save(*xs, out)` picks what to save."""
    import torch

    class Fn(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *xs):
            out = forward(*xs)
            ctx.save_for_backward(*(save(*xs, out) if save else xs))
            return out

        @staticmethod
        def backward(ctx, g):
            return backward(g, *ctx.saved_tensors)

    Fn.__name__ = Fn.__qualname__ = name
    return Fn.apply


def _t(value, like):
    import torch

    return torch.as_tensor(value, dtype=like.dtype)


# -- the Functions ------------------------------------------------------------------------------------
def _layernorm(wrong):
    def forward(x):
        mu = x.mean()
        return (x - mu) / ((x - mu).pow(2).mean() + 1e-5).sqrt()

    def backward(g, x):
        mu = x.mean()
        sigma = ((x - mu).pow(2).mean() + 1e-5).sqrt()
        xhat = (x - mu) / sigma
        if wrong:
            return (g - xhat * (g * xhat).mean()) / sigma  # the -mean(g) term is missing
        return (g - g.mean() - xhat * (g * xhat).mean()) / sigma

    return _function("LayerNorm" + ("Wrong" if wrong else ""), forward, backward)


def _row_softmax(wrong):
    import torch

    def backward(g, y):
        return y * (g - (g * y).sum(dim=0 if wrong else -1, keepdim=True))

    return _function("RowSoftmax" + ("Wrong" if wrong else ""), lambda X: torch.softmax(X, dim=-1), backward,
                     save=lambda X, out: (out,))


def _gelu(wrong):
    import torch

    k = 0.044715

    def forward(x):
        return 0.5 * x * (1 + torch.tanh(_GELU_C * (x + k * x ** 3)))

    def backward(g, x):
        u = _GELU_C * (x + k * x ** 3)
        t = torch.tanh(u)
        du = _GELU_C * (1 + (k if wrong else 3 * k) * x ** 2)  # wrong: 0.044715 where 3 * 0.044715 belongs
        return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du)

    return _function("GeluTanh" + ("Wrong" if wrong else ""), forward, backward)


def _leaky_relu(wrong):
    import torch

    def backward(g, x):
        return g * torch.where(x > 0, torch.ones_like(x), torch.full_like(x, -0.01 if wrong else 0.01))

    return _function("LeakyRelu" + ("Wrong" if wrong else ""),
                     lambda x: torch.nn.functional.leaky_relu(x, 0.01), backward)


def _batch_cross_entropy(wrong):
    import torch

    def forward(Z):
        return torch.nn.functional.cross_entropy(Z, torch.tensor(_CLASSES))  # integer class targets

    def backward(g, Z):
        grad = torch.softmax(Z, dim=-1) - _t(_ONEHOT, Z)
        return g * grad if wrong else g * grad / Z.shape[0]  # wrong: the batch mean's 1/2 is missing

    return _function("CrossEntropy" + ("Wrong" if wrong else ""), forward, backward)


def _normalize(wrong):
    def backward(g, x):
        n = x.norm()
        xhat = x / n
        if wrong:
            return g / n  # the projection -xhat (xhat . g) is missing
        return (g - xhat * (xhat * g).sum()) / n

    return _function("Normalize" + ("Wrong" if wrong else ""), lambda x: x / x.norm(), backward)


def _softplus(wrong):
    import torch

    def backward(g, x):
        if wrong:  # a switch to the identity (torch's beyond +20) put below -20
            return torch.where(x < -20, g, g * torch.sigmoid(x))
        return g * torch.sigmoid(x)

    return _function("Softplus" + ("Wrong" if wrong else ""),
                     lambda x: torch.logaddexp(x, torch.zeros_like(x)), backward)


def _silu(wrong):
    import torch

    def backward(g, x):
        s = torch.sigmoid(x.float()).to(x.dtype) if wrong else torch.sigmoid(x)  # wrong: float32 inside
        return g * s * (1 + x * (1 - s))

    return _function("Silu" + ("Wrong" if wrong else ""), lambda x: x * torch.sigmoid(x), backward)


def _quadratic_form(wrong):
    import torch

    def backward(g, x, A):
        gx = 2 * (A @ x) if wrong else (A + A.T) @ x  # wrong: right only for symmetric A
        return g * gx, g * torch.outer(x, x)

    return _function("QuadForm" + ("Wrong" if wrong else ""), lambda x, A: x @ (A @ x), backward)


def _dense_tanh(wrong):
    import torch

    def backward(g, W, x):
        y = torch.tanh(W @ x)
        gz = g * (1 - y * y)
        return torch.outer(g if wrong else gz, x), W.T @ gz  # wrong: W's gradient skips tanh'

    return _function("DenseTanh" + ("Wrong" if wrong else ""), lambda W, x: torch.tanh(W @ x), backward)


def _logsumexp(wrong):
    import torch

    def backward(g, x):
        p = torch.softmax(x, dim=-1)
        return p if wrong else g * p  # wrong: grad_output ignored

    return _function("LogSumExp" + ("Wrong" if wrong else ""), lambda x: torch.logsumexp(x, dim=-1), backward)


def _mse(wrong):
    def backward(g, x):
        d = x - _t(_TARGET, x)
        return g * 2 * d if wrong else g * 2 * d / x.numel()  # wrong: mean's 1/n missing

    return _function("MseLoss" + ("Wrong" if wrong else ""), lambda x: ((x - _t(_TARGET, x)) ** 2).mean(), backward)


def _tanh_clip(wrong):
    import torch

    def backward(g, x):
        d = 1 - torch.tanh(x) ** 2
        if wrong:  # "saturated units get no gradient": but 1 - tanh(3)^2 is 0.0099, not 0
            d = torch.where(x.abs() > 3, torch.zeros_like(d), d)
        return g * d

    return _function("Tanh" + ("Clipped" if wrong else ""), torch.tanh, backward)


def _relu6(wrong):
    import torch

    def backward(g, x):
        inside = (x > 0) if wrong else (x > 0) & (x < 6)  # wrong: the upper clamp at 6 is forgotten
        return g * inside.to(g.dtype)

    return _function("Relu6" + ("Wrong" if wrong else ""), lambda x: torch.nn.functional.relu6(x), backward)


def _cholesky_logdet(wrong):
    import torch

    def forward(X):
        return 2 * torch.log(torch.diagonal(torch.linalg.cholesky(X))).sum()

    def backward(g, X):
        L = torch.linalg.cholesky(X)
        inv = torch.cholesky_inverse(L)
        return g * 2 * inv if wrong else g * inv  # wrong: the 2 of 2 * sum(log(diag L)) applied twice

    return _function("CholeskyLogDet" + ("Wrong" if wrong else ""), forward, backward)


def _eigh_energy(wrong):
    import torch

    def backward(g, X):
        if wrong:  # only the diagonal: right for diagonal X alone
            return 2 * g * torch.diag_embed(torch.diagonal(X))
        w, V = torch.linalg.eigh(X)
        return g * (V * (2 * w)) @ V.T  # 2 V diag(w) V^T = 2 X

    return _function("EighEnergy" + ("Wrong" if wrong else ""),
                     lambda X: (torch.linalg.eigvalsh(X) ** 2).sum(), backward)


def _pairs():
    rows = [
        ("layernorm", "normalisation backward missing a mean term",
         "(x - mean(x)) / sqrt(mean((x - mean(x)) ** 2) + 1e-5)", {"x": (4,)}, _layernorm, {}, None, "any"),
        ("row_softmax", "wrong reduction axis", "softmax(X)", {"X": (2, 3)}, _row_softmax, {}, None, "any"),
        ("gelu_tanh", "wrong constant in GELU",
         f"0.5 * x * (1 + tanh({_GELU_C!r} * (x + 0.044715 * x ** 3)))", {"x": (3,)}, _gelu, {}, None, "any"),
        ("leaky_relu", "sign slip in one region", "relu(x) - 0.01 * relu(-x)", {"x": (3,)}, _leaky_relu, {}, None, "any"),
        ("cross_entropy", "missing scale", "-sum(T * log(softmax(Z))) / 2", {"Z": (2, 3)}, _batch_cross_entropy,
         {"T": _ONEHOT}, None, "any"),
        ("normalize", "missing projection term", "x / norm(x)", {"x": (3,)}, _normalize, {}, None, "any"),
        ("softplus", "threshold on the wrong side", "log(1 + exp(x))", {"x": (3,)}, _softplus, {}, None, "any"),
        ("silu", "float32 inside a float64 op", "x * sigmoid(x)", {"x": (3,)}, _silu, {}, None, "any"),
        ("quadratic_form", "bug only for non-symmetric inputs", "dot(x, A @ x)", {"x": (3,), "A": (3, 3)},
         _quadratic_form, {}, None, "any"),
        ("dense_tanh", "bug in one of two inputs", "tanh(W @ x)", {"W": (2, 3), "x": (3,)}, _dense_tanh, {}, None, "any"),
        ("logsumexp", "backward ignores grad_output", "logsumexp(x)", {"x": (4,)}, _logsumexp, {}, None, "any"),
        ("mse", "missing scale", "mean((x - T) ** 2)", {"x": (4,)}, _mse, {"T": _TARGET}, None, "any"),
        ("tanh_clipped", "bug only beyond |x| > 3", "tanh(x)", {"x": (3,)}, _tanh_clip, {}, None, "any"),
        ("relu6", "bug only beyond |x| > 3", "relu(x) - relu(x - 6)", {"x": (3,)}, _relu6, {}, None, "any"),
        ("cholesky_logdet", "missing scale", "log(det(X))", {"X": (3, 3)},
         _cholesky_logdet, {}, {"X": "posdef"}, "posdef"),
        ("eigh_energy", "assumes a diagonal input",
         "trace(X @ X)", {"X": (3, 3)}, _eigh_energy, {}, {"X": "symmetric"}, "symmetric"),
    ]
    cases = []
    for name, bug, expr, shapes, maker, consts, roles, draw in rows:
        for wrong in (True, False):
            cases.append(FieldCase(
                f"{name}_{'wrong' if wrong else 'right'}", wrong, bug, expr, shapes,
                (lambda m=maker, w=wrong: m(w)), consts, roles, draw,
            ))
    return tuple(cases)


CASES: tuple[FieldCase, ...] = _pairs()
_BY_NAME = {c.name: c for c in CASES}


def names(*, wrong: bool | None = None) -> list[str]:
    return [c.name for c in CASES if wrong is None or c.wrong == wrong]


def case(name: str) -> FieldCase:
    return _BY_NAME[name]


def gradcheck_inputs(c: FieldCase, seed: int, dtype=None) -> tuple:
    """Inputs for `torch.autograd.gradcheck` as a user would make them: `torch.randn`, seeded, made
    positive definite or symmetric where the function needs it."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    dtype = dtype or torch.float64
    out = []
    for _, shape in c.shapes.items():
        x = torch.randn(shape, generator=gen, dtype=dtype)
        if c.draw == "posdef":
            x = x @ x.T + len(shape) * torch.eye(shape[0], dtype=dtype)
        elif c.draw == "symmetric":
            x = (x + x.T) / 2
        out.append(x.requires_grad_(True))
    return tuple(out)


# -- torch builtins the language covers ------------------------------------------------------------------
@dataclass(frozen=True)
class Builtin:
    name: str
    expr: str
    shapes: dict[str, tuple[int, ...]]
    make: Callable[[], Any]
    consts: dict[str, Any] = field(default_factory=dict)
    roles: dict[str, str] | None = None

    def spec(self):
        import symjac

        return symjac.function(self.expr, consts=self.consts or None, **self.shapes)

    def impl(self):
        return self.make()


def _b(name, expr, shapes, fn_text, consts=None, roles=None):
    """A builtin case; `fn_text(torch, F)` returns the torch callable (torch is imported when it is made)."""

    def make():
        import torch
        import torch.nn.functional as F

        return _BUILTIN_IMPLS[name](torch, F)

    _BUILTIN_IMPLS[name] = fn_text
    return Builtin(name, expr, shapes, make, consts or {}, roles)


_BUILTIN_IMPLS: dict[str, Callable] = {}
_X3 = {"x": (3,)}
_M = [[1.5, -0.5, 2.0], [0.25, 1.0, -1.0]]

BUILTINS: tuple[Builtin, ...] = (
    # element-wise
    _b("sin", "sin(x)", _X3, lambda torch, F: torch.sin),
    _b("cos", "cos(x)", _X3, lambda torch, F: torch.cos),
    _b("tan", "tan(x)", _X3, lambda torch, F: torch.tan),
    _b("exp", "exp(x)", _X3, lambda torch, F: torch.exp),
    _b("log", "log(x)", _X3, lambda torch, F: torch.log),
    _b("sqrt", "sqrt(x)", _X3, lambda torch, F: torch.sqrt),
    _b("tanh", "tanh(x)", _X3, lambda torch, F: torch.tanh),
    _b("sigmoid", "sigmoid(x)", _X3, lambda torch, F: torch.sigmoid),
    _b("abs", "abs(x)", _X3, lambda torch, F: torch.abs),
    _b("relu", "relu(x)", _X3, lambda torch, F: torch.relu),
    _b("relu6", "relu(x) - relu(x - 6)", _X3, lambda torch, F: F.relu6),
    _b("leaky_relu", "relu(x) - 0.01 * relu(-x)", _X3, lambda torch, F: F.leaky_relu),
    _b("hardsigmoid", "(relu(x + 3) - relu(x - 3)) / 6", _X3, lambda torch, F: F.hardsigmoid),
    _b("hardtanh", "relu(x + 1) - relu(x - 1) - 1", _X3, lambda torch, F: F.hardtanh),
    _b("softplus", "log(1 + exp(x))", _X3, lambda torch, F: F.softplus),
    _b("logsigmoid", "-log(1 + exp(-x))", _X3, lambda torch, F: F.logsigmoid),
    _b("silu", "x * sigmoid(x)", _X3, lambda torch, F: F.silu),
    _b("gelu_tanh", f"0.5 * x * (1 + tanh({_GELU_C!r} * (x + 0.044715 * x ** 3)))", _X3,
       lambda torch, F: (lambda x: F.gelu(x, approximate="tanh"))),
    _b("square", "x ** 2", _X3, lambda torch, F: torch.square),
    _b("reciprocal", "1 / x", _X3, lambda torch, F: torch.reciprocal),
    # reductions
    _b("sum", "sum(X)", {"X": (2, 3)}, lambda torch, F: torch.sum),
    _b("mean", "mean(X)", {"X": (2, 3)}, lambda torch, F: torch.mean),
    _b("logsumexp", "logsumexp(x)", {"x": (4,)}, lambda torch, F: (lambda x: torch.logsumexp(x, dim=-1))),
    _b("norm", "norm(x)", {"x": (4,)}, lambda torch, F: torch.linalg.vector_norm),
    _b("frobenius", "norm(X)", {"X": (2, 3)}, lambda torch, F: torch.linalg.matrix_norm),
    # softmax family
    _b("softmax", "softmax(X)", {"X": (2, 3)}, lambda torch, F: (lambda X: torch.softmax(X, dim=-1))),
    _b("log_softmax", "log(softmax(x))", {"x": (4,)}, lambda torch, F: (lambda x: torch.log_softmax(x, dim=-1))),
    _b("cross_entropy", "-sum(T * log(softmax(Z))) / 2", {"Z": (2, 3)},
       lambda torch, F: (lambda Z: F.cross_entropy(Z, torch.tensor(_CLASSES))), {"T": _ONEHOT}),
    _b("mse_loss", "mean((x - T) ** 2)", {"x": (4,)},
       lambda torch, F: (lambda x: F.mse_loss(x, torch.tensor(_TARGET, dtype=x.dtype))), {"T": _TARGET}),
    _b("normalize", "x / norm(x)", _X3, lambda torch, F: (lambda x: F.normalize(x, dim=0))),
    _b("layer_norm", "(x - mean(x)) / sqrt(mean((x - mean(x)) ** 2) + 1e-5)", {"x": (4,)},
       lambda torch, F: (lambda x: F.layer_norm(x, (4,)))),
    # linear algebra
    _b("matmul", "A @ X", {"X": (3, 2)}, lambda torch, F: (lambda X: torch.tensor(_M, dtype=X.dtype) @ X), {"A": _M}),
    _b("matvec_tanh", "tanh(W @ x)", {"W": (2, 3), "x": (3,)}, lambda torch, F: (lambda W, x: torch.tanh(W @ x))),
    _b("outer", "outer(a, b)", {"a": (2,), "b": (3,)}, lambda torch, F: torch.outer),
    _b("dot", "dot(a, b)", {"a": (3,), "b": (3,)}, lambda torch, F: torch.dot),
    _b("kron", "kron(A, B)", {"A": (2, 2), "B": (2, 2)}, lambda torch, F: torch.kron),
    _b("trace", "trace(X)", {"X": (3, 3)}, lambda torch, F: torch.trace),
    _b("det", "det(X)", {"X": (3, 3)}, lambda torch, F: torch.linalg.det),
    _b("logdet", "log(det(X))", {"X": (3, 3)}, lambda torch, F: torch.logdet),
    _b("inv", "inv(X)", {"X": (3, 3)}, lambda torch, F: torch.linalg.inv),
    _b("solve", "solve(A, b)", {"A": (3, 3), "b": (3,)}, lambda torch, F: torch.linalg.solve),
    _b("cholesky_logdet", "log(det(X))", {"X": (3, 3)},
       lambda torch, F: (lambda X: 2 * torch.log(torch.diagonal(torch.linalg.cholesky(X))).sum()), roles={"X": "posdef"}),
    _b("eigvalsh_energy", "trace(X @ X)", {"X": (3, 3)},
       lambda torch, F: (lambda X: (torch.linalg.eigvalsh(X) ** 2).sum()), roles={"X": "symmetric"}),
)
_BUILTIN_BY_NAME = {b.name: b for b in BUILTINS}


def builtin(name: str) -> Builtin:
    return _BUILTIN_BY_NAME[name]
