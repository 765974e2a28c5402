"""symjac._domain: a determinant in a denominator (or under log) is away from 0 either by `margin` or
because its matrix is well conditioned (`MAX_CONDITION`), so that a scale-free division such as
`inv(inv(X))` (which divides by `det(inv(X)) = 1 / det(X)`, below the margin for every invertible X)
still has a domain, while near-singular matrices stay out of it."""

import numpy as np
import pytest

import symjac as sj
from symjac import _domain
from symjac._domain import MAX_CONDITION, Draws, domain


def test_conditioned_reads_the_two_norm_condition_number():
    well = np.diag([1e-3, 2e-3, 1e-3])  # tiny determinant (2e-9), condition number 2
    ill = np.diag([1.0, 1.0, 1.0 / (2 * MAX_CONDITION)])  # determinant 1/200, condition number 200
    edge = np.diag([1.0, 1.0 / (0.5 * MAX_CONDITION)])  # condition number 50
    singular = np.array([[1.0, 2.0], [2.0, 4.0]])
    got = [bool(_domain._conditioned(m)) for m in (well, ill, edge, singular, np.zeros((2, 2)))]
    assert got == [True, False, True, False, False]
    nonfinite = np.array([[1.0, np.nan], [0.0, 1.0]])
    assert not bool(_domain._conditioned(nonfinite))
    stacked = np.stack([well[:2, :2], singular, edge])
    assert _domain._conditioned(stacked).tolist() == [True, False, True]


@pytest.mark.parametrize("kind, value, expected", [
    ("nonzero", 1e-6, True), ("nonzero", -1e-6, True), ("nonzero", 0.0, False),
    ("positive", 1e-6, True), ("positive", -1e-6, False), ("nonzero", np.inf, False),
])
def test_a_small_determinant_of_a_well_conditioned_matrix_is_away_from_zero(kind, value, expected):
    well = np.eye(2) * 1e-3
    assert bool(_domain._satisfied(kind, np.float64(value), 0.25, well)) is expected
    ill = np.diag([1.0, 1e-6])
    assert bool(_domain._satisfied(kind, np.float64(value), 0.25, ill)) is False  # the margin rule alone
    assert bool(_domain._satisfied(kind, np.float64(value), 0.25)) is False  # not a determinant: margin only


@pytest.mark.parametrize("expr, n", [("inv(inv(X))", 4), ("inv(inv(X))", 5), ("log(abs(det(inv(X))))", 4)])
def test_nested_inverses_have_a_domain_and_check_passes(expr, n):
    f = sj.function(expr, X=(n, n))
    d = domain(f)
    assert d.describe() == {"X": "invertible"}
    report = sj.check(f, samples=6, seed=3)
    assert report.verdict == "pass", report
    assert report.run.points_tried == 6 and report.run.passed == 6


def test_draws_of_a_nested_inverse_keep_the_inner_matrix_well_conditioned():
    f = sj.function("inv(inv(X))", X=(4, 4))
    draws = Draws(f)
    rng = np.random.default_rng(5)
    kept = 0
    for _ in range(40):
        values = draws.values(draws.draw(rng))
        if draws.valid(values):
            kept += 1
            assert np.linalg.cond(np.linalg.inv(values["X"])) <= MAX_CONDITION * (1 + 1e-9)
    assert kept >= 30  # the invertible family is well conditioned by construction: few draws rejected


def test_a_near_singular_matrix_is_outside_the_domain():
    f = sj.function("inv(inv(X))", X=(4, 4))
    draws = Draws(f)
    near = np.eye(4)
    near[3, 3] = 1e-4  # det 1e-4 (below the margin) and condition number 1e4 (above MAX_CONDITION)
    assert not draws.valid({"X": near})
    assert draws.valid({"X": np.eye(4) * 3.0})  # det(inv(X)) = 1/81 < margin, but inv(X) is perfectly conditioned


def test_a_complex_matrix_is_not_conditioned():
    assert not bool(_domain._conditioned(np.array([[1.0 + 1j, 0.0], [0.0, 1.0]])))
    assert _domain._conditioned(np.array([[[2j, 0.0], [0.0, 1.0]]])).tolist() == [False]
