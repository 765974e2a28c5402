"""Shortcuts of the build give what the full path gives (no timings here: benchmarks/ has them).

- `_entry_plan._code_only`: when the split is too deep and every column reads a code atom, the plan
  is every entry one code atom, decided before the factoring and the two costs: the same plan as
  the full path's (generated source, columns, stages, constants).
"""

import numpy as np
import pytest

import symjac as sj
from symjac import _entry_plan
from symjac._entry_plan import plan_entries


def _plan_of(text, shapes, name):
    f = sj.function(text, **shapes)
    jac = f.jacobian(name)
    return jac, plan_entries(list(jac.entries), [s for inp in f.inputs for s in inp.flat_symbols], "numpy")


def _same_plan(a, b) -> bool:
    return (
        (a.code.source if a.code else None) == (b.code.source if b.code else None)
        and np.array_equal(a.take, b.take)
        and np.array_equal(a.constants, b.constants)
        and len(a.stages) == len(b.stages)
        and all(np.array_equal(s.monomials, t.monomials) and np.array_equal(s.coefs, t.coefs)
                for s, t in zip(a.stages, b.stages))
    )


@pytest.mark.parametrize("text, shapes, name", [
    # written-out determinants (3 x 3) of products: deep cofactor polynomials (4 x 4 is a node)
    ("inv(X @ X)", {"X": (3, 3)}, "X"),
    ("log(det(X @ X))", {"X": (3, 3)}, "X"),
    ("log(det(X.T @ X + eye(3)))", {"X": (3, 3)}, "X"),
    ("1 / (1 + det(X @ X))", {"X": (3, 3)}, "X"),
])
def test_code_only_plan_is_the_full_paths(monkeypatch, text, shapes, name):
    taken = []
    original = _entry_plan._code_only
    monkeypatch.setattr(_entry_plan, "_code_only", lambda *a: taken.append(original(*a)) or taken[-1])
    jac, fast = _plan_of(text, shapes, name)
    assert taken == [True]
    assert fast.stages == () and fast.code is not None
    monkeypatch.setattr(_entry_plan, "_code_only", lambda *a: False)
    _, full = _plan_of(text, shapes, name)
    assert _same_plan(fast, full)


@pytest.mark.parametrize("text, shapes, name", [
    ("softmax(x)", {"x": (6,)}, "x"),  # a two-stage table: the full path
    ("x[0] * (x[1]*x[2] + x[1]*x[3]) + exp(x[0])", {"x": (4,)}, "x"),
    ("inv(X)", {"X": (3, 3)}, "X"),  # three stages, but some columns read the inputs alone
])
def test_code_only_is_not_taken_where_the_table_may_win(monkeypatch, text, shapes, name):
    taken = []
    original = _entry_plan._code_only
    monkeypatch.setattr(_entry_plan, "_code_only", lambda *a: taken.append(original(*a)) or taken[-1])
    _, plan = _plan_of(text, shapes, name)
    assert taken == [False] and plan.stages


def test_same_plan_tells_plans_apart():
    _, a = _plan_of("inv(X)", {"X": (4, 4)}, "X")
    _, b = _plan_of("log(det(X))", {"X": (4, 4)}, "X")
    assert _same_plan(a, a) and not _same_plan(a, b)


@pytest.mark.parametrize("text, shapes, name", [
    ("inv(X)", {"X": (4, 4)}, "X"),
    ("log(det(X))", {"X": (5, 5)}, "X"),
    ("inv(X) @ x", {"X": (4, 4), "x": (4,)}, "X"),
    ("det(X) * trace(X) + 1 / (1 + det(X))", {"X": (4, 4)}, "X"),
])
def test_entries_with_determinant_nodes_are_code_atoms_and_equal_the_split(monkeypatch, text, shapes, name):
    """`_entry_plan.OPAQUE`: an entry that holds a `det` node is one code atom (no table stage), and
    its values are the long way's (a table of stages for `inv(X)` and `log(det(X))`), at random
    points in both dtypes. (`log(det(X))` is an `AtomProgram` otherwise: tests/test_atom_program.py.)"""
    monkeypatch.setattr(_entry_plan, "_may_be_program", lambda *a: False)
    _, fast = _plan_of(text, shapes, name)
    assert fast.stages == () and fast.code is not None
    rng = np.random.default_rng(3)
    points = {k: rng.uniform(-1, 1, (6,) + s) + (3 * np.eye(s[0]) if len(s) == 2 else 0) for k, s in shapes.items()}
    code = {dt: sj.function(text, **shapes).jacobian(name).evaluate(**{k: v.astype(dt) for k, v in points.items()})
            for dt in (np.float64, np.float32)}
    monkeypatch.setattr(_entry_plan, "OPAQUE", ())
    _plan_of(text, shapes, name)  # the long way: the split, the factoring, the two costs
    for dt, rtol in ((np.float64, 1e-12), (np.float32, 1e-4)):
        table = sj.function(text, **shapes).jacobian(name).evaluate(**{k: v.astype(dt) for k, v in points.items()})
        assert code[dt].dtype == table.dtype == dt
        np.testing.assert_allclose(code[dt], table, rtol=rtol, atol=rtol * np.max(np.abs(table)))
