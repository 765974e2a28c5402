"""Stable primitives: SymPy functions whose generated code is finite wherever their value is.

The naive formulas overflow long before the function does: `log(sum(exp(x)))` is inf at x = 100 in
float32 (800 in float64), `exp(x) / sum(exp(x))` is nan there, `log(1 + exp(x))` is inf at 1000.
Here each is one SymPy function with an exact derivative rule (`fdiff`), printed as stable NumPy,
torch and mpmath code:

| function | value | derivative | NumPy / torch code |
|---|---|---|---|
| `logsumexp(a, b, ...)` | log(sum exp) | d/da_i = exp(a_i - logsumexp) | shifted by the max / `torch.logsumexp` |
| `softplus(a)` | log(1 + exp(a)) | sigmoid(a) | `logaddexp(0, a)` |
| `sigmoid(a)` | 1 / (1 + exp(-a)) | sigmoid(a) sigmoid(-a) | `exp(-logaddexp(0, -a))` / `torch.sigmoid` |
| `log1p`, `expm1` | SymPy's (`sympy.codegen.cfunctions`) | | `log1p`, `expm1` |

`softmax(x)` is then `exp(x_k - logsumexp(x))` and `log(softmax(x))` simplifies to
`x_k - logsumexp(x)` (the arguments are real), `log_softmax` is that, `logaddexp(a, b)` is
`logsumexp(a, b)` and `logsigmoid(a)` is `-softplus(-a)`: the exact Jacobian stays exact and its
code stays finite. Constants fold through `evalf` of the naive formula, in arbitrary precision.
"""

from __future__ import annotations

import sympy
from sympy.codegen.cfunctions import expm1, log1p

__all__ = ["logsumexp", "softplus", "sigmoid", "log1p", "expm1", "naive", "STABLE_FUNCTIONS", "numpy_helpers", "torch_helpers", "MPMATH_HELPERS"]


class _Stable(sympy.Function):
    """Real for real arguments; evaluated numerically through the naive formula (mpmath has no
    overflow), never simplified into it."""

    def _eval_is_extended_real(self):
        return True if all(a.is_extended_real for a in self.args) else None

    def _naive(self) -> sympy.Expr:  # pragma: no cover - each subclass defines it
        raise NotImplementedError

    def _eval_evalf(self, prec):
        return self._naive().evalf(prec_to_dps(prec) + 5)

    def _eval_rewrite_as_exp(self, *args, **kwargs):
        return self._naive()


def prec_to_dps(prec: int) -> int:
    from mpmath.libmp import prec_to_dps as convert

    return int(convert(prec))


class logsumexp(_Stable):
    """`log(exp(a) + exp(b) + ...)`, n-ary; `logsumexp(a)` is `a`."""

    @classmethod
    def eval(cls, *args):
        if any(a is sympy.S.NegativeInfinity for a in args):  # exp(-oo) = 0 adds nothing (a mask)
            kept = [a for a in args if a is not sympy.S.NegativeInfinity]
            return cls(*kept) if kept else sympy.S.NegativeInfinity
        if len(args) == 1:
            return args[0]
        if all(a.is_Number for a in args):  # numbers: the exact value (log(2) for (0, 0))
            return sympy.log(sympy.Add(*(sympy.exp(a) for a in args)))
        return None

    def fdiff(self, argindex=1):
        return sympy.exp(self.args[argindex - 1] - self)

    def _naive(self):
        return sympy.log(sympy.Add(*(sympy.exp(a) for a in self.args)))


class softplus(_Stable):
    """`log(1 + exp(a))`."""

    nargs = 1

    @classmethod
    def eval(cls, a):
        return sympy.log(1 + sympy.exp(a)) if a.is_Number else None

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])

    def _naive(self):
        return sympy.log(1 + sympy.exp(self.args[0]))


class sigmoid(_Stable):
    """`1 / (1 + exp(-a))`, as a primitive (the derivative of `softplus`)."""

    nargs = 1

    @classmethod
    def eval(cls, a):
        return 1 / (1 + sympy.exp(-a)) if a.is_Number else None

    def fdiff(self, argindex=1):
        a = self.args[0]
        return sigmoid(a) * sigmoid(-a)

    def _naive(self):
        return 1 / (1 + sympy.exp(-self.args[0]))


def naive(expr: sympy.Expr) -> sympy.Expr:
    """`expr` with this module's functions written as their naive formulas (for SymPy's
    `simplify`, and for comparisons with hand-written formulas)."""
    return expr.replace(lambda e: isinstance(e, _Stable), lambda e: e._naive())


#: The applied functions of this module, as `_budget.SUPPORTED_FUNCTIONS` lists them.
STABLE_FUNCTIONS = (logsumexp, softplus, sigmoid, log1p, expm1)


# --------------------------------------------------------------------------- code


def _np_logsumexp(*args):
    import numpy as np

    arrays = np.broadcast_arrays(*(np.asarray(a) for a in args))
    stacked = np.stack(arrays)
    top = np.max(stacked, axis=0)
    shift = np.where(np.isfinite(top), top, 0)
    return shift + np.log(np.sum(np.exp(stacked - shift), axis=0))


def _np_softplus(a):
    import numpy as np

    return np.logaddexp(0, a)


def _np_sigmoid(a):
    import numpy as np

    return np.exp(-np.logaddexp(0, np.negative(a)))


def numpy_helpers() -> dict:
    """Names the printed NumPy code calls (`_codegen`)."""
    return {"_symjac_logsumexp": _np_logsumexp, "_symjac_softplus": _np_softplus, "_symjac_sigmoid": _np_sigmoid}


def _torch_like(args):
    import torch

    like = next((a for a in args if isinstance(a, torch.Tensor)), None)
    out = []
    for a in args:
        if not isinstance(a, torch.Tensor):
            a = torch.as_tensor(a, dtype=like.dtype if like is not None else None, device=like.device if like is not None else None)
        out.append(a)
    return out


def _torch_logsumexp(*args):
    import torch

    tensors = torch.broadcast_tensors(*_torch_like(args))
    return torch.logsumexp(torch.stack(tensors), dim=0)


def _torch_softplus(a):
    import torch

    (a,) = _torch_like([a])
    return torch.logaddexp(a, torch.zeros_like(a))


def _torch_sigmoid(a):
    import torch

    (a,) = _torch_like([a])
    return torch.sigmoid(a)


def torch_helpers() -> dict:
    """Names the printed torch code calls (`_codegen`)."""
    return {"_symjac_logsumexp": _torch_logsumexp, "_symjac_softplus": _torch_softplus, "_symjac_sigmoid": _torch_sigmoid}


def _mp_logsumexp(*args):
    import mpmath

    return mpmath.log(mpmath.fsum(mpmath.exp(a) for a in args))


def _mp_softplus(a):
    import mpmath

    return mpmath.log1p(mpmath.exp(a))


def _mp_sigmoid(a):
    import mpmath

    return 1 / (1 + mpmath.exp(-a))


#: Names the mpmath code of `_arbitrate` calls (SymPy prints these functions by name).
MPMATH_HELPERS = {"logsumexp": _mp_logsumexp, "softplus": _mp_softplus, "sigmoid": _mp_sigmoid}
