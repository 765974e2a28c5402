"""Field bugs of the language, the symbolic build and code generation (issue 15, part A).

Deep expressions (the one iterative walk, `symjac._dag`), constants outside the real domain,
crashes that escaped as raw Python errors, Unicode look-alikes, LaTeX names and the node
allow-list before code generation.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import sympy

import symjac as sj
from symjac import _codegen, _dag, _tolerance, ops
from symjac._budget import written_sizes


# ------------------------------------------------------------------------------ the one walk
def _chain(depth: int) -> sympy.Expr:
    """sin(sin(...sin(x + 1)...)) built without SymPy's evaluation (which recurses by itself)."""
    x = sympy.Symbol("x", real=True)
    e = sympy.Add(x, 1)
    for _ in range(depth):
        e = sympy.sin(e, evaluate=False)
    return e


def test_postorder_visits_each_distinct_node_once_children_first():
    x, y = sympy.symbols("x y")
    shared = sympy.sin(x)
    e = shared * y + shared**2
    order = list(_dag.postorder([e, shared]))
    assert len(order) == len(set(order))
    assert set(order) == set(sympy.preorder_traversal(e))
    position = {node: k for k, node in enumerate(order)}
    for node in order:
        assert all(position[arg] < position[node] for arg in node.args)


def test_postorder_is_iterative_far_beyond_the_recursion_limit():
    depth = 50_000
    order = list(_dag.postorder([depth], children=lambda n: (n - 1,) if n else ()))
    assert order == list(range(depth + 1))


def test_walks_over_a_3000_deep_expression_do_not_recurse():
    e = _chain(3000)
    assert _dag.height([e])[e] == 3001
    assert written_sizes([e]) == [3000 + 3]
    assert _dag.free_symbols([e])[e] == {sympy.Symbol("x", real=True)}
    folded = _codegen.fold_constants(e)
    assert folded == e
    bound = _tolerance.running_error(_chain(300))
    assert isinstance(bound, sympy.Expr)


def test_generated_code_does_not_nest_with_the_expression_depth():
    x = sympy.Symbol("x", real=True)
    e = _chain(400)
    code = _codegen.compile_entries([e], [x], "numpy")  # SyntaxError (nested parentheses) before
    nesting, level = 0, 0
    for char in code.source:
        level += char == "("
        level -= char == ")"
        nesting = max(nesting, level)
    assert nesting <= 3 * _codegen.MAX_NESTING
    expected = 0.3 + 1
    for _ in range(400):
        expected = np.sin(expected)
    assert code.fn(np.float64(0.3))[0] == pytest.approx(expected, rel=1e-12)


def _recurrence(steps: int):
    def f(x, w):
        h = x[0] * 0
        for i in range(steps):
            h = ops.tanh(w * h + x[i])
        return h

    return f


def _numpy_recurrence(x: np.ndarray, w: float) -> float:
    h = 0.0
    for xi in x:
        h = np.tanh(w * h + xi)
    return h


def test_a_100_step_recurrence_builds_evaluates_and_differentiates():
    f = sj.function(_recurrence(100), x=(100,), w=())
    x = np.linspace(-0.5, 0.5, 100)
    assert f(x=x, w=0.7) == pytest.approx(_numpy_recurrence(x, 0.7), rel=1e-12)
    dw = f.jacobian("w").evaluate(x=x, w=0.7)
    step = 1e-6
    fd = (_numpy_recurrence(x, 0.7 + step) - _numpy_recurrence(x, 0.7 - step)) / (2 * step)
    assert dw == pytest.approx(fd, rel=1e-6)


def test_an_unrolled_scalar_recurrence_evaluates_without_walking_the_tree():
    # 150 steps of h = tanh(w*h + x): building took 0.36 s, evaluating hung (> 300 s) in SymPy's
    # re-evaluation of the rebuilt nodes; now one assignment per level group.
    f = sj.function(lambda x, w: functools.reduce(lambda h, _: ops.tanh(w * h + x), range(150), x), x=(), w=())
    expected = 0.3
    for _ in range(150):
        expected = np.tanh(0.5 * expected + 0.3)
    assert float(f(x=0.3, w=0.5)) == pytest.approx(expected, rel=1e-12)


def test_deep_parentheses_within_the_depth_budget_differentiate_and_evaluate():
    text = "(" * 150 + "x" + " * x + 1)" * 150
    f = sj.function(text, x=(), limits=sj.Limits(max_depth=200))
    # d/dx of p_{k+1} = p_k * x + 1 is p_k' * x + p_k
    p, dp = 0.3, 1.0
    for _ in range(150):
        p, dp = p * 0.3 + 1, dp * 0.3 + p
    assert float(f(x=0.3)) == pytest.approx(p, rel=1e-12)
    assert float(f.jacobian().evaluate(x=0.3)) == pytest.approx(dp, rel=1e-12)
    assert sj.check(f, x=0.3).verdict == "pass"


# ------------------------------------------------------------------------------ crashes and escapes
@pytest.mark.parametrize("n", [3, 4])
def test_log_det_of_a_gram_matrix_from_sympy_is_written_out_and_differentiated(n):
    # n = 4 took 478 s (SymPy's Determinant.doit: Bareiss with cancel); now symjac's own det, about 1 s
    X = sympy.MatrixSymbol("X", n, n)
    f = sj.function(sympy.log(sympy.Determinant(X.T * X + sympy.Identity(n))), X=(n, n))
    x = np.random.default_rng(3).standard_normal((n, n))
    expected = 2 * x @ np.linalg.inv(x.T @ x + np.eye(n))  # d log det(X^T X + I) / dX
    np.testing.assert_allclose(f.jacobian().evaluate(X=x), expected, rtol=1e-10)
    assert float(f(X=x)) == pytest.approx(np.log(np.linalg.det(x.T @ x + np.eye(n))), rel=1e-12)
    assert sj.check(f, X=x).verdict == "pass"


def test_an_inverse_of_a_gram_matrix_from_sympy_is_written_out_by_symjacs_inv():
    X = sympy.MatrixSymbol("X", 3, 3)
    f = sj.function(sympy.Trace(sympy.Inverse(X.T * X + sympy.Identity(3))), X=(3, 3))
    x = np.random.default_rng(4).standard_normal((3, 3))
    a = np.linalg.inv(x.T @ x + np.eye(3))
    assert float(f(X=x)) == pytest.approx(np.trace(a), rel=1e-12)
    # d tr(A^-1) / dX with A = X^T X + I: -2 X A^-2
    np.testing.assert_allclose(f.jacobian().evaluate(X=x), -2 * x @ a @ a, rtol=1e-10)


def test_a_callable_using_a_missing_method_is_a_clear_error():
    # a method neither symbolic arrays nor torch tensors have: refused whether or not torch is loaded
    with pytest.raises(sj.InvalidArgumentError) as info:
        sj.function(lambda x: x.frobnicate(), x=(3,))
    assert "frobnicate" in str(info.value)


def test_a_tensor_method_in_a_callable_is_traced_as_torch_code():
    pytest.importorskip("torch")
    f = sj.function(lambda x: x.sin(), x=(3,))
    x = np.array([0.1, -0.7, 2.0])
    np.testing.assert_allclose(f.jacobian().evaluate(x=x), np.diag(np.cos(x)), rtol=1e-15)
    assert f.traced_from is not None  # torch is loaded: the call was traced, not evaluated symbolically


@pytest.mark.parametrize(
    "text, shapes, shown",
    [
        ("cos(e) ** (3 * X)", {"X": ()}, "cos(E)**(3*X) raises the negative constant cos(E) (about -0.911734)"),
        ("log(1e-3) ** (X ** X)", {"X": ()}, "(-log(1000))**(X**X) raises the negative constant -log(1000)"),
        ("tan(2) ** (X ** 1.5)", {"X": ()}, "tan(2)**(X**(3/2)) raises the negative constant tan(2)"),
        ("(-2)**x", {"x": ()}, "(-2)**x raises the negative constant -2 (about -2) to the power x"),
        ("cos(e)**x", {"x": ()}, "cos(E)**x raises the negative constant cos(E)"),
    ],
)
def test_a_negative_constant_to_a_non_integer_power_is_refused_when_built(text, shapes, shown):
    with pytest.raises(sj.DomainError) as info:
        sj.function(text, **shapes)
    message = str(info.value)
    assert message.startswith("expr: " + shown)
    assert message.endswith("which is not an integer: the result is not real. The language is real-valued")


def test_a_negative_constant_to_an_integer_power_and_a_positive_one_to_any_power_are_accepted():
    f = sj.function("cos(e) ** 3 * x + cos(1) ** x", x=())
    assert float(f(x=2.0)) == pytest.approx(np.cos(np.e) ** 3 * 2 + np.cos(1.0) ** 2, rel=1e-12)


def test_a_complex_constant_reaching_code_generation_is_a_domain_error():
    x = sympy.Symbol("x", real=True)
    with pytest.raises(sj.DomainError, match=r"^expr: the constant \(-2\)\*\*\(1/3\) is not a real number"):
        _codegen.fold_constants(x + sympy.Pow(-2, sympy.Rational(1, 3), evaluate=False))


def test_abs_of_exp_of_sqrt_checks_in_torch():
    # SymPy writes |exp(sqrt(x))| with atan2(0, x); torch.atan2 took the int 0 and raised TypeError
    report = sj.check(sj.function("abs(exp(sqrt(x)))", x=()), x=1.0)
    assert report.verdict == "pass", str(report)


def test_sampling_a_domain_with_a_fractional_power_of_a_negative_base_draws_or_gives_up_cleanly():
    report = sj.check(sj.function("sqrt((1e-3 - X) ** trace(X))", X=(3, 3)), samples=3, seed=0)
    assert report.verdict in ("pass", "inconclusive"), str(report)


def test_callable_outputs_obey_max_number_digits():
    with pytest.raises(sj.TooLargeError, match=r"more than 100 digits \(Limits.max_number_digits\)"):
        sj.function(lambda X: X[0] * 10**400, X=(2,))
    f = sj.function(lambda X: X[0] * 10**400, X=(2,), limits=sj.Limits(max_number_digits=500))
    assert f.out_shape == ()


def test_a_huge_digit_limit_costs_nothing():
    # 10**max_number_digits was computed on every parse: a limit of 10**9 took minutes
    f = sj.function("x * 2", x=(), limits=sj.Limits(max_number_digits=10**9, max_int_digits=10**9))
    assert float(f(x=1.5)) == 3.0


@pytest.mark.parametrize("digits", [1, 2, 5, 30, 100, 301])
def test_exceeds_digits_agrees_with_the_power_of_ten(digits):
    from symjac._budget import exceeds_digits

    for n in (10**digits - 1, 10**digits, -(10**digits), 10**digits + 1, 2**(digits * 3), 7 * 10 ** (digits - 1)):
        assert exceeds_digits(n, digits) == (abs(n) >= 10**digits), n


def test_symengine_own_sympify_error_falls_back_to_sympy(monkeypatch):
    symengine = pytest.importorskip("symengine")
    from symjac import _symengine

    def refuse(_):
        raise symengine.SympifyError("no SymEngine class")

    monkeypatch.setattr(symengine, "sympify", refuse)
    x = sympy.Symbol("x", real=True)
    assert _symengine.compile_source([sympy.sin(x)], [x], "numpy") is None
    code = _codegen.compile_entries([sympy.sin(x)], [x], "numpy")
    assert code.fn(np.float64(0.5))[0] == pytest.approx(np.sin(0.5))


# ------------------------------------------------------------------------------ Unicode
@pytest.mark.parametrize(
    "text, shapes, points, reads",
    [
        ("\uff58**2", {"x": ()}, "U+FF58 FULLWIDTH LATIN SMALL LETTER X", "'x'"),
        ("\u017f", {"s": ()}, "U+017F LATIN SMALL LETTER LONG S", "'s'"),
        ("\uff53\uff49\uff4e(x)", {"x": ()}, "U+FF53 FULLWIDTH LATIN SMALL LETTER S, U+FF49 FULLWIDTH "
         "LATIN SMALL LETTER I, U+FF4E FULLWIDTH LATIN SMALL LETTER N", "'sin'"),
        ("\U0001d431 + 1", {"x": ()}, "U+1D431 MATHEMATICAL BOLD SMALL X", "'x'"),
    ],
)
def test_identifiers_that_nfkc_changes_are_refused(text, shapes, points, reads):
    with pytest.raises(sj.InvalidExpressionError) as info:
        sj.function(text, **shapes)
    name = text.split("(")[0].split("*")[0].split(" ")[0]
    assert str(info.value) == (
        f"expr: identifier {name!r} ({points}) is not in Unicode normal form NFKC: Python would read "
        f"it as {reads}, so the text shown is not the text evaluated; write names in ASCII"
    )


def test_a_non_ascii_look_alike_of_a_declared_name_shows_its_code_point():
    with pytest.raises(sj.InvalidExpressionError) as info:
        sj.function("\u0445 + 1", x=())
    assert str(info.value) == (
        "expr: unknown name '\u0445' (U+0445 CYRILLIC SMALL LETTER HA); declared names: x; names are "
        "ASCII letters, digits and '_' (a non-ASCII look-alike is not the same name)"
    )


def test_non_ascii_text_in_a_comment_is_not_an_identifier():
    assert float(sj.function("x * 2  # \uff58", x=())(x=1.0)) == 2.0


# ------------------------------------------------------------------------------ LaTeX and Markdown
@pytest.mark.parametrize(
    "fragment, has",
    [
        ("^^5cinput{/etc/passwd}", "'^^', which TeX reads as a character code"),
        ("\\directlua{os.exit()}", "the command '\\directlua', which is not on the allow-list"),
        ("\\loop\\iftrue\\repeat", "the command '\\loop', which is not on the allow-list"),
        ("\\ShellEscape", "the command '\\ShellEscape', which is not on the allow-list"),
        ("\\stop", "the command '\\stop', which is not on the allow-list"),
        ("\\endinput", "the command '\\endinput', which is not on the allow-list"),
        ("a$b", "the character '$' (U+0024), which is not on the allow-list"),
        ("{x", "unbalanced braces"),
    ],
)
def test_latex_names_come_from_an_allow_list(fragment, has):
    f = sj.function("x * y", x=(), y=())
    for options in ({"symbol_names": {"x": fragment}}, {"output_name": fragment}):
        with pytest.raises(sj.InvalidArgumentError) as info:
            sj.latex(f, **options)
        message = str(info.value)
        assert message.endswith(f"received {fragment!r}, which has {has}")
        assert "see docs/latex.md" in message


def test_every_allowed_latex_command_is_kept():
    from symjac._latex import FRAGMENT_COMMANDS

    f = sj.function("x * y", x=(), y=())
    for command in sorted(FRAGMENT_COMMANDS):
        fragment = f"\\{command}{{x}}_{{1}}"
        assert fragment in sj.latex(f, symbol_names={"x": fragment})


def test_markdown_display_shows_expression_text_and_never_interprets_it():
    torch = pytest.importorskip("torch")  # noqa: F841 - check needs the autograd routes
    text = "x * 2  # <img src=x onerror=alert(1)> [click](javascript:alert(1)) **bold** | `tick`"
    report = sj.check(sj.function(text, x=()), x=1.0)
    markdown = report._repr_mimebundle_()["text/markdown"]
    headline = markdown.splitlines()[0]
    assert "<img" not in headline and "&lt;img src\\=x onerror\\=alert\\(1\\)&gt;" in headline
    assert "\\[click\\]\\(javascript\\:alert\\(1\\)\\)" in headline and "\\*\\*bold\\*\\* \\|" in headline
    reproduce = [line for line in markdown.splitlines() if line.startswith("reproduce: ")][0]
    # a code span fenced by more backticks than any run inside: shown literally
    assert reproduce.startswith("reproduce: ``") and reproduce.endswith("``") and "`tick`" in reproduce
    assert "| symbolic vs torch-reverse | " in markdown


def test_markdown_cell_escapes_each_punctuation_character():
    from symjac._display import _cell, _code

    assert _cell("a<b>&\"c\" [x](y) *z* |") == "a&lt;b&gt;&amp;&quot;c&quot; \\[x\\]\\(y\\) \\*z\\* \\|"
    assert _code("a `b` c") == "``a `b` c``"
    assert _code("`a`") == "`` `a` ``"


# ------------------------------------------------------------------------------ known node classes
class _Sneaky(sympy.Expr):
    """A user's SymPy subclass that prints itself as arbitrary code."""

    is_real = True

    def _numpycode(self, printer):
        return "__import__('os').system('echo pwned')"

    def _pythoncode(self, printer):
        return self._numpycode(printer)


@pytest.mark.parametrize("with_symengine", [True, False])
def test_a_user_sympy_subclass_is_refused_before_code_generation(with_symengine, monkeypatch):
    from symjac import _symengine

    monkeypatch.setattr(_symengine, "ENABLED", with_symengine)
    x = sympy.Symbol("x", real=True)
    sneaky = _Sneaky(x)
    with pytest.raises(sj.InvalidExpressionError) as info:
        sj.function(x + sneaky, x=())
    assert str(info.value).startswith(
        "expr: _Sneaky (in _Sneaky(x)) is not a SymPy class but a subclass defined in "
    )
    with pytest.raises(sj.InvalidExpressionError) as info:
        _codegen.compile_entries([x + sneaky], [x], "numpy")
    assert str(info.value).startswith("expr: cannot generate code for _Sneaky (in _Sneaky(x)): generated code")


def test_a_sympy_class_outside_the_code_allow_list_is_refused_by_code_generation():
    x = sympy.Symbol("x", real=True)
    with pytest.raises(sj.InvalidExpressionError, match=r"^expr: cannot generate code for floor \(in floor\(x\)\)"):
        _codegen.compile_entries([sympy.floor(x)], [x], "numpy")


def test_a_callable_that_recurses_too_deep_is_a_clear_error():
    def endless(x):
        return endless(x)

    with pytest.raises(sj.InvalidExpressionError) as info:
        sj.function(endless, x=())
    assert str(info.value).startswith(
        "expr: calling the function with symbolic inputs (x) hit Python's recursion limit ("
    )
    assert str(info.value).endswith("(SymPy's own constructors recurse over its depth): build fewer nested levels")


def test_the_gradient_asks_is_zero_and_falls_back_to_the_form_when_sympy_recurses_too_deep():
    from symjac._jacobian import _nonzero

    class TooDeep:
        """Stands for a derivative whose assumption query recurses past the limit (300 steps)."""

        def __init__(self, value):
            self.value = value

        @property
        def is_zero(self):
            raise RecursionError("maximum recursion depth exceeded")

        def __ne__(self, other):
            return self.value != other

    x = sympy.Symbol("x", real=True)
    assert _nonzero(sympy.sin(x)) and not _nonzero(sympy.Integer(0))
    assert _nonzero(TooDeep(1)) and not _nonzero(TooDeep(0))
