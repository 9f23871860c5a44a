"""Figures of the common-corruption benchmark and of randomized smoothing's certificates:
accuracy per model and corruption beside accuracy against severity, and certified accuracy
against the L2 radius (Cohen et al. 2019's curve)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .plots import cached, save


@cached
def corruption_plot(frame: pd.DataFrame, summary: pd.DataFrame, path: Path) -> Path:
    """Left, a heatmap of accuracy (models as rows): clean, each corruption averaged over its
    severities, and the mean over all (mCA). Right, accuracy against severity per model: the
    clean images at 0, the mean over corruptions at each severity."""
    models = list(summary["model"])
    names = list(dict.fromkeys(frame["corruption"]))
    severities = sorted(frame["severity"].unique())
    per_corruption = frame.pivot_table(
        index="model", columns="corruption", values="accuracy", aggfunc="mean", sort=False
    ).reindex(index=models, columns=names)
    clean = summary.set_index("model")["clean_acc"].reindex(models)
    mca = summary.set_index("model")["mean_corruption_acc"].reindex(models)
    values = np.column_stack([clean.to_numpy(), per_corruption.to_numpy(), mca.to_numpy()])
    columns = ["clean", *names, "mean (mCA)"]
    width = 0.42 * len(columns) + 2.0
    height = max(3.2, 0.42 * len(models) + 2.2)
    fig, (heat, curve) = plt.subplots(
        1, 2, figsize=(width + 4.2, height), width_ratios=[width, 3.6], layout="constrained"
    )
    image = heat.imshow(values, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    heat.set_xticks(range(len(columns)), columns, rotation=60, ha="right", fontsize=8)
    heat.set_yticks(range(len(models)), models, fontsize=8)
    for edge in (0.5, len(columns) - 1.5):  # clean and mean apart from the corruptions
        heat.axvline(edge, color="white", lw=2)
    for (i, j), value in np.ndenumerate(values):
        if not np.isnan(value):
            color = "white" if value < 0.5 else "black"
            heat.text(j, i, f"{100 * value:.0f}", ha="center", va="center", fontsize=7, color=color)
    heat.set_title("accuracy (%), mean over severities", fontsize=10)
    fig.colorbar(image, ax=heat, shrink=0.8, label="accuracy")
    by_severity = frame.groupby(["model", "severity"], sort=False)["accuracy"].mean()
    for model in models:
        ys = [clean[model], *(by_severity.get((model, s), np.nan) for s in severities)]
        curve.plot([0, *severities], ys, marker="o", label=model)
    curve.set_xticks([0, *severities], ["clean", *(str(s) for s in severities)])
    curve.set_xlabel("severity")
    curve.set_ylabel("accuracy (mean over corruptions)")
    curve.set_ylim(-0.02, 1.02)
    curve.grid(alpha=0.3)
    curve.legend(fontsize=7, loc="best")
    curve.set_title("accuracy against severity", fontsize=10)
    return save(fig, path)


@cached
def certified_plot(frame: pd.DataFrame, curve: pd.DataFrame, path: Path) -> Path:
    """Certified accuracy against the L2 radius, a line per model (from its images' radii),
    with the tabulated radii's figures and their Wilson 95% intervals as error bars."""
    fig, ax = plt.subplots(figsize=(5.8, 4.0), layout="constrained")
    for index, model in enumerate(dict.fromkeys(frame["model"])):
        color = f"C{index % 10}"
        line = curve[curve["model"] == model]
        ax.plot(line["radius"], line["certified_acc"], color=color, label=model)
        part = frame[frame["model"] == model]
        below = (part["certified_acc"] - part["ci_low"]).clip(lower=0)
        above = (part["ci_high"] - part["certified_acc"]).clip(lower=0)
        ax.errorbar(
            part["radius"], part["certified_acc"], yerr=[below, above], fmt="o", color=color,
            capsize=3, markersize=4,
        )  # fmt: skip
    sigma = float(frame["sigma"].iloc[0])
    ax.set_title(f"Randomized smoothing, sigma {sigma:g}", fontsize=10)
    ax.set_xlabel("L2 radius ([0, 1] pixel scale)")
    ax.set_ylabel("certified accuracy")
    ax.set_ylim(-0.02, 1.02)
    top = max([0.1, *frame["radius"], *curve["radius"]])
    ax.set_xlim(left=-0.02 * top)  # the error bars at radius 0 whole
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    return save(fig, path)
