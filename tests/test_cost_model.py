"""Budgets in seconds and MiB (the cost model `symjac._cost`), the library's time limit, progress.

Deterministic: estimates and refusal messages are asserted, never wall-clock time. A job that
"runs until killed" is a loop that never ends on its own, stopped only by the limit.
"""

from __future__ import annotations

import io
import math
import re
import threading

import numpy as np
import pytest
import sympy

import symjac as sj
from symjac import _budget, _cost, _dag, _deadline

#: What the defaults must accept (issue 14): built with default Limits, estimate under max_seconds.
ORDINARY = [
    ("X @ X", {"X": (16, 16)}),
    ("softmax(x)", {"x": (64,)}),
    ("inv(X)", {"X": (5, 5)}),
    ("det(X)", {"X": (6, 6)}),
    ("softmax(Q @ K.T) @ V", {"Q": (8, 8), "K": (8, 8), "V": (8, 8)}),
    ("tanh(W @ x + b)", {"W": (32, 32), "x": (32,), "b": (32,)}),
]


def estimate_of(f: sj.Function) -> _cost.Estimate:
    flat = list(f.output.reshape(-1))
    symbols = {s for inp in f.inputs for s in inp.flat_symbols}
    return _cost.estimate(_budget.output_features(flat, symbols, sum(inp.size for inp in f.inputs)))


@pytest.mark.parametrize("text, shapes", ORDINARY, ids=[t for t, _ in ORDINARY])
def test_defaults_accept_ordinary_sizes(text, shapes):
    f = sj.function(text, **shapes)  # default Limits: not refused
    estimate = estimate_of(f)
    assert 0 < estimate.seconds <= sj.DEFAULT_LIMITS.max_seconds
    assert 0 < estimate.mib <= sj.DEFAULT_LIMITS.max_memory


def test_an_ordinary_size_is_built_differentiated_and_checked_with_defaults():
    f = sj.function("det(X)", X=(6, 6))
    assert f.jacobian().shape == (6, 6)
    X = np.random.default_rng(0).uniform(0.5, 1.0, (6, 6))
    assert sj.check(f, X=X).verdict == "pass"


#: Jobs that ran for minutes inside symjac.function / .jacobian() under the old budgets (issue 14).
RUNAWAY = [("inv(inv(X))", 4), ("relu(X @ X)", 10), ("det(sigmoid(X))", 3), ("det(1 / (X + 2))", 3)]


@pytest.mark.parametrize("text, n", RUNAWAY, ids=[t for t, _ in RUNAWAY])
def test_runaway_jobs_are_refused_at_once_or_estimated_under_the_limit(text, n, monkeypatch):
    """Each is refused by the parser's estimate before it is built, or built with an estimate under
    the limit. relu(X @ X) at 10 x 10 spent 28 s building `Max(0, e)` (SymPy's sign queries): it
    must be refused before any relu is built."""
    from symjac import _parse

    built = []
    row = _parse.FUNCTIONS["relu"]
    monkeypatch.setitem(_parse.FUNCTIONS, "relu", (lambda x: built.append(1) or row[0](x), *row[1:]))
    try:
        f = sj.function(text, X=(n, n))
    except sj.TooLargeError as error:
        message = str(error)
        assert not built  # refused before the step that was slow
        assert "building this expression is estimated to take about" in message
        seconds = float(re.search(r"estimated to take about ([0-9.,]+) s", message).group(1).replace(",", ""))
        assert seconds > sj.DEFAULT_LIMITS.max_seconds
        assert "over the limit of 30 s (Limits.max_seconds)" in message
        suggested = int(re.search(r"Limits\(max_seconds=(\d+)\)", message).group(1))
        assert suggested >= seconds  # the suggested limit would let it through
        assert "operations" not in message
        assert text == "relu(X @ X)"
    else:
        assert text != "relu(X @ X)"
        assert estimate_of(f).seconds <= sj.DEFAULT_LIMITS.max_seconds


def test_a_refused_job_is_accepted_under_the_suggested_limit():
    with pytest.raises(sj.TooLargeError) as info:
        sj.function("inv(inv(X))", X=(3, 3), limits=sj.Limits(max_seconds=0.5))
    suggested = int(re.search(r"Limits\(max_seconds=(\d+)\)", str(info.value)).group(1))
    assert sj.function("inv(inv(X))", X=(3, 3), limits=sj.Limits(max_seconds=suggested)).out_shape == (3, 3)


def test_det_of_non_polynomial_entries_is_not_simplified(monkeypatch):
    """det(sigmoid(X)) and det(1 / (X + 2)) at 3 x 3 took about 22 s: SymPy's `dotprodsimp` ran
    `cancel` over the expanded products. The division-free formula needs no simplification."""
    import importlib

    simplify = importlib.import_module("sympy.simplify.simplify")  # the module, not the function

    def refuse(*args, **kwargs):
        raise AssertionError("dotprodsimp called")

    monkeypatch.setattr(simplify, "dotprodsimp", refuse)
    for text in ("det(sigmoid(X))", "det(1 / (X + 2))", "inv(1 / (X + 2))"):
        f = sj.function(text, X=(3, 3))
        X = np.random.default_rng(1).uniform(0.5, 1.0, (3, 3))
        value = np.asarray(f(X=X), dtype=float)
        if text.startswith("det(sigmoid"):
            expected = np.linalg.det(1 / (1 + np.exp(-X)))
        elif text.startswith("det"):
            expected = np.linalg.det(1 / (X + 2))
        else:
            expected = np.linalg.inv(1 / (X + 2))
        np.testing.assert_allclose(value, expected, rtol=1e-10)


def test_the_model_grows_with_the_work():
    """Estimates grow with the shapes (X @ X, det, inv(inv(X))). The former runaway inv(inv(X))
    at 4 x 4 (26,608 nodes per entry when the determinants were written out) is, with `det` nodes
    (symjac._determinant), estimated and accepted under the default 30 s, and its 5 x 5 above it."""
    big = sj.Limits(max_seconds=1e6)
    for text in ("X @ X", "det(X)", "inv(inv(X))"):
        sizes = [estimate_of(sj.function(text, X=(n, n), limits=big)).seconds for n in (2, 3, 4, 5)]
        assert sizes[0] < sizes[1] < sizes[2] < sizes[3], (text, sizes)
    four = estimate_of(sj.function("inv(inv(X))", X=(4, 4))).seconds
    assert four < sj.Limits().max_seconds
    assert four < estimate_of(sj.function("inv(inv(X))", X=(5, 5), limits=big)).seconds


def test_a_lowered_seconds_budget_refuses_and_a_raised_one_accepts():
    with pytest.raises(sj.TooLargeError, match=r"about [0-9.]+ s .*over the limit of 0\.5 s \(Limits\.max_seconds\)"):
        sj.function("inv(X)", X=(4, 4), limits=sj.Limits(max_seconds=0.5))
    assert sj.function("inv(X)", X=(4, 4), limits=sj.Limits(max_seconds=2000)).out_shape == (4, 4)


def test_memory_budget_refuses_with_mib():
    with pytest.raises(sj.TooLargeError) as info:
        sj.function("X @ X", X=(8, 8), limits=sj.Limits(max_memory=1))
    message = str(info.value)
    assert re.search(r"about [0-9,]+ MiB of memory, over the limit of 1 MiB \(Limits\.max_memory\)", message)
    assert "Limits(max_memory=" in message
    sj.function("X @ X", X=(8, 8), limits=sj.Limits(max_memory=10_000))


def test_the_old_operation_budgets_are_still_accepted_and_enforced():
    with pytest.raises(sj.TooLargeError, match=r"Limits\.max_jacobian_work"):
        sj.function("X @ X", X=(3, 3), limits=sj.Limits(max_jacobian_work=100))
    with pytest.raises(sj.TooLargeError, match=r"Limits\.max_work"):
        sj.function("X @ X", X=(6, 6), limits=sj.Limits(max_work=100))


@pytest.mark.parametrize("field, value", [
    ("max_seconds", 0), ("max_seconds", -1.0), ("max_seconds", math.nan), ("max_seconds", "10"),
    ("max_seconds", True), ("max_seconds", math.inf), ("timeout", 0), ("timeout", 10**7), ("max_memory", 0.5),
    ("progress", "yes"), ("progress", 1),
])
def test_limits_refuse_bad_values(field, value):
    with pytest.raises(sj.InvalidArgumentError, match=f"limits: {field} must be"):
        sj.Limits(**{field: value})


def test_limits_source_and_defaults():
    assert sj.Limits(max_seconds=120).source() == "symjac.Limits(max_seconds=120)"
    assert sj.Limits(timeout=None).source() == "symjac.Limits(timeout=None)"
    assert sj.DEFAULT_LIMITS.max_seconds == 30.0 and sj.DEFAULT_LIMITS.timeout == 300.0
    assert sj.Limits(max_seconds=45).max_seconds == 45.0


def test_estimate_is_linear_in_the_tables():
    features = _cost.Features(out_size=4, in_size=4, dense=16, nonzeros=16, written=40, distinct=20,
                              dag_inputs=60, jacobian_written=160, branches=0)
    doubled = dataclass_double(features)
    one, two = _cost.estimate(features), _cost.estimate(doubled)
    fixed = _cost.SECONDS["fixed"]
    assert math.isclose(two.seconds - fixed, 2 * (one.seconds - fixed), rel_tol=1e-12)
    assert math.isclose(one.seconds, sum(one.parts.values()))
    assert _cost.suggest(37.0) == 100 and _cost.suggest(4.0) == 10 and _cost.suggest(0.2) == 1


def dataclass_double(features):
    import dataclasses

    return dataclasses.replace(features, **{k: 2 * v for k, v in dataclasses.asdict(features).items()})


# --------------------------------------------------------------------------- the time limit


def forever(X):
    """A callable that runs until it is stopped (a hanging build)."""
    while True:
        pass


def walks_forever(X):
    """A callable that runs until it is stopped, through symjac's DAG walk (the cooperative path)."""
    chain = X[0]
    for _ in range(3000):
        chain = sympy.Add(chain, sympy.Symbol("t"), evaluate=False)
    while True:
        for _ in _dag.postorder([chain]):
            pass


def test_function_time_limit_in_the_main_thread():
    with pytest.raises(sj.JobTimeoutError) as info:
        sj.function(forever, X=(2,), limits=sj.Limits(timeout=0.5))
    message = str(info.value)
    assert "symjac.function(forever) ran past its time limit of 0.5 s" in message
    assert "limits=symjac.Limits(timeout=60)" in message
    assert info.value.timeout == 0.5


def test_function_time_limit_in_a_worker_thread():
    outcome = {}

    def run():
        try:
            sj.function(walks_forever, X=(2,), limits=sj.Limits(timeout=0.5))
        except BaseException as error:  # noqa: BLE001 - the test reads what came out
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), sj.JobTimeoutError), outcome
    assert "ran past its time limit of 0.5 s" in str(outcome["error"])


def test_jacobian_and_check_honour_the_functions_time_limit(monkeypatch):
    from symjac import _engine, _jacobian

    f = sj.function("x * y", x=(), y=(), limits=sj.Limits(timeout=0.5))

    def hang(*args, **kwargs):
        while True:
            pass

    monkeypatch.setattr(_jacobian, "exact_jacobian", hang)
    with pytest.raises(sj.JobTimeoutError, match="Function.jacobian ran past its time limit of 0.5 s"):
        f.jacobian("x")
    monkeypatch.setattr(_engine._Check, "run", hang)
    with pytest.raises(sj.JobTimeoutError, match="symjac.check ran past its time limit of 0.5 s"):
        sj.check(f, x=1.0, y=2.0)


def test_no_time_limit_when_timeout_is_none_and_work_finishes_under_the_limit():
    f = sj.function("x * y", x=(), y=(), limits=sj.Limits(timeout=None))
    assert sj.check(f, x=1.0, y=2.0).verdict == "pass"
    g = sj.function("x * y", x=(), y=(), limits=sj.Limits(timeout=60))
    assert sj.check(g, x=1.0, y=2.0).verdict == "pass"
    _deadline.checkpoint(10)  # outside a job: nothing


# --------------------------------------------------------------------------- progress


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def walk(nodes: int) -> None:
    chain = sympy.Symbol("a")
    for i in range(nodes):
        chain = sympy.Add(chain, sympy.Symbol(f"b{i}"), evaluate=False)
    for _ in _dag.postorder([chain]):
        pass


@pytest.fixture
def terminal(monkeypatch):
    """A fake terminal, progress drawn at once; automatic mode as outside pytest (pytest sets
    PYTEST_CURRENT_TEST again for the test's call, so `outside_pytest` is patched in the body)."""
    monkeypatch.setattr(_deadline, "SHOW_AFTER", 0.0)
    monkeypatch.setattr(_deadline, "REDRAW_EVERY", 0.0)
    return FakeTerminal()


def outside_pytest(monkeypatch):
    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
    monkeypatch.delenv("CI", raising=False)


def test_progress_is_shown_on_a_terminal_and_erased(terminal, monkeypatch):
    outside_pytest(monkeypatch)
    with _deadline.job("building X", timeout=None, phase="differentiating", stream=terminal):
        walk(5000)
    text = terminal.getvalue()
    assert "\rsymjac: building X: differentiating, 2,048 nodes" in text
    assert "4,096 nodes" in text
    assert text.endswith("\r")  # the line is erased at the end
    assert text.rstrip("\r").split("\r")[-1].strip() == ""


def test_progress_is_silent_when_not_a_terminal_under_pytest_or_ci_or_off(terminal, monkeypatch):
    outside_pytest(monkeypatch)
    pipe = io.StringIO()
    with _deadline.job("x", timeout=None, stream=pipe):
        walk(5000)
    assert pipe.getvalue() == ""
    with _deadline.job("x", timeout=None, progress=False, stream=terminal):
        walk(5000)
    assert terminal.getvalue() == ""
    monkeypatch.setenv("CI", "1")
    with _deadline.job("x", timeout=None, stream=terminal):
        walk(5000)
    assert terminal.getvalue() == ""
    forced = io.StringIO()
    with _deadline.job("x", timeout=None, progress=True, stream=forced):
        walk(5000)
    assert "symjac: x" in forced.getvalue()


def test_progress_silent_under_pytest_by_default(monkeypatch):
    assert not _deadline.progress_wanted(None, FakeTerminal())  # PYTEST_CURRENT_TEST is set here
    assert _deadline.progress_wanted(True, io.StringIO())
    outside_pytest(monkeypatch)
    assert _deadline.progress_wanted(None, FakeTerminal())
    assert not _deadline.progress_wanted(False, FakeTerminal())


def test_symjac_function_shows_progress_on_a_terminal(terminal, monkeypatch):
    monkeypatch.setattr("sys.stderr", terminal)
    sj.function("X @ X", X=(16, 16), limits=sj.Limits(progress=True))
    text = terminal.getvalue()
    assert re.search(r"\rsymjac: symjac\.function\('X @ X'\): building, [0-9,]+ nodes, [0-9.]+ s \(limit 300 s\)", text)
    assert text.endswith("\r")
    quiet = FakeTerminal()
    monkeypatch.setattr("sys.stderr", quiet)
    sj.function("X @ X", X=(16, 16), limits=sj.Limits(progress=False))
    assert quiet.getvalue() == ""


def test_an_enclosing_limit_reports_its_own_timeout():
    """verify's (or any) shorter limit around a job: the job's own 300 s limit does not claim it."""
    with pytest.raises(sj.JobTimeoutError, match="outer ran past its time limit of 0.5 s"):
        with _deadline.time_limit(0.5, what="outer"):
            sj.function(forever, X=(2,))  # default Limits: timeout 300 s


def test_a_determinant_of_larger_entries_is_priced_higher():
    """`det` is priced by its Jacobian, n**4 cofactor entries times the square root of its entries'
    mean written-out size (`_parse.call_work`): `det(X @ X.T)` at 25 x 25 took 59 s under the defaults;
    `det(X)` at that size is accepted."""
    sj.function("det(X)", X=(21, 21))
    sj.function("det(X @ X.T)", X=(20, 20))
    with pytest.raises(sj.TooLargeError, match=r"det alone about"):
        sj.function("det(X @ X.T)", X=(21, 21))
