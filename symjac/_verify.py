"""`verify`: a user's implementation against the exact value and Jacobian, over many points.

At each point drawn from the spec's domain, the implementation's value is compared with the exact
forward, and its derivative with the exact Jacobian, entry by entry with the per-entry tolerance of
`symjac._tolerance` (route names in the report):

- `impl-value`: `impl(*inputs)`, the value (kind "forward");
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

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._errors import InvalidArgumentError, ShapeError
from ._report import Entry, PairResult, Report
from ._tolerance import DEFAULT_TOLERANCE, ToleranceModel, eps
from ._values import coerce_point, float_dtype

__all__ = ["verify", "KINDS"]

#: What `impl` computes: the function itself ("forward"), or its Jacobian or gradient directly.
KINDS = ("forward", "jacobian", "gradient")
#: At most this many disputed entries are re-evaluated in high precision per point.
_MAX_ARBITRATED = 64


def verify(
    impl,
    spec,
    /,
    *,
    samples: int | None = None,
    seed: int = 0,
    kind: str = "forward",
    dtype: Any = np.float64,
    tolerance: ToleranceModel = DEFAULT_TOLERANCE,
    at: Mapping[str, Any] | None = None,
) -> Report:
    """Verify an implementation's value and derivative against the exact ones.

    - `impl`: called as `impl(*tensors)`, one torch tensor per input of `spec` in declaration order.
      kind "forward" (default): it computes the function (torch ops, or a custom
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

    Returns a `Report` (verdict, worst entry with every route's value, minimal counterexample in
    `report.run`, the tolerance used, reproduction lines).

    ```python
    >>> import torch
    >>> spec = symjac.function("sin(x) * x", x=(3,))
    >>> symjac.verify(lambda x: torch.sin(x) * x, spec, samples=20).verdict
    'pass'
    ```
    """
    from . import _sampling
    from ._check import _describe

    functions = _functions(spec)
    if not callable(impl):
        raise InvalidArgumentError(f"impl: must be callable; received {type(impl).__name__}")
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
    checker = _PointVerifier(impl, kind, tolerance)
    if at is not None:
        if samples is not None:
            raise InvalidArgumentError(
                f"at: verifies one given point; pass either at= or samples=, not both (received samples={samples!r})"
            )
        if not isinstance(at, Mapping):
            raise InvalidArgumentError(f"at: must be a mapping {{input name: value}}; received {type(at).__name__}")
        return checker(_member(functions, at), dict(at))
    samples = _sampling.validate_samples(_sampling.DEFAULT_SAMPLES if samples is None else samples)
    extra = "" if kind == "forward" else f", kind={kind!r}"
    extra += "" if resolved == np.float64 else ", dtype='float32'"
    return _sampling.run(
        functions,
        checker,
        samples=samples,
        seed=seed,
        dtype=resolved,
        reproduce=f"symjac.verify(impl, spec, samples={samples}, seed={seed}{extra})  # impl, spec: yours",
        describe=f"{_impl_name(impl)} against {_describe(functions[0])}"
        + (f" and {len(functions) - 1} more shapes" if len(functions) > 1 else ""),
        tolerance=tolerance.describe(resolved),
    )


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
    owner = getattr(impl, "__self__", None)
    if isinstance(owner, type):
        return f"{owner.__qualname__}.{getattr(impl, '__name__', 'apply')}"
    return getattr(impl, "__qualname__", None) or type(impl).__qualname__


def _as_numpy(value, name: str) -> np.ndarray:
    if type(value).__module__.startswith("torch"):
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise InvalidArgumentError(f"impl: {name} must be a tensor or array of numbers; received {type(value).__name__} ({error})") from None


class _PointVerifier:
    """Verifies `impl` at one point of one Function; picklable state only (impl, kind, tolerance)."""

    def __init__(self, impl, kind: str, tolerance: ToleranceModel):
        self.impl = impl
        self.kind = kind
        self.tol = tolerance

    def __call__(self, f, values: dict) -> Report:
        from ._check import _Check, _out_size
        from .backends import numpy_backend

        point = coerce_point(f.inputs, values)
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
        return report.compare(exact_value, exact)


class _Verification:
    """One point: the implementation's routes, their comparison with the exact ones, the Report."""

    def __init__(self, owner: _PointVerifier, f, point, base, rows: int):
        self.owner, self.f, self.point, self.base, self.rows = owner, f, point, base, rows
        self.tol = owner.tol
        self.notes: list[str] = []

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
        impl, args = self.owner.impl, self._tensors()
        argnums = tuple(range(len(args)))
        transform = torch.func.jacrev if mode == "reverse" else torch.func.jacfwd
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
                    f"({type(second).__name__}: {str(second).splitlines()[0] if str(second) else ''})"
                )
                return None
            self.notes.append(
                f"{mode} mode through torch.autograd.functional.jacobian (torch.func: "
                f"{type(first).__name__}: {str(first).splitlines()[0][:120] if str(first) else ''})"
            )
        return self._blocks(result, f"{mode}-mode Jacobian")

    def _value(self) -> np.ndarray:
        out = self.owner.impl(*self._tensors())
        if not type(out).__module__.startswith("torch"):
            raise InvalidArgumentError(
                f"impl: with kind='forward' it must return a torch tensor (its autograd derivative is checked); "
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
        if kind == "forward":
            value = self._value()
            routes["impl-reverse"] = self._autograd("reverse")
            forward = self._autograd("forward")
            if forward is not None:
                routes["impl-forward"] = forward
        else:
            returned = self.owner.impl(*self._tensors())
            routes[f"impl-{kind}"] = self._blocks(returned, kind)

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
        failing = [p.routes[1] for p in pairs if not p.ok]
        worst = pairs[int(np.argmax(ratios))].worst if pairs else None
        if failing:
            what = "value" if failing == ["impl-value"] else "derivative" if "impl-value" not in failing else "value and derivative"
            return self._report(
                "fail", f"the implementation's {what} differs from the exact one beyond the tolerance",
                ("exact",) + tuple(["impl-value"] if value is not None else []) + tuple(routes),
                tuple(pairs), worst, ", ".join(failing),
            )
        return self._report(
            "pass", "", ("exact",) + tuple(["impl-value"] if value is not None else []) + tuple(routes),
            tuple(pairs), worst, None,
        )

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
        from ._check import _output_cells

        values, (rows, _), _ = self.base._bounds("running-error-forward", _output_cells)
        out = np.zeros(self.rows)
        if values is not None:
            out[rows] = values * eps(self.point.dtype)
        return np.fmax(out, self.base.implementation_noise((self.rows,), jacobian=False))

    def _pair(self, name, exact_value, exact, value, routes, bound, bad):
        with np.errstate(all="ignore"):
            if name == "impl-value":
                diff = np.abs(exact_value - value)
                scale = np.fmax(np.abs(exact_value), np.abs(value))
            else:
                diff = np.abs(exact - routes[name])
                scale = np.fmax(np.abs(exact), np.abs(routes[name]))
            ratio = np.where(diff == 0, 0.0, diff / bound)
            rel = np.where(diff == 0, 0.0, diff / scale)
        ratio = np.where(np.isnan(ratio) | (bad & ~(ratio > 1)), np.inf, ratio)
        k = int(np.argmax(ratio))
        finite = np.isfinite(diff)
        if name == "impl-value":
            index = tuple(int(i) for i in np.unravel_index(k, self.f.out_shape)) if self.f.out_shape else ()
            entry = Entry(index, "", (), {"exact": float(exact_value[k]), name: float(value[k])}, float(bound[k]), kind="value")
        else:
            p, c = divmod(k, ratio.shape[1])
            entry = self.base._entry(p, c, {"exact": exact, **routes}, float(bound[p, c]))
        pair = PairResult(
            routes=("exact", name),
            max_abs_error=float(np.max(diff[finite], initial=0.0)),
            max_rel_error=float(np.max(rel[finite & np.isfinite(rel)], initial=0.0)),
            n_bad=int(bad.sum()),
            worst=entry,
            ok=not bad.any(),
        )
        return pair, float(ratio.reshape(-1)[k])

    # -- reports ---------------------------------------------------------------------------------
    def inconclusive(self, reason: str) -> Report:
        return self._report("inconclusive", reason, (), (), None, None)

    def _report(self, verdict, reason, routes, pairs, worst, odd) -> Report:
        from ._check import _describe

        owner = self.owner
        at = ", ".join(f"{n!r}: {_literal(v)}" for n, v in self.point.values.items())
        extra = "" if owner.kind == "forward" else f", kind={owner.kind!r}"
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
            reproduce=f"import numpy, symjac; symjac.verify(impl, spec, at={{{at}}}{extra})  # impl, spec: yours",
            notes=tuple(self.notes),
        )


def _route(name, routes, value):
    return value if name == "impl-value" else routes[name]


def _literal(v: np.ndarray) -> str:
    listed = repr(v.tolist())
    return listed if v.dtype == np.float64 else f"numpy.array({listed}, dtype={str(v.dtype)!r})"
