"""The one table of operations: each row names an operation of `symjac.ops` and says how it is called.

Two front-ends read this table and nothing else for their vocabulary:

- the text language (`symjac._parse`): which names may be called, with how many positional
  arguments, which literal keyword options (`axis=1`, `keepdim=True`) and what they cost;
- the torch tracer (`symjac._trace`): each aten op of a traced graph is interpreted by calling
  the implementation of one row here (`ROWS_BY_NAME[...]`), never by math of its own.

A row: `name` (the text language's name, also the `symjac.ops` attribute), `implementation`
(the function on symbolic arrays), `arity` (the range of positional array arguments; `None` as
the upper end for any number), `keywords` (literal options and their kinds: "int", "bool",
"ints" for an int or a tuple of ints, "shape" for a tuple of ints), `text` (callable from
expression text; comparisons are written `a > b` instead), `int_arguments` (positional arguments
are int literals, as in `eye(3)`), `elementwise` and `bounded_argument` (facts the parser's
budgets use), `latex` and `domain` (what docs/expression-language.md shows). Shape rules are
`symjac.ops._SHAPE_RULES[name]`, one per row, which `ops` itself calls.

Adding an operation is adding its function to `symjac.ops` (with its shape rule) and one row here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from symjac import ops

__all__ = ["Operation", "OPERATIONS", "TEXT_FUNCTIONS", "KEYWORD_KINDS"]

#: The kinds of literal keyword values: what the text may write for each.
KEYWORD_KINDS = {
    "int": "an int literal",
    "bool": "True or False",
    "ints": "an int literal or a tuple of int literals",
    "shape": "a tuple of int literals",
}


@dataclass(frozen=True)
class Operation:
    """One row of the vocabulary (see the module docstring)."""

    name: str
    implementation: Callable[..., Any]
    arity: tuple[int, int | None] = (1, 1)
    keywords: Mapping[str, str] = field(default_factory=dict)
    text: bool = True
    int_arguments: bool = False
    elementwise: bool = False
    bounded_argument: bool = False
    latex: str = ""
    domain: str = "all reals"

    @property
    def shape(self) -> Callable[..., tuple[int, ...]]:
        """The shape rule: argument shapes (and keyword options) -> output shape, or ShapeError."""
        return ops._SHAPE_RULES[self.name]

    def signature(self) -> str:
        low, high = self.arity
        if self.int_arguments:
            names = ["n"]
        elif high is None:
            names = ["a", "b", "..."]
        else:
            names = ["x"] if high == 1 else ["a", "b", "c"][:high]
        options = [f"{key}=..." for key in self.keywords]
        return f"{self.name}({', '.join(names + options)})"


_REDUCE = {"axis": "ints", "keepdim": "bool"}


def _row(name: str, **kwargs: Any) -> Operation:
    return Operation(name, getattr(ops, name), **kwargs)


_ROWS = (
    # elementwise, one argument
    _row("exp", elementwise=True, bounded_argument=True, latex=r"e^{x}"),
    _row("log", elementwise=True, latex=r"\log x", domain="x > 0"),
    _row("sin", elementwise=True, bounded_argument=True, latex=r"\sin x"),
    _row("cos", elementwise=True, bounded_argument=True, latex=r"\cos x"),
    _row("tan", elementwise=True, bounded_argument=True, latex=r"\tan x",
         domain="cos x != 0"),
    _row("tanh", elementwise=True, latex=r"\tanh x"),
    _row("sqrt", elementwise=True, latex=r"\sqrt{x}", domain="x > 0 (differentiable)"),
    _row("abs", elementwise=True, latex=r"|x|", domain="kink at 0"),
    _row("relu", elementwise=True, latex=r"\max(0, x)", domain="kink at 0"),
    _row("sigmoid", elementwise=True, bounded_argument=True,
         latex=r"\frac{1}{1 + e^{-x}}"),
    _row("erf", elementwise=True, latex=r"\operatorname{erf} x"),
    _row("asin", elementwise=True, latex=r"\arcsin x", domain="-1 < x < 1"),
    _row("acos", elementwise=True, latex=r"\arccos x", domain="-1 < x < 1"),
    _row("atan", elementwise=True, latex=r"\arctan x"),
    _row("sinh", elementwise=True, latex=r"\sinh x"),
    _row("cosh", elementwise=True, latex=r"\cosh x"),
    # elementwise, several arguments (broadcasting)
    _row("atan2", arity=(2, 2), latex=r"\operatorname{atan2}(y, x)",
         domain="(x, y) != (0, 0); branch cut on x < 0, y = 0"),
    _row("maximum", arity=(2, 2), latex=r"\max(a, b)", domain="kink at a = b"),
    _row("minimum", arity=(2, 2), latex=r"\min(a, b)", domain="kink at a = b"),
    _row("clamp", arity=(2, 3), latex=r"\min(\max(x, \ell), h)",
         domain="kinks at x = l and x = h"),
    _row("where", arity=(3, 3), latex=r"\begin{cases} a & c \\ b & \text{otherwise} \end{cases}",
         domain="kink on the boundary of c"),
    # conditions (written a > b in text)
    *(_row(name, arity=(2, 2), text=False) for name in ("gt", "ge", "lt", "le", "eq", "ne")),
    # reductions
    _row("sum", keywords=_REDUCE, latex=r"\sum_i x_i"),
    _row("mean", keywords=_REDUCE, latex=r"\frac{1}{N} \sum_i x_i"),
    _row("prod", keywords=_REDUCE, latex=r"\prod_i x_i"),
    _row("var", keywords={**_REDUCE, "correction": "int"},
         latex=r"\frac{1}{N - c} \sum_i (x_i - \bar{x})^2"),
    _row("max", keywords=_REDUCE, latex=r"\max_i x_i", domain="kink where two entries tie"),
    _row("min", keywords=_REDUCE, latex=r"\min_i x_i", domain="kink where two entries tie"),
    _row("logsumexp", keywords=_REDUCE, bounded_argument=True,
         latex=r"\log \sum_i e^{x_i}"),
    _row("norm", keywords={**_REDUCE, "ord": "int"}, latex=r"\lVert x \rVert_2",
         domain="x != 0 (differentiable)"),
    _row("softmax", keywords={"axis": "int"}, bounded_argument=True,
         latex=r"\frac{e^{x_i}}{\sum_j e^{x_j}}"),
    # stable primitives (symjac._stable): finite wherever the function is
    _row("log_softmax", keywords={"axis": "int"}, bounded_argument=True,
         latex=r"x_i - \log \sum_j e^{x_j}"),
    _row("softplus", elementwise=True, bounded_argument=True, latex=r"\log(1 + e^{x})"),
    _row("logsigmoid", elementwise=True, bounded_argument=True, latex=r"-\log(1 + e^{-x})"),
    _row("log1p", elementwise=True, latex=r"\log(1 + x)", domain="x > -1"),
    _row("expm1", elementwise=True, bounded_argument=True, latex=r"e^{x} - 1"),
    _row("logaddexp", arity=(2, 2), bounded_argument=True, latex=r"\log(e^{a} + e^{b})"),
    # linear algebra (leading axes of det/inv/solve/matmul are batch axes)
    _row("transpose", latex=r"x^\top"),
    _row("mm", arity=(2, 2), latex=r"A B"),
    _row("matmul", arity=(2, 2), latex=r"A B"),
    _row("bmm", arity=(2, 2), latex=r"A_b B_b"),
    _row("dot", arity=(2, 2), latex=r"a^\top b"),
    _row("outer", arity=(2, 2), latex=r"a b^\top"),
    _row("kron", arity=(2, 2), latex=r"A \otimes B"),
    _row("trace", latex=r"\operatorname{tr} X"),
    _row("det", latex=r"\det X"),
    _row("inv", latex=r"X^{-1}", domain="det X != 0"),
    _row("solve", arity=(2, 2), latex=r"A^{-1} b", domain="det A != 0"),
    # shapes
    _row("reshape", keywords={"shape": "shape"}, latex=r"\operatorname{reshape}(x)"),
    _row("permute", keywords={"axes": "shape"}, latex=r"\operatorname{permute}(x)"),
    _row("swapaxes", keywords={"axis1": "int", "axis2": "int"},
         latex=r"\operatorname{swapaxes}(x)"),
    _row("concatenate", arity=(1, None), keywords={"axis": "int"},
         latex=r"[a \; b]"),
    _row("stack", arity=(1, None), keywords={"axis": "int"}, latex=r"[a; b]"),
    _row("diagonal", keywords={"offset": "int", "axis1": "int", "axis2": "int"},
         latex=r"\operatorname{diag}(X)"),
    _row("diag", latex=r"\operatorname{diag}(x)"),
    _row("eye", int_arguments=True, latex=r"I_n"),
    _row("index", keywords={"key": "key"}, text=False),
    _row("gather", arity=(1, 1), keywords={"axis": "int", "indices": "ints"}, text=False),
)

#: name -> row, every operation of the vocabulary (the tracer reads these).
OPERATIONS: Mapping[str, Operation] = MappingProxyType({row.name: row for row in _ROWS})
#: name -> row, the operations expression text may call by name.
TEXT_FUNCTIONS: Mapping[str, Operation] = MappingProxyType(
    {row.name: row for row in _ROWS if row.text})
