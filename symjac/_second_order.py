"""Second-order and batched routes, for `check` and `verify` alike (`order=2`, `batch=B`).

A route here is a torch composition applied to a *flat* torch function `g(x) -> out` (all inputs
side by side, flattened): for `check` the torch forward generated from the expression, for
`verify` the user's implementation. The same route code serves both; the names say whose it is
(`autograd-...` for the generated forward, `impl-...` for the implementation).

- order 2, one point: the exact second derivative (`symjac._hessian`) against the four
  compositions `reverse-over-reverse` (`jacrev(jacrev(g))`), `forward-over-reverse`
  (`jacfwd(jacrev(g))`), `reverse-over-forward` (`jacrev(jacfwd(g))`), `forward-over-forward`
  (`jacfwd(jacfwd(g))`), and finite differences of the exact Jacobian. For a custom
  `torch.autograd.Function` that torch.func cannot run, `double-backward` (reverse over reverse
  through `torch.autograd.grad(..., create_graph=True)`) is formed instead; every composition that
  could not be formed is named in a note, with the reason (`no jvp staticmethod`, ...).
- `batch=B`: each route under `vmap` over the B points, in both nesting orders torch users write:
  `vmap(jacrev)`, `vmap(jacfwd)`, `vmap(vjp)`, `vmap(jvp)` (one point at a time inside), and
  `jacrev(vmap)`, `jacfwd(vmap)` (the transform of the batched function; its per-point blocks are
  the diagonal); with order 2 the four compositions the same way (`vmap(jacfwd(jacrev))`,
  `jacfwd(jacrev(vmap))`, ...). Each batch point is checked against the exact values at that point.

Comparison, tolerances, the verdict and the odd one out are `symjac._check`'s: a second-order
check is a `_Check` whose matrices are `(out_size * in_size, in_size)` (row `p * in_size + a`,
column `b` is `d2 out[p] / dx[a] dx[b]`, inputs side by side), with its own exact route, noise
(float32-vs-float64, conditioning and running error bounds of the exact second derivative) and
finite differences (of the exact Jacobian, with its running error bound as output noise).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np

from ._engine import _Check, _jacobian_cells, _out_size
from ._errors import InvalidArgumentError
from ._finite_diff import fd_jacobian
from ._report import Report
from ._tolerance import eps
from ._values import Point

__all__ = ["COMPOSITIONS", "BATCHED", "BATCHED_SECOND", "check_point", "validate_order", "validate_batch", "MAX_BATCH"]

#: The four second-order compositions: name -> (outer transform, inner transform).
COMPOSITIONS = {
    "reverse-over-reverse": ("jacrev", "jacrev"),
    "forward-over-reverse": ("jacfwd", "jacrev"),
    "reverse-over-forward": ("jacrev", "jacfwd"),
    "forward-over-forward": ("jacfwd", "jacfwd"),
}
#: First-order batched routes: vmap outside (per point inside) and the transform of the vmapped function.
BATCHED = ("vmap(jacrev)", "vmap(jacfwd)", "vmap(vjp)", "vmap(jvp)", "jacrev(vmap)", "jacfwd(vmap)")
#: Second-order batched routes.
BATCHED_SECOND = tuple(
    f"vmap({o}({i}))" for o, i in COMPOSITIONS.values()
) + tuple(f"{o}({i}(vmap))" for o, i in COMPOSITIONS.values())
#: Largest accepted `batch`.
MAX_BATCH = 64


def validate_order(order: Any) -> int:
    if isinstance(order, bool) or order not in (1, 2):
        raise InvalidArgumentError(f"order: must be 1 (Jacobians) or 2 (second derivatives); received {order!r}")
    return int(order)


def validate_batch(batch: Any) -> int | None:
    if batch is None:
        return None
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or not 1 <= batch <= MAX_BATCH:
        raise InvalidArgumentError(f"batch: must be an int from 1 to {MAX_BATCH} (points under vmap); received {batch!r}")
    return int(batch)


# -- routes on a flat torch function ----------------------------------------------------------------


def _transform(torch, name: str):
    return {"jacrev": torch.func.jacrev, "jacfwd": torch.func.jacfwd}[name]


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:160] if text else ''}"


def second_order_routes(g, x, prefix: str, notes: list, *, autograd_function=None) -> dict:
    """`{prefix + composition: (out * n, n) float64}` of the flat torch function `g` at the flat
    point `x` (n entries); compositions that cannot be formed are named in `notes`, with why."""
    import torch

    n = x.shape[-1]
    routes = {}
    for name, (outer, inner) in COMPOSITIONS.items():
        why = _unsupported(autograd_function, outer, inner)
        if why:
            notes.append(f"{prefix}{name} not formed: {why}")
            continue
        try:
            value = _transform(torch, outer)(_transform(torch, inner)(g))(x)
        except Exception as error:  # torch cannot form it for this function: said so, never guessed
            notes.append(f"{prefix}{name} not formed: {_first_line(error)}")
            continue
        routes[prefix + name] = value.detach().reshape(-1, n).cpu().numpy().astype(np.float64)
    if prefix + "reverse-over-reverse" not in routes:
        try:
            routes[prefix + "double-backward"] = _double_backward(torch, g, x)
        except Exception as error:
            notes.append(f"{prefix}double-backward not formed: {_first_line(error)}")
    return routes


def _double_backward(torch, g, x) -> np.ndarray:
    """Reverse over reverse without torch.func: `autograd.grad(..., create_graph=True)` twice."""
    x = x.detach().clone().requires_grad_(True)
    out = g(x).reshape(-1)
    n = x.shape[-1]
    rows = []
    for p in range(out.shape[0]):
        (grad,) = torch.autograd.grad(out[p], x, create_graph=True, allow_unused=True)
        if grad is None or not grad.requires_grad:
            rows.append(torch.zeros(n, n, dtype=x.dtype))
            continue
        block = []
        for a in range(n):
            (second,) = torch.autograd.grad(grad[a], x, retain_graph=True, allow_unused=True)
            block.append(torch.zeros(n, dtype=x.dtype) if second is None else second)
        rows.append(torch.stack(block))
    return torch.stack(rows).reshape(-1, n).detach().cpu().numpy().astype(np.float64)


def _unsupported(autograd_function, outer: str, inner: str) -> str:
    """Why torch.func cannot form a composition through a custom autograd.Function ('' when it can)."""
    if autograd_function is None:
        return ""
    import torch

    base = torch.autograd.Function
    if getattr(autograd_function, "setup_context", base.setup_context) is base.setup_context:
        return "torch.func needs the autograd.Function to override the setup_context staticmethod"
    if "jacfwd" in (outer, inner) and getattr(autograd_function, "jvp", base.jvp) is base.jvp:
        return "no jvp staticmethod (forward mode through the Function needs one)"
    return ""


def batched_routes(g, xb, prefix: str, order: int, notes: list, *, autograd_function=None) -> dict:
    """`{prefix + route: (B, rows, n) float64}` at the batch of flat points `xb` (B, n)."""
    import torch

    from torch.func import jacfwd, jacrev, jvp, vjp, vmap

    B, n = xb.shape
    routes: dict = {}

    def put(name, make):
        why = ""
        if autograd_function is not None:
            why = _unsupported(autograd_function, "jacfwd" if ("jacfwd" in name or "jvp" in name) else "jacrev", "jacrev")
        if why:
            notes.append(f"{prefix}{name} not formed: {why}")
            return
        try:
            value = make()
        except Exception as error:
            notes.append(f"{prefix}{name} not formed: {_first_line(error)}")
            return
        routes[prefix + name] = value.detach().reshape(B, -1, n).cpu().numpy().astype(np.float64)

    def diagonal(full, depth):
        # full: (B, rows, B, n[, B, n]) -> per point b the block at b for every transform axis
        index = torch.arange(B)
        if depth == 1:
            return full[index, :, index, :]
        return full[index, :, index, :, index, :]

    eye_in = torch.eye(n, dtype=xb.dtype)

    def vjp_rows(x):
        out, pull = vjp(g, x)
        size = out.reshape(-1).shape[0]
        basis = torch.eye(size, dtype=x.dtype)
        return torch.stack([pull(e.reshape(out.shape))[0] for e in basis])

    def jvp_cols(x):
        return torch.stack([jvp(g, (x,), (e,))[1].reshape(-1) for e in eye_in], dim=-1)

    if order == 1:
        put("vmap(jacrev)", lambda: vmap(jacrev(g))(xb))
        put("vmap(jacfwd)", lambda: vmap(jacfwd(g))(xb))
        put("vmap(vjp)", lambda: vmap(vjp_rows)(xb))
        put("vmap(jvp)", lambda: vmap(jvp_cols)(xb))
        put("jacrev(vmap)", lambda: diagonal(jacrev(vmap(g))(xb).reshape(B, -1, B, n), 1))
        put("jacfwd(vmap)", lambda: diagonal(jacfwd(vmap(g))(xb).reshape(B, -1, B, n), 1))
    else:
        for outer, inner in COMPOSITIONS.values():
            o, i = _transform(torch, outer), _transform(torch, inner)
            put(f"vmap({outer}({inner}))", lambda o=o, i=i: vmap(o(i(g)))(xb))
        for outer, inner in COMPOSITIONS.values():
            o, i = _transform(torch, outer), _transform(torch, inner)
            put(f"{outer}({inner}(vmap))", lambda o=o, i=i: diagonal(o(i(vmap(g)))(xb).reshape(B, -1, B, n, B, n), 2))
    return routes


# -- the second-order check -------------------------------------------------------------------------


class SecondOrderCheck(_Check):
    """A `_Check` of the exact second derivative; its torch routes come from `make_routes(self)`."""

    def __init__(self, f, point: Point, tolerance, make_routes, families: dict, *, extra=None):
        super().__init__(f, point, None, tolerance, extra=extra)
        self.make_routes = make_routes
        self.families = families
        self.n = sum(inp.size for inp in f.inputs)

    def _symbolic(self, point: Point) -> np.ndarray:
        from ._hessian import evaluate

        f, batch, n = self.f, point.batch_shape, self.n
        out = np.zeros(batch + (_out_size(f), n, n), dtype=point.dtype)
        offsets = np.cumsum([0] + [inp.size for inp in f.inputs])
        for i, a in enumerate(f.inputs):
            for j, b in enumerate(f.inputs):
                block = evaluate(f.derivative((a.name, b.name), order=2), point)
                out[..., offsets[i]:offsets[i + 1], offsets[j]:offsets[j + 1]] = block.reshape(
                    batch + (_out_size(f), a.size, b.size)
                )
        return out.reshape(batch + (_out_size(f) * n, n))

    def _jacobian_values(self, point: Point) -> np.ndarray:
        return _Check._symbolic(self, point)

    def _noise(self, symbolic: np.ndarray) -> np.ndarray:
        p32 = self.point.as_dtype(np.float32)
        with np.errstate(all="ignore"):
            h32 = self._symbolic(p32).astype(np.float64)
            h64 = self._symbolic(p32.as_dtype(np.float64))
            noise = np.abs(h32 - h64) * (eps(self.dtype) / eps(np.float32))
        noise = np.where(np.isfinite(noise), noise, 0.0)
        noise = np.fmax(noise, self._conditioning(self._symbolic, symbolic.shape[0]))
        values, (rows, cols), left = self._bounds("running-error-hessian", _hessian_cells)
        if left:
            self.notes.append(
                f"no running error bound for {left} of the exact second derivative's entries (too large to "
                "compile quickly); their tolerance rests on the measured float32 noise and input conditioning"
            )
        if values is not None:
            bound = np.zeros(symbolic.shape)
            bound[rows, cols] = values * eps(self.dtype)
            noise = np.fmax(noise, bound)
        # Second derivatives of matrix functions are computed by normwise backward-stable
        # algorithms (LU in torch.linalg.det's double backward): an entry that is exactly 0 (det is
        # affine in each entry, so d2 det / dX_ij^2 = 0) comes out as a rounding of the size of
        # its output entry's other second derivatives. One rounding of that size is allowed per
        # output entry; it is 1e-12 of a 1e-4 relative error, which is still caught.
        with np.errstate(all="ignore"):
            scale = np.max(np.where(np.isfinite(symbolic), np.abs(symbolic), 0.0), axis=1, keepdims=True)
        return np.fmax(noise, eps(self.dtype) * scale)

    def _finite_diff(self):
        """Finite differences of the exact Jacobian (float64), its running error bound as noise."""
        f, n = self.f, self.n
        splits = np.cumsum([inp.size for inp in f.inputs])[:-1]

        def fn(rows: np.ndarray) -> np.ndarray:
            parts = np.split(rows, splits, axis=1)
            values = {inp.name: p.reshape((rows.shape[0],) + inp.shape) for inp, p in zip(f.inputs, parts)}
            return self._jacobian_values(Point(values, np.dtype(np.float64), (rows.shape[0],))).reshape(rows.shape[0], -1)

        values, (rows, cols), _ = self._bounds("running-error", _jacobian_cells)
        noise = None
        if values is not None:
            noise = np.zeros(_out_size(f) * n)
            noise[np.asarray(rows) * n + np.asarray(cols)] = values * eps(np.float64)
        x = self.point.as_dtype(np.float64).flat(f.input_names)
        return fd_jacobian(fn, x, output_noise=noise)

    def _torch_routes(self) -> dict:
        return self.make_routes(self)

    def _entry(self, p: int, c: int, routes, tol):
        from ._report import Entry

        f, n = self.f, self.n
        o, a = divmod(p, n)
        inp_a, qa = self.columns[a]
        inp_b, qb = self.columns[c]
        out_index = tuple(int(i) for i in np.unravel_index(o, f.out_shape)) if f.out_shape else ()

        def index(inp, q):
            return tuple(int(i) for i in np.unravel_index(q, inp.shape)) if inp.shape else ()

        return Entry(
            out_index, inp_a.name, index(inp_a, qa), {k: float(v[p, c]) for k, v in routes.items()}, tol,
            kind="second", second=(inp_b.name, index(inp_b, qb)),
        )

    def _matrices(self, routes):
        return None  # plots show Jacobians; a second derivative's matrices are not kept


def _hessian_cells(f) -> list[tuple]:
    """`(written-out size, row, column, entry)` of every nonzero of the exact second derivative in
    the `(out_size * n, n)` layout, all inputs side by side."""
    from ._budget import written_sizes

    n = sum(inp.size for inp in f.inputs)
    offsets = dict(zip(f.input_names, np.cumsum([0] + [inp.size for inp in f.inputs]).tolist()))
    rows, cols, entries = [], [], []
    for a in f.inputs:
        for b in f.inputs:
            d = f.derivative((a.name, b.name), order=2)
            for r, (ca, cb), e in zip(d.rows.tolist(), d.cols.tolist(), d.entries):
                rows.append(r * n + offsets[a.name] + ca)
                cols.append(offsets[b.name] + cb)
                entries.append(e)
    return list(zip(written_sizes(entries, refuse=False), rows, cols, entries))


def _exact_second_entry(f, point_values: dict, entry) -> float:
    """The exact second derivative at a report's entry, in mpmath at `_arbitrate.DIGITS` digits."""
    import mpmath
    import sympy

    from ._arbitrate import DIGITS, _arguments, _mpmath_helpers, _to_float

    a, b = f.input(entry.input_name), f.input(entry.second[0])
    qa = int(np.ravel_multi_index(entry.input_index, a.shape)) if a.shape else 0
    qb = int(np.ravel_multi_index(entry.second[1], b.shape)) if b.shape else 0
    o = int(np.ravel_multi_index(entry.output_index, f.out_shape)) if f.out_shape else 0
    d = f.derivative((a.name, b.name), order=2)
    hits = np.flatnonzero((d.rows == o) & (d.cols[:, 0] == qa) & (d.cols[:, 1] == qb)) if d.nnz else []
    if not len(hits):
        return 0.0
    expr = d.entries[int(hits[0])]
    symbols = [s for inp in f.inputs for s in inp.flat_symbols]
    fn = sympy.lambdify(symbols, expr, modules=[_mpmath_helpers(), "mpmath"], dummify=True, docstring_limit=0)
    with mpmath.workdps(DIGITS):
        return _to_float(fn(*_arguments(f, point_values)))


# -- drivers --------------------------------------------------------------------------------------


def _flat_generated(f):
    """The torch forward generated from `f`, as a flat function `x (n,) -> out (out_size,)`."""
    from .backends import torch_backend

    sizes = [inp.size for inp in f.inputs]

    def g(x):
        parts = x.split(sizes, dim=-1)
        tensors = {inp.name: p.reshape(tuple(p.shape[:-1]) + inp.shape) for inp, p in zip(f.inputs, parts)}
        out = torch_backend.forward(f, tensors)
        return out.reshape(tuple(x.shape[:-1]) + (-1,))

    return g


def flat_impl(f, impl):
    """A user's `impl(*tensors)` as a flat function `x (n,) -> out (out_size,)`."""
    sizes = [inp.size for inp in f.inputs]

    def g(x):
        parts = x.split(sizes, dim=-1)
        out = impl(*[p.reshape(tuple(p.shape[:-1]) + inp.shape) for inp, p in zip(f.inputs, parts)])
        return out.reshape(tuple(x.shape[:-1]) + (-1,))

    return g


def _flat_tensor(f, point: Point):
    from .backends import torch_backend

    torch = torch_backend.import_torch()
    return torch.tensor(point.flat(f.input_names), dtype=torch_backend._tensor_dtype(point.dtype))


def check_point(f, point: Point, tolerance, *, order: int, batch: int | None, impl=None, prefix: str = "autograd-",
                reproduce: str = "", candidate=None) -> Report:
    """One check of `f` at `point` (one point, or `batch` points when `batch` is set) at `order`.

    `impl`: None checks the torch forward generated from `f`; else the user's `impl(*tensors)`,
    whose routes are named `impl-...` (then `prefix` is "impl-").
    """
    from .backends import torch_backend

    torch_backend.import_torch()
    if impl is None:
        g = _flat_generated(f)
        autograd_function = None
    else:
        g = flat_impl(f, impl)
        owner = getattr(impl, "__self__", None)
        import torch

        autograd_function = owner if isinstance(owner, type) and issubclass(owner, torch.autograd.Function) else None
    family = "autograd" if impl is None else "impl"
    with warnings.catch_warnings():
        # a route that is NaN (torch's double backward of det at a singular matrix) is compared as
        # such and fails; NumPy's "All-NaN slice" warning on the way says nothing more
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        if batch is None:
            return _one(f, point, tolerance, order, g, prefix, family, autograd_function, impl, reproduce, candidate)
        return _batched(f, point, tolerance, order, batch, g, prefix, family, autograd_function, impl, reproduce)


def _first_order_routes(check, g, prefix, impl, notes):
    """The unbatched first-order torch routes: the check's own for the generated forward, else
    jacrev/jacfwd of the implementation."""
    if impl is None:
        return _Check._torch_routes(check)
    import torch

    x = _flat_tensor(check.f, check.point)
    routes = {}
    for name, transform in (("reverse", torch.func.jacrev), ("forward", torch.func.jacfwd)):
        try:
            routes[prefix + name] = transform(g)(x).detach().reshape(-1, x.shape[-1]).numpy().astype(np.float64)
        except Exception as error:
            notes.append(f"{prefix}{name} not formed: {_first_line(error)}")
    return routes


def _one(f, point, tolerance, order, g, prefix, family, autograd_function, impl, reproduce, candidate, extra=None):
    from ._arbitrate import arbitrate_report

    notes: list[str] = []
    if order == 1:
        class _First(_Check):
            families = {}

            def _torch_routes(self):
                return _first_order_routes(self, g, prefix, impl, notes)

        chk = _First(f, point, candidate, tolerance, extra=extra)
        chk.families = {name: family for name in list(extra or {}) + [prefix + "reverse", prefix + "forward"]}
        report = chk.run()
        report = arbitrate_report(f, report)
    else:
        def make(chk):
            _warm(g, chk)
            return second_order_routes(g, _flat_tensor(f, chk.point), prefix, notes, autograd_function=autograd_function)

        families = {prefix + name: family for name in list(COMPOSITIONS) + ["double-backward"]}
        families.update({name: family for name in (extra or {})})
        chk = SecondOrderCheck(f, point, tolerance, make, families, extra=extra)
        report = chk.run()
        report = arbitrate_report(f, report, exact_entry=lambda e: _exact_second_entry(f, report.point, e))
    return dataclasses.replace(report, notes=tuple(report.notes) + tuple(notes), reproduce=reproduce or report.reproduce)


def _warm(g, chk):
    """Run `g` once outside any transform: the generated forward makes its index tensors on first
    use, and made inside nested transforms torch 2.13 rejects them later (an internal assert)."""
    try:
        g(_flat_tensor(chk.f, chk.point))
    except Exception:
        pass


def _batched(f, point, tolerance, order, batch, g, prefix, family, autograd_function, impl, reproduce) -> Report:
    """Every batched route over the B points; each point checked against its exact values with
    the batched routes' blocks at that point as extra routes. The Report is the worst point's."""
    from .backends import torch_backend

    torch = torch_backend.import_torch()
    if point.batch_shape != (batch,):
        raise InvalidArgumentError(
            f"batch: expected the point as a batch of {batch} (leading dimension {batch} on every input); "
            f"received batch shape {point.batch_shape}"
        )
    notes: list[str] = []
    xb = torch.tensor(point.flat(f.input_names), dtype=torch_backend._tensor_dtype(point.dtype))
    try:
        g(xb[0])
    except Exception:
        pass
    batched = batched_routes(g, xb, prefix, order, notes, autograd_function=autograd_function)
    reports = []
    for b in range(batch):
        values = {name: v[b] for name, v in point.values.items()}
        one = Point(values, point.dtype, ())
        extra = {name: m[b] for name, m in batched.items()}
        rep = _one(f, one, tolerance, order, g, prefix, family, autograd_function, impl, "", None, extra=extra)
        reports.append(rep)
    failing = [b for b, r in enumerate(reports) if r.verdict == "fail"]
    inconclusive = [b for b, r in enumerate(reports) if r.verdict == "inconclusive"]
    pick = failing[0] if failing else inconclusive[0] if inconclusive else 0
    if failing:
        pick = max(failing, key=lambda b: sum(p.n_bad for p in reports[b].pairs))
    rep = reports[pick]
    per_point = []
    for b, r in enumerate(reports):
        per_point.append(f"batch point {b}: {r.verdict}" + (f" (odd one out: {r.odd_one_out})" if r.odd_one_out else ""))
    summary = "; ".join(per_point)

    def at(entry):
        return dataclasses.replace(entry, batch_index=pick) if entry is not None else None

    reason = rep.reason
    if rep.verdict != "pass":
        reason = f"{reason} at batch point {pick} of {batch}"
        if failing:
            reason += f" (failing points: {', '.join(map(str, failing))})"
    notes_all = tuple(dict.fromkeys(tuple(rep.notes) + tuple(notes) + (summary,)))
    return dataclasses.replace(
        rep,
        reason=reason,
        point={n: v.tolist() for n, v in point.values.items()},
        pairs=tuple(dataclasses.replace(p, worst=at(p.worst)) for p in rep.pairs),
        worst=at(rep.worst),
        notes=notes_all,
        reproduce=reproduce or rep.reproduce,
        points_tried=batch,
    )
