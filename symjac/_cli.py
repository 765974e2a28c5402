"""The `symjac` command: check, jacobian, latex, examples.

Exit status: 0 pass, 1 a mismatch (verdict fail), 2 bad input or usage (a budget exceeded
included), 3 inconclusive, 4 the job ran past `--timeout`, 5 internal error. Usage errors are one
line on stderr. Each job runs in a worker process under a hard time limit (`symjac._worker`;
`--timeout 0` runs it in this process). Values and constants on the command line are JSON
(`[[2, 3], [4, 5]]`), never Python.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any, Sequence

from ._errors import InvalidArgumentError, JobTimeoutError, SymjacError
from ._worker import (
    EXIT_FAIL,
    EXIT_INCONCLUSIVE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_PASS,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    SUITE_TIMEOUT,
    PipeSafe,
    add_job_options,
    run_job,
)

__all__ = [
    "main",
    "run_in_process",
    "EXIT_PASS",
    "EXIT_FAIL",
    "EXIT_USAGE",
    "EXIT_INCONCLUSIVE",
    "EXIT_TIMEOUT",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
]

#: The job the worker process runs (`symjac._worker`); the time-limit tests point it at
#: `symjac._worker:_run_until_killed`.
_JOB = "symjac._cli:run_in_process"
_EXIT = {"pass": EXIT_PASS, "fail": EXIT_FAIL, "inconclusive": EXIT_INCONCLUSIVE}
_MAX_JSON_CHARS = 1_000_000
_SHAPE = re.compile(r"^(?:\(\)|scalar|[1-9][0-9]{0,5}(?:x[1-9][0-9]{0,5}){0,3})$")


class _UsageError(InvalidArgumentError):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors raised as one-line `_UsageError`s instead of printed and exited."""

    def error(self, message: str):
        command = self.prog.partition(" ")[2]
        raise _UsageError(f"{command + ': ' if command else ''}{message} (see {self.prog} --help)")


def _name_value(text: str, option: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise _UsageError(f"{option}: expected NAME=VALUE; received {text!r}")
    return name.strip(), value.strip()


def _shape(text: str, option: str) -> tuple[int, ...]:
    if not _SHAPE.match(text):
        raise _UsageError(f"{option}: shape must look like 2x2, 3, or scalar; received {text!r}")
    if text in ("()", "scalar"):
        return ()
    return tuple(int(d) for d in text.split("x"))


def _json_value(text: str, option: str) -> Any:
    if len(text) > _MAX_JSON_CHARS:
        raise _UsageError(f"{option}: value longer than {_MAX_JSON_CHARS} characters")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as error:  # JSONDecodeError, and ints over Python's digit limit
        raise _UsageError(f"{option}: value must be JSON numbers or nested lists, e.g. [[2, 3], [4, 5]]; {error}") from None
    _check_depth(value, option)
    return value


_MAX_JSON_DEPTH = 32  # an input has at most 4 dims (Limits.max_rank); NumPy itself stops at 64


def _check_depth(value: Any, option: str) -> None:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            if depth > _MAX_JSON_DEPTH:
                raise _UsageError(f"{option}: value nested deeper than {_MAX_JSON_DEPTH} levels")
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))


def _once(table: dict, name: str, option: str) -> None:
    """A name given twice to one option is refused (the last would silently win)."""
    if name in table:
        raise _UsageError(f"{option}: {name!r} is given more than once; give each name once")


def _function(args):
    from ._function import function

    shapes = {}
    for item in args.input or []:
        name, shape = _name_value(item, "--input")
        _once(shapes, name, "--input")
        shapes[name] = _shape(shape, "--input")
    if not shapes:
        raise _UsageError("--input: declare at least one input with its shape, e.g. --input X=2x2")
    consts = {}
    for item in args.const or []:
        name, value = _name_value(item, "--const")
        _once(consts, name, "--const")
        consts[name] = _json_value(value, "--const")
    return function(args.expr, consts=consts, limits=_limits(args), **shapes)


def _limits(args):
    from ._budget import DEFAULT_LIMITS, Limits

    overrides = {}
    for item in getattr(args, "limit", None) or []:
        name, value = _name_value(item, "--limit")
        _once(overrides, name, "--limit")
        if name in ("timeout", "progress"):
            raise _UsageError(f"--limit: {name} is not a budget; the command's time limit is --timeout SECONDS")
        budgets = [field for field in Limits.field_names() if field not in ("timeout", "progress")]
        if name not in budgets:
            raise _UsageError(f"--limit: unknown limit {name!r}; the limits are {', '.join(budgets)}")
        if name == "max_seconds":
            if not re.fullmatch(r"[0-9]{1,7}(\.[0-9]{1,6})?", value) or float(value) <= 0:
                raise _UsageError(f"--limit: max_seconds must be a positive number of seconds; received {value!r}")
            overrides[name] = float(value)
            continue
        if not re.fullmatch(r"[1-9][0-9]{0,17}", value.replace("_", "")):
            raise _UsageError(f"--limit: {name} must be a positive int; received {value!r}")
        overrides[name] = int(value.replace("_", ""))
    timeout = getattr(args, "timeout", None)
    if timeout is not None and (timeout == 0 or timeout > DEFAULT_LIMITS.timeout):
        overrides["timeout"] = None  # --timeout governs: no in-process limit stops the job before it
    return Limits(**overrides) if overrides else DEFAULT_LIMITS


def _point(args) -> dict[str, Any]:
    import numpy as np

    values = {}
    for item in args.at or []:
        name, value = _name_value(item, "--at")
        _once(values, name, "--at")
        parsed = _json_value(value, "--at")
        # Well-formed numbers get the requested dtype; anything else goes to symjac's own validation.
        try:
            values[name] = np.asarray(parsed, dtype=args.dtype) if _is_numeric(parsed) else parsed
        except (ValueError, OverflowError):  # ragged lists, huge ints: symjac's own validation says what is wrong
            values[name] = parsed
    return values


def _is_numeric(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    return isinstance(value, list) and all(_is_numeric(v) for v in value)


def _cmd_check(args, out) -> int:
    from ._check import check

    if args.plot:
        from ._plot import check_path

        check_path(args.plot, argument="--plot")  # before the check runs
    f = _function(args)
    if args.plot and (args.order != 1 or args.batch is not None):
        raise _UsageError("--plot: draws first-order Jacobians at one point; leave out --order 2 and --batch")
    drawn = {k: v for k, v in (("samples", args.samples), ("seed", args.seed), ("bound", args.bound)) if v is not None}
    report = check(f, order=args.order, batch=args.batch, **drawn, **_point(args))
    if args.plot:
        report.plot(args.plot)
    if args.json:
        print(json.dumps(report.to_dict(), allow_nan=False, indent=2), file=out)
    else:
        print(report, file=out)
    return _EXIT[report.verdict]


def _cmd_jacobian(args, out) -> int:
    import numpy as np

    f = _function(args)
    for name, jac in f.jacobians().items():
        print(f"d out / d {name}: shape {jac.shape} (output shape + input shape), {jac.nnz} nonzero entries", file=out)
        in_shape, out_shape = jac.wrt.shape, f.out_shape
        for r, c, e in zip(jac.rows, jac.cols, jac.entries):
            o = ", ".join(map(str, np.unravel_index(r, out_shape))) if out_shape else ""
            i = ", ".join(map(str, np.unravel_index(c, in_shape))) if in_shape else ""
            print(f"  d out[{o}] / d {name}[{i}] = {e}", file=out)
        if args.at:
            print(f"at the point: {jac.evaluate(**_point(args)).tolist()}", file=out)
    return EXIT_PASS


def _cmd_latex(args, out) -> int:
    from ._latex import latex

    f = _function(args)
    print(latex(f, form=args.form, wrt=args.wrt, mode=args.mode, max_size=args.max_size), file=out)
    return EXIT_PASS


def _cmd_examples(args, out) -> int:
    from ._examples import run_examples

    results = run_examples(out)
    return EXIT_PASS if all(r.ok for r in results) else EXIT_FAIL


def _cmd_suite(args, out) -> int:
    import time

    from . import _catalog

    names = args.only or _catalog.names()
    for name in names:
        _catalog.entry(name)  # unknown names are a usage error before anything runs
    results = []
    for name in names:
        start = time.perf_counter()
        report = _catalog.run_entry(name, samples=args.samples, seed=args.seed)
        seconds = time.perf_counter() - start
        results.append((name, report))
        if not args.json:
            run = report.run
            print(
                f"{name:<20} {report.verdict:<12} {run.passed:>4} passed {run.inconclusive:>4} inconclusive "
                f"{run.failed:>4} failed  {seconds:6.2f} s",
                file=out,
                flush=True,
            )
            if report.verdict != "pass":
                print(str(report), file=out)
    verdicts = [r.verdict for _, r in results]
    if args.json:
        document = {"samples": args.samples, "seed": args.seed, "results": {n: r.to_dict() for n, r in results}}
        print(json.dumps(document, allow_nan=False, indent=2), file=out)
    else:
        print(
            f"symjac suite: {verdicts.count('pass')} passed, {verdicts.count('fail')} failed, "
            f"{verdicts.count('inconclusive')} inconclusive of {len(verdicts)} (samples={args.samples}, seed={args.seed})",
            file=out,
        )
    if "fail" in verdicts:
        return EXIT_FAIL
    return EXIT_INCONCLUSIVE if "inconclusive" in verdicts else EXIT_PASS


def _count(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an int >= {minimum}; received {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an int >= {minimum}; received {text!r}")
        return value

    return parse


def _bound(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0.25; received {text!r}") from None
    if not (value > 0.25 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0.25; received {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="symjac",
        description="Exact Jacobians cross-checked against torch autograd and finite differences.",
        epilog="Exit status: 0 pass, 1 mismatch, 2 bad input (or over a budget), 3 inconclusive, "
        "4 ran past --timeout, 5 internal error. Limits and defaults: docs/limits.md.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def function_args(p):
        p.add_argument("expr", help="expression text, e.g. 'X @ X'")
        p.add_argument("--input", action="append", metavar="NAME=SHAPE", help="an input and its shape: X=2x2, v=3, s=scalar")
        p.add_argument("--const", action="append", metavar="NAME=JSON", help="a constant: A='[[2, 3], [4, 5]]'")
        p.add_argument("--at", action="append", metavar="NAME=JSON", help="the point: X='[[2, 3], [4, 5]]'")
        p.add_argument("--dtype", choices=("float64", "float32"), default="float64")
        p.add_argument("--limit", action="append", metavar="NAME=N",
                       help="raise or lower a budget of symjac.Limits, e.g. max_seconds=120 (docs/limits.md)")

    p = sub.add_parser("check", help="cross-check the exact Jacobian at a point")
    function_args(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--plot", metavar="PNG", help="draw the sparsity pattern and per-pair error heatmaps to this PNG file (needs matplotlib)")
    p.add_argument("--order", type=int, choices=(1, 2), default=1,
                   help="2: check the exact second derivative against torch's four compositions (default 1)")
    p.add_argument("--batch", type=_count(1), default=None, metavar="B",
                   help="the --at values are B points (leading dimension B); also check every route under vmap")
    p.add_argument("--samples", type=_count(1), default=None, metavar="N",
                   help="instead of --at, check N points drawn from the function's domain")
    p.add_argument("--seed", type=_count(0), default=None, metavar="S", help="seed of the drawn points (default 0)")
    p.add_argument("--bound", type=_bound, default=None, metavar="B",
                   help="largest magnitude of a drawn entry (default: mostly within 3, one point in two out to 40)")
    p.set_defaults(run=_cmd_check)
    p = sub.add_parser("jacobian", help="print the exact Jacobian (and its value with --at)")
    function_args(p)
    p.set_defaults(run=_cmd_jacobian)
    p = sub.add_parser("latex", help="print the exact Jacobian (or its verified closed form) as LaTeX")
    p.add_argument("expr", help="expression text, e.g. 'X @ X'")
    p.add_argument("--input", action="append", metavar="NAME=SHAPE", help="an input and its shape: X=2x2, v=3, s=scalar")
    p.add_argument("--const", action="append", metavar="NAME=JSON", help="a constant: A='[[2, 3], [4, 5]]'")
    p.add_argument("--form", choices=("entries", "matrix", "function"), default="entries",
                   help="entries: the Jacobian entry by entry (default); matrix: the closed form, only when verified; function: the output")
    p.add_argument("--wrt", metavar="NAME", help="only the Jacobian with respect to this input")
    p.add_argument("--mode", choices=("plain", "inline", "display"), default="plain")
    p.add_argument("--max-size", type=int, default=8, metavar="N", help="elide matrices past N rows or columns (default 8)")
    p.set_defaults(run=_cmd_latex)
    p = sub.add_parser("examples", help="run the tutorial's five examples with a cross-check report")
    p.set_defaults(run=_cmd_examples)
    p = sub.add_parser("suite", help="cross-check every catalog function over points of its domain")
    p.add_argument("--samples", type=_count(1), default=10, help="points per function (default 10; 100+ is thorough)")
    p.add_argument("--seed", type=_count(0), default=0, help="seed of the runs (default 0)")
    p.add_argument("--only", action="append", metavar="NAME", help="run only this catalog function (repeatable)")
    p.add_argument("--json", action="store_true", help="print the reports as JSON")
    p.set_defaults(run=_cmd_suite)
    for name, p in sub.choices.items():  # every subcommand runs under a time limit
        add_job_options(p, **({"default": SUITE_TIMEOUT} if name == "suite" else {}))
    return parser


def main(argv: Sequence[str] | None = None, out=None, err=None) -> int:
    """Run the `symjac` command: arguments are parsed here, the job runs in a worker process under
    `--timeout` (see `symjac._worker`), or here with `--timeout 0`. Returns the exit status.

    Ctrl-C ends it with one line and `EXIT_INTERRUPTED` (130); output that cannot be written
    (`> /dev/full`, a closed stdout) with one line on stderr and `EXIT_USAGE`."""
    out = PipeSafe(out if out is not None else sys.stdout)
    err = PipeSafe(err if err is not None else sys.stderr)
    try:
        status = _main(sys.argv[1:] if argv is None else list(argv), out, err)
    except KeyboardInterrupt:
        print("symjac: interrupted (Ctrl-C)", file=err)
        status = EXIT_INTERRUPTED
    out.flush()
    if out.error is not None:
        print(f"symjac: error: cannot write the output to stdout ({out.error})", file=err)
        status = EXIT_USAGE
    err.flush()
    return status


def _main(argv: list[str], out, err) -> int:
    args = _parse(argv, err)
    if isinstance(args, int):
        return args
    if args.timeout > 0:
        try:
            return run_job(_JOB, argv, timeout=args.timeout, out=out, err=err)
        except JobTimeoutError as error:
            print(f"symjac: error: the job ran past its time limit of {args.timeout:g} s (--timeout) and was "
                  f"stopped after {error.elapsed:.1f} s; raise --timeout, or use smaller shapes", file=err)
            return EXIT_TIMEOUT
    return _run(args, out, err)


def run_in_process(argv: Sequence[str], out, err) -> int:
    """Run the `symjac` command in this process, without a time limit (the worker's side)."""
    args = _parse(list(argv), err)
    return args if isinstance(args, int) else _run(args, out, err)


def _parse(argv: list[str], err):
    try:
        return _parser().parse_args(argv)
    except SystemExit as exit_:  # --help
        return int(exit_.code or 0)
    except SymjacError as error:
        print(f"symjac: error: {_in_flags(_one_line(error))}", file=err)
        return EXIT_USAGE


def _run(args, out, err) -> int:
    try:
        return args.run(args, out)
    except SymjacError as error:
        print(f"symjac: error: {_in_flags(_one_line(error))}", file=err)
        return EXIT_USAGE
    except Exception as error:  # a bug: say so in one line, with a status no verdict uses
        print(f"symjac: internal error: {type(error).__name__}: {_one_line(error)[:300]}", file=err)
        return EXIT_INTERNAL


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


#: The library's hints in Python (`symjac.function(..., y=())`) as the command's flags.
_FLAG_HINTS = (
    (re.compile(r"^values: "), "--at: "),
    (re.compile(r"pass it as a keyword, e\.g\. (\w+)=\.\.\."), r"give it with --at \1=JSON"),
    (re.compile(r"symjac\.function\(\.\.\., (\w+)=\(\)\)"), r"--input \1=SHAPE"),
    (re.compile(r"consts=\{'(\w+)': \.\.\.\}"), r"--const \1=JSON"),
    (re.compile(r"a constant \(consts=\.\.\.\)"), "a constant (--const NAME=JSON)"),
    (re.compile(r"symjac\.function\(\.\.\., limits=symjac\.Limits\((\w+)=[^)]*\)\), on the command line "), ""),
)


def _in_flags(message: str) -> str:
    """A library error message as the command's user reads it: hints name flags, not Python."""
    for pattern, replacement in _FLAG_HINTS:
        message = pattern.sub(replacement, message)
    return message


def entry_point() -> None:  # console script
    sys.exit(main())
