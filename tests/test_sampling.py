"""`check(f, samples=N, seed=S)`: runs over many points, target(), shrinking, whole-run Reports."""

import json
import pickle

import numpy as np
import pytest

import symjac as sj
from symjac import _sampling
from symjac._arbitrate import arbitrate_report, exact_jacobian_entries
from symjac._report import Entry, PairResult, Report

pytest.importorskip("torch")


def test_run_report_covers_the_whole_run():
    f = sj.function("log(det(X))", X=(3, 3))
    report = sj.check(f, samples=20, seed=0)
    assert report.verdict == "pass"
    run = report.run
    assert run.samples == 20 and run.seed == 0
    assert run.points_tried == report.points_tried == run.passed + run.failed + run.inconclusive
    assert run.inputs == {"X": "invertible, posdet"}
    assert run.counterexample is None and run.worst is not None
    assert np.linalg.det(np.array(report.point["X"])) > 0
    text = str(report)
    assert "over 20 float64 points (samples=20, seed=0): PASS" in text
    assert "worst point: X=" in text
    assert report.reproduce == (
        "import symjac; symjac.check(symjac.function('log(det(X))', X=(3, 3)), samples=20, seed=0)"
    )
    json.dumps(report.to_dict(), allow_nan=False)


def test_same_seed_same_run_byte_for_byte_and_other_seeds_differ():
    f = sj.function("softmax(x) * x", x=(3,))
    dumps = [json.dumps(sj.check(f, samples=15, seed=s).to_dict(), allow_nan=False) for s in (7, 7, 8)]
    assert dumps[0] == dumps[1]
    assert dumps[0] != dumps[2]


def test_point_check_unchanged_without_samples():
    f = sj.function("X @ X", X=(2, 2))
    report = sj.check(f, X=[[2.0, 3.0], [4.0, 5.0]])
    assert report.verdict == "pass" and report.run is None and report.to_dict()["run"] is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"samples": 0}, "samples: must be an int from 1 to 100000; received 0"),
        ({"samples": -3}, "samples: must be an int from 1 to 100000; received -3"),
        ({"samples": 2.5}, "samples: must be an int from 1 to 100000; received 2.5"),
        ({"samples": 5, "seed": "a"}, "seed: must be an int >= 0; received 'a'"),
        ({"seed": 3}, "seed: is used only with samples=N"),
        ({"samples": 5, "X": [[1.0, 2.0], [3.0, 4.0]]}, "pass either samples=N or a point, not both"),
    ],
)
def test_bad_run_options_are_usage_errors(kwargs, message):
    with pytest.raises(sj.InvalidArgumentError, match=message.replace("(", r"\(")):
        sj.check(sj.function("X @ X", X=(2, 2)), **kwargs)


def _fake_report(verdict, x, ratio=0.0):
    entry = Entry((0,), "x", (0,), {"a": 1.0, "b": 1.0 + ratio * 1e-3}, 1e-3)
    pair = PairResult(("a", "b"), ratio * 1e-3, ratio * 1e-3, int(ratio > 1), entry, ratio <= 1)
    return Report(verdict, "because: x" if verdict != "pass" else "", "fake", "float64", {"x": x.tolist()},
                  ("a", "b"), (pair,), entry, None, {}, "fake()")


def _run(point_check, samples=50, seed=0):
    f = sj.function("x * 1", x=(2,))
    return _sampling.run([f], point_check, samples=samples, seed=seed, reproduce="r", describe="d", tolerance={})


def test_failure_shrinks_to_a_minimal_counterexample():
    def point_check(f, values):
        x = values["x"]
        return _fake_report("fail" if x[0] >= 1.0 else "pass", x, 2.0 if x[0] >= 1 else 0.5)

    report = _run(point_check)
    assert report.verdict == "fail"
    assert report.point == {"x": [1.0, 0.0]}  # the simplest point that fails
    assert report.run.failed >= 1 and report.run.counterexample.point == report.point
    assert report.reason.startswith(f"{report.run.failed} of {report.run.points_tried} points failed")


def test_target_steers_toward_the_worst_point():
    def point_check(f, values):
        x = values["x"]
        return _fake_report("pass", x, float(abs(x[0]) / 3.0))

    report = _run(point_check, samples=60)
    assert report.verdict == "pass"
    assert abs(report.run.worst.point["x"][0]) > 2.5  # hill-climbed toward |x| = bound


def test_mostly_inconclusive_runs_are_inconclusive_with_the_reason():
    def point_check(f, values):
        x = values["x"]
        return _fake_report("inconclusive" if x[1] != 0.5 else "pass", x)

    report = _run(point_check, samples=20)
    assert report.verdict == "inconclusive"
    assert report.reason.startswith("only ") and "most common reason: because" in report.reason
    assert report.run.inconclusive_reasons["because"] == report.run.inconclusive


def test_a_few_inconclusive_points_still_pass_with_a_note():
    def point_check(f, values):
        x = values["x"]
        return _fake_report("inconclusive" if x[0] > 2.9 else "pass", x)

    report = _run(point_check, samples=40)
    if report.run.inconclusive:
        assert report.verdict == "pass" and "were inconclusive" in report.notes[-1]


def test_function_rebuilt_from_pickle_gives_the_same_run():
    f = sj.function("inv(X) @ Y", X=(2, 2), Y=(2, 2))
    g = pickle.loads(pickle.dumps(f))
    a = sj.check(f, samples=8, seed=1).to_dict()
    b = sj.check(g, samples=8, seed=1).to_dict()
    assert json.dumps(a) == json.dumps(b)


def test_mpmath_arbitration_sees_through_cancellation():
    f = sj.function("(1 - cos(x)) / x ** 2", x=())
    x = 1e-5
    exact = exact_jacobian_entries(f, {"x": x}, [(0, "x", 0)])[0]
    assert exact == pytest.approx(-x / 12, rel=1e-6)  # the series: -x/12 + O(x^3)
    floats = f.jacobian().evaluate(x=x)
    assert abs(floats - exact) > 1e3 * abs(exact)  # the float64 evaluation of the formula is far off


def test_arbitration_names_the_route_off_the_high_precision_value():
    f = sj.function("x ** 3", x=())
    entry = Entry((), "x", (), {"symbolic": 3.0, "autograd-reverse": 3.5, "finite-diff": 3.2}, 1e-12)
    pair = PairResult(("symbolic", "autograd-reverse"), 0.5, 0.2, 1, entry, False)
    failing = Report("fail", "routes disagree", "x ** 3", "float64", {"x": 1.0}, tuple(entry.values), (pair,),
                     entry, None, {}, "r")
    settled = arbitrate_report(f, failing)
    assert settled.odd_one_out == "autograd-reverse"
    assert "arbitrated with mpmath at 50 digits" in settled.notes[-1]
    assert arbitrate_report(f, settled) is settled  # decided reports are left alone
