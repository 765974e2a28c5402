"""The benchmark functions, written once per tool: symjac text, plain SymPy, SymEngine, torch, JAX.

A case has one or more inputs, each of a shape fixed by a size n (`Case.inputs(n)`):

- `X`, an n x n matrix (`X @ X`, `inv(X)`, `det(X)`, ...). The timed inputs are well inside
  every function's domain: `X = n I + R / (2 sqrt(n))` with R standard normal (strictly
  diagonally dominant, so `det(X) > 0` and `inv(X)` is well conditioned);
- `x`, a vector of n (`softmax(x)`): standard normal;
- `tanh(W @ x + b)`: W (n x n), x and b (n), ALL THREE inputs (the harder version of the tanh
  layer: the Jacobian has n (n + 2) columns), W scaled by 1 / sqrt(n) so the layer is not saturated;
- `softmax(Q @ K.T) @ V`: attention, Q, K and V all n x n inputs, scaled by n ** -0.25;
- `x * y`: two scalars (the smallest function: `check`'s fixed cost).

The runaways of issue 14 (`inv(inv(X))`, `relu(X @ X)`, `det(sigmoid(X))`, `det(1 / (X + 2))`)
are symjac-only cases of the "defaults" section: no peer is written for them.

SymPy builds `inv` and `det` with Berkowitz, as symjac does (the same expressions); SymEngine uses
its own `inv()` and `det()` (its defaults: what a SymEngine user gets). Softmax is written
`exp(s_i) / sum_j exp(s_j)` for SymPy and SymEngine (what a user of either writes).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

#: The order the tables list the cases in (the cases every section may use).
NAMES = (
    "X @ X", "A @ X", "sum(X)", "sin(X) * X", "X @ X @ X", "inv(X)", "log(det(X))", "softmax(x)",
    "tanh(W @ x + b)", "softmax(Q @ K.T) @ V", "det(X)", "x * y",
)
#: symjac-only cases (the "defaults" section's runaways).
RUNAWAYS = ("inv(inv(X))", "relu(X @ X)", "det(sigmoid(X))", "det(1 / (X + 2))")

TANH = "tanh(W @ x + b)"
ATTENTION = "softmax(Q @ K.T) @ V"


@dataclass(frozen=True)
class Case:
    name: str

    # -- inputs ---------------------------------------------------------------------------------
    def inputs(self, n: int) -> dict[str, tuple[int, ...]]:
        """Input name -> shape, in declaration order (the order of every peer's arguments)."""
        if self.name == "softmax(x)":
            return {"x": (n,)}
        if self.name == TANH:
            return {"W": (n, n), "x": (n,), "b": (n,)}
        if self.name == ATTENTION:
            return {"Q": (n, n), "K": (n, n), "V": (n, n)}
        if self.name == "x * y":
            return {"x": (), "y": ()}
        return {"X": (n, n)}

    @property
    def single(self) -> bool:
        return self.name not in (TANH, ATTENTION, "x * y")

    @property
    def vector(self) -> bool:
        return self.name == "softmax(x)"

    @property
    def input_name(self) -> str:
        """The one input of a single-input case."""
        return "x" if self.vector else "X"

    def shape(self, n: int) -> tuple[int, ...]:
        return (n,) if self.vector else (n, n)

    def in_size(self, n: int) -> int:
        return sum(int(np.prod(s)) for s in self.inputs(n).values())

    def sample(self, n: int, count: int, seed: int = 0) -> dict[str, np.ndarray]:
        """`count` float64 points per input, shape (count, *input shape), inside the domain."""
        rng = np.random.default_rng(seed)
        if self.name == TANH:
            return {
                "W": rng.standard_normal((count, n, n)) / np.sqrt(n),
                "x": rng.standard_normal((count, n)),
                "b": 0.5 * rng.standard_normal((count, n)),
            }
        if self.name == ATTENTION:
            return {k: rng.standard_normal((count, n, n)) * n**-0.25 for k in "QKV"}
        if self.name == "x * y":
            return {"x": rng.standard_normal(count), "y": rng.standard_normal(count)}
        if self.vector:
            return {"x": rng.standard_normal((count, n))}
        # Strictly diagonally dominant with a positive diagonal (off-diagonal row sums about
        # 0.4 (n - 1) / sqrt(n) < n), so det(X) > 0 and inv(X) is well conditioned.
        return {"X": 0.5 * rng.standard_normal((count, n, n)) / np.sqrt(n) + n * np.eye(n)}

    def points(self, n: int, count: int, seed: int = 0) -> np.ndarray:
        """`count` float64 points of a single-input case's input shape, inside the domain."""
        return self.sample(n, count, seed)[self.input_name]

    def const_a(self, n: int) -> np.ndarray:
        """The constant A of `A @ X`: fixed, non-integer entries."""
        return np.round(np.random.default_rng(99).uniform(-2.0, 2.0, (n, n)), 2)

    # -- symjac ---------------------------------------------------------------------------------
    def symjac_function(self, n: int, *, default_limits: bool = False):
        """The symjac Function, with the size budgets raised (`benchmark_limits()`): the engine is
        measured here, the time cap decides. `default_limits=True`: symjac's defaults."""
        import symjac

        consts = {"A": self.const_a(n)} if self.name == "A @ X" else {}
        options = {} if default_limits else {"limits": benchmark_limits()}
        return symjac.function(self.name, consts=consts, **options, **self.inputs(n))

    # -- plain SymPy ----------------------------------------------------------------------------
    def sympy_build(self, n: int):
        """(output as a column Matrix, list of input symbols), built with SymPy's own Matrix ops."""
        import sympy as sp

        if self.name == "x * y":
            x, y = sp.Symbol("x", real=True), sp.Symbol("y", real=True)
            return sp.Matrix([x * y]), [x, y]
        if self.vector:
            x = [sp.Symbol(f"x{i}", real=True) for i in range(n)]
            exps = [sp.exp(v) for v in x]
            total = sp.Add(*exps)
            return sp.Matrix([e / total for e in exps]), x

        def matrix(name):
            return sp.Matrix(n, n, lambda i, j: sp.Symbol(f"{name}{i}_{j}", real=True))

        if self.name == TANH:
            W = matrix("W")
            x = sp.Matrix([sp.Symbol(f"x{i}", real=True) for i in range(n)])
            b = sp.Matrix([sp.Symbol(f"b{i}", real=True) for i in range(n)])
            return (W * x + b).applyfunc(sp.tanh), list(W) + list(x) + list(b)
        if self.name == ATTENTION:
            Q, K, V = matrix("Q"), matrix("K"), matrix("V")
            E = (Q * K.T).applyfunc(sp.exp)
            totals = [sp.Add(*E.row(i)) for i in range(n)]
            A = sp.Matrix(n, n, lambda i, j: E[i, j] / totals[i])
            F = A * V
            return F.reshape(len(F), 1), list(Q) + list(K) + list(V)
        X = matrix("X")
        name = self.name
        if name == "X @ X":
            F = X * X
        elif name == "A @ X":
            F = sp.Matrix(self.const_a(n).tolist()).applyfunc(sp.Float) * X
        elif name == "sum(X)":
            F = sp.Matrix([sum(X)])
        elif name == "sin(X) * X":
            F = X.applyfunc(sp.sin).multiply_elementwise(X)
        elif name == "X @ X @ X":
            F = X * X * X
        elif name == "inv(X)":
            F = X.adjugate(method="berkowitz") / X.det(method="berkowitz")
        elif name == "log(det(X))":
            F = sp.Matrix([sp.log(X.det(method="berkowitz"))])
        elif name == "det(X)":
            F = sp.Matrix([X.det(method="berkowitz")])
        else:
            raise KeyError(name)
        return F.reshape(len(F), 1), list(X)

    # -- SymEngine ------------------------------------------------------------------------------
    def symengine_build(self, n: int):
        """(output as a column DenseMatrix, list of input symbols)."""
        import symengine as se

        if self.name == "x * y":
            x, y = se.Symbol("x"), se.Symbol("y")
            return se.DenseMatrix(1, 1, [x * y]), [x, y]
        if self.vector:
            x = [se.Symbol(f"x{i}") for i in range(n)]
            exps = [se.exp(v) for v in x]
            total = se.Add(*exps)
            return se.DenseMatrix(n, 1, [e / total for e in exps]), x

        def matrix(name):
            return se.DenseMatrix(n, n, [se.Symbol(f"{name}{i}_{j}") for i in range(n) for j in range(n)])

        if self.name == TANH:
            W = matrix("W")
            x = se.DenseMatrix(n, 1, [se.Symbol(f"x{i}") for i in range(n)])
            b = se.DenseMatrix(n, 1, [se.Symbol(f"b{i}") for i in range(n)])
            F = (W * x + b).applyfunc(se.tanh)
            return F, list(W) + list(x) + list(b)
        if self.name == ATTENTION:
            Q, K, V = matrix("Q"), matrix("K"), matrix("V")
            E = (Q * K.T).applyfunc(se.exp)
            totals = [se.Add(*[E[i, j] for j in range(n)]) for i in range(n)]
            A = se.DenseMatrix(n, n, [E[i, j] / totals[i] for i in range(n) for j in range(n)])
            flat = list(A * V)
            return se.DenseMatrix(len(flat), 1, flat), list(Q) + list(K) + list(V)
        X = matrix("X")
        name = self.name
        if name == "X @ X":
            F = X * X
        elif name == "A @ X":
            F = se.DenseMatrix(n, n, [se.RealDouble(float(a)) for a in self.const_a(n).flat]) * X
        elif name == "sum(X)":
            F = se.DenseMatrix(1, 1, [se.Add(*list(X))])
        elif name == "sin(X) * X":
            F = se.DenseMatrix(n, n, [se.sin(v) * v for v in X])
        elif name == "X @ X @ X":
            F = X * X * X
        elif name == "inv(X)":
            F = X.inv()
        elif name == "log(det(X))":
            F = se.DenseMatrix(1, 1, [se.log(X.det())])
        elif name == "det(X)":
            F = se.DenseMatrix(1, 1, [X.det()])
        else:
            raise KeyError(name)
        flat = list(F)
        return se.DenseMatrix(len(flat), 1, flat), list(X)

    # -- torch and JAX: functions of the inputs, positional, in `inputs(n)` order ----------------
    def torch_fn(self, n: int):
        import torch

        A = torch.from_numpy(self.const_a(n))
        return {
            "X @ X": lambda X: X @ X,
            "A @ X": lambda X: A @ X,
            "sum(X)": lambda X: X.sum(),
            "sin(X) * X": lambda X: torch.sin(X) * X,
            "X @ X @ X": lambda X: X @ X @ X,
            "inv(X)": lambda X: torch.linalg.inv(X),
            "log(det(X))": lambda X: torch.log(torch.linalg.det(X)),
            "softmax(x)": lambda x: torch.softmax(x, dim=-1),
            TANH: lambda W, x, b: torch.tanh(W @ x + b),
            ATTENTION: lambda Q, K, V: torch.softmax(Q @ K.transpose(-2, -1), dim=-1) @ V,
            "det(X)": lambda X: torch.linalg.det(X),
            "x * y": lambda x, y: x * y,
        }[self.name]

    def jax_fn(self, n: int):
        import jax
        import jax.numpy as jnp

        A = jnp.asarray(self.const_a(n))
        return {
            "X @ X": lambda X: X @ X,
            "A @ X": lambda X: A @ X,
            "sum(X)": lambda X: X.sum(),
            "sin(X) * X": lambda X: jnp.sin(X) * X,
            "X @ X @ X": lambda X: X @ X @ X,
            "inv(X)": lambda X: jnp.linalg.inv(X),
            "log(det(X))": lambda X: jnp.log(jnp.linalg.det(X)),
            "softmax(x)": lambda x: jax.nn.softmax(x),
            TANH: lambda W, x, b: jnp.tanh(W @ x + b),
            ATTENTION: lambda Q, K, V: jax.nn.softmax(Q @ K.T, axis=-1) @ V,
            "det(X)": lambda X: jnp.linalg.det(X),
            "x * y": lambda x, y: x * y,
        }[self.name]

    def numpy_fn(self, n: int):
        """A NumPy function of a single-input case (numdifftools' peer)."""
        A = self.const_a(n)

        def softmax(x):
            e = np.exp(x - x.max())
            return e / e.sum()

        return {
            "X @ X": lambda X: X @ X,
            "A @ X": lambda X: A @ X,
            "sum(X)": lambda X: X.sum(),
            "sin(X) * X": lambda X: np.sin(X) * X,
            "X @ X @ X": lambda X: X @ X @ X,
            "inv(X)": lambda X: np.linalg.inv(X),
            "log(det(X))": lambda X: np.log(np.linalg.det(X)),
            "softmax(x)": softmax,
            "det(X)": lambda X: np.linalg.det(X),
        }[self.name]


CASES = {name: Case(name) for name in NAMES + RUNAWAYS}

#: Budgets raised for the benchmarks (`symjac.Limits`): symjac's defaults of the baseline refuse, for
#: example, the 1,048,576-entry Jacobian of X @ X at n = 32 before any work. Here the time cap
#: decides instead. Every field of `Limits` named here, or named `max_seconds`/`max_memory*`
#: (the budgets of a tree that has them), is raised; a field a tree does not have is left out, so
#: the same script runs on trees whose `Limits` differ.
RAISED_LIMITS = dict(
    max_entries=10**9, max_entry_size=10**9, max_work=10**12, max_jacobian_entries=10**9,
    max_jacobian_work=10**12, max_input_entries=10**6,
)


def benchmark_limits():
    import symjac

    Limits = getattr(symjac, "Limits", None)
    if Limits is None:  # pragma: no cover - an old tree
        from symjac._budget import Limits
    raised = {}
    for field in dataclasses.fields(Limits):
        if field.name in RAISED_LIMITS:
            raised[field.name] = RAISED_LIMITS[field.name]
        elif field.name == "max_seconds" or field.name.startswith("max_memory"):
            default = field.default
            if isinstance(default, (int, float)) and not isinstance(default, bool):
                raised[field.name] = type(default)(default * 10**4)
    return Limits(**raised)
