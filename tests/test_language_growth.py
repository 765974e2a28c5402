"""The language grows (issue 13): axis reductions, batched linear algebra, shapes, piecewise, erf
and the inverse trigonometric functions, in `symjac.ops` and in the text language, from one table
(`symjac._vocabulary`)."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import symjac as sj
from symjac import ops
from symjac._parse import FUNCTIONS
from symjac._vocabulary import OPERATIONS, TEXT_FUNCTIONS


def symbols(name, shape):
    cells = [sp.Symbol(f"{name}{'_'.join(map(str, i))}", real=True) for i in np.ndindex(shape)]
    return np.array(cells, dtype=object).reshape(shape)


X = symbols("X", (2, 3))
T = symbols("T", (2, 2, 2))


# --------------------------------------------------------------------------- one table


def test_text_functions_are_the_table_rows():
    assert set(FUNCTIONS) == set(TEXT_FUNCTIONS)
    for name, row in OPERATIONS.items():
        assert row.implementation is getattr(ops, name)
        assert name in ops._SHAPE_RULES  # one shape rule per row
        assert name in ops.__all__


def test_rows_document_latex_for_text_functions():
    assert all(row.latex for row in TEXT_FUNCTIONS.values())


# --------------------------------------------------------------------------- ops, real values


def test_axis_reductions_with_keepdim():
    a = [[1, 2, 3], [4, 5, 6]]
    assert ops.sum(a, axis=1).tolist() == [6, 15]
    assert ops.sum(a, axis=0, keepdim=True).tolist() == [[5, 7, 9]]
    assert ops.sum(a, axis=(0, 1))[()] == 21
    assert ops.mean(a, axis=-1).tolist() == [2, 5]
    assert ops.prod(a, axis=1).tolist() == [6, 120]
    assert ops.max(a, axis=0).tolist() == [4, 5, 6]
    assert ops.min(a, axis=1, keepdim=True).tolist() == [[1], [4]]
    assert ops.var(a, axis=1).tolist() == [1, 1]
    assert ops.var(a, axis=1, correction=0).tolist() == [sp.Rational(2, 3)] * 2
    assert ops.norm([[3, 4], [6, 8]], axis=1).tolist() == [5, 10]
    assert ops.norm([-3, 4], ord=1)[()] == 7
    assert ops.logsumexp([[0, 0]], axis=1)[0] == sp.log(2)


def test_softmax_over_any_axis_and_zero_d():
    s = ops.softmax(X, axis=0)
    # the columns sum to 1, and each entry is exp(x) / sum(exp) (written stably, symjac._stable)
    values = {X[i, j]: v for (i, j), v in zip(np.ndindex(X.shape), [0.3, -1.2, 2.0, 0.5, 4.0, -3.0])}
    column = [float(s[i, 1].subs(values).evalf(30)) for i in range(X.shape[0])]
    assert abs(sum(column) - 1) < 1e-15
    expected = np.exp(4.0) / (np.exp(-1.2) + np.exp(4.0))
    assert abs(float(s[1, 1].subs(values).evalf(30)) - expected) < 1e-15
    assert ops.softmax(sp.Symbol("q", real=True))[()] == 1


def test_batched_linear_algebra():
    d = ops.det(T)
    assert d.shape == (2,) and d[1] == T[1, 0, 0] * T[1, 1, 1] - T[1, 0, 1] * T[1, 1, 0]
    product = ops.matmul(T, T)
    assert product[1, 0, 1] == ops.matmul(T[1], T[1])[0, 1]
    assert ops.matmul(T, [1, 2]).shape == (2, 2)
    assert ops.bmm(T, T).tolist() == product.tolist()
    inverse = ops.inv(T)
    assert sp.simplify(ops.matmul(T[0], inverse[0])[0, 0]) == 1
    assert ops.solve(T, T[:, :, 0]).shape == (2, 2)


def test_shapes():
    assert ops.reshape(X, (3, 2)).tolist() == X.reshape(3, 2).tolist()
    assert ops.reshape(X, (-1,)).shape == (6,)
    assert ops.permute(T, (2, 0, 1)).tolist() == np.transpose(T, (2, 0, 1)).tolist()
    assert ops.transpose(T).tolist() == T.T.tolist()
    assert ops.swapaxes(X, 0, 1).tolist() == X.T.tolist()
    assert ops.index(X, (slice(None), slice(1, None))).tolist() == X[:, 1:].tolist()
    assert ops.concatenate(X, X, axis=1).shape == (2, 6)
    assert ops.stack(X, X, axis=-1).shape == (2, 3, 2)
    assert ops.diagonal(T, axis1=1, axis2=2).tolist() == [[T[0, 0, 0], T[0, 1, 1]], [T[1, 0, 0], T[1, 1, 1]]]
    assert ops.diag([1, 2]).tolist() == [[1, 0], [0, 2]]
    assert ops.eye(2).tolist() == [[1, 0], [0, 1]]


def test_piecewise_and_new_elementwise():
    x = sp.Symbol("x", real=True)
    assert ops.where(ops.gt(x, 0), x, 2 * x)[()] == sp.Piecewise((x, x > 0), (2 * x, True))
    assert ops.where(ops.gt([1, -1], 0), 10, 20).tolist() == [10, 20]
    assert ops.clamp([-2, 0, 2], -1, 1).tolist() == [-1, 0, 1]
    assert ops.maximum(x, 0)[()] == sp.Max(x, 0)
    assert ops.erf(x)[()] == sp.erf(x)
    assert ops.atan2(1, 1)[()] == sp.pi / 4
    assert ops.asin(1)[()] == sp.pi / 2 and ops.acos(1)[()] == 0 and ops.atan(1)[()] == sp.pi / 4


@pytest.mark.parametrize("call, error, message", [
    (lambda: ops.sum(X, axis=2), sj.ShapeError, r"sum: axis 2 is out of range for shape \(2, 3\)"),
    (lambda: ops.sum(X, axis=(0, 0)), sj.ShapeError, "axis 0 is repeated"),
    (lambda: ops.sum(X, axis=1.0), sj.InvalidArgumentError, "axis must be an int"),
    (lambda: ops.sum(X, keepdim=1), sj.InvalidArgumentError, "keepdim must be True or False"),
    (lambda: ops.var([1], correction=1), sj.ShapeError, "needs more than correction=1 entries"),
    (lambda: ops.max(np.empty((0,), dtype=object)), sj.ShapeError, "needs at least one entry"),
    (lambda: ops.reshape(X, (4, 2)), sj.ShapeError, r"cannot reshape shape \(2, 3\)"),
    (lambda: ops.permute(X, (0, 0)), sj.ShapeError, "a permutation"),
    (lambda: ops.concatenate(X, T), sj.ShapeError, "shapes differ outside axis 0"),
    (lambda: ops.stack(X, X.T), sj.ShapeError, "all arrays need one shape"),
    (lambda: ops.bmm(X, X), sj.ShapeError, "bmm: needs two 3-D arrays"),
    (lambda: ops.det(symbols("S", (2, 2, 3))), sj.ShapeError, "det: needs a square matrix"),
    (lambda: ops.where([1], X, X), sj.InvalidArgumentError, "a condition must be a comparison"),
    (lambda: ops.eye(0), sj.InvalidArgumentError, "eye: n must be a positive int"),
    (lambda: ops.norm(X, ord=3), sj.InvalidArgumentError, "ord must be 1 or 2"),
])
def test_bad_calls_name_the_rule(call, error, message):
    with pytest.raises(error, match=message):
        call()


# --------------------------------------------------------------------------- text


@pytest.mark.parametrize("text, shapes, expected", [
    ("sum(X, axis=1, keepdim=True)", {"X": (2, 3)}, lambda X: ops.sum(X, axis=1, keepdim=True)),
    ("sum(X, axis=(0, 1))", {"X": (2, 3)}, lambda X: ops.sum(X)),
    ("softmax(X, axis=0)", {"X": (2, 3)}, lambda X: ops.softmax(X, axis=0)),
    ("var(X, axis=-1, correction=0)", {"X": (2, 3)}, lambda X: ops.var(X, axis=-1, correction=0)),
    ("norm(X, axis=0, ord=1)", {"X": (2, 3)}, lambda X: ops.norm(X, axis=0, ord=1)),
    ("X[1:, ::2]", {"X": (3, 4)}, lambda X: X[1:, ::2]),
    ("X[-1, :2]", {"X": (3, 4)}, lambda X: X[-1, :2]),
    ("where(X > 0, X, -X)", {"X": (2, 2)}, lambda X: ops.where(ops.gt(X, 0), X, -X)),
    ("where(X <= 1, 1, X)", {"X": (2,)}, lambda X: ops.where(ops.le(X, 1), 1, X)),
    ("reshape(X, shape=(3, -1))", {"X": (2, 3)}, lambda X: ops.reshape(X, (3, 2))),
    ("permute(X, axes=(1, 0, 2))", {"X": (2, 1, 2)}, lambda X: ops.permute(X, (1, 0, 2))),
    ("concatenate(X, X, X, axis=0)", {"X": (2,)}, lambda X: ops.concatenate(X, X, X)),
    ("det(X) + eye(2)[0, 0]", {"X": (3, 2, 2)}, lambda X: ops.det(X) + 1),
    ("X @ X", {"X": (2, 2, 2)}, lambda X: ops.matmul(X, X)),
    ("max(X, axis=1) - min(X, axis=1)", {"X": (2, 3)}, lambda X: ops.max(X, axis=1) - ops.min(X, axis=1)),
])
def test_text_says_the_same_as_ops(text, shapes, expected):
    f = sj.function(text, **shapes)
    (inp,) = f.inputs
    assert f.output.tolist() == np.asarray(expected(inp.symbols)).tolist()


@pytest.mark.parametrize("text, message", [
    ("sum(X, axis=y)", "axis= must be an int literal or a tuple of int literals"),
    ("sum(X, axis=1 + 1)", "axis= must be an int literal"),
    ("sum(X, keepdim=1)", "keepdim= must be True or False"),
    ("sum(X, keepdim=X)", "keepdim= must be True or False"),
    ("sum(X, foo=1)", "keyword argument 'foo' is not allowed; allowed keywords: axis, keepdim"),
    ("sum(X, **{'axis': 1})", "keyword argument '\\*\\*' is not allowed"),
    ("exp(X, axis=1)", "exp: keyword arguments are not allowed"),
    ("sum(X, axis=10**100)", "axis= must be an int literal"),
    ("reshape(X, shape=(y, 2))", "shape= must be a tuple of int literals"),
    ("X > 0", "comparisons are allowed only as the condition of where"),
    ("where(0 < X < 1, X, 0)", "chained comparison"),
    ("X[0:y]", "slice bounds must be int literals"),
    ("X[::-1]", "a slice step must be a positive int literal"),
    ("eye(y)", "eye: arguments must be int literals"),
    ("concatenate()", "concatenate takes 1 or more arguments"),
    ("clamp(X)", "clamp takes 2 to 3 arguments"),
])
def test_keyword_and_literal_abuse_is_refused(text, message):
    with pytest.raises(sj.InvalidExpressionError, match=message):
        sj.function(text, X=(2, 3), y=())


def test_huge_axis_literal_is_a_shape_error_not_a_crash():
    with pytest.raises(sj.ShapeError, match="out of range"):
        sj.function("sum(X, axis=123456789012345678901234567890)", X=(2, 3))


def test_shape_errors_in_text_name_both():
    with pytest.raises(sj.ShapeError, match=r"sum: axis 3 is out of range.*\(in 'sum\(X, axis=3\)'\)"):
        sj.function("sum(X, axis=3)", X=(2, 3))
    with pytest.raises(sj.ShapeError, match="concatenate: shapes differ outside axis 0"):
        sj.function("concatenate(X, y)", X=(2, 3), y=(3,))


# --------------------------------------------------------------------------- checks stay right


@pytest.mark.parametrize("text, shapes", [
    ("erf(x) * atan2(x, x**2 + 1)", {"x": (3,)}),
    ("asin(x / 3) + acos(x / 3) * atan(x)", {"x": (3,)}),
    ("where(x > 0, x**2, sin(x))", {"x": (3,)}),
    ("max(X, axis=1) + var(X, axis=0)[0]", {"X": (2, 3)}),
    ("det(T) * logsumexp(T, axis=(1, 2))", {"T": (2, 2, 2)}),
    ("softmax(X, axis=0) * clamp(X, -1, 1)", {"X": (2, 2)}),
])
def test_check_passes_on_new_operations(text, shapes):
    assert sj.check(sj.function(text, **shapes), samples=10).verdict == "pass"


def test_torch_counterparts_verify_in_both_dtypes():
    torch = pytest.importorskip("torch")
    spec = sj.function("erf(x) + atan2(x, x + 2) + clamp(x, -1, 1) + where(x > 0, x, 0.1 * x)", x=(3,))

    def impl(x):
        return torch.erf(x) + torch.atan2(x, x + 2) + x.clamp(-1, 1) + torch.where(x > 0, x, 0.1 * x)

    for dtype in ("float64", "float32"):
        assert sj.verify(impl, spec, samples=20, dtype=dtype).verdict == "pass"
    wrong = lambda x: impl(x) + 1e-4 * x  # noqa: E731
    assert sj.verify(wrong, spec, samples=5).verdict == "fail"


def test_erf_generated_code_keeps_float32():
    f = sj.function("erf(x)", x=(2,))
    value = f(x=np.array([0.5, -1.0], dtype=np.float32))
    assert value.dtype == np.float32
    np.testing.assert_allclose(value, [0.5204998778, -0.8427007929], rtol=1e-6)
