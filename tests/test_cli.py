"""The `symjac` command: exit statuses, one-line usage errors, JSON output, and the hard time limit.

Most tests run the command in this process (`--timeout 0`, which is what the worker itself does);
the tests of the time limit and of the worker run it through the worker, and the console-script
tests in a fresh process. Documented statuses: 0 pass, 1 fail, 2 bad input or usage, 3
inconclusive, 4 timed out, 5 internal error (docs/limits.md).
"""

import io
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import uuid

import pytest

from symjac import InvalidArgumentError, JobTimeoutError, _check, _cli, _worker
from symjac._cli import EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_PASS, EXIT_TIMEOUT, EXIT_USAGE, _parser, main
from symjac._worker import DEFAULT_TIMEOUT, EXIT_INTERNAL, EXIT_INTERRUPTED, PipeSafe

pytestmark = pytest.mark.timeout(120)

LINUX = sys.platform.startswith("linux")


def run(*argv, timeout="0"):
    """Run the command in this process; return (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    args = list(argv) + (["--timeout", timeout] if timeout is not None else [])
    status = main(args, out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def assert_one_line_error(status, out, err, fragment=""):
    assert status == EXIT_USAGE, (status, out, err)
    assert out == ""
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith("symjac: error: ")
    assert fragment in err


def strict_json(text):
    """json.loads that refuses NaN and Infinity (which the json module accepts by default)."""
    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")
    return json.loads(text, parse_constant=refuse)


# --------------------------------------------------------------------------- every subcommand

def test_check_pass_is_0():
    status, out, err = run("check", "X @ X", "--input", "X=2x2", "--at", "X=[[2, 3], [4, 5]]")
    assert (status, err) == (EXIT_PASS, "")
    assert "PASS" in out.splitlines()[0]


def test_check_fail_is_1(monkeypatch):
    real = _check._Check._tensor_routes  # text: the tensor-level torch routes run

    def wrong(self):  # both torch routes off by one at one entry
        routes = {name: value.copy() for name, value in real(self).items()}
        for value in routes.values():
            value[0, 0] += 1.0
        return routes

    monkeypatch.setattr(_check._Check, "_tensor_routes", wrong)
    status, out, err = run("check", "X @ X", "--input", "X=2x2", "--at", "X=[[2, 3], [4, 5]]", "--json")
    assert (status, err) == (EXIT_FAIL, "")
    report = strict_json(out)
    assert report["verdict"] == "fail"


def test_check_inconclusive_is_3():
    status, out, err = run("check", "relu(x)", "--input", "x=scalar", "--at", "x=0")
    assert (status, err) == (EXIT_INCONCLUSIVE, "")
    assert "non-differentiable point" in out


def test_jacobian_is_0():
    status, out, err = run("jacobian", "A @ X", "--input", "X=2x2", "--const", "A=[[2, 3], [4, 5]]",
                           "--at", "X=[[1, 2], [3, 4]]")
    assert (status, err) == (EXIT_PASS, "")
    assert "d out / d X: shape (2, 2, 2, 2)" in out and "d out[0, 0] / d X[0, 0] = 2" in out


def test_latex_is_0():
    status, out, err = run("latex", "x**2", "--input", "x=scalar")
    assert (status, err) == (EXIT_PASS, "")
    assert out.strip() == r"\frac{\partial F}{\partial x} = 2 x"


def test_examples_is_0():
    status, out, err = run("examples")
    assert (status, err) == (EXIT_PASS, "")
    assert "Example 5" in out


def test_suite_is_0_and_its_json_is_strict():
    status, out, err = run("suite", "--only", "sqrt", "--samples", "2", "--json")
    assert (status, err) == (EXIT_PASS, "")
    assert strict_json(out)["results"]["sqrt"]["verdict"] == "pass"


@pytest.mark.parametrize("argv, fragment", [
    (["check", "X @ Y", "--input", "X=2x2"], "unknown name 'Y'"),
    (["jacobian", "X @ Y", "--input", "X=2x2", "--input", "Y=3x2"], "inner dimensions differ"),
    (["latex", "x**2", "--input", "x=scalar", "--wrt", "y"], "no input named 'y'"),
    (["suite", "--only", "nope"], "nope"),
    (["examples", "--bogus"], "unrecognized arguments: --bogus"),
])
def test_each_subcommand_bad_input_is_2(argv, fragment):
    assert_one_line_error(*run(*argv), fragment)


# --------------------------------------------------------------------------- usage errors

USAGE_ROWS = [
    ([], "the following arguments are required: command"),
    (["nope"], "invalid choice: 'nope'"),
    (["check"], "check: the following arguments are required: expr"),
    (["check", "x", "--dtype", "float16"], "argument --dtype: invalid choice: 'float16'"),
    (["check", "x", "--input", "x"], "--input: expected NAME=VALUE; received 'x'"),
    (["check", "x", "--input", "=2"], "--input: expected NAME=VALUE"),
    (["check", "X", "--input", "X=-1x2"], "--input: shape must look like 2x2, 3, or scalar; received '-1x2'"),
    (["check", "X", "--input", "X=2.5x2"], "received '2.5x2'"),
    (["check", "X", "--input", "X=0x3"], "received '0x3'"),
    (["check", "X", "--input", "X=ax2"], "received 'ax2'"),
    (["check", "X", "--input", "X=2x2x2x2x2"], "received '2x2x2x2x2'"),
    (["check", "X", "--input", "sin=2"], "input name 'sin' is reserved"),
    (["check", "X", "--input", "X=2x2", "--at", "X=[[1, 2], [3"], "--at: value must be JSON"),
    (["check", "X", "--input", "X=2x2", "--at", "X=[[NaN, 1], [1, 1]]"], "values must be finite; received nan at index (0, 0)"),
    (["check", "X", "--input", "X=2x2", "--at", "X=[1, 2, 3]"], "expected shape (2, 2)"),
    (["check", "X", "--input", "X=2x2", "--at", "X=[[1, 2], [3]]"], "must be a number or a nested list"),
    (["check", "x", "--input", "x=scalar", "--at", "x=" + "[" * 500 + "1" + "]" * 500], "nested deeper than 32 levels"),
    (["check", "x", "--input", "x=scalar", "--at", "x=" + "[" * 100_000 + "]" * 100_000], "--at: value must be JSON"),
    (["check", "x", "--input", "x=scalar", "--at", "x=" + "1" * 5000], "--at: value must be JSON"),
    (["check", "x", "--input", "x=scalar", "--at", 'x="a"'], "must hold real numbers"),
    (["check", "x", "--input", "x=scalar", "--at", "x=1", "--const", "A=oops"], "--const: value must be JSON"),
    (["check", "x", "--input", "x=scalar", "--timeout", "abc"], "argument --timeout: must be a number of seconds from 0 to 1000000"),
    (["check", "x", "--input", "x=scalar", "--timeout", "-1"], "received '-1'"),
    (["check", "x", "--input", "x=scalar", "--timeout", "nan"], "received 'nan'"),
    (["check", "x", "--input", "x=scalar", "--limit", "max_foo=3"], "--limit: unknown limit 'max_foo'; the limits are"),
    (["check", "x", "--input", "x=scalar", "--limit", "max_work=-3"], "--limit: max_work must be a positive int"),
    (["check", "x", "--input", "x=scalar", "--limit", "max_work"], "--limit: expected NAME=VALUE"),
    (["check", "X @ X", "--input", "X=300x300"], "over the budget of 4096 (Limits.max_input_entries)"),
    (["check", "X @ X", "--input", "X=16x16", "--limit", "max_seconds=1"], "over the limit of 1 s (Limits.max_seconds)"),
    (["check", "X @ X", "--input", "X=3x3", "--limit", "max_seconds=0"], "--limit: max_seconds must be a positive number"),
    (["check", "x", "--input", "x=scalar", "--limit", "timeout=5"], "--limit: timeout is not a budget"),
    (["check", "x", "--input", "x=scalar", "--timeout", "1e300"], "received '1e300'"),  # found: OverflowError
    (["check", "x", "--input", "x=scalar", "--timeout", "1e9"], "seconds from 0 to 1000000; received '1e9'"),
    (["check", "x", "--input", "x=scalar", "--input", "x=3"], "--input: 'x' is given more than once"),
    (["check", "x", "--input", "x=scalar", "--at", "x=1", "--at", "x=2"], "--at: 'x' is given more than once"),
    (["check", "x", "--input", "x=scalar", "--const", "A=1", "--const", "A=2"], "--const: 'A' is given more than once"),
    (["check", "x", "--input", "x=scalar", "--limit", "max_work=5", "--limit", "max_work=6"], "--limit: 'max_work' is given"),
    (["check", "x", "--input", "x=scalar", "--at", "x=1", "--plot", "/"], "--plot: '/' is a directory"),
    (["check", "x", "--input", "x=scalar", "--at", "x=1", "--plot", "/no/such/dir/a.png"], "the directory '/no/such/dir'"),
    # CLI errors speak in flags, not Python
    (["check", "X @ X", "--input", "X=2x2"], "--at: missing a value for input 'X' of f; give it with --at X=JSON"),
    (["check", "x"], "--input: declare at least one input with its shape, e.g. --input X=2x2"),
    (["check", "x * y", "--input", "x=scalar"], "Declare an input with --input y=SHAPE or a constant with --const y=JSON"),
    (["check", "X @ X", "--input", "X=16x16", "--limit", "max_seconds=1"], "or raise the budget: --limit max_seconds="),
    (["suite", "--samples", "0"], "argument --samples: must be an int >= 1"),
    (["suite", "--seed", "a"], "argument --seed: must be an int >= 0"),
]


@pytest.mark.parametrize("argv, fragment", USAGE_ROWS, ids=[" ".join(r[0])[:50] for r in USAGE_ROWS])
def test_usage_error_is_2_with_one_line_on_stderr(argv, fragment):
    # --timeout is added after argv: for the rows without a subcommand it is an error of its own.
    status, out, err = run(*argv, timeout=None)
    assert_one_line_error(status, out, err, fragment)


# The expression rows of the bad-inputs list (their parser tests: tests/test_parse.py), through
# the command line: each is a usage error, one line, nothing run.
EXPRESSION_ROWS = [
    "__import__('os').system('id')", "open('/etc/passwd').read()", 'eval("1+1")', "exec('1')",
    "x.__class__", "X.T.__dict__", "(lambda: 1)()", "f'{x}'", "[i for i in range(10**9)]",
    "x;import os", "x\nimport os", "10**10**10", "x**10**10", "X**1000000", "factorial(100000000)",
    "1" * 5000, "(" * 300 + "x" + ")" * 300, "+".join(["x"] * 20000), "x if x else 1", "x < 1",
    "x and y", "None", "b'x'", "...", "sin(x, y)", "sin()", "sin", "", "   ", "x*z", "x/0",
    "x" * 10_001,
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("text", EXPRESSION_ROWS, ids=[repr(t)[:30] for t in EXPRESSION_ROWS])
def test_bad_expression_text_is_a_one_line_usage_error(text, tmp_path):
    status, out, err = run("check", text, "--input", "x=scalar", "--input", "y=scalar",
                           "--input", "X=2x2", "--at", "x=1", "--at", "y=2", "--at", "X=[[1, 2], [3, 4]]")
    assert_one_line_error(status, out, err, "symjac: error: expr")


def test_help_is_0_on_stdout():
    out = io.StringIO()
    with pytest.raises(SystemExit):  # argparse prints help to sys.stdout and exits 0 ...
        _parser().parse_args(["check", "--help"])
    assert main(["check", "--help"], out=out, err=io.StringIO()) == 0  # ... which main returns


# --------------------------------------------------------------------------- JSON

REPORT_KEYS = {"schema", "verdict", "reason", "function", "dtype", "point", "points_tried", "routes",
               "pairs", "worst", "odd_one_out", "tolerance", "reproduce", "notes", "task"}


@pytest.mark.parametrize("expr, at, verdict", [
    ("X @ X", "X=[[2, 3], [4, 5]]", "pass"),
    ("log(x)", "x=0", "inconclusive"),  # -inf output: still valid JSON
    ("sqrt(x)", "x=0", "inconclusive"),  # inf Jacobian entry
    ("relu(x)", "x=0", "inconclusive"),
])
def test_json_is_strict_and_has_the_documented_schema(expr, at, verdict):
    name = at.partition("=")[0]
    shape = "2x2" if name == "X" else "scalar"
    status, out, err = run("check", expr, "--input", f"{name}={shape}", "--at", at, "--json")
    assert err == ""
    report = strict_json(out)
    assert REPORT_KEYS <= set(report)
    assert report["schema"] == "symjac.report/2"
    assert report["verdict"] == verdict
    assert status == {"pass": EXIT_PASS, "inconclusive": EXIT_INCONCLUSIVE}[verdict]
    for pair in report["pairs"]:
        assert {"routes", "max_abs_error", "max_rel_error", "entries_over_tolerance", "worst", "ok"} <= set(pair)


def test_json_keeps_errors_off_stdout():
    status, out, err = run("check", "x/0", "--input", "x=scalar", "--at", "x=1", "--json")
    assert_one_line_error(status, out, err, "undefined expression")


# --------------------------------------------------------------------------- the time limit

def test_default_timeout_is_documented():
    args = _parser().parse_args(["check", "x", "--input", "x=scalar"])
    assert args.timeout == DEFAULT_TIMEOUT == 60.0
    assert "60" in (pathlib.Path(__file__).parents[1] / "docs" / "limits.md").read_text()
    for command in ("check", "jacobian", "latex", "examples"):
        assert _parser().parse_args([command] + (["x"] if command in ("check", "jacobian", "latex") else [])).timeout == 60.0
    assert _parser().parse_args(["suite"]).timeout == 600.0


#: A job that runs until it is killed, by construction (`symjac._worker._run_until_killed`): the
#: time-limit tests must not depend on how fast SymPy is here (det(X) at 12 x 12 could be refused by
#: its budget before the limit on a fast machine, or finish on a faster one).
HANG = "symjac._worker:_run_until_killed"
RUNAWAY = ["check", "x", "--input", "x=scalar", "--at", "x=1"]


def _workers_running(marker: str) -> list[int]:
    """Processes with `marker` that run the worker's bootstrap (`symjac._worker._child_main`)."""
    found = []
    for pid in _processes_with(marker):
        try:
            if b"_child_main" in pathlib.Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            continue
    return found


def _processes_with(marker: str) -> list[int]:
    """Live processes (not zombies) whose environment holds `marker`."""
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.mark.timeout(120)
def test_runaway_job_is_stopped_at_the_limit_with_status_4(monkeypatch):
    marker = f"SYMJAC_TEST_MARKER={uuid.uuid4()}"
    monkeypatch.setenv(*marker.split("="))
    monkeypatch.setattr(_cli, "_JOB", HANG)
    limit = 2.0
    out, err = io.StringIO(), io.StringIO()
    start = time.monotonic()
    status = main(RUNAWAY + ["--timeout", str(limit)], out=out, err=err)
    assert status == EXIT_TIMEOUT == 4
    assert time.monotonic() - start >= limit  # never early; how late depends on the machine's load
    assert err.getvalue().count("\n") == 1
    assert "ran past its time limit of 2 s (--timeout) and was stopped" in err.getvalue()
    if LINUX:
        assert _processes_with(marker) == []


def test_run_job_raises_job_timeout_error():
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(JobTimeoutError, match=r"the job ran past its time limit of 0.5 s and was stopped") as info:
        _worker.run_job(HANG, [], timeout=0.5, out=out, err=err)
    assert isinstance(info.value, TimeoutError) and info.value.elapsed >= 0.5


@pytest.mark.parametrize("target, timeout, fragment", [
    ("os:system", 1.0, "target: must name a job function of symjac"),
    ("symjac._cli", 1.0, "target: must name a job function of symjac"),
    (HANG, 0.0, "timeout: must be a number of seconds over 0"),
    (HANG, 1e9, "at most 1000000"),
    (HANG, float("inf"), "at most 1000000"),
])
def test_run_job_refuses_bad_targets_and_timeouts(target, timeout, fragment):
    with pytest.raises(InvalidArgumentError, match=fragment):
        _worker.run_job(target, [], timeout=timeout, out=io.StringIO(), err=io.StringIO())


def test_worker_imports_nothing_of_symjac_but_errors():
    import ast

    tree = ast.parse(pathlib.Path(_worker.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level}
    assert imported == {"_errors"}


def _console(job: str = HANG) -> list[str]:
    return [sys.executable, "-c", f"from symjac import _cli; _cli._JOB = {job!r}; _cli.entry_point()"]


CONSOLE = [sys.executable, "-c", "from symjac._cli import entry_point; entry_point()"]


@pytest.mark.timeout(300)
def test_console_script_times_out_with_status_4_and_no_stray_process():
    marker = f"SYMJAC_TEST_MARKER={uuid.uuid4()}"
    env = dict(os.environ, SYMJAC_TEST_MARKER=marker.partition("=")[2])
    done = subprocess.run(_console() + RUNAWAY + ["--timeout", "2"], capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == EXIT_TIMEOUT
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "time limit of 2 s" in done.stderr
    if LINUX:
        assert _processes_with(marker) == []


@pytest.mark.skipif(not LINUX, reason="reads /proc")
@pytest.mark.timeout(300)
def test_ctrl_c_is_one_line_and_status_130_and_no_stray_process():
    marker = f"SYMJAC_TEST_MARKER={uuid.uuid4()}"
    env = dict(os.environ, SYMJAC_TEST_MARKER=marker.partition("=")[2])
    # A terminal's Ctrl-C: the test runner (an xdist worker) may ignore SIGINT, and an ignored
    # signal stays ignored across exec, so the command gets the default disposition back.
    parent = subprocess.Popen(_console() + RUNAWAY + ["--timeout", "200"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 150  # a bound for a hang, not for speed: a loaded machine is slow
        # the worker counts once it runs its own program (after exec: until then the forked child
        # is a copy of the command, and a Ctrl-C there lands inside subprocess.Popen)
        while not _workers_running(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _workers_running(marker), "the worker did not start"
        time.sleep(0.5)  # the command is now waiting on its worker
        parent.send_signal(signal.SIGINT)
        out, err = parent.communicate(timeout=100)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    assert parent.returncode == EXIT_INTERRUPTED == 130
    assert err == "symjac: interrupted (Ctrl-C)\n" and out == ""
    deadline = time.monotonic() + 60
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_with(marker) == []


@pytest.mark.skipif(not LINUX, reason="reads /proc")
@pytest.mark.timeout(300)
def test_worker_exits_when_the_command_is_killed():
    marker = f"SYMJAC_TEST_MARKER={uuid.uuid4()}"
    env = dict(os.environ, SYMJAC_TEST_MARKER=marker.partition("=")[2])
    parent = subprocess.Popen(_console() + RUNAWAY + ["--timeout", "200"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 150
        while len(_processes_with(marker)) < 2 and time.monotonic() < deadline:  # the command and its worker
            time.sleep(0.1)
        workers = [p for p in _processes_with(marker) if p != parent.pid]
        assert workers, "the worker did not start"
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 60
        while _processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _processes_with(marker) == []
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_work_under_the_limit_runs_in_the_worker_with_its_own_status():
    status, out, err = run("check", "relu(x)", "--input", "x=scalar", "--at", "x=0", "--json", timeout="100")
    assert (status, err) == (EXIT_INCONCLUSIVE, "")
    assert strict_json(out)["verdict"] == "inconclusive"
    status, out, err = run("check", "X @ Y", "--input", "X=2x2", timeout="100")
    assert_one_line_error(status, out, err, "unknown name 'Y'")


def test_worker_that_dies_is_an_internal_error(monkeypatch):
    # A worker killed by a signal (the machine's OOM killer, say) is status 5, never 1 ("fail").
    monkeypatch.setattr(_worker, "_BOOTSTRAP", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    status, out, err = run("jacobian", "x", "--input", "x=scalar", timeout="100")
    assert status == EXIT_INTERNAL
    assert err.count("\n") == 1 and "the job's worker process died (signal 9)" in err


def test_worker_that_cannot_start_is_an_internal_error(monkeypatch):
    monkeypatch.setattr(sys, "executable", str(pathlib.Path(sys.executable).with_name("no-such-python")))
    status, out, err = run("jacobian", "x", "--input", "x=scalar", timeout="100")
    assert status == EXIT_INTERNAL
    assert err.startswith("symjac: error: cannot start the worker process") and err.count("\n") == 1


def test_internal_error_in_process_is_5_and_one_line(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr("symjac._check.check", broken)
    status, out, err = run("check", "x", "--input", "x=scalar", "--at", "x=1")
    assert status == EXIT_INTERNAL == 5
    assert err == "symjac: internal error: RuntimeError: boom second line\n"


def test_closed_pipe_keeps_the_status():
    # `symjac check ... | head -1`: the reader goes away; the command still exits with its verdict.
    class Closed(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    status = main(["check", "relu(x)", "--input", "x=scalar", "--at", "x=0", "--timeout", "0"],
                  out=Closed(), err=io.StringIO())
    assert status == EXIT_INCONCLUSIVE
    assert PipeSafe(Closed()).write("x") == 1


@pytest.mark.parametrize("argv", [row[0] for row in USAGE_ROWS if len(row[0]) > 1 and row[0][0] == "check"][:60])
def test_usage_errors_never_show_python_hints(argv):
    status, out, err = run(*argv, timeout=None)
    assert status == EXIT_USAGE
    for python in ("symjac.function(", "pass it as a keyword", "consts=", "symjac.Limits("):
        assert python not in err, err


@pytest.mark.skipif(not LINUX, reason="/dev/full")
def test_stdout_on_dev_full_is_one_line_and_status_2():
    with open("/dev/full", "w") as full:
        done = subprocess.run(CONSOLE + ["check", "x", "--input", "x=scalar", "--at", "x=1", "--timeout", "0"],
                              stdout=full, stderr=subprocess.PIPE, text=True, timeout=110)
    assert done.returncode == EXIT_USAGE
    assert done.stderr == "symjac: error: cannot write the output to stdout (No space left on device)\n"


@pytest.mark.parametrize("timeout", ["0", "30"])
def test_closed_stdout_and_stderr_end_without_a_traceback(timeout):
    argv = ["check", "x", "--input", "x=scalar", "--at", "x=1", "--timeout", timeout]
    done = subprocess.run(CONSOLE + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=110,
                          preexec_fn=lambda: os.close(1))
    assert done.returncode == EXIT_USAGE
    assert done.stderr == "symjac: error: cannot write the output to stdout (it is closed)\n"
    done = subprocess.run(CONSOLE + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=110,
                          preexec_fn=lambda: (os.close(1), os.close(2)))
    assert done.returncode == EXIT_USAGE and done.stderr == ""


def test_plot_into_a_missing_directory_is_refused_by_the_library_too(tmp_path):
    import symjac as sj

    report = sj.check(sj.function("x**2", x=()), x=1.0)
    with pytest.raises(InvalidArgumentError, match="path: the directory"):
        report.plot(tmp_path / "missing" / "a.png")
    with pytest.raises(InvalidArgumentError, match="is a directory"):
        report.plot(tmp_path)


def test_worker_docstring_examples_run():
    import doctest

    assert doctest.testmod(_worker).failed == 0


def test_a_huge_digit_limit_from_the_command_line_costs_nothing():
    # issue 15: `--limit max_number_digits=999999999999999999` hung on "x * 2" (it computed 10**N)
    status, out, err = run("jacobian", "x * 2", "--input", "x=scalar", "--limit", "max_number_digits=999999999999999999",
                           "--limit", "max_int_digits=999999999999999999")
    assert (status, err) == (0, ""), err
    assert "2" in out
