"""verify: what an implementation does wrong that is not a wrong number ends in a clear SymjacError
(issue 15), never a raw torch or Python error without the point; and verify has a time limit."""

import ast
import re
import signal
import threading
import time

import numpy as np
import pytest

import symjac as sj

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.timeout(120)

SPEC = sj.function("sin(x) * 2", x=(3,))
SCALAR = sj.function("sum(x * x)", x=(3,))
AT = {"x": np.array([0.1, 0.2, 0.3])}


def boom(x):
    raise ValueError("boom")


class WrongShapeBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.sin(x) * 2

    @staticmethod
    def backward(ctx, grad):
        return grad[:2]


ESCAPES = [
    ("raises", boom, re.escape("impl: raised ValueError: boom (while computing its value) at the point {'x': ")),
    ("in-place", lambda x: x.mul_(2).sin(), r"raised RuntimeError: .*in-place.*\(while computing its "
     r"(value|reverse-mode Jacobian)\).*must not change its inputs in place"),
]


@pytest.mark.parametrize("how", ["at", "samples"])
def test_a_backward_of_the_wrong_shape_fails_its_contract_and_names_the_input(how):
    # the backward contract (symjac._backward_contract) sees it before torch's own error would
    options = {"at": AT} if how == "at" else {"samples": 5}
    report = sj.verify(WrongShapeBackward.apply, SPEC, **options)
    assert report.verdict == "fail" and report.odd_one_out == "impl-backward"
    assert "backward contract, rule 'shape', input 'x': the gradient has shape (2,); the input has shape (3,)" in (
        report.reason if how == "at" else str(report))


@pytest.mark.parametrize("impl, fragment", [e[1:] for e in ESCAPES], ids=[e[0] for e in ESCAPES])
@pytest.mark.parametrize("how", ["at", "samples"])
def test_an_implementation_that_raises_is_an_implementation_error_with_the_point(impl, fragment, how):
    with pytest.raises(sj.ImplementationError, match=fragment) as info:
        if how == "at":
            sj.verify(impl, SPEC, at=AT)
        else:
            sj.verify(impl, SPEC, samples=5)
    error = info.value
    assert isinstance(error, RuntimeError) and isinstance(error, sj.SymjacError)
    assert error.__cause__ is not None and not isinstance(error.__cause__, sj.SymjacError)
    if how == "at":
        assert "{'x': [0.1, 0.2, 0.3]}" in str(error)
    assert "; reproduce: import numpy, symjac" in str(error) and "symjac.verify(" in str(error)


def test_the_reproduction_of_an_implementation_error_reraises_it():
    with pytest.raises(sj.ImplementationError) as info:
        sj.verify(boom, SPEC, samples=5)
    at = str(info.value).split("at={", 1)[1].rsplit("}", 1)[0]
    point = ast.literal_eval("{" + at + "}")
    with pytest.raises(sj.ImplementationError, match="boom"):
        sj.verify(boom, SPEC, at={k: np.array(v) for k, v in point.items()})


OUTPUTS = [
    ("complex value", lambda x: (torch.sin(x) * 2).to(torch.complex128), {}, "impl: the value: must hold real numbers"),
    ("meta value", lambda x: torch.empty(3, device="meta"), {}, "impl: the value: a tensor on the meta device"),
    ("sparse value", lambda x: (torch.sin(x) * 2).to_sparse(), {}, "impl: the value: only dense"),
    ("complex jacobian", lambda x: torch.diag(2 * torch.cos(x)) + 1j, {"kind": "jacobian"},
     "impl: the jacobian for 'x': must hold real numbers"),
]


@pytest.mark.parametrize("impl, options, fragment", [o[1:] for o in OUTPUTS], ids=[o[0] for o in OUTPUTS])
def test_outputs_that_are_not_real_numbers_are_refused(impl, options, fragment):
    with pytest.raises(sj.InvalidArgumentError, match=fragment):
        sj.verify(impl, SPEC, at=AT, **options)


def test_a_complex_gradient_fails_instead_of_passing():
    # found: `2*x + 5j` passed as the gradient of sum(x * x): NumPy dropped the imaginary part
    with pytest.raises(sj.InvalidArgumentError, match="impl: the gradient for 'x': must hold real numbers"):
        sj.verify(lambda x: 2 * x + 5j, SCALAR, kind="gradient", samples=5)
    assert sj.verify(lambda x: 2 * x, SCALAR, kind="gradient", samples=5).verdict == "pass"  # the real one passes
    assert sj.verify(lambda x: 2 * x + 1e-3, SCALAR, kind="gradient", samples=5).verdict == "fail"


def hang(x):
    while True:
        pass


def test_timeout_stops_a_hanging_implementation_in_the_main_thread():
    start = time.monotonic()
    with pytest.raises(sj.JobTimeoutError, match=r"timeout: verify ran past its time limit of 0.5 s and was stopped"):
        sj.verify(hang, SPEC, at=AT, timeout=0.5)
    assert time.monotonic() - start >= 0.5
    assert signal.getsignal(signal.SIGALRM) is not None


def test_timeout_restores_an_earlier_alarm():
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *a: fired.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 100.0)
        assert sj.verify(lambda x: torch.sin(x) * 2, SPEC, at=AT, timeout=50).verdict == "pass"
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 0 < left <= 100.0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert fired == []


def test_timeout_outside_the_main_thread_is_checked_between_points():
    def slow(x):
        time.sleep(0.02)
        return torch.sin(x) * 2

    caught = []

    def run():
        try:
            sj.verify(slow, SPEC, samples=10_000, timeout=0.5)
        except sj.JobTimeoutError as error:
            caught.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    assert not thread.is_alive()
    assert len(caught) == 1 and "time limit of 0.5 s" in str(caught[0])


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), 1e9, "5", True])
def test_bad_timeouts_are_refused(timeout):
    with pytest.raises(sj.InvalidArgumentError, match="timeout: must be None"):
        sj.verify(lambda x: torch.sin(x) * 2, SPEC, at=AT, timeout=timeout)


def test_a_correct_implementation_passes_under_a_timeout():
    assert sj.verify(lambda x: torch.sin(x) * 2, SPEC, samples=10, timeout=300).verdict == "pass"


# Issue 15: SymPy's simplification gives the built spec a larger domain than its text
# (`exp(log(x))` is built as `x`); an implementation that follows the text is not wrong there.
@pytest.mark.parametrize("text, impl", [
    ("exp(log(x))", lambda x: torch.exp(torch.log(x))),
    ("sqrt(x ** 2) * log(x) / log(x)", lambda x: torch.sqrt(x ** 2) * torch.log(x) / torch.log(x)),
])
def test_a_point_outside_the_texts_domain_is_inconclusive_and_says_why(text, impl):
    spec = sj.function(text, x=(2,))
    report = sj.verify(impl, spec, at={"x": [-1.5, 2.0]})
    assert report.verdict == "inconclusive"
    assert "outside the domain of the spec as written" in report.reason and repr(text) in report.reason
    assert sj.verify(impl, spec, at={"x": [1.5, 2.0]}).verdict == "pass"  # inside it: checked


def test_outside_the_texts_domain_does_not_excuse_a_wrong_implementation():
    spec = sj.function("exp(log(x))", x=(2,))
    # nan where the text is defined: a real failure
    assert sj.verify(lambda x: torch.where(x > 1.8, torch.nan, x), spec, at={"x": [1.5, 2.0]}).verdict == "fail"
    # the text's domain is not the question when the implementation is finite: compared as built
    assert sj.verify(lambda x: x * 1.001, spec, at={"x": [-1.5, 2.0]}).verdict == "fail"
    assert sj.verify(lambda x: x * 1.0, spec, at={"x": [-1.5, 2.0]}).verdict == "pass"


def test_verify_has_a_time_limit_by_default_the_same_as_limits():
    # issue 15: "verify has no time limit: a hanging implementation hangs it forever"
    import inspect

    default = inspect.signature(sj.verify).parameters["timeout"].default
    assert default == sj.Limits().timeout == 300.0


def test_check_says_when_the_text_as_written_is_not_defined_at_the_point():
    report = sj.check(sj.function("exp(log(x))", x=(2,)), x=[-1.0, 2.0])
    assert report.verdict == "pass"  # the Function as built (x) is checked
    assert any("the text as written is not defined at this point" in n for n in report.notes)
    # inside the text's domain: no such note, and the tensor-level routes ran
    inside = sj.check(sj.function("exp(log(x))", x=(2,)), x=[1.0, 2.0])
    assert not any("as written" in n for n in inside.notes) and "torch-reverse" in str(inside)
