"""The public API keeps data and options apart (issue 10, item 6).

A point is passed as `at={...}` (or as keywords when no input is named like an option); an input
named like an option of `check` is a clear error unless `at=` is used; `symjac.function`'s own
options cannot be taken for inputs; `raise_if_failed` raises a mismatch only on `fail`, and an
inconclusive report is an explicit choice.
"""

import numpy as np
import pytest

import symjac as sj


@pytest.fixture(scope="module")
def seeded():
    return sj.function("seed * x ** 2", seed=(), x=())


def test_at_is_the_one_spelling_of_a_point_and_agrees_with_keywords():
    f = sj.function("X @ X", X=(2, 2))
    x = [[1.0, 2.0], [3.0, 4.0]]
    by_at, by_keyword = sj.check(f, at={"X": x}), sj.check(f, X=x)
    assert by_at.verdict == by_keyword.verdict == "pass"
    assert by_at.to_dict()["pairs"] == by_keyword.to_dict()["pairs"]


@pytest.mark.parametrize("option", ["seed", "samples", "jacobian", "tolerance", "at"])
def test_an_input_named_like_an_option_is_checked_with_at(option):
    f = sj.function(f"{option} * x ** 2", **{option: (), "x": ()})
    report = sj.check(f, at={option: 2.0, "x": 3.0})
    assert report.verdict == "pass"
    # the reproduction line uses at= too, so that it can be pasted
    assert f"at={{{option!r}: 2.0, 'x': 3.0}}" in report.reproduce


def test_an_input_named_like_an_option_passed_as_a_keyword_is_a_clear_error(seeded):
    with pytest.raises(sj.InvalidArgumentError) as info:
        sj.check(seeded, seed=2.0, x=3.0)
    assert str(info.value) == (
        "seed: f has an input named 'seed', which is also an option of symjac.check; pass the point "
        "as at={'seed': ..., 'x': ...}")
    with pytest.raises(sj.InvalidArgumentError, match="input named 'seed'"):
        sj.check(seeded, x=3.0)


def test_at_and_keywords_together_are_refused(seeded):
    with pytest.raises(sj.InvalidArgumentError, match=r"either as at=\{\.\.\.\} or as keywords, not both \(received at= and x=\)"):
        sj.check(seeded, at={"seed": 1.0, "x": 1.0}, x=1.0)
    with pytest.raises(sj.InvalidArgumentError, match="at: must be a mapping"):
        sj.check(seeded, at=[1.0, 2.0])


@pytest.mark.parametrize("option", ["consts", "limits"])
def test_function_options_cannot_be_taken_for_an_input(option):
    with pytest.raises(sj.InvalidArgumentError) as info:
        sj.function(f"{option} * 2", **{option: (3,)})
    assert str(info.value).startswith(f"{option}: is an option of symjac.function and cannot name an input")


def test_raise_if_failed_raises_a_mismatch_only_on_fail():
    f = sj.function("sin(x)", x=())
    failed = sj.check(f, x=0.5, jacobian=-np.cos(0.5))
    assert failed.verdict == "fail"
    with pytest.raises(sj.JacobianMismatchError):
        failed.raise_if_failed(inconclusive="pass")


def test_an_inconclusive_report_is_an_explicit_choice():
    report = sj.check(sj.function("abs(x)", x=()), x=0.0)
    assert report.verdict == "inconclusive"
    with pytest.raises(sj.InconclusiveCheckError) as info:
        report.raise_if_failed()
    assert not isinstance(info.value, sj.JacobianMismatchError)
    assert isinstance(info.value, AssertionError) and isinstance(info.value, sj.SymjacError)
    assert report.raise_if_failed(inconclusive="pass") is report
    with pytest.raises(sj.InvalidArgumentError, match=r"inconclusive: must be one of \('raise', 'pass'\); received 'ignore'"):
        report.raise_if_failed(inconclusive="ignore")


def test_a_pass_returns_the_report():
    report = sj.check(sj.function("x * y", x=(), y=()), x=2.0, y=3.0)
    assert report.raise_if_failed() is report


def test_verify_kind_function_is_the_spelling_and_forward_still_works_with_a_warning():
    import warnings

    torch = pytest.importorskip("torch")
    spec = sj.function("sin(x) * x", x=(2,))
    at = {"x": np.array([0.3, -1.2])}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sj.verify(lambda x: torch.sin(x) * x, spec, at=at).verdict == "pass"
        assert sj.verify(lambda x: torch.sin(x) * x, spec, at=at, kind="function").verdict == "pass"
    with pytest.warns(DeprecationWarning, match=r"verify\(kind='forward'\) is now spelled kind='function'"):
        report = sj.verify(lambda x: torch.sin(x) * x, spec, at=at, kind="forward")
    assert report.verdict == "pass"
    with pytest.raises(sj.InvalidArgumentError, match=r"kind: must be one of \('function', 'jacobian', 'gradient'\)"):
        sj.verify(lambda x: torch.sin(x) * x, spec, at=at, kind="sideways")
