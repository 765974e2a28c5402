"""Pictures of a check, asserted on their pixels: the block-matrix sparsity pattern and the error
heatmaps with the worst entry outlined where the report says."""

import io
import json
import sys

import numpy as np
import pytest

import symjac as sj
from symjac._latex import display_grid
from symjac._plot import PANEL_INCHES, Layout

pytest.importorskip("matplotlib", reason="matplotlib is the optional 'plot' extra (pip install symjac[plot])")
pytest.importorskip("torch")
from matplotlib.image import imread  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _pixels(path):
    with open(path, "rb") as handle:
        assert handle.read(8) == PNG_SIGNATURE
    return imread(path)[..., :3]  # float RGB in [0, 1], row 0 at the top


def _axes(fig, label):
    (ax,) = [a for a in fig.axes if a.get_label() == label]
    return ax


def _pixel_of_cell(ax, image_height, row, col):
    """(png_row, png_col) of the centre of picture cell (row, col) in `ax`."""
    x, y = ax.transData.transform((col, row))
    return int(round(image_height - y)), int(round(x))


@pytest.fixture(scope="module")
def planted():
    """X @ X (3x3) checked with a candidate that is off by 1e-3 at J[1, 2, 0, 1]."""
    f = sj.function("X @ X", X=(3, 3))
    x = np.random.default_rng(1).standard_normal((3, 3))
    wrong = f.jacobian().evaluate(X=x)
    wrong[1, 2, 0, 1] += 1e-3
    return f, sj.check(f, X=x, jacobian=wrong)


@pytest.fixture(scope="module")
def drawn(planted, tmp_path_factory):
    """The planted report drawn once (drawing is the slow part): (figure, RGB pixels)."""
    path = tmp_path_factory.mktemp("plot") / "check.png"
    fig = planted[1].plot(path, dpi=60)
    return fig, _pixels(path)


def test_block_matrix_sparsity_pattern_pixels(planted, drawn):
    f, report = planted
    fig, pixels = drawn
    panels = 1 + len(report.pairs)  # 11: 3 per row, 4 rows
    assert pixels.shape[:2] == (round(4 * PANEL_INCHES[1] * 60), round(3 * PANEL_INCHES[0] * 60))
    ax = _axes(fig, "sparsity")
    sparsity = f.jacobian().sparsity.reshape(9, 9)
    grid = display_grid((3, 3), (3, 3))
    assert grid.nested and grid.shape == (9, 9)
    dark = light = 0
    for p, q in np.ndindex(9, 9):
        r, c = _pixel_of_cell(ax, pixels.shape[0], *grid.position(p, q))
        value = pixels[r, c].mean()
        if sparsity[p, q]:
            assert value < 0.2, (p, q, value)
            dark += 1
        else:
            assert value > 0.9, (p, q, value)
            light += 1
    assert (dark, light) == (45, 36) and panels == 11


def test_error_heatmap_marks_the_worst_entry_where_the_report_says(planted, drawn):
    _, report = planted
    pair = next(p for p in report.pairs if p.routes == ("symbolic", "candidate"))
    assert (pair.worst.output_index, pair.worst.input_index) == ((1, 2), (0, 1))
    fig, pixels = drawn
    height = pixels.shape[0]
    red = (pixels[..., 0] > 0.9) & (pixels[..., 1] < 0.15) & (pixels[..., 2] < 0.15)

    ax = _axes(fig, "symbolic vs candidate")
    (x0, y0), (x1, y1) = ax.get_window_extent().get_points()
    inside = np.zeros_like(red)
    inside[int(height - y1):int(height - y0), int(x0):int(x1)] = True
    rows, cols = np.nonzero(red & inside)
    assert rows.size > 12  # an outline, not a stray pixel
    layout = Layout((3, 3), (("X", (3, 3)),))
    assert layout.entry_position(pair.worst) == (3, 7)  # block (1, 2), cell (0, 1)
    r, c = _pixel_of_cell(ax, height, 3, 7)
    assert abs((rows.min() + rows.max()) / 2 - r) <= 2 and abs((cols.min() + cols.max()) / 2 - c) <= 2
    # the planted entry is the brightest cell of that heatmap: yellow end of viridis
    assert pixels[r, c, 0] > 0.8 and pixels[r, c, 2] < 0.4
    # and no red in the sparsity panel
    (sx0, sy0), (sx1, sy1) = _axes(fig, "sparsity").get_window_extent().get_points()
    assert not red[int(height - sy1):int(height - sy0), int(sx0):int(sx1)].any()


def test_several_inputs_side_by_side():
    layout = Layout((2,), (("W", (2, 3)), ("x", (3,))))
    # vector output by matrix input: a column of 2 blocks of 2x3; by a vector: the 2x3 matrix
    assert layout.grids[0].shape == (4, 3) and layout.grids[1].shape == (2, 3)
    assert layout.shape == (4, 3 + 1 + 3)
    assert layout.position(1, 6 + 2) == (1, 4 + 2)  # d out[1] / d x[2]
    assert layout.position(1, 5) == (3, 2)  # d out[1] / d W[1, 2]
    picture = layout.picture(np.ones((2, 9)))
    assert np.isnan(picture[:, 3]).all() and np.isnan(picture[2:, 4:]).all()


def test_plot_without_route_matrices_is_refused():
    report = sj.check(sj.function("log(x)", x=(1,)), x=[-1.0])
    assert report.verdict == "inconclusive" and report.matrices is None
    with pytest.raises(sj.InvalidArgumentError, match="report: has no route matrices to plot .*outside the domain"):
        report.plot()


def test_bad_dpi_is_refused(planted):
    with pytest.raises(sj.InvalidArgumentError, match="dpi: must be an int from 10 to 600; received 0"):
        planted[1].plot(dpi=0)


def test_missing_matplotlib_says_how_to_install(monkeypatch, planted):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(sj.BackendNotAvailableError, match=r"pip install symjac\[plot\]"):
        planted[1].plot()


def test_to_dict_stays_json_safe_without_the_matrices(planted):
    data = planted[1].to_dict()
    assert "matrices" not in data
    json.dumps(data, allow_nan=False)


def test_cli_check_plot_writes_a_png(tmp_path):
    from symjac._cli import main

    path = tmp_path / "out.png"
    out = io.StringIO()
    code = main(["check", "A @ X", "--input", "X=2x2", "--const", "A=[[2, 3], [4, 5]]",
                 "--at", "X=[[1, 2], [3, 4]]", "--plot", str(path)], out=out)
    assert code == 0 and "PASS" in out.getvalue()
    assert _pixels(path).shape[:2] == (round(3 * PANEL_INCHES[1] * 100), round(3 * PANEL_INCHES[0] * 100))
