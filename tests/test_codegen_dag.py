"""Generated code printed from the SymPy DAG (`symjac._source`).

- the source is linear in the distinct nodes: a DAG whose written-out size is 2**40 compiles and
  evaluates correctly, and each distinct node and each distinct number is printed once;
- depth does not nest in the source (1,000-step chains);
- every node class of the allow-list is printed and evaluated against SymPy's `evalf`, in float64
  and float32 (the dtype stays), for NumPy and torch alike;
- classes outside the allow-list, and symbols that are no input, are refused.
"""

import ast
import math

import numpy as np
import pytest
import sympy

import symjac as sj
from symjac import _codegen, _determinant, _source, _stable
from symjac._codegen import compile_entries

torch = pytest.importorskip("torch")

x, y = sympy.symbols("x y", real=True)


def doubling_dag(levels: int) -> sympy.Expr:
    """`e = sin(e + cos(e))`, `levels` times: written out, `e` doubles in size at every level."""
    e = x
    for _ in range(levels):
        e = sympy.sin(e + sympy.cos(e))
    return e


def doubling_reference(value: np.ndarray, levels: int) -> np.ndarray:
    for _ in range(levels):
        value = np.sin(value + np.cos(value))
    return value


def max_nesting(source: str) -> int:
    depth = deepest = 0
    for char in source:
        depth += char == "("
        depth -= char == ")"
        deepest = max(deepest, depth)
    return deepest


# ------------------------------------------------------------------------------ size and sharing
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_a_dag_of_written_out_size_2_to_the_40_compiles_and_evaluates(backend):
    e = doubling_dag(40)
    code = compile_entries([e, sympy.cos(e)], [x], backend)
    point = np.array([0.3, -1.2, 2.0])
    arg = point if backend == "numpy" else torch.from_numpy(point)
    got = [np.asarray(v) for v in code.fn(arg)]
    expected = doubling_reference(point, 40)
    np.testing.assert_allclose(got[0], expected, rtol=1e-12)
    np.testing.assert_allclose(got[1], np.cos(expected), rtol=1e-12)
    # 40 levels of three distinct nodes each: one assignment per shared node, nothing repeated
    assert code.source.count("\n") < 3 * 40
    assert code.source.count("sin(") == 40


def test_source_size_grows_linearly_with_the_distinct_nodes():
    sizes = [len(_source.generate([doubling_dag(levels)], [x], "numpy")) for levels in (10, 20, 40)]
    # written out, each doubling of the levels squares the size; printed from the DAG, it doubles
    assert sizes[1] < 2.3 * sizes[0] and sizes[2] < 2.3 * sizes[1]


def test_each_distinct_node_is_printed_once_across_entries():
    shared = sympy.exp(x * y) + sympy.sin(x)
    entries = [shared * x, shared * y, shared ** 2, sympy.tanh(shared)]
    source = _source.generate(entries, [x, y], "numpy")
    assert source.count("numpy.exp(") == 1 and source.count("numpy.sin(") == 1
    fn = compile_entries(entries, [x, y], "numpy").fn
    got = fn(np.float64(0.4), np.float64(-0.7))
    s = math.exp(0.4 * -0.7) + math.sin(0.4)
    np.testing.assert_allclose(got, [s * 0.4, s * -0.7, s**2, math.tanh(s)], rtol=1e-14)


def _body_numbers(source: str) -> list:
    """Numbers written in the function body, except the exponents of `**` (kept literal)."""
    fn = ast.parse(source).body[0]
    exponents = {id(node.right) for node in ast.walk(fn) if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow)}
    exponents |= {id(node.operand) for node in ast.walk(fn) if isinstance(node, ast.UnaryOp) and id(node) in exponents}
    exponents |= {id(node.slice) for node in ast.walk(fn) if isinstance(node, ast.Subscript)}  # `_k[i]`
    found = []
    for statement in fn.body:
        for node in ast.walk(statement):
            if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and id(node) not in exponents:
                if not isinstance(node.value, bool):
                    found.append(node.value)
    return found


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_each_distinct_number_is_folded_and_printed_once(backend, monkeypatch):
    calls = []
    fold = _source.fold_constant
    monkeypatch.setattr(_source, "fold_constant", lambda e: calls.append(e) or fold(e))
    root2 = sympy.sqrt(2)
    entries = [root2 * x + sympy.Float(0.1), root2 * y + sympy.Float(0.1) * x, sympy.sin(root2 * x * y) + 3, x**2 + 3 * y**2]
    source = _source.generate(entries, [x, y], backend)
    assert len(calls) == len(set(calls))  # every distinct constant node converted once
    header = ast.parse(source).body[0].args
    defaults = [float(ast.literal_eval(v)) for v in header.kw_defaults[0].elts]
    assert len(defaults) == len(set(defaults)) and {math.sqrt(2), 0.1, 3.0} <= set(defaults)
    assert _body_numbers(source) == []  # numbers appear in `_k` only; exponents stay literal
    assert "**2" in source
    code = compile_entries(entries, [x, y], backend)
    a, b = 0.5, -1.5
    args = (a, b) if backend == "numpy" else (torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64))
    np.testing.assert_allclose([float(v) for v in code.fn(*args)],
                               [math.sqrt(2) * a + 0.1, math.sqrt(2) * b + 0.1 * a, math.sin(math.sqrt(2) * a * b) + 3,
                                a**2 + 3 * b**2], rtol=1e-15)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_a_1000_deep_chain_does_not_nest_in_the_source(backend):
    e = x  # built without SymPy's evaluation, which recurses over depth by itself
    for k in range(1000):
        e = sympy.sin(sympy.Add(sympy.Mul(e, sympy.Rational(1, 2), evaluate=False), k % 3, evaluate=False),
                      evaluate=False)
    code = compile_entries([e], [x], backend)
    assert max_nesting(code.source) <= 3 * _codegen.MAX_NESTING
    expected = 0.7
    for k in range(1000):
        expected = math.sin(expected / 2 + (k % 3))
    arg = np.float64(0.7) if backend == "numpy" else torch.tensor(0.7, dtype=torch.float64)
    assert float(code.fn(arg)[0]) == pytest.approx(expected, rel=1e-12)


def test_a_sum_of_many_terms_is_printed_in_groups():
    symbols = sympy.symbols("s0:3000", real=True)
    e = sympy.Add(*[s * (k + 1) for k, s in enumerate(symbols)])
    code = compile_entries([e], list(symbols), "numpy")
    values = np.linspace(-1, 1, 3000)
    assert code.fn(*values)[0] == pytest.approx(float(np.dot(values, np.arange(1, 3001))), rel=1e-12)


# ------------------------------------------------------------------------------ every node class
pw = sympy.Piecewise
d = sympy.Dummy("d", real=True)
CASES = [
    # (label, expression in x, y (and d), point: x, y) - each chooses its node classes
    ("Add Mul Integer Rational", x * y + sympy.Rational(1, 3) * x - 2, (0.7, 1.3)),
    ("Float Half NegativeOne", sympy.Float("0.125") * x - y / 2, (0.7, 1.3)),
    ("Pow integer", x**3 + y**-2, (0.7, 1.3)),
    ("Pow sqrt", sympy.sqrt(x) + 1 / sympy.sqrt(y), (0.7, 1.3)),
    ("Pow real and symbolic", x**2.5 + y**x + sympy.Integer(2) ** x, (0.7, 1.3)),
    ("pi E", sympy.pi * x + sympy.E * y, (0.7, 1.3)),
    ("exp log", sympy.exp(x) * sympy.log(y), (0.7, 1.3)),
    ("sin cos tan", sympy.sin(x) + sympy.cos(y) * sympy.tan(x), (0.7, 1.3)),
    ("sinh cosh tanh", sympy.sinh(x) + sympy.cosh(y) * sympy.tanh(x), (0.7, 1.3)),
    ("asin acos atan", sympy.asin(x / 2) + sympy.acos(y / 2) * sympy.atan(x), (0.7, 1.3)),
    ("asinh acosh atanh", sympy.asinh(x) + sympy.acosh(y + 1) * sympy.atanh(x / 2), (0.7, 1.3)),
    ("atan2", sympy.atan2(y, x) + sympy.atan2(x, 2), (0.7, 1.3)),
    ("Abs sign", sympy.Abs(x - y) * sympy.sign(x - 1), (0.7, 1.3)),
    ("re im", sympy.re(y**x) + sympy.im(y**x), (0.7, 1.3)),
    ("Max Min", sympy.Max(x, y, 1) + sympy.Min(x, 0) * sympy.Min(x, y), (0.7, 1.3)),
    ("Heaviside", sympy.Heaviside(x - 0.5) + sympy.Heaviside(y - 2, 0), (0.7, 1.3)),
    ("Piecewise > <", pw((x**2, x > y), (y, x < 0), (x + y, True)), (0.7, 1.3)),
    ("Piecewise >= <= And Or Not", pw((x, sympy.And(x >= 0, y <= 1)), (2 * x, sympy.Or(x > 5, sympy.Not(sympy.And(x > 0, y > 2)))),
                                      (3 * x, True)), (0.7, 1.3)),
    ("Piecewise Eq Ne", pw((x, sympy.Eq(y, 1)), (y * x, sympy.Ne(x, 0)), (0, True)), (0.7, 1.3)),
    ("Piecewise without otherwise", pw((x * y, x > 0)), (0.7, 1.3)),
    ("erf", sympy.erf(x) * y, (0.7, 1.3)),
    ("logsumexp", _stable.logsumexp(x, y, 2 * x), (0.7, 1.3)),
    ("softplus sigmoid", _stable.softplus(x) + _stable.sigmoid(y), (0.7, 1.3)),
    ("log1p expm1", _stable.log1p(x) * _stable.expm1(y), (0.7, 1.3)),
    ("det", _determinant.det(x, 1, y, 2, x * y, 0, y, -1, x + 3) * y, (0.7, 1.3)),
    ("Dummy", d * x + sympy.exp(d), (0.7, 1.3)),
]


def _reference(expr, a: float, b: float) -> float:
    return float(expr.subs({x: a, y: b, d: b}).evalf(30))


def _run(expr, backend, dtype, a, b):
    symbols = [x, d] if expr.has(d) else [x, y]
    code = compile_entries([expr], symbols, backend)
    point = np.array([a, a * 0.5], dtype=dtype), np.array([b, b * 1.25], dtype=dtype)
    args = point if backend == "numpy" else tuple(torch.from_numpy(p) for p in point)
    (out,) = code.fn(*args)
    return out


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("label, expr, point", CASES, ids=[c[0] for c in CASES])
def test_every_node_class_evaluates_as_sympy_does(label, expr, point, backend, dtype):
    a, b = point
    out = _run(expr, backend, dtype, a, b)
    values = out.numpy() if backend == "torch" else np.asarray(out)
    assert values.dtype == dtype
    expected = [_reference(expr, a, b), _reference(expr, a * 0.5, b * 1.25)]
    rtol = 1e-13 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(values, expected, rtol=rtol, atol=rtol)


def test_every_class_of_the_allow_list_has_a_case():
    exprs = [expr for _, expr, _ in CASES] + CONSTANTS
    seen = {type(node) for expr in exprs for node in sympy.preorder_traversal(expr)}
    assert {c.__name__ for c in _source.CODE_NODES - seen} == set()


CONSTANTS = [x + sympy.oo * 0 + 1, sympy.oo, -sympy.oo, sympy.nan, pw((x, sympy.true), (y, True)),
             pw((x, x > y), (y, True)), sympy.true, sympy.false, sympy.zoo]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_non_finite_and_boolean_constants_are_printed(backend):
    code = compile_entries(CONSTANTS[:-1], [x, y], backend)
    a = np.array([0.5]) if backend == "numpy" else torch.tensor([0.5], dtype=torch.float64)
    b = np.array([2.0]) if backend == "numpy" else torch.tensor([2.0], dtype=torch.float64)
    out = [np.asarray(v, dtype=float) for v in code.fn(a, b)]
    assert np.isnan(out[0]).all() and out[1] == np.inf and out[2] == -np.inf and np.isnan(out[3])
    np.testing.assert_array_equal(out[4], [0.5])
    np.testing.assert_array_equal(out[5], [2.0])
    assert out[6] == 1.0 and out[7] == 0.0  # the conditions True and False, as entries
    with pytest.raises(sj.DomainError, match=r"^expr: the constant zoo is not a real number"):
        compile_entries([x + 1, sympy.zoo], [x], backend)


@pytest.mark.parametrize("label, expr, point", CASES, ids=[c[0] for c in CASES])
def test_numpy_and_torch_agree(label, expr, point):
    a, b = point
    np.testing.assert_allclose(_run(expr, "torch", np.float64, a, b).numpy(), _run(expr, "numpy", np.float64, a, b),
                               rtol=1e-14, atol=1e-15)


# ------------------------------------------------------------------------------ refusals
class _MySin(sympy.sin):
    pass


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("node", [sympy.floor(x), sympy.gamma(x), _MySin(x)], ids=["floor", "gamma", "subclass"])
def test_a_foreign_node_class_is_refused(node, backend):
    with pytest.raises(sj.InvalidExpressionError, match=rf"^expr: cannot generate code for {type(node).__name__} "):
        compile_entries([x + 1, node * y], [x, y], backend)


def test_a_symbol_that_is_no_input_is_refused():
    with pytest.raises(sj.InvalidExpressionError, match=r"^expr: the symbol y is not an input of the generated code"):
        compile_entries([x + y], [x], "numpy")


def test_a_constant_that_is_not_real_is_a_domain_error():
    with pytest.raises(sj.DomainError, match=r"^expr: the constant .* is not a real number"):
        compile_entries([x + sympy.I], [x], "numpy")


def test_products_sharing_a_pair_of_factors_compute_it_once():
    z, w = sympy.symbols("z w", real=True)
    entries = [x * y * z, x * y * w, sympy.exp(x * y * z * w)]
    source = _source.generate(entries, [x, y, z, w], "numpy")
    assert source.count("_a0*_a1") == 1 and "_t0 = _a0*_a1\n" in source  # x * y, assigned once, used by all three
    got = compile_entries(entries, [x, y, z, w], "numpy").fn(*map(np.float64, (0.5, -2.0, 3.0, 0.25)))
    np.testing.assert_allclose(got, [-3.0, -0.25, math.exp(-0.75)], rtol=1e-15)


def test_negated_terms_are_subtracted():
    source = _source.generate([x - y * sympy.exp(x), -x - y], [x, y], "numpy")
    assert "[_a0 - _a1*numpy.exp(_a0), -_a0 - _a1]" in source
    got = compile_entries([x - y * sympy.exp(x), -x - y], [x, y], "numpy").fn(np.float64(0.5), np.float64(2.0))
    np.testing.assert_allclose(got, [0.5 - 2 * math.exp(0.5), -2.5], rtol=1e-15)


def test_a_pair_of_equal_but_distinct_factor_objects_is_one_pair():
    # the printer keys pairs of factors by the number of each distinct node (equal nodes, one number),
    # so products whose factors are equal trees held by different objects still share their pair
    z, w = sympy.symbols("z w", real=True)
    s1, s2 = sympy.Add._from_args((x, y)), sympy.Add._from_args((x, y))
    assert s1 == s2 and s1 is not s2
    entries = [sympy.Mul._from_args((s1, z, w)), sympy.Mul._from_args((s2, z, x))]
    source = _source.generate(entries, [x, y, z, w], "numpy")
    assert source.count("*_a2") == 1 and source.count("_t0 = _a0 + _a1\n") == 1  # (x + y) * z once
    got = compile_entries(entries, [x, y, z, w], "numpy").fn(*map(np.float64, (0.5, -2.0, 3.0, 0.25)))
    np.testing.assert_allclose(got, [-1.5 * 3.0 * 0.25, -1.5 * 3.0 * 0.5], rtol=1e-15)


def test_a_pair_of_factors_in_one_product_only_is_not_assigned():
    z, w = sympy.symbols("z w", real=True)
    entries = [x * y * z, z * w * sympy.exp(x)]  # no pair of factors held by two products
    source = _source.generate(entries, [x, y, z, w], "numpy")
    assert "_t0" not in source  # nothing assigned
    got = compile_entries(entries, [x, y, z, w], "numpy").fn(*map(np.float64, (0.5, -2.0, 3.0, 0.25)))
    np.testing.assert_allclose(got, [-3.0, 0.75 * math.exp(0.5)], rtol=1e-15)


def test_parentheses_keep_the_tree():
    # the printer parenthesises a child only where Python would parse another tree: each entry
    # is printed on its own and evaluated in its own grouping (the values tell groupings apart)
    z, u, w = sympy.symbols("z u w", real=True)
    unevaluated = dict(evaluate=False)
    X, Y, Z, U, W = 1e16, -1e16, 1.0, 1e16, 1e16
    cases = [
        (sympy.Add(x, sympy.Add(y, z, **unevaluated), **unevaluated), X + (Y + Z), "_a0 + (_a1 + _a2)"),
        (sympy.Add(sympy.Add(x, y, **unevaluated), z, **unevaluated), (X + Y) + Z, "_a0 + _a1 + _a2"),
        (sympy.Mul(x, sympy.Mul(y, z, **unevaluated), **unevaluated), X * (Y * Z), "_a0*(_a1*_a2)"),
        (sympy.Pow(sympy.Pow(z, 2, **unevaluated), 3, **unevaluated), (Z ** 2) ** 3, "(_a2**2)**3"),
        (sympy.Pow(sympy.Mul(-1, z, **unevaluated), 2, **unevaluated), (-Z) ** 2, "(-_a2)**2"),
        (-(z ** 2), -(Z ** 2), "-_a2**2"),
        (1 / (x * y), 1 / (X * Y), "1/(_a0*_a1)"),
        (sympy.Add(sympy.Add(w, -u, **unevaluated), -z, **unevaluated), (W - U) - Z, "_a4 - _a3 - _a2"),
        (w - u - z, W - (U + Z), "_a4 - (_a3 + _a2)"),
        (-x * y / (z - x), -(X * Y / (Z - X)), "-(_a0*_a1/(_a2 - _a0))"),
    ]
    symbols = [x, y, z, u, w]
    for entry, want, text in cases:
        source = _source.generate([entry], symbols, "numpy")
        assert f"return [{text}]" in source
        (value,) = compile_entries([entry], symbols, "numpy").fn(*map(np.float64, (X, Y, Z, U, W)))
        assert float(value) == want, source
    assert cases[0][1] != cases[1][1] and cases[7][1] != cases[8][1]  # the groupings differ in value
