"""`Function`: the one source of truth. Inputs (names, shapes), constants and the SymPy output.

A Function is built once, validated when built, and immutable. Its output is a NumPy object array
of SymPy expressions over real scalar symbols, one per input entry (named like `X[0, 1]`): the
element-wise form that every other part of symjac (exact Jacobian, generated code, LaTeX) reads.
"""

from __future__ import annotations

import functools
import inspect
import math
import operator
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy

from ._budget import (
    DEFAULT_LIMITS,
    HAS_I,
    HAS_UNDEFINED,
    NOT_POLYNOMIAL,
    STRAY,
    UNSURE,
    Limits,
    check_constant,
    check_inputs,
    check_output,
    check_sympy_input,
    exceeds_digits,
    raise_hint,
    validate_limits,
)
from . import _dag, _deadline, _determinant, _stable
from ._errors import DomainError, InvalidArgumentError, InvalidExpressionError, ShapeError, SymjacError, TooLargeError
from ._parse import parse_expression, validate_name, validated_tree
from ._printable import Printable
from ._values import coerce_array
from .ops import as_symbolic, entry_symbols

__all__ = ["Function", "Input", "function", "MAX_INPUT_ENTRIES", "MAX_RANK"]

#: The default budget on the total number of scalar input entries (`Limits.max_input_entries`).
MAX_INPUT_ENTRIES = DEFAULT_LIMITS.max_input_entries
#: The default highest rank of an input (`Limits.max_rank`).
MAX_RANK = DEFAULT_LIMITS.max_rank

@dataclass(frozen=True, eq=False)
class Input:
    """One declared input: its name, shape and the real SymPy symbol for each entry."""

    name: str
    shape: tuple[int, ...]
    symbols: np.ndarray  # object array of sympy.Symbol, shape == self.shape

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def flat_symbols(self) -> tuple[sympy.Symbol, ...]:
        return tuple(self.symbols.reshape(-1))


def _entry_symbols(name: str, shape: tuple[int, ...]) -> np.ndarray:
    return entry_symbols(name, shape)


def _validate_shape(name: str, shape: Any, max_rank: int = MAX_RANK) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)):
        raise ShapeError(
            f"{name}: shape must be a tuple of positive ints such as (), (3,) or (2, 2); "
            f"received {shape!r}"
        )
    if len(shape) > max_rank:
        raise ShapeError(
            f"{name}: shape may have at most {max_rank} dims (Limits.max_rank); received {tuple(shape)!r}"
        )
    for dim in shape:
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ShapeError(
                f"{name}: dimensions must be positive ints; received {tuple(shape)!r}"
            )
    return tuple(int(d) for d in shape)


def _const_array(name: str, value: Any) -> np.ndarray:
    # shape () accepts any shape: every dim counts as a "batch" dim here.
    return coerce_array(value, (), argument=f"consts[{name!r}]", constant=True).astype(np.float64)


def _const_to_symbolic(name: str, value: Any, limits: Limits = DEFAULT_LIMITS, *,
                       array: np.ndarray | None = None) -> np.ndarray:
    """The constant as exact numbers (`array`: its `_const_array`, when the caller has it)."""
    array = _const_array(name, value) if array is None else array
    check_constant(name, array.size, limits)

    def exact(v: float) -> sympy.Expr:
        return sympy.Integer(int(v)) if float(v).is_integer() else sympy.Float(float(v), precision=53)

    return np.vectorize(exact, otypes=[object])(array) if array.ndim else np.array(exact(array[()]), dtype=object)


class Function(Printable):
    """A function of named real inputs, defined once as SymPy expressions.

    Build it with [`symjac.function`][symjac.function]. It is immutable; its exact Jacobians and
    compiled code are computed on first use and cached.
    """

    __slots__ = ("_inputs", "_consts", "_output", "_source", "_cache", "_lock", "_limits", "_matrix_expression",
                 "_origin")

    def __init__(self, inputs: tuple[Input, ...], consts: Mapping[str, np.ndarray], output: np.ndarray, source: str | None,
                 limits: Limits = DEFAULT_LIMITS, matrix_expression: Any = None, origin: Mapping[str, Any] | None = None):
        object.__setattr__(self, "_inputs", inputs)
        object.__setattr__(self, "_consts", dict(consts))
        object.__setattr__(self, "_output", output)
        object.__setattr__(self, "_source", source)
        object.__setattr__(self, "_cache", {})
        object.__setattr__(self, "_lock", threading.RLock())
        object.__setattr__(self, "_limits", limits)
        object.__setattr__(self, "_matrix_expression", matrix_expression)
        object.__setattr__(self, "_origin", dict(origin) if origin else None)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Function is immutable; cannot set {name!r}")

    # -- what it is -------------------------------------------------------------------------
    @property
    def inputs(self) -> tuple[Input, ...]:
        return self._inputs

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(inp.name for inp in self._inputs)

    @property
    def consts(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self._consts.items()}

    @property
    def output(self) -> np.ndarray:
        """The output as an object array of SymPy expressions (a copy)."""
        return self._output.copy()

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self._output.shape

    @property
    def matrix_expression(self) -> Any:
        """The SymPy expression (with `MatrixSymbol`s) the Function was built from, or None.

        It is the matrix-level view of the same function: closed forms are derived from it.
        """
        return self._matrix_expression

    @property
    def source(self) -> str | None:
        """The expression text this Function was built from, if it was built from text."""
        return self._source

    def text_tree(self) -> Any:
        """The validated `ast` tree of `source` (None if not built from text), parsed once and kept:
        the one tree the readers of the text other than SymPy interpret (the tensor-level torch
        forward, `symjac.backends._torch_tensor`; closed forms, `symjac._closed_form`)."""
        if self._source is None:
            return None
        names = {**{i.name: None for i in self.inputs}, **{n: None for n in self.consts}}
        return self.cached("text-tree", lambda: validated_tree(self._source, names, limits=self.limits))

    @property
    def origin(self) -> str | None:
        """Where the formula came from when it was traced from torch code, else None.

        A traced Function is specialised to the shapes it was traced at, and its formula is the
        traced code's own forward: verifying that same code checks its derivatives, not its value.
        """
        if not self._origin:
            return None
        shapes = ", ".join(f"{i.name}={i.shape}" for i in self._inputs)
        return (f"traced from the torch code {self._origin['traced']} (its own forward), "
                f"specialised to the shapes {shapes}")

    @property
    def traced_from(self) -> str | None:
        """The name of the torch code this Function was traced from (`MyFn.apply`), or None."""
        return self._origin["traced"] if self._origin else None

    def traced_from_same(self, impl: Any) -> bool:
        """Whether `impl` is the very torch code this Function was traced from."""
        if not self._origin or self._origin.get("identity") is None:
            return False
        from ._trace import identity, same_code

        return same_code(self._origin["identity"], identity(impl))

    @property
    def module_parameters(self) -> tuple[str, ...]:
        """The inputs that are the parameters of a traced `nn.Module` (after the declared ones)."""
        return tuple(self._origin.get("parameters", ())) if self._origin else ()

    def input(self, name: str) -> Input:
        for inp in self._inputs:
            if inp.name == name:
                return inp
        raise InvalidArgumentError(
            f"wrt: this function has no input named {name!r}; its inputs are {', '.join(self.input_names)}"
        )

    def cached(self, key: Any, build: Callable[[], Any]) -> Any:
        """Build-once cache shared by the Jacobian and code generation (thread-safe)."""
        try:  # built already: a dict read is atomic, and an entry, once set, never changes
            return self._cache[key]
        except KeyError:
            pass
        with self._lock:
            if key not in self._cache:
                self._cache[key] = build()
            return self._cache[key]

    # -- derived ------------------------------------------------------------------------------
    def jacobian(self, wrt: str | None = None):
        """The exact Jacobian with respect to one input, in torch's layout (output shape + input shape).

        `wrt` may be omitted when the function has one input. See also `jacobians()`.

        ```python
        >>> f = function("A @ X", X=(2, 2), consts={"A": [[2.0, 3.0], [4.0, 5.0]]})
        >>> f.jacobian().shape
        (2, 2, 2, 2)
        ```
        """
        from ._jacobian import exact_jacobian

        with as_job(self._limits, "Function.jacobian", phase="differentiating"):
            return self._jacobian(wrt, exact_jacobian)

    def _jacobian(self, wrt: str | None, exact_jacobian: Callable):
        if wrt is None:
            if len(self._inputs) != 1:
                raise InvalidArgumentError(
                    f"wrt: this function has inputs {', '.join(self.input_names)}; pass wrt='<name>' "
                    f"or use .jacobians() for one Jacobian per input"
                )
            wrt = self._inputs[0].name
        return exact_jacobian(self, self.input(wrt))

    def hessian(self, wrt: str | tuple[str, str] | None = None):
        """The exact second derivative, in torch's layout (output shape + input shape + input shape).

        `wrt`: an input name (omit it for a function of one input), or a pair of names for the
        mixed derivative `d^2 F / dX dY` (shape output + X's + Y's). Same as `derivative(wrt, order=2)`.

        ```python
        >>> function("x[0] ** 2 * x[1]", x=(2,)).hessian().shape
        (2, 2)
        ```
        """
        return self.derivative(wrt, order=2)

    def derivative(self, wrt: str | tuple[str, ...] | None = None, *, order: int = 1):
        """The exact derivative of order `order` (a `symjac.HigherDerivative`), cached on the Function.

        `wrt`: an input name (differentiated `order` times), a tuple of `order` names (by the first,
        then the second, ...), or None for a function of one input. Order 1 is the Jacobian's
        entries; orders above `Limits.max_derivative_order` are refused. See `symjac._hessian`.
        """
        from ._hessian import exact_derivative, resolve_wrt

        return exact_derivative(self, resolve_wrt(self, wrt, order))

    def jacobians(self):
        """One exact Jacobian per input, keyed by input name, in declaration order: a dict
        (`symjac.Jacobians`) whose `evaluate(**point)` evaluates them all from one shared plan."""
        from ._jacobian import Jacobians

        return Jacobians(self, {name: self.jacobian(name) for name in self.input_names})

    def __call__(self, **values: Any) -> np.ndarray:
        """Evaluate the function with NumPy (batched, dtype-preserving)."""
        from .backends import numpy_backend

        return numpy_backend.evaluate_forward(self, values)

    # A notebook shows `F = ` the output, entry by entry (elided past 8 rows or columns).
    _latex_form = "function"

    def __repr__(self) -> str:
        shapes = ", ".join(f"{i.name}={i.shape}" for i in self._inputs)
        body = self._source if self._source is not None else _short(self._output)
        if self._origin:
            return f"<symjac.Function traced from torch code {self._origin['traced']} at {shapes}> -> shape {self.out_shape}"
        return f"symjac.function({body!r}, {shapes}) -> shape {self.out_shape}"

    @property
    def limits(self) -> Limits:
        """The budgets this Function was built under (reproduction lines repeat the raised ones)."""
        return self._limits

    def __reduce__(self):
        # the traced code's identity is the id of a live object: it does not travel
        origin = {k: v for k, v in self._origin.items() if k != "identity"} if self._origin else None
        return (_rebuild, (self._inputs_spec(), {k: v for k, v in self._consts.items()}, self._output, self._source,
                           self._limits, self._matrix_expression, origin))

    def _inputs_spec(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        return tuple((inp.name, inp.shape) for inp in self._inputs)


def _rebuild(spec, consts, output, source, limits=DEFAULT_LIMITS, matrix_expression=None, origin=None) -> Function:
    inputs = tuple(Input(name, shape, _entry_symbols(name, shape)) for name, shape in spec)
    return Function(inputs, consts, output, source, limits, matrix_expression, origin)


def timeout_hint(limits: Limits) -> str:
    """How to raise `Limits.timeout`, for `JobTimeoutError` messages."""
    longer = 600 if limits.timeout is None else int(max(2 * limits.timeout, 60))
    return (f"raise the limit: limits=symjac.Limits(timeout={longer}) (None: no limit), "
            "or use smaller shapes")


def as_job(limits: Any, what: str, *, phase: str = ""):
    """The job (`symjac._deadline.job`) that `limits` ask for: their time limit and progress."""
    if not isinstance(limits, Limits):
        return _deadline.job(what, timeout=None, progress=False)  # refused by validate_limits inside
    return _deadline.job(what, timeout=limits.timeout, progress=limits.progress, phase=phase,
                         hint=timeout_hint(limits))


def _job(function: Callable) -> Callable:
    """Run `symjac.function` as a job under its `limits` (time limit, progress)."""
    import functools

    @functools.wraps(function)
    def run(expr: Any, /, *args: Any, limits: Limits = DEFAULT_LIMITS, **kwargs: Any) -> "Function":
        what = f"symjac.function({_snippet(expr)})"
        with as_job(limits, what, phase="building"):
            return function(expr, *args, limits=limits, **kwargs)

    return run


def _snippet(expr: Any) -> str:
    text = repr(expr) if isinstance(expr, str) else getattr(expr, "__name__", type(expr).__name__)
    return text if len(text) <= 40 else text[:37] + "..."


def _short(output: np.ndarray) -> str:
    text = str(output.tolist() if output.ndim else output[()])
    return text if len(text) < 80 else text[:77] + "..."


@_job
def function(
    expr: Any,
    /,
    *,
    consts: Mapping[str, Any] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    params: str = "inputs",
    **shapes: Any,
) -> Function:
    """Define a function once: text, a Python callable, or a SymPy expression.

    - `expr`: text in the expression language (`"A @ X"`), a callable called once with symbolic
      inputs (`lambda X: X @ X`), or a SymPy `Expr`/`Matrix`/`MatrixExpr` (MatrixSymbols and
      Symbols are matched to inputs and constants by name).
    - `consts`: fixed arrays by name, e.g. `{"A": [[2.0, 3.0], [4.0, 5.0]]}`.
    - `limits`: the budgets (`symjac.Limits`), checked before any symbolic work; over one,
      `TooLargeError` says which and how to raise it. Their estimate bound `max_seconds` (30 s)
      refuses what the cost model says would take longer; their `timeout` (300 s) stops the build,
      `.jacobian()` and `symjac.check` of it with `JobTimeoutError`; their `progress` shows a
      progress line on a terminal. See `docs/limits.md`.
    - torch code (a function of torch tensors, an `nn.Module`, an `autograd.Function.apply`) is
      traced at the declared shapes and interpreted with the same vocabulary (`docs/torch-code.md`);
      the Function is specialised to those shapes. `params`: an `nn.Module`'s parameters become
      inputs (`"inputs"`, the default: checked too) or exact constants (`"consts"`).
    - `**shapes`: the inputs, in order, with their shapes: `()` scalar, `(n,)` vector, `(m, n)` matrix.

    ```python
    >>> f = function("X @ X", X=(2, 2))
    >>> f.out_shape
    (2, 2)
    ```
    """
    for option, value in (("consts", consts), ("limits", limits)):
        if isinstance(value, (tuple, list)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise InvalidArgumentError(
                f"{option}: is an option of symjac.function and cannot name an input; received "
                f"{option}={tuple(value)!r}, which looks like a shape. Rename that input")
    if not shapes:
        raise InvalidArgumentError(
            "shapes: declare at least one input with its shape, e.g. symjac.function('X @ X', X=(2, 2))"
        )
    validate_limits(limits)
    if consts is not None and not isinstance(consts, Mapping):
        raise InvalidArgumentError(
            f"consts: must be a dict from name to array, e.g. {{'A': [[2.0, 3.0], [4.0, 5.0]]}}; "
            f"received {type(consts).__name__}"
        )
    consts = dict(consts or {})
    names = {}
    for name, shape in shapes.items():
        validate_name(name, argument=name)
        names[name] = _validate_shape(name, shape, limits.max_rank)
    for name in consts:
        validate_name(name, argument=f"consts[{name!r}]", kind="constant")
        if name in names:
            raise InvalidArgumentError(f"consts: {name!r} is declared both as an input and as a constant")
    check_inputs(names, limits)
    inputs = tuple(Input(name, shape, _entry_symbols(name, shape)) for name, shape in names.items())
    const_arrays, const_values = {}, {}
    for name, value in consts.items():  # each coerced once, checked in turn
        const_arrays[name] = _const_array(name, value)
        const_values[name] = _const_to_symbolic(name, value, limits, array=const_arrays[name])
    env = {inp.name: inp.symbols for inp in inputs} | const_values

    source = matrix_expression = None
    if isinstance(expr, str):
        source = expr
        output = parse_expression(expr, env, limits=limits)
    elif isinstance(expr, (sympy.Basic, sympy.MatrixBase)) or type(expr).__module__.startswith("sympy"):
        check_sympy_input(expr, limits)
        output = _from_sympy(expr, inputs, const_values)
        if isinstance(expr, sympy.Basic) and expr.has(sympy.MatrixSymbol):
            matrix_expression = expr
    elif callable(expr):
        output, traced = _from_callable_or_torch(expr, inputs, const_values, consts, params, limits)
        if traced is not None:
            output = traced.output
            extra = tuple(Input(name, shape, _entry_symbols(name, shape)) for name, shape in traced.parameters)
            if extra:
                check_inputs({**names, **dict(traced.parameters)}, limits)
            inputs = inputs + extra
            origin = {"traced": traced.origin, "parameters": [name for name, _ in traced.parameters],
                      "identity": traced.identity}
            output = _validate_output(output, inputs, limits)
            return Function(inputs, const_arrays, output, None, limits, origin=origin)
    else:
        raise InvalidArgumentError(
            f"expr: must be expression text, a callable or a SymPy expression; received {type(expr).__name__}"
        )
    output = _validate_output(output, inputs, limits)
    return Function(inputs, const_arrays, output, source, limits, matrix_expression)


def _from_callable_or_torch(fn: Callable, inputs: tuple[Input, ...], const_values: dict[str, np.ndarray],
                            consts: Mapping[str, Any], params: str,
                            limits: Limits = DEFAULT_LIMITS) -> tuple[Any, Any]:
    """(output, Traced or None): a callable on symbolic arrays, or torch code traced (`symjac._trace`).

    torch code is recognised without importing torch: an `nn.Module`, an `autograd.Function.apply`
    or a torch function is traced directly; any other callable is first called on symbolic arrays,
    and traced only when that call fails while torch is loaded (the callable uses torch).
    """
    if params not in ("inputs", "consts"):
        raise InvalidArgumentError(f"params: must be 'inputs' or 'consts'; received {params!r}")
    from . import _trace

    if not _trace.is_torch_code(fn):
        if "torch" not in sys.modules:
            return _from_callable(fn, inputs, const_values, limits), None
        try:
            return _from_callable(fn, inputs, const_values, limits), None
        except InvalidArgumentError as error:
            if not isinstance(error.__context__, (TypeError, AttributeError)):
                raise  # symjac's own verdict on ops code (a ShapeError, a DomainError): not torch's
        except SymjacError:
            raise
        except Exception:  # noqa: BLE001 - torch code fails on symbolic arrays in many ways
            pass
    target = fn
    if consts:
        target = _with_consts(fn, consts)
    return None, _trace.trace(target, inputs, params=params, limits=limits)


def _with_consts(fn: Callable, consts: Mapping[str, Any]) -> Callable:
    import torch

    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    tensors = {name: torch.as_tensor(np.asarray(v, dtype=np.float64)) for name, v in consts.items() if name in params}

    def call(*args):
        return fn(*args, **tensors)

    call.__qualname__ = getattr(fn, "__qualname__", type(fn).__name__)
    return call


def _from_callable(fn: Callable, inputs: tuple[Input, ...], consts: dict[str, np.ndarray],
                   limits: Limits = DEFAULT_LIMITS) -> Any:
    """The callable's output on symbolic inputs. SymPy's constructors recurse over the depth of
    what they build (`sin(a)` asks `a.is_number` of every level below): the call runs with room
    for `Limits.max_depth` levels of that recursion (`_dag.call_deep`), so a 1,000-step recurrence
    builds under `Limits(max_depth=1000)`."""
    args = [inp.symbols[()] if inp.shape == () else inp.symbols.copy() for inp in inputs]
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    kwargs = {name: (v[()] if v.ndim == 0 else v) for name, v in consts.items() if name in params}
    try:
        return _dag.call_deep(lambda: fn(*args, **kwargs), levels=limits.max_depth)
    except (TypeError, AttributeError) as error:
        # AttributeError: `x.sin()` on the object array of symbols the callable receives
        raise InvalidArgumentError(
            f"expr: calling the function with symbolic inputs ({', '.join(i.name for i in inputs)}) "
            f"failed: {type(error).__name__}: {error}. Use symjac.ops (e.g. ops.sin, ops.det) for "
            "functions of arrays"
        ) from None
    except RecursionError:
        # SymPy's constructors recurse over the depth of their arguments (`sin` asks `is_number`
        # of the whole chain): about 1,000 nested calls is as deep as SymPy itself can build
        raise InvalidExpressionError(
            f"expr: calling the function with symbolic inputs ({', '.join(i.name for i in inputs)}) "
            f"hit Python's recursion limit (with room for {limits.max_depth} levels of SymPy's recursion, "
            "Limits.max_depth; raise it to build deeper) while building the expression "
            "(SymPy's own constructors recurse over its depth): build fewer nested levels"
        ) from None


def _from_sympy(expr: Any, inputs: tuple[Input, ...], consts: dict[str, np.ndarray]) -> Any:
    by_name = {inp.name: inp for inp in inputs}
    replace = {}
    for atom in expr.atoms(sympy.Symbol, sympy.MatrixSymbol):
        name = str(atom.name) if hasattr(atom, "name") else str(atom)
        if name in by_name:
            inp = by_name[name]
            value = inp.symbols
        elif name in consts:
            value = consts[name]
        else:
            continue  # reported below as a free symbol that is not an input
        if isinstance(atom, sympy.MatrixSymbol):
            if tuple(atom.shape) != (value.shape if value.ndim == 2 else (value.size, 1)):
                raise ShapeError(
                    f"expr: MatrixSymbol {name!r} has shape {tuple(atom.shape)} but {name} is declared "
                    f"with shape {value.shape}"
                )
            replace[atom] = sympy.ImmutableMatrix(value.reshape(atom.shape).tolist())
        else:
            if value.ndim != 0:
                raise ShapeError(
                    f"expr: Symbol {name!r} is a scalar but {name} is declared with shape {value.shape}; "
                    f"use sympy.MatrixSymbol({name!r}, ...)"
                )
            replace[atom] = value[()]
    result = _explicit(expr.xreplace(replace))
    if isinstance(result, sympy.MatrixExpr) and not isinstance(result, sympy.MatrixBase):
        result = result.doit()
        if not isinstance(result, sympy.MatrixBase):
            result = result.as_explicit()
    elif isinstance(result, sympy.Expr):
        result = result.doit()
    return result


def _explicit(expr: Any) -> Any:
    """Matrix expressions inside scalar ones written out (`log(Determinant(X.T*X + Identity(3)))`:
    `doit` leaves `Identity(3) + Matrix(...)` unevaluated, and no code can be generated for it)."""
    if not isinstance(expr, sympy.Expr) or isinstance(expr, sympy.MatrixExpr):
        return expr  # a matrix result is written out below, by `doit`
    return expr.replace(
        lambda node: isinstance(node, (sympy.MatrixExpr, sympy.Determinant)) and not isinstance(node, sympy.MatrixBase)
        and not node.atoms(sympy.MatrixSymbol),
        _write_out,
    )


def _write_out(node: Any) -> Any:
    """One matrix expression node, written out; a determinant or an inverse of an explicit matrix
    by symjac's own `ops.det` / `ops.inv` (the text's; SymPy's `doit` would run Bareiss elimination
    with `cancel` on the symbolic entries: minutes for `det(X.T @ X + I)` at 4 x 4)."""
    from . import ops

    if isinstance(node, (sympy.Determinant, sympy.Inverse)) and isinstance(node.arg, sympy.MatrixBase):
        entries = np.array(node.arg.tolist(), dtype=object)
        if isinstance(node, sympy.Determinant):
            return ops.det(entries)[()]
        return sympy.ImmutableMatrix(ops.inv(entries).tolist())
    return node.as_explicit()


#: Functions the real-value witness (`_real_somewhere`) evaluates, as NumPy real ufuncs: NaN
#: where SymPy's value is not real (`log` of a negative number, `asin(2)`).
_WITNESS_FUNCTIONS = {
    sympy.exp: np.exp, sympy.log: np.log, sympy.sin: np.sin, sympy.cos: np.cos, sympy.tan: np.tan,
    sympy.tanh: np.tanh, sympy.sinh: np.sinh, sympy.cosh: np.cosh, sympy.atan: np.arctan,
    sympy.asin: np.arcsin, sympy.acos: np.arccos, sympy.Abs: np.abs,
    _stable.log1p: np.log1p, _stable.expm1: np.expm1,
    # symjac's stable primitives, real for real arguments (NaN for a NaN argument)
    _stable.softplus: lambda a: np.logaddexp(0.0, a),
    _stable.sigmoid: lambda a: 1.0 / (1.0 + np.exp(-a)),
}
#: The same for functions of several arguments.
_WITNESS_MANY = {
    _stable.logsumexp: lambda *args: np.logaddexp.reduce(np.stack(args)),
    _determinant.det: _determinant.numpy_helpers()["_symjac_det"],
}
#: Points the witness tries at once (`_witness_points`).
WITNESS_POINTS = 16
#: The seed of the witness's points (`_witness_points`).
_WITNESS_SEED = 20261201


def _witness_points(count: int) -> np.ndarray:
    """`(count, WITNESS_POINTS)` fixed real points, row k for symbol k, each entry drawn from
    N(0, 1) (a seeded NumPy Generator; read-only). Drawn once per process for the most rows asked
    so far: the draws fill rows in order, so the first `count` rows of a larger draw are the
    smaller draw (a Generator costs about 30 us to make, a small build's witness 0.1 ms)."""
    global _WITNESS_DRAWN
    drawn = _WITNESS_DRAWN
    if len(drawn) < count:
        drawn = np.random.default_rng(_WITNESS_SEED).standard_normal((max(count, 2 * len(drawn)), WITNESS_POINTS))
        drawn.flags.writeable = False
        _WITNESS_DRAWN = drawn
    return drawn[:count]


_WITNESS_DRAWN = np.empty((0, WITNESS_POINTS))


def _real_somewhere(entries: list, symbols: list) -> list[bool]:
    """For each entry, True when its value is real and finite at one of `WITNESS_POINTS` fixed
    random real points (`_witness_points`): then SymPy's `is_real` cannot be False for it (False
    means not real anywhere), and the question, slow on a large sum under `log` or `sqrt` (SymPy
    tries to prove the sum's sign: 40 ms of a 4 x 4 `log(det(X))`), need not be asked. False when
    no point gives a real value or the entry holds a node the witness does not evaluate; the caller
    then asks SymPy. One walk over the DAG of all entries, each distinct node evaluated once, in
    float64 arithmetic: a node whose value is not real (a negative number to a power that is not an
    integer, a logarithm of a negative number, `acos(2)`) is NaN, and so is every node above it, so
    a finite value is real at that point with every node below it real too (an entry real only
    through values that are not, `Abs(sqrt(x - 9))` at x < 9, is found real only where they are,
    and is otherwise asked of SymPy). float64, not complex: the same NumPy loops as the Function's
    later evaluation, which a process then runs for the first time once, not twice."""
    drawn = _witness_points(len(symbols))  # row k: symbol k
    values: dict = dict(zip(symbols, drawn))
    unknown = None  # a node the witness cannot evaluate; its parents are unknown too
    add, multiply = operator.add, operator.mul

    def step(node):
        if node in values:
            return values[node]
        if node.is_Number or node.is_NumberSymbol:
            try:
                return np.full(WITNESS_POINTS, _real(node))
            except (TypeError, OverflowError):
                return unknown
        args = [memo[a] for a in node.args]
        if any(a is unknown for a in args):
            return unknown
        if node.is_Add:
            return functools.reduce(add, args)
        if node.is_Mul:
            return functools.reduce(multiply, args)
        if node.is_Pow:
            return np.power(args[0], args[1])
        function = _WITNESS_FUNCTIONS.get(type(node))
        if function is not None and len(args) == 1:
            return function(args[0])
        function = _WITNESS_MANY.get(type(node))
        if function is not None and args:
            return function(*args)
        return unknown

    memo: dict = {}
    with np.errstate(all="ignore"):
        _dag.evaluate(entries, step, memo=memo)
    return [v is not unknown and bool(np.any(np.isfinite(v))) for v in (memo[e] for e in entries)]


def _real(number: Any) -> float:
    """`float(number)` for a real SymPy number (a Rational's or a Float's without SymPy's `evalf`);
    TypeError for one that is not real."""
    if number.is_Rational:
        try:
            return number.p / number.q
        except OverflowError:
            pass
    return float(number)


def _check_numbers(scan: Any, limits: Limits) -> None:
    """Refuse exact numbers over `max_number_digits` (a callable or a SymPy expression is not read
    by the parser, which checks text) and constant bases that are negative under a power that is
    not an integer (`cos(e) ** x`, `(-2) ** x`): not real. The candidates come from the output's
    one walk (`_budget.scan_output`), in its order: the first refused is reported."""
    for node in scan.numbers:
        if isinstance(node, sympy.Rational):
            if exceeds_digits(node.p, limits.max_number_digits) or exceeds_digits(node.q, limits.max_number_digits):
                raise TooLargeError(
                    f"expr: the output holds a number with more than {limits.max_number_digits} digits "
                    f"(Limits.max_number_digits): {str(node)[:40]}...; use smaller numbers, " + raise_hint("max_number_digits")
                )
        else:  # a Pow of a constant base to a power that is not an integer
            base = node.base.evalf(15)
            if base.is_Number and base.is_negative:
                raise DomainError(
                    f"expr: {str(node)[:80]} raises the negative constant {str(node.base)[:40]} "
                    f"(about {float(base):.6g}) to the power {str(node.exp)[:40]}, which is not an "
                    "integer: the result is not real. The language is real-valued"
                )


def _validate_output(output: Any, inputs: tuple[Input, ...], limits: Limits = DEFAULT_LIMITS) -> np.ndarray:
    try:
        array = as_symbolic(output)
    except (TypeError, ValueError) as error:
        raise InvalidExpressionError(f"expr: the result is not an array of expressions ({error})") from None
    if array.size == 0:
        raise ShapeError(f"expr: the output is empty (shape {array.shape})")
    # one walk over the output's DAG (sizes, free symbols, undefined, imaginary and non-polynomial
    # nodes, numbers): the budgets first, before SymPy's assumption queries below, which can be slow
    scan = check_output(array, inputs, limits)
    _check_numbers(scan, limits)
    facts = scan.facts  # node -> (size, bits, free symbols)
    flat = [e for e in array.flat if isinstance(e, sympy.Expr) and not isinstance(e, sympy.MatrixExpr)]
    # polynomials, and entries shown real from recorded facts (`tanh(u)`), need no question
    asked = [e for e in flat if facts[e][1] & NOT_POLYNOMIAL and facts[e][1] & UNSURE]
    if asked:
        symbols = [s for inp in inputs for s in inp.symbols.flat]
        found = _real_somewhere(asked, symbols) if len(flat) == array.size else [False] * len(asked)
        witnessed = dict(zip(asked, found))
    else:
        witnessed = {}
    allowed = None
    for index, entry in np.ndenumerate(array):
        if not isinstance(entry, sympy.Expr) or isinstance(entry, sympy.MatrixExpr):
            raise InvalidExpressionError(
                f"expr: output entry {index} is not a scalar SymPy expression; received {type(entry).__name__}"
            )
        _, flags, free = facts[entry]
        if flags & HAS_UNDEFINED:
            raise InvalidExpressionError(
                f"expr: output entry {index} is undefined ({entry}); division by zero?"
            )
        if flags & STRAY:
            if allowed is None:
                allowed = {s for inp in inputs for s in inp.symbols.flat}
            names = ", ".join(sorted(map(str, free - allowed)))
            raise InvalidExpressionError(
                f"expr: unknown symbol {names} in output entry {index}; declare it as an input "
                f"(symjac.function(..., {sorted(map(str, free - allowed))[0]}=())) or a constant (consts=...)"
            )
        if flags & HAS_I or (entry in witnessed and not witnessed[entry] and entry.is_real is False):
            raise InvalidExpressionError(f"expr: output entry {index} is not real: {entry}")
    return array
