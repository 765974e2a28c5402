"""Numeric values that used to escape raw (issue 15): every one passes `symjac._values`, the one
validator, and is either handled as documented or refused with a SymjacError naming the argument."""

import numpy as np
import pytest

import symjac as sj

torch = pytest.importorskip("torch")

F = sj.function("sin(x) * 2", x=(3,))
EXPECTED = 2 * np.sin(np.ones(3))


def _nested():
    import warnings

    with warnings.catch_warnings():  # torch: "nested tensors are in prototype stage"
        warnings.simplefilter("ignore")
        return torch.nested.nested_tensor([torch.ones(3), torch.ones(3)])


REFUSED = [
    ("meta", lambda: torch.ones(3, device="meta"), "x: a tensor on the meta device has no values"),
    ("sparse", lambda: torch.ones(3).to_sparse(), r"x: only dense \(strided\) tensors are accepted; received layout torch.sparse_coo"),
    ("nested", _nested, "x: nested tensors are not accepted"),
    ("torch.Size", lambda: torch.Size([1, 2, 3]), r"x: must be numbers; received torch.Size \(a shape, not values\)"),
    ("conj complex", lambda: torch.ones(3, dtype=torch.complex64).conj(), "x: must hold real numbers"),
    ("empty batch", lambda: np.ones((0, 3)), r"x: an empty batch has no point to evaluate; received shape \(0, 3\)"),
    ("masked", lambda: np.ma.masked_array([1.0, 2.0, 3.0], mask=[0, 1, 0]),
     r"x: a masked array with masked entries \(the first at index \(1,\)\)"),
]


@pytest.mark.parametrize("make, fragment", [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
@pytest.mark.parametrize("route", ["evaluate", "jacobian", "check"])
def test_values_without_plain_numbers_are_refused_naming_the_argument(make, fragment, route):
    value = make()
    with pytest.raises(sj.InvalidArgumentError, match=fragment):
        if route == "evaluate":
            F(x=value)
        elif route == "jacobian":
            F.jacobian().evaluate(x=value)
        else:
            sj.check(F, x=value)


@pytest.mark.parametrize("make, dtype", [
    (lambda: torch.ones(3, dtype=torch.bfloat16), np.float64),  # found: TypeError unsupported ScalarType
    (lambda: torch.ones(3, dtype=torch.float16), np.float64),
    (lambda: torch.full((3,), -1.0)._neg_view(), np.float32),  # negative bit: found RuntimeError
    (lambda: torch.ones(3, requires_grad=True), np.float32),
    (lambda: torch.ones(3, dtype=torch.float64, requires_grad=True), np.float64),
    (lambda: np.ma.masked_array([1.0, 1.0, 1.0], mask=[0, 0, 0]), np.float64),  # nothing masked: its data
], ids=["bfloat16", "float16", "neg bit", "requires_grad f32", "requires_grad f64", "masked, none masked"])
def test_tensors_are_read_through_their_values(make, dtype):
    value = make()
    out = F(x=value)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, EXPECTED, rtol=1e-6)
    assert sj.check(F, x=value).verdict == "pass"


def test_neg_bit_values_are_the_tensors_values():
    value = torch.tensor([1.0, 2.0, 3.0])._neg_view()  # reads as -1, -2, -3
    np.testing.assert_allclose(F(x=value), 2 * np.sin([-1.0, -2.0, -3.0]), rtol=1e-6)


def test_a_constant_that_requires_grad_is_refused():
    # found: RuntimeError "Can't call numpy() on Tensor that requires grad"
    with pytest.raises(sj.InvalidArgumentError, match=r"consts\['A'\]: a tensor that requires grad is a constant here"):
        sj.function("A @ x", x=(2,), consts={"A": torch.ones(2, 2, requires_grad=True)})
    f = sj.function("A @ x", x=(2,), consts={"A": torch.ones(2, 2, requires_grad=True).detach()})
    np.testing.assert_allclose(f(x=[1.0, 2.0]), [3.0, 3.0])


@pytest.mark.parametrize("make, fragment", [r[1:] for r in REFUSED if r[0] not in ("empty batch",)],
                         ids=[r[0] for r in REFUSED if r[0] not in ("empty batch",)])
def test_constants_take_the_same_validator(make, fragment):
    with pytest.raises(sj.InvalidArgumentError, match=fragment.replace("x:", r"consts\['A'\]:")):
        sj.function("A * y", y=(), consts={"A": make()})


def test_extra_keys_in_a_jacobian_dict_are_refused():
    f = sj.function("x * y", x=(), y=())
    with pytest.raises(sj.InvalidArgumentError, match="jacobian: f has no input named 'z'; its inputs are x, y"):
        sj.check(f, x=1.0, y=2.0, jacobian={"x": 2.0, "y": 1.0, "z": 0.0})
    assert sj.check(f, x=1.0, y=2.0, jacobian={"x": 2.0, "y": 1.0}).verdict == "pass"


def test_verify_at_takes_the_same_validator():
    with pytest.raises(sj.InvalidArgumentError, match="x: a tensor on the meta device"):
        sj.verify(lambda x: torch.sin(x) * 2, F, at={"x": torch.ones(3, device="meta")})
