"""Closed matrix-calculus forms: printed only after the check against the element-wise Jacobian.

tests/test_render.py renders every expected string of CASES with KaTeX.
"""

import numpy as np
import pytest
import sympy

import symjac as sj
from symjac import _closed_form
from symjac._closed_form import ClosedForm, closed_form, translate, verify

A = [[2.0, 3.0], [4.0, 5.0]]
VEC = r"\frac{\partial \operatorname{vec} F}{\partial \operatorname{vec} X} = "
GRAD = r"\frac{\partial F}{\partial X} = "

# (id, expr, shapes, consts, expected sj.latex(f, form="matrix"))
CASES = [
    ("A_at_X", "A @ X", {"X": (2, 2)}, {"A": A}, VEC + r"I_{2} \otimes A"),
    ("X_at_A", "X @ A", {"X": (2, 2)}, {"A": A}, VEC + r"A^{T} \otimes I_{2}"),
    ("X_at_X", "X @ X", {"X": (2, 2)}, {}, VEC + r"I_{2} \otimes X + X^{T} \otimes I_{2}"),
    ("X_at_X_at_X", "X @ X @ X", {"X": (2, 2)}, {},
     VEC + r"\left(X^{T}\right)^{2} \otimes I_{2} + I_{2} \otimes X^{2} + X^{T} \otimes X"),
    ("inv", "inv(X)", {"X": (3, 3)}, {}, VEC + r"- \left(X^{T}\right)^{-1} \otimes X^{-1}"),
    ("det", "det(X)", {"X": (3, 3)}, {}, GRAD + r"\left|{X}\right| \left(X^{T}\right)^{-1}"),
    ("logdet", "log(det(X))", {"X": (3, 3)}, {}, GRAD + r"\left(X^{T}\right)^{-1}"),
    ("trace", "trace(X)", {"X": (3, 3)}, {}, GRAD + r"I_{3}"),
    ("trace_X_at_X", "trace(X @ X)", {"X": (3, 3)}, {}, GRAD + r"2 X^{T}"),
    ("sum", "sum(X)", {"X": (3, 2)}, {}, GRAD + r"\mathbf{1}_{3} \mathbf{1}_{2}^{T}"),
    ("mean", "mean(X)", {"X": (2, 3)}, {}, GRAD + r"\left(\frac{1}{6}\right) \mathbf{1}_{2} \mathbf{1}_{3}^{T}"),
    ("gram", "X.T @ X", {"X": (3, 2)}, {},
     VEC + r"I_{2} \otimes X^{T} + \left(X^{T} \otimes I_{2}\right) K_{3,2}"),
    ("linear_combination", "2 * X - X.T / 2", {"X": (2, 2)}, {}, VEC + r"2 I_{4} - \left(\frac{1}{2}\right) K_{2,2}"),
    ("matvec_both_inputs", "W @ x", {"W": (2, 3), "x": (3,)}, {},
     r"\begin{aligned}\frac{\partial \operatorname{vec} F}{\partial \operatorname{vec} W} &= x^{T} \otimes I_{2} \\ "
     r"\frac{\partial F}{\partial x} &= W\end{aligned}"),
    ("quadratic_form", "x @ B @ x", {"x": (2,)}, {"B": [[1.0, 2.0], [0.0, 3.0]]},
     r"\frac{\partial F}{\partial x} = B x + B^{T} x"),
    ("dot", "dot(x, x)", {"x": (3,)}, {}, r"\frac{\partial F}{\partial x} = 2 x"),
    ("composition", "log(det(X @ X)) + trace(inv(X))", {"X": (2, 2)}, {},
     GRAD + r"2 \left(X^{T}\right)^{-1} - \left(X^{T}\right)^{-2}"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_verified_closed_forms(case):
    _, expr, shapes, consts, expected = case
    f = sj.function(expr, consts=consts, **shapes)
    assert sj.latex(f, form="matrix") == expected
    for name in f.input_names:
        found = closed_form(f, name)
        assert found.points == _closed_form.CHECK_POINTS
        assert found.max_error <= _closed_form.CHECK_RTOL


def test_vec_convention_matches_torch_layout():
    """`d vec F / d vec X` stacks columns: torch's J[i, j, k, l] is entry [i + j p, k + l m]."""
    f = sj.function("X @ X", X=(3, 3))
    x = np.random.default_rng(3).standard_normal((3, 3))
    J = f.jacobian().evaluate(X=x)
    kron = np.kron(np.eye(3), x) + np.kron(x.T, np.eye(3))
    for i, j, k, l in np.ndindex(J.shape):
        assert kron[i + 3 * j, k + 3 * l] == pytest.approx(J[i, j, k, l])


def test_sympys_log_det_derivative_is_refused():
    """SymPy 1.14 says d log(det(X)) / dX = 0: that candidate is never printed."""
    f = sj.function("log(det(X))", X=(3, 3))
    expr, symbols = translate(f)
    sympys = sympy.log(sympy.Determinant(symbols["X"])).diff(symbols["X"])
    assert sympys == sympy.ZeroMatrix(3, 3)  # SymPy 1.14's answer, wrong
    with pytest.raises(sj.ClosedFormError, match=r"disagrees with the element-wise Jacobian .* refused, not printed"):
        verify(f, "X", sympys, "gradient", symbols)
    # and ours, from the rules, passes the same check
    assert sj.latex(f, form="matrix") == GRAD + r"\left(X^{T}\right)^{-1}"


def test_sympys_unevaluated_det_derivative_is_refused():
    f = sj.function("det(X)", X=(2, 2))
    _, symbols = translate(f)
    sympys = sympy.Determinant(symbols["X"]).diff(symbols["X"])  # stays Derivative(...)
    with pytest.raises(sj.ClosedFormError, match=r"cannot be evaluated at a random point \(cannot evaluate ArrayDerivative .*\); refused"):
        verify(f, "X", sympys, "gradient", symbols)


def test_a_wrong_rule_is_refused_not_printed(monkeypatch):
    """Plant a wrong rule (d inv(X) without its minus sign): the check refuses what it derives."""
    real = _closed_form._matrix_differential

    def wrong(expr, x):
        terms = real(expr, x)
        if isinstance(expr, sympy.Inverse):
            terms = [_closed_form._Term(-t.coef, t.left, t.transposed, t.right) for t in terms]
        return terms

    monkeypatch.setattr(_closed_form, "_matrix_differential", wrong)
    f = sj.function("inv(X)", X=(2, 2))
    with pytest.raises(sj.ClosedFormError) as info:
        sj.latex(f, form="matrix")
    message = str(info.value)
    assert "the closed form" in message and "d(inv(X)) / dX disagrees with the element-wise Jacobian" in message
    assert "refused, not printed" in message and "relative error" in message


def test_a_candidate_of_the_wrong_shape_is_refused():
    f = sj.function("X @ X", X=(2, 2))
    _, symbols = translate(f)
    with pytest.raises(sj.ClosedFormError, match=r"has shape \(2, 2\), the element-wise Jacobian \(4, 4\)"):
        verify(f, "X", symbols["X"], "vec", symbols)


def test_a_correct_candidate_passes_verify():
    f = sj.function("X @ X", X=(2, 2))
    _, symbols = translate(f)
    X = symbols["X"]
    I2 = _closed_form.identity(2)
    from sympy.matrices.expressions.kronecker import KroneckerProduct

    found = verify(f, "X", KroneckerProduct(I2, X) + KroneckerProduct(X.T, I2), "vec", symbols)
    assert isinstance(found, ClosedForm) and found.max_error < 1e-12


@pytest.mark.parametrize(
    "expr, shapes, message",
    [
        ("sin(X)", {"X": (2, 2)}, r"no closed form is known for 'sin\(X\)': 'sin\(X\)' has no matrix form here"),
        ("X * X", {"X": (2, 2)}, r"'X \* X' multiplies element by element"),
        ("X + 1", {"X": (2, 2)}, r"adds a matrix and a scalar \(broadcasting\)"),
        ("sum(T)", {"T": (2, 2, 2)}, r"input T has shape \(2, 2, 2\); closed forms here take vectors and matrices"),
        ("det(X) * X", {"X": (2, 2)}, r"multiplies element by element"),
    ],
)
def test_no_closed_form_says_why(expr, shapes, message):
    with pytest.raises(sj.ClosedFormError, match=message):
        sj.latex(sj.function(expr, **shapes), form="matrix")


def test_functions_built_from_a_callable_have_no_closed_form():
    f = sj.function(lambda X: X @ X, X=(2, 2))
    with pytest.raises(sj.ClosedFormError, match="derived from expression text or a SymPy matrix expression; "
                                                 "this Function was built from a callable"):
        sj.latex(f, form="matrix")


_MX = sympy.MatrixSymbol("X", 3, 3)
_MA = sympy.MatrixSymbol("A", 3, 3)
_A3 = [[2.0, 1.0, 0.0], [0.5, 3.0, 1.0], [0.0, 1.0, 4.0]]


@pytest.mark.parametrize(
    ("expr", "consts", "text"),
    [
        (_MX ** 2, {}, "X @ X"),
        (_MX * _MX * _MX, {}, "X @ X @ X"),
        (_MX.T * _MX, {}, "X.T @ X"),
        (sympy.Inverse(_MX), {}, "inv(X)"),
        (sympy.Determinant(_MX), {}, "det(X)"),
        (sympy.log(sympy.Determinant(_MX)), {}, "log(det(X))"),
        (sympy.Trace(_MA * _MX), {"A": _A3}, "trace(A @ X)"),
        (_MA * _MX + 2 * _MX.T, {"A": _A3}, "A @ X + 2 * X.T"),
    ],
    ids=["pow", "cube", "gram", "inv", "det", "logdet", "trace", "affine"],
)
def test_sympy_matrix_expressions_have_the_same_closed_form_as_text(expr, consts, text):
    from_sympy = sj.function(expr, X=(3, 3), consts=consts)
    from_text = sj.function(text, X=(3, 3), consts=consts)
    form = closed_form(from_sympy, "X")
    assert form.max_error < 1e-9
    # the same derivative as the text's (SymPy may order the terms differently)
    point = {"X": 2.0 * np.eye(3) + 0.1 * np.arange(9.0).reshape(3, 3), "A": np.array(_A3)}
    values = {symbol: point[name] for name, symbol in translate(from_sympy)[1].items()}
    expected = _closed_form.evaluate(closed_form(from_text, "X").expr, {
        symbol: point[name] for name, symbol in translate(from_text)[1].items()})
    np.testing.assert_allclose(_closed_form.evaluate(form.expr, values), expected, rtol=1e-12)
    assert sj.latex(from_sympy, form="matrix").startswith(("\\frac{\\partial F}", "\\frac{\\partial \\operatorname{vec} F}"))


def test_a_sympy_matrix_expression_outside_the_rules_says_why():
    f = sj.function(sympy.HadamardProduct(_MX, _MX), X=(3, 3))
    with pytest.raises(sj.ClosedFormError, match=r"no closed form is known for d\(HadamardProduct\(X, X\)\) / dX: HadamardProduct"):
        sj.latex(f, form="matrix")


def test_a_sympy_matrix_expression_with_a_scalar_input_says_why():
    x = sympy.Symbol("x")
    f = sj.function(x * _MX, X=(3, 3), x=())
    with pytest.raises(sj.ClosedFormError, match="input x is a scalar Symbol"):
        sj.latex(f, form="matrix")


def test_a_pickled_sympy_function_keeps_its_matrix_expression():
    import pickle

    f = pickle.loads(pickle.dumps(sj.function(_MX ** 2, X=(3, 3))))
    assert f.matrix_expression == _MX ** 2
    assert closed_form(f, "X").kind == "vec"


def test_closed_form_is_a_value_error_and_a_symjac_error():
    assert issubclass(sj.ClosedFormError, ValueError) and issubclass(sj.ClosedFormError, sj.SymjacError)


def test_closed_form_is_cached():
    f = sj.function("X @ X", X=(2, 2))
    assert closed_form(f, "X") is closed_form(f, "X")
