"""The torch derivative bugs of docs/findings.md, judged by `symjac.verify` against a ground truth
computed here by hand (the adjugate of a 2x2 matrix), so that each test holds whether or not the
installed torch has the bug: symjac must fail exactly the implementations the hand-made truth
says are wrong, and name the wrong route."""

import warnings

import numpy as np
import pytest

import symjac as sj

torch = pytest.importorskip("torch")


def _adjugate_t(a: np.ndarray) -> np.ndarray:
    """d det(A) / dA for a 2x2 A, written out: [[a11, -a10], [-a01, a00]]."""
    return np.array([[a[1, 1], -a[1, 0]], [-a[0, 1], a[0, 0]]])


def _wrong(got, expected) -> bool:
    return not np.allclose(np.asarray(got), expected, rtol=1e-9, atol=1e-12)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.func's own DeprecationWarning
        yield


SPEC = sj.function("det(X)", X=(2, 2))


def test_forward_mode_det_at_a_singular_matrix():
    point = np.array([[1.0, 2.0], [2.0, 4.0]])  # det = 0; its derivative, the adjugate, is not 0
    forward = torch.func.jacfwd(torch.linalg.det)(torch.from_numpy(point)).numpy()
    reverse = torch.func.jacrev(torch.linalg.det)(torch.from_numpy(point)).numpy()
    assert not _wrong(reverse, _adjugate_t(point))
    report = sj.verify(torch.linalg.det, SPEC, at={"X": point})
    if _wrong(forward, _adjugate_t(point)):  # torch 2.13: forward mode gives 0
        assert report.verdict == "fail"
        # impl-jvp: forward mode with tangents t1, t2; impl-vjp: plain autograd (next test)
        assert report.odd_one_out.split(", ")[0] == "impl-forward"
        assert "impl-reverse" not in report.odd_one_out
        jacobian = [p for p in report.pairs if p.routes == ("symbolic", "impl-forward")][0]
        assert jacobian.worst.values["symbolic"] == pytest.approx(_adjugate_t(point)[jacobian.worst.input_index])
    else:
        assert "impl-forward" not in (report.odd_one_out or "")


def test_plain_autograd_backward_of_det_at_a_singular_matrix():
    point = np.array([[1.0, 2.0], [2.0, 4.0]])
    X = torch.tensor(point, requires_grad=True)
    torch.linalg.det(X).backward()  # what a training loop calls
    functorch = torch.func.grad(torch.linalg.det)(torch.from_numpy(point)).numpy()
    assert not _wrong(functorch, _adjugate_t(point))
    report = sj.verify(torch.linalg.det, SPEC, at={"X": point})
    vjp = [p for p in report.pairs if p.routes == ("symbolic", "impl-vjp")][0]
    if _wrong(X.grad.numpy(), _adjugate_t(point)):  # torch 2.13: 0
        assert report.verdict == "fail" and not vjp.ok
        assert "impl-vjp" in report.odd_one_out
        # the cotangent check's exact value is v^T J, J the adjugate
        v = [p for p in report.pairs if p.routes == ("symbolic", "impl-reverse")][0]
        assert v.ok  # jacrev (torch.func) is right
    else:
        assert vjp.ok


def test_vmap_of_jacfwd_of_det_over_a_batch():
    anchor = torch.tensor([[2.0, 0.3], [-0.2, 1.5]], dtype=torch.float64)
    batched = torch.func.vmap(torch.func.jacfwd(torch.linalg.det))

    def second_in_a_batch(X):  # the Jacobian at X, computed as point 1 of a batch of two
        return batched(torch.stack([anchor, X]))[1]

    point = np.array([[2.1, -0.4], [0.25, 1.8]])
    got = second_in_a_batch(torch.from_numpy(point)).numpy()
    report = sj.verify(second_in_a_batch, SPEC, kind="jacobian", at={"X": point})
    if _wrong(got, _adjugate_t(point)):  # torch 2.13: off by about 300 here
        assert report.verdict == "fail"
        assert report.odd_one_out == "impl-jacobian"
    else:
        assert report.verdict == "pass"


def test_the_same_transforms_on_a_correct_rule_pass():
    """The control: `inv` is right under `vmap(jacfwd)` in torch 2.13, and symjac agrees."""
    spec = sj.function("sum(inv(X))", X=(2, 2))
    anchor = torch.tensor([[2.0, 0.3], [-0.2, 1.5]], dtype=torch.float64)
    batched = torch.func.vmap(torch.func.jacfwd(lambda X: torch.linalg.inv(X).sum()))
    report = sj.verify(lambda X: batched(torch.stack([anchor, X]))[1], spec, kind="jacobian",
                       at={"X": np.array([[2.1, -0.4], [0.25, 1.8]])})
    assert report.verdict == "pass"
