"""Issue 11, items 3-5: cotangents and tangents that mean something, domains users can steer, and
the contract of what a backward returns (`symjac._cotangents`, `symjac.strategies`, `symjac._backward_contract`)."""

import numpy as np
import pytest
from hypothesis import given, settings

import symjac as sj
from symjac import _cotangents
from symjac.strategies import DEFAULT_REACH, inputs

torch = pytest.importorskip("torch")


def _fn(name, forward, backward):
    class Fn(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *xs):
            ctx.save_for_backward(*xs)
            return forward(*xs)

        @staticmethod
        def backward(ctx, g):
            return backward(g, *ctx.saved_tensors)

    Fn.__name__ = Fn.__qualname__ = name
    return Fn.apply


SQUARES = sj.function("sum(x ** 2)", x=(3,))


# -- item 3: cotangents and tangents -----------------------------------------------------------------
def test_a_scalar_loss_whose_backward_ignores_grad_output_is_caught():
    impl = _fn("Loss", lambda x: (x ** 2).sum(), lambda g, x: 2 * x)  # should be 2 * x * g
    report = sj.verify(impl, SQUARES, samples=10, seed=0)
    assert report.verdict == "fail", str(report)
    cx = report.run.counterexample
    assert cx.odd_one_out.startswith("impl-vjp")
    assert "ignores grad_output or uses it non-linearly" in cx.reason
    assert cx.worst.kind in ("vjp", "vjp-sum")
    # the Jacobian alone (a cotangent of 1) agrees: only the cotangent check sees it
    assert all(p.ok for p in cx.pairs if p.routes[1] in ("impl-value", "impl-reverse"))


def test_the_same_scalar_loss_done_right_passes_in_both_dtypes():
    impl = _fn("Loss", lambda x: (x ** 2).sum(), lambda g, x: 2 * x * g)
    for dtype in ("float64", "float32"):
        report = sj.verify(impl, SQUARES, samples=20, seed=1, dtype=dtype)
        assert report.verdict == "pass", str(report)
        assert {"impl-vjp", "impl-vjp-sum"} <= {p.routes[1] for p in report.pairs}


def test_a_backward_using_grad_output_non_linearly_is_caught_though_unit_cotangents_agree():
    spec = sj.function("sin(x)", x=(3,))
    impl = _fn("Sin", torch.sin, lambda g, x: g.abs() * torch.cos(x))  # right for every e_k
    report = sj.verify(impl, spec, samples=20, seed=0)
    assert report.verdict == "fail", str(report)
    cx = report.run.counterexample
    assert [p.ok for p in cx.pairs if p.routes[1] == "impl-reverse"] == [True]
    assert "impl-vjp" in cx.odd_one_out


def test_a_jvp_that_is_wrong_only_off_the_unit_tangents_is_caught():
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
            return t.abs() * torch.cos(ctx.x)  # right for every unit tangent e_c

    report = sj.verify(Sin.apply, sj.function("sin(x)", x=(2,)), samples=20, seed=0)
    assert report.verdict == "fail", str(report)
    assert report.odd_one_out.startswith("impl-jvp")


def test_correct_torch_code_passes_the_tangent_checks_too():
    spec = sj.function("tanh(W @ x)", W=(2, 3), x=(3,))
    report = sj.verify(lambda W, x: torch.tanh(W @ x), spec, samples=20, seed=0, bound=3)
    assert report.verdict == "pass", str(report)
    assert {"impl-vjp", "impl-vjp-sum", "impl-jvp", "impl-jvp-sum"} <= {p.routes[1] for p in report.pairs}


def test_cotangents_are_readable_never_zero_or_one_seeded_and_stated():
    key = _cotangents.point_key({"x": np.array([1.0, 2.0])})
    a = _cotangents.draw(50, seed=3, point_key=key, stream=0)
    assert set(np.abs(a)) <= set(_cotangents.VALUES) and (a > 0).any() and (a < 0).any()
    assert not np.any(np.abs(a) == 1.0) and not np.any(a == 0.0)
    assert np.array_equal(a, _cotangents.draw(50, seed=3, point_key=key, stream=0))
    assert not np.array_equal(a, _cotangents.draw(50, seed=4, point_key=key, stream=0))
    assert not np.array_equal(a, _cotangents.draw(50, seed=3, point_key=key, stream=1))
    report = sj.verify(lambda x: (x ** 2).sum(), SQUARES, at={"x": [1.0, 2.0, 3.0]})
    again = sj.verify(lambda x: (x ** 2).sum(), SQUARES, at={"x": [1.0, 2.0, 3.0]})
    notes = [n for n in report.notes if n.startswith("reverse mode also checked with cotangents v1 = [")]
    assert len(notes) == 1 and notes == [n for n in again.notes if n.startswith("reverse mode also")]
    assert any(n.startswith("forward mode also checked with tangents t1 = [") for n in report.notes)


# -- item 4: domains -----------------------------------------------------------------------------------
SOFTPLUS = sj.function("log(1 + exp(x))", x=(3,))


def _softplus_threshold_on_the_wrong_side():
    # torch.nn.functional.softplus switches to the identity beyond 20; this backward does it below -20
    return _fn("Softplus", lambda x: torch.logaddexp(x, torch.zeros_like(x)),
               lambda g, x: torch.where(x < -20, g, g * torch.sigmoid(x)))


def test_default_draws_reach_far_beyond_3_so_a_bug_beyond_20_is_caught():
    # the default 100 draws: a far point (1 in 2) has each entry beyond -20 with odds 1 in 16, so 100
    # points miss x < -20 with odds about 1e-4; the draws are the same on every machine (strategies.Draws)
    report = sj.verify(_softplus_threshold_on_the_wrong_side(), SOFTPLUS, seed=0)
    assert report.verdict == "fail", str(report)
    assert min(report.point["x"]) < -20
    # the old fixed range [-3, 3] never sees it
    assert sj.verify(_softplus_threshold_on_the_wrong_side(), SOFTPLUS, samples=100, seed=0, bound=3).verdict == "pass"


def test_bound_widens_and_narrows_the_draws_and_is_in_the_reproduction_line():
    seen = []

    def impl(x):
        seen.append(float(x.detach().abs().max()))
        return torch.log1p(torch.exp(x))

    report = sj.verify(impl, SOFTPLUS, samples=30, seed=0, bound=2.0)
    assert max(seen) <= 2.0
    assert "bound=2.0" in report.reproduce
    seen.clear()

    def sine(x):
        seen.append(float(x.detach().abs().max()))
        return torch.sin(x)

    assert sj.verify(sine, sj.function("sin(x)", x=(3,)), samples=60, seed=0, bound=500.0).verdict == "pass"
    assert 40.0 < max(seen) <= 500.0
    f = sj.function("sin(x)", x=(3,))
    assert sj.check(f, samples=10, seed=0, bound=100.0).verdict == "pass"


@settings(max_examples=60, deadline=None)
@given(inputs(sj.function("sum(x)", x=(4,))))
def test_far_points_stay_within_the_reach(values):
    assert np.all(np.abs(values["x"]) <= DEFAULT_REACH)


def test_a_share_of_default_draws_is_far():
    seen = []

    @settings(max_examples=200, deadline=None, database=None)
    @given(inputs(sj.function("sum(x)", x=(3,))))
    def collect(values):
        seen.append(np.abs(values["x"]).max())

    collect()
    far = np.mean(np.asarray(seen) > 3.0)
    assert 0.05 < far < 0.5, far
    assert max(seen) > 20.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"bound": 0.1}, "bound: must be a finite number > 0.25"),
        ({"bound": float("inf")}, "bound: must be a finite number > 0.25"),
        ({"bound": True}, "bound: must be a finite number > 0.25"),
        ({"roles": {"y": "posdef"}}, "roles: f has no input named 'y'"),
        ({"roles": {"x": "spd"}}, "roles['x']: flags must be among"),
    ],
)
def test_bad_domain_options_are_clear_errors(kwargs, message):
    with pytest.raises(sj.SymjacError, match=message.replace("[", r"\[").replace("]", r"\]")):
        sj.verify(lambda x: torch.sin(x), sj.function("sin(x)", x=(3,)), samples=5, **kwargs)


def test_domain_options_need_drawn_points():
    f = sj.function("sin(x)", x=(3,))
    with pytest.raises(sj.SymjacError, match="bound, roles: choose how points are drawn"):
        sj.verify(lambda x: torch.sin(x), f, at={"x": [1.0, 2.0, 3.0]}, bound=5.0)
    with pytest.raises(sj.SymjacError, match="bound, roles: choose how points are drawn"):
        sj.check(f, x=[1.0, 2.0, 3.0], bound=5.0)


def _cholesky_logdet():
    class LogDet(torch.autograd.Function):
        @staticmethod
        def forward(ctx, X):
            L = torch.linalg.cholesky(X)
            ctx.save_for_backward(L)
            return 2 * torch.log(torch.diagonal(L)).sum()

        @staticmethod
        def backward(ctx, g):
            (L,) = ctx.saved_tensors
            return g * torch.cholesky_inverse(L)

    return LogDet.apply


def test_a_cholesky_based_implementation_gets_positive_definite_inputs_with_roles():
    spec = sj.function("log(det(X))", X=(3, 3))
    for dtype in ("float64", "float32"):
        report = sj.verify(_cholesky_logdet(), spec, samples=20, seed=0, roles={"X": "posdef"}, dtype=dtype)
        assert report.verdict == "pass", str(report)
        assert report.run.inputs == {"X": "posdef"}
        X = np.array(report.point["X"])
        assert np.allclose(X, X.T) and np.linalg.eigvalsh(X).min() > 0


@settings(max_examples=40, deadline=None)
@given(inputs(sj.function("trace(X @ X)", X=(3, 3)), roles={"X": "symmetric"}))
def test_symmetric_role_draws_symmetric_matrices(values):
    assert np.array_equal(values["X"], values["X"].T)


def test_symmetric_role_lets_an_eigh_based_implementation_pass():
    class SumSqEig(torch.autograd.Function):
        @staticmethod
        def forward(ctx, X):
            ctx.save_for_backward(X)
            return (torch.linalg.eigvalsh(X) ** 2).sum()

        @staticmethod
        def backward(ctx, g):
            (X,) = ctx.saved_tensors
            return 2 * g * X

    spec = sj.function("trace(X @ X)", X=(3, 3))
    assert sj.verify(SumSqEig.apply, spec, samples=20, seed=0, roles={"X": "symmetric"}).verdict == "pass"
    # on non-symmetric matrices eigvalsh reads one triangle: a different function, and verify says so
    assert sj.verify(SumSqEig.apply, spec, samples=20, seed=0).verdict == "fail"


def test_integer_class_targets_are_constants_of_the_spec():
    targets = torch.tensor([2, 0])
    onehot = np.eye(3)[targets.numpy()]
    spec = sj.function("-sum(T * log(softmax(Z))) / 2", Z=(2, 3), consts={"T": onehot.tolist()})
    report = sj.verify(lambda Z: torch.nn.functional.cross_entropy(Z, targets), spec, samples=20, seed=0, bound=3)
    assert report.verdict == "pass", str(report)


# -- item 5: the backward's contract -----------------------------------------------------------------
XY = sj.function("x * y", x=(3,), y=(3,))


@pytest.mark.parametrize(
    "name, backward, rule, where",
    [
        ("NoneGrad", lambda g, x, y: (g * y, None), "none", "input 'y'"),
        ("Count", lambda g, x, y: g * y, "count", "all inputs"),
        ("Shape", lambda g, x, y: ((g * y).sum(), g * x), "shape", "input 'x'"),
        ("Dtype", lambda g, x, y: (g * y, (g * x).float()), "dtype", "input 'y'"),
        ("MutatesGrad", lambda g, x, y: (lambda h: (h * y, h * x))(g.mul_(1.5) / 1.5), "mutation", "grad_output"),
    ],
)
def test_each_broken_rule_is_named_with_its_input(name, backward, rule, where):
    report = sj.verify(_fn(name, lambda x, y: x * y, backward), XY, samples=5, seed=0)
    assert report.verdict == "fail", str(report)
    assert report.odd_one_out == "impl-backward"
    assert f"backward contract, rule '{rule}', {where}:" in report.reason


def test_mutating_an_input_is_caught():
    def backward(g, x, y):
        grads = (g * y, g * x)
        x.add_(1.0)  # corrupts the caller's tensor
        return grads

    report = sj.verify(_fn("MutatesX", lambda x, y: x * y, backward), XY, samples=5, seed=0)
    assert report.verdict == "fail"
    assert "rule 'mutation', input 'x'" in report.reason or "rule 'mutation', a saved tensor" in report.reason


def test_a_nondeterministic_backward_fails_beyond_rounding_and_is_noted_within_it():
    gen = torch.Generator().manual_seed(0)

    def noisy(scale):
        def backward(g, x, y):
            return g * y * (1 + scale * torch.rand(x.shape, generator=gen, dtype=x.dtype)), g * x

        return backward

    bad = sj.verify(_fn("Noisy", lambda x, y: x * y, noisy(1e-3)), XY, samples=5, seed=0)
    assert bad.verdict == "fail" and "rule 'deterministic', input 'x'" in bad.reason
    assert "two runs of the backward with the same grad_output differ by" in bad.reason
    fine = sj.verify(_fn("Jitter", lambda x, y: x * y, noisy(1e-14)), XY, at={"x": [1.0, 2.0, 3.0], "y": [0.5, 1.5, 2.5]})
    assert fine.verdict == "pass", str(fine)
    assert any(n.startswith("the backward is nondeterministic: two runs differ by up to") for n in fine.notes)


def test_wrt_checks_only_some_inputs_and_allows_none_for_the_others():
    impl = _fn("OnlyX", lambda x, y: x * y, lambda g, x, y: (g * y, None))
    report = sj.verify(impl, XY, samples=10, seed=0, wrt="x")
    assert report.verdict == "pass", str(report)
    assert "wrt=['x']" in report.reproduce
    assert any("with respect to x only" in n for n in report.notes)
    # a wrong gradient for x is still caught under wrt="x"
    wrong = _fn("OnlyXWrong", lambda x, y: x * y, lambda g, x, y: (2 * g * y, None))
    assert sj.verify(wrong, XY, samples=10, seed=0, wrt="x").verdict == "fail"
    with pytest.raises(sj.SymjacError, match="wrt: the spec has no input 'z'"):
        sj.verify(impl, XY, samples=5, wrt=["z"])


def test_a_correct_function_keeps_the_contract_in_float32_and_float64():
    impl = _fn("Mul", lambda x, y: x * y, lambda g, x, y: (g * y, g * x))
    for dtype in ("float64", "float32"):
        assert sj.verify(impl, XY, samples=10, seed=0, dtype=dtype).verdict == "pass"


# -- item 4: the CLI and the pytest fixture take the domain options -----------------------------------
def test_cli_check_draws_points_with_samples_and_bound():
    import io

    from symjac._cli import main

    out, err = io.StringIO(), io.StringIO()
    argv = ["check", "log(1 + exp(x))", "--input", "x=3", "--samples", "10", "--seed", "2", "--bound", "30", "--timeout", "0"]
    assert main(argv, out=out, err=err) == 0, err.getvalue()
    text = out.getvalue()
    assert "over " in text and "(samples=10, seed=2): PASS" in text
    assert "samples=10, seed=2, bound=30.0)" in text
    out, err = io.StringIO(), io.StringIO()
    assert main(["check", "sin(x)", "--input", "x=3", "--at", "x=[1, 2, 3]", "--bound", "5", "--timeout", "0"],
                out=out, err=err) == 2
    assert "bound, roles: choose how points are drawn" in err.getvalue()
    out, err = io.StringIO(), io.StringIO()
    assert main(["check", "sin(x)", "--input", "x=3", "--samples", "5", "--bound", "0.1", "--timeout", "0"],
                out=out, err=err) == 2
    assert "--bound: must be a finite number > 0.25; received '0.1'" in err.getvalue()


pytest_plugins = ["pytester"]

PLUGIN_TEST = '''
import torch
import symjac

spec = symjac.function("log(1 + exp(x))", x=(3,))

class Softplus(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.logaddexp(x, torch.zeros_like(x))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return torch.where(x < -20, g, g * torch.sigmoid(x))

def test_softplus(symjac_assert):
    symjac_assert.verify(Softplus.apply, spec, samples=100, bound=3)
'''


def test_fixture_bound_option_overrides_the_tests_bound(pytester):
    pytester.makepyfile(PLUGIN_TEST)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)  # bound=3 cannot see x < -20
    result = pytester.runpytest("-p", "no:cacheprovider", "--symjac-bound", "40")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*bound=40.0*"])
    bad = pytester.runpytest("--symjac-bound", "x")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
