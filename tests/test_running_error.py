"""`_tolerance.running_error` builds its bound unevaluated (sums and products as given, zero bounds
left out): the values are Wilkinson's running error bound, the same formula as the evaluated one."""

import mpmath
import numpy as np
import pytest
import sympy

from symjac._codegen import compile_entries
from symjac._tolerance import running_error


def _value(bound, symbols, point):
    return float(sympy.lambdify(symbols, bound, "mpmath")(*point))


def test_a_dot_products_bound_is_n_times_its_absolute_terms():
    n = 6
    a = sympy.symbols(f"a0:{n}", real=True)
    b = sympy.symbols(f"b0:{n}", real=True)
    expr = sum(x * y for x, y in zip(a, b))
    point = np.random.default_rng(1).standard_normal(2 * n)
    got = _value(running_error(expr), a + b, point)
    # each product of two entries: one rounding of |a_k b_k|; the sum of n terms: (n - 1) sum |terms|
    want = n * float(np.sum(np.abs(point[:n] * point[n:])))
    assert got == pytest.approx(want, rel=1e-12)
    assert got != pytest.approx(want * (1 + 1e-4), rel=1e-6)  # the check above can fail


@pytest.mark.parametrize("build", [
    lambda x, y: sympy.tanh(x * y + 1),
    lambda x, y: sympy.exp(x) ** 2 / (1 + x ** 2 + y ** 2),
    lambda x, y: sympy.log(1 + sympy.exp(x * y)) * sympy.sin(y),
    lambda x, y: x ** y + sympy.sqrt(1 + x ** 2),
])
def test_the_bound_covers_the_float64_rounding_of_the_generated_code(build):
    x, y = sympy.symbols("x y", positive=True)
    expr = build(x, y)
    bound = running_error(expr)
    code = compile_entries([expr], [x, y], "numpy")
    exact = sympy.lambdify((x, y), expr, "mpmath")
    with mpmath.workdps(50):
        for point in [(0.7, 1.3), (2.5, 0.2), (1e-3, 4.0), (3.1, 2.9)]:
            (computed,) = code.fn(*map(np.float64, point))
            error = abs(mpmath.mpf(float(computed)) - exact(*map(mpmath.mpf, point)))
            allowed = np.finfo(np.float64).eps * _value(bound, (x, y), point)
            assert 0 < allowed and float(error) <= 1.01 * allowed  # first order: a hair of slack


def test_a_functions_bound_is_its_slope_times_its_arguments_plus_its_value():
    x, y = sympy.symbols("x y", real=True)
    xv, yv = 0.8, -1.7
    u = xv * yv + 1
    # u = x*y + 1: |x y| (the product) + (|x y| + 1) (the sum of two terms); tanh: |tanh'(u)| that + |tanh(u)|
    want = (1 - np.tanh(u) ** 2) * (2 * abs(xv * yv) + 1) + abs(np.tanh(u))
    assert _value(running_error(sympy.tanh(x * y + 1)), (x, y), (xv, yv)) == pytest.approx(want, rel=1e-12)


def test_inputs_and_numbers_have_no_bound_and_a_compiled_bound_matches():
    x, y = sympy.symbols("x y", real=True)
    assert running_error(x) == 0 and running_error(sympy.Integer(3)) == 0
    expr = sympy.sin(x * y) + x * y * 3
    compiled = compile_entries([running_error(expr)], [x, y], "numpy")
    (value,) = compiled.fn(np.float64(0.4), np.float64(-1.5))
    assert float(value) == pytest.approx(_value(running_error(expr), (x, y), (0.4, -1.5)), rel=1e-12)
