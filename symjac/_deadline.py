"""A time limit around in-process work (`verify(..., timeout=S)`), ending it with `JobTimeoutError`.

In the main thread the limit is a `SIGALRM` timer (`signal.setitimer`): it interrupts Python code
wherever it is, a hanging implementation included, between two bytecodes (a single C call that
never returns, such as one huge torch kernel, is not interrupted until it returns). Any timer
set before (pytest-timeout's, say) is put back afterwards with its remaining time. Outside the main
thread, where signals cannot be used, the limit is checked between points only. For a limit that
always holds, run the work in a process (the `symjac` command does: `symjac._worker`).

The signal raises `_Expired`, a `BaseException`, so that no `except Exception` on its way (in the
implementation, in Hypothesis, which would otherwise shrink it as a failure) swallows it; the
`time_limit` block turns it into `JobTimeoutError`.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Iterator

from ._errors import InvalidArgumentError, JobTimeoutError

__all__ = ["Deadline", "time_limit", "validate_timeout"]

#: The largest time limit in seconds (as the CLI's `--timeout`).
MAX_TIMEOUT = 1_000_000.0


class _Expired(BaseException):
    """The time limit passed (internal; `time_limit` raises `JobTimeoutError`)."""


def validate_timeout(timeout, *, argument: str = "timeout") -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not (
        math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT
    ):
        raise InvalidArgumentError(
            f"{argument}: must be None (no limit) or a number of seconds over 0 and at most {MAX_TIMEOUT:.0f}; "
            f"received {timeout!r}"
        )
    return float(timeout)


class Deadline:
    """When the limit ends; `check()` between steps raises once it has passed."""

    def __init__(self, seconds: float | None):
        self.seconds = seconds
        self.start = time.monotonic()

    def check(self) -> None:
        if self.seconds is not None and time.monotonic() - self.start >= self.seconds:
            raise _Expired()


@contextlib.contextmanager
def time_limit(seconds: float | None, *, what: str) -> Iterator[Deadline]:
    """Run the block under a limit of `seconds` (None: no limit); past it, raise `JobTimeoutError`.

    An earlier timer that would have fired during the block fires right after it instead."""
    deadline = Deadline(seconds)
    if seconds is None:
        yield deadline
        return
    use_signal = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
    if use_signal:
        def on_alarm(signum, frame):
            raise _Expired()

        previous = signal.signal(signal.SIGALRM, on_alarm)
        remaining, interval = signal.getitimer(signal.ITIMER_REAL)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield deadline
    except _Expired:
        elapsed = time.monotonic() - deadline.start
        error = JobTimeoutError(
            f"timeout: {what} ran past its time limit of {seconds:g} s and was stopped after {elapsed:.1f} s"
        )
        error.timeout, error.elapsed = seconds, elapsed
        raise error from None
    finally:
        if use_signal:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            if remaining:
                left = remaining - (time.monotonic() - deadline.start)
                signal.setitimer(signal.ITIMER_REAL, max(left, 0.01), interval)
