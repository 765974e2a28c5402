"""`symjac.verify`: wrong derivative implementations fail at a wrong entry; correct ones never fail."""

import json

import numpy as np
import pytest

import symjac as sj
from symjac.suite import _corpus

torch = pytest.importorskip("torch")

SEEDS = (0, 1, 2)


def _impl_jacobian(case, impl, point):
    """The implementation's own Jacobian (or value) at a point, as NumPy, for the right-entry check."""
    spec = case.spec()
    args = [torch.tensor(np.asarray(point[n])) for n in spec.input_names]
    if case.kind != "function":
        out = impl(*args)
        return {spec.input_names[0]: np.asarray(out)}
    jac = torch.autograd.functional.jacobian(impl, tuple(args))
    return {n: j.numpy() for n, j in zip(spec.input_names, jac)} | {"value": impl(*args).detach().numpy()}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", _corpus.names())
def test_wrong_implementation_fails_at_a_wrong_entry(name):
    case = _corpus.case(name)
    report = sj.verify(case.impl(wrong=True), case.spec(), samples=50, seed=0, kind=case.kind)
    assert report.verdict == "fail", str(report)
    cx = report.run.counterexample
    assert cx is not None and cx.verdict == "fail"
    assert report.point == cx.point
    worst = cx.worst
    # The entry reported is one where the wrong code and its correct twin really differ.
    wrong = _impl_jacobian(case, case.impl(wrong=True), cx.point)
    right = _impl_jacobian(case, case.impl(wrong=False), cx.point)
    if worst.kind == "value":
        key, index = "value", worst.output_index
    else:
        key, index = worst.input_name, worst.output_index + worst.input_index
    a, b = wrong[key][index], right[key][index]
    assert abs(a - b) > 1e-9 * (1 + abs(b)), (name, worst.label(), a, b)
    if case.expect_input == "value":
        assert worst.kind == "value"
    elif case.expect_input is not None:
        assert worst.input_name == case.expect_input
    if case.expect_index is not None:
        assert worst.input_index == case.expect_index
    assert cx.odd_one_out and cx.odd_one_out.startswith("impl")
    assert "reproduce" in str(report) and "minimal counterexample" in str(report)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", _corpus.names())
def test_correct_twin_never_fails(name, dtype):
    case = _corpus.case(name)
    for seed in SEEDS:
        report = sj.verify(case.impl(wrong=False), case.spec(), samples=10, seed=seed, kind=case.kind, dtype=dtype)
        assert report.verdict == "pass", str(report)
        assert report.dtype == dtype


def test_wrong_dtype_handling_is_only_a_float64_bug():
    case = _corpus.case("dtype")
    report = sj.verify(case.impl(wrong=True), case.spec(), samples=20, seed=0, dtype="float32")
    assert report.verdict == "pass", str(report)


class MatSquare(torch.autograd.Function):
    @staticmethod
    def forward(ctx, X):
        ctx.save_for_backward(X)
        return X @ X

    @staticmethod
    def backward(ctx, g):
        (X,) = ctx.saved_tensors
        return g @ X + X @ g  # right only for symmetric X


def test_symmetric_only_bug_shrinks_to_a_2x2_matrix_with_a_family():
    family = [sj.function("X @ X", X=(n, n)) for n in (3, 2)]  # any order: tried smallest first
    report = sj.verify(MatSquare.apply, family, samples=100, seed=0)
    assert report.verdict == "fail"
    X = np.array(report.run.counterexample.point["X"])
    assert X.shape == (2, 2)
    assert not np.allclose(X, X.T)
    assert np.count_nonzero(X) == 1  # one off-diagonal entry: nothing simpler breaks it
    assert "and 1 more shapes" in report.function


def test_symmetric_only_bug_at_the_declared_shape_is_minimal_in_its_values():
    report = sj.verify(MatSquare.apply, sj.function("X @ X", X=(3, 3)), samples=200, seed=0)
    X = np.array(report.point["X"])
    assert report.verdict == "fail" and X.shape == (3, 3)
    assert np.count_nonzero(X) == 1 and not np.allclose(X, X.T)
    assert report.worst.values["symbolic"] != report.worst.values["impl-reverse"]


def test_same_seed_same_report_byte_for_byte():
    spec = sj.function("X @ X", X=(3, 3))
    first = json.dumps(sj.verify(MatSquare.apply, spec, samples=40, seed=3).to_dict(), allow_nan=False)
    second = json.dumps(sj.verify(MatSquare.apply, spec, samples=40, seed=3).to_dict(), allow_nan=False)
    assert first == second


def test_custom_function_falls_back_from_torch_func_and_says_forward_mode_is_unchecked():
    report = sj.verify(_corpus.case("sign").impl(wrong=False), sj.function("sin(x)", x=(3,)), samples=5)
    assert report.verdict == "pass"
    assert any("torch.autograd.functional.jacobian" in n for n in report.notes)
    assert any("forward mode not checked" in n for n in report.notes)
    assert report.routes == ("symbolic", "impl-value", "impl-reverse")


def test_plain_torch_code_is_checked_in_both_modes():
    report = sj.verify(lambda x: torch.sin(x) * x, sj.function("sin(x) * x", x=(3,)), samples=10)
    assert report.verdict == "pass"
    assert report.routes == ("symbolic", "impl-value", "impl-reverse", "impl-forward")


def test_a_wrong_forward_mode_rule_is_caught():
    class Sin(torch.autograd.Function):
        @staticmethod
        def forward(x):
            return torch.sin(x)

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(*inputs)
            ctx.x = inputs[0]

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * torch.cos(x)

        @staticmethod
        def jvp(ctx, t):
            return -t * torch.cos(ctx.x)  # sign error in forward mode only

    report = sj.verify(Sin.apply, sj.function("sin(x)", x=(2,)), samples=20)
    assert report.verdict == "fail"
    # the Jacobian by forward mode, and the tangent checks (symjac._cotangents) through the same jvp
    assert report.odd_one_out == "impl-forward, impl-jvp"


def test_gradcheck_misses_a_1e_4_relative_error_that_verify_catches():
    case = _corpus.case("relative_1e-4")
    x = torch.tensor([0.3, -0.7, 1.1], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(case.impl(wrong=True), (x,))  # torch's defaults: passes
    assert sj.verify(case.impl(wrong=True), case.spec(), samples=10).verdict == "fail"


def test_kink_is_inconclusive_never_fail():
    spec = sj.function("relu(x)", x=(2,))
    report = sj.verify(torch.relu, spec, at={"x": [0.0, 1.0]})
    assert report.verdict == "inconclusive"
    assert report.reason.startswith("non-differentiable point")


def test_singularity_is_inconclusive_never_fail():
    spec = sj.function("sqrt(x)", x=(2,))
    report = sj.verify(torch.sqrt, spec, at={"x": [0.0, 1.0]})
    assert report.verdict == "inconclusive"
    assert "outside the domain" in report.reason


def test_at_one_point_and_its_reproduction_line():
    spec = sj.function("X @ X", X=(2, 2))
    report = sj.verify(MatSquare.apply, spec, at={"X": [[0.0, 1.0], [0.0, 0.0]]})
    assert report.verdict == "fail"
    assert report.run is None
    assert "symjac.verify(test_verify.MatSquare.apply, symjac.function('X @ X', X=(2, 2)), at={'X': [[0.0, 1.0], [0.0, 0.0]]})" in report.reproduce


def test_jacobian_and_gradient_kinds():
    spec = sj.function("sigmoid(x)", x=(3,))
    right = _corpus.case("jacobian").impl(wrong=False)
    assert sj.verify(right, spec, samples=10, kind="jacobian").verdict == "pass"
    scalar = sj.function("sum(x ** 2)", x=(3,))
    assert sj.verify(lambda x: 2 * x, scalar, samples=10, kind="gradient").verdict == "pass"
    report = sj.verify(lambda x: 2 * x + 1e-3, scalar, samples=10, kind="gradient")
    assert report.verdict == "fail" and report.odd_one_out == "impl-gradient"


def test_several_inputs_as_a_dict_of_jacobians():
    spec = sj.function("W @ x", W=(2, 3), x=(3,))

    def jac(W, x):
        return {"W": torch.einsum("ia,b->iab", torch.eye(2, dtype=W.dtype), x), "x": W}

    assert sj.verify(jac, spec, samples=10, kind="jacobian").verdict == "pass"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"samples": 0}, "samples: must be an int from 1 to"),
        ({"samples": -3}, "samples: must be an int from 1 to"),
        ({"samples": True}, "samples: must be an int from 1 to"),
        ({"seed": "a"}, "seed: must be an int >= 0; received 'a'"),
        ({"seed": -1}, "seed: must be an int >= 0"),
        ({"kind": "hessian"}, "kind: must be one of"),
        ({"dtype": "float16"}, "dtype: must be float32 or float64"),
        ({"at": {"X": [[1.0, 0.0], [0.0, 1.0]]}, "samples": 3}, "at: verifies one given point"),
        ({"kind": "gradient"}, "kind: 'gradient' needs a scalar function"),
    ],
)
def test_bad_options_are_usage_errors(kwargs, message):
    with pytest.raises(sj.InvalidArgumentError, match=message.replace("(", r"\(")):
        sj.verify(MatSquare.apply, sj.function("X @ X", X=(2, 2)), **kwargs)


def test_bad_spec_and_impl():
    with pytest.raises(sj.InvalidArgumentError, match="spec: must be a symjac.Function"):
        sj.verify(torch.sin, "sin(x)")
    with pytest.raises(sj.InvalidArgumentError, match="same inputs"):
        sj.verify(torch.sin, [sj.function("sin(x)", x=(2,)), sj.function("sin(y)", y=(2,))])
    with pytest.raises(sj.InvalidArgumentError, match="impl: must be callable"):
        sj.verify(3, sj.function("sin(x)", x=(2,)))


def test_wrong_output_shape_is_an_error_not_a_verdict():
    with pytest.raises(sj.ShapeError, match=r"output shape \(2,\); received \(1, 2\)"):
        sj.verify(lambda x: torch.sin(x)[None], sj.function("sin(x)", x=(2,)), samples=3)
