"""`symjac.verify` fails every wrong implementation of the corpus at a wrong entry, never its twins."""

import pytest

pytest.importorskip("torch")

import symjac  # noqa: E402
from symjac.suite import _corpus  # noqa: E402

#: Points per run, and the seeds of the twins' runs, in the CI profile.
CI_SAMPLES = 15
SEEDS = (0, 1, 2)


@pytest.fixture
def samples(request) -> int:
    return request.config.getoption("symjac_samples", None) or CI_SAMPLES


@pytest.fixture
def seed(request) -> int:
    value = request.config.getoption("symjac_seed", None)
    return 0 if value is None else value


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", _corpus.names())
def test_wrong_implementation_fails(name, samples, seed):
    case = _corpus.case(name)
    report = symjac.verify(case.impl(wrong=True), case.spec(), samples=max(samples, 30), seed=seed, kind=case.kind)
    assert report.verdict == "fail", str(report)
    worst = report.run.counterexample.worst
    if case.expect_input == "value":
        assert worst.kind == "value", str(report)
    elif case.expect_input is not None:
        assert worst.input_name == case.expect_input, str(report)
    if case.expect_index is not None:
        assert worst.input_index == case.expect_index, str(report)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", _corpus.names())
def test_correct_twin_never_fails(name, dtype, samples, seed):
    case = _corpus.case(name)
    for s in SEEDS:
        report = symjac.verify(case.impl(wrong=False), case.spec(), samples=samples, seed=seed + s,
                               kind=case.kind, dtype=dtype)
        assert report.verdict != "fail", str(report)
