"""symjac.ops: the vocabulary of the expression language, as functions on symbolic arrays."""

import doctest
import math
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp

from symjac import ops
from symjac._stable import naive
from symjac._errors import DomainError, InvalidArgumentError, ShapeError

pytestmark = pytest.mark.timeout(120)


def symbols(name, shape):
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(shape):
        label = f"{name}[{', '.join(map(str, index))}]" if index else name
        out[index] = sp.Symbol(label, real=True)
    return out


x = sp.Symbol("x", real=True)
X = symbols("X", (2, 2))
M23 = symbols("M", (2, 3))
N34 = symbols("N", (3, 4))
u = symbols("u", (3,))
w = symbols("w", (2,))


def is_symbolic(array, shape):
    return (isinstance(array, np.ndarray) and array.dtype == object and array.shape == shape
            and all(isinstance(entry, sp.Expr) for entry in array.flat))


def test_public_names_are_pinned():
    assert ops.__all__ == [
        "as_symbolic", "exp", "log", "sin", "cos", "tan", "tanh", "sqrt", "abs", "relu",
        "sigmoid", "sum", "mean", "transpose", "mm", "matmul", "dot", "outer", "kron", "trace",
        "det", "inv", "solve", "softmax", "logsumexp", "norm",
        "log_softmax", "softplus", "logsigmoid", "log1p", "expm1", "logaddexp",
        # issue 13
        "erf", "asin", "acos", "atan", "atan2", "sinh", "cosh", "maximum", "minimum", "clamp",
        "where", "gt", "ge", "lt", "le", "eq", "ne", "var", "prod", "max", "min", "reshape",
        "permute", "swapaxes", "index", "concatenate", "stack", "diagonal", "diag", "eye", "bmm",
        "gather",
    ]


def test_docstring_examples_run():
    assert doctest.testmod(ops).failed == 0


def test_importing_ops_does_not_import_torch():
    code = ("import sys; import symjac.ops, symjac._parse; "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"


# --------------------------------------------------------------------------- as_symbolic


@pytest.mark.parametrize("given, expected", [
    (3, sp.Integer(3)),
    (np.int64(-2), sp.Integer(-2)),
    (0.1, sp.Rational(1, 10)),
    (np.float64(2.5), sp.Rational(5, 2)),
    (1e-3, sp.Rational(1, 1000)),
    (x, x),
    (sp.pi, sp.pi),
    (sp.Float(0.5), sp.Float(0.5)),
])
def test_as_symbolic_scalars_are_0d(given, expected):
    result = ops.as_symbolic(given)
    assert is_symbolic(result, ())
    assert result[()] == expected


def test_as_symbolic_arrays():
    assert ops.as_symbolic(X) is X  # already symbolic: returned as is
    numeric = ops.as_symbolic(np.array([[1, 2], [3, 4]]))
    assert is_symbolic(numeric, (2, 2)) and numeric[1, 0] == 3
    floats = ops.as_symbolic(np.array([0.5, 0.25], dtype=np.float32))
    assert floats.tolist() == [sp.Rational(1, 2), sp.Rational(1, 4)]
    nested = ops.as_symbolic([[x, 1], [2.5, x**2]])
    assert is_symbolic(nested, (2, 2)) and nested[1, 0] == sp.Rational(5, 2)
    matrix = ops.as_symbolic(sp.Matrix([[x, 1, 2]]))
    assert is_symbolic(matrix, (1, 3))
    mixed = ops.as_symbolic(np.array([x, 2, 0.5], dtype=object))
    assert mixed.tolist() == [x, 2, sp.Rational(1, 2)]


@pytest.mark.parametrize("bad, fragment", [
    (True, "booleans are not numbers here"),
    (np.bool_(False), "booleans are not numbers here"),
    (1 + 2j, "expected a real int or float; received complex"),
    (float("nan"), "numbers must be finite; received nan"),
    (float("inf"), "numbers must be finite; received inf"),
    ("x", "expected a SymPy expression or a real number; received str"),
    (None, "received NoneType"),
    (sp.Eq(x, 1), "expected a SymPy expression (sympy.Expr); received Equality"),
    (np.array(["a"]), "received an array of dtype <U1"),
    (np.array([1 + 1j]), "received an array of dtype complex128"),
    (np.array([True]), "received an array of dtype bool"),
    (np.array([x, "1"], dtype=object), "value[1]: expected a SymPy expression"),
    ([[1, 2], [3]], "value[0]: expected a SymPy expression or a real number; received list"),
])
def test_as_symbolic_refuses(bad, fragment):
    with pytest.raises(InvalidArgumentError) as info:
        ops.as_symbolic(bad)
    assert fragment in str(info.value)


def test_as_symbolic_names_the_argument():
    with pytest.raises(InvalidArgumentError, match=r"^consts\['c'\]: booleans"):
        ops.as_symbolic(True, argument="consts['c']")


def test_strings_are_never_parsed():
    with pytest.raises(InvalidArgumentError):
        ops.sin("__import__('os')")


# --------------------------------------------------------------------------- elementwise

ELEMENTWISE = {
    "exp": sp.exp, "log": sp.log, "sin": sp.sin, "cos": sp.cos, "tan": sp.tan,
    "tanh": sp.tanh, "sqrt": sp.sqrt, "abs": sp.Abs,
    "relu": lambda e: sp.Max(0, e), "sigmoid": lambda e: 1 / (1 + sp.exp(-e)),
}


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_matches_sympy(name):
    function = getattr(ops, name)
    result = function(X)
    assert is_symbolic(result, (2, 2))
    for index in np.ndindex(2, 2):
        assert result[index] == ELEMENTWISE[name](X[index])
    scalar = function(x)
    assert is_symbolic(scalar, ()) and scalar[()] == ELEMENTWISE[name](x)
    assert function(ops.as_symbolic(x))[()] == ELEMENTWISE[name](x)


def test_relu_and_abs_are_the_named_sympy_functions():
    assert ops.relu(x)[()] == sp.Max(0, x)
    assert isinstance(ops.relu(x)[()], sp.Max)
    assert isinstance(ops.abs(x)[()], sp.Abs)
    assert ops.relu(-3)[()] == 0


def test_elementwise_on_an_empty_array():
    assert ops.sin(np.empty((0, 2), dtype=object)).shape == (0, 2)


# --------------------------------------------------------------------------- reductions


def test_sum_mean_trace_norm_logsumexp():
    a, b, c, d = X.flat
    assert ops.sum(X)[()] == a + b + c + d
    assert ops.mean(X)[()] == (a + b + c + d) / 4
    assert ops.trace(X)[()] == a + d
    assert ops.norm(X)[()] == sp.sqrt(a**2 + b**2 + c**2 + d**2)
    assert ops.norm(u)[()] == sp.sqrt(sum(e**2 for e in u))
    assert naive(ops.logsumexp(u)[()]) == sp.log(sum(sp.exp(e) for e in u))
    assert ops.sum(x)[()] == x
    assert ops.sum(np.empty((0,), dtype=object))[()] == 0
    for function in (ops.sum, ops.mean, ops.trace, ops.norm, ops.logsumexp):
        assert function(X).shape == ()


def test_norm_of_a_scalar_is_its_absolute_value():
    assert ops.norm(x)[()] == sp.Abs(x)


def test_softmax_rows_sum_to_one():
    result = ops.softmax(M23)
    assert is_symbolic(result, (2, 3))
    for row in result:
        assert sp.simplify(naive(sp.Add(*row)) - 1) == 0
    assert sp.simplify(naive(result[1, 2]) - sp.exp(M23[1, 2]) / sum(sp.exp(e) for e in M23[1])) == 0


# --------------------------------------------------------------------------- products


def test_mm_matches_numpy_matmul():
    result = ops.mm(M23, N34)
    assert is_symbolic(result, (2, 4))
    expected = np.matmul(M23, N34)
    assert all(sp.expand(r - e) == 0 for r, e in zip(result.flat, expected.flat))


@pytest.mark.parametrize("left, right, shape", [
    (M23, N34, (2, 4)),
    (u, N34, (4,)),
    (M23, u, (2,)),
    (u, u, ()),
    (X, X, (2, 2)),
])
def test_matmul_has_numpy_semantics(left, right, shape):
    result = ops.matmul(left, right)
    assert is_symbolic(result, shape)
    expected = np.asarray(np.matmul(left, right), dtype=object)  # NumPy 2 on object arrays
    assert expected.shape == shape
    assert all(sp.expand(r - e) == 0 for r, e in zip(result.flat, expected.flat))


def test_matmul_is_exactly_the_sum_of_products():
    assert ops.matmul(X, X)[0, 1] == X[0, 0] * X[0, 1] + X[0, 1] * X[1, 1]


def test_numpy_at_operator_works_with_ops_in_a_callable():
    function = lambda A: ops.tanh(A @ A)  # noqa: E731 - what users write
    result = function(X)
    assert is_symbolic(result, (2, 2))
    assert result[0, 0] == sp.tanh(X[0, 0] ** 2 + X[0, 1] * X[1, 0])


def test_scalar_symbolic_array_arithmetic_stays_usable():
    scalar = ops.as_symbolic(x)
    product = scalar * 2  # NumPy returns the SymPy object for 0-d object arrays
    assert ops.as_symbolic(product).shape == ()
    assert ops.exp(product)[()] == sp.exp(2 * x)
    assert ops.sin(scalar + scalar)[()] == sp.sin(2 * x)
    assert (scalar * X).shape == (2, 2)


def test_dot_outer_kron():
    assert ops.dot(u, u)[()] == sum(e**2 for e in u)
    outer = ops.outer(w, u)
    assert is_symbolic(outer, (2, 3)) and outer[1, 2] == w[1] * u[2]
    kron = ops.kron(X, M23)
    assert is_symbolic(kron, (4, 6))
    assert kron[3, 5] == X[1, 1] * M23[1, 2]
    assert kron[2, 1] == X[1, 0] * M23[0, 1]
    assert kron.tolist() == np.kron(X, M23).tolist()


# --------------------------------------------------------------------------- linear algebra


def test_transpose():
    assert ops.transpose(M23).tolist() == M23.T.tolist()
    assert ops.transpose(u).tolist() == u.tolist()
    assert ops.transpose(x)[()] == x


def test_det():
    a, b, c, d = X.flat
    assert ops.det(X)[()] == a * d - b * c
    Z = symbols("Z", (3, 3))
    assert sp.expand(ops.det(Z)[()] - sp.Matrix(Z.tolist()).det()) == 0
    assert ops.det([[2, 1], [1, 1]])[()] == 1


def test_inv_is_adjugate_over_det_without_simplification():
    a, b, c, d = X.flat
    det = a * d - b * c
    result = ops.inv(X)
    assert result.tolist() == [[d / det, -b / det], [-c / det, a / det]]
    product = np.vectorize(sp.simplify)(ops.matmul(result, X))
    assert (product == np.eye(2, dtype=int)).all()


def test_solve_equals_inv_times_b():
    for b in (w, X):
        difference = ops.solve(X, b) - ops.matmul(ops.inv(X), b)
        assert all(sp.simplify(entry) == 0 for entry in np.ravel(difference))
    assert ops.solve([[2, 0], [0, 4]], [2, 4]).tolist() == [1, 1]


def test_singular_constant_matrix_is_a_domain_error():
    with pytest.raises(DomainError, match="inv: the matrix is singular"):
        ops.inv([[1, 2], [2, 4]])
    with pytest.raises(DomainError, match="solve: the matrix is singular"):
        ops.solve([[x, x], [x, x]], [1, 2])


SHAPE_ROWS = [
    (ops.mm, (X, M23.T), "mm: inner dimensions differ: left (2, 2), right (3, 2)"),
    (ops.mm, (u, X), "mm: needs two 2-D arrays, received shapes left (3,), right (2, 2)"),
    (ops.matmul, (X, N34), "matmul: inner dimensions differ: left (2, 2), right (3, 4)"),
    (ops.matmul, (x, X), "matmul: needs arrays of at least 1 dimension (use * for scalars)"),
    (ops.matmul, (symbols("T", (2, 2, 2)), symbols("S", (3, 2, 2))),
     "matmul: batch dimensions do not broadcast"),
    (ops.dot, (u, w), "dot: lengths differ: left (3,), right (2,)"),
    (ops.dot, (X, X), "dot: needs two 1-D arrays"),
    (ops.outer, (X, u), "outer: needs two 1-D arrays, received shapes left (2, 2), right (3,)"),
    (ops.kron, (u, X), "kron: needs two 2-D arrays"),
    (ops.trace, (M23,), "trace: needs a square matrix, received shape (2, 3)"),
    (ops.det, (u,), "det: needs a square matrix, received shape (3,)"),
    (ops.inv, (M23,), "inv: needs a square matrix, received shape (2, 3)"),
    (ops.solve, (M23, w), "solve: needs a square matrix, received shape (2, 3)"),
    (ops.solve, (X, u), "solve: the right-hand side needs 2 rows"),
    (ops.det, (symbols("T", (2, 2, 3)),), "det: needs a square matrix, received shape (2, 2, 3)"),
    (ops.mean, (np.empty((0,), dtype=object),), "mean: needs at least one entry"),
    (ops.logsumexp, (np.empty((0,), dtype=object),), "logsumexp: needs at least one entry"),
]


@pytest.mark.parametrize("function, args, message", SHAPE_ROWS,
                         ids=[row[2][:30] for row in SHAPE_ROWS])
def test_shape_errors_name_the_function_and_shapes(function, args, message):
    with pytest.raises(ShapeError) as info:
        function(*args)
    assert message in str(info.value)


def test_results_are_new_arrays():
    result = ops.transpose(X)
    result[0, 0] = sp.Integer(0)
    assert X[0, 0] != 0
    assert math.prod(ops.matmul(X, X).shape) == 4
