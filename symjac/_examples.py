"""The five examples of the tutorial symjac grew from, as data, and a runner that cross-checks them.

Each example is the tutorial's `torch.autograd.functional.jacobian` call, restated as a symjac
Function; its exact Jacobian, evaluated, must print exactly as the tutorial's tensor does.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable, TextIO

import numpy as np

__all__ = ["Example", "EXAMPLES", "ExampleResult", "run_example", "run_examples"]


@dataclass(frozen=True)
class Example:
    number: int
    title: str
    tutorial: str  # the tutorial's torch code
    expr: str
    shapes: dict[str, tuple[int, ...]]
    consts: dict[str, Any]
    make_input: Callable[[], np.ndarray]
    expected: str  # exactly what torch prints, whitespace collapsed

    @property
    def input_name(self) -> str:
        return next(iter(self.shapes))


def _randn_3x2() -> np.ndarray:
    # torch.randn((3, 2)) in the tutorial: float32 normal draws; the Jacobian is all ones for any draw.
    return np.random.default_rng(2).standard_normal((3, 2)).astype(np.float32)


EXAMPLES: tuple[Example, ...] = (
    Example(
        1, "sum of a 2x2 matrix",
        "torch.autograd.functional.jacobian(lambda val: val.sum(), torch.tensor([[1.0, 2.0], [3.0, 4.0]]))",
        "sum(X)", {"X": (2, 2)}, {},
        lambda: np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32),
        "tensor([[1., 1.], [1., 1.]])",
    ),
    Example(
        2, "matrix product with a constant",
        "torch.autograd.functional.jacobian(lambda x: torch.mm(mat1, x), mat2)",
        "mm(A, X)", {"X": (2, 2)}, {"A": [[2.0, 3.0], [4.0, 5.0]]},
        lambda: np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32),
        "tensor([[[[2., 0.], [3., 0.]], [[0., 2.], [0., 3.]]], [[[4., 0.], [5., 0.]], [[0., 4.], [0., 5.]]]])",
    ),
    Example(
        3, "sum of a random 3x2 matrix",
        "torch.autograd.functional.jacobian(lambda val: val.sum(), torch.randn((3, 2)))",
        "sum(X)", {"X": (3, 2)}, {},
        _randn_3x2,
        "tensor([[1., 1.], [1., 1.], [1., 1.]])",
    ),
    Example(
        4, "matrix square",
        "torch.autograd.functional.jacobian(lambda ele: torch.mm(ele, ele), torch.tensor([[2.0, 3.0], [4.0, 5.0]]))",
        "mm(M, M)", {"M": (2, 2)}, {},
        lambda: np.array([[2.0, 3.0], [4.0, 5.0]], dtype=np.float32),
        "tensor([[[[ 4., 4.], [ 3., 0.]], [[ 3., 7.], [ 0., 3.]]], [[[ 4., 0.], [ 7., 4.]], [[ 0., 4.], [ 3., 10.]]]])",
    ),
    Example(
        5, "sum of a float64 NumPy array",
        "torch.autograd.functional.jacobian(lambda val: val.sum(), torch.tensor(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])))",
        "sum(X)", {"X": (2, 3)}, {},
        lambda: np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=np.float64),
        "tensor([[1., 1., 1.], [1., 1., 1.]], dtype=torch.float64)",
    ),
)


@dataclass(frozen=True)
class ExampleResult:
    example: Example
    jacobian: np.ndarray
    printed: str  # torch's print of the exact Jacobian, whitespace collapsed
    report: Any  # symjac.Report

    @property
    def ok(self) -> bool:
        return self.printed == self.example.expected and self.report.ok


def collapse(text: str) -> str:
    """torch's multi-line print on one line, as the tutorial shows it."""
    return " ".join(text.split())


def run_example(example: Example) -> ExampleResult:
    from ._check import check
    from ._function import function
    from .backends import torch_backend

    torch = torch_backend.import_torch()
    f = function(example.expr, consts=example.consts, **example.shapes)
    value = example.make_input()
    jac = f.jacobian().evaluate(**{example.input_name: value})
    printed = collapse(str(torch.from_numpy(jac)))
    report = check(f, **{example.input_name: value})
    return ExampleResult(example, jac, printed, report)


def run_examples(out: TextIO = sys.stdout) -> list[ExampleResult]:
    """Run the five tutorial examples, printing each Jacobian as torch prints it and its check."""
    import torch

    results = []
    for example in EXAMPLES:
        result = run_example(example)
        results.append(result)
        name = example.input_name
        print(f"Example {example.number}: {example.title}", file=out)
        print(f"  tutorial : {example.tutorial}", file=out)
        consts = f", consts={example.consts!r}" if example.consts else ""
        print(f"  symjac   : symjac.function({example.expr!r}, {name}={example.shapes[name]!r}{consts})", file=out)
        print(f"  input    : {name} = {example.make_input().tolist()} ({example.make_input().dtype})", file=out)
        print("  Jacobian Matrix:", file=out)
        for line in str(torch.from_numpy(result.jacobian)).splitlines():
            print(f"    {line}", file=out)
        same = "same as the tutorial" if result.printed == example.expected else f"DIFFERS from the tutorial's {example.expected}"
        pairs = ", ".join(f"{' vs '.join(p.routes)} {p.max_abs_error:.1e}" for p in result.report.pairs)
        print(f"  printed  : {same}", file=out)
        print(f"  check    : {result.report.verdict} (max abs errors: {pairs})", file=out)
        print(file=out)
    good = sum(r.ok for r in results)
    print(f"{good}/{len(results)} examples reproduced exactly with all routes agreeing", file=out)
    return results
