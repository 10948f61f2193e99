"""The structure picture of a build: planned vs realised transitions (heatmaps) and bond shares (bars).

Rendered with matplotlib's Agg canvas on a private `Figure` (no pyplot state, no GUI backend) under the
default style, so a user's matplotlibrc cannot change it, and saved without the PNG `Software` text: the
same manifest gives the same bytes, which keeps a re-push of the same build a no-op.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.style
import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 100
ANNOTATE_MAX_BONDS = 8  # write the probability in each cell up to this many bonds
PLANNED_COLOR, REALISED_COLOR = "#4C72B0", "#DD8452"


def structure_png(manifest: dict[str, Any], path: Path) -> Path:
    """Draw the build's planned vs realised structure into `path` (a PNG) and return it."""
    bonds = bond_order(manifest)
    planned = _matrix(manifest.get("planned"), bonds)
    realised = _matrix(manifest.get("realised"), bonds)
    with matplotlib.style.context("default"):
        fig = Figure(figsize=(13.5, 4.2), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        left, middle, right = fig.subplots(1, 3, width_ratios=[1, 1, 1.15])
        image = _heatmap(left, planned, bonds, "Planned transitions (the plan's walks)")
        _heatmap(middle, realised, bonds, "Realised transitions (the dataset's rows)")
        fig.colorbar(image, ax=[left, middle], shrink=0.85, label="P(next bond | bond)")
        _shares(right, manifest, bonds)
        name = (manifest.get("dataset") or {}).get("name") or "dataset"
        fig.suptitle(f"{name}: Mole-Syn structure", fontsize=12)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", dpi=DPI, metadata={"Software": None})
    return path


def bond_order(manifest: dict[str, Any]) -> list[str]:
    """The bond names in the order the plan uses (the matrices' row order)."""
    for key in ("planned", "realised"):
        transitions = (manifest.get(key) or {}).get("transitions") or {}
        if transitions.get("bonds"):
            return [str(b) for b in transitions["bonds"]]
    seen: dict[str, None] = {}
    for graph in (manifest.get("graphs") or {}).values():
        seen.update(dict.fromkeys(str(b) for b in graph.get("bonds", [])))
    return list(seen)


def _matrix(stats: dict[str, Any] | None, bonds: list[str]) -> npt.NDArray[np.float64]:
    """A stats block's row-normalised transition matrix, re-ordered to `bonds` (zeros where unknown)."""
    out = np.zeros((len(bonds), len(bonds)))
    transitions = (stats or {}).get("transitions") or {}
    names, rows = transitions.get("bonds") or [], transitions.get("matrix") or []
    pos = {b: i for i, b in enumerate(bonds)}
    for a, row in zip(names, rows, strict=False):
        for b, p in zip(names, row, strict=False):
            if a in pos and b in pos:
                out[pos[a], pos[b]] = float(p)
    return out


def _heatmap(ax: Axes, m: npt.NDArray[np.float64], bonds: list[str], title: str) -> Any:
    image = ax.imshow(m, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    ticks = np.arange(len(bonds))
    ax.set_xticks(ticks, bonds, rotation=30, ha="right")
    ax.set_yticks(ticks, bonds)
    ax.set_xlabel("next bond")
    ax.set_ylabel("bond")
    ax.set_title(title, fontsize=10)
    if len(bonds) <= ANNOTATE_MAX_BONDS:
        for (i, j), p in np.ndenumerate(m):
            ax.text(j, i, f"{p:.2f}", ha="center", va="center", fontsize=8, color="white" if p > 0.55 else "black")
    return image


def _shares(ax: Axes, manifest: dict[str, Any], bonds: list[str]) -> None:
    planned = (manifest.get("planned") or {}).get("bond_shares") or {}
    realised = (manifest.get("realised") or {}).get("bond_shares") or {}
    x = np.arange(len(bonds))
    width = 0.38
    ax.bar(x - width / 2, [float(planned.get(b, 0.0)) for b in bonds], width, label="planned", color=PLANNED_COLOR)
    ax.bar(x + width / 2, [float(realised.get(b, 0.0)) for b in bonds], width, label="realised",
           color=REALISED_COLOR)
    ax.set_xticks(x, bonds, rotation=30, ha="right")
    ax.set_ylabel("share of steps")
    top = max([0.0, *map(float, planned.values()), *map(float, realised.values())])
    ax.set_ylim(0, min(1.0, top * 1.2) if top > 0 else 1.0)
    ax.set_title("Bond shares", fontsize=10)
    ax.legend(frameon=False, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
