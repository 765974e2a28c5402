"""Reports as Markdown tables for notebooks (`text/markdown`). Their LaTeX is in `symjac._latex`."""

from __future__ import annotations

import re

from ._report import entries_text

__all__ = ["report_markdown"]


def _headline(report) -> str:
    return report.headline()


_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}


def _cell(value: str) -> str:
    """Markdown text that renders as exactly `value`: HTML's `& < > "` as entities, every other
    ASCII punctuation character backslash-escaped (CommonMark), so that text from the expression
    (a comment holding `<script>`, `[x](javascript:...)`, `**`, `|`) is shown, never interpreted."""
    out = []
    for char in value:
        if char in _HTML:
            out.append(_HTML[char])
        elif char.isascii() and not char.isalnum() and char.isprintable() and char != " ":
            out.append("\\" + char)
        elif char in "\n\r":
            out.append(" ")
        else:
            out.append(char)
    return "".join(out)


def _code(value: str) -> str:
    """A Markdown code span holding `value` literally: fenced by more backticks than any run inside."""
    value = " ".join(value.splitlines())
    runs = [len(m) for m in re.findall(r"`+", value)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if value.startswith("`") or value.endswith("`") or not value.strip() else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def report_markdown(report) -> str:
    """The report as Markdown: headline, a table of the pairs of routes, the worst entry."""
    lines = [f"**{_cell(_headline(report))}**", ""]
    for line in report.run_lines():  # a run over many points: counts, the minimal counterexample
        lines += [_cell(line), ""]
    if report.reason:
        lines += [f"reason: {_cell(report.reason)}", ""]
    if report.pairs:
        lines += ["| routes | max abs err | max rel err | tol at worst | ok |", "|---|---:|---:|---:|---|"]
        for p in report.pairs:
            tol = "-" if p.worst.tolerance is None else f"{p.worst.tolerance:.2e}"
            ok = "yes" if p.ok else f"**NO** ({entries_text(p.n_bad)})"
            lines.append(
                f"| {' vs '.join(p.routes)} | {p.max_abs_error:.2e} | {p.max_rel_error:.2e} | {tol} | {ok} |"
            )
        lines.append("")
    if report.worst is not None:
        values = ", ".join(f"{k}={v!r}" for k, v in report.worst.values.items())
        lines.append(f"worst entry: {_code(report.worst.label())}: {values}")
    if report.verdict == "fail":
        lines.append(f"\nodd one out: {_cell(str(report.odd_one_out or 'undetermined (several routes disagree)'))}")
    lines.append(f"\nreproduce: {_code(report.reproduce)}")
    if report.point_reproduce() is not None:
        lines.append(f"\nreproduce that point: {_code(report.point_reproduce())}")
    return "\n".join(lines)
