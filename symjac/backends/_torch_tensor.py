"""The tensor-level torch forward of a Function: torch operations on whole tensors.

Where the generated torch forward (`backends/_torch.forward`) evaluates the exact expression entry
by entry (528 small-tensor operations for `tanh(W @ x + b)` at n = 16), this forward runs what a
user's torch code runs: `torch.matmul`, `torch.tanh`, `torch.linalg.det` on whole tensors. torch
autograd of it therefore exercises torch's own derivative rules (the `torch-reverse` and
`torch-forward` routes of `symjac.check`), at the cost of a few operations per call.

It is generated from the Function's matrix-level form, never guessed:

- a Function built from text: the text's validated `ast` tree (`symjac._parse.validated_tree`,
  the very checks the text passed when the Function was built), each node compiled once into a
  closure; each call of the language runs its row's entry of `TORCH_IMPLEMENTATIONS`;
- a Function built from a SymPy matrix expression (`Function.matrix_expression`): its tree, node
  class by node class (`_MATRIX_NODES`, `_SCALAR_FUNCTIONS`);
- any other Function (a callable on symbolic arrays, SymPy scalar expressions, a traced torch
  callable) has none: `tensor_forward` returns None. A traced Function's own torch code is what
  `symjac.verify` runs (its `impl-*` routes); `check` does not keep the callable.

Any operation without an entry here means no tensor forward for that Function (`tensor_forward`
returns None and `reason` says which), never an approximation.

`TORCH_IMPLEMENTATIONS` is the one table: vocabulary row name (`symjac._vocabulary.OPERATIONS`)
-> `impl(ctx, *args, **keywords)`, with `ctx.torch` the torch module and `ctx.tensor(v)` a value
as a tensor of the point's dtype. torch is imported on first call only.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

from .. import ops

__all__ = ["Unsupported", "TORCH_IMPLEMENTATIONS", "TensorForward", "tensor_forward", "no_tensor_reason"]


class _Unsupported(Exception):
    """This Function has no faithful tensor forward (here, or at this point); the message says why."""


Unsupported = _Unsupported


class _Context:
    """What an implementation needs at call time: torch, the dtype, conversion of numbers, and
    (forward mode) `lift`, which gives a constant tensor a zero tangent (`TensorForward.__call__`)."""

    __slots__ = ("torch", "dtype", "lift")

    def __init__(self, torch, dtype, lift=None):
        self.torch = torch
        self.dtype = dtype
        self.lift = lift

    def tensor(self, value):
        if isinstance(value, self.torch.Tensor):
            return value
        if isinstance(value, bool):
            return self.torch.tensor(value)
        if isinstance(value, complex):
            raise _Unsupported("a complex intermediate value")
        out = self.torch.tensor(value, dtype=self.dtype)
        return out if self.lift is None else self.lift(out)

    def operand(self, value, other):
        """`value` as an operand of an arithmetic operator with `other`: unchanged, except a
        number beside a tensor in forward mode, which becomes a tensor with a zero tangent."""
        if self.lift is None or isinstance(value, (bool, self.torch.Tensor)) or not isinstance(other, self.torch.Tensor):
            return value
        return self.tensor(value)


def _unary(name: str) -> Callable:
    def impl(c, x):
        return getattr(c.torch, name)(c.tensor(x))

    return impl


def _binary(name: str) -> Callable:
    def impl(c, a, b):
        return getattr(c.torch, name)(c.tensor(a), c.tensor(b))

    return impl


def _reduction(name: str, last: Callable) -> Callable:
    """`last(ctx, t)` reduces the last axis of `t`; the reduced axes are moved last and flattened,
    so that `axis` and `keepdim` mean exactly what `symjac.ops` makes of them (`ops._axes`)."""

    def impl(c, x, *, axis=None, keepdim=False, **options):
        t = c.tensor(x)
        shape = tuple(t.shape)
        axes = ops._axes(name, shape, axis)
        kept = [d for d in range(t.dim()) if d not in axes]
        out_shape = ops._result_shape(name, shape, axis=axis, keepdim=keepdim, **options)
        moved = t.permute(kept + list(axes)) if kept and axes and kept + list(axes) != list(range(t.dim())) else t
        flat = moved.reshape(tuple(shape[d] for d in kept) + (-1,))
        return last(c, flat, **options).reshape(out_shape)

    return impl


def _norm_last(c, t, *, ord=2):  # noqa: A002 - the language's keyword
    if isinstance(ord, bool) or ord not in (1, 2):
        raise _Unsupported(f"norm with ord={ord!r}")
    return c.torch.linalg.vector_norm(t, ord=ord, dim=-1)


def _var_last(c, t, *, correction=1):
    return c.torch.var(t, dim=-1, correction=int(correction))


def _softmax(log: bool) -> Callable:
    def impl(c, x, *, axis=-1):
        t = c.tensor(x)
        if t.dim() == 0:
            return c.torch.zeros_like(t) if log else c.torch.ones_like(t)
        return (c.torch.log_softmax if log else c.torch.softmax)(t, dim=axis)

    return impl


def _transpose(c, x):
    t = c.tensor(x)
    return t.permute(tuple(reversed(range(t.dim())))) if t.dim() > 1 else t


def _clamp(c, x, low=None, high=None):
    out = c.tensor(x)
    if low is not None:
        out = c.torch.maximum(out, c.tensor(low))
    if high is not None:
        out = c.torch.minimum(out, c.tensor(high))
    return out


def _where(c, condition, a, b):
    return c.torch.where(c.tensor(condition), c.tensor(a), c.tensor(b))


def _permute(c, x, *, axes):
    t = c.tensor(x)
    if t.dim() == 0:
        return t
    return t.permute(tuple(int(d) % t.dim() for d in axes))


def _swapaxes(c, x, *, axis1, axis2):
    t = c.tensor(x)
    return t if t.dim() == 0 else c.torch.swapaxes(t, axis1, axis2)


def _diag(c, x):
    t = c.tensor(x)
    return c.torch.diagonal(t) if t.dim() == 2 else c.torch.diag(t)


def _index(c, x, *, key):
    return c.tensor(x)[key if isinstance(key, tuple) else (key,)]


def _softplus(c, x):
    return c.torch.nn.functional.softplus(c.tensor(x))


def _logsigmoid(c, x):
    return c.torch.nn.functional.logsigmoid(c.tensor(x))


#: vocabulary row name -> torch implementation on whole tensors (see the module docstring). A row
#: that is not here (`gather`, a tracer-only row) gives a Function that uses it no tensor forward.
_UNARY = ("exp", "log", "sin", "cos", "tan", "tanh", "sqrt", "abs", "relu", "sigmoid", "erf", "asin",
          "acos", "atan", "sinh", "cosh", "log1p", "expm1")
_ELEMENTWISE_BINARY = ("atan2", "maximum", "minimum", "logaddexp", "gt", "ge", "lt", "le", "eq", "ne")
TORCH_IMPLEMENTATIONS: Mapping[str, Callable] = {
    **{name: _unary(name) for name in _UNARY},
    "softplus": _softplus,
    "logsigmoid": _logsigmoid,
    **{name: _binary(name) for name in _ELEMENTWISE_BINARY + ("mm", "matmul", "bmm", "dot", "outer", "kron")},
    "clamp": _clamp,
    "where": _where,
    "sum": _reduction("sum", lambda c, t: c.torch.sum(t, dim=-1)),
    "mean": _reduction("mean", lambda c, t: c.torch.mean(t, dim=-1)),
    "prod": _reduction("prod", lambda c, t: c.torch.prod(t, dim=-1)),
    "var": _reduction("var", _var_last),
    "max": _reduction("max", lambda c, t: c.torch.amax(t, dim=-1)),
    "min": _reduction("min", lambda c, t: c.torch.amin(t, dim=-1)),
    "logsumexp": _reduction("logsumexp", lambda c, t: c.torch.logsumexp(t, dim=-1)),
    "norm": _reduction("norm", _norm_last),
    "softmax": _softmax(False),
    "log_softmax": _softmax(True),
    "transpose": _transpose,
    "trace": lambda c, x: c.torch.trace(c.tensor(x)),
    "det": lambda c, x: c.torch.linalg.det(c.tensor(x)),
    "inv": lambda c, x: c.torch.linalg.inv(c.tensor(x)),
    "solve": lambda c, a, b: c.torch.linalg.solve(c.tensor(a), c.tensor(b)),
    "reshape": lambda c, x, *, shape: c.torch.reshape(c.tensor(x), ops._result_shape("reshape", tuple(c.tensor(x).shape), shape=shape)),
    "permute": _permute,
    "swapaxes": _swapaxes,
    "concatenate": lambda c, *xs, axis=0: c.torch.cat([c.tensor(x) for x in xs], dim=axis),
    "stack": lambda c, *xs, axis=0: c.torch.stack([c.tensor(x) for x in xs], dim=axis),
    "diagonal": lambda c, x, *, offset=0, axis1=0, axis2=1: c.torch.diagonal(c.tensor(x), offset, axis1, axis2),
    "diag": _diag,
    "eye": lambda c, n: c.torch.eye(int(n), dtype=c.dtype),
    "index": _index,
}

#: The implementations above that act entry by entry, broadcasting their tensor arguments (a
#: number beside a tensor too): a forward made of them and of `+ - * / **` on scalars gives, on
#: inputs of shape `(k,)`, the k forwards side by side (`TensorForward.elementwise`).
_ELEMENTWISE_CALLS = frozenset(_UNARY + _ELEMENTWISE_BINARY + ("softplus", "logsigmoid", "clamp", "where"))

_PYTHON_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
                  ast.Div: operator.truediv, ast.Pow: operator.pow}
_COMPARE = {ast.Gt: "gt", ast.GtE: "ge", ast.Lt: "lt", ast.LtE: "le", ast.Eq: "eq", ast.NotEq: "ne"}
_NAMED_CONSTANTS = {"pi": math.pi, "e": math.e}


class TensorForward:
    """`forward(tensors)`: `{input name: tensor}` (unbatched, the inputs' shapes, one float dtype)
    -> the output tensor of `out_shape`, in that dtype, autograd graph kept. `kind` says where it
    was generated from ("text" or "matrix-expression")."""

    def __init__(self, function, kind: str, run: Callable, consts: Mapping[str, Any], *, elementwise: bool = False):
        self.kind = kind
        self._run = run
        self._consts = dict(consts)
        self._out_shape = tuple(function.out_shape)
        self._by_dtype: dict = {}
        #: True when every input, constant and the output are scalars and the forward is made of
        #: element-wise operations only (`_elementwise_text`): `side_by_side` then runs k points at once
        self.elementwise = elementwise

    def __call__(self, tensors: Mapping[str, Any], *, lift: Callable | None = None):
        """`lift`: in forward mode, `lift(t)` is `t` with a zero tangent at the current dual level
        (`backends._torch._zero_tangent`); the constants (the Function's, and numbers beside a tensor
        in `+ - * /`, `maximum(x, 0)`, ...) are given one. torch 2.13 runs an operation whose other
        operand has no tangent through a reference implementation in Python (`torch._refs`), about
        0.3 ms each (`x * 2.0`, `x - c`, `maximum(x, y)`), where with both tangents it takes a few
        microseconds; the tangents are the same numbers (`tests/test_check_fast_paths.py`)."""
        out, dtype = self._forward(tensors, lift)
        if tuple(out.shape) != self._out_shape:
            if out.numel() != math.prod(self._out_shape):
                raise _Unsupported(f"the tensor forward gives shape {tuple(out.shape)}, not {self._out_shape}")
            out = out.reshape(self._out_shape)
        return out

    def _forward(self, tensors: Mapping[str, Any], lift: Callable | None):
        """The forward's output tensor as computed (no shape check) and the inputs' dtype."""
        import torch  # the caller (`backends._torch.tensor_jacobian_matrix`) imported it through import_torch
        first = next(iter(tensors.values()))
        dtype = first.dtype
        env = self._by_dtype.get(dtype)
        if env is None:
            env = self._by_dtype[dtype] = {n: torch.tensor(v, dtype=dtype) for n, v in self._consts.items()}
        if lift is not None and env:
            env = {n: lift(t) for n, t in env.items()}
        ctx = _Context(torch, dtype, lift)
        out = ctx.tensor(self._run(ctx, {**env, **tensors}))
        if out.dtype != dtype:
            out = out.to(dtype)
        return out, dtype

    def side_by_side(self, tensors: Mapping[str, Any], count: int, *, lift: Callable | None = None):
        """For an `elementwise` forward: every input a tensor of shape `(count,)` (k scalar points
        side by side) -> the `count` outputs, shape `(count,)`: entry i is the forward at the inputs'
        entries i, by the same operations on whole vectors. None where the result is not that
        shape (an output that reads no input). `lift` as in `__call__`."""
        if not self.elementwise:
            raise ValueError("side_by_side: this tensor forward is not element-wise on scalars")
        out, _ = self._forward(tensors, lift)
        return out if tuple(out.shape) == (count,) else None


def tensor_forward(function) -> TensorForward | None:
    """The tensor-level torch forward of `function` (cached on it), or None when it has none."""
    return function.cached("tensor-forward", lambda: _build(function))[0]


def no_tensor_reason(function) -> str | None:
    """Why `function` has no tensor forward (None when it has one)."""
    return function.cached("tensor-forward", lambda: _build(function))[1]


def _build(function) -> tuple[TensorForward | None, str | None]:
    consts = function.consts
    try:
        if function.source is not None:
            names = {**{i.name: None for i in function.inputs}, **{n: None for n in consts}}
            tree = function.text_tree()
            run = _TextCompiler(set(names)).compile(tree.body)
            return TensorForward(function, "text", run, consts, elementwise=_elementwise_text(function, tree.body)), None
        if function.matrix_expression is not None:
            run = _compile_matrix(function, function.matrix_expression)
            return TensorForward(function, "matrix-expression", run, consts), None
    except _Unsupported as why:
        return None, str(why)
    return None, "built from a callable or SymPy scalar expressions: it has no matrix-level form"


def _elementwise_text(function, body: ast.AST) -> bool:
    """Whether the text `body` of `function` is element-wise on scalars: every input, constant and
    the output of shape `()`, and every node of the tree a number, a name, `+ - * / **`, a sign,
    a single comparison or a call of an element-wise implementation (`_ELEMENTWISE_CALLS`) without
    keywords. On inputs of shape `(k,)` such a forward computes k scalar forwards side by side."""
    if function.out_shape != () or any(inp.shape != () for inp in function.inputs):
        return False
    if any(tuple(getattr(v, "shape", ())) != () for v in function.consts.values()):
        return False
    for node in ast.walk(body):
        if isinstance(node, (ast.Constant, ast.Name, ast.UnaryOp, ast.operator, ast.unaryop, ast.cmpop,
                             ast.expr_context)):
            if isinstance(node, ast.UnaryOp) and not isinstance(node.op, (ast.UAdd, ast.USub)):
                return False
            if isinstance(node, ast.operator) and type(node) not in _PYTHON_BINARY:
                return False
            continue
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _PYTHON_BINARY:
                return False
        elif isinstance(node, ast.Compare):
            if len(node.ops) != 1 or type(node.ops[0]) not in _COMPARE:
                return False
        elif isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in _ELEMENTWISE_CALLS or node.keywords:
                return False
        else:
            return False
    return True


# -- text ------------------------------------------------------------------------------------------
class _TextCompiler:
    """Compiles a validated expression tree into nested closures `run(ctx, env)`, once."""

    def __init__(self, names: set[str]):
        self.names = names

    def compile(self, node: ast.AST) -> Callable:
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise _Unsupported(f"literal {value!r}")
            return lambda c, env: value
        if isinstance(node, ast.Name):
            name = node.id
            if name in self.names:
                return lambda c, env: env[name]
            if name in _NAMED_CONSTANTS:
                number = _NAMED_CONSTANTS[name]
                return lambda c, env: number
            raise _Unsupported(f"name {name!r}")
        if isinstance(node, ast.UnaryOp):
            operand = self.compile(node.operand)
            if isinstance(node.op, ast.UAdd):
                return operand
            if isinstance(node.op, ast.USub):
                return lambda c, env: -operand(c, env)
            raise _Unsupported(f"unary operator {type(node.op).__name__}")
        if isinstance(node, ast.BinOp):
            left, right = self.compile(node.left), self.compile(node.right)
            if isinstance(node.op, ast.MatMult):
                matmul = TORCH_IMPLEMENTATIONS["matmul"]
                return lambda c, env: matmul(c, left(c, env), right(c, env))
            function = _PYTHON_BINARY.get(type(node.op))
            if function is None:
                raise _Unsupported(f"operator {type(node.op).__name__}")

            # not a power's exponent (pow with a number exponent has its own rule), nor a number minus a
            # tensor (torch's rsub takes that in a few microseconds)
            lifted = isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div))
            lift_left = lifted and not isinstance(node.op, ast.Sub)

            def binary(c, env):
                a, b = left(c, env), right(c, env)
                if lifted and c.lift is not None:
                    if lift_left:
                        a = c.operand(a, b)
                    b = c.operand(b, a)
                try:
                    out = function(a, b)
                except (ArithmeticError, OverflowError) as error:
                    raise _Unsupported(f"constant arithmetic: {error}") from None
                if isinstance(out, complex):
                    raise _Unsupported("a complex intermediate value")
                return out

            return binary
        if isinstance(node, ast.Attribute):
            if node.attr != "T":
                raise _Unsupported(f"attribute .{node.attr}")
            value = self.compile(node.value)
            transpose = TORCH_IMPLEMENTATIONS["transpose"]
            return lambda c, env: transpose(c, value(c, env))
        if isinstance(node, ast.Subscript):
            value = self.compile(node.value)
            key = self._key(node.slice)
            return lambda c, env: c.tensor(value(c, env))[key]
        if isinstance(node, ast.Compare):
            if len(node.ops) != 1 or type(node.ops[0]) not in _COMPARE:
                raise _Unsupported("chained comparison")
            impl = TORCH_IMPLEMENTATIONS[_COMPARE[type(node.ops[0])]]
            left, right = self.compile(node.left), self.compile(node.comparators[0])
            return lambda c, env: impl(c, left(c, env), right(c, env))
        if isinstance(node, ast.Call):
            return self._call(node)
        raise _Unsupported(f"construct {type(node).__name__}")

    def _call(self, node: ast.Call) -> Callable:
        if not isinstance(node.func, ast.Name):
            raise _Unsupported("a call of something other than a function name")
        name = node.func.id
        impl = TORCH_IMPLEMENTATIONS.get(name)
        if impl is None:
            raise _Unsupported(f"no torch implementation of {name}")
        keywords = {k.arg: _literal(k.value) for k in node.keywords}
        if name == "eye":
            n = _literal(node.args[0])
            return lambda c, env: impl(c, n)
        args = [self.compile(a) for a in node.args]
        return lambda c, env: impl(c, *(a(c, env) for a in args), **keywords)

    def _key(self, node: ast.AST) -> tuple:
        parts = node.elts if isinstance(node, ast.Tuple) else [node]
        key = []
        for part in parts:
            if isinstance(part, ast.Slice):
                key.append(slice(*(None if b is None else _literal(b) for b in (part.lower, part.upper, part.step))))
            else:
                key.append(_literal(part))
        return tuple(key)


def _literal(node: ast.AST) -> Any:
    """An int, bool or tuple literal of a validated tree (a keyword value, an index, eye's n)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, bool)):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _literal(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Tuple):
        return tuple(_literal(e) for e in node.elts)
    raise _Unsupported(f"a literal of type {type(node).__name__}")


# -- SymPy matrix expressions ------------------------------------------------------------------------
def _compile_matrix(function, expr) -> Callable:
    import sympy
    from sympy.matrices.expressions.matexpr import MatrixElement

    inputs = {i.name: i for i in function.inputs}
    consts = set(function.consts)
    scalar_functions = {
        sympy.exp: "exp", sympy.log: "log", sympy.sin: "sin", sympy.cos: "cos", sympy.tan: "tan",
        sympy.tanh: "tanh", sympy.sinh: "sinh", sympy.cosh: "cosh", sympy.atan: "atan", sympy.asin: "asin",
        sympy.acos: "acos", sympy.erf: "erf", sympy.Abs: "abs",
    }

    def leaf(name: str, shape) -> Callable:
        if name not in inputs and name not in consts:
            raise _Unsupported(f"symbol {name!r} is neither an input nor a constant")
        shape = tuple(int(d) for d in shape)

        def read(c, env):
            t = c.tensor(env[name])
            return t.reshape(shape) if tuple(t.shape) != shape else t

        return read

    def compile_node(node) -> Callable:
        if isinstance(node, sympy.MatrixSymbol):
            return leaf(str(node.name), node.shape)
        if isinstance(node, sympy.Symbol):
            return leaf(str(node.name), ())
        if isinstance(node, sympy.Number) or node in (sympy.pi, sympy.E):
            if not node.is_real or not node.is_finite:
                raise _Unsupported(f"number {node}")
            value = int(node) if node.is_Integer else float(node)
            return lambda c, env: value
        if isinstance(node, sympy.Identity):
            n = int(node.shape[0])
            return lambda c, env: c.torch.eye(n, dtype=c.dtype)
        if isinstance(node, sympy.ZeroMatrix):
            shape = tuple(int(d) for d in node.shape)
            return lambda c, env: c.torch.zeros(shape, dtype=c.dtype)
        if isinstance(node, sympy.Inverse):  # a MatPow: before the MatPow branch
            inner = compile_node(node.arg)
            return lambda c, env: c.torch.linalg.inv(inner(c, env))
        args = [compile_node(a) for a in node.args] if not isinstance(node, sympy.MatPow) else None
        if isinstance(node, sympy.MatMul):
            def matmul(c, env):
                out, scale = None, None
                for a, arg in zip(args, node.args):
                    value = a(c, env)
                    if getattr(arg, "is_Matrix", False):
                        out = value if out is None else c.torch.matmul(out, value)
                    else:
                        scale = value if scale is None else scale * value
                return out if scale is None else out * c.operand(scale, out)
            return matmul
        if isinstance(node, (sympy.MatAdd, sympy.Add)):
            def add(c, env):
                out = args[0](c, env)
                for a in args[1:]:
                    value = a(c, env)
                    out = c.operand(out, value) + c.operand(value, out)
                return out
            return add
        if isinstance(node, (sympy.HadamardProduct, sympy.Mul)):
            def mul(c, env):
                out = args[0](c, env)
                for a in args[1:]:
                    value = a(c, env)
                    out = c.operand(out, value) * c.operand(value, out)
                return out
            return mul
        if isinstance(node, sympy.Transpose):
            (a,) = args
            return lambda c, env: c.tensor(a(c, env)).T
        if isinstance(node, sympy.Determinant):
            (a,) = args
            return lambda c, env: c.torch.linalg.det(a(c, env))
        if isinstance(node, sympy.Trace):
            (a,) = args
            return lambda c, env: c.torch.trace(a(c, env))
        if isinstance(node, sympy.MatPow):
            base, power = node.args
            if not power.is_Integer:
                raise _Unsupported(f"matrix power {power}")
            b, k = compile_node(base), int(power)
            return lambda c, env: c.torch.linalg.matrix_power(b(c, env), k)
        if isinstance(node, (sympy.Pow, sympy.HadamardPower)):
            b, p = args
            return lambda c, env: b(c, env) ** p(c, env)
        if isinstance(node, MatrixElement):
            m = compile_node(node.args[0])
            i, j = int(node.args[1]), int(node.args[2])
            return lambda c, env: m(c, env)[i, j]
        if type(node) in scalar_functions and len(args) == 1:
            impl = TORCH_IMPLEMENTATIONS[scalar_functions[type(node)]]
            (a,) = args
            return lambda c, env: impl(c, a(c, env))
        raise _Unsupported(f"no torch implementation of the SymPy node {type(node).__name__}")

    return compile_node(expr)
