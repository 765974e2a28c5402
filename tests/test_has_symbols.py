"""`_dag.has_symbols`: the plan's "constant or not" per node, the same answer as `_dag.free_symbols`."""

import sympy

import symjac as sj
from symjac import _dag

x, y = sympy.symbols("x y", real=True)


def test_has_symbols_is_whether_free_symbols_is_empty_for_every_node():
    f = sj.function("inv(X)", X=(3, 3))
    entries = list(f.jacobians()["X"].entries)
    d = sympy.Dummy("d")
    entries += [sympy.sqrt(2) * x + sympy.pi, sympy.exp(sympy.Integer(3)) * y, d * sympy.log(sympy.Rational(1, 3)),
                sympy.Piecewise((x, x > sympy.pi), (sympy.E, True))]
    flags = _dag.has_symbols(entries)
    sets = _dag.free_symbols(entries)
    assert set(flags) == set(sets)
    assert all(flags[node] is bool(sets[node]) for node in sets)
    assert any(flags.values()) and not all(flags.values())  # both answers occur in the corpus


def test_a_constant_subtree_has_no_symbols_and_its_parent_has():
    expr = x * (sympy.sqrt(2) + sympy.pi)
    flags = _dag.has_symbols([expr])
    assert flags[expr] is True and flags[x] is True
    assert flags[sympy.sqrt(2) + sympy.pi] is False and flags[sympy.pi] is False and flags[sympy.sqrt(2)] is False


def test_a_shared_memo_is_filled_once_and_reused():
    memo = _dag.has_symbols([x + 1])
    memo[sympy.Integer(5)] = True  # a (wrong) entry the caller put there is not walked again
    again = _dag.has_symbols([x + 1 + sympy.Integer(5) * y], memo=memo)
    assert again is memo and memo[sympy.Integer(5)] is True and memo[x + 1 + 5 * y] is True


def test_holds_reads_the_walked_nodes_children_first():
    from symjac._determinant import det

    d = det(*sympy.symbols("a0:9", real=True))
    entries = [x * d + y, sympy.exp(x) * 2, d]
    walked = _dag.has_symbols(entries)
    found = _dag.holds(walked, (det,))
    assert set(found) == set(walked)
    assert found[entries[0]] and found[d] and found[x * d] and not found[entries[1]] and not found[x]
    # the same answers as SymPy's `has`, over every node
    assert all(found[node] is node.has(det) for node in walked)
    assert _dag.holds(_dag.has_symbols([x * y, sympy.exp(x)]), (det,)) == {}  # none: nothing built
