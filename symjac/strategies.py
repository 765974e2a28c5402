"""Hypothesis strategies: valid inputs of a Function, drawn from its own domain, and random expressions.

Public like `hypothesis.extra.numpy`; importing this module imports Hypothesis (`import symjac` does not).

```python
from hypothesis import given
from symjac.strategies import inputs

spec = symjac.function("log(det(X))", X=(3, 3))

@given(inputs(spec))
def test_mine(values):          # values == {"X": <3x3 float64 array with det(X) > 0>}
    ...
```

The domain (the role of each input, the constraints drawn values must meet) is derived by
`symjac._domain` (`domain`, re-exported here, as are `Domain`, `Constraint`, `FLAGS` and `Draws`);
`inputs` draws its families with Hypothesis, and rejects a value that fails a constraint SymPy did
not prove (`hypothesis.assume`). `Draws` draws the same families from a NumPy `Generator`, without
Hypothesis: `check(samples=...)` and `verify` import no Hypothesis.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from ._domain import (  # noqa: F401 - the domain's public names are this module's too
    DEFAULT_BOUND,
    DEFAULT_MARGIN,
    DEFAULT_REACH,
    FAR_ODDS,
    FAR_STEPS,
    FLAGS,
    Constraint,
    Domain,
    Draws,
    check_number,
    compile_constraints,
    domain,
    dominant,
    effective_flags,
    far_magnitude,
    meets,
    shaped,
    symmetrized,
)
from ._errors import InvalidArgumentError
from ._values import float_dtype

__all__ = ["inputs", "expressions", "domain", "Domain", "Constraint", "FLAGS", "Draws"]


# -- the families as Hypothesis strategies ---------------------------------------------------------
def _floats(lo: float, hi: float, width: int) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, width=width, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def _entries(flags: frozenset[str], bound: float, margin: float, width: int, hi: float | None = None):
    hi = bound if hi is None else hi
    if "positive" in flags:
        return _floats(margin, hi, width)
    if "nonzero" in flags:
        return st.tuples(_floats(margin, hi, width), st.booleans()).map(lambda t: -t[0] if t[1] else t[0])
    return _floats(-hi, hi, width)


def _far_entries(flags: frozenset[str], bound: float, margin: float, width: int, reach: float):
    """Entries of a far point: half from the usual range, half from magnitudes in [bound, reach]."""
    near = _entries(flags, bound, margin, width)
    # about log-uniform magnitudes in [bound, reach]: one of FAR_STEPS geometric bands, uniformly
    # (Hypothesis' floats alone favour the ends of a range), then a point inside it
    far = st.tuples(st.sampled_from(range(FAR_STEPS)), _floats(0.0, 1.0, 64)).map(
        lambda t: _rounded(far_magnitude(t[0], t[1], bound, reach), width)
    )
    if "positive" not in flags:
        far = st.tuples(far, st.booleans()).map(lambda t: -t[0] if t[1] else t[0])
    return st.tuples(st.booleans(), near, far).map(lambda t: t[2] if t[0] else t[1])


def _rounded(x: float, width: int) -> float:
    return float(np.float32(x)) if width == 32 else float(x)


def _input_strategy(inp, flags, dtype: np.dtype, bound: float, margin: float, reach: float | None = None):
    width = 32 if dtype == np.float32 else 64
    size = inp.size
    if "posdef" in flags:
        n = inp.shape[0]
        off = st.lists(_floats(-1.0, 1.0, width), min_size=n * n, max_size=n * n)
        extra = st.lists(_floats(0.0, 1.0, width), min_size=n, max_size=n)

        def build_posdef(parts):
            o, e = parts
            return dominant(symmetrized(np.reshape(o, (n, n))), np.asarray(e), np.ones(n)).astype(dtype)

        return st.tuples(off, extra).map(build_posdef)
    if "invertible" in flags:
        n = inp.shape[0]
        positive_diag = bool({"positive", "posdet"} & flags)
        symmetric = "symmetric" in flags
        off = st.lists(_entries(flags & {"positive", "nonzero"}, bound, margin, width, hi=1.0), min_size=n * n, max_size=n * n)
        extra = st.lists(_floats(0.0, 1.0, width), min_size=n, max_size=n)
        signs = st.just([False] * n) if positive_diag else st.lists(st.booleans(), min_size=n, max_size=n)

        def build(parts):
            o, e, s = parts
            o = np.reshape(o, (n, n))
            x = dominant(symmetrized(o) if symmetric else o, np.asarray(e), np.where(s, -1.0, 1.0))
            return x.astype(dtype)

        return st.tuples(off, extra, signs).map(build)
    elements = _entries(flags, bound, margin, width) if reach is None else _far_entries(flags, bound, margin, width, reach)
    mirror = "symmetric" in flags
    return st.lists(elements, min_size=size, max_size=size).map(
        lambda xs: shaped(np.asarray(xs, dtype=np.float64), inp.shape, mirror).astype(dtype)
    )


def inputs(
    f,
    /,
    *,
    dtype: Any = np.float64,
    bound: float = DEFAULT_BOUND,
    margin: float = DEFAULT_MARGIN,
    roles: Mapping[str, Any] | None = None,
    reach: float = DEFAULT_REACH,
) -> st.SearchStrategy[dict[str, np.ndarray]]:
    """A strategy of valid points of `f`: `{input name: array}` inside its domain.

    - `f`: a `symjac.Function`; `dtype`: float64 (default) or float32 (values are float32-exact).
    - `bound`, `margin`, `roles`: see `domain` (defaults 3.0, 0.25, derived roles).
    - `reach`: largest magnitude of the far draws (default 40.0): one point in `FAR_ODDS` has
      entries out to `reach` (see the module docstring); `reach <= bound` draws none.

    Values are finite, bounded and built inside the domain (see the module docstring); they shrink
    toward simple points (zeros, ones, the identity matrix).

    ```python
    >>> from hypothesis import given
    >>> @given(inputs(symjac.function("sqrt(x)", x=(3,))))
    ... def test_positive(values):
    ...     assert (values["x"] >= 0.25).all()
    >>> test_positive()
    ```
    """
    resolved = float_dtype(dtype)
    dom = domain(f, bound=bound, margin=margin, roles=roles)
    reach = check_number("reach", reach, low=0.0)
    parts = {
        inp.name: _input_strategy(inp, effective_flags(inp, dom.roles[inp.name]), resolved, dom.bound, dom.margin)
        for inp in f.inputs
    }
    strategy = st.fixed_dictionaries(parts)
    if reach > dom.bound:
        far = st.fixed_dictionaries({
            inp.name: _input_strategy(inp, effective_flags(inp, dom.roles[inp.name]), resolved, dom.bound, dom.margin, reach)
            for inp in f.inputs
        })
        # Shrinks toward 0, a near point; a failure only at far points keeps FAR_ODDS - 1.
        strategy = st.tuples(st.integers(0, FAR_ODDS - 1), strategy, far).map(
            lambda t: t[2] if t[0] == FAR_ODDS - 1 else t[1]
        )
    if not dom.checked:
        return strategy
    compiled = f.cached(("symjac-domain-check", dom.checked), lambda: compile_constraints(f, dom.checked))

    def valid(values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        assume(meets(compiled, f, values, dom.margin))
        return values

    return strategy.map(valid)


# -- random expressions ----------------------------------------------------------------------------
#: Input sets `expressions` draws from when `shapes` is not given.
SHAPE_SETS = (
    {"x": (3,)},
    {"X": (2, 2)},
    {"x": (2,), "X": (2, 2)},
    {"s": (), "x": (3,)},
    {"X": (2, 2), "Y": (2, 2)},
    {"W": (2, 3), "x": (3,)},
)
_UNARY = ("sin({})", "cos({})", "tanh({})", "sigmoid({})", "exp({})", "-({})", "({}) ** 2",
          "log(1 + exp({}))", "sqrt(1 + ({}) ** 2)", "abs({})", "relu({})")
_BINARY = ("({}) + ({})", "({}) - ({})", "({}) * ({})", "({}) / (1 + ({}) ** 2)")
_LEAF_ONLY = ("log({})", "sqrt({})", "1 / ({})")


class _Grammar:
    """Expression text of a requested shape, from the inputs' shapes (shapes tracked as it grows)."""

    def __init__(self, draw, shapes: Mapping[str, tuple[int, ...]]):
        self.draw = draw
        self.shapes = dict(shapes)
        self.producible = {()} | set(shapes.values()) | {s[::-1] for s in shapes.values() if len(s) == 2}

    def names(self, shape):
        return sorted(n for n, s in self.shapes.items() if s == shape)

    def leaf(self, shape) -> str:
        draw, options = self.draw, []
        options += self.names(shape)
        options += [f"{n}.T" for n in self.names(shape[::-1]) if len(shape) == 2 and shape[0] != shape[1]]
        if shape == ():
            options += ["2", f"sum({draw(st.sampled_from(sorted(self.shapes)))})"]
        return draw(st.sampled_from(options))

    def expr(self, shape, depth: int, *, top: bool = False) -> str:
        draw = self.draw
        if depth <= 0 or (not top and draw(st.integers(0, 3)) == 0):
            return self.leaf(shape)
        rules = ["unary", "binary", "scale"]
        names = self.names(shape)
        if names:
            rules.append("leaf-only")
        nonscalar = sorted(s for s in self.producible if s != ())
        if shape == ():
            rules += ["reduce"] * bool(nonscalar)
            rules += ["dot"] * any(len(s) == 1 for s in nonscalar)
            rules += ["det"] * bool(self._square_inputs())
        if len(shape) == 1:
            rules += ["matvec"] * bool(self._matvec(shape))
            rules += ["softmax"]
        if len(shape) == 2:
            rules += ["matmul"] * bool(self._matmul(shape))
            rules += ["inv"] * bool(self._square_inputs(shape))
            rules += ["transpose"] * (shape[::-1] in self.producible)
        rule = draw(st.sampled_from(rules))
        sub = depth - 1
        if rule == "unary":
            return draw(st.sampled_from(_UNARY)).format(self.expr(shape, sub))
        if rule == "binary":
            return draw(st.sampled_from(_BINARY)).format(self.expr(shape, sub), self.expr(shape, sub))
        if rule == "scale":
            return f"({self.expr((), sub)}) * ({self.expr(shape, sub)})"
        if rule == "leaf-only":
            return draw(st.sampled_from(_LEAF_ONLY)).format(draw(st.sampled_from(names)))
        if rule == "reduce":
            fn = draw(st.sampled_from(("sum", "mean", "norm", "logsumexp")))
            return f"{fn}({self.expr(draw(st.sampled_from(nonscalar)), sub)})"
        if rule == "dot":
            n = draw(st.sampled_from(sorted(s for s in nonscalar if len(s) == 1)))
            return f"dot({self.expr(n, sub)}, {self.expr(n, sub)})"
        if rule == "det":
            return f"det({draw(st.sampled_from(self._square_inputs()))})"
        if rule == "softmax":
            return f"softmax({self.expr(shape, sub)})"
        if rule == "matvec":
            k = draw(st.sampled_from(self._matvec(shape)))
            return f"({self.expr((shape[0], k), sub)}) @ ({self.expr((k,), sub)})"
        if rule == "matmul":
            k = draw(st.sampled_from(self._matmul(shape)))
            return f"({self.expr((shape[0], k), sub)}) @ ({self.expr((k, shape[1]), sub)})"
        if rule == "inv":
            return f"inv({draw(st.sampled_from(self._square_inputs(shape)))})"
        return f"({self.expr(shape[::-1], sub)}).T"

    def _square_inputs(self, shape=None):
        return sorted(n for n, s in self.shapes.items() if len(s) == 2 and s[0] == s[1] and (shape is None or s == shape))

    def _matvec(self, shape):
        return sorted(s[1] for s in self.producible if len(s) == 2 and s[0] == shape[0] and (s[1],) in self.producible)

    def _matmul(self, shape):
        return sorted(
            s[1] for s in self.producible
            if len(s) == 2 and s[0] == shape[0] and (s[1], shape[1]) in self.producible
        )


def expressions(*, shapes: Mapping[str, Any] | None = None, max_depth: int = 3) -> st.SearchStrategy:
    """A strategy of random, well-shaped `symjac.Function`s built from expression text.

    - `shapes`: the inputs and their shapes (`{"x": (3,), "X": (2, 2)}`); by default one of
      `SHAPE_SETS` is drawn. `max_depth`: the deepest nesting of operations (1 to 6).

    Expressions use elementwise functions, arithmetic, reductions, `@`, transposes, `softmax`,
    `dot`, and `det`/`inv`/`log`/`sqrt`/`1 / x` of inputs (whose domain `inputs` then respects).
    `Function.source` holds the text, so a failure reproduces from the report.

    ```python
    >>> from hypothesis import given
    >>> @given(expressions(max_depth=2))
    ... def test_builds(f):
    ...     assert f.source
    >>> test_builds()
    ```
    """
    if isinstance(max_depth, bool) or not isinstance(max_depth, int) or not 1 <= max_depth <= 6:
        raise InvalidArgumentError(f"max_depth: must be an int from 1 to 6; received {max_depth!r}")
    if shapes is not None:
        from ._function import function

        function("0", **shapes)  # validates names and shapes now, with the usual messages
        shape_sets = st.just({k: tuple(v) if not isinstance(v, int) else (v,) for k, v in shapes.items()})
    else:
        shape_sets = st.sampled_from(SHAPE_SETS)

    @st.composite
    def build(draw):
        from ._function import function

        chosen = draw(shape_sets)
        grammar = _Grammar(draw, chosen)
        target = draw(st.sampled_from(sorted(grammar.producible)))
        text = grammar.expr(target, max_depth, top=True)
        return function(text, **chosen)

    return build()
