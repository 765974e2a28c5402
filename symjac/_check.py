"""`symjac.check`: the exact Jacobian of a Function against torch autograd, finite differences and a
candidate, at one point, at B points (`batch=`), at second order (`order=2`) or at points drawn from
the domain (`samples=`). The routes are compared by the one checking engine (`symjac._engine`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ._engine import (  # noqa: F401 - the route names are also read from here
    CANDIDATE,
    FINITE_DIFF,
    FORWARD,
    OPTIONS,
    REVERSE,
    SYMBOLIC,
    _Check,
    _describe,
    _limits_text,
    _out_size,
    function_call,
    reproduction_line,
)
from . import _dag
from ._arbitrate import arbitrate_report
from ._errors import InvalidArgumentError, ShapeError
from ._function import Function, as_job
from ._report import Report
from ._second_order import validate_batch, validate_order
from ._tolerance import DEFAULT_TOLERANCE, ToleranceModel
from ._values import coerce_array, coerce_point

__all__ = ["check", "SYMBOLIC", "REVERSE", "FORWARD", "FINITE_DIFF", "CANDIDATE"]


def _as_job(check):
    """Run `check` as a job under the limits `f` was built with (`Limits.timeout`, `progress`)."""
    import functools

    @functools.wraps(check)
    def run(f, /, **options: Any) -> Report:
        with as_job(f.limits if isinstance(f, Function) else None, "symjac.check", phase="checking"):
            return check(f, **options)

    return run


@_as_job
def check(
    f,
    /,
    *,
    at: Mapping[str, Any] | None = None,
    jacobian: Any = None,
    tolerance: ToleranceModel = DEFAULT_TOLERANCE,
    samples: int | None = None,
    seed: int | None = None,
    order: int = 1,
    batch: int | None = None,
    bound: float | None = None,
    roles: Mapping[str, Any] | None = None,
    **values: Any,
) -> Report:
    """Check the exact Jacobian of `f` against torch autograd and finite differences at one point,
    or at `samples` points drawn from its domain.

    - `f`: a `symjac.Function`.
    - `jacobian`: optionally, a Jacobian you computed (torch's layout; a dict by input name when
      `f` has several inputs), checked against every route as the route "candidate".
    - `tolerance`: a `ToleranceModel`; the default is documented in `symjac._tolerance`.
    - `at`: the point, `{input name: value}` (float32 stays float32, float64 stays float64).
    - `**values`: the same point as keywords (`X=...`), for inputs whose names are not options of
      `check` (an input named `seed` or `jacobian` is passed with `at=`).
    - `samples`, `seed`: instead of a point, check `samples` float64 points drawn from the
      function's domain (the distributions of `symjac.strategies.inputs`, from a NumPy generator
      seeded with `seed`: the same on every machine), hunting the worst disagreement and
      shrinking a failure to a minimal counterexample; the same seed (default 0) gives the same run.
      The Report then covers the whole run (`report.run`). See `symjac._sampling`.
    - `order`: 2 checks the exact second derivative against torch's four compositions
      (`reverse-over-reverse`, `forward-over-reverse`, `reverse-over-forward`,
      `forward-over-forward`) and finite differences of the exact Jacobian (`symjac._second_order`).
    - `batch`: B points at once (every input with a leading dimension B, or B points per sample),
      each route also under `torch.func.vmap` in both nesting orders (`vmap(jacfwd)`,
      `jacfwd(vmap)`, ...); the report names the batch point and the nesting that is off.
    - `bound`, `roles`: with `samples`, how points are drawn: the largest magnitude of an entry
      (default: mostly within 3, one point in two out to 40) and `{input name: flags}` replacing
      derived roles (e.g. `{"X": "posdef"}`); see `symjac.strategies`.

    Returns a `Report`; call `report.raise_if_failed()` to turn a failure into an AssertionError.

    ```python
    >>> f = symjac.function("X @ X", X=(2, 2))
    >>> symjac.check(f, X=[[2.0, 3.0], [4.0, 5.0]]).verdict
    'pass'
    ```
    """
    if not isinstance(f, Function):
        raise InvalidArgumentError(
            f"f: must be a symjac.Function (build one with symjac.function); received {type(f).__name__}"
        )
    values = _point_values(f, at, values, {"jacobian": jacobian, "samples": samples, "seed": seed,
                                           "tolerance": tolerance is not DEFAULT_TOLERANCE,
                                           "order": order != 1, "batch": batch})
    if not isinstance(tolerance, ToleranceModel):
        raise InvalidArgumentError(
            f"tolerance: must be a symjac.ToleranceModel; received {type(tolerance).__name__}"
        )
    order, batch = validate_order(order), validate_batch(batch)
    if order != 1 and jacobian is not None:
        raise InvalidArgumentError("jacobian: a candidate Jacobian is checked at order=1; received order=2")
    if samples is not None or seed is not None:
        return _check_samples(f, jacobian, tolerance, samples, seed, values, bound, roles, order=order, batch=batch)
    if bound is not None or roles is not None:
        raise InvalidArgumentError(
            f"bound, roles: choose how points are drawn, with samples=N; received bound={bound!r}, roles={roles!r} for one point"
        )
    point = coerce_point(f.inputs, values)
    if order != 1 or batch is not None:
        return _check_higher(f, point, _candidate(f, jacobian), tolerance, order, batch)
    if point.batch_shape:
        raise ShapeError(
            f"values: check takes one point; received a batch of shape {point.batch_shape} "
            f"(inputs {', '.join(f'{n}: {v.shape}' for n, v in point.values.items())})"
        )
    candidate = _candidate(f, jacobian)
    # SymPy's walks inside the engine (error bounds, comparisons of equal deep trees) recurse over
    # the expression's depth: room for the Function's depth budget (`_dag.call_deep`)
    return _dag.call_deep(lambda: arbitrate_report(f, _Check(f, point, candidate, tolerance).run()),
                          levels=f.limits.max_depth)


def _point_values(f, at, values: dict, given: dict) -> dict:
    """The point as one dict, from `at=` or from keywords; an input named like an option must use `at=`."""
    if at is not None:
        if not isinstance(at, Mapping):
            raise InvalidArgumentError(f"at: must be a mapping {{input name: value}}; received {type(at).__name__}")
        if values:
            raise InvalidArgumentError(
                f"at: pass the point either as at={{...}} or as keywords, not both (received at= and "
                f"{', '.join(sorted(values))}=)")
        return dict(at)
    for name in f.input_names:
        if name in OPTIONS and (values or given.get(name) not in (None, False)):
            raise InvalidArgumentError(
                f"{name}: f has an input named {name!r}, which is also an option of symjac.check; pass "
                f"the point as at={{{', '.join(repr(n) + ': ...' for n in f.input_names)}}}")
    return values


def _options_text(order: int, batch: int | None) -> str:
    return (f", order={order}" if order != 1 else "") + (f", batch={batch}" if batch is not None else "")


def _check_higher(f, point, candidate, tolerance, order, batch) -> Report:
    """`check` with `order=2` or `batch=B`: the routes of `symjac._second_order`."""
    from ._second_order import check_point

    if batch is None and point.batch_shape:
        raise ShapeError(
            f"values: check takes one point (or batch=B with B points); received a batch of shape {point.batch_shape}"
        )
    line = reproduction_line(f, point, candidate is not None, options=_options_text(order, batch))
    return check_point(f, point, tolerance, order=order, batch=batch, reproduce=line, candidate=candidate)


def _check_samples(f, jacobian, tolerance, samples, seed, values, bound=None, roles=None, *, order: int = 1,
                   batch: int | None = None) -> Report:
    from . import _sampling

    if samples is None:
        raise InvalidArgumentError(f"seed: is used only with samples=N; received seed={seed!r} without samples")
    samples = _sampling.validate_samples(samples)
    seed = _sampling.validate_seed(0 if seed is None else seed)
    draw = _sampling.draw_options(bound, roles)
    if values or jacobian is not None:
        given = ", ".join(sorted(values)) or "jacobian"
        raise InvalidArgumentError(
            f"samples: checks points drawn from the domain; pass either samples=N or a point, "
            f"not both (received samples={samples} and {given})"
        )

    def at_point(g, point_values):
        point = coerce_point(g.inputs, point_values)
        if order != 1 or batch is not None:
            return _check_higher(g, point, None, tolerance, order, batch)
        return arbitrate_report(g, _Check(g, point, None, tolerance).run())

    return _sampling.run(
        [f], at_point, samples=samples, seed=seed, dtype=np.float64,
        reproduce=_run_line(f, samples, seed, options=_sampling.options_text(bound, roles) + _options_text(order, batch)),
        describe=_describe(f), tolerance=tolerance.describe(np.float64), batch=batch, draw=draw,
    )


def _run_line(f, samples: int, seed: int, options: str = "") -> str:
    if f.source is None:
        return f"symjac.check(f, samples={samples}, seed={seed}{options})  # f: the Function checked"
    shapes = ", ".join(f"{i.name}={i.shape!r}" for i in f.inputs)
    consts = f.consts
    const_text = f", consts={{{', '.join(f'{k!r}: {v.tolist()!r}' for k, v in consts.items())}}}" if consts else ""
    const_text += _limits_text(f)
    return f"import symjac; symjac.check(symjac.function({f.source!r}, {shapes}{const_text}), samples={samples}, seed={seed}{options})"


def _candidate(f, jacobian) -> np.ndarray | None:
    if jacobian is None:
        return None
    if not isinstance(jacobian, Mapping):
        if len(f.inputs) != 1:
            raise InvalidArgumentError(
                f"jacobian: f has inputs {', '.join(f.input_names)}; pass a dict {{name: array}}"
            )
        jacobian = {f.inputs[0].name: jacobian}
    unknown = [key for key in jacobian if key not in f.input_names]
    if unknown:
        raise InvalidArgumentError(
            f"jacobian: f has no input named {unknown[0]!r}; its inputs are {', '.join(f.input_names)}"
        )
    parts = []
    for inp in f.inputs:
        if inp.name not in jacobian:
            raise InvalidArgumentError(f"jacobian: missing the Jacobian with respect to {inp.name!r}")
        shape = f.out_shape + inp.shape
        array = coerce_array(jacobian[inp.name], (), argument=f"jacobian[{inp.name!r}]")
        if array.shape != shape:
            raise ShapeError(
                f"jacobian[{inp.name!r}]: expected shape {shape} (output shape + input shape); "
                f"received {array.shape}"
            )
        parts.append(array.astype(np.float64).reshape(_out_size(f), inp.size))
    return np.concatenate(parts, axis=1)


