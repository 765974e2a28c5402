"""How a flat entry list is evaluated as whole arrays: each entry a polynomial over *atoms*.

Most Jacobian entries are constants (`A @ X`, `sum(X)`), low-degree polynomials in the inputs
(`X @ X`), or low-degree polynomials in a few non-polynomial subexpressions that many entries share:
`tanh(W @ x + b)` has entries `W[i, j] - W[i, j] * tanh(u_i)**2`, 256 entries over 16 atoms
`tanh(u_i)`; softmax has entries `-s_i * s_j` over the atoms `s_i = exp(x_i - logsumexp(x))`. Here
every entry is written as a polynomial over columns of one table, and only the atoms are computed
by generated code (`_codegen.compile_entries`, one flat list, each atom once); everything else is
gathers, products and segmented sums over whole arrays.

The table of a plan, column by column:

    [inputs | code atoms | polynomials, stage 1 | stage 2 | ... | constants | 0]

- *inputs*: the inputs' scalar entries, all inputs flattened and side by side;
- *code atoms*: the generated code's outputs, functions of the inputs: non-polynomial
  subexpressions (`tanh(u_i)`, `exp(...)`, `1/det`), and whole entries that do not pay to split;
- *polynomials*: each a sum of monomials `c * col_a * col_b ...` (at most `MAX_DEGREE` factors,
  at most `MAX_MONOMIALS_PER_ENTRY` terms) over the columns before its stage; a stage reads only
  earlier columns, so a polynomial may use another's value (`(1 - s_i) * s_i` uses the polynomial
  column `1 - s_i`, `X[1, 0] * (X[0, 0] + X[1, 1])` the column `X[0, 0] + X[1, 1]`);
- *constants*: constant entries' float64 values, broadcast;
- a final zero column (a Jacobian's structural zeros read it).

Sums inside a product become their own polynomial column rather than being multiplied out, so each
entry is evaluated by the operations its formula writes (no cancellation that the formula did not
have); only the order of a sum's terms may differ, as in generated code, and a factor common to every
term of a sum is multiplied once: `c * a + c * b` is evaluated as `c * r` with `r = a + b` one
*cofactor* column, shared by every polynomial with the same cofactor (the distributive law, the
formula's operations regrouped; attention's Jacobian by `K` is 4x fewer table operations). An entry whose split needs
more than one code atom of its own (used by no other entry: `X * cos(X) + sin(X)`) stays one code
atom: splitting it would only add columns.

When every code atom is an elementwise function (or the reciprocal) of a polynomial in the inputs
and other atoms (`tanh(u_i)`; `exp(-u_i)` and `1 / (1 + e_i)` for a sigmoid), the plan also
describes the atoms that way, level by level (`AtomFunctions`), for a backend that evaluates the
arguments as blocks (`PolynomialStage.blocks`) and each function once per block of atoms; their
generated code is then compiled only if a backend runs it.

A NumPy plan whose atoms are all determinants of input entries, functions (or the reciprocal) of
one column, and one-term products of those, has no generated code at all (`AtomProgram`):
`log(det(X))`'s Jacobian is 16 cofactor determinants, `det(X)`, `1 / det(X)` and 16 products.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy

from . import _dag
from ._codegen import Compiled, compile_entries, fold_constants
from ._determinant import det as _det

__all__ = ["EntryPlan", "PolynomialStage", "AtomFunctions", "AtomProgram", "plan_entries", "MAX_DEGREE", "MAX_MONOMIALS_PER_ENTRY"]

#: A monomial has at most this many factors (columns, with repetition); a term with more is a code
#: atom. A sum with more terms than `MAX_MONOMIALS_PER_ENTRY` is a code atom too.
MAX_DEGREE = 4
MAX_MONOMIALS_PER_ENTRY = 256

#: The cost of one row operation of the table (a gather or a product inside one vectorised call)
#: relative to one operation of generated code (a NumPy call on whole arrays), in `_cost`.
#: Calibrated on the benchmark functions (tanh(W@x+b), softmax, attention, X@X@X, inv, log(det)):
#: medians of the two plans forced one way and the other, batch 1,000, on a shared 2-core machine.
TABLE_WEIGHT = 0.25
#: A split needing more stages than this (counted as if no common factor were taken out, `_depth`) is not used: deeply nested polynomials (`inv(X)` and
#: `det(X)`'s cofactors, 4-5 stages) ran 3.5-6x slower as a table than as generated code with cse.
MAX_STAGES = 2
#: Node classes the table cannot see into: an entry that holds one (a determinant above 3 x 3,
#: symjac._determinant) is one code atom, without the split (step 1a of `plan_entries`). Such entries
#: are a few products of cofactor nodes and powers of the determinant (`log(det(X))`: a cofactor
#: over the determinant; `inv(X)`: 2 x 2 minors over it, less a cofactor over its square), which
#: generated code with cse evaluates as the table would, without the split, the factoring and the
#: two costs: at 4 x 4 (batch 1,000; one build in a fresh process, two runs) `inv(X)`'s Jacobian
#: evaluated in 4.5-5.8 ms against 6.5 ms as a table, compiled in 14-17 ms against 19 ms;
#: `log(det(X))`'s in 0.58 ms against 1.03 ms, compiled in 2.3 against 4.1 ms.
#: Except in a NumPy plan (`plan_entries`) where every such node is a determinant of input entries
#: and the split then needs only determinants, functions of one column and one-term products of
#: them (at most one sum of such terms per entry): those are an `AtomProgram`, no generated code at
#: all (`log(det(X))`, `det(X)`).
OPAQUE = (_det,)
#: A stage's products are taken slab by slab (`PolynomialStage.slabs`) when its slabs have at least
#: this many monomials on average: `tanh(W @ x + b)` n = 16's 512 products at batch 1,000 took
#: 0.88 ms as 32 slabs against 1.18 ms gathered (medians of 21, vmap(jacrev) run between).
MIN_SLAB = 8
#: A stage of at most this many monomials finds its distinct products in Python (`products`).
_SMALL_STAGE = 4096


@dataclass(frozen=True, eq=False)
class PolynomialStage:
    """Polynomials over the first `width` columns of the table (and a column of ones).

    `monomials` `(T, D)`: column indices of each monomial's factors, padded with `pad`, the index
    of a column of ones just past the table (`EntryPlan.n_columns`); polynomial `i` is
    `offsets[i] + sum(coefs[t] * prod(table[monomials[t]]) for t in starts[i]:starts[i + 1])`.
    """

    width: int
    pad: int
    monomials: np.ndarray
    coefs: np.ndarray
    starts: np.ndarray
    offsets: np.ndarray | None

    @functools.cached_property
    def n_polynomials(self) -> int:
        return len(self.starts)

    @functools.cached_property
    def degree(self) -> int:
        return self.monomials.shape[1]

    @functools.cached_property
    def needs_ones(self) -> bool:
        """Some monomial reads the column of ones (it has fewer than `degree` factors)."""
        return bool(np.any(self.monomials == self.pad))

    @functools.cached_property
    def products(self) -> tuple[np.ndarray, np.ndarray] | None:
        """`(distinct, term)`: the distinct monomials `(U, D)` and each term's row of them, when
        terms repeat products (`W[i, j] tanh(u_i)**2`: 16 products, 256 terms); else None."""
        if self.degree < 2:
            return None
        if len(self.monomials) > _SMALL_STAGE:
            distinct, term = np.unique(self.monomials, axis=0, return_inverse=True)
            if 2 * len(distinct) > len(self.monomials):
                return None
            return distinct, term.reshape(-1)
        # `np.unique(axis=0)`'s result (the distinct rows sorted), by Python's sets and sorting:
        # 0.15 ms for 16 monomials in NumPy against a few us here
        rows = list(map(tuple, self.monomials.tolist()))
        found = set(rows)
        if 2 * len(found) > len(rows):
            return None
        ordered = sorted(found)
        where = {row: k for k, row in enumerate(ordered)}
        return (np.asarray(ordered, dtype=np.int64).reshape(len(ordered), self.degree),
                np.fromiter((where[row] for row in rows), dtype=np.int64, count=len(rows)))

    @functools.cached_property
    def unit_coefs(self) -> bool:
        return bool(np.all(self.coefs == 1.0))

    @functools.cached_property
    def one_term_each(self) -> bool:
        """Every polynomial is a single monomial: the segmented sum is the identity."""
        return len(self.monomials) == self.n_polynomials

    @functools.cached_property
    def grouped(self) -> tuple[np.ndarray, tuple[tuple[int, int, np.ndarray], ...]]:
        """The terms reordered by polynomial length, for sums over whole blocks: `(order, groups)`,
        `order` the terms' new order; group `(k, m, polynomials)` is the `m` polynomials of `k`
        terms each, their terms next in `order`, term-major (term `j` of the group's `i`-th
        polynomial at `j * m + i` in the group). Summing a group's `k` blocks of `m` rows left to
        right adds each polynomial's terms in their order (`np.add.reduceat` over the rows, used
        before, was 5-10x slower on `X @ X @ X`'s stages and rounds in another order)."""
        counts = np.diff(np.append(self.starts, len(self.monomials)))
        order: list[np.ndarray] = []
        groups = []
        for k in np.unique(counts).tolist():
            polynomials = np.flatnonzero(counts == k)
            first = self.starts[polynomials]
            order.append((first[None, :] + np.arange(k)[:, None]).reshape(-1))
            groups.append((k, len(polynomials), polynomials))
        return np.concatenate(order), tuple(groups)

    @functools.cached_property
    def ordered(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The monomials, and each term's row of `products` (None without), in `grouped` order."""
        order = self.grouped[0]
        shared = self.products
        return self.monomials[order], None if shared is None else shared[1][order]

    @functools.cached_property
    def slabs(self) -> tuple[tuple[int, int, tuple[tuple[int, bool], ...]], ...] | None:
        """The monomials as *slabs* `(a, b, factors)`: for `t` in `a:b`, factor `k` of monomial
        `t` is column `c + (t - a)` where `factors[k]` is `(c, True)`, column `c` where it is
        `(c, False)`; the products of a slab are one broadcast multiply of table rows, no gather
        (`tanh(W @ x + b)`'s 512 products `x_k * (1 - t_i**2)` are 32 slabs of 16). None when the
        slabs are short (fewer than `MIN_SLAB` monomials on average)."""
        rows = self.monomials.tolist()
        slabs = []
        a = 0
        while a < len(rows):
            b = a + 1
            step = [q - p for p, q in zip(rows[a], rows[b])] if b < len(rows) else None
            if step is not None and all(d in (0, 1) for d in step):
                while b < len(rows) and all(q - p == d for p, q, d in zip(rows[b - 1], rows[b], step)):
                    b += 1
            steps = step if b - a > 1 else [0] * len(rows[a])
            slabs.append((a, b, tuple((c, d == 1) for c, d in zip(rows[a], steps))))
            a = b
        if len(rows) < MIN_SLAB * len(slabs):
            return None
        return tuple(slabs)

    @functools.cached_property
    def blocks(self) -> tuple[tuple[int, int, int, tuple[tuple[int, int, bool], ...]], ...] | None:
        """The polynomials as *blocks*, when all have the same shape: each polynomial's terms are
        runs of slab-like terms (factor `k` of term `t + l` is column `c + l` or `c` for all `l`),
        and run `r` of polynomial `g` is `(t0 + g * dt, L, factors)` with factor `k` column
        `c + g * dc`: block `(t0, dt, L, ((c, dc, steps), ...))`. `u_i = sum_k W[i, k] x_k + b_i`
        for i < n is two blocks: `n` runs of `n` products `W[i, k] x_k`, and `n` runs of one
        `b_i` (times the column of ones). Each block's sums are one contraction over whole
        arrays. None when the polynomials differ in shape."""
        rows = self.monomials.tolist()
        ends = np.append(self.starts[1:], len(rows)).tolist()
        shapes = []
        for a, end in zip(self.starts.tolist(), ends):
            runs = []
            t = a
            while t < end:
                b = t + 1
                step = [q - p for p, q in zip(rows[t], rows[b])] if b < end else None
                if step is not None and all(d in (0, 1) for d in step):
                    while b < end and all(q - p == d for p, q, d in zip(rows[b - 1], rows[b], step)):
                        b += 1
                steps = step if b - t > 1 else [0] * self.degree
                runs.append((t, b - t, tuple(zip(rows[t], (d == 1 for d in steps)))))
                t = b
            shapes.append(runs)
        first = shapes[0]
        blocks = []
        for r, (t0, length, factors) in enumerate(first):
            if len(shapes) > 1:
                t1, l1, f1 = shapes[1][r] if len(shapes[1]) == len(first) else (None, None, None)
                if l1 != length:
                    return None
                dt, dcs = t1 - t0, [c1 - c0 for (c0, _), (c1, _) in zip(factors, f1)]
            else:
                dt, dcs = 0, [0] * len(factors)
            for g, runs in enumerate(shapes):
                if len(runs) != len(first):
                    return None
                t, n, fs = runs[r]
                if (n != length or t != t0 + g * dt
                        or any(c != c0 + g * dc or s != s0 for (c, s), (c0, s0), dc in zip(fs, factors, dcs))):
                    return None
            blocks.append((t0, dt, length, tuple((c, dc, s) for (c, s), dc in zip(factors, dcs))))
        return tuple(blocks)

    @functools.cached_property
    def segment(self) -> np.ndarray:
        """For each monomial, the index of its polynomial."""
        counts = np.diff(np.append(self.starts, len(self.monomials)))
        return np.repeat(np.arange(self.n_polynomials), counts)


#: One-argument functions a code atom may be (`AtomFunctions`): SymPy class names; the NumPy
#: function is the one generated code calls (`_source._FUNCTIONS`).
ELEMENTWISE = frozenset({"exp", "log", "sin", "cos", "tan", "sinh", "cosh", "tanh", "asin", "acos", "atan",
                         "asinh", "acosh", "atanh", "log1p", "expm1", "softplus", "sigmoid"})


@dataclass(frozen=True, eq=False)
class AtomFunctions:
    """The code atoms as one-argument functions of polynomials: `tanh(W @ x + b)`'s atoms are
    `tanh(u_i)`, `u_i = sum_k W[i, k] x_k + b_i`; `sigmoid(A @ x)`'s are `e_i = exp(-u_i)` and
    `1 / (1 + e_i)`. The atoms are computed level by level: level `(atoms, functions, arguments)`
    is the atoms `atoms` (indices into the plan's atoms), atom `atoms[k]` being
    `functions[k](argument k)`, the arguments a `PolynomialStage` over the input columns and the
    atoms of earlier levels: column `n_inputs + r` is the `r`-th atom of the levels' atoms one
    after the other (each level's atoms in the order of their arguments, so that the arguments
    of `1 / (1 + e_i)` read the `e_i` in order). A backend may evaluate the atoms
    this way (each argument block and each function over whole arrays) instead of through
    `EntryPlan.code`, which computes the same atoms entry by entry."""

    #: per level: atom indices, per atom the NumPy code generated code calls ("numpy.tanh",
    #: "_symjac_sigmoid", or "reciprocal" for `1 / a`), and the arguments
    levels: tuple[tuple[tuple[int, ...], tuple[str, ...], PolynomialStage], ...]


@dataclass(frozen=True, eq=False)
class AtomProgram:
    """The code atoms computed without generated code, as whole arrays of table rows, when each is a
    determinant of input entries (`symjac._determinant.det`, above 3 x 3 written out), a
    one-argument function (`ELEMENTWISE`, or the reciprocal) of an input entry or another atom, or
    a one-term product of those:
    `log(det(X))`'s Jacobian at 4 x 4 is 16 cofactor determinants, `det(X)`, `1 / det(X)` and
    the 16 products (`products`). No source is generated or compiled; the values are generated
    code's: each atom's operations are the ones generated code runs (the same NumPy determinant
    helper, `_determinant.numpy_helpers`, on the same entries; `numpy.reciprocal` for `1/x`).

    - `determinants`: per size of matrix, `(atoms, columns)`: the atoms' table columns `(m,)`, and
      the input columns of each one's matrix entries, row by row, `(m, k * k)`: at a point one call
      of the helper for all `m` (gathered as `(k * k, m, points)`), whose operations are
      element-wise (or, above 4 x 4, `numpy.linalg.det` per matrix): the same values as `m` calls,
      which a backend makes at a batch (`backends._numpy._program`);
    - `functions`: in order, `(name, atoms, columns)`: `atoms` (table columns) are the function
      `name` ("numpy.log", "_symjac_sigmoid", "reciprocal", as `AtomFunctions`) of the table
      columns `columns`, all written before (inputs, determinants, earlier functions);
    - `products`: per number of factors, `(atoms, factors, coefs)`: atom `atoms[i]` is the product
      of the columns `factors[i]` (inputs, determinants, functions) left to right, times
      `coefs[i]` (an entry that is one term: `-det(minor)`, `det(minor) * (1 / det(X))`), as a
      stage's one-term polynomial is (`PolynomialStage`), written as an atom.
    """

    n_atoms: int
    determinants: tuple[tuple[np.ndarray, np.ndarray], ...]
    functions: tuple[tuple[str, np.ndarray, np.ndarray], ...]
    products: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...] = ()


@dataclass(frozen=True, eq=False)
class EntryPlan:
    """How a flat entry list is evaluated: the table's parts (module docstring) and, for each
    entry of the list, its column of the table (`take`).

    - `n_inputs`: the inputs' scalar entries (the table's first columns);
    - `code`: generated code for the code atoms, a function of the input entries (`None` if none);
    - `stages`: the polynomial columns, stage by stage (`PolynomialStage`);
    - `constants`: the values of the constant entries (float64, as generated code would fold them);
    - `take`: for each entry of the list, its column of the table;
    - `atom_functions`: the same code atoms as functions of polynomials in the inputs, when every
      atom is one (`AtomFunctions`), else None;
    - `program`: the code atoms without generated code (`AtomProgram`; `code` is then None), or None.
    """

    n_inputs: int
    code: Compiled | None
    stages: tuple[PolynomialStage, ...]
    constants: np.ndarray
    take: np.ndarray
    atom_functions: AtomFunctions | None = None
    program: AtomProgram | None = None

    @functools.cached_property  # the plan is immutable: computed once (read per evaluation)
    def n_atoms(self) -> int:
        if self.program is not None:
            return self.program.n_atoms
        return self.code.n_entries if self.code is not None else 0

    @functools.cached_property
    def n_polynomials(self) -> int:
        return sum(s.n_polynomials for s in self.stages)

    @functools.cached_property
    def degree(self) -> int:
        """The most factors of any monomial (1 without polynomials)."""
        return max((s.degree for s in self.stages), default=1)

    @property
    def offsets(self) -> np.ndarray | None:
        """Every polynomial's constant term, in column order, or None if all are zero."""
        if all(s.offsets is None for s in self.stages):
            return None
        return np.concatenate([s.offsets if s.offsets is not None else np.zeros(s.n_polynomials) for s in self.stages])

    @functools.cached_property
    def n_columns(self) -> int:
        """Columns of the table, the final zero column included."""
        return self.n_inputs + self.n_atoms + self.n_polynomials + len(self.constants) + 1

    @functools.cached_property
    def zero_column(self) -> int:
        return self.n_columns - 1


def _constant_value(expr: sympy.Expr) -> float | None:
    """The float a generated function would return for a constant entry, or None if not finite."""
    if expr.is_Rational or expr.is_Float:  # folding keeps these (a Float at 17 digits: the same value)
        number = float(expr)
        return number if math.isfinite(number) else None
    value = fold_constants(expr)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class _NotFinite(Exception):
    """A constant part of an expression is not a finite float: the expression is a code atom."""


class _Split:
    """Writes expressions as polynomials over columns, registering code atoms and polynomial columns.

    A polynomial is a dict `{monomial: coefficient}`, a monomial a sorted tuple of column keys
    (input index `q < n_inputs`, else a key of `self.columns`); `()` is the constant term. Each
    distinct node is split once (`self.memo`).
    """

    def __init__(self, position: dict, free: dict):
        self.position, self.free = position, free
        self.n_inputs = len(position)
        self.memo: dict = {}  # node -> its polynomial
        self.key_of: dict[str, dict] = {"code": {}, "poly": {}}  # kind -> {node: column key}
        self.columns: dict[int, tuple[str, Any]] = {}  # key -> ("code", node) | ("poly", (node, polynomial))
        self.cofactors: set[int] = set()  # polynomial columns made by `_factor_common`
        self.factored: set[int] = set()  # columns `_factor_common` rewrote as `common * cofactor`

    def _new(self, kind: str, node, value) -> int:
        keys = self.key_of[kind]  # (one dict per kind: no (kind, node) tuple hashed per look-up)
        key = keys.get(node)
        if key is None:
            key = keys[node] = self.n_inputs + len(self.columns)
            self.columns[key] = (kind, value)
        return key

    def code_atom(self, node) -> int:
        return self._new("code", node, node)

    def _constant(self, node) -> bool:
        found = self.free.get(node)
        return not (found if found is not None else node.free_symbols)

    def polynomial(self, node) -> dict:
        """`node` as a polynomial over columns (raises `_NotFinite`)."""
        found = self.memo.get(node)
        if found is not None:
            return found
        if self._constant(node):
            value = _constant_value(node)
            if value is None:
                raise _NotFinite
            result = {(): value} if value != 0.0 else {}
        elif node.is_Symbol and node in self.position:
            result = {(self.position[node],): 1.0}
        elif node.is_Add:
            result = self._add(node)
        elif node.is_Mul:
            result = self._mul(node)
        elif node.is_Pow and node.exp.is_Integer and 1 <= abs(int(node.exp)) <= MAX_DEGREE:
            result = self._pow(node)
        else:
            result = {(self.code_atom(node),): 1.0}
        self.memo[node] = result
        return result

    def _factor(self, node) -> tuple[tuple, float]:
        """`node` as one monomial `(factors, coefficient)`: a sum becomes its own column."""
        try:
            poly = self.polynomial(node)
        except _NotFinite:
            return (self.code_atom(node),), 1.0
        if len(poly) == 1:
            ((monomial, coef),) = poly.items()
            return monomial, coef
        if not poly:
            return (), 0.0
        return (self._new("poly", node, (node, poly)),), 1.0

    def _add(self, node) -> dict:
        if len(node.args) > MAX_MONOMIALS_PER_ENTRY:
            return {(self.code_atom(node),): 1.0}
        result: dict = {}
        for arg in node.args:
            for monomial, coef in self.polynomial(arg).items():
                result[monomial] = result.get(monomial, 0.0) + coef
        if len(result) > MAX_MONOMIALS_PER_ENTRY + 1:
            return {(self.code_atom(node),): 1.0}
        return result

    def _mul(self, node) -> dict:
        constants, others = [], []
        for a in node.args:
            (constants if self._constant(a) else others).append(a)
        coef = 1.0
        if constants:
            value = _constant_value(constants[0] if len(constants) == 1 else sympy.Mul(*constants))
            if value is None:
                raise _NotFinite
            coef = value
        factors: list = []
        for arg in others:
            monomial, c = self._factor(arg)
            factors.extend(monomial)
            coef *= c
        if len(factors) > MAX_DEGREE:
            return {(self.code_atom(node),): 1.0}
        return {tuple(sorted(factors)): coef} if coef != 0.0 else {}

    def _pow(self, node) -> dict:
        k = int(node.exp)
        if k < 0:
            inverse = node if k == -1 else sympy.Pow(node.base, -1)
            return {(self.code_atom(inverse),) * -k: 1.0}
        monomial, coef = self._factor(node.base)
        if len(monomial) * k > MAX_DEGREE:
            return {(self.code_atom(node),): 1.0}
        return {tuple(sorted(monomial * k)): coef**k}

    def code_atoms_of(self, key: int, memo: dict) -> frozenset:
        """The code atoms a column reads, through polynomial columns."""
        found = memo.get(key)
        if found is not None:
            return found
        if key < self.n_inputs:
            result: frozenset = frozenset()
        else:
            kind, value = self.columns[key]
            if kind == "code":
                result = frozenset((key,))
            else:
                result = frozenset().union(*(self.code_atoms_of(c, memo) for m in value[1] for c in m))
        memo[key] = result
        return result


def plan_entries(exprs: Sequence[sympy.Expr], symbols: Sequence[sympy.Symbol], backend: str) -> EntryPlan:
    """The plan of `exprs` (see the module docstring): equal entries are evaluated once, and only
    the code atoms are compiled (for `backend`, as in `compile_entries`), so a Jacobian that is
    polynomial in the inputs compiles no code at all, nor one whose atoms are an `AtomProgram`."""
    position = {s: q for q, s in enumerate(symbols)}
    unique: dict = {}
    first_of = [unique.setdefault(e, len(unique)) for e in exprs]
    free = _dag.has_symbols(unique)  # node -> whether it holds a symbol (all the plan asks)
    opaque = _dag.holds(free, OPAQUE)
    if opaque and backend == "numpy" and _may_be_program(free, position):
        # 1a is skipped: the determinants are table columns of their own (`AtomProgram`), when the
        # plan's atoms then need no generated code at all; else the plan is made again, with 1a
        plan = _plan(exprs, symbols, position, unique, first_of, free, {}, backend, program_only=True)
        if plan is not None:
            return plan
    return _plan(exprs, symbols, position, unique, first_of, free, opaque, backend)


def _may_be_program(free: dict, position: dict) -> bool:
    """Whether the entries' atoms may be an `AtomProgram`, from their distinct nodes `free` (one
    pass, before the split): every `OPAQUE` node is a `det` of input entries, and no node but a sum
    has a sum among its arguments (a sum inside a product is a second stage, `inv(X)`'s 2 x 2
    minors over the determinant; a function of a sum is no function of one column)."""
    for node in free:
        args = node.args
        if isinstance(node, OPAQUE):
            if not all(a in position for a in args):
                return False
        elif args and not node.is_Add and any(a.is_Add for a in args):
            return False
    return True


def _plan(exprs: Sequence[sympy.Expr], symbols: Sequence[sympy.Symbol], position: dict, unique: dict,
          first_of: list, free: dict, opaque: dict, backend: str, *, program_only: bool = False) -> EntryPlan | None:
    """`plan_entries`, with the entries' distinct nodes `unique` (each its index), `first_of` (each
    entry's index in `unique`), `free` and `opaque` found. `program_only`: the plan only if its code
    atoms are an `AtomProgram` (None otherwise)."""
    n_inputs = len(position)
    split = _Split(position, free)

    # 1. Each distinct entry as an input, a constant, or a column (a code atom or a polynomial).
    kinds: list[tuple[str, Any]] = []
    for expr in unique:
        if expr.is_Symbol and expr in position:
            kinds.append(("input", position[expr]))
            continue
        if not free[expr]:
            value = _constant_value(expr)
            if value is not None:
                kinds.append(("constant", value))
                continue
        if opaque and opaque[expr]:  # 1a. see `OPAQUE`
            kinds.append(("column", split.code_atom(expr)))
            continue
        try:
            poly = split.polynomial(expr)
        except _NotFinite:
            kinds.append(("column", split.code_atom(expr)))
            continue
        if program_only and any(c >= n_inputs and split.columns[c][0] == "poly" for m in poly for c in m):
            return None  # a sum inside a product: two stages at least (`inv(X)`), see `AtomProgram`
        if len(poly) == 1:
            ((monomial, coef),) = poly.items()
            if coef == 1.0 and len(monomial) == 1:  # the entry is a column already
                kinds.append(("column", monomial[0]))
                continue
        kinds.append(("column", split._new("poly", expr, (expr, poly))))

    # 2. An entry that needs more than one code atom no other entry uses is one code atom itself
    #    (not for an `AtomProgram`, which has no code to put it in).
    reach: dict = {}
    if not program_only:
        users: dict[int, int] = {}
        for kind, key in kinds:
            if kind == "column":
                for atom in split.code_atoms_of(key, reach):
                    users[atom] = users.get(atom, 0) + 1
        for k, ((kind, key), expr) in enumerate(zip(kinds, unique)):
            if kind == "column" and sum(users[a] == 1 for a in split.code_atoms_of(key, reach)) > 1:
                kinds[k] = ("column", split.code_atom(expr))

    layout = _layout(kinds, split)
    if program_only:
        if max(layout[1].values(), default=0) > 1:
            return None  # see `AtomProgram`: one stage of products at most
        # one stage of products over the inputs and the atoms: no common factor to take out of it
        # into a second stage, and no generated code to weigh it against
        order, stage_of = layout
    elif _code_only(kinds, layout, split, reach):
        # Step 3's choice known before 2b (`inv(X)`, `log(det(X))`): the factoring and both costs skipped.
        kinds = [(kind, key) if kind != "column" else ("column", split.code_atom(expr))
                 for (kind, key), expr in zip(kinds, unique)]
        order, stage_of = _layout(kinds, split)
    else:
        # 2b. A factor common to every monomial of a polynomial is multiplied once, and equal cofactors
        #     are one column (attention's `Q[i, m] * s_ij * (V[j, l] - sum_k s_ik V[k, l])`).
        _factor_common(kinds, split, layout=layout)

        # 3. The table or the code, whichever runs fewer operations: the split as above, or only
        #    polynomials in the inputs themselves and every other entry one code atom (deep polynomial
        #    DAGs such as `inv(X)`'s cofactors share more in generated code's cse than in a table).
        order, stage_of = _layout(kinds, split)
        plain = [
            (kind, key) if kind != "column" or _reads_inputs_only(key, split) else ("column", split.code_atom(expr))
            for (kind, key), expr in zip(kinds, unique)
        ]
        if plain != kinds:
            plain_order, plain_stage_of = _layout(plain, split)
            if _cost(plain_order, plain_stage_of, split, free) <= _cost(order, stage_of, split, free):
                kinds, order, stage_of = plain, plain_order, plain_stage_of

    if program_only:
        # one-term polynomials (`-det(minor)`, `det(minor) / det(X)`) are the program's products:
        # as generated code computes them, row by row, with no stage to transpose and gather
        for key in order:
            if stage_of[key] == 1:
                poly = split.columns[key][1][1]
                if len(poly) == 1 and () not in poly:
                    stage_of[key] = 0
    atoms = [key for key in order if stage_of[key] == 0]
    if program_only:
        # the atoms no entry is first, then the entries' in their order (the program computes them
        # phase by phase, whatever their columns): the output is then runs of consecutive columns
        rank: dict[int, int] = {}
        for k, (kind, key) in enumerate(kinds):
            if kind == "column":
                rank.setdefault(key, k)
        atoms.sort(key=lambda key: rank.get(key, -1))
    n_stages = max(stage_of.values(), default=0)
    program = _program(atoms, split) if program_only and n_stages <= 1 else None
    if program_only and program is None:
        return None
    final: dict[int, int] = {q: q for q in range(n_inputs)}
    for key in atoms:
        final[key] = len(final)
    by_stage: list[list[int]] = [[key for key in order if stage_of[key] == s] for s in range(1, n_stages + 1)]
    constants = [v for kind, v in kinds if kind == "constant"]
    pad = len(final) + sum(len(keys) for keys in by_stage) + len(constants) + 1  # n_columns
    stages = []
    for keys in by_stage:
        width = len(final)
        stages.append(_stage(width, pad, [split.columns[key][1][1] for key in keys], final))
        for key in keys:
            final[key] = len(final)
    base = len(final)
    column_of_unique = []
    counter = 0
    for kind, value in kinds:
        if kind == "input":
            column_of_unique.append(value)
        elif kind == "constant":
            column_of_unique.append(base + counter)
            counter += 1
        else:
            column_of_unique.append(final[value])
    nodes = [split.columns[key][1] for key in atoms]
    functions = _atom_functions(nodes, position, free, pad) if atoms and program is None else None
    # code a backend may never run (it computes `AtomFunctions` from blocks) is compiled when first used
    code = compile_entries(nodes, symbols, backend, lazy=functions is not None) if atoms and program is None else None
    return EntryPlan(
        n_inputs=n_inputs,
        code=code,
        stages=tuple(stages),
        constants=np.asarray(constants, dtype=np.float64),
        take=np.asarray(column_of_unique, dtype=np.int64)[np.asarray(first_of, dtype=np.int64)]
        if exprs else np.zeros(0, dtype=np.int64),
        atom_functions=functions,
        program=program,
    )


def _program(atoms: list[int], split: _Split) -> AtomProgram | None:
    """The code atoms `atoms` (keys of `split.columns`, in table order) as an `AtomProgram`, when
    each is a `det` of input entries, or an `ELEMENTWISE` function or the reciprocal of an input
    entry, of another atom, or of a `det` of input entries (appended to `atoms`: `1 / det(X)` reads
    `det(X)`, a column of its own); else None."""
    position, n_inputs = split.position, split.n_inputs
    by_size: dict[int, tuple[list, list]] = {}
    reads: dict[int, tuple[str, int]] = {}  # atom's column -> (function, the column it reads)
    column_of = {split.columns[key][1]: n_inputs + j for j, key in enumerate(atoms) if split.columns[key][0] == "code"}
    of_key = {key: n_inputs + j for j, key in enumerate(atoms)}
    by_degree: dict[int, tuple[list, list, list]] = {}
    k = 0
    while k < len(atoms):  # (`atoms` grows by the determinants the functions read)
        kind, node = split.columns[atoms[k]]
        own = n_inputs + k
        k += 1
        if kind == "poly":  # one term of the stage: a product of inputs and atoms, times a number
            ((monomial, coef),) = node[1].items()
            factors = [c if c < n_inputs else of_key.get(c) for c in monomial]
            if None in factors:  # pragma: no cover - a stage reads only inputs and atoms
                return None
            found, rows, coefs = by_degree.setdefault(len(factors), ([], [], []))
            found.append(own)
            rows.append(factors)
            coefs.append(coef)
            continue
        if isinstance(node, OPAQUE):
            columns = [position.get(a) for a in node.args]
            if None in columns:
                return None
            found, rows = by_size.setdefault(len(columns), ([], []))
            found.append(own)
            rows.append(columns)
            continue
        kind = type(node).__name__
        if kind in ELEMENTWISE and len(node.args) == 1:
            name, argument = _source_functions()[kind][0], node.args[0]
        elif node.is_Pow and node.exp == -1:
            name, argument = "reciprocal", node.base
        else:
            return None
        column = position.get(argument, column_of.get(argument))
        if column is None:
            if not isinstance(argument, OPAQUE):
                return None
            atoms.append(split.code_atom(argument))
            column = column_of[argument] = n_inputs + len(atoms) - 1
        reads[own] = (name, column)
    # the functions level by level: each reads only inputs, determinants and earlier levels
    done = {column for found, _ in by_size.values() for column in found}
    functions = []
    while reads:
        ready = sorted((name, atom, column) for atom, (name, column) in reads.items()
                       if column < n_inputs or column in done)
        if not ready:  # pragma: no cover - an atom is never its own argument
            return None
        for name in dict.fromkeys(name for name, _, _ in ready):
            level = [(atom, column) for other, atom, column in ready if other == name]
            functions.append((name, np.asarray([a for a, _ in level], dtype=np.int64),
                              np.asarray([c for _, c in level], dtype=np.int64)))
        for _, atom, _ in ready:
            done.add(atom)
            del reads[atom]
    return AtomProgram(
        n_atoms=len(atoms),
        determinants=tuple((np.asarray(found, dtype=np.int64), np.asarray(rows, dtype=np.int64))
                           for found, rows in by_size.values()),
        functions=tuple(functions),
        products=tuple((np.asarray(found, dtype=np.int64), np.asarray(rows, dtype=np.int64).reshape(len(found), degree),
                        np.asarray(coefs, dtype=np.float64)) for degree, (found, rows, coefs) in by_degree.items()),
    )


def _source_functions() -> dict:
    from ._source import _FUNCTIONS

    return _FUNCTIONS


def _atom_functions(nodes: list, position: dict, free: dict, pad: int) -> AtomFunctions | None:
    """The atoms `nodes` as `AtomFunctions`, when each is an `ELEMENTWISE` function or the
    reciprocal of a polynomial in the inputs and other atoms (no sum inside a product, no other
    non-polynomial part); else None."""
    from ._source import _FUNCTIONS

    n_inputs = len(position)
    index_of = {node: j for j, node in enumerate(nodes)}
    split = _Split(position, free)
    functions, polys = [], []
    for node in nodes:
        kind = type(node).__name__
        if kind in ELEMENTWISE and len(node.args) == 1:
            name, argument = _FUNCTIONS[kind][0], node.args[0]
        elif node.is_Pow and node.exp == -1:
            name, argument = "reciprocal", node.base
        else:
            return None
        try:
            poly = split.polynomial(argument)
        except _NotFinite:
            return None
        if not any(poly):  # a constant argument
            return None
        functions.append(name)
        polys.append(poly)
    column: dict[int, int] = {q: q for q in range(n_inputs)}
    for key, (kind, value) in split.columns.items():
        if kind != "code" or value not in index_of:  # a sum inside a product, or a new atom
            return None
        column[key] = n_inputs + index_of[value]
    polys = [dict(sorted({tuple(sorted(column[c] for c in m)): v for m, v in poly.items()}.items())) for poly in polys]
    # an atom's level: one past the atoms its argument reads (terms by column: `W[i, k] x_k` in
    # k order, one block)
    level: dict[int, int] = {}
    for _ in range(len(nodes) + 1):
        for j, poly in enumerate(polys):
            reads = [level.get(c - n_inputs) for m in poly for c in m if c >= n_inputs]
            if j not in level and all(r is not None for r in reads):
                level[j] = 1 + max(reads, default=0)
        if len(level) == len(nodes):
            break
    else:
        return None  # atoms that read one another in a circle
    identity = {c: c for c in range(n_inputs + len(nodes))}
    rank: dict[int, int] = {}  # atom -> its place in the levels' order
    levels = []
    for k in sorted(set(level.values())):
        members = [j for j in range(len(nodes)) if level[j] == k]
        own = {j: dict(sorted({tuple(sorted(c if c < n_inputs else n_inputs + rank[c - n_inputs] for c in m)): v
                               for m, v in polys[j].items()}.items())) for j in members}
        members.sort(key=lambda j: list(own[j]))
        for j in members:
            rank[j] = len(rank)
        levels.append((tuple(members), tuple(functions[j] for j in members),
                       _stage(n_inputs + len(nodes), pad, [own[j] for j in members], identity)))
    return AtomFunctions(tuple(levels))


def _code_only(kinds: list, layout: tuple, split: _Split, reach: dict) -> bool:
    """Whether step 3 of `plan_entries` will make every column entry one code atom, known before
    the factoring: the split is more than `MAX_STAGES` polynomial stages deep (`_cost` is infinite
    for it, factored or not: `_depth` is the depth without the factoring), and every column reads
    a code atom (so none is a polynomial of the inputs alone, before or after the factoring)."""
    return max(layout[1].values(), default=0) > MAX_STAGES and all(
        kind != "column" or split.code_atoms_of(key, reach) for kind, key in kinds
    )


def _layout(kinds: list, split: _Split) -> tuple[list[int], dict[int, int]]:
    """The columns the entries read, dependencies first, and each one's stage (0 for code atoms;
    a polynomial comes one stage after every column it reads)."""
    n_inputs = split.n_inputs
    stage_of: dict[int, int] = {}
    order: list[int] = []

    def visit(root: int) -> None:
        stack = [(root, False)]
        while stack:
            key, done = stack.pop()
            if key < n_inputs or (key in stage_of and not done):
                continue
            kind, value = split.columns[key]
            if kind == "code":
                stage_of[key] = 0
                order.append(key)
                continue
            reads = {c for m in value[1] for c in m}
            if done:
                if key not in stage_of:
                    stage_of[key] = 1 + max((stage_of.get(c, 0) for c in reads), default=0)
                    order.append(key)
                continue
            stack.append((key, True))
            stack.extend((c, False) for c in reads if c >= n_inputs and c not in stage_of)

    for kind, key in kinds:
        if kind == "column":
            visit(key)
    return order, stage_of


def _reads_inputs_only(key: int, split: _Split) -> bool:
    """The column is a polynomial of the inputs alone (through cofactor columns of `_factor_common`)."""
    if key < split.n_inputs:
        return True
    kind, value = split.columns[key]
    return kind == "poly" and all(
        c < split.n_inputs or (c in split.cofactors and _reads_inputs_only(c, split)) for m in value[1] for c in m
    )


def _common_factor(poly: dict) -> tuple:
    """The factors (with repetition) every monomial of `poly` has, sorted; `()` if none."""
    monomials = iter(poly)
    common = next(monomials)
    for monomial in monomials:
        common = _intersection(common, monomial)
        if not common:
            return ()
    return common


def _intersection(a: tuple, b: tuple) -> tuple:
    """The common factors of two sorted monomials (a multiset intersection)."""
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            out.append(a[i])
            i += 1
            j += 1
        elif a[i] < b[j]:
            i += 1
        else:
            j += 1
    return tuple(out)


def _without(monomial: tuple, factors: tuple) -> tuple:
    """A sorted monomial less the sorted `factors` (each of which it has)."""
    out = []
    j = 0
    for c in monomial:
        if j < len(factors) and factors[j] == c:
            j += 1
        else:
            out.append(c)
    return tuple(out)


def _factor_common(kinds: list, split: _Split, *, layout: tuple | None = None) -> None:
    """Rewrite, in `split.columns`, each polynomial `c * (m_1 + m_2 + ...)` whose monomials share
    the factors `c` as the monomial `c * r`, `r` a cofactor column (`split.cofactors`) shared by
    every polynomial with the same cofactor: the formula's operations by the distributive law, `c`
    multiplied once instead of once per term. The rewritten column is in `split.factored`.
    `layout`: `_layout(kinds, split)` when the caller has it already."""
    order, _ = layout if layout is not None else _layout(kinds, split)
    for key in order:
        kind, value = split.columns[key]
        if kind != "poly":
            continue
        node, poly = value
        poly = _inline_factored(poly, split)
        if len(poly) < 2 or () in poly:
            split.columns[key] = ("poly", (node, poly))
            continue
        common = _common_factor(poly)
        if not common:
            split.columns[key] = ("poly", (node, poly))
            continue
        inner = {_without(m, common): c for m, c in poly.items()}
        inner_key = split._new("poly", ("cofactor", frozenset(inner.items())), (None, inner))
        split.cofactors.add(inner_key)
        split.factored.add(key)
        split.columns[key] = ("poly", (node, {tuple(sorted(common + (inner_key,))): 1.0}))


def _inline_factored(poly: dict, split: _Split) -> dict:
    """`poly` with each factor that `_factor_common` rewrote as one monomial `c * r` replaced by
    those factors (a product regrouped), within `MAX_DEGREE`; terms made equal are summed."""
    if not split.factored or not any(c in split.factored for m in poly for c in m):
        return poly
    result: dict = {}
    for monomial, coef in poly.items():
        factors: list = []
        for c in monomial:
            if c in split.factored:
                ((inner, _),) = split.columns[c][1][1].items()
                factors.extend(inner)
            else:
                factors.append(c)
        new = tuple(sorted(factors)) if len(factors) <= MAX_DEGREE else monomial
        result[new] = result.get(new, 0.0) + coef
    return {m: c for m, c in result.items() if c != 0.0}


def _depth(order: list[int], stage_of: dict[int, int], split: _Split) -> int:
    """The polynomial stages the layout would have without `_factor_common`: a factored column
    `c * r` is as deep as the polynomial it replaces, `max(1 + depth(c), depth(r))`."""
    depth: dict[int, int] = {}

    def of(c: int) -> int:
        return depth.get(c, 0) if c >= split.n_inputs else 0

    for key in order:
        if not stage_of[key]:
            depth[key] = 0
            continue
        poly = split.columns[key][1][1]
        if key in split.factored:
            ((monomial, _),) = poly.items()
            rest = list(monomial)
            cofactor = next(c for c in rest if c in split.cofactors)
            rest.remove(cofactor)
            depth[key] = max([of(cofactor)] + [1 + of(c) for c in rest])
        else:
            depth[key] = 1 + max((of(c) for m in poly for c in m), default=0)
    return max(depth.values(), default=0)


def _cost(order: list[int], stage_of: dict[int, int], split: _Split, free: dict) -> int:
    """Whole-array operations a layout runs: per monomial its factors (a gather and a product
    each) and one for the sum; for the code atoms, one per operation of their DAG (each distinct
    non-constant node once, as cse computes it)."""
    table = sum(len(m) + 1 for key in order if stage_of[key] for m in split.columns[key][1][1])
    atoms = [split.columns[key][1] for key in order if not stage_of[key]]
    code = 0
    for node in _dag.postorder(atoms):
        symbols = free.get(node)
        if node.args and (symbols if symbols is not None else node.free_symbols):
            code += max(1, len(node.args) - 1)
    if max(stage_of.values(), default=0) > MAX_STAGES and _depth(order, stage_of, split) > MAX_STAGES:
        return math.inf
    return TABLE_WEIGHT * table + code


def _stage(width: int, pad: int, polys: list[dict], final: dict[int, int]) -> PolynomialStage:
    """The stage of `polys` (each over columns before `width`), in final column numbers."""
    terms: list[list[tuple[tuple, float]]] = []
    offsets = []
    for poly in polys:
        own = [(m, c) for m, c in poly.items() if m]
        if not own:  # every monomial cancelled: one zero term keeps the segmented sum simple
            own = [((), 0.0)]
        terms.append(own)
        offsets.append(poly.get((), 0.0))
    degree = max((len(m) for own in terms for m, _ in own), default=1) or 1
    flat = [t for own in terms for t in own]
    # one array from nested lists (not a row assigned at a time: 16 terms took 30 us that way)
    rows = [[final[c] for c in m] + [pad] * (degree - len(m)) for m, _ in flat]
    monomials = np.array(rows, dtype=np.int64).reshape(len(flat), degree)
    starts = list(itertools.accumulate([len(own) for own in terms[:-1]], initial=0))
    return PolynomialStage(
        width=width,
        pad=pad,
        monomials=monomials,
        coefs=np.array([c for _, c in flat], dtype=np.float64),
        starts=np.array(starts, dtype=np.int64),
        offsets=np.array(offsets, dtype=np.float64) if any(v != 0.0 for v in offsets) else None,
    )
