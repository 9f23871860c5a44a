"""The published leaderboard's picture: robust against clean accuracy, one point per model."""

from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ..render.format import eps_text  # noqa: E402

COLOURS = plt.get_cmap("tab10").colors
MARKERS = "osD^vPXh<>"


def robust_vs_clean_png(lines: pd.DataFrame, title: str) -> bytes:
    """PNG bytes of one protocol's ranked lines: a panel per eps, clean accuracy across, robust
    accuracy up with its 95% interval; each model keeps its colour and marker in every panel,
    named in the legend below (flagged models drawn hollow and named so)."""
    budgets = sorted(lines["eps"].unique())
    cols = min(3, len(budgets))
    rows = math.ceil(len(budgets) / cols)
    several_suites = lines["suite"].nunique() > 1
    labels = [
        model + (f" ({suite})" if several_suites else "") + (" (flagged)" if flags else "")
        for model, suite, flags in zip(lines["model"], lines["suite"], lines["indicators"])
    ]
    columns = legend_columns(list(dict.fromkeys(labels)), 4.4 * cols)
    legend_rows = math.ceil(len(set(labels)) / columns)
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.4 * cols, 3.6 * rows + 0.6 + 0.18 * legend_rows), squeeze=False,
        layout="constrained",
    )  # fmt: skip
    names = list(dict.fromkeys(zip(lines["model"], lines["suite"])))
    style = {name: marker_style(i) for i, name in enumerate(names)}
    handles: dict[str, object] = {}
    for ax, eps in zip(axes.flat, budgets):
        part = lines[lines["eps"] == eps]
        for line, label in zip(part.to_dict("records"), pd.Series(labels, lines.index)[part.index]):
            colour, marker = style[line["model"], line["suite"]]
            low, high, robust = line["ci_low"], line["ci_high"], line["robust"]
            errors = None if math.isnan(low) else [[max(0, robust - low)], [max(0, high - robust)]]
            drawn = ax.errorbar(
                line["clean"], robust, yerr=errors, fmt=marker, color=colour, ms=6, capsize=2,
                lw=1, mfc="white" if line["indicators"] else colour, alpha=0.9,
            )  # fmt: skip
            handles.setdefault(label, drawn)
        frame_panel(ax, part)
        ax.set_title(f"eps {eps_text(eps)}", fontsize=10)
        ax.set_xlabel("clean accuracy")
        ax.set_ylabel("robust accuracy")
    for ax in list(axes.flat)[len(budgets) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.legend(
        list(handles.values()), list(handles), loc="outside lower center",
        ncol=columns, fontsize=8, frameon=False,
    )  # fmt: skip
    buffer = io.BytesIO()
    # tight: the picture grows to hold the whole legend, however long the names
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", pad_inches=0.1)
    plt.close(fig)
    return buffer.getvalue()


def marker_style(index: int) -> tuple[tuple[float, float, float], str]:
    """The colour and marker of the ``index``-th model: both cycle, the marker shifted by one
    more at each round of colours, so the first 100 models never share both."""
    colour = COLOURS[index % len(COLOURS)]
    return colour, MARKERS[(index + index // len(COLOURS)) % len(MARKERS)]


def legend_columns(labels: list[str], width: float) -> int:
    """As many legend columns (up to 3) as entries of the longest label fit across ``width``
    inches at 8 points (about 0.065 inch a character, 0.5 inch for the marker)."""
    longest = max((len(label) for label in labels), default=1)
    fits = int(width // (0.065 * longest + 0.5))
    return max(1, min(3, len(labels), fits))


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
