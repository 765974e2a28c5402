"""Re-measure the cost model's coefficients (`symjac._cost`) on this machine and print new tables.

    python benchmarks/calibrate_budgets.py              # every case once, about 5-10 minutes
    python benchmarks/calibrate_budgets.py --repeats 3  # medians of 3 runs per case
    python benchmarks/calibrate_budgets.py --quick      # the small sizes only (a minute or two)

Each case runs in a fresh subprocess (`--one NAME`) under raised budgets and without symjac's own
time limit, capped at `--cap` seconds (killed past it). It reports, measured:

- the parse: seconds, and the parser's operation count by operation label (`_Evaluator.spend`);
- the output's `Features` (`symjac._budget.output_features`), known before any differentiation;
- the seconds of every exact Jacobian (`f.jacobians()`) plus one `symjac.check` at a point.

The coefficients are fitted by non-negative least squares on the relative error (each case's row
divided by its measured time, so small cases weigh as much as large ones): `PARSE_SECONDS` from
the parse phase (one rate per label group: relu, abs, det, inv, everything else; for relu, det and
inv the whole job's seconds per unit of the largest case, `WHOLE_JOB`), `SECONDS` from the
Jacobian-and-check phase. A case stopped by the cap enters the fit at the cap (a lower bound). `BYTES` from each case's peak RSS (`ru_maxrss`). The script prints the tables as Python, to paste into symjac/_cost.py,
and a table of measured vs estimated seconds under the old and the new coefficients.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: name: (expression, shapes). Sizes span what the defaults must accept and what they must refuse.
CASES = {
    "matmul8": ("X @ X", {"X": (8, 8)}),
    "matmul12": ("X @ X", {"X": (12, 12)}),
    "matmul16": ("X @ X", {"X": (16, 16)}),
    "softmax32": ("softmax(x)", {"x": (32,)}),
    "softmax64": ("softmax(x)", {"x": (64,)}),
    "inv3": ("inv(X)", {"X": (3, 3)}),
    "inv4": ("inv(X)", {"X": (4, 4)}),
    "inv5": ("inv(X)", {"X": (5, 5)}),
    "det4": ("det(X)", {"X": (4, 4)}),
    "det6": ("det(X)", {"X": (6, 6)}),
    "det7": ("det(X)", {"X": (7, 7)}),
    "logdet4": ("log(det(X))", {"X": (4, 4)}),
    "mlp16": ("tanh(W @ x + b)", {"W": (16, 16), "x": (16,), "b": (16,)}),
    "mlp32": ("tanh(W @ x + b)", {"W": (32, 32), "x": (32,), "b": (32,)}),
    "attention4": ("softmax(Q @ K.T) @ V", {"Q": (4, 4), "K": (4, 4), "V": (4, 4)}),
    "attention8": ("softmax(Q @ K.T) @ V", {"Q": (8, 8), "K": (8, 8), "V": (8, 8)}),
    "sigmoid16": ("sigmoid(X) * X", {"X": (16, 16)}),
    "sigmoid24": ("sigmoid(X) * X", {"X": (24, 24)}),
    "sum32": ("sum(X)", {"X": (32, 32)}),
    "sum64": ("sum(X)", {"X": (64, 64)}),
    "detsigmoid3": ("det(sigmoid(X))", {"X": (3, 3)}),
    "invinv3": ("inv(inv(X))", {"X": (3, 3)}),
    "invinv4": ("inv(inv(X))", {"X": (4, 4)}),
    "relu4": ("relu(X @ X)", {"X": (4, 4)}),
    "relu6": ("relu(X @ X)", {"X": (6, 6)}),
    "relu8": ("relu(X @ X)", {"X": (8, 8)}),
    "abs6": ("abs(X @ X)", {"X": (6, 6)}),
}
QUICK = ("matmul8", "softmax32", "inv3", "det4", "mlp16", "attention4", "detsigmoid3", "invinv3", "relu4",
         "abs6", "sum32")
#: Parser labels priced at their own rate (`PARSE_SECONDS`); every other label is "default".
PARSE_GROUPS = ("relu", "abs", "det", "inv")
#: Groups whose result costs far more later than its parse count says (entries written out grow
#: ~13x per n for det, sign queries of relu grow with the argument): priced at the whole job's
#: seconds (parse, Jacobians, check) per unit, from the measured case with the most units of it,
#: so that the parser refuses them before building them.
WHOLE_JOB = ("relu", "det", "inv")


def one(name: str) -> dict:
    """Measure one case in this process (the subprocess side)."""
    sys.path.insert(0, ROOT)
    import resource

    import numpy as np

    import symjac
    from symjac import _budget, _parse

    expr, shapes = CASES[name]
    labels: dict[str, int] = {}
    spend = _parse._Evaluator.spend

    def counting(self, work, entries, label, node):
        group = label if label in PARSE_GROUPS else "default"
        labels[group] = labels.get(group, 0) + work + 1
        return spend(self, work, entries, label, node)

    _parse._Evaluator.spend = counting
    big = symjac.Limits(max_seconds=1e6, max_memory=10**7, max_work=10**12, max_jacobian_work=10**15,
                        max_jacobian_entries=10**12, max_entry_size=10**12, timeout=None, progress=False)
    start = time.perf_counter()
    f = symjac.function(expr, limits=big, **shapes)
    parsed = time.perf_counter()
    flat = list(f.output.reshape(-1))
    symbols = {s for inp in f.inputs for s in inp.flat_symbols}
    features = _budget.output_features(flat, symbols, sum(inp.size for inp in f.inputs))
    featured = time.perf_counter()
    print(json.dumps({"parse": parsed - start, "labels": labels, "features": features.priced()}), flush=True)
    f.jacobians()
    rng = np.random.default_rng(0)
    at = {inp.name: rng.uniform(0.5, 1.0, size=inp.shape) for inp in f.inputs}
    report = symjac.check(f, at=at)
    done = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**20
    return {"rest": done - featured, "verdict": report.verdict, "peak_mib": peak}


def measure(name: str, cap: float) -> dict:
    """Run `one(name)` in a subprocess, killed past `cap` seconds; a capped run has `capped`."""
    command = [sys.executable, os.path.abspath(__file__), "--one", name]
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=cap, env=env).stdout
        capped = False
    except subprocess.TimeoutExpired as error:
        out = (error.stdout or b"").decode() if isinstance(error.stdout, bytes) else (error.stdout or "")
        capped = True
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if not lines:
        return {"capped": True, "rest": cap, "parse": cap, "labels": {}, "features": None}
    result = lines[0]
    if capped or len(lines) < 2:
        result.update(capped=True, rest=max(cap - result["parse"], 0.0))  # at least: a lower bound
    else:
        result.update(lines[1], capped=False)
    return result


def fit(rows: list[tuple[dict[str, float], float]], names: list[str]) -> dict[str, float]:
    """Non-negative least squares of the relative error: sum_k c_k x_k / t ~ 1."""
    import numpy as np
    from scipy.optimize import nnls

    a = np.array([[x.get(k, 0) / t for k in names] for x, t in rows], dtype=float)
    scale = np.maximum(a.max(axis=0), 1e-300)  # columns to comparable sizes
    coefficients, _ = nnls(a / scale, np.ones(len(rows)))
    return {k: float(c / s) for k, c, s in zip(names, coefficients, scale)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--cap", type=float, default=40.0, help="seconds per case run (default 40)")
    parser.add_argument("--quick", action="store_true", help="the small sizes only")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one)), flush=True)
        return
    sys.path.insert(0, ROOT)
    from symjac import _cost

    names = QUICK if args.quick else tuple(CASES)
    results = {}
    for name in names:
        runs = [measure(name, args.cap) for _ in range(args.repeats)]
        merged = dict(runs[0])
        merged["parse"] = statistics.median(r["parse"] for r in runs)
        merged["rest"] = statistics.median(r["rest"] for r in runs)
        merged["capped"] = any(r["capped"] for r in runs)
        results[name] = merged
        print(f"# {name:12s} parse {merged['parse']:7.2f} s  jacobians+check {merged['rest']:7.2f} s"
              f"{'  (capped)' if merged['capped'] else ''}", flush=True)

    parse_rows = [({g: v for g, v in r["labels"].items()}, max(r["parse"], 1e-3)) for r in results.values()
                  if r["labels"] and not (r["capped"] and r["features"] is None)]
    parse_rates = fit(parse_rows, ["default", *PARSE_GROUPS])
    for group in WHOLE_JOB:  # the whole job's seconds per unit, from the case with most units of it
        cases = [r for r in results.values() if r["labels"].get(group)]
        if cases:
            largest = max(cases, key=lambda r: r["labels"][group])
            parse_rates[group] = (largest["parse"] + largest["rest"]) / largest["labels"][group]
    rest_rows = [(r["features"], max(r["rest"], 1e-3)) for r in results.values() if r["features"]]
    seconds = fit(rest_rows, list(_cost.SECONDS))
    memory_rows = [(r["features"], r["peak_mib"] * 2**20) for r in results.values()
                   if r["features"] and not r["capped"]]
    memory = fit(memory_rows, list(_cost.BYTES))

    def show(table: dict[str, float]) -> str:
        return "{\n" + "".join(f"    {k!r}: {v:.3g},\n" for k, v in table.items()) + "}"

    print("\n# measured on", os.uname().nodename, time.strftime("%Y-%m-%d"), f"repeats={args.repeats}")
    print("PARSE_SECONDS: dict[str, float] =", show(parse_rates))
    print("SECONDS: dict[str, float] =", show(seconds))
    print("BYTES: dict[str, float] =", show(memory))
    print("\n# case          measured s   old model s   new model s   peak MiB   new model MiB")
    for name, r in results.items():
        if not r["features"]:
            print(f"# {name:12s} capped before its features were known")
            continue
        measured = r["parse"] + r["rest"]
        x = r["features"]
        old = sum(_cost.SECONDS[k] * x[k] for k in _cost.SECONDS) + sum(
            _cost.operation_seconds(g, w) for g, w in r["labels"].items())
        new = sum(seconds[k] * x[k] for k in seconds) + sum(
            parse_rates.get(g, 0) * w for g, w in r["labels"].items())
        mib = sum(memory[k] * x[k] for k in memory) / 2**20
        flag = " (capped: a lower bound)" if r["capped"] else ""
        print(f"# {name:12s} {measured:10.2f}   {old:11.2f}   {new:11.2f}   {r.get('peak_mib', 0):8.0f}   "
              f"{mib:9.0f}{flag}")


if __name__ == "__main__":
    main()
