"""Code atoms computed as functions of polynomial blocks (`_entry_plan.AtomFunctions`,
`backends._numpy._atoms`): `tanh(W @ x + b)`'s atoms `tanh(u_i)` are one contraction `W x`, the
`b` block and one `np.tanh` over all of them, from the inputs as given, instead of generated code
entry by entry; the inputs are then not copied into the table at all when nothing reads them there.
Values agree with the per-entry generated code to 1e-13 (float64); float32 stays float32; a wrong
block, constant term or function is caught."""

from __future__ import annotations

import numpy as np
import pytest

import symjac as sj
from symjac._values import coerce_point
from symjac.backends import _numpy as numpy_backend
from symjac.backends._numpy import _Atoms, _atoms
from _reference import assert_chunks_equal_one_pass, per_entry_jacobian

W4 = np.round(np.random.default_rng(6).uniform(-1, 1, (4, 4)), 3) + 0.0005
B4 = np.round(np.random.default_rng(7).uniform(-1, 1, 4), 3) + 0.0005
CASES = {
    "tanh(W @ x + b), W x b inputs": lambda: sj.function("tanh(W @ x + b)", W=(8, 8), x=(8,), b=(8,)),
    "tanh(W @ x + b), W b constants": lambda: sj.function("tanh(W @ x + b)", consts={"W": W4, "b": B4}, x=(4,)),
    "tanh(W @ x + b), W 3 x 5": lambda: sj.function("tanh(W @ x + b)", W=(3, 5), x=(5,), b=(3,)),
    "tanh(x * y)": lambda: sj.function("tanh(x * y)", x=(3,), y=()),
    "exp(X) + X": lambda: sj.function("exp(X) + X", X=(2, 3)),
    # two levels: e_i = exp(-u_i), then 1 / (1 + e_i), read in order
    "sigmoid(A @ x), A 4 x 5": lambda: sj.function("sigmoid(A @ x)", A=(4, 5), x=(5,)),
    "sigmoid(W @ x + b), W x b inputs": lambda: sj.function("sigmoid(W @ x + b)", W=(6, 6), x=(6,), b=(6,)),
}
IDS = list(CASES)


def _point(f, batch, dtype, seed=8):
    rng = np.random.default_rng(seed)
    return {inp.name: rng.uniform(-1.2, 1.2, batch + inp.shape).astype(dtype) for inp in f.inputs}


def _joint_atoms(f):
    jacs = f.jacobians()
    plan, dense = numpy_backend.jacobians_plan(f, tuple(jacs.values()))
    return plan, dense, _atoms(plan, f)


def test_the_tanh_layer_atoms_are_one_contraction_one_block_and_one_tanh():
    f = CASES["tanh(W @ x + b), W x b inputs"]()
    plan, _, atoms = _joint_atoms(f)
    ((members, functions, _),) = plan.atom_functions.levels
    assert functions == ("numpy.tanh",) * 8 and sorted(members) == list(range(8))
    assert atoms is not None
    ((where, blocks, functions, _, offsets),) = atoms.levels
    # W x: input 0 (W) row by row (8 columns apart) times input 1 (x), 8 terms each; then b
    assert [(s, factors) for s, factors, _ in blocks] == [
        ("pgl,pgl->pg", ((0, 0, 8, 8), (1, 0, 0, 8))), ("pgl->pg", ((2, 0, 1, 1),))]
    assert functions == ((np.tanh, 0, 8),) and offsets is None


def test_the_sigmoid_layer_atoms_are_two_levels():
    f = CASES["sigmoid(A @ x), A 4 x 5"]()
    plan, _, atoms = _joint_atoms(f)
    (_, first, _), (_, second, _) = plan.atom_functions.levels
    assert first == ("numpy.exp",) * 4 and second == ("reciprocal",) * 4
    (_, blocks1, _, _, _), (_, blocks2, _, _, offsets2) = atoms.levels
    # exp(-(A x)_i): one contraction with the coefficients -1; then 1 / (1 + e_i): the four e_i
    # (source 2, the atoms) in order, plus one
    assert [(s, f) for s, f, _ in blocks1] == [("pgl,pgl,gl->pg", ((0, 0, 5, 5), (1, 0, 0, 5)))]
    assert [(s, f) for s, f, _ in blocks2] == [("pgl->pg", ((2, 0, 1, 1),))]
    np.testing.assert_array_equal(offsets2, 1.0)


def test_atoms_that_are_not_functions_of_input_polynomials_stay_generated_code():
    softmax = sj.function("softmax(x)", x=(5,))  # exp(x_i - logsumexp(x)): logsumexp is no atom
    assert _joint_atoms(softmax)[0].atom_functions is None
    assert _joint_atoms(softmax)[2] is None
    # exp(A @ X): functions of polynomials, but X's columns step by 3 from term to term: no blocks
    f = sj.function("exp(A @ X)", consts={"A": W4[:3, :3]}, X=(3, 3))
    plan, _, atoms = _joint_atoms(f)
    assert plan.atom_functions is not None and atoms is None
    assert plan.atom_functions.levels[0][2].blocks is None


@pytest.mark.parametrize("case", IDS)
@pytest.mark.parametrize("batch", [(), (7,), (2, 3)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_atom_blocks_equal_the_per_entry_code(case, batch, dtype, monkeypatch):
    f = CASES[case]()
    assert _joint_atoms(f)[2] is not None
    point = _point(f, batch, dtype)
    got = f.jacobians().evaluate(**point)
    with monkeypatch.context() as m:  # the same Jacobians with the atoms by generated code
        m.setattr(numpy_backend, "_atoms", lambda *a, **k: None)
        code = CASES[case]().jacobians().evaluate(**point)
    rtol = 1e-13 if dtype == np.float64 else 2e-6
    for name, jac in f.jacobians().items():
        assert got[name].dtype == dtype and got[name].shape == batch + jac.shape
        np.testing.assert_allclose(jac.evaluate(**point), got[name], rtol=rtol, atol=rtol)
        np.testing.assert_allclose(got[name], code[name], rtol=rtol, atol=rtol)
        np.testing.assert_allclose(got[name], per_entry_jacobian(jac, point, batch), rtol=max(rtol, 1e-13), atol=max(rtol, 1e-14))


def test_the_inputs_are_not_copied_into_the_table_when_nothing_reads_them(monkeypatch):
    f = CASES["tanh(W @ x + b), W x b inputs"]()
    fills = []
    inputs = numpy_backend._inputs
    monkeypatch.setattr(numpy_backend, "_inputs", lambda *a, **k: fills.append(k.get("fill", True)) or inputs(*a, **k))
    point = _point(f, (5,), np.float64)
    got = f.jacobians().evaluate(**point)
    assert fills == [False]
    for name, jac in f.jacobians().items():
        np.testing.assert_allclose(got[name], per_entry_jacobian(jac, point, (5,)), rtol=1e-13, atol=1e-14)
    # x * tanh(x): the output x_i * (1 - t_i**2) + t_i reads x from the table
    g = sj.function("x * tanh(x)", x=(9,))
    fills.clear()
    point = _point(g, (4,), np.float64)
    np.testing.assert_allclose(g.jacobians().evaluate(**point)["x"], per_entry_jacobian(g.jacobian(), point, (4,)),
                               rtol=1e-13, atol=1e-14)
    assert fills == [True]


def test_atom_blocks_in_chunks_of_points_equal_one_pass(monkeypatch):
    make = CASES["tanh(W @ x + b), W 3 x 5"]
    point = _point(make(), (13,), np.float64)
    assert_chunks_equal_one_pass(make, point, 40, monkeypatch)


# ------------------------------------------------------------------------------ negative tests
@pytest.mark.parametrize("fault", ["block column", "constant term", "function"])
def test_wrong_atoms_are_caught_by_the_per_entry_code(fault):
    """The comparison with per-entry code can fail: a block reading the next column of W, a
    constant term off by 1e-4, or sinh in place of tanh."""
    f = CASES["tanh(W @ x + b), W b constants"]()
    jacs = f.jacobians()
    plan, dense, atoms = _joint_atoms(f)
    values = _point(f, (3,), np.float64)
    point = coerce_point(f.inputs, values)
    runs = tuple(numpy_backend._runs(index, plan.zero_column) for index in dense)
    ((where, blocks, functions, coefs, offsets),) = atoms.levels
    if fault == "block column":
        (subscripts, ((j, c, dc, k),), coef), *rest = blocks
        blocks = ((subscripts, ((j, c + 1, dc, k - 1),), coef[:2] + (coef[2] - 1,)), *rest)
    elif fault == "constant term":
        offsets = offsets * (1 + 1e-4)
    else:
        functions = tuple((np.sinh, a, b) for _, a, b in functions)
    bad = _Atoms(((where, blocks, functions, coefs, offsets),), atoms.n, atoms.take)
    for wrong, fine in ((bad, False), (atoms, True)):
        got = numpy_backend._gather_many(plan, f, point, dense, [j.shape for j in jacs.values()], runs, None, wrong)
        expected = per_entry_jacobian(jacs["x"], values, (3,))
        assert np.allclose(got[0], expected, rtol=1e-13, atol=1e-14) is fine


def test_atoms_put_back_in_the_wrong_order_are_caught():
    """The levels' order is not the plan's (`_Atoms.take`): the atoms left in the levels' order
    are wrong, and the comparison with the per-entry code says so."""
    f = CASES["sigmoid(W @ x + b), W x b inputs"]()
    jacs = f.jacobians()
    plan, dense, atoms = _joint_atoms(f)
    assert atoms.take is not None
    values = _point(f, (4,), np.float64)
    point = coerce_point(f.inputs, values)
    runs = tuple(numpy_backend._runs(index, plan.zero_column) for index in dense)
    for wrong, fine in ((_Atoms(atoms.levels, atoms.n, None), False), (atoms, True)):
        got = numpy_backend._gather_many(plan, f, point, dense, [j.shape for j in jacs.values()], runs, None, wrong)
        for k, jac in enumerate(jacs.values()):
            if k == 0:
                assert np.allclose(got[k], per_entry_jacobian(jac, values, (4,)), rtol=1e-13, atol=1e-14) is fine
