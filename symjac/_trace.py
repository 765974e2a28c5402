"""Torch code in: a callable written with torch, traced to an aten graph, becomes an exact Function.

`symjac.function(fn, x=(4,))` with `fn` written in torch (functions, Tensor methods, operators,
`torch.nn.functional`, an `nn.Module`, a custom `autograd.Function.apply`) comes here:

1. **Trace.** `torch.fx.experimental.proxy_tensor.make_fx` (over `torch.func.functionalize`,
   which rewrites in-place ops) records the aten ops `fn` runs on example inputs of the declared
   shapes. The decomposition table `_DECOMPOSED` rewrites composite ops (layer norm, GELU,
   `nll_loss`, `addmm`, ...) into primitives by torch's own definitions, and leaves `logsumexp`,
   softmax, log-softmax, norms and the linear algebra as primitives. The trace runs three times:
   with fake tensors (any data-dependent Python control flow, `.item()`, `.tolist()`, `bool(x)`
   fails there: refused), after two traces with real tensors at different points (a constant
   that differs between them came from the input through NumPy or Python: refused).
2. **Interpret.** Each aten op of the graph is one rule of `_RULES`, which calls the
   operations of the one vocabulary (`symjac.ops`, the rows of `symjac._vocabulary`) on symbolic
   arrays; no rule does math of its own beyond `+ - * /` of those arrays. Constants are exact
   (float64 values as the rational of their shortest decimal, `ops.as_symbolic`).
3. **Refuse** what cannot be traced faithfully, with `TraceError` naming the op or construct:
   outputs with no data path to an input, opaque custom ops, ops without an exact counterpart
   (sorting, random numbers, eigen-decompositions, rounding, `detach`), data-dependent control
   flow.

The Function is specialised to the shapes given: other shapes need another `symjac.function`.
torch is imported here only, when a callable turns out to be torch code.
"""

from __future__ import annotations

import inspect
import math
import operator
import re
import sys
import warnings
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from symjac import ops
from symjac._errors import InvalidArgumentError, SymjacError, TraceError
from symjac._vocabulary import OPERATIONS

__all__ = ["TraceError", "Traced", "is_torch_code", "trace", "PARAMS"]

#: What an `nn.Module`'s parameters become: named inputs (checked too) or constants.
PARAMS = ("inputs", "consts")

_EXAMPLE_SEEDS = (20240613, 7)


@dataclass(frozen=True)
class Traced:
    """The result of a trace: the output array, the extra inputs and a description of its origin."""

    output: np.ndarray
    parameters: tuple[tuple[str, tuple[int, ...]], ...]  # nn.Module parameters as inputs
    origin: str  # who was traced, for reports
    ops_used: tuple[str, ...]
    identity: Any = None  # `identity(fn)`: verify says "its own forward" only for the same code


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is installed where torch code is written
        from symjac._errors import BackendNotAvailableError

        raise BackendNotAvailableError(
            "expr: tracing torch code needs torch; install it (pip install torch)") from None
    return torch


def is_torch_code(fn: Any) -> bool:
    """True for an `nn.Module`, an `autograd.Function.apply`, or a function from a torch module.

    Never imports torch: code that uses torch has imported it already.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    if isinstance(fn, torch.nn.Module):
        return True
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, type) and issubclass(owner, torch.autograd.Function):
        return True
    module = getattr(fn, "__module__", None) or ""
    return module == "torch" or module.startswith("torch.")


def identity(fn: Any) -> Any:
    """What makes two references to the same torch code equal: (object, name), the object held
    by a weak reference so that a later object at the same address never matches.

    `MyFn.apply` is a new bound method at each access, so its owner class is what is held; a
    module's functional wrapper stands for the module.
    """
    marked = getattr(fn, "_symjac_identity", None)
    if marked is not None:
        return marked
    owner = getattr(fn, "__self__", None)
    target, name = (owner, getattr(fn, "__name__", "")) if owner is not None else (fn, "")
    try:
        return (weakref.ref(target), name)
    except TypeError:  # not weakly referenceable: never claimed to be the same code
        return None


def same_code(a: Any, b: Any) -> bool:
    """Whether two `identity` values name the same live object."""
    if a is None or b is None:
        return False
    (ref_a, name_a), (ref_b, name_b) = a, b
    target = ref_a()
    return target is not None and target is ref_b() and name_a == name_b


def describe(fn: Any) -> str:
    """A short name for `fn`: `MyFn.apply`, `Linear`, `my_function`."""
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, type):
        return f"{owner.__qualname__}.{getattr(fn, '__name__', 'apply')}"
    return getattr(fn, "__qualname__", None) or type(fn).__qualname__


# --------------------------------------------------------------------------- tracing

# Composite ops rewritten by torch's own decompositions into primitives the rules know.
_DECOMPOSED = (
    "native_layer_norm", "native_group_norm", "native_batch_norm",
    "_native_batch_norm_legit_no_training", "gelu", "nll_loss_forward", "addmm", "addmv",
    "baddbmm", "silu", "std", "linalg_cross", "norm", "binary_cross_entropy", "mse_loss",
    "embedding", "hardtanh", "leaky_relu", "elu", "split", "split_with_sizes", "unbind",
    "diag_embed", "mish", "glu", "logit", "huber_loss", "smooth_l1_loss", "repeat",
    "hardswish", "hardsigmoid", "celu", "selu", "nll_loss2d_forward", "cosine_embedding_loss",
    "soft_margin_loss", "kl_div", "l1_loss", "margin_ranking_loss", "nll_loss_nd",
    "cross_entropy_loss", "narrow", "chunk", "tensor_split", "unsafe_split",
    "unsafe_split_with_sizes", "_scaled_dot_product_flash_attention_for_cpu", "triu", "tril",
    "xlogy",
)


def _decompositions():
    from torch._decomp import get_decompositions

    aten = _torch().ops.aten
    return get_decompositions([getattr(aten, name) for name in _DECOMPOSED if hasattr(aten, name)])


_DATA_DEPENDENT = (
    "data-dependent", "DataDependent", "data dependent", "GuardOnDataDependent",
    "Could not guard", "Could not extract specialized integer", "_local_scalar_dense",
    "cannot be converted to", "item()",
)


def _make_graph(fn: Callable, examples: list, mode: str):
    torch = _torch()
    from torch.fx.experimental.proxy_tensor import make_fx

    decompositions = _decompositions()

    def run(wrapped):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return make_fx(wrapped, decomposition_table=decompositions, tracing_mode=mode,
                           _allow_non_fake_inputs=True)(*examples)

    try:
        return run(torch.func.functionalize(fn))
    except RuntimeError as err:
        # A custom autograd.Function without setup_context cannot be functionalized: trace its
        # forward as it is (in-place ops are then checked one by one, `_inplace`).
        if "setup_context" not in str(err) and "custom_function_call" not in str(err):
            raise
    return run(fn)


def _graphs(fn: Callable, shapes: list[tuple[int, ...]], describe_fn: str):
    torch = _torch()
    examples = []
    for seed in _EXAMPLE_SEEDS:
        generator = torch.Generator().manual_seed(seed)
        examples.append([torch.randn(*shape, generator=generator, dtype=torch.float64) * 0.5 + 0.25
                         for shape in shapes])
    graphs = []
    for example in examples:
        try:
            graphs.append(_make_graph(fn, example, "real"))
        except SymjacError:
            raise
        except Exception as err:  # noqa: BLE001
            raise TraceError(
                f"expr: tracing {describe_fn} on example inputs of shapes {shapes} failed: "
                f"{_first_line(f'{type(err).__name__}: {err}')}") from None
    _same_constants(graphs, describe_fn)
    try:
        _make_graph(fn, examples[0], "fake")
    except SymjacError:
        raise
    except Exception as err:  # noqa: BLE001 - torch's tracing errors have many types
        text = f"{type(err).__name__}: {err}"
        if any(marker in text for marker in _DATA_DEPENDENT):
            raise TraceError(
                f"expr: {describe_fn} has data-dependent control flow or reads tensor values "
                "into Python (if/while on a tensor, bool(x), x.item(), x.tolist(), indexing with "
                "a value computed from x): the trace would record one branch only, so it is "
                "refused. Write the branch as torch.where(cond, a, b). "
                f"(torch: {_first_line(text)})") from None
        raise TraceError(
            f"expr: tracing {describe_fn} with fake tensors of shapes {shapes} failed: "
            f"{_first_line(text)}") from None
    return graphs[0]


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else text
    return line[:240]


def _same_constants(graphs, describe_fn: str) -> None:
    torch = _torch()
    first, second = graphs
    ops_first = [(n.op, str(n.target)) for n in first.graph.nodes if n.op == "call_function"]
    ops_second = [(n.op, str(n.target)) for n in second.graph.nodes if n.op == "call_function"]
    if ops_first != ops_second:
        raise TraceError(
            f"expr: {describe_fn} runs different torch ops at different inputs (data-dependent "
            "control flow: Python if/while on tensor values): refused; write the branch as "
            "torch.where(cond, a, b)")
    for node in first.graph.nodes:
        if node.op != "get_attr":
            continue
        a, b = getattr(first, node.target, None), getattr(second, node.target, None)
        if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
            if a.shape != b.shape or not torch.equal(a, b):
                raise TraceError(
                    f"expr: {describe_fn} computes a constant from its input outside torch "
                    "(.numpy(), .tolist(), .item(), float(x) ...): the traced Function would "
                    "treat that value as a constant with no data path to the input, and its "
                    "derivative would be wrong; refused")


# --------------------------------------------------------------------------- values


class _Unused:
    """An output of an op that the rules do not model (LU factors, pivots, indices)."""

    def __init__(self, what: str):
        self.what = what


def _sym(value: Any, what: str = "value") -> np.ndarray:
    """A symbolic array from a rule's value (Python numbers exact, booleans as 0/1)."""
    if isinstance(value, _Unused):
        raise TraceError(f"expr: the traced code uses {value.what}, which symjac does not model")
    if isinstance(value, np.ndarray) and value.dtype == object:
        if all(isinstance(v, sp.Expr) for v in value.flat):
            return value
        out = np.empty(value.shape, dtype=object)
        for index, v in np.ndenumerate(value):
            out[index] = _boolean_as_number(v) if not isinstance(v, sp.Expr) else v
        return out
    if isinstance(value, (bool, np.bool_)):
        return ops._scalar(sp.Integer(int(value)))
    if isinstance(value, float) and not math.isfinite(value):
        return ops._scalar(sp.nan if math.isnan(value) else (sp.oo if value > 0 else -sp.oo))
    if isinstance(value, np.ndarray) and value.dtype == bool:
        return value.astype(np.int64).astype(object) * sp.Integer(1)
    if isinstance(value, np.ndarray) and value.dtype.kind == "f" and not np.all(np.isfinite(value)):
        out = np.empty(value.shape, dtype=object)
        for index, v in np.ndenumerate(value):
            out[index] = _sym(float(v))[()]
        return out
    return ops.as_symbolic(value, argument=what)


def _boolean_as_number(v: Any) -> sp.Expr:
    if v is sp.true or v is True:
        return sp.Integer(1)
    if v is sp.false or v is False:
        return sp.Integer(0)
    return sp.Piecewise((sp.Integer(1), v), (sp.Integer(0), True))


def _condition(value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray) and value.dtype == object:
        out = np.empty(value.shape, dtype=object)
        for index, v in np.ndenumerate(value):
            if isinstance(v, sp.logic.boolalg.Boolean):
                out[index] = v
            elif isinstance(v, sp.Expr) and v.is_Number:
                out[index] = sp.true if v != 0 else sp.false
            else:
                out[index] = sp.Ne(v, 0)
        return out
    return np.asarray(value, dtype=bool)


def _ints(value: Any, what: str) -> np.ndarray:
    """Constant integer indices (a gather's, an nll_loss target's), as a NumPy int array."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "iu":
        return value
    array = np.asarray(value, dtype=object)
    out = np.empty(array.shape, dtype=np.int64)
    for index, v in np.ndenumerate(array):
        if isinstance(v, (int, np.integer)) or (isinstance(v, sp.Integer)):
            out[index] = int(v)
        else:
            raise TraceError(
                f"expr: {what} must be constant integers; here it depends on the input "
                f"({str(v)[:60]}), which has no exact counterpart")
    return out


def _number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return _sym(value)
    return value


def _dims(dim: Any, ndim: int) -> Any:
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        return None
    if isinstance(dim, (list, tuple)):
        return tuple(int(d) for d in dim)
    return int(dim)


def _fallback(name: str, make: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """The vocabulary's row `name` where it has one; else `make` (FALLBACK, marked: once the
    stable primitives of the verdicts branch are rows, these switch to them by themselves)."""
    row = OPERATIONS.get(name)
    return row.implementation if row is not None else make


# --------------------------------------------------------------------------- rules


class _Rows:
    """`V.sum(...)`: the implementation of the vocabulary's row "sum" (`symjac._vocabulary`)."""

    def __getattr__(self, name: str) -> Callable[..., np.ndarray]:
        return OPERATIONS[name].implementation


V = _Rows()

_RULES: dict[str, Callable[..., Any]] = {}


def _rule(*names: str):
    def register(function):
        for name in names:
            _RULES[name] = function
        return function

    return register


def _unary(name: str, function: Callable[[np.ndarray], np.ndarray]) -> None:
    _RULES[name] = lambda x: function(_sym(x))


for _name in ("exp", "log", "sin", "cos", "tan", "tanh", "sqrt", "abs", "relu", "sigmoid",
              "erf", "asin", "acos", "atan", "sinh", "cosh"):
    _unary(_name, OPERATIONS[_name].implementation)
_unary("neg", lambda x: -x)
_unary("reciprocal", lambda x: 1 / x)
_unary("rsqrt", lambda x: 1 / V.sqrt(x))
_unary("square", lambda x: x * x)
_unary("log2", lambda x: V.log(x) / sp.log(2))
_unary("log10", lambda x: V.log(x) / sp.log(10))
_unary("exp2", lambda x: V.exp(x * sp.log(2)))
_unary("log1p", _fallback("log1p", lambda x: V.log(1 + x)))
_unary("expm1", _fallback("expm1", lambda x: V.exp(x) - 1))
_unary("arcsin", V.asin)
_unary("arccos", V.acos)
_unary("arctan", V.atan)
_unary("asinh", lambda x: V.log(x + V.sqrt(x * x + 1)))
_unary("positive", lambda x: x)


@_rule("add")
def _add(a, b, alpha=1):
    return _sym(a) + _sym(_number(alpha)) * _sym(_number(b)) if alpha != 1 else _sym(a) + _sym(_number(b))


@_rule("sub")
def _sub(a, b, alpha=1):
    return _sym(a) - _sym(_number(alpha)) * _sym(_number(b)) if alpha != 1 else _sym(a) - _sym(_number(b))


@_rule("rsub")
def _rsub(a, b, alpha=1):
    return _sym(_number(b)) - _sym(_number(alpha)) * _sym(a)


@_rule("mul")
def _mul(a, b):
    return _sym(_number(a)) * _sym(_number(b))


@_rule("div")
def _div(a, b, rounding_mode=None):
    if rounding_mode is not None:
        raise TraceError(
            f"expr: division with rounding_mode={rounding_mode!r} (floor/trunc) is piecewise "
            "constant and has no exact counterpart in symjac's vocabulary")
    return _sym(_number(a)) / _sym(_number(b))


@_rule("pow")
def _pow(a, b):
    return _sym(_number(a)) ** _sym(_number(b))


_RULES["atan2"] = lambda y, x: V.atan2(_sym(y), _sym(x))
_RULES["maximum"] = lambda a, b: V.maximum(_sym(a), _sym(b))
_RULES["minimum"] = lambda a, b: V.minimum(_sym(a), _sym(b))
_RULES["fmax"] = _RULES["maximum"]
_RULES["fmin"] = _RULES["minimum"]


@_rule("clamp")
def _clamp(x, min=None, max=None):  # noqa: A002 - torch's names
    low = None if min is None else _sym(_number(min))
    high = None if max is None else _sym(_number(max))
    return V.clamp(_sym(x), low, high)


_RULES["clamp_min"] = lambda x, low: V.clamp(_sym(x), _sym(_number(low)), None)
_RULES["clamp_max"] = lambda x, high: V.clamp(_sym(x), None, _sym(_number(high)))

for _name in ("gt", "ge", "lt", "le", "eq", "ne"):
    _RULES[_name] = (lambda f: lambda a, b: f(_sym(_number(a)), _sym(_number(b))))(OPERATIONS[_name].implementation)
_RULES["greater"] = _RULES["gt"]
_RULES["less"] = _RULES["lt"]


@_rule("logical_not")
def _logical_not(c):
    cond = _condition(c)
    out = np.empty(cond.shape, dtype=object)
    for index, v in np.ndenumerate(cond):
        out[index] = sp.Not(v) if isinstance(v, sp.logic.boolalg.Boolean) else sp.true if not v else sp.false
    return out


@_rule("logical_and", "logical_or", "logical_xor")
def _logical_binary(a, b):
    raise TraceError("expr: logical and/or of conditions is not part of symjac's vocabulary; "
                     "nest torch.where instead")


@_rule("where")
def _where(condition, a, b):
    cond = _condition(condition)
    left, right = _sym(_number(a)), _sym(_number(b))
    nan_left = left.size and all(v is sp.nan for v in left.flat)
    nan_right = right.size and all(v is sp.nan for v in right.flat)
    if nan_left or nan_right:
        return _nan_branch(cond, right if nan_left else left, nan_left)
    return V.where(cond, left, right)


def _nan_branch(cond: np.ndarray, other: np.ndarray, nan_where_true: bool) -> np.ndarray:
    """`where(sign(det) == -1, nan, log|det|)`, torch's logdet: log(det), whose domain is det > 0.

    Any other NaN branch would need a domain constraint that symjac cannot record: refused.
    """
    shape = np.broadcast_shapes(cond.shape, other.shape)
    cond_b, other_b = np.broadcast_to(cond, shape), np.broadcast_to(other, shape)
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(shape):
        c, v = cond_b[index], other_b[index]
        if isinstance(c, (bool, np.bool_)):
            c = sp.true if c else sp.false
        if c is (sp.false if nan_where_true else sp.true):  # a constant condition picks `other`
            out[index] = v
            continue
        if c is (sp.true if nan_where_true else sp.false):
            out[index] = sp.nan  # refused with the output as undefined
            continue
        if (nan_where_true and isinstance(c, sp.Eq) and isinstance(c.lhs, sp.sign)
                and c.rhs == -1 and isinstance(v, sp.log) and isinstance(v.args[0], sp.Abs)
                and v.args[0].args[0] == c.lhs.args[0]):
            out[index] = sp.log(c.lhs.args[0])
            continue
        raise TraceError(
            "expr: the traced code returns NaN on part of its inputs (torch.where(c, nan, x)); "
            "symjac cannot record that as a domain constraint: refused")
    return out


# reductions ------------------------------------------------------------------------------


@_rule("sum")
def _sum(x, dim=None, keepdim=False, dtype=None):
    return V.sum(_sym(x), axis=_dims(dim, 0), keepdim=keepdim)


@_rule("mean")
def _mean(x, dim=None, keepdim=False, dtype=None):
    return V.mean(_sym(x), axis=_dims(dim, 0), keepdim=keepdim)


@_rule("prod")
def _prod(x, dim=None, keepdim=False, dtype=None):
    return V.prod(_sym(x), axis=_dims(dim, 0), keepdim=keepdim)


@_rule("var")
def _var(x, dim=None, unbiased=None, keepdim=False, correction=None):
    if isinstance(unbiased, bool):
        correction = 1 if unbiased else 0
    c = 1 if correction is None else correction
    if isinstance(c, float):
        if not c.is_integer():
            raise TraceError(f"expr: var with a fractional correction {c} is not supported")
        c = int(c)
    return V.var(_sym(x), axis=_dims(dim, 0), keepdim=keepdim, correction=c)


@_rule("var_mean")
def _var_mean(x, dim=None, unbiased=None, keepdim=False, correction=None):
    return (_var(x, dim, unbiased, keepdim, correction), _mean(x, dim, keepdim))


@_rule("amax")
def _amax(x, dim=(), keepdim=False):
    return V.max(_sym(x), axis=_dims(dim, 0), keepdim=keepdim)


@_rule("amin")
def _amin(x, dim=(), keepdim=False):
    return V.min(_sym(x), axis=_dims(dim, 0), keepdim=keepdim)


def _extreme(name: str):
    reduce = V.max if name == "max" else V.min
    pairwise = V.maximum if name == "max" else V.minimum

    def rule(x, dim=None, keepdim=False):
        if isinstance(dim, np.ndarray) or (dim is not None and not isinstance(dim, int)):
            return pairwise(_sym(x), _sym(dim))  # max.other: elementwise
        if dim is None:
            return reduce(_sym(x))
        return (reduce(_sym(x), axis=int(dim), keepdim=keepdim),
                _Unused(f"the indices of {name}(dim=...) (argmax/argmin: piecewise constant)"))

    return rule


_RULES["max"] = _extreme("max")
_RULES["min"] = _extreme("min")


@_rule("logsumexp")
def _logsumexp(x, dim, keepdim=False):
    return V.logsumexp(_sym(x), axis=_dims(dim, 0), keepdim=keepdim)


@_rule("_softmax", "softmax", "_safe_softmax")
def _softmax(x, dim, half_to_float=False, dtype=None):
    # _safe_softmax differs from softmax only on rows that are all -inf (it returns 0 there);
    # the traced inputs are finite.
    return V.softmax(_sym(x), axis=int(dim))


_log_softmax_op = _fallback("log_softmax", lambda x, axis=-1: V.log(V.softmax(x, axis=axis)))


@_rule("_log_softmax", "log_softmax")
def _log_softmax(x, dim, half_to_float=False, dtype=None):
    return _log_softmax_op(_sym(x), axis=int(dim))


@_rule("linalg_vector_norm")
def _vector_norm(x, ord=2, dim=None, keepdim=False, dtype=None):  # noqa: A002
    if ord not in (1, 2, 1.0, 2.0):
        raise TraceError(f"expr: vector norms of order {ord!r} are not part of symjac's vocabulary "
                         "(orders 1 and 2 are)")
    return V.norm(_sym(x), axis=_dims(dim, 0), keepdim=keepdim, ord=int(ord))


@_rule("softplus")
def _softplus(x, beta=1, threshold=20):
    # torch's definition, threshold included: x where beta * x > threshold.
    v, b = _sym(x), _sym(_number(beta))
    smooth = _fallback("softplus", None)
    soft = smooth(v * b) / b if smooth is not None else V.log(1 + V.exp(v * b)) / b
    return V.where(V.gt(v * b, _sym(_number(threshold))), v, soft)


@_rule("log_sigmoid_forward")
def _log_sigmoid(x):
    logsigmoid = _fallback("logsigmoid", lambda v: -V.log(1 + V.exp(-v)))
    return (logsigmoid(_sym(x)), _Unused("the buffer of log_sigmoid_forward"))


@_rule("logaddexp")
def _logaddexp(a, b):
    found = _fallback("logaddexp", None)
    if found is not None:
        return found(_sym(a), _sym(b))
    return V.log(V.exp(_sym(a)) + V.exp(_sym(b)))


# linear algebra ----------------------------------------------------------------------------

for _name in ("mm", "bmm", "dot", "matmul"):
    _RULES[_name] = (lambda f: lambda a, b: f(_sym(a), _sym(b)))(OPERATIONS[_name].implementation)
_RULES["mv"] = lambda a, b: V.matmul(_sym(a), _sym(b))
_RULES["vdot"] = _RULES["dot"]
_RULES["inner"] = lambda a, b: V.matmul(_sym(a), V.transpose(_sym(b)))
_RULES["outer"] = lambda a, b: V.outer(_sym(a), _sym(b))
_RULES["ger"] = _RULES["outer"]
_RULES["trace"] = lambda x: V.trace(_sym(x))
_RULES["t"] = lambda x: V.transpose(_sym(x))
_RULES["numpy_T"] = lambda x: V.transpose(_sym(x))


@_rule("_linalg_det")
def _det(a):
    return (V.det(_sym(a)), _Unused("the LU factors of det"), _Unused("the pivots of det"))


_RULES["det"] = lambda a: V.det(_sym(a))
_RULES["linalg_det"] = _RULES["det"]


@_rule("_linalg_slogdet")
def _slogdet(a):
    d = V.det(_sym(a))
    sign = np.vectorize(sp.sign, otypes=[object])(d) if d.ndim else ops._scalar(sp.sign(d[()]))
    return (sign, V.log(V.abs(d)), _Unused("the LU factors of slogdet"),
            _Unused("the pivots of slogdet"))


@_rule("linalg_inv_ex")
def _inv_ex(a, check_errors=False):
    return (V.inv(_sym(a)), _Unused("the info output of inv_ex"))


_RULES["linalg_inv"] = lambda a: V.inv(_sym(a))
_RULES["inverse"] = _RULES["linalg_inv"]


@_rule("_linalg_solve_ex")
def _solve_ex(a, b, left=True, check_errors=False):
    if not left:
        raise TraceError("expr: solve with left=False (X A = B) is not supported; transpose instead")
    return (V.solve(_sym(a), _sym(b)), _Unused("the LU factors of solve"),
            _Unused("the pivots of solve"), _Unused("the info output of solve"))


_RULES["linalg_solve"] = lambda a, b, left=True: _solve_ex(a, b, left)[0]
_RULES["_linalg_check_errors"] = lambda *args, **kwargs: None


@_rule("convolution", "_convolution")
def _convolution(x, weight, bias, stride, padding, dilation, transposed, output_padding,
                 groups, *rest):
    if transposed:
        raise TraceError("expr: transposed convolution is not supported by the tracer")
    return _conv(_sym(x), _sym(weight), None if bias is None else _sym(bias), list(stride),
                 list(padding), list(dilation), int(groups))


def _conv(x, w, bias, stride, padding, dilation, groups):
    """Convolution as slices, stacks and one matrix product per group (all vocabulary ops)."""
    spatial = x.ndim - 2
    batch, channels = x.shape[:2]
    out_channels, per_group = w.shape[:2]
    kernel = w.shape[2:]
    padded = x
    for axis, pad in enumerate(padding):
        if pad:
            zeros_shape = list(padded.shape)
            zeros_shape[2 + axis] = pad
            zeros = _sym(np.zeros(zeros_shape, dtype=np.int64))
            padded = V.concatenate(zeros, padded, zeros, axis=2 + axis)
    out_sizes = [(padded.shape[2 + d] - dilation[d] * (kernel[d] - 1) - 1) // stride[d] + 1
                 for d in range(spatial)]
    blocks = []
    for g in range(groups):
        patches = []
        for c in range(per_group):
            for offsets in np.ndindex(*kernel):
                key = [slice(None), slice(g * per_group + c, g * per_group + c + 1)]
                key += [slice(offsets[d] * dilation[d],
                              offsets[d] * dilation[d] + stride[d] * (out_sizes[d] - 1) + 1,
                              stride[d]) for d in range(spatial)]
                patches.append(V.index(padded, tuple(key)))
        columns = V.reshape(V.concatenate(*patches, axis=1),
                              (batch, per_group * math.prod(kernel), math.prod(out_sizes)))
        size = out_channels // groups
        kernel_rows = V.reshape(V.index(w, (slice(g * size, (g + 1) * size),)),
                                  (size, per_group * math.prod(kernel)))
        blocks.append(V.matmul(kernel_rows, columns))
    out = V.concatenate(*blocks, axis=1) if groups > 1 else blocks[0]
    out = V.reshape(out, (batch, out_channels, *out_sizes))
    if bias is not None:
        out = out + V.reshape(bias, (out_channels,) + (1,) * spatial)
    return out


@_rule("avg_pool2d", "avg_pool1d")
def _avg_pool(x, kernel_size, stride=(), padding=0, ceil_mode=False, count_include_pad=True,
              divisor_override=None):
    v = _sym(x)
    spatial = 2 if len(kernel_size) == 2 else 1
    pads = list(padding) if isinstance(padding, (list, tuple)) else [padding] * spatial
    if ceil_mode or any(pads) or divisor_override is not None:
        raise TraceError("expr: average pooling with padding, ceil_mode or divisor_override is not "
                         "supported by the tracer")
    kernel = [int(k) for k in kernel_size]
    steps = [int(k) for k in stride] if stride else kernel
    unbatched = v.ndim == spatial + 1
    if unbatched:
        v = V.reshape(v, (1,) + v.shape)
    channels = v.shape[1]
    weight = np.full((channels, 1, *kernel), sp.Rational(1, math.prod(kernel)), dtype=object)
    out = _conv(v, weight, None, steps, [0] * spatial, [1] * spatial, channels)
    return V.reshape(out, out.shape[1:]) if unbatched else out


# shapes ------------------------------------------------------------------------------------


@_rule("view", "_unsafe_view", "reshape", "view_copy", "_reshape_alias")
def _view(x, shape, *rest):
    return V.reshape(_sym(x), tuple(int(n) for n in shape))


@_rule("expand", "expand_copy")
def _expand(x, shape, implicit=False):
    v = _sym(x)
    target = tuple(v.shape[k - (len(shape) - v.ndim)] if n == -1 else int(n)
                   for k, n in enumerate(shape))
    return np.broadcast_to(v, target).copy()


@_rule("permute", "permute_copy")
def _permute(x, dims):
    return V.permute(_sym(x), tuple(int(d) for d in dims))


@_rule("transpose", "transpose_copy", "swapaxes", "swapdims")
def _transpose(x, dim0, dim1):
    return V.swapaxes(_sym(x), int(dim0), int(dim1))


@_rule("unsqueeze", "unsqueeze_copy")
def _unsqueeze(x, dim):
    v = _sym(x)
    d = int(dim) % (v.ndim + 1)
    return V.reshape(v, v.shape[:d] + (1,) + v.shape[d:])


@_rule("squeeze", "squeeze_copy")
def _squeeze(x, dim=None):
    v = _sym(x)
    if dim is None:
        dims = [d for d, n in enumerate(v.shape) if n == 1]
    else:
        listed = dim if isinstance(dim, (list, tuple)) else [dim]
        dims = [int(d) % max(v.ndim, 1) for d in listed]
        dims = [d for d in dims if d < v.ndim and v.shape[d] == 1]
    return V.reshape(v, tuple(n for d, n in enumerate(v.shape) if d not in dims))


@_rule("select", "select_copy")
def _select(x, dim, index):
    v = _sym(x)
    key = [slice(None)] * v.ndim
    key[int(dim) % v.ndim] = int(index)
    return V.index(v, tuple(key))


@_rule("slice", "slice_copy")
def _slice(x, dim=0, start=None, end=None, step=1):
    v = _sym(x)
    key = [slice(None)] * v.ndim
    key[int(dim) % v.ndim] = slice(start, end, step)
    return V.index(v, tuple(key))


@_rule("rev")
def _rev(x, dims):
    v = _sym(x)
    key = tuple(slice(None, None, -1) if d in [int(k) % v.ndim for k in dims] else slice(None)
                for d in range(v.ndim))
    return V.index(v, key)


_RULES["flip"] = _rev


@_rule("diagonal", "diagonal_copy")
def _diagonal(x, offset=0, dim1=0, dim2=1):
    return V.diagonal(_sym(x), offset=offset, axis1=dim1, axis2=dim2)


@_rule("cat", "concat", "concatenate")
def _cat(tensors, dim=0):
    parts = [_sym(t) for t in tensors if not (_sym(t).ndim == 1 and _sym(t).size == 0)]
    return V.concatenate(*parts, axis=int(dim))


@_rule("stack")
def _stack(tensors, dim=0):
    return V.stack(*(_sym(t) for t in tensors), axis=int(dim))


@_rule("constant_pad_nd")
def _constant_pad(x, pad, value=0):
    v = _sym(x)
    fill = _sym(_number(value))[()]
    for k in range(len(pad) // 2):
        axis = v.ndim - 1 - k
        before, after = int(pad[2 * k]), int(pad[2 * k + 1])
        if before < 0 or after < 0:
            raise TraceError("expr: negative padding (cropping) is not supported; slice instead")
        parts = []
        for width in (before, None, after):
            if width is None:
                parts.append(v)
            elif width:
                shape = list(v.shape)
                shape[axis] = width
                parts.append(np.full(shape, fill, dtype=object))
        v = V.concatenate(*parts, axis=axis)
    return v


@_rule("masked_fill")
def _masked_fill(x, mask, value):
    return V.where(_condition(mask), _sym(_number(value)), _sym(x))


@_rule("_cdist_forward")
def _cdist(x1, x2, p, compute_mode=None):
    if p != 2:
        raise TraceError(f"expr: cdist with p={p} is not supported (p=2 is)")
    a, b = _sym(x1), _sym(x2)
    difference = V.reshape(a, a.shape[:-1] + (1, a.shape[-1])) - V.reshape(
        b, b.shape[:-2] + (1,) + b.shape[-2:])
    return V.norm(difference, axis=-1)


@_rule("as_strided", "as_strided_copy")
def _as_strided(x, size, stride, storage_offset=None):
    raise AssertionError("interpreted in _Interpreter.call")  # pragma: no cover


@_rule("gather")
def _gather(x, dim, index, sparse_grad=False):
    return V.gather(_sym(x), int(dim), _ints(index, "the index of gather"))


@_rule("index_select")
def _index_select(x, dim, index):
    v = _sym(x)
    key = [slice(None)] * v.ndim
    key[int(dim) % v.ndim] = _ints(index, "the index of index_select").reshape(-1)
    return V.index(v, tuple(key))


@_rule("index")
def _index(x, indices):
    v = _sym(x)
    key = []
    for item in indices:
        if item is None:
            key.append(slice(None))
        elif isinstance(item, np.ndarray) and item.dtype == bool:
            raise TraceError("expr: boolean-mask indexing gives a data-dependent shape; use where")
        else:
            if isinstance(item, np.ndarray) and item.dtype == object and any(
                    isinstance(e, sp.logic.boolalg.Boolean) for e in item.flat):
                raise TraceError(
                    "expr: indexing with a mask computed from the input (x[x > 0]) has a "
                    "data-dependent shape: refused; use torch.where")
            key.append(_ints(item, "an index tensor"))
    return V.index(v, tuple(key))


@_rule("clone", "alias", "contiguous", "lift_fresh_copy", "lift_fresh", "alias_copy",
       "_to_copy", "to", "type_as", "_conj", "resolve_conj", "resolve_neg", "copy")
def _identity(x, *args, **kwargs):
    dtype = kwargs.get("dtype")
    torch = _torch()
    if dtype is not None and not dtype.is_floating_point and dtype != torch.bool:
        value = x
        if isinstance(value, np.ndarray) and value.dtype == object and not all(
                isinstance(v, sp.Integer) or (isinstance(v, sp.logic.boolalg.Boolean)) for v in value.flat):
            raise TraceError(
                f"expr: the traced code casts a value to {dtype} (rounding): piecewise constant, no "
                "exact counterpart")
    if dtype is not None and dtype.is_complex:
        raise TraceError("expr: complex tensors are not part of symjac's real-valued vocabulary")
    return x


def _shape_of(value: Any) -> tuple[int, ...]:
    return tuple(np.shape(value))


def _full(shape, value):
    value = _sym(_number(value))[()] if not isinstance(value, sp.Basic) else value
    return np.full(tuple(int(n) for n in shape), value, dtype=object)


_RULES["zeros"] = lambda size, **kw: _full(size, 0)
_RULES["ones"] = lambda size, **kw: _full(size, 1)
_RULES["empty"] = lambda size, **kw: _full(size, 0)
_RULES["full"] = lambda size, value, **kw: _full(size, value)
_RULES["new_zeros"] = lambda x, size, **kw: _full(size, 0)
_RULES["new_ones"] = lambda x, size, **kw: _full(size, 1)
_RULES["new_empty"] = lambda x, size, **kw: _full(size, 0)
_RULES["new_full"] = lambda x, size, value, **kw: _full(size, value)
_RULES["zeros_like"] = lambda x, **kw: _full(_shape_of(x), 0)
_RULES["ones_like"] = lambda x, **kw: _full(_shape_of(x), 1)
_RULES["empty_like"] = lambda x, **kw: _full(_shape_of(x), 0)
_RULES["full_like"] = lambda x, value, **kw: _full(_shape_of(x), value)
_RULES["fill"] = lambda x, value: _full(_shape_of(x), value)
_RULES["scalar_tensor"] = lambda value, **kw: _sym(_number(value))
_RULES["eye"] = lambda n, m=None, **kw: V.eye(int(n)) if m is None or m == n else _eye2(n, m)


def _eye2(n, m):
    out = np.full((int(n), int(m)), sp.Integer(0), dtype=object)
    for k in range(min(int(n), int(m))):
        out[k, k] = sp.Integer(1)
    return out


@_rule("arange")
def _arange(start, end=None, step=1, **kw):
    values = np.arange(start, end, step) if end is not None else np.arange(start)
    return _sym(values)


# refusals ---------------------------------------------------------------------------------

_NO_COUNTERPART = {
    "sort": "sorting", "argsort": "sorting", "topk": "sorting", "kthvalue": "sorting",
    "median": "sorting", "nanmedian": "sorting", "msort": "sorting", "unique": "sorting",
    "_unique2": "sorting", "argmax": "an index (piecewise constant)",
    "argmin": "an index (piecewise constant)", "_linalg_eigh": "an eigen-decomposition",
    "linalg_eig": "an eigen-decomposition", "_linalg_eigvals": "an eigen-decomposition",
    "linalg_eigvals": "an eigen-decomposition", "_linalg_svd": "a singular value decomposition",
    "linalg_qr": "a QR decomposition", "linalg_cholesky_ex": "a Cholesky factorisation",
    "cholesky": "a Cholesky factorisation", "linalg_lu": "an LU factorisation",
    "linalg_lu_factor_ex": "an LU factorisation", "rand": "random numbers",
    "randn": "random numbers", "rand_like": "random numbers", "randn_like": "random numbers",
    "randint": "random numbers", "randint_like": "random numbers", "randperm": "random numbers",
    "bernoulli": "random numbers", "bernoulli_": "random numbers", "normal": "random numbers",
    "uniform": "random numbers", "uniform_": "random numbers", "normal_": "random numbers",
    "multinomial": "random numbers", "native_dropout": "random numbers (dropout in training "
    "mode; call module.eval() or pass training=False)", "exponential": "random numbers",
    "floor": "rounding", "ceil": "rounding", "round": "rounding", "trunc": "rounding",
    "frac": "rounding", "sign": "a step function", "sgn": "a step function",
    "heaviside": "a step function", "remainder": "rounding", "fmod": "rounding",
    "floor_divide": "rounding", "nonzero": "a data-dependent shape",
    "masked_select": "a data-dependent shape", "_local_scalar_dense":
    "a tensor value read into Python (x.item(), float(x))", "detach":
    "detach(), which cuts the derivative (the Function would not be what torch differentiates)",
    "isnan": "a test on values", "isinf": "a test on values", "isfinite": "a test on values",
    "cumsum": "a scan (not yet part of the vocabulary)", "cumprod": "a scan (not yet part of "
    "the vocabulary)", "lgamma": "a special function without generated code",
    "digamma": "a special function without generated code", "erfc": "a special function "
    "without generated code", "erfinv": "a special function without generated code",
}

_INPLACE_VIEWS = {
    "view", "_unsafe_view", "reshape", "expand", "permute", "transpose", "t", "select", "slice",
    "unsqueeze", "squeeze", "diagonal", "alias", "as_strided", "unfold", "split", "unbind",
    "narrow", "view_as", "expand_as", "numpy_T", "detach",
}


# --------------------------------------------------------------------------- interpreter


def _mutates(node) -> bool:
    """An op that writes into one of its arguments (in place, `copy_to`): never dead code."""
    schema = getattr(node.target, "_schema", None)
    if schema is not None and any(a.alias_info is not None and a.alias_info.is_write
                                  for a in schema.arguments):
        return True
    return _op_name(node.target)[1] in ("copy_to", "copy_", "set_", "resize_")


def _op_name(target: Any) -> tuple[str, str, str]:
    """(namespace, packet name, printable name) of a graph node's target."""
    if target is operator.getitem:
        return ("python", "getitem", "getitem")
    text = str(target)
    parts = text.split(".")
    if len(parts) >= 2 and hasattr(target, "namespace"):
        return (target.namespace, parts[1], text)
    name = getattr(target, "__name__", text)
    return ("python", name, text)


class _Interpreter:
    def __init__(self, graph_module, arguments: list[np.ndarray], describe_fn: str, limits: Any = None):
        from symjac._budget import DEFAULT_LIMITS

        self.limits = limits if limits is not None else DEFAULT_LIMITS
        self.work = 0
        self.gm = graph_module
        self.arguments = arguments
        self.describe_fn = describe_fn
        self.values: dict[Any, Any] = {}
        self.ops_used: list[str] = []
        self.dependence: dict[Any, bool] = {}

    def value(self, argument: Any) -> Any:
        fx = sys.modules["torch.fx"]
        if isinstance(argument, fx.Node):
            return self.values[argument]
        if isinstance(argument, (list, tuple)):
            return type(argument)(self.value(a) for a in argument)
        torch = _torch()
        if isinstance(argument, torch.dtype) or isinstance(argument, torch.device):
            return argument
        return argument

    def constant(self, tensor: Any, name: str) -> Any:
        torch = _torch()
        if not isinstance(tensor, torch.Tensor):
            raise TraceError(f"expr: graph attribute {name!r} is not a tensor")
        data = tensor.detach().cpu()
        if data.is_complex():
            raise TraceError("expr: complex tensors are not part of symjac's real-valued vocabulary")
        if data.dtype == torch.bool:
            return data.numpy().astype(bool)
        if not data.is_floating_point():
            return data.numpy().astype(np.int64)
        return _sym(data.to(torch.float64).numpy(), what=f"the constant {name}")

    def run(self) -> tuple[Any, list[str]]:
        placeholders = iter(self.arguments)
        output = None
        users = {node: len(node.users) for node in self.gm.graph.nodes}
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                self.values[node] = next(placeholders)
            elif node.op == "get_attr":
                self.values[node] = self.constant(getattr(self.gm, node.target), node.target)
            elif node.op == "call_function":
                if not node.users and not _mutates(node):  # dead code (a detach torch left): no effect
                    continue
                self.values[node] = self.call(node, users)
            elif node.op == "output":
                output = self.value(node.args[0])
            else:
                raise TraceError(f"expr: unexpected graph node {node.op} ({node.target})")
        return output, self.ops_used

    def call(self, node, users: Mapping[Any, int]) -> Any:
        namespace, name, printable = _op_name(node.target)
        if name == "getitem" and namespace == "python":
            container, position = self.value(node.args[0]), node.args[1]
            return container[position]
        if namespace not in ("aten", "prims"):
            raise TraceError(
                f"expr: {self.describe_fn} calls the opaque custom op {printable} (namespace "
                f"{namespace!r}): symjac cannot see its math, so it cannot build an exact Function "
                "from it; write its forward with torch ops, or give the spec as text")
        if name == "detach" and not self.depends(node):
            return self.value(node.args[0])  # a constant's detach (torch.tensor(...)): no derivative to cut
        if (name in _NO_COUNTERPART or name not in _RULES) and not _mutates(node) \
                and not self.depends(node) and name not in ("rand", "randn", "bernoulli", "normal",
                                                            "uniform", "randint", "randperm"):
            return self.fold(node, printable)  # constant index arithmetic (a decomposition's)
        if name in _NO_COUNTERPART:
            raise TraceError(
                f"expr: {self.describe_fn} uses {printable}, {_NO_COUNTERPART[name]}, which has "
                "no exact counterpart in symjac's vocabulary: refused (the Function would not be "
                "the function torch differentiates)")
        rule = _RULES.get(name)
        if _mutates(node):  # every in-place op: safe only on a fresh value used nowhere else
            if not name.endswith("_") or name[:-1] not in _RULES:
                raise TraceError(
                    f"expr: {self.describe_fn} writes into a tensor with {printable}, which cannot "
                    "be traced faithfully here; write it without in-place ops")
            rule = self.inplace(node, name, users)
        if rule is None:
            raise TraceError(
                f"expr: {self.describe_fn} uses {printable}, which the tracer does not interpret "
                "yet (no rule maps it onto symjac's vocabulary); write the spec as text, or use "
                "other torch ops")
        self.ops_used.append(printable)
        self.spend(name, node, printable)
        if name in ("as_strided", "as_strided_copy"):
            return self.as_strided(node, printable)
        args = [self.value(a) for a in node.args]
        kwargs = {k: self.value(v) for k, v in node.kwargs.items()
                  if k not in ("dtype", "layout", "device", "pin_memory", "memory_format",
                               "non_blocking", "requires_grad", "generator")
                  or (k == "dtype" and name in ("_to_copy", "to"))}
        try:
            return rule(*args, **kwargs)
        except SymjacError:
            raise
        except (TypeError, ValueError, IndexError, AttributeError, ArithmeticError) as err:
            raise TraceError(
                f"expr: interpreting {printable} of {self.describe_fn} failed: "
                f"{type(err).__name__}: {_first_line(str(err))}") from None

    def spend(self, name: str, node, printable: str) -> None:
        """The text's budgets, before the work: entries of each result, and the symbolic work of the
        linear algebra (det about n**5, inverse and solve about n**7 per matrix)."""
        from symjac._budget import raise_hint
        from symjac._errors import TooLargeError

        meta = node.meta.get("val")
        shapes = [tuple(meta.shape)] if hasattr(meta, "shape") else [
            tuple(v.shape) for v in (meta or ()) if hasattr(v, "shape")]
        entries = max((math.prod(shape) for shape in shapes), default=0)
        if entries > self.limits.max_entries:
            raise TooLargeError(
                f"expr: {printable} would produce {entries} entries; the limit is "
                f"{self.limits.max_entries} (Limits.max_entries); use smaller shapes, "
                + raise_hint("max_entries"))
        power = {"_linalg_det": 5, "det": 5, "linalg_det": 5, "_linalg_slogdet": 5,
                 "linalg_inv_ex": 7, "linalg_inv": 7, "inverse": 7, "_linalg_solve_ex": 7,
                 "linalg_solve": 7}.get(name)
        if power is not None:
            matrix = tuple(node.args[0].meta["val"].shape)
            self.work += math.prod(matrix[:-2]) * matrix[-1] ** power
        else:
            self.work += entries
        from symjac import _cost

        seconds = _cost.operation_seconds("default", self.work)
        if seconds > self.limits.max_seconds:
            raise TooLargeError(
                f"expr: interpreting the traced code up to {printable} is estimated to take about "
                f"{seconds:,.1f} s here, over the limit of {self.limits.max_seconds:g} s "
                "(Limits.max_seconds); use smaller shapes, " + raise_hint("max_seconds", _cost.suggest(seconds, later=True)))
        if self.work > self.limits.max_work:
            raise TooLargeError(
                f"expr: too much symbolic work: about {self.work} elementary operations by "
                f"{printable}, over the budget of {self.limits.max_work} (Limits.max_work); use "
                "smaller shapes, " + raise_hint("max_work"))

    def fold(self, node, printable: str) -> Any:
        """Run an op whose arguments are all constants in torch, and take its result as a constant."""
        torch = _torch()
        fx = sys.modules["torch.fx"]

        def tensor(argument):
            if isinstance(argument, fx.Node):
                value = self.values[argument]
                meta = argument.meta.get("val")
                dtype = getattr(meta, "dtype", torch.float64)
                if isinstance(value, np.ndarray) and value.dtype == object:
                    try:
                        value = np.array([float(v) for v in value.flat]).reshape(value.shape)
                    except TypeError:
                        raise TraceError(f"expr: cannot fold the constant op {printable}") from None
                return torch.as_tensor(np.asarray(value)).to(dtype)
            if isinstance(argument, (list, tuple)):
                return type(argument)(tensor(a) for a in argument)
            return argument

        with torch.no_grad():
            result = node.target(*tensor(list(node.args)), **{k: tensor(v) for k, v in node.kwargs.items()})
        self.ops_used.append(printable + " (constant)")
        if isinstance(result, (list, tuple)):
            return type(result)(self.constant(r, printable) for r in result)
        return self.constant(result, printable)

    def depends(self, node) -> bool:
        """Whether `node` has a data path from an input (placeholder)."""
        memo = self.dependence
        for item in self.gm.graph.nodes:
            if item in memo:
                continue
            memo[item] = item.op == "placeholder" or any(memo.get(a, False) for a in item.all_input_nodes)
            if item is node:
                break
        return memo[node]

    def as_strided(self, node, printable: str) -> np.ndarray:
        """`as_strided` of a contiguous tensor (a decomposition's view): entries picked by stride."""
        source = node.args[0]
        meta = source.meta.get("val") if hasattr(source, "meta") else None
        if meta is None or not meta.is_contiguous() or meta.storage_offset() != 0:
            raise TraceError(
                f"expr: {printable} of a tensor that is not contiguous from its storage's start "
                "cannot be traced faithfully here")
        flat = _sym(self.values[source]).reshape(-1)
        size, stride = [int(n) for n in node.args[1]], [int(n) for n in node.args[2]]
        offset = int(node.args[3]) if len(node.args) > 3 and node.args[3] is not None else 0
        out = np.empty(tuple(size), dtype=object)
        for index in np.ndindex(*size):
            out[index] = flat[offset + sum(i * s for i, s in zip(index, stride))]
        return out

    def inplace(self, node, name: str, users: Mapping[Any, int]) -> Callable[..., Any]:
        """An in-place op left by a trace without functionalize: safe only on a fresh value."""
        fx = sys.modules["torch.fx"]
        target = node.args[0]
        if isinstance(target, fx.Node):
            producer = _op_name(target.target)[1] if target.op == "call_function" else target.op
            if target.op == "placeholder" or producer in _INPLACE_VIEWS or users[target] > 1:
                raise TraceError(
                    f"expr: {self.describe_fn} mutates a tensor in place ({name}) that is an "
                    "input, a view or used elsewhere: its value cannot be traced faithfully "
                    "here; write it without in-place ops")
        return _RULES[name[:-1]]


# --------------------------------------------------------------------------- entry point


def trace(fn: Any, inputs: tuple, *, params: str = "inputs", limits: Any = None) -> Traced:
    """Trace torch code `fn` at the declared `inputs` (symjac `Input`s) into a symbolic output.

    For an `nn.Module` with `params="inputs"`, each parameter becomes an input named after it
    (`weight`, `bias`, `layers_0_weight`), after the declared ones; `params="consts"` keeps
    them as exact constants.
    """
    torch = _torch()
    if params not in PARAMS:
        raise InvalidArgumentError(f"params: must be one of {PARAMS}; received {params!r}")
    name = describe(fn)
    shapes = [inp.shape for inp in inputs]
    arguments = [inp.symbols.copy() for inp in inputs]
    parameters: list[tuple[str, tuple[int, ...]]] = []
    target: Callable = fn
    if isinstance(fn, torch.nn.Module):
        if fn.training and _has_training_behaviour(fn):
            raise TraceError(
                f"expr: {name} is in training mode and has dropout or batch norm layers, whose "
                "training forward is random or depends on the batch statistics; call "
                f"{name}.eval() first")
        named = [(key, p) for key, p in fn.named_parameters()]
        if params == "inputs" and named:
            declared = {inp.name for inp in inputs}
            keys = [key for key, _ in named]
            for key, p in named:
                parameters.append((_parameter_name(key, declared), tuple(p.shape)))
            target = _functional(fn, keys, len(inputs))
            shapes = shapes + [shape for _, shape in parameters]
            arguments = arguments + [_entry_symbols(n, s) for n, s in parameters]
    else:
        _check_signature(fn, len(inputs), name)
    if not isinstance(fn, torch.nn.Module):
        def target(*tensors, _fn=fn):  # make_fx binds every parameter, defaults included
            return _fn(*tensors)
    graph = _graphs(target, shapes, name)
    output, used = _Interpreter(graph, arguments, name, limits).run()
    if isinstance(output, (list, tuple)):
        if len(output) != 1:
            raise TraceError(
                f"expr: {name} returns {len(output)} tensors; a Function has one output (return "
                "one tensor, e.g. torch.cat of them)")
        output = output[0]
    if output is None:
        raise TraceError(f"expr: {name} returns None; a Function needs a tensor output")
    _check_data_path(graph, name)
    return Traced(_sym(output, "the output"), tuple(parameters), name, tuple(used), identity(fn))


def _has_training_behaviour(module) -> bool:
    torch = _torch()
    kinds = (torch.nn.modules.dropout._DropoutNd, torch.nn.modules.batchnorm._BatchNorm)
    return any(isinstance(m, kinds) for m in module.modules())


def _entry_symbols(name: str, shape: tuple[int, ...]) -> np.ndarray:
    return ops.entry_symbols(name, shape)


def _parameter_name(key: str, declared: set[str]) -> str:
    from symjac._parse import validate_name

    name = re.sub(r"[^A-Za-z0-9_]", "_", key)
    if not name[:1].isalpha():
        name = "p" + name
    if name in declared:
        raise InvalidArgumentError(
            f"params: the module's parameter {key!r} would be named {name!r}, which is also a "
            "declared input; rename the input")
    try:
        return validate_name(name, argument=f"parameter {key!r}")
    except InvalidArgumentError:
        return validate_name("p_" + name, argument=f"parameter {key!r}")


def _functional(module, keys: list[str], count: int) -> Callable:
    torch = _torch()

    def call(*tensors):
        values = dict(zip(keys, tensors[count:]))
        return torch.func.functional_call(module, values, tuple(tensors[:count]))

    call.__qualname__ = describe(module)
    call._symjac_identity = identity(module)
    return call


def module_implementation(impl: Any, f: Any) -> Any:
    """`impl` as verify calls it: a traced module's parameters are passed as inputs after the
    declared ones, so an `nn.Module` spec'd with `params="inputs"` is called functionally."""
    torch = sys.modules.get("torch")
    parameters = getattr(f, "module_parameters", ())
    if torch is None or not parameters or not isinstance(impl, torch.nn.Module):
        return impl
    keys = [key for key, _ in impl.named_parameters()]
    if len(keys) != len(parameters):
        raise InvalidArgumentError(
            f"impl: the module has {len(keys)} parameters, the spec {len(parameters)} "
            f"({', '.join(parameters)}); trace the same module")
    return _functional(impl, keys, len(f.inputs) - len(parameters))


def _check_signature(fn: Any, count: int, name: str) -> None:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*range(count))
    except TypeError as err:
        raise InvalidArgumentError(
            f"expr: {name} cannot be called with the {count} declared input(s): {err}") from None


def _check_data_path(graph, name: str) -> None:
    """Refuse an output with no data path from any input (a constant in disguise)."""
    depends: dict[Any, bool] = {}
    fx = sys.modules["torch.fx"]
    for node in graph.graph.nodes:
        if node.op == "placeholder":
            depends[node] = True
        elif node.op == "output":
            outputs = node.args[0] if isinstance(node.args[0], (list, tuple)) else [node.args[0]]
            for out in outputs:
                if isinstance(out, fx.Node) and not depends.get(out, False):
                    raise TraceError(
                        f"expr: the output of {name} has no data path to any input (it is a "
                        "constant to torch: a value that left torch through .numpy(), .tolist() "
                        "or .item(), or detach(), comes back as a constant): refused, since its "
                        "derivative would be wrong")
        else:
            depends[node] = any(depends.get(a, False) for a in node.all_input_nodes)
