"""X @ X exact Jacobian build (parse + element-wise differentiation) vs SymPy Matrix.jacobian, n = 4, 8, 16.

Run: python benchmarks/build_vs_sympy.py  (medians of 3 runs at n = 4, 8; one run at n = 16)
"""
import time, statistics, sys
import sympy
import symjac as sj
from symjac import _symengine
def symjac_build(n):
    t = time.perf_counter()
    f = sj.function("X @ X", X=(n, n), limits=sj.Limits(max_jacobian_work=10**8, max_jacobian_entries=10**8))
    J = f.jacobian()
    return time.perf_counter() - t, J.nnz
def sympy_build(n):
    X = sympy.Matrix(n, n, lambda i, j: sympy.Symbol(f"x{i}_{j}", real=True))
    t = time.perf_counter()
    F = (X * X).reshape(n * n, 1)
    F.jacobian(list(X))
    return time.perf_counter() - t
_symengine.ENABLED = "--no-symengine" not in sys.argv
print("symengine enabled:", getattr(_symengine, "ENABLED", None), "available:", _symengine.available())
for n in (4, 8, 16):
    runs = 3 if n < 16 else 1
    s = [symjac_build(n)[0] for _ in range(runs)]
    p = [sympy_build(n) for _ in range(runs)]
    ms, mp = statistics.median(s), statistics.median(p)
    print(f"n={n}: symjac function+jacobian {ms*1e3:.1f} ms, sympy Matrix.jacobian {mp*1e3:.1f} ms, ratio {mp/ms:.1f}x (median of {runs})", flush=True)
