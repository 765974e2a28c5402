"""Deep expressions build, differentiate, evaluate and check; never a RecursionError (issues 10, 15).

Unrolled recurrences `h = tanh(w*h + x[i])` and nested chains `sin(sin(...))` are as deep as they
have steps. Their Jacobians are compared with torch autograd of the same computation in float64.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
import time

import numpy as np
import pytest
import sympy

import symjac as sj
from symjac import _adjoint, _dag, ops

torch = pytest.importorskip("torch")


def _recurrence(steps: int):
    def f(w, x):
        h = 0
        for i in range(steps):
            h = ops.tanh(w * h + x[i])
        return h

    return f


def _limits(steps: int) -> sj.Limits:
    return sj.Limits(max_depth=2 * steps, max_entry_size=10**7, max_work=10**7, max_jacobian_work=10**8, max_seconds=1000)


def _torch_recurrence(w: float, x: np.ndarray):
    """(h, dh/dw, dh/dx) by torch autograd, float64."""
    tw = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    h = torch.zeros((), dtype=torch.float64)
    for i in range(len(x)):
        h = torch.tanh(tw * h + tx[i])
    gw, gx = torch.autograd.grad(h, (tw, tx))
    return float(h.detach()), float(gw), gx.numpy()


@contextlib.contextmanager
def _recursion_limit(limit: int):
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


@pytest.fixture(scope="module")
def recurrence_1000():
    return sj.function(_recurrence(1000), w=(), x=(1000,), limits=_limits(1000))


def test_a_1000_step_recurrence_builds_evaluates_and_has_the_exact_jacobian(recurrence_1000):
    f = recurrence_1000
    x = np.linspace(-0.9, 0.9, 1000)
    h, dw, dx = _torch_recurrence(0.8, x)
    assert float(f(w=0.8, x=x)) == pytest.approx(h, rel=1e-12)
    assert float(f.jacobian("w").evaluate(w=0.8, x=x)) == pytest.approx(dw, rel=1e-12)
    jx = f.jacobian("x")
    assert jx.nnz == 1000
    # by x: reverse accumulation shares one chain of adjoints; its entries are evaluated with an
    # explicit walk here (code generation of 1,000 entries sharing the chain is measured apart)
    got = _evaluate_entries(jx, {f.input("w").symbols[()]: 0.8,
                                 **dict(zip(f.input("x").flat_symbols, x))})
    np.testing.assert_allclose(got, dx, rtol=1e-12, atol=1e-300)


def _evaluate_entries(jacobian, values: dict) -> np.ndarray:
    """The Jacobian's entries in float64 by one iterative walk over their DAG (a test oracle for
    the functions the recurrence uses: +, *, integer powers, tanh)."""
    import math

    def step(node):
        if node.is_Symbol:
            return values[node]
        if node.is_Number:
            return float(node)
        args = [memo[a] for a in node.args]
        if node.is_Add:
            return math.fsum(args)
        if node.is_Mul:
            return math.prod(args)
        if node.is_Pow:
            return args[0] ** args[1]
        if isinstance(node, sympy.tanh):
            return math.tanh(args[0])
        raise AssertionError(f"unexpected node {type(node).__name__}")

    memo: dict = {}
    _dag.evaluate(jacobian.entries, step, memo=memo)
    return np.array([memo[e] for e in jacobian.entries])


def test_the_1000_step_jacobian_is_built_without_recursion_over_its_depth(recurrence_1000):
    f = sj.function(_recurrence(1000), w=(), x=(1000,), limits=_limits(1000))
    with _recursion_limit(200):
        jx = f.jacobian("x")
        jw = f.jacobian("w")
    assert jx.nnz == 1000 and jw.nnz == 1
    assert max(_dag.height(jx.entries).values()) > 1000  # the chain is as deep as the recurrence


def test_a_recurrence_checks_and_a_wrong_candidate_for_it_fails():
    steps = 150
    f = sj.function(_recurrence(steps), w=(), x=(steps,), limits=_limits(steps))
    x = np.linspace(-0.9, 0.9, steps)
    _, dw, dx = _torch_recurrence(0.8, x)
    assert sj.check(f, w=0.8, x=x, jacobian={"w": np.array(dw), "x": dx}).verdict == "pass"
    wrong = dx.copy()
    wrong[-2] *= 1 + 1e-4
    report = sj.check(f, w=0.8, x=x, jacobian={"w": np.array(dw), "x": wrong})
    assert report.verdict == "fail"


def _nested(levels: int):
    """A callable whose own Python recursion is `levels` calls deep."""
    def f(x):
        def deep(n):
            return x if n == 0 else ops.sin(deep(n - 1))
        return deep(levels)

    return f


def test_room_for_recursion_is_set_by_the_depth_budget_and_past_it_is_a_clear_error():
    with pytest.raises(sj.InvalidExpressionError, match=r"Limits\.max_depth"):
        sj.function(_nested(1500), x=())  # default max_depth (50): room for about 1,400 frames
    f = sj.function(_nested(1500), x=(), limits=sj.Limits(max_depth=1000))
    assert _dag.height((f.output[()],))[f.output[()]] == 1500


def test_a_3000_deep_callable_of_sympys_own_sin_is_a_clear_error_or_stopped_by_the_time_limit():
    # Issue 15: `reduce(lambda a, _: sympy.sin(a), range(3000), X[0])`. SymPy's own constructors
    # recurse over the depth and grow faster than quadratically with it (plain SymPy, outside symjac:
    # 1,000 levels take seconds), so past the default depth budget it is refused, and with the budget
    # raised it is stopped by the time limit, never a RecursionError or a silent hang.
    def deep(X):
        return functools.reduce(lambda a, _: sympy.sin(a), range(3000), X[0])

    with pytest.raises(sj.InvalidExpressionError, match=r"Limits\.max_depth"):
        sj.function(deep, X=(2,))
    before = sys.getrecursionlimit()
    def deeper(X):  # 30,000 levels: SymPy alone would take hours on any machine, so the limit fires
        return functools.reduce(lambda a, _: sympy.sin(a), range(30_000), X[0])

    with pytest.raises(sj.JobTimeoutError, match="time limit of 2 s"):
        sj.function(deeper, X=(2,), limits=sj.Limits(max_depth=40_000, timeout=2))
    # The deep work ran on a helper thread (the calling thread ran out of recursion first): it is
    # stopped too, and only then is the recursion limit given back (lowering it under a thread
    # that is still deep was a fatal interpreter error, "Cannot recover from stack overflow").
    if any(t.name == "symjac-deep" for t in threading.enumerate()):
        assert sys.getrecursionlimit() > before  # still deep: the room stays until it ends
    for _ in range(600):
        if not any(t.name == "symjac-deep" for t in threading.enumerate()):
            break
        time.sleep(0.1)
    assert not any(t.name == "symjac-deep" for t in threading.enumerate())
    assert sys.getrecursionlimit() == before


def test_a_300_deep_nested_sin_differentiates_by_reverse_accumulation():
    f = sj.function(lambda x: functools.reduce(lambda a, _: ops.sin(a), range(300), x + 1), x=(),
                    limits=sj.Limits(max_depth=300))
    assert _dag.height((f.output[()],))[f.output[()]] >= _adjoint.DEEP
    expected, slope = 1.3, 1.0
    for _ in range(300):
        expected, slope = np.sin(expected), slope * np.cos(expected)
    assert float(f.jacobian().evaluate(x=0.3)) == pytest.approx(slope, rel=1e-10)
    assert sj.check(f, x=0.3).verdict == "pass"


def test_call_deep_restores_the_recursion_limit_and_hands_back_errors():
    before = sys.getrecursionlimit()
    # shallow work runs once, in the calling thread (where a time limit's signal can stop it)
    assert _dag.call_deep(lambda: threading.current_thread(), levels=100) is threading.current_thread()
    calls = []

    def deep():  # runs out of recursion at the normal limit, then gets the room
        calls.append(sys.getrecursionlimit())
        if len(calls) == 1:
            raise RecursionError
        return sys.getrecursionlimit()

    assert _dag.call_deep(deep, levels=100) >= before + 100 * _dag.FRAMES_PER_LEVEL
    assert len(calls) == 2
    assert sys.getrecursionlimit() == before
    with pytest.raises(ZeroDivisionError):
        _dag.call_deep(lambda: 1 / 0, levels=10)
    assert sys.getrecursionlimit() == before


def test_an_abandoned_worker_is_stopped_even_if_it_swallows_one_stop():
    # One asynchronous stop can be lost (raised inside a finaliser that the garbage collector runs on
    # that thread, it is only printed): the caller's stopper raises again until the worker is done.
    from symjac import _deadline

    stops = []

    def stubborn():
        if threading.current_thread() is threading.main_thread():
            raise RecursionError  # the calling thread "runs out": the work moves to a worker
        while True:
            try:
                while True:
                    time.sleep(0.001)
            except BaseException:  # noqa: BLE001 - the first stop is swallowed, as a finaliser would
                stops.append(1)
                if len(stops) > 1:
                    raise

    before = sys.getrecursionlimit()
    with pytest.raises(sj.JobTimeoutError):
        with _deadline.time_limit(1.0, what="the test"):
            _dag.call_deep(stubborn, levels=10)
    for _ in range(600):
        if not any(t.name == "symjac-deep" for t in threading.enumerate()):
            break
        time.sleep(0.1)
    assert not any(t.name == "symjac-deep" for t in threading.enumerate())
    assert len(stops) == 2 and sys.getrecursionlimit() == before
