"""Names, constants and expressions crafted to break out of generated code or out of LaTeX.

symjac writes Python source (lambdify, or its own SymEngine printer) and LaTeX from what users give
it. The defences: names are validated ASCII identifiers that are not reserved; symbol names never
reach generated source (they are replaced by dummies); only known SymPy functions, of their exact
types, may appear in an output; text is parsed by an allow-list and never executed; a caller's
LaTeX for a name must be a self-contained fragment. Each test below tries to get past one of them.
"""

import ast
import builtins
import io

import numpy as np
import pytest
import sympy

import symjac as sj
from symjac import _symengine
from symjac._cli import main
from symjac._codegen import compile_entries
from symjac._parse import parse_expression

pytestmark = pytest.mark.timeout(120)

PAYLOAD = "__import__('os').system('touch {path}')"

EVIL_NAMES = [
    "x); __import__('os').system('id'); (x",
    "__import__('os')",
    "x\nimport os",
    "x;import os",
    "X[0]",
    "a'b",
    'a"b',
    "a\\b",
    "a{b}",
    "}\\input{/etc/passwd}{",
    "$x$",
    "x%",
    "x#",
    "a b",
    "_Dummy_1",
    "__class__",
    "lambda",
    "torch",
    "numpy",
    "_as_tensor",
    "x0",  # not evil, but the name of a common-subexpression temporary: must still be harmless
    "",
    "é",
    "\u202ex",
]


@pytest.mark.parametrize("name", EVIL_NAMES[:-5] + EVIL_NAMES[-3:], ids=repr)
def test_crafted_input_and_constant_names_are_refused(name):
    with pytest.raises(sj.InvalidArgumentError):
        sj.function("1", **{name: ()})
    with pytest.raises(sj.InvalidArgumentError):
        sj.function("x", x=(), consts={name: 1.0})
    with pytest.raises(sj.InvalidArgumentError):
        parse_expression("1", {name: sympy.Symbol("x", real=True)})


@pytest.mark.parametrize("name", [n for n in EVIL_NAMES if n not in ("", "x0")], ids=repr)
def test_crafted_sympy_symbol_names_never_become_inputs(name):
    # A Symbol of SymPy input or of a callable's result that is not a declared input is refused.
    evil = sympy.Symbol(name, real=True)
    x = sympy.Symbol("x")
    with pytest.raises(sj.InvalidExpressionError, match="unknown symbol"):
        sj.function(x * evil, x=())
    with pytest.raises(sj.InvalidExpressionError, match="unknown symbol"):
        sj.function(lambda x: x * evil, x=())


@pytest.mark.parametrize("make", [
    lambda x: sympy.Function("__import__('os').system")(x),
    lambda x: sympy.Function("os.system")(x),
    lambda x: sympy.Function("sin")(x),  # an undefined function that only looks like sin
], ids=["import", "attribute", "fake-sin"])
def test_functions_with_crafted_names_are_refused(make):
    with pytest.raises(sj.InvalidExpressionError, match="undefined function"):
        sj.function(lambda x: make(x), x=())
    with pytest.raises(sj.InvalidExpressionError, match="undefined function"):
        sj.function(make(sympy.Symbol("x")), x=())


def test_a_subclass_of_a_supported_function_cannot_print_its_own_code(tmp_path):
    target = tmp_path / "pwned"

    class evil_sin(sympy.sin):  # noqa: N801 - SymPy's naming
        def _numpycode(self, printer):
            return PAYLOAD.format(path=target)

        _lambdacode = _pythoncode = _torchcode = _numpycode

    with pytest.raises(sj.InvalidExpressionError, match="'evil_sin'.*is not supported"):
        sj.function(lambda x: evil_sin(x), x=())
    assert not target.exists()


# --------------------------------------------------------------------------- generated source

_DANGEROUS = ["eval", "exec", "compile", "open", "__import__", "getattr", "setattr", "delattr", "globals",
              "locals", "vars", "input", "breakpoint", "exit", "quit", "help", "type", "object", "memoryview"]


def _assert_safe_source(compiled, forbidden: list[str]) -> None:
    """Generated source: one function, no imports or strings, names only from its arguments, its
    temporaries and the backend's namespace (numpy/torch functions), none of the user's names."""
    tree = ast.parse(compiled.source)
    assert len(tree.body) == 1 and isinstance(tree.body[0], ast.FunctionDef)
    fn = tree.body[0]
    local = {a.arg for a in fn.args.args + fn.args.kwonlyargs}
    for node in ast.walk(tree):
        assert not isinstance(node, (ast.Import, ast.ImportFrom, ast.Lambda, ast.Global, ast.Nonlocal)), ast.dump(node)
        if isinstance(node, ast.Constant):
            assert node.value is None or isinstance(node.value, (int, float)), node.value
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            local.add(node.id)
        if isinstance(node, ast.Attribute):
            assert isinstance(node.value, ast.Name) and node.value.id in ("numpy", "torch"), ast.dump(node)
            assert not node.attr.startswith("_")
    namespace = compiled.fn.__globals__
    for node in ast.walk(fn):
        if isinstance(node, ast.Name) and node.id not in local:
            assert node.id in namespace and not node.id.startswith("__"), node.id
            assert node.id not in _DANGEROUS, node.id
            assert all(namespace[node.id] is not getattr(builtins, d) for d in _DANGEROUS), node.id
    for text in forbidden:
        assert text not in compiled.source


FUNCTIONS = [
    ("text", lambda: sj.function("tanh(Wqz @ vqz + bqz) * relu(vqz) + abs(vqz) ** 3 + sqrt(exp(vqz) + 1)",
                                 Wqz=(3, 3), vqz=(3,), bqz=(3,))),
    ("consts", lambda: sj.function("Aqz @ Xqz + sin(Xqz) / (1 + Xqz ** 2)", Xqz=(2, 2),
                                   consts={"Aqz": [[1e30, -2.5], [1e-30, 3]]})),
    ("callable", lambda: sj.function(lambda Qqz: sj.ops.softmax(Qqz @ Qqz.T) + sj.ops.log(1 + Qqz * Qqz), Qqz=(2, 2))),
    ("sympy", lambda: sj.function(sympy.Piecewise((sympy.Symbol("tqz_1") ** 2, sympy.Symbol("tqz_1") > 0),
                                                  (sympy.atan2(sympy.Symbol("tqz_1"), 2), True)), tqz_1=())),
    ("det-inv", lambda: sj.function("det(Mqz) * sum(inv(Mqz))", Mqz=(3, 3))),
]


@pytest.mark.parametrize("engine", [True, False], ids=["symengine", "sympy"])
@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("label, build", FUNCTIONS, ids=[f[0] for f in FUNCTIONS])
def test_generated_source_holds_no_user_names(label, build, backend, engine, monkeypatch):
    if backend == "torch":
        pytest.importorskip("torch")
    if engine and not _symengine.available():
        pytest.skip("symengine is not installed")
    monkeypatch.setattr(_symengine, "ENABLED", engine)
    f = build()
    forbidden = list(f.input_names) + ["qz", "'", '"']
    symbols = [s for inp in f.inputs for s in inp.flat_symbols]
    _assert_safe_source(compile_entries(list(f.output.reshape(-1)), symbols, backend), forbidden)
    for jac in f.jacobians().values():
        if jac.entries:
            _assert_safe_source(compile_entries(list(jac.entries), symbols, backend), forbidden)


@pytest.mark.parametrize("template", [
    "x # " + PAYLOAD,
    "x  # }}$\\input{{/etc/passwd}}$ " + PAYLOAD,
    "(x  # " + PAYLOAD + "\n)",
])
def test_comments_are_never_run_nor_shown_unescaped(template, tmp_path):
    target = tmp_path / "pwned"
    text = template.format(path=target)
    f = sj.function(text, x=())
    report = sj.check(f, x=0.5)
    str(report), report.to_dict()
    exec(compile(report.reproduce.replace("import numpy, symjac; ", ""), "<repro>", "exec"),
         {"symjac": sj, "numpy": np})  # the reproduction line is a Python literal, not the text
    assert not target.exists()
    assert report.reproduce.count(repr(text)) == 1
    shown = sj.latex(report)  # the text appears in the report's LaTeX escaped, as text
    assert "\\input" not in shown and "$" not in shown.replace("\\$", "")


@pytest.mark.parametrize("char", ["\x1b", "\x07", "\x00", "\u202e", "\u200b", "\x7f"], ids=repr)
def test_terminal_and_bidi_control_characters_are_refused(char):
    # found: "x # \x1b[2J" was accepted and its escape sequence printed in every report
    with pytest.raises(sj.InvalidExpressionError, match=f"control character U\\+{ord(char):04X}"):
        sj.function(f"x # {char}[2J", x=())


def test_cli_values_are_json_never_python(tmp_path):
    target = tmp_path / "pwned"
    for option, value in [("--at", f"x={PAYLOAD.format(path=target)}"),
                          ("--const", f"A={PAYLOAD.format(path=target)}"),
                          ("--input", f"x={PAYLOAD.format(path=target)}")]:
        argv = ["check", "x", "--input", "x=scalar", "--at", "x=1", option, value, "--timeout", "0"]
        err = io.StringIO()
        assert main(argv, out=io.StringIO(), err=err) == 2
        assert err.getvalue().count("\n") == 1
    assert not target.exists()


def test_check_runs_nothing_from_the_text(tmp_path):
    target = tmp_path / "pwned"
    for template in ["sin.__globals__['os'].system('touch {path}')", "X.T.__init__.__globals__",
                     "[x for x in ().__class__.__base__.__subclasses__()]"]:
        with pytest.raises(sj.InvalidExpressionError):
            sj.function(template.format(path=target), x=(), X=(2, 2))
    assert not target.exists()


# --------------------------------------------------------------------------- LaTeX


LATEX_BREAKOUTS = [
    "}\\input{/etc/passwd}{",
    "$ \\input{/etc/passwd} $",
    "a % the rest is a comment",
    "\\def\\F{1}",
    "\\immediate\\write18{id}",
    "\\end{aligned}\\input{x}\\begin{aligned}",
    "a \\\\ b",
    "a & b",
    "#1",
    "a\nb",
    "\\href{javascript:alert(1)}{x}",
    "\\csname input\\endcsname{x}",
    "{",
    "}",
    # TeX has more ways in than any deny-list lists: only the allow-list keeps them out
    "^^5cinput{/etc/passwd}",
    "\\directlua{os.execute('id')}",
    "\\loop\\iftrue\\repeat",
    "\\ShellEscape{id}",
    "\\stop",
    "\\endinput",
    "\\inputs",
    "x\u00e9",
    "<img src=x>",
]


@pytest.mark.parametrize("fragment", LATEX_BREAKOUTS, ids=repr)
def test_latex_symbol_names_cannot_break_out(fragment):
    f = sj.function("x * y", x=(), y=())
    with pytest.raises(sj.InvalidArgumentError, match=r"symbol_names\['x'\]: must be a self-contained LaTeX fragment"):
        sj.latex(f, symbol_names={"x": fragment}, mode="inline")
    with pytest.raises(sj.InvalidArgumentError, match="output_name: must be a self-contained LaTeX fragment"):
        sj.latex(f, output_name=fragment)


@pytest.mark.parametrize("fragment", ["\\mathbf{X}", "\\boldsymbol{\\theta}", "x_{1}", "\\tilde{A}^{(2)}",
                                      "\\mathrm{d}", "\\alpha_{1}'", "\\hat{\\beta}^{(k)}"])
def test_latex_symbol_names_that_are_plain_math_are_kept(fragment):
    f = sj.function("x * y", x=(), y=())
    assert fragment in sj.latex(f, symbol_names={"x": fragment})


# Valid identifiers that SymPy's LaTeX printer interprets (Greek letters, accents, sub- and
# superscripts): they must still give well-formed LaTeX with no control sequence but math ones.
PRINTER_NAMES = ["alpha", "Lambda", "lamda", "a_b", "x__y", "A_1_2", "Xdot", "aHat", "xprime", "mathrm",
                 "infty", "textbf", "input", "begin", "end", "hbar", "vec_x", "Xddot", "nabla"]
_MATH_COMMANDS = {"frac", "partial", "begin", "end", "alpha", "Lambda", "lambda", "dot", "hat", "ddot", "hbar",
                  "nabla", "cdot", "left", "right", "quad", "vec", "infty", "mathrm", "textbf", "input",
                  "operatorname", "sqrt"}


@pytest.mark.parametrize("name", PRINTER_NAMES)
def test_latex_of_names_is_well_formed(name):
    reserved = name in sj._parse.RESERVED_NAMES
    if reserved:
        with pytest.raises(sj.InvalidArgumentError):
            sj.function(f"{name} * 2", **{name: (2,)})
        return
    f = sj.function(f"{name} * 2 + sum({name})", **{name: (2,)})
    for form, mode in [("entries", "plain"), ("entries", "display"), ("function", "inline")]:
        text = sj.latex(f, form=form, mode=mode)
        depth = 0
        for char in text:
            depth += {"{": 1, "}": -1}.get(char, 0)
            assert depth >= 0, text
        assert depth == 0, text
        assert "%" not in text and "#" not in text and "\n" not in text
        assert text.count("$") == {"plain": 0, "inline": 2, "display": 4}[mode], text
        import re

        commands = set(re.findall(r"\\([A-Za-z]+)", text))
        # \input, \begin... may appear only as SymPy's *names* (`\operatorname{input}` or the plain
        # letters), never as commands; begin/end only for the matrix and aligned environments.
        assert "input" not in commands, text
        environments = set(re.findall(r"\\(?:begin|end)\{([A-Za-z*]+)\}", text))
        assert environments <= {"bmatrix", "pmatrix", "matrix", "smallmatrix", "aligned", "array"}, text


def test_latex_of_crafted_names_renders_in_katex():
    render = pytest.importorskip("test_render").render
    items = []
    for name in [n for n in PRINTER_NAMES if n not in sj._parse.RESERVED_NAMES]:
        f = sj.function(f"{name} * 2", **{name: (2,)})
        items.append((sj.latex(f), True))
        items.append((sj.latex(f, symbol_names={name: "\\mathbf{W}_{1}"}), True))
    results = render(items)
    assert [r for r in results if not r["ok"]] == []
