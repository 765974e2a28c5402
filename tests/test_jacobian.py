"""The exact Jacobian: layout, sparsity, several inputs, batches, dtypes, generated code."""

import numpy as np
import pytest
import sympy

import symjac as sj

torch = pytest.importorskip("torch")


def torch_jacobian(fn, *xs):
    out = torch.autograd.functional.jacobian(fn, tuple(torch.as_tensor(x) for x in xs))
    return [o.numpy() for o in out]


def test_layout_matches_torch_for_matrix_square():
    f = sj.function("X @ X", X=(3, 3))
    x = np.random.default_rng(1).standard_normal((3, 3))
    (expected,) = torch_jacobian(lambda X: X @ X, x)
    np.testing.assert_allclose(f.jacobian().evaluate(X=x), expected, rtol=1e-14, atol=1e-14)


def test_layout_is_not_transposed_for_nonsquare():
    f = sj.function("W @ x", W=(2, 3), x=(3,))
    W = np.arange(6.0).reshape(2, 3)
    x = np.array([1.0, -2.0, 0.5])
    JW, Jx = f.jacobian("W"), f.jacobian("x")
    assert JW.shape == (2, 2, 3) and Jx.shape == (2, 3)
    np.testing.assert_array_equal(Jx.evaluate(W=W, x=x), W)
    expected_W, expected_x = torch_jacobian(lambda W, x: W @ x, W, x)
    np.testing.assert_array_equal(JW.evaluate(W=W, x=x), expected_W)
    np.testing.assert_array_equal(Jx.evaluate(W=W, x=x), expected_x)


def test_wrt_required_with_several_inputs():
    f = sj.function("W @ x", W=(2, 3), x=(3,))
    with pytest.raises(sj.InvalidArgumentError, match="pass wrt="):
        f.jacobian()
    assert list(f.jacobians()) == ["W", "x"]
    with pytest.raises(sj.InvalidArgumentError, match="no input named 'y'"):
        f.jacobian("y")


def test_sparsity_is_exact_for_matrix_square():
    n = 4
    J = sj.function("X @ X", X=(n, n)).jacobian()
    assert J.nnz == 2 * n**3 - n**2  # entries with i == k and j == l share one nonzero
    mask = J.sparsity
    i, j, k, l = np.indices((n, n, n, n))
    np.testing.assert_array_equal(mask, (i == k) | (j == l))


def test_structural_zeros_never_differentiated():
    J = sj.function("sin(x) * 2", x=(5,)).jacobian()
    assert J.nnz == 5 and list(J.rows) == list(J.cols) == list(range(5))


def test_to_array_is_dense_sympy_in_torch_layout():
    J = sj.function("X @ X", X=(2, 2)).jacobian().to_array()
    X = sympy.Matrix(2, 2, lambda i, j: sympy.Symbol(f"X[{i}, {j}]", real=True))
    # d(XX)[0,1]/dX[0,0] = X[0,1]
    assert J[0, 1, 0, 0] == X[0, 1]
    assert J.shape == (2, 2, 2, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept_forward_and_jacobian(dtype):
    f = sj.function("sqrt(2) * exp(x) + pi", x=(3,))
    x = np.array([0.1, 0.2, 0.3], dtype=dtype)
    assert f(x=x).dtype == dtype
    assert f.jacobian().evaluate(x=x).dtype == dtype


def test_ints_and_lists_become_float64():
    f = sj.function("x * x", x=(2,))
    assert f.jacobian().evaluate(x=[1, 2]).dtype == np.float64


def test_batched_evaluation_with_constant_entries():
    f = sj.function("A @ X", X=(2, 2), consts={"A": [[2.0, 3.0], [4.0, 5.0]]})
    xs = np.random.default_rng(2).standard_normal((7, 5, 2, 2))
    J = f.jacobian().evaluate(X=xs)
    assert J.shape == (7, 5, 2, 2, 2, 2)
    np.testing.assert_array_equal(J[3, 1], f.jacobian().evaluate(X=xs[3, 1]))
    np.testing.assert_allclose(f(X=xs), np.array([[2.0, 3.0], [4.0, 5.0]]) @ xs)


def test_torch_forward_keeps_graph_and_dtype():
    from symjac.backends import torch_backend

    f = sj.function("sum(X @ X)", X=(2, 2))
    X = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    y = torch_backend.forward(f, {"X": X})
    assert y.dtype == torch.float32 and y.requires_grad
    (g,) = torch.autograd.grad(y, X)
    ones = torch.ones(2, 2)
    np.testing.assert_allclose(g.numpy(), (ones @ X.T + X.T @ ones).detach().numpy(), rtol=1e-6)


def test_torch_exact_jacobian_matches_numpy_batched():
    from symjac.backends import torch_backend

    f = sj.function("softmax(x) * relu(x)", x=(4,))
    xs = np.random.default_rng(3).standard_normal((6, 4))
    Jt = torch_backend.exact_jacobian(f.jacobian(), {"x": torch.from_numpy(xs)})
    np.testing.assert_allclose(Jt.numpy(), f.jacobian().evaluate(x=xs), rtol=1e-13, atol=1e-15)


def test_generated_source_never_contains_user_names():
    from symjac.backends._numpy import compiled_jacobian

    f = sj.function("Xsecret @ Xsecret", Xsecret=(2, 2))
    source = compiled_jacobian(f.jacobian()).source
    assert "Xsecret" not in source and "def " in source


def test_value_shape_and_finiteness_errors():
    J = sj.function("X @ X", X=(2, 2)).jacobian()
    with pytest.raises(sj.ShapeError, match=r"expected shape \(2, 2\).*received shape \(3,\)"):
        J.evaluate(X=[1.0, 2.0, 3.0])
    with pytest.raises(sj.InvalidArgumentError, match=r"finite.*nan at index \(0, 1\)"):
        J.evaluate(X=[[1.0, float("nan")], [1.0, 2.0]])
    with pytest.raises(sj.InvalidArgumentError, match="missing a value for input 'X'"):
        J.evaluate()
    with pytest.raises(sj.InvalidArgumentError, match="no input named 'Y'"):
        J.evaluate(X=np.eye(2), Y=1.0)
