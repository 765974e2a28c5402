"""The one checking engine: routes at one point, their comparison, the verdict, the report.

`_Check` holds a point's context (the exact value and Jacobian, rounding noise, conditioning,
running error bounds, kinks and domain) and compares routes pair by pair against per-entry
tolerances (`symjac._tolerance`), names the odd one out and builds the Report. `symjac.check`
(`_check`) adds the generated code's torch routes, finite differences and a candidate;
`symjac.verify` (`_verify`) the implementation's routes; `symjac._second_order` the second-order
and batched compositions, as a subclass. Nothing here is public.

Routes of `check` (each gives the full Jacobian, all inputs side by side, as an (out_size, in_size) matrix):

- `symbolic`: the exact SymPy Jacobian, through generated NumPy code, in float64 (the reference,
  for float32 points too; entries where float64 overflows are evaluated with mpmath);
- `torch-reverse`, `torch-forward`: torch autograd (a batched backward; `torch.func.jacfwd`) of
  the tensor-level torch forward (`backends/_torch_tensor`: `torch.matmul`, `torch.tanh`,
  `torch.linalg.det` on whole tensors, generated from the text's or the SymPy matrix expression's
  tree), in the point's dtype: what a user's torch code runs, so torch's own derivative rules;
- `autograd-reverse`, `autograd-forward`: jacrev / jacfwd of the element-wise torch forward
  generated from the exact expression, in the point's dtype: the torch routes of a Function with
  no tensor forward (a callable, SymPy scalar expressions, traced code) or whose tensor forward
  cannot represent the point; with a tensor forward, `autograd-reverse` is added only when a
  tensor route disagrees, as the independent view that tells torch's rule from the exact Jacobian;
- `finite-diff`: Richardson-extrapolated central differences of the NumPy forward, in float64,
  with a per-entry error estimate;
- `candidate`: a Jacobian the caller supplies (`jacobian=`), checked against all of the above.

Verdicts: `fail` when a pair disagrees beyond its tolerance (finite differences are excused near
a kink their stencil straddles); `inconclusive` at a non-differentiable point, outside the domain,
or when finite differences cannot be evaluated; `pass` otherwise.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
from collections.abc import Mapping

import numpy as np
import sympy

from . import _dag, _floats
from ._arbitrate import repair_nonfinite
from ._budget import written_sizes
from ._finite_diff import FDJacobian, _fd_jacobian
from ._report import Entry, PairResult, Report, RouteMatrices
from ._tolerance import ToleranceModel, eps, perturbed, perturbed_normwise
from ._values import Point
from .backends import _torch as torch_backend  # the module `backends.torch_backend` names, without its __getattr__
from .backends import numpy_backend
from .backends._torch_tensor import Unsupported

__all__ = ["SYMBOLIC", "REVERSE", "FORWARD", "TENSOR_REVERSE", "TENSOR_FORWARD", "FINITE_DIFF", "CANDIDATE"]

SYMBOLIC, REVERSE, FORWARD, FINITE_DIFF, CANDIDATE = (
    "symbolic",
    "autograd-reverse",
    "autograd-forward",
    "finite-diff",
    "candidate",
)
#: torch autograd of the tensor-level forward (`backends/_torch_tensor`: torch's own operations on
#: whole tensors, so torch's own derivative rules); REVERSE and FORWARD differentiate the
#: element-wise torch code generated from the exact expression.
TENSOR_REVERSE, TENSOR_FORWARD = "torch-reverse", "torch-forward"
#: The keyword options of `check`; an input with one of these names is passed with `at=`.
OPTIONS = ("at", "jacobian", "tolerance", "samples", "seed", "order", "batch")
_KINKS = (sympy.Abs, sympy.sign, sympy.Heaviside, sympy.Max, sympy.Min, sympy.Piecewise)



def _out_size(f) -> int:
    return math.prod(f.out_shape)


#: What `_Check._ignored` gives inside `run`, which holds `np.errstate(all="ignore")` already: the
#: same state, without entering it again (about 4 us each, ten times a check)
_HELD = contextlib.nullcontext()


class _Check:
    """One check: holds the routes' matrices while they are compared."""

    #: route -> family for the odd one out (`_odd_one_out`); subclasses add their routes
    families: Mapping = {}
    #: True while `run` holds `np.errstate(all="ignore")` (`_ignored`)
    _quiet = False

    def __init__(self, f, point: Point, candidate, tolerance: ToleranceModel, *, extra: Mapping | None = None):
        self.f = f
        self.point = point
        self.candidate = candidate
        self.extra = dict(extra or {})  # more routes' matrices (symjac._second_order: batched routes)
        self.tol = tolerance
        self.dtype = point.dtype
        # (input, entry) of each column, inputs side by side: the same for every point (kept per Function, read-only)
        self.columns = f.cached("check-columns", lambda: tuple((inp, q) for inp in f.inputs for q in range(inp.size)))
        self.notes: list[str] = []
        self.tensor_routes = False  # set by `_tensor_routes` when the tensor-level torch routes ran
        self._p64: Point | None = None
        self._center: np.ndarray | None = None  # the forward at the point, kept by `_finite_diff`

    def _ignored(self):
        """`np.errstate(all="ignore")`: overflow and division by zero are the engine's to judge (it
        checks finiteness), no RuntimeWarning, which a user's `-W error` would turn into an exception
        inside a correct check; inside `run`, which holds that state already, a no-op context."""
        return _HELD if self._quiet else np.errstate(all="ignore")

    @property
    def p64(self) -> Point:
        """The point in float64 (made once per check)."""
        if self._p64 is None:  # a float64 point is its own (its values are read-only: `coerce_point`)
            point = self.point
            self._p64 = point if point.dtype == np.float64 else point.as_dtype(np.float64)
        return self._p64

    @property
    def x64(self) -> np.ndarray:
        """The point in float64, flat (inputs side by side), read-only (made once per check)."""
        x = getattr(self, "_x64", None)
        if x is None:
            x = self._x64 = self.p64.flat(self.f.input_names)
            x.flags.writeable = False
        return x

    # -- routes --------------------------------------------------------------------------------
    def _symbolic(self, point: Point) -> np.ndarray:
        # Overflow and division by zero in the generated code are the engine's to judge (it checks
        # finiteness, and repairs or calls a point inconclusive): no RuntimeWarning, which a
        # user's `-W error` would turn into an exception inside a correct check.
        batch = point.batch_shape
        jacs = _jacobians(self.f)
        with self._ignored():
            if len(jacs) == 1:
                return numpy_backend.jacobian(jacs[0], point).reshape(batch + (_out_size(self.f), jacs[0].wrt.size))
            # every input's Jacobian from one shared table (`numpy_backend.jacobians_plan`, what
            # `Function.jacobians().evaluate` runs), side by side: each distinct entry and atom computed once
            return numpy_backend.jacobian_matrix(self.f, jacs, point)

    def _reference(self, p64: Point) -> np.ndarray:
        """The symbolic route at the float64 point `p64`. `_Check` evaluates, in the same batched call, the
        float64 points its noise reads (`_noise_points`) and keeps them for `_noise`; a subclass
        with its own `_noise` evaluates the point alone."""
        if type(self)._noise is not _Check._noise or type(self)._symbolic is not _Check._symbolic:
            return self._symbolic(p64)
        x = self.x64 if p64 is self._p64 else p64.flat(self.f.input_names)
        values = self._symbolic(_flat_point(self.f, self._noise_points(x)))
        self._evaluated = values  # (1 + points, out_size, in_size): read once by `_noise`
        return values[0]

    def _noise_points(self, x: np.ndarray) -> np.ndarray:
        """The flat float64 point `x` and after it the points the noise evaluates the symbolic
        route at, `(1 + k, in_size)`, written into one array: the point rounded to float32 (for a
        float64 point; a float32 point is that point already), then the conditioning's
        `_perturbations`."""
        rounded = int(self.dtype != np.float32)
        count = self.tol.perturbations
        out = np.empty((1 + rounded + 2 * count, x.size))
        out[0] = x
        if rounded:
            out[1] = self.x64.astype(np.float32)  # float32 values, exact in float64
        if count:
            self._perturbations(out[1 + rounded :])
        return out

    def _noise(self, symbolic: np.ndarray, *, implementation: bool = False) -> np.ndarray:
        """Measured rounding sensitivity per entry, rescaled to the point's dtype; with
        `implementation`, also what a fused implementation's own formula may lose
        (`symjac._implementations`)."""
        p32 = self.point if self.dtype == np.float32 else self.point.as_dtype(np.float32)
        j32 = self._symbolic(p32).astype(np.float64)
        evaluated, self._evaluated = getattr(self, "_evaluated", None), None
        if evaluated is None:  # not from `_reference` (symjac.verify's base check)
            j64 = self._symbolic(p32.as_dtype(np.float64))
            conditioning = self._conditioning(self._symbolic, _out_size(self.f))
        else:  # the same numbers, from `_reference`'s one batched evaluation
            base, rest = evaluated[0], evaluated[1:]
            j64, moved = (base, rest) if self.dtype == np.float32 else (rest[0], rest[1:])
            if base.size <= NOISE_IN_FLOATS:  # a few entries: the lines below, in Python floats
                ratio = eps(self.dtype) / eps(np.float32)
                noise = _noise_in_floats(j32, j64, base, moved, ratio, self._running(base.shape))
                if implementation and self._has_implementation_bounds():
                    noise = np.fmax(noise, self.implementation_noise(noise.shape, jacobian=True))
                return noise
            conditioning = _change(np, base, moved)
        with self._ignored() if self._quiet else np.errstate(invalid="ignore"):
            noise = _noise_rule(np, j32, j64, eps(self.dtype) / eps(np.float32), conditioning,
                                self._running(j32.shape))
        if implementation and self._has_implementation_bounds():
            noise = np.fmax(noise, self.implementation_noise(noise.shape, jacobian=True))
        return noise

    def _has_implementation_bounds(self) -> bool:
        """Whether `implementation_noise` has bounds to add (False: the spec has no fused primitive, its
        allowance is 0 everywhere)."""
        f, dtype, threshold = self.f, self.dtype, self.tol.softplus_threshold

        def build():
            from ._implementations import implementation_bounds

            return implementation_bounds(f, dtype, threshold, jacobian=True) is not None

        return f.cached(("has-implementation-bounds", np.dtype(dtype), float(threshold)), build)

    def implementation_noise(self, shape, *, jacobian: bool) -> np.ndarray:
        """eps(dtype) times the bound of `symjac._implementations` per entry (0 where none)."""
        from ._implementations import implementation_bounds

        out = np.zeros(shape)
        found = implementation_bounds(self.f, self.dtype, self.tol.softplus_threshold, jacobian=jacobian)
        if found is not None:
            compiled, rows, cols = found
            values = self._at_point(compiled)
            values = np.where(np.isfinite(values), values, 0.0) * eps(self.dtype)
            if jacobian:
                out[rows, cols] = values
            else:
                out.reshape(-1)[rows] = values
        return out

    def _running(self, shape) -> np.ndarray:
        """eps(dtype) times the running error bound of each exact entry (`_tolerance.running_error`)."""
        shape = tuple(shape)
        out, (rows, cols), left, found = self._placed_bounds("running-error", _jacobian_cells, shape, eps(self.dtype))
        self.bounded = _bounded_mask(self.f, shape, rows, cols, found)
        if left:
            self.notes.append(
                f"no running error bound for {left} of the exact Jacobian's entries (too large to compile"
                " quickly); their tolerance rests on the measured float32 noise and input conditioning"
            )
        return out

    def refine_noise(self, noise: np.ndarray, disputed: np.ndarray) -> tuple[np.ndarray, int]:
        """`noise` with the running error bounds that `_running`'s budget left out, for the
        entries in dispute (a boolean mask), and how many were added. Without one, such an entry's
        tolerance rests on float32 noise, which is 0 where both dtypes round alike (a saturated
        `tanh`: 0.0 in float64, 7.7e-16 in truth). When every left-out entry together is within
        `MAX_REST_TOTAL` nodes, all of them are compiled once (cached on the Function, so the
        next points reuse them); otherwise the disputed ones alone, at most `MAX_DISPUTED_BOUNDS`."""
        bounded = getattr(self, "bounded", None)
        if bounded is None or bounded.shape != noise.shape:
            return noise, 0
        wanted = disputed & ~bounded
        if not wanted.any():
            return noise, 0
        f = self.f

        def rest():
            cells = [cell for cell in _jacobian_cells(f) if not bounded[cell[1], cell[2]]]
            if sum(size for size, *_ in cells) > MAX_REST_TOTAL:
                return None
            return _compile_bounds(cells, f, budget=MAX_REST_TOTAL)

        found = f.cached("running-error-rest", rest)
        if found is None:
            entries = _dense_entries(f)
            rows, cols = np.nonzero(wanted & _sparsity(f))
            cells = [(0, int(r), int(c), entries[(int(r), int(c))])
                     for r, c in zip(rows[:MAX_DISPUTED_BOUNDS], cols[:MAX_DISPUTED_BOUNDS])]
            found = _compile_bounds(cells, f)
        compiled, (rows, cols), _ = found
        if compiled is None:
            return noise, 0
        values = self._at_point(compiled)
        values = np.where(np.isfinite(values), values, 0.0) * eps(self.dtype)
        out = noise.copy()
        out[rows, cols] = np.fmax(out[rows, cols], values)
        self.bounded = bounded.copy()
        self.bounded[rows, cols] = True
        added = int(np.count_nonzero(wanted & self.bounded))
        self.notes.append(
            f"running error bounds compiled for the {len(rows)} {'entry' if len(rows) == 1 else 'entries'}"
            f" left out of the budget, {added} of them in dispute"
        )
        return out, added

    def forward_bounds(self):
        """`_bounds` of the output entries (the forward's), with the budget `MAX_REST_TOTAL`: the
        forward has one entry per output, not per output and input."""
        return self._bounds("running-error-forward", _output_cells, budget=MAX_REST_TOTAL)

    def _bounds(self, key: str, cells_of, budget: int | None = None):
        """The running error bounds of `cells_of(f)` at the point (float64, non-finite as 0, None
        when none was compiled), their `(rows, cols)` and how many entries went without one;
        `budget`: `_compile_bounds`'."""
        compiled, cells, left = self._compiled_bounds(key, cells_of, budget)
        if compiled is None:
            return None, cells, left
        values = self._at_point(compiled)
        return np.where(np.isfinite(values), values, 0.0), cells, left

    def _compiled_bounds(self, key: str, cells_of, budget: int | None = None):
        """`_compile_bounds` of `cells_of(f)`, cached on the Function under `key`."""
        return self.f.cached(key, lambda: _compile_bounds(cells_of(self.f), self.f, budget))

    def _placed_bounds(self, key: str, cells_of, shape: tuple, factor: float, budget: int | None = None):
        """`factor` times `_bounds` placed at their `(rows, cols)` of an array of `shape` (rows only
        for a 1-D `shape`), 0 elsewhere, with their `(rows, cols)`, how many went without one and
        whether any were compiled. Up to `_floats.FEW` entries in Python floats: the same numbers
        (each bound's float64 value, 0 where not finite, times `factor`) without NumPy's calls."""
        compiled, cells, left = self._compiled_bounds(key, cells_of, budget)
        if compiled is not None and math.prod(shape) <= _floats.FEW:
            values = self._floats_at_point(compiled)
            if values is not None:
                out = [0.0] * math.prod(shape)
                for place, v in zip(_places(self.f, key, cells, shape), values):
                    out[place] = v * factor if math.isfinite(v) else 0.0
                return np.array(out).reshape(shape), cells, left, True
        values, cells, left = self._bounds(key, cells_of, budget)
        out = np.zeros(shape)
        if values is not None:
            out[cells if len(shape) == 2 else cells[0]] = values * factor
        return out, cells, left, values is not None

    def _point_arguments(self) -> list:
        """The point's 0-d float64 arguments that every compiled function of the check reads (made once)."""
        args = getattr(self, "_arguments", None)
        if args is None:
            args = self._arguments = numpy_backend._arguments(self.f, self.p64)
        return args

    def _floats_at_point(self, compiled) -> list[float] | None:
        """`_at_point` as Python floats (None where an entry is not one number)."""
        with self._ignored():
            try:
                return [float(e) for e in compiled.fn(*self._point_arguments())]
            except (TypeError, ValueError):
                return None

    def _at_point(self, compiled) -> np.ndarray:
        """Compiled code of the function's symbols (`_codegen.compile_entries`) at the point, in float64."""
        with self._ignored():
            entries = compiled.fn(*self._point_arguments())
            try:  # one point: every entry a number or a 0-d array, stacked in one call
                out = np.array(entries, dtype=np.float64)
            except (TypeError, ValueError):
                out = None
            if out is not None and out.shape == (len(entries),):
                return out
            return numpy_backend._assemble(entries, (), np.float64)

    def _conditioning(self, evaluate, rows: int) -> np.ndarray:
        """How far each entry of `evaluate(point)` (rows x columns) moves, in float64, when every
        input moves by one rounding of the dtype (`_tolerance.perturbed`), or each input array by
        one rounding of its largest entry (`_tolerance.perturbed_normwise`)."""
        p64 = self.p64
        with np.errstate(all="ignore"):
            base = evaluate(p64).reshape(rows, -1).astype(np.float64)
        flat = self._perturbations()
        if flat is None:
            return np.zeros_like(base)
        count = flat.shape[0]
        with np.errstate(all="ignore"):
            moved = evaluate(_flat_point(self.f, flat)).reshape(count, rows, -1)
        return _change(np, base, moved)

    def _perturbations(self, out: np.ndarray | None = None) -> np.ndarray | None:
        """The conditioning's float64 points, flat `(2 * perturbations, in_size)` (None for none):
        component-wise (x (1 + eps s)) and normwise per input array (x + eps max|x| s: what a
        backward-stable matrix algorithm may be off by), `_tolerance.perturbed*`; written into
        `out` when given."""
        count = self.tol.perturbations
        if not count:
            return None
        x = self.x64
        if out is None:
            out = np.empty((2 * count, x.size))
        perturbed(x, self.dtype, count, out=out[:count])
        perturbed_normwise(x, self.dtype, count, _input_sizes(self.f), out=out[count:])
        return out

    def _autograd(self, mode: str) -> np.ndarray:
        per_input = torch_backend.autograd_jacobians(self.f, self.point, mode)
        return np.concatenate(
            [per_input[inp.name].reshape(_out_size(self.f), inp.size) for inp in self.f.inputs], axis=1
        ).astype(np.float64)

    def _torch_routes(self) -> dict[str, np.ndarray]:
        """The torch routes of this check, by name (symjac._second_order overrides it): those of
        the tensor-level forward when the Function has one and it represents the point, else the
        element-wise generated forward's."""
        tensor = self._tensor_routes()
        if tensor is not None:
            return tensor
        return {REVERSE: self._autograd("reverse"), FORWARD: self._autograd("forward")}

    def _text_undefined(self) -> bool:
        """True when the Function's text, run as written, is not finite at the point while the
        Function as built is (`exp(log(x))` at x < 0, built as `x`): `backends._torch.text_value`."""
        written = torch_backend.text_value(self.f, self.p64)
        if written is None:
            return False
        with np.errstate(all="ignore"):
            built = numpy_backend.forward(self.f, self.p64).reshape(-1)
        return bool(np.any(~np.isfinite(written) & np.isfinite(built)))

    def _tensor_routes(self) -> dict[str, np.ndarray] | None:
        routes = {}
        for name, mode in ((TENSOR_REVERSE, "reverse"), (TENSOR_FORWARD, "forward")):
            try:
                full = torch_backend.tensor_jacobian_matrix(self.f, self.point, mode)  # inputs side by side
            except Unsupported as why:
                self.notes.append(f"no tensor-level torch routes at this point ({why}); the element-wise ones ran")
                return None
            if full is None:
                return None
            routes[name] = full.astype(np.float64)  # a float32 value is exact in float64
            if not _floats.all_finite(routes[name]):
                lost = ~np.isfinite(routes[name])
                p, c = (int(i) for i in np.argwhere(lost)[0])
                if self._text_undefined():
                    self.notes.append(
                        f"the text as written is not defined at this point ({name}, torch on the text's own "
                        f"operations, gives {routes[name][p, c]} at {self._entry_label(p, c)}): SymPy simplified it "
                        "on building into an expression that is (see 'Simplification changes the domain' in "
                        "docs/expression-language.md); the Function as built is checked, by the element-wise "
                        "generated routes"
                    )
                    return None
                self.notes.append(
                    f"torch's own operations cannot represent this point in {self.dtype} ({name} gives "
                    f"{routes[name][p, c]} at {self._entry_label(p, c)}); the element-wise generated routes ran instead"
                )
                return None
        self.tensor_routes = True
        return routes

    def _independent_view(self, routes: dict, failing) -> bool:
        """When a tensor route disagrees with the exact Jacobian, add the element-wise `autograd-reverse` (the
        exact expression's generated torch code): it tells torch's derivative rule (tensor routes
        off, it agrees) from the exact Jacobian (it disagrees with them too). True when added."""
        if not self.tensor_routes or REVERSE in routes:
            return False
        if not any(SYMBOLIC in p.routes and set(p.routes) & {TENSOR_REVERSE, TENSOR_FORWARD} for p in failing):
            return False  # torch agrees with the exact Jacobian: nothing to tell apart
        value = self._autograd("reverse")
        if not _floats.all_finite(value):
            return False
        position = list(routes).index(TENSOR_FORWARD) + 1 if TENSOR_FORWARD in routes else len(routes)
        items = list(routes.items())
        items.insert(position, (REVERSE, value))
        routes.clear()
        routes.update(items)
        return True

    def _finite_diff(self):
        f = self.f

        def fn(rows: np.ndarray) -> np.ndarray:
            with self._ignored():  # the finite-difference route judges non-finite values
                out = numpy_backend.forward(f, _flat_point(f, rows)).reshape(rows.shape[0], -1)
            if self._center is None:  # the stencil's first point is the point itself (`fd_jacobian`)
                self._center = out[0].copy()
            return out

        x = self.x64
        used = f.cached("fd-columns", lambda: _read_columns(f))
        # `fd_jacobian` without its validation: the point is finite float64 (`coerce_point`, `x64`),
        # the running error bounds finite (`_bounds`) and >= 0 (sums of magnitudes, `running_error`)
        if used.size == x.size or used.size == 0:  # all columns, or none (then: every column at once)
            return _fd_jacobian(fn, x, "richardson", self._forward_running())
        # Perturb only the inputs the output reads: the stencil of a column it does not read is
        # its value at x, exactly, so that column is 0 with no error. Without this, the stencil of
        # X[0, 0] * 2 at X 64 x 64 was 24,577 points of 4,096 entries (2.4 GB, issue 15).
        def fn_used(rows: np.ndarray) -> np.ndarray:
            full = np.broadcast_to(x, (rows.shape[0], x.size)).copy()
            full[:, used] = rows
            return fn(full)

        part = _fd_jacobian(fn_used, x[used], "richardson", self._forward_running())
        value = np.zeros((part.value.shape[0], x.size))
        error = np.zeros_like(value)
        step = np.zeros(x.size)
        value[:, used], error[:, used], step[used] = part.value, part.error, part.step
        for array in (value, error, step):
            array.flags.writeable = False
        return FDJacobian(value, error, step, part.method, part.evaluations)

    def _forward_running(self) -> np.ndarray | None:
        """eps(float64) times the running error bound of each output entry at the point (what
        finite differences divide by their step), or None when no entry has a bound
        (`forward_bounds`, with the larger budget: a large formula rounds far above the few eps
        finite differences otherwise assume; `inv(X)` at 14 x 14, by LU: about 40 eps)."""
        out, _, _, found = self._placed_bounds("running-error-forward", _output_cells, (_out_size(self.f),),
                                               eps(np.float64), budget=MAX_REST_TOTAL)
        return out if found else None

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
        # one `np.errstate(all="ignore")` for the whole check (`_ignored`): the engine judges
        # non-finite values itself; the numbers are the same with or without it
        with np.errstate(all="ignore"):
            self._quiet = True
            try:
                return self._run()
            finally:
                self._quiet = False

    def _run(self) -> Report:
        f = self.f
        p64 = self.p64
        with np.errstate(all="ignore"):
            # the exact reference in float64, for float32 points too: symjac's own code must not
            # overflow where float32 does (softmax at logits of 100)
            symbolic = self._reference(p64).astype(np.float64)
            # finite differences first: their stencil's first point is the point, where the
            # forward tells whether the point is in the domain (a subclass's own finite
            # differences do not evaluate the forward: then it is evaluated here)
            fd = self._finite_diff()
            out = self._center if self._center is not None else numpy_backend.forward(f, p64).reshape(-1)
        values = {n: v for n, v in self.point.values.items()}
        # each matrix tested for finiteness once: a finite one has nothing to repair
        if not _floats.all_finite(out):
            out, why = repair_nonfinite(f, values, out, jacobian=False)
            if why is not None:
                return self._inconclusive(why)
            if not np.all(np.isfinite(out)):  # pragma: no cover - repair_nonfinite returns a reason
                return self._inconclusive("outside the domain")
        overflowed = not _floats.all_finite(symbolic)
        if overflowed:
            symbolic, why = repair_nonfinite(f, values, symbolic, jacobian=True)
            if why is not None:
                return self._inconclusive(why)
            self.notes.append(
                "symjac's generated float64 code overflowed at some exact entries here; they are "
                "evaluated with mpmath at 50 digits instead"
            )
        kinks = self._kink_distances()
        at_kink = [label for label, d in kinks if d == 0.0]

        routes: dict[str, np.ndarray] = {SYMBOLIC: symbolic}
        torch_routes = self._torch_routes()
        routes.update(torch_routes)
        for name in (n for n in (REVERSE, FORWARD) if n in torch_routes):
            lost = ~np.isfinite(routes[name])
            if lost.any():
                p, c = (int(i) for i in np.argwhere(lost)[0])
                return self._inconclusive(
                    f"symjac's generated torch forward cannot represent this point in {self.dtype}: "
                    f"{name} gives {routes[name][p, c]} at {self._entry_label(p, c)}, where the exact "
                    f"value is {float(symbolic[p, c])!r} (symjac's own code, not a fault of torch)"
                )
        routes[FINITE_DIFF] = fd.value
        if self.candidate is not None:
            routes[CANDIDATE] = self.candidate
        routes.update(self.extra)
        # a tensor route runs torch's fused implementations (sigmoid's backward y * (1 - y), softplus
        # beyond its threshold): what they may lose is allowed (`symjac._implementations`)
        noise = self._noise(symbolic, implementation=True) if self.tensor_routes else self._noise(symbolic)
        self._note_coarse(symbolic, noise)

        near_kink = [label for label, d in kinks if 0.0 < d <= 4.0 * float(np.max(fd.step, initial=0.0))]
        pairs, ratios = self._compare(routes, fd, noise)
        if any(not p.ok for p in pairs):
            noise, added = self.refine_noise(noise, self._disputed)
            if added:
                pairs, ratios = self._compare(routes, fd, noise)
        if self._independent_view(routes, [p for p in pairs if not p.ok]):
            pairs, ratios = self._compare(routes, fd, noise)
        failing = [p for p in pairs if not p.ok]
        exact_failing = [p for p in failing if FINITE_DIFF not in p.routes]
        fd_failing = [p for p in failing if FINITE_DIFF in p.routes]
        fd_undefined = not _floats.all_finite(fd.value)
        untrusted = self._fd_excused
        vague = self._fd_vague(fd.error, symbolic)

        unbounded = self._unbounded_fused_only(failing) if exact_failing else None

        verdict, reason = "pass", ""
        if at_kink:
            verdict = "inconclusive"
            reason = f"non-differentiable point: {at_kink[0]} is exactly 0 here"
        elif unbounded is not None:
            verdict = "inconclusive"
            reason = (
                f"only torch routes disagree, and only where torch's fused sigmoid, softplus or expm1 may lose "
                f"more than symjac bounds here (no implementation bound at {self._entry_label(*unbounded)}: "
                "an output holding a determinant node, or past the bounds' budget)"
            )
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
        elif untrusted.any():
            p, c = (int(i) for i in np.argwhere(untrusted)[0])
            verdict = "inconclusive"
            reason = (
                f"finite differences cannot be trusted at {self._entry_label(p, c)}: their own error estimate"
                f" {fd.error[p, c]:.2e} exceeds their value {fd.value[p, c]:.2e} (a pole or wild curvature"
                " within their stencil); the other routes are not judged by them there"
            )
        elif vague is not None and vague.any():
            p, c = (int(i) for i in np.argwhere(vague)[0])
            where = f" near a kink ({near_kink[0]})" if near_kink else ""
            verdict = "inconclusive"
            reason = (
                f"finite differences cannot confirm{where}: their error estimate at "
                f"{self._entry_label(p, c)} is {fd.error[p, c]:.2e}"
            )

        odd = _odd_one_out(routes, pairs, {**_FAMILY, **self.families}) if verdict == "fail" else None
        if odd is not None:
            self._note_torch_rule(odd)
        worst_pair = max(range(len(pairs)), key=lambda k: ratios[k][1])
        worst = pairs[worst_pair].worst if pairs else None
        return self._report(verdict, reason, routes, tuple(pairs), worst, odd)

    def _unbounded_fused_only(self, failing: list) -> tuple[int, int] | None:
        """The first disputed entry when every failing pair has a torch route in it and every disputed
        entry is one where a fused primitive has no implementation bound
        (`_implementations.unbounded_fused`); else None (the verdict stands)."""
        torch_routes = {REVERSE, FORWARD, TENSOR_REVERSE, TENSOR_FORWARD}
        if not failing or not all(set(p.routes) & torch_routes for p in failing):
            return None
        disputed = getattr(self, "_disputed", None)
        if disputed is None or not disputed.any():
            return None
        from ._implementations import unbounded_fused

        mask = unbounded_fused(self.f, self.dtype, self.tol.softplus_threshold)
        if mask is None or mask.shape != disputed.shape or (disputed & ~mask).any():
            return None
        p, c = (int(i) for i in np.argwhere(disputed)[0])
        return p, c

    def _note_torch_rule(self, odd: str) -> None:
        """Say what a tensor route as the odd one out means: torch's own derivative rule."""
        outside = set(odd.split(", "))
        tensor = sorted(outside & {TENSOR_REVERSE, TENSOR_FORWARD})
        if not tensor or outside - {TENSOR_REVERSE, TENSOR_FORWARD, REVERSE, FORWARD}:
            return
        if REVERSE in outside:
            where = (f"{REVERSE} (the element-wise torch code generated from the exact expression) is off too, "
                     "so the rule is one of an operation both use")
        else:
            where = (f"{REVERSE} (the element-wise torch code generated from the exact expression) agrees with "
                     "them, so the rule is one of torch's whole-tensor operations (torch.linalg, reductions, softmax)")
        self.notes.append(
            f"the odd one out is torch's derivative rule: {', '.join(tensor)} ran torch's own operations on whole "
            f"tensors and disagree with the exact Jacobian and finite differences; {where}"
        )

    def _fd_vague(self, fd_error: np.ndarray, symbolic: np.ndarray) -> np.ndarray | None:
        """`tol.fd_uninformative(fd_error, symbolic)`, or None where no entry is (a few entries and the
        model's own rule: decided in Python floats, the same comparisons)."""
        tol = self.tol
        if symbolic.size <= COMPARE_IN_FLOATS and type(tol).fd_uninformative is ToleranceModel.fd_uninformative:
            errors, reference = fd_error.reshape(-1).tolist(), symbolic.reshape(-1).tolist()
            if all(math.isfinite(v) for v in errors + reference):
                scale = [abs(v) for v in reference]
                jmax = max(scale) if scale else 0.0
                if not any(tol.fd_uninformative_at(e, s, jmax) for e, s in zip(errors, scale)):
                    return None
        return tol.fd_uninformative(fd_error, symbolic)

    def _note_coarse(self, symbolic: np.ndarray, noise: np.ndarray) -> None:
        """Say where the exact routes' own tolerance is too wide to confirm `fd_informative`
        agreement: there a wrong entry smaller than the tolerance would pass, so the report says so."""
        if symbolic.size <= COMPARE_IN_FLOATS and type(self.tol).rounding is ToleranceModel.rounding:
            if not _coarse_in_floats(self.tol, self.dtype, symbolic, noise):
                return  # no entry is: the array code below would add no note
        tol = self.tol.rounding(symbolic, symbolic, self.dtype, noise)
        scale = np.abs(symbolic)
        jmax = float(np.max(scale, initial=0.0))
        if jmax == 0.0:
            return
        coarse = self.tol.too_coarse(tol, scale, jmax)
        if coarse.any():
            p, c = np.unravel_index(int(np.argmax(np.where(coarse, tol, -np.inf))), tol.shape)
            n = int(coarse.sum())
            self.notes.append(
                f"weak at {n} {'entry' if n == 1 else 'entries'}: the formula loses precision at this point,"
                f" so the exact routes may differ by up to {tol[p, c]:.2e} at {self._entry_label(int(p), int(c))}"
                f" ({tol[p, c] / jmax:.1e} of max|J|); a wrong entry within that would pass there"
            )

    def _compare(self, routes, fd, noise):
        """Every pair of routes entry by entry against its tolerance: `(pairs, [(worst flat index,
        its ratio)])`, in `itertools.combinations` order. Pairs are compared stacked, as many at
        once as fit in `COMPARE_CHUNK` entries (the same numbers as one pair at a time)."""
        names = list(routes)
        pairs, ratios = [], []
        self._disputed = np.zeros(noise.shape, dtype=bool)
        self._fd_excused = np.zeros(noise.shape, dtype=bool)
        # finite differences that cannot be trusted here by their own estimate are no evidence
        # either way: the entry is inconclusive (`vague`), not a failure
        # a few entries, the tolerance model's own rules: all of it in Python floats (`_compare_in_floats`)
        in_floats = noise.size <= COMPARE_IN_FLOATS and _model_rules(self.tol)
        untrusted = None if in_floats else self.tol.fd_untrusted(fd.error, fd.value)
        step = max(1, COMPARE_CHUNK // max(noise.size, 1))
        for chunk, used, ia, ib, ta, tb, fd_pair, nan_ratio, any_fd, index in _pair_chunks(tuple(names), step):
            stacked = np.array([routes[n] for n in used])  # `np.stack` of same-shape matrices, in one call
            if in_floats:
                small = _compare_in_floats(self.tol, self.dtype, stacked, index, noise, fd)
                if small is not None:  # all finite: the same numbers as below
                    lists, disputed, excused = small
                    self._disputed |= disputed.reshape(noise.shape)
                    if any_fd:
                        self._fd_excused |= excused.reshape(noise.shape)
                    self._pair_results(chunk, lists, routes, noise.shape[1], pairs, ratios)
                    continue
                if untrusted is None:
                    untrusted = self.tol.fd_untrusted(fd.error, fd.value)
            with_fd = fd_pair[:, None, None]
            with self._ignored():
                tol, diff, rel, ratio, excused = _ratios(np, self.tol, self.dtype, stacked[ia], stacked[ib], stacked[ta],
                                                         stacked[tb], noise, with_fd, fd.error, untrusted, nan_ratio)
            if any_fd:
                self._fd_excused |= np.any(excused, axis=0)
            bad = ratio > 1.0
            self._disputed |= np.any(bad, axis=0)
            flat = ratio.reshape(len(chunk), -1)
            worst = np.argmax(flat, axis=1)
            finite = np.isfinite(diff)
            if finite.all():  # then `rel` is finite too (0 where diff is, else over a scale >= diff / 2 > 0)
                max_abs = np.max(diff.reshape(len(chunk), -1), axis=1, initial=0.0)
                max_rel = np.max(rel.reshape(len(chunk), -1), axis=1, initial=0.0)
            else:
                max_abs = np.max(np.where(finite, diff, 0.0).reshape(len(chunk), -1), axis=1, initial=0.0)
                max_rel = np.max(np.where(finite & np.isfinite(rel), rel, 0.0).reshape(len(chunk), -1), axis=1,
                                 initial=0.0)
            n_bad = np.add.reduce(bad.reshape(len(chunk), -1), axis=1, dtype=np.intp)  # np.count_nonzero's own sum
            # each pair's numbers as Python floats and ints, read in one call per array
            rows = np.arange(len(chunk))
            worst_tol = tol.reshape(len(chunk), -1)[rows, worst].tolist()
            worst_ratio = flat[rows, worst].tolist()
            lists = zip(worst.tolist(), worst_tol, worst_ratio, max_abs.tolist(), max_rel.tolist(), n_bad.tolist())
            self._pair_results(chunk, lists, routes, noise.shape[1], pairs, ratios)
        return pairs, ratios

    def _pair_results(self, chunk, lists, routes, columns: int, pairs: list, ratios: list) -> None:
        """Append each pair's PairResult and `(worst flat index, its ratio)`: `lists` gives, per pair,
        `(worst flat index, its tolerance, its ratio, max abs error, max rel error, entries over)`."""
        at: dict = {}  # the routes' values at an entry, shared by the pairs whose worst it is
        shared = type(self)._entry is _Check._entry  # a subclass's own entries are its own
        for pair, (k, tol_k, ratio_k, abs_k, rel_k, bad_k) in zip(chunk, lists):
            p, c = divmod(k, columns)
            if not shared:
                entry = self._entry(p, c, routes, tol_k)
            else:
                if k not in at:
                    at[k] = {name: float(v[p, c]) for name, v in routes.items()}
                entry = self._entry(p, c, {}, tol_k, values=dict(at[k]))
            pairs.append(PairResult(routes=pair, max_abs_error=abs_k, max_rel_error=rel_k,
                                    n_bad=bad_k, worst=entry, ok=not bad_k))
            ratios.append((k, ratio_k))

    # -- presentation --------------------------------------------------------------------------
    def _entry(self, p: int, c: int, routes, tol: float | None, *, values: dict | None = None) -> Entry:
        inp, q = self.columns[c]
        out_index = _unravel(int(p), self.f.out_shape)
        in_index = _unravel(int(q), inp.shape)
        if values is None:
            values = {k: float(v[p, c]) for k, v in routes.items()}
        return Entry(out_index, inp.name, in_index, values, tol)

    def _entry_label(self, p: int, c: int) -> str:
        return self._entry(p, c, {}, None).label()

    def _inconclusive(self, reason: str) -> Report:
        return self._report("inconclusive", reason, {}, (), None, None)

    def _report(self, verdict, reason, routes, pairs, worst, odd) -> Report:
        return Report(
            verdict=verdict,
            reason=reason,
            function=_describe(self.f),
            dtype=_dtype_name(self.dtype),
            point={n: v.tolist() for n, v in self.point.values.items()},
            routes=tuple(routes),
            pairs=pairs,
            worst=worst,
            odd_one_out=odd,
            tolerance=_described(self.tol, self.dtype),
            reproduce=reproduction_line(self.f, self.point, self.candidate is not None),
            notes=tuple(self.notes),
            matrices=self._matrices(routes) if routes else None,
        )

    def _matrices(self, routes) -> RouteMatrices:
        """Each route's (out_size, in_size) matrix and the structural nonzeros, for Report.plot()."""
        return RouteMatrices(self.f.out_shape, self.f._inputs_spec(), dict(routes), _sparsity(self.f))


@functools.lru_cache(maxsize=256)
def _pair_chunks(names: tuple, step: int) -> tuple:
    """`_compare`'s chunks of the pairs of `names` (`itertools.combinations` order, `step` pairs a
    chunk), each with its index arrays: `(pairs, routes used, first and second route of each pair
    in them, the two routes its rounding tolerance reads (for a pair with finite differences: the
    other route, twice), which pairs have finite differences, the ratio a NaN difference counts
    as (0 against finite differences, inf otherwise), whether any pair has them, and the five index
    arrays before it as tuples of Python numbers (what `_compare_in_floats` reads))`, made once per
    tuple of names (read-only)."""
    combos = list(itertools.combinations(names, 2))
    out = []
    for lo in range(0, len(combos), step):
        chunk = tuple(combos[lo : lo + step])
        fd_pair = np.array([FINITE_DIFF in pair for pair in chunk])
        used = tuple(sorted({n for pair in chunk for n in pair}, key=names.index))
        ia = np.array([used.index(a) for a, _ in chunk])
        ib = np.array([used.index(b) for _, b in chunk])
        other = np.where(np.array([a == FINITE_DIFF for a, _ in chunk]), ib, ia)
        ta, tb = np.where(fd_pair, other, ia), np.where(fd_pair, other, ib)
        nan_ratio = np.where(fd_pair, 0.0, np.inf)[:, None, None]
        for array in (fd_pair, ia, ib, ta, tb, nan_ratio):
            array.flags.writeable = False
        lists = tuple(tuple(a.tolist()) for a in (ia, ib, ta, tb, fd_pair))
        out.append((chunk, used, ia, ib, ta, tb, fd_pair, nan_ratio, bool(fd_pair.any()), lists))
    return tuple(out)


def _unravel(k: int, shape: tuple) -> tuple[int, ...]:
    """`np.unravel_index(k, shape)` as a tuple of Python ints (`()` for a scalar shape), without
    NumPy's call for one index."""
    index = []
    for n in reversed(shape):
        k, i = divmod(k, n)
        index.append(i)
    return tuple(reversed(index))


#: `_compare` works a chunk of pairs of at most this many entries each out in Python floats
#: (`_compare_in_floats`), not in about 35 whole-array NumPy calls whose fixed cost dominates there.
COMPARE_IN_FLOATS = 8
_INF = float("inf")


def _coarse_in_floats(model: ToleranceModel, dtype, symbolic: np.ndarray, noise: np.ndarray) -> bool:
    """Whether `_Check._note_coarse` would find an entry whose rounding bound (`ToleranceModel.rounding`
    of the exact value against itself) is above `fd_informative * (|J| + max|J|)`, in Python floats
    with the same operations; True too where a value is not finite (the array code then decides)."""
    values, noises = symbolic.reshape(-1).tolist(), noise.reshape(-1).tolist()
    if not all(math.isfinite(v) for v in values + noises):
        return True
    scale = [abs(v) for v in values]
    jmax = max(scale, default=0.0)
    if jmax == 0.0:
        return False
    return any(model.too_coarse(model._rounding(_floats, s, s, dtype, n), s, jmax) for s, n in zip(scale, noises))


def _model_rules(model: ToleranceModel) -> bool:
    """Whether `model` compares by `ToleranceModel`'s own rules (`rounding`, `against_fd`,
    `fd_untrusted` not overridden): `_compare_in_floats` runs their text over `symjac._floats`."""
    kind = type(model)
    return (kind.rounding is ToleranceModel.rounding and kind.against_fd is ToleranceModel.against_fd
            and kind.fd_untrusted is ToleranceModel.fd_untrusted)


def _ratios(xp, model: ToleranceModel, dtype, a, b, ta, tb, noise, with_fd, fd_error, untrusted, nan_ratio):
    """`_compare`'s rule for two routes `a`, `b`, one text for a chunk of pairs stacked (`xp` `numpy`)
    and for one entry of one pair (`xp` `symjac._floats`): the rounding bound of `ta` against `tb`,
    against finite differences (`with_fd`) their error estimate added, then `differences`; a NaN
    ratio counts as `nan_ratio`, and where finite differences are `untrusted` the ratio is 0 (an
    entry over it is `excused`). Returns `(tol, diff, rel, ratio, excused)`."""
    # `model`'s own methods on arrays (a subclass may override them), their one text for floats
    tol = model.rounding(ta, tb, dtype, noise) if xp is np else model._rounding(xp, ta, tb, dtype, noise)
    tol = xp.where(with_fd, model.against_fd(fd_error, tol), tol)
    diff, rel, ratio = _differences(xp, a, b, tol)  # under `np.errstate(all="ignore")` for arrays
    ratio = xp.where(ratio != ratio, nan_ratio, ratio)
    unsure = with_fd & untrusted
    excused = unsure & (ratio > 1.0)
    return tol, diff, rel, xp.where(unsure, 0.0, ratio), excused


def _compare_in_floats(model: ToleranceModel, dtype, stacked: np.ndarray, index: tuple, noise: np.ndarray, fd):
    """`_compare`'s numbers for one chunk of pairs, entry by entry in Python floats: `_ratios` over
    `symjac._floats` and the reductions after it as NumPy makes them, so the same results
    (`tests/test_check_fast_paths.py`). `stacked`: the routes used, `(routes,) + shape`; `index`:
    each pair's two routes in it, the two its rounding bound reads, whether it has finite
    differences, as sequences of Python numbers (`_pair_chunks`' lists); `fd`: their value and error estimate. Returns `(per pair: (worst
    flat index, its tolerance, its ratio, max abs error, max rel error, entries over), disputed,
    excused)`, the last two boolean arrays of the entries (flat); None where a value or a difference
    is not finite or a tolerance is not finite and > 0 (the array code masks those)."""
    values = stacked.reshape(len(stacked), -1).tolist()
    if not all(abs(v) < _INF for row in values for v in row):
        return None
    ia, ib, ta, tb, fd_pair = index
    noises = noise.reshape(-1).tolist()
    fd_error, fd_value = fd.error.reshape(-1).tolist(), fd.value.reshape(-1).tolist()
    size = len(noises)
    untrusted = [model._fd_untrusted(_floats, e, v) for e, v in zip(fd_error, fd_value)]  # not even the sign known
    disputed, excused = [False] * size, [False] * size
    out = []
    for i, with_fd in enumerate(fd_pair):
        rows = values[ia[i]], values[ib[i]], values[ta[i]], values[tb[i]]
        worst, worst_tol, worst_ratio, max_abs, max_rel, n_bad = 0, 0.0, None, 0.0, 0.0, 0
        for e, (a, b, a_scale, b_scale) in enumerate(zip(*rows)):
            tol, diff, rel, ratio, over = _ratios(_floats, model, dtype, a, b, a_scale, b_scale, noises[e], with_fd,
                                                  fd_error[e], untrusted[e], _INF)
            if not (diff < _INF and 0.0 < tol < _INF):
                return None
            excused[e] |= over
            if ratio > 1.0:
                n_bad += 1
                disputed[e] = True
            if worst_ratio is None or ratio > worst_ratio:  # the first largest, as np.argmax
                worst, worst_tol, worst_ratio = e, tol, ratio
            max_abs, max_rel = max(max_abs, diff), max(max_rel, rel)
        out.append((worst, worst_tol, worst_ratio, max_abs, max_rel, n_bad))
    return out, np.array(disputed), np.array(excused)


def differences(a: np.ndarray, b: np.ndarray, tol: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Entry by entry: `|a - b|`, that relative to the larger magnitude, and that over `tol` (0
    where the two are equal; NaN where a value is NaN: each caller decides what NaN means).
    Arrays; `_differences` is the same for a namespace `xp` (one entry's floats: `_ratios`)."""
    with np.errstate(all="ignore"):
        return _differences(np, a, b, tol)


def _differences(xp, a, b, tol) -> tuple:
    diff = abs(a - b)
    equal = diff == 0  # there 0 / 1: rel and ratio are 0
    rel = diff / xp.where(equal, 1.0, xp.fmax(abs(a), abs(b)))
    return diff, rel, diff / xp.where(equal, 1.0, tol)


def pair_result(routes: tuple[str, str], diff: np.ndarray, rel: np.ndarray, bad: np.ndarray, worst: Entry) -> PairResult:
    """The PairResult of two routes compared by `differences`, `bad` the entries over tolerance."""
    finite = np.isfinite(diff)
    return PairResult(
        routes=routes,
        max_abs_error=float(np.max(diff[finite], initial=0.0)),
        max_rel_error=float(np.max(rel[finite & np.isfinite(rel)], initial=0.0)),
        n_bad=int(bad.sum()),
        worst=worst,
        ok=not bad.any(),
    )


def _describe(f) -> str:
    def build():
        shapes = ", ".join(f"{i.name}: {i.shape}" for i in f.inputs)
        body = f.source if f.source is not None else "<callable or SymPy expression>"
        return f"{body} ({shapes})"

    return f.cached("report-describe", build)  # a str: shared safely


@functools.lru_cache(maxsize=64)
def _dtype_name(dtype) -> str:
    """`str(dtype)`, remembered per dtype (NumPy 2's `dtype.__str__` runs Python code)."""
    return str(dtype)


@functools.lru_cache(maxsize=64)
def _describe_tolerance(tol: ToleranceModel, dtype) -> dict:
    return tol.describe(dtype)


def _described(tol: ToleranceModel, dtype) -> dict:
    """`tol.describe(dtype)`, made once per model and dtype; each report gets its own copy."""
    try:
        return dict(_describe_tolerance(tol, np.dtype(dtype)))
    except TypeError:  # a model that cannot be a key (an unhashable subclass): described afresh
        return tol.describe(dtype)


def _limits_text(f) -> str:
    """`, limits=symjac.Limits(...)` when `f` was built under raised budgets (else it would not rebuild)."""
    limits = getattr(f, "limits", None)
    text = limits.source() if limits is not None else ""
    return f", limits={text}" if text else ""


def function_call(f) -> str | None:
    """`symjac.function('text', X=(2, 2), consts=..., limits=...)` that rebuilds `f`; None when
    `f` was not built from text (a callable or a SymPy expression has no source to print)."""
    if f.source is None:
        return None

    def build():
        shapes = ", ".join(f"{i.name}={i.shape!r}" for i in f.inputs)
        consts = f.consts
        const_text = f", consts={{{', '.join(f'{k!r}: {v.tolist()!r}' for k, v in consts.items())}}}" if consts else ""
        const_text += _limits_text(f)
        return f"symjac.function({f.source!r}, {shapes}{const_text})"

    return f.cached("report-function-call", build)  # a str: shared safely


def reproduction_line(f, point: Point, with_candidate: bool = False, options: str = "") -> str:
    """A line of Python that runs the same check (exact float reprs; dtype kept)."""
    def value(v: np.ndarray) -> str:
        listed = repr(v.tolist())
        return listed if v.dtype == np.float64 else f"numpy.array({listed}, dtype={str(v.dtype)!r})"

    if any(n in OPTIONS for n in point.values):  # such an input cannot be a keyword
        at = "at={" + ", ".join(f"{n!r}: {value(v)}" for n, v in point.values.items()) + "}"
    else:
        at = ", ".join(f"{n}={value(v)}" for n, v in point.values.items())
    if with_candidate:
        at += ", jacobian=J"
    at += options
    if f.source is None:
        line = f"symjac.check(f, {at})  # f: the Function checked"
    else:
        line = f"import numpy, symjac; symjac.check({function_call(f)}, {at})"
    return line + ("  # J: the candidate Jacobian" if with_candidate else "")


#: Routes that share a source are one piece of evidence: both autograd modes differentiate the
#: same torch forward, so their agreement with each other outvotes nothing.
#: The tensor routes run torch's rules too (the element-wise ones for each elementary operation):
#: one family, so that torch's agreement with itself outvotes neither the exact Jacobian nor
#: finite differences.
_FAMILY = {REVERSE: "autograd", FORWARD: "autograd", TENSOR_REVERSE: "autograd", TENSOR_FORWARD: "autograd"}


def _odd_one_out(routes: dict, pairs, families: Mapping = _FAMILY) -> str | None:
    """The routes outside the unique best set whose pairs all agree, if there is one.

    The best set has the most independent families of routes (then the most routes); `families`
    maps a route to its family (routes that share a source).
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
        return (len({families.get(n, n) for n in group}), len(group))

    top = max(map(weight, groups))
    best = [g for g in groups if weight(g) == top]
    if len(best) != 1 or top[0] < 2:
        return None
    outside = [n for n in names if n not in best[0]]
    return ", ".join(outside) if outside else None


def _kink_arguments(output: np.ndarray) -> list[tuple[str, sympy.Expr]]:
    found: dict[sympy.Expr, str] = {}
    # the one iterative walk (symjac._dag): SymPy's `atoms` recurses over the expression's depth
    exprs = [e for e in output.reshape(-1) if isinstance(e, sympy.Basic)]
    for atom in _dag.postorder(exprs):
        if isinstance(atom, _KINKS):
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


def _read_columns(f) -> np.ndarray:
    """The flat input columns (inputs side by side) whose symbols the output's entries contain."""
    entries = [e for e in f.output.reshape(-1) if isinstance(e, sympy.Basic)]
    free = _dag.free_symbols(entries)  # SymPy's `free_symbols` recurses over depth
    read = set().union(*(free[e] for e in entries)) if entries else set()
    symbols = [s for inp in f.inputs for s in inp.flat_symbols]
    return np.array([c for c, s in enumerate(symbols) if s in read], dtype=np.intp)


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


#: When entries without a running error bound are in dispute, all entries left out are compiled
#: once if they are within this many nodes together (about 6 s at 150,000: `tanh(X @ X)`, 12 x 12),
#: else at most MAX_DISPUTED_BOUNDS disputed entries, at each point.
MAX_REST_TOTAL = 200_000
MAX_DISPUTED_BOUNDS = 256
#: `_compare` stacks as many pairs of routes as fit in this many entries (at least one pair).
COMPARE_CHUNK = 1 << 16


def _sparsity(f) -> np.ndarray:
    """Structural nonzeros of the Jacobian, all inputs side by side, `(out_size, in_size)` (cached, read-only)."""
    def build():
        out = np.concatenate([jac.sparsity.reshape(_out_size(f), jac.wrt.size) for jac in _jacobians(f)], axis=1)
        out.flags.writeable = False
        return out

    return f.cached("check-sparsity", build)


def _bounded_mask(f, shape: tuple, rows, cols, compiled: bool) -> np.ndarray:
    """The entries with a compiled running error bound (`_Check._running`), `shape`, kept per Function
    (read-only: `refine_noise` adds to a copy)."""
    def build():
        mask = np.zeros(shape, dtype=bool)
        if compiled:
            mask[rows, cols] = True
        mask.flags.writeable = False
        return mask

    return f.cached(("check-bounded", shape, compiled), build)


def _places(f, key: str, cells: tuple, shape: tuple) -> tuple:
    """The flat places in an array of `shape` of the bounds `key`'s `(rows, cols)` (rows only for a
    1-D `shape`), as Python ints (cached: a tuple, shared safely)."""
    width = shape[1] if len(shape) == 2 else 1
    return f.cached(("bound-places", key, shape), lambda: tuple(
        int(r) * width + (int(c) if len(shape) == 2 else 0) for r, c in zip(cells[0], cells[1])))


def _input_sizes(f) -> tuple:
    """Each input's flat size, in declaration order (cached: a tuple of ints, shared safely)."""
    return f.cached("check-input-sizes", lambda: tuple(inp.size for inp in f.inputs))


def _jacobians(f) -> tuple:
    """The exact Jacobian by each input, in declaration order (cached: `Function.jacobian` runs as a job)."""
    return f.cached("check-jacobians", lambda: tuple(f.jacobian(inp.name) for inp in f.inputs))


def _flat_point(f, flat: np.ndarray) -> Point:
    """Flat float64 points `(k, in_size)`, inputs side by side, as a Point of batch `(k,)` (its
    `rows` the flat array)."""
    count, offset, values = flat.shape[0], 0, {}
    for inp in f.inputs:
        values[inp.name] = flat[:, offset : offset + inp.size].reshape((count,) + inp.shape)
        offset += inp.size
    return Point(values, np.dtype(np.float64), (count,), flat)


#: `_Check._noise` works a Jacobian of at most this many entries out in Python floats (`_noise_in_floats`).
NOISE_IN_FLOATS = 8


def _noise_rule(xp, j32, j64, ratio: float, conditioning, running):
    """`_Check._noise`'s rule, one text for whole arrays (`xp` `numpy`) and one entry's floats (`xp`
    `symjac._floats`): `|j32 - j64| * ratio` (0 where not finite), or the conditioning, or the
    running error bound, whichever is larger."""
    noise = abs(j32 - j64) * ratio
    noise = xp.where(xp.isfinite(noise), noise, 0.0)
    return xp.fmax(xp.fmax(noise, conditioning), running)


def _change(xp, base, moved):
    """How far `moved` (a sequence of points, each like `base`: a `(k,) + base.shape` array, or one
    entry's floats) strays from `base` at most (0 where not finite; 0 for no points:
    `ToleranceModel(perturbations=0)` turns the conditioning off)."""
    if not len(moved):
        return xp.zeros_like(base)
    with np.errstate(all="ignore") if xp is np else _HELD:
        change = functools.reduce(xp.maximum, [abs(point - base) for point in moved])
    return xp.where(xp.isfinite(change), change, 0.0)


def _noise_in_floats(j32: np.ndarray, j64: np.ndarray, base: np.ndarray, moved: np.ndarray, ratio: float,
                     running: np.ndarray) -> np.ndarray:
    """`_Check._noise` of a few entries: `_noise_rule` and `_change` entry by entry over
    `symjac._floats`, so the array code's numbers (`tests/test_check_fast_paths.py`)."""
    a32, a64, b, r = (v.reshape(-1).tolist() for v in (j32, j64, base, running))
    points = moved.reshape(len(moved), base.size).tolist()
    out = [_noise_rule(_floats, a32[k], a64[k], ratio, _change(_floats, b[k], [p[k] for p in points]), r[k])
           for k in range(len(b))]
    return np.array(out, dtype=np.float64).reshape(base.shape)


def _dense_entries(f) -> dict:
    """`{(row, column): entry}` of the structural nonzeros, all inputs side by side (cached)."""
    return f.cached("jacobian-dense-entries", lambda: {(r, c): e for _, r, c, e in _jacobian_cells(f)})


def _output_cells(f) -> list[tuple]:
    """`(written-out size, output index, 0, entry)` of every output entry."""
    entries = list(f.output.reshape(-1))
    return [(size, p, 0, e) for p, (size, e) in enumerate(zip(written_sizes(entries, refuse=False), entries))]


def _compile_bounds(cells, f, budget: int | None = None):
    """Running error bounds of `cells` for the inputs of `f` (`_tolerance.compile_running_bounds`)."""
    from ._tolerance import compile_running_bounds

    return compile_running_bounds(cells, [s for inp in f.inputs for s in inp.flat_symbols], budget)


def _compile_kinks(f, exprs):
    from ._codegen import compile_entries

    symbols = [s for inp in f.inputs for s in inp.flat_symbols]
    return compile_entries(exprs, symbols, "numpy")
