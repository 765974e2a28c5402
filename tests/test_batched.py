"""batch=B: every first-order (and with order=2, second-order) route under torch.func.vmap over B
points, in both nesting orders (vmap(jacfwd) / jacfwd(vmap), ...), each point against its exact
values; the report names the batch point and the nesting that is off."""

import numpy as np
import pytest

import symjac as sj
from symjac._second_order import BATCHED, BATCHED_SECOND

torch = pytest.importorskip("torch")


def _batch(seed=0, n=3, B=3):
    rng = np.random.default_rng(seed)
    return np.stack([rng.normal(size=(n, n)) * 0.3 + 2 * np.eye(n) for _ in range(B)])


def test_check_batch_runs_every_nesting_and_passes():
    f = sj.function("sin(x) * x[0]", x=(3,))
    xb = np.random.default_rng(2).normal(size=(3, 3))
    report = sj.check(f, batch=3, x=xb)
    assert report.verdict == "pass", report
    for name in BATCHED:
        assert f"autograd-{name}" in report.routes
    assert report.points_tried == 3 and "batch=3" in report.reproduce
    assert "batch point 2: pass" in report.notes[-1]


def test_check_batch_order_2_runs_every_second_order_nesting():
    f = sj.function("x[0] * exp(x[1])", x=(2,))
    report = sj.check(f, batch=2, order=2, x=[[0.1, 0.2], [0.3, -0.4]])
    assert report.verdict == "pass", report
    for name in BATCHED_SECOND:
        assert f"autograd-{name}" in report.routes


def _adjugate(X):
    return np.linalg.det(X) * np.linalg.inv(X).T


def test_vmap_of_jacfwd_of_det_against_the_truth():
    """torch 2.13's vmap(jacfwd(linalg.det)) is wrong at every batch point but the first
    (docs/findings.md); symjac must name exactly the batched routes that are wrong."""
    XB = _batch()
    truth = np.stack([_adjugate(X) for X in XB])
    t = torch.tensor(XB)
    from torch.func import jacfwd, jacrev, vmap

    batched = {"impl-vmap(jacfwd)": vmap(jacfwd(torch.linalg.det))(t), "impl-vmap(jacrev)": vmap(jacrev(torch.linalg.det))(t)}
    wrong = {name: [b for b in range(3) if not np.allclose(v[b].numpy(), truth[b], rtol=1e-9, atol=1e-9)]
             for name, v in batched.items()}
    report = sj.verify(torch.linalg.det, sj.function("det(X)", X=(3, 3)), batch=3, at={"X": XB})
    if not any(wrong.values()):
        pytest.skip(f"torch {torch.__version__} batches jacfwd(det) right; symjac: {report.verdict}")
    assert wrong["impl-vmap(jacrev)"] == []
    assert report.verdict == "fail", report
    assert "impl-vmap(jacfwd)" in report.odd_one_out.split(", ")
    assert "impl-vmap(jacrev)" not in report.odd_one_out
    assert report.worst.batch_index in wrong["impl-vmap(jacfwd)"]
    assert f"at batch point {report.worst.batch_index} of 3" in report.reason
    assert report.worst.label().endswith(f"at batch point {report.worst.batch_index}")


def test_solve_is_wrong_under_vmap_of_jacfwd_too():
    """Found by benchmarks/compositions.py: vmap(jacfwd(linalg.solve)) (A's derivative)."""
    XB = _batch(seed=3)
    b = np.array([1.0, -2.0, 0.5])
    spec = sj.function("solve(A, b)", A=(3, 3), consts={"b": b.tolist()})
    tb = torch.tensor(b)
    impl = lambda A: torch.linalg.solve(A, tb)  # noqa: E731
    truth = np.stack([-np.einsum("ik,j->ijk", np.linalg.inv(A), np.linalg.solve(A, b)) for A in XB])
    from torch.func import jacfwd, vmap

    got = vmap(jacfwd(impl))(torch.tensor(XB)).numpy()
    wrong = [k for k in range(3) if not np.allclose(got[k], truth[k], rtol=1e-9, atol=1e-9)]
    report = sj.verify(impl, spec, batch=3, at={"A": XB})
    if not wrong:
        pytest.skip(f"torch {torch.__version__} batches jacfwd(solve) right; symjac: {report.verdict}")
    assert report.verdict == "fail" and "impl-vmap(jacfwd)" in report.odd_one_out


def _with_vmap_rule(roll: int):
    """`impl(x) = x**2 * x[[1, 2, 0]]` whose Jacobian is made by a Function with its own vmap rule;
    `roll=1` makes that rule wrong (it hands each batch point its neighbour's Jacobian)."""
    q = [1, 2, 0]

    def gradient(x):
        J = torch.zeros(x.shape[:-1] + (3, 3), dtype=x.dtype)
        for p in range(3):
            J[..., p, p] = 2 * x[..., p] * x[..., q[p]]
            J[..., p, q[p]] = x[..., p] ** 2
        return J

    class Jac(torch.autograd.Function):
        @staticmethod
        def forward(x):
            return gradient(x)

        @staticmethod
        def setup_context(ctx, inputs, output):
            pass

        @staticmethod
        def backward(ctx, v):
            raise RuntimeError("not needed")

        @staticmethod
        def vmap(info, in_dims, x):
            x = x.movedim(in_dims[0], 0) if in_dims[0] is not None else x.expand(info.batch_size, *x.shape)
            return gradient(x).roll(roll, dims=0), 0

    class F(torch.autograd.Function):
        generate_vmap_rule = True

        @staticmethod
        def forward(x):
            return x ** 2 * x[..., q]

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return (g.unsqueeze(-1) * Jac.apply(x)).sum(-2)

    return F.apply


def _spec():
    return sj.function(lambda x: np.array([x[0] ** 2 * x[1], x[1] ** 2 * x[2], x[2] ** 2 * x[0]]), x=(3,))


XB = [[0.7, -1.3, 0.4], [1.1, 0.2, -0.6], [-0.5, 0.9, 1.4]]


def test_a_right_vmap_rule_passes():
    report = sj.verify(_with_vmap_rule(0), _spec(), batch=3, at={"x": XB})
    assert report.verdict == "pass", report
    assert "impl-vmap(jacrev)" in report.routes


def test_a_wrong_vmap_rule_fails_at_the_batched_routes_only():
    report = sj.verify(_with_vmap_rule(1), _spec(), batch=3, at={"x": XB})
    assert report.verdict == "fail", report
    odd = report.odd_one_out.split(", ")
    assert "impl-vmap(jacrev)" in odd and "impl-reverse" not in odd
    assert report.worst.batch_index is not None


def test_batch_shape_must_match():
    f = sj.function("sin(x)", x=(2,))
    with pytest.raises(sj.InvalidArgumentError, match=r"batch: expected the point as a batch of 3 .* received batch shape \(2,\)"):
        sj.check(f, batch=3, x=[[0.1, 0.2], [0.3, 0.4]])
    with pytest.raises(sj.InvalidArgumentError, match="batch: must be an int from 1 to 64"):
        sj.check(f, batch=0, x=[0.1, 0.2])
    with pytest.raises(sj.ShapeError, match="check takes one point"):
        sj.check(f, order=2, x=[[0.1, 0.2], [0.3, 0.4]])


def test_property_search_with_batches_shrinks():
    report = sj.verify(torch.linalg.det, sj.function("det(X)", X=(2, 2)), batch=2, samples=8)
    cx = report.run.counterexample
    if report.verdict != "fail":
        pytest.skip(f"torch {torch.__version__}: no batched disagreement for 2x2 det in 8 samples")
    assert cx is not None and "batch=2" in cx.reproduce
    assert np.asarray(cx.point["X"]).shape == (2, 2, 2)


def test_cli_batch():
    import io

    from symjac._cli import main

    out = io.StringIO()
    code = main(["check", "sin(x) * x[0]", "--input", "x=2", "--at", "x=[[0.5, 2.0], [1.0, -1.0]]", "--batch", "2"], out=out)
    assert code == 0, out.getvalue()
    assert "autograd-vmap(jacfwd)" in out.getvalue() and "batch=2" in out.getvalue()


def test_pytest_fixture_with_batches():
    from symjac._pytest_plugin import SymjacAssert

    fixture = SymjacAssert(None, None)
    with pytest.raises(pytest.fail.Exception, match=r"impl-vmap\(jacrev\)"):
        fixture.verify(_with_vmap_rule(1), _spec(), batch=3, at={"x": XB})


def test_float32_builtins_under_vmap_are_not_false_alarms():
    spec = sj.function("inv(X)", X=(3, 3))
    report = sj.verify(torch.linalg.inv, spec, batch=3, order=2, samples=3, dtype=np.float32)
    assert report.verdict == "pass", report
