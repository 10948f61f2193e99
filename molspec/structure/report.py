"""The analysis report as text (terminal) and as a picture (heatmaps and bars, PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def text_report(r: dict[str, Any]) -> str:
    lines = [f"analysis of {r['build']}: {r['samples']:,} samples ({r['failed']:,} failed)"]
    for g in r["graphs"]:
        pr = g["planned_vs_realised"]
        chi = g["chi2"]
        lines += [f"graph {g['graph']} ({g['samples']:,} samples)",
                  f"  planned vs realised walks   r = {_r(pr['r'])} ({pr['verdict']}), KL = {pr['kl_ab']:.4f}; "
                  f"chi-square {chi['statistic']:.1f} on {chi['dof']} dof, p = {chi['p_value']:.3g}"
                  + (f", {chi['impossible_transitions']} impossible transitions" if chi["impossible_transitions"]
                     else "")]
        if "fidelity" in g:
            pl = g["planned_vs_labelled"]
            fid = g["fidelity"]
            per = ", ".join(f"{b} {v['fidelity']:.2f}" for b, v in fid["per_bond"].items())
            lines += [f"  planned vs labelled steps   r = {_r(pl['r'])} ({pl['verdict']}), KL = {pl['kl_ab']:.4f}",
                      f"  bond fidelity               {fid['overall']:.2f} overall; {per}"]
        lines.append("  bond       planned  realised" + ("  labelled" if "labelled" in g else ""))
        for b in g["bonds"]:
            row = f"  {b:<10} {g['planned']['shares'][b]:>7.1%}  {g['realised']['shares'][b]:>8.1%}"
            if "labelled" in g:
                row += f"  {g['labelled']['shares'].get(b, 0.0):>8.1%}"
            lines.append(row)
    lines.append("per bond   steps   tokens mean  p95   cut by max_tokens")
    for b, v in r["per_bond"].items():
        t = v["tokens"]
        lines.append(f"  {b:<10} {v['steps']:>6,}  {t['mean']:>9.1f}  {t['p95']:>5}   {v['cut_by_max_tokens']:.1%}")
    d, acc = r["duplicates"], r["accuracy"]
    lines.append(f"duplicates: {d['step_duplicate_rate']:.1%} of steps, {d['trace_duplicate_rate']:.1%} of traces")
    lines.append("accuracy: " + ("n/a (no gold)" if acc["accuracy"] is None else
                                 f"{acc['accuracy']:.1%} of {acc['graded']:,} graded"))
    if "png" in r:
        lines.append(f"picture: {r['png']}")
    return "\n".join(lines)


def _r(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def draw(r: dict[str, Any], path: Path) -> None:
    """Heatmaps (planned, realised, labelled) and share bars for each graph, in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    graphs = r["graphs"] or []
    views = [v for v in ("planned", "realised", "labelled") if graphs and v in graphs[0]]
    cols = len(views) + 1
    fig, axes = plt.subplots(max(len(graphs), 1), cols, figsize=(3.4 * cols, 3.2 * max(len(graphs), 1)),
                             squeeze=False)
    for row, g in enumerate(graphs):
        bonds = g["bonds"]
        for col, view in enumerate(views):
            m = np.array(g[view]["transitions"])[: len(bonds), : len(bonds)]
            ax = axes[row][col]
            ax.imshow(m, vmin=0, vmax=1, cmap="viridis")
            ax.set_xticks(range(len(bonds)), bonds, rotation=45, fontsize=7)
            ax.set_yticks(range(len(bonds)), bonds, fontsize=7)
            ax.set_title(f"{g['graph']}: {view}", fontsize=9)
            for i in range(len(bonds)):
                for j in range(len(bonds)):
                    ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if m[i, j] < 0.5 else "black")
        ax = axes[row][-1]
        x = np.arange(len(bonds))
        for k, view in enumerate(views):
            ax.bar(x + (k - 1) * 0.27, [g[view]["shares"].get(b, 0) for b in bonds], width=0.27, label=view)
        ax.set_xticks(x, bonds, rotation=45, fontsize=7)
        ax.set_title("bond shares", fontsize=9)
        ax.legend(fontsize=6)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90, metadata={"Software": None})
    plt.close(fig)
