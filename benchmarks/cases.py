"""The benchmark functions, written once per tool: symjac text, plain SymPy, SymEngine, torch, JAX.

Every case is a function of one input: `X`, an n x n matrix, or `x`, a vector of n (softmax).
The inputs the timed runs use are well inside every function's domain: `X = n I + R / (2 sqrt(n))`
with R standard normal (strictly diagonally dominant, so `det(X) > 0` and `inv(X)` is well
conditioned).

SymPy builds `inv` and `det` with Berkowitz, as symjac does (the same expressions); SymEngine uses
its own `inv()` and `det()` (its defaults: what a SymEngine user gets).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The order the tables list the cases in.
NAMES = ("X @ X", "A @ X", "sum(X)", "sin(X) * X", "X @ X @ X", "inv(X)", "log(det(X))", "softmax(x)")


@dataclass(frozen=True)
class Case:
    name: str

    @property
    def vector(self) -> bool:
        return self.name == "softmax(x)"

    @property
    def input_name(self) -> str:
        return "x" if self.vector else "X"

    def shape(self, n: int) -> tuple[int, ...]:
        return (n,) if self.vector else (n, n)

    # -- inputs ---------------------------------------------------------------------------------
    def points(self, n: int, count: int, seed: int = 0) -> np.ndarray:
        """`count` float64 points of this case's input shape, inside the domain."""
        rng = np.random.default_rng(seed)
        if self.vector:
            return rng.standard_normal((count, n))
        # Strictly diagonally dominant with a positive diagonal (off-diagonal row sums about
        # 0.4 (n - 1) / sqrt(n) < n), so det(X) > 0 and inv(X) is well conditioned.
        return 0.5 * rng.standard_normal((count, n, n)) / np.sqrt(n) + n * np.eye(n)

    def const_a(self, n: int) -> np.ndarray:
        """The constant A of `A @ X`: fixed, non-integer entries."""
        return np.round(np.random.default_rng(99).uniform(-2.0, 2.0, (n, n)), 2)

    # -- symjac ---------------------------------------------------------------------------------
    def symjac_function(self, n: int):
        """The symjac Function, with the size budgets raised (`LIMITS`): the engine is measured here."""
        import symjac

        consts = {"A": self.const_a(n)} if self.name == "A @ X" else {}
        return symjac.function(self.name, consts=consts, limits=benchmark_limits(), **{self.input_name: self.shape(n)})

    # -- plain SymPy ----------------------------------------------------------------------------
    def sympy_build(self, n: int):
        """(output as a column Matrix, list of input symbols), built with SymPy's own Matrix ops."""
        import sympy as sp

        if self.vector:
            x = [sp.Symbol(f"x{i}", real=True) for i in range(n)]
            exps = [sp.exp(v) for v in x]
            total = sp.Add(*exps)
            return sp.Matrix([e / total for e in exps]), x
        X = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"X{i}_{j}", real=True))
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
        else:
            raise KeyError(name)
        return F.reshape(len(F), 1), list(X)

    # -- SymEngine ------------------------------------------------------------------------------
    def symengine_build(self, n: int):
        import symengine as se

        if self.vector:
            x = [se.Symbol(f"x{i}") for i in range(n)]
            exps = [se.exp(v) for v in x]
            total = se.Add(*exps)
            return se.DenseMatrix(n, 1, [e / total for e in exps]), x
        X = se.DenseMatrix(n, n, [se.Symbol(f"X{i}_{j}") for i in range(n) for j in range(n)])
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
        else:
            raise KeyError(name)
        flat = list(F)
        return se.DenseMatrix(len(flat), 1, flat), list(X)

    # -- torch and JAX ----------------------------------------------------------------------------
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
        }[self.name]

    def numpy_fn(self, n: int):
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
        }[self.name]


CASES = {name: Case(name) for name in NAMES}

#: Budgets raised for the benchmarks (`symjac.Limits`): symjac's defaults refuse, for example, the
#: 1,048,576-entry Jacobian of X @ X at n = 32 (`max_jacobian_entries` 65,536) before any work.
#: Here the time cap decides instead.
RAISED_LIMITS = dict(
    max_entries=10**9, max_entry_size=10**9, max_work=10**12, max_jacobian_entries=10**9,
    max_jacobian_work=10**12, max_input_entries=10**6,
)


def benchmark_limits():
    from symjac._budget import Limits

    return Limits(**RAISED_LIMITS)
