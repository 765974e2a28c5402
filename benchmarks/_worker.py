"""One measurement in a fresh process: `python benchmarks/_worker.py '<job as JSON>'`.

`benchmarks/run.py` starts this with `PYTHONPATH=<tree>` so that `import symjac` is the tree's
symjac (the benchmark cases, `benchmarks/cases.py`, come from this script's own directory: the same
cases for every tree). A fresh process per job, so that no tool profits from a cache another run
filled (SymPy caches expressions globally) and so that peak memory is this job's own. Prints one
JSON line (the last line of stdout).

Jobs (`kind`):

- `build` (tool symjac | sympy | symengine): from nothing to a compiled exact Jacobian and one
  evaluation at one point. symjac: `symjac.function` + `.jacobians()` + `.evaluate` of each;
  SymPy: Matrix + `Matrix.jacobian` + `lambdify(..., cse=True)` + one call; SymEngine:
  DenseMatrix + `jacobian` + `Lambdify(..., cse=True, backend="lambda")` + one call.
- `eval`: the exact Jacobian at a batch (symjac, interleaved with `torch.func.vmap(jacrev)` in the
  same process, so the ratio is of runs seconds apart), or a peer alone (JAX `jit(vmap(jacrev))`,
  SymEngine `Lambdify`); the values are saved to `save` (.npy) for the parent to compare. symjac
  evaluates every input's Jacobian at once, `f.jacobians().evaluate(**point)` (one shared plan, as
  vmap(jacrev) shares one forward over all inputs), where the tree has it (`symjac.Jacobians`);
  in a tree without it (an older "before" tree) each Jacobian's own `.evaluate`, as before; the
  job's result says which (`joint evaluate`).
- `check`: `symjac.check` at one point, interleaved with `torch.autograd.gradcheck` slow and fast
  mode at the same points, after `warmup` untimed rounds of all three; with `samples`,
  `check(f, samples=...)` against that many slow gradchecks.
- `defaults`: with symjac's DEFAULT limits, `symjac.function` + `.jacobians()` + `check` at one
  point, or the refusal; the parent kills the process at its cap.

Peak memory is the growth of the resident set during the job: the peak RSS of the process
(`VmHWM`) minus the RSS just before the job, after the imports.
"""

from __future__ import annotations

import json
import os
import statistics
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
    # VmHWM, the peak RSS of this process image (`ru_maxrss` would count the parent's at fork).
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return 0.0


def _threads(job: dict) -> None:
    threads = int(job.get("threads", 1))
    if job.get("torch", False):
        import torch

        torch.set_num_threads(threads)


def _one_point(values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: v[0] for k, v in values.items()}


def _flat(case, n: int, jacs: dict[str, np.ndarray], batch: int) -> np.ndarray:
    """(batch, out_size, in_total): each input's Jacobian flattened, side by side in input order."""
    parts = [np.asarray(jacs[k]).reshape(batch, -1, max(1, int(np.prod(s)))) for k, s in case.inputs(n).items()]
    return np.concatenate(parts, axis=-1)


# ------------------------------------------------------------------------------------------ build
def build_symjac(case, n: int, job: dict) -> dict:
    point = _one_point(case.sample(n, 1))
    t0 = time.perf_counter()
    f = case.symjac_function(n)
    t1 = time.perf_counter()
    jacs = f.jacobians()
    t2 = time.perf_counter()
    for J in jacs.values():
        J.evaluate(**point)
    t3 = time.perf_counter()
    return {
        "phases": {"function": t1 - t0, "jacobian": t2 - t1, "compile + eval": t3 - t2},
        "nnz": int(sum(getattr(J, "nnz", 0) for J in jacs.values())),
        "entries": int(sum(np.prod(J.shape) for J in jacs.values())),
    }


def build_sympy(case, n: int, job: dict) -> dict:
    import sympy

    point = _one_point(case.sample(n, 1))
    args = np.concatenate([np.ravel(point[k]) for k in case.inputs(n)])
    t0 = time.perf_counter()
    F, symbols = case.sympy_build(n)
    t1 = time.perf_counter()
    J = F.jacobian(symbols)
    t2 = time.perf_counter()
    fn = sympy.lambdify(symbols, J, "numpy", cse=True)
    fn(*args)
    t3 = time.perf_counter()
    return {"phases": {"function": t1 - t0, "jacobian": t2 - t1, "compile + eval": t3 - t2},
            "entries": J.rows * J.cols}


def build_symengine(case, n: int, job: dict) -> dict:
    import symengine

    point = _one_point(case.sample(n, 1))
    args = np.concatenate([np.ravel(point[k]) for k in case.inputs(n)])
    t0 = time.perf_counter()
    F, symbols = case.symengine_build(n)
    t1 = time.perf_counter()
    J = F.jacobian(symengine.DenseMatrix(symbols))
    t2 = time.perf_counter()
    L = symengine.Lambdify(symbols, J, cse=True, backend=job.get("backend", "lambda"))
    L(args)
    t3 = time.perf_counter()
    return {"phases": {"function": t1 - t0, "jacobian": t2 - t1, "compile + eval": t3 - t2},
            "entries": J.rows * J.cols}


BUILDS = {"symjac": build_symjac, "sympy": build_sympy, "symengine": build_symengine}


# ------------------------------------------------------------------------------------------ eval
def _median_interleaved(fns: dict, runs: int, cap: float) -> dict[str, list[float]]:
    """Each fn run once per round, rounds until `runs` or the cap: {label: [seconds...]}."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    start = time.perf_counter()
    for _ in range(runs):
        for label, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[label].append(time.perf_counter() - t)
        if time.perf_counter() - start > cap:
            break
    return times


def eval_job(case, n: int, job: dict) -> dict:
    batch, runs, cap = job["batch"], job.get("runs", 5), job.get("cap", 30.0)
    values = case.sample(n, batch)
    names = list(case.inputs(n))
    tool = job["tool"]
    out: dict = {}
    if tool == "symjac":
        import torch

        f = case.symjac_function(n)
        t = time.perf_counter()
        jacs = f.jacobians()
        joint = hasattr(jacs, "evaluate")  # a tree before `symjac.Jacobians`: each Jacobian alone

        def ours():
            if joint:
                return jacs.evaluate(**values)
            return {k: J.evaluate(**values) for k, J in jacs.items()}

        ours()  # the first call compiles: left out of the timed runs
        out["warmup"] = time.perf_counter() - t
        out["joint evaluate"] = joint

        fns = {"symjac": ours}
        tfn = case.torch_fn(n)
        targs = tuple(torch.from_numpy(values[k]) for k in names)
        vrev = torch.func.vmap(torch.func.jacrev(tfn, argnums=tuple(range(len(names)))))

        def theirs():
            return vrev(*targs)

        try:
            theirs()  # warm-up
            fns["torch vmap(jacrev)"] = theirs
        except Exception as error:  # a peer that cannot run this case is reported, not fatal
            out["torch vmap(jacrev) failed"] = f"{type(error).__name__}: {str(error)[:100]}"
        times = _median_interleaved(fns, runs, cap)
        out["seconds"] = {k: statistics.median(v) for k, v in times.items()}
        out["runs"] = {k: len(v) for k, v in times.items()}
        got = _flat(case, n, ours(), batch)
        if "torch vmap(jacrev)" in fns:
            ref = _flat(case, n, dict(zip(names, (t.numpy() for t in theirs()))), batch)
            out["max |diff| vs torch"] = float(np.max(np.abs(got - ref)))
    elif tool == "jax":
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
        import jax

        jax.config.update("jax_enable_x64", True)
        fn = jax.jit(jax.vmap(jax.jacrev(case.jax_fn(n), argnums=tuple(range(len(names))))))
        jargs = tuple(jax.numpy.asarray(values[k]) for k in names)

        def run():
            return jax.block_until_ready(fn(*jargs))

        t = time.perf_counter()
        run()
        out["warmup"] = time.perf_counter() - t
        times = _median_interleaved({"jax": run}, runs, cap)["jax"]
        out["seconds"] = {"JAX jit(vmap(jacrev))": statistics.median(times)}
        out["runs"] = {"JAX jit(vmap(jacrev))": len(times)}
        got = _flat(case, n, dict(zip(names, (np.asarray(a) for a in run()))), batch)
    elif tool.startswith("symengine"):
        import symengine

        backend = tool.split("-", 1)[1]
        F, symbols = case.symengine_build(n)
        J = F.jacobian(symengine.DenseMatrix(symbols))
        t = time.perf_counter()
        L = symengine.Lambdify(symbols, J, cse=True, backend=backend)
        out["warmup"] = time.perf_counter() - t
        flat = np.concatenate([values[k].reshape(batch, -1) for k in names], axis=1)
        label = f"SymEngine Lambdify({backend}, cse=True)"
        times = _median_interleaved({label: lambda: L(flat)}, runs, cap)[label]
        out["seconds"] = {label: statistics.median(times)}
        out["runs"] = {label: len(times)}
        got = np.asarray(L(flat)).reshape(batch, -1, case.in_size(n))
    else:
        raise KeyError(tool)
    if job.get("save"):
        np.save(job["save"], got)
    out["batch"] = batch
    return out


# ------------------------------------------------------------------------------------------ check
def check_job(case, n: int, job: dict) -> dict:
    import torch

    import symjac

    runs, cap = job.get("runs", 5), job.get("cap", 60.0)
    names = list(case.inputs(n))
    f = case.symjac_function(n)
    values = case.sample(n, max(runs, 1) + 1, seed=1)
    points = [{k: values[k][i] for k in names} for i in range(len(values[names[0]]))]
    tfn = case.torch_fn(n)
    out: dict = {}
    t = time.perf_counter()
    first = symjac.check(f, at=points[-1])
    out["first call"] = time.perf_counter() - t
    out["first verdict"] = first.verdict
    verdicts: dict[str, int] = {}

    def gradcheck(point, fast):
        tensors = tuple(torch.tensor(point[k], dtype=torch.float64, requires_grad=True) for k in names)
        return torch.autograd.gradcheck(tfn, tensors, fast_mode=fast)

    samples = job.get("samples")
    if samples:
        pts = case.sample(n, samples, seed=2)
        pts = [{k: pts[k][i] for k in names} for i in range(samples)]

        def ours():
            v = symjac.check(f, samples=samples, seed=0).verdict
            verdicts[v] = verdicts.get(v, 0) + 1

        fns = {f"symjac.check(samples={samples})": ours,
               f"gradcheck slow x{samples}": lambda: [gradcheck(p, False) for p in pts]}
    else:
        it = {"i": 0}

        def ours():
            v = symjac.check(f, at=points[it["i"] % runs]).verdict
            verdicts[v] = verdicts.get(v, 0) + 1

        def slow():
            gradcheck(points[it["i"] % runs], False)

        def fast():
            gradcheck(points[it["i"] % runs], True)
            it["i"] += 1

        fns = {"symjac.check": ours, "gradcheck slow": slow, "gradcheck fast": fast}
        # untimed warm-up rounds, the same for every tool: a sub-millisecond call runs Python 3.11's
        # specialising interpreter cold for its first few calls (each function of symjac.check runs
        # once per call: about 8 calls to reach the steady state a test suite sees)
        if job.get("warmup"):
            cold = _median_interleaved(fns, job["warmup"], cap)
            out["warm-up seconds"] = {k: statistics.median(v) for k, v in cold.items()}
        verdicts.clear()
    times = _median_interleaved(fns, runs, cap)
    out["seconds"] = {k: statistics.median(v) for k, v in times.items()}
    out["runs"] = {k: len(v) for k, v in times.items()}
    out["verdicts"] = verdicts
    return out


# ------------------------------------------------------------------------------------------ defaults
def defaults_job(case, n: int, job: dict) -> dict:
    import symjac

    point = _one_point(case.sample(n, 1))
    t0 = time.perf_counter()
    phase = "function"
    try:
        f = case.symjac_function(n, default_limits=True)
        phase = "jacobian"
        f.jacobians()
        phase = "check"
        verdict = symjac.check(f, at=point).verdict
    except symjac.SymjacError as error:
        first = str(error).splitlines()[0] if str(error) else ""
        return {"outcome": "refused", "error": type(error).__name__, "phase": phase,
                "message": first[:300], "seconds": time.perf_counter() - t0}
    return {"outcome": "checked", "verdict": verdict, "seconds": time.perf_counter() - t0}


JOBS = {"eval": eval_job, "check": check_job, "defaults": defaults_job}


def main(argv: list[str]) -> None:
    job = json.loads(argv[0])
    case, n, kind = CASES[job["case"]], int(job["n"]), job["kind"]
    tool = job.get("tool", "symjac")
    # Import the tool before the baseline, so that imports count neither as the job's time nor as
    # its memory (`import symjac` loads its modules on first use: a tiny Function loads them).
    if kind != "build" or tool == "symjac":
        if tool == "symjac" or kind in ("check", "defaults"):
            import symjac

            tiny = symjac.function("x * y", x=(), y=())
            for J in tiny.jacobians().values():  # loads the code generation and backend modules too
                J.evaluate(x=1.0, y=2.0)
    if kind == "build" and tool == "sympy":
        import sympy  # noqa: F401
    if tool.startswith("symengine"):
        import symengine  # noqa: F401
    if kind in ("eval", "check") and tool == "symjac":
        import torch  # noqa: F401

        job["torch"] = True
    import numpy.random  # noqa: F401  (`case.sample` draws the point inside the timed job: not its import)

    _threads(job)
    before = _rss_mb()
    t0 = time.perf_counter()
    result = BUILDS[tool](case, n, job) if kind == "build" else JOBS[kind](case, n, job)
    if kind == "build":
        result["seconds"] = time.perf_counter() - t0
    result.update(peak_mb=max(_peak_mb() - before, 0.0), tool=tool, case=job["case"], n=n, kind=kind)
    if "symjac" in sys.modules:  # which tree's symjac ran (run.py checks it is the tree asked for)
        result["symjac_file"] = os.path.abspath(sys.modules["symjac"].__file__)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
