"""The long fuzz run: tests/test_fuzz.py with a large, random Hypothesis budget.

    python benchmarks/fuzz_long.py                 # 2,000 examples per fuzz test
    python benchmarks/fuzz_long.py --examples 20000 --out benchmarks/FUZZ.md

CI runs the same tests with the "ci" profile (25 derandomized examples per test). This script
selects the "fuzz" profile of tests/conftest.py (random: new examples on every run, no example
database, no health checks), runs pytest in this process, and reports how many examples each fuzz
test ran, how long it took, and whether any example escaped (an exception that is not a
`SymjacError`, a hang past the per-example limit, or executed user text). Exit status: pytest's.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=2000, help="max examples per fuzz test (default 2000)")
    parser.add_argument("-k", default=None, help="pytest -k expression selecting fuzz tests")
    parser.add_argument("--out", default=None, help="also write the summary (Markdown) to this file")
    args = parser.parse_args(argv)

    os.environ["SYMJAC_HYPOTHESIS_PROFILE"] = "fuzz"
    os.environ["SYMJAC_FUZZ_EXAMPLES"] = str(args.examples)
    import pytest

    pytest_args = [os.path.join(ROOT, "tests", "test_fuzz.py"), "-q", "-p", "no:cacheprovider", "-W", "ignore",
                   "--timeout", "0", "--hypothesis-show-statistics"]
    if args.k:
        pytest_args += ["-k", args.k]
    start = time.perf_counter()
    status = pytest.main(pytest_args)
    seconds = time.perf_counter() - start
    module = sys.modules.get("test_fuzz")
    examples = dict(module.EXAMPLES) if module else {}
    false_fails = list(module.FAILS) if module else []

    lines = [
        f"# Long fuzz run, {datetime.date.today().isoformat()}",
        "",
        f"`python benchmarks/fuzz_long.py --examples {args.examples}` on {platform.platform()}, "
        f"Python {platform.python_version()}: pytest exit status {int(status)} "
        f"({'no escapes' if int(status) == 0 else 'FAILURES: see the pytest output'}), {seconds:.0f} s.",
        "",
        "| fuzz target | examples run |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {n:,} |" for name, n in sorted(examples.items())]
    lines += [f"| total | {sum(examples.values()):,} |", ""]
    lines += [f"Checks of a correct function (no candidate Jacobian) that said \"fail\": {len(false_fails)}."]
    lines += [f"- `{text}` {declared}" for text, declared, _, _ in false_fails[:10]]
    status = status if not false_fails else max(int(status), 1)
    summary = "\n".join(lines) + "\n"
    print(summary)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(summary)
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
