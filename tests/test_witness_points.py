"""The real-value witness's points (`_function._witness_points`) are drawn once per process and
read as a prefix: the same values as a fresh draw of that many rows, whatever was asked before;
read-only; and a function that is nowhere real is still refused."""

import numpy as np
import pytest

import symjac as sj
from symjac import _function


def _fresh(count):
    return np.random.default_rng(_function._WITNESS_SEED).standard_normal((count, _function.WITNESS_POINTS))


@pytest.mark.parametrize("counts", [(3, 40, 5), (1, 2, 3, 4), (17, 16, 100, 1)])
def test_witness_points_are_a_fresh_draws_rows(monkeypatch, counts):
    monkeypatch.setattr(_function, "_WITNESS_DRAWN", np.empty((0, _function.WITNESS_POINTS)))
    for count in counts:
        drawn = _function._witness_points(count)
        assert drawn.shape == (count, _function.WITNESS_POINTS) and not drawn.flags.writeable
        np.testing.assert_array_equal(drawn, _fresh(count))
    assert not np.array_equal(_function._witness_points(2), _fresh(3)[1:])  # a shifted row shows


def test_the_witness_still_refuses_what_is_nowhere_real():
    _function._witness_points(64)
    assert sj.function("log(det(X))", X=(4, 4)).out_shape == ()
    with pytest.raises(sj.SymjacError, match="not real"):
        sj.function("log(-(x**2) - 1)", x=())
