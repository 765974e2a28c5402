"""Every row of the project's bad-inputs list is a test: exception type, message fragment, and a hard
time limit (a hang fails the suite instead of stalling it).

The list, copied here so that the project never reads it from elsewhere:

Expression text (library and CLI): `__import__('os').system('id')`; `open('/etc/passwd').read()`,
`eval("1+1")`, `exec('1')`; `x.__class__`, `X.T.__dict__`; `(lambda: 1)()`, `f'{x}'`,
`[i for i in range(10**9)]`; `x;import os`, `x\\nimport os`; `10**10**10`, `x**10**10`,
`X**1000000`; `factorial(100000000)`; a 5,000-digit integer literal; `'(' * 300 + 'x' + ')' * 300`;
`'+'.join(['x'] * 20000)`; `x if x else 1`, `x < 1`, `x and y`, `None`, `b'x'`, `...`;
`sin(x, y)`, `sin()`, bare `sin`; `""`, `"   "`, non-string values; `x*y` where only `x` is
declared; `x/0`; an expression over the documented length limit.
-> These are tests of the parser in tests/test_parse.py (`EXPRESSION_ROWS` and the tests named in
   `PARSE_TESTS` below); `test_every_expression_row_is_tested_in_test_parse` keeps the two lists
   in step, and tests/test_cli.py sends them through the command line.

Names and shapes: inputs named `sin`, `exp`, `torch`, `numpy`, `lambda`, `_x`; shapes `(-1, 2)`,
`(2.5, 2)`, `(0, 3)`, `("a", 2)`; `X @ Y` with X 2x2 and Y 3x2, `inv(X)` with X 2x3; a Jacobian
with more entries than the documented budget (X 300x300 with `X @ X`).

Values and points: NaN or inf in an input value; a value of the wrong shape; `relu(x)`, `abs(x)`
exactly at 0 (inconclusive, not fail); `log(x)`, `sqrt(x)` at 0 or below (outside the domain,
never a silent pass); options `samples=0`, `samples=-3`, `rtol=-1`, `rtol=nan`, `seed="a"`.

CLI: exit statuses, one-line usage errors, `--json` without NaN: tests/test_cli.py.

Plus the cases found while hardening (marked "found").
"""

import contextlib
import pathlib
import sys

import numpy as np
import pytest
import sympy

import symjac as sj
from symjac import _function

pytestmark = pytest.mark.timeout(120)

# --------------------------------------------------------------------------- expression text

#: The list's expression rows, as text.
EXPRESSION_TEXT_ROWS = [
    "__import__('os').system('id')",
    "open('/etc/passwd').read()",
    'eval("1+1")',
    "exec('1')",
    "x.__class__",
    "X.T.__dict__",
    "(lambda: 1)()",
    "f'{x}'",
    "[i for i in range(10**9)]",
    "x;import os",
    "x\nimport os",
    "10**10**10",
    "x**10**10",
    "X**1000000",
    "factorial(100000000)",
    "1" * 5000,
    "(" * 300 + "x" + ")" * 300,
    "+".join(["x"] * 20000),
    "x if x else 1",
    "x < 1",
    "x and y",
    "None",
    "b'x'",
    "...",
    "sin(x, y)",
    "sin()",
    "sin",
    "",
    "   ",
    "x/0",
]

#: Rows of the list tested by a named test of tests/test_parse.py rather than by a row of
#: `EXPRESSION_ROWS` there.
PARSE_TESTS = {
    "non-string values": "test_non_string_text_is_refused",
    "x*y where only x is declared": "test_unknown_name_says_how_to_declare_it",
    "an expression over the documented length limit": "test_length_limit_is_configurable_and_shown",
}


def test_every_expression_row_is_tested_in_test_parse():
    from test_parse import EXPRESSION_ROWS  # tests/ is on sys.path under pytest

    tested = {row[0] for row in EXPRESSION_ROWS}
    assert [text for text in EXPRESSION_TEXT_ROWS if text not in tested] == []
    source = pathlib.Path(__file__).with_name("test_parse.py").read_text()
    for name in PARSE_TESTS.values():
        assert f"def {name}(" in source


# --------------------------------------------------------------------------- names and shapes

NAME_ROWS = [
    ("sin", "sin: input name 'sin' is reserved (a function of the expression language)"),
    ("exp", "exp: input name 'exp' is reserved (a function of the expression language)"),
    ("torch", "torch: input name 'torch' is reserved (a module name)"),
    ("numpy", "numpy: input name 'numpy' is reserved (a module name)"),
    ("lambda", "lambda: input name 'lambda' is reserved (a Python keyword)"),
    ("_x", "_x: input name '_x' is not valid; a name starts with an ASCII letter"),
    # found: other names that would shadow something in generated code or in the language
    ("np", "is reserved (a module name)"),
    ("pi", "is reserved (a constant of the expression language)"),
    ("inf", "is reserved (the name of a special value in SymPy or NumPy)"),
    ("__builtins__", "is not valid"),
    ("x" * 40, "is too long; at most 32 characters, received 40"),
]


@pytest.mark.parametrize("name, fragment", NAME_ROWS, ids=[r[0][:12] for r in NAME_ROWS])
def test_reserved_or_invalid_input_name(name, fragment):
    with pytest.raises(sj.InvalidArgumentError) as info:
        sj.function("1", **{name: ()})
    assert fragment in str(info.value)


@pytest.mark.parametrize("name", ["sin", "torch", "_x", "lambda"])
def test_reserved_or_invalid_constant_name(name):
    with pytest.raises(sj.InvalidArgumentError, match=rf"consts\['{name}'\]: constant name '{name}' is"):
        sj.function("x", x=(), consts={name: 1.0})


SHAPE_ROWS = [
    ((-1, 2), "X: dimensions must be positive ints; received (-1, 2)"),
    ((2.5, 2), "X: dimensions must be positive ints; received (2.5, 2)"),
    ((0, 3), "X: dimensions must be positive ints; received (0, 3)"),
    (("a", 2), "X: dimensions must be positive ints; received ('a', 2)"),
    # found
    ((True, 2), "dimensions must be positive ints"),
    ((None,), "dimensions must be positive ints"),
    ("2x2", "X: shape must be a tuple of positive ints"),
    (2.0, "X: shape must be a tuple of positive ints"),
    ((1, 1, 1, 1, 1), "X: shape may have at most 4 dims (Limits.max_rank)"),
]


@pytest.mark.parametrize("shape, fragment", SHAPE_ROWS, ids=[repr(r[0]) for r in SHAPE_ROWS])
def test_bad_shape(shape, fragment):
    with pytest.raises(sj.ShapeError) as info:
        sj.function("sum(X)", X=shape)
    assert fragment in str(info.value)


def test_shape_error_names_both_shapes():
    with pytest.raises(sj.ShapeError, match=r"matmul: inner dimensions differ: left \(2, 2\), right \(3, 2\)"):
        sj.function("X @ Y", X=(2, 2), Y=(3, 2))
    with pytest.raises(sj.ShapeError, match=r"inv: needs a square matrix, received shape \(2, 3\)"):
        sj.function("inv(X)", X=(2, 3))


def test_jacobian_over_budget_is_refused_before_any_symbolic_work(monkeypatch):
    def no_symbolic_work(*args, **kwargs):
        raise AssertionError("symbolic work started")

    monkeypatch.setattr(_function, "parse_expression", no_symbolic_work)
    monkeypatch.setattr(_function, "_entry_symbols", no_symbolic_work)
    with pytest.raises(sj.TooLargeError) as info:
        sj.function("X @ X", X=(300, 300))
    message = str(info.value)
    assert "the inputs have 90000 entries in all (X: (300, 300) = 90000), over the budget of 4096" in message
    assert "(Limits.max_input_entries); use smaller shapes" in message
    assert "limits=symjac.Limits(max_input_entries=...)" in message and "--limit max_input_entries=N" in message


#: A refusal comes before the work it refuses: at most this many Python function calls (counted,
#: not timed, so that the outcome does not depend on the machine's speed or load). The largest
#: refusal here (sigmoid(X) * X at 32 x 32, which builds its 1024 outputs first) makes about 1.2
#: million; the refused work itself (det at 9 x 9, a 64 x 64 Jacobian) would make billions.
REFUSAL_CALLS = 3_000_000


@contextlib.contextmanager
def python_calls():
    """Count the Python function calls made inside the block (`sys.setprofile`)."""
    calls = [0]

    def profile(frame, event, arg):
        if event == "call":
            calls[0] += 1

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield calls
    finally:
        sys.setprofile(previous)


# found: every other budget of the Function, each refused before differentiation, with its hint
BUDGET_ROWS = [
    # (expr, shapes, limits, fragment)
    ("sum(X)", {"X": (64, 64)}, {"max_seconds": 1}, "over the limit of 1 s (Limits.max_seconds)"),
    ("X @ X", {"X": (16, 16)}, {"max_seconds": 2},  # the parse alone is estimated at about 1 s
     "building the exact Jacobian and its code and checking it at one point is estimated to take about"),
    ("sigmoid(X) * X", {"X": (32, 32)}, {"max_seconds": 5}, "over the limit of 5 s (Limits.max_seconds)"),
    ("relu(X @ X)", {"X": (10, 10)}, {}, "over the limit of 30 s (Limits.max_seconds); relu alone about"),
    ("inv(X)", {"X": (14, 14)}, {}, "over the limit of 30 s (Limits.max_seconds); inv alone about"),
    ("sigmoid(X) * X", {"X": (32, 32)}, {"max_jacobian_entries": 65_536},
     "the Jacobian would have 1048576 entries (output (32, 32) = 1024 entries x 1024 input entries), "
     "over the budget of 65536 (Limits.max_jacobian_entries)"),
    ("x * y", {"x": (3,), "y": (3,)}, {"max_input_entries": 5},
     "the inputs have 6 entries in all (x: (3,) = 3, y: (3,) = 3), over the budget of 5"),
    ("X @ X", {"X": (3, 3)}, {"max_jacobian_work": 100}, "(Limits.max_jacobian_work)"),
    ("X @ X", {"X": (3, 3)}, {"max_jacobian_entries": 80}, "the Jacobian would have 81 entries"),
    ("X", {"X": (10**30, 10**30)}, {}, "about 10**60 entries in all"),  # found: OverflowError escaped
    ("X", {"X": (2**32, 2**32)}, {}, "the inputs have about 10**19 entries"),  # found: int64 overflow to 0
    ("det(X)", {"X": (36, 36)}, {}, "over the limit of 30 s (Limits.max_seconds); det alone about"),
    ("det(X)", {"X": (16, 16)}, {"max_seconds": 10**5, "max_work": 50_000}, "det alone needs about 65537"),  # old budget
]


@pytest.mark.parametrize("expr, shapes, limits, fragment", BUDGET_ROWS,
                         ids=[f"{r[0]}-{r[2] or 'default'}"[:40] for r in BUDGET_ROWS])
def test_budgets_refuse_with_the_limit_and_a_hint(expr, shapes, limits, fragment):
    with python_calls() as calls, pytest.raises(sj.TooLargeError) as info:
        sj.function(expr, limits=sj.Limits(**limits), **shapes)
    assert calls[0] < REFUSAL_CALLS, calls[0]
    assert fragment in str(info.value)
    assert "or raise the budget: symjac.function(..., limits=symjac.Limits(" in str(info.value)


def test_raised_budget_admits_what_a_lower_one_refuses():
    with pytest.raises(sj.TooLargeError):
        sj.function("sum(X)", X=(40, 40), limits=sj.Limits(max_seconds=1))
    f = sj.function("sum(X)", X=(40, 40), limits=sj.Limits(max_seconds=100))
    assert f.out_shape == ()


def test_budget_is_checked_for_callables_and_sympy_input_too():
    with pytest.raises(sj.TooLargeError, match="Limits.max_seconds"):
        sj.function(lambda X: X.sum() * X, X=(16, 16), limits=sj.Limits(max_seconds=1))
    M = sympy.MatrixSymbol("X", 16, 16)
    with pytest.raises(sj.TooLargeError, match="Limits.max_seconds"):
        sj.function(M * M, X=(16, 16), limits=sj.Limits(max_seconds=1))


@pytest.mark.parametrize(
    "expr, shape, error, fragment",
    [
        # found: SymPy's own matrix algorithms ran for minutes on these (determinant 6 x 6,
        # inverse 4 x 4, 2 x 2 matrix to the 64th power)
        (lambda M: sympy.Determinant(M), 6, sj.TooLargeError,
         "evaluating the SymPy matrix expression is estimated to take about 36 s"),
        (lambda M: M.I, 4, sj.TooLargeError, "(Limits.max_seconds)"),
        (lambda M: M**64, 2, sj.TooLargeError, "exponents are limited to integers with |p| <= 16"),
        (lambda M: M ** sympy.Symbol("k"), 2, sj.TooLargeError, "has exponent k"),
        (lambda M: M * M, 32, sj.TooLargeError, "(Limits.max_seconds)"),
        # found: open-ended algorithms and undefined functions reached doit() or generated code
        (lambda M: sympy.Integral(M[0, 0] ** 2, M[0, 0]), 2, sj.InvalidExpressionError,
         "unevaluated Integral"),
        (lambda M: sympy.Sum(sympy.Symbol("k") * M[0, 0], (sympy.Symbol("k"), 1, 10**9)), 2,
         sj.InvalidExpressionError, "unevaluated Sum"),
        (lambda M: sympy.Function("g")(sympy.Symbol("x")), 2, sj.InvalidExpressionError,
         "applies an undefined function 'g'"),
    ],
    ids=["det6", "inv4", "pow64", "powk", "matmul32", "integral", "sum", "undefined"],
)
def test_sympy_input_over_budget_is_refused_before_evaluation(expr, shape, error, fragment):
    M = sympy.MatrixSymbol("X", shape, shape)
    with python_calls() as calls, pytest.raises(error) as info:
        sj.function(expr(M), X=(shape, shape), x=())
    assert calls[0] < REFUSAL_CALLS, calls[0]
    assert fragment in str(info.value)


@pytest.mark.parametrize("make", [
    lambda x: sympy.erfc(x), lambda x: sympy.gamma(x), lambda x: sympy.floor(x) * x,
    lambda x: sympy.sign(x) * x, lambda x: sympy.Heaviside(x) * x, lambda x: sympy.besselj(0, x),
    lambda x: sympy.Derivative(sympy.Abs(x) ** 3, x),
], ids=["erfc", "gamma", "floor", "sign", "heaviside", "besselj", "derivative"])
def test_functions_without_generated_code_are_refused_when_built(make):
    # found: these were accepted and crashed inside check() with a printer error or a TypeError
    x = sympy.Symbol("x", real=True)
    with pytest.raises(sj.InvalidExpressionError, match="is not supported|unevaluated Derivative"):
        sj.function(make(x), x=())
    with pytest.raises(sj.InvalidExpressionError, match="is not supported|unevaluated Derivative"):
        sj.function(lambda x: make(x), x=())


@pytest.mark.parametrize("consts, error, fragment", [
    ([1.0, 2.0], sj.InvalidArgumentError, "consts: must be a dict from name to array"),  # found: TypeError
    ("ab", sj.InvalidArgumentError, "consts: must be a dict from name to array"),  # found: ValueError
    ({"A": np.ones((400, 400))}, sj.TooLargeError, "consts['A']: 160000 entries, over the budget of 100000"),
    ({"A": float("nan")}, sj.InvalidArgumentError, "consts['A']: values must be finite"),
    ({"A": "1"}, sj.InvalidArgumentError, "consts['A']: must hold real numbers"),
    ({"A": [[1], [1, 2]]}, sj.InvalidArgumentError, "consts['A']: must be a number or a nested list"),
])
def test_bad_constants(consts, error, fragment):
    with pytest.raises(error) as info:
        sj.function("x", x=(), consts=consts)
    assert fragment in str(info.value)


@pytest.mark.parametrize("limits, fragment", [
    ({"max_work": 100}, "limits: must be a symjac.Limits instance"),
    (None, "limits: must be a symjac.Limits instance"),
])
def test_limits_must_be_a_limits_instance(limits, fragment):
    with pytest.raises(sj.InvalidArgumentError, match=fragment):
        sj.function("x", x=(), limits=limits)


@pytest.mark.parametrize("field, value", [("max_jacobian_work", 0), ("max_input_entries", -1),
                                          ("max_rank", 2.5), ("max_jacobian_entries", "10")])
def test_limits_fields_are_positive_ints(field, value):
    with pytest.raises(sj.InvalidArgumentError, match=f"limits: {field} must be a positive int"):
        sj.Limits(**{field: value})


# --------------------------------------------------------------------------- values and points

F = None


def _f():
    global F
    if F is None:
        F = sj.function("X @ X", X=(2, 2))
    return F


@pytest.mark.parametrize("bad, shown", [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")])
def test_non_finite_input_value_is_refused_with_its_index(bad, shown):
    X = np.ones((2, 2))
    X[1, 0] = bad
    with pytest.raises(sj.InvalidArgumentError, match=rf"X: values must be finite; received {shown} at index \(1, 0\)"):
        sj.check(_f(), X=X)
    with pytest.raises(sj.InvalidArgumentError, match="values must be finite"):
        _f()(X=X)


@pytest.mark.parametrize("value, received", [(np.ones(3), "(3,)"), (np.ones((2, 3)), "(2, 3)"), (1.0, "()")])
def test_value_of_the_wrong_shape(value, received):
    with pytest.raises(sj.ShapeError) as info:
        sj.check(_f(), X=value)
    assert f"X: expected shape (2, 2) (optionally with leading batch dims); received shape {received}" in str(info.value)


@pytest.mark.parametrize("value, fragment", [
    ("abc", "X: must hold real numbers (float or int); received dtype <U3"),
    (np.ones((2, 2), complex), "received dtype complex128"),
    (None, "received dtype object"),
    ({"a": 1}, "received dtype object"),
    ([[1, 2], [3]], "X: must be a number or a nested list/array of numbers"),
])
def test_value_that_is_not_real_numbers(value, fragment):  # found
    with pytest.raises(sj.InvalidArgumentError) as info:
        sj.check(_f(), X=value)
    assert fragment in str(info.value)


@pytest.mark.parametrize("expr, reason", [
    ("relu(x)", "non-differentiable point: the argument difference of Max(0, x) is exactly 0 here"),
    ("abs(x)", "non-differentiable point: the argument of Abs(x) is exactly 0 here"),
])
def test_kink_at_zero_is_inconclusive_not_fail(expr, reason):
    report = sj.check(sj.function(expr, x=()), x=0.0)
    assert report.verdict == "inconclusive"
    assert report.reason == reason


@pytest.mark.parametrize("expr, x", [("log(x)", 0.0), ("log(x)", -1.0), ("sqrt(x)", 0.0), ("sqrt(x)", -1.0)])
def test_outside_the_domain_is_inconclusive_never_a_silent_pass(expr, x):
    report = sj.check(sj.function(expr, x=()), x=x)
    assert report.verdict == "inconclusive"
    assert report.reason.startswith("outside the domain")


def test_subnormal_point_is_not_a_failure():
    # found: at X = 1e-320 every tolerance underflowed to 0 and a correct Jacobian was a "fail"
    report = sj.check(_f(), X=np.full((2, 2), 1e-320))
    assert report.verdict == "pass", str(report)


@pytest.mark.parametrize("options, error, fragment", [
    ({"samples": 0}, sj.InvalidArgumentError, "samples: must be an int from 1 to 100000; received 0"),
    ({"samples": -3}, sj.InvalidArgumentError, "samples: must be an int from 1 to 100000; received -3"),
    ({"samples": 2.5}, sj.InvalidArgumentError, "received 2.5"),
    ({"samples": True}, sj.InvalidArgumentError, "received True"),
    ({"samples": 2, "seed": "a"}, sj.InvalidArgumentError, "seed: must be an int >= 0; received 'a'"),
    ({"samples": 2, "seed": -1}, sj.InvalidArgumentError, "seed: must be an int >= 0; received -1"),
    ({"seed": "a"}, sj.InvalidArgumentError, "seed: is used only with samples=N"),
    ({"X": np.eye(2), "rtol": -1}, sj.InvalidArgumentError,
     "has no input named 'rtol'; its inputs are X; 'rtol' is not an option: tolerances are set with "
     "tolerance=symjac.ToleranceModel(...)"),
    ({"X": np.eye(2), "rtol": float("nan")}, sj.InvalidArgumentError, "'rtol' is not an option"),
    ({"X": np.eye(2), "tolerance": 1e-3}, sj.InvalidArgumentError, "tolerance: must be a symjac.ToleranceModel"),
    ({"samples": 2, "X": np.eye(2)}, sj.InvalidArgumentError, "pass either samples=N or a point, not both"),
])
def test_bad_options_are_usage_errors(options, error, fragment):
    with pytest.raises(error) as info:
        sj.check(_f(), **options)
    assert fragment in str(info.value)


@pytest.mark.parametrize("field, value", [("rounding_factor", -1), ("fd_factor", float("nan")),
                                          ("conditioning_factor", float("inf")), ("rounding_factor", "a")])
def test_tolerance_options_are_validated(field, value):
    # The list's rtol=-1 and rtol=nan, for the options that exist: the tolerance model's factors.
    with pytest.raises(sj.InvalidArgumentError, match=f"{field}: must be a finite number >= 0"):
        sj.ToleranceModel(**{field: value})


@pytest.mark.parametrize("f, error, fragment", [
    ("X @ X", sj.InvalidArgumentError, "f: must be a symjac.Function"),
    (None, sj.InvalidArgumentError, "f: must be a symjac.Function"),
])
def test_check_of_something_that_is_not_a_function(f, error, fragment):
    with pytest.raises(error, match=fragment):
        sj.check(f, X=np.eye(2))


def test_budget_docstring_examples_run():
    import doctest

    from symjac import _budget

    assert doctest.testmod(_budget).failed == 0


def test_reproduction_line_repeats_raised_budgets():
    # found: a Function built under raised limits had a reproduction line that raised TooLargeError
    with pytest.raises(sj.InvalidExpressionError, match="Limits.max_exponent"):
        sj.function("x ** 20", x=())
    f = sj.function("x ** 20", x=(), limits=sj.Limits(max_exponent=20))
    report = sj.check(f, x=0.5)
    assert "limits=symjac.Limits(max_exponent=20)" in report.reproduce
    namespace = {"symjac": sj, "numpy": np}
    exec(report.reproduce.replace("import numpy, symjac; ", "result = "), namespace)
    assert namespace["result"].verdict == report.verdict
    assert "limits=" not in sj.check(sj.function("x", x=()), x=1.0).reproduce
    import pickle

    assert pickle.loads(pickle.dumps(f)).limits == f.limits
