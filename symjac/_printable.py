"""The one display hook: how Functions, Jacobians and Reports reach the display layer.

Display (`_latex`, `_display`, `_plot`) is a leaf of the pipeline: it reads Functions, Jacobians and
Reports, and nothing below it imports it at module level. The objects that show themselves in a
notebook or have a `.latex()` method inherit this mixin, whose methods import the display module
they need on first use. These methods are the only imports in the package that point up the layers
(`tests/test_layers.py` allows exactly these). The pattern is SymPy's `sympy/core/_print_helpers.py`.
"""

from __future__ import annotations

from typing import Any


class Printable:
    """Mixin: `_repr_latex_` and the display methods, each importing its display module lazily."""

    __slots__ = ()

    # The `form` of `symjac.latex` that a notebook shows for this object.
    _latex_form: str = "entries"

    def _repr_latex_(self) -> str:
        from ._latex import latex

        return latex(self, form=self._latex_form, mode="display")

    def _latex(self, **options: Any) -> str:
        """`symjac.latex(self, **options)`."""
        from ._latex import latex

        return latex(self, **options)

    def _latex_matrix(self, **options: Any) -> str:
        """A Jacobian's entries alone, as a (block) matrix (`Jacobian.latex`)."""
        from ._latex import jacobian_matrix

        return jacobian_matrix(self, **options)

    def _markdown(self) -> str:
        """A Report as a Markdown table (`text/markdown` in notebooks)."""
        from ._display import report_markdown

        return report_markdown(self)

    def _figure(self, path, *, dpi: int):
        """A Report's pictures as a matplotlib Figure (`Report.plot`)."""
        from ._plot import plot_report

        return plot_report(self, path, dpi=dpi)
