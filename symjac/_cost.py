"""The cost model: seconds and memory of symbolic work, estimated from structure known before it.

A budget a user can read is a time and a memory size. symjac estimates both from numbers that
are cheap to know before the work they describe, and `symjac._budget` refuses a job only when
the estimate is over `Limits.max_seconds` or `Limits.max_memory`:

- while text is parsed, before each operation builds anything: the parser's operation counts
  (`_parse._Evaluator.call_work`: `X @ X` 1.5 n**3, `det` n**5, sign checks of `relu` ...), each
  priced by `operation_seconds` at the rate of its kind of operation (`PARSE_SECONDS`);
- once the output exists, before any differentiation: its `Features` (one walk over its DAG,
  `_budget.check_output`), priced by `estimate` as building the exact Jacobians, generating their
  code and one `symjac.check` at a point (`SECONDS`, `BYTES`).

The coefficients are data, in the tables below, and nothing else in symjac holds a cost.
`benchmarks/calibrate_budgets.py` re-measures them on a machine (each case in a subprocess with
a cap) and prints new tables to paste here; the model is linear in its features so that a fit is
a non-negative least-squares problem and each coefficient reads as "seconds per unit".

Base layer: knows no other symjac module.
"""

from __future__ import annotations

import dataclasses
import math

__all__ = ["BYTES", "Estimate", "Features", "PARSE_SECONDS", "SECONDS", "estimate", "operation_seconds",
           "suggest"]

#: Seconds per unit of the parser's operation count, by operation (the parser's label of the step:
#: a function name, or an operator). `default` prices everything not listed. `relu`, `abs`, `max`,
#: `min`, `where` ask SymPy's assumption system about their arguments (`Max(0, e)` compares `e` with
#: 0 through `is_positive` on the whole written-out argument), which costs about 30x an arithmetic
#: step and is paid again when the result is differentiated: their rate includes that.
#: Measured by benchmarks/calibrate_budgets.py (parse phase of `X @ X` n = 8..16, `det(X)` n = 5..6,
#: `inv(X)` n = 4..5, `relu(X @ X)` n = 4..8) on the project's 2-core test machine, shared.
PARSE_SECONDS: dict[str, float] = {
    "default": 2.0e-5,
    "relu": 1.4e-3,
    "abs": 4.0e-4,
    # SymPy's own evaluation of MatMul/MatPow/Inverse/Determinant of SymPy input, in the units of
    # `_budget._matrix_cost` (measured when those were written: a 5 x 5 Determinant, 5**7 units,
    # about 10 s; a 4 x 4 Inverse, 4**9 units, over 30 s)
    "sympy_matrix": 1.3e-4,
}

#: Seconds per unit of each `Features` field: building every exact Jacobian, generating the forward
#: and Jacobian code (NumPy and torch) and one `symjac.check` at a point (reverse and forward
#: autograd, finite differences, comparisons). Measured by benchmarks/calibrate_budgets.py on the
#: project's 2-core test machine (medians of 3 runs per case, each in a subprocess; cases: `X @ X`
#: n = 8..16, `softmax(x)` n = 32..64, `inv(X)` n = 3..5, `det(X)` n = 4..6, `tanh(W @ x + b)` n =
#: 16..32, attention n = 4..8, `inv(inv(X))` n = 3, `relu(X @ X)` n = 4..6), with the DAG-aware code
#: generation of issue 14 item 2 (each distinct node printed once). Before it, code generation
#: walked every entry written out and `jacobian_written` cost about 1.5e-5 s per unit (attention
#: 8 x 8: 175 s of compile).
SECONDS: dict[str, float] = {
    "fixed": 1.0,  # a check's fixed costs: routes set up, torch and SymPy code paths warmed
    "out_size": 1.0e-3,  # per output entry: a reverse-mode pass, an entry of generated code
    "in_size": 1.0e-3,  # per input entry: forward-mode columns, finite-difference steps
    "written": 2.0e-5,  # per output node written out: forward code, sizes, printing
    "distinct": 1.0e-4,  # per distinct node of the output DAG
    "dag_inputs": 4.0e-5,  # per (distinct node x input entries in it): differentiation by each symbol
    "jacobian_written": 3.0e-6,  # per (written-out size of an entry x input entries in it)
    "nonzeros": 4.0e-4,  # per Jacobian nonzero: one derivative, one generated column, comparisons
    "dense": 5.0e-5,  # per dense Jacobian entry (outputs x input entries): routes' matrices
    "branches": 3.6e-4,  # per (written-out size x inputs) under Max/Min/Piecewise/Abs: assumption queries
}

#: Bytes per unit of each `Features` field, peak: SymPy nodes (about 1 KiB each with their caches),
#: their derivatives, and the dense float64 matrices of one check (about a dozen: each route's
#: Jacobian, tolerances, errors, finite differences' steps).
BYTES: dict[str, float] = {
    "fixed": 200 * 2**20,  # the interpreter with SymPy, NumPy and torch loaded
    "out_size": 0.0,
    "in_size": 0.0,
    "written": 0.0,
    "distinct": 1024.0,
    "dag_inputs": 512.0,
    "jacobian_written": 64.0,
    "nonzeros": 4096.0,
    "dense": 12 * 8.0,
    "branches": 0.0,
}


@dataclasses.dataclass(frozen=True)
class Features:
    """What the cost of a Function's derivatives depends on, read from its output before any work.

    - `out_size`, `in_size`: scalar output entries, scalar input entries (all inputs).
    - `dense`: `out_size * in_size`, the entries of the dense Jacobians.
    - `nonzeros`: the sum over output entries of the input entries each contains (an upper bound on
      the Jacobian's nonzeros).
    - `written`: the output entries' nodes written out (shared subexpressions counted each time).
    - `distinct`: distinct nodes of the output DAG.
    - `dag_inputs`: the sum over distinct nodes of the input entries each contains.
    - `jacobian_written`: the sum over output entries of (written-out size x input entries in it).
    - `branches`: the same sum over `Max`/`Min`/`Piecewise`/`Abs` nodes (distinct ones).
    """

    out_size: int
    in_size: int
    dense: int
    nonzeros: int
    written: int
    distinct: int
    dag_inputs: int
    jacobian_written: int
    branches: int

    def priced(self) -> dict[str, int]:
        """The fields the tables price, by name (`fixed` is 1)."""
        return {"fixed": 1} | {name: getattr(self, name) for name in SECONDS if name != "fixed"}


@dataclasses.dataclass(frozen=True)
class Estimate:
    """An estimate: seconds, peak memory in MiB, and the share of each feature in the seconds."""

    seconds: float
    mib: float
    parts: dict[str, float]

    def largest(self, count: int = 2) -> str:
        """The features that cost most, for messages: `'8,192 Jacobian nonzeros (3.3 s), ...'`."""
        words = {
            "fixed": "fixed costs", "out_size": "output entries", "in_size": "input entries", "written": "output nodes written out", "distinct": "distinct nodes",
            "dag_inputs": "(node x input) pairs", "jacobian_written": "written-out (entry x input) pairs",
            "nonzeros": "Jacobian nonzeros", "dense": "dense Jacobian entries",
            "branches": "(node x input) pairs under max/abs/piecewise",
        }
        ranked = sorted(((s, k) for k, s in self.parts.items()), reverse=True)[:count]
        return ", ".join(f"{words[k]} {s:.1f} s" for s, k in ranked if s >= 0.05) or "fixed costs"


def estimate(features: Features) -> Estimate:
    """Seconds and peak MiB of building `features`' exact Jacobians, their code and one check."""
    units = features.priced()
    parts = {name: SECONDS[name] * units[name] for name in SECONDS}
    memory = sum(BYTES[name] * units[name] for name in BYTES)
    return Estimate(sum(parts.values()), memory / 2**20, parts)


def operation_seconds(label: str, work: int) -> float:
    """Seconds the parser's step `label` (an operation's name) of `work` units is estimated to take."""
    return PARSE_SECONDS.get(label, PARSE_SECONDS["default"]) * work


def suggest(value: float) -> int:
    """A round limit comfortably over `value` (for "raise it to ..." in messages): 2x, rounded up
    to 1, 2 or 5 times a power of ten."""
    target = max(2 * value, 1.0)
    power = 10 ** math.floor(math.log10(target))
    for step in (1, 2, 5, 10):
        if step * power >= target:
            return int(step * power)
    return int(10 * power)  # pragma: no cover
