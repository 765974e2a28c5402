"""NumPy backend: forward values and exact Jacobians, batched, in the point's dtype.

Both are evaluated by a plan (`symjac._entry_plan.EntryPlan`, cached per Function): generated code
computes only the plan's atoms (shared non-polynomial subexpressions, and entries that do not pay to
split), every other entry is a polynomial over inputs and atoms, evaluated stage by stage as gathers,
products and one segmented sum over all its monomials; constants are broadcast; the result is one
gather from the plan's table of columns (for a Jacobian, structural zeros read a zero column). No
Python loop runs per entry, except over the atoms in generated code. For Jacobians, atoms that are
functions of polynomials (`AtomFunctions`) are computed from blocks of their arguments instead
(`_atoms`), and a last stage of one-term slabs is written straight into the outputs (`_direct`). `compiled_forward` / `compiled_jacobian` compile every entry (kept for the
generated source and for comparisons in the tests).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _determinant
from .._codegen import Compiled, compile_entries
from .._entry_plan import AtomProgram, EntryPlan, PolynomialStage, plan_entries
from .._values import Point, coerce_point

__all__ = [
    "compiled_forward",
    "compiled_jacobian",
    "forward_plan",
    "jacobian_plan",
    "forward",
    "jacobian",
    "evaluate_forward",
    "evaluate_jacobian",
    "jacobians_plan",
    "jacobians",
    "evaluate_jacobians",
    "jacobian_matrix",
]


def _all_symbols(function) -> list:
    return [s for inp in function.inputs for s in inp.flat_symbols]


def compiled_forward(function, backend: str = "numpy") -> Compiled:
    """The forward function's flat entries compiled for `backend` (cached on the Function)."""
    return function.cached(
        ("forward", backend),
        lambda: compile_entries(list(function.output.reshape(-1)), _all_symbols(function), backend),
    )


def compiled_jacobian(jac, backend: str = "numpy") -> Compiled:
    """The Jacobian's structural nonzeros compiled for `backend` (cached on the Function)."""
    return jac.function.cached(
        ("jacobian-code", jac.wrt.name, backend),
        lambda: compile_entries(list(jac.entries), _all_symbols(jac.function), backend),
    )


def forward_plan(function, backend: str = "numpy") -> EntryPlan:
    """How the forward's flat entries are evaluated (cached on the Function); see `EntryPlan`."""
    return function.cached(
        ("forward-plan", backend),
        lambda: plan_entries(list(function.output.reshape(-1)), _all_symbols(function), backend),
    )


def jacobian_plan(jac, backend: str = "numpy") -> tuple[EntryPlan, np.ndarray]:
    """How the Jacobian's nonzeros are evaluated, and for each dense entry its column of the table.

    Cached on the Function. The dense index map points structural zeros at the zero column, so the
    dense Jacobian is one gather from the table.
    """

    def build():
        plan = plan_entries(list(jac.entries), _all_symbols(jac.function), backend)
        out_size = math.prod(jac.function.out_shape)
        dense = np.full(out_size * jac.wrt.size, plan.zero_column, dtype=np.int64)
        dense[jac.rows * jac.wrt.size + jac.cols] = plan.take
        return plan, dense

    return jac.function.cached(("jacobian-plan", jac.wrt.name, backend), build)


def jacobians_plan(function, jacs) -> tuple[EntryPlan, tuple[np.ndarray, ...]]:
    """One plan for the nonzeros of several Jacobians of one Function (`jacs`, a sequence of
    `Jacobian`), and for each its dense index map into the shared table.

    The entries of all of them, side by side, are one entry list: each distinct entry, code atom
    (`tanh(u_i)`, shared by the Jacobians by `W`, `x` and `b`) and polynomial column is computed
    once, and the inputs and the table are transposed once. Cached on the Function per tuple of
    input names.
    """

    def build():
        entries = [e for jac in jacs for e in jac.entries]
        plan = plan_entries(entries, _all_symbols(function), backend="numpy")
        out_size = math.prod(function.out_shape)
        dense = []
        start = 0
        for jac in jacs:
            index = np.full(out_size * jac.wrt.size, plan.zero_column, dtype=np.int64)
            index[jac.rows * jac.wrt.size + jac.cols] = plan.take[start : start + jac.nnz]
            start += jac.nnz
            dense.append(index)
        return plan, tuple(dense)

    return function.cached(("jacobians-plan", tuple(jac.wrt.name for jac in jacs), "numpy"), build)


def _arguments(function, point: Point) -> list[np.ndarray]:
    """One array of the batch shape per scalar input symbol, in declaration order."""
    args = []
    for inp in function.inputs:
        flat = point.values[inp.name].reshape(point.batch_shape + (inp.size,))
        args.extend(flat[..., q] for q in range(inp.size))
    return args


def _assemble(entries: list, batch_shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    out = np.empty(batch_shape + (len(entries),), dtype=dtype)
    for k, entry in enumerate(entries):
        out[..., k] = entry  # broadcasts constants, casts to the point's dtype
    return out


#: Points per chunk: about this many elements in the widest array a chunk builds (the table, or
#: one stage's monomials), so that each whole-array operation stays in cache; each chunk runs
#: the generated code once more (a fixed cost per operation), so chunks are not small: at batch
#: 1,000, a table up to about 1,000 columns is one chunk.
_CHUNK_ELEMENTS = 1 << 20


#: Products of table rows are formed this many elements at a time (rows x points), so that the
#: gathered factors stay in cache: softmax n = 32's 528 products `s_i * s_j` at batch 1,000 took
#: about 0.8 ms in blocks of 64 rows against 2.9 ms in one go.
_PRODUCT_ELEMENTS = 1 << 16


def _products(table: np.ndarray, monomials: np.ndarray, coefs: np.ndarray | None, out: np.ndarray) -> None:
    """`out[t] = prod(table[monomials[t]]) * coefs[t]` (factors left to right, then the
    coefficient), block by block of rows; `out` must not be part of the rows it reads."""
    step = max(1, _PRODUCT_ELEMENTS // max(1, table.shape[1]))
    degree = monomials.shape[1]
    for lo in range(0, len(monomials), step):
        block, dest = monomials[lo : lo + step], out[lo : lo + step]
        if degree == 1:
            dest[...] = table[block[:, 0]]
        else:
            np.multiply(table[block[:, 0]], table[block[:, 1]], out=dest)
        for d in range(2, degree):
            dest *= table[block[:, d]]
        if coefs is not None:
            dest *= coefs[lo : lo + step, None]


def _slab_products(table: np.ndarray, slabs: tuple, coefs: np.ndarray | None, out: np.ndarray) -> None:
    """`_products` for monomials given as slabs (`PolynomialStage.slabs`): each slab's products
    one broadcast multiply of table rows (slices, no gather), factors left to right, then the
    coefficient: the same operations in the same order, so the same values."""
    for a, b, factors in slabs:
        dest = out[a:b]
        rows = [table[c : c + b - a] if steps else table[c : c + 1] for c, steps in factors]
        if len(rows) == 1:
            dest[...] = rows[0]
        else:
            np.multiply(rows[0], rows[1], out=dest)
        for row in rows[2:]:
            dest *= row
        if coefs is not None:
            dest *= coefs[a:b, None]


def _polynomials(stage: PolynomialStage, table: np.ndarray) -> None:
    """Fill a stage's rows of `table` (`(n_columns + 1, points)`, columns as rows) from its rows
    before the stage (and the row of ones at `stage.pad`)."""
    rows = table[stage.width : stage.width + stage.n_polynomials]
    coefs = None if stage.unit_coefs else stage.coefs.astype(table.dtype)
    shared = stage.products
    if shared is None and stage.one_term_each:
        # one monomial each (`tanh(W @ x + b)`'s 512 entries `x_k * (1 - t_i**2)`): the products
        # are written into the table (the stage's rows come after every row they read)
        if stage.slabs is not None:
            _slab_products(table, stage.slabs, coefs, rows)
        else:
            _products(table, stage.monomials, coefs, rows)
    else:
        # the terms in `stage.grouped` order: each polynomial's terms summed as whole blocks of rows
        order, groups = stage.grouped if not stage.one_term_each else (None, ())
        if shared is not None:
            distinct = np.empty((len(shared[0]), table.shape[1]), dtype=table.dtype)
            _products(table, shared[0], None, distinct)
            values = distinct[shared[1] if order is None else stage.ordered[1]]
            if coefs is not None:
                values *= (coefs if order is None else coefs[order])[:, None]
        else:
            values = np.empty((len(stage.monomials), table.shape[1]), dtype=table.dtype)
            _products(table, stage.monomials if order is None else stage.ordered[0],
                      None if coefs is None else coefs if order is None else coefs[order], values)
        if order is None:
            rows[...] = values
        start = 0
        for k, m, polynomials in groups:
            sums = values[start : start + m].copy() if k > 1 else values[start : start + m]
            for j in range(1, k):
                sums += values[start + j * m : start + (j + 1) * m]
            rows[polynomials] = sums
            start += k * m
    if stage.offsets is not None:
        rows += stage.offsets.astype(table.dtype)[:, None]


def _columns(plan: EntryPlan, x: np.ndarray, table: np.ndarray | None = None, *,
             skip_last_stage: bool = False, atoms: np.ndarray | None = None) -> np.ndarray:
    """The plan's table at points `x` (`(n_inputs, points)`, inputs as rows), columns as rows:
    `(plan.n_columns + 1, points)` in `x`'s dtype (the last row is ones, read by monomials of
    lower degree). `table`: an array of that shape whose first rows are `x` already, filled in
    place (no copy of the inputs). `skip_last_stage`: the last stage's rows are left unwritten
    (`_Direct`: its products are written straight into the outputs). `atoms`: the code atoms'
    values already, `(points, n_atoms)` (`_Atoms`), instead of running the generated code."""
    if table is None:
        table = np.empty((plan.n_columns + 1, x.shape[1]), dtype=x.dtype)
        table[: plan.n_inputs] = x
    table[-2], table[-1] = 0.0, 1.0  # the zero column, and the ones the polynomials read
    if atoms is not None:
        _transpose_into(atoms, table[plan.n_inputs : plan.n_inputs + plan.n_atoms])
    elif plan.program is not None:
        _program(plan.program, table)
    elif plan.code is not None:
        for k, entry in enumerate(plan.code.fn(*table[: plan.n_inputs]), start=plan.n_inputs):
            table[k] = entry  # broadcasts constants, casts to the dtype
    for stage in plan.stages[:-1] if skip_last_stage else plan.stages:
        _polynomials(stage, table)
    if len(plan.constants):
        start = plan.n_inputs + plan.n_atoms + plan.n_polynomials
        table[start : start + len(plan.constants)] = plan.constants.astype(x.dtype)[:, None]
    return table


#: The determinants of one size of an `AtomProgram` are one call of the helper on gathered rows
#: up to this many elements (determinants x points), else one call each on the table's rows (no
#: gather, the helper's temporaries in cache): `det(X)` n = 5 at batch 1,000, 25 cofactors, took
#: 2.2 ms in one call against 0.7 ms as 25; at one point one call is 13x faster than 25.
_DETERMINANT_ELEMENTS = 1 << 13


def _program(program: AtomProgram, table: np.ndarray) -> None:
    """Fill the atoms' rows of `table` (columns as rows) by the plan's `AtomProgram`: each size of
    determinant by generated code's helper: on the gathered entries, `(m, points)` each, up to
    `_DETERMINANT_ELEMENTS` (its operations are element-wise per matrix: the values of `m` calls),
    else on each one's rows; then each level of functions over its gathered arguments; then the
    products, as a stage's one-term polynomials are computed (`_products`)."""
    det = _determinant.numpy_helpers()["_symjac_det"]
    rows = None
    for atoms, columns in program.determinants:
        if len(atoms) * table.shape[1] <= _DETERMINANT_ELEMENTS:
            table[atoms] = det(*table[columns.T])
            continue
        if rows is None:  # the input rows, one view each (what generated code is called with)
            rows = list(table[: max(int(c.max()) for _, c in program.determinants) + 1])
        for atom, entries in zip(atoms.tolist(), columns.tolist()):
            table[atom] = det(*[rows[c] for c in entries])
    for name, atoms, columns in program.functions:
        table[atoms] = _elementwise(name)(table[columns])
    for atoms, factors, coefs in program.products:
        # `_products` (blocks of rows in cache), straight into the table when the atoms are consecutive
        if len(atoms) * table.shape[1] > _DETERMINANT_ELEMENTS and factors.shape[1] <= 2:
            for atom, columns, coef in zip(atoms.tolist(), factors.tolist(), coefs.tolist()):
                out = table[atom]
                if len(columns) == 2:
                    np.multiply(table[columns[0]], table[columns[1]], out=out)
                else:
                    out[...] = table[columns[0]]
                if coef == -1.0:
                    np.negative(out, out=out)
                elif coef != 1.0:
                    out *= table.dtype.type(coef)
            continue
        coefs = None if np.all(coefs == 1.0) else coefs.astype(table.dtype)
        first, last = int(atoms[0]), int(atoms[-1])
        if last - first + 1 == len(atoms) and np.all(np.diff(atoms) == 1):
            _products(table, factors, coefs, table[first : last + 1])
        else:
            values = np.empty((len(atoms), table.shape[1]), dtype=table.dtype)
            _products(table, factors, coefs, values)
            table[atoms] = values


def _inputs(plan: EntryPlan, function, point: Point, rows: int | None = None, *, fill: bool = True) -> np.ndarray:
    """The point's input entries as rows, `(n_inputs, points)`, the batch flattened; with `rows`,
    the first rows of a new `(rows, points)` array (room for the table after the inputs).
    `fill=False`: the rows are left unwritten (nothing reads the inputs from the table)."""
    points = math.prod(point.batch_shape)
    x = np.empty((plan.n_inputs if rows is None else rows, points), dtype=point.dtype)[: plan.n_inputs]
    if not fill:
        return x
    if point.rows is not None and point.rows.shape == (points, plan.n_inputs):  # the inputs in one piece
        _transpose_into(point.rows, x)
        return x
    start = 0
    for name in function.input_names:  # one transposing copy per input (no concatenation first)
        value = point.values[name].reshape(points, -1)
        _transpose_into(value, x[start : start + value.shape[1]])
        start += value.shape[1]
    return x


#: Transposing copies of more elements than this go in blocks of `_BLOCK` rows (the source's
#: rows stay in cache while the destination's are written): about 1.5x faster than one copy.
_BLOCKED_ABOVE = 1 << 16
_BLOCK = 64


def _transpose_into(a: np.ndarray, out: np.ndarray) -> None:
    """`out[...] = a.T` for 2-D `a`, in blocks of rows when large."""
    if a.size <= _BLOCKED_ABOVE:
        out[...] = a.T
        return
    for lo in range(0, a.shape[0], _BLOCK):
        out[:, lo : lo + _BLOCK] = a[lo : lo + _BLOCK].T


def _table(plan: EntryPlan, function, point: Point) -> np.ndarray:
    """The plan's columns at a point: `batch_shape + (plan.n_columns,)`, in the point's dtype."""
    return _columns(plan, _inputs(plan, function, point))[:-1].T.reshape(point.batch_shape + (plan.n_columns,))


def _gather(plan: EntryPlan, function, point: Point, index: np.ndarray, shape: tuple,
            runs: tuple | None = None) -> np.ndarray:
    """The table's columns `index` at a point, as `batch_shape + shape`, chunk by chunk of points."""
    return _gather_many(plan, function, point, (index,), (shape,), (runs,))[0]


def _gather_many(plan: EntryPlan, function, point: Point, indices: Sequence[np.ndarray],
                 shapes: Sequence[tuple], runs: Sequence[tuple | None],
                 direct: "_Direct | None" = None, atoms: "_Atoms | None" = None) -> list[np.ndarray]:
    """The table's columns `indices[k]` at a point, as `batch_shape + shapes[k]` for each k
    (`_gather_maps` of these maps, `_maps`)."""
    return _gather_maps(_maps(plan, function, indices, shapes, runs, direct, atoms), function, point)


@dataclass(frozen=True, eq=False)
class _Maps:
    """A plan and the maps read from its table (`_gather_maps`), with what does not depend on the
    point worked out once (`_maps`; cached per Function by `forward`, `jacobian`, `jacobians`,
    `jacobian_matrix`): `runs` per map (`direct.runs` with `direct`), `step` the points per chunk,
    `fill` whether the inputs are copied into the table, `zeroed` per map whether its output starts
    from zeros, `flat` whether the inputs are read as given (points as rows)."""

    plan: EntryPlan
    indices: tuple
    shapes: tuple
    runs: tuple
    direct: "_Direct | None"
    atoms: "_Atoms | None"
    step: int
    fill: bool
    zeroed: tuple
    flat: bool


def _maps(plan: EntryPlan, function, indices: Sequence[np.ndarray], shapes: Sequence[tuple],
          runs: Sequence[tuple | None], direct: "_Direct | None" = None, atoms: "_Atoms | None" = None) -> _Maps:
    """`_Maps` of `plan` and the maps `indices` (their `runs`, `direct`, `atoms`)."""
    if direct is not None:
        runs = direct.runs
    widest = max([plan.n_columns] + [len(s.monomials) for s in plan.stages])
    return _Maps(
        plan=plan, indices=tuple(indices), shapes=tuple(shapes), runs=tuple(runs), direct=direct, atoms=atoms,
        step=max(1, _CHUNK_ELEMENTS // widest),
        fill=atoms is None or _reads_input_rows(plan, indices, runs, direct),
        # only a map with structural zeros, copied in runs, starts from zeros (its zero runs are not written)
        zeroed=tuple(run is not None and any(r[2] < 0 for r in run) for run in runs),
        flat=(direct is not None and direct.reads_inputs) or atoms is not None,
    )


def _jacobian_maps(plan: EntryPlan, function, indices: Sequence[np.ndarray], shapes: Sequence[tuple]) -> _Maps:
    """`_maps` of Jacobian maps `indices` into `plan`'s table, with their runs (`_runs`), direct
    products (`_direct`) and block atoms (`_atoms`)."""
    runs = tuple(_runs(index, plan.zero_column) for index in indices)
    return _maps(plan, function, indices, shapes, runs, _direct(plan, function, indices, runs), _atoms(plan, function))


def _gather_maps(maps: _Maps, function, point: Point) -> list[np.ndarray]:
    """The table's columns `maps.indices[k]` at a point, as `batch_shape + maps.shapes[k]` for each
    k, chunk by chunk of points; each chunk's table is computed once for all the maps.

    A map given as runs (`_runs`) is copied run by run straight from the table (columns as rows,
    each run a transposing block copy) into an output made by `np.zeros` (its zero runs are not
    written at all); any other map is one `np.take` from the transposed table: the table (columns
    as rows) is transposed, not the output, since the table has a column per distinct entry and
    the output one per dense entry (X @ X: 4,096 entries over 137 columns); the take then writes
    each point's row of the output in place, contiguously.

    With `maps.direct` (`_direct`), the plan's last stage is not written to the table: its
    products are formed straight in the outputs from the inputs as given (points as rows) and the
    earlier columns transposed once. With `maps.atoms` (`_atoms`), the code atoms are computed
    from the inputs as given, not by generated code; the inputs are then not copied into the
    table when nothing else reads them there.
    """
    plan, direct, atoms, step = maps.plan, maps.direct, maps.atoms, maps.step
    points = math.prod(point.batch_shape)
    flats = ([point.values[name].reshape(points, -1) for name in function.input_names] if maps.flat
             else [None] * len(function.inputs))
    coefs = None if direct is None or direct.coefs is None else direct.coefs.astype(point.dtype)
    # one chunk: the inputs are written straight into the table's first rows
    x = _inputs(plan, function, point, rows=plan.n_columns + 1 if step >= points else None, fill=maps.fill)
    outs = [np.zeros((points, len(index)), dtype=x.dtype) if zeroed else np.empty((points, len(index)), dtype=x.dtype)
            for index, zeroed in zip(maps.indices, maps.zeroed)]
    for lo in range(0, points, step):
        skip = direct is not None
        sources = [None if flat is None else flat[lo : lo + step] for flat in flats]
        values = None if atoms is None else _atom_values(atoms, sources, point.dtype)
        table = (_columns(plan, x, x.base, skip_last_stage=skip, atoms=values) if step >= points
                 else _columns(plan, x[:, lo : lo + step], skip_last_stage=skip, atoms=values))
        if direct is not None:
            if direct.reads_table:
                earlier = table[plan.n_inputs : plan.stages[-1].width]
                sources.append(np.empty(earlier.shape[::-1], dtype=table.dtype))
                _transpose_into(earlier, sources[-1])
            for pieces, out in zip(direct.pieces, outs):
                _direct_products(pieces, sources, coefs, out[lo : lo + step])
        rows = None
        for index, run, out in zip(maps.indices, maps.runs, outs):
            if run is not None:
                _copy_runs(table, run, out[lo : lo + step])
                continue
            if rows is None:
                rows = np.empty(table.shape[::-1], dtype=table.dtype)
                _transpose_into(table, rows)
            np.take(rows, index, axis=1, out=out[lo : lo + step], mode="clip")
    return [out.reshape(point.batch_shape + shape) for out, shape in zip(outs, maps.shapes)]


@dataclass(frozen=True, eq=False)
class _Direct:
    """How the products of a plan's last stage go straight into the dense outputs (`_direct`).

    - `pieces`: per map, its slices that are runs of consecutive monomials of one slab of the
      stage, as groups (`_group`) of `G` slices of `L` entries each, equally spaced:
      `(a, da, G, L, factors, m, dm)`, slice `g` is `out[:, a + g * da:][:, :L]`, its monomials
      `m + g * dm:][:L]`; factor `(source, c, dc, n)` is columns `c + g * dc:][:n]` (n = 1:
      broadcast) of `sources[source]`, the inputs (points as rows), then the table's columns
      before the stage transposed;
    - `runs`: per map, the runs (`_runs`) left to copy from the table (None: one `np.take`);
    - `coefs`: the stage's coefficients (None when all are 1).
    """

    pieces: tuple
    runs: tuple
    coefs: np.ndarray | None
    reads_inputs: bool
    reads_table: bool


def _direct(plan: EntryPlan, function, indices: Sequence[np.ndarray], runs: Sequence[tuple | None]) -> _Direct | None:
    """The plan's last stage written straight into the outputs, when every entry that reads it is
    in a run (`_runs`) and the stage is one monomial per polynomial, given as slabs
    (`PolynomialStage.slabs`): `tanh(W @ x + b)`'s Jacobians by `W` and `x`, `x_k * (1 - t_i**2)`
    and `W[i, k] * (1 - t_i**2)`, are then one broadcast product per run of the output (a slab's
    `x` columns times one `1 - t_i**2`), not products into the table copied out transposed.
    The same operations in the same order as `_slab_products` (a factor of ones is left out), so
    the same values. None when it does not apply."""
    if not plan.stages:
        return None
    stage = plan.stages[-1]
    if not stage.one_term_each or stage.offsets is not None or stage.products is not None or stage.slabs is None:
        return None
    first, stop = stage.width, stage.width + stage.n_polynomials
    for index, run in zip(indices, runs):
        if run is None and np.any((index >= first) & (index < stop)):
            return None
    bounds = np.cumsum([0] + [inp.size for inp in function.inputs]).tolist()
    n_inputs = plan.n_inputs
    cuts = sorted({first, stop} | {first + a for a, _, _ in stage.slabs})
    slab_starts = [a for a, _, _ in stage.slabs]

    def factor(col: int, length: int) -> tuple | None:
        if col < n_inputs:
            j = int(np.searchsorted(bounds, col, side="right")) - 1
            if col + length > bounds[j + 1]:
                raise _NoDirect
            return (j, col - bounds[j], length)
        return (len(bounds) - 1, col - n_inputs, length)

    pieces_all, kept_all = [], []
    try:
        for run in runs:
            if run is None:
                pieces_all.append(())
                kept_all.append(None)
                continue
            pieces, kept = [], []
            for a, b, source in run:
                if source < 0 or source + (b - a) <= first or source >= stop:
                    kept.append((a, b, source))
                    continue
                inner = [c for c in cuts if source < c < source + (b - a)]
                for c0, c1 in zip([source] + inner, inner + [source + (b - a)]):
                    lo, hi = a + c0 - source, a + c1 - source
                    if not first <= c0 < stop:
                        kept.append((lo, hi, c0))
                        continue
                    m = c0 - first
                    k = int(np.searchsorted(slab_starts, m, side="right")) - 1
                    sa, _, factors = stage.slabs[k]
                    own = tuple(factor(c + (m - sa) if steps else c, c1 - c0 if steps else 1)
                                for c, steps in factors if c != stage.pad)
                    pieces.append((lo, hi, own, m))
            pieces_all.append(_group(pieces))
            kept_all.append(tuple(kept))
    except _NoDirect:
        return None
    used = {f[0] for groups in pieces_all for group in groups for f in group[4]}
    return _Direct(
        pieces=tuple(pieces_all),
        runs=tuple(kept_all),
        coefs=None if stage.unit_coefs else stage.coefs,
        reads_inputs=any(j < len(bounds) - 1 for j in used),
        reads_table=len(bounds) - 1 in used,
    )


class _NoDirect(Exception):
    """A factor of the last stage spans two inputs: `_direct` does not apply."""


def _group(pieces: list) -> tuple:
    """Consecutive pieces `(a, b, factors, m)` of equal length whose output slice, factor
    columns and monomials each step by a constant, as one group `(a, da, G, L, factors, m, dm)`
    (`_Direct.pieces`): `tanh(W @ x + b)`'s Jacobian by `W` is one group of 16 slices."""
    groups: list = []
    for a, b, factors, m in pieces:
        if groups:
            a0, da, n, length, fs, m0, dm = groups[-1]
            if (b - a == length and len(factors) == len(fs)
                    and all(j == f[0] and k == f[3] for (j, _, k), f in zip(factors, fs))):
                if n == 1 and a - a0 >= length:
                    groups[-1] = (a0, a - a0, 2, length, tuple((j, c, c2 - c, k) for (j, c, _, k), (_, c2, _) in zip(fs, factors)),
                                  m0, m - m0)
                    continue
                if (n > 1 and a == a0 + n * da and m == m0 + n * dm
                        and all(c == f[1] + n * f[2] for (_, c, _), f in zip(factors, fs))):
                    groups[-1] = (a0, da, n + 1, length, fs, m0, dm)
                    continue
        groups.append((a, b - a, 1, b - a, tuple((j, c, 0, k) for j, c, k in factors), m, b - a))
    return tuple(groups)


def _strided(array: np.ndarray, start: int, step: int, groups: int, length: int, n: int) -> np.ndarray:
    """The `(points, groups, length)` view of 2-D `array` whose `[:, g, l]` is column
    `start + g * step + (l if n > 1 else 0)` (a run of `n` columns, or one column broadcast)."""
    rows, item = array.strides
    return _view(array, start, (array.shape[0], groups, length), (rows, step * item, item if n > 1 else 0))


def _view(array: np.ndarray, start: int, shape: tuple, strides: tuple) -> np.ndarray:
    """`as_strided(array.reshape(-1)[start:], shape, strides)` for an array whose first row starts
    the view (`start` counted in elements): a C-contiguous array's view made straight on its buffer
    (`np.ndarray`, which also checks that the view stays inside it), 8x faster than `as_strided`'s
    (0.5 against 4.3 us: a one-point Jacobian makes a dozen)."""
    if array.flags.c_contiguous and array.size:
        try:
            return np.ndarray(shape, array.dtype, buffer=array, offset=start * array.itemsize, strides=strides)
        except ValueError:  # past the buffer's end: as `as_strided` made it before (a planted fault)
            pass
    return np.lib.stride_tricks.as_strided(array[start:] if array.ndim == 1 else array[:, start:],
                                           shape=shape, strides=strides)


def _direct_products(pieces: tuple, sources: list, coefs: np.ndarray | None, out: np.ndarray) -> None:
    """The groups of `_Direct.pieces` written into `out` (each slice overwritten), each a product of
    strided views: factors left to right, then the coefficients, as `_slab_products` does (the
    first two factors multiplied by `np.einsum`, whose loops over short slices with a broadcast
    factor are about 2x faster than `np.multiply`'s; one product, so the same values)."""
    for a, da, n, length, factors, m, dm in pieces:
        dest = _strided(out, a, da, n, length, length)
        views = [_strided(sources[j], c, dc, n, length, k) for j, c, dc, k in factors]
        if not views:
            dest[...] = 1.0
        elif len(views) == 1:
            dest[...] = views[0]
        else:
            np.einsum("pgl,pgl->pgl", views[0], views[1], out=dest)
        for view in views[2:]:
            dest *= view
        if coefs is not None:
            dest *= _view(coefs, m, (n, length), (dm * coefs.itemsize, coefs.itemsize))


@dataclass(frozen=True, eq=False)
class _Atoms:
    """A plan's code atoms computed from the inputs as given, points as rows (`_atoms`), level by
    level (`AtomFunctions.levels`), in the levels' order of atoms; `take`: each plan atom's place in
    that order (None: the same order). Per level `(atoms, blocks, functions, coefs, offsets)`:

    - `atoms`: the level's slice of the levels' order;
    - `blocks`: per block of the level's `PolynomialStage.blocks`, `(subscripts, factors, coefs)`:
      the block's sums are one `np.einsum(subscripts, ...)` of strided views (`_strided`) of the
      sources (the inputs, then the atoms so far), factor `(source, c, dc, n)`, and of the
      coefficients `(t0, dt, L)` (None when all are 1);
    - `functions`: `(function, a, b)`: the function applied to the level's arguments `a:b` at once;
    - `coefs`, `offsets`: the level's stage's.
    """

    levels: tuple
    n: int
    take: np.ndarray | None


def _atoms(plan: EntryPlan, function) -> _Atoms | None:
    """How the plan's atoms are computed as whole blocks from the inputs, when the plan has them
    as functions of polynomials (`AtomFunctions`) whose arguments are `PolynomialStage.blocks` of
    columns within one input (or the atoms) each: `tanh(W @ x + b)` n = 16's 16 atoms are two
    contractions (`W x` and `b`) and one `np.tanh` over a `(points, 16)` block, instead of 528
    operations of generated code on rows. A sum may be added in another order than generated
    code adds it, so the values agree with it to rounding, not bit for bit. None when it does not
    apply."""
    found = plan.atom_functions
    if found is None:
        return None
    bounds = np.cumsum([0] + [inp.size for inp in function.inputs]).tolist()
    bounds.append(bounds[-1] + plan.n_atoms)  # the atoms: one more source
    levels = []
    start = 0
    for atoms, names, stage in found.levels:
        if stage.blocks is None:
            return None
        n = stage.n_polynomials
        blocks = []
        for t0, dt, length, factors in stage.blocks:
            own = []
            for c, dc, steps in factors:
                if c == stage.pad:  # the column of ones
                    continue
                last = c + (n - 1) * dc + (length - 1 if steps else 0)
                j = int(np.searchsorted(bounds, c, side="right")) - 1
                if dc < 0 or last >= bounds[j + 1]:
                    return None
                own.append((j, c - bounds[j], dc, length if steps else 1))
            if not own:
                return None  # a constant term is an offset (`_stage`), never a block
            terms = t0 + np.arange(n)[:, None] * dt + np.arange(length)
            unit = bool(np.all(stage.coefs[terms] == 1.0))
            subscripts = ",".join(["pgl"] * len(own) + ([] if unit else ["gl"])) + "->pg"
            blocks.append((subscripts, tuple(own), None if unit else (t0, dt, length)))
        functions = []
        a = 0
        for b in range(1, n + 1):
            if b == n or names[b] != names[a]:
                functions.append((_elementwise(names[a]), a, b))
                a = b
        levels.append((slice(start, start + n), tuple(blocks), tuple(functions), stage.coefs, stage.offsets))
        start += n
    order = [j for atoms, _, _ in found.levels for j in atoms]
    take = np.argsort(np.asarray(order, dtype=np.int64))
    return _Atoms(tuple(levels), plan.n_atoms, None if order == list(range(plan.n_atoms)) else take)


def _elementwise(name: str):
    """The NumPy function generated code calls for `name` (`AtomFunctions`)."""
    if name == "reciprocal":
        return np.reciprocal
    if name.startswith("numpy."):
        return getattr(np, name.removeprefix("numpy."))
    from .._stable import numpy_helpers

    return numpy_helpers()[name]


def _atom_values(atoms: _Atoms, sources: list, dtype: np.dtype) -> np.ndarray:
    """The atoms at the points of `sources` (the inputs, points as rows): `(points, n_atoms)`,
    each argument its blocks' sums added block by block, then its constant term, then the
    function over the block of atoms that share it."""
    points = next(s for s in sources if s is not None).shape[0]
    values = np.empty((points, atoms.n), dtype=dtype)
    sources = list(sources) + [values]
    for where, blocks, functions, stage_coefs, offsets in atoms.levels:
        coefs = stage_coefs.astype(dtype)
        u = None
        for subscripts, factors, coef in blocks:
            length = max(k for _, _, _, k in factors)
            n = where.stop - where.start
            operands = [_strided(sources[j], c, dc, n, length, k) for j, c, dc, k in factors]
            if coef is not None:
                t0, dt, n_terms = coef
                operands.append(_view(coefs, t0, (n, n_terms), (dt * coefs.itemsize, coefs.itemsize)))
            if u is None:
                u = np.einsum(subscripts, *operands)
            else:
                u += np.einsum(subscripts, *operands)
        if offsets is not None:
            u += offsets.astype(dtype)
        for fn, a, b in functions:
            u[:, a:b] = fn(u[:, a:b])
        values[:, where] = u
    return values if atoms.take is None else values[:, atoms.take]


def _reads_input_rows(plan: EntryPlan, indices: Sequence[np.ndarray], runs: Sequence[tuple | None],
                      direct: "_Direct | None") -> bool:
    """Whether anything computed from the table reads its input rows (when the atoms are
    computed from the inputs as given): a stage run on the table, or an output entry that is an
    input entry."""
    stages = plan.stages[:-1] if direct is not None else plan.stages
    if any(np.any(stage.monomials < plan.n_inputs) for stage in stages):
        return True
    for index, run in zip(indices, runs):
        if run is None:
            if np.any(index < plan.n_inputs):
                return True
        elif any(0 <= source < plan.n_inputs for _, _, source in run):
            return True
    return False


def jacobians(function, jacs, point: Point) -> list[np.ndarray]:
    """The Jacobians `jacs` (of `function`) at a validated point, from one shared table
    (`jacobians_plan`): each `batch_shape + jac.shape`, in the point's dtype."""
    jacs = tuple(jacs)
    if not jacs:
        return []

    def build():
        plan, dense = jacobians_plan(function, jacs)
        return _jacobian_maps(plan, function, dense, [jac.shape for jac in jacs])

    return _gather_maps(function.cached(("jacobians-maps", tuple(jac.wrt.name for jac in jacs), "numpy"), build),
                        function, point)


#: Jacobians side by side of at most this many entries are one map into their shared table
#: (`jacobian_matrix`); larger ones are gathered per input and joined, each keeping its own runs and
#: direct products (`tanh(W @ x + b)` n = 16's check took 8% longer as one map).
_JOINT_MAP_MAX = 64


def jacobian_matrix(function, jacs, point: Point) -> np.ndarray:
    """The Jacobians `jacs` (of `function`) at a validated point side by side, `batch_shape +
    (out_size, their inputs' total size)` in the point's dtype (what `symjac.check` compares), from
    the shared table of `jacobians_plan`; the same numbers as `jacobians`. Up to `_JOINT_MAP_MAX`
    entries one map laid out that way: one gather, no joining of blocks (the fixed cost per map is
    most of the work there)."""
    jacs = tuple(jacs)
    out_size = math.prod(function.out_shape)
    if out_size * sum(jac.wrt.size for jac in jacs) > _JOINT_MAP_MAX:
        batch = point.batch_shape
        blocks = jacobians(function, jacs, point)
        return np.concatenate([b.reshape(batch + (out_size, j.wrt.size)) for b, j in zip(blocks, jacs)], axis=-1)

    def build():
        plan, dense = jacobians_plan(function, jacs)
        sizes = [jac.wrt.size for jac in jacs]
        index = np.concatenate([d.reshape(out_size, n) for d, n in zip(dense, sizes)], axis=1).reshape(-1)
        return _jacobian_maps(plan, function, (index,), ((out_size, sum(sizes)),))

    return _gather_maps(function.cached(("jacobian-matrix-maps", tuple(jac.wrt.name for jac in jacs), "numpy"), build),
                        function, point)[0]


def evaluate_jacobians(function, jacs, values: dict[str, Any]) -> list[np.ndarray]:
    return jacobians(function, jacs, coerce_point(function.inputs, values))


#: A gather is done as block copies when its index map is runs of at least this many entries on
#: average (consecutive columns of the table, or structural zeros): `tanh(W @ x + b)`'s Jacobian
#: by `W` (n = 16, batch 1,000) is 31 runs of 4,096 entries, about 1.5x faster copied into fresh
#: zeros than the table transposed and taken entry by entry (9 ms against 15 ms, medians of 15).
_MIN_RUN = 8


#: A map of fewer entries is one `np.take` without looking for runs (`_runs`): finding them took
#: about ten NumPy calls, more than a take of so few entries costs (log(det(X)) n = 4: 70 µs of
#: a 2.6 ms build in a fresh process); the same values either way.
_RUNS_FROM = 32


def _runs(index: np.ndarray, zero_column: int) -> tuple | None:
    """`index` as runs `(starts, stops, sources)`: `index[a:b]` is `sources + arange(b - a)`, or
    all `zero_column` where `sources` is -1; None when the runs are short (`_MIN_RUN`) or the map
    is (`_RUNS_FROM`)."""
    if len(index) < _RUNS_FROM:
        return None
    zero = index == zero_column
    step = np.diff(index)
    # a run goes on while both entries read zeros, or neither does and the column steps by 1
    goes_on = (zero[1:] & zero[:-1]) | (~zero[1:] & ~zero[:-1] & (step == 1))
    starts = np.concatenate(([0], np.flatnonzero(~goes_on) + 1))
    if len(index) < _MIN_RUN * len(starts):
        return None
    stops = np.append(starts[1:], len(index))
    sources = np.where(zero[starts], -1, index[starts])
    return tuple(zip(starts.tolist(), stops.tolist(), sources.tolist()))


def _copy_runs(table: np.ndarray, runs: tuple, out: np.ndarray) -> None:
    """`out[...] = table.T[:, index]` for the map whose runs are `runs` (`_runs`), `table` with
    columns as rows, `out` zero already: each run of columns one transposing block copy."""
    for a, b, source in runs:
        if source >= 0:
            out[:, a:b] = table[source : source + b - a].T


def forward(function, point: Point) -> np.ndarray:
    """Output values at a validated point: `batch_shape + out_shape`, in the point's dtype."""
    def build():
        plan = forward_plan(function)
        return _maps(plan, function, (plan.take,), (function.out_shape,), (None,))

    return _gather_maps(function.cached(("forward-maps", "numpy"), build), function, point)[0]


def jacobian(jac, point: Point) -> np.ndarray:
    """Exact Jacobian values at a validated point: `batch_shape + jac.shape`, in the point's dtype."""
    function = jac.function

    def build():
        plan, dense = jacobian_plan(jac)
        return _jacobian_maps(plan, function, (dense,), (jac.shape,))

    return _gather_maps(function.cached(("jacobian-maps", jac.wrt.name, "numpy"), build), function, point)[0]


def evaluate_forward(function, values: dict[str, Any]) -> np.ndarray:
    return forward(function, coerce_point(function.inputs, values))


def evaluate_jacobian(jac, values: dict[str, Any]) -> np.ndarray:
    return jacobian(jac, coerce_point(jac.function.inputs, values))
