"""Discovery run: which compositions of torch's transforms disagree with the exact derivatives.

`python benchmarks/compositions.py` (options: `--samples N`, `--seed S`, `--only NAME`, `--catalog`,
`--out PATH`) runs, for every function of the expression language (`symjac._parse.FUNCTIONS`),
torch's own builtin for it through `symjac.verify` with

- `order=2`: the four compositions `reverse-over-reverse`, `forward-over-reverse`,
  `reverse-over-forward`, `forward-over-forward` against the exact second derivative;
- `batch=3`: `vmap(jacrev)`, `vmap(jacfwd)`, `vmap(vjp)`, `vmap(jvp)`, `jacrev(vmap)`,
  `jacfwd(vmap)` against the exact Jacobian at each of 3 points;
- `order=2, batch=3`: the four compositions under `vmap`, both nestings;

each at a fixed well-conditioned point and over `--samples` drawn points (the minimal
counterexample shown); and, at the same point (unbatched runs), `torch.autograd.gradgradcheck` and
`torch.autograd.gradcheck(check_forward_ad=True, check_batched_grad=True,
check_batched_forward_grad=True)`, to show what each catches. With `--catalog`, the catalog's
functions are checked the same way through `symjac.check` (torch's transforms over symjac's
generated torch code): there every composition should agree (no false alarm).

Each disagreement is confirmed by a second reference: the worst entry of the disagreeing route
is compared with the exact formula evaluated by mpmath at 50 digits (`symjac._arbitrate`); the
table says "confirmed" only when the mpmath value agrees with symjac's exact side and not with the
disagreeing route. Prints a Markdown table (and writes it to `--out` if given).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import symjac as sj  # noqa: E402


def builtins():
    """name -> (spec, torch implementation) for every function of the language."""
    import torch

    b = [1.0, -2.0, 0.5]
    tb = torch.tensor(b, dtype=torch.float64)
    ew = {
        "exp": torch.exp, "log": torch.log, "sin": torch.sin, "cos": torch.cos, "tan": torch.tan,
        "tanh": torch.tanh, "sqrt": torch.sqrt, "abs": torch.abs, "relu": torch.relu, "sigmoid": torch.sigmoid,
    }
    table = {name: (sj.function(f"{name}(x)", x=(4,)), fn) for name, fn in ew.items()}
    table.update({
        "sum": (sj.function("sum(X * X)", X=(2, 3)), lambda X: torch.sum(X * X)),
        "mean": (sj.function("mean(X * X)", X=(2, 3)), lambda X: torch.mean(X * X)),
        "transpose": (sj.function("transpose(X) @ X", X=(2, 3)), lambda X: torch.transpose(X, 0, 1) @ X),
        "mm": (sj.function("mm(X, Y)", X=(2, 3), Y=(3, 2)), torch.mm),
        "matmul": (sj.function("matmul(X, Y)", X=(2, 3), Y=(3, 2)), torch.matmul),
        "dot": (sj.function("dot(x, y)", x=(3,), y=(3,)), torch.dot),
        "outer": (sj.function("outer(x, y)", x=(3,), y=(2,)), torch.outer),
        "kron": (sj.function("kron(X, Y)", X=(2, 2), Y=(2, 2)), torch.kron),
        "trace": (sj.function("trace(X @ X)", X=(3, 3)), lambda X: torch.trace(X @ X)),
        "det": (sj.function("det(X)", X=(3, 3)), torch.linalg.det),
        "logdet": (sj.function("log(det(X))", X=(3, 3)), torch.logdet),
        "inv": (sj.function("inv(X)", X=(3, 3)), torch.linalg.inv),
        "solve": (sj.function("solve(A, b)", A=(3, 3), consts={"b": b}), lambda A: torch.linalg.solve(A, tb)),
        "solve_both": (sj.function("solve(A, B)", A=(2, 2), B=(2, 2)), torch.linalg.solve),
        "softmax": (sj.function("softmax(x)", x=(4,)), lambda x: torch.softmax(x, -1)),
        "logsumexp": (sj.function("logsumexp(x)", x=(4,)), lambda x: torch.logsumexp(x, -1)),
        "norm": (sj.function("norm(x)", x=(4,)), torch.linalg.vector_norm),
        "matrix_norm": (sj.function("norm(X)", X=(2, 3)), torch.linalg.matrix_norm),
    })
    return table


MODES = {"order=2": dict(order=2), "batch=3": dict(batch=3), "order=2, batch=3": dict(order=2, batch=3)}


def _confirm(f, report) -> str:
    """mpmath at 50 digits at the worst entry: does it side with the exact route?"""
    from symjac._arbitrate import entry_cell, exact_jacobian_entries
    from symjac._second_order import _exact_second_entry

    entry = report.worst
    if entry is None:
        return "-"
    point = report.point
    if entry.batch_index is not None:
        point = {k: np.asarray(v)[entry.batch_index] for k, v in point.items()}
    if entry.kind == "second":
        truth = _exact_second_entry(f, point, entry)
    else:
        truth = exact_jacobian_entries(f, point, [entry_cell(f, entry)])[0]
    exact = entry.values.get("symbolic")
    odd = [r for r in (report.odd_one_out or "").split(", ") if r in entry.values]
    tol = entry.tolerance or 0.0
    exact_ok = exact is not None and abs(exact - truth) <= tol
    odd_off = any(not abs(entry.values[r] - truth) <= tol for r in odd)
    return "confirmed" if exact_ok and odd_off else f"NOT confirmed (mpmath {truth!r})"


def _worst_gap(report) -> str:
    """Largest |route - exact| of the disagreeing routes (non-finite values said as such)."""
    odd = set((report.odd_one_out or "").split(", "))
    pairs = [p for p in report.pairs if "symbolic" in p.routes and odd & set(p.routes) and not p.ok]
    if not pairs:
        return "-"
    gap = max(p.max_abs_error for p in pairs)
    worst = report.worst.values if report.worst else {}
    nonfinite = any(not np.isfinite(v) for k, v in worst.items() if k in odd)
    if gap == 0.0 or nonfinite:
        return f"{gap:.2e} + NaN" if gap else "NaN"
    return f"{gap:.2e}"


def generic_point(spec, batch=None) -> dict:
    """A fixed, well-conditioned point: entries in [0.5, 1.5], square matrices + n I (seed 0)."""
    rng = np.random.default_rng(0)
    values = {}
    for inp in spec.inputs:
        shape = ((batch,) if batch else ()) + inp.shape
        v = rng.uniform(0.5, 1.5, size=shape)
        if len(inp.shape) == 2 and inp.shape[0] == inp.shape[1]:
            v = v + inp.shape[0] * np.eye(inp.shape[0])
        values[inp.name] = v
    return values


def _torch_checks(impl, spec, values) -> tuple[str, str]:
    """gradgradcheck and gradcheck with the batched checks, at one point (float64)."""
    import torch

    args = tuple(torch.tensor(np.asarray(values[n]), dtype=torch.float64, requires_grad=True) for n in spec.input_names)
    out = []
    for name, call in (
        ("gradgradcheck", lambda: torch.autograd.gradgradcheck(impl, args, raise_exception=False)),
        ("gradcheck", lambda: torch.autograd.gradcheck(
            impl, args, check_forward_ad=True, check_batched_grad=True, check_batched_forward_grad=True,
            raise_exception=False)),
    ):
        try:
            out.append("pass" if call() else "FAIL")
        except Exception as error:  # an op gradcheck cannot run: say so
            out.append(f"error ({type(error).__name__})")
    return out[0], out[1]


def run_builtins(samples: int, seed: int, only=None) -> list[tuple]:
    rows = []
    for name, (spec, impl) in builtins().items():
        if only and name not in only:
            continue
        for mode, options in MODES.items():
            for where in ("generic point", f"{samples} samples"):
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if where == "generic point":
                        point = generic_point(spec, options.get("batch"))
                        report = sj.verify(impl, spec, at=point, **options)
                        shown = report
                    else:
                        report = sj.verify(impl, spec, samples=samples, seed=seed, **options)
                        shown = report.run.counterexample or report.run.worst or report
                seconds = time.perf_counter() - start
                ggc, gc = ("-", "-")
                if shown.point:
                    at = shown.point if "batch" not in options else {k: np.asarray(v)[0] for k, v in shown.point.items()}
                    ggc, gc = _torch_checks(impl, spec, at)
                if report.verdict == "fail":
                    what, gap, confirmed = shown.odd_one_out or "(undetermined)", _worst_gap(shown), _confirm(spec, shown)
                else:
                    what, gap, confirmed = "-", "-", "-"
                rows.append((name, f"{mode}, {where}", report.verdict, what, gap, confirmed, ggc, gc, seconds))
                print(f"{name:12s} {mode + ', ' + where:30s} {report.verdict:12s} {what[:80]:80s} {gap} {confirmed} "
                      f"ggc={ggc} gc={gc} {seconds:.1f}s", flush=True)
    return rows


def run_catalog(samples: int, seed: int, only=None) -> list[tuple]:
    from symjac import _catalog

    rows = []
    for e in _catalog.CATALOG:
        if only and e.name not in only:
            continue
        f = e.function()
        for mode, options in MODES.items():
            start = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    report = sj.check(f, samples=samples, seed=seed, **options)
                verdict = report.verdict
                what = (report.run.counterexample.odd_one_out if report.run.counterexample else None) or "-"
            except sj.TooLargeError as error:
                verdict, what = "refused", str(error).split(";")[0][:80]
            rows.append((e.name, mode, verdict, what, time.perf_counter() - start))
            print(f"{e.name:20s} {mode:17s} {verdict:12s} {what}", flush=True)
    return rows


def table(rows) -> str:
    lines = [
        "| builtin | run | verdict | disagreeing torch routes | max abs error | mpmath | gradgradcheck | gradcheck (batched) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, mode, verdict, what, gap, confirmed, ggc, gc, _ in rows:
        lines.append(f"| {name} | {mode} | {verdict} | {what} | {gap} | {confirmed} | {ggc} | {gc} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", action="append")
    parser.add_argument("--catalog", action="store_true", help="also check the catalog (symjac.check, generated torch code)")
    parser.add_argument("--skip-builtins", action="store_true", help="only the catalog (with --catalog)")
    parser.add_argument("--out", help="write the Markdown table here")
    args = parser.parse_args(argv)
    text = "" if args.skip_builtins else table(run_builtins(args.samples, args.seed, args.only))
    if args.catalog:
        crow = run_catalog(max(1, args.samples // 2), args.seed, args.only)
        bad = [r for r in crow if r[2] not in ("pass", "refused")]
        text += "\n\nCatalog through symjac.check (generated torch code), order=2 / batch=3 / both: " \
                f"{sum(r[2] == 'pass' for r in crow)} pass, {len(bad)} not pass, {sum(r[2] == 'refused' for r in crow)} refused by budget"
        for r in bad:
            text += f"\n- {r[0]} {r[1]}: {r[2]} {r[3]}"
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
