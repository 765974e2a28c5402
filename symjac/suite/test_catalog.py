"""`symjac.check` passes every catalog function over points of its own domain."""

import pytest

from symjac import _catalog


@pytest.fixture
def samples(request) -> int:
    return request.config.getoption("symjac_samples", None) or _catalog.CI_SAMPLES


@pytest.fixture
def seed(request) -> int:
    value = request.config.getoption("symjac_seed", None)
    return 0 if value is None else value


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", _catalog.names())
def test_catalog_function(name, samples, seed):
    report = _catalog.run_entry(name, samples=samples, seed=seed)
    assert report.verdict == "pass", str(report)
