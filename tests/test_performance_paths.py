"""The fast paths give the results of the plain ones.

- the one-pass gradient (`_jacobian._Gradient`) builds exactly the expressions `expr.diff(s)` does;
- evaluation plans (polynomial entries gathered and summed, constants, the rest generated) give the
  values of the lambdified entry list, in NumPy and torch, float32 and float64, batched;
- torch autograd Jacobians from copies of the point equal `torch.func.jacrev` / `jacfwd`.

No timings here: the numbers live in benchmarks/.
"""

import numpy as np
import pytest
import sympy

import symjac as sj
from symjac import _codegen, _symengine
from symjac._codegen import compile_entries, fold_constants
from symjac._entry_plan import plan_entries
from symjac._values import coerce_point
from symjac.backends import _numpy as numpy_backend

torch = pytest.importorskip("torch")
from symjac.backends import _torch as torch_backend  # noqa: E402

CORPUS = [
    ("X @ X", {"X": (3, 3)}, {}),
    ("A @ X", {"X": (2, 3)}, {"A": [[1.5, -2.0], [0.25, 3.0]]}),
    ("sum(X)", {"X": (2, 3)}, {}),
    ("sin(X) * X", {"X": (2, 2)}, {}),
    ("X @ X @ X", {"X": (3, 3)}, {}),
    ("inv(X)", {"X": (3, 3)}, {}),
    ("log(det(X))", {"X": (3, 3)}, {}),
    ("softmax(x)", {"x": (4,)}, {}),
    ("relu(x) * abs(x) + sigmoid(x) / (1 + x**2)", {"x": (3,)}, {}),
    ("sqrt(x**2 + 1) * tanh(x) - exp(-x) * cos(x)**3 + 2.5 * x**3 + 1.5", {"x": (3,)}, {}),
    ("logsumexp(x) + norm(x) + mean(x)", {"x": (3,)}, {}),
    ("W @ x + sin(W @ x)", {"W": (2, 3), "x": (3,)}, {}),
    ("x ** y + y ** 2.5 + log(y) * x", {"x": (), "y": ()}, {}),
    ("x**5 + 3 * x * x - x / 3", {"x": (2,)}, {}),
]
IDS = [c[0] for c in CORPUS]


def make(case):
    text, shapes, consts = case
    return sj.function(text, consts=consts, **shapes)


def values(f, rng, batch=(), dtype=np.float64):
    """A point (or batch) inside every corpus function's domain: positive, diagonally dominant."""
    out = {}
    for inp in f.inputs:
        v = rng.uniform(0.5, 1.5, batch + inp.shape)
        if len(inp.shape) == 2 and inp.shape[0] == inp.shape[1]:
            v = v + 3 * np.eye(inp.shape[0])
        out[inp.name] = v.astype(dtype)
    return out


def symbols_of(f):
    return [s for inp in f.inputs for s in inp.flat_symbols]


@pytest.fixture
def sympy_only(monkeypatch):
    """The reference path: plain SymPy lambdify, no SymEngine."""
    monkeypatch.setattr(_symengine, "ENABLED", False)


def lambdified_jacobian(jac, point):
    """Reference: every nonzero through lambdify, scattered densely."""
    code = compile_entries(list(jac.entries), symbols_of(jac.function), "numpy")
    args = numpy_backend._arguments(jac.function, point)
    nonzeros = numpy_backend._assemble(code.fn(*args), point.batch_shape, point.dtype)
    out_size = int(np.prod(jac.function.out_shape))
    dense = np.zeros(point.batch_shape + (out_size * jac.wrt.size,), dtype=point.dtype)
    dense[..., jac.rows * jac.wrt.size + jac.cols] = nonzeros
    return dense.reshape(point.batch_shape + jac.shape)


# ------------------------------------------------------------------------------ differentiation
@pytest.mark.parametrize("case", CORPUS, ids=IDS)
def test_gradient_builds_the_expressions_diff_builds(case):
    f = make(case)
    for inp in f.inputs:
        J = f.jacobian(inp.name)
        expected = {}
        for p, expr in enumerate(f.output.reshape(-1)):
            for q, s in enumerate(inp.flat_symbols):
                if s in expr.free_symbols:
                    d = expr.diff(s)
                    if d != 0:
                        expected[(p, q)] = d
        got = {(int(r), int(c)): e for r, c, e in zip(J.rows, J.cols, J.entries)}
        assert got == expected  # the same SymPy expressions, not merely equal values
        assert list(zip(J.rows.tolist(), J.cols.tolist())) == sorted(expected)


def test_gradient_hands_other_nodes_to_sympy():
    x = sympy.Symbol("x", real=True)
    f = sj.function(sympy.Piecewise((x**2, x > 1), (sympy.Min(x, -1) * 3, True)) * sympy.exp(x), x=())
    (entry,) = f.jacobian().entries
    assert entry == f.output[()].diff(f.inputs[0].symbols[()])


# ------------------------------------------------------------------------------ evaluation plans
@pytest.mark.parametrize("case", CORPUS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_plan_matches_lambdified_entries(case, dtype, sympy_only):
    f = make(case)
    rng = np.random.default_rng(7)
    point = coerce_point(f.inputs, values(f, rng, (5,), dtype))
    forward = numpy_backend.forward(f, point)
    code = compile_entries(list(f.output.reshape(-1)), symbols_of(f), "numpy")
    expected_forward = numpy_backend._assemble(code.fn(*numpy_backend._arguments(f, point)), (5,), point.dtype)
    rtol = 1e-13 if dtype == np.float64 else 2e-5
    assert forward.dtype == dtype
    np.testing.assert_allclose(forward.reshape(5, -1), expected_forward, rtol=rtol, atol=rtol)
    for inp in f.inputs:
        J = f.jacobian(inp.name)
        got = numpy_backend.jacobian(J, point)
        assert got.dtype == dtype and got.shape == (5,) + J.shape
        np.testing.assert_allclose(got, lambdified_jacobian(J, point), rtol=rtol, atol=rtol)


def test_plan_sorts_entries_by_kind():
    sym = sj.function("X @ X", X=(3, 3)).jacobian()
    plan, dense = numpy_backend.jacobian_plan(sym)
    assert plan.code is None and plan.degree == 1  # linear entries: a gather, no generated code
    assert (dense == plan.zero_column).sum() == sym.shape[0] * sym.shape[1] * 9 - sym.nnz

    plan, _ = numpy_backend.jacobian_plan(sj.function("sum(X)", X=(2, 3)).jacobian())
    assert plan.constants.tolist() == [1.0] and plan.take.tolist() == [plan.n_inputs] * 6  # deduplicated

    plan, _ = numpy_backend.jacobian_plan(sj.function("A @ X", X=(2, 2), consts={"A": [[1.5, 2], [3, 4]]}).jacobian())
    assert sorted(plan.constants.tolist()) == [1.5, 2.0, 3.0, 4.0] and plan.code is None

    plan, _ = numpy_backend.jacobian_plan(sj.function("x**6 + x**2", x=(2,)).jacobian())
    assert plan.code is not None and plan.code.n_entries == 2  # 6 x**5 is above MAX_DEGREE
    plan = numpy_backend.forward_plan(sj.function("x**3 + 2 * x - 1.5", x=(2,)))
    assert plan.code is None and plan.degree == 3 and plan.offsets.tolist() == [-1.5, -1.5]

    plan, _ = numpy_backend.jacobian_plan(sj.function("sin(X) * X", X=(2, 2)).jacobian())
    assert plan.n_polynomials == 0 and plan.code.n_entries == 4


def test_polynomials_in_chunks_equal_one_pass(monkeypatch):
    f = sj.function("X @ X @ X", X=(3, 3))
    xs = values(f, np.random.default_rng(3), (11,))
    whole = f.jacobian().evaluate(**xs)
    f2 = sj.function("X @ X @ X", X=(3, 3))
    monkeypatch.setattr(numpy_backend, "_CHUNK_ELEMENTS", 50)
    np.testing.assert_array_equal(f2.jacobian().evaluate(**xs), whole)


def test_broadcast_batches_of_several_inputs_numpy_and_torch():
    f = sj.function("W @ x + x * x", W=(2, 2), x=(2,))
    rng = np.random.default_rng(4)
    W, x = rng.standard_normal((3, 1, 2, 2)), rng.standard_normal((4, 2))
    for name in ("W", "x"):
        J = f.jacobian(name)
        got = J.evaluate(W=W, x=x)
        assert got.shape == (3, 4) + J.shape
        np.testing.assert_allclose(got[2, 1], J.evaluate(W=W[2, 0], x=x[1]), rtol=1e-15)
        t = torch_backend.exact_jacobian(J, {"W": torch.from_numpy(W), "x": torch.from_numpy(x)})
        np.testing.assert_allclose(t.numpy(), got, rtol=1e-15)
    y = torch_backend.forward(f, {"W": torch.from_numpy(W), "x": torch.from_numpy(x)})
    np.testing.assert_allclose(y.numpy(), f(W=W, x=x), rtol=1e-15)


def test_constant_function_has_an_empty_plan():
    f = sj.function("0 * x + 3", x=(2,))
    J = f.jacobian()
    assert J.nnz == 0
    np.testing.assert_array_equal(J.evaluate(x=[[1.0, 2.0]] * 3), np.zeros((3, 2, 2)))
    np.testing.assert_array_equal(f(x=[1.0, 2.0]), [3.0, 3.0])
    point = coerce_point(f.inputs, {"x": [1.0, 2.0]})
    for mode in torch_backend.MODES:
        np.testing.assert_array_equal(torch_backend.autograd_jacobians(f, point, mode)["x"], np.zeros((2, 2)))


def test_fold_constants_keeps_conditions_and_folds_each_constant_once():
    x = sympy.Symbol("x", real=True)
    expr = sympy.Piecewise((x * sympy.sqrt(3), x > sympy.pi), (2, True))
    folded = fold_constants(expr)
    assert folded.args[1].cond is sympy.true
    assert folded.args[0].cond == (x > sympy.Float(sympy.pi.evalf(17), 17))
    assert fold_constants(sympy.Rational(1, 3) * x + sympy.Integer(2)) == sympy.Rational(1, 3) * x + 2
    f = sj.function(expr, x=())
    np.testing.assert_allclose(f.jacobian().evaluate(x=[1.0, 4.0]), [0.0, np.sqrt(3)])


def test_plan_of_a_non_finite_constant_goes_to_code():
    x = sympy.Symbol("x", real=True)
    plan = plan_entries([x + sympy.Float("inf"), 2 * x], [x], "numpy")
    assert plan.code is not None and plan.code.n_entries == 1 and plan.n_polynomials == 1


# ------------------------------------------------------------------------------ torch
@pytest.mark.parametrize("case", CORPUS, ids=IDS)
def test_torch_forward_matches_generated_torch_code(case, sympy_only):
    f = make(case)
    rng = np.random.default_rng(8)
    vals = values(f, rng, (4,), np.float32)
    tensors = {k: torch.from_numpy(v).requires_grad_(True) for k, v in vals.items()}
    y = torch_backend.forward(f, tensors)
    assert y.dtype == torch.float32 and y.requires_grad and y.shape == (4,) + f.out_shape
    code = compile_entries(list(f.output.reshape(-1)), symbols_of(f), "torch")
    args = torch_backend._arguments(f, {k: t.detach() for k, t in tensors.items()})
    expected = torch_backend._assemble(code.fn(*args), torch.zeros(4, dtype=torch.float32))
    np.testing.assert_allclose(y.detach().numpy().reshape(4, -1), expected.numpy(), rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("case", CORPUS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_autograd_from_copies_equals_torch_func(case, dtype):
    f = make(case)
    point = coerce_point(f.inputs, values(f, np.random.default_rng(9), (), dtype))
    tensors = torch_backend.to_tensors(point)
    names = f.input_names

    def fn(*args):
        return torch_backend.forward(f, dict(zip(names, args)))

    for mode, transform in (("reverse", torch.func.jacrev), ("forward", torch.func.jacfwd)):
        got = torch_backend.autograd_jacobians(f, point, mode)
        expected = transform(fn, argnums=tuple(range(len(names))))(*(tensors[n] for n in names))
        for name, e in zip(names, expected):
            e = e.detach().numpy()
            # The point's dtype (jacfwd itself returns float64 for some float32 0-d graphs).
            assert got[name].dtype == dtype and got[name].shape == e.shape
            np.testing.assert_allclose(got[name], e, rtol=1e-6 if dtype == np.float32 else 1e-14, atol=1e-14)


def test_autograd_jacobians_refuse_a_batch_and_an_unknown_mode():
    f = sj.function("X @ X", X=(2, 2))
    batch = coerce_point(f.inputs, {"X": np.ones((3, 2, 2))})
    with pytest.raises(ValueError, match="one point, not a batch"):
        torch_backend.autograd_jacobians(f, batch, "reverse")
    point = coerce_point(f.inputs, {"X": np.ones((2, 2))})
    with pytest.raises(ValueError, match=r"mode: must be one of \('reverse', 'forward'\); received 'sideways'"):
        torch_backend.autograd_jacobians(f, point, "sideways")


# ------------------------------------------------------------------------------ validation shortcut
def test_real_by_construction_skips_only_polynomials():
    # the validation's one walk marks what is made of real symbols and real numbers by + * and
    # integer powers; SymPy's `is_real` is asked only of the others (NOT_POLYNOMIAL)
    from symjac._budget import NOT_POLYNOMIAL, scan_output

    def polynomial(f):
        flat = list(f.output.reshape(-1))
        scan = scan_output(flat, {s for inp in f.inputs for s in inp.flat_symbols})
        return [not scan.facts[e][1] & NOT_POLYNOMIAL for e in flat]

    assert all(polynomial(sj.function("X @ X + 2.5 * X", X=(2, 2))))
    assert polynomial(sj.function("sqrt(x)", x=())) == [False]


def test_non_real_output_is_still_refused():
    x = sympy.Symbol("x")
    with pytest.raises(sj.InvalidExpressionError, match=r"output entry \(\) is not real: sqrt\(-x\*\*2 - 1\)"):
        sj.function(sympy.sqrt(-1 - x**2), x=())


def test_compile_does_not_star_import_numpy():
    # lambdify(modules=["numpy"]) ran `from numpy import *`; generated code reads the `numpy` module.
    x = sympy.Symbol("x", real=True)
    namespace = _codegen.compile_entries([sympy.sin(x) * x], [x], "numpy").fn.__globals__
    assert namespace["numpy"] is np and "sin" not in namespace
