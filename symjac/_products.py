"""`a * b` as SymPy builds it, without `Mul.flatten` where the product is canonical already.

Differentiation builds one product per Jacobian entry (`exp(a_i) * -exp(a_j)` for every pair of a
softmax), and SymPy's `Mul.flatten` spends most of a small build there: it re-derives the
coefficient, the powers of every factor and their grouping by base, for factors that share no base.
`product(a, b)` follows `Mul.flatten`'s steps for two factors and builds the node itself
(`Mul._from_args`) only on the path where every step is the identity or a plain re-assembly: numbers
multiplied into the coefficient, every other factor commutative, factors with one base and exponent
term combined by adding their exponents' rational coefficients (`_gather`: `1/d * 1/d` is `d**-2`),
no number-based power, no `I`, no infinity, no distribution of a number over an `Add`; the factors
sorted by SymPy's order (`compare`, `Basic.compare`'s answer with the class order looked up once).
On every other path it returns `a * b` itself. The result is the node SymPy's `a * b` gives (equal, same
arguments in the same order); tests/test_products.py compares the two over a corpus that reaches each
bail-out.
"""

from __future__ import annotations

import functools

import sympy
from sympy.core.basic import Basic, _cmp_name
from sympy.core.parameters import global_parameters
from sympy.matrices.expressions import MatrixExpr
from sympy.tensor.tensor import TensExpr

__all__ = ["product", "product_all", "total"]

_S = sympy.S
_MUL = sympy.Mul
_ADD = sympy.Add
_POW = sympy.Pow
_EXPR = sympy.Expr
_POSTPROCESSED = Basic._constructor_postprocessor_mapping  # {MatrixExpr: ...} in plain SymPy
_SPECIAL_TERMS = (MatrixExpr, TensExpr)  # Add.flatten's own branches for them
_KNOWN_POSTPROCESSED = len(_POSTPROCESSED)  # classes are only ever added to it


def product(a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    """`a * b`, the same node SymPy builds (see the module's docstring for when it is cheaper)."""
    one = _S.One
    if not (isinstance(a, _EXPR) and isinstance(b, _EXPR)):
        return a * b
    if a is one:
        return b
    if b is one:
        return a
    if (a.is_Number and b.is_Number) or not global_parameters.evaluate \
            or len(_POSTPROCESSED) != _KNOWN_POSTPROCESSED:
        return a * b
    # Mul.flatten's two-argument rule: a Rational times a term whose non-coefficient part is an Add
    for r, o in ((a, b), (b, a)):
        if r.is_Rational and (o.is_Add or (o.is_Mul and any(t.is_Add for t in o.args))):
            return a * b
    coeff = one
    bases: dict = {}  # (base, exponent's term) -> (base, exponent's coefficient, exponent's term)
    seq = [a, b]
    for o in seq:  # grows as Mul.flatten's does: a nested Mul's factors go to the end
        cls = o.__class__
        if cls is _MUL_T:
            if not o.is_commutative:
                return a * b
            seq.extend(o._args)
            continue
        if not isinstance(o, _EXPR):
            return a * b
        if o.is_Number:
            if not (o.is_Rational or o.is_Float):  # nan, infinities
                return a * b
            coeff = o if coeff is one else coeff * o
            continue
        if o.is_Mul or o is _S.ComplexInfinity or o is _S.ImaginaryUnit or o.is_Order or not o.is_commutative \
                or cls.__name__ == "AccumulationBounds":
            return a * b
        if cls is _POW_T:
            base, e = o._args
            if base.is_Number:
                return a * b
        elif cls.as_base_exp is _PLAIN_BASE_EXP:
            base, e = o, one
        else:
            base, e = o.as_base_exp()
            if o.is_Pow and base.is_Number:
                return a * b
        if e is one:
            c = t = one
        elif e.is_Number:
            c, t = e, one
        else:
            c, t = e.as_coeff_Mul()
        key = base if t is one else (base, t)  # (a tuple only where needed: hashing one costs)
        found = bases.get(key)
        if found is not None:
            # a base shared with another factor: _gather adds the exponents' rational coefficients
            # (`x * x**2` is `x**3`, `1/d * 1/d` is `d**-2`); anything else is SymPy's own product
            if not (found[1].is_Rational and c.is_Rational):
                return a * b
            c = found[1] + c
        bases[key] = (base, c, t)
    c_part = []
    for base, c, t in bases.values():
        # _gather's exponent `c * t` (one coefficient: Add(c) is c)
        if t is one:
            e = c
        elif c is one:
            e = t
        else:
            e = c * t
        if e is one:
            if base.is_Number:
                return a * b
            c_part.append(base)
            continue
        if e.is_zero:
            return a * b
        p = _POW(base, e)
        if p.is_Number or (p.is_Pow and not base.is_Pow and p.as_base_exp()[0] != base):
            return a * b
        c_part.append(p)
    if coeff.is_zero or not coeff.is_finite:  # (products of Rationals and Floats stay finite)
        return a * b
    if len(c_part) > 1:
        c_part.sort(key=sort_key)  # _mulsort's order, its comparisons without their class look-ups
    if coeff is not one:
        c_part.insert(0, coeff)
    if len(c_part) == 2 and c_part[0].is_Number and c_part[1].is_Add:
        return a * b  # flatten distributes the number over the Add
    if len(c_part) == 1:
        return c_part[0]
    return _MUL._from_args(c_part, True)


_MUL_T = sympy.Mul
_POW_T = sympy.Pow
_PLAIN_BASE_EXP = sympy.Expr.as_base_exp
_BASIC_COMPARE = Basic.compare
_CLASS_ORDER: dict = {}  # (class, class) -> _cmp_name of the two


def compare(x: Basic, y: Basic) -> int:
    """`Basic.compare(x, y)` (SymPy's canonical order of arguments), the same answer by the same
    steps, with the order of two classes looked up once (`_cmp_name` searches a list of class names
    each time; it was most of a small product's sort)."""
    if x is y:
        return 0
    pair = (x.__class__, y.__class__)
    c = _CLASS_ORDER.get(pair)
    if c is None:
        c = _CLASS_ORDER[pair] = _cmp_name(*pair)
    if c:
        return c
    st = x._hashable_content()
    ot = y._hashable_content()
    c = (len(st) > len(ot)) - (len(st) < len(ot))
    if c:
        return c
    for l, r in zip(st, ot):
        if isinstance(l, Basic):
            c = compare(l, r) if l.__class__.compare is _BASIC_COMPARE else l.compare(r)
        elif isinstance(l, frozenset):
            l = Basic(*l)
            r = Basic(*r) if isinstance(r, frozenset) else r
            c = l.compare(r)
        else:
            c = (l > r) - (l < r)
        if c:
            return c
    return 0


#: `sympy.core.basic._args_sortkey` (SymPy's `_mulsort` / `_addsort` key) with `compare` above.
sort_key = functools.cmp_to_key(compare)


def product_all(factors: list) -> sympy.Expr:
    """`functools.reduce(product, factors)` (SymPy's pairwise `a * b * c ...`), built as one node
    when the factors are a canonical product's already (a product rule's `args[:i] + args[i + 1:]`):
    at most a leading finite number, then plain factors (not powers, no base shared), strictly in
    SymPy's order, no number before an `Add`. Each pairwise step would then append one factor to a
    sorted list (`product`'s fast path), so the result is that list as one `Mul`. Otherwise the
    pairwise products themselves."""
    one = _S.One
    n = len(factors)
    if n < 3 or not global_parameters.evaluate or len(_POSTPROCESSED) != _KNOWN_POSTPROCESSED:
        return _reduce(factors)
    first = factors[0]
    start = 0
    if not isinstance(first, _EXPR):
        return _reduce(factors)
    if first.is_Number:
        if not (first.is_Rational or first.is_Float) or first is one or first.is_zero or not first.is_finite:
            return _reduce(factors)
        if factors[1].is_Add:
            return _reduce(factors)  # the number is distributed over the sum
        start = 1
    previous = None
    for o in factors[start:]:
        if not isinstance(o, _EXPR) or o.is_Number or o.is_Mul or not o.is_commutative \
                or o is _S.ComplexInfinity or o is _S.ImaginaryUnit or o.is_Order or o.as_base_exp()[1] is not one \
                or type(o).__name__ == "AccumulationBounds":
            return _reduce(factors)
        if previous is not None and previous.compare(o) >= 0:
            return _reduce(factors)
        previous = o
    return _MUL._from_args(list(factors), True)


def _reduce(factors: list) -> sympy.Expr:
    out = factors[0]
    for f in factors[1:]:
        out = product(out, f)
    return out


def total(terms) -> sympy.Expr:
    """`Add(*terms)`, the same node SymPy builds, without `Add.flatten` where the sum is canonical
    already: numbers added into the constant, every other term commutative with a non-coefficient
    part of its own (no two terms combine), no number-based power, no `Order`, infinity, matrix or
    tensor term. On every other path it returns `Add(*terms)` itself."""
    terms = [t for t in terms if t is not _S.Zero]  # AssocOp drops the identity first
    if len(terms) < 2:
        return terms[0] if terms else _S.Zero
    if not global_parameters.evaluate or len(_POSTPROCESSED) != _KNOWN_POSTPROCESSED:
        return _ADD(*terms)
    if len(terms) == 2 and ((terms[0].is_Rational and terms[1].is_Mul) or (terms[1].is_Rational and terms[0].is_Mul)):
        return _ADD(*terms)  # Add.flatten's two-argument rule
    one = _S.One
    coeff = _S.Zero
    parts: dict = {}  # non-coefficient part (a product's: its factors) -> (coefficient, part, term)
    seq = list(terms)
    for o in seq:  # grows as Add.flatten's does: a nested Add's terms go to the end
        if not isinstance(o, _EXPR) or not o.is_commutative or isinstance(o, _SPECIAL_TERMS):
            return _ADD(*terms)
        if o.is_Add:
            seq.extend(o.args)
            continue
        if o.is_Number:
            if not (o.is_Rational or o.is_Float):
                return _ADD(*terms)
            coeff = o if coeff is _S.Zero else coeff + o
            continue
        if o.is_Order or o is _S.ComplexInfinity or type(o).__name__ == "AccumulationBounds":
            return _ADD(*terms)
        if o.__class__ is _MUL_T:
            # Mul.as_coeff_Mul without building the rest as a new node: a product's rest is
            # keyed by its factors (the key of any term whose non-coefficient part is a product)
            args = o._args
            if args[0].is_Number:
                c = args[0]
                if len(args) > 2:
                    t, key = None, args[1:]  # (the rest is the product of args[1:])
                else:
                    t = args[1]
                    key = t._args if t.is_Mul else t
            else:
                c, t, key = one, o, args
        elif o.is_Mul:
            c, t = o.as_coeff_Mul()
            key = t._args if t.is_Mul else t
        elif o.is_Pow and o.base.is_Number:
            return _ADD(*terms)
        else:
            c, t, key = one, o, o
        if key in parts:  # two terms with one non-coefficient part: flatten adds their coefficients
            return _ADD(*terms)
        parts[key] = (c, t, o)
    new = []
    for c, t, o in parts.values():
        if c is one:
            new.append(t)
        elif c.is_zero:
            return _ADD(*terms)
        elif t is None:  # `c * rest` of a product: flatten's `rest._new_rawargs(c, *rest.args)` is `o`'s node
            new.append(o)
        elif t.is_Mul:
            new.append(t._new_rawargs(*((c,) + t.args)))
        elif t.is_Add:
            new.append(_MUL(c, t, evaluate=False))
        else:
            new.append(product(c, t))  # Mul(c, t)
    if not coeff.is_finite:
        return _ADD(*terms)
    new.sort(key=sort_key)  # _addsort's order
    if coeff is not _S.Zero:
        new.insert(0, coeff)
    return _ADD._from_args(new, True)
