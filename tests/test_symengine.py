"""Generated code through SymEngine (`symjac[fast]`) and through SymPy alone: the same results.

Each test runs twice, with `_symengine.ENABLED` on and off, on fresh Functions (compiled code is
cached per Function), and compares against the other engine's values.
"""

import numpy as np
import pytest
import sympy

import symjac as sj
from symjac import _source, _symengine
from symjac._codegen import compile_entries
from symjac._values import coerce_point
from symjac.backends import _numpy as numpy_backend

torch = pytest.importorskip("torch")
from symjac.backends import _torch as torch_backend  # noqa: E402

needs_symengine = pytest.mark.skipif(not _symengine.available(), reason="symengine is not installed")

CORPUS = [
    ("sin(X) * X", {"X": (2, 2)}, {}),
    ("X @ X @ X", {"X": (3, 3)}, {}),
    ("inv(X)", {"X": (3, 3)}, {}),
    ("log(det(X))", {"X": (3, 3)}, {}),
    ("softmax(x)", {"x": (4,)}, {}),
    ("sqrt(x**2 + 1) * tanh(x) - exp(-x) * cos(x)**3 / tan(x) + abs(x)", {"x": (3,)}, {}),
    ("logsumexp(x) + norm(x) + mean(x) * sigmoid(x)", {"x": (3,)}, {}),
    ("W @ x + sin(W @ x) * 0.1", {"W": (2, 3), "x": (3,)}, {}),
    ("x ** y + y ** 2.5 + log(y) * x / 7", {"x": (), "y": ()}, {}),
    ("A @ exp(X)", {"X": (2, 2)}, {"A": [[1.5, -2.0], [1 / 3, 3.0]]}),
]
IDS = [c[0] for c in CORPUS]


def make(case):
    text, shapes, consts = case
    return sj.function(text, consts=consts, **shapes)


def point_for(f, dtype, batch=(3,)):
    rng = np.random.default_rng(11)
    values = {}
    for inp in f.inputs:
        v = rng.uniform(0.5, 1.5, batch + inp.shape)
        if len(inp.shape) == 2 and inp.shape[0] == inp.shape[1]:
            v = v + 3 * np.eye(inp.shape[0])
        values[inp.name] = v.astype(dtype)
    return values


def evaluate_both(monkeypatch, build):
    """`build()` with SymEngine, then with SymPy alone (each on fresh Functions)."""
    monkeypatch.setattr(_symengine, "ENABLED", True)
    fast = build()
    monkeypatch.setattr(_symengine, "ENABLED", False)
    plain = build()
    return fast, plain


@needs_symengine
@pytest.mark.parametrize("case", CORPUS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numpy_jacobian_and_forward_agree_both_ways(case, dtype, monkeypatch):
    def build():
        f = make(case)
        values = point_for(f, dtype)
        return f(**values), {inp.name: f.jacobian(inp.name).evaluate(**values) for inp in f.inputs}

    (fast_y, fast_j), (plain_y, plain_j) = evaluate_both(monkeypatch, build)
    rtol = 1e-12 if dtype == np.float64 else 3e-5
    assert fast_y.dtype == plain_y.dtype == dtype
    np.testing.assert_allclose(fast_y, plain_y, rtol=rtol, atol=rtol)
    for name in fast_j:
        assert fast_j[name].dtype == dtype
        np.testing.assert_allclose(fast_j[name], plain_j[name], rtol=rtol, atol=rtol)


@needs_symengine
@pytest.mark.parametrize("case", CORPUS, ids=IDS)
def test_torch_forward_and_exact_jacobian_agree_both_ways(case, monkeypatch):
    def build():
        f = make(case)
        tensors = {k: torch.from_numpy(v) for k, v in point_for(f, np.float32).items()}
        y = torch_backend.forward(f, {k: t.clone().requires_grad_(True) for k, t in tensors.items()})
        assert y.dtype == torch.float32 and y.requires_grad
        return y.detach().numpy(), [torch_backend.exact_jacobian(f.jacobian(i.name), tensors).numpy() for i in f.inputs]

    (fast_y, fast_j), (plain_y, plain_j) = evaluate_both(monkeypatch, build)
    np.testing.assert_allclose(fast_y, plain_y, rtol=3e-5, atol=3e-5)
    for a, b in zip(fast_j, plain_j):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=3e-5, atol=3e-5)


@needs_symengine
@pytest.mark.parametrize("case", CORPUS[:5], ids=IDS[:5])
def test_check_reaches_the_same_verdict_both_ways(case, monkeypatch):
    def build():
        f = make(case)
        values = {k: v[0] for k, v in point_for(f, np.float64).items()}
        return sj.check(f, **values).verdict

    assert evaluate_both(monkeypatch, build) == ("pass", "pass")


@needs_symengine
def test_symengine_source_is_used_and_never_holds_user_names(monkeypatch):
    monkeypatch.setattr(_symengine, "ENABLED", True)
    f = sj.function("sin(Xsecret) * exp(Xsecret)", Xsecret=(2,))
    code = numpy_backend.compiled_jacobian(f.jacobian())
    assert code.source.startswith("def _generated(_a0, _a1):")
    assert "Xsecret" not in code.source and "numpy.exp" in code.source
    assert code.fn(np.float32(0.5), np.float32(1.0))[0].dtype == np.float32


@needs_symengine
def test_nodes_symengine_does_not_print_fall_back_to_sympy(monkeypatch):
    monkeypatch.setattr(_symengine, "ENABLED", True)
    x = sympy.Symbol("x", real=True)
    exprs = [sympy.Max(x, 0) * x, sympy.Piecewise((x, x > 1), (2 * x, True))]
    assert _symengine.compile_source(exprs, [x], "numpy") is None
    code = compile_entries(exprs, [x], "numpy")  # the DAG printer (symjac._source) prints them
    assert "numpy.maximum" in code.source and "numpy.where" in code.source
    np.testing.assert_allclose(code.fn(np.array([-1.0, 2.0])), [[0.0, 4.0], [-2.0, 2.0]])


@needs_symengine
def test_symengine_prints_numbers_as_python_literals():
    x = sympy.Symbol("x", real=True)
    exprs = [sympy.Rational(1, 3) * x + sympy.Float(0.1, 17), sympy.Integer(2) ** 60 * x, sympy.sqrt(x) + x ** sympy.Rational(3, 2)]
    source = _symengine.compile_source(exprs, [x], "numpy")
    assert "(1/3)" in source and "0.1" in source and "1.152921504606847e+18" in source and "numpy.sqrt" in source
    assert "float64" not in source
    fn = compile_entries(exprs, [x], "numpy").fn
    out = fn(np.array([4.0], dtype=np.float32))
    assert [o.dtype for o in out] == [np.float32] * 3
    np.testing.assert_allclose([o[0] for o in out], [4 / 3 + 0.1, 2.0**62, 10.0], rtol=1e-6)


def test_disabled_or_missing_symengine_uses_the_dag_printer(monkeypatch):
    monkeypatch.setattr(_symengine, "ENABLED", False)
    assert not _symengine.enabled()
    f = sj.function("sin(x) * x", x=(2,))
    source = numpy_backend.compiled_jacobian(f.jacobian()).source
    assert source == _source.generate(list(f.jacobian().entries), list(f.inputs[0].flat_symbols), "numpy")
    point = coerce_point(f.inputs, {"x": [0.5, 1.0]})
    np.testing.assert_allclose(numpy_backend.jacobian(f.jacobian(), point), np.diag(np.cos([0.5, 1.0]) * [0.5, 1.0] + np.sin([0.5, 1.0])))


@needs_symengine
def test_torch_code_takes_its_numbers_as_k_and_keeps_literal_exponents():
    x = sympy.Symbol("x", real=True)
    source = _symengine.compile_source([sympy.sin(2 * x) / 3 + x**2 + sympy.Rational(1, 3), sympy.Integer(5)], [x], "torch")
    assert source.startswith("def _generated(_a0, *, _k=((1/3), 2, 5,)):")
    assert "(_a0**2)" in source and "_k[2]" in source
    fn = compile_entries([sympy.sin(2 * x) / 3 + x**2], [x], "torch").fn
    t = torch.tensor([0.5, 1.5], dtype=torch.float32)
    expected = torch.sin(2 * t) / 3 + t**2
    np.testing.assert_allclose(fn(t)[0].numpy(), expected.numpy(), rtol=1e-6)
    k = tuple(torch.tensor(float(v), dtype=torch.float32) for v in fn.__kwdefaults__["_k"])
    np.testing.assert_allclose(fn(t, _k=k)[0].numpy(), expected.numpy(), rtol=1e-6)


@needs_symengine
def test_nodes_symengine_cannot_convert_take_the_sympy_path():
    # found by a random-expression search: SymPy numbers Dummy symbols from a random base that may
    # be negative, and SymEngine's converter raises OverflowError on a negative index (here in the
    # unevaluated derivative of sign(x**2 - 1)), which crashed `check` about half the time
    x = sympy.Symbol("x", real=True)
    xi = sympy.Dummy("xi", dummy_index=-1)
    unevaluated = sympy.Subs(sympy.Derivative(sympy.sign(xi), xi), xi, x**2 - 1)
    import symengine

    with pytest.raises(OverflowError):
        symengine.sympify(unevaluated)
    assert _symengine.compile_source([unevaluated, x + 1], [x], "numpy") is None
