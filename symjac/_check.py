"""The cross-check at one point: evaluate every route, compare every pair, reach a verdict.

Routes (each gives the full Jacobian, all inputs side by side, as an (out_size, in_size) matrix):

- `symbolic`: the exact SymPy Jacobian, through generated NumPy code, in the point's dtype;
- `autograd-reverse`, `autograd-forward`: torch.func.jacrev / jacfwd of the torch forward
  generated from the same expression, in the point's dtype;
- `finite-diff`: Richardson-extrapolated central differences of the NumPy forward, in float64,
  with a per-entry error estimate;
- `candidate`: a Jacobian the caller supplies (`jacobian=`), checked against all of the above.

Verdicts: `fail` when a pair disagrees beyond its tolerance (finite differences are excused near
a kink their stencil straddles); `inconclusive` at a non-differentiable point, outside the domain,
or when finite differences cannot be evaluated; `pass` otherwise.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import sympy

from ._errors import InvalidArgumentError, InvalidExpressionError, ShapeError
from ._budget import written_sizes
from ._finite_diff import fd_jacobian
from ._report import Entry, PairResult, Report, RouteMatrices
from ._tolerance import DEFAULT_TOLERANCE, ToleranceModel, eps, perturbed
from ._values import Point, coerce_array, coerce_point
from .backends import numpy_backend

__all__ = ["check", "SYMBOLIC", "REVERSE", "FORWARD", "FINITE_DIFF", "CANDIDATE"]

SYMBOLIC, REVERSE, FORWARD, FINITE_DIFF, CANDIDATE = (
    "symbolic",
    "autograd-reverse",
    "autograd-forward",
    "finite-diff",
    "candidate",
)
_KINKS = (sympy.Abs, sympy.sign, sympy.Heaviside, sympy.Max, sympy.Min, sympy.Piecewise)


def check(
    f,
    /,
    *,
    jacobian: Any = None,
    tolerance: ToleranceModel = DEFAULT_TOLERANCE,
    samples: int | None = None,
    seed: int | None = None,
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
    - `**values`: the point, one value per input (float32 stays float32, float64 stays float64).
    - `samples`, `seed`: instead of a point, check `samples` float64 points drawn by Hypothesis from
      the function's domain (`symjac.strategies.inputs`), hunting the worst disagreement and
      shrinking a failure to a minimal counterexample; the same seed (default 0) gives the same run.
      The Report then covers the whole run (`report.run`). See `symjac._sampling`.
    - `bound`, `roles`: with `samples`, how points are drawn: the largest magnitude of an entry
      (default: mostly within 3, one point in three out to 40) and `{input name: flags}` replacing
      derived roles (e.g. `{"X": "posdef"}`); see `symjac.strategies`.

    Returns a `Report`; call `report.raise_if_failed()` to turn a failure into an AssertionError.

    ```python
    >>> f = symjac.function("X @ X", X=(2, 2))
    >>> symjac.check(f, X=[[2.0, 3.0], [4.0, 5.0]]).verdict
    'pass'
    ```
    """
    from ._function import Function

    if not isinstance(f, Function):
        raise InvalidArgumentError(
            f"f: must be a symjac.Function (build one with symjac.function); received {type(f).__name__}"
        )
    if not isinstance(tolerance, ToleranceModel):
        raise InvalidArgumentError(
            f"tolerance: must be a symjac.ToleranceModel; received {type(tolerance).__name__}"
        )
    if samples is not None or seed is not None:
        return _check_samples(f, jacobian, tolerance, samples, seed, values, bound, roles)
    if bound is not None or roles is not None:
        raise InvalidArgumentError(
            f"bound, roles: choose how points are drawn, with samples=N; received bound={bound!r}, roles={roles!r} for one point"
        )
    point = coerce_point(f.inputs, values)
    if point.batch_shape:
        raise ShapeError(
            f"values: check takes one point; received a batch of shape {point.batch_shape} "
            f"(inputs {', '.join(f'{n}: {v.shape}' for n, v in point.values.items())})"
        )
    candidate = _candidate(f, jacobian)
    from ._arbitrate import arbitrate_report

    return arbitrate_report(f, _Check(f, point, candidate, tolerance).run())


def _check_samples(f, jacobian, tolerance, samples, seed, values, bound=None, roles=None) -> Report:
    from . import _sampling
    from ._arbitrate import arbitrate_report

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
        return arbitrate_report(g, _Check(g, point, None, tolerance).run())

    return _sampling.run(
        [f], at_point, samples=samples, seed=seed, dtype=np.float64,
        reproduce=_run_line(f, samples, seed, _sampling.options_text(bound, roles)), describe=_describe(f),
        tolerance=tolerance.describe(np.float64), draw=draw,
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


def _out_size(f) -> int:
    return math.prod(f.out_shape)


class _Check:
    """One check: holds the routes' matrices while they are compared."""

    def __init__(self, f, point: Point, candidate, tolerance: ToleranceModel):
        self.f = f
        self.point = point
        self.candidate = candidate
        self.tol = tolerance
        self.dtype = point.dtype
        self.columns = [(inp, q) for inp in f.inputs for q in range(inp.size)]
        self.notes: list[str] = []

    # -- routes --------------------------------------------------------------------------------
    def _symbolic(self, point: Point) -> np.ndarray:
        batch = point.batch_shape
        blocks = [
            numpy_backend.jacobian(self.f.jacobian(inp.name), point).reshape(batch + (_out_size(self.f), inp.size))
            for inp in self.f.inputs
        ]
        return np.concatenate(blocks, axis=-1)

    def _noise(self, symbolic: np.ndarray) -> np.ndarray:
        """Measured rounding sensitivity per entry, rescaled to the point's dtype."""
        p32 = self.point.as_dtype(np.float32)
        j32 = self._symbolic(p32).astype(np.float64)
        j64 = self._symbolic(p32.as_dtype(np.float64))
        with np.errstate(invalid="ignore"):
            noise = np.abs(j32 - j64) * (eps(self.dtype) / eps(np.float32))
        noise = np.where(np.isfinite(noise), noise, 0.0)
        noise = np.fmax(noise, self._conditioning(self._symbolic, _out_size(self.f)))
        return np.fmax(noise, self._running(noise.shape))

    def _running(self, shape) -> np.ndarray:
        """eps(dtype) times the running error bound of each exact entry (`_tolerance.running_error`)."""
        values, (rows, cols), left = self._bounds("running-error", _jacobian_cells)
        out = np.zeros(shape)
        if left:
            self.notes.append(
                f"no running error bound for {left} of the exact Jacobian's entries (too large to compile"
                " quickly); their tolerance rests on the measured float32 noise and input conditioning"
            )
        if values is not None:
            out[rows, cols] = values * eps(self.dtype)
        return out

    def _bounds(self, key: str, cells_of):
        """The running error bounds of `cells_of(f)` at the point (float64, non-finite as 0, None
        when none was compiled), their `(rows, cols)` and how many entries went without one."""
        compiled, cells, left = self.f.cached(key, lambda: _compile_bounds(cells_of(self.f), self.f))
        if compiled is None:
            return None, cells, left
        values = self._at_point(compiled)
        return np.where(np.isfinite(values), values, 0.0), cells, left

    def _at_point(self, compiled) -> np.ndarray:
        """Compiled code of the function's symbols (`_codegen.compile_entries`) at the point, in float64."""
        p64 = self.point.as_dtype(np.float64)
        with np.errstate(all="ignore"):
            return numpy_backend._assemble(compiled.fn(*numpy_backend._arguments(self.f, p64)), (), np.float64)

    def _conditioning(self, evaluate, rows: int) -> np.ndarray:
        """How far each entry of `evaluate(point)` (rows x columns) moves, in float64, when every
        input moves by one rounding of the dtype (`_tolerance.perturbed`)."""
        count = self.tol.perturbations
        p64 = self.point.as_dtype(np.float64)
        base = evaluate(p64).reshape(rows, -1).astype(np.float64)
        if not count:
            return np.zeros_like(base)
        flat = perturbed(p64.flat(self.f.input_names), self.dtype, count)
        parts = np.split(flat, np.cumsum([inp.size for inp in self.f.inputs])[:-1], axis=1)
        values = {inp.name: p.reshape((count,) + inp.shape) for inp, p in zip(self.f.inputs, parts)}
        with np.errstate(all="ignore"):
            moved = evaluate(Point(values, np.dtype(np.float64), (count,))).reshape(count, rows, -1)
            change = np.max(np.abs(moved - base[None]), axis=0)
        return np.where(np.isfinite(change), change, 0.0)

    def _autograd(self, mode: str) -> np.ndarray:
        from .backends import torch_backend

        per_input = torch_backend.autograd_jacobians(self.f, self.point, mode)
        return np.concatenate(
            [per_input[inp.name].reshape(_out_size(self.f), inp.size) for inp in self.f.inputs], axis=1
        ).astype(np.float64)

    def _finite_diff(self):
        f = self.f
        sizes = [inp.size for inp in f.inputs]
        splits = np.cumsum(sizes)[:-1]

        def fn(rows: np.ndarray) -> np.ndarray:
            parts = np.split(rows, splits, axis=1)
            values = {inp.name: p.reshape((rows.shape[0],) + inp.shape) for inp, p in zip(f.inputs, parts)}
            out = numpy_backend.forward(f, Point(values, np.dtype(np.float64), (rows.shape[0],)))
            return out.reshape(rows.shape[0], -1)

        x = self.point.as_dtype(np.float64).flat(f.input_names)
        return fd_jacobian(fn, x, output_noise=self._forward_running())

    def _forward_running(self) -> np.ndarray | None:
        """eps(float64) times the running error bound of each output entry at the point (what
        finite differences divide by their step), or None when no entry has a bound."""
        values, (rows, _), _ = self._bounds("running-error-forward", _output_cells)
        if values is None:
            return None
        out = np.zeros(_out_size(self.f))
        out[rows] = values * eps(np.float64)
        return out

    # -- kinks and domain ----------------------------------------------------------------------
    def _kink_distances(self) -> list[tuple[str, float]]:
        """(description, |argument|) for every non-smooth atom of the output at this point."""
        f = self.f
        args = f.cached("kink-args", lambda: _kink_arguments(f.output))
        if not args:
            return []
        exprs = [a for _, a in args]
        vals = self._at_point(f.cached("kink-code", lambda: _compile_kinks(f, exprs)))
        return [(label, abs(float(v))) for (label, _), v in zip(args, vals)]

    # -- the check -----------------------------------------------------------------------------
    def run(self) -> Report:
        f = self.f
        with np.errstate(all="ignore"):
            out = numpy_backend.forward(f, self.point.as_dtype(np.float64))
            symbolic = self._symbolic(self.point).astype(np.float64)
        if not np.all(np.isfinite(out)):
            index = tuple(int(i) for i in np.argwhere(~np.isfinite(out))[0])
            return self._inconclusive(
                f"outside the domain: output entry {index} is {out[index]} at this point"
            )
        if not np.all(np.isfinite(symbolic)):
            p, c = (int(i) for i in np.argwhere(~np.isfinite(symbolic))[0])
            return self._inconclusive(
                f"outside the domain: the exact Jacobian entry {self._entry_label(p, c)} is "
                f"{symbolic[p, c]} at this point (a singularity)"
            )
        kinks = self._kink_distances()
        at_kink = [label for label, d in kinks if d == 0.0]

        routes: dict[str, np.ndarray] = {SYMBOLIC: symbolic}
        routes[REVERSE] = self._autograd("reverse")
        routes[FORWARD] = self._autograd("forward")
        with np.errstate(all="ignore"):
            fd = self._finite_diff()
        routes[FINITE_DIFF] = fd.value
        if self.candidate is not None:
            routes[CANDIDATE] = self.candidate
        noise = self._noise(symbolic)
        self._note_coarse(symbolic, noise)

        near_kink = [label for label, d in kinks if 0.0 < d <= 4.0 * float(np.max(fd.step, initial=0.0))]
        pairs, ratios = self._compare(routes, fd, noise)
        failing = [p for p in pairs if not p.ok]
        exact_failing = [p for p in failing if FINITE_DIFF not in p.routes]
        fd_failing = [p for p in failing if FINITE_DIFF in p.routes]
        fd_undefined = not np.all(np.isfinite(fd.value))
        vague = self.tol.fd_uninformative(fd.error, symbolic)

        verdict, reason = "pass", ""
        if at_kink:
            verdict = "inconclusive"
            reason = f"non-differentiable point: {at_kink[0]} is exactly 0 here"
        elif exact_failing:
            verdict, reason = "fail", "routes disagree beyond their tolerance"
        elif fd_undefined:
            verdict = "inconclusive"
            reason = "finite differences are undefined here: their stencil leaves the function's domain"
        elif fd_failing and near_kink:
            verdict = "inconclusive"
            reason = f"finite differences straddle a kink: {near_kink[0]} is within their step"
        elif fd_failing:
            verdict, reason = "fail", "routes disagree beyond their tolerance"
        elif vague.any():
            p, c = (int(i) for i in np.argwhere(vague)[0])
            where = f"near a kink ({near_kink[0]}) " if near_kink else ""
            verdict = "inconclusive"
            reason = (
                f"finite differences cannot confirm {where}: their error estimate at "
                f"{self._entry_label(p, c)} is {fd.error[p, c]:.2e}"
            )

        odd = _odd_one_out(routes, pairs) if verdict == "fail" else None
        worst_pair = max(range(len(pairs)), key=lambda k: ratios[k][1])
        worst = pairs[worst_pair].worst if pairs else None
        return self._report(verdict, reason, routes, tuple(pairs), worst, odd)

    def _note_coarse(self, symbolic: np.ndarray, noise: np.ndarray) -> None:
        """Say where the exact routes' own tolerance is too wide to confirm `fd_informative`
        agreement: there a wrong entry smaller than the tolerance would pass, so the report says so."""
        tol = self.tol.rounding(symbolic, symbolic, self.dtype, noise)
        scale = np.abs(symbolic)
        jmax = float(np.max(scale, initial=0.0))
        if jmax == 0.0:
            return
        coarse = tol > self.tol.fd_informative * (scale + jmax)
        if coarse.any():
            p, c = np.unravel_index(int(np.argmax(np.where(coarse, tol, -np.inf))), tol.shape)
            n = int(coarse.sum())
            self.notes.append(
                f"weak at {n} {'entry' if n == 1 else 'entries'}: the formula loses precision at this point,"
                f" so the exact routes may differ by up to {tol[p, c]:.2e} at {self._entry_label(int(p), int(c))}"
                f" ({tol[p, c] / jmax:.1e} of max|J|); a wrong entry within that would pass there"
            )

    def _compare(self, routes, fd, noise):
        names = list(routes)
        pairs, ratios = [], []
        for a, b in itertools.combinations(names, 2):
            ra, rb = routes[a], routes[b]
            if FINITE_DIFF in (a, b):
                other = rb if a == FINITE_DIFF else ra
                tol = self.tol.against_fd(fd.error, self.tol.rounding(other, other, self.dtype, noise))
            else:
                tol = self.tol.rounding(ra, rb, self.dtype, noise)
            diff = np.abs(ra - rb)
            with np.errstate(all="ignore"):
                scale = np.fmax(np.abs(ra), np.abs(rb))
                rel = np.where(diff == 0, 0.0, diff / scale)
                ratio = np.where(diff == 0, 0.0, diff / tol)
            ratio = np.where(np.isnan(ratio), np.inf if FINITE_DIFF not in (a, b) else 0.0, ratio)
            bad = ratio > 1.0
            k = int(np.argmax(ratio))
            p, c = divmod(k, ratio.shape[1])
            entry = self._entry(p, c, routes, float(tol[p, c]))
            finite = np.isfinite(diff)
            pairs.append(
                PairResult(
                    routes=(a, b),
                    max_abs_error=float(np.max(diff[finite], initial=0.0)),
                    max_rel_error=float(np.max(rel[finite], initial=0.0)),
                    n_bad=int(bad.sum()),
                    worst=entry,
                    ok=not bad.any(),
                )
            )
            ratios.append((k, float(ratio.reshape(-1)[k])))
        return pairs, ratios

    # -- presentation --------------------------------------------------------------------------
    def _entry(self, p: int, c: int, routes, tol: float | None) -> Entry:
        inp, q = self.columns[c]
        out_index = tuple(int(i) for i in np.unravel_index(p, self.f.out_shape)) if self.f.out_shape else ()
        in_index = tuple(int(i) for i in np.unravel_index(q, inp.shape)) if inp.shape else ()
        return Entry(out_index, inp.name, in_index, {k: float(v[p, c]) for k, v in routes.items()}, tol)

    def _entry_label(self, p: int, c: int) -> str:
        return self._entry(p, c, {}, None).label()

    def _inconclusive(self, reason: str) -> Report:
        return self._report("inconclusive", reason, {}, (), None, None)

    def _report(self, verdict, reason, routes, pairs, worst, odd) -> Report:
        return Report(
            verdict=verdict,
            reason=reason,
            function=_describe(self.f),
            dtype=str(self.dtype),
            point={n: v.tolist() for n, v in self.point.values.items()},
            routes=tuple(routes),
            pairs=pairs,
            worst=worst,
            odd_one_out=odd,
            tolerance=self.tol.describe(self.dtype),
            reproduce=reproduction_line(self.f, self.point, self.candidate is not None),
            notes=tuple(self.notes),
            matrices=self._matrices(routes) if routes else None,
        )

    def _matrices(self, routes) -> RouteMatrices:
        """Each route's (out_size, in_size) matrix and the structural nonzeros, for Report.plot()."""
        nonzero = [self.f.jacobian(i.name).sparsity.reshape(_out_size(self.f), i.size) for i in self.f.inputs]
        return RouteMatrices(
            self.f.out_shape, self.f._inputs_spec(), dict(routes), np.concatenate(nonzero, axis=1)
        )


def _describe(f) -> str:
    shapes = ", ".join(f"{i.name}: {i.shape}" for i in f.inputs)
    body = f.source if f.source is not None else "<callable or SymPy expression>"
    return f"{body} ({shapes})"


def _limits_text(f) -> str:
    """`, limits=symjac.Limits(...)` when `f` was built under raised budgets (else it would not rebuild)."""
    limits = getattr(f, "limits", None)
    text = limits.source() if limits is not None else ""
    return f", limits={text}" if text else ""


def reproduction_line(f, point: Point, with_candidate: bool = False) -> str:
    """A line of Python that runs the same check (exact float reprs; dtype kept)."""
    def value(v: np.ndarray) -> str:
        listed = repr(v.tolist())
        return listed if v.dtype == np.float64 else f"numpy.array({listed}, dtype={str(v.dtype)!r})"

    at = ", ".join(f"{n}={value(v)}" for n, v in point.values.items())
    if with_candidate:
        at += ", jacobian=J"
    if f.source is None:
        line = f"symjac.check(f, {at})  # f: the Function checked"
    else:
        shapes = ", ".join(f"{i.name}={i.shape!r}" for i in f.inputs)
        consts = f.consts
        const_text = f", consts={{{', '.join(f'{k!r}: {v.tolist()!r}' for k, v in consts.items())}}}" if consts else ""
        const_text += _limits_text(f)
        line = f"import numpy, symjac; symjac.check(symjac.function({f.source!r}, {shapes}{const_text}), {at})"
    return line + ("  # J: the candidate Jacobian" if with_candidate else "")


#: Routes that share a source are one piece of evidence: both autograd modes differentiate the
#: same torch forward, so their agreement with each other outvotes nothing.
_FAMILY = {REVERSE: "autograd", FORWARD: "autograd"}


def _odd_one_out(routes: dict, pairs) -> str | None:
    """The routes outside the unique best set whose pairs all agree, if there is one.

    The best set has the most independent families of routes (then the most routes).
    """
    ok = {frozenset(p.routes): p.ok for p in pairs}
    names = list(routes)
    groups = [
        group
        for size in range(2, len(names) + 1)
        for group in itertools.combinations(names, size)
        if all(ok[frozenset(pair)] for pair in itertools.combinations(group, 2))
    ]
    if not groups:
        return None

    def weight(group):
        return (len({_FAMILY.get(n, n) for n in group}), len(group))

    top = max(map(weight, groups))
    best = [g for g in groups if weight(g) == top]
    if len(best) != 1 or top[0] < 2:
        return None
    outside = [n for n in names if n not in best[0]]
    return ", ".join(outside) if outside else None


def _kink_arguments(output: np.ndarray) -> list[tuple[str, sympy.Expr]]:
    found: dict[sympy.Expr, str] = {}
    for expr in output.reshape(-1):
        for atom in expr.atoms(*_KINKS):
            if isinstance(atom, (sympy.Max, sympy.Min)):
                for a, b in itertools.combinations(atom.args, 2):
                    found.setdefault(a - b, f"the argument difference of {atom}")
            elif isinstance(atom, sympy.Piecewise):
                for _, cond in atom.args:
                    if isinstance(cond, sympy.core.relational.Relational):
                        found.setdefault(cond.lhs - cond.rhs, f"the condition {cond} of {atom}")
            else:
                found.setdefault(atom.args[0], f"the argument of {atom}")
    return [(label, arg) for arg, label in found.items()]


def _jacobian_cells(f) -> list[tuple]:
    """`(written-out size, row, column, entry)` of every structural nonzero of the Jacobian, all
    inputs side by side."""
    rows, cols, entries, offset = [], [], [], 0
    for inp in f.inputs:
        jac = f.jacobian(inp.name)
        rows += [int(r) for r in jac.rows]
        cols += [offset + int(c) for c in jac.cols]
        entries += list(jac.entries)
        offset += inp.size
    return list(zip(written_sizes(entries, refuse=False), rows, cols, entries))


def _output_cells(f) -> list[tuple]:
    """`(written-out size, output index, 0, entry)` of every output entry."""
    entries = list(f.output.reshape(-1))
    return [(size, p, 0, e) for p, (size, e) in enumerate(zip(written_sizes(entries, refuse=False), entries))]


def _compile_bounds(cells, f):
    """Running error bounds of `cells` (`(written-out size, row, col, expression)`), compiled smallest first
    within `MAX_RUNNING_TOTAL` nodes: `(compiled or None, (rows, cols), number left without one)`."""
    from ._codegen import compile_entries
    from ._tolerance import MAX_RUNNING_TOTAL, running_error

    exprs, rows, cols, total = [], [], [], 0
    for size, r, c, e in sorted(cells, key=lambda cell: cell[:3]):
        if total + size > MAX_RUNNING_TOTAL:
            break
        total += size
        exprs.append(running_error(e))
        rows.append(r)
        cols.append(c)
    left = len(cells) - len(exprs)
    if not exprs:
        return None, ([], []), left
    symbols = [s for inp in f.inputs for s in inp.flat_symbols]
    try:
        compiled = compile_entries(exprs, symbols, "numpy")
    except InvalidExpressionError:  # a bound with no NumPy code: those entries go without one
        return None, ([], []), len(cells)
    return compiled, (np.array(rows), np.array(cols)), left


def _compile_kinks(f, exprs):
    from ._codegen import compile_entries

    symbols = [s for inp in f.inputs for s in inp.flat_symbols]
    return compile_entries(exprs, symbols, "numpy")
