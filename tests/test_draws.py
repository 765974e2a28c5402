"""Sampled runs' points: NumPy draws of `strategies.inputs`'s distributions (`strategies.Draws`), the same
on every machine, whatever is imported and wherever it runs; hill-climbing and shrinking on them."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import symjac as sj
from symjac import _sampling, strategies
from symjac._report import Entry, PairResult, Report
from symjac.strategies import DEFAULT_BOUND, DEFAULT_MARGIN, DEFAULT_REACH, FAR_ODDS, Draws

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _points(f, count=400, seed=0, **options):
    d, rng = Draws(f, **options), np.random.default_rng(seed)
    out = []
    while len(out) < count:
        values = d.values(d.draw(rng))
        if d.valid(values):
            out.append(values)
    return out


def test_draws_stay_inside_each_family():
    f = sj.function("log(det(X)) + sum(log(y)) + sum(1 / z) + sum(w) + inv(A)[0, 0] + sum(S)",
                    X=(3, 3), y=(2,), z=(3,), w=(4,), S=(3, 3), A=(2, 2))
    roles = {"S": "posdef"}
    assert strategies.domain(f, roles=roles).describe() == {
        "X": "invertible, posdet", "y": "positive", "z": "nonzero", "w": "any", "S": "posdef",
        "A": "invertible"}
    for v in _points(f, 200, roles=roles):
        X, y, z, w, S, A = (v[k] for k in "XyzwSA")
        assert np.linalg.det(X) >= 1.0 - 1e-9 and np.linalg.cond(X, np.inf) <= 2 * 3 + 1e-9
        assert (y >= DEFAULT_MARGIN).all() and (y <= DEFAULT_REACH).all()
        assert (np.abs(z) >= DEFAULT_MARGIN).all() and (np.abs(z) <= DEFAULT_REACH).all()
        assert (np.abs(w) <= DEFAULT_REACH).all()
        assert np.array_equal(S, S.T) and np.linalg.eigvalsh(S).min() > 0
        assert abs(np.linalg.det(A)) >= 1.0 - 1e-9
    # the same properties as the Hypothesis strategy's values (tests/test_strategies.py): one family each


def test_far_points_keep_their_odds_and_reach():
    f = sj.function("x * 1", x=(4,))
    points = np.array([v["x"] for v in _points(f, 2000)])
    far = (np.abs(points) > DEFAULT_BOUND).any(axis=1)
    # a far point (odds 1 / FAR_ODDS) has each entry far with odds 1/2: 1 - 1/16 of them show one
    expected = (1 / FAR_ODDS) * (1 - 0.5 ** 4)
    assert abs(far.mean() - expected) < 0.04, far.mean()
    beyond = np.abs(points[np.abs(points) > DEFAULT_BOUND])
    assert beyond.max() <= DEFAULT_REACH and abs((beyond > 20).mean() - 0.25) < 0.05  # log-uniform bands
    near = _points(f, 300, bound=3.0, reach=3.0)
    assert max(np.abs(v["x"]).max() for v in near) <= 3.0  # reach <= bound: no far draws


def test_float32_draws_are_float32_exact():
    f = sj.function("inv(X) * relu(x) + sum(y)", X=(2, 2), x=(), y=(3,))
    for v in _points(f, 100, dtype=np.float32):
        for a in v.values():
            assert a.dtype == np.float32
        assert np.array_equal(v["y"].astype(np.float64).astype(np.float32), v["y"])


def test_checked_constraints_are_met_and_a_domain_without_points_is_inconclusive():
    f = sj.function("log(x - y) + x * y", x=(), y=())  # x - y > margin: not proven for any role, checked
    for v in _points(f, 100):
        assert v["x"] - v["y"] >= DEFAULT_MARGIN
    empty = sj.function("log(x - 50)", x=())  # beyond every draw (reach 40)
    report = sj.check(empty, samples=5, seed=0)
    assert report.verdict == "inconclusive"
    assert report.reason == "no valid point could be drawn from the function's domain"


# values inside the draws' ranges, under Hypothesis's limit of 1,024 constants per module (it skips a
# module with more): with Hypothesis's engine, importing this changed seed 5's worst point
_MANY_LITERALS = "VALUES = [" + ", ".join(f"{k / 101 - 3:.5f}" for k in range(1, 600)) + "]\n"
_RUN = (
    "import json, sys, numpy as np, torch\n"
    "if len(sys.argv) > 1: import literals\n"
    "import symjac as sj\n"
    "f = sj.function('log(1 + exp(x)) * sum(y)', x=(3,), y=(2,))\n"
    "a = sj.check(f, samples=40, seed=5).to_dict()\n"
    "b = sj.verify(lambda x, y: torch.log1p(torch.exp(x)) * y.sum(), [f], samples=6, seed=2).to_dict()\n"
    "print(json.dumps([a, b], allow_nan=False))\n"
)


def _run_in(cwd, *args):
    done = subprocess.run([sys.executable, "-c", _RUN, *args], capture_output=True, text=True, timeout=200,
                          cwd=cwd, env=dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{cwd}"))
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_a_runs_points_do_not_depend_on_modules_loaded_or_the_directory_and_nothing_is_written(tmp_path):
    # Hypothesis mixes constants from every local module it sees into its choices (and caches them in
    # .hypothesis/ in the working directory): runs must not
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    (two / "literals.py").write_text(_MANY_LITERALS)
    plain = _run_in(one)
    with_literals = _run_in(two, "literals")
    assert plain == with_literals
    assert [p.name for p in one.rglob("*")] == []
    assert sorted(p.name for p in two.rglob("*") if "__pycache__" not in p.parts) == ["literals.py"]
    check, verify = json.loads(plain)
    assert check["run"]["points_tried"] == 40 and verify["run"]["points_tried"] == 6


# -- hill-climbing and shrinking over parameters ------------------------------------------------------
def _fake(verdict, values, ratio):
    x = values["x"]
    entry = Entry((0,), "x", (0,), {"a": 1.0, "b": 1.0 + ratio * 1e-3}, 1e-3)
    pair = PairResult(("a", "b"), ratio * 1e-3, ratio * 1e-3, int(ratio > 1), entry, ratio <= 1)
    return Report(verdict, "because: x" if verdict != "pass" else "", "fake", "float64", {"x": x.tolist()},
                  ("a", "b"), (pair,), entry, None, {}, "fake()")


def _run(f, point_check, samples=60, seed=0, **options):
    return _sampling.run([f], point_check, samples=samples, seed=seed, reproduce="r", describe="d", tolerance={},
                         **options)


def test_hill_climbing_gets_closer_to_the_worst_point_than_fresh_draws(monkeypatch):
    f = sj.function("x * 1", x=(2,))

    def point_check(g, values):
        return _fake("pass", values, 1.0 / (1e-3 + abs(values["x"][0] - 1.234)) / 1e4)

    def distance(report):
        return abs(report.run.worst.point["x"][0] - 1.234)

    climbed = [distance(_run(f, point_check, seed=s)) for s in range(6)]
    monkeypatch.setattr(_sampling, "TARGET_FRACTION", 0.0)
    fresh = [distance(_run(f, point_check, seed=s)) for s in range(6)]
    assert np.median(climbed) < np.median(fresh) / 3, (climbed, fresh)


def test_a_counterexample_shrinks_inside_the_domain():
    f = sj.function("sum(log(x))", x=(2,))  # positive: shrinks toward 1, never below the margin

    def point_check(g, values):
        x = values["x"]
        return _fake("fail" if x[0] > 2.0 else "pass", values, 2.0 if x[0] > 2 else 0.5)

    report = _run(f, point_check)
    assert report.verdict == "fail"
    assert report.point == {"x": [3.0, 1.0]}  # the simplest failing point: integers first, then the rest


def test_a_counterexample_needing_a_far_entry_keeps_the_smallest_far_magnitude():
    f = sj.function("x * 1", x=(3,))

    def point_check(g, values):
        x = values["x"]
        bad = x.min() < -20
        return _fake("fail" if bad else "pass", values, 2.0 if bad else 0.0)

    report = _run(f, point_check, samples=100)
    assert report.verdict == "fail"
    assert sorted(report.point["x"]) == [-21.0, 0.0, 0.0]


def test_a_batched_run_shrinks_every_point_of_the_failing_batch():
    f = sj.function("x * 1", x=(2,))

    def point_check(g, values):
        x = values["x"]  # (batch, 2)
        bad = bool((x[:, 0] >= 1).any())
        return _fake("fail" if bad else "pass", {"x": x[:, 0]}, 2.0 if bad else 0.0)

    report = _run(f, point_check, batch=3)
    assert report.verdict == "fail"
    assert sorted(report.point["x"]) == [0.0, 0.0, 1.0]


@pytest.mark.parametrize("wrong", [False, True])
def test_real_runs_still_tell_right_from_wrong(wrong):
    torch = pytest.importorskip("torch")
    spec = sj.function("log(1 + exp(x))", x=(3,))

    def impl(x):
        y = torch.nn.functional.softplus(x)
        return y * (1 + 1e-4) if wrong else y

    report = sj.verify(impl, spec, samples=30, seed=0)
    assert report.verdict == ("fail" if wrong else "pass"), str(report)
    if wrong:
        assert report.run.counterexample.odd_one_out.startswith("impl")


def test_asin_and_acos_arguments_are_drawn_inside_their_domain():
    # found: far draws (out to 40) put x / 3 outside [-1, 1], and 4 of 10 points were "outside the domain"
    f = sj.function("asin(x / 3) + acos(x / 3) * atan(x)", x=(3,))
    assert all((1 - (v["x"] / 3) ** 2 >= DEFAULT_MARGIN).all() for v in _points(f, 100))
    report = sj.check(f, samples=20, seed=0)
    assert report.verdict == "pass" and report.run.inconclusive == 0, str(report)


def test_an_implementation_error_in_a_run_is_raised_at_the_simplest_point_that_raises():
    torch = pytest.importorskip("torch")
    spec = sj.function("sin(x) * 2", x=(3,))

    def impl(x):
        if float(x.detach()[0]) > 1:
            raise ValueError("boom")
        return torch.sin(x) * 2

    with pytest.raises(sj.ImplementationError, match=r"boom") as info:
        sj.verify(impl, spec, samples=30, seed=0)
    assert "{'x': [2.0, 0.0, 0.0]}" in str(info.value)
    assert isinstance(info.value.__cause__, ValueError)


def test_a_shrinking_trial_at_which_the_implementation_raises_is_not_taken():
    torch = pytest.importorskip("torch")
    spec = sj.function("sin(x) * 2", x=(3,))

    def impl(x):
        if float(x.detach().abs().sum()) == 0:  # raises at the simplest point only
            raise ValueError("boom at 0")
        return torch.sin(x) * (2 + 1e-3)  # wrong everywhere else

    report = sj.verify(impl, spec, samples=10, seed=0)
    assert report.verdict == "fail"
    assert np.abs(report.point["x"]).sum() > 0
