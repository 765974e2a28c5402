"""Every LaTeX string symjac emits in the tests is rendered by a real engine, KaTeX (through node),
and any parse or render error fails the test.

The corpus: the exact strings pinned in tests/test_latex.py and tests/test_closed_form.py, and
`symjac.latex` of every catalog function (`symjac._catalog` when present; until then the function
list of tests/test_check.py) in each form and mode, plus report tables.

KaTeX is installed from tools/katex/package-lock.json (`npm ci` in tools/katex; `.ci/run` does it).
"""

import importlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import sympy

import symjac as sj

KATEX_DIR = Path(__file__).resolve().parent.parent / "tools" / "katex"
RENDER_JS = KATEX_DIR / "render.js"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the LaTeX render test needs node (and npm) to run KaTeX")
    if not (KATEX_DIR / "node_modules" / "katex").is_dir():
        npm = shutil.which("npm")
        done = npm and subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=KATEX_DIR, capture_output=True, timeout=300
        )
        if not done or done.returncode != 0:
            pytest.fail(
                f"KaTeX is not installed in {KATEX_DIR}/node_modules and `npm ci` there failed "
                f"({done.stderr.decode()[-500:] if done else 'npm not found'}); run `cd tools/katex && npm ci`"
            )
    return node


def render(items: list[tuple[str, bool]]) -> list[dict]:
    """Render (latex, display) pairs with KaTeX; one {"ok", "error"} per pair."""
    payload = json.dumps([{"latex": latex, "display": display} for latex, display in items])
    out = subprocess.run([_node(), str(RENDER_JS)], input=payload, capture_output=True, text=True, timeout=120)
    assert out.returncode in (0, 1), out.stderr
    return json.loads(out.stdout)


def unwrap(latex: str) -> tuple[str, bool]:
    """Strip `$$...$$` (display) or `$...$` (inline) as a notebook would."""
    if latex.startswith("$$") and latex.endswith("$$"):
        return latex[2:-2], True
    if latex.startswith("$") and latex.endswith("$"):
        return latex[1:-1], False
    return latex, True


def _tests_module(name: str):
    return importlib.import_module(name)  # tests/ is on sys.path (pytest's rootdir-based import)


def catalog_functions() -> list[tuple[str, "sj.Function"]]:
    """(name, Function) for every catalog function: symjac._catalog when it exists, else test_check's list."""
    try:
        catalog = importlib.import_module("symjac._catalog")
    except ModuleNotFoundError:
        cases = _tests_module("test_check").CASES
        return [(case[0], sj.function(case[1], consts=case[3], **case[2])) for case in cases]
    return [(entry.name, entry.function()) for entry in catalog.CATALOG]


def pinned_strings() -> list[tuple[str, str]]:
    """(id, latex) of every exact string pinned by the LaTeX and closed-form tests."""
    latex_tests = _tests_module("test_latex")
    closed_tests = _tests_module("test_closed_form")
    out = []
    for number, strings in latex_tests.GOLDEN.items():
        out += [(f"golden{number}-{k}", s) for k, s in enumerate(strings)]
    out += [(f"latex-{case[0]}", case[-1]) for case in latex_tests.SHAPES + latex_tests.OPTIONS]
    out += [(f"closed-{case[0]}", case[-1]) for case in closed_tests.CASES]
    return out


#: Jacobians with more expression nodes than this (inv of a 4x4: about 10**5) are printed elided
#: (max_size=3) here: printing all their entries takes sympy.latex 10+ s, and the elided form
#: prints entries of the same kind through the same code.
BIG_JACOBIAN_NODES = 20_000


def _nodes(function) -> int:
    return sum(
        sum(1 for _ in sympy.preorder_traversal(e)) for j in function.jacobians().values() for e in j.entries
    )


def emitted_for(function) -> list[tuple[str, str]]:
    """What symjac.latex emits for one function: the Jacobian (display mode), the function (inline,
    parentheses, 1-based) and the closed form when there is one. (Every option is also pinned, and
    so rendered, in tests/test_latex.py.)"""
    big = _nodes(function) > BIG_JACOBIAN_NODES
    size = 3 if big else 8
    out = [
        ("entries", sj.latex(function, mode="display", max_size=size)),
        ("function", sj.latex(function, form="function", mode="inline", delimiters="(", index_base=1, max_size=size)),
    ]
    if not big:
        try:
            out.append(("matrix", sj.latex(function, form="matrix")))
        except sj.ClosedFormError:
            pass
    return out


@pytest.mark.timeout(300)
def test_every_pinned_string_renders_in_katex():
    corpus = pinned_strings()
    assert len(corpus) > 40
    _assert_renders(corpus)


@pytest.mark.timeout(300)
def test_latex_of_every_catalog_function_renders_in_katex():
    functions = catalog_functions()
    assert len(functions) >= 30
    corpus = [(f"{name}-{kind}", latex) for name, f in functions for kind, latex in emitted_for(f)]
    assert sum("-matrix" in name for name, _ in corpus) >= 5  # closed forms are in the corpus too
    _assert_renders(corpus)


@pytest.mark.timeout(300)
def test_reports_and_large_elided_jacobians_render_in_katex():
    pytest.importorskip("torch")
    f = sj.function("X @ X", X=(2, 2))
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    passed = sj.check(f, X=x)
    failed = sj.check(f, X=x, jacobian=-f.jacobian().evaluate(X=x))
    inconclusive = sj.check(sj.function("log(x)", x=(1,)), x=[-1.0])
    big = sj.function("X @ X", X=(9, 9))
    corpus = [
        ("report-pass", passed.latex()),
        ("report-pass-repr", passed._repr_latex_()),
        ("report-fail", failed.latex()),
        ("report-inconclusive", inconclusive.latex(mode="inline")),
        ("big-block", big.jacobian().latex()),
        ("big-function", sj.latex(big, form="function", mode="inline")),
        ("escaped-text", "\\text{" + sj._latex.text(r"a_b^c~d\e{f}$g&h#i%j") + "}"),
    ]
    _assert_renders(corpus)


DOCS = Path(__file__).resolve().parent.parent / "docs"


def docs_math() -> list[tuple[str, str]]:
    """The math of the docs pages: `$$...$$` (display) and `$...$` (inline), outside code."""
    import re

    out = []
    for page in sorted(DOCS.glob("*.md")):
        body = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # fenced code
        body = re.sub(r"`[^`\n]*`", "", body)  # inline code
        for k, block in enumerate(re.findall(r"\$\$(.+?)\$\$", body, flags=re.S)):
            out.append((f"{page.name}-display{k}", "$$" + block.strip() + "$$"))
        body = re.sub(r"\$\$(.+?)\$\$", "", body, flags=re.S)
        for k, inline in enumerate(re.findall(r"\$([^$\n]+?)\$", body)):
            out.append((f"{page.name}-inline{k}", "$" + inline + "$"))
    return out


@pytest.mark.timeout(120)
def test_math_in_the_docs_renders_in_katex():
    corpus = docs_math()
    assert len(corpus) >= 20
    _assert_renders(corpus)


def test_the_renderer_rejects_bad_latex():
    """The renderer is real: it refuses what LaTeX would refuse (here, KaTeX's parse errors)."""
    results = render([(r"\frac{a}", True), (r"\begin{bmatrix}1 & 2\end{pmatrix}", True), (r"\notacommand{x}", False)])
    assert [r["ok"] for r in results] == [False, False, False]
    assert all("KaTeX parse error" in r["error"] for r in results)


def _assert_renders(corpus: list[tuple[str, str]]) -> None:
    items = [unwrap(latex) for _, latex in corpus]
    results = render(items)
    assert len(results) == len(corpus)
    bad = [f"{name}: {r['error']}\n    {latex[:300]}" for (name, latex), r in zip(corpus, results) if not r["ok"]]
    assert not bad, f"{len(bad)} of {len(corpus)} LaTeX strings fail to render in KaTeX:\n" + "\n".join(bad)
