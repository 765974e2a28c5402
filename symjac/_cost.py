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

__all__ = ["BYTES", "Estimate", "Features", "MEASURED", "PARSE_SECONDS", "SECONDS", "estimate",
           "operation_seconds", "suggest"]

#: Seconds per unit of the parser's operation count, by operation (the parser's label of the step:
#: a function name, or an operator). `default` prices everything not listed. `det`, `inv`, `solve`
#: and `relu` build results that cost far more later than their count says: a determinant is one
#: node (symjac._determinant) whose Jacobian is n**2 cofactors of (n - 1)**2 entries, counted n**4
#: times the square root of the entries' mean written-out size; `inv`'s Jacobian n**6; `Max(0, e)`
#: asks SymPy's assumption system about `e` when built and again when differentiated. They are
#: priced at the whole job's seconds (build, Jacobians, one check) per unit of the largest measured
#: case, so that the parser refuses them before it builds them (`det`: 12-22 s at 32-36 x 36,
#: `inv`: 11-25 s at 12-14 x 14, measured 2026-12-01 with `symjac.function` + `.jacobians()` +
#: `symjac.check` jobs in fresh processes, load 2-3). `sympy_matrix` prices SymPy's own evaluation
#: of `MatMul`, `MatPow`, `Inverse`, `Determinant` in SymPy input, in the units of
#: `_budget._matrix_cost` (measured when those were written: a 5 x 5 Determinant, 5**7 units, about
#: 10 s; a 4 x 4 Inverse, over 30 s).
PARSE_SECONDS: dict[str, float] = {
    "default": 0.000167,
    "relu": 0.00124,
    "abs": 0.000811,
    "det": 1.8e-05,
    "inv": 5.5e-06,
    "solve": 5.5e-06,
    "sympy_matrix": 1.3e-4,
}

#: Seconds per unit of each `Features` field: building every exact Jacobian, generating the forward
#: and Jacobian code (NumPy and torch) and one `symjac.check` at a point (reverse and forward
#: autograd, finite differences, comparisons; torch imported on first use included in `fixed`).
SECONDS: dict[str, float] = {
    "fixed": 4.6,
    "out_size": 0.0168,
    "in_size": 0.00373,
    "written": 1.22e-05,
    "distinct": 0.0,
    "dag_inputs": 8.56e-05,
    "jacobian_written": 5.36e-07,
    "nonzeros": 0.0,
    "dense": 8.54e-05,
    "branches": 0.000454,
}

#: Bytes per unit of each `Features` field, at the peak (resident set) of the same job.
BYTES: dict[str, float] = {
    "fixed": 2.98e+08,  # the interpreter with SymPy, NumPy and torch loaded
    "out_size": 0.0,
    "in_size": 0.0,
    "written": 0.0,
    "distinct": 0.0,
    "dag_inputs": 1.27e+03,
    "jacobian_written": 0.0,
    "nonzeros": 0.0,
    "dense": 125,
    "branches": 102,
    "in_squared": 149,  # finite differences' stencil: (6 in_size + 1) points of in_size entries
}

#: How the tables were measured: `python benchmarks/calibrate_budgets.py --cap 45`, each case once
#: in a fresh subprocess, on this project's 2-core test machine shared with other helpers' jobs (load
#: average 5-9 during the run, so the seconds are on the high side: a conservative model); the fit is
#: non-negative least squares of the relative error over 27 cases from `X @ X` 8 x 8 to `sum(X)`
#: 64 x 64, after the buildspeed changes (det/inv by cofactor expansion up to 6 x 6, tanh and log of
#: sums without SymPy's zero query, the real-value witness). `BYTES` now prices `in_squared`: `sum(X)`
#: at 64 x 64 peaks at 2.7 GiB (estimated 2.6 GiB; 1.2 GiB before this feature), almost all of it the
#: finite differences' stencil of 24,577 points x 4,096 entries. Zeros are features the fit found no
#: time in on those cases; they stay, so that a re-fit can use them.
MEASURED = "2026-12-01 16:30 UTC, benchmarks/calibrate_budgets.py --cap 45, buildspeed branch d4d8da1"


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
    - `in_squared` (derived): `in_size ** 2`, priced in memory only: `symjac.check`'s finite
      differences evaluate the forward at `6 in_size + 1` stacked points of `in_size` entries each
      (805 MB of points alone for a 64 x 64 input), so peak memory grows with its square.
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

    @property
    def in_squared(self) -> int:
        return self.in_size ** 2

    def priced(self) -> dict[str, int]:
        """The fields the tables price, by name (`fixed` is 1)."""
        return {"fixed": 1} | {name: getattr(self, name) for name in SECONDS | BYTES if name != "fixed"}


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


def suggest(value: float, *, later: bool = False) -> int:
    """A round limit comfortably over `value` (for "raise it to ..." in messages): 2x, rounded up
    to 1, 2 or 5 times a power of ten. `later`: `value` is a build estimate only, and the Jacobian
    and check estimated after it cost at least `SECONDS["fixed"]` more."""
    target = max(2 * (value + (SECONDS["fixed"] if later else 0.0)), 1.0)
    power = 10 ** math.floor(math.log10(target))
    for step in (1, 2, 5, 10):
        if step * power >= target:
            return int(step * power)
    return int(10 * power)  # pragma: no cover
