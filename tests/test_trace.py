"""Torch code in (issue 13): torch functions traced into exact Functions.

Each row of TABLE is an ML function written in torch, with the same function written in the
text language. The traced Function's exact Jacobian must equal torch.autograd.functional.jacobian
in float64, and the text Function must be the same function (values and Jacobians at random
points to 1e-12).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import symjac as sj  # noqa: E402
from symjac import TraceError  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

_rng = np.random.default_rng(1234)
W1 = np.round(_rng.normal(size=(3, 4)), 3)
W2 = np.round(_rng.normal(size=(2, 3)), 3)
K = np.array([0.5, -1.0, 0.25])
TARGET = [1, 0, 2]
ONE_HOT = np.eye(5)[TARGET]
LABELS = np.array([1.0, 0.0, 1.0])
RHS = np.array([1.0, -2.0, 0.5])


def t(a):
    return torch.tensor(a, dtype=torch.float64)


def _spd(x):  # logdet, det and inv rows: a point where the matrix is well conditioned
    return x @ x.T + np.eye(x.shape[0])


# name, torch function, shapes, text, consts for the text, point transform
TABLE = [
    ("mlp", lambda x: torch.tanh(t(W2) @ torch.tanh(t(W1) @ x)).sum(), {"x": (4,)},
     "sum(tanh(B @ tanh(A @ x)))", {"A": W1, "B": W2}, None),
    ("layer_norm", lambda x: F.layer_norm(x, (4,)), {"x": (2, 4)},
     "(x - mean(x, axis=1, keepdim=True)) / sqrt(var(x, axis=1, keepdim=True, correction=0) + 1e-5)",
     {}, None),
    ("rms_norm", lambda x: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6), {"x": (2, 3)},
     "x / sqrt(mean(x**2, axis=-1, keepdim=True) + 1e-6)", {}, None),
    ("attention", lambda x: F.scaled_dot_product_attention(x[None], x[None], x[None])[0], {"x": (3, 4)},
     "softmax(x @ x.T / sqrt(4), axis=-1) @ x", {}, None),
    ("gelu_erf", F.gelu, {"x": (4,)}, "x * (1 + erf(x / sqrt(2))) / 2", {}, None),
    ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), {"x": (4,)},
     "x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))", {}, None),
    ("cross_entropy", lambda x: F.cross_entropy(x, torch.tensor(TARGET)), {"x": (3, 5)},
     "mean(logsumexp(x, axis=1) - sum(x * Y, axis=1))", {"Y": ONE_HOT}, None),
    ("bce_with_logits", lambda x: F.binary_cross_entropy_with_logits(x, t(LABELS)), {"x": (3,)},
     "mean((1 - y) * x + log(1 + exp(-x)))", {"y": LABELS}, None),
    ("conv1d", lambda x: F.conv1d(x.view(1, 1, 5), t(K).view(1, 1, 3)).view(-1), {"x": (5,)},
     "stack(dot(k, x[0:3]), dot(k, x[1:4]), dot(k, x[2:5]))", {"k": K}, None),
    ("logdet", torch.logdet, {"x": (3, 3)}, "log(det(x))", {}, _spd),
    ("det", torch.det, {"x": (3, 3)}, "det(x)", {}, None),
    ("inv", torch.linalg.inv, {"x": (2, 2)}, "inv(x)", {}, _spd),
    ("solve", lambda x: torch.linalg.solve(x, t(RHS)), {"x": (3, 3)}, "solve(x, b)", {"b": RHS}, _spd),
    ("normalize", lambda x: F.normalize(x, dim=1), {"x": (2, 3)},
     "x / maximum(norm(x, axis=1, keepdim=True), 1e-12)", {}, None),
    ("cosine", lambda x: F.cosine_similarity(x[0], x[1], dim=0), {"x": (2, 3)},
     "dot(x[0] / maximum(norm(x[0]), 1e-8), x[1] / maximum(norm(x[1]), 1e-8))", {}, None),
    ("slicing", lambda x: x[1:, ::2], {"x": (3, 4)}, "x[1:, ::2]", {}, None),
    ("reshape", lambda x: x.reshape(3, 2) * 2, {"x": (2, 3)}, "reshape(x, shape=(3, 2)) * 2", {}, None),
    ("permute", lambda x: x.permute(2, 0, 1).sin(), {"x": (2, 2, 3)}, "sin(permute(x, axes=(2, 0, 1)))",
     {}, None),
    ("transpose", lambda x: x.T @ x, {"x": (2, 3)}, "x.T @ x", {}, None),
    ("cat_stack", lambda x: torch.stack([torch.cat([x, 2 * x]), torch.cat([x**2, x.sin()])]), {"x": (3,)},
     "stack(concatenate(x, 2 * x), concatenate(x**2, sin(x)))", {}, None),
    ("bmm", lambda x: torch.bmm(x, x), {"x": (2, 2, 2)}, "x @ x", {}, None),
    ("softmax_axis0", lambda x: torch.softmax(x, 0), {"x": (3, 2)}, "softmax(x, axis=0)", {}, None),
    ("logsumexp_rows", lambda x: torch.logsumexp(x, 1, keepdim=True), {"x": (2, 3)},
     "logsumexp(x, axis=1, keepdim=True)", {}, None),
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.01), {"x": (4,)}, "where(x > 0, x, 0.01 * x)", {}, None),
    ("hardtanh", F.hardtanh, {"x": (4,)}, "clamp(x, -1, 1)", {}, None),
    ("max_rows", lambda x: x.max(dim=1).values, {"x": (2, 3)}, "max(x, axis=1)", {}, None),
    ("std", lambda x: x.std(0), {"x": (3, 2)}, "sqrt(var(x, axis=0))", {}, None),
    ("atan2_asin", lambda x: torch.atan2(x, x**2 + 1) + torch.asin(x / 4), {"x": (3,)},
     "atan2(x, x**2 + 1) + asin(x / 4)", {}, None),
    ("diag_eye", lambda x: torch.diag(torch.diagonal(x)) + torch.eye(2, dtype=x.dtype), {"x": (2, 2)},
     "diag(diagonal(x)) + eye(2)", {}, None),
    ("prod", lambda x: torch.prod(x), {"x": (3,)}, "prod(x)", {}, None),
]


def _point(shapes, transform, seed):
    rng = np.random.default_rng(seed)
    point = {name: rng.uniform(-1.5, 1.5, size=shape) for name, shape in shapes.items()}
    if transform is not None:
        point = {name: transform(v) for name, v in point.items()}
    return point


@pytest.mark.parametrize("row", TABLE, ids=[row[0] for row in TABLE])
def test_traced_jacobian_equals_autograd_and_text(row):
    name, fn, shapes, text, consts, transform = row
    traced = sj.function(fn, **shapes)
    spoken = sj.function(text, consts=consts, **shapes)
    # plain slicing and operators also work on symbolic arrays directly: no trace is needed there
    assert traced.traced_from is None or "specialised to the shapes" in traced.origin
    assert traced.out_shape == spoken.out_shape
    (input_name,) = shapes
    for seed in (1, 2):
        point = _point(shapes, transform, seed)
        x = torch.tensor(point[input_name], dtype=torch.float64)
        expected = torch.autograd.functional.jacobian(fn, x).numpy()
        exact = traced.jacobian().evaluate(**point)
        assert exact.shape == expected.shape
        np.testing.assert_allclose(exact, expected, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(traced(**point), fn(x).numpy(), rtol=1e-12, atol=1e-14)
        # the same Function, said in the text language
        np.testing.assert_allclose(spoken(**point), traced(**point), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(spoken.jacobian().evaluate(**point), exact, rtol=1e-12, atol=1e-13)


def test_table_has_at_least_twenty_ml_functions():
    assert len(TABLE) >= 20


def test_constants_are_exact_rationals():
    f = sj.function(lambda x: x * 0.1 + torch.tensor([0.25, 0.5], dtype=torch.float64), x=(2,))
    import sympy

    x0 = f.inputs[0].symbols[0]
    assert f.output[0] == x0 / 10 + sympy.Rational(1, 4)


# --------------------------------------------------------------------------- custom Functions


class Sin2(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return 2 * torch.sin(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 2 * torch.cos(x)


def _variant(backward):
    return type("Variant", (Sin2,), {"backward": staticmethod(backward)})


def _mul_sum_backward(scale):
    class MatVec(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a @ torch.arange(1.0, 4.0, dtype=a.dtype)

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            return scale(g[:, None] * torch.arange(1.0, 4.0, dtype=a.dtype)[None, :])

    return MatVec


def test_custom_function_backward_checked_against_its_own_forward():
    report = sj.verify(Sin2.apply, sj.function(Sin2.apply, x=(4,)), samples=10)
    assert report.verdict == "pass"
    assert any("own forward" in note and "not itself checked" in note for note in report.notes)


@pytest.mark.parametrize("wrong", [
    lambda ctx, g: -g * 2 * torch.cos(ctx.saved_tensors[0]),                       # sign flipped
    lambda ctx, g: g * 2 * torch.cos(ctx.saved_tensors[0]) * (1 + 1e-4),           # 1e-4 relative
    lambda ctx, g: g * 2 * torch.sin(ctx.saved_tensors[0]),                        # wrong formula
], ids=["sign", "relative-1e-4", "formula"])
def test_wrong_custom_backward_is_caught(wrong):
    bad = _variant(wrong)
    report = sj.verify(bad.apply, sj.function(bad.apply, x=(4,)), samples=10)
    assert report.verdict == "fail"


def test_transposed_custom_backward_is_caught():
    good = _mul_sum_backward(lambda v: v)
    bad = _mul_sum_backward(lambda v: v.T.reshape(v.shape))
    assert sj.verify(good.apply, sj.function(good.apply, a=(2, 3)), samples=5).verdict == "pass"
    assert sj.verify(bad.apply, sj.function(bad.apply, a=(2, 3)), samples=5).verdict == "fail"


def test_correct_implementation_from_another_formula_passes_traced_spec():
    spec = sj.function(lambda x: F.silu(x).sum(), x=(3,))
    other = lambda x: (x / (1 + torch.exp(-x))).sum()  # noqa: E731
    for dtype in ("float64", "float32"):
        report = sj.verify(other, spec, samples=20, dtype=dtype)
        assert report.verdict == "pass"
        assert not any("not itself checked" in note for note in report.notes)  # another implementation
    wrong = lambda x: (x / (1 + torch.exp(-x)) * (1 + 1e-4)).sum()  # noqa: E731
    assert sj.verify(wrong, spec, samples=5).verdict == "fail"


@pytest.mark.parametrize("name", ["gelu_erf", "layer_norm", "cross_entropy", "attention", "normalize"])
def test_torch_builtins_in_float32_have_no_false_alarm(name):
    row = next(r for r in TABLE if r[0] == name)
    _, fn, shapes, *_ = row
    assert sj.verify(fn, sj.function(fn, **shapes), samples=10, dtype="float32").verdict == "pass"


# --------------------------------------------------------------------------- modules


def test_module_parameters_become_inputs_and_are_checked():
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 2).double()
    f = sj.function(layer, x=(3,))
    assert f.input_names == ("x", "weight", "bias")
    assert f.module_parameters == ("weight", "bias")
    assert f.jacobian("weight").shape == (2, 2, 3)
    report = sj.verify(layer, f, samples=5)
    assert report.verdict == "pass"


def test_module_parameters_as_constants():
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1)).double()
    f = sj.function(mlp, x=(3,), params="consts")
    assert f.input_names == ("x",)
    x = torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64)
    expected = torch.autograd.functional.jacobian(mlp, x).numpy()
    np.testing.assert_allclose(f.jacobian().evaluate(x=x.numpy()), expected, rtol=1e-10, atol=1e-12)
    inputs = sj.function(mlp, x=(3,))
    assert inputs.input_names == ("x", "p0_weight", "p0_bias", "p2_weight", "p2_bias")


def test_module_in_training_mode_with_dropout_is_refused():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5)).double()
    with pytest.raises(TraceError, match=r"training mode.*eval\(\)"):
        sj.function(net, x=(2,))
    assert sj.function(net.eval(), x=(2,)).out_shape == (2,)


def test_bad_params_option_is_refused():
    with pytest.raises(sj.InvalidArgumentError, match="params: must be"):
        sj.function(torch.nn.Linear(2, 2), x=(2,), params="weights")


# --------------------------------------------------------------------------- refusals


def _branchy(x):
    if x.sum() > 0:
        return x * 2
    return -x


def _leaves_torch(x):
    return x * torch.tensor(x.detach().numpy())


REFUSALS = [
    # refused at the detach() or at the missing data path, whichever the trace meets first
    ("no-data-path", lambda x: torch.tensor(x.detach().numpy()) * 2, "outside torch|no data path|detach"),
    ("numpy-round-trip", _leaves_torch, "outside torch"),
    ("item", lambda x: x * x[0].item(), "data-dependent|read into Python"),
    ("control-flow", _branchy, "data-dependent control flow"),
    ("sort", lambda x: torch.sort(x).values, r"aten\.sort.*sorting"),
    ("eigh", lambda x: torch.linalg.eigh(x @ x.T).eigenvalues, "eigen-decomposition"),
    ("random", lambda x: x * torch.rand(3, dtype=x.dtype), "random numbers"),
    ("dropout", lambda x: F.dropout(x, 0.5), "random numbers"),
    ("rounding", lambda x: torch.floor(x) * x, "rounding"),
    ("detach", lambda x: x.detach() * x, "cuts the derivative"),
    ("mask-index", lambda x: x[x > 0].sum(), "data-dependent"),
    ("several-outputs", lambda x: (torch.sin(x), x * 2), "returns 2 tensors"),
]


@pytest.mark.parametrize("fn, match", [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_untraceable_code_is_refused_with_a_reason(fn, match):
    shape = (3, 3) if fn is REFUSALS[5][1] else (3,)
    with pytest.raises(TraceError, match=match) as info:
        sj.function(fn, x=shape)
    assert isinstance(info.value, sj.SymjacError) and isinstance(info.value, ValueError)


def test_opaque_custom_op_is_refused():
    @torch.library.custom_op("symjac_test::opaque", mutates_args=())
    def opaque(x: torch.Tensor) -> torch.Tensor:
        return x.sin()

    @opaque.register_fake
    def _(x):
        return torch.empty_like(x)

    with pytest.raises(TraceError, match=r"opaque custom op symjac_test\.opaque"):
        sj.function(lambda x: opaque(x) * 2, x=(3,))


def test_op_without_a_rule_is_named():
    with pytest.raises(TraceError, match=r"aten\.cumsum"):
        sj.function(lambda x: torch.cumsum(x, 0), x=(3,))


def test_text_callables_still_take_the_symbolic_path():
    f = sj.function(lambda x: sj.ops.sin(x) * 2, x=(3,))
    assert f.traced_from is None and f.origin is None


def test_traced_function_pickles_with_its_origin():
    import pickle

    f = sj.function(Sin2.apply, x=(2,))
    g = pickle.loads(pickle.dumps(f))
    assert g.traced_from == "Sin2.apply" and g.origin == f.origin
    assert f.traced_from_same(Sin2.apply) and not g.traced_from_same(Sin2.apply)


# --------------------------------------------------------------------------- more torch code


def _causal_softmax(x):
    mask = torch.ones(3, 3).triu(1).bool()
    return x.masked_fill(mask, float("-inf")).softmax(-1)


torch.manual_seed(3)
_MHA = torch.nn.MultiheadAttention(4, 2, batch_first=True).double().eval()
MORE = [
    ("pad", lambda x: F.pad(x, (1, 2), value=0.5), (1, 3)),
    ("causal_softmax", _causal_softmax, (3, 3)),
    ("einsum", lambda x: torch.einsum("ij,kj->ik", x, x), (2, 3)),
    ("chunk", lambda x: torch.cat(x.chunk(2)[::-1]), (4,)),
    ("kl_div", lambda x: F.kl_div(F.log_softmax(x, -1), t([0.2, 0.3, 0.5]), reduction="sum"), (3,)),
    ("cdist", lambda x: torch.cdist(x, x + 1), (2, 3)),
    ("cross", lambda x: torch.linalg.cross(x[0], x[1]), (2, 3)),
    ("multi_head_attention", lambda x: _MHA(x, x, x, need_weights=False)[0], (1, 2, 4)),
    ("group_norm", torch.nn.GroupNorm(2, 4, affine=False).double(), (1, 4, 2)),
    ("avg_pool", lambda x: F.avg_pool2d(x, 2), (1, 2, 4, 4)),
    ("adaptive_avg_pool", lambda x: F.adaptive_avg_pool1d(x, 1), (1, 2, 4)),
    ("conv2d", lambda x: F.conv2d(x, t(np.arange(8.0).reshape(2, 1, 2, 2)), padding=1, stride=2), (1, 1, 3, 3)),
]


@pytest.mark.parametrize("fn, shape", [row[1:] for row in MORE], ids=[row[0] for row in MORE])
def test_more_torch_code_traces_exactly(fn, shape):
    f = sj.function(fn, x=shape, params="consts")
    x = torch.tensor(np.random.default_rng(5).uniform(-1, 1, size=shape))
    expected = torch.autograd.functional.jacobian(fn, x).numpy()
    np.testing.assert_allclose(f.jacobian().evaluate(x=x.numpy()), expected, rtol=1e-10, atol=1e-12)


def test_in_place_mutation_of_a_view_is_refused():
    class Mutates(torch.autograd.Function):  # no setup_context: traced without functionalize
        @staticmethod
        def forward(ctx, x):
            y = x * 1
            y[0].mul_(2)
            return y

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(TraceError, match="mutates a tensor in place"):
        sj.function(Mutates.apply, x=(3,))


def test_tracing_keeps_the_budgets():
    with pytest.raises(sj.TooLargeError, match=r"estimated to take about [0-9.,]+ s .*Limits\.max_seconds"):
        sj.function(torch.linalg.inv, x=(9, 9))
    with pytest.raises(sj.TooLargeError, match=r"Limits\.max_work"):  # the old budget, still a hard cap
        sj.function(torch.linalg.inv, x=(5, 5), limits=sj.Limits(max_work=1000))
    with pytest.raises(sj.TooLargeError, match=r"Limits\.max_entries"):
        sj.function(lambda x: torch.outer(x, x).reshape(-1)[:, None] * x, x=(60,))


def test_repr_says_traced_and_the_shapes():
    f = sj.function(Sin2.apply, x=(2,))
    assert repr(f) == "<symjac.Function traced from torch code Sin2.apply at x=(2,)> -> shape (2,)"


def test_symjac_errors_of_ops_code_are_not_hidden_by_tracing():
    with pytest.raises(sj.ShapeError, match="mm: inner dimensions differ"):
        sj.function(lambda X: sj.ops.mm(X, X), X=(2, 3))


def test_text_callable_sympy_and_torch_give_the_same_function():
    import sympy

    A = np.array([[0.5, -1.0], [2.0, 0.25]])
    by_torch = sj.function(lambda x: torch.tanh(t(A) @ x).sum() * x[0], x=(2,))
    by_text = sj.function("sum(tanh(A @ x)) * x[0]", x=(2,), consts={"A": A})
    by_ops = sj.function(lambda x: sj.ops.sum(sj.ops.tanh(sj.ops.matmul(A, x))) * x[0], x=(2,))
    s0, s1 = sympy.symbols("x[0] x[1]", real=True)
    rows = [sympy.tanh(sympy.Rational(1, 2) * s0 - s1), sympy.tanh(2 * s0 + sympy.Rational(1, 4) * s1)]
    by_sympy = sj.function(sympy.Add(*rows) * s0, x=(2,))
    exact = by_torch.output[()]
    for other in (by_ops, by_sympy):
        assert sympy.simplify(other.output[()] - exact) == 0
    point = {"x": np.array([0.3, -0.7])}
    for other in (by_text, by_ops, by_sympy):
        np.testing.assert_allclose(other.jacobian().evaluate(**point), by_torch.jacobian().evaluate(**point),
                                   rtol=1e-12, atol=1e-14)
