"""The thorough profile: every catalog function at 100+ samples, and the verify corpus at length.

    python benchmarks/suite_thorough.py [--samples 100] [--seed 0] [--corpus-samples 200] [--seeds 5]

Prints one line per catalog function (verdict, points passed / inconclusive / failed, seconds) and
per corpus case (the wrong implementation's verdict and counterexample size; the twins' verdicts in
float64 and float32 over `--seeds` seeds), then the totals. Exit status 1 if anything is off: a
catalog function not passing, a wrong implementation not failing, or a twin failing.
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--corpus-samples", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--skip-corpus", action="store_true")
    args = parser.parse_args(argv)

    import symjac
    from symjac import _catalog
    from symjac.suite import _corpus

    bad = []
    start = time.perf_counter()
    for name in _catalog.names():
        t = time.perf_counter()
        report = _catalog.run_entry(name, samples=args.samples, seed=args.seed)
        run = report.run
        print(f"catalog {name:<20} {report.verdict:<12} {run.passed:>4}/{run.inconclusive:>3}/{run.failed:>3} "
              f"(pass/inconclusive/fail of {run.points_tried})  {time.perf_counter() - t:6.2f} s", flush=True)
        if report.verdict != "pass":
            bad.append(str(report))
    catalog_seconds = time.perf_counter() - start
    print(f"catalog: {len(_catalog.CATALOG)} functions at {args.samples} samples in {catalog_seconds:.1f} s", flush=True)

    if not args.skip_corpus:
        start = time.perf_counter()
        for case in _corpus.CASES:
            t = time.perf_counter()
            spec = case.spec()
            wrong = symjac.verify(case.impl(wrong=True), spec, samples=args.corpus_samples, seed=args.seed, kind=case.kind)
            twins = []
            for dtype in ("float64", "float32"):
                for s in range(args.seeds):
                    r = symjac.verify(case.impl(wrong=False), spec, samples=args.corpus_samples // 2,
                                      seed=args.seed + s, kind=case.kind, dtype=dtype)
                    twins.append(r.verdict)
                    if r.verdict == "fail":
                        bad.append(str(r))
            if wrong.verdict != "fail":
                bad.append(str(wrong))
            entry = wrong.worst.label() if wrong.worst else "-"
            print(f"corpus  {case.name:<15} wrong: {wrong.verdict:<5} at {entry:<28} twins: "
                  f"{twins.count('pass')} pass, {twins.count('fail')} fail, {twins.count('inconclusive')} inconclusive"
                  f"  {time.perf_counter() - t:6.2f} s", flush=True)
        print(f"corpus: {len(_corpus.CASES)} cases in {time.perf_counter() - start:.1f} s", flush=True)

    for text in bad:
        print(text, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
