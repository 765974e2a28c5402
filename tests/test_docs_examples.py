"""Every Python code block in README.md and docs/*.md runs as written (issue 15).

The blocks of one page run in order in one namespace, as a reader would paste them. A block written
as a session (`>>>` prompts) runs its statements; where the page shows an exception as the output
(`TypeError: ...`), the statement must raise that exception. A block that is a fragment on purpose
is marked with `<!-- no-run -->` on the line before it; the marker is used sparingly, and a test
below keeps count.
"""

import builtins
import pathlib
import re
import warnings

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
NO_RUN = "<!-- no-run -->"
_BLOCK = re.compile(r"(?P<before>[^\n]*)\n```python\n(?P<code>.*?)\n```", re.S)

pytestmark = pytest.mark.timeout(600)


def blocks(page: pathlib.Path) -> list[tuple[int, str, bool]]:
    """(line number, code, marked no-run) of each ```python block of the page."""
    text = "\n" + page.read_text(encoding="utf-8")
    found = []
    for match in _BLOCK.finditer(text):
        line = text.count("\n", 0, match.start("code"))
        found.append((line, match.group("code"), match.group("before").strip() == NO_RUN))
    return found


def _session(code: str) -> list[tuple[str, str]]:
    """A `>>>` block as (statement, expected output) pairs."""
    steps: list[tuple[str, list[str]]] = []
    for line in code.splitlines():
        if line.startswith(">>> "):
            steps.append((line[4:], []))
        elif line.startswith("... ") and steps:
            steps[-1] = (steps[-1][0] + "\n" + line[4:], steps[-1][1])
        elif steps:
            steps[-1][1].append(line)
    return [(statement, "\n".join(out)) for statement, out in steps]


def run_block(code: str, namespace: dict, where: str) -> None:
    if not code.lstrip().startswith(">>>"):
        exec(compile(code, where, "exec"), namespace)  # noqa: S102 - our own documentation
        return
    for statement, expected in _session(code):
        error = re.match(r"^(\w+(?:Error|Exception)):", expected.strip())
        if error:
            kind = getattr(builtins, error.group(1), Exception)
            with pytest.raises(kind):
                exec(compile(statement, where, "single"), namespace)  # noqa: S102
        else:
            exec(compile(statement, where, "single"), namespace)  # noqa: S102


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_code_blocks_run_as_written(page, tmp_path, monkeypatch, capsys):
    found = [b for b in blocks(page) if not b[2]]
    if not found:
        pytest.skip(f"{page.name} has no Python block to run")
    pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)  # files a block writes (check.png) land here
    namespace: dict = {"__name__": "__main__"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a page's own output, not what this test checks
        for line, code, _ in found:
            run_block(code, namespace, f"{page.relative_to(ROOT)}:{line}")


def test_no_run_markers_are_few():
    marked = [(p.name, line) for p in PAGES for line, _, no_run in blocks(p) if no_run]
    assert len(marked) <= 3, marked


def test_the_extractor_sees_markers_and_sessions(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("text\n```python\nx = 1\n```\n\n<!-- no-run -->\n```python\nundefined_name\n```\n"
                    "```python\n>>> 1 / 0\nZeroDivisionError: division by zero\n>>> y = 2\n```\n")
    assert [(code, no_run) for _, code, no_run in blocks(page)] == [
        ("x = 1", False), ("undefined_name", True), (">>> 1 / 0\nZeroDivisionError: division by zero\n>>> y = 2", False)]
    namespace: dict = {}
    for _, code, no_run in blocks(page):
        if not no_run:
            run_block(code, namespace, "page.md")
    assert namespace["x"] == 1 and namespace["y"] == 2
    with pytest.raises(NameError):  # a block that does not run fails the test
        run_block("undefined_name", {}, "page.md")
    with pytest.raises(pytest.fail.Exception):  # an exception the page promises must happen
        run_block(">>> 1 + 1\nZeroDivisionError: no", {}, "page.md")


def test_limits_page_states_the_largest_accepted_sizes():
    # docs/limits.md said `X @ X` up to 14 x 14 while 13 x 13 was the largest accepted: computed here
    import symjac as sj

    text = " ".join((ROOT / "docs" / "limits.md").read_text(encoding="utf-8").split())
    for expr in ("X @ X", "X @ X @ X", "det(X)", "inv(X)", "sum(X)"):
        stated = re.search(re.escape(f"`{expr}` up to ") + r"(\d+) x (\d+)", text)
        assert stated, expr
        n = int(stated.group(1))
        sj.function(expr, X=(n, n))  # accepted
        with pytest.raises(sj.TooLargeError):
            sj.function(expr, X=(n + 1, n + 1))
