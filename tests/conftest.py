import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=500, deadline=None)
# The long fuzz run (benchmarks/fuzz_long.py): random, not derandomized, SYMJAC_FUZZ_EXAMPLES examples.
settings.register_profile("fuzz", max_examples=int(os.environ.get("SYMJAC_FUZZ_EXAMPLES", "2000")), deadline=None,
                          database=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("SYMJAC_HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
