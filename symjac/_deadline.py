"""A time limit around in-process work, ending it with `JobTimeoutError`, and a progress line.

Used by `verify(..., timeout=S)` (`time_limit`) and by `symjac.function`, `Function.jacobian` and
`symjac.check` under `Limits.timeout` and `Limits.progress` (`job`). Inside a `job`, the one walk
over expression DAGs (`symjac._dag.postorder`) calls `checkpoint` every few thousand nodes: that is
where the limit is checked outside the main thread, and where the progress line is updated.

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
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, TextIO

from ._errors import InvalidArgumentError, JobTimeoutError

__all__ = ["Deadline", "Progress", "adopted", "checkpoint", "current_job", "job", "progress_wanted", "time_limit", "validate_timeout"]

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
        self.expired = False  # this limit (not an enclosing one) has passed

    def check(self) -> None:
        if self.seconds is not None and time.monotonic() - self.start >= self.seconds:
            self.expired = True
            raise _Expired()


class time_limit:
    """`with time_limit(seconds, what=..., hint=...) as deadline:` runs the block under a limit of
    `seconds` (None: no limit); past it, raise `JobTimeoutError` (its message ends with `hint`, how
    to raise the limit). `deadline` is the block's `Deadline`.

    An earlier timer that would have fired during the block fires right after it instead; one that
    is due before this limit (pytest-timeout's, an enclosing limit's) is left running, and this
    limit is then checked between steps only. (A class rather than a generator: `symjac.check`
    enters one per call.)"""

    __slots__ = ("deadline", "what", "hint", "_previous", "_timer")

    def __init__(self, seconds: float | None, *, what: str, hint: str = ""):
        self.deadline = Deadline(seconds)
        self.what, self.hint = what, hint
        self._timer = None  # (remaining, interval) of the timer found, when this limit took the signal

    def __enter__(self) -> Deadline:
        deadline = self.deadline
        seconds = deadline.seconds
        if seconds is None or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
            return deadline
        remaining, interval = signal.getitimer(signal.ITIMER_REAL)
        if 0 < remaining <= seconds:
            return deadline  # an earlier timer is due first: it keeps the signal

        def on_alarm(signum, frame):
            deadline.expired = True
            raise _Expired()

        self._previous = signal.signal(signal.SIGALRM, on_alarm)
        self._timer = (remaining, interval)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        return deadline

    def __exit__(self, kind, error, traceback) -> bool:
        deadline = self.deadline
        if self._timer is not None:
            remaining, interval = self._timer
            self._timer = None
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous)
            if remaining:
                left = remaining - (time.monotonic() - deadline.start)
                signal.setitimer(signal.ITIMER_REAL, max(left, 0.01), interval)
        if kind is None or not issubclass(kind, _Expired) or not deadline.expired:
            return False  # no exception, another one, or an enclosing limit's signal (that limit reports it)
        elapsed = time.monotonic() - deadline.start
        timeout = JobTimeoutError(
            f"timeout: {self.what} ran past its time limit of {deadline.seconds:g} s and was stopped after {elapsed:.1f} s"
            + (f"; {self.hint}" if self.hint else "")
        )
        timeout.timeout, timeout.elapsed = deadline.seconds, elapsed
        raise timeout from None


# --------------------------------------------------------------------------- jobs: limit and progress

#: The job running in each thread (None outside one); nested jobs join the outermost.
_local = threading.local()
#: Nodes of `_dag.postorder` between two `checkpoint` calls.
CHECK_EVERY = 2048
#: The progress line appears once a job has run this many seconds, and is redrawn at most this often.
SHOW_AFTER = 1.0
REDRAW_EVERY = 0.25


def progress_wanted(setting: bool | None, stream: Any = None) -> bool:
    """Whether to show progress: `setting` when it is True or False; for None (automatic), when the
    stream (stderr) is a terminal and neither pytest nor a CI system runs us."""
    if setting is not None:
        return setting
    stream = sys.stderr if stream is None else stream
    try:  # the terminal first: elsewhere (a pipe, pytest's capture) the answer is known without the environment
        if not stream.isatty():
            return False
    except (AttributeError, ValueError, OSError):
        return False
    return not (os.environ.get("PYTEST_CURRENT_TEST") or os.environ.get("CI"))


class Progress:
    """A one-line progress display on a terminal: `symjac: building X @ X: differentiating, 41,000
    nodes, 3.1 s (limit 300 s)`. Shown only once the job has run `after` seconds, redrawn at most
    every `every` seconds, erased when the job ends."""

    def __init__(self, what: str, *, stream: TextIO, limit: float | None, after: float | None = None,
                 every: float | None = None):
        self.what, self.stream, self.limit = what, stream, limit
        self.after = SHOW_AFTER if after is None else after
        self.every = REDRAW_EVERY if every is None else every
        self.start = time.monotonic()
        self.last = -math.inf
        self.phase = ""
        self.nodes = 0
        self.width = 0

    def update(self, nodes: int = 0, *, force: bool = False) -> None:
        self.nodes += nodes
        now = time.monotonic()
        elapsed = now - self.start
        if not force and (elapsed < self.after or now - self.last < self.every):
            return
        self.last = now
        limit = f" (limit {self.limit:g} s)" if self.limit is not None else ""
        phase = f": {self.phase}" if self.phase else ""
        line = f"symjac: {self.what}{phase}, {self.nodes:,} nodes, {elapsed:.1f} s{limit}"
        try:
            self.stream.write("\r" + line.ljust(self.width))
            self.stream.flush()
        except (OSError, ValueError):
            return
        self.width = max(self.width, len(line))

    def close(self) -> None:
        if self.width:
            try:
                self.stream.write("\r" + " " * self.width + "\r")
                self.stream.flush()
            except (OSError, ValueError):
                pass
            self.width = 0


class _Job:
    def __init__(self, deadline: Deadline, progress: Progress | None):
        self.deadline, self.progress = deadline, progress


class job:
    """`with job(what, timeout=..., progress=..., phase=..., hint=...):` runs the block as a job:
    under `timeout` seconds (`time_limit`), with a progress line when `progress_wanted(progress)`.
    Inside an enclosing job (in this thread), the block only names its `phase` on that job's line:
    the outermost limit governs. (A class, as `time_limit`.)"""

    __slots__ = ("what", "timeout", "progress", "phase", "hint", "stream", "_outer", "_previous", "_limit",
                 "_display")

    def __init__(self, what: str, *, timeout: float | None, progress: bool | None = None, phase: str = "",
                 hint: str = "", stream: TextIO | None = None):
        self.what, self.timeout, self.progress, self.phase, self.hint, self.stream = (
            what, timeout, progress, phase, hint, stream)

    def __enter__(self) -> None:
        outer = self._outer = getattr(_local, "job", None)
        if outer is not None:
            shown = outer.progress
            self._previous = shown.phase if shown else ""
            if shown and self.phase:
                shown.phase = self.phase
            return
        stream = sys.stderr if self.stream is None else self.stream
        display = self._display = (Progress(self.what, stream=stream, limit=self.timeout)
                                   if progress_wanted(self.progress, stream) else None)
        if display:
            display.phase = self.phase
        limit = self._limit = time_limit(self.timeout, what=self.what, hint=self.hint)
        _local.job = _Job(limit.__enter__(), display)

    def __exit__(self, kind, error, traceback) -> bool:
        outer = self._outer
        if outer is not None:
            if outer.progress:
                outer.progress.phase = self._previous
            return False
        _local.job = None
        if self._display:
            self._display.close()
        return self._limit.__exit__(kind, error, traceback)


def current_job() -> Any:
    """The job running in this thread (None outside one), for `adopted` in another thread."""
    return getattr(_local, "job", None)


@contextlib.contextmanager
def adopted(other: Any) -> Iterator[None]:
    """Run the block, in this thread, as part of `other` (`current_job()` of the thread that waits
    for this one, e.g. `_dag.call_deep`'s): its time limit is checked at this thread's checkpoints
    too, so that work handed to a helper thread stops when the job's limit passes."""
    previous = getattr(_local, "job", None)
    _local.job = other if previous is None else previous
    try:
        yield
    finally:
        _local.job = previous


def checkpoint(nodes: int = 0) -> None:
    """Between two steps of a job: stop it if its time limit has passed (`JobTimeoutError` from the
    enclosing `job`), and update its progress line with `nodes` more nodes done. Outside a job:
    nothing."""
    current = getattr(_local, "job", None)
    if current is None:
        return
    current.deadline.check()
    if current.progress is not None:
        current.progress.update(nodes)
