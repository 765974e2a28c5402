"""Fuzzing: random text and random syntax trees for the parser, random shapes, values and options for
the public API. Properties: the only exceptions that escape are `SymjacError`s; nothing hangs (a
hard limit per example, on top of the test's own timeout); nothing the user wrote is executed
(`eval`, `exec` and `compile` never see it, and a payload that would create a file never does);
what comes back is well formed (object arrays of real SymPy expressions in the declared symbols,
reports that are strict JSON).

The budget is the Hypothesis profile of tests/conftest.py: "ci" (25 examples per test,
derandomized) by default; `benchmarks/fuzz_long.py` runs the same tests with the "fuzz" profile
(random, thousands of examples) and records how many examples ran.
"""

import ast
import builtins
import contextlib
import json
import signal
import threading

import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import symjac as sj
from symjac._parse import FUNCTIONS, parse_expression

pytestmark = pytest.mark.timeout(600)

#: Seconds one example may take before it counts as a hang.
EXAMPLE_LIMIT = 10.0
MARKER = "SYMJAC_FUZZ_PAYLOAD"

#: Examples run per test in this process (read by benchmarks/fuzz_long.py).
EXAMPLES: dict[str, int] = {}
#: Checks of a correct function (no candidate Jacobian) that said "fail" (read by fuzz_long.py).
FAILS: list = []


class Hang(BaseException):
    """An example ran past EXAMPLE_LIMIT. A BaseException, so that no `except Exception` on the way
    (SymPy has a few) swallows it; it stops the run and fails the test."""


@contextlib.contextmanager
def hard_limit(seconds: float = EXAMPLE_LIMIT):
    """SIGALRM after `seconds`, raising `Hang` in the example; the previous alarm (pytest-timeout's)
    is restored with its remaining time afterwards. A no-op outside the main thread."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(signum, frame):
        raise Hang(f"example ran past {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    remaining, interval = signal.getitimer(signal.ITIMER_REAL)
    started = _now()
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if remaining:
            signal.setitimer(signal.ITIMER_REAL, max(remaining - (_now() - started), 0.01), interval)


def _now() -> float:
    import time

    return time.monotonic()


@contextlib.contextmanager
def nothing_executes():
    """Fail if `eval`, `exec` or `compile` (other than to a syntax tree) see the payload marker."""
    seen = []
    real = {name: getattr(builtins, name) for name in ("eval", "exec", "compile")}

    def spy(name):
        def wrapped(source, *args, **kwargs):
            flags = args[2] if name == "compile" and len(args) > 2 else kwargs.get("flags", 0)
            text = source if isinstance(source, str) else source.decode("utf-8", "replace") if isinstance(source, bytes) else ""
            if MARKER in text and not (name == "compile" and flags & ast.PyCF_ONLY_AST):
                seen.append((name, text[:80]))
            return real[name](source, *args, **kwargs)
        return wrapped

    for name in real:
        setattr(builtins, name, spy(name))
    try:
        yield
    finally:
        for name, fn in real.items():
            setattr(builtins, name, fn)
    assert seen == [], seen


def count(test: str) -> None:
    EXAMPLES[test] = EXAMPLES.get(test, 0) + 1


# --------------------------------------------------------------------------- the parser

def symbols(name, shape):
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(shape):
        out[index] = sympy.Symbol(f"{name}[{', '.join(map(str, index))}]" if index else name, real=True)
    return out


SHAPES = {"x": (), "y": (), "v": (3,), "w": (2,), "X": (2, 2), "Y": (3, 2)}
NAMES = {name: symbols(name, shape) for name, shape in SHAPES.items()}
NAMES["A"] = np.array([[sympy.Integer(2), sympy.Rational(1, 3)], [sympy.Integer(-1), sympy.Integer(5)]], dtype=object)
DECLARED = {s for value in NAMES.values() for s in value.flat if isinstance(s, sympy.Symbol)}
PAYLOAD = f"__import__('os').system('{MARKER}')"

TOKENS = (
    list(NAMES) + ["pi", "e", "0", "1", "2", "3", "0.5", "1e3", "17", "1e-300", "10**10", "9" * 40]
    + ["+", "-", "*", "/", "**", "@", "(", ")", "[", "]", ",", ".T", " ", "-1", ":"]
    + [f"{name}(" for name in FUNCTIONS]
    + ["__import__(", "'os'", "open(", ".__class__", "lambda:", " if ", " else ", "<", " and ", "not ",
       "#", ";", "\n", "\x00", "\x1b", "f'{", "}'", "[i for i in ", "...", "None", "True", "**-", "//", "%",
       "x=", ":=", "*", "**{", "}", PAYLOAD, "é", "\u202e"]
)
token_text = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)


def check_parse_result(result: np.ndarray, declared=DECLARED) -> None:
    assert isinstance(result, np.ndarray) and result.dtype == object
    for entry in result.flat:
        assert isinstance(entry, sympy.Expr) and not isinstance(entry, sympy.MatrixExpr)
        assert entry.free_symbols <= declared
        assert not entry.has(sympy.I, sympy.zoo, sympy.nan, sympy.oo, -sympy.oo)


def parse_property(text: str, test: str) -> None:
    count(test)
    with nothing_executes(), hard_limit():
        try:
            result = parse_expression(text, NAMES)
        except sj.SymjacError:
            return
    check_parse_result(result)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(token_text)
def test_parser_on_random_token_text(text):
    parse_property(text, "parser-tokens")


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=120))
def test_parser_on_random_unicode_text(text):
    parse_property(text, "parser-unicode")


# Random syntax trees: the language's own constructs with every operator, call and subscript,
# mixed with constructs it refuses; unparsed to text by Python itself.
_BINOPS = [ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.MatMult, ast.FloorDiv, ast.Mod, ast.BitXor]
_UNARY = [ast.USub, ast.UAdd, ast.Not, ast.Invert]
_CALLABLE = list(FUNCTIONS) + ["open", "eval", "__import__", "factorial", "x"]


def _leaves():
    return st.one_of(
        st.sampled_from(list(NAMES) + ["pi", "e", "sin", "os", "__builtins__"]).map(lambda n: ast.Name(n, ast.Load())),
        st.integers(-20, 20).map(ast.Constant),
        st.sampled_from([0.5, 1e-3, 2.5e10, 1e300, 3.0]).map(ast.Constant),
        st.sampled_from([None, True, "s", b"b", 1j, Ellipsis, MARKER, 10**40]).map(ast.Constant),
    )


def _extend(children):
    return st.one_of(
        st.tuples(st.sampled_from(_BINOPS), children, children).map(lambda t: ast.BinOp(t[1], t[0](), t[2])),
        st.tuples(st.sampled_from(_UNARY), children).map(lambda t: ast.UnaryOp(t[0](), t[1])),
        st.tuples(st.sampled_from(_CALLABLE), st.lists(children, max_size=3)).map(
            lambda t: ast.Call(ast.Name(t[0], ast.Load()), t[1], [])),
        st.tuples(children, st.sampled_from(["T", "T", "shape", "__class__"])).map(
            lambda t: ast.Attribute(t[0], t[1], ast.Load())),
        st.tuples(children, st.lists(st.integers(-3, 3), min_size=1, max_size=3)).map(
            lambda t: ast.Subscript(t[0], ast.Tuple([ast.Constant(i) for i in t[1]], ast.Load())
                                    if len(t[1]) > 1 else ast.Constant(t[1][0]), ast.Load())),
        st.tuples(children, children).map(lambda t: ast.Compare(t[0], [ast.Lt()], [t[1]])),
        st.tuples(children, children, children).map(lambda t: ast.IfExp(t[0], t[1], t[2])),
        children.map(lambda c: ast.Lambda(ast.arguments([], [], None, [], [], None, []), c)),
        st.lists(children, max_size=3).map(lambda cs: ast.List(cs, ast.Load())),
    )


trees = st.recursive(_leaves(), _extend, max_leaves=30)


def tree_text(tree: ast.AST) -> str:
    return ast.unparse(ast.fix_missing_locations(ast.Expression(tree)))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(trees)
def test_parser_on_random_syntax_trees(tree):
    parse_property(tree_text(tree), "parser-trees")


# Trees of the language only (no refused constructs), so that many of them are valid: the results
# must mean what SymPy says, for any that parse.
_ALLOWED_BINOPS = [ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.MatMult]
_SCALAR_FUNCTIONS = ["exp", "log", "sin", "cos", "tanh", "sqrt", "abs", "relu", "sigmoid", "sum", "norm"]
valid_trees = st.recursive(
    st.one_of(st.sampled_from(list(NAMES) + ["pi", "e"]).map(lambda n: ast.Name(n, ast.Load())),
              st.integers(-5, 5).map(ast.Constant)),
    lambda children: st.one_of(
        st.tuples(st.sampled_from(_ALLOWED_BINOPS), children, children).map(lambda t: ast.BinOp(t[1], t[0](), t[2])),
        children.map(lambda c: ast.UnaryOp(ast.USub(), c)),
        st.tuples(st.sampled_from(_SCALAR_FUNCTIONS + ["det", "inv", "trace", "softmax", "transpose"]), children).map(
            lambda t: ast.Call(ast.Name(t[0], ast.Load()), [t[1]], [])),
        children.map(lambda c: ast.Attribute(c, "T", ast.Load())),
    ),
    max_leaves=12,
)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(valid_trees)
def test_parser_on_random_valid_trees(tree):
    parse_property(tree_text(tree), "parser-valid-trees")


def test_payload_marker_is_caught_by_the_spy():
    # The property's own check works: a compile of the marker is seen.
    with pytest.raises(AssertionError):
        with nothing_executes():
            eval(compile(f"'{MARKER}'", "<spy>", "eval"))


def test_hard_limit_stops_a_hang_and_restores_the_alarm():
    before = signal.getitimer(signal.ITIMER_REAL)
    with pytest.raises(Hang):
        with hard_limit(0.2):
            while True:
                pass
    after = signal.getitimer(signal.ITIMER_REAL)
    assert (before[0] == 0) == (after[0] == 0)


# --------------------------------------------------------------------------- the public API

VALID_NAMES = ["x", "y", "v", "X", "W", "theta_1"]
BAD_NAMES = ["sin", "_x", "x y", "lambda", "torch", "1x", ""]


@st.composite
def shapes(draw):
    good = st.one_of(st.just(()), st.tuples(st.integers(1, 3)), st.tuples(st.integers(1, 3), st.integers(1, 3)))
    bad = st.one_of(
        st.integers(-2, 3), st.tuples(st.integers(-2, 3), st.integers(-2, 3)),
        st.sampled_from([(2.5, 2), ("a", 2), (True, 2), "2x2", None, (10**30, 10**30), (2**32, 2**32),
                         (1, 1, 1, 1, 1), (np.int64(2), 2), [2, 2], (300, 300)]),
    )
    return draw(bad if draw(st.integers(0, 9)) == 9 else good)  # Hypothesis favours 0: 0 is good


@st.composite
def function_args(draw):
    count_inputs = draw(st.integers(1, 3))
    names = draw(st.lists(st.sampled_from(VALID_NAMES), min_size=count_inputs, max_size=count_inputs, unique=True))
    if draw(st.integers(0, 9)) == 9:
        names[0] = draw(st.sampled_from(BAD_NAMES))
    declared = {name: draw(shapes()) for name in names}
    vocabulary = names + ["A", "pi", "2", "0.5", "+", "-", "*", "/", "**", "@", "(", ")", ".T", "[0]", ",", "-1"] + [
        f"{f}(" for f in FUNCTIONS]
    templates = ["sum({n} * {n}) + sin(sum({n}))", "{n} @ {n}", "exp({n}) / (1 + {n} ** 2)", "relu({n}) * {n}",
                 "log(1 + {n} ** 2)", "sqrt({n})", "softmax({n})", "det({n})", "inv({n})", "{n}.T @ {n}",
                 "tanh({n}) + abs({n})", "norm({n}) * sigmoid({n})", "{n} / {n}"]
    text = draw(st.one_of(
        st.lists(st.sampled_from(vocabulary), min_size=1, max_size=12).map("".join),
        st.tuples(st.sampled_from(templates), st.sampled_from(names)).map(lambda t: t[0].format(n=t[1])),
        st.tuples(st.sampled_from(templates), st.sampled_from(names)).map(lambda t: t[0].format(n=t[1])),
        st.tuples(st.sampled_from(templates), st.sampled_from(names), st.sampled_from(names)).map(
            lambda t: t[0].format(n=t[1]) + " + " + t[0].format(n=t[2])),
    ))
    rare = draw(st.integers(0, 19))
    consts = None
    if rare in (15, 16):  # Hypothesis favours small draws: the common case is 0
        consts = draw(st.sampled_from([{"A": [[2.0, 3.0], [4.0, 5.0]]}, {"A": 1.5}]))
    elif rare == 19:
        consts = draw(st.sampled_from([{"A": float("nan")}, {"A": "1"}, {"A": [[1], [1, 2]]}, [1, 2], {"sin": 1.0},
                                       {"A": np.ones(200_001)}]))
    limits = sj.DEFAULT_LIMITS
    if rare == 17:
        limits = draw(st.builds(sj.Limits, max_work=st.integers(1, 10**6), max_jacobian_work=st.integers(1, 10**6),
                                max_input_entries=st.integers(1, 100)))
    elif rare == 18:
        limits = draw(st.sampled_from([None, {"max_work": 3}]))
    return text, declared, consts, limits


def values_for(draw, inp):
    elements = st.floats(allow_nan=True, allow_infinity=True, width=64)
    finite = st.floats(-3, 3, allow_nan=False, allow_infinity=False)
    shape = inp.shape
    kind = draw(st.integers(0, 9))
    if kind < 6:
        return draw(hnp.arrays(np.float64, shape, elements=finite))
    if kind == 6:
        return draw(hnp.arrays(st.sampled_from([np.float32, np.float64, np.int64]), shape, elements=st.integers(-3, 3)))
    if kind == 7:
        return draw(hnp.arrays(np.float64, shape, elements=elements))
    if kind == 8:
        return draw(hnp.arrays(np.float64, st.sampled_from([(1,), (2, 2), (3,) + shape, shape + (1,)])))
    return draw(st.sampled_from([None, "abc", {"a": 1}, [[1, 2], [3]], 1e308, 1e-320, True, [0.0] * 7]))


def strict_json(document: dict) -> None:
    json.loads(json.dumps(document, allow_nan=False))


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(args=function_args(), data=st.data())
def test_public_api_on_random_shapes_values_and_options(args, data):
    count("public-api")
    text, declared, consts, limits = args
    with nothing_executes(), hard_limit(3 * EXAMPLE_LIMIT):
        try:
            f = sj.function(text, consts=consts, limits=limits, **declared)
        except sj.SymjacError as error:
            event(f"function refused: {type(error).__name__}")
            return
        check_parse_result(f.output, {s for inp in f.inputs for s in inp.flat_symbols})
        values = {inp.name: values_for(data.draw, inp) for inp in f.inputs}
        if data.draw(st.integers(0, 9)) == 9:
            values.pop(next(iter(values)))  # a missing value
        options = {} if data.draw(st.integers(0, 3)) < 3 else data.draw(st.sampled_from([
            {"samples": 0}, {"samples": -3}, {"samples": 2.5}, {"seed": "a"}, {"rtol": -1},
            {"rtol": float("nan")}, {"tolerance": 1e-3}, {"tolerance": sj.ToleranceModel(fd_factor=8.0)},
            {"jacobian": np.zeros(3)}, {"samples": 2, "seed": "a"},
        ]))
        try:
            report = sj.check(f, **values, **options)
        except sj.SymjacError as error:
            event(f"check refused: {type(error).__name__}")
            report = None
        if report is not None:
            event(f"check ran: {report.verdict}{' (a wrong candidate)' if 'jacobian' in options else ''}")
            if report.verdict == "fail" and "jacobian" not in options:
                FAILS.append((text, declared, values, str(report)))
            assert report.verdict in ("pass", "fail", "inconclusive")
            strict_json(report.to_dict())
            str(report)
        try:
            evaluated = f(**values)
            assert evaluated.shape[-len(f.out_shape):] == f.out_shape if f.out_shape else True
        except sj.SymjacError:
            pass
        wrt = data.draw(st.sampled_from(list(f.input_names) + ["nope", None, 3]))
        try:
            f.jacobian(wrt).evaluate(**values)
        except sj.SymjacError:
            pass
        try:
            sj.latex(f, mode=data.draw(st.sampled_from(["plain", "inline", "display", "bogus"])))
        except sj.SymjacError:
            pass


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(["check", "jacobian", "latex", "examples", "suite", "X @ X", "x", "--input",
                                 "X=2x2", "x=scalar", "--at", "X=[[1,2],[3,4]]", "x=1", "x=NaN", "--json",
                                 "--dtype", "float32", "--const", "A=[1]", "--limit", "max_work=5", "--timeout",
                                 "0", "-1", "--wrt", "--form", "matrix", "--only", "sqrt", "--samples", "1",
                                 "--bogus", "=", ""]), max_size=10))
def test_cli_argument_lists(argv):
    import io

    from symjac._cli import main

    count("cli")
    if "--timeout" not in argv:
        argv = argv + ["--timeout", "0"]  # in this process: the worker is tested in test_cli.py
    if "examples" in argv or "suite" in argv:
        assume(False)  # whole runs: too slow for a fuzz example, tested in test_cli.py
    out, err = io.StringIO(), io.StringIO()
    with nothing_executes(), hard_limit():
        status = main(argv, out=out, err=err)
    assert status in (0, 1, 2, 3), (argv, status, err.getvalue())
    if status == 2:
        assert err.getvalue().count("\n") == 1 and err.getvalue().startswith("symjac: error: ")
    if status in (0, 1, 3) and "--json" in argv and "check" in argv[:1]:
        json.loads(out.getvalue(), parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
