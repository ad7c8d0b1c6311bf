"""Matplotlib figures (written as PNG, headless)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

COLORS = {"helps": "#2a9d8f", "harms": "#d62828", "cannot tell": "#6c757d"}


def forest_plot(table: pd.DataFrame, path: str | Path, title: str = "Benefit of personalization"
                ) -> Path:
    """One panel per metric: BoP per group with its CI, coloured by verdict."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = list(dict.fromkeys(table["metric"]))
    groups = list(dict.fromkeys(table["group"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 0.45 * len(groups) + 1.6),
                             sharey=True, squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        d = table[table["metric"] == metric].set_index("group").reindex(groups)
        ys = range(len(groups))
        for yv, (_, r) in zip(ys, d.iterrows()):
            col = COLORS.get(r["verdict"], "black")
            ax.plot([r["ci_low"], r["ci_high"]], [yv, yv], color=col, lw=2)
            ax.plot([r["bop"]], [yv], "o", color=col)
        ax.axvline(0, color="black", lw=0.8, ls="--")
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel("BoP (positive = personalization helps)", fontsize=8)
        ax.set_yticks(list(ys))
        ax.set_yticklabels(groups, fontsize=8)
        ax.invert_yaxis()
    handles = [plt.Line2D([], [], color=c, marker="o", lw=2, label=v) for v, c in COLORS.items()]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def bias_scatter(results: pd.DataFrame, path: str | Path, metric: str = "bias",
                 title: str = "Debiasing: bias against balanced accuracy") -> Path:
    """One point per method and seed (bias on x, balanced accuracy on y), means as crosses."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    cmap = plt.get_cmap("tab10")
    for i, (method, d) in enumerate(results.groupby("method", sort=False)):
        c = cmap(i % 10)
        ax.scatter(d["bias"], d["balanced_accuracy"], color=c, alpha=0.5, s=18)
        ax.scatter([d["bias"].mean()], [d["balanced_accuracy"].mean()], color=c, marker="X",
                   s=90, label=method, edgecolor="black", linewidth=0.5)
    ax.axvline(0, color="black", lw=0.8, ls="--")
    ax.set_xlabel(metric)
    ax.set_ylabel("balanced accuracy")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
