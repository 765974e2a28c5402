"""Running one job in a worker process under a hard time limit.

SymPy's work is pure Python that can run for hours inside one call (a determinant, an
assumption query, a simplification); `signal.alarm` only interrupts it between bytecodes of
Python code that does not swallow the exception, and not at all outside the main thread. A
separate process can always be stopped. So the `symjac` command parses its arguments in the
calling process (usage errors come back at once) and runs the job itself in a fresh Python
process (`python -c ...`, not `fork`: forking a process that already runs torch or OpenMP threads
can deadlock the child). When the job runs past `--timeout` seconds, the worker's whole process
group is killed (SIGKILL), reaped, and `run_job` raises `JobTimeoutError` (the command turns it
into `EXIT_TIMEOUT` and a one-line message). No process is left behind: the worker is its own
process group leader, and it exits on its own if the calling process goes away.

The worker is generic: it imports nothing of symjac but `_errors`, and runs the job function it is
named (`"symjac._cli:run_in_process"` for the command), called as `job(argv, stdout, stderr)` and
returning an exit status. `_run_until_killed` is a documented test-only job that provably runs
until it is killed: the time-limit tests run it, so their outcome does not depend on how fast
SymPy is on the machine.

Exit statuses of the command, the one table of them (also in `docs/limits.md`):

| status | meaning |
|---|---|
| 0 | pass |
| 1 | fail: a mismatch between routes |
| 2 | bad input or usage (one line on stderr), a budget exceeded (`TooLargeError`) included |
| 3 | inconclusive |
| 4 | the job ran past `--timeout` and was stopped (`EXIT_TIMEOUT`) |
| 5 | internal error: the worker crashed or was killed (`EXIT_INTERNAL`) |
| 130 | interrupted with Ctrl-C (`EXIT_INTERRUPTED`) |

`--timeout 0` runs the job in the calling process, without a time limit. A time limit is at most
`MAX_TIMEOUT` seconds (the operating system's wait calls take no longer ones).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import TextIO

from ._errors import InvalidArgumentError, JobTimeoutError

__all__ = [
    "DEFAULT_TIMEOUT",
    "SUITE_TIMEOUT",
    "MAX_TIMEOUT",
    "EXIT_PASS",
    "EXIT_FAIL",
    "EXIT_USAGE",
    "EXIT_INCONCLUSIVE",
    "EXIT_TIMEOUT",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "PipeSafe",
    "add_job_options",
    "run_job",
]

#: Seconds a CLI job may run by default (`--timeout`). The budgets (`symjac.Limits`) keep the
#: work that they allow under about 20 s here; the time limit stops what they cannot size.
DEFAULT_TIMEOUT = 60.0
#: `symjac suite` runs every catalog function at many points (about 13 s at its default 10 samples
#: here, minutes at 100): its own default.
SUITE_TIMEOUT = 600.0
#: The largest time limit (seconds, about 11.6 days): `poll` takes milliseconds as a C int.
MAX_TIMEOUT = 1_000_000.0
EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INCONCLUSIVE, EXIT_TIMEOUT, EXIT_INTERNAL = 0, 1, 2, 3, 4, 5
#: Ctrl-C (128 + SIGINT, the shell's convention).
EXIT_INTERRUPTED = 130
#: Statuses a job returns on its own (pass, fail, usage, inconclusive).
_JOB_STATUSES = frozenset({EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INCONCLUSIVE})
#: How often a worker checks that the process that started it is still there (seconds).
_ORPHAN_POLL = 0.5

#: The worker's bootstrap: drop the current directory from `sys.path` (so that a file named
#: `numpy.py` or `symjac.py` where the command is run cannot shadow a module), put symjac's own
#: location first, and run the job it reads from stdin.
_BOOTSTRAP = (
    "import sys; del sys.path[0]; sys.path.insert(0, sys.argv[1]); "
    "from symjac._worker import _child_main; _child_main()"
)


def _timeout(text: str) -> float:
    rule = f"must be a number of seconds from 0 to {MAX_TIMEOUT:.0f}"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{rule}; received {text!r}") from None
    if not math.isfinite(value) or not 0 <= value <= MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(f"{rule}; received {text!r}")
    return value


def add_job_options(parser: argparse.ArgumentParser, *, default: float = DEFAULT_TIMEOUT) -> None:
    """Add `--timeout` to a subcommand's parser."""
    parser.add_argument(
        "--timeout",
        type=_timeout,
        default=default,
        metavar="SECONDS",
        help=f"stop the job after this many seconds, exit status {EXIT_TIMEOUT} "
        f"(default {default:g}; 0: no limit, run in this process)",
    )


def run_job(target: str, argv: Sequence[str], *, timeout: float, out: TextIO, err: TextIO) -> int:
    """Run the job `target` (`"symjac.module:function"`) on `argv` in a worker process; stop it
    after `timeout` seconds.

    The worker's stdout and stderr are copied to `out` and `err` when it ends (on a timeout, what
    it wrote so far). Returns the job's exit status, or `EXIT_INTERNAL` when the worker died
    without one. Raises `JobTimeoutError` when the job ran past `timeout` and was stopped.

    Example:
        >>> import io
        >>> out, err = io.StringIO(), io.StringIO()
        >>> run_job("symjac._cli:run_in_process", ["jacobian", "x**2", "--input", "x=scalar"],
        ...         timeout=60, out=out, err=err)
        0
        >>> "2*x" in out.getvalue()
        True
    """
    module, sep, name = target.partition(":")
    if not (sep and module.split(".")[0] == "symjac" and name.isidentifier()):
        raise InvalidArgumentError(f"target: must name a job function of symjac as 'symjac.module:function'; "
                                   f"received {target!r}")
    if not (math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT):
        raise InvalidArgumentError(f"timeout: must be a number of seconds over 0 and at most {MAX_TIMEOUT:.0f}; "
                                   f"received {timeout!r}")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    command = [sys.executable, "-c", _BOOTSTRAP, root]
    job = json.dumps({"target": target, "argv": list(argv), "parent": os.getpid()})
    popen_options: dict = {}
    if os.name == "posix":
        popen_options["start_new_session"] = True  # its own process group: killed as a whole
    else:  # pragma: no cover - Windows
        popen_options["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            **popen_options,
        )
    except OSError as error:
        print(f"symjac: error: cannot start the worker process ({error}); --timeout 0 runs the job "
              "in this process", file=err)
        return EXIT_INTERNAL
    try:
        stdout, stderr = proc.communicate(job.encode("utf-8"), timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        stdout, stderr = proc.communicate()
        _copy(stdout, out)
        _copy(stderr, err)
        elapsed = time.monotonic() - start
        error = JobTimeoutError(f"the job ran past its time limit of {timeout:g} s and was stopped after {elapsed:.1f} s")
        error.timeout, error.elapsed = timeout, elapsed
        raise error from None
    except BaseException:  # KeyboardInterrupt, or anything else: never leave the worker running
        _kill(proc)
        proc.wait()
        raise
    _copy(stdout, out)
    _copy(stderr, err)
    status = proc.returncode
    if status in _JOB_STATUSES or status == EXIT_INTERNAL:
        return status
    how = f"signal {-status}" if status < 0 else f"status {status}"
    print(f"symjac: error: the job's worker process died ({how}); this is a bug or the machine ran out of memory",
          file=err)
    return EXIT_INTERNAL


class PipeSafe:
    """A text stream whose writes stop quietly once its reader has gone (`symjac ... | head`).

    Without it, the first write after the reader closed the pipe raises `BrokenPipeError`, and
    a command whose result is known ends in a traceback (and Python's complaint at exit). With it,
    the command finishes and exits with its own status; what it still writes goes to /dev/null.
    Other write errors (`> /dev/full`: no space left; a closed stream, `None` as `sys.stdout`)
    stop it the same way and are kept in `error`, for the command to report in one line.
    """

    def __init__(self, stream: TextIO | None):
        self._stream = stream
        self.broken = stream is None
        self.error: str | None = None

    def write(self, text: str) -> int:
        if self._stream is None and text:
            self.error = "it is closed"
        if not self.broken:
            try:
                self._stream.write(text)
            except BrokenPipeError:
                self._broke()
            except (OSError, ValueError) as error:  # ENOSPC, EBADF; ValueError: a closed file
                self._broke(error)
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._broke()
            except (OSError, ValueError) as error:
                self._broke(error)

    def _broke(self, error: BaseException | None = None) -> None:
        self.broken = True
        if error is not None:
            self.error = getattr(error, "strerror", None) or str(error) or type(error).__name__
        try:  # so that the interpreter's own flush at exit does not complain either
            fd = self._stream.fileno()
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
        except (AttributeError, OSError, ValueError):
            pass

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _copy(data: bytes, stream: TextIO) -> None:
    if data:
        stream.write(data.decode("utf-8", errors="replace"))
        stream.flush()


def _kill(proc: subprocess.Popen) -> None:
    """SIGKILL the worker and its process group (the worker is the group's leader)."""
    if proc.poll() is not None:
        return
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows
            proc.kill()
    except (ProcessLookupError, PermissionError):
        proc.kill()


# --------------------------------------------------------------------------- the worker side


def _watch_parent(parent: int) -> None:
    """Exit when the process that started this worker is gone (never outlive it)."""
    while True:
        time.sleep(_ORPHAN_POLL)
        if os.getppid() != parent:
            os._exit(EXIT_INTERNAL)


def _die_with_parent() -> None:
    """On Linux, ask the kernel to SIGKILL this worker when its parent dies (even while this process
    is stuck in C code holding the GIL, where the watching thread cannot run)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _child_main() -> None:
    job = json.loads(sys.stdin.read())
    _die_with_parent()
    if os.getppid() != job["parent"]:  # the parent died before we could ask
        os._exit(EXIT_INTERNAL)
    threading.Thread(target=_watch_parent, args=(job["parent"],), daemon=True).start()
    try:
        module, _, name = job["target"].partition(":")
        run = getattr(importlib.import_module(module), name)
        status = run(job["argv"], sys.stdout, sys.stderr)
    except BaseException as error:  # noqa: BLE001 - the one place that reports a crash
        first = str(error).splitlines()[0] if str(error) else ""
        print(f"symjac: internal error: {type(error).__name__}: {first[:300]}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_INTERNAL)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _run_until_killed(argv: Sequence[str], out: TextIO, err: TextIO) -> int:
    """Test-only job: runs until it is killed, by construction (the time-limit tests use it so
    that their outcome does not depend on the machine's speed)."""
    while True:
        time.sleep(3600)
