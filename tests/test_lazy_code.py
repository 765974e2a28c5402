"""`_codegen.Compiled` built lazily (`compile_entries(..., lazy=True)`): a plan whose atoms are
`AtomFunctions` generates its code only when a backend runs it; the code is the eager one's, and a
node that cannot be printed is still refused when the plan is made."""

import threading

import numpy as np
import pytest
import sympy

import symjac as sj
from symjac import _codegen, _entry_plan
from symjac._codegen import compile_entries
from symjac._entry_plan import plan_entries
from symjac._errors import InvalidExpressionError
from symjac.backends import _numpy as numpy_backend


def _symbols(f):
    return [s for inp in f.inputs for s in inp.flat_symbols]


def test_a_block_evaluated_plan_generates_no_code_until_it_is_run(monkeypatch):
    f = sj.function("tanh(W @ x + b)", W=(3, 3), x=(3,), b=(3,))
    calls = []
    generate = _codegen._source.generate
    monkeypatch.setattr(_codegen._source, "generate", lambda *a: calls.append(1) or generate(*a))
    jac = f.jacobian("W")
    plan, _ = numpy_backend.jacobian_plan(jac)
    assert plan.atom_functions is not None and plan.code is not None
    point = {"W": np.eye(3) * 0.5, "x": np.arange(3.0), "b": np.ones(3)}
    value = jac.evaluate(**point)  # the atoms from blocks (`_atoms`): no generated code
    assert calls == []
    monkeypatch.setattr(_entry_plan, "compile_entries", lambda *a, lazy: compile_entries(*a))
    eager = plan_entries(list(jac.entries), _symbols(f), "numpy").code
    assert len(calls) == 1 and not isinstance(eager.source, type(None))
    assert plan.code.source == eager.source and len(calls) == 2  # generated now, once
    atoms = plan.code.fn(*(np.asarray(v, dtype=float) for v in (*point["W"].ravel(), *point["x"], *point["b"])))
    assert len(calls) == 2 and len(atoms) == plan.n_atoms
    np.testing.assert_allclose(np.tanh(point["W"] @ point["x"] + point["b"]), atoms, rtol=1e-15)
    assert value.shape == (3, 3, 3)


def test_lazy_code_is_built_once_across_threads():
    x, y = sympy.symbols("x y")
    code = compile_entries([sympy.sin(x) * y, sympy.exp(y)], [x, y], "numpy", lazy=True)
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(code.fn)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(fn) for fn in seen}) == 1
    np.testing.assert_allclose(code.fn(0.5, 2.0), [np.sin(0.5) * 2.0, np.exp(2.0)], rtol=1e-15)
    assert code.fn(0.5, 2.0) != [np.sin(0.5) * 2.0, np.exp(2.1)]  # a wrong value shows


def test_lazy_code_still_refuses_unprintable_nodes_at_once():
    x = sympy.Symbol("x")
    with pytest.raises(InvalidExpressionError, match="cannot generate code for g "):
        compile_entries([sympy.sin(x) * sympy.Function("g")(x)], [x], "numpy", lazy=True)
