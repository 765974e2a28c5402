"""torch backend: the forward function as torch code (autograd graph kept) and autograd Jacobians.

The torch forward is generated from the same SymPy expression as the NumPy one; torch autograd then
differentiates torch's own implementation of each elementary operation: an independent route to
the Jacobian.
"""

from __future__ import annotations

import functools
import math
import threading
import weakref

import numpy as np

from .._errors import BackendNotAvailableError
from .._values import Point
from ._numpy import forward_plan, jacobian_plan
from ._torch_tensor import tensor_forward

__all__ = ["import_torch", "forward", "exact_jacobian", "autograd_jacobians", "tensor_jacobians", "tensor_jacobian_matrix", "text_value", "MODES"]

#: The autograd modes symjac runs: reverse (jacrev) and forward (jacfwd).
MODES = ("reverse", "forward")


def import_torch():
    """The torch module, imported on first call with its forward-mode decompositions loaded
    (`_load_jvp_decompositions`); later calls return it at once."""
    global _TORCH
    if _TORCH is not None:
        return _TORCH
    try:
        import torch
    except ImportError as error:
        raise BackendNotAvailableError(
            "torch is needed for the autograd routes; install it with `pip install torch` "
            f"(symjac supports torch>=2.2). Import failed with: {error}"
        ) from None
    if not _DECOMPOSITIONS_LOADED:
        _load_jvp_decompositions()
    _TORCH = torch
    return torch


_DECOMPOSITIONS_LOADED = False
#: torch, once `_load_jvp_decompositions` has run (`import_torch`).
_TORCH = None


def _load_jvp_decompositions() -> None:
    """Load torch's forward-mode decompositions now, without its own deprecation warning.

    The first forward-mode computation (`forward_ad.dual_level`, `torch.func.jacfwd`) imports
    `torch._decomp.decompositions_for_jvp`, which calls `torch.jit.script` at import and so warns
    "`torch.jit.script` is deprecated" in every run that checks anything: torch's own internals,
    not the user's code. That one warning, during that one import, is filtered; nothing else.
    """
    global _DECOMPOSITIONS_LOADED
    import warnings

    with _FORWARD_AD_LOCK:  # catch_warnings changes process-wide state: one thread at a time
        if _DECOMPOSITIONS_LOADED:
            return
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=DeprecationWarning)
            try:
                import torch._decomp.decompositions_for_jvp  # noqa: F401
            except Exception:  # noqa: BLE001 - an older or newer torch: it loads them itself later
                pass
        _DECOMPOSITIONS_LOADED = True


def _tensor_dtype(dtype: np.dtype):
    return _tensor_dtype_of(np.dtype(dtype))


@functools.lru_cache(maxsize=16)
def _tensor_dtype_of(dtype: np.dtype):
    """The torch dtype of float32 or float64 (asked once per dtype)."""
    torch = import_torch()
    return {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[dtype]


def _arguments(function, tensors: dict):
    args = []
    for inp in function.inputs:
        t = tensors[inp.name]
        batch = tuple(t.shape[: t.dim() - len(inp.shape)])
        args.extend(t.reshape(batch + (inp.size,)).unbind(-1))
    return args


def _assemble(entries: list, like):
    torch = import_torch()
    parts = [
        e.to(like.dtype).expand(like.shape) if isinstance(e, torch.Tensor) else torch.full(like.shape, float(e), dtype=like.dtype, device=like.device)
        for e in entries
    ]
    return torch.stack(parts, dim=-1)


def _batch_like(function, tensors: dict):
    inp = function.inputs[0]
    t = tensors[inp.name]
    return t.new_zeros(tuple(t.shape[: t.dim() - len(inp.shape)]))


def forward(function, tensors: dict):
    """The torch forward: `{name: tensor}` -> tensor of `batch_shape + out_shape`, graph kept.

    Evaluated by the forward's plan (`symjac._entry_plan.EntryPlan`): polynomial entries as batched
    gathers, products and one `index_add`, the rest by generated torch code, so that autograd
    differentiates a handful of tensor operations instead of one per scalar term.
    """
    return _forward(function, tensors)


def _forward(function, tensors: dict, *, dual: bool = False):
    torch = import_torch()
    plan = forward_plan(function, "torch")
    table, t = _table(torch, plan, function, tensors, dual=dual)
    return table.index_select(-1, t["take"]).reshape(tuple(table.shape[:-1]) + function.out_shape)


def exact_jacobian(jac, tensors: dict):
    """The exact Jacobian evaluated in torch: `batch_shape + jac.shape`, in the inputs' dtype.

    Same plan as the NumPy backend (`jacobian_plan`): linear and constant entries as one gather and
    one segmented sum, the rest through generated torch code, then one gather into the dense layout.
    """
    torch = import_torch()
    plan, dense = jacobian_plan(jac, "torch")
    table, _ = _table(torch, plan, jac.function, tensors)
    index = torch.as_tensor(dense, device=table.device)
    return table.index_select(-1, index).reshape(tuple(table.shape[:-1]) + jac.shape)


#: Per plan, its index and value arrays as tensors, by (device, dtype): made once, not per call.
_PLAN_TENSORS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _plan_tensors(torch, plan, device, dtype) -> dict:
    per_plan = _PLAN_TENSORS.setdefault(plan, {})
    key = (str(device), dtype)
    found = per_plan.get(key)
    if found is None:
        def index(a):
            return torch.as_tensor(a, dtype=torch.int64, device=device)

        def values(a):
            return torch.as_tensor(a, dtype=dtype, device=device)

        found = per_plan[key] = {
            "stages": [
                {
                    # the column of ones is appended right after the stage's `width` columns
                    "factors": [index(np.where(stage.monomials[:, d] == stage.pad, stage.width, stage.monomials[:, d]))
                                for d in range(stage.degree)],
                    "ones": stage.needs_ones,
                    "coefs": None if stage.unit_coefs else values(stage.coefs),
                    "segment": None if stage.one_term_each else index(stage.segment),
                    "offsets": None if stage.offsets is None else values(stage.offsets),
                }
                for stage in plan.stages
            ],
            "constants": values(plan.constants),
            "take": index(plan.take),
        }
    return found


def _polynomials(torch, stage, base, t: dict, dual: bool):
    """A stage's polynomial columns at `base` (`batch + (stage.width,)`): `batch + (n_polynomials,)`."""
    x1 = torch.cat([base, base.new_ones(tuple(base.shape[:-1]) + (1,))], dim=-1) if t["ones"] else base
    factors = t["factors"]
    values = x1.index_select(-1, factors[0])
    for factor in factors[1:]:
        values = values * x1.index_select(-1, factor)
    if t["coefs"] is not None:
        values = values * (_as_dual(t["coefs"]) if dual else t["coefs"])
    if t["segment"] is not None:
        values = values.new_zeros(tuple(base.shape[:-1]) + (stage.n_polynomials,)).index_add(-1, t["segment"], values)
    if t["offsets"] is not None:
        values = values + (_as_dual(t["offsets"]) if dual else t["offsets"])
    return values


def _as_dual(value):
    """`value` as a dual tensor with a zero tangent (inside the active `forward_ad.dual_level`).

    In forward-mode autograd, an operation between a dual tensor and a plain tensor or number goes
    through a slow Python decomposition in torch 2.13 (about 350 us instead of 10 us); between two
    dual tensors it does not.
    """
    import torch.autograd.forward_ad as fwad

    return fwad.make_dual(value, value.new_zeros(()).expand(value.shape))


def _code_constants(torch, fn, dtype, device) -> dict:
    """`{"_k": dual 0-d tensors}` for generated torch code that takes its numbers as `_k`."""
    defaults = getattr(fn, "__kwdefaults__", None) or {}
    if "_k" not in defaults:
        return {}
    values = torch.tensor([float(v) for v in defaults["_k"]], dtype=dtype, device=device)
    return {"_k": tuple(_as_dual(values).unbind())}


def _table(torch, plan, function, tensors: dict, *, dual: bool = False):
    """The plan's columns, `batch_shape + (plan.n_columns,)`, and the plan's tensors.

    See `symjac._entry_plan.EntryPlan`.
    """
    like = _batch_like(function, tensors)
    dtype, device = like.dtype, like.device
    t = _plan_tensors(torch, plan, device, dtype)
    flat = []
    for inp in function.inputs:
        tensor = tensors[inp.name]
        flat.append(tensor.to(dtype).reshape(tuple(tensor.shape[: tensor.dim() - len(inp.shape)]) + (inp.size,)))
    batch = tuple(torch.broadcast_shapes(*(tuple(f.shape[:-1]) for f in flat))) if len(flat) > 1 else tuple(flat[0].shape[:-1])
    x = torch.cat([f.expand(batch + f.shape[-1:]) for f in flat], dim=-1) if len(flat) > 1 else flat[0]
    parts = [x]
    if plan.code is not None:
        constants = _code_constants(torch, plan.code.fn, dtype, device) if dual else {}
        parts.append(_assemble(plan.code.fn(*_arguments(function, tensors), **constants), like.new_zeros(batch)))
    if plan.stages:
        base = torch.cat(parts, dim=-1) if len(parts) > 1 else x
        for stage, st in zip(plan.stages, t["stages"]):
            base = torch.cat([base, _polynomials(torch, stage, base, st, dual)], dim=-1)
        parts = [base]
    if len(plan.constants):
        parts.append(t["constants"].expand(batch + plan.constants.shape))
    parts.append(x.new_zeros(batch + (1,)))
    return torch.cat(parts, dim=-1), t


def to_tensors(point: Point) -> dict:
    torch = import_torch()
    dtype = _tensor_dtype(point.dtype)
    # a fresh copy of each array (`np.array`), shared with its tensor: no second copy by torch.tensor
    if np.dtype(point.dtype) in _FROM_NUMPY:
        return {n: torch.from_numpy(np.array(v, dtype=point.dtype)) for n, v in point.values.items()}
    return {n: torch.tensor(np.array(v), dtype=dtype) for n, v in point.values.items()}


_FROM_NUMPY = (np.dtype(np.float32), np.dtype(np.float64))


def autograd_jacobians(function, point: Point, mode: str) -> dict[str, np.ndarray]:
    """Jacobians of the torch forward by torch autograd at one unbatched point, per input.

    `mode` is "reverse" (the result of `torch.func.jacrev`) or "forward" (of `torch.func.jacfwd`).

    Both are computed without `vmap`, from the generated forward applied to copies of the point:
    the forward is elementwise over batch dims, so copy `k` is independent of the others. Reverse
    mode runs one forward on `out_size` copies and one backward of the sum of copy `k`'s output `k`
    (row `k` of the Jacobian lands in copy `k`'s gradient); forward mode runs one forward on
    `in_size` copies with the tangent of copy `c` the unit vector `e_c`. These are the same
    vector-Jacobian and Jacobian-vector products `jacrev` and `jacfwd` take, batched by hand: the
    per-operation overhead of `vmap` dominates at the sizes symjac checks (3-5x slower here).
    """
    torch = import_torch()
    if point.batch_shape != ():
        raise ValueError("autograd_jacobians takes one point, not a batch")
    if mode not in MODES:
        raise ValueError(f"mode: must be one of {MODES}; received {mode!r}")
    tensors = to_tensors(point)
    out_size = math.prod(function.out_shape)
    if mode == "reverse":
        blocks = _reverse(torch, function, tensors, out_size)
    else:
        blocks = _forward_mode(torch, function, tensors, out_size)
    return {
        inp.name: block.detach().cpu().numpy().reshape(function.out_shape + inp.shape)
        for inp, block in zip(function.inputs, blocks)
    }


def tensor_jacobians(function, point: Point, mode: str) -> dict[str, np.ndarray] | None:
    """Jacobians by torch autograd of the Function's tensor-level forward
    (`backends._torch_tensor`: torch.matmul, torch.tanh, torch.linalg.det on whole tensors) at one
    unbatched point, per input; None when the Function has no tensor forward.

    "reverse": one forward, then the rows as one batched backward (`torch.autograd.grad` with
    `is_grads_batched`, one unit cotangent per output entry; a plain backward for a scalar
    output). "forward": one JVP per input entry (its unit tangent), batched by a vmap
    (`_tensor_columns`): what `jacrev` and `jacfwd` compute. Both in chunks of at most `FORWARD_CHUNK_ENTRIES` (issue
    15). Measured at one thread on tanh(W @ x + b), n = 16: the batched backward 0.27 ms and the
    batched JVP (as `jacfwd`) 0.57 ms, where `jacrev` took 0.5 ms, a loop of backwards 0.85 ms and
    a loop of dual-number forwards 49 ms. Raises
    `backends._torch_tensor.Unsupported` when the forward cannot run at this point.
    """
    full = tensor_jacobian_matrix(function, point, mode)
    if full is None:
        return None
    out, offset = {}, 0
    for inp in function.inputs:
        out[inp.name] = full[:, offset : offset + inp.size].reshape(function.out_shape + inp.shape)
        offset += inp.size
    return out


def tensor_jacobian_matrix(function, point: Point, mode: str) -> np.ndarray | None:
    """`tensor_jacobians` as one `(out_size, in_size)` matrix, the inputs side by side (what
    `symjac.check` compares), in the point's dtype; None when the Function has no tensor forward."""
    run = tensor_forward(function)
    if run is None:
        return None
    torch = import_torch()
    if point.batch_shape != ():
        raise ValueError("tensor_jacobians takes one point, not a batch")
    if mode not in MODES:
        raise ValueError(f"mode: must be one of {MODES}; received {mode!r}")
    tensors = to_tensors(point)
    # the inputs' names and sizes and the output size (cached per Function: tuples, shared safely)
    names, sizes, out_size = function.cached("torch-layout", lambda: (
        tuple(inp.name for inp in function.inputs), tuple(inp.size for inp in function.inputs),
        math.prod(function.out_shape)))
    total = sum(sizes)
    if mode == "reverse":
        xs = [tensors[n].requires_grad_(True) for n in names]
        y = run(dict(zip(names, xs)))
        chunk = max(1, FORWARD_CHUNK_ENTRIES // max(total, out_size, 1))
        rows = [_tensor_rows(torch, y, xs, start, min(start + chunk, out_size)) for start in range(0, out_size, chunk)]
        full = np.concatenate(rows, axis=0) if len(rows) > 1 else rows[0]
    else:
        fn = _FlatForward(run, names)
        primals = tuple(tensors[n] for n in names)
        chunk = max(1, FORWARD_CHUNK_ENTRIES // max(total, out_size, 1))
        with _FORWARD_AD_LOCK:
            columns = [_tensor_columns(torch, fn, primals, sizes, start, min(start + chunk, total))
                       for start in range(0, total, chunk)]
        full = _as_numpy(torch.cat(columns, dim=1) if len(columns) > 1 else columns[0])
    return full.reshape(out_size, total)


def _as_numpy(t) -> np.ndarray:
    """`t.detach().cpu().numpy()`, without the two calls where they change nothing (a CPU tensor
    that does not require grad: what autograd's gradients and tangents are here)."""
    if t.requires_grad or not t.is_cpu:
        return t.detach().cpu().numpy()
    return t.numpy()


def _tensor_rows(torch, y, xs: list, start: int, stop: int) -> np.ndarray:
    """Rows `start:stop` of the Jacobian of `y` (its entries in flat order) by `xs`, as a NumPy
    array `(stop - start, in_size)` in their dtype: one backward per row, batched
    (`is_grads_batched`), or a plain backward for a single row."""
    count = stop - start
    dtype = _numpy_dtype(y)
    if not y.requires_grad:
        return np.zeros((count, sum(x.numel() for x in xs)), dtype=dtype)
    if count == 1 and y.numel() == 1:
        # the cotangent 1 is autograd's own (`ones_like`): between other work that took about 9 µs less
        # than a cotangent made in NumPy and handed over
        grads = torch.autograd.grad(y.reshape(()) if y.dim() else y, xs, retain_graph=True, allow_unused=True)
        if all(g is not None and g.dim() == 0 for g in grads):  # scalar inputs: their values side by side
            # each read as a Python float (exact for float32 too): one call each, no NumPy view
            return np.array([g.item() for g in grads], dtype=dtype).reshape(1, len(grads))
    else:
        flat = y.reshape(-1)
        cotangents = flat.new_zeros((count, flat.numel()))
        cotangents.diagonal(start).fill_(1)  # cotangents[k, start + k] = 1
        grads = torch.autograd.grad(flat, xs, grad_outputs=cotangents, is_grads_batched=True, retain_graph=True,
                                    allow_unused=True)
    if len(grads) > 1 and all(g is not None for g in grads):  # side by side in torch: one conversion to NumPy
        return _as_numpy(torch.cat([g.reshape(count, -1) for g in grads], dim=1))
    parts = [np.zeros((count, x.numel()), dtype=dtype) if g is None else _as_numpy(g).reshape(count, -1)
             for x, g in zip(xs, grads)]
    return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]


def _numpy_dtype(t) -> np.dtype:
    return _numpy_dtype_of(t.dtype)


@functools.lru_cache(maxsize=64)
def _numpy_dtype_of(torch_dtype) -> np.dtype:
    """The NumPy dtype of a torch dtype (asked once per dtype)."""
    return np.dtype(str(torch_dtype).replace("torch.", ""))


def _zero_tangent(t):
    """`t` as a dual tensor with a zero tangent at the current dual level (forward mode)."""
    import torch.autograd.forward_ad as fwad

    return fwad.make_dual(t, t.new_zeros(t.shape))


class _FlatForward:
    """The tensor forward `run` of the inputs `names` given positionally, flattened; `dual` is the
    same under torch's own dual numbers, with the forward's constants given zero tangents
    (`TensorForward.__call__`'s `lift`): what the loop of dual forwards and the dual vmap run
    (`_tensor_columns`, `_batched_jvps`); functorch's vmap runs the call itself."""

    __slots__ = ("run", "names")

    def __init__(self, run, names):
        self.run, self.names = run, names

    @property
    def elementwise(self) -> bool:
        """Whether `side_by_side` applies (`TensorForward.elementwise`: scalars, element-wise operations)."""
        return getattr(self.run, "elementwise", False)

    def side_by_side(self, count: int, *args):
        """`TensorForward.side_by_side` under torch's dual numbers (constants lifted, as `dual`)."""
        return self.run.side_by_side(dict(zip(self.names, args)), count, lift=_zero_tangent)

    def __call__(self, *args):
        return self.run(dict(zip(self.names, args))).reshape(-1)

    def dual(self, *args):
        return self.run(dict(zip(self.names, args)), lift=_zero_tangent).reshape(-1)


def _tensor_columns(torch, fn, primals: tuple, sizes: list, start: int, stop: int):
    """Columns `start:stop` of the Jacobian of `fn` at `primals`, `(out_size, stop - start)`: one
    JVP per column (the unit tangent of that input entry): for an element-wise forward of scalars,
    all of them in one dual-number forward side by side (`_side_by_side_jvps`, up to
    `SIDE_BY_SIDE_COLUMNS`); else a loop of dual-number forwards for `FEW_COLUMNS`, else batched
    by a vmap (`DUAL_VMAP_COLUMNS`). Under torch's own dual numbers (the
    loop, the dual vmap) `fn.dual` runs where `fn` has one (`_FlatForward`)."""
    count = stop - start
    dual = getattr(fn, "dual", fn)
    # side by side where the loop or the dual vmap would run (not where functorch's vmap is asked for)
    if count <= SIDE_BY_SIDE_COLUMNS and count <= max(FEW_COLUMNS, DUAL_VMAP_COLUMNS) and getattr(fn, "elementwise", False):
        columns = _side_by_side_jvps(torch, fn, primals, start, stop)
        if columns is not None:
            return columns
    if count <= FEW_COLUMNS:  # vmap's own overhead is most of the cost for a few columns
        import torch.autograd.forward_ad as fwad

        # column c's tangents: zeros for every input but the one c belongs to, which has a unit
        # entry (the zero tangents are shared: a forward reads tangents, it never writes them)
        zeros = [p.new_zeros(p.shape) for p in primals]
        columns = []
        with fwad.dual_level():
            for c in range(start, stop):
                k, q = 0, c  # the input column c belongs to, and its entry there
                while q >= sizes[k]:
                    q -= sizes[k]
                    k += 1
                if sizes[k] == 1:
                    unit = torch.ones_like(primals[k])
                else:
                    unit = primals[k].new_zeros(sizes[k])
                    unit[q] = 1
                    unit = unit.reshape(primals[k].shape)
                out = dual(*(fwad.make_dual(p, unit if j == k else z) for j, (p, z) in enumerate(zip(primals, zeros))))
                tangent = fwad.unpack_dual(out).tangent
                columns.append(out.new_zeros(out.shape) if tangent is None else tangent)
        return torch.stack(columns, dim=1)

    # the unit tangents of columns start:stop: rows start:stop of the identity, split by input
    first = primals[0]
    units = first.new_zeros((count, sum(sizes)))
    units.diagonal(start).fill_(1)  # units[k, start + k] = 1
    tangents = [t.reshape((count,) + tuple(p.shape)) for p, t in zip(primals, units.split(list(sizes), dim=1))]

    if count <= DUAL_VMAP_COLUMNS:
        return _batched_jvps(torch, fn, primals, tangents).T
    return _functorch_jvps(torch, fn, primals, tangents).T


def _side_by_side_jvps(torch, fn, primals: tuple, start: int, stop: int):
    """Columns `start:stop` of the Jacobian, `(1, stop - start)`, of an element-wise forward of
    scalars (`_FlatForward.elementwise`: each primal is 0-d, one column each) in one dual-number
    forward: each input copied `count` times side by side, its tangent 1 in the copy of its own
    column and 0 elsewhere; copy i's output tangent is then column `start + i` (the copies do not
    mix: every operation acts entry by entry). The same derivative rules, one forward instead of
    one per column (`tests/test_check_fast_paths.py`: bit for bit against the loop). None when the
    forward does not give `count` outputs (one that reads no input): the loop runs then."""
    import torch.autograd.forward_ad as fwad

    count = stop - start
    if any(p.requires_grad or not p.is_cpu for p in primals):
        return None  # the copies below are made in NumPy: CPU tensors of plain values only
    dtype = _numpy_dtype(primals[0])
    # the copies (row j: input j's value `count` times) and the unit tangents (units[j, i] = 1 where
    # copy i is input j's column, j = start + i) are made in NumPy and shared with torch
    # (`torch.from_numpy`): measured between other work (cold caches), a tensor made that way costs
    # about a third of torch's `expand().clone()` or `eye`. One dual tensor holds every input, a row
    # each (`unbind`: views, their tangents the rows of `units`): torch's Python `make_dual` took
    # about 12 µs a call there, one `unbind` less than a second call
    copies = np.empty((len(primals), count), dtype=dtype)
    copies[...] = np.array([p.numpy() for p in primals], dtype=dtype)[:, None]
    units = np.eye(len(primals), count, -start, dtype=dtype)
    with fwad.dual_level():
        inputs = fwad.make_dual(torch.from_numpy(copies), torch.from_numpy(units)).unbind(0)
        out = fn.side_by_side(count, *inputs)
        if out is None:
            return None
        tangent = fwad.unpack_dual(out).tangent
    if tangent is None:
        return out.new_zeros((1, count))
    return tangent.reshape(1, count)


def _functorch_jvps(torch, fn, primals: tuple, tangents: list):
    """`(count, out_size)`: the JVPs of `fn` at `primals` along `count` tangents, by
    `torch.func.vmap` of `torch.func.jvp`."""
    def jvp(*ts):
        return torch.func.jvp(fn, primals, ts)[1]

    return torch.func.vmap(jvp)(*tangents)


def _batched_jvps(torch, fn, primals: tuple, tangents: list):
    """`(count, out_size)`: the JVPs of `fn` at `primals` along `count` tangents (each input's
    `(count,) + shape`), one dual-number forward batched by torch's own vmap
    (`torch._vmap_internals._vmap`, what `torch.autograd.functional.jacobian(strategy="forward-mode",
    vectorize=True)` runs: the same forward-mode derivative rules as `torch.func.jvp`, about half the
    per-operation overhead of `torch.func.vmap(torch.func.jvp)` at the sizes checked; `X @ X` 4 x 4,
    16 columns, at one thread: 0.16 ms against 0.36 ms). Falls back to `torch.func.vmap` of
    `torch.func.jvp` where that vmap is missing or refuses an operation."""
    import torch.autograd.forward_ad as fwad

    try:
        from torch._vmap_internals import _vmap
    except ImportError:  # pragma: no cover - present in every torch symjac supports
        _vmap = None
    dual = getattr(fn, "dual", fn)  # `_FlatForward.dual`: fn with zero tangents on its constants
    if _vmap is not None:
        def dual_jvp(*ts):
            with fwad.dual_level():
                out = dual(*(fwad.make_dual(p, t.view_as(p)) for p, t in zip(primals, ts)))
                primal, tangent = fwad.unpack_dual(out)
                # an output that does not depend on the inputs has no tangent: its JVP is 0
                return torch.zeros_like(primal) if tangent is None else tangent

        try:
            return _vmap(dual_jvp)(*tangents)
        except (RuntimeError, ValueError):
            pass  # an operation the batched dual numbers do not take: functorch's vmap below
    return _functorch_jvps(torch, fn, primals, tangents)


#: Up to this many columns, forward mode runs one dual-number forward per column instead of one
#: `vmap` of JVPs: at one thread, `x * y` (2 columns) 0.1 ms against 0.29 ms; `det(X)` 4 x 4 (16
#: columns) 1.04 ms against 0.42 ms; at 4 columns (`det(X)` 2 x 2) torch's own vmap of dual
#: numbers was faster already (0.54 ms against 0.77 ms, a loaded machine).
FEW_COLUMNS = 2
#: Up to this many columns, an element-wise forward of scalars (`_FlatForward.elementwise`) runs its
#: columns side by side in one dual-number forward (`_side_by_side_jvps`): `x * y` about 0.09 ms
#: against 0.15 ms for the loop of two dual forwards (one thread, a loaded machine). At most 8: up
#: to 8 entries torch's CPU kernels run their scalar loop, the same code as for one entry.
SIDE_BY_SIDE_COLUMNS = 8
#: Up to this many columns in a chunk, the JVPs are batched by torch's own vmap of dual numbers
#: (`_batched_jvps`); above, by `torch.func.vmap`: where an operation has no batching rule there
#: (`tanh(W @ x + b)`, n = 16, 288 columns: 4.5 ms against 1.2 ms) its per-column fallback grows
#: with the columns, while at 16 to 64 columns it was 1.1-1.6x faster (`X @ X` 4 x 4 0.43 ms against
#: 0.68 ms, `softmax(x)` n = 8 0.26 against 0.41, `tanh(W @ x + b)` n = 4 0.54 against 0.59); the
#: two give the same numbers (the same forward-mode rules; bit for bit in `tests/test_check_fixed_costs.py`).
DUAL_VMAP_COLUMNS = 32


def _copies(t, count: int):
    return t.unsqueeze(0).expand((count,) + tuple(t.shape)).clone()


def _reverse(torch, function, tensors: dict, out_size: int) -> list:
    """Blocks `(out_size, in_size)` per input: row k is the gradient of output k (one backward)."""
    copies = {name: _copies(t, out_size).requires_grad_(True) for name, t in tensors.items()}
    y = forward(function, copies).reshape(out_size, out_size)
    inputs = [copies[inp.name] for inp in function.inputs]
    if y.requires_grad:
        grads = torch.autograd.grad(y.diagonal().sum(), inputs, allow_unused=True)
    else:
        grads = [None] * len(inputs)
    return [
        (g if g is not None else torch.zeros_like(x)).reshape(out_size, inp.size)
        for inp, x, g in zip(function.inputs, inputs, grads)
    ]


#: torch's forward-mode dual levels (`forward_ad.dual_level`, and `torch.func.jacfwd` and
#: `torch.autograd.functional.jacobian(strategy="forward-mode")`, which use them) are process-wide,
#: not per thread: two forward-mode computations in two threads nest ("Nested forward mode AD is
#: not supported"). Every forward-mode computation of symjac (check's route, verify's) holds this.
FORWARD_AD_LOCK = threading.RLock()
_FORWARD_AD_LOCK = FORWARD_AD_LOCK


#: Forward mode runs one copy of the point per input entry (its tangent is that entry's unit
#: vector): `in_size` copies of `in_size` entries, 16.7 million at 64 x 64 (issue 15: 2.4 GB in
#: all). It runs the columns in chunks of at most this many copied entries instead.
FORWARD_CHUNK_ENTRIES = 1 << 20


def _forward_mode(torch, function, tensors: dict, out_size: int) -> list:
    """Blocks `(out_size, in_size)` per input: column c is the tangent of the output along e_c."""
    total = sum(inp.size for inp in function.inputs)
    chunk = max(1, FORWARD_CHUNK_ENTRIES // max(total, 1))
    columns = [_forward_columns(torch, function, tensors, out_size, start, min(start + chunk, total))
               for start in range(0, total, chunk)]
    full = torch.cat(columns, dim=1) if len(columns) > 1 else columns[0]
    return list(full.split([inp.size for inp in function.inputs], dim=1))


def _forward_columns(torch, function, tensors: dict, out_size: int, start: int, stop: int):
    """Columns `start:stop` of the Jacobian, `(out_size, stop - start)`, by forward mode."""
    import torch.autograd.forward_ad as fwad

    count = stop - start
    duals = {}
    # torch's forward-mode dual levels are process-wide, not per thread: two checks in two threads
    # would nest them ("Nested forward mode AD is not supported"). One at a time.
    with _FORWARD_AD_LOCK, fwad.dual_level():
        offset = 0
        for inp in function.inputs:
            t = tensors[inp.name]
            tangent = t.new_zeros((count, inp.size))
            lo, hi = max(start, offset), min(stop, offset + inp.size)  # this input's columns in the chunk
            if lo < hi:
                rows = torch.arange(lo - start, hi - start)
                tangent[rows, torch.arange(lo - offset, hi - offset)] = 1
            duals[inp.name] = fwad.make_dual(_copies(t, count), tangent.reshape((count,) + inp.shape))
            offset += inp.size
        y = _forward(function, duals, dual=True)
        tangent_out = fwad.unpack_dual(y).tangent
        like = fwad.unpack_dual(y).primal
    if tangent_out is None:
        tangent_out = torch.zeros_like(like)
    return tangent_out.reshape(count, out_size).T


# -- a user's implementation with given cotangents and tangents (symjac.verify) ----------------------
def impl_vjp(impl, args: list, wrt: list[int], cotangent: np.ndarray) -> list:
    """`v^T J` of `impl` at `args` for the cotangent `v` (the output's shape): one backward with
    `grad_output = v`, through torch.autograd.grad. Returns one gradient per index in `wrt` (NumPy,
    float64; zeros where autograd found no path)."""
    torch = import_torch()
    xs = [a.detach().clone().requires_grad_(i in wrt) for i, a in enumerate(args)]
    out = impl(*xs)
    v = torch.as_tensor(np.asarray(cotangent), dtype=out.dtype, device=out.device).reshape(out.shape)
    chosen = [xs[i] for i in wrt]
    grads = torch.autograd.grad(out, chosen, grad_outputs=v, allow_unused=True)
    return [
        np.zeros(tuple(x.shape)) if g is None else g.detach().cpu().numpy().astype(np.float64)
        for x, g in zip(chosen, grads)
    ]


def impl_jvp(impl, args: list, wrt: list[int], tangents: list[np.ndarray]) -> np.ndarray:
    """`J t` of `impl` at `args` for tangents `t` (one per index in `wrt`, the inputs' shapes; the
    other inputs get none) by forward-mode autograd (dual tensors): NumPy, float64, the output's shape."""
    torch = import_torch()
    import torch.autograd.forward_ad as fwad

    with _FORWARD_AD_LOCK, fwad.dual_level():
        xs = list(a.detach().clone() for a in args)
        for i, t in zip(wrt, tangents):
            xs[i] = fwad.make_dual(xs[i], torch.as_tensor(np.asarray(t), dtype=xs[i].dtype).reshape(xs[i].shape))
        out = impl(*xs)
        unpacked = fwad.unpack_dual(out)
        tangent = unpacked.tangent
        primal = unpacked.primal
        result = np.zeros(tuple(primal.shape)) if tangent is None else tangent.detach().cpu().numpy().astype(np.float64)
    return result


def text_value(function, point: Point) -> np.ndarray | None:
    """The Function's text run as written (torch on whole tensors) at the float64 version of `point`,
    as a flat NumPy array; None for a Function without text or a tensor forward, or where the text
    cannot be run. SymPy simplifies while it builds (`exp(log(x))` is `x`): where this is not finite
    but the Function is, the point is outside the domain of the text as written."""
    forward = tensor_forward(function)
    if forward is None or function.source is None:
        return None
    torch = import_torch()
    try:
        with torch.no_grad():
            out = forward(to_tensors(point.as_dtype(np.float64)))
        return np.asarray(out.detach().cpu().numpy(), dtype=np.float64).reshape(-1)
    except Exception:  # noqa: BLE001 - the text cannot be run at this point: no claim about it
        return None
