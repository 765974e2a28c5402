"""`symjac.check` against `torch.autograd.gradcheck` (slow mode), issue 14's check floors.

Run: `python benchmarks/check_floors.py [TREE ...]`: each TREE (a checkout of symjac; default: this
one) is measured in its own fresh process, the processes one after another in the same run. Each
process times `symjac.check(f, at=...)` at one point and `gradcheck(fn, inputs, eps=1e-6,
atol=1e-5, rtol=1e-3, fast_mode=False)` on float64 inputs requiring grad, alternating, medians of
REPEATS runs after one warm-up call each (compile and caches are not timed), torch threads set to 1.
`fn` is the torch code a user would write for the same function. Ratios are check / gradcheck in
the same process. `samples`: `check(f, samples=100)` against 100 slow gradchecks at 100 points.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

REPEATS = int(os.environ.get("REPEATS", "7"))

CHILD = r'''
import json, sys, time, warnings
import numpy as np, torch
warnings.simplefilter("ignore")
torch.set_num_threads(1)
import symjac as sj
REPEATS = int(sys.argv[1])
rng = np.random.default_rng(0)

def median(fn, k=REPEATS):
    fn()
    ts = []
    for _ in range(k):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return float(np.median(ts))

def gradcheck(fn, values):
    xs = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]
    assert torch.autograd.gradcheck(fn, xs, eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=False)

n = 16
cases = {
    "x * y (scalars)": (sj.function("x * y", x=(), y=()), lambda x, y: x * y,
                        {"x": np.array(1.3), "y": np.array(-0.7)}),
    "X @ X (n = 8)": (sj.function("X @ X", X=(8, 8)), lambda X: X @ X, {"X": rng.normal(size=(8, 8))}),
    "tanh(W @ x + b) (n = 16)": (sj.function("tanh(W @ x + b)", W=(n, n), x=(n,), b=(n,)),
                                 lambda W, x, b: torch.tanh(W @ x + b),
                                 {"W": rng.normal(size=(n, n)) / 4, "x": rng.normal(size=n), "b": rng.normal(size=n)}),
}
rows = {}
for label, (f, fn, point) in cases.items():
    report = sj.check(f, at=point)
    assert report.verdict == "pass", str(report)
    c = median(lambda: sj.check(f, at=point))
    g = median(lambda: gradcheck(fn, list(point.values())))
    rows[label] = {"check_ms": c * 1e3, "gradcheck_ms": g * 1e3, "ratio": c / g, "routes": list(report.routes)}
f = sj.function("X @ X", X=(4, 4))
points = [rng.normal(size=(4, 4)) for _ in range(100)]
c = median(lambda: sj.check(f, samples=100), k=max(3, REPEATS // 2))
g = median(lambda: [gradcheck(lambda X: X @ X, [p]) for p in points], k=max(3, REPEATS // 2))
rows["check(samples=100), X @ X (n = 4)"] = {"check_ms": c * 1e3, "gradcheck_ms": g * 1e3, "ratio": c / g}
print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "rows": rows}))
'''


def measure(tree: str) -> dict:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree))
    done = subprocess.run([sys.executable, "-c", CHILD, str(REPEATS)], env=env, capture_output=True, text=True,
                          cwd=os.path.abspath(tree), check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(trees: list[str]) -> None:
    for tree in trees:
        result = measure(tree)
        print(f"{tree}  (torch {result['torch']}, {result['threads']} thread; medians of {REPEATS})")
        for label, row in result["rows"].items():
            print(f"  {label:36s} check {row['check_ms']:9.2f} ms  gradcheck {row['gradcheck_ms']:9.2f} ms"
                  f"  ratio {row['ratio']:5.2f}  {' '.join(row.get('routes', []))}")


if __name__ == "__main__":
    main(sys.argv[1:] or [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))])
