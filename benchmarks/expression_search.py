"""A long search for disagreements: `symjac.check` on random expressions of the expression language.

    python benchmarks/expression_search.py                          # 1,500 expressions, depth 3
    python benchmarks/expression_search.py --examples 1500 --depth 4

The test suite cross-checks a few random expressions on every run
(tests/test_strategies.py::test_random_expressions_never_fail_the_cross_check). This script draws
many more (`symjac.strategies.expressions()`, random seeds on every run, no example database), runs
`check(f, samples=N)` on each, and prints every `fail` report and every exception that is not a
`SymjacError`. A correct engine gives neither: each one found so far was a symjac bug (a tolerance
too tight, a crash), fixed with a test in tests/test_check.py or tests/test_symengine.py.
Exit status: 0 when nothing was found, 1 otherwise.
"""

from __future__ import annotations

import argparse
import time
import traceback
import warnings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=1500, help="random expressions to check (default 1500)")
    parser.add_argument("--depth", type=int, default=3, help="max_depth of the expressions (default 3)")
    parser.add_argument("--samples", type=int, default=5, help="points per check (default 5)")
    args = parser.parse_args(argv)

    from hypothesis import HealthCheck, given, settings

    import symjac as sj
    from symjac.strategies import expressions

    warnings.filterwarnings("ignore")  # torch.func's DeprecationWarning, once per check
    found: list[str] = []
    checked = [0]

    @settings(max_examples=args.examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(expressions(shapes={"x": (2,), "X": (2, 2), "y": (3,)}, max_depth=args.depth))
    def search(f):
        checked[0] += 1
        try:
            report = sj.check(f, samples=args.samples, seed=0)
        except sj.SymjacError:
            return
        except Exception as error:  # an escape: what this script is looking for
            found.append(f"CRASH {f.source}: {error!r}")
            print(found[-1], flush=True)
            return
        if report.verdict == "fail":
            found.append(f"FAIL {f.source}\n{report}")
            print(found[-1], flush=True)

    start = time.time()
    try:
        search()
    except Exception:  # Hypothesis itself stopping (e.g. an unsatisfiable strategy) is reported too
        traceback.print_exc()
        found.append("the search itself stopped")
    print(f"checked {checked[0]} expressions (depth {args.depth}, samples={args.samples}) in "
          f"{time.time() - start:.0f} s: {len(found)} found", flush=True)
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
