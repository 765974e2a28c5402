"""Determinants: written out for small matrices, one SymPy node (`det`) for larger ones.

Up to `EXPANSION_MAX` x `EXPANSION_MAX` a determinant is its cofactor expansion (`expansion`: a
polynomial in the entries, each minor built once, `_Minors`); 3 x 3 is 6 products of 3 entries.
From 4 x 4 on, the expansion has n! products (24 at 4 x 4, 720 at 6 x 6) and every derivative of it
is a sum of (n - 1)! more: building, differentiating and printing them cost more than the matrix
work they stand for. There the determinant is one node, `det(a_00, a_01, ..., a_nn)` (the entries
row by row), exact all the same:

- its derivative by entry (i, j) is the cofactor, `(-1)**(i + j)` times the determinant of the
  matrix without row i and column j (`det.fdiff`): again a node down to 3 x 3, a 2 x 2 one written
  out (`MINOR_EXPANSION_MAX`);
- it is real when its entries are, finite when they are; a matrix of numbers gives the exact number,
  a triangular one the product of its diagonal, one with a zero row or column 0 (`det.eval`);
- NumPy code computes it over whole arrays: 3 x 3 and 4 x 4 written out, larger ones
  `numpy.linalg.det` of the entries stacked into matrices (LU with partial pivoting: backward
  stable, where the expanded polynomial cancels); torch code in torch's elementary operations only
  (`TORCH_EXPANSION_MAX`), so that autograd's compositions test torch's elementary rules; mpmath
  (`_arbitrate`) as `mpmath.det` at the working precision;
- its LaTeX is `\\det` of the matrix (`det._latex`), its running error bound has its own rule
  (`symjac._tolerance.running_error`).

`expanded(e)` writes every node of `e` out as its cofactor expansion (for comparisons with the
polynomial and for SymPy's `simplify`).
"""

from __future__ import annotations

import functools
import math

import sympy
from sympy.core.basic import Basic
from sympy.core.parameters import global_parameters

from ._products import product, total
from ._stable import _torch_like, prec_to_dps

__all__ = ["EXPANSION_MAX", "det", "determinant", "expanded", "DETERMINANT_FUNCTIONS",
           "numpy_helpers", "torch_helpers", "MPMATH_HELPERS"]

#: Square matrices up to this size have their determinant written out (cofactor expansion, each
#: minor built once); larger ones are one `det` node.
EXPANSION_MAX = 3
#: The minors of a larger matrix (a `det` node's derivatives, the cofactors of `inv` and `solve`)
#: are written out up to this size only, nodes above: the n**2 cofactors of a 4 x 4 matrix are 16
#: nodes of 9 entries each, not 16 sums of 6 products (and their derivatives 2 x 2 expansions).
MINOR_EXPANSION_MAX = 2


def is_zero(e: sympy.Expr) -> bool:
    """`e == 0` (SymPy's: 0.0 too) without sympifying 0 for every entry that is not a number."""
    return e is sympy.S.Zero or (getattr(e, "is_Number", True) and e == 0)


def negative(e: sympy.Expr) -> sympy.Expr:
    """`-e`, the node SymPy builds. For a sum, `-e` is `Mul(-1, e)`, which `Mul.flatten` distributes
    (`Add(*(-t for t in e.args))`, each `-t` by `_keep_coeff`'s `-t`): that sum is built here by
    `_products.total`, which skips `Add.flatten` where the terms are canonical already (they are:
    negated terms of a canonical sum)."""
    if e.is_Add and global_parameters.distribute and e.is_commutative:
        return _negated_sum(e)
    return -e


@functools.lru_cache(maxsize=4096)
def _negated_sum(e: sympy.Add) -> sympy.Expr:
    """`negative` of a sum, cached: the cofactors of every `det` node negate the same 2 x 2 minors
    (an `inv` at 4 x 4: 144 negations of 36 distinct minors)."""
    return total([-t for t in e.args])


class _Minors:
    """Determinants of the square submatrices of `rows` (a list of lists of SymPy expressions),
    each by cofactor expansion along its first row and memoised by (rows, columns): the minors
    shared by several determinants (every cofactor of the adjugate) are built once. Submatrices
    larger than `limit` (default `EXPANSION_MAX`; None: none) are `det` nodes."""

    def __init__(self, rows: list, limit: int | None = EXPANSION_MAX):
        self.a = rows
        self.limit = limit
        self.memo: dict = {}

    def __call__(self, rows: tuple, cols: tuple) -> sympy.Expr:
        if len(rows) == 1:
            return self.a[rows[0]][cols[0]]
        key = (rows, cols)
        found = self.memo.get(key)
        if found is None:
            if self.limit is not None and len(rows) > self.limit:
                found = det.of([self.a[r][c] for r in rows for c in cols])
            elif len(rows) == 2:
                (r, s), (c, d) = rows, cols
                found = _two(self.a[r][c], self.a[r][d], self.a[s][c], self.a[s][d])
            else:
                top, rest = self.a[rows[0]], rows[1:]
                terms = []
                for p, c in enumerate(cols):
                    entry = top[c]
                    if is_zero(entry):  # structural zeros: a sparse or triangular matrix expands less
                        continue
                    minor = self(rest, cols[:p] + cols[p + 1:])
                    if is_zero(minor):
                        continue
                    term = product(entry, minor)  # sympy.Mul(entry, minor), without Mul.flatten where it is plain
                    terms.append(-term if p % 2 else term)
                found = total(terms)  # sympy.Add(*terms)
            self.memo[key] = found
        return found

    def cofactor(self, i: int, j: int) -> sympy.Expr:
        """`(-1)**(i + j)` times the determinant of the matrix without row i and column j."""
        n = len(self.a)
        if n == 1:
            return sympy.S.One
        every = tuple(range(n))
        m = self(every[:i] + every[i + 1:], every[:j] + every[j + 1:])
        return negative(m) if (i + j) % 2 else m


@functools.lru_cache(maxsize=4096)
def _two(a, b, c, d) -> sympy.Expr:
    """`a d - b c` as the expansion builds it (`_Minors`), cached by its four entries: the 3 x 3
    `det` nodes of a larger matrix share their 2 x 2 minors (36 distinct ones among the 144
    cofactors of `inv(X)`'s 16 nodes at 4 x 4)."""
    terms = []
    if not is_zero(a) and not is_zero(d):
        terms.append(product(a, d))
    if not is_zero(b) and not is_zero(c):
        terms.append(-product(b, c))
    return total(terms)


def minors_of(rows: list) -> _Minors:
    """The minors of the matrix `rows`, for its cofactors: written out up to `EXPANSION_MAX` for a
    matrix that is itself written out, up to `MINOR_EXPANSION_MAX` for a larger one."""
    return _Minors(rows, EXPANSION_MAX if len(rows) <= EXPANSION_MAX else MINOR_EXPANSION_MAX)


def expansion(rows: list) -> sympy.Expr:
    """The cofactor expansion of the determinant of `rows` (a list of n lists of n expressions;
    empty: 1), written out at every size."""
    n = len(rows)
    return _Minors(rows, None)(tuple(range(n)), tuple(range(n))) if n else sympy.S.One


def determinant(rows: list) -> sympy.Expr:
    """The determinant of `rows` (a list of n lists of n SymPy expressions; n = 0 gives 1): its
    expansion up to `EXPANSION_MAX`, a `det` node above (or what `det.eval` makes of it)."""
    n = len(rows)
    if n == 0:
        return sympy.S.One
    if n <= EXPANSION_MAX:
        return _Minors(rows)(tuple(range(n)), tuple(range(n)))
    return det.of([e for row in rows for e in row])


def _rows(args: tuple) -> list:
    n = math.isqrt(len(args))
    return [list(args[i * n:(i + 1) * n]) for i in range(n)]


class det(sympy.Function):
    """The determinant of the n x n matrix whose entries, row by row, are the n**2 arguments (n >
    `MINOR_EXPANSION_MAX`; smaller ones are written out when built). Its derivatives are its
    cofactors."""

    # The entries are SymPy's commutative scalars (symjac builds no others): said once for the class,
    # not deduced per node from every entry.
    is_commutative = True

    @classmethod
    def eval(cls, *args):
        n = math.isqrt(len(args))
        if n * n != len(args) or n == 0:
            raise TypeError(f"det: needs the n**2 entries of a square matrix, received {len(args)} arguments")
        if n <= MINOR_EXPANSION_MAX:  # a node is at least 3 x 3
            return _Minors(_rows(args), None)(tuple(range(n)), tuple(range(n)))
        if not any(a.is_Number for a in args):  # no zero entry: none of the rules below applies
            return None
        rows = _rows(args)
        if all(a.is_Rational for a in args):  # exact numbers: the exact determinant
            return sympy.Matrix(rows).det(method="bareiss")
        if any(all(is_zero(e) for e in row) for row in rows) or any(
            all(is_zero(rows[i][j]) for i in range(n)) for j in range(n)
        ):
            return sympy.S.Zero
        lower = all(is_zero(rows[i][j]) for i in range(n) for j in range(i + 1, n))
        upper = all(is_zero(rows[i][j]) for i in range(n) for j in range(i))
        if lower or upper:  # triangular: the product of the diagonal
            return sympy.Mul(*(rows[i][i] for i in range(n)))
        return None

    @classmethod
    def of(cls, entries: list) -> sympy.Expr:
        """`det(*entries)` for SymPy expressions `entries`, without SymPy's `Function.__new__`
        (sympify, the cache, `nargs`: 48 us of a 3 x 3 node, against 1 us) where `eval` leaves the
        node as it is and no entry is a number (Floats only would be evaluated by SymPy)."""
        if any(e.is_Number for e in entries):
            return cls(*entries)
        n = math.isqrt(len(entries))
        if n * n != len(entries) or n <= MINOR_EXPANSION_MAX:
            return cls.eval(*entries)  # (raises, or the written-out expansion)
        # `eval` of entries none of which is a number leaves the node as it is
        node = Basic.__new__(cls, *entries)
        node.nargs = sympy.S.Naturals0  # as `Application.__new__` sets it
        return node

    @property
    def size(self) -> int:
        """n, the matrix's number of rows."""
        return math.isqrt(len(self.args))

    def cofactors(self) -> _Minors:
        """This node's minors (`minors_of`), one `_Minors` per node: shared by its n**2 derivatives."""
        found = self.__dict__.get("_minors")
        if found is None:
            found = self.__dict__["_minors"] = minors_of(_rows(self.args))
        return found

    def fdiff(self, argindex=1):
        i, j = divmod(argindex - 1, self.size)
        return self.cofactors().cofactor(i, j)

    def _eval_is_extended_real(self):
        return True if all(a.is_extended_real for a in self.args) else None

    def _eval_is_finite(self):
        return True if all(a.is_finite for a in self.args) else None

    def _eval_evalf(self, prec):
        import mpmath

        values = [a.evalf(prec_to_dps(prec) + 5) for a in self.args]
        if not all(v.is_Number for v in values):
            return None
        with mpmath.workprec(prec + 20):
            n = self.size
            m = mpmath.matrix(n, n)
            for k, v in enumerate(values):
                m[k // n, k % n] = mpmath.mpf(v._to_mpmath(prec + 20)) if v.is_real else mpmath.mpc(v._to_mpmath(prec + 20))
            value = mpmath.det(m)
        return sympy.Float(value, prec_to_dps(prec)) if not isinstance(value, mpmath.mpc) else sympy.sympify(value)

    def _eval_rewrite_as_Add(self, *args, **kwargs):
        return expansion(_rows(args))

    def _latex(self, printer, exp=None):
        rows = _rows(self.args)
        body = r" \\ ".join(" & ".join(printer._print(e) for e in row) for row in rows)
        text = r"\det\begin{pmatrix}" + body + r"\end{pmatrix}"
        return text if exp is None else rf"\left({text}\right)^{{{exp}}}"


def expanded(e: sympy.Expr) -> sympy.Expr:
    """`e` with every `det` node written out as its cofactor expansion."""
    return e.replace(lambda node: isinstance(node, det), lambda node: expansion(_rows(node.args)))


#: symjac's determinant node, as `_budget.SUPPORTED_FUNCTIONS` and `_source.CODE_NODES` list it.
DETERMINANT_FUNCTIONS = (det,)


# --------------------------------------------------------------------------- code


def _np_det3(a, b, c, d, e, f, g, h, i):
    return a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)


def _np_det4(*x):
    # the 2 x 2 minors of rows 2 and 3 once, then rows 1 and 0 (Laplace)
    m01, m02, m03 = x[8] * x[13] - x[9] * x[12], x[8] * x[14] - x[10] * x[12], x[8] * x[15] - x[11] * x[12]
    m12, m13, m23 = x[9] * x[14] - x[10] * x[13], x[9] * x[15] - x[11] * x[13], x[10] * x[15] - x[11] * x[14]
    c0 = x[5] * m23 - x[6] * m13 + x[7] * m12
    c1 = x[4] * m23 - x[6] * m03 + x[7] * m02
    c2 = x[4] * m13 - x[5] * m03 + x[7] * m01
    c3 = x[4] * m12 - x[5] * m02 + x[6] * m01
    return x[0] * c0 - x[1] * c1 + x[2] * c2 - x[3] * c3


def _np_det(*args):
    """The determinant of the matrices whose entries (row by row) are `args` (arrays of one batch
    shape, or numbers): 3 x 3 and 4 x 4 written out over whole arrays (a few element-wise
    operations, where LAPACK's per-matrix calls cost 5-10x more at a batch of 1,000; within the
    running error bound of `_tolerance.running_error`), larger ones `numpy.linalg.det` of the
    stacked matrices (LU with partial pivoting)."""
    import numpy as np

    if len(args) == 9:
        return _np_det3(*args)
    if len(args) == 16:
        return _np_det4(*args)
    n = math.isqrt(len(args))
    dtype = np.result_type(*args)  # Python numbers beside float32 arrays keep float32 (NEP 50)
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=dtype) for a in args))
    stacked = np.stack(arrays, axis=-1)
    return np.linalg.det(stacked.reshape(stacked.shape[:-1] + (n, n)))


def numpy_helpers() -> dict:
    """Names the printed NumPy code calls (`_codegen`)."""
    return {"_symjac_det": _np_det}


#: The generated torch code computes determinants up to this size by their expansion over shared
#: minors (2**n minors, division-free, exact at singular matrices), larger ones by Gaussian
#: elimination with partial pivoting: both in torch's elementary operations only, so that every
#: composition of autograd (forward over forward, `vmap(jacfwd)`) runs torch's elementary rules,
#: not `torch.linalg.det`'s (whose forward-over-forward and `vmap(jacfwd)` are wrong in torch 2.13:
#: docs/findings.md), as the written-out polynomials did.
TORCH_EXPANSION_MAX = 8


def _torch_det(*args):
    """The determinant of the matrices whose entries (row by row) are `args` (tensors of one batch
    shape, or numbers), in torch's elementary operations (`TORCH_EXPANSION_MAX`)."""
    import torch

    x = _torch_like(args)  # numbers as tensors of the tensors' dtype and device
    n = math.isqrt(len(args))
    if n == 3:
        return _np_det3(*x)
    if n == 4:
        return _np_det4(*x)
    if n <= TORCH_EXPANSION_MAX:
        return _expanded_values(x, n)
    stacked = torch.stack(torch.broadcast_tensors(*x), dim=-1)
    return _eliminated(stacked.reshape(stacked.shape[:-1] + (n, n)))


def _expanded_values(x: list, n: int):
    """The cofactor expansion of the determinant of the entries `x` (row by row), each minor of the
    last rows computed once."""
    memo: dict = {}

    def minor(row: int, cols: tuple):
        if row == n - 1:
            return x[row * n + cols[0]]
        found = memo.get(cols)
        if found is None:
            found = None
            for p, c in enumerate(cols):
                term = x[row * n + c] * minor(row + 1, cols[:p] + cols[p + 1:])
                found = term if found is None else (found - term if p % 2 else found + term)
            memo[cols] = found
        return found

    return minor(0, tuple(range(n)))


def _eliminated(a):
    """det of the matrices `a` (`(..., n, n)`) by Gaussian elimination with partial pivoting, in
    elementary operations (a zero pivot gives 0: its column below is zero too)."""
    import torch

    n = a.shape[-1]
    value = torch.ones(a.shape[:-2], dtype=a.dtype, device=a.device)
    for k in range(n):
        pivot_row = k + torch.argmax(a[..., k:, k].abs(), dim=-1)  # (...,)
        rows = torch.arange(n, device=a.device).expand(a.shape[:-2] + (n,))
        swapped = torch.where(rows == k, pivot_row[..., None], torch.where(rows == pivot_row[..., None], k, rows))
        a = torch.gather(a, -2, swapped[..., None].expand(a.shape))
        pivot = a[..., k, k]
        value = value * torch.where(pivot_row == k, pivot, -pivot)
        safe = torch.where(pivot == 0, torch.ones_like(pivot), pivot)
        below = a[..., k + 1:, :] - (a[..., k + 1:, k] / safe[..., None])[..., None] * a[..., k:k + 1, :]
        a = torch.cat([a[..., :k + 1, :], below], dim=-2)
    return value


def torch_helpers() -> dict:
    """Names the printed torch code calls (`_codegen`)."""
    return {"_symjac_det": _torch_det}


def _mp_det(*args):
    import mpmath

    n = math.isqrt(len(args))
    return mpmath.det(mpmath.matrix([list(args[i * n:(i + 1) * n]) for i in range(n)]))


#: Names the mpmath code of `_arbitrate` calls (SymPy prints the node by its name).
MPMATH_HELPERS = {"det": _mp_det}
