"""symjac against its peers, one or more symjac trees side by side: writes benchmarks/RESULTS.md.

    python benchmarks/run.py --tree before=/path/to/old/checkout --tree after=.
    python benchmarks/run.py --quick --tree before=... --tree after=.   # smoke run, prints only
    python benchmarks/run.py --readme                                    # README table, from RESULTS.json

Every symjac measurement runs once per tree, in a fresh subprocess with `PYTHONPATH=<tree>`
(`benchmarks/_worker.py`); the peers (SymEngine, plain SymPy, JAX) run once per run of this script.
Each table shows the trees and the peers side by side, ratios against the peer measured in the same
run. Sections (issue 14's floors; each a table, the floors a list of rows with pass/fail):

1. build: `symjac.function` + `.jacobians()` + compile + one evaluation, against SymEngine
   `jacobian` + `Lambdify(cse=True)` + one evaluation (and plain SymPy `Matrix.jacobian` +
   `lambdify(cse=True)` for `X @ X` at n = 16), fresh processes, alternated tree / peer rounds;
2. eval: the exact Jacobian at a batch of 1,000 against `torch.func.vmap(jacrev)` (interleaved in
   the same process), JAX `jit(vmap(jacrev))` when jax is installed, SymEngine `Lambdify`;
3. check: `symjac.check` at one point against `torch.autograd.gradcheck` slow and fast mode
   (interleaved in the same process); `check(samples=100)` against 100 slow gradchecks;
4. defaults: time to outcome with symjac's DEFAULT limits (built and checked at one point, or the
   refusal), in a subprocess killed at a cap;
5. startup: `import symjac`.

Options: `--quick`, `--sections`, `--cap`, `--threads`, `--out`, `--state`, `--resume`, `--readme`.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from cases import ATTENTION, CASES, TANH  # noqa: E402

SECTIONS = ("build", "eval", "check", "defaults", "startup")

# -- what is measured: (case, n) per section, full run and --quick ---------------------------------
#: Build floor cases: (case, n, peers). Issue 14: no slower than SymEngine on the first five
#: (stretch 3x); X @ X >= 20x plain SymPy at n = 16 and >= 5x SymEngine at n = 32.
BUILD = {
    "full": [(TANH, 32, ("symengine",)), (ATTENTION, 8, ("symengine",)), ("softmax(x)", 32, ("symengine",)),
             ("inv(X)", 4, ("symengine",)), ("log(det(X))", 4, ("symengine",)), ("X @ X", 16, ("sympy", "symengine")),
             ("X @ X", 32, ("symengine",))],
    "quick": [(TANH, 8, ("symengine",)), (ATTENTION, 3, ("symengine",)), ("softmax(x)", 8, ("symengine",)),
              ("inv(X)", 3, ("symengine",)), ("log(det(X))", 3, ("symengine",)), ("X @ X", 4, ("sympy", "symengine"))],
}
BUILD_FLOORS = {  # case -> (peer, needed ratio peer time / symjac time, stretch or None)
    TANH: ("symengine", 1.0, 3.0), ATTENTION: ("symengine", 1.0, 3.0), "softmax(x)": ("symengine", 1.0, 3.0),
    "inv(X)": ("symengine", 1.0, 3.0), "log(det(X))": ("symengine", 1.0, 3.0),
}
XX_FLOORS = {("sympy", 16): 20.0, ("symengine", 32): 5.0}
#: Evaluation at a batch: every benchmark function, at these sizes.
EVAL = {
    "full": [("X @ X", 8), ("A @ X", 8), ("sum(X)", 8), ("sin(X) * X", 8), ("X @ X @ X", 8), ("inv(X)", 4),
             ("log(det(X))", 4), ("det(X)", 4), ("softmax(x)", 32), (TANH, 16), (ATTENTION, 4), ("x * y", 1)],
    "quick": [("X @ X", 4), (TANH, 4), (ATTENTION, 2)],
}
EVAL_BATCH = 1000
EVAL_PEERS = ("jax", "symengine-lambda", "symengine-llvm")
#: check at one point (case, n, samples or None).
CHECK = {
    "full": [(TANH, 16, None), ("X @ X", 8, None), ("x * y", 1, None), ("X @ X", 4, 100)],
    "quick": [(TANH, 4, None), ("X @ X", 4, None), ("x * y", 1, None), ("X @ X", 2, 10)],
}
CHECK_FLOORS = {(TANH, 16): 1.0, ("X @ X", 8): 1.0, ("x * y", 1): 1 / 1.5}  # gradcheck slow / check >= this
#: Defaults: (case, n, accepted) -- accepted: the defaults must build and check it; else a runaway,
#: which must finish quickly (RUNAWAY_QUICK) or be refused at once (REFUSED_AT_ONCE).
DEFAULTS = {
    "full": [("X @ X", 16, True), ("softmax(x)", 64, True), ("inv(X)", 5, True), ("det(X)", 6, True),
             (ATTENTION, 8, True), (TANH, 32, True), ("inv(inv(X))", 4, False), ("relu(X @ X)", 10, False),
             ("det(sigmoid(X))", 3, False), ("det(1 / (X + 2))", 3, False)],
    "quick": [("X @ X", 16, True), ("det(X)", 6, True), ("inv(inv(X))", 4, False), ("det(sigmoid(X))", 3, False)],
}
RUNAWAY_QUICK = 30.0  # seconds: a runaway that finishes within this is fine
REFUSED_AT_ONCE = 5.0  # seconds, process start and imports excluded (measured inside the worker)
#: Caps (seconds of one subprocess): full run / quick.
CAPS = {"full": {"build": 60.0, "build sympy": 240.0, "eval": 150.0, "check": 150.0, "defaults": 60.0},
        "quick": {"build": 30.0, "build sympy": 30.0, "eval": 60.0, "check": 60.0, "defaults": 10.0}}
BUILD_ROUNDS = {"full": 5, "quick": 1}  # at most
REPEAT_BELOW = 20.0  # a build run longer than this is not repeated
SHORT_RUN = 2.0  # builds with a median over this after 3 runs stop at 3; shorter ones get 5
RUNS = {"full": 7, "quick": 3}  # timed runs inside one eval / check process
#: Untimed rounds of every tool before `check` at one point is timed (`_worker.check_job`).
CHECK_WARMUP = 8


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ state
class State:
    """Every measurement, saved to a JSON file as soon as it is taken: `--resume` reuses them, and
    `--readme` renders the README table from them."""

    def __init__(self, path: str, resume: bool):
        self.path = path
        self.data: dict = {}
        if resume and os.path.exists(path):
            with open(path) as f:
                self.data = json.load(f)

    def get(self, section: str, key: str):
        return self.data.get(section, {}).get(key)

    def put(self, section: str, key: str, value) -> None:
        self.data.setdefault(section, {})[key] = value
        self.save()

    def save(self) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f, indent=1)
        os.replace(tmp, self.path)


def key(*parts) -> str:
    return "|".join(map(str, parts))


# ------------------------------------------------------------------------------------------ workers
def thread_env(threads: int) -> dict[str, str]:
    """The thread settings every subprocess runs with (torch's own is set inside the worker)."""
    return {
        "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
        "NUMEXPR_NUM_THREADS": str(threads),
        "XLA_FLAGS": f"--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={threads}",
        "JAX_PLATFORMS": "cpu",
    }


def run_job(job: dict, tree: str, cap: float, threads: int) -> dict:
    """One `_worker.py` job in a fresh process with `PYTHONPATH=tree`: its JSON, or
    `{"status": "timeout" | "error", ...}`. `wall` is the subprocess's whole time."""
    job = dict(job, threads=threads)
    env = dict(os.environ, PYTHONPATH=tree, **thread_env(threads))
    cmd = [sys.executable, os.path.join(HERE, "_worker.py"), json.dumps(job)]
    t = time.perf_counter()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=cap, cwd=tree, env=env)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "cap": cap, "wall": time.perf_counter() - t}
    wall = time.perf_counter() - t
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["?"])[-1]
        return {"status": "error", "error": last[:200], "wall": wall}
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result.update(status="ok", wall=wall)
    where = result.get("symjac_file")
    if where and not where.startswith(os.path.join(tree, "symjac") + os.sep):
        return {"status": "error", "error": f"imported symjac from {where}, not from the tree {tree}", "wall": wall}
    return result


class Runner:
    def __init__(self, args, state: State):
        self.args, self.state = args, state
        self.mode = "quick" if args.quick else "full"
        self.caps = dict(CAPS[self.mode])
        if args.cap:
            self.caps = {k: args.cap for k in self.caps}
        self.trees = args.trees  # [(label, abs path)]

    def job(self, section: str, k: str, job: dict, tree: str, cap: float) -> dict:
        found = self.state.get(section, k)
        if found is None:
            found = run_job(job, tree, cap, self.args.threads)
            self.state.put(section, k, found)
        return found

    # -- 1. build -------------------------------------------------------------------------------
    def build(self) -> None:
        rounds = BUILD_ROUNDS[self.mode]
        for name, n, peers in BUILD[self.mode]:
            tools = [("tree", label, path) for label, path in self.trees] + [("peer", p, ROOT) for p in peers]
            done: dict[str, bool] = {}
            times: dict[str, list[float]] = {}
            for r in range(rounds):  # alternated: each tree and peer once per round
                for kind, label, path in tools:
                    if done.get(label):
                        continue
                    tool = "symjac" if kind == "tree" else label
                    cap = self.caps["build sympy" if tool == "sympy" else "build"]
                    k = key(name, n, label, r)
                    log(f"build {label:10} {name:22} n={n:2} round {r + 1}/{rounds} (cap {cap:.0f} s)")
                    res = self.job("build", k, {"kind": "build", "tool": tool, "case": name, "n": n}, path, cap)
                    log("   ", _fmt_run(res))
                    times.setdefault(label, []).append(res.get("seconds", 0.0))
                    if res["status"] != "ok" or res["seconds"] > REPEAT_BELOW or (
                            len(times[label]) >= 3 and statistics.median(times[label]) > SHORT_RUN):
                        done[label] = True

    # -- 2. eval --------------------------------------------------------------------------------
    def eval(self) -> None:
        cap, runs = self.caps["eval"], RUNS[self.mode]
        tmp = tempfile.mkdtemp(prefix="symjac-bench-")
        for name, n in EVAL[self.mode]:
            for label, path in self.trees:
                log(f"eval  {label:10} {name:22} n={n}")
                job = {"kind": "eval", "tool": "symjac", "case": name, "n": n, "batch": EVAL_BATCH, "runs": runs,
                       "cap": cap / 3, "save": os.path.join(tmp, f"{label}.npy")}
                res = self.job("eval", key(name, n, label), job, path, cap)
                log("   ", _fmt_run(res))
            for peer in EVAL_PEERS:
                if peer == "jax" and not _installed("jax"):
                    self.state.put("eval", key(name, n, peer), {"status": "error", "error": "jax not installed"})
                    continue
                log(f"eval  {peer:10} {name:22} n={n}")
                job = {"kind": "eval", "tool": peer, "case": name, "n": n, "batch": EVAL_BATCH, "runs": runs,
                       "cap": cap / 3, "save": os.path.join(tmp, f"{peer}.npy")}
                res = self.job("eval", key(name, n, peer), job, ROOT, cap)
                log("   ", _fmt_run(res))
            self._compare(name, n, tmp)

    def _compare(self, name: str, n: int, tmp: str) -> None:
        """max |diff| of every tree's and peer's values against the last tree's (same points)."""
        import numpy as np

        ref_label = self.trees[-1][0]
        ref_file = os.path.join(tmp, f"{ref_label}.npy")
        if not os.path.exists(ref_file):
            return
        ref = np.load(ref_file)
        for label in [t[0] for t in self.trees[:-1]] + list(EVAL_PEERS):
            k = key(name, n, label)
            res, f = self.state.get("eval", k), os.path.join(tmp, f"{label}.npy")
            if res and res.get("status") == "ok" and os.path.exists(f):
                got = np.load(f)
                res[f"max |diff| vs {ref_label}"] = (
                    float(np.max(np.abs(got - ref))) if got.shape == ref.shape else f"shape {got.shape} vs {ref.shape}")
                self.state.put("eval", k, res)
            if os.path.exists(f):
                os.remove(f)
        os.remove(ref_file)

    # -- 3. check -------------------------------------------------------------------------------
    def check(self) -> None:
        cap, runs = self.caps["check"], RUNS[self.mode]
        for name, n, samples in CHECK[self.mode]:
            for label, path in self.trees:
                log(f"check {label:10} {name:22} n={n}" + (f" samples={samples}" if samples else ""))
                job = {"kind": "check", "case": name, "n": n, "runs": 3 if samples else runs, "cap": cap / 2,
                       "warmup": 0 if samples else CHECK_WARMUP}
                if samples:
                    job["samples"] = samples
                res = self.job("check", key(name, n, samples or 0, label), job, path, cap)
                log("   ", _fmt_run(res))

    # -- 4. defaults ----------------------------------------------------------------------------
    def defaults(self) -> None:
        cap = self.caps["defaults"]
        for name, n, _ in DEFAULTS[self.mode]:
            for label, path in self.trees:
                log(f"defaults {label:7} {name:22} n={n} (cap {cap:.0f} s)")
                res = self.job("defaults", key(name, n, label), {"kind": "defaults", "case": name, "n": n}, path, cap)
                log("   ", _fmt_run(res))

    # -- 5. startup -----------------------------------------------------------------------------
    def startup(self) -> None:
        runs = 5 if self.mode == "full" else 3
        timed = "import time; t = time.perf_counter(); import symjac; print(time.perf_counter() - t)"
        first = ("import time; t = time.perf_counter(); import symjac; symjac.function('x * y', x=(), y=());"
                 " print(time.perf_counter() - t)")
        heavy = "import sys, symjac; print(sorted(m for m in ('torch', 'hypothesis', 'sympy', 'numpy') if m in sys.modules))"
        for label, path in self.trees:
            if self.state.get("startup", label):
                continue
            env = dict(os.environ, PYTHONPATH=path, **thread_env(self.args.threads))

            def py(code):
                return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                      cwd=path, env=env).stdout.strip()

            log(f"startup {label}")
            self.state.put("startup", label, {
                "import symjac": statistics.median(float(py(timed)) for _ in range(runs)),
                "import symjac + first symjac.function": statistics.median(float(py(first)) for _ in range(runs)),
                "modules loaded by import symjac": py(heavy),
                "runs": runs,
            })


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


# ------------------------------------------------------------------------------------------ formatting
def _fmt_s(seconds) -> str:
    if seconds is None:
        return "-"
    if seconds >= 100:
        return f"{seconds:.0f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


def _fmt_run(r: dict) -> str:
    if r["status"] == "timeout":
        return f"> {r['cap']:.0f} s (cap)"
    if r["status"] == "error":
        return f"error: {r['error']}"
    if "seconds" in r and isinstance(r["seconds"], dict):
        return ", ".join(f"{k} {_fmt_s(v)}" for k, v in r["seconds"].items())
    if "outcome" in r:
        return f"{r['outcome']} in {_fmt_s(r['seconds'])}" + (f" ({r['error']})" if "error" in r else "")
    return _fmt_s(r.get("seconds"))


def _ratio(r) -> str:
    if r is None:
        return "-"
    return f"{r:.0f}x" if r >= 100 else f"{r:.3g}x"


def _versions() -> str:
    parts = []
    for name in ["sympy", "symengine", "numpy", "torch", "jax", "jaxlib", "hypothesis"]:
        try:
            parts.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    return ", ".join(parts)


def _machine() -> str:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def _git(path: str) -> str:
    try:
        head = subprocess.run(["git", "-C", path, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", path, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"


# ------------------------------------------------------------------------------------------ results
class Results:
    """Medians and ratios from the saved measurements (`State.data`), for the tables and floors."""

    def __init__(self, data: dict):
        self.data = data
        self.meta = data.get("meta", {})
        self.trees = [t[0] for t in self.meta.get("trees", [])]
        self.mode = self.meta.get("mode", "full")

    def build_runs(self, name, n, label) -> list[dict]:
        return [v for k, v in self.data.get("build", {}).items() if k.rsplit("|", 1)[0] == key(name, n, label)]

    def build_time(self, name, n, label) -> tuple[float | None, str]:
        """(median seconds or None, text for the table)."""
        runs = self.build_runs(name, n, label)
        if not runs:
            return None, "-"
        ok = [r for r in runs if r["status"] == "ok"]
        if not ok:
            return None, _fmt_run(runs[0])
        t = statistics.median(r["seconds"] for r in ok)
        return t, f"{_fmt_s(t)} ({len(ok)}x)"

    def build_ratio(self, name, n, label, peer) -> tuple[float | None, str]:
        """peer time / tree time; a peer past its cap gives a lower bound ('>')."""
        t, _ = self.build_time(name, n, label)
        p, _ = self.build_time(name, n, peer)
        if t is not None and p is not None:
            return p / t, _ratio(p / t)
        runs_p, runs_t = self.build_runs(name, n, peer), self.build_runs(name, n, label)
        if t is not None and runs_p and runs_p[0]["status"] == "timeout":
            r = runs_p[0]["cap"] / t
            return r, "> " + _ratio(r)
        if p is not None and runs_t and runs_t[0]["status"] == "timeout":
            r = p / runs_t[0]["cap"]
            return r, "< " + _ratio(r)
        if t is None and runs_t:  # the tree failed or passed its cap, and the peer did not finish either
            return None, _fmt_run(runs_t[0])
        return None, "-"

    def eval_row(self, name, n, label) -> dict | None:
        return self.data.get("eval", {}).get(key(name, n, label))

    def eval_ratio(self, name, n, label, peer="torch vmap(jacrev)") -> float | None:
        r = self.eval_row(name, n, label)
        if not r or r.get("status") != "ok" or peer not in r["seconds"]:
            return None
        return r["seconds"][peer] / r["seconds"]["symjac"]

    def eval_vs_peer_process(self, name, n, label, peer) -> float | None:
        r, p = self.eval_row(name, n, label), self.eval_row(name, n, peer)
        if not r or not p or r.get("status") != "ok" or p.get("status") != "ok":
            return None
        return list(p["seconds"].values())[0] / r["seconds"]["symjac"]

    def check_row(self, name, n, samples, label) -> dict | None:
        return self.data.get("check", {}).get(key(name, n, samples or 0, label))

    def check_ratio(self, name, n, samples, label, peer="gradcheck slow") -> float | None:
        r = self.check_row(name, n, samples, label)
        if not r or r.get("status") != "ok":
            return None
        ours = [v for k, v in r["seconds"].items() if k.startswith("symjac")]
        theirs = [v for k, v in r["seconds"].items() if k.startswith(peer)]
        return theirs[0] / ours[0] if ours and theirs else None

    def default_row(self, name, n, label) -> dict | None:
        return self.data.get("defaults", {}).get(key(name, n, label))


def _default_outcome(r: dict | None) -> str:
    if not r:
        return "-"
    if r["status"] == "timeout":
        return f"still running at the cap ({r['cap']:.0f} s): killed"
    if r["status"] == "error":
        return f"crashed: {r['error']}"
    if r["outcome"] == "checked":
        return f"built + checked ({r['verdict']}) in {_fmt_s(r['seconds'])}"
    return f"refused ({r['error']}, in {r['phase']}) in {_fmt_s(r['seconds'])}"


def _default_met(r: dict | None, accepted: bool) -> bool | None:
    if not r:
        return None
    ok = r["status"] == "ok"
    if accepted:
        return ok and r["outcome"] == "checked" and r["verdict"] == "pass"
    if not ok:
        return False
    if r["outcome"] == "checked":
        return r["seconds"] <= RUNAWAY_QUICK
    return r["seconds"] <= REFUSED_AT_ONCE


def floors(res: Results) -> list[tuple[str, str, dict[str, tuple[str, bool | None]]]]:
    """[(floor, needed, {tree: (measured, met)})], every floor of issue 14 that was measured."""
    mode = res.mode
    rows = []

    def per_tree(fn):
        return {label: fn(label) for label in res.trees}

    # build
    for name, n, peers in BUILD[mode]:
        if name in BUILD_FLOORS:
            peer, need, stretch = BUILD_FLOORS[name]

            def cell(label, name=name, n=n, peer=peer, need=need, stretch=stretch):
                r, text = res.build_ratio(name, n, label, peer)
                t, _ = res.build_time(name, n, label)
                if r is None:
                    return text, None if text == "-" else False
                met = r >= need and not text.startswith("<")
                return f"{text} ({_fmt_s(t)})" + (" stretch met" if stretch and r >= stretch else ""), met

            if any(res.build_runs(name, n, t) for t in res.trees):
                rows.append((f"build `{name}` n = {n} vs SymEngine jacobian + Lambdify(cse=True) + 1 eval",
                             f">= {need:g}x (stretch {stretch:g}x)", per_tree(cell)))
        elif name == "X @ X":
            for peer in peers:
                need = XX_FLOORS.get((peer, n))
                if need is None and res.mode == "quick":  # the smoke run's small n stands for the floor's
                    need = XX_FLOORS.get((peer, {"sympy": 16, "symengine": 32}[peer]))
                if need is None:
                    continue  # measured (section 1), but not a floor: X @ X n = 16 vs SymEngine

                def cell(label, n=n, peer=peer, need=need):
                    r, text = res.build_ratio("X @ X", n, label, peer)
                    if r is None:
                        return text, None if text == "-" else False
                    return text, r >= need and not text.startswith("<")

                if res.build_runs("X @ X", n, peer):
                    rows.append((f"build `X @ X` n = {n} vs {'plain SymPy' if peer == 'sympy' else 'SymEngine'}",
                                 f">= {need:g}x", per_tree(cell)))
    # eval
    for name, n in EVAL[mode]:
        if not any(res.eval_row(name, n, t) for t in res.trees):
            continue

        def cell(label, name=name, n=n):
            r = res.eval_ratio(name, n, label)
            row = res.eval_row(name, n, label) or {}
            if r is None:
                return (_fmt_run(row) if row.get("status") != "ok" else "-"), False if row else None
            jax = res.eval_vs_peer_process(name, n, label, "jax")
            return _ratio(r) + (f" (JAX {_ratio(jax)})" if jax else ""), r >= 1.0

        rows.append((f"eval `{name}` n = {n}, batch {EVAL_BATCH}, vs vmap(jacrev)", ">= 1x (stretch: JAX jit)",
                     per_tree(cell)))
    # check
    for name, n, samples in CHECK[mode]:
        need = 1.0 if samples else CHECK_FLOORS.get((name, n), 1.0)

        def cell(label, name=name, n=n, samples=samples, need=need):
            row = res.check_row(name, n, samples, label)
            r = res.check_ratio(name, n, samples, label)
            if r is None:
                return (_fmt_run(row) if row else "-"), False if row else None
            fast = res.check_ratio(name, n, samples, label, "gradcheck fast")
            return _ratio(r) + (f" (fast mode {_ratio(fast)})" if fast else ""), r >= need

        what = (f"`check(samples={samples})` of `{name}` n = {n} vs {samples} slow gradchecks" if samples
                else f"`check` at one point of `{name}`" + (f" n = {n}" if name != "x * y" else "") + " vs gradcheck slow")
        needed = ">= 1x" if need == 1.0 else "within 1.5x (>= 0.67x)"
        if any(res.check_row(name, n, samples, t) for t in res.trees):
            rows.append((what, needed, per_tree(cell)))
    # defaults
    for name, n, accepted in DEFAULTS[mode]:
        if not any(res.default_row(name, n, t) for t in res.trees):
            continue
        shape = "x".join(str(d) for d in CASES[name].inputs(n).get("X", CASES[name].inputs(n).get("Q", (n,))))

        def cell(label, name=name, n=n, accepted=accepted):
            r = res.default_row(name, n, label)
            return _default_outcome(r), _default_met(r, accepted)

        needed = ("accepted: built + checked (pass)" if accepted
                  else f"finishes in <= {RUNAWAY_QUICK:.0f} s or refused in <= {REFUSED_AT_ONCE:.0f} s")
        rows.append((f"defaults: `{name}` {shape}", needed, per_tree(cell)))
    return rows


# ------------------------------------------------------------------------------------------ rendering
def _met(m: bool | None) -> str:
    return {True: "yes", False: "NO", None: "-"}[m]


def render(data: dict) -> str:
    res = Results(data)
    meta = res.meta
    trees = meta.get("trees", [])
    lines = [
        "# symjac benchmarks",
        "",
        f"Written by `python benchmarks/run.py {meta.get('argv', '')}` ({meta.get('mode', 'full')} run), started"
        f" {meta.get('started', '?')}, finished {meta.get('finished', '(running)')}.",
        "",
        f"- Machine: {meta.get('machine', '?')}; load average (1 min) {meta.get('load start', '?')} at the start,"
        f" {meta.get('load end', '?')} at the end; per section: {meta.get('load sections', {})}.",
        f"- Versions: {meta.get('versions', '?')}.",
        f"- Threads: every subprocess runs with `torch.set_num_threads({meta.get('threads', '?')})` and"
        f" OMP/MKL/OpenBLAS/NumExpr threads {meta.get('threads', '?')} (env vars), JAX on CPU with"
        " intra-op parallelism 1.",
        "- Trees (each symjac measurement runs once per tree, `PYTHONPATH=<tree>`):"
        + "".join(f" **{label}** = `{path}` ({meta.get('commits', {}).get(label, '?')});" for label, path in trees),
        "",
        "Ratios: above 1x means symjac (that tree) is faster. `(5x)`: median of 5 fresh processes.",
        "",
    ]
    if meta.get("mode") == "quick":
        lines += ["**A `--quick` smoke run**: sizes below the floors' own, few runs, short caps. Its pass/fail",
                  "rows are not issue 14's floors; the full run (`python benchmarks/run.py`) measures those.", ""]
    fl = floors(res)
    if fl:
        lines += ["## Floors (issue 14)", "", "| floor | needed | " + " | ".join(f"{t} | met" for t in res.trees) + " |",
                  "|---|---|" + "---|---|" * len(res.trees)]
        for what, needed, cells in fl:
            lines.append(f"| {what} | {needed} | "
                         + " | ".join(f"{cells[t][0]} | {_met(cells[t][1])}" for t in res.trees) + " |")
        lines.append("")
    if "build" in data:
        lines += _render_build(res)
    if "eval" in data:
        lines += _render_eval(res)
    if "check" in data:
        lines += _render_check(res)
    if "defaults" in data:
        lines += _render_defaults(res)
    if "startup" in data:
        lines += ["## 5. Startup", "", "| tree | `import symjac` | import + first `symjac.function` | modules loaded by `import symjac` |",
                  "|---|---|---|---|"]
        for t in res.trees:
            s = data["startup"].get(t)
            if s:
                lines.append(f"| {t} | {_fmt_s(s['import symjac'])} | {_fmt_s(s['import symjac + first symjac.function'])}"
                             f" | {s['modules loaded by import symjac']} |")
        lines.append("")
    lines += _render_method(meta)
    return "\n".join(lines) + "\n"


def _render_build(res: Results) -> list[str]:
    trees = res.trees
    lines = [
        "## 1. Build: exact Jacobian, compiled, one evaluation",
        "",
        "From nothing to the first evaluated Jacobian, each in a fresh process, the tools alternated in rounds.",
        "symjac: `symjac.function` (budgets raised: the time cap decides) + `.jacobians()` + `.evaluate` at one",
        "point of each (compiles). SymEngine: DenseMatrix + `jacobian` + `Lambdify(cse=True, backend='lambda')` +",
        "one call. Plain SymPy: Matrix + `Matrix.jacobian` + `lambdify(cse=True)` + one call. `tanh(W @ x + b)`:",
        "W, x and b are all inputs. Phases of symjac: function / jacobians / compile + eval. Ratio: the peer's",
        "time over the tree's.",
        "",
        "| function | n | peer | peer time | " + " | ".join(f"{t} | phases | ratio" for t in trees) + " |",
        "|---|---|---|---|" + "---|---|---|" * len(trees),
    ]
    for name, n, peers in BUILD[res.mode]:
        for peer in peers:
            _, ptext = res.build_time(name, n, peer)
            cells = []
            for t in trees:
                _, text = res.build_time(name, n, t)
                ok = [r for r in res.build_runs(name, n, t) if r["status"] == "ok"]
                phases = ""
                if ok:
                    mid = sorted(ok, key=lambda r: r["seconds"])[len(ok) // 2]["phases"]
                    phases = " / ".join(_fmt_s(mid[p]) for p in ("function", "jacobian", "compile + eval") if p in mid)
                cells.append(f"{text} | {phases} | {res.build_ratio(name, n, t, peer)[1]}")
            lines.append(f"| `{name}` | {n} | {peer} | {ptext} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def _render_eval(res: Results) -> list[str]:
    trees = res.trees
    peers_cols = ["JAX jit(vmap(jacrev))", "SymEngine lambda", "SymEngine llvm"]
    lines = [
        f"## 2. Evaluation at a batch of {EVAL_BATCH:,}",
        "",
        "Jacobians per second (float64, all inputs' Jacobians). Each tree's process times its Jacobians' evaluation",
        "(`f.jacobians().evaluate`, all inputs from one plan, where the tree has `symjac.Jacobians`; else each `Jacobian.evaluate`)",
        "and `torch.func.vmap(torch.func.jacrev(f, argnums=all))` interleaved, after a warm-up call each (compile /",
        "first call excluded); `vs vmap` is that same-process ratio. JAX `jit(vmap(jacrev))` (after its jit",
        "warm-up) and SymEngine `Lambdify(cse=True)` run in their own processes: their columns give throughput",
        "and the ratio of the last tree's symjac over them. `max |diff|`: largest difference from the last tree's",
        "values at the same points, over every other tree and peer.",
        "",
        "| function | n | " + " | ".join(f"{t} | vs vmap" for t in trees) + " | vmap(jacrev) | "
        + " | ".join(peers_cols) + " | max \\|diff\\| |",
        "|---|---|" + "---|---|" * len(trees) + "---|" + "---|" * len(peers_cols) + "---|",
    ]
    last = trees[-1] if trees else None
    for name, n in EVAL[res.mode]:
        cells, diffs, vmap = [], [], None
        for t in trees:
            r = res.eval_row(name, n, t)
            if not r:
                cells.append("- | -")
                continue
            if r.get("status") != "ok":
                cells.append(f"{_fmt_run(r)} | -")
                continue
            cells.append(f"{EVAL_BATCH / r['seconds']['symjac']:,.0f} | {_ratio(res.eval_ratio(name, n, t))}")
            if "torch vmap(jacrev)" in r["seconds"]:
                vmap = EVAL_BATCH / r["seconds"]["torch vmap(jacrev)"]
            diffs += [v for k, v in r.items() if k.startswith("max |diff|") and isinstance(v, float)]
        peer_cells = []
        for peer in EVAL_PEERS:
            p = res.eval_row(name, n, peer)
            if not p or p.get("status") != "ok":
                peer_cells.append("-" if not p else _fmt_run(p)[:40])
                continue
            rate = EVAL_BATCH / list(p["seconds"].values())[0]
            ratio = res.eval_vs_peer_process(name, n, last, peer) if last else None
            peer_cells.append(f"{rate:,.0f} ({_ratio(ratio)})")
            diffs += [v for k, v in p.items() if k.startswith("max |diff|") and isinstance(v, float)]
        vmap_text = f"{vmap:,.0f}" if vmap else "-"
        diff_text = f"{max(diffs):.1e}" if diffs else "-"
        lines.append(f"| `{name}` | {n} | " + " | ".join(cells) + f" | {vmap_text} | " + " | ".join(peer_cells)
                     + f" | {diff_text} |")
    lines.append("")
    return lines


def _render_check(res: Results) -> list[str]:
    lines = [
        "## 3. check",
        "",
        "In each tree's process, interleaved at the same points: `symjac.check(f, at=point)` (warm: the first",
        "call, which compiles, is listed apart), `torch.autograd.gradcheck(f, inputs)` slow mode",
        "(`fast_mode=False`) and fast mode, float64 inputs requiring grad, gradcheck's default tolerances;",
        f"timed after {CHECK_WARMUP} untimed rounds of all three (Python's specialising interpreter runs a",
        "sub-millisecond call cold for its first few calls; RESULTS.json keeps those rounds' medians, `warm-up seconds`).",
        "`check(samples=N)` (N seeded draws; the older tree: Hypothesis draws) against N slow gradchecks. Ratio: gradcheck's time over",
        "symjac's.",
        "",
        "| function | n | tree | first call | check | gradcheck slow | ratio | gradcheck fast | ratio | verdicts |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, n, samples in CHECK[res.mode]:
        for t in res.trees:
            r = res.check_row(name, n, samples, t)
            if not r:
                continue
            if r.get("status") != "ok":
                lines.append(f"| `{name}` | {n} | {t} | {_fmt_run(r)} | | | | | | |")
                continue
            s = r["seconds"]
            ours = next(v for k, v in s.items() if k.startswith("symjac"))
            slow = next((v for k, v in s.items() if k.startswith("gradcheck slow")), None)
            fast = next((v for k, v in s.items() if k.startswith("gradcheck fast")), None)
            label = f"`check(samples={samples})`" if samples else ""
            lines.append(
                f"| `{name}` {label} | {n} | {t} | {_fmt_s(r['first call'])} | {_fmt_s(ours)} | {_fmt_s(slow)} | "
                f"{_ratio(res.check_ratio(name, n, samples, t))} | {_fmt_s(fast)} | "
                f"{_ratio(res.check_ratio(name, n, samples, t, 'gradcheck fast'))} | "
                f"{', '.join(f'{k} {v}' for k, v in r['verdicts'].items())} |")
    lines.append("")
    return lines


def _render_defaults(res: Results) -> list[str]:
    lines = [
        "## 4. Default limits: time to outcome",
        "",
        "`symjac.function` with symjac's DEFAULT limits (no `limits=`), `.jacobians()`, `symjac.check` at one point,",
        "in a fresh process killed at the cap; the time is measured inside the process (imports excluded), one run",
        "each. Floor: the first six are accepted (built and checked); the four runaways finish within",
        f"{RUNAWAY_QUICK:.0f} s or are refused within {REFUSED_AT_ONCE:.0f} s.",
        "",
        "| function | n | accepted by the floor | " + " | ".join(f"{t} | met" for t in res.trees) + " |",
        "|---|---|---|" + "---|---|" * len(res.trees),
    ]
    messages = []
    for name, n, accepted in DEFAULTS[res.mode]:
        cells = []
        for t in res.trees:
            r = res.default_row(name, n, t)
            cells.append(f"{_default_outcome(r)} | {_met(_default_met(r, accepted))}")
            if r and r.get("outcome") == "refused":
                m = r["message"]
                messages.append(f"- {t}, `{name}` n = {n}: {m[:200] + ' ...' if len(m) > 200 else m}")
        lines.append(f"| `{name}` | {n} | {'yes' if accepted else 'runaway'} | " + " | ".join(cells) + " |")
    lines.append("")
    if messages:
        lines += ["Refusal messages (first line):", ""] + messages + [""]
    return lines


def _render_method(meta: dict) -> list[str]:
    return [
        "## Method",
        "",
        "- Fresh process per measurement (`benchmarks/_worker.py`, started with `PYTHONPATH=<tree>`): no tool",
        "  profits from caches another filled (SymPy caches expressions globally). Imports happen before the",
        "  timed part (symjac: a tiny `symjac.function` first, which loads its modules).",
        "- Builds: rounds of (each tree, then each peer), up to "
        f"{BUILD_ROUNDS.get(meta.get('mode', 'full'), 5)} rounds: a tool whose median after 3 runs is over"
        f" {SHORT_RUN:.0f} s stops at 3, a run over {REPEAT_BELOW:.0f} s or past its cap is not repeated;"
        " the median of the runs is shown, with their count.",
        f"- Evaluation and check: up to {RUNS.get(meta.get('mode', 'full'), 7)} interleaved rounds inside one process"
        " (symjac, then its torch peer), medians. Peers of other processes (JAX, SymEngine) are compared across"
        " processes of the same run.",
        "- Caps (seconds per subprocess): " + ", ".join(f"{k} {v:.0f}" for k, v in meta.get("caps", {}).items())
        + ". A build past its cap gives a bound on the ratio (`>` / `<`).",
        "- The machine is shared: load averages above say how busy it was; ratios are of runs seconds"
        " (same process) or minutes (same run) apart.",
        "",
    ]


def readme_table(data: dict) -> str:
    """The README's benchmark table: each floor row, the trees side by side."""
    res = Results(data)
    lines = ["| what | floor | " + " | ".join(res.trees) + " |", "|---|---|" + "---|" * len(res.trees)]
    rows = floors(res)
    for what, needed, cells in rows:
        if not what.startswith(("eval ", "defaults: ")):
            lines.append(f"| {what} | {needed} | "
                         + " | ".join(f"{cells[t][0]} ({_met(cells[t][1])})" for t in res.trees) + " |")
    # the per-function rows of eval and defaults, summarized (RESULTS.md has them one by one)
    evals = [(w, c) for w, _, c in rows if w.startswith("eval ")]
    if evals:
        def summary(t):
            met = sum(1 for _, c in evals if c[t][1])
            worst = min(evals, key=lambda wc: _leading_ratio(wc[1][t][0]))
            name = worst[0].split("`")[1]
            return f"{met} of {len(evals)} met; lowest `{name}` {worst[1][t][0].split(' ')[0]}"

        lines.append(f"| evaluation at batch {EVAL_BATCH:,} vs `vmap(jacrev)`, every benchmark function | >= 1x | "
                     + " | ".join(summary(t) for t in res.trees) + " |")
    for accepted in (True, False):
        group = [(w, c) for w, needed, c in rows if w.startswith("defaults: ")
                 and needed.startswith("accepted") == accepted]
        if group:
            what = ("default limits accept " if accepted else "default limits, runaways ") + ", ".join(
                w.split(": ", 1)[1] for w, _ in group)
            needed = "built + checked" if accepted else f"done in <= {RUNAWAY_QUICK:.0f} s or refused at once"
            lines.append(f"| {what} | {needed} | "
                         + " | ".join(f"{sum(1 for _, c in group if c[t][1])} of {len(group)}" for t in res.trees)
                         + " |")
    return "\n".join(lines) + "\n"


def _leading_ratio(text: str) -> float:
    try:
        return float(text.split("x", 1)[0].lstrip("<> "))
    except ValueError:
        return -1.0  # failed or missing: listed as the lowest


# ------------------------------------------------------------------------------------------ main
def parse_trees(values: list[str]) -> list[tuple[str, str]]:
    trees = []
    for v in values or ["symjac=."]:
        label, sep, path = v.partition("=")
        if not sep:
            label, path = os.path.basename(os.path.abspath(v)) or "symjac", v
        path = os.path.abspath(path)
        if not label or not os.path.isdir(os.path.join(path, "symjac")):
            raise SystemExit(f"--tree: expected LABEL=PATH to a checkout with a symjac/ folder, got {v!r}")
        if label in [t[0] for t in trees] or label in ("sympy", "symengine", *EVAL_PEERS):
            raise SystemExit(f"--tree: label {label!r} is used twice or is a peer's name")
        trees.append((label, path))
    return trees


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", dest="trees", metavar="LABEL=PATH",
                        help="a symjac checkout to measure (repeatable; default: symjac=.)")
    parser.add_argument("--quick", action="store_true", help="small sizes, short caps: a smoke run (prints only)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, of {','.join(SECTIONS)}")
    parser.add_argument("--cap", type=float, default=None, help="one cap (seconds) for every subprocess")
    parser.add_argument("--threads", type=int, default=1, help="torch / BLAS threads in every subprocess (default 1)")
    parser.add_argument("--out", default=None, help="Markdown report (default: benchmarks/RESULTS.md; --quick: none)")
    parser.add_argument("--state", default=None,
                        help="JSON of every measurement (default: benchmarks/RESULTS.json; --quick: a temporary file)")
    parser.add_argument("--resume", action="store_true", help="reuse the measurements saved in --state")
    parser.add_argument("--readme", action="store_true", help="print the README table from --state and exit")
    args = parser.parse_args(argv)
    if args.state is None:
        args.state = (os.path.join(tempfile.gettempdir(), "symjac-benchmarks-quick.json") if args.quick
                      else os.path.join(HERE, "RESULTS.json"))
    if args.readme:
        if not os.path.exists(args.state):
            raise SystemExit(f"--readme: no measurements at {args.state}; run `python benchmarks/run.py` first"
                             " (or pass --state PATH)")
        with open(args.state) as f:
            print(readme_table(json.load(f)), end="")
        return
    if args.out is None and not args.quick:
        args.out = os.path.join(HERE, "RESULTS.md")
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        parser.error(f"--sections: unknown {unknown}; known: {list(SECTIONS)}")
    args.trees = parse_trees(args.trees)
    state = State(args.state, args.resume)
    runner = Runner(args, state)
    warnings.filterwarnings("ignore")
    meta = state.data.get("meta", {}) if args.resume else {}
    meta.update(
        argv=" ".join(sys.argv[1:] if argv is None else argv), mode=runner.mode, trees=args.trees,
        commits={label: _git(path) for label, path in args.trees}, machine=_machine(), versions=_versions(),
        threads=args.threads, caps=runner.caps, started=meta.get("started") or _now(),
        **{"load start": meta.get("load start") or round(os.getloadavg()[0], 2)},
    )
    meta.setdefault("load sections", {})
    meta.pop("finished", None)
    state.data["meta"] = meta
    t0 = time.perf_counter()
    for section in sections:
        getattr(runner, section)()
        meta["load sections"][section] = round(os.getloadavg()[0], 2)
        state.data["meta"] = meta
        state.save()
        if args.out:  # after every section: a partial report survives a failure
            with open(args.out, "w") as f:
                f.write(render(state.data))
    meta["load end"] = round(os.getloadavg()[0], 2)
    meta["finished"] = _now() + f" ({(time.perf_counter() - t0) / 60:.1f} min)"
    state.data["meta"] = meta
    state.save()
    text = render(state.data)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    print(text)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


if __name__ == "__main__":
    main()
