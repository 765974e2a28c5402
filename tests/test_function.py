"""Defining a Function three ways gives one result; the exact Jacobian in torch's layout."""

import numpy as np
import pytest
import sympy

import symjac as sj
from symjac import ops

A = [[2.0, 3.0], [4.0, 5.0]]
X0 = [[1.0, 2.0], [3.0, 4.0]]


def test_issue_example_text():
    f = sj.function("A @ X", X=(2, 2), consts={"A": A})
    J = f.jacobian()
    assert J.shape == (2, 2, 2, 2)
    value = J.evaluate(X=X0)
    # d(A X)[i,j]/dX[k,l] = A[i,k] delta_jl
    expected = np.einsum("ik,jl->ijkl", np.array(A), np.eye(2))
    np.testing.assert_array_equal(value, expected)
    assert value.dtype == np.float64


def test_three_ways_one_result():
    M = sympy.MatrixSymbol("X", 3, 3)
    fs = [
        sj.function("X @ X + sin(X)", X=(3, 3)),
        sj.function(lambda X: X @ X + ops.sin(X), X=(3, 3)),
        sj.function(M * M + M.applyfunc(sympy.sin), X=(3, 3)),
    ]
    outputs = [f.output for f in fs]
    for other in outputs[1:]:
        assert all(sympy.simplify(a - b) == 0 for a, b in zip(outputs[0].ravel(), other.ravel()))
    x = np.random.default_rng(0).standard_normal((3, 3))
    values = [f.jacobian().evaluate(X=x) for f in fs]
    for v in values[1:]:
        np.testing.assert_allclose(v, values[0], rtol=1e-14, atol=1e-14)


def test_sympy_scalar_symbols_and_constants_by_name():
    x, a = sympy.symbols("x a")
    f = sj.function(a * sympy.sin(x), x=(), consts={"a": 3.0})
    np.testing.assert_allclose(f.jacobian().evaluate(x=0.5), 3.0 * np.cos(0.5))


def test_sympy_matrix_symbol_shape_mismatch():
    with pytest.raises(sj.ShapeError, match=r"MatrixSymbol 'X' has shape \(2, 2\).*\(3, 3\)"):
        sj.function(sympy.MatrixSymbol("X", 2, 2) ** 2, X=(3, 3))


def test_sympy_unknown_symbol():
    y = sympy.Symbol("y")
    with pytest.raises(sj.InvalidExpressionError, match="unknown symbol y"):
        sj.function(sympy.Symbol("x") * y, x=())


def test_function_is_immutable_and_output_is_a_copy():
    f = sj.function("x * 2", x=())
    with pytest.raises(AttributeError, match="immutable"):
        f.foo = 1
    out = f.output
    out[()] = sympy.Integer(7)
    assert f.output[()] == 2 * sympy.Symbol("x", real=True)


@pytest.mark.parametrize(
    "shapes, message",
    [
        ({"X": (-1, 2)}, "dimensions must be positive ints"),
        ({"X": (2.5, 2)}, "dimensions must be positive ints"),
        ({"X": (0, 3)}, "dimensions must be positive ints"),
        ({"X": ("a", 2)}, "dimensions must be positive ints"),
        ({"X": (True, 2)}, "dimensions must be positive ints"),
        ({"X": "2x2"}, "shape must be a tuple"),
        ({"X": (1, 1, 1, 1, 1)}, "at most 4 dims"),
    ],
)
def test_bad_shapes(shapes, message):
    with pytest.raises(sj.ShapeError, match=message):
        sj.function("sum(X)", **shapes)


@pytest.mark.parametrize("name", ["sin", "exp", "torch", "numpy", "lambda", "_x"])
def test_reserved_or_invalid_input_names(name):
    with pytest.raises(sj.InvalidArgumentError, match=name):
        sj.function("1", **{name: ()})


def test_matmul_shape_error_names_both_shapes():
    with pytest.raises(sj.ShapeError, match=r"\(2, 2\).*\(3, 2\)"):
        sj.function("X @ Y", X=(2, 2), Y=(3, 2))


def test_inv_needs_square():
    with pytest.raises(sj.ShapeError, match=r"\(2, 3\)"):
        sj.function("inv(X)", X=(2, 3))


def test_budget_refused_before_symbolic_work(monkeypatch):
    from symjac import _function

    def no_symbolic_work(*args, **kwargs):
        raise AssertionError("symbolic work started")

    monkeypatch.setattr(_function, "_entry_symbols", no_symbolic_work)
    with pytest.raises(sj.TooLargeError, match="over the budget of 4096"):
        sj.function("X @ X", X=(300, 300))


def test_no_inputs_declared():
    with pytest.raises(sj.InvalidArgumentError, match="declare at least one input"):
        sj.function("1")


def test_const_and_input_clash():
    with pytest.raises(sj.InvalidArgumentError, match="both as an input and as a constant"):
        sj.function("X", X=(2,), consts={"X": [1.0, 2.0]})


def test_function_pickles():
    import pickle

    f = sj.function("A @ X", X=(2, 2), consts={"A": A})
    g = pickle.loads(pickle.dumps(f))
    np.testing.assert_array_equal(g.jacobian().evaluate(X=X0), f.jacobian().evaluate(X=X0))
    assert g.source == f.source
