"""LaTeX: exact strings for the tutorial's examples, every shape, every option, and bad options.

tests/test_render.py renders every string these tests pin (GOLDEN, SHAPES, OPTIONS) with KaTeX.
"""

import numpy as np
import pytest
import sympy

import symjac as sj
from symjac._examples import EXAMPLES
from symjac._latex import display_grid, text

BLOCK_2x2_A = (
    r"\begin{bmatrix}\begin{bmatrix}2 & 0\\3 & 0\end{bmatrix} & \begin{bmatrix}0 & 2\\0 & 3\end{bmatrix}\\[1.10em]"
    r"\begin{bmatrix}4 & 0\\5 & 0\end{bmatrix} & \begin{bmatrix}0 & 4\\0 & 5\end{bmatrix}\end{bmatrix}"
)
BLOCK_MM = (
    r"\begin{bmatrix}\begin{bmatrix}2 M_{00} & M_{10}\\M_{01} & 0\end{bmatrix} & "
    r"\begin{bmatrix}M_{01} & M_{00} + M_{11}\\0 & M_{01}\end{bmatrix}\\[1.10em]"
    r"\begin{bmatrix}M_{10} & 0\\M_{00} + M_{11} & M_{10}\end{bmatrix} & "
    r"\begin{bmatrix}0 & M_{10}\\M_{01} & 2 M_{11}\end{bmatrix}\end{bmatrix}"
)

# example number -> (sj.latex(f), f.jacobian().latex(), sj.latex(f, form="matrix"))
GOLDEN = {
    1: (
        r"\frac{\partial F}{\partial X} = \begin{bmatrix}1 & 1\\1 & 1\end{bmatrix}",
        r"\begin{bmatrix}1 & 1\\1 & 1\end{bmatrix}",
        r"\frac{\partial F}{\partial X} = \mathbf{1}_{2} \mathbf{1}_{2}^{T}",
    ),
    2: (
        r"\frac{\partial F}{\partial X} = " + BLOCK_2x2_A,
        BLOCK_2x2_A,
        r"\frac{\partial \operatorname{vec} F}{\partial \operatorname{vec} X} = I_{2} \otimes A",
    ),
    3: (
        r"\frac{\partial F}{\partial X} = \begin{bmatrix}1 & 1\\1 & 1\\1 & 1\end{bmatrix}",
        r"\begin{bmatrix}1 & 1\\1 & 1\\1 & 1\end{bmatrix}",
        r"\frac{\partial F}{\partial X} = \mathbf{1}_{3} \mathbf{1}_{2}^{T}",
    ),
    4: (
        r"\frac{\partial F}{\partial M} = " + BLOCK_MM,
        BLOCK_MM,
        r"\frac{\partial \operatorname{vec} F}{\partial \operatorname{vec} M} = I_{2} \otimes M + M^{T} \otimes I_{2}",
    ),
    5: (
        r"\frac{\partial F}{\partial X} = \begin{bmatrix}1 & 1 & 1\\1 & 1 & 1\end{bmatrix}",
        r"\begin{bmatrix}1 & 1 & 1\\1 & 1 & 1\end{bmatrix}",
        r"\frac{\partial F}{\partial X} = \mathbf{1}_{2} \mathbf{1}_{3}^{T}",
    ),
}


def example_function(example):
    return sj.function(example.expr, consts=example.consts, **example.shapes)


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"example{e.number}" for e in EXAMPLES])
def test_golden_strings_of_the_tutorial_examples(example):
    f = example_function(example)
    entries, block, closed = GOLDEN[example.number]
    assert sj.latex(f) == entries
    assert f.jacobian().latex() == block
    assert sj.latex(f, form="matrix") == closed


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"example{e.number}" for e in EXAMPLES])
def test_block_layout_is_torchs_tensor(example):
    """Each block of the LaTeX, evaluated at the tutorial's input, is the matrix torch prints there."""
    f = example_function(example)
    value = example.make_input().astype(np.float64)
    J = f.jacobian().evaluate(**{example.input_name: value})
    grid = display_grid(f.out_shape, value.shape)
    picture = np.zeros(grid.shape)
    for p in range(int(np.prod(f.out_shape, dtype=int))):
        for q in range(value.size):
            picture[grid.position(p, q)] = J.reshape(-1, value.size)[p, q]
    if J.ndim == 4:  # block [i, j] is J[i, j], torch's printed inner matrix
        for i, j in np.ndindex(J.shape[:2]):
            m, n = J.shape[2:]
            np.testing.assert_array_equal(picture[i * m:(i + 1) * m, j * n:(j + 1) * n], J[i, j])
    else:
        np.testing.assert_array_equal(picture, J)


# (id, expr, shapes, options, expected sj.latex(f, **options))
SHAPES = [
    ("scalar_by_scalar", "s ** 3", {"s": ()}, {}, r"\frac{\partial F}{\partial s} = 3 s^{2}"),
    ("gradient_row", "dot(x, x)", {"x": (3,)}, {},
     r"\frac{\partial F}{\partial x} = \begin{bmatrix}2 x_{0} & 2 x_{1} & 2 x_{2}\end{bmatrix}"),
    ("gradient_column", "dot(x, x)", {"x": (3,)}, {"gradient": "column"},
     r"\frac{\partial F}{\partial x} = \begin{bmatrix}2 x_{0}\\2 x_{1}\\2 x_{2}\end{bmatrix}"),
    ("vector_by_vector", "exp(x)", {"x": (2,)}, {},
     r"\frac{\partial F}{\partial x} = \begin{bmatrix}e^{x_{0}} & 0\\0 & e^{x_{1}}\end{bmatrix}"),
    ("vector_by_scalar", "x * s", {"s": (), "x": (2,)}, {"wrt": "s"},
     r"\frac{\partial F}{\partial s} = \begin{bmatrix}x_{0}\\x_{1}\end{bmatrix}"),
    ("vector_by_matrix", "W @ x", {"W": (2, 2), "x": (2,)}, {"wrt": "W"},
     r"\frac{\partial F}{\partial W} = \begin{bmatrix}\begin{bmatrix}x_{0} & x_{1}\\0 & 0\end{bmatrix}\\[1.10em]"
     r"\begin{bmatrix}0 & 0\\x_{0} & x_{1}\end{bmatrix}\end{bmatrix}"),
    ("matrix_by_vector", "outer(x, x)", {"x": (2,)}, {},
     r"\frac{\partial F}{\partial x} = \begin{bmatrix}\begin{bmatrix}2 x_{0} & 0\end{bmatrix} & "
     r"\begin{bmatrix}x_{1} & x_{0}\end{bmatrix}\\[0.50em]\begin{bmatrix}x_{1} & x_{0}\end{bmatrix} & "
     r"\begin{bmatrix}0 & 2 x_{1}\end{bmatrix}\end{bmatrix}"),
    ("scalar_by_matrix", "det(X)", {"X": (2, 2)}, {},
     r"\frac{\partial F}{\partial X} = \begin{bmatrix}X_{11} & - X_{10}\\- X_{01} & X_{00}\end{bmatrix}"),
    ("matrix_by_scalar", "X * s", {"X": (2, 2), "s": ()}, {"wrt": "s"},
     r"\frac{\partial F}{\partial s} = \begin{bmatrix}X_{00} & X_{01}\\X_{10} & X_{11}\end{bmatrix}"),
    ("two_inputs_aligned", "x * y", {"x": (2,), "y": (2,)}, {},
     r"\begin{aligned}\frac{\partial F}{\partial x} &= \begin{bmatrix}y_{0} & 0\\0 & y_{1}\end{bmatrix} \\ "
     r"\frac{\partial F}{\partial y} &= \begin{bmatrix}x_{0} & 0\\0 & x_{1}\end{bmatrix}\end{aligned}"),
    ("rank3_input_stacks_rows", "sum(T)", {"T": (2, 1, 2)}, {},
     r"\frac{\partial F}{\partial T} = \begin{bmatrix}1 & 1\\1 & 1\end{bmatrix}"),
]

# (id, expr, shapes, options, expected)
OPTIONS = [
    ("inline", "exp(x)", {"x": (2,)}, {"mode": "inline"},
     r"$\frac{\partial F}{\partial x} = \left[\begin{smallmatrix}e^{x_{0}} & 0\\0 & e^{x_{1}}\end{smallmatrix}\right]$"),
    ("inline_block_matrix", "A @ X", {"X": (2, 2)}, {"mode": "inline"},
     r"$\frac{\partial F}{\partial X} = \left[\begin{smallmatrix}\left[\begin{smallmatrix}2 & 0\\3 & 0"
     r"\end{smallmatrix}\right] & \left[\begin{smallmatrix}0 & 2\\0 & 3\end{smallmatrix}\right]\\[0.70em]"
     r"\left[\begin{smallmatrix}4 & 0\\5 & 0\end{smallmatrix}\right] & \left[\begin{smallmatrix}0 & 4\\"
     r"0 & 5\end{smallmatrix}\right]\end{smallmatrix}\right]$"),
    ("inline_folds_fractions", "x / 3", {"x": (1,)}, {"mode": "inline", "form": "function"},
     r"$F = \left[\begin{smallmatrix}x_{0} / 3\end{smallmatrix}\right]$"),
    ("display", "exp(x)", {"x": (2,)}, {"mode": "display"},
     r"$$\frac{\partial F}{\partial x} = \begin{bmatrix}e^{x_{0}} & 0\\0 & e^{x_{1}}\end{bmatrix}$$"),
    ("parentheses", "exp(x)", {"x": (2,)}, {"delimiters": "("},
     r"\frac{\partial F}{\partial x} = \begin{pmatrix}e^{x_{0}} & 0\\0 & e^{x_{1}}\end{pmatrix}"),
    ("no_delimiters", "exp(x)", {"x": (2,)}, {"delimiters": ""},
     r"\frac{\partial F}{\partial x} = \begin{matrix}e^{x_{0}} & 0\\0 & e^{x_{1}}\end{matrix}"),
    ("symbol_names_and_one_based", "W @ x", {"W": (1, 2), "x": (2,)},
     {"wrt": "x", "symbol_names": {"W": r"\mathbf{W}", "x": r"\xi"}, "index_base": 1, "output_name": "y"},
     r"\frac{\partial y}{\partial \xi} = \begin{bmatrix}\mathbf{W}_{11} & \mathbf{W}_{12}\end{bmatrix}"),
    ("greek_name_from_sympy", "alpha ** 2", {"alpha": ()}, {},
     r"\frac{\partial F}{\partial \alpha} = 2 \alpha"),
    ("subscripted_name_is_grouped", "sum(W1 * W1)", {"W1": (2,)}, {},
     r"\frac{\partial F}{\partial W_{1}} = \begin{bmatrix}2 {W_{1}}_{0} & 2 {W_{1}}_{1}\end{bmatrix}"),
    ("two_digit_indices_use_commas", "x[10] * x[0]", {"x": (11,)}, {"max_size": 11},
     r"\frac{\partial F}{\partial x} = \begin{bmatrix}x_{10} & 0 & 0 & 0 & 0 & 0 & 0 & 0 & 0 & 0 & x_{0}\end{bmatrix}"),
    ("function_form", "X @ X", {"X": (2, 2)}, {"form": "function"},
     r"F = \begin{bmatrix}X_{00}^{2} + X_{01} X_{10} & X_{00} X_{01} + X_{01} X_{11}\\"
     r"X_{00} X_{10} + X_{10} X_{11} & X_{01} X_{10} + X_{11}^{2}\end{bmatrix}"),
    ("elided_vector", "exp(x)", {"x": (5,)}, {"max_size": 3, "form": "function"},
     r"F = \begin{bmatrix}e^{x_{0}}\\\vdots\\e^{x_{4}}\end{bmatrix} \quad \text{(elided: at most 3 rows and "
     r"columns shown; shape (5,))}"),
    ("elided_matrix", "exp(x)", {"x": (4,)}, {"max_size": 3},
     r"\frac{\partial F}{\partial x} = \begin{bmatrix}e^{x_{0}} & \cdots & 0\\\vdots & \ddots & \vdots\\"
     r"0 & \cdots & e^{x_{3}}\end{bmatrix} \quad \text{(elided: at most 3 rows and columns shown; shape (4, 4))}"),
]


@pytest.mark.parametrize("case", SHAPES + OPTIONS, ids=[c[0] for c in SHAPES + OPTIONS])
def test_exact_latex(case):
    _, expr, shapes, options, expected = case
    consts = {"A": [[2.0, 3.0], [4.0, 5.0]]} if "A" in expr else {}
    assert sj.latex(sj.function(expr, consts=consts, **shapes), **options) == expected


def test_two_digit_index_uses_commas_in_matrices():
    f = sj.function("sum(X)", X=(11, 2))
    names = sj.latex(f, form="function", max_size=12)
    assert "X_{10,1}" in names and "X_{0,0}" in names and "X_{00}" not in names


def test_big_block_jacobian_is_elided_at_both_levels_and_says_so():
    f = sj.function("X @ X", X=(12, 12))
    out = f.jacobian().latex()
    assert out.count(r"\cdots") > 0 and out.count(r"\ddots") == 7 * 7 + 1  # one in each of the 7 x 7 blocks shown, one outside
    assert out.endswith(r"\text{(elided: at most 8 rows and columns shown; shape (12, 12, 12, 12))}")
    assert "X_{11,0}" in out  # the last row is kept


def test_no_elision_note_when_nothing_is_elided():
    assert r"\text" not in sj.latex(sj.function("exp(x)", x=(8,)))


def test_jacobian_method_matches_latex_of_function():
    f = sj.function("W @ x", W=(2, 2), x=(2,))
    assert sj.latex(f, wrt="x") == r"\frac{\partial F}{\partial x} = " + f.jacobian("x").latex()
    assert sj.latex(f.jacobian("x")) == sj.latex(f, wrt="x")


def test_repr_latex_for_notebooks():
    f = sj.function("exp(x)", x=(2,))
    assert f._repr_latex_() == r"$$F = \begin{bmatrix}e^{x_{0}}\\e^{x_{1}}\end{bmatrix}$$"
    assert f.jacobian()._repr_latex_() == sj.latex(f, mode="display")


def test_report_latex_and_markdown():
    report = sj.check(sj.function("exp(x)", x=(2,)), x=[0.5, -1.0])
    out = report.latex()
    assert out.startswith(r"\begin{array}{l}\text{symjac check of exp(x) (x: (2,)) at a float64 point: PASS}")
    assert r"\text{symbolic vs finite-diff} & " in out and r"\hline" in out
    assert report._repr_latex_() == "$$" + out + "$$"
    bundle = report._repr_mimebundle_()
    assert bundle["text/plain"] == str(report)
    assert "| symbolic vs torch-reverse | " in bundle["text/markdown"]


def test_report_latex_of_a_failure_names_the_odd_one_out():
    f = sj.function("X @ X", X=(2, 2))
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    report = sj.check(f, X=x, jacobian=-f.jacobian().evaluate(X=x))
    assert r"\text{odd one out: candidate}" in report.latex()
    assert "NO (" in report.latex()


def test_text_escapes_every_special_character():
    assert text(r"a_b^c~d\e{f}$g&h#i%j") == (
        r"a\_b\textasciicircum{}c\textasciitilde{}d\textbackslash{}e\{f\}\$g\&h\#i\%j"
    )


def test_entries_are_printed_by_sympy():
    """Each entry is sympy.latex of the exact Jacobian entry, input names mapped by symbol_names."""
    f = sj.function("sin(x) * x", x=(1,))
    (entry,) = f.jacobian().entries
    x0 = f.inputs[0].symbols[0]
    expected = sympy.latex(entry, symbol_names={x0: "x_{0}"})
    assert expected == r"x_{0} \cos{\left(x_{0} \right)} + \sin{\left(x_{0} \right)}"
    assert f.jacobian().latex() == r"\begin{bmatrix}" + expected + r"\end{bmatrix}"
    assert sj.latex(sj.function("sin(x) * x", x=()), wrt="x") == r"\frac{\partial F}{\partial x} = " + (
        r"x \cos{\left(x \right)} + \sin{\left(x \right)}"
    )


@pytest.mark.parametrize(
    "options, message",
    [
        ({"form": "tensor"}, r"form: must be one of 'entries', 'matrix', 'function'; received 'tensor'"),
        ({"mode": "equation"}, r"mode: must be one of 'plain', 'inline', 'display'; received 'equation'"),
        ({"delimiters": "{"}, r"delimiters: must be one of '\[', '\(', ''; received '\{'"),
        ({"max_size": 2}, r"max_size: must be an int >= 3; received 2"),
        ({"max_size": True}, r"max_size: must be an int >= 3; received True"),
        ({"index_base": 2}, r"index_base: must be 0 or 1; received 2"),
        ({"gradient": "diagonal"}, r"gradient: must be one of 'row', 'column'; received 'diagonal'"),
        ({"symbol_names": {"Y": "y"}}, r"symbol_names: 'Y' is not an input of this function; its inputs are X"),
        ({"symbol_names": {"X": ""}}, r"symbol_names: keys must be input names and values non-empty"),
        ({"symbol_names": ["X"]}, r"symbol_names: must map input names to LaTeX"),
        ({"output_name": ""}, r"output_name: must be a non-empty LaTeX string"),
        ({"wrt": "Y"}, r"wrt: this function has no input named 'Y'"),
    ],
)
def test_bad_options_are_refused_with_the_rule(options, message):
    f = sj.function("X @ X", X=(2, 2))
    with pytest.raises(sj.InvalidArgumentError, match=message):
        sj.latex(f, **options)


def test_bad_objects_are_refused():
    with pytest.raises(sj.InvalidArgumentError, match="obj: must be a symjac.Function, Jacobian or Report; received str"):
        sj.latex("X @ X")
    f = sj.function("W @ x", W=(2, 2), x=(2,))
    with pytest.raises(sj.InvalidArgumentError, match="wrt: this Jacobian is with respect to 'x'; received wrt='W'"):
        sj.latex(f.jacobian("x"), wrt="W")
    report = sj.check(sj.function("exp(x)", x=(1,)), x=[1.0])
    with pytest.raises(sj.InvalidArgumentError, match="a Report prints as a table only"):
        sj.latex(report, form="matrix")
    with pytest.raises(sj.InvalidArgumentError, match="symbol_names: 'Q' is not an input"):
        f.jacobian("x").latex(symbol_names={"Q": "q"})


def test_jacobian_latex_defaults_are_latex_defaults():
    import inspect

    from symjac._latex import DEFAULT_MAX_SIZE, LatexOptions

    method = inspect.signature(sj.Jacobian.latex).parameters
    function = inspect.signature(sj.latex).parameters
    defaults = LatexOptions()
    for name in ("mode", "delimiters", "symbol_names", "index_base", "max_size", "gradient"):
        assert method[name].default == function[name].default == getattr(defaults, name)
    assert defaults.max_size == DEFAULT_MAX_SIZE


def test_the_tutorial_page_shows_the_golden_strings():
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "tutorial.md").read_text()
    for number, (entries, _, _) in GOLDEN.items():
        assert f"$${entries}$$" in page, f"docs/tutorial.md is out of date for example {number}"


def test_cli_latex_prints_the_jacobian_and_the_closed_form():
    import io

    from symjac._cli import main

    out, err = io.StringIO(), io.StringIO()
    assert main(["latex", "mm(M, M)", "--input", "M=2x2"], out=out, err=err) == 0
    assert out.getvalue() == GOLDEN[4][0] + "\n"
    out = io.StringIO()
    assert main(["latex", "mm(M, M)", "--input", "M=2x2", "--form", "matrix", "--mode", "display"], out=out) == 0
    assert out.getvalue() == "$$" + GOLDEN[4][2] + "$$\n"
    out, err = io.StringIO(), io.StringIO()
    assert main(["latex", "sin(X)", "--input", "X=2x2", "--form", "matrix"], out=out, err=err) == 2
    assert "symjac: error: form='matrix': no closed form is known for 'sin(X)'" in err.getvalue()
    assert out.getvalue() == ""
