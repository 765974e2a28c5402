"""Budgets: every limit on the size of symbolic work, in one place, checked before the work.

symjac takes text and arrays from users and turns them into symbolic work whose cost can grow
much faster than the input (`X @ X` is n**3 products, its Jacobian n**4 entries). Every such cost
is bounded by a field of one frozen dataclass, `Limits`, and checked *before* the work it bounds,
from numbers that are cheap to know in advance (shapes, syntax-tree sizes, estimated operation
counts). The main budgets are in seconds and MiB: the cost model `symjac._cost` turns those numbers
into an estimate, refused over `Limits.max_seconds` (30 s) or `Limits.max_memory` (4096 MiB).
Over a budget, symjac raises `TooLargeError` naming the limit, the estimate, and how to get under
it (smaller shapes) or to raise it:

```python
symjac.function("X @ X", X=(32, 32), limits=symjac.Limits(max_seconds=120))
```

The CLI takes the same fields: `symjac check ... --limit max_seconds=120`. The other fields are
hard caps against blow-ups the model cannot see (text length, digits, depth, exponents).

Budgets bound work symjac does on the caller's behalf. A Python callable passed to
`symjac.function` is the caller's own code and runs unbounded (its *result* is still checked before
differentiation). The last line of defence is a time limit, which needs a separate process:
the CLI's `--timeout` (see `symjac._worker` and `docs/limits.md`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import sympy

from . import _cost, _dag
from ._errors import InvalidArgumentError, InvalidExpressionError, TooLargeError
from ._determinant import DETERMINANT_FUNCTIONS
from ._stable import STABLE_FUNCTIONS

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "Limits",
    "SUPPORTED_FUNCTIONS",
    "check_constant",
    "check_derivative",
    "check_inputs",
    "check_output",
    "scan_output",
    "check_sympy_input",
    "exceeds_digits",
    "raise_hint",
    "validate_limits",
]

#: Seconds a job may run by default: `Limits.timeout` (function, jacobian, check) and
#: `symjac.verify(timeout=...)`.
DEFAULT_TIMEOUT = 300.0


@dataclasses.dataclass(frozen=True)
class Limits:
    """The budgets of symjac, with their documented defaults.

    The two budgets in units a user reads, checked against the cost model's estimate
    (`symjac._cost`) before the work:

    - `max_seconds` (30.0): longest estimated time to build the Function, its exact Jacobians and
      their code, and check it at one point; refused at once (`TooLargeError`, with the estimate)
      when the estimate is longer.
    - `max_memory` (4096): most estimated peak memory of the same, in MiB.

    How the work runs (not budgets):

    - `timeout` (300.0, or None for no limit): a real time limit, in seconds, on
      `symjac.function(...)`, `Function.jacobian()` and `symjac.check(...)` of a Function built
      under these limits; past it the work stops with `JobTimeoutError` (`symjac._deadline`).
    - `progress` (None): a one-line progress display on stderr for long work; None shows it when
      stderr is a terminal (not under pytest or CI), True always, False never.

    Every other field is a positive int: a hard cap on a size the model cannot see, or an old
    operation-count budget kept (accepted, its default high) for code that sets it.

    Pass an instance to `symjac.function(..., limits=Limits(...))` (or `--limit NAME=N` on the
    command line) to raise or lower a budget; `DEFAULT_LIMITS` holds the defaults.

    The expression text (checked by the parser while it reads the text):

    - `max_length` (10_000): longest accepted text, in characters.
    - `max_nodes` (2_000): most syntax nodes (names, numbers, operations, calls, ...), counted
      before anything is evaluated.
    - `max_depth` (50): deepest nesting of operations, calls, indexing and unary signs. A chain
      `a + b + c + ...` counts as one level, however long.
    - `max_int_digits` (30): most digits in an integer literal.
    - `max_exponent` (16): largest `|p|` for a numeric exponent in `x ** p`, checked on the
      exponent's value before the power is computed; also bounds matrix powers of SymPy input.
    - `max_number_digits` (100): most digits in the numerator or denominator of any exact number
      the expression produces, float literals made exact included.
    - `max_constant_argument` (1_000): a constant argument of `exp`, `sin`, `cos`, `tan`,
      `sigmoid`, `softmax` or `logsumexp` must provably lie within `+-max_constant_argument`
      (SymPy evaluates constants to decide signs: `sin(exp(10**6))` would need millions of digits).
    - `max_entries` (100_000): most entries in any array the expression produces, and in any
      constant array (`consts=`).
    - `max_entry_size` (100_000): most nodes in one entry of any array produced, counted as if
      written out (shared subexpressions count every time they appear).
    - `max_work` (10_000_000): estimated elementary SymPy operations to build the output
      (`X @ X` costs 1.5 n**3, `det` n**5, `inv` about n**7 for n x n); a hard cap, over the
      seconds the parser's steps are priced at (`max_seconds`).

    The Function (checked by `symjac.function` before any differentiation):

    - `max_rank` (4): most dimensions of an input (a `ShapeError` over it).
    - `max_input_entries` (4_096): most scalar input entries, all inputs together (64 x 64).
    - `max_jacobian_entries` (4_194_304): most entries of the dense Jacobians, all inputs together
      (`out_size * in_size`; 2048 x 2048); a hard cap, over the memory the model estimates.
    - `max_jacobian_work` (1_000_000_000): the sum over output entries of (written-out size x
      number of input entries it contains); a hard cap, over the seconds the model estimates.

    Higher derivatives (checked by `Function.hessian` / `Function.derivative` before they
    differentiate; see `symjac._hessian`):

    - `max_derivative_order` (3): highest order `k` of `Function.derivative(wrt, order=k)`.
    - `max_derivative_entries` (1_048_576): most entries of one dense higher derivative
      (`out_size * in_size**k`; float64, 8 MiB).
    - `max_derivative_work` (2_000_000): estimated cost of one more differentiation, the sum over
      the previous order's nonzeros of (written-out size x input entries it contains).

    Example:
        >>> Limits(max_input_entries=10_000).max_input_entries
        10000
    """

    max_length: int = 10_000
    max_nodes: int = 2_000
    max_depth: int = 50
    max_int_digits: int = 30
    max_exponent: int = 16
    max_number_digits: int = 100
    max_constant_argument: int = 1_000
    max_entries: int = 100_000
    max_entry_size: int = 100_000
    max_work: int = 10_000_000
    max_rank: int = 4
    max_input_entries: int = 4_096
    max_jacobian_entries: int = 4_194_304
    max_jacobian_work: int = 1_000_000_000
    max_derivative_order: int = 3
    max_derivative_entries: int = 1_048_576
    max_derivative_work: int = 2_000_000
    max_seconds: float = 30.0
    max_memory: int = 4096
    timeout: float | None = DEFAULT_TIMEOUT
    progress: bool | None = None

    def __post_init__(self) -> None:
        for name in _FIELD_NAMES:  # not dataclasses.asdict, which deep-copies every value
            value = getattr(self, name)
            kind = type(value)
            if (kind is int and value >= 1 and name not in _NOT_INTS) or (
                    kind is float and name in _SECONDS_FIELDS and 0 < value <= _MAX_SECONDS):
                continue  # already as the checks below would store it
            if name in _SECONDS_FIELDS:
                if value is None and name == "timeout":
                    continue
                if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
                        math.isfinite(value) and 0 < value <= _MAX_SECONDS):
                    allowed = "None (no limit) or " if name == "timeout" else ""
                    raise InvalidArgumentError(
                        f"limits: {name} must be {allowed}a number of seconds over 0 and at most "
                        f"{_MAX_SECONDS:.0f}; received {value!r}"
                    )
                object.__setattr__(self, name, float(value))
                continue
            if name == "progress":
                if value is not None and not isinstance(value, bool):
                    raise InvalidArgumentError(
                        f"limits: progress must be None (on a terminal only), True or False; received {value!r}")
                continue
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise InvalidArgumentError(
                    f"limits: {name} must be a positive int; received {value!r}"
                )
            object.__setattr__(self, name, int(value))

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(field.name for field in dataclasses.fields(cls))

    def source(self) -> str:
        """Python for these limits, naming only the fields that differ from the defaults ('' if none).

        Example:
            >>> Limits(max_work=100_000).source()
            'symjac.Limits(max_work=100000)'
        """
        changed = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                   if getattr(self, f.name) != f.default}
        shown = {k: (f"{v:g}" if isinstance(v, float) else repr(v)) for k, v in changed.items()}
        return f"symjac.Limits({', '.join(f'{k}={v}' for k, v in shown.items())})" if shown else ""


#: The fields in seconds (numbers, not ints), and their largest value (about 11.6 days).
_SECONDS_FIELDS = ("max_seconds", "timeout")
_NOT_INTS = _SECONDS_FIELDS + ("progress",)
_MAX_SECONDS = 1_000_000.0

_FIELD_NAMES = tuple(field.name for field in dataclasses.fields(Limits))
DEFAULT_LIMITS = Limits()

_LOG2_10 = math.log2(10)


def exceeds_digits(n: int, digits: int) -> bool:
    """`abs(n) >= 10**digits`, without computing `10**digits` (a huge limit must cost nothing:
    `Limits(max_number_digits=10**9)` took minutes to build `10**10**9`)."""
    bits = abs(int(n)).bit_length()
    if bits < digits * _LOG2_10 - 1:  # |n| < 2**bits <= 10**digits
        return False
    if bits - 1 > digits * _LOG2_10 + 1:  # |n| >= 2**(bits - 1) > 10**digits
        return True
    return abs(int(n)) >= 10**digits  # here 10**digits is about as large as n itself


def raise_hint(field: str, value: int | None = None) -> str:
    """The standard way out of a budget, for messages (`value`: a suggested new limit)."""
    shown = "..." if value is None else str(value)
    return (
        f"or raise the budget: symjac.function(..., limits=symjac.Limits({field}={shown})), "
        f"on the command line --limit {field}={'N' if value is None else value}"
    )


def check_estimate(estimate: _cost.Estimate, limits: Limits, *, what: str, argument: str = "expr") -> None:
    """Refuse work whose estimate (`symjac._cost`) is over `max_seconds` or `max_memory`."""
    if estimate.seconds > limits.max_seconds:
        raise TooLargeError(
            f"{argument}: {what} is estimated to take about {_seconds(estimate.seconds)} here "
            f"(mostly {estimate.largest()}), over the limit of {limits.max_seconds:g} s "
            f"(Limits.max_seconds); use smaller shapes, "
            + raise_hint("max_seconds", _cost.suggest(estimate.seconds))
        )
    if estimate.mib > limits.max_memory:
        raise TooLargeError(
            f"{argument}: {what} is estimated to need about {estimate.mib:,.0f} MiB of memory, over the "
            f"limit of {limits.max_memory} MiB (Limits.max_memory); use smaller shapes, "
            + raise_hint("max_memory", _cost.suggest(estimate.mib))
        )


def _seconds(value: float) -> str:
    if value >= 10**7:
        return f"10**{int(math.log10(value))} s"
    return f"{value:,.0f} s" if value >= 10 else f"{value:.1f} s"


def validate_limits(limits: Any, *, argument: str = "limits") -> Limits:
    if not isinstance(limits, Limits):
        raise InvalidArgumentError(
            f"{argument}: must be a symjac.Limits instance, e.g. symjac.Limits(max_work=100_000); "
            f"received {type(limits).__name__}"
        )
    return limits


# --------------------------------------------------------------------------- inputs and constants


def check_inputs(shapes: Mapping[str, tuple[int, ...]], limits: Limits) -> int:
    """Refuse inputs with more scalar entries in all than `limits.max_input_entries`."""
    sizes = {name: math.prod(shape) for name, shape in shapes.items()}  # Python ints: no overflow
    total = sum(sizes.values())
    if total > limits.max_input_entries:
        detail = ", ".join(f"{name}: {_short(shape)} = {_count(sizes[name])}" for name, shape in shapes.items())
        raise TooLargeError(
            f"shapes: the inputs have {_count(total)} entries in all ({detail}), over the budget of "
            f"{limits.max_input_entries} (Limits.max_input_entries); use smaller shapes, "
            + raise_hint("max_input_entries")
        )
    return total


def _count(n: int) -> str:
    return str(n) if n < 10**15 else f"about 10**{len(str(n)) - 1}"


def _short(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(_count(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def check_constant(name: str, size: int, limits: Limits) -> None:
    """Refuse a constant array with more entries than `limits.max_entries`."""
    if size > limits.max_entries:
        raise TooLargeError(
            f"consts[{name!r}]: {size} entries, over the budget of {limits.max_entries} "
            f"(Limits.max_entries); use a smaller constant, " + raise_hint("max_entries")
        )


# --------------------------------------------------------------------------- the output


#: symjac's own SymPy function classes (the only classes defined outside SymPy an output may hold).
_SYMJAC_FUNCTIONS = STABLE_FUNCTIONS + DETERMINANT_FUNCTIONS

#: Applied functions an output may contain: those both generated backends (NumPy and torch)
#: print, whose derivatives they print too. Anything else (`gamma`, `floor`, `sign`,
#: `Heaviside`, ...) would fail later, in generated code, so it is refused when the Function is
#: built.
SUPPORTED_FUNCTIONS = (
    sympy.exp, sympy.log, sympy.sin, sympy.cos, sympy.tan, sympy.sinh, sympy.cosh, sympy.tanh,
    sympy.asin, sympy.acos, sympy.atan, sympy.asinh, sympy.acosh, sympy.atanh, sympy.atan2,
    sympy.Abs, sympy.Piecewise, sympy.re,
    sympy.erf,  # issue 13: exact GELU; NumPy code through math.erf (symjac._codegen)
) + _SYMJAC_FUNCTIONS

#: SymPy objects that stand for an algorithm not yet run (`doit`); no code can be generated for
#: them, and running them is open-ended.
_UNEVALUATED = (
    sympy.Integral,
    sympy.Sum,
    sympy.Product,
    sympy.Limit,
    sympy.Order,
    sympy.Derivative,
    sympy.Subs,
)


def _refuse_node(node: sympy.Basic) -> None:
    if isinstance(node, sympy.core.function.AppliedUndef):
        raise InvalidExpressionError(
            f"expr: {str(node)[:60]} applies an undefined function {type(node).__name__!r}; "
            "symjac needs a formula to differentiate and generate code for (use sympy's "
            "functions, or substitute a formula first)"
        )
    if isinstance(node, _UNEVALUATED):
        raise InvalidExpressionError(
            f"expr: unevaluated {type(node).__name__} ({str(node)[:60]}); symjac does not run "
            "open-ended SymPy algorithms on your behalf: evaluate it first (.doit()) and pass "
            "the result"
        )
    # The exact type: a subclass could print itself (`_numpycode`) as anything.
    if isinstance(node, sympy.Function) and type(node) not in SUPPORTED_FUNCTIONS:
        names = ", ".join(sorted(f.__name__ for f in SUPPORTED_FUNCTIONS))
        raise InvalidExpressionError(
            f"expr: function {type(node).__name__!r} (in {str(node)[:60]}) is not supported: "
            f"symjac generates NumPy and torch code for {names}, Max, Min, powers and arithmetic"
        )
    if not type(node).__module__.startswith("sympy.") and type(node) not in _SYMJAC_FUNCTIONS:
        # a class defined outside SymPy could print itself (`_numpycode`) as any code
        raise InvalidExpressionError(
            f"expr: {type(node).__name__} (in {str(node)[:60]}) is not a SymPy class but a subclass "
            f"defined in {type(node).__module__!r}; symjac builds only from SymPy's own classes"
        )


def written_sizes(entries: Iterable[sympy.Basic], *, refuse: bool = True) -> list[int]:
    """Written-out size (nodes, shared subexpressions counted each time) of each entry.

    Iterative and memoised over the DAG of all entries, so it costs the number of distinct
    subexpressions, however large the written-out trees are. With `refuse`, refuses on the way
    nodes that no code can be generated for (`_refuse_node`).
    """
    memo: dict[sympy.Basic, int] = {}

    def size(node: sympy.Basic) -> int:
        if refuse and node.args:
            _refuse_node(node)
        return 1 + sum(memo[arg] for arg in node.args)

    entries = list(entries)
    _dag.evaluate(entries, size, memo=memo)
    return [memo[entry] for entry in entries]


#: Bits of `OutputScan.bits`, each true of a node when true of any node below it: it holds zoo, nan
#: or an infinity (`HAS_UNDEFINED`); it holds `I` (`HAS_I`); it is not built from real symbols and
#: real numbers by `+`, `*` and integer powers only (`NOT_POLYNOMIAL`); it holds a symbol that is
#: not an input entry (`STRAY`). And, not passed on to parents: the node is not shown real and finite
#: from recorded facts alone (`UNSURE`: not a polynomial in the sense above with powers to
#: non-negative integers only, of real symbols, numbers and nodes whose recorded assumptions,
#: read and not deduced, say real: `tanh(u)` once `symjac.ops` told it its facts).
HAS_UNDEFINED, HAS_I, NOT_POLYNOMIAL, STRAY, UNSURE = 1, 2, 4, 8, 16
_PASSED_ON = HAS_UNDEFINED | HAS_I | NOT_POLYNOMIAL | STRAY
_UNDEFINED_ATOMS = frozenset((sympy.zoo, sympy.nan, sympy.oo, -sympy.oo))


class OutputScan:
    """The facts of one walk over an output's DAG (`scan_output`), each distinct node once: what
    the budgets (`check_output`) and the Function's validation (`symjac._function`) read.

    `facts[node]` is `(written-out size, bits, free symbols)`: the size with shared subexpressions
    counted each time (`written_sizes`), the `HAS_*`/`NOT_POLYNOMIAL`/`STRAY`/`UNSURE` bits, the
    frozenset of SymPy Symbols in it (`_dag.free_symbols`); one tuple per node, one dict lookup
    per child. `numbers`: the Rationals, and the Pows of a constant base to a non-integer power, in
    postorder. `distinct`: distinct nodes; `dag_inputs`: the sum over distinct non-leaf nodes of the
    input entries in each; `branches`: the same sum over `_BRANCHES` nodes, times written-out size.
    """

    __slots__ = ("facts", "numbers", "distinct", "dag_inputs", "branches")

    def __init__(self, facts: dict, numbers: list, distinct: int, dag_inputs: int, branches: int):
        self.facts, self.numbers = facts, numbers
        self.distinct, self.dag_inputs, self.branches = distinct, dag_inputs, branches

    @property
    def sizes(self) -> dict:
        return {node: fact[0] for node, fact in self.facts.items()}

    @property
    def bits(self) -> dict:
        return {node: fact[1] for node, fact in self.facts.items()}

    @property
    def free(self) -> dict:
        return {node: fact[2] for node, fact in self.facts.items()}

    def inputs_in(self, node: sympy.Basic, symbols: set) -> int:
        """How many of the input entries `symbols` the node holds (`len(free[node] & symbols)`)."""
        _, bits, found = self.facts[node]
        return len(found & symbols) if bits & STRAY else len(found)


def scan_output(flat: list, symbols: set, *, refuse: bool = True) -> OutputScan:
    """One walk over the DAG of `flat` (`_dag.postorder`) for every fact of an output the budgets
    and the validation read: written-out sizes (`written_sizes`), free symbols
    (`_dag.free_symbols`), the `OutputScan` bits, the numbers to check, the cost model's counts
    (`output_features`). With `refuse`, refuses on the way, in postorder, nodes that no code can be
    generated for (`_refuse_node`), as `written_sizes` does."""
    facts: dict = {}
    numbers: list = []
    distinct = dag_inputs = branches = 0
    empty: frozenset = frozenset()
    undefined, imaginary = _UNDEFINED_ATOMS, sympy.I
    rational, power = sympy.Rational, sympy.Pow
    for node in _dag.postorder(flat):
        distinct += 1
        args = node.args
        if not args:
            if node.is_Symbol:
                b = 0 if node.is_real is True else NOT_POLYNOMIAL | UNSURE
                if node not in symbols:
                    b |= STRAY
                facts[node] = (1, b, frozenset((node,)))
                continue
            if node.is_Number:
                b = 0 if node.is_Rational or node.is_Float else NOT_POLYNOMIAL | UNSURE
                if isinstance(node, rational):
                    numbers.append(node)
            else:
                b = NOT_POLYNOMIAL | (0 if node._assumptions.get("real") is True else UNSURE)
                if node is imaginary:
                    b |= HAS_I
            if node in undefined:
                b |= HAS_UNDEFINED
            facts[node] = (1, b, empty)
            continue
        if refuse:
            _refuse_node(node)
        size, b = 1, 0
        parts = []
        for arg in args:
            arg_size, arg_bits, part = facts[arg]
            size += arg_size
            b |= arg_bits
            parts.append(part)
        unsure = b & UNSURE
        b &= _PASSED_ON
        if node.is_Symbol:  # a symbol with arguments (`Indexed`)
            found = frozenset((node,))
            b = (b & (HAS_UNDEFINED | HAS_I)) | (0 if node.is_real is True else NOT_POLYNOMIAL | UNSURE) \
                | (0 if node in symbols else STRAY)
        else:
            found = _dag.symbols_union(parts)
            if node.is_Add or node.is_Mul:
                pass
            elif node.is_Pow and node.exp.is_Integer:
                if node.exp.p < 0:
                    unsure = UNSURE
            else:
                b |= NOT_POLYNOMIAL
                unsure = UNSURE
            if unsure and node._assumptions.get("real") is not True:
                b |= UNSURE
            if isinstance(node, power) and not facts[node.base][2] and node.exp.is_Integer is not True:
                numbers.append(node)
        facts[node] = (size, b, found)
        inside = len(found & symbols) if b & STRAY else len(found)
        dag_inputs += inside
        if isinstance(node, _BRANCHES):
            branches += size * inside
    return OutputScan(facts, numbers, distinct, dag_inputs, branches)


def check_output(output: np.ndarray, inputs: Iterable[Any], limits: Limits) -> OutputScan:
    """Refuse an output whose exact Jacobian would cost more than the budgets allow.

    Checked when a Function is built, before any differentiation: the number of output entries
    and the written-out size of each (as the parser checks them for text, now for every way of
    defining a Function), the dense Jacobian size, and the estimated Jacobian work. Returns the
    output's `scan_output`, which the caller's own checks then read (one walk for all of them).
    """
    inputs = tuple(inputs)
    out_size = int(output.size)
    in_size = sum(inp.size for inp in inputs)
    if out_size > limits.max_entries:
        raise TooLargeError(
            f"expr: the output has {out_size} entries (shape {output.shape}), over the budget of "
            f"{limits.max_entries} (Limits.max_entries); use smaller shapes, "
            + raise_hint("max_entries")
        )
    dense = out_size * in_size
    if dense > limits.max_jacobian_entries:
        raise TooLargeError(
            f"expr: the Jacobian would have {dense} entries (output {output.shape} = {out_size} "
            f"entries x {in_size} input entries), over the budget of "
            f"{limits.max_jacobian_entries} (Limits.max_jacobian_entries); use smaller shapes, "
            "check a slice of the output, " + raise_hint("max_jacobian_entries")
        )
    symbols = {s for inp in inputs for s in inp.symbols.flat}
    flat = list(output.reshape(-1))
    work = 0
    nonzeros = 0
    scan = scan_output(flat, symbols)
    facts = scan.facts
    for index, entry in enumerate(flat):
        size = facts[entry][0]
        if size > limits.max_entry_size:
            where = list(np.unravel_index(index, output.shape)) if output.ndim else []
            raise TooLargeError(
                f"expr: output entry {where} has {size} nodes when written out, over the budget of "
                f"{limits.max_entry_size} (Limits.max_entry_size); simplify the expression, "
                + raise_hint("max_entry_size")
            )
        count = scan.inputs_in(entry, symbols)
        nonzeros += count
        work += size * count
    if work > limits.max_jacobian_work:
        raise TooLargeError(
            f"expr: the exact Jacobian's entries would be about {work} nodes written out (the sum over "
            f"output entries of written-out size x input entries in it), over the hard cap of "
            f"{limits.max_jacobian_work} (Limits.max_jacobian_work); use smaller shapes, "
            + raise_hint("max_jacobian_work")
        )
    features = _features(scan, flat, in_size, nonzeros, work)
    check_estimate(_cost.estimate(features), limits,
                   what="building the exact Jacobian and its code and checking it at one point")
    return scan


#: Nodes whose derivative SymPy builds through its assumption system (sign queries on the argument).
_BRANCHES = (sympy.Max, sympy.Min, sympy.Piecewise, sympy.Abs, sympy.Heaviside)


def output_features(flat: list, symbols: set, in_size: int) -> _cost.Features:
    """The cost model's `Features` of an output's flat entries (one walk over their DAG)."""
    scan = scan_output(flat, symbols, refuse=False)
    counts = [scan.inputs_in(entry, symbols) for entry in flat]
    return _features(scan, flat, in_size, sum(counts), sum(scan.facts[e][0] * c for e, c in zip(flat, counts)))


def _features(scan: OutputScan, flat: list, in_size: int, nonzeros: int, work: int) -> _cost.Features:
    return _cost.Features(
        out_size=len(flat), in_size=in_size, dense=len(flat) * in_size, nonzeros=nonzeros,
        written=sum(scan.facts[e][0] for e in flat), distinct=scan.distinct, dag_inputs=scan.dag_inputs,
        jacobian_written=work, branches=scan.branches,
    )


def check_derivative(function, wrt: tuple, previous: Iterable[sympy.Basic], limits: Limits) -> None:
    """Refuse a higher derivative of `function` by the inputs `wrt` (one per order) that would
    cost more than the budgets allow; `previous` are the nonzeros of the order below, which the
    last input of `wrt` differentiates once more. Checked before any differentiation."""
    order = len(wrt)
    names = ", ".join(inp.name for inp in wrt)
    if order > limits.max_derivative_order:
        raise TooLargeError(
            f"order: derivatives of order {order} (by {names}) are over the budget of "
            f"{limits.max_derivative_order} (Limits.max_derivative_order); "
            + raise_hint("max_derivative_order")
        )
    dense = math.prod(function.out_shape) * math.prod(inp.size for inp in wrt)
    if dense > limits.max_derivative_entries:
        raise TooLargeError(
            f"wrt: the derivative by {names} would have {dense} dense entries, over the budget of "
            f"{limits.max_derivative_entries} (Limits.max_derivative_entries); use smaller shapes, "
            + raise_hint("max_derivative_entries")
        )
    entries = list(previous)
    symbols = set(wrt[-1].flat_symbols)
    work = sum(size * len(e.free_symbols & symbols) for e, size in zip(entries, written_sizes(entries, refuse=False)))
    if work > limits.max_derivative_work:
        raise TooLargeError(
            f"wrt: the derivative by {names} would cost about {work} operations (the sum over the "
            f"order-{order - 1} nonzeros of written-out size x input entries in it), over the budget of "
            f"{limits.max_derivative_work} (Limits.max_derivative_work); use smaller shapes, "
            + raise_hint("max_derivative_work")
        )


# --------------------------------------------------------------------------- SymPy input

#: SymPy objects whose evaluation (`doit`) runs an open-ended algorithm: refused, not evaluated.
_OPEN_ENDED = (
    sympy.Integral,
    sympy.Sum,
    sympy.Product,
    sympy.Limit,
    sympy.Order,
)


def _matrix_cost(node: sympy.Basic, limits: Limits) -> int:
    """Estimated cost of SymPy's own evaluation of one matrix-expression node (measured here:
    SymPy's determinant of a 5 x 5 symbolic matrix takes about 10 s, its inverse of a 4 x 4 more
    than 30 s, a 32 x 32 matrix product about 12 s). The units are those of `Limits.max_work`."""
    if isinstance(node, sympy.MatMul):
        shapes = [arg.shape for arg in node.args if getattr(arg, "is_Matrix", False)]
        cost = 0
        for (m, k), (_, n) in zip(shapes, shapes[1:]):
            cost += 10 * int(m) * int(k) * int(n)
        return cost
    if isinstance(node, sympy.MatPow):
        n = int(node.base.shape[0])
        exponent = node.exp
        if not exponent.is_Integer or abs(int(exponent)) > limits.max_exponent:
            raise TooLargeError(
                f"expr: matrix power {node} has exponent {exponent}; exponents are limited to "
                f"integers with |p| <= {limits.max_exponent} (Limits.max_exponent), "
                + raise_hint("max_exponent")
            )
        p = abs(int(exponent))
        return p**3 * n**3 + (n**9 if exponent < 0 else 0)
    if isinstance(node, sympy.Inverse):
        return int(node.arg.shape[0]) ** 9
    if isinstance(node, sympy.Determinant):
        return int(node.arg.shape[0]) ** 7
    return 0


def check_sympy_input(expr: Any, limits: Limits) -> None:
    """Refuse SymPy input that evaluation would take too long on, before evaluating it.

    Walks the expression once (iteratively, each distinct node once) and refuses undefined
    functions (no code can be generated for them), open-ended algorithms (`Integral`, `Sum`,
    `Product`, `Limit`: evaluate them first), symbolic matrix shapes, and matrix algebra
    (`MatMul`, `MatPow`, `Inverse`, `Determinant`) whose estimated time is over `Limits.max_seconds`
    (priced at `symjac._cost.PARSE_SECONDS["sympy_matrix"]`) or its cost over `Limits.max_work`.
    """
    if not isinstance(expr, sympy.Basic):
        return  # a Matrix: explicit entries, nothing left to evaluate
    seen: set[sympy.Basic] = set()
    stack = [expr]
    work = 0
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if isinstance(node, (sympy.core.function.AppliedUndef, _OPEN_ENDED)):
            _refuse_node(node)
        if isinstance(node, (sympy.MatrixExpr, sympy.Determinant)):
            matrix = node.arg if isinstance(node, sympy.Determinant) else node
            if not all(dim.is_Integer for dim in matrix.shape):
                raise InvalidExpressionError(
                    f"expr: matrix expression {str(matrix)[:60]} has a symbolic shape "
                    f"{matrix.shape}; declare MatrixSymbols with integer shapes"
                )
            work += _matrix_cost(node, limits)
            seconds = _cost.operation_seconds("sympy_matrix", work)
            if seconds > limits.max_seconds:
                raise TooLargeError(
                    f"expr: evaluating the SymPy matrix expression is estimated to take about "
                    f"{_seconds(seconds)} here (at {str(node)[:60]}), over the limit of "
                    f"{limits.max_seconds:g} s (Limits.max_seconds); use smaller shapes, or pass text or a "
                    "callable built on symjac.ops (det, inv and products are cheaper there), "
                    + raise_hint("max_seconds", _cost.suggest(seconds, later=True))
                )
            if work > limits.max_work:
                raise TooLargeError(
                    f"expr: evaluating the SymPy matrix expression would cost about {work} "
                    f"operations (at {str(node)[:60]}), over the budget of {limits.max_work} "
                    "(Limits.max_work); use smaller shapes, or pass text or a callable built on "
                    "symjac.ops (det, inv and products are cheaper there), "
                    + raise_hint("max_work")
                )
        stack.extend(node.args)
