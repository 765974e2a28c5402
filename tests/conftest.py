import os

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, settings

# Without the explain phase: it traces every line run while it re-runs a failing example (a failure
# some tests expect), which is slow, and a test time limit's signal landing inside its tracer once
# left a worker spinning.
settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True,
                          phases=[p for p in Phase if p is not Phase.explain],
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=500, deadline=None)
# The long fuzz run (benchmarks/fuzz_long.py): random, not derandomized, SYMJAC_FUZZ_EXAMPLES examples.
settings.register_profile("fuzz", max_examples=int(os.environ.get("SYMJAC_FUZZ_EXAMPLES", "2000")), deadline=None,
                          database=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("SYMJAC_HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
