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
