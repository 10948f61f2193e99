"""Every picture molspec draws: grids of heatmaps (transition and confusion matrices) and bar charts.

The card's structure.png and `molspec analyze`'s analysis.png are both a `figure_png` of panels. Figures are
drawn with matplotlib's Agg canvas on a private `Figure` (no pyplot state, no GUI backend) under the
default style, so a user's matplotlibrc cannot change them, and saved without the PNG `Software` text: the
same panels give the same bytes, which keeps a rerun (and a re-push) of the same build a no-op.
Import this module late: matplotlib is slow to import, and `molspec check` must not pay for it.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib.style
import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

DPI = 100
ANNOTATE_MAX = 8  # write the value in each cell up to this many rows and columns
COLORS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52")


@dataclass(frozen=True)
class Heatmap:
    """A matrix of values in [0, 1], one row per `rows` label and one column per `cols` label."""

    title: str
    matrix: npt.NDArray[np.float64]
    rows: Sequence[str]
    cols: Sequence[str]
    xlabel: str = "next bond"
    ylabel: str = "bond"


@dataclass(frozen=True)
class Bars:
    """Grouped bars: one group per category, one bar per series (name -> one value per category)."""

    title: str
    categories: Sequence[str]
    series: Mapping[str, Sequence[float]]
    ylabel: str = "share of steps"


Panel = Heatmap | Bars


def figure_png(grid: Sequence[Sequence[Panel]], title: str, cell: tuple[float, float] = (4.3, 3.9)) -> bytes:
    """Draw a grid of panels (rows of equal length) under `title`; returns the PNG's bytes."""
    n_rows, n_cols = len(grid), max((len(r) for r in grid), default=1)
    with matplotlib.style.context("default"):
        fig = Figure(figsize=(cell[0] * n_cols, cell[1] * n_rows + 0.4), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(max(n_rows, 1), n_cols, squeeze=False)
        images = [_draw(axes[i][j], panel) for i, row in enumerate(grid) for j, panel in enumerate(row)]
        for i, row in enumerate(grid):
            for j in range(len(row), n_cols):
                axes[i][j].set_axis_off()
        shown = [im for im in images if im is not None]
        if shown:
            fig.colorbar(shown[0], ax=[im.axes for im in shown], shrink=0.8, label="probability")
        fig.suptitle(title, fontsize=12)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _draw(ax: Axes, panel: Panel) -> AxesImage | None:
    if isinstance(panel, Heatmap):
        return _heatmap(ax, panel)
    _bars(ax, panel)
    return None


def _heatmap(ax: Axes, h: Heatmap) -> AxesImage:
    image = ax.imshow(h.matrix, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks(np.arange(len(h.cols)), list(h.cols), rotation=30, ha="right")
    ax.set_yticks(np.arange(len(h.rows)), list(h.rows))
    ax.set_xlabel(h.xlabel)
    ax.set_ylabel(h.ylabel)
    ax.set_title(h.title, fontsize=10)
    if max(len(h.rows), len(h.cols)) <= ANNOTATE_MAX:
        for (i, j), p in np.ndenumerate(h.matrix):
            ax.text(j, i, f"{p:.2f}", ha="center", va="center", fontsize=8, color="white" if p > 0.55 else "black")
    return image


def _bars(ax: Axes, b: Bars) -> None:
    x = np.arange(len(b.categories))
    width = 0.8 / max(len(b.series), 1)
    for k, (name, values) in enumerate(b.series.items()):
        offset = (k - (len(b.series) - 1) / 2) * width
        ax.bar(x + offset, [float(v) for v in values], width, label=name, color=COLORS[k % len(COLORS)])
    ax.set_xticks(x, list(b.categories), rotation=30, ha="right")
    ax.set_ylabel(b.ylabel)
    top = max([0.0, *(float(v) for values in b.series.values() for v in values)])
    ax.set_ylim(0, min(1.0, top * 1.2) if top > 0 else 1.0)
    ax.set_title(b.title, fontsize=10)
    ax.legend(frameon=False, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
