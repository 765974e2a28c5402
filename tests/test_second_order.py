"""order=2: the exact second derivative against torch's four compositions and finite differences
of the exact Jacobian, for check (the generated torch forward) and verify (your implementation).

Wrong second derivatives are built as custom autograd.Functions whose first derivative is right
and whose derivative of the gradient (what double backward differentiates) is a given, wrong,
Hessian: transposed, sign-flipped, 1e-4 relative. A right Hessian from a different formula passes.
"""

import numpy as np
import pytest

import symjac as sj

torch = pytest.importorskip("torch")

POINT = [0.7, -1.3, 0.4]


def _spec():
    return sj.function(lambda x: np.array([x[0] ** 2 * x[1], x[1] ** 2 * x[2], x[2] ** 2 * x[0]]), x=(3,))


def _value(x):
    return x ** 2 * x[[1, 2, 0]]


def _gradient(x):
    """J[p, a] of f_p = x_p**2 x_q, q = p + 1 mod 3."""
    q = [1, 2, 0]
    J = torch.zeros(3, 3, dtype=x.dtype)
    for p in range(3):
        J[p, p] = 2 * x[p] * x[q[p]]
        J[p, q[p]] = x[p] ** 2
    return J


def _hessian_by_hand(x):
    """H[p, a, b] written from the product rule, entry by entry (a different formula from SymPy's)."""
    q = [1, 2, 0]
    H = torch.zeros(3, 3, 3, dtype=x.dtype)
    for p in range(3):
        H[p, p, p] = 2 * x[q[p]]
        H[p, p, q[p]] = 2 * x[p]
        H[p, q[p], p] = 2 * x[p]
    return H


def _with_hessian(hessian):
    """`impl(x)`: value and Jacobian right; the Jacobian's own derivative is `hessian(x)`."""

    class Jac(torch.autograd.Function):
        generate_vmap_rule = True

        @staticmethod
        def forward(x):
            return _gradient(x)

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])

        @staticmethod
        def backward(ctx, v):
            (x,) = ctx.saved_tensors
            return torch.einsum("pa,pab->b", v, hessian(x))

    class F(torch.autograd.Function):
        generate_vmap_rule = True

        @staticmethod
        def forward(x):
            return _value(x)

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g @ Jac.apply(x)

    return F.apply


def _verify(impl, **kw):
    return sj.verify(impl, _spec(), at={"x": POINT}, order=2, **kw)


def test_a_right_hessian_from_a_different_formula_passes():
    report = _verify(_with_hessian(_hessian_by_hand))
    assert report.verdict == "pass", report
    assert "impl-reverse-over-reverse" in report.routes and "finite-diff" in report.routes
    # the Function has no jvp: the compositions through forward mode are named as not formed, with why
    for name in ("forward-over-reverse", "reverse-over-forward", "forward-over-forward"):
        assert any(n.startswith(f"impl-{name} not formed: no jvp staticmethod") for n in report.notes), report.notes


@pytest.mark.parametrize("wrong", [
    pytest.param(lambda H: H.transpose(0, 1), id="transposed-blocks"),
    pytest.param(lambda H: -H, id="sign-flipped"),
    pytest.param(lambda H: H * (1 + 1e-4), id="1e-4-relative"),
])
def test_a_wrong_hessian_fails_and_is_named(wrong):
    report = _verify(_with_hessian(lambda x: wrong(_hessian_by_hand(x))))
    assert report.verdict == "fail", report
    assert report.odd_one_out == "impl-reverse-over-reverse"
    assert report.worst.kind == "second" and report.worst.label().startswith("d2 out[")
    assert report.reproduce.endswith("order=2)  # impl, spec: yours")


def test_check_order_2_passes_with_every_composition_named():
    f = sj.function("sin(x) * x[0] + exp(x[1] * x[2])", x=(3,))
    report = sj.check(f, order=2, x=POINT)
    assert report.verdict == "pass", report
    assert report.routes == ("symbolic", "autograd-reverse-over-reverse", "autograd-forward-over-reverse",
                             "autograd-reverse-over-forward", "autograd-forward-over-forward", "finite-diff")
    assert "order=2" in report.reproduce


def test_check_order_2_several_inputs_mixed_blocks():
    f = sj.function("tanh(W @ x)", W=(2, 3), x=(3,))
    rng = np.random.default_rng(1)
    report = sj.check(f, order=2, W=rng.normal(size=(2, 3)), x=rng.normal(size=3))
    assert report.verdict == "pass", report
    # the exact side matches torch's mixed block d2/dW dx
    from symjac.backends import torch_backend

    W, x = torch.tensor(rng.normal(size=(2, 3))), torch.tensor(rng.normal(size=3))
    fn = lambda W, x: torch_backend.forward(f, {"W": W, "x": x})  # noqa: E731
    fn(W, x)
    theirs = torch.func.jacrev(torch.func.jacrev(fn, argnums=0), argnums=1)(W, x).numpy()
    ours = f.hessian(("W", "x")).evaluate(W=W.numpy(), x=x.numpy())
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)


def test_float32_builtins_are_not_false_alarms():
    spec = sj.function("sigmoid(x) * tanh(x)", x=(4,))
    report = sj.verify(lambda x: torch.sigmoid(x) * torch.tanh(x), spec, order=2, samples=5, dtype=np.float32)
    assert report.verdict == "pass", report
    assert report.dtype == "float32" or report.run.worst.dtype == "float32"


def test_classic_autograd_function_gets_double_backward():
    class Square(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 2

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x  # wrong: d/dx x**2 is 2x, so the second derivative is 3 instead of 2

    spec = sj.function("x ** 2", x=(2,))
    report = sj.verify(Square.apply, spec, order=2, at={"x": [0.5, 2.0]})
    assert "impl-double-backward" in report.routes
    assert any("setup_context" in n for n in report.notes)
    assert report.verdict == "fail" and report.odd_one_out == "impl-double-backward"


def _det_hessian_by_hand(X):
    """d2 det / dX_ij dX_kl = det(X) (inv_ji inv_lk - inv_li inv_jk) (Jacobi's formula, twice)."""
    inv = np.linalg.inv(X)
    return np.linalg.det(X) * (np.einsum("ji,lk->ijkl", inv, inv) - np.einsum("li,jk->ijkl", inv, inv))


def test_forward_over_forward_of_det_against_the_truth():
    """torch 2.13's jacfwd(jacfwd(linalg.det)) and jacrev(jacfwd(...)) are wrong at invertible
    matrices; symjac must fail exactly the compositions that are wrong, whatever torch version."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 3)) * 0.3 + 2 * np.eye(3)
    truth = _det_hessian_by_hand(X)
    t = torch.tensor(X)
    wrong = []
    for name, (outer, inner) in {"reverse-over-reverse": ("jacrev", "jacrev"), "forward-over-reverse": ("jacfwd", "jacrev"),
                                 "reverse-over-forward": ("jacrev", "jacfwd"), "forward-over-forward": ("jacfwd", "jacfwd")}.items():
        value = getattr(torch.func, outer)(getattr(torch.func, inner)(torch.linalg.det))(t).numpy()
        if not np.allclose(value, truth, rtol=1e-9, atol=1e-9):
            wrong.append(f"impl-{name}")
    report = sj.verify(torch.linalg.det, sj.function("det(X)", X=(3, 3)), order=2, at={"X": X})
    if wrong:
        assert report.verdict == "fail" and report.odd_one_out == ", ".join(wrong), report
        assert "impl-forward-over-forward" in wrong  # the finding (docs/findings.md), on torch 2.13
    else:
        pytest.skip(f"torch {torch.__version__} computes every composition of det right; symjac: {report.verdict}")


def test_bad_order_and_batch_are_clear_errors():
    f = sj.function("sin(x)", x=(2,))
    with pytest.raises(sj.InvalidArgumentError, match="order: must be 1 .* or 2 .*; received 3"):
        sj.check(f, order=3, x=[0.1, 0.2])
    with pytest.raises(sj.InvalidArgumentError, match="jacobian: a candidate Jacobian is checked at order=1"):
        sj.check(f, order=2, jacobian=np.eye(2), x=[0.1, 0.2])
    with pytest.raises(sj.InvalidArgumentError, match="kind: order=2 and batch= compose"):
        sj.verify(lambda x: x, f, order=2, kind="jacobian", at={"x": [0.1, 0.2]})


def test_property_search_shrinks_a_second_order_failure():
    report = sj.verify(_with_hessian(lambda x: -_hessian_by_hand(x)), _spec(), order=2, samples=10)
    assert report.verdict == "fail"
    cx = report.run.counterexample
    assert cx is not None and cx.odd_one_out == "impl-reverse-over-reverse"
    assert "order=2" in cx.reproduce and "order=2" in report.reproduce
    # shrunk: the sign flip is wrong wherever H != 0, and Hypothesis shrinks toward small numbers
    assert max(abs(v) for v in cx.point["x"]) <= 2.0


def test_check_samples_order_2_passes_on_catalog_functions():
    from symjac import _catalog

    for name in ("softmax", "logdet", "layer"):
        report = sj.check(_catalog.entry(name).function(), order=2, samples=3)
        assert report.verdict == "pass", (name, str(report))


def test_cli_order_2():
    import io

    from symjac._cli import main

    out = io.StringIO()
    code = main(["check", "x[0] ** 3 * x[1]", "--input", "x=2", "--at", "x=[0.5, 2.0]", "--order", "2"], out=out)
    assert code == 0, out.getvalue()
    assert "symbolic vs autograd-forward-over-forward" in out.getvalue()
    assert "order=2" in out.getvalue()
    err = io.StringIO()
    assert main(["check", "sin(x)", "--input", "x=2", "--at", "x=[0.5, 2.0]", "--order", "3"], out=io.StringIO(), err=err) == 2


def test_pytest_fixture_fails_a_wrong_second_derivative_with_the_route_named():
    from symjac._pytest_plugin import SymjacAssert

    fixture = SymjacAssert(None, None)
    assert fixture.verify(_with_hessian(_hessian_by_hand), _spec(), order=2, at={"x": POINT}).verdict == "pass"
    with pytest.raises(pytest.fail.Exception, match="odd one out: impl-reverse-over-reverse"):
        fixture.verify(_with_hessian(lambda x: -_hessian_by_hand(x)), _spec(), order=2, at={"x": POINT})


def test_double_backward_of_det_at_a_singular_matrix_against_the_truth():
    """At X = 0 (3x3) the Hessian of det is exactly 0 (each entry is a 1x1 cofactor of a 3x3 matrix
    of zeros); torch 2.13's jacrev(jacrev(det)) is NaN there. symjac's verdict follows the truth."""
    Z = np.zeros((3, 3))
    from torch.func import jacfwd, jacrev

    values = {
        "impl-reverse-over-reverse": jacrev(jacrev(torch.linalg.det))(torch.tensor(Z)).numpy(),
        "impl-forward-over-reverse": jacfwd(jacrev(torch.linalg.det))(torch.tensor(Z)).numpy(),
        "impl-reverse-over-forward": jacrev(jacfwd(torch.linalg.det))(torch.tensor(Z)).numpy(),
        "impl-forward-over-forward": jacfwd(jacfwd(torch.linalg.det))(torch.tensor(Z)).numpy(),
    }
    wrong = [name for name, v in values.items() if not np.allclose(v, 0.0, atol=1e-12)]
    report = sj.verify(torch.linalg.det, sj.function("det(X)", X=(3, 3)), order=2, at={"X": Z})
    if not wrong:
        assert report.verdict == "pass", report
    else:
        assert report.verdict == "fail" and report.odd_one_out == ", ".join(wrong), report
