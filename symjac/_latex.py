"""LaTeX for Functions, Jacobians and Reports, through `sympy.latex` with explicit settings.

Every formula is printed by `sympy.latex`; the layout around the entries (block matrices,
elided rows and columns) is built as SymPy matrices whose cells are placeholder symbols, printed
through sympy's own `symbol_names` setting. Nothing here edits LaTeX text after the fact.

The layout follows torch: a Jacobian of shape `out_shape + in_shape` is shown as a block matrix
whose block `[i, j]` is `d F[i, j] / d X`, the matrix torch prints for `J[i, j]`. See
[`display_grid`][symjac._latex.display_grid] for every rank.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy

from ._errors import InvalidArgumentError
from ._report import entries_text

__all__ = [
    "DEFAULT_MAX_SIZE",
    "FORMS",
    "MODES",
    "DELIMITERS",
    "LatexOptions",
    "latex",
    "jacobian_latex",
    "function_latex",
    "display_grid",
    "DisplayGrid",
    "text",
]

FORMS = ("entries", "matrix", "function")
MODES = ("plain", "inline", "display")
DELIMITERS = ("[", "(", "")
#: Past this many rows or columns (of blocks, or inside a block) a matrix is elided with `\cdots`.
#: 8 keeps every matrix environment within amsmath's default limit of 10 columns.
DEFAULT_MAX_SIZE = 8

_ENVIRONMENT = {"[": "bmatrix", "(": "pmatrix", "": "matrix"}


@dataclass(frozen=True)
class LatexOptions:
    """The validated options of [`symjac.latex`][symjac.latex] (one place for every default)."""

    mode: str = "plain"
    delimiters: str = "["
    symbol_names: Mapping[str, str] | None = None
    output_name: str = "F"
    index_base: int = 0
    max_size: int = DEFAULT_MAX_SIZE
    gradient: str = "row"

    def __post_init__(self) -> None:
        _one_of("mode", self.mode, MODES)
        _one_of("delimiters", self.delimiters, DELIMITERS)
        _one_of("gradient", self.gradient, ("row", "column"))
        if self.index_base not in (0, 1) or isinstance(self.index_base, bool):
            raise InvalidArgumentError(f"index_base: must be 0 or 1; received {self.index_base!r}")
        if isinstance(self.max_size, bool) or not isinstance(self.max_size, int) or self.max_size < 3:
            raise InvalidArgumentError(f"max_size: must be an int >= 3; received {self.max_size!r}")
        if not isinstance(self.output_name, str) or not self.output_name:
            raise InvalidArgumentError(f"output_name: must be a non-empty LaTeX string; received {self.output_name!r}")
        _check_fragment("output_name", self.output_name)
        if self.symbol_names is not None:
            if not isinstance(self.symbol_names, Mapping):
                raise InvalidArgumentError(
                    f"symbol_names: must map input names to LaTeX, e.g. {{'X': r'\\mathbf{{X}}'}}; "
                    f"received {type(self.symbol_names).__name__}"
                )
            for key, value in self.symbol_names.items():
                if not isinstance(key, str) or not isinstance(value, str) or not value:
                    raise InvalidArgumentError(
                        f"symbol_names: keys must be input names and values non-empty LaTeX strings; "
                        f"received {key!r}: {value!r}"
                    )
                _check_fragment(f"symbol_names[{key!r}]", value)

    @property
    def inline(self) -> bool:
        return self.mode == "inline"

    def settings(self, names: Mapping[sympy.Basic, str]) -> dict[str, Any]:
        """The explicit `sympy.latex` settings for this mode (every setting that shapes output)."""
        return {
            "mode": "plain",
            "mat_str": "smallmatrix" if self.inline else _ENVIRONMENT[self.delimiters],
            "mat_delim": self.delimiters if self.inline else "",
            "fold_short_frac": self.inline,
            "fold_frac_powers": False,
            "fold_func_brackets": False,
            "inv_trig_style": "abbreviated",
            "ln_notation": False,
            "mul_symbol": None,
            "root_notation": True,
            "mat_symbol_style": "plain",
            "imaginary_unit": "i",
            "decimal_separator": "period",
            "parenthesize_super": True,
            "symbol_names": dict(names),
        }

    def wrap(self, body: str) -> str:
        if self.mode == "inline":
            return f"${body}$"
        if self.mode == "display":
            return f"$${body}$$"
        return body


#: The LaTeX a caller may give for a name is built from an allow-list, never filtered by a
#: deny-list (TeX has too many ways in: `^^5c` is a backslash, `\directlua`, `\loop`, ...):
#: ASCII letters and digits, spaces, these characters, and the commands in `FRAGMENT_COMMANDS`.
FRAGMENT_CHARACTERS = frozenset("_^{}()[]',.+-*/|:;!= ")
_GREEK = (
    "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi "
    "pi varpi rho varrho sigma varsigma tau upsilon phi varphi chi psi omega "
    "Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega"
)
#: Commands allowed in a name: Greek letters, math fonts, accents and a few symbols.
FRAGMENT_COMMANDS = frozenset(
    _GREEK.split()
    + "mathbf mathrm mathit mathsf mathtt mathcal mathbb mathfrak boldsymbol bm operatorname".split()
    + "hat bar tilde vec dot ddot breve check acute grave widehat widetilde overline underline".split()
    + "prime ell hbar nabla partial infty star ast dagger top".split()
)
_FRAGMENT_TOKEN = re.compile(r"\\[A-Za-z]+|\\.?|[A-Za-z0-9]|.", re.DOTALL)


def _check_fragment(argument: str, value: str) -> None:
    """A caller's LaTeX for one name must be a self-contained piece of math from the allow-list
    (`FRAGMENT_CHARACTERS`, `FRAGMENT_COMMANDS`, ASCII letters and digits), braces balanced and no
    `^^` (TeX reads `^^5c` as a backslash): it is pasted into every formula that names the input."""
    depth, what = 0, None
    for token in _FRAGMENT_TOKEN.findall(value):
        if token.startswith("\\"):
            if token[1:] not in FRAGMENT_COMMANDS:
                what = f"the command '{token}', which is not on the allow-list"
                break
        elif not (token.isascii() and token.isalnum()) and token not in FRAGMENT_CHARACTERS:
            what = f"the character {token!r} (U+{ord(token):04X}), which is not on the allow-list"
            break
        depth += {"{": 1, "}": -1}.get(token, 0)
        if depth < 0:
            break
    if what is None and depth != 0:
        what = "unbalanced braces"
    if what is None and "^^" in value:
        what = "'^^', which TeX reads as a character code"
    if what is not None:
        raise InvalidArgumentError(
            f"{argument}: must be a self-contained LaTeX fragment for a name, e.g. r'\\mathbf{{X}}' "
            "(balanced braces; ASCII letters, digits, spaces and _ ^ { } ( ) [ ] ' , . + - * / | : ; ! =; "
            "commands: Greek letters, math fonts such as \\mathbf, accents such as \\hat, \\prime, "
            f"\\ell, \\partial, \\infty: see docs/latex.md); received {value!r}, which has {what}"
        )


def _one_of(argument: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise InvalidArgumentError(
            f"{argument}: must be one of {', '.join(map(repr, choices))}; received {value!r}"
        )


# --------------------------------------------------------------------------- public entry


def latex(
    obj: Any,
    /,
    *,
    form: str = "entries",
    wrt: str | None = None,
    mode: str = "plain",
    delimiters: str = "[",
    symbol_names: Mapping[str, str] | None = None,
    output_name: str = "F",
    index_base: int = 0,
    max_size: int = DEFAULT_MAX_SIZE,
    gradient: str = "row",
) -> str:
    r"""LaTeX for a `Function`'s Jacobians, a `Jacobian`, or a `Report`.

    - `obj`: a `symjac.Function`, a `symjac.Jacobian` or a `symjac.Report`.
    - `form`: `"entries"` (default) prints `\frac{\partial F}{\partial X} = ` the exact Jacobian,
      entry by entry, as a block matrix in torch's layout (block `[i, j]` is `dF[i, j]/dX`);
      `"matrix"` prints the closed matrix-calculus form (`A^T`, `X^{T} \otimes I + I \otimes X`,
      `\left(X^{T}\right)^{-1}` ...) only after it was checked against the element-wise Jacobian at
      random points, and raises `ClosedFormError` when none is known or the check refuses it;
      `"function"` prints `F = ` the output, entry by entry.
    - `wrt`: the input to differentiate by (default: every input, one equation each).
    - `mode`: `"plain"` (bare LaTeX), `"inline"` (`$...$`, small matrices, folded fractions) or
      `"display"` (`$$...$$`).
    - `delimiters`: `"["` (bmatrix), `"("` (pmatrix) or `""` (none).
    - `symbol_names`: LaTeX for input names, e.g. `{"X": r"\mathbf{X}"}`; entries get
      subscripts: input entry `X[0, 1]` prints as `X_{01}` (`X_{0,11}` when an index has two digits).
    - `output_name`: the name of the output in `\partial F` (`"F"`).
    - `index_base`: 0 (as symjac and torch index) or 1 (as most papers do) for the subscripts.
    - `max_size`: matrices with more rows or columns than this (of blocks, or inside a block)
      show the first `max_size - 2`, `\cdots` and the last; the LaTeX then says so.
    - `gradient`: a scalar function of a vector prints its gradient as a `"row"` (torch's layout,
      default) or a `"column"`.

    Returns a string of LaTeX.

    ```python
    >>> import symjac as sj
    >>> sj.latex(sj.function("sum(X)", X=(2, 2)))
    '\\frac{\\partial F}{\\partial X} = \\begin{bmatrix}1 & 1\\\\1 & 1\\end{bmatrix}'
    ```
    """
    from ._function import Function
    from ._jacobian import Jacobian
    from ._report import Report

    _one_of("form", form, FORMS)
    options = LatexOptions(mode, delimiters, symbol_names, output_name, index_base, max_size, gradient)
    if isinstance(obj, Report):
        if form != "entries" or wrt is not None:
            raise InvalidArgumentError(
                f"form/wrt: a Report prints as a table only; received form={form!r}, wrt={wrt!r}"
            )
        return options.wrap(report_latex(obj))
    if isinstance(obj, Jacobian):
        if wrt is not None and wrt != obj.wrt.name:
            raise InvalidArgumentError(
                f"wrt: this Jacobian is with respect to {obj.wrt.name!r}; received wrt={wrt!r}"
            )
        function, names = obj.function, [obj.wrt.name]
    elif isinstance(obj, Function):
        function = obj
        names = [function.input(wrt).name] if wrt is not None else list(function.input_names)
    else:
        raise InvalidArgumentError(
            f"obj: must be a symjac.Function, Jacobian or Report; received {type(obj).__name__}"
        )
    _check_symbol_names(function, options)
    if form == "function":
        return options.wrap(function_latex(function, options))
    if form == "matrix":
        from ._closed_form import closed_form

        lines = [closed_form_latex(closed_form(function, name), options, function) for name in names]
    else:
        lines = [
            f"{_partial(function, name, options)} = {jacobian_latex(function.jacobian(name), options)}"
            for name in names
        ]
    return options.wrap(_equations(lines))


def jacobian_matrix(jacobian, *, mode: str = "plain", delimiters: str = "[", symbol_names=None,
                    index_base: int = 0, max_size: int = 8, gradient: str = "row") -> str:
    """A Jacobian's entries alone as a (block) matrix: what `Jacobian.latex()` returns."""
    options = LatexOptions(mode, delimiters, symbol_names, "F", index_base, max_size, gradient)
    _check_symbol_names(jacobian.function, options)
    from ._hessian import HigherDerivative

    if isinstance(jacobian, HigherDerivative):  # read as the Jacobian, by its last input, of the order below
        jacobian = _AsJacobian(jacobian)
    return options.wrap(jacobian_latex(jacobian, options))


class _OuterFunction:
    """The Function seen with the first orders' input axes appended to its output (for display)."""

    def __init__(self, function, extra: tuple[int, ...]):
        self._function, self.out_shape = function, function.out_shape + extra

    def __getattr__(self, name):
        return getattr(self._function, name)


class _AsJacobian:
    """A HigherDerivative read as a Jacobian by its last input (what `jacobian_latex` prints)."""

    def __init__(self, d):
        inner = d.wrt[:-1]
        self.function = _OuterFunction(d.function, tuple(x for inp in inner for x in inp.shape))
        self.wrt = d.wrt[-1]
        rows = d.rows.astype(np.int64)
        for q, inp in enumerate(inner):
            rows = rows * inp.size + d.cols[:, q]
        self.rows, self.cols, self.entries = rows, d.cols[:, -1], d.entries


def closed_form_latex(form, options: LatexOptions, function) -> str:
    """`\\frac{\\partial F}{\\partial X} = ...` (or `\\operatorname{vec}` on both sides) for a ClosedForm."""
    names = {}
    for symbol in form.expr.atoms(sympy.MatrixSymbol):
        special = _special_matrix_latex(symbol)
        if special is not None:
            names[symbol] = special
        elif str(symbol.name) in function.input_names:
            names[symbol] = base_name(str(symbol.name), options)
    body = sympy.latex(form.expr, **options.settings(names))
    out, x = options.output_name, base_name(form.wrt, options)
    if form.kind == "vec":
        return f"\\frac{{\\partial \\operatorname{{vec}} {out}}}{{\\partial \\operatorname{{vec}} {x}}} = {body}"
    return f"\\frac{{\\partial {out}}}{{\\partial {x}}} = {body}"


def _special_matrix_latex(symbol: sympy.MatrixSymbol) -> str | None:
    """The closed forms' own constant matrices (`symjac_I_3`, `symjac_1_3`, `symjac_K_2_3`)."""
    name = str(symbol.name)
    if not name.startswith("symjac_"):
        return None
    kind, *sizes = name.split("_")[1:]
    if kind == "I":
        return f"I_{{{sizes[0]}}}"
    if kind == "1":
        return f"\\mathbf{{1}}_{{{sizes[0]}}}"
    return f"K_{{{sizes[0]},{sizes[1]}}}"


def _equations(lines: list[str]) -> str:
    """One equation as is; several aligned at their first `=`."""
    if len(lines) == 1:
        return lines[0]
    rows = []
    for line in lines:
        left, _, right = line.partition(" = ")
        rows.append(f"{left} &= {right}")
    return "\\begin{aligned}" + " \\\\ ".join(rows) + "\\end{aligned}"


def _check_symbol_names(function, options: LatexOptions) -> None:
    for key in options.symbol_names or {}:
        if key not in function.input_names:
            raise InvalidArgumentError(
                f"symbol_names: {key!r} is not an input of this function; its inputs are "
                f"{', '.join(function.input_names)}"
            )


# --------------------------------------------------------------------------- names


def base_name(name: str, options: LatexOptions) -> str:
    """LaTeX for an input's name: the caller's `symbol_names`, else SymPy's (`alpha` -> `\\alpha`)."""
    given = (options.symbol_names or {}).get(name)
    if given is not None:
        return given
    return sympy.latex(sympy.Symbol(name))


def entry_names(function, options: LatexOptions) -> dict[sympy.Symbol, str]:
    """`{Symbol('X[0, 1]'): 'X_{01}', ...}` for every input entry: the `symbol_names` setting."""
    names: dict[sympy.Symbol, str] = {}
    for inp in function.inputs:
        base = base_name(inp.name, options)
        if inp.shape == ():
            names[inp.symbols[()]] = base
            continue
        # A base that already has a subscript (W_{1}) is grouped so that ours does not clash.
        head = f"{{{base}}}" if "_" in base or "^" in base else base
        wide = max(inp.shape) - 1 + options.index_base > 9
        for index in itertools.product(*(range(n) for n in inp.shape)):
            digits = [str(i + options.index_base) for i in index]
            names[inp.symbols[index]] = f"{head}_{{{(',' if wide else '').join(digits)}}}"
    return names


def _partial(function, name: str, options: LatexOptions) -> str:
    return f"\\frac{{\\partial {options.output_name}}}{{\\partial {base_name(name, options)}}}"


# --------------------------------------------------------------------------- layout


def _axis_grid(shape: tuple[int, ...], vector: str) -> tuple[int, int]:
    """(rows, cols) of one side's grid: () -> 1x1, (n,) -> a column or a row, (m, n) -> m x n;
    higher ranks stack their leading axes as rows, as torch prints them."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return (shape[0], 1) if vector == "column" else (1, shape[0])
    return math.prod(shape[:-1]), shape[-1]


@dataclass(frozen=True)
class DisplayGrid:
    """Where each entry of a Jacobian of shape `out_shape + in_shape` is drawn.

    The outer grid (`outer_rows` x `outer_cols`) has one cell per output entry; each cell holds
    an inner grid (`inner_rows` x `inner_cols`) with one cell per input entry. `nested` is False
    when the two merge into one plain matrix (vector or scalar output by vector or scalar input).
    """

    outer_rows: int
    outer_cols: int
    inner_rows: int
    inner_cols: int

    @property
    def nested(self) -> bool:
        return not (self.outer_cols == 1 and self.inner_rows == 1) and not (
            self.outer_rows == self.outer_cols == 1 or self.inner_rows == self.inner_cols == 1
        )

    @property
    def shape(self) -> tuple[int, int]:
        """The flat picture's (rows, cols): every entry of the Jacobian in one 2-D image."""
        return self.outer_rows * self.inner_rows, self.outer_cols * self.inner_cols

    def position(self, p: int, q: int) -> tuple[int, int]:
        """Row and column, in the flat picture, of flat output entry `p` by flat input entry `q`."""
        ro, co = divmod(p, self.outer_cols)
        ri, ci = divmod(q, self.inner_cols)
        return ro * self.inner_rows + ri, co * self.inner_cols + ci


def display_grid(out_shape: tuple[int, ...], in_shape: tuple[int, ...], *, gradient: str = "row") -> DisplayGrid:
    """The layout of a Jacobian in LaTeX and in plots (torch's layout, read as a block matrix).

    | output | input | shown as |
    |---|---|---|
    | `()` | `(n,)` | a row (or a column: `gradient="column"`) |
    | `()` | `(m, n)` | an `m x n` matrix, shaped like the input |
    | `(p,)` | `(n,)` | the `p x n` Jacobian matrix |
    | `(p, q)` | `(m, n)` | a `p x q` block matrix of `m x n` blocks; block `[i, j]` is `dF[i, j]/dX` |
    | `(p,)` | `(m, n)` | a column of `p` blocks `m x n` |
    | `(p, q)` | `(n,)` | a `p x q` block matrix of rows `1 x n` |

    Ranks above 2 stack their leading axes as rows, as torch prints them.

    ```python
    >>> display_grid((2, 2), (2, 2)).shape
    (4, 4)
    ```
    """
    if out_shape == ():
        rows, cols = _axis_grid(in_shape, "column" if gradient == "column" else "row")
        return DisplayGrid(1, 1, rows, cols)
    outer_rows, outer_cols = _axis_grid(out_shape, "column")
    inner_rows, inner_cols = _axis_grid(in_shape, "row")
    return DisplayGrid(outer_rows, outer_cols, inner_rows, inner_cols)


def _shown(n: int, max_size: int) -> list[int | None]:
    """Indices shown along an axis of length n: all, or the first max_size - 2, None (elided), the last."""
    if n <= max_size:
        return list(range(n))
    return list(range(max_size - 2)) + [None, n - 1]


class _Printer:
    """Builds matrices whose cells are SymPy expressions or placeholders, printed by sympy.latex."""

    def __init__(self, options: LatexOptions, names: Mapping[sympy.Basic, str]):
        self.options = options
        self.names = dict(names)
        self.elided = False
        self._count = itertools.count()

    def placeholder(self, latex_text: str) -> sympy.Symbol:
        symbol = sympy.Symbol(f"symjac_cell_{next(self._count)}")
        self.names[symbol] = latex_text
        return symbol

    def print(self, expr: Any) -> str:
        return sympy.latex(expr, **self.options.settings(self.names))

    def matrix(self, rows: int, cols: int, cell, *, bare: bool = False, block_rows: int = 0) -> str:
        """A rows x cols matrix of `cell(r, c)`, elided past max_size; `bare`: a scalar, no matrix;
        `block_rows`: the cells are blocks of that many rows (block rows are spaced apart)."""
        if bare:
            return self.print(cell(0, 0))
        shown_rows = _shown(rows, self.options.max_size)
        shown_cols = _shown(cols, self.options.max_size)
        dots = {
            (True, False): "\\vdots",
            (False, True): "\\cdots",
            (True, True): "\\ddots",
        }
        grid = []
        for r in shown_rows:
            line = []
            for c in shown_cols:
                if r is None or c is None:
                    self.elided = True
                    line.append(self.placeholder(dots[(r is None, c is None)]))
                else:
                    line.append(cell(r, c))
            grid.append(line)
        if block_rows and len(grid) > 1:
            shown = _shown(block_rows, self.options.max_size)
            return self.print(_BlockMatrix(grid, len(shown), None in shown, self.options.inline))
        return self.print(sympy.Matrix(grid))


class _BlockMatrix:
    """The outer grid of a block matrix, printed by `sympy.latex` through its `_latex` protocol.

    It prints as SymPy prints a matrix (the `mat_str` environment, `mat_delim` delimiters, cells by
    the printer) except that block rows end with `\\\\[gap]`: SymPy's matrix printer has no setting
    for row spacing, and without it the brackets of blocks above each other touch. As in LaTeX,
    KaTeX makes `\\\\[gap]` a minimum depth of the row (gap plus the strut's depth), so the gap grows
    with the rows of a block: about half of a block's height, plus a little.
    """

    def __init__(self, cells: list[list[Any]], block_rows: int, elided: bool, inline: bool):
        self.cells = cells
        per_row = 0.35 if inline else 0.6  # smallmatrix rows are about 0.6 times as high
        gap = per_row * block_rows - (0.0 if inline else 0.1) + (per_row if elided else 0.0)  # a vdots row is taller
        self.gap = f"{gap:.2f}em"

    def _latex(self, printer) -> str:
        rows = [" & ".join(printer._print(cell) for cell in row) for row in self.cells]
        environment = printer._settings["mat_str"]
        body = f"\\begin{{{environment}}}" + f"\\\\[{self.gap}]".join(rows) + f"\\end{{{environment}}}"
        left = printer._settings["mat_delim"]
        if left:
            body = f"\\left{left}{body}\\right{printer._delim_dict[left]}"
        return body


def jacobian_latex(jacobian, options: LatexOptions) -> str:
    """The matrix (or block matrix) of a Jacobian's exact entries, in torch's layout."""
    function, wrt = jacobian.function, jacobian.wrt
    printer = _Printer(options, entry_names(function, options))
    grid = display_grid(function.out_shape, wrt.shape, gradient=options.gradient)
    entries = dict(zip(zip(jacobian.rows.tolist(), jacobian.cols.tolist()), jacobian.entries))
    zero = sympy.Integer(0)

    def value(p: int, q: int) -> sympy.Expr:
        return entries.get((p, q), zero)

    if not grid.nested:
        # One plain matrix: rows are output entries (or a row of input entries), columns input entries.
        rows, cols = grid.shape

        def flat(r: int, c: int) -> sympy.Expr:
            p = r // grid.inner_rows * grid.outer_cols + c // grid.inner_cols
            q = (r % grid.inner_rows) * grid.inner_cols + c % grid.inner_cols
            return value(p, q)

        body = printer.matrix(rows, cols, flat, bare=function.out_shape == wrt.shape == ())
    else:

        def block(ro: int, co: int) -> sympy.Symbol:
            p = ro * grid.outer_cols + co
            inner = printer.matrix(
                grid.inner_rows, grid.inner_cols, lambda ri, ci: value(p, ri * grid.inner_cols + ci), bare=wrt.shape == ()
            )
            return printer.placeholder(inner)

        body = printer.matrix(grid.outer_rows, grid.outer_cols, block, block_rows=grid.inner_rows)
    return body + _elision_note(printer, function.out_shape + wrt.shape, options)


def function_latex(function, options: LatexOptions) -> str:
    """`F = ` the output, entry by entry (a column for a vector output)."""
    printer = _Printer(options, entry_names(function, options))
    output = function.output
    rows, cols = _axis_grid(output.shape, "column")
    flat = output.reshape(-1)
    body = printer.matrix(rows, cols, lambda r, c: flat[r * cols + c], bare=output.shape == ())
    return f"{options.output_name} = {body}" + _elision_note(printer, output.shape, options)


def _elision_note(printer: _Printer, shape: tuple[int, ...], options: LatexOptions) -> str:
    if not printer.elided:
        return ""
    return (
        f" \\quad \\text{{(elided: at most {options.max_size} rows and columns shown; "
        f"shape {text(str(tuple(shape)))})}}"
    )


# --------------------------------------------------------------------------- text


_TEXT_ESCAPES = str.maketrans({
    "\\": "\\textbackslash{}",
    "{": "\\{",
    "}": "\\}",
    "$": "\\$",
    "&": "\\&",
    "#": "\\#",
    "%": "\\%",
    "_": "\\_",
    "^": "\\textasciicircum{}",
    "~": "\\textasciitilde{}",
})


def text(value: str) -> str:
    """Plain text made safe inside `\\text{...}`: each special character replaced by its escape.

    (SymPy's `latex_escape` omits the braces after `\\textbackslash`, so `\\a` would become the
    unknown command `\\textbackslasha`; this table keeps them.)

    ```python
    >>> text("X_1 @ X")
    'X\\\\_1 @ X'
    ```
    """
    return value.translate(_TEXT_ESCAPES)


# --------------------------------------------------------------------------- reports


def _number(x: float | None) -> str:
    """A float to 3 significant digits, printed by sympy.latex (`1.23 \\cdot 10^{-16}`)."""
    if x is None:
        return "-"
    if math.isnan(x):
        return "\\text{nan}"
    if math.isinf(x):
        return sympy.latex(sympy.oo if x > 0 else -sympy.oo)
    return sympy.latex(sympy.Float(x, 3), min=-3, max=3)


def report_latex(report) -> str:
    """The report as nested `array`s: the headline, one row per pair of routes, the worst entry."""
    rows = [f"\\text{{{text(report.headline())}}}"]
    rows += [f"\\text{{{text(line)}}}" for line in report.run_lines()]
    if report.reason:
        rows.append(f"\\text{{reason: {text(report.reason)}}}")
    if report.pairs:
        table = [
            "\\text{routes} & \\text{max abs err} & \\text{max rel err} & \\text{tol at worst} & \\text{ok}",
        ]
        for p in report.pairs:
            ok = "yes" if p.ok else f"NO ({entries_text(p.n_bad)})"
            table.append(
                f"\\text{{{text(' vs '.join(p.routes))}}} & {_number(p.max_abs_error)} & "
                f"{_number(p.max_rel_error)} & {_number(p.worst.tolerance)} & \\text{{{ok}}}"
            )
        rows.append("\\begin{array}{lrrrl}" + " \\\\ \\hline ".join(table) + "\\end{array}")
    if report.worst is not None:
        values = ", ".join(f"{k} = {v!r}" for k, v in report.worst.values.items())
        rows.append(f"\\text{{worst entry: {text(report.worst.label())}: {text(values)}}}")
    if report.verdict == "fail":
        rows.append(f"\\text{{odd one out: {text(report.odd_one_out or 'undetermined')}}}")
    return "\\begin{array}{l}" + " \\\\ ".join(rows) + "\\end{array}"
