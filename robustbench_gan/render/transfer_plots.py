"""The transfer grid's figures: a surrogate x target heatmap per attack, and the ensemble
effect (success on held-out targets against the number of surrogates)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .format import eps_text
from .plots import cached, save


@cached
def grid_heatmap(grid: pd.DataFrame, attack: str, path: Path) -> Path:
    """Success rate of ``attack``'s examples from each surrogate (rows) on each target
    (columns), one panel per eps; white-box pairs (the target among the surrogate's members)
    are outlined."""
    part = grid[grid["attack"] == attack]
    budgets = sorted(part["eps"].unique())
    sources = list(dict.fromkeys(part["surrogate"]))
    targets = list(dict.fromkeys(part["target"]))
    cols = min(2, len(budgets))
    rows = math.ceil(len(budgets) / cols)
    width, height = 0.5 * len(targets) + 1.5, 0.4 * len(sources) + 1.2
    fig, axes = plt.subplots(
        rows, cols, figsize=(width * cols + 1.5, height * rows + 1), squeeze=False,
        layout="constrained",
    )  # fmt: skip
    image = None
    for index, (ax, eps) in enumerate(zip(axes.flat, budgets)):
        at = part[part["eps"] == eps]
        values = at.pivot(index="surrogate", columns="target", values="success_rate")
        values = values.reindex(index=sources, columns=targets).to_numpy(dtype=float)
        white = at.pivot(index="surrogate", columns="target", values="white_box")
        white = white.reindex(index=sources, columns=targets).fillna(False).to_numpy(dtype=bool)
        image = ax.imshow(values, vmin=0, vmax=1, cmap="magma")
        first_col = index % cols == 0
        ax.set_xticks(range(len(targets)), targets, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(sources)), sources if first_col else [], fontsize=8)
        ax.set_xlabel("target")
        if first_col:
            ax.set_ylabel("surrogate")
        ax.set_title(f"{attack}, eps {eps_text(eps)}")
        for (i, j), value in np.ndenumerate(values):
            if not np.isnan(value):
                color = "black" if value > 0.6 else "white"
                ax.text(
                    j, i, f"{100 * value:.0f}", ha="center", va="center", fontsize=7, color=color
                )
            if white[i, j]:
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="cyan", lw=1.2))
    for ax in list(axes.flat)[len(budgets) :]:
        ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6, label="transfer success rate")
    return save(fig, path)


@cached
def ensemble_effect_plot(effect: pd.DataFrame, by_size: pd.DataFrame, path: Path) -> Path:
    """Mean success on held-out targets against the number of surrogates in the ensemble
    (each pair of ``effect`` a dot; ``by_size``'s pooled rate a line in its 95% interval),
    beside the mean success of the same members used alone."""
    fig, ax = plt.subplots(figsize=(5.5, 4), layout="constrained")
    sizes = by_size["size"].tolist()
    jitter = np.linspace(-0.12, 0.12, num=max(effect.groupby("size").size().max(), 1))
    for size in sizes:
        group = effect[effect["size"] == size]
        ax.scatter(size + jitter[: len(group)], group["success_rate"], s=10, alpha=0.4, color="C0")
    ax.fill_between(
        sizes, by_size["ci_low"], by_size["ci_high"], color="C0", alpha=0.15,
        label="95% interval",
    )  # fmt: skip
    ax.plot(
        sizes, by_size["success_rate"], "o-", color="C0",
        label="ensemble of surrogates (pooled over pairs)",
    )  # fmt: skip
    ax.plot(
        sizes, by_size["mean_member_success_rate"], "s--", color="C1",
        label="its members alone (pooled likewise)",
    )  # fmt: skip
    attack, eps = effect["attack"].iloc[0], eps_text(effect["eps"].iloc[0])
    ax.set_title(f"Ensemble effect on held-out targets ({attack}, eps {eps})", fontsize=10)
    ax.set_xlabel("surrogates in the ensemble")
    ax.set_ylabel("transfer success rate")
    ax.set_xticks(sizes)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return save(fig, path)
