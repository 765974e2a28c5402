"""What a backward returns, checked as Julia's ChainRulesTestUtils `test_rrule` does.

`verify` compares the *numbers* a backward produces; this module checks the *contract* a backward
must keep, whatever the numbers. For a custom `torch.autograd.Function` called as `Fn.apply`
(its backward is called directly, through the graph node, so that what it returns is seen before
autograd casts, reshapes or drops it):

| rule | the backward must |
|---|---|
| `count` | return one gradient per input of `forward` |
| `none` | return a tensor, not `None`, for every input that is differentiated (`wrt`); `None` only for the others |
| `shape` | return each gradient in its input's shape (autograd would broadcast or raise) |
| `dtype` | return each gradient in its input's dtype (autograd would cast it silently) |

and for any implementation (a Function or plain torch code, through `torch.autograd.grad`):

| rule | the implementation must |
|---|---|
| `mutation` | leave its inputs and `grad_output` unchanged (forward and backward) |
| `deterministic` | give the same gradients when the backward runs twice; differences within the rounding tolerance are reported in a note with their size, beyond it they fail |

Each violation names the input (or `grad_output`) and the rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RULES", "Violation", "Contract", "check_backward"]

RULES = ("count", "none", "shape", "dtype", "mutation", "deterministic")


@dataclass(frozen=True)
class Violation:
    """One broken rule: the input it concerns (`grad_output` for the cotangent), the rule, in words."""

    input: str
    rule: str
    message: str

    def text(self) -> str:
        return f"backward contract, rule '{self.rule}', {self.input}: {self.message}"


@dataclass(frozen=True)
class Contract:
    violations: tuple[Violation, ...]
    notes: tuple[str, ...]


def _function_class(impl):
    import torch

    owner = getattr(impl, "__self__", None)
    if isinstance(owner, type) and issubclass(owner, torch.autograd.Function) and getattr(impl, "__name__", "") == "apply":
        return owner
    return None


def _same(a, b) -> bool:
    import torch

    return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a, b) or torch.allclose(a, b, rtol=0, atol=0, equal_nan=True))


def check_backward(impl, args: list, names: list[str], wrt: list[int], cotangent: np.ndarray, tolerance, dtype) -> Contract:
    """Run `impl` at `args` (torch tensors, one per input `names`) and its backward with
    `grad_output = cotangent` twice, and check the rules of the module docstring.

    `wrt`: indices of the inputs that are differentiated; `tolerance`: the `ToleranceModel` whose
    rounding bound separates rounding-level nondeterminism (a note) from a failure.
    """
    import torch

    violations: list[Violation] = []
    notes: list[str] = []
    originals = [a.detach().clone() for a in args]
    xs = [a.detach().clone().requires_grad_(i in wrt) for i, a in enumerate(args)]
    out = impl(*xs)
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        return Contract((), ())  # no backward to check; verify's routes report it
    v = torch.as_tensor(np.asarray(cotangent), dtype=out.dtype, device=out.device).reshape(out.shape)
    v_before = v.clone()
    fn_class = _function_class(impl)
    node = out.grad_fn
    direct = fn_class is not None and getattr(type(node), "_forward_cls", None) is fn_class
    chosen = [xs[i] for i in wrt]

    def once(cotangent):
        if direct:
            return _raw_backward(node, cotangent, xs, names, wrt, violations)
        grads = torch.autograd.grad(out, chosen, grad_outputs=cotangent, allow_unused=True, retain_graph=True)
        return {i: g for i, g in zip(wrt, grads) if g is not None}

    runs = [once(v)]
    _mutations(v, v_before, xs, originals, names, violations)
    if not violations:
        try:
            runs.append(once(v_before.clone()))
        except RuntimeError as error:
            if "modified by an inplace operation" not in str(error):
                raise
            violations.append(Violation(
                "a saved tensor", "mutation",
                "the first run of the backward changed a tensor saved for backward in place, so the second could "
                f"not run ({str(error).splitlines()[0][:160]})",
            ))
        _mutations(v, v_before, xs, originals, names, violations)
    if len(runs) == 2 and not violations:
        _determinism(runs, names, tolerance, dtype, violations, notes)
    return Contract(tuple(violations), tuple(notes))


def _mutations(v, v_before, xs, originals, names, violations) -> None:
    if not _same(v, v_before):
        violations.append(Violation("grad_output", "mutation", "the backward changed grad_output in place"))
    for i, (x, original) in enumerate(zip(xs, originals)):
        if not _same(x.detach(), original):
            violations.append(Violation(
                f"input {names[i]!r}", "mutation", "the implementation changed this input in place"
            ))


def _raw_backward(node, v, xs, names, wrt, violations) -> dict:
    """What the Function's backward returns, checked for count, None, shape and dtype."""
    import torch

    with torch.no_grad():  # as autograd's engine runs a backward (create_graph=False)
        raw = node.apply(v)
    raw = raw if isinstance(raw, tuple) else (raw,)
    if len(raw) != len(xs):
        violations.append(Violation(
            "all inputs", "count",
            f"the backward returned {len(raw)} gradient{'s' if len(raw) != 1 else ''} for {len(xs)} inputs "
            f"({', '.join(names)}); it must return one per input of forward (None for a non-differentiable one)",
        ))
        return {}
    found = {}
    for i, (x, g) in enumerate(zip(xs, raw)):
        where = f"input {names[i]!r}"
        if g is None:
            if i in wrt:
                violations.append(Violation(
                    where, "none",
                    "the backward returned None for a differentiated input (autograd reads it as zeros); "
                    "return its gradient, or leave the input out with wrt=",
                ))
            continue
        if not isinstance(g, torch.Tensor):
            violations.append(Violation(where, "none", f"the backward returned a {type(g).__name__}, not a tensor"))
            continue
        if tuple(g.shape) != tuple(x.shape):
            violations.append(Violation(
                where, "shape", f"the gradient has shape {tuple(g.shape)}; the input has shape {tuple(x.shape)}"
            ))
            continue
        if g.dtype != x.dtype:
            violations.append(Violation(
                where, "dtype", f"the gradient is {g.dtype} for a {x.dtype} input (autograd casts it silently)"
            ))
            continue
        if i in wrt:
            found[i] = g.detach().clone()
    return found


def _determinism(runs, names, tolerance, dtype, violations, notes) -> None:
    first, second = runs
    worst = 0.0
    for i in sorted(set(first) & set(second)):
        a = first[i].detach().cpu().numpy().astype(np.float64).reshape(1, -1)
        b = second[i].detach().cpu().numpy().astype(np.float64).reshape(1, -1)
        diff = np.abs(a - b)
        if not diff.size or not np.any(diff > 0):
            continue
        size = float(np.nanmax(np.where(np.isnan(diff), np.inf, diff)))
        worst = max(worst, size)
        bound = tolerance.rounding(a, b, dtype, np.zeros_like(a))
        if np.any(~(diff <= bound)):
            k = int(np.argmax(diff / bound))
            violations.append(Violation(
                f"input {names[i]!r}", "deterministic",
                f"two runs of the backward with the same grad_output differ by {size:.3e} "
                f"(entry {k}: {a[0, k]!r} and {b[0, k]!r}; rounding tolerance {bound[0, k]:.2e})",
            ))
    if worst > 0 and not violations:
        notes.append(f"the backward is nondeterministic: two runs differ by up to {worst:.3e}, within the rounding tolerance")
