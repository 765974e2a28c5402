"""Pictures of a check (optional: needs matplotlib, `pip install symjac[plot]`; headless Agg).

`plot_report` draws, from the route matrices a Report keeps (`Report.matrices`):

- the exact Jacobian's **sparsity pattern**, laid out as its LaTeX is (torch's layout read as a
  block matrix: block `[i, j]` is `dF[i, j]/dX`; see `symjac._latex.display_grid`), with several
  inputs side by side;
- per **pair of routes**, a heatmap of `|a - b|` on a log scale, with the pair's worst entry (the
  one the report names) outlined in red.

Only `matplotlib.figure.Figure` and the Agg canvas are used: no pyplot, no global state, no window.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from ._errors import BackendNotAvailableError, InvalidArgumentError
from ._latex import DisplayGrid, display_grid

__all__ = ["plot_report", "Layout", "PANEL_INCHES", "WORST_COLOR"]

#: (width, height) of one panel, in inches; the figure is a grid of at most 3 panels per row.
PANEL_INCHES = (3.6, 3.2)
#: The outline of the worst entry (pure red: no colormap used here contains it).
WORST_COLOR = (1.0, 0.0, 0.0)
_GAP = 1  # empty columns between two inputs


class Layout:
    """Where each `(out_size, in_size)` matrix entry goes in the picture (inputs side by side)."""

    def __init__(self, out_shape: tuple[int, ...], inputs: tuple[tuple[str, tuple[int, ...]], ...]):
        self.out_shape = tuple(out_shape)
        self.inputs = tuple(inputs)
        self.grids: list[DisplayGrid] = [display_grid(self.out_shape, shape) for _, shape in inputs]
        self.offsets: list[int] = []  # first picture column of each input
        self.starts: list[int] = []  # first matrix column of each input
        col = start = 0
        for grid, (_, shape) in zip(self.grids, inputs):
            self.offsets.append(col)
            self.starts.append(start)
            col += grid.shape[1] + _GAP
            start += math.prod(shape)
        self.shape = (max(g.shape[0] for g in self.grids), col - _GAP)

    def position(self, p: int, c: int) -> tuple[int, int]:
        """Picture (row, col) of matrix entry (flat output p, column c over all inputs)."""
        k = max(i for i, s in enumerate(self.starts) if s <= c)
        row, col = self.grids[k].position(p, c - self.starts[k])
        return row, col + self.offsets[k]

    def entry_position(self, entry) -> tuple[int, int]:
        """Picture (row, col) of a report `Entry` (output index, input name and index)."""
        names = [name for name, _ in self.inputs]
        k = names.index(entry.input_name)
        shape = self.inputs[k][1]
        p = int(np.ravel_multi_index(entry.output_index, self.out_shape)) if self.out_shape else 0
        q = int(np.ravel_multi_index(entry.input_index, shape)) if shape else 0
        return self.position(p, self.starts[k] + q)

    def picture(self, matrix: np.ndarray) -> np.ndarray:
        """The matrix drawn as the picture: NaN where no entry goes (padding, gaps between inputs)."""
        image = np.full(self.shape, np.nan)
        rows, cols = matrix.shape
        for c in range(cols):
            for p in range(rows):
                image[self.position(p, c)] = matrix[p, c]
        return image


def _matplotlib():
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.colors import LogNorm, Normalize
        from matplotlib.figure import Figure
        from matplotlib.patches import Rectangle
    except ImportError:
        raise BackendNotAvailableError(
            "plot: matplotlib is not installed; install it with `pip install symjac[plot]` "
            "(or `pip install matplotlib`)"
        ) from None
    return matplotlib, FigureCanvasAgg, Figure, LogNorm, Normalize, Rectangle


def check_path(path: Any, *, argument: str = "path") -> None:
    """Refuse a PNG path that cannot be written (a directory, a missing directory), before any drawing."""
    if path is None or hasattr(path, "write"):
        return
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidArgumentError(f"{argument}: must be a file name or a file object; received {type(path).__name__}")
    name = os.fspath(path)
    if not isinstance(name, str) or not name:
        raise InvalidArgumentError(f"{argument}: must be a file name or a file object; received {path!r}")
    if os.path.isdir(name):
        raise InvalidArgumentError(f"{argument}: {name!r} is a directory; give a file name such as check.png")
    folder = os.path.dirname(os.path.abspath(name))
    if not os.path.isdir(folder):
        raise InvalidArgumentError(f"{argument}: the directory {folder!r} of {name!r} does not exist")


def plot_report(report, path: Any = None, *, dpi: int = 100):
    """Draw a report's sparsity pattern and per-pair error heatmaps; save a PNG to `path` if given.

    - `report`: a `symjac.Report` from `symjac.check` (one that evaluated its routes); for a run over
      many points (`samples=`), its minimal counterexample, else its worst point, is drawn.
    - `path`: a file name or file object for the PNG, or None.
    - `dpi`: dots per inch; the PNG is `ceil(PANEL_INCHES * panels grid * dpi)` pixels.

    Returns the matplotlib `Figure` (axes labelled `"sparsity"` and `"<route> vs <route>"`).

    ```python
    >>> report = symjac.check(symjac.function("X @ X", X=(2, 2)), X=[[1.0, 2.0], [3.0, 4.0]])
    >>> fig = report.plot("check.png")
    ```
    """
    if isinstance(dpi, bool) or not isinstance(dpi, int) or not 10 <= dpi <= 600:
        raise InvalidArgumentError(f"dpi: must be an int from 10 to 600; received {dpi!r}")
    check_path(path)
    run = getattr(report, "run", None)
    if report.matrices is None and run is not None:
        # a run over many points draws its featured point: the counterexample, else the worst point
        featured = run.counterexample or run.worst
        if featured is not None and featured.matrices is not None:
            report = featured
    data = report.matrices
    if data is None:
        raise InvalidArgumentError(
            "report: has no route matrices to plot (the check stopped before evaluating its routes: "
            f"{report.reason or report.verdict}); plot a report whose routes were compared"
        )
    _, FigureCanvasAgg, Figure, LogNorm, Normalize, Rectangle = _matplotlib()
    layout = Layout(data.out_shape, data.inputs)
    pairs = [p for p in report.pairs if all(r in data.values for r in p.routes)]  # verify's value pair has no matrix
    panels = 1 + len(pairs)
    ncols = min(3, panels)
    nrows = math.ceil(panels / ncols)
    width, height = PANEL_INCHES[0] * ncols, PANEL_INCHES[1] * nrows
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    # A fixed grid, not a layout engine: constrained layout took most of the drawing time.
    grid = fig.add_gridspec(
        nrows, ncols, left=0.3 / width, right=1 - 0.8 / width, bottom=0.35 / height, top=1 - 0.95 / height,
        wspace=0.7, hspace=0.6,
    )

    def panel(k: int, label: str):
        return fig.add_subplot(grid[k // ncols, k % ncols], label=label)

    ax = panel(0, "sparsity")
    sparsity = layout.picture(data.nonzero.astype(np.float64))
    cmap = _cmap("Greys")
    ax.imshow(sparsity, cmap=cmap, norm=Normalize(0.0, 1.0), interpolation="nearest")
    nnz = int(data.nonzero.sum())
    ax.set_title(f"sparsity: {nnz} of {data.nonzero.size} entries nonzero", fontsize=9)
    _decorate(ax, layout)

    for k, pair in enumerate(pairs, start=1):
        a, b = pair.routes
        ax = panel(k, f"{a} vs {b}")
        with np.errstate(invalid="ignore"):
            error = np.abs(data.values[a] - data.values[b])
        image = layout.picture(error)
        positive = image[np.isfinite(image) & (image > 0)]
        top = float(positive.max()) if positive.size else 1.0
        low = max(float(positive.min()) if positive.size else top, top * 1e-12)
        norm = LogNorm(vmin=low if low < top else top / 10, vmax=top)
        # exact agreement (error 0) is drawn white, below the color scale
        image = np.where(image == 0, norm.vmin / 10, image)
        cmap = _cmap("viridis").with_extremes(under="white")
        shown = ax.imshow(image, cmap=cmap, norm=norm, interpolation="nearest")
        fig.colorbar(shown, ax=ax, shrink=0.8, label="|a - b| (white: 0)")
        row, col = layout.entry_position(pair.worst)
        ax.add_patch(
            Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor=WORST_COLOR, linewidth=2.5, label="worst")
        )
        ok = "ok" if pair.ok else f"FAIL ({pair.n_bad})"
        ax.set_title(f"{a} vs {b}: {ok}\nmax |a-b| {pair.max_abs_error:.1e}; worst (red): err/tol", fontsize=8)
        _decorate(ax, layout)

    fig.suptitle(f"symjac {getattr(report, 'task', 'check')}: {report.verdict.upper()} ({report.function})", fontsize=10, y=1 - 0.15 / height)
    if path is not None:
        try:
            fig.savefig(path, dpi=dpi, format="png")
        except OSError as error:  # no permission, no space left
            raise InvalidArgumentError(f"path: cannot write the PNG to {path!r} ({error.strerror or error})") from None
    return fig


def _cmap(name: str):
    import matplotlib

    # padding and the gap between inputs are drawn light blue-grey
    return matplotlib.colormaps[name].with_extremes(bad=(0.85, 0.88, 0.95))


def _decorate(ax, layout: Layout) -> None:
    """Block boundaries (thin blue lines between cells), input names, no per-entry ticks."""
    ax.set_xticks([])
    ax.set_yticks([])
    names = ", ".join(f"{name} {shape}" for name, shape in layout.inputs)
    ax.set_xlabel(f"input entries: {names}", fontsize=7)
    ax.set_ylabel(f"output entries {layout.out_shape}", fontsize=7)
    for grid, offset in zip(layout.grids, layout.offsets):
        if not grid.nested:
            continue
        rows, cols = grid.shape
        for r in range(grid.inner_rows, rows, grid.inner_rows):
            ax.plot([offset - 0.5, offset + cols - 0.5], [r - 0.5, r - 0.5], color="#4c72b0", linewidth=1)
        for c in range(grid.inner_cols, cols, grid.inner_cols):
            ax.plot([offset + c - 0.5, offset + c - 0.5], [-0.5, rows - 0.5], color="#4c72b0", linewidth=1)
