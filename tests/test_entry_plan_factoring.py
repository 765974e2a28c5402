"""Common factors of a plan's polynomials (`_entry_plan._factor_common`) and the dense gather.

A polynomial whose monomials all share factors `c` is evaluated as `c * r`, with the cofactor `r`
one column shared by every polynomial that has it (attention's Jacobian by `K`). Values must equal
the per-entry generated code of the same entries (1e-13 relative), and polynomials without a
common factor, or with a constant term, must keep their form.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy
import torch

import symjac as sj
from symjac import _entry_plan
from symjac._codegen import compile_entries
from symjac._entry_plan import _common_factor, _without, plan_entries
from symjac._values import coerce_point
from symjac.backends import _numpy as numpy_backend
from symjac.backends import _torch as torch_backend


def _evaluate(plan, x: np.ndarray) -> np.ndarray:
    """The plan's entries at points `x` `(n_inputs, points)`: `(points, entries)`."""
    return numpy_backend._columns(plan, x)[plan.take].T


def _direct(exprs, symbols, x: np.ndarray) -> np.ndarray:
    code = compile_entries(list(exprs), symbols, "numpy")
    return np.stack([np.broadcast_to(v, x.shape[1:]) for v in code.fn(*x)], axis=-1)


def test_common_factor_is_the_multiset_every_monomial_has():
    assert _common_factor({(1, 2): 1.0, (1, 3): 2.0}) == (1,)
    assert _common_factor({(1, 1, 2): 1.0, (1, 1, 3): -1.0}) == (1, 1)
    assert _common_factor({(1, 1, 2): 1.0, (1, 2, 3): -1.0}) == (1, 2)
    assert _common_factor({(1, 2): 1.0, (3, 4): 1.0}) == ()
    assert _common_factor({(1, 2): 1.0, (2, 3): 1.0, (1, 3): 1.0}) == ()  # pairwise only
    assert _without((1, 1, 2, 5), (1, 2)) == (1, 5)


def test_a_shared_factor_is_multiplied_once_and_equal_cofactors_share_a_column():
    a, b, c, d = sympy.symbols("a b c d", real=True)
    # a*(b + c) and d*(b + c) written out: one cofactor column b + c for both
    exprs = [a * b + a * c, d * b + d * c]
    plan = plan_entries(exprs, [a, b, c, d], "numpy")
    assert [s.n_polynomials for s in plan.stages] == [1, 2]  # the cofactor b + c, then a*r and d*r
    assert plan.stages[0].degree == 1 and plan.stages[1].degree == 2 and plan.stages[1].one_term_each
    x = np.random.default_rng(0).standard_normal((4, 50))
    np.testing.assert_allclose(_evaluate(plan, x), _direct(exprs, [a, b, c, d], x), rtol=1e-13)


def test_look_alikes_keep_their_form():
    """No common factor (a*b + c*d), a constant term (a*b + a*c + 1), pairwise-only sharing: no
    cofactor column; the values equal the direct code."""
    a, b, c, d = sympy.symbols("a b c d", real=True)
    for expr in (a * b + c * d, a * b + a * c + 1, a * b + b * c + a * c):
        plan = plan_entries([expr], [a, b, c, d], "numpy")
        assert len(plan.stages) == 1 and plan.stages[0].n_polynomials == 1, expr
        assert len(plan.stages[0].monomials) == len(expr.args) - (1 if expr.args[0].is_Number else 0)
        x = np.random.default_rng(1).standard_normal((4, 30))
        np.testing.assert_allclose(_evaluate(plan, x), _direct([expr], [a, b, c, d], x), rtol=1e-13)


def test_a_factor_hidden_in_a_factored_column_is_regrouped():
    """`s * (V * (q - q s) - q t)`: the column `q - q s` is `q * (1 - s)`, so `q` is common to the
    whole sum once that product is regrouped (attention's entries by `K`)."""
    q, s, t, v = sympy.symbols("q s t v", real=True)
    inner = q - q * sympy.exp(s)
    expr = sympy.exp(s) * v * inner - sympy.exp(s) * q * sympy.exp(t)
    exprs = [expr, sympy.exp(s), sympy.exp(t)]  # the atoms shared: the entry is a polynomial over them
    plan = plan_entries(exprs, [q, s, t, v], "numpy")
    # the entry is the one monomial q * exp(s) * r, r = v * (1 - exp(s)) - exp(t) a cofactor column
    assert len(plan.stages[-1].monomials) == 1 and plan.stages[-1].degree == 3
    x = np.random.default_rng(2).standard_normal((4, 40))
    np.testing.assert_allclose(_evaluate(plan, x), _direct(exprs, [q, s, t, v], x), rtol=1e-13)


def test_attention_by_k_is_factored_within_the_depth_limit(monkeypatch):
    """Attention's Jacobian by K is a table (not one code atom per entry) of fewer, lower-degree
    monomials than without factoring; three stages, as deep as the unfactored two."""
    f = sj.function("softmax(Q @ K.T) @ V", Q=(3, 3), K=(3, 3), V=(3, 3))
    J = f.jacobian("K")
    plan, _ = numpy_backend.jacobian_plan(J)
    assert plan.n_atoms == 9 and len(plan.stages) == 3
    monkeypatch.setattr(_entry_plan, "_factor_common", lambda kinds, split, **_: None)
    unfactored = plan_entries(list(J.entries), [s for i in f.inputs for s in i.flat_symbols], "numpy")
    assert len(unfactored.stages) == 2 and unfactored.degree == 4
    work = sum(s.monomials.size for s in plan.stages)
    assert work < sum(s.monomials.size for s in unfactored.stages) / 2
    rng = np.random.default_rng(3)
    values = {k: rng.standard_normal((6, 3, 3)) for k in "QKV"}
    point = coerce_point(f.inputs, values)
    symbols = [s for i in f.inputs for s in i.flat_symbols]
    x = numpy_backend._inputs(plan, f, point)
    expected = _direct(J.entries, symbols, x)
    got = _evaluate(plan, x)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13 * np.abs(expected).max())
    # torch evaluates the same factored plan, float32 kept, and agrees
    tensors = {k: torch.from_numpy(v.astype(np.float32)) for k, v in values.items()}
    t = torch_backend.exact_jacobian(J, tensors)
    assert t.dtype == torch.float32
    np.testing.assert_allclose(t.numpy(), J.evaluate(**values), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("batch", [(2, 3), (3000,)])  # (3000,): transposes in blocks
@pytest.mark.parametrize("expr, shapes", [("X @ X", {"X": (5, 5)}), ("tanh(W @ x + b)", {"W": (4, 4), "x": (4,), "b": (4,)})])
def test_dense_gather_writes_zeros_and_entries_in_place(expr, shapes, batch):
    """The dense output is gathered from the transposed table: every structural zero is 0 and
    every nonzero its entry's value, for any batch shape, in chunks and blocks (to 1e-13: the
    atoms `tanh(u_i)` are computed from blocks of `u_i`'s terms, `backends._numpy._atoms`, which
    may add them in another order than the per-entry code)."""
    f = sj.function(expr, **shapes)
    rng = np.random.default_rng(4)
    values = {k: rng.standard_normal(batch + s) for k, s in shapes.items()}
    point = coerce_point(f.inputs, values)
    symbols = [s for i in f.inputs for s in i.flat_symbols]
    points = int(np.prod(batch))
    for inp in f.inputs:
        J = f.jacobian(inp.name)
        got = numpy_backend.jacobian(J, point)
        assert got.shape == batch + J.shape
        expected = np.zeros((points, int(np.prod(f.out_shape)) * inp.size))
        x = numpy_backend._inputs(numpy_backend.jacobian_plan(J)[0], f, point)
        expected[:, J.rows * inp.size + J.cols] = _direct(J.entries, symbols, x)
        np.testing.assert_allclose(got.reshape(points, -1), expected, rtol=1e-13, atol=1e-15)
        zeros = np.ones(expected.shape[1], dtype=bool)
        zeros[J.rows * inp.size + J.cols] = False
        np.testing.assert_array_equal(got.reshape(points, -1)[:, zeros], 0.0)


def test_blocked_transpose_equals_the_transpose():
    rng = np.random.default_rng(5)
    for shape in [(3, 5), (1000, 97), (130, 700), (65, 1100)]:
        a = rng.standard_normal(shape)
        out = np.empty(shape[::-1])
        numpy_backend._transpose_into(a, out)
        np.testing.assert_array_equal(out, a.T)
