"""Running one CLI job in a worker process under a hard time limit.

SymPy's work is pure Python that can run for hours inside one call (a determinant, an
assumption query, a simplification); `signal.alarm` only interrupts it between bytecodes of
Python code that does not swallow the exception, and not at all outside the main thread. A
separate process can always be stopped. So the `symjac` command parses its arguments in the
calling process (usage errors come back at once) and runs the job itself in a fresh Python
process (`python -c ...`, not `fork`: forking a process that already runs torch or OpenMP threads
can deadlock the child). When the job runs past `--timeout` seconds, the worker's whole process
group is killed (SIGKILL), reaped, and the command exits with `EXIT_TIMEOUT` and a one-line
message. No process is left behind: the worker is its own process group leader, and it exits on
its own if the calling process goes away.

Exit statuses of the command (also in `docs/limits.md`):

| status | meaning |
|---|---|
| 0 | pass |
| 1 | fail: a mismatch between routes |
| 2 | bad input or usage (one line on stderr), a budget exceeded (`TooLargeError`) included |
| 3 | inconclusive |
| 4 | the job ran past `--timeout` and was stopped (`EXIT_TIMEOUT`) |
| 5 | internal error: the worker crashed or was killed (`EXIT_INTERNAL`) |

`--timeout 0` runs the job in the calling process, without a time limit.
"""

from __future__ import annotations

import argparse
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

__all__ = ["DEFAULT_TIMEOUT", "SUITE_TIMEOUT", "EXIT_TIMEOUT", "EXIT_INTERNAL", "PipeSafe", "add_job_options", "run_job"]

#: Seconds a CLI job may run by default (`--timeout`). The budgets (`symjac.Limits`) keep the
#: work that they allow under about 20 s here; the time limit stops what they cannot size.
DEFAULT_TIMEOUT = 60.0
#: `symjac suite` runs every catalog function at many points (about 13 s at its default 10 samples
#: here, minutes at 100): its own default.
SUITE_TIMEOUT = 600.0
EXIT_TIMEOUT = 4
EXIT_INTERNAL = 5
#: Statuses a job returns on its own (pass, fail, usage, inconclusive).
_JOB_STATUSES = frozenset({0, 1, 2, 3})
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
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0; received {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0; received {text!r}")
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


def run_job(argv: Sequence[str], *, timeout: float, out: TextIO, err: TextIO) -> int:
    """Run `symjac <argv>` in a worker process; stop it after `timeout` seconds.

    The worker's stdout and stderr are copied to `out` and `err` when it ends (on a timeout, what
    it wrote so far, then the timeout message). Returns the job's exit status, `EXIT_TIMEOUT`, or
    `EXIT_INTERNAL` when the worker died without one.

    Example:
        >>> import io
        >>> out, err = io.StringIO(), io.StringIO()
        >>> run_job(["jacobian", "x**2", "--input", "x=scalar"], timeout=60, out=out, err=err)
        0
        >>> "2*x" in out.getvalue()
        True
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    command = [sys.executable, "-c", _BOOTSTRAP, root]
    job = json.dumps({"argv": list(argv), "parent": os.getpid()})
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
        print(
            f"symjac: error: the job ran past its time limit of {timeout:g} s (--timeout) and was "
            f"stopped after {time.monotonic() - start:.1f} s; raise --timeout, or use smaller shapes",
            file=err,
        )
        return EXIT_TIMEOUT
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
    """

    def __init__(self, stream: TextIO):
        self._stream = stream
        self.broken = False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self._stream.write(text)
            except BrokenPipeError:
                self._broke()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._broke()

    def _broke(self) -> None:
        self.broken = True
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
    from ._cli import run_in_process

    try:
        status = run_in_process(job["argv"], sys.stdout, sys.stderr)
    except BaseException as error:  # noqa: BLE001 - the one place that reports a crash
        first = str(error).splitlines()[0] if str(error) else ""
        print(f"symjac: internal error: {type(error).__name__}: {first[:300]}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_INTERNAL)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
