"""The symjac pytest plugin (`pytest11` entry point): options and an asserting fixture.

Inert unless used: it adds the `symjac` option group and the `symjac_assert` fixture, and imports
nothing at load beyond the standard library (symjac's own modules, NumPy, SymPy, torch and
Hypothesis are imported when a test first uses the fixture).

- `--symjac-samples N`: points per `verify`/`check` run made through the fixture (overrides the
  test's own `samples=`; default: the test's value, else 100).
- `--symjac-seed S`: the seed of those runs (overrides the test's `seed=`; default: the test's, else 0).
- `--symjac-bound B`: the largest magnitude of a drawn entry in those runs (overrides the test's
  `bound=`; default: the test's, else mostly within 3 with one point in two out to 40).

```python
def test_my_backward(symjac_assert):
    spec = symjac.function("X @ X", X=(3, 3))
    symjac_assert.verify(MatSquare.apply, spec)      # fails the test with the report as the message
```
"""

from __future__ import annotations

import argparse

import pytest

__all__ = ["SymjacAssert"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an int >= 1; received {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an int >= 1; received {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an int >= 0; received {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an int >= 0; received {text!r}")
    return value


def _bound(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0.25; received {text!r}") from None
    if not (0.25 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0.25; received {text!r}")
    return value


def pytest_addoption(parser) -> None:
    group = parser.getgroup("symjac", "symjac derivative checks")
    group.addoption(
        "--symjac-samples", dest="symjac_samples", type=_positive_int, default=None, metavar="N",
        help="points per symjac verify/check run made through the symjac_assert fixture "
        "(overrides the test's samples=; default: the test's, else 100)",
    )
    group.addoption(
        "--symjac-seed", dest="symjac_seed", type=_seed, default=None, metavar="S",
        help="seed of those runs (overrides the test's seed=; default: the test's, else 0)",
    )
    group.addoption(
        "--symjac-bound", dest="symjac_bound", type=_bound, default=None, metavar="B",
        help="largest magnitude of a drawn entry in those runs (overrides the test's bound=; "
        "default: the test's, else mostly within 3 with one point in two out to 40)",
    )


def pytest_report_header(config):
    samples, seed = config.getoption("symjac_samples"), config.getoption("symjac_seed")
    if samples is None and seed is None:
        return None
    return f"symjac: samples={samples if samples is not None else 'per test'}, seed={seed if seed is not None else 'per test'}"


class SymjacAssert:
    """Runs `symjac.verify` / `symjac.check` and fails the test, with the report as the message,
    unless the verdict is "pass". Returns the Report when it passes."""

    def __init__(self, samples: int | None, seed: int | None, bound: float | None = None):
        self.samples = samples
        self.seed = seed
        self.bound = bound

    def _options(self, samples, seed, bound=None) -> dict:
        samples = self.samples if self.samples is not None else samples
        seed = self.seed if self.seed is not None else seed
        bound = self.bound if self.bound is not None else bound
        return {"samples": samples, "seed": seed if seed is not None else 0, "bound": bound}

    def verify(self, impl, spec, /, *, samples: int | None = None, seed: int | None = None,
               bound: float | None = None, at=None, **options):
        """`symjac.verify(impl, spec, ...)`, asserted to pass. An explicit `at=` (one point) wins over
        `--symjac-samples`: the test then verifies that point only."""
        import symjac

        if at is not None:
            chosen = {"seed": self._options(samples, seed)["seed"]}
            if samples is not None:  # the test's own samples= with at=: verify says why not
                chosen["samples"] = samples
            if bound is not None:
                chosen["bound"] = bound
            return self._assert(symjac.verify(impl, spec, at=at, **chosen, **options))
        return self._assert(symjac.verify(impl, spec, **self._options(samples, seed, bound), **options))

    def check(self, f, /, *, samples: int | None = None, seed: int | None = None,
              bound: float | None = None, **options):
        """`symjac.check(f, samples=..., seed=...)` over points of f's domain, asserted to pass."""
        import symjac
        from symjac._sampling import DEFAULT_SAMPLES

        names = set(getattr(f, "input_names", ()))
        if "at" in options or names & set(options):  # values at one point: a check there, whatever --symjac-samples says
            return self._assert(symjac.check(f, **({"samples": samples} if samples is not None else {}), **options))
        chosen = self._options(samples, seed, bound)
        chosen["samples"] = chosen["samples"] or DEFAULT_SAMPLES
        return self._assert(symjac.check(f, **chosen, **options))

    @staticmethod
    def _assert(report):
        if report.verdict != "pass":
            pytest.fail(str(report), pytrace=False)
        return report


@pytest.fixture
def symjac_assert(request) -> SymjacAssert:
    """Assert symjac verifications; `--symjac-samples`/`--symjac-seed` apply to them."""
    config = request.config
    return SymjacAssert(config.getoption("symjac_samples"), config.getoption("symjac_seed"), config.getoption("symjac_bound"))
