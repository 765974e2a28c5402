"""symjac.strategies: inputs from the function's own domain, and random well-shaped expressions."""

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings

import symjac as sj
from symjac.strategies import domain, expressions, inputs


@pytest.mark.parametrize(
    "expr, shapes, roles, checked",
    [
        ("X @ X", {"X": (3, 3)}, {"X": "any"}, 0),
        ("log(x) + sqrt(y)", {"x": (2,), "y": ()}, {"x": "positive", "y": "positive"}, 0),
        ("1 / x", {"x": (3,)}, {"x": "nonzero"}, 0),
        ("relu(x) * x", {"x": (3,)}, {"x": "nonzero"}, 0),
        ("norm(x)", {"x": (3,)}, {"x": "nonzero"}, 0),
        ("softmax(x)", {"x": (3,)}, {"x": "any"}, 0),
        ("inv(X)", {"X": (3, 3)}, {"X": "invertible"}, 1),
        ("log(det(X))", {"X": (3, 3)}, {"X": "invertible, posdet"}, 1),
        ("solve(A, b)", {"A": (2, 2), "b": (2,)}, {"A": "invertible", "b": "any"}, 1),
        ("inv(X @ X)", {"X": (2, 2)}, {"X": "invertible"}, 1),
        ("abs(x - y)", {"x": (), "y": ()}, {"x": "any", "y": "any"}, 1),
    ],
)
def test_roles_derived_from_the_expression(expr, shapes, roles, checked):
    d = domain(sj.function(expr, **shapes))
    assert d.describe() == roles
    assert len(d.checked) == checked


@settings(max_examples=30, deadline=None)  # health checks on: values are built, not filtered
@given(inputs(sj.function("log(det(X)) + sum(log(y))", X=(3, 3), y=(2,))))
def test_values_are_built_inside_the_domain(values):
    X, y = values["X"], values["y"]
    assert X.dtype == np.float64 and X.shape == (3, 3)
    assert np.linalg.det(X) >= 1.0 - 1e-9  # strictly diagonally dominant with margin 1: |det| >= 1
    assert np.linalg.cond(X, np.inf) <= 2 * 3 + 1e-9
    assert (y >= 0.25).all() and (y <= 40.0).all()  # far points reach 40 (strategies.DEFAULT_REACH)


@settings(max_examples=30, deadline=None)
@given(inputs(sj.function("inv(X) * relu(x)", X=(2, 2), x=()), dtype="float32"))
def test_float32_values_are_float32(values):
    assert values["X"].dtype == np.float32 and values["x"].dtype == np.float32
    assert abs(np.linalg.det(values["X"].astype(np.float64))) >= 1.0 - 1e-5
    assert abs(values["x"]) >= 0.25


@settings(max_examples=40, deadline=None)
@given(inputs(sj.function("abs(x - y)", x=(), y=())))
def test_kinks_no_family_avoids_are_checked_on_every_draw(values):
    assert abs(values["x"] - values["y"]) >= 0.25


#: `find` as a test needs it: derandomized (the same draws every run), no example database, and no
#: explain phase (it traces every shrinking step with `sys.settrace`; one run in a full suite took
#: over 300 s that way, where 18 s is usual).
FIND = settings(database=None, derandomize=True, phases=[Phase.generate, Phase.shrink])


def test_values_shrink_to_simple_points():
    def simplest(f):
        return find(inputs(f), lambda v: True, settings=FIND)

    assert simplest(sj.function("inv(X)", X=(2, 2)))["X"].tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert simplest(sj.function("X @ X", X=(2, 2)))["X"].tolist() == [[0.0, 0.0], [0.0, 0.0]]
    assert simplest(sj.function("log(x)", x=(2,)))["x"].tolist() == [1.0, 1.0]


def test_roles_can_be_given():
    f = sj.function("X @ X", X=(2, 2))
    assert domain(f, roles={"X": ["invertible", "posdet"]}).describe() == {"X": "invertible, posdet"}
    assert domain(f, roles={"X": "positive"}).describe() == {"X": "positive"}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"dtype": "int32"}, "dtype: must be float32 or float64; received 'int32'"),
        ({"bound": 0}, "bound: must be a finite number > 0.0; received 0"),
        ({"margin": float("nan")}, "margin: must be a finite number > 0.0"),
        ({"margin": 5.0}, "margin: must be smaller than bound"),
        ({"roles": {"Z": "positive"}}, "roles: f has no input named 'Z'"),
        ({"roles": {"X": "tiny"}}, "roles['X']: flags must be among"),
        ({"roles": ["X"]}, "roles: must be a mapping"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(sj.InvalidArgumentError, match=message.replace("(", r"\(").replace("[", r"\[")):
        inputs(sj.function("X @ X", X=(2, 2)), **kwargs)


def test_not_a_function():
    with pytest.raises(sj.InvalidArgumentError, match="f: must be a symjac.Function"):
        inputs("X @ X")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions(max_depth=3))
def test_random_expressions_are_well_shaped_functions(f):
    assert isinstance(f, sj.Function) and f.source
    assert f.output.shape == f.out_shape
    rebuilt = sj.function(f.source, **{i.name: i.shape for i in f.inputs})
    assert rebuilt.out_shape == f.out_shape


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.nested_given])
@given(expressions(shapes={"x": (2,), "X": (2, 2)}, max_depth=2))
def test_random_expressions_never_fail_the_cross_check(f):
    pytest.importorskip("torch")
    report = sj.check(f, samples=3, seed=0)
    assert report.verdict != "fail", str(report)


def test_expressions_arguments():
    with pytest.raises(sj.InvalidArgumentError, match="max_depth: must be an int from 1 to 6; received 0"):
        expressions(max_depth=0)
    with pytest.raises(sj.ShapeError):
        expressions(shapes={"x": (0,)})
