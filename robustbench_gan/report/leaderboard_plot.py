"""The published leaderboard's picture: robust against clean accuracy, one point per model."""

from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

COLOURS = plt.get_cmap("tab10").colors
MARKERS = "osD^vPXh<>"


def robust_vs_clean_png(lines: pd.DataFrame, title: str) -> bytes:
    """PNG bytes of one protocol's ranked lines: a panel per eps, clean accuracy across, robust
    accuracy up with its 95% interval; each model keeps its colour and marker in every panel,
    named in the legend below (flagged models drawn hollow and named so)."""
    budgets = sorted(lines["eps"].unique())
    cols = min(3, len(budgets))
    rows = math.ceil(len(budgets) / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.4 * cols, 3.6 * rows + 0.6), squeeze=False, layout="constrained"
    )
    several_suites = lines["suite"].nunique() > 1
    names = list(dict.fromkeys(zip(lines["model"], lines["suite"])))
    style = {
        name: (COLOURS[i % len(COLOURS)], MARKERS[i % len(MARKERS)]) for i, name in enumerate(names)
    }
    handles: dict[str, object] = {}
    for ax, eps in zip(axes.flat, budgets):
        part = lines[lines["eps"] == eps]
        for line in part.to_dict("records"):
            colour, marker = style[line["model"], line["suite"]]
            low, high, robust = line["ci_low"], line["ci_high"], line["robust"]
            errors = None if math.isnan(low) else [[max(0, robust - low)], [max(0, high - robust)]]
            label = line["model"] + (f" ({line['suite']})" if several_suites else "")
            label += " (flagged)" if line["flags"] else ""
            drawn = ax.errorbar(
                line["clean"], robust, yerr=errors, fmt=marker, color=colour, ms=6, capsize=2,
                lw=1, mfc="white" if line["flags"] else colour, alpha=0.9,
            )  # fmt: skip
            handles.setdefault(label, drawn)
        frame_panel(ax, part)
        ax.set_title(f"eps {eps:g}", fontsize=10)
        ax.set_xlabel("clean accuracy")
        ax.set_ylabel("robust accuracy")
    for ax in list(axes.flat)[len(budgets) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.legend(
        list(handles.values()), list(handles), loc="outside lower center",
        ncol=min(3, len(handles)), fontsize=8, frameon=False,
    )  # fmt: skip
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def frame_panel(ax: plt.Axes, part: pd.DataFrame) -> None:
    """Axes around the points and their intervals, a grid, and the diagonal robust = clean
    (robust accuracy can only lie below it)."""
    xs = part["clean"].dropna()
    ys = pd.concat([part["robust"], part["ci_low"], part["ci_high"]]).dropna()
    if not len(xs) or not len(ys):
        return
    x_pad = max(0.01, 0.08 * (xs.max() - xs.min()))
    y_pad = max(0.01, 0.06 * (ys.max() - ys.min()))
    ax.set_xlim(max(-0.005, xs.min() - x_pad), min(1.005, xs.max() + x_pad))
    ax.set_ylim(max(-0.02, ys.min() - y_pad), min(1.02, ys.max() + y_pad))
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="grey", alpha=0.6, zorder=0)
    ax.grid(alpha=0.3)
