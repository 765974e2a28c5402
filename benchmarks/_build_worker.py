"""One exact-Jacobian build, in a fresh process: `python benchmarks/_build_worker.py TOOL CASE N`.

A fresh process per run, so that no tool profits from a cache another run filled (SymPy caches
expressions globally) and so that peak memory is this build's own. Prints one JSON line:
`{"seconds": total, "phases": {...}, "peak_mb": ..., ...}`.

Peak memory is the growth of the resident set during the build: the peak RSS of the process
(`VmHWM`) minus the RSS just before the build, after the imports.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from cases import CASES  # noqa: E402


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    # VmHWM, the peak RSS of this process image: `ru_maxrss` would also count the parent's RSS at
    # fork time (Linux keeps it across exec).
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_symjac(case, n: int, *, symengine: bool = True) -> dict:
    from symjac import _symengine
    from symjac.backends._numpy import jacobian_plan

    _symengine.ENABLED = symengine
    t0 = time.perf_counter()
    f = case.symjac_function(n)
    t1 = time.perf_counter()
    J = f.jacobian()
    t2 = time.perf_counter()
    plan, _ = jacobian_plan(J)
    t3 = time.perf_counter()
    return {
        "phases": {"function": t1 - t0, "jacobian": t2 - t1, "compile": t3 - t2},
        "nnz": J.nnz,
        "entries": int(np.prod(J.shape)),
        "generated": plan.code.n_entries if plan.code is not None else 0,
        "engine": "symengine" if _symengine.enabled() else "sympy",
    }


def build_symjac_sympy_only(case, n: int) -> dict:
    return build_symjac(case, n, symengine=False)


def build_sympy(case, n: int) -> dict:
    import sympy

    t0 = time.perf_counter()
    F, symbols = case.sympy_build(n)
    t1 = time.perf_counter()
    J = F.jacobian(symbols)
    t2 = time.perf_counter()
    sympy.lambdify(symbols, J, "numpy")
    t3 = time.perf_counter()
    return {"phases": {"function": t1 - t0, "jacobian": t2 - t1, "compile": t3 - t2}, "entries": J.rows * J.cols}


def build_sympy_jacobian_only(case, n: int) -> dict:
    """SymPy's Matrix.jacobian alone (no lambdify): the issue-2 closing comparison."""
    t0 = time.perf_counter()
    F, symbols = case.sympy_build(n)
    t1 = time.perf_counter()
    F.jacobian(symbols)
    t2 = time.perf_counter()
    return {"phases": {"function": t1 - t0, "jacobian": t2 - t1}}


def build_symengine(case, n: int) -> dict:
    import symengine

    t0 = time.perf_counter()
    F, symbols = case.symengine_build(n)
    t1 = time.perf_counter()
    J = F.jacobian(symengine.DenseMatrix(symbols))
    t2 = time.perf_counter()
    symengine.Lambdify(symbols, J, backend="lambda")
    t3 = time.perf_counter()
    return {"phases": {"function": t1 - t0, "jacobian": t2 - t1, "compile": t3 - t2}, "entries": J.rows * J.cols}


TOOLS = {
    "symjac": build_symjac,
    "symjac-sympy": build_symjac_sympy_only,
    "sympy": build_sympy,
    "sympy-jacobian": build_sympy_jacobian_only,
    "symengine": build_symengine,
}


def main(argv: list[str]) -> None:
    tool, name, n = argv[0], argv[1], int(argv[2])
    case = CASES[name]
    # Import the tool before the baseline, so that imports count neither as the build's time nor as
    # its memory (`import symjac` itself loads its modules on first use: import them here).
    if tool.startswith("symjac"):
        import symjac._codegen  # noqa: F401
        import symjac._function  # noqa: F401
        import symjac._jacobian  # noqa: F401
        import symjac.backends._numpy  # noqa: F401
        from symjac import _symengine

        _symengine.available()  # imports symengine, if installed, before the baseline
    elif tool.startswith("sympy"):
        import sympy  # noqa: F401
    else:
        import symengine  # noqa: F401
    import numpy  # noqa: F401

    before = _rss_mb()
    t0 = time.perf_counter()
    result = TOOLS[tool](case, n)
    seconds = time.perf_counter() - t0
    result.update(seconds=seconds, peak_mb=max(_peak_mb() - before, 0.0), tool=tool, case=name, n=n)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
