"""`_entry_plan.AtomProgram`: determinants of input entries as table columns, without generated code.

A Jacobian whose code atoms are `det` nodes of input entries (and the reciprocal or an element-wise
function of one: `log(det(X))`'s `1 / det(X)`) is planned with no generated source: the determinants
are gathered as whole arrays and computed by generated code's own helper, the rest is one polynomial
stage. Its values are the per-entry code atoms' (the `OPAQUE` plan's) bit for bit, in float64 and
float32; anything else (a sum inside a product, `inv(X)`; a determinant of sums) keeps the `OPAQUE`
plan; a wrong determinant column or function is caught by `check`.
"""

import dataclasses

import numpy as np
import pytest

import symjac as sj
from symjac import _entry_plan
from symjac._entry_plan import AtomProgram, plan_entries
from symjac.backends import _numpy as numpy_backend


def _plan(f, name):
    jac = f.jacobian(name)
    return jac, plan_entries(list(jac.entries), [s for inp in f.inputs for s in inp.flat_symbols], "numpy")


def _points(shapes, dtype, seed=3, batch=(6,)):
    rng = np.random.default_rng(seed)
    return {k: (rng.uniform(-1, 1, batch + s) + (3 * np.eye(s[0]) if len(s) == 2 else 0)).astype(dtype)
            for k, s in shapes.items()}


PROGRAMS = [
    ("log(det(X))", {"X": (4, 4)}),
    ("log(det(X))", {"X": (5, 5)}),
    ("det(X)", {"X": (4, 4)}),
    ("det(X)", {"X": (5, 5)}),
    ("det(X)", {"X": (6, 6)}),  # its cofactors: numpy.linalg.det of the stacked 5 x 5 minors
    ("sin(det(X))", {"X": (4, 4)}),
    ("det(X) * X[0, 0]", {"X": (4, 4)}),
    ("log(det(X)) * y", {"X": (4, 4), "y": ()}),
]


@pytest.mark.parametrize("batch", [(6,), (700,)])  # gathered rows; each on its rows (`_DETERMINANT_ELEMENTS`)
@pytest.mark.parametrize("text, shapes", PROGRAMS)
def test_determinant_atoms_need_no_generated_code_and_give_the_codes_values(monkeypatch, text, shapes, batch):
    f = sj.function(text, **shapes)
    _, plan = _plan(f, "X")
    assert plan.program is not None and plan.code is None and plan.atom_functions is None
    assert len(plan.stages) <= 1 and plan.program.determinants
    assert plan.stages == () or text == "det(X) * X[0, 0]"  # (its first entry is a sum of two terms)
    values = {dt: f.jacobian("X").evaluate(**_points(shapes, dt, batch=batch)) for dt in (np.float64, np.float32)}
    monkeypatch.setattr(_entry_plan, "_may_be_program", lambda *a: False)  # the `OPAQUE` plan
    g = sj.function(text, **shapes)
    _, code = _plan(g, "X")
    assert code.program is None and code.code is not None and code.stages == ()
    for dt in (np.float64, np.float32):
        expected = g.jacobian("X").evaluate(**_points(shapes, dt, batch=batch))
        assert values[dt].dtype == expected.dtype == dt
        np.testing.assert_array_equal(values[dt], expected)


def test_the_program_reads_the_determinant_and_its_reciprocal_once():
    """`log(det(X))` at 4 x 4: 16 cofactors and `det(X)` in one call each of sizes 3 and 4, then
    `1 / det(X)`, then the 16 entries as products (signs as coefficients): no stage."""
    _, plan = _plan(sj.function("log(det(X))", X=(4, 4)), "X")
    program = plan.program
    assert program.n_atoms == plan.n_atoms == 34 and plan.stages == ()
    assert sorted(columns.shape for _, columns in program.determinants) == [(1, 16), (16, 9)]
    ((name, atoms, columns),) = program.functions
    assert name == "reciprocal" and len(atoms) == len(columns) == 1
    ((four, entries),) = [(a, c) for a, c in program.determinants if c.shape[1] == 16]
    assert columns[0] == four[0] and entries[0].tolist() == list(range(16))
    ((products, factors, coefs),) = program.products
    ((cofactors, _),) = [(a, c) for a, c in program.determinants if c.shape[1] == 9]
    assert factors.shape == (16, 2) and sorted(set(np.abs(coefs).tolist())) == [1.0]
    assert set(factors[:, 0].tolist()) == {atoms[0]} and sorted(factors[:, 1].tolist()) == sorted(cofactors.tolist())
    assert sorted(plan.take.tolist()) == sorted(products.tolist())


@pytest.mark.parametrize("text, shapes", [
    ("inv(X)", {"X": (4, 4)}),  # 2 x 2 minors over the determinant: a sum inside a product
    ("inv(X) @ x", {"X": (4, 4), "x": (4,)}),
    ("1 / (1 + det(X))", {"X": (4, 4)}),  # the reciprocal of a sum
    ("det(X @ X)", {"X": (4, 4)}),  # a determinant of sums, not of input entries
    ("det(X) * trace(X)", {"X": (4, 4)}),  # the cofactors times a sum
])
def test_other_determinant_entries_keep_the_opaque_plan(text, shapes):
    _, plan = _plan(sj.function(text, **shapes), "X")
    assert plan.program is None and plan.code is not None and plan.stages == ()


def test_the_torch_plan_keeps_generated_code():
    f = sj.function("log(det(X))", X=(4, 4))
    jac = f.jacobian("X")
    plan = plan_entries(list(jac.entries), [s for inp in f.inputs for s in inp.flat_symbols], "torch")
    assert plan.program is None and plan.code is not None


def _planted(f, bad):
    """`f` whose Jacobian plans (one Jacobian and all of them) are `bad`."""
    jacs = tuple(f.jacobians().values())
    plan, dense = numpy_backend.jacobian_plan(jacs[0])
    f._cache[("jacobian-plan", "X", "numpy")] = (bad, dense)
    numpy_backend.jacobians_plan(f, jacs)
    f._cache[("jacobians-plan", ("X",), "numpy")] = (bad, (dense,))
    return plan


def _wrong_columns(program: AtomProgram) -> AtomProgram:
    """Two entries of the first cofactor swapped: its sign flips."""
    (atoms, columns), *rest = sorted(program.determinants, key=lambda d: d[1].shape[1])
    columns = columns.copy()
    columns[0, [0, 1]] = columns[0, [1, 0]]
    return dataclasses.replace(program, determinants=((atoms, columns), *rest))


def _wrong_function(program: AtomProgram) -> AtomProgram:
    ((_, atoms, columns),) = program.functions
    return dataclasses.replace(program, functions=(("numpy.exp", atoms, columns),))


def _wrong_sign(program: AtomProgram) -> AtomProgram:
    ((atoms, factors, coefs),) = program.products
    coefs = coefs.copy()
    coefs[3] = -coefs[3]
    return dataclasses.replace(program, products=((atoms, factors, coefs),))


@pytest.mark.parametrize("fault", [_wrong_columns, _wrong_function, _wrong_sign, None])
def test_a_wrong_program_is_caught_by_check(fault):
    f = sj.function("log(det(X))", X=(4, 4))
    plan = numpy_backend.jacobian_plan(f.jacobian("X"))[0]
    bad = plan if fault is None else dataclasses.replace(plan, program=fault(plan.program))
    _planted(f, bad)
    point = _points({"X": (4, 4)}, np.float64, batch=())
    report = sj.check(f, X=point["X"])
    assert report.ok is (fault is None), report


@pytest.mark.parametrize("text, expected", [
    ("log(det(X))", True), ("det(X) * X[0, 0]", True),
    ("inv(X)", False), ("det(X) * trace(X)", False), ("det(X @ X)", False), ("1 / (1 + det(X))", False),
])
def test_the_program_is_tried_only_where_it_may_apply(text, expected):
    """`_may_be_program`, one pass over the entries' nodes before the split: `inv(X)` is not split
    twice (a sum inside a product, a determinant of sums, a function of a sum rule it out)."""
    f = sj.function(text, X=(4, 4))
    entries = list(f.jacobian("X").entries)
    position = {s: q for q, s in enumerate(f.inputs[0].flat_symbols)}
    assert _entry_plan._may_be_program(_entry_plan._dag.has_symbols(entries), position) is expected
