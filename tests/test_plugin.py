"""The pytest plugin: options in their own group, the symjac_assert fixture, xdist, a light import."""

import importlib.util
import subprocess
import sys

import pytest

pytest_plugins = ["pytester"]

# Imported here, before any in-process pytester run: pytester restores sys.modules after each run,
# and a C extension such as torch cannot be imported a second time in one process.
torch = pytest.importorskip("torch")
import hypothesis  # noqa: E402,F401
import symjac  # noqa: E402,F401
# symjac's modules load lazily; load the ones a verify run uses now, for the same reason (a second
# copy of symjac._function would hold a second Function class).
from symjac import _check, _deadline, _function, _report, _sampling, _verify, strategies  # noqa: E402,F401
from symjac.backends import _numpy, _torch  # noqa: E402,F401

GOOD_AND_BAD = '''
import torch
import symjac

spec = symjac.function("X @ X", X=(2, 2))

class MatSquare(torch.autograd.Function):
    @staticmethod
    def forward(ctx, X):
        ctx.save_for_backward(X)
        return X @ X

    @staticmethod
    def backward(ctx, g):
        (X,) = ctx.saved_tensors
        return g @ X + X @ g

def test_right(symjac_assert):
    report = symjac_assert.verify(lambda X: X @ X, spec, samples=5)
    assert report.run.samples == SAMPLES

def test_wrong(symjac_assert):
    symjac_assert.verify(MatSquare.apply, spec, samples=5)

def test_check(symjac_assert):
    symjac_assert.check(spec, samples=3)
'''


def test_options_are_in_their_own_group(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["symjac derivative checks:", "*--symjac-samples=N*", "*--symjac-seed=S*"])


def test_fixture_passes_and_fails_with_the_report_as_message(pytester):
    pytester.makepyfile(GOOD_AND_BAD.replace("SAMPLES", "5"))
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "*symjac verify of *MatSquare.apply against X @ X (X: (2, 2)) over * float64 points (samples=5, seed=0): FAIL*",
        "*minimal counterexample: X=*",
        "*odd one out: impl-reverse*",
    ])
    assert "Traceback" not in result.stdout.str()


def test_command_line_overrides_samples_and_seed(pytester):
    pytester.makepyfile(GOOD_AND_BAD.replace("SAMPLES", "7"))
    result = pytester.runpytest("-p", "no:cacheprovider", "--symjac-samples", "7", "--symjac-seed", "4", "-k", "right")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["symjac: samples=7, seed=4"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--symjac-samples", "0"], "*--symjac-samples: must be an int >= 1; received '0'*"),
        (["--symjac-samples", "-3"], "*--symjac-samples: must be an int >= 1; received '-3'*"),
        (["--symjac-seed", "a"], "*--symjac-seed: must be an int >= 0; received 'a'*"),
    ],
)
def test_bad_options_are_usage_errors(pytester, args, message):
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_inert_unless_used(pytester):
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "symjac:" not in result.stdout.str()


def test_plugin_import_is_light():
    code = (
        "import sys, symjac._pytest_plugin\n"
        "print(','.join(m for m in ('torch', 'hypothesis', 'matplotlib') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.timeout(300)
@pytest.mark.skipif(importlib.util.find_spec("xdist") is None, reason="pytest-xdist is not installed")
def test_same_results_under_xdist(pytester):
    pytester.makepyfile(GOOD_AND_BAD.replace("SAMPLES", "5"))
    serial = pytester.runpytest("-p", "no:cacheprovider")
    parallel = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    serial.assert_outcomes(passed=2, failed=1)
    parallel.assert_outcomes(passed=2, failed=1)
    line = [l for l in serial.stdout.lines if "minimal counterexample" in l]
    assert line and all(l.strip() in parallel.stdout.str() for l in line)


AT_ONE_POINT = """
import torch
import symjac

SPEC = symjac.function("sin(x) * x", x=(3,))


def test_verify_at_a_point(symjac_assert):
    report = symjac_assert.verify(lambda x: torch.sin(x) * x, SPEC, at={"x": [0.1, 0.2, 0.3]})
    assert report.run is None and report.point == {"x": [0.1, 0.2, 0.3]}


def test_wrong_at_a_point_still_fails(symjac_assert):
    symjac_assert.verify(lambda x: torch.sin(x) * x * 1.01, SPEC, at={"x": [0.1, 0.2, 0.3]})


def test_check_at_a_point(symjac_assert):
    report = symjac_assert.check(SPEC, x=[0.1, 0.2, 0.3])
    assert report.run is None
"""


@pytest.mark.timeout(300)
def test_explicit_at_wins_over_symjac_samples(pytester):
    # found: --symjac-samples 10 made every verify(..., at=...) error with "pass either at= or samples="
    pytester.makepyfile(AT_ONE_POINT)
    # in a subprocess: pytester's in-process runs restore sys.modules between runs, and a second
    # copy of symjac's lazily imported modules would not know the first's Function class
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--symjac-samples", "10")
    result.assert_outcomes(passed=2, failed=1)
    assert "pass either at= or samples=" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*test_wrong_at_a_point_still_fails*"])
