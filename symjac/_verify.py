"""`verify`: a user's implementation against the exact value and Jacobian, over many points.

At each point drawn from the spec's domain, the implementation's value is compared with the exact
forward, and its derivative with the exact Jacobian, entry by entry with the per-entry tolerance of
`symjac._tolerance` (route names in the report):

- `impl-value`: `impl(*inputs)`, the value (kind "function");
- `impl-reverse`: its Jacobian by reverse mode, `torch.func.jacrev`, or where torch.func does not
  support the implementation (a custom `torch.autograd.Function` without `setup_context` and
  `vmap`), `torch.autograd.functional.jacobian`, which calls its `backward` once per output entry;
- `impl-forward`: its Jacobian by forward mode (`torch.func.jacfwd`, then
  `torch.autograd.functional.jacobian(strategy="forward-mode")`), when it supports forward mode
  (a custom Function needs `jvp`); when it does not, the report says so in a note;
- `impl-jacobian` / `impl-gradient`: what `impl` returns, for kind "jacobian" / "gradient".

A disagreement is arbitrated before it is called a failure: the exact entries are evaluated again
with mpmath (`symjac._arbitrate`), in case the float evaluation of the exact formula was the one off.
Points at a kink or outside the domain are inconclusive, never failures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._engine import (
    SYMBOLIC,
    _Check,
    _describe,
    _out_size,
    differences,
    function_call,
    pair_result,
)
from ._budget import DEFAULT_TIMEOUT
from ._errors import ImplementationError, InvalidArgumentError, ShapeError, SymjacError
from ._report import Entry, Report
from ._tolerance import DEFAULT_TOLERANCE, ToleranceModel, eps
from ._values import coerce_point, float_dtype

__all__ = ["verify", "KINDS"]

#: What `impl` computes: the function itself ("function"), or its Jacobian or gradient directly.
KINDS = ("function", "jacobian", "gradient")
#: Old spellings of a kind, still accepted with a DeprecationWarning ("forward" read like the route
#: `impl-forward`, forward-mode autograd, which it is not).
_OLD_KINDS = {"forward": "function"}
#: The routes of the cotangent and tangent checks (`symjac._cotangents`).
_DIRECTIONAL = frozenset({"impl-vjp", "impl-vjp-sum", "impl-jvp", "impl-jvp-sum"})
#: At most this many disputed entries are re-evaluated in high precision per point.
_MAX_ARBITRATED = 64


def verify(
    impl,
    spec,
    /,
    *,
    samples: int | None = None,
    seed: int = 0,
    kind: str = "function",
    dtype: Any = np.float64,
    tolerance: ToleranceModel = DEFAULT_TOLERANCE,
    at: Mapping[str, Any] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    order: int = 1,
    batch: int | None = None,
    bound: float | None = None,
    roles: Mapping[str, Any] | None = None,
    wrt: str | Sequence[str] | None = None,
) -> Report:
    """Verify an implementation's value and derivative against the exact ones.

    - `impl`: called as `impl(*tensors)`, one torch tensor per input of `spec` in declaration order.
      kind "function" (default; formerly "forward"): it computes the function (torch ops, or a custom
      `torch.autograd.Function.apply`) and its autograd derivative is checked, in reverse mode and,
      where it supports it, forward mode. kind "jacobian": it returns the Jacobian in torch's layout
      (output shape + input shape; a tuple, list or dict by name for several inputs). kind
      "gradient": the same for a scalar function, i.e. its gradient.
    - `spec`: a `symjac.Function`, or a sequence of them: one expression at several shapes (a
      family), tried smallest first so that a failure shrinks to the smallest shape where it happens.
    - `samples`: points drawn from the spec's domain (default 100, `DEFAULT_SAMPLES`); `seed`:
      the same seed gives the same run and report. `dtype`: float64 or float32 points.
    - `at`: instead of drawing points, verify at this one point (`{name: value}`; the dtype is the
      values'); then `samples` must be left out.
    - `timeout`: seconds the whole verification may take (default 300, as `Limits.timeout`; None:
      no limit); past it, `symjac.JobTimeoutError`. In the main thread a hanging implementation is interrupted
      (`SIGALRM`); in other threads the limit is checked between points (`symjac._deadline`).
    - `order`: 2 verifies the implementation's second derivative: torch's four compositions of it
      (`impl-reverse-over-reverse`, ...; `impl-double-backward` where torch.func cannot run it)
      against the exact second derivative and finite differences of the exact Jacobian.
    - `batch`: B points at once (B per sample, or `at=` with a leading dimension B), the
      implementation's derivatives also under `torch.func.vmap` in both nesting orders.
      With `order=2` or `batch`, kind must be "function"; see `symjac._second_order`.
    - `bound`: the largest magnitude of drawn entries (default: mostly within 3, one point in two
      reaching out to 40, `symjac.strategies.DEFAULT_REACH`); `roles`: `{input name: flags}`
      replacing the derived roles, e.g. `{"X": "posdef"}` for a Cholesky- or eigh-based
      implementation (flags: `symjac.strategies.FLAGS`).
    - `wrt`: the inputs whose derivatives are checked (a name or a sequence of names; default
      all). The others are passed without `requires_grad`; their backward may return `None`.

    Besides the Jacobian (unit cotangents and tangents), reverse mode is checked with two random
    cotangents and forward mode with two random tangents, and both for linearity
    (`symjac._cotangents`); what a custom Function's backward returns is checked against its
    contract (`symjac._backward_contract`: one gradient per input, shape, dtype, no mutation, the
    same result twice).

    An implementation that raises, or cannot be differentiated (an in-place change of its input,
    a backward of the wrong shape), stops the run with `symjac.ImplementationError`, naming the
    (shrunk) point and the step; the original exception is its `__cause__`. A value or derivative
    that is not real numbers (complex, meta, sparse tensors) is an `InvalidArgumentError`.

    Returns a `Report` (verdict, worst entry with every route's value, minimal counterexample in
    `report.run`, the tolerance used, reproduction lines).

    ```python
    >>> import torch
    >>> spec = symjac.function("sin(x) * x", x=(3,))
    >>> symjac.verify(lambda x: torch.sin(x) * x, spec, samples=20).verdict
    'pass'
    ```
    """
    from ._deadline import time_limit, validate_timeout

    limit = validate_timeout(timeout)
    with time_limit(limit, what="verify") as deadline:
        return _verify(impl, spec, samples=samples, seed=seed, kind=kind, dtype=dtype, tolerance=tolerance, at=at,
                       deadline=deadline, order=order, batch=batch, bound=bound, roles=roles, wrt=wrt)


def _verify(impl, spec, *, samples, seed, kind, dtype, tolerance, at, deadline, order, batch, bound, roles,
            wrt) -> Report:
    from . import _sampling

    functions = _functions(spec)
    if not callable(impl):
        raise InvalidArgumentError(f"impl: must be callable; received {type(impl).__name__}")
    if functions[0].module_parameters:  # traced from an nn.Module: its parameters are inputs too
        from ._trace import module_implementation

        impl = module_implementation(impl, functions[0])
    if isinstance(kind, str) and kind in _OLD_KINDS:
        import warnings

        warnings.warn(
            f"verify(kind={kind!r}) is now spelled kind={_OLD_KINDS[kind]!r} (the implementation computes the "
            f"function; 'forward' read like forward-mode autograd)", DeprecationWarning, stacklevel=3)
        kind = _OLD_KINDS[kind]
    if not isinstance(kind, str) or kind not in KINDS:
        raise InvalidArgumentError(f"kind: must be one of {KINDS}; received {kind!r}")
    if kind == "gradient":
        for f in functions:
            if f.out_shape != ():
                raise InvalidArgumentError(
                    f"kind: 'gradient' needs a scalar function; the spec's output has shape {f.out_shape} "
                    f"(use kind='jacobian')"
                )
    if not isinstance(tolerance, ToleranceModel):
        raise InvalidArgumentError(f"tolerance: must be a symjac.ToleranceModel; received {type(tolerance).__name__}")
    resolved = float_dtype(dtype)
    seed = _sampling.validate_seed(seed)
    from ._second_order import validate_batch, validate_order

    order, batch = validate_order(order), validate_batch(batch)
    if (order != 1 or batch is not None) and kind != "function":
        raise InvalidArgumentError(
            f"kind: order=2 and batch= compose torch's transforms over the implementation, so kind must be "
            f"'function'; received kind={kind!r}"
        )
    checker = _PointVerifier(impl, kind, tolerance, deadline, seed=seed, wrt=_wrt(functions[0], wrt),
                             order=order, batch=batch)
    draw = _sampling.draw_options(bound, roles)
    if at is not None and draw:
        raise InvalidArgumentError(
            f"bound, roles: choose how points are drawn; with at= no point is drawn (received bound={bound!r}, roles={roles!r})"
        )
    if at is not None:
        if samples is not None:
            raise InvalidArgumentError(
                f"at: verifies one given point; pass either at= or samples=, not both (received samples={samples!r})"
            )
        if not isinstance(at, Mapping):
            raise InvalidArgumentError(f"at: must be a mapping {{input name: value}}; received {type(at).__name__}")
        return checker(_member(functions, at), dict(at))
    samples = _sampling.validate_samples(_sampling.DEFAULT_SAMPLES if samples is None else samples)
    extra = "" if kind == "function" else f", kind={kind!r}"
    extra += "" if resolved == np.float64 else ", dtype='float32'"
    extra += checker.options() + _sampling.options_text(bound, roles) + checker.wrt_text()
    return _sampling.run(
        functions,
        checker,
        samples=samples,
        seed=seed,
        dtype=resolved,
        reproduce=_reproduce(impl, functions, f"samples={samples}, seed={seed}{extra}"),
        describe=f"{_impl_name(impl)} against {_describe(functions[0])}"
        + (f" and {len(functions) - 1} more shapes" if len(functions) > 1 else ""),
        tolerance=tolerance.describe(resolved),
        batch=batch,
        task="verify",
        draw=draw,
    )


def _wrt(f, wrt) -> tuple[str, ...] | None:
    if wrt is None:
        return None
    names = [wrt] if isinstance(wrt, str) else list(wrt) if isinstance(wrt, Sequence) else None
    if not names or not all(isinstance(n, str) for n in names):
        raise InvalidArgumentError(f"wrt: must be an input name or a non-empty sequence of them; received {wrt!r}")
    unknown = [n for n in names if n not in f.input_names]
    if unknown:
        raise InvalidArgumentError(f"wrt: the spec has no input {unknown[0]!r}; its inputs are {', '.join(f.input_names)}")
    return tuple(n for n in f.input_names if n in names)


def _functions(spec) -> list:
    from ._function import Function

    members = [spec] if isinstance(spec, Function) else list(spec) if isinstance(spec, Sequence) else None
    if not members or not all(isinstance(f, Function) for f in members):
        raise InvalidArgumentError(
            "spec: must be a symjac.Function or a non-empty sequence of them (one expression at several "
            f"shapes); received {type(spec).__name__}"
        )
    names = members[0].input_names
    for f in members[1:]:
        if f.input_names != names:
            raise InvalidArgumentError(
                f"spec: the Functions of a family must have the same inputs; received {names} and {f.input_names}"
            )
    return members


def _member(functions, at: Mapping[str, Any]):
    for f in functions:
        try:
            coerce_point(f.inputs, at)
        except InvalidArgumentError:
            continue
        return f
    coerce_point(functions[0].inputs, at)  # raises the error of the first member
    raise ShapeError("at: the point's shapes fit no Function of the spec")  # pragma: no cover


def _impl_name(impl) -> str:
    """The implementation's name as a user would write it: `torch.sigmoid`, `mymodule.MyFn.apply`,
    else its qualified name (`test.<locals>.<lambda>`)."""
    path = _import_path(impl)
    if path is not None:
        return path[0] + "." + path[1] if path[0] not in ("__main__", "builtins") else path[1]
    owner = getattr(impl, "__self__", None)
    if isinstance(owner, type):
        return f"{owner.__qualname__}.{getattr(impl, '__name__', 'apply')}"
    return getattr(impl, "__qualname__", None) or type(impl).__qualname__


def _import_path(impl) -> tuple[str, str] | None:
    """(module, attribute path) from which `impl` can be imported again, or None."""
    import importlib
    import sys

    owner = getattr(impl, "__self__", None)
    if isinstance(owner, type):  # a custom autograd.Function's apply
        module, path = getattr(owner, "__module__", None), f"{owner.__qualname__}.{getattr(impl, '__name__', 'apply')}"
    else:
        module = getattr(impl, "__module__", None)
        name = getattr(impl, "__name__", None)
        path = name if module and name and getattr(sys.modules.get(module), name, None) is impl else None
        path = path or getattr(impl, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(path, str) or "<" in path or module not in sys.modules:
        return None
    target = importlib.import_module(module)
    for part in path.split("."):
        target = getattr(target, part, None)
    same = target is impl or (isinstance(owner, type) and getattr(target, "__func__", target) == getattr(impl, "__func__", impl))
    return (module, path) if same else None


def _reproduce(impl, functions, options: str) -> str:
    """A line that runs the same verification: the spec's `symjac.function(...)` call and the
    implementation by its import path; what cannot be printed is named in a comment."""

    calls = [function_call(f) for f in functions]
    spec = (calls[0] if len(calls) == 1 else f"[{', '.join(calls)}]") if all(calls) else "spec"
    path = _import_path(impl)
    imports = ["numpy", "symjac"]
    if path is not None and path[0] not in ("__main__", "builtins"):
        imports.append(path[0].split(".")[0] if path[0].startswith("torch") else path[0])
        name = f"{path[0]}.{path[1]}"
    else:
        name = path[1] if path is not None else "impl"
    missing = []
    if name == "impl":
        missing.append(f"impl: yours ({_impl_name(impl)}, which cannot be imported by name)")
    if spec == "spec":
        missing.append("spec: yours (a Function built from a callable or a SymPy expression)")
    line = f"import {', '.join(dict.fromkeys(imports))}; symjac.verify({name}, {spec}, {options})"
    return line + (f"  # {'; '.join(missing)}" if missing else "")


def _as_numpy(value, name: str) -> np.ndarray:
    from ._values import _to_numpy

    # the one validator: complex, meta, sparse and nested tensors are refused, never cast
    return _to_numpy(value, argument=f"impl: {name}").astype(np.float64)


class _PointVerifier:
    """Verifies `impl` at one point of one Function; picklable state only (impl, kind, tolerance)."""

    def __init__(self, impl, kind: str, tolerance: ToleranceModel, deadline=None, *, seed: int = 0,
                 wrt: tuple[str, ...] | None = None, order: int = 1, batch: int | None = None):
        self.impl = impl
        self.kind = kind
        self.tol = tolerance
        self.deadline = deadline
        self.seed = seed
        self.wrt = wrt
        self.order = order
        self.batch = batch

    def options(self) -> str:
        return (f", order={self.order}" if self.order != 1 else "") + (f", batch={self.batch}" if self.batch else "")

    def wrt_text(self) -> str:
        return "" if self.wrt is None else f", wrt={list(self.wrt)!r}"

    def __call__(self, f, values: dict) -> Report:
        if self.deadline is not None:
            self.deadline.check()  # between points: the limit outside the main thread
        from .backends import numpy_backend

        point = coerce_point(f.inputs, values)
        if self.order != 1 or self.batch is not None:
            from ._second_order import check_point

            at = ", ".join(f"{n!r}: {_literal(v)}" for n, v in point.values.items())
            line = f"import numpy, symjac; symjac.verify(impl, spec, at={{{at}}}{self.options()})  # impl, spec: yours"
            report = check_point(f, point, self.tol, order=self.order, batch=self.batch, impl=self.impl,
                                 prefix="impl-", reproduce=line)
            return dataclasses.replace(report, function=f"{_impl_name(self.impl)} against {report.function}")
        if point.batch_shape:
            raise ShapeError(f"at: verify takes one point; received a batch of shape {point.batch_shape}")
        base = _Check(f, point, None, self.tol)
        rows = _out_size(f)
        from ._arbitrate import repair_nonfinite

        with np.errstate(all="ignore"):
            exact_value = numpy_backend.forward(f, point.as_dtype(np.float64)).reshape(-1)
            # the reference in float64 for float32 points too; where symjac's own float64 code
            # overflows, mpmath (repair_nonfinite)
            exact = base._symbolic(point.as_dtype(np.float64)).astype(np.float64)
        report = _Verification(self, f, point, base, rows)
        for which in ("value", "jacobian"):
            current = exact_value if which == "value" else exact
            if np.all(np.isfinite(current)):
                continue
            repaired, why = repair_nonfinite(f, dict(values), current, jacobian=which == "jacobian")
            if why is not None:
                return report.inconclusive(why)
            report.notes.append(
                f"symjac's generated float64 code overflowed at some exact {which} entries here; "
                "they are evaluated with mpmath at 50 digits instead"
            )
            if which == "value":
                exact_value = repaired
            else:
                exact = repaired
        if not np.all(np.isfinite(exact_value)):
            index = int(np.argwhere(~np.isfinite(exact_value))[0][0])
            return report.inconclusive(f"outside the domain: the exact value out.flat[{index}] is {exact_value[index]}")
        if not np.all(np.isfinite(exact)):
            p, c = (int(i) for i in np.argwhere(~np.isfinite(exact))[0])
            return report.inconclusive(
                f"outside the domain: the exact Jacobian entry {base._entry_label(p, c)} is {exact[p, c]} (a singularity)"
            )
        at_kink = [label for label, d in base._kink_distances() if d == 0.0]
        if at_kink:
            return report.inconclusive(f"non-differentiable point: {at_kink[0]} is exactly 0 here")
        try:
            return report.compare(exact_value, exact)
        except SymjacError:
            raise
        except Exception as error:  # the implementation's own error: say where, keep it as the cause
            if report.stage is None:  # raised by symjac's own work between the implementation's calls
                raise
            raise _implementation_error(error, report, point) from error


def _implementation_error(error: Exception, report: "_Verification", point) -> ImplementationError:
    first = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
    at = ", ".join(f"{n!r}: {_literal(v)}" for n, v in point.values.items())
    hint = ""
    if "in-place" in first or "inplace" in first:
        hint = "; verify differentiates impl, so impl must not change its inputs in place"
    elif "invalid gradient" in first:
        hint = "; its backward must return one gradient per input, of that input's shape"
    return ImplementationError(
        f"impl: raised {type(error).__name__}: {first} (while computing its {report.stage}) at the point "
        f"{{{at}}}{hint}; reproduce: {_reproduce(report.owner.impl, [report.f], f'at={{{at}}}')}"
    )


class _Verification:
    """One point: the implementation's routes, their comparison with the exact ones, the Report."""

    def __init__(self, owner: _PointVerifier, f, point, base, rows: int):
        self.owner, self.f, self.point, self.base, self.rows = owner, f, point, base, rows
        self.tol = owner.tol
        self.notes: list[str] = []
        #: what is being computed from impl, for errors: "value", "reverse-mode Jacobian", ...;
        #: None while symjac's own work runs (an error then is not the implementation's)
        self.stage: str | None = "value"
        self.matrices = None
        if f.traced_from is not None:
            own = f.traced_from_same(owner.impl)
            self.notes.append(
                f"the spec was {f.origin}"
                + ("; it is this implementation's own forward, so the value is not itself checked, "
                   "only the derivatives (backward and forward mode) are" if own else ""))

    # -- the implementation's routes -------------------------------------------------------------
    def _tensors(self):
        from .backends import torch_backend

        tensors = torch_backend.to_tensors(self.point)
        return [tensors[name] for name in self.f.input_names]

    def _blocks(self, parts, name: str) -> np.ndarray:
        if isinstance(parts, Mapping):
            missing = [n for n in self.f.input_names if n not in parts]
            if missing:
                raise InvalidArgumentError(f"impl: the {name} has no entry for input {missing[0]!r}")
            parts = [parts[n] for n in self.f.input_names]
        elif len(self.f.inputs) == 1 and not isinstance(parts, (tuple, list)):
            parts = [parts]
        parts = list(parts)
        if len(parts) != len(self.f.inputs):
            raise InvalidArgumentError(
                f"impl: the {name} must have one part per input ({', '.join(self.f.input_names)}); received {len(parts)}"
            )
        blocks = []
        for inp, part in zip(self.f.inputs, parts):
            array = _as_numpy(part, f"the {name} for {inp.name!r}")
            shape = self.f.out_shape + inp.shape
            if array.shape != shape:
                raise ShapeError(
                    f"impl: the {name} for {inp.name!r} must have shape {shape} (output shape + input shape); "
                    f"received {array.shape}"
                )
            blocks.append(array.reshape(self.rows, inp.size))
        return np.concatenate(blocks, axis=1)

    def _autograd(self, mode: str) -> np.ndarray | None:
        from .backends import torch_backend

        torch = torch_backend.import_torch()
        impl, args = self._partial()
        self.stage = f"{mode}-mode Jacobian"
        argnums = tuple(range(len(args)))
        transform = torch.func.jacrev if mode == "reverse" else torch.func.jacfwd
        if mode == "forward":  # torch's dual levels are process-wide: one forward mode at a time
            with torch_backend.FORWARD_AD_LOCK:
                return self._autograd_unlocked(torch, impl, args, argnums, transform, mode)
        return self._autograd_unlocked(torch, impl, args, argnums, transform, mode)

    def _autograd_unlocked(self, torch, impl, args, argnums, transform, mode: str) -> np.ndarray | None:
        try:
            result = transform(impl, argnums=argnums)(*args)
        except Exception as first:  # torch.func cannot run it: fall back to torch.autograd
            strategy = "reverse-mode" if mode == "reverse" else "forward-mode"
            try:
                result = torch.autograd.functional.jacobian(
                    impl, tuple(args), vectorize=mode == "forward", strategy=strategy
                )
            except Exception as second:
                if mode == "reverse":
                    raise
                self.notes.append(
                    f"forward mode not checked: the implementation does not support it "
                    f"({type(second).__name__}: {_first_line(second)})"
                )
                return None
            self.notes.append(
                f"{mode} mode through torch.autograd.functional.jacobian (torch.func: "
                f"{type(first).__name__}: {_first_line(first)})"
            )
        return self._checked_blocks(result, f"{mode}-mode Jacobian")

    # -- wrt: only some inputs differentiated ----------------------------------------------------
    def _wrt_indices(self) -> list[int]:
        wrt = self.owner.wrt
        return [i for i, n in enumerate(self.f.input_names) if wrt is None or n in wrt]

    def _partial(self):
        """`(fn, args)`: impl as a function of the checked inputs only, the others held fixed."""
        impl, tensors = self.owner.impl, self._tensors()
        chosen = self._wrt_indices()
        if len(chosen) == len(tensors):
            return impl, tensors

        def fn(*xs):
            full = list(tensors)
            for i, x in zip(chosen, xs):
                full[i] = x
            return impl(*full)

        fn.__qualname__ = getattr(impl, "__qualname__", "impl")
        return fn, [tensors[i] for i in chosen]

    def _checked_blocks(self, result, name: str) -> np.ndarray:
        """`_blocks` of a Jacobian over the checked inputs; the unchecked inputs' columns are NaN
        until `_fill_unchecked` gives them the exact values."""
        chosen = self._wrt_indices()
        if len(chosen) == len(self.f.inputs):
            return self._blocks(result, name)
        parts = list(result) if isinstance(result, (tuple, list)) else [result]
        full = [np.full(self.f.out_shape + inp.shape, np.nan) for inp in self.f.inputs]
        for i, part in zip(chosen, parts):
            full[i] = part
        return self._blocks(full, name)

    def _unchecked_columns(self) -> np.ndarray:
        mask = []
        chosen = set(self._wrt_indices())
        for i, inp in enumerate(self.f.inputs):
            mask += [i not in chosen] * inp.size
        return np.asarray(mask, dtype=bool)

    def _value(self) -> np.ndarray:
        self.stage = "value"
        out = self.owner.impl(*self._tensors())
        if not type(out).__module__.startswith("torch"):
            raise InvalidArgumentError(
                f"impl: with kind='function' it must return a torch tensor (its autograd derivative is checked); "
                f"received {type(out).__name__}"
            )
        if tuple(out.shape) != self.f.out_shape:
            raise ShapeError(f"impl: the value must have the spec's output shape {self.f.out_shape}; received {tuple(out.shape)}")
        if str(out.dtype) != f"torch.{self.point.dtype}":
            self.notes.append(f"impl returned {out.dtype} for {self.point.dtype} inputs")
        return _as_numpy(out, "the value").reshape(-1)

    # -- comparison ------------------------------------------------------------------------------
    def compare(self, exact_value: np.ndarray, exact: np.ndarray) -> Report:
        from ._arbitrate import exact_jacobian_entries, exact_values

        kind = self.owner.kind
        routes: dict[str, np.ndarray] = {}
        value = None
        if kind == "function":
            value = self._value()
            outside = self._outside_the_text(exact_value, value)
            if outside is not None:
                return self.inconclusive(outside)
            broken = self._contract()
            if broken is not None:
                return broken
            routes["impl-reverse"] = self._autograd("reverse")
            forward = self._autograd("forward")
            if forward is not None:
                routes["impl-forward"] = forward
        else:
            self.stage = kind
            returned = self.owner.impl(*self._tensors())
            routes[f"impl-{kind}"] = self._blocks(returned, kind)
        unchecked = self._unchecked_columns()
        if unchecked.any():
            for r in routes.values():
                r[:, unchecked] = exact[:, unchecked]
            self.notes.append(
                "derivatives checked with respect to " + ", ".join(self.owner.wrt) + " only (wrt=)"
            )

        self.stage = None  # from here on symjac's own work: its errors are not the implementation's
        noise = self.base._noise(exact, implementation=True)
        bounds = {name: self.tol.rounding(exact, r, self.point.dtype, noise) for name, r in routes.items()}
        if value is not None:
            value_noise = self._value_noise()
            bounds["impl-value"] = self.tol.rounding(exact_value, value, self.point.dtype, value_noise)

        def over(reference_value, reference_jac):
            found = {name: np.abs(reference_jac - r) > bounds[name] for name, r in routes.items()}
            if value is not None:
                found["impl-value"] = np.abs(reference_value - value) > bounds["impl-value"]
            return {k: v | ~np.isfinite(_route(k, routes, value)) for k, v in found.items()}

        bad = over(exact_value, exact)
        disputed = np.zeros(exact.shape, dtype=bool)
        for name in routes:
            disputed |= bad[name]
        if disputed.any():
            noise, added = self.base.refine_noise(noise, disputed)
            if added:
                self.notes.extend(self.base.notes[-1:])
                for name, r in routes.items():
                    bounds[name] = self.tol.rounding(exact, r, self.point.dtype, noise)
                bad = over(exact_value, exact)
        if any(b.any() for b in bad.values()):
            # Arbitrate: the disputed exact entries, once more in high precision.
            values = {n: v for n, v in self.point.values.items()}
            cells = sorted({(int(p), int(c)) for k, b in bad.items() if k != "impl-value" for p, c in np.argwhere(b)})
            cells = cells[:_MAX_ARBITRATED]
            if cells:
                labels = [self._cell(p, c) for p, c in cells]
                for (p, c), v in zip(cells, exact_jacobian_entries(self.f, values, labels)):
                    exact[p, c] = v
            rows = sorted({int(i) for i in np.flatnonzero(bad.get("impl-value", np.zeros(0, bool)))})[:_MAX_ARBITRATED]
            if rows:
                for r, v in zip(rows, exact_values(self.f, values, rows)):
                    exact_value[r] = v
            still = over(exact_value, exact)
            if not any(b.any() for b in still.values()):
                self.notes.append(
                    "the float evaluation of the exact formula was off; mpmath at 50 digits agrees with impl"
                )
            bad = still

        pairs, ratios = [], []
        for name in ([("impl-value")] if value is not None else []) + list(routes):
            pair, ratio = self._pair(name, exact_value, exact, value, routes, bounds[name], bad[name])
            pairs.append(pair)
            ratios.append(ratio)
        if kind == "function":
            for pair, ratio in self._directional(exact, routes, bounds):
                pairs.append(pair)
                ratios.append(ratio)
        failing = [p.routes[1] for p in pairs if not p.ok]
        worst = pairs[int(np.argmax(ratios))].worst if pairs else None
        self.matrices = self.base._matrices({SYMBOLIC: exact, **routes})  # for Report.plot()
        if failing:
            what = "value" if failing == ["impl-value"] else "derivative" if "impl-value" not in failing else "value and derivative"
            reason = f"the implementation's {what} differs from the exact one beyond the tolerance"
            if set(failing) <= _DIRECTIONAL:
                reason = (
                    "the implementation's derivative is right for unit vectors but wrong for the cotangents or "
                    "tangents v, t (rules: vjp(v) = v^T J and jvp(t) = J t, linear in v and t; failing: "
                    f"{', '.join(failing)}): it ignores grad_output or uses it non-linearly"
                )
            return self._report(
                "fail", reason,
                (SYMBOLIC,) + tuple(["impl-value"] if value is not None else []) + tuple(routes),
                tuple(pairs), worst, ", ".join(failing),
            )
        return self._report(
            "pass", "", (SYMBOLIC,) + tuple(["impl-value"] if value is not None else []) + tuple(routes),
            tuple(pairs), worst, None,
        )

    def _outside_the_text(self, exact_value: np.ndarray, value: np.ndarray) -> str | None:
        """Why the point is outside the spec's domain as written, when the implementation's value is
        not finite where the built expression's is and the text itself (run as written, by torch on
        whole tensors: `backends._torch_tensor`) is not finite there either: SymPy simplified the
        text into an expression with a larger domain (`exp(log(x))` into `x`). None otherwise."""
        bad = ~np.isfinite(value) & np.isfinite(exact_value)
        if not bad.any():
            return None
        from .backends import torch_backend

        written = torch_backend.text_value(self.f, self.point)
        if written is None:
            return None
        undefined = bad & ~np.isfinite(written)
        if not undefined.any():
            return None
        i = int(np.flatnonzero(undefined)[0])
        return (
            f"outside the domain of the spec as written: {self.f.source!r} is {written[i]} at out.flat[{i}] here, "
            f"as is the implementation's value, but SymPy simplified the text on building into an expression "
            f"defined here (value {float(exact_value[i])!r}; see 'Simplification changes the domain' in "
            f"docs/expression-language.md): draw or pick points inside the text's domain"
        )

    # -- the backward's contract, cotangents and tangents ------------------------------------------
    def _contract(self) -> Report | None:
        """A failing Report when the backward breaks its contract (`symjac._backward_contract`)."""
        from ._backward_contract import check_backward

        v = self._vectors()[0]
        contract = check_backward(
            self.owner.impl, self._tensors(), list(self.f.input_names), self._wrt_indices(),
            v.reshape(self.f.out_shape), self.tol, self.point.dtype,
        )
        self.notes.extend(contract.notes)
        if not contract.violations:
            return None
        first = contract.violations[0]
        self.notes.extend(v.text() for v in contract.violations[1:])
        return self._report("fail", first.text(), (), (), None, "impl-backward")

    def _vectors(self) -> list[np.ndarray]:
        """Cotangents v1, v2 (flat, out_size) and tangents t1, t2 (flat, all inputs side by side)."""
        from . import _cotangents

        found = getattr(self, "_drawn", None)
        if found is None:
            key = _cotangents.point_key(self.point.values)
            cols = sum(inp.size for inp in self.f.inputs)
            sizes = (self.rows, self.rows, cols, cols)
            found = self._drawn = [
                _cotangents.draw(n, seed=self.owner.seed, point_key=key, stream=k) for k, n in enumerate(sizes)
            ]
        return found

    def _directional(self, exact: np.ndarray, routes: dict, bounds: dict):
        """(PairResult, ratio) of `impl-vjp`, `impl-vjp-sum` and, with forward mode, `impl-jvp`,
        `impl-jvp-sum` (`symjac._cotangents`)."""
        from . import _cotangents
        from .backends import torch_backend

        v1, v2, t1, t2 = self._vectors()
        chosen = self._wrt_indices()
        unchecked = self._unchecked_columns()
        splits = np.cumsum([inp.size for inp in self.f.inputs])[:-1]
        impl, args = self.owner.impl, self._tensors()
        found = []

        def vjp(v):
            self.stage = "vector-Jacobian products"
            grads = torch_backend.impl_vjp(impl, args, chosen, v.reshape(self.f.out_shape))
            self.stage = None
            full = [np.zeros(inp.size) for inp in self.f.inputs]
            for i, g in zip(chosen, grads):
                full[i] = np.asarray(g, dtype=np.float64).reshape(-1)
            return np.concatenate(full)

        rev = bounds["impl-reverse"]
        a, b, s = vjp(v1), vjp(v2), vjp(v1 + v2)
        got = np.stack([a, b])
        want = np.stack([v1 @ exact, v2 @ exact])
        tol = np.stack([np.abs(v1) @ rev, np.abs(v2) @ rev])
        got[:, unchecked] = want[:, unchecked]
        found.append(self._vector_pair((SYMBOLIC, "impl-vjp"), want, got, tol, "vjp"))
        sum_tol = tol[0] + tol[1] + np.abs(v1 + v2) @ rev
        s[unchecked] = (a + b)[unchecked]
        found.append(self._vector_pair(("impl-vjp", "impl-vjp-sum"), (a + b)[None], s[None], sum_tol[None], "vjp-sum"))
        self.notes.append(
            f"reverse mode also checked with cotangents v1 = {_cotangents.describe_vector(v1)}, "
            f"v2 = {_cotangents.describe_vector(v2)} (entries +-{{{', '.join(f'{x:g}' for x in _cotangents.VALUES)}}}, "
            f"seed {self.owner.seed} and the point) and linearity vjp(v1 + v2) = vjp(v1) + vjp(v2)"
        )
        if "impl-forward" in routes:
            fwd = bounds["impl-forward"]
            t1[unchecked] = 0.0
            t2[unchecked] = 0.0

            def jvp(t):
                parts = np.split(t, splits)
                tangents = [parts[i].reshape(self.f.inputs[i].shape) for i in chosen]
                self.stage = "Jacobian-vector products"
                result = torch_backend.impl_jvp(impl, args, chosen, tangents).reshape(-1)
                self.stage = None
                return result

            try:
                a, b, s = jvp(t1), jvp(t2), jvp(t1 + t2)
            except Exception as error:  # noqa: BLE001 - jacfwd ran through another path; say so
                self.notes.append(f"forward mode not checked with tangents ({type(error).__name__}: {str(error)[:120]})")
                return found
            got = np.stack([a, b], axis=1)
            want = np.stack([exact @ t1, exact @ t2], axis=1)
            tol = np.stack([fwd @ np.abs(t1), fwd @ np.abs(t2)], axis=1)
            found.append(self._vector_pair((SYMBOLIC, "impl-jvp"), want, got, tol, "jvp"))
            sum_tol = tol[:, 0] + tol[:, 1] + fwd @ np.abs(t1 + t2)
            found.append(self._vector_pair(("impl-jvp", "impl-jvp-sum"), (a + b)[:, None], s[:, None], sum_tol[:, None], "jvp-sum"))
            self.notes.append(
                f"forward mode also checked with tangents t1 = {_cotangents.describe_vector(t1)}, "
                f"t2 = {_cotangents.describe_vector(t2)} and linearity jvp(t1 + t2) = jvp(t1) + jvp(t2)"
            )
        return found

    def _vector_pair(self, names, want, got, tol, kind):
        """Compare `got` with `want` entry by entry (vjp: (k, in_size); jvp: (out_size, k))."""
        diff, rel, ratio = differences(want, got, tol)
        ratio = np.where(np.isnan(ratio) | ~np.isfinite(got), np.inf, ratio)
        bad = ratio > 1.0
        k = int(np.argmax(ratio))
        r, c = divmod(k, ratio.shape[1])
        values = {names[0]: float(want[r, c]), names[1]: float(got[r, c])}
        if kind.startswith("vjp"):
            inp, q = self.base.columns[c]
            in_index = tuple(int(i) for i in np.unravel_index(q, inp.shape)) if inp.shape else ()
            entry = Entry((r,), inp.name, in_index, values, float(tol[r, c]), kind=kind)
        else:
            out_index = tuple(int(i) for i in np.unravel_index(r, self.f.out_shape)) if self.f.out_shape else ()
            entry = Entry(out_index, "", (c,), values, float(tol[r, c]), kind=kind)
        return pair_result(names, diff, rel, bad, entry), float(ratio.reshape(-1)[k])

    def _cell(self, p: int, c: int) -> tuple[int, str, int]:
        inp, q = self.base.columns[c]
        return p, inp.name, q

    def _value_noise(self) -> np.ndarray:
        from .backends import numpy_backend

        p32 = self.point.as_dtype(np.float32)
        with np.errstate(all="ignore"):
            v32 = numpy_backend.forward(self.f, p32).astype(np.float64).reshape(-1)
            v64 = numpy_backend.forward(self.f, p32.as_dtype(np.float64)).reshape(-1)
            noise = np.abs(v32 - v64) * (eps(self.point.dtype) / eps(np.float32))
        noise = np.where(np.isfinite(noise), noise, 0.0)
        moved = self.base._conditioning(lambda p: numpy_backend.forward(self.f, p), self.rows).reshape(-1)
        return np.fmax(np.fmax(noise, moved), self._value_running())

    def _value_running(self) -> np.ndarray:
        """eps(dtype) times the running error bound of each output (`_tolerance.running_error`): the
        value's own cancellation, which float32 and float64 may both round alike (`1 + tanh(u)` of
        GELU at u = -5: 7.7e-17 absolute in float64)."""

        values, (rows, _), _ = self.base.forward_bounds()
        out = np.zeros(self.rows)
        if values is not None:
            out[rows] = values * eps(self.point.dtype)
        return np.fmax(out, self.base.implementation_noise((self.rows,), jacobian=False))

    def _pair(self, name, exact_value, exact, value, routes, bound, bad):
        if name == "impl-value":
            diff, rel, ratio = differences(exact_value, value, bound)
        else:
            diff, rel, ratio = differences(exact, routes[name], bound)
        ratio = np.where(np.isnan(ratio) | (bad & ~(ratio > 1)), np.inf, ratio)
        k = int(np.argmax(ratio))
        if name == "impl-value":
            index = tuple(int(i) for i in np.unravel_index(k, self.f.out_shape)) if self.f.out_shape else ()
            entry = Entry(index, "", (), {SYMBOLIC: float(exact_value[k]), name: float(value[k])}, float(bound[k]), kind="value")
        else:
            p, c = divmod(k, ratio.shape[1])
            entry = self.base._entry(p, c, {SYMBOLIC: exact, **routes}, float(bound[p, c]))
        return pair_result((SYMBOLIC, name), diff, rel, bad, entry), float(ratio.reshape(-1)[k])

    # -- reports ---------------------------------------------------------------------------------
    def inconclusive(self, reason: str) -> Report:
        return self._report("inconclusive", reason, (), (), None, None)

    def _report(self, verdict, reason, routes, pairs, worst, odd) -> Report:
    
        owner = self.owner
        at = ", ".join(f"{n!r}: {_literal(v)}" for n, v in self.point.values.items())
        extra = "" if owner.kind == "function" else f", kind={owner.kind!r}"
        extra += f", seed={owner.seed}" if owner.seed else ""
        extra += owner.wrt_text()
        return Report(
            verdict=verdict,
            reason=reason,
            function=f"{_impl_name(owner.impl)} against {_describe(self.f)}",
            dtype=str(self.point.dtype),
            point={n: v.tolist() for n, v in self.point.values.items()},
            routes=routes,
            pairs=pairs,
            worst=worst,
            odd_one_out=odd,
            tolerance=self.tol.describe(self.point.dtype),
            reproduce=_reproduce(owner.impl, [self.f], f"at={{{at}}}{extra}"),
            task="verify",
            matrices=getattr(self, "matrices", None),
            notes=tuple(self.notes),
        )


def _first_line(error: BaseException, limit: int = 120) -> str:
    """The first line of an error's message, cut at a word boundary within `limit` characters."""
    lines = str(error).strip().splitlines()
    first = lines[0] if lines else ""
    if len(first) <= limit:
        return first
    cut = first[: limit + 1].rsplit(" ", 1)[0] if " " in first[:limit] else first[:limit]
    return cut.rstrip(" ,;:") + " ..."


def _route(name, routes, value):
    return value if name == "impl-value" else routes[name]


def _literal(v: np.ndarray) -> str:
    listed = repr(v.tolist())
    return listed if v.dtype == np.float64 else f"numpy.array({listed}, dtype={str(v.dtype)!r})"
