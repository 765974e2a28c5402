"""Field benchmark (issue 11): symjac.verify on torch builtins and on realistic custom Functions,
side by side with `torch.autograd.gradcheck` at its defaults.

    PYTHONPATH=. python benchmarks/field.py                 # builtin sweep + corpus, seeds 0 1 2
    PYTHONPATH=. python benchmarks/field.py --seeds 0 --only-corpus
    PYTHONPATH=. python benchmarks/field.py --only-builtins --dtypes float64

(a) Builtin sweep: `symjac.verify(builtin, spec)` at default settings (100 points, default domain:
    far draws out to |x| = 40 reach saturated regions) in float32 and float64, for every builtin of
    `symjac.suite._field.BUILTINS`. Every builtin is correct, so every `fail` is a false alarm (or a
    real torch deviation: see docs/findings.md); each is printed with its reproducer.
(b) Corpus: the 32 custom Functions of `symjac.suite._field.CASES` (16 wrong, 16 right), per seed:
    symjac's verdict (wrong: caught when `fail`; right: clean unless `fail`) and gradcheck's at its
    defaults (atol=1e-5, rtol=1e-3, on `torch.randn` inputs, seeded, made valid as a user would).
    A wrong one counts as caught only when caught on every seed; a right one as clean only when
    clean on every seed.
"""

from __future__ import annotations

import argparse
import sys
import time


def _verify(impl, spec, *, seed, dtype, roles, samples):
    import symjac as sj

    options = {"seed": seed, "dtype": dtype, "roles": roles}
    if samples is not None:
        options["samples"] = samples
    return sj.verify(impl, spec, **options)


def _reproducer(name, report) -> str:
    featured = report.run.counterexample if report.run and report.run.counterexample else report
    return f"{name}: {featured.reproduce}  (worst: {featured.worst.label() if featured.worst else '-'})"


def builtin_sweep(seeds, dtypes, samples, out) -> int:
    from symjac.suite import _field

    print("== (a) builtin sweep: verify(torch builtin, spec) at default settings ==", file=out)
    alarms = []
    total = 0
    for b in _field.BUILTINS:
        cells = []
        for dtype in dtypes:
            for seed in seeds:
                total += 1
                start = time.perf_counter()
                try:
                    report = _verify(b.impl(), b.spec(), seed=seed, dtype=dtype, roles=b.roles, samples=samples)
                    verdict = report.verdict
                except Exception as error:  # noqa: BLE001 - a crash is a finding too
                    verdict, report = f"error {type(error).__name__}: {error}"[:80], None
                cells.append(f"{dtype[-2:]}/s{seed}:{verdict[:4]}")
                if verdict != "pass":
                    alarms.append((b.name, dtype, seed, verdict, report))
                seconds = time.perf_counter() - start
        print(f"  {b.name:<18} {' '.join(cells)}  ({seconds:.1f} s last)", file=out, flush=True)
    fails = [a for a in alarms if a[3] == "fail" or a[3].startswith("error")]
    print(f"  builtins: {total - len(alarms)} of {total} runs pass; {len(fails)} false alarms (fail or error); "
          f"{len(alarms) - len(fails)} inconclusive", file=out)
    for name, dtype, seed, verdict, report in alarms:
        where = _reproducer(name, report) if report is not None else verdict
        print(f"    {verdict:<12} {dtype} seed {seed}: {where}", file=out)
    return len(fails)


def _gradcheck(c, seed) -> bool:
    """True when gradcheck at its defaults passes (raises nothing, returns True)."""
    import torch

    from symjac.suite import _field

    try:
        return bool(torch.autograd.gradcheck(c.impl(), _field.gradcheck_inputs(c, seed)))
    except Exception:  # noqa: BLE001 - GradcheckError, or the function raising on its inputs
        return False


def corpus(seeds, samples, out) -> tuple[int, int]:
    from symjac.suite import _field

    print("== (b) corpus: custom autograd Functions (half wrong), symjac.verify vs gradcheck (defaults) ==", file=out)
    print(f"  {'case':<24} {'bug class':<44} {'symjac':<10} {'gradcheck':<10}", file=out)
    tally = {"symjac": {"caught": 0, "clean": 0}, "gradcheck": {"caught": 0, "clean": 0}}
    misses = []
    for c in _field.CASES:
        verdicts, grads = [], []
        for seed in seeds:
            try:
                report = _verify(c.impl(), c.spec(), seed=seed, dtype="float64", roles=c.roles, samples=samples)
                verdicts.append(report.verdict)
            except Exception as error:  # noqa: BLE001
                verdicts.append(f"error:{type(error).__name__}")
                report = None
            grads.append(_gradcheck(c, seed))
            if (report is not None) and ((report.verdict == "fail") != c.wrong):
                misses.append((c.name, seed, report))
        if c.wrong:
            ours = all(v == "fail" for v in verdicts)
            theirs = not any(grads)
            tally["symjac"]["caught"] += ours
            tally["gradcheck"]["caught"] += theirs
            label = ("caught" if ours else "MISSED", "caught" if theirs else "missed")
        else:
            ours = all(v != "fail" for v in verdicts)
            theirs = all(grads)
            tally["symjac"]["clean"] += ours
            tally["gradcheck"]["clean"] += theirs
            label = ("clean" if ours else "FALSE", "clean" if theirs else "false")
        print(f"  {c.name:<24} {c.bug:<44} {label[0]:<10} {label[1]:<10}", file=out, flush=True)
    n_wrong = len(_field.names(wrong=True))
    n_right = len(_field.names(wrong=False))
    print(f"  seeds {list(seeds)}: a wrong one is caught when caught on every seed, a right one clean when clean on every seed",
          file=out)
    for tool in ("symjac", "gradcheck"):
        t = tally[tool]
        print(f"  {tool:<10} caught {t['caught']} of {n_wrong} wrong, clean {t['clean']} of {n_right} right", file=out)
    for name, seed, report in misses:
        print(f"    {name} seed {seed}: {report.verdict}: {_reproducer(name, report)}", file=out)
    return n_wrong - tally["symjac"]["caught"], n_right - tally["symjac"]["clean"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--dtypes", nargs="+", default=["float64", "float32"], choices=["float64", "float32"])
    parser.add_argument("--samples", type=int, default=None, help="points per verify (default: verify's, 100)")
    parser.add_argument("--only-builtins", action="store_true")
    parser.add_argument("--only-corpus", action="store_true")
    args = parser.parse_args(argv)
    out = sys.stdout
    start = time.perf_counter()
    bad = 0
    if not args.only_corpus:
        bad += builtin_sweep(args.seeds, args.dtypes, args.samples, out)
    if not args.only_builtins:
        missed, false = corpus(args.seeds, args.samples, out)
        bad += missed + false
    print(f"field benchmark: {time.perf_counter() - start:.0f} s", file=out)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
